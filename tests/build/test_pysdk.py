"""pysdk without the network: pins, header extraction from a CPython-shaped
tarball, .def writing from a real (zig-built) DLL's exports, import libraries, refusals."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from httpserver import make_tar
from pillow_variants.build import pysdk
from pillow_variants.cli import main
from pillow_variants.errors import SourceError, ToolchainError
from pillow_variants.toolchains.zig import zig_command


def test_pins_are_complete() -> None:
    assert pysdk.embed_versions() == ["3.11", "3.12", "3.13"]
    for py, pins in pysdk.load_pins().items():
        if pins.embed:
            assert re.fullmatch(r"[0-9a-f]{64}", pins.embed.sha256)
            assert pins.embed.member_prefix == f"cp{py.replace('.', '')}/"
            assert pins.embed.cpython.startswith(py + ".")
            assert f"python{py.replace('.', '')}.dll" in pins.embed.files
        if pins.headers:
            assert re.fullmatch(r"[0-9a-f]{64}", pins.headers.sha256)
            assert pins.headers.orig.startswith(
                f"python{py}_{pins.headers.upstream_version}.orig.tar"
            )
    assert pysdk.load_pins()["3.13"].headers is not None


def test_expected_signer() -> None:
    assert pysdk.expected_signer("python313.dll") == "Python Software Foundation"
    assert pysdk.expected_signer("VCRUNTIME140_1.dll") == "Microsoft Corporation"


def test_extract_headers_takes_include_and_windows_pyconfig(tmp_path: Path) -> None:
    orig = tmp_path / "python3.99_3.99.1.orig.tar.xz"
    files = {
        "Python-3.99.1/Include/Python.h": b"#include <pyconfig.h>\n",
        "Python-3.99.1/Include/cpython/object.h": b"/* cpython */\n",
        "Python-3.99.1/Include/patchlevel.h": b'#define PY_VERSION "3.99.1"\n',
        "Python-3.99.1/PC/pyconfig.h.in": b"#define MS_WINDOWS\n",
        "Python-3.99.1/pyconfig.h.in": b"/* the POSIX one: must not be used */\n",
        "Python-3.99.1/Modules/main.c": b"int main;\n",
    }
    orig.write_bytes(make_tar(files, mode="w:xz"))
    include = pysdk.extract_headers(orig, tmp_path / "sdk")
    assert sorted(p.relative_to(include).as_posix() for p in include.rglob("*.h")) == [
        "Python.h",
        "cpython/object.h",
        "patchlevel.h",
        "pyconfig.h",
    ]
    assert (include / "pyconfig.h").read_bytes() == b"#define MS_WINDOWS\n"
    assert pysdk._header_version(include) == "3.99.1"


def test_extract_headers_refuses_non_cpython(tmp_path: Path) -> None:
    orig = tmp_path / "x.orig.tar.xz"
    orig.write_bytes(make_tar({"x-1/Include/foo.h": b""}, mode="w:xz"))
    with pytest.raises(SourceError, match="not a CPython source tarball"):
        pysdk.extract_headers(orig, tmp_path / "sdk")


@pytest.fixture(scope="module")
def zig_dll(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real Windows DLL exporting a function and a variable (built with zig)."""
    d = tmp_path_factory.mktemp("dll")
    (d / "pv.c").write_text(
        "__declspec(dllexport) int pv_counter = 3;\n"
        '__declspec(dllexport) const char pv_name[] = "pv";\n'
        "__declspec(dllexport) int pv_add(int a, int b) { return a + b + pv_counter; }\n"
    )
    cmd = zig_command() + [
        "cc",
        "-target",
        "x86_64-windows-gnu",
        "-shared",
        "-o",
        "pv.dll",
        "pv.c",
    ]
    subprocess.run(cmd, cwd=d, check=True, capture_output=True)
    return d / "pv.dll"


def test_dll_exports_and_def(zig_dll: Path) -> None:
    exports = {e.name: e for e in pysdk.dll_exports(zig_dll)}
    assert exports["pv_add"].data is False
    assert exports["pv_counter"].data is True and exports["pv_name"].data is True
    text = pysdk.def_text("pv.dll", exports.values())
    assert text.splitlines()[:2] == ["LIBRARY pv.dll", "EXPORTS"]
    assert "    pv_add\n" in text and "    pv_counter DATA\n" in text


def test_forwarders_take_their_kind_from_the_target() -> None:
    target = {"PyExc_TypeError": pysdk.Export("PyExc_TypeError", True)}
    fwd = pysdk.Export(
        "PyExc_TypeError", target["PyExc_TypeError"].data, "python313.PyExc_TypeError"
    )
    assert "PyExc_TypeError DATA" in pysdk.def_text("python3.dll", [fwd])


def test_make_import_library(zig_dll: Path, tmp_path: Path) -> None:
    d = tmp_path / "pv.def"
    d.write_text(pysdk.def_text("pv.dll", pysdk.dll_exports(zig_dll)))
    lib = tmp_path / "libpv.a"
    pysdk.make_import_library(d, lib)
    data = lib.read_bytes()
    assert data.startswith(b"!<arch>\n") and b"pv.dll" in data and b"__imp_pv_counter" in data


def test_unsigned_dll_is_refused(zig_dll: Path) -> None:
    with pytest.raises(pysdk.SignatureError, match="Authenticode verification failed"):
        pysdk.check_signature(zig_dll)


def test_not_a_pe(tmp_path: Path) -> None:
    f = tmp_path / "x.dll"
    f.write_bytes(b"not a PE at all")
    with pytest.raises(SourceError, match="not a PE file"):
        pysdk.dll_exports(f)
    assert not pysdk.is_pe(f)


def test_zig_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ToolchainError, match="pip install ziglang"):
        zig_command()


def test_sdk_description_round_trips(tmp_path: Path) -> None:
    sdk = pysdk.WindowsSDK(
        python="3.13",
        root=str(tmp_path),
        include_dirs=[str(tmp_path / "include")],
        library_dirs=[str(tmp_path / "libs")],
        libraries=["python313"],
        limited_api_libraries=["python3"],
        dll="python313.dll",
        dll_version="3.13.2",
        headers_version="3.13.5",
        ext_suffix=".cp313-win_amd64.pyd",
        soabi="cp313-win_amd64",
        platform_tag="win_amd64",
        abi_tag="cp313",
        sources={},
    )
    (tmp_path / "sdk.json").write_text(json.dumps(sdk.to_dict()))
    assert pysdk.load_sdk(tmp_path) == sdk
    v = sdk.sysconfig_vars()
    assert v["EXT_SUFFIX"] == ".cp313-win_amd64.pyd" and v["SOABI"] == "cp313-win_amd64"
    assert v["INCLUDEPY"] == str(tmp_path / "include") and v["VERSION"] == "313"


def test_sdk_cache_dir_follows_the_project_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PILLOW_VARIANTS_CACHE", str(tmp_path))
    assert pysdk.sdk_cache_dir() == tmp_path / "sdk"


@pytest.mark.parametrize(
    ("python", "message"),
    [
        ("3.9", "Python 3.9: no CPython 3.9 headers reachable here"),
        ("3.11t", "no free-threaded build before 3.13"),
        ("3.13.1", "must look like 3.13"),
    ],
)
def test_cli_prepare_refuses_unsupported_versions(
    python: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sdk", "prepare", python, "--cache-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and re.search(message, err)
    assert not (tmp_path / "sdk" / "downloads").exists()  # refused before downloading anything


def test_cli_show_requires_a_prepared_sdk(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sdk", "show", str(tmp_path)]) == 2
    assert "not a prepared SDK" in capsys.readouterr().err
