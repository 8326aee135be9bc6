"""A ``--source`` tree that is not the recipe's pin is named by what it is, everywhere a version
is shown: the progress line, the prefix manifest, the wheel's build manifest, the SBOM and the
``build all`` summary -- with the recipe's pin beside it (CI builds Debian's libjpeg-turbo 3.1.3
for a recipe pinning 3.2.0).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from depsfactory import builder

from httpserver import validate_json
from pillow_variants import pipeline
from pillow_variants.recipe.model import load_recipe
from pillow_variants.release.sbom import build_sbom
from pillow_variants.sources.fetch import declared_version, fetch_source, version_label


@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("libjpeg-turbo_3.1.3.orig.tar.gz", "3.1.3"),  # Debian's upstream tarball
        ("freetype_2.14.3+dfsg.orig.tar.xz", "2.14.3+dfsg"),  # Debian's repack: not upstream's
        ("libpng1.6_1.6.58.orig.tar.gz", "1.6.58"),
        ("harfbuzz_12.3.2.orig-extra.tar.xz", "12.3.2"),
        ("zlib-ng-2.3.3", "2.3.3"),  # an unpacked release tree
        ("libjpeg-turbo-3.1.3.tar.gz", "3.1.3"),
        ("openjpeg-v2.5.4.zip", "2.5.4"),
        ("lcms2-2.17.tgz", "2.17"),
        ("libjpeg-turbo", None),  # a checkout: no version in the name
        ("tree-2024-05", None),
        ("src", None),
    ],
)
def test_declared_version(name: str, version: str | None) -> None:
    assert declared_version(Path("/somewhere") / name) == version


def _debian_named(project_, component: str, version: str):
    """The project with ``component``'s override renamed like a Debian orig tarball."""
    root, recipe_path, overrides = project_
    renamed = overrides[component].with_name(f"{component}_{version}.orig.tar.gz")
    shutil.move(overrides[component], renamed)
    return root, recipe_path, {**overrides, component: renamed}


def test_a_local_tree_of_another_version_is_named_by_it(project) -> None:  # noqa: F811
    root, recipe_path, overrides = _debian_named(project, "a", "1.1")
    recipe = load_recipe(recipe_path)
    fetched = fetch_source(recipe, "a", overrides=overrides, cache_dir=root / "cache")
    assert (fetched.version, fetched.recipe_version) == ("1.1", "1.0")
    entry = fetched.manifest_entry()
    assert entry["version"] == "1.1" and entry["recipe_version"] == "1.0"
    same = fetch_source(recipe, "b", overrides=overrides, cache_dir=root / "cache")
    assert same.version == "1.0" and "recipe_version" not in same.manifest_entry()


def _deps_manifest(root: Path) -> dict:
    return json.loads((root / "prefix" / "manifest.json").read_text())


def test_progress_manifests_sbom_and_summary_show_the_built_version(project) -> None:  # noqa: F811
    project_ = _debian_named(project, "a", "1.1")
    root, recipe_path, _ = project_
    b, _log = builder(project_)
    b.build()
    progress = (root / "progress.txt").read_text()
    assert "[1/3] a 1.1 (recipe 1.0): built in " in progress
    assert "[2/3] b 1.0: built in " in progress  # the recipe's own version: no note

    deps = _deps_manifest(root)
    validate_json(deps, "deps-manifest.schema.json")
    a = deps["dependencies"]["a"]
    assert (a["version"], a["recipe_version"]) == ("1.1", "1.0")
    assert (a["source"]["version"], a["source"]["recipe_version"]) == ("1.1", "1.0")
    assert "recipe_version" not in deps["dependencies"]["b"]

    recipe = load_recipe(recipe_path)
    manifest = pipeline.build_manifest(recipe, "3.13", deps, {"component": "pillow"}, {})
    assert manifest["dependencies"]["a"] == {
        "version": "1.1", "recipe_version": "1.0", "in_wheel": True, "options": ["-DOPT_a=ON"],
    }  # fmt: skip
    assert manifest["sources"]["a"]["version"] == "1.1"

    sbom = build_sbom(recipe, manifest)
    (comp,) = [c for c in sbom["components"] if c["name"] == "proj-a"]
    assert comp["version"] == "1.1" and comp["purl"] == "pkg:generic/proj-a@1.1"
    props = {p["name"]: p["value"] for p in comp["properties"]}
    assert props["pillow-variants:recipe-version"] == "1.0"
    (comp_b,) = [c for c in sbom["components"] if c["name"] == "proj-b"]
    assert comp_b["version"] == "1.0"

    versions = {n: {k: e[k] for k in ("version", "recipe_version") if k in e}
                for n, e in deps["dependencies"].items()}  # fmt: skip
    report = pipeline.PipelineReport("t", root / "prefix", [], 0.0, versions)
    lines = report.summary().splitlines()
    assert lines[0] == "dependencies built at other versions than the recipe's: a 1.1 (recipe 1.0)"
    assert lines[1:] == report.table().splitlines()  # the table comes last
    assert report.to_dict()["dependencies"]["a"] == {"version": "1.1", "recipe_version": "1.0"}


def test_a_cache_hit_names_the_tree_found_now(project) -> None:  # noqa: F811
    """The cache key hashes the bytes, not the path: the same tarball under another name (or
    another directory) is a hit, and the manifest says what this run was given."""
    root, recipe_path, overrides = project
    b, log = builder(project)
    b.build()
    assert "recipe_version" not in _deps_manifest(root)["dependencies"]["a"]
    project_ = _debian_named(project, "a", "1.1")
    again, _ = builder(project_)
    report = again.build()
    assert [r.status for r in report.results] == ["cached"] * 3
    a = _deps_manifest(root)["dependencies"]["a"]
    assert (a["version"], a["recipe_version"]) == ("1.1", "1.0")
    assert a["source"]["origin"] == str(project_[2]["a"])
    assert (root / "progress.txt").read_text().count("a 1.1 (recipe 1.0): cached") == 1


def test_version_label() -> None:
    assert version_label("3.1.3", "3.2.0") == "3.1.3 (recipe 3.2.0)"
    assert version_label("3.2.0") == "3.2.0"
