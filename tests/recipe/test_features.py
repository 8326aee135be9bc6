"""The feature report: statuses from the recipes' [features] tables, text and JSON output."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from httpserver import validate_json
from pillow_variants.cli import main
from pillow_variants.errors import UserError
from pillow_variants.recipe.features import compare_features, feature_report, resolve_baseline
from pillow_variants.recipe.model import load_recipe

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes"


def _by_name(variant: Path, baseline: Path) -> dict[str, object]:
    return {f.name: f for f in compare_features(load_recipe(variant), load_recipe(baseline))}


def test_nanoserver_against_upstream() -> None:
    features = _by_name(RECIPES / "nanoserver.toml", RECIPES / "upstream.toml")
    assert {n for n, f in features.items() if f.status == "removed"} == {  # type: ignore[attr-defined]
        "imagegrab",
        "imagewin",
        "wmf_emf",
    }
    profile = features["display_profile"]
    assert profile.status == "changed" and "None" in profile.reason  # type: ignore[attr-defined]
    grab = features["imagegrab"]
    assert grab.baseline_state == "enabled" and grab.state == "removed"  # type: ignore[attr-defined]
    assert "GDI" in grab.reason and grab.modules == ["PIL.ImageGrab"]  # type: ignore[attr-defined]
    # upstream's own disabled feature is not something the variant removed
    assert features["imagequant"].status == "kept"  # type: ignore[attr-defined]
    assert features["freetype2"].status == "kept"  # type: ignore[attr-defined]


def test_default_baseline_is_the_inherited_recipe() -> None:
    variant = load_recipe(RECIPES / "nanoserver.toml")
    assert resolve_baseline(variant, None).name == "upstream"
    with pytest.raises(UserError, match="--against"):
        resolve_baseline(load_recipe(RECIPES / "upstream.toml"), None)


@pytest.fixture
def variants(tmp_path: Path) -> Path:
    """A copy of recipes/ plus a variant exercising every status."""
    recipes = tmp_path / "recipes"
    shutil.copytree(RECIPES, recipes)
    (recipes / "mixed.toml").write_text(
        '[recipe]\ninherits = "upstream.toml"\n'
        '[features.imagequant]\nstate = "enabled"\n'  # upstream disables it → added
        '[features.webp]\nstate = "disabled"\nreason = "not built"\n'  # → removed
        '[features.avif]\nstate = "changed"\nreason = "decoder only"\n'  # → changed
        '[features.newthing]\nstate = "enabled"\n'  # only here → added
    )
    return recipes


def test_every_status(variants: Path) -> None:
    features = _by_name(variants / "mixed.toml", variants / "upstream.toml")
    status = {n: f.status for n, f in features.items()}  # type: ignore[attr-defined]
    assert status["imagequant"] == "added"
    assert status["webp"] == "removed"
    assert status["avif"] == "changed"
    assert status["newthing"] == "added"
    assert status["jpg"] == "kept"
    assert features["newthing"].baseline_state is None  # type: ignore[attr-defined]


def test_baseline_only_feature_is_removed(variants: Path) -> None:
    features = _by_name(variants / "upstream.toml", variants / "mixed.toml")
    gone = features["newthing"]
    assert gone.status == "removed" and gone.state is None  # type: ignore[attr-defined]
    assert "not listed" in gone.reason  # type: ignore[attr-defined]


def test_report_counts_match_the_features() -> None:
    variant = load_recipe(RECIPES / "nanoserver.toml")
    report = feature_report(variant, load_recipe(RECIPES / "upstream.toml"))
    validate_json(report, "features-report.schema.json")
    assert report["summary"]["removed"] == 3 and report["summary"]["changed"] == 1
    assert sum(report["summary"].values()) == len(report["features"])
    assert report["wheel_version"] == "13.0.0+nanoserver"


def test_cli_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["features", str(RECIPES / "nanoserver.toml")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("features of nanoserver (Pillow 13.0.0+nanoserver) against upstream")
    line = next(ln for ln in out.splitlines() if " imagegrab " in ln)
    assert line.split()[0] == "removed" and "enabled → removed" in line
    assert "summary: 11 kept, 3 removed, 1 changed" in out


def test_cli_json_against(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "features",
        str(RECIPES / "nanoserver.toml"),
        "--against",
        str(RECIPES / "upstream.toml"),
    ]
    assert main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    validate_json(report, "features-report.schema.json")
    assert report["against"] == "upstream"
    assert {f["name"]: f["status"] for f in report["features"]}["wmf_emf"] == "removed"


def test_cli_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["features", str(RECIPES / "upstream.toml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert main(["features", str(RECIPES / "missing.toml")]) == 2
