"""``check_imports.py`` (package data, as installed): its PE import parser against pefile on
real wheels, and the loader checks run where they run for real -- inside python.org's
embeddable CPython under Wine: the official Pillow 13.0.0 cp313 wheel resolves completely, and
a zig-built DLL importing a function kernel32 does not have (and a DLL that does not exist) is
named exactly."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pefile
import pytest

from pillow_variants.build import pysdk
from pillow_variants.toolchains.zig import zig_command
from pillow_variants.verify import ladder, wine

SCRIPT = ladder.payload_file("check_imports.py")


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_imports", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_imports"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


ci = _load_script()


def _pefile_imports(data: bytes) -> list[tuple[str, list[str | int], bool]]:
    pe = pefile.PE(data=data)
    out = []
    for attr, delay in (("DIRECTORY_ENTRY_IMPORT", False), ("DIRECTORY_ENTRY_DELAY_IMPORT", True)):
        for entry in getattr(pe, attr, []):
            names = [i.name.decode() if i.name else i.ordinal for i in entry.imports]
            out.append((entry.dll.decode(), names, delay))
    return out


# --------------------------------------------------------------------------------------------
# The parser (any host)


@pytest.mark.network
def test_parser_agrees_with_pefile_on_every_pe_of_the_official_wheel(official_wheel: Path) -> None:
    with zipfile.ZipFile(official_wheel) as zf:
        pes = [n for n in zf.namelist() if n.lower().endswith(ci.PE_SUFFIXES)]
        assert len(pes) >= 8
        for name in pes:
            data = zf.read(name)
            mine = [(d.dll, d.functions, d.delay) for d in ci.PEImage(data, name).imports()]
            assert mine == _pefile_imports(data), name


@pytest.fixture(scope="module")
def probe_dlls(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two DLLs built with zig: one importing ``kernel32.dll!PvNoSuchFunction`` (plus a real
    GetTickCount), one importing from ``pv-no-such-library.dll``. The import libraries are made
    from .def files with ``zig dlltool``, so the linker accepts names no Windows exports."""
    out = tmp_path_factory.mktemp("probe")
    zig = zig_command()
    sources = {
        "missing-function": (
            "kernel32.dll",
            "PvNoSuchFunction",
            "__declspec(dllimport) unsigned long __stdcall GetTickCount(void);\n"
            "__declspec(dllexport) int pv_probe(void)"
            " { return PvNoSuchFunction() + (int)GetTickCount(); }\n",
        ),
        "missing-library": (
            "pv-no-such-library.dll",
            "PvAlsoMissing",
            "__declspec(dllexport) int pv_probe(void) { return PvAlsoMissing(); }\n",
        ),
    }
    for stem, (dll, function, body) in sources.items():
        (out / f"{stem}.def").write_text(f"LIBRARY {dll}\nEXPORTS\n{function}\n")
        (out / f"{stem}.c").write_text(
            f"__declspec(dllimport) int __stdcall {function}(void);\n{body}"
        )
        lib = out / f"lib{stem}.a"
        subprocess.run(
            [
                *zig,
                "dlltool",
                "-m",
                pysdk.ZIG_MACHINE,
                "-d",
                str(out / f"{stem}.def"),
                "-l",
                str(lib),
            ],
            check=True,
            capture_output=True,
        )
        cmd = [*zig, "cc", "-target", "x86_64-windows-gnu", "-shared", "-Os", "-s"]
        cmd += ["-o", str(out / "dlls" / f"{stem}.dll"), str(out / f"{stem}.c"), str(lib)]
        (out / "dlls").mkdir(exist_ok=True)
        subprocess.run(cmd, check=True, capture_output=True, cwd=out)
    for leftover in (out / "dlls").glob("*.lib"):
        leftover.unlink()
    return out / "dlls"


def test_parser_agrees_with_pefile_on_zig_dlls(probe_dlls: Path) -> None:
    for dll in sorted(probe_dlls.glob("*.dll")):
        data = dll.read_bytes()
        mine = [(d.dll, d.functions, d.delay) for d in ci.PEImage(data, dll.name).imports()]
        assert mine == _pefile_imports(data)
    imports = ci.PEImage((probe_dlls / "missing-function.dll").read_bytes()).imports()
    kernel32 = [d for d in imports if d.dll.lower() == "kernel32.dll"]
    assert kernel32 and "PvNoSuchFunction" in kernel32[0].functions


def test_parse_only_lists_imports_as_json(
    probe_dlls: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ci.main(["--parse-only", str(probe_dlls)]) == 0
    listing = json.loads(capsys.readouterr().out)["imports"]
    assert sorted(Path(p).name for p in listing) == ["missing-function.dll", "missing-library.dll"]
    lib = next(v for k, v in listing.items() if k.endswith("missing-library.dll"))
    assert {"dll": "pv-no-such-library.dll", "functions": ["PvAlsoMissing"], "delay": False} in lib


def test_not_a_pe_and_truncated_files_are_refused(tmp_path: Path, probe_dlls: Path) -> None:
    with pytest.raises(ci.PEFormatError, match="no MZ header"):
        ci.PEImage(b"\x7fELF" + bytes(100), "elf")
    data = (probe_dlls / "missing-function.dll").read_bytes()
    with pytest.raises(ci.PEFormatError):
        ci.PEImage(data[:0x100], "cut").imports()


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ci.main([str(tmp_path / "absent")]) == 2
    assert ci.main([str(tmp_path)]) == 2  # no PE files
    assert "no .pyd/.dll/.exe" in capsys.readouterr().err


@pytest.mark.skipif(sys.platform == "win32", reason="the check itself runs on Windows")
def test_resolving_needs_windows(probe_dlls: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ci.main([str(probe_dlls)]) == 2
    assert "needs Windows" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# The loader checks, under Wine, in python.org's embeddable CPython


def run_in_embedded_python(
    pristine: Path,
    work: Path,
    cache_dir: Path,
    script: Path,
    args: list[str],
    *,
    wheel: Path | None = None,
    extra: Path | None = None,
) -> wine.WineRun:
    """Run ``script`` in a fresh copy of the embeddable CPython under Wine, with ``wheel``
    installed the way the container's servercore stage installs it (unzipped into
    Lib\\site-packages, ._pth edited) and ``extra`` copied next to python.exe."""
    root = work / "python"
    shutil.copytree(pristine, root)
    pth = next(root.glob("python3*._pth"))
    pth.write_text(ladder.edit_pth(pth.read_text(encoding="utf-8")), encoding="utf-8", newline="")
    if wheel is not None:
        ladder.install_wheel(wheel, root / "Lib" / "site-packages")
    if extra is not None:
        shutil.copytree(extra, root / extra.name)
    shutil.copy2(script, root / script.name)
    prefix = pysdk.sdk_cache_dir(cache_dir).parent / "wine" / "prefix"  # the verify-wine prefix
    return wine.run(["python.exe", script.name, *args], prefix=prefix, cwd=root, timeout=600)


def _verdict(run: wine.WineRun) -> dict:
    """check_imports' verdict: its last stdout line, a JSON object."""
    lines = run.stdout.strip().splitlines()
    assert lines and lines[-1].startswith("{"), (run.stdout + run.stderr)[-2000:]
    verdict = json.loads(lines[-1])
    assert set(verdict) >= {"check_imports", "files", "imports", "missing", "delay_missing"}
    return verdict


@pytest.mark.network
@pytest.mark.wine
def test_official_wheel_imports_all_resolve_under_wine(
    official_wheel: Path, runtime: Path, cache: Path, tmp_path: Path
) -> None:
    run = run_in_embedded_python(
        runtime, tmp_path, cache, SCRIPT, ["Lib\\site-packages\\PIL"], wheel=official_wheel
    )
    verdict = _verdict(run)
    assert run.returncode == 0, run.stdout[-2000:]
    assert verdict["check_imports"] == "pass"
    assert verdict["missing"] == [] and verdict["delay_missing"] == []
    assert verdict["files"] == 8 and verdict["imports"] > 500


@pytest.mark.network
@pytest.mark.wine
def test_a_missing_function_and_a_missing_dll_are_named_under_wine(
    probe_dlls: Path, runtime: Path, cache: Path, tmp_path: Path
) -> None:
    run = run_in_embedded_python(runtime, tmp_path, cache, SCRIPT, ["dlls"], extra=probe_dlls)
    verdict = _verdict(run)
    assert run.returncode == 1
    missing = {
        (Path(m["file"].replace("\\", "/")).name, m["dll"].lower(), m["function"], m["error"])
        for m in verdict["missing"]
    }
    assert missing == {
        ("missing-function.dll", "kernel32.dll", "PvNoSuchFunction", 127),
        ("missing-library.dll", "pv-no-such-library.dll", None, 126),
    }
    assert (
        "MISSING  dlls\\missing-function.dll: KERNEL32.dll!PvNoSuchFunction (error 127)"
        in run.stdout
    )
