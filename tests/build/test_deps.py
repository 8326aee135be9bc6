"""The dependency builder and its cache, with a tiny fake toolchain (no compiler, fast).

The fake toolchain "compiles" with a Python one-liner that writes a library file from the
source and the dependencies it is built against, and logs every invocation — so the tests see
exactly which dependencies were rebuilt.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from depsfactory import PATCH, FakeToolchain, builder, compiles, make_source  # noqa: F401

from httpserver import validate_json
from pillow_variants.build.deps import BuildFailed, apply_edits, closure, tree_sha256
from pillow_variants.errors import PatchError, UserError
from pillow_variants.recipe.model import SourceEdit, load_recipe


def test_build_then_everything_cached(project):
    b, log = builder(project)
    report = b.build()
    assert [(r.name, r.status) for r in report.results] == [
        ("a", "built"),
        ("b", "built"),
        ("c", "built"),
    ]
    assert compiles(log) == ["a", "b", "c"]
    prefix = project[0] / "prefix"
    # c was built against b (patched) which was built against a.
    assert (prefix / "lib" / "libc.a").read_text() == "c sea\na source\nb patched\na source\n"
    assert (prefix / "include" / "b.h").is_file()
    assert (prefix / "licenses" / "c" / "LICENSE").read_text() == "license of c\n"

    again, _ = builder(project)
    report2 = again.build()
    assert [r.status for r in report2.results] == ["cached"] * 3
    assert compiles(log) == ["a", "b", "c"]  # nothing compiled
    assert [r.key for r in report2.results] == [r.key for r in report.results]
    validate_json(report2.to_dict(), "deps-build.schema.json")


def test_manifest_records_sources_patches_toolchain_and_artifacts(project):
    b, _ = builder(project)
    b.build()
    manifest = json.loads((project[0] / "prefix" / "manifest.json").read_text())
    assert manifest["toolchain"] == {"name": "fake", "version": "1", "target": "test"}
    entry = manifest["dependencies"]["b"]
    assert entry["local_override"] is True and entry["source"]["local"] is True
    assert len(entry["source"]["content_sha256"]) == 64
    (patch,) = entry["patches"]
    assert patch["name"] == "0001-change-b.patch" and len(patch["sha256"]) == 64
    assert entry["options"] == ["-DOPT_b=ON"]
    (artifact,) = entry["artifacts"]
    assert artifact["path"] == "lib/libb.a" and len(artifact["sha256"]) == 64
    assert entry["skipped_features"] == [{"what": "extras", "reason": "not needed"}]
    assert entry["depends"] == {"a": manifest["dependencies"]["a"]["cache_key"]}
    assert manifest["dependencies"]["c"]["upstream_edits"] == [
        {"file": "c.c", "search": "see", "replace": "sea"}
    ]
    assert Path(entry["log"]).is_file()
    validate_json(manifest, "deps-manifest.schema.json")


def test_changed_patch_rebuilds_that_dependency_and_its_dependents_only(project):
    b, log = builder(project)
    b.build()
    patch = project[0] / "patches" / "b" / "1.0" / "0001-change-b.patch"
    patch.write_text(PATCH.format(old="b source", new="b patched twice"))
    b2, _ = builder(project)
    report = b2.build()
    assert [(r.name, r.status) for r in report.results] == [
        ("a", "cached"),
        ("b", "built"),
        ("c", "built"),
    ]
    assert compiles(log) == ["a", "b", "c", "b", "c"]
    assert "b patched twice" in (project[0] / "prefix" / "lib" / "libc.a").read_text()


def test_changed_local_tree_is_rebuilt(project, tmp_path):
    root, recipe_path, overrides = project
    tree = tmp_path / "a-dir"
    tree.mkdir()
    (tree / "a.c").write_text("a from a dir\n")
    (tree / "a.h").write_text("\n")
    (tree / "LICENSE").write_text("l\n")
    overrides["a"] = tree
    b, log = builder(project)
    b.build(["a"])
    (tree / "a.c").write_text("a edited\n")
    b2, _ = builder(project)
    assert [r.status for r in b2.build(["a"]).results] == ["built"]
    assert compiles(log) == ["a", "a"]


def test_only_builds_the_closure(project):
    b, log = builder(project)
    report = b.build(["b"])
    assert [r.name for r in report.results] == ["a", "b"]
    assert compiles(log) == ["a", "b"]
    with pytest.raises(UserError, match="--only zz: no such dependency"):
        builder(project)[0].build(["zz"])


def test_closure_order(project):
    recipe = load_recipe(project[1])
    assert closure(recipe, None) == ["a", "b", "c"]
    assert closure(recipe, ["c"]) == ["a", "b", "c"]
    assert closure(recipe, ["a"]) == ["a"]


def test_failed_build_keeps_its_log(project):
    root, _, overrides = project
    overrides["c"] = make_source(root / "failing", "c", "c see FAIL")
    b, _ = builder(project)
    with pytest.raises(
        BuildFailed, match=r"c: python.* failed \(exit 1\); full log kept at "
    ) as exc:
        b.build()
    log = Path(str(exc.value).rsplit("full log kept at ", 1)[1])
    assert log.is_file() and "$ " in log.read_text()
    # a and b succeeded and are cached; nothing of c was published.
    assert not list((root / "cache" / "deps").glob("c-*"))
    assert list((root / "cache" / "deps").glob("b-*"))


def test_unbuildable_dependency_and_its_dependents_are_named(project):
    b, log = builder(project, unbuildable={"b": "needs a Rust compiler"})
    report = b.build()
    assert [(r.name, r.status) for r in report.results] == [
        ("a", "built"),
        ("b", "not-built"),
        ("c", "not-built"),
    ]
    manifest = json.loads((project[0] / "prefix" / "manifest.json").read_text())
    assert manifest["dependencies"]["b"]["reason"] == "needs a Rust compiler"
    assert manifest["dependencies"]["c"]["reason"] == "needs b, which was not built"
    assert compiles(log) == ["a"]
    validate_json(manifest, "deps-manifest.schema.json")


def test_a_dependency_built_inside_its_dependent_does_not_block_it(project):
    """libavif's codecs under MSVC: upstream's libavif build makes them (LOCAL), so the
    toolchain leaves them out and libavif is still built."""
    root, recipe_path, _ = project
    text = recipe_path.read_text()
    recipe_path.write_text(
        text.replace('project = "proj-b"', 'project = "proj-b"\nbuilt_inside = "c"')
    )
    b, log = builder(project, unbuildable={"b": "upstream builds it inside c"})
    report = b.build()
    assert [(r.name, r.status) for r in report.results] == [
        ("a", "built"),
        ("b", "not-built"),
        ("c", "built"),
    ]
    assert compiles(log) == ["a", "c"]


def test_progress_lines_with_elapsed_time(project):
    b, _ = builder(project)
    b.build()
    text = (project[0] / "progress.txt").read_text()
    assert "[1/3] a 1.0: built in " in text and "[3/3] c 1.0: built in " in text


def test_apply_edits_requires_the_search_text(tmp_path):
    (tmp_path / "f.c").write_text("int x;\n")
    apply_edits(tmp_path, [SourceEdit("f.c", "int x;", "long x;")])
    assert (tmp_path / "f.c").read_text() == "long x;\n"
    with pytest.raises(PatchError, match="search text not found"):
        apply_edits(tmp_path, [SourceEdit("f.c", "int x;", "long x;")])
    with pytest.raises(PatchError, match="cannot read"):
        apply_edits(tmp_path, [SourceEdit("missing.c", "a", "b")])


def test_tree_sha256_sees_content_and_names(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x").write_text("1")
    first = tree_sha256(tmp_path / "d")
    (tmp_path / "d" / "x").write_text("2")
    second = tree_sha256(tmp_path / "d")
    (tmp_path / "d" / "x").rename(tmp_path / "d" / "y")
    assert len({first, second, tree_sha256(tmp_path / "d")}) == 3


def test_rebuild_removes_files_the_old_build_installed(project):
    root, _, overrides = project
    b, _ = builder(project)
    b.build(["a"])
    assert (root / "prefix" / "include" / "a.h").is_file()
    tree = root / "a-new"
    tree.mkdir()
    (tree / "a.c").write_text("a\n")
    (tree / "a2.h").write_text("\n")
    (tree / "LICENSE").write_text("l\n")
    overrides["a"] = tree
    builder(project)[0].build(["a"])
    assert not (root / "prefix" / "include" / "a.h").exists()
    assert (root / "prefix" / "include" / "a2.h").is_file()
