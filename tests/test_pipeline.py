"""End to end on Linux: ``build all`` for the nanoserver recipe (cp313 and cp311) and for the
upstream recipe (cp313), from Debian's upstream trees, with the zig toolchain, the audit gate and
the Wine smoke test in python.org's CPython.

The upstream-variant wheel is then compared with the official PyPI wheel of the same version:
the audit must flag the same modules and functions, and each known difference is named below.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from httpserver import validate_json
from pillow_variants.audit.engine import audit_paths
from pillow_variants.cli import main
from pillow_variants.pipeline import PipelineReport, build_all
from pillow_variants.recipe.model import load_recipe
from pillow_variants.wheeltools import MANIFEST_NAME

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.network, pytest.mark.wine]


def _run(recipe: str, pythons: list[str], out: Path, sources, cache: Path) -> PipelineReport:
    return build_all(
        load_recipe(ROOT / "recipes" / recipe),
        pythons=pythons,
        out_dir=out,
        deps_prefix=out.parent / "deps",
        overrides=dict(sources),
        cache_dir=cache,
        jobs=2,
    )


EPOCH = "1700000000"  # SOURCE_DATE_EPOCH for the reproducibility check


@pytest.fixture(scope="module")
def epoch():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOURCE_DATE_EPOCH", EPOCH)
        yield EPOCH


@pytest.fixture(scope="module")
def nanoserver(tmp_path_factory, debian_sources, zig_cache, epoch) -> PipelineReport:
    out = tmp_path_factory.mktemp("nanoserver") / "dist"
    return _run("nanoserver.toml", ["3.13", "3.11"], out, debian_sources, zig_cache)


@pytest.fixture(scope="module")
def upstream(tmp_path_factory, debian_sources, zig_cache) -> PipelineReport:
    out = tmp_path_factory.mktemp("upstream") / "dist"
    return _run("upstream.toml", ["3.13"], out, debian_sources, zig_cache)


@pytest.fixture(scope="module")
def official_wheel(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("official")
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary",
         ":all:", "--platform", "win_amd64", "--python-version", "3.13", "pillow==13.0.0",
         "-d", str(dest)],
        check=True,
    )  # fmt: skip
    return dest / "pillow-13.0.0-cp313-cp313-win_amd64.whl"


def _manifest(wheel: Path) -> dict:
    with zipfile.ZipFile(wheel) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith(".dist-info/" + MANIFEST_NAME)]
        return json.loads(zf.read(name))


def test_nanoserver_wheels_pass_every_rung_that_runs_here(nanoserver: PipelineReport) -> None:
    assert nanoserver.exit_code == 0, nanoserver.table()
    names = sorted(o.wheel.name for o in nanoserver.outcomes if o.wheel)
    assert names == [
        "pillow-13.0.0+nanoserver-cp311-cp311-win_amd64.whl",
        "pillow-13.0.0+nanoserver-cp313-cp313-win_amd64.whl",
    ]
    for outcome in nanoserver.outcomes:
        assert outcome.status == "built"
        manifest = _manifest(outcome.wheel)
        assert {r: e["passed"] for r, e in manifest["rungs"].items()} == {
            "strict": True,
            "surface": True,
            "wine": True,
            "wine-nogui": True,  # imports and works with every GUI DLL disabled in Wine
        }  # never a container rung: it did not run here (nor suite: build all --suite)
        assert "user32.dll" in manifest["rungs"]["wine-nogui"]["disabled_dlls"]
        assert manifest["recipe"]["wheel_version"] == "13.0.0+nanoserver"
        assert [p["name"] for p in manifest["patches"]["pillow"]][
            -1
        ] == "0004-setup-gdi-disable.patch"
        assert manifest["sources"]["libtiff"]["local"] is True  # Debian tree via --source
        # the wheel carries the SBOM where PEP 770 puts it
        with zipfile.ZipFile(outcome.wheel) as zf:
            assert any("/sboms/" in n and n.endswith(".cdx.json") for n in zf.namelist())


def test_nanoserver_audit_cli_is_clean(nanoserver: PipelineReport) -> None:
    wheels = [str(o.wheel) for o in nanoserver.outcomes]
    proc = subprocess.run(
        [sys.executable, "-m", "pillow_variants", "audit", *wheels, "--policy", "both",
         "--surface", "nanoserver-ltsc2022"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_summary_table_names_each_wheel_and_verdict(nanoserver: PipelineReport) -> None:
    table = nanoserver.table().splitlines()
    assert table[0].split() == [
        "python", "wheel", "size", "strict", "surface", "wine", "wine-nogui", "status",
    ]  # fmt: skip
    assert len(table) == 3 and all("pass" in row and "built" in row for row in table[1:])


def _strict_findings(wheel: Path) -> set[tuple[str, str, str]]:
    """(module, dll, function) the strict policy flags, module names without their tag."""
    report = audit_paths([wheel], policy="strict").to_dict()
    found = set()
    for module in report["targets"][0]["modules"]:
        name = Path(module["path"]).name.split(".")[0]
        for f in module["findings"]:
            found.add((name, f["dll"].lower(), f.get("function") or ""))
    return found


# Differences between our zig build of the upstream recipe and the official MSVC wheel, each
# with its reason. Anything else the audit flags differently fails the test.
# None since every zig compile has a section per function (-ffunction-sections, as MSVC's /O2
# implies /Gy): the link now drops libtiff's unreferenced TIFFOpen (CreateFileA) the way MSVC's
# /OPT:REF does, where it used to keep the whole tif_win32.c object.
KNOWN_ONLY_OURS: set[tuple[str, str, str]] = set()


def test_upstream_variant_flags_what_the_official_wheel_flags(
    upstream: PipelineReport, official_wheel: Path
) -> None:
    (outcome,) = upstream.outcomes
    assert outcome.wheel and outcome.wheel.name == "pillow-13.0.0-cp313-cp313-win_amd64.whl"
    # the upstream recipe gates on servercore (where both wheels load), and the smoke test ran
    assert outcome.rungs["surface"]["passed"] and outcome.rungs["wine"]["passed"]
    ours = _strict_findings(outcome.wheel)
    official = _strict_findings(official_wheel)
    assert ours, "the unpatched build must reproduce the hostile imports"
    assert ours - KNOWN_ONLY_OURS == official, {
        "only ours": ours - official - KNOWN_ONLY_OURS,
        "only official": official - ours,
    }
    assert ("_imaging", "kernel32.dll", "CreateFileA") not in ours  # dropped, as MSVC drops it
    # the modules that would fail on nanoserver are the same three
    failing = {
        Path(m["path"]).name.split(".")[0]
        for m in audit_paths([outcome.wheel], policy="surface").to_dict()["targets"][0]["modules"]
        if not m["load"]["ok"]
    }
    assert failing == {"_imaging", "_imagingcms", "_imagingft"}


def test_compare_official_vs_nanoserver_lists_what_was_removed(
    nanoserver: PipelineReport, official_wheel: Path
) -> None:
    from pillow_variants.release.compare import compare_wheels

    ours = next(o.wheel for o in nanoserver.outcomes if o.python == "3.13")
    report = compare_wheels(official_wheel, ours)
    removed = report["imports"]["PIL._imaging"]["only_a"]
    assert {"GetDC", "CreateWindowExA", "OpenClipboard"} <= set(removed["user32.dll"])
    assert {"BitBlt", "CreateDIBSection"} <= set(removed["gdi32.dll"])
    assert {"CreateFileMappingA", "GlobalLock", "GlobalUnlock"} <= set(removed["kernel32.dll"])
    assert "GetICMProfileA" in report["imports"]["PIL._imagingcms"]["only_a"]["gdi32.dll"]
    assert {"CreateFileA", "LoadLibraryA"} <= set(
        report["imports"]["PIL._imagingft"]["only_a"]["kernel32.dll"]
    )
    assert report["modules"]["only_a"] == []  # _avif included: libavif + codecs built with zig
    assert report["manifest"]  # ours carries a build manifest, the official wheel none


def test_same_inputs_and_source_date_epoch_give_a_byte_identical_wheel(
    nanoserver: PipelineReport, tmp_path: Path, debian_sources, zig_cache, epoch
) -> None:
    from pillow_variants.hashing import file_sha256

    first = next(o.wheel for o in nanoserver.outcomes if o.python == "3.13")
    again = _run("nanoserver.toml", ["3.13"], tmp_path / "dist", debian_sources, zig_cache)
    (outcome,) = again.outcomes
    assert outcome.wheel.name == first.name
    assert file_sha256(outcome.wheel) == file_sha256(first)


def test_free_threaded_wheel_from_a_header_derived_import_library(
    nanoserver: PipelineReport, tmp_path: Path, debian_sources, zig_cache
) -> None:
    """The path every 3.XYt tag takes (and 3.14/3.15 without a reachable DLL), on the version
    whose headers every machine here reaches: cp313t. One extra wheel build, warm dependencies.
    Upstream publishes no cp313t; this checks the free-threaded SDK, tags and manifest."""
    import dataclasses

    from pillow_variants.pe import read_pe

    recipe = load_recipe(ROOT / "recipes" / "nanoserver.toml")
    recipe = dataclasses.replace(recipe, python=[*recipe.python, "3.13t"])
    report = build_all(
        recipe,
        pythons=["3.13t"],
        out_dir=tmp_path / "dist",
        deps_prefix=next(o.wheel for o in nanoserver.outcomes).parent.parent / "deps",
        overrides=dict(debian_sources),
        cache_dir=zig_cache,
        jobs=2,
    )
    (outcome,) = report.outcomes
    assert outcome.status == "built" and "wine not run" in outcome.reason, report.table()
    assert outcome.wheel.name == "pillow-13.0.0+nanoserver-cp313-cp313t-win_amd64.whl"
    assert report.exit_code == 0
    manifest = _manifest(outcome.wheel)
    # audited (strict, surface), never a Wine pass: there is no python313t.dll here
    assert {r: e["passed"] for r, e in manifest["rungs"].items()} == {
        "strict": True,
        "surface": True,
    }
    assert "python313t.dll is not reachable" in manifest["not_run"]["wine"]
    assert manifest["python_sdk"]["dlls"]["kind"] == "headers"
    assert manifest["python_sdk"]["headers"]["free_threaded"] is True
    with zipfile.ZipFile(outcome.wheel) as zf:
        pyds = [n for n in zf.namelist() if n.endswith(".pyd")]
        assert pyds and all(n.endswith(".cp313t-win_amd64.pyd") for n in pyds)
        imaging = zf.read(next(n for n in pyds if "/_imaging." in n))
    dlls = [d.name.lower() for d in read_pe(imaging, "_imaging.pyd").imports]
    assert "python313t.dll" in dlls and "python313.dll" not in dlls
    assert "wine not run" in report.table()


def test_suite_on_a_few_files_differs_only_by_removed_features(
    nanoserver: PipelineReport, official_wheel: Path, zig_cache: Path, capsys
) -> None:
    """A small real run of the suite rung (two Tests files, both wheels under Wine): the WMF
    tests change, explained by the removed wmf_emf feature; BMP's tests do not change. The whole
    suite runs in ``nox -s suite``."""
    ours = next(o.wheel for o in nanoserver.outcomes if o.python == "3.13")
    rc = main([
        "verify", "suite", str(ours), "--recipe", str(ROOT / "recipes" / "nanoserver.toml"),
        "--official", str(official_wheel), "--cache-dir", str(zig_cache), "--json",
        "--pytest-arg=Tests/test_file_wmf.py", "--pytest-arg=Tests/test_file_bmp.py",
    ])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    validate_json(out, "verify-suite.schema.json")
    (verdict,) = out["verdicts"]
    assert rc == 0, verdict["reason"]
    assert verdict["official"]["counts"]["passed"] > verdict["counts"]["passed"] > 0
    diffs = verdict["differences"]
    assert diffs and {d["feature"] for d in diffs} == {"wmf_emf"}
    assert all(d["test"].startswith("Tests/test_file_wmf.py::") for d in diffs)
    assert all(d["official"] == "passed" and d["ours"] in ("failed", "skipped") for d in diffs)
