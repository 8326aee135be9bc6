"""The shipped surface profiles: loadable, provenance complete, models behave as documented."""

from __future__ import annotations

import pytest

from pillow_variants.audit.surface import builtin_surfaces, load_surface
from pillow_variants.cli import main
from pillow_variants.pe import ImportedFunction


def test_builtin_profiles() -> None:
    assert builtin_surfaces() == ["nanoserver-ltsc2022", "servercore-ltsc2022"]
    assert load_surface("nanoserver-ltsc2022").kind == "derived"
    assert load_surface("servercore-ltsc2022").kind == "model"
    assert load_surface("nanoserver-ltsc2022") is load_surface("nanoserver-ltsc2022")  # cached


@pytest.mark.parametrize("name", ["nanoserver-ltsc2022", "servercore-ltsc2022"])
def test_every_entry_names_existing_sources(name: str) -> None:
    s = load_surface(name)
    models = [*s.dlls.values(), *s.contracts.values()]
    assert models
    for m in models:
        assert m.sources, f"{m.name}: no provenance"
        cited = set(m.sources)
        for srcs in [*m.present_evidence.values(), *m.absent_evidence.values()]:
            cited.update(srcs)
        for rule in m.rules:
            assert rule.reason and rule.sources, f"{m.name}: rule {rule.id} without provenance"
            cited.update(rule.sources)
        assert cited <= set(s.sources), f"{m.name}: unknown source ids {cited - set(s.sources)}"


def _present(surface: str, dll: str, fn: str) -> bool | None:
    model, res = load_surface(surface).find_dll(dll)
    return None if model is None else model.lookup(ImportedFunction(fn)).present


def test_nanoserver_model_follows_the_evidence() -> None:
    s = "nanoserver-ltsc2022"
    assert _present(s, "KERNEL32.dll", "GetNumaProcessorNode") is False  # git-for-windows #4052
    assert _present(s, "KERNEL32.dll", "CopyFileA") is False  # NanoServerApiScan
    assert _present(s, "KERNEL32.dll", "CreateEventA") is True  # imported by python313.dll
    assert _present(s, "KERNEL32.dll", "CreateFileW") is True
    assert _present(s, "USER32.dll", "MessageBoxW") is True  # libcrypto-3.dll imports it
    assert _present(s, "USER32.dll", "CreateWindowExA") is False
    assert _present(s, "api-ms-win-core-heap-obsolete-l1-1-0.dll", "GlobalLock") is False
    assert _present(s, "api-ms-win-crt-stdio-l1-1-0.dll", "fopen") is True
    assert _present(s, "gdiplus.dll", "GdipAlloc") is None  # absent DLL
    assert _present(s, "vcruntime140.dll", "memcpy") is None  # no VC++ redist in the image
    assert _present(s, "someones-private.dll", "f") is None


def test_nanoserver_evidence_is_weighed_by_image() -> None:
    """Working binaries observed on 1809/ltsc2022 outrank inference rules and pre-1809
    NanoServerApiScan reports; what they did not observe stays an inference."""
    model, _ = load_surface("nanoserver-ltsc2022").find_dll("KERNEL32.dll")
    assert model is not None
    seen = model.lookup(ImportedFunction("Process32First"))  # python311.dll imports it
    assert seen.present and seen.basis == "evidence"
    assert "rkttu-python-nanoserver" in seen.sources
    scan = model.lookup(ImportedFunction("CopyFileA"))
    assert not scan.present and scan.basis == "rule:pre1809-scan"
    numa = model.lookup(ImportedFunction("GetNumaProcessorNode"))  # seen on ltsc2022
    assert not numa.present and numa.basis == "evidence"
    sources = load_surface("nanoserver-ltsc2022").sources
    assert sources["cpython-stdlib-inferred"].startswith("[inferred: ")
    assert sources["rkttu-python-nanoserver"].startswith("[direct: ")
    assert sources["nanoserverapiscan"].startswith("[pre-1809 Nano Server")


def test_servercore_model_accepts_system_functions_only() -> None:
    s = "servercore-ltsc2022"
    assert _present(s, "USER32.dll", "CreateWindowExA") is True
    assert _present(s, "gdi32.dll", "AnyNameAtAll") is True
    assert _present(s, "ext-ms-win-foo-l1-1-0.dll", "X") is True
    assert _present(s, "msvcp140.dll", "x") is None
    assert _present(s, "libpng16.dll", "png_read") is None


def test_surface_show_and_list(capsys) -> None:
    assert main(["surface", "list"]) == 0
    assert "nanoserver-ltsc2022" in capsys.readouterr().out
    assert main(["surface", "show", "nanoserver-ltsc2022"]) == 0
    out = capsys.readouterr().out
    assert "(derived)" in out and "[pillow-8249]" in out and "DERIVED from public evidence" in out
    assert main(["surface", "show", "nanoserver-ltsc2022", "--dll", "kernel32.dll"]) == 0
    out = capsys.readouterr().out
    assert "missing  GetNumaProcessorNode  [git-for-windows-4052]" in out
    assert "rule legacy-contract" in out
    assert main(["surface", "show", "nanoserver-ltsc2022", "--dll", "nope.dll"]) == 2
