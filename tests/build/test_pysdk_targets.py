"""SDKs for every tag upstream publishes, without the network: free-threaded targets
("3.14t"), import libraries generated from the headers where no DLL is reachable, and NuGet
packages (a self-made .nupkg: the real feed is not reachable here)."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import jsonschema
import pytest

from httpserver import make_tar, validate_json
from pefactory import build_pe
from pillow_variants.build import pysdk
from pillow_variants.build.pillow import check_requires_python, expected_tag
from pillow_variants.errors import SourceError, UserError
from pillow_variants.pe import read_pe

PYCONFIG_IN = b"""#define MS_WINDOWS
#ifndef Py_GIL_DISABLED
/* #define Py_GIL_DISABLED 1 */
#endif
"""

HEADERS = {
    "Include/Python.h": b"#include <pyconfig.h>\n#include <object.h>\n",
    "Include/patchlevel.h": b'#define PY_VERSION "3.99.1"\n',
    "Include/exports.h": b"#define PyAPI_FUNC(RTYPE) Py_EXPORTED_SYMBOL RTYPE\n"
    b"#define PyAPI_DATA(RTYPE) extern Py_EXPORTED_SYMBOL RTYPE\n",
    "Include/object.h": b"""
/* PyAPI_FUNC(int) InAComment(void); */
// PyAPI_FUNC(int) InALineComment(void);
PyAPI_FUNC(PyObject *) PyObject_Repr(
    PyObject *);
PyAPI_DATA(PyTypeObject) PyType_Type;
PyAPI_DATA(int) (*PyOS_InputHook)(void);
PyAPI_DATA(char) *(*PyOS_ReadlineFunctionPointer)(FILE *, FILE *, const char *);
PyAPI_FUNC(void) _Py_NO_RETURN Py_FatalError(const char *message);
#ifdef Py_GIL_DISABLED
PyAPI_FUNC(void) _Py_DecRefShared(PyObject *);
#endif
""",
    "Include/internal/pycore_long.h": b"PyAPI_DATA(PyObject*) _PyLong_Format(PyObject *, int);\n",
}


def _orig(tmp_path: Path, pyconfig: bytes = PYCONFIG_IN) -> Path:
    files = {f"Python-3.99.1/{k}": v for k, v in HEADERS.items()}
    files["Python-3.99.1/PC/pyconfig.h.in"] = pyconfig
    orig = tmp_path / "python3.99_3.99.1.orig.tar.xz"
    orig.write_bytes(make_tar(files, mode="w:xz"))
    return orig


def test_split_target() -> None:
    assert pysdk.split_target("3.14") == ("3.14", False)
    assert pysdk.split_target("3.14t") == ("3.14", True)
    for bad in ("3.14T", "314t", "3.14tt", "3"):
        with pytest.raises(UserError):
            pysdk.split_target(bad)


def test_header_exports_functions_data_and_qualifiers(tmp_path: Path) -> None:
    include = pysdk.extract_headers(_orig(tmp_path), tmp_path / "sdk")
    got = {e.name: e.data for e in pysdk.header_exports(include)}
    assert got == {
        "PyObject_Repr": False,
        "PyType_Type": True,
        "PyOS_InputHook": True,  # a function pointer variable: DATA
        "PyOS_ReadlineFunctionPointer": True,
        "Py_FatalError": False,  # not the attribute macro _Py_NO_RETURN
        "_Py_DecRefShared": False,  # every #if branch: the free-threaded build needs it
        "_PyLong_Format": False,  # declared with PyAPI_DATA, but a function
    }


def test_enable_free_threading(tmp_path: Path) -> None:
    include = pysdk.extract_headers(_orig(tmp_path), tmp_path / "sdk")
    pysdk.enable_free_threading(include / "pyconfig.h")
    text = (include / "pyconfig.h").read_text()
    assert "\n#define Py_GIL_DISABLED 1\n" in text and "/* #define Py_GIL" not in text
    old = tmp_path / "old.h"
    old.write_text("#define MS_WINDOWS\n")  # 3.12 and older: no free-threaded build
    with pytest.raises(SourceError, match="no free-threaded build"):
        pysdk.enable_free_threading(old)


@pytest.fixture
def headers_only_pins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Python 3.99: a Debian header pin and no embeddable CPython (like 3.14 and 3.15)."""
    orig = _orig(tmp_path)
    pin = pysdk.HeadersPin("3.99", "python3.99", "3.99.1-1", "sid", "3.99.1", orig.name, "0" * 64)
    monkeypatch.setattr(pysdk, "load_pins", lambda: {"3.99": pysdk.PythonPins("3.99", None, pin)})
    monkeypatch.setattr(pysdk, "fetch_headers_orig", lambda *a, **k: orig)
    return tmp_path / "cache"


@pytest.mark.parametrize("target", ["3.99", "3.99t"])
def test_sdk_from_headers_only(target: str, headers_only_pins: Path) -> None:
    sdk = pysdk.prepare_sdk(target, cache_dir=headers_only_pins, progress=lambda m: None)
    ft = target.endswith("t")
    nodot = "399t" if ft else "399"
    assert (sdk.dll, sdk.abi_tag, sdk.python_tag) == (f"python{nodot}.dll", f"cp{nodot}", "cp399")
    assert sdk.ext_suffix == f".cp{nodot}-win_amd64.pyd" and sdk.free_threaded is ft
    assert expected_tag(sdk) == f"cp399-cp{nodot}-win_amd64"
    assert sdk.sysconfig_vars()["Py_GIL_DISABLED"] == int(ft)
    assert sdk.sysconfig_vars()["VERSION"] == "399"
    assert not sdk.runtime and sdk.sources["dlls"]["kind"] == "headers"
    reason = sdk.sources["dlls"]["reason"]
    assert ("free-threaded" in reason) if ft else ("no embeddable CPython 3.99" in reason)
    pyconfig = (Path(sdk.include_dirs[0]) / "pyconfig.h").read_text()
    assert ("\n#define Py_GIL_DISABLED 1\n" in pyconfig) is ft
    definition = (Path(sdk.library_dirs[0]) / f"python{nodot}.def").read_text()
    assert definition.startswith(f"LIBRARY python{nodot}.dll\nEXPORTS\n")
    assert "    PyType_Type DATA\n" in definition and "    PyObject_Repr\n" in definition
    assert sdk.sources["dlls"]["def_sha256"] == hashlib.sha256(definition.encode()).hexdigest()
    lib = Path(sdk.library_dirs[0]) / f"libpython{nodot}.a"
    assert f"python{nodot}.dll".encode() in lib.read_bytes()  # the import names the t DLL
    assert sdk.limited_api_libraries == []
    validate_json(
        {"schema": "pillow-variants-sdk/1", "sdks": [sdk.to_dict()]}, "sdk-prepare.schema.json"
    )
    no_reason = sdk.to_dict()
    del no_reason["sources"]["dlls"]["reason"]  # a headers-kind SDK must say why
    with pytest.raises(jsonschema.ValidationError):
        validate_json(
            {"schema": "pillow-variants-sdk/1", "sdks": [no_reason]}, "sdk-prepare.schema.json"
        )
    # a second call reuses it; the GIL and free-threaded SDKs live apart
    said: list[str] = []
    assert pysdk.prepare_sdk(target, cache_dir=headers_only_pins, progress=said.append) == sdk
    assert said == [f"SDK for Python {target} up to date in {sdk.root}"]
    assert Path(sdk.root).name == f"cp{nodot}"


def test_free_threaded_target_passes_requires_python(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nrequires-python = ">=3.11"\n')
    check_requires_python(tmp_path, "3.14t")
    with pytest.raises(UserError, match="cannot build for 3.10t"):
        check_requires_python(tmp_path, "3.10t")


def test_no_headers_is_a_skip_reason_about_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pysdk, "load_pins", lambda: {})
    with pytest.raises(UserError, match="no CPython 3.12 headers reachable here"):
        pysdk.prepare_sdk("3.12", progress=lambda m: None)


# --------------------------------------------------------------------------------------------
# NuGet


def _nupkg(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_extract_nupkg_pinned_and_laid_out_like_an_installation(tmp_path: Path) -> None:
    dll = build_pe(tmp_path / "pe", "python314t.dll", exports=["Py_Initialize"]).read_bytes()
    data = _nupkg(
        {
            "python-freethreaded.nuspec": b"<package/>",
            "tools/python314t.dll": dll,
            "tools/include/Python.h": b"/* */\n",
            "tools/libs/python314t.lib": b"!<arch>\n",
        }
    )
    nupkg = tmp_path / "python-freethreaded.3.14.0.nupkg"
    nupkg.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    assert pysdk.nuget_package(True) == "python-freethreaded"
    assert pysdk.nuget_package(False) == "python"
    tools = pysdk.extract_nupkg(nupkg, digest, tmp_path / "x")
    assert tools == tmp_path / "x" / "tools"
    assert read_pe((tools / "python314t.dll").read_bytes(), "python314t.dll").is_dll
    # the extracted package is what --from-dir accepts for 3.14t
    assert pysdk._from_dir_layout(tmp_path / "x", "3.14t") == tools
    with pytest.raises(SourceError, match="does not match the pinned"):
        pysdk.extract_nupkg(nupkg, "0" * 64, tmp_path / "y")


@pytest.mark.parametrize(
    ("members", "error"),
    [
        ({"../evil.dll": b"x"}, "unsafe path"),
        ({"/abs.dll": b"x"}, "unsafe path"),
        ({"content/readme.txt": b"x"}, "no tools/"),
    ],
)
def test_extract_nupkg_refuses(members: dict[str, bytes], error: str, tmp_path: Path) -> None:
    data = _nupkg(members)
    nupkg = tmp_path / "p.nupkg"
    nupkg.write_bytes(data)
    with pytest.raises(SourceError, match=error):
        pysdk.extract_nupkg(nupkg, hashlib.sha256(data).hexdigest(), tmp_path / "out")
    assert not (tmp_path / "evil.dll").exists()


def test_extract_nupkg_not_a_zip(tmp_path: Path) -> None:
    nupkg = tmp_path / "p.nupkg"
    nupkg.write_bytes(b"not a zip")
    with pytest.raises(SourceError, match="not a NuGet package"):
        pysdk.extract_nupkg(nupkg, hashlib.sha256(b"not a zip").hexdigest(), tmp_path / "o")


def test_cli_prepare_from_nupkg_extracts_then_verifies_signatures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The package is hash-checked, extracted into the cache and then treated like any Windows
    CPython: its (here unsigned, self-made) DLL is refused by the Authenticode check."""
    from pillow_variants.cli import main

    dll = build_pe(tmp_path / "pe", "python314t.dll", exports=["Py_Initialize"]).read_bytes()
    data = _nupkg({"tools/python314t.dll": dll, "tools/include/Python.h": b"\n"})
    nupkg = tmp_path / "python-freethreaded.3.14.0.nupkg"
    nupkg.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    cache = tmp_path / "cache"
    args = ["sdk", "prepare", "3.14t", "--cache-dir", str(cache), "--from-nupkg", str(nupkg)]
    assert main([*args, "--nupkg-sha256", "0" * 64]) == 2
    assert "does not match the pinned" in capsys.readouterr().err
    assert main(args) == 2
    assert "needs --nupkg-sha256" in capsys.readouterr().err
    assert main([*args, "--nupkg-sha256", digest]) == 2
    assert "Authenticode" in capsys.readouterr().err
    assert (cache / "sdk" / "nuget" / digest / "tools" / "python314t.dll").read_bytes() == dll
