"""The suite rung's parts that need no Wine: pytest's JUnit XML → per-test outcomes, and the
comparison that every difference from the official run is a removed feature's test (the
feature ↔ tests mapping is the recipes' data). The real runs: tests/test_pipeline.py (a few
Tests files) and ``nox -s suite`` (the whole suite)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pillow_variants.errors import UserError
from pillow_variants.recipe.features import compare_features
from pillow_variants.recipe.model import load_recipe
from pillow_variants.verify.suite import (
    SuiteRun,
    SuiteVerdict,
    compare,
    explaining_feature,
    missing_feature_tests,
    node_id,
    parse_junit,
    removed_feature_tests,
)
from wheelfactory import make_wheel

RECIPES = Path(__file__).resolve().parents[2] / "recipes"

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="1" failures="1" skipped="2" tests="7">
<testcase classname="Tests.test_file_wmf" name="test_load_raw" file="Tests/test_file_wmf.py"
  line="16" time="0.01"><failure message="OSError">boom</failure></testcase>
<testcase classname="Tests.test_file_wmf" name="test_save[.wmf]" file="Tests/test_file_wmf.py"
  line="164" time="0.01"/>
<testcase classname="Tests.test_imagewin.TestImageWinDib" name="test_dib_image"
  file="Tests/test_imagewin.py" line="38" time="0.01"><skipped message="x">y</skipped></testcase>
<testcase classname="Tests.test_image" name="test_sanity" file="Tests\\test_image.py" line="1"/>
<testcase classname="Tests.test_image" name="test_teardown" file="Tests/test_image.py" line="9"/>
<testcase classname="Tests.test_image" name="test_teardown" file="Tests/test_image.py" line="9">
  <error message="teardown">z</error></testcase>
<testcase classname="" name="Tests.test_broken"><error message="collection">e</error></testcase>
<testcase classname="Tests.test_imagegrab.TestImageGrab" name="test_grab"
  file="Tests/test_imagegrab.py" line="22"><skipped type="pytest.xfail" message="xfail"/></testcase>
</testsuite></testsuites>
"""


def test_parse_junit_gives_node_ids_and_worst_outcomes() -> None:
    assert parse_junit(JUNIT) == {
        "Tests/test_file_wmf.py::test_load_raw": "failed",
        "Tests/test_file_wmf.py::test_save[.wmf]": "passed",
        "Tests/test_imagewin.py::TestImageWinDib::test_dib_image": "skipped",
        "Tests/test_image.py::test_sanity": "passed",
        "Tests/test_image.py::test_teardown": "error",  # a teardown error after the pass
        "Tests.test_broken": "error",  # collection error: no file attribute
        "Tests/test_imagegrab.py::TestImageGrab::test_grab": "skipped",
    }


def test_parse_junit_refuses_garbage() -> None:
    with pytest.raises(UserError, match="unreadable"):
        parse_junit("<testsuites><testcase")


def test_node_id_keeps_parametrize_brackets_with_dots() -> None:
    nodeid = node_id("Tests/test_a.py", "Tests.test_a.TestX", "test_b[1.5-x.y]")
    assert nodeid == "Tests/test_a.py::TestX::test_b[1.5-x.y]"


def _nanoserver_removed() -> dict[str, list[str]]:
    variant = load_recipe(RECIPES / "nanoserver.toml")
    baseline = load_recipe(RECIPES / "upstream.toml")
    return removed_feature_tests(compare_features(variant, baseline))


def test_removed_features_map_to_tests_from_the_recipes() -> None:
    removed = _nanoserver_removed()
    assert removed == {
        "imagegrab": ["Tests/test_imagegrab.py"],
        "imagewin": ["Tests/test_imagewin.py", "Tests/test_imagewin_pointers.py"],
        "wmf_emf": ["Tests/test_file_wmf.py"],
    }  # display_profile is "changed", not removed: its test must not change
    assert explaining_feature("Tests/test_file_wmf.py::test_load_raw", removed) == "wmf_emf"
    assert explaining_feature("Tests/test_file_wmf.pyx::t", removed) is None
    assert explaining_feature("Tests/test_imagecms.py::test_display_profile", removed) is None


def test_upstream_recipe_explains_nothing() -> None:
    upstream = load_recipe(RECIPES / "upstream.toml")
    assert removed_feature_tests(compare_features(upstream, upstream)) == {}


def test_compare_accounts_removed_features_and_nothing_else() -> None:
    removed = _nanoserver_removed()
    official = {
        "Tests/test_file_wmf.py::test_load_raw": "passed",
        "Tests/test_imagewin.py::TestImageWinDib::test_dib_image": "passed",
        "Tests/test_imagegrab.py::TestImageGrab::test_grab": "failed",  # Wine limit
        "Tests/test_imagegrab.py::TestImageGrab::test_grab_handle": "skipped",
        "Tests/test_image.py::test_sanity": "passed",
        "Tests/test_file_png.py::test_x": "passed",
        "Tests/test_file_bmp.py::test_y": "passed",
    }
    ours = {
        "Tests/test_file_wmf.py::test_load_raw": "failed",  # removed feature: explained
        "Tests/test_imagewin.py::TestImageWinDib::test_dib_image": "error",  # explained
        "Tests/test_imagegrab.py::TestImageGrab::test_grab": "skipped",  # explained
        "Tests/test_imagegrab.py::TestImageGrab::test_grab_handle": "passed",  # improved: not
        "Tests/test_image.py::test_sanity": "passed",
        "Tests/test_file_png.py::test_x": "failed",  # kept feature changed: not explained
        "Tests/test_file_avif.py::test_new": "passed",  # only in ours: not explained
    }  # test_file_bmp.py::test_y is absent from ours: not explained
    result = compare(official, ours, removed)
    by_test = {d.test: (d.official, d.ours, d.feature) for d in result.differences}
    assert by_test == {
        "Tests/test_file_wmf.py::test_load_raw": ("passed", "failed", "wmf_emf"),
        "Tests/test_imagewin.py::TestImageWinDib::test_dib_image": ("passed", "error", "imagewin"),
        "Tests/test_imagegrab.py::TestImageGrab::test_grab": ("failed", "skipped", "imagegrab"),
        "Tests/test_imagegrab.py::TestImageGrab::test_grab_handle": ("skipped", "passed", None),
        "Tests/test_file_png.py::test_x": ("passed", "failed", None),
        "Tests/test_file_avif.py::test_new": ("absent", "passed", None),
        "Tests/test_file_bmp.py::test_y": ("passed", "absent", None),
    }
    assert not result.passed and len(result.unaccounted) == 4
    assert result.accounted_by == {"wmf_emf": 1, "imagewin": 1, "imagegrab": 1}
    # only the removed features' own tests left: the comparison passes
    explained = {t: ours[t] for t, (_o, _m, feature) in by_test.items() if feature}
    ok = compare({t: official[t] for t in explained}, explained, removed)
    assert ok.passed and ok.differences


def test_verdict_rung_result_records_counts_and_comparison() -> None:
    removed = _nanoserver_removed()
    official = {"Tests/test_file_wmf.py::test_load_raw": "passed", "Tests/test_a.py::t": "passed"}
    ours = {"Tests/test_file_wmf.py::test_load_raw": "failed", "Tests/test_a.py::t": "passed"}
    v = SuiteVerdict(
        SuiteRun("ours.whl", "a" * 64, "3.13", "3.13.2", ours, 1.0, 1),
        SuiteRun("off.whl", "b" * 64, "3.13", "3.13.2", official, 1.0, 0, cached=True),
        compare(official, ours, removed),
        removed,
    )
    entry = v.rung_result()
    assert entry["passed"] is True
    assert entry["counts"] == {"passed": 1, "failed": 1, "error": 0, "skipped": 0}
    assert entry["official"]["counts"]["passed"] == 2
    assert entry["differences"] == 1 and entry["accounted_by"] == {"wmf_emf": 1}
    assert entry["unaccounted"] == []
    assert "all from removed features (wmf_emf 1)" in v.reason
    ours["Tests/test_a.py::t"] = "skipped"
    bad = SuiteVerdict(v.ours, v.official, compare(official, ours, removed), removed)
    assert not bad.passed
    assert bad.rung_result()["unaccounted"] == [
        {"test": "Tests/test_a.py::t", "official": "passed", "ours": "skipped", "feature": None}
    ]
    assert "1 unexplained by the feature report (first: Tests/test_a.py::t" in bad.reason


def test_features_missing_from_the_wheel_are_named_by_its_file_list(tmp_path: Path) -> None:
    variant = load_recipe(RECIPES / "nanoserver.toml")
    features = compare_features(variant, load_recipe(RECIPES / "upstream.toml"))
    pyds = ["_imaging", "_imagingcms", "_imagingft", "_webp", "_imagingtk"]
    files = {f"PIL/{m}.cp313-win_amd64.pyd": b"MZ" for m in pyds}
    files.update({f"PIL/{m}.py": b"" for m in ("ImageGrab", "ImageCms", "__init__")})
    without_avif = make_wheel(tmp_path / "a", files=files)
    assert missing_feature_tests(without_avif, features) == {"avif": ["Tests/test_file_avif.py"]}
    files["PIL/_avif.cp313-win_amd64.pyd"] = b"MZ"
    with_avif = make_wheel(tmp_path / "b", files=files)
    assert missing_feature_tests(with_avif, features) == {}
