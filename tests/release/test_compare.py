"""compare: official wheels across Python versions, a modified copy, and build manifests."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from httpserver import validate_json
from pillow_variants.cli import main
from pillow_variants.release.compare import (
    compare_wheels,
    format_report,
    module_key,
    normalize_path,
)
from pillow_variants.wheeltools import embed_provenance, read_wheel, write_wheel
from wheelfactory import ALL_PASSED, download_official_wheel, make_wheel

PILLOW_MODULES = [
    "PIL._avif",
    "PIL._imaging",
    "PIL._imagingcms",
    "PIL._imagingft",
    "PIL._imagingmath",
    "PIL._imagingmorph",
    "PIL._imagingtk",
    "PIL._webp",
]


@pytest.fixture(scope="module")
def official(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("official")
    return {
        "13.0.0-cp313": download_official_wheel(base, "13.0.0", "3.13"),
        "12.0.0-cp311": download_official_wheel(base, "12.0.0", "3.11"),
    }


@pytest.mark.network
def test_official_wheels_across_versions_match_modules_by_name(
    official: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = official["12.0.0-cp311"], official["13.0.0-cp313"]
    rc = main(["compare", str(a), str(b), "--json"])
    report = json.loads(capsys.readouterr().out)
    validate_json(report, "compare-report.schema.json")
    assert rc == 1 and report["identical"] is False
    # Different tags (cp311 vs cp313), same modules: matched by dotted name.
    assert report["modules"] == {"only_a": [], "only_b": [], "common": PILLOW_MODULES}
    assert "PIL/_imaging.{tag}.pyd" in {c["path"] for c in report["files"]["changed"]}
    # Import-table differences, per module and DLL.
    imaging = report["imports"]["PIL._imaging"]
    assert "log2" in imaging["only_b"]["api-ms-win-crt-math-l1-1-0.dll"]
    assert "_PyArg_ParseTuple_SizeT" in imaging["only_a"]["python3X.dll"]
    assert "PyArg_ParseTuple" in report["imports"]["PIL._imagingmorph"]["only_b"]["python3X.dll"]
    # No manifest on official wheels, and the report says so; 13.0.0 ships an SBOM, 12.0.0 not.
    assert report["manifest"]["a"] is False and report["manifest"]["b"] is False
    assert "no build manifest" in report["manifest"]["note"]
    assert report["sbom"]["a"] is False and report["sbom"]["b"] is True
    assert report["sbom"]["components"]["libtiff"] == {"a": None, "b": "4.7.2"}
    assert report["sizes"]["modules"]["PIL._imaging"]["delta"] > 0


@pytest.mark.network
def test_modified_copy_shows_dropped_module_and_lost_imports(
    official: dict[str, Path], tmp_path: Path
) -> None:
    """A variant-like copy: _webp dropped, _imagingcms replaced by a module without GUI imports."""
    a = official["13.0.0-cp313"]
    files = read_wheel(a)
    del files["PIL/_webp.cp313-win_amd64.pyd"]
    files["PIL/_imagingcms.cp313-win_amd64.pyd"] = files["PIL/_imagingmath.cp313-win_amd64.pyd"]
    b = write_wheel(tmp_path / a.name, files)
    embed_provenance(b, {"format_version": 1, "rungs": ALL_PASSED}, None)

    report = compare_wheels(a, b)
    assert report["modules"]["only_a"] == ["PIL._webp"]
    assert report["modules"]["only_b"] == []
    cms = report["imports"]["PIL._imagingcms"]
    assert cms["only_a"]["user32.dll"] == ["GetDC", "ReleaseDC"]
    assert cms["only_a"]["gdi32.dll"] == ["GetICMProfileA"]
    assert report["files"]["only_a"] == ["PIL/_webp.{tag}.pyd"]
    assert "{dist-info}/pillow_variants.manifest.json" in report["files"]["only_b"]
    assert report["sizes"]["modules"]["PIL._imagingcms"]["delta"] < 0
    assert report["sizes"]["modules"]["PIL._webp"]["b"] is None
    assert report["manifest"]["a"] is False and report["manifest"]["b"] is True
    assert report["manifest"]["note"].startswith("A has no build manifest")

    text = format_report(report)
    assert "only in A: PIL._webp" in text
    assert "A only  user32.dll: GetDC, ReleaseDC" in text
    assert "A has no build manifest" in text

    # The same wheel against itself: identical, exit 0.
    assert compare_wheels(b, b)["identical"] is True
    assert main(["compare", str(b), str(b)]) == 0


def _manifest(**changes: object) -> dict:
    m = {
        "format_version": 1,
        "recipe": {"name": "nanoserver", "wheel_version": "13.0.0+nanoserver"},
        "sources": {
            "libtiff": {"component": "libtiff", "version": "4.7.2", "sha256": "aa" * 32},
            "zlib": {"component": "zlib", "version": "2.3.3", "sha256": "bb" * 32},
        },
        "patches": {
            "libtiff": [{"name": "0001-createfilemappingw.patch", "sha256": "cc" * 32}],
        },
        "toolchain": {"cc": "zig cc 0.15.2", "target": "x86_64-windows-msvc"},
        "rungs": ALL_PASSED,
    }
    m.update(changes)
    return m


def test_manifest_differences_name_sources_patches_toolchain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = make_wheel(tmp_path / "a", manifest=_manifest())
    b_manifest = _manifest(
        toolchain={"cc": "zig cc 0.17.0", "target": "x86_64-windows-msvc"},
        patches={
            "libtiff": [
                {"name": "0001-createfilemappingw.patch", "sha256": "dd" * 32},
                {"name": "0002-tiffopen-createfilew.patch", "sha256": "ee" * 32},
            ]
        },
    )
    b_manifest["sources"] = dict(b_manifest["sources"])
    b_manifest["sources"]["zlib"] = {"component": "zlib", "version": "2.3.3", "sha256": None}
    b = make_wheel(tmp_path / "b", manifest=b_manifest, tag="cp311-cp311-win_amd64")

    rc = main(["compare", str(a), str(b), "--json"])
    report = json.loads(capsys.readouterr().out)
    validate_json(report, "compare-report.schema.json")
    assert rc == 1
    diffs = {d["key"]: (d["a"], d["b"]) for d in report["manifest"]["differences"]}
    assert diffs == {
        "sources.zlib.sha256": ("bb" * 32, None),
        "patches.libtiff[0001-createfilemappingw.patch].sha256": ("cc" * 32, "dd" * 32),
        "patches.libtiff[0002-tiffopen-createfilew.patch].name": (
            None,
            "0002-tiffopen-createfilew.patch",
        ),
        "patches.libtiff[0002-tiffopen-createfilew.patch].sha256": (None, "ee" * 32),
        "toolchain.cc": ("zig cc 0.15.2", "zig cc 0.17.0"),
    }
    # sections come in a fixed order: sources, patches, toolchain
    keys = [d["key"] for d in report["manifest"]["differences"]]
    assert keys[0].startswith("sources.") and keys[-1].startswith("toolchain.")
    assert main(["compare", str(a), str(b)]) == 1
    assert "toolchain.cc: zig cc 0.15.2 → zig cc 0.17.0" in capsys.readouterr().out


def test_module_names_and_paths_are_normalised() -> None:
    assert module_key("PIL/_imaging.cp313-win_amd64.pyd") == "PIL._imaging"
    assert module_key("PIL/_imaging.pyd") == "PIL._imaging"
    assert module_key("pkg/sub/mod.abi3.so") == "pkg.sub.mod"
    assert module_key("top.cp311-win_amd64.pyd") == "top"
    assert module_key("PIL/Image.py") is None
    di = "pillow-13.0.0.dist-info"
    assert normalize_path(f"{di}/RECORD", di) == "{dist-info}/RECORD"
    assert normalize_path("PIL/_webp.cp311-win_amd64.pyd", di) == "PIL/_webp.{tag}.pyd"
    assert normalize_path("pillow-13.0.0.data/scripts/x", di) == "{data}/scripts/x"


def test_bad_wheels_are_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = make_wheel(tmp_path)
    assert main(["compare", str(good), str(tmp_path / "missing-1.0-py3-none-any.whl")]) == 2
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "pillow-1.0-py3-none-any.whl"
    bad.write_bytes(b"junk")
    assert main(["compare", str(good), str(bad)]) == 2
    assert "not a readable wheel" in capsys.readouterr().err
    with zipfile.ZipFile(tmp_path / "pillow-2.0-py3-none-any.whl", "w") as zf:
        zf.writestr("pillow-2.0.dist-info/pillow_variants.manifest.json", "{not json")
    assert main(["compare", str(good), str(tmp_path / "pillow-2.0-py3-none-any.whl")]) == 2
    assert "not valid JSON" in capsys.readouterr().err
