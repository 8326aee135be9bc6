"""The dependency builder and its cache, with a tiny fake toolchain (no compiler, fast).

The fake toolchain "compiles" with a Python one-liner that writes a library file from the
source and the dependencies it is built against, and logs every invocation — so the tests see
exactly which dependencies were rebuilt.
"""

from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path

import pytest

from httpserver import validate_json
from pillow_variants.build.deps import BuildFailed, DepsBuilder, apply_edits, closure, tree_sha256
from pillow_variants.errors import PatchError, UserError
from pillow_variants.recipe.model import Recipe, SourceEdit, load_recipe
from pillow_variants.toolchains.base import BuildPaths, Command, Copy, DepPlan, Skipped, Toolchain

RECIPE = """
[recipe]
description = "builder test"
python = ["3.13"]
[pillow]
version = "13.0.0"
[pillow.source]
pip = "pillow==13.0.0"
sha256 = "unpinned"
sha256_source = "test"
{deps}
[patches]
b = ["0001-change-b.patch"]
"""

DEP = """
[dependencies.{name}]
project = "proj-{name}"
version = "1.0"
build_system = "cmake"
license_files = ["LICENSE"]
depends = {depends}
options = ["-DOPT_{name}=ON"]
{edits}
[dependencies.{name}.source]
url = "https://example.invalid/{name}.tar.gz"
sha256 = "unpinned"
sha256_source = "test fixture"
"""

PATCH = """Subject: change b
Removes: nothing
Why: exercise the cache
Upstream: not submitted

diff --git a/b.c b/b.c
--- a/b.c
+++ b/b.c
@@ -1 +1 @@
-{old}
+{new}
"""

# Writes build/lib<name>.a = source + the libraries of its dependencies; logs the call.
COMPILE = (
    "import sys, pathlib; src, build, prefix, name, log = sys.argv[1:6];"
    "text = pathlib.Path(src, name + '.c').read_text();"
    "deps = sorted(pathlib.Path(prefix, 'lib').glob('*.a'));"
    "text += ''.join(d.read_text() for d in deps);"
    "pathlib.Path(build, 'lib' + name + '.a').write_text(text);"
    "open(log, 'a').write(name + chr(10)); sys.exit(int('FAIL' in text))"
)


class FakeToolchain(Toolchain):
    name = "fake"
    target = "test"

    def __init__(self, log: Path, unbuildable: dict[str, str] | None = None) -> None:
        self.log = log
        self.unbuildable = unbuildable or {}

    def identity(self) -> dict[str, str]:
        return {"name": "fake", "version": "1", "target": "test"}

    def check_host(self) -> None:
        pass

    def setup(self, workdir: str) -> dict[str, str]:
        return {}

    def plan(self, recipe: Recipe, name: str, paths: BuildPaths, jobs: int) -> DepPlan:
        dep = recipe.dependencies[name]
        p = DepPlan(name, "fake", dep.build_system, list(dep.options), list(dep.upstream_edits), [])
        if name in self.unbuildable:
            p.unbuildable = self.unbuildable[name]
            return p
        p.skipped_features.append(Skipped("extras", "not needed"))
        p.steps = [
            Command(
                (
                    sys.executable,
                    "-c",
                    COMPILE,
                    paths.source,
                    paths.build,
                    paths.prefix,
                    name,
                    str(self.log),
                ),
                paths.source,
            ),
            Copy(paths.source, "*.h", f"{paths.stage}/include"),
            Copy(paths.build, f"lib{name}.a", f"{paths.stage}/lib"),
            Copy(paths.source, "LICENSE", f"{paths.stage}/licenses/{name}"),
        ]
        return p


def make_source(root: Path, name: str, body: str) -> Path:
    """A source archive with one top directory, like an upstream tarball."""
    tree = root / "trees" / f"{name}-1.0"
    tree.mkdir(parents=True, exist_ok=True)
    (tree / f"{name}.c").write_text(body + "\n")
    (tree / f"{name}.h").write_text(f"int {name}(void);\n")
    (tree / "LICENSE").write_text(f"license of {name}\n")
    archive = root / f"{name}-1.0.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tree, arcname=tree.name)
    return archive


@pytest.fixture
def project(tmp_path: Path):
    """Recipe a ← b ← c (c depends on b, b on a) with a patch on b, sources as overrides."""
    deps = "".join(
        DEP.format(name=n, depends=json.dumps(d), edits=e)
        for n, d, e in [
            ("a", [], ""),
            ("b", ["a"], ""),
            (
                "c",
                ["b"],
                '[[dependencies.c.upstream_edits]]\nfile = "c.c"\nsearch = "see"\n'
                'replace = "sea"\n',
            ),
        ]
    )
    (tmp_path / "recipes").mkdir()
    recipe_path = tmp_path / "recipes" / "t.toml"
    recipe_path.write_text(RECIPE.format(deps=deps))
    patch_dir = tmp_path / "patches" / "b" / "1.0"
    patch_dir.mkdir(parents=True)
    (patch_dir / "0001-change-b.patch").write_text(PATCH.format(old="b source", new="b patched"))
    overrides = {
        "a": make_source(tmp_path, "a", "a source"),
        "b": make_source(tmp_path, "b", "b source"),
        "c": make_source(tmp_path, "c", "c see"),
    }
    return tmp_path, recipe_path, overrides


def builder(project, prefix="prefix", **kw) -> tuple[DepsBuilder, Path]:
    root, recipe_path, overrides = project
    log = root / "compiles.log"
    tc = FakeToolchain(log, kw.pop("unbuildable", None))
    b = DepsBuilder(
        load_recipe(recipe_path),
        tc,
        root / prefix,
        cache_dir=root / "cache",
        overrides=overrides,
        progress=lambda line: (root / "progress.txt").open("a").write(line + "\n"),
        **kw,
    )
    return b, log


def compiles(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


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
