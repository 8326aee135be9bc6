"""A fake toolchain and a tiny dependency project for the deps-builder tests (the fixture
``project`` is in this folder's ``conftest.py``)."""

from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path

from pillow_variants.build.deps import DepsBuilder
from pillow_variants.recipe.model import Recipe, load_recipe
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

    def __init__(
        self,
        log: Path,
        unbuildable: dict[str, str] | None = None,
        before: dict[str, str] | None = None,
        jobserver: bool = True,
    ) -> None:
        self.log = log
        self.unbuildable = unbuildable or {}
        #: dependency → Python code run as a command before its compile (rendezvous, hangs)
        self.before = before or {}
        self._jobserver = jobserver

    def jobserver(self) -> bool:
        return self._jobserver

    def tool_paths(self) -> dict[str, str]:
        # keys independent of the venv running the tests and of the temporary directory
        return {"python": sys.executable, "log": str(self.log)}

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
        if name in self.before:
            p.steps.append(Command((sys.executable, "-c", self.before[name]), paths.source))
        p.steps += [
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


def make_project(
    root: Path, depends: dict[str, list[str]], sources: str = "archive"
) -> tuple[Path, Path, dict[str, Path]]:
    """A recipe of dependencies ``name → depends`` (``b`` patched, ``c`` edited), sources as
    overrides: archives, or directories (``sources="tree"``: content-hashed, so cache keys do
    not depend on archive time stamps)."""
    edits = {
        "c": '[[dependencies.c.upstream_edits]]\nfile = "c.c"\nsearch = "see"\nreplace = "sea"\n'
    }
    deps = "".join(
        DEP.format(name=n, depends=json.dumps(d), edits=edits.get(n, ""))
        for n, d in depends.items()
    )
    (root / "recipes").mkdir()
    recipe_path = root / "recipes" / "t.toml"
    recipe_path.write_text(RECIPE.format(deps=deps))
    patch_dir = root / "patches" / "b" / "1.0"
    patch_dir.mkdir(parents=True)
    (patch_dir / "0001-change-b.patch").write_text(PATCH.format(old="b source", new="b patched"))
    bodies = {"a": "a source", "b": "b source", "c": "c see"}
    overrides = {n: make_source(root, n, bodies.get(n, f"{n} source")) for n in depends}
    if sources == "tree":
        overrides = {n: root / "trees" / f"{n}-1.0" for n in depends}
    return root, recipe_path, overrides


def builder(project, prefix="prefix", **kw) -> tuple[DepsBuilder, Path]:
    root, recipe_path, overrides = project
    log = root / "compiles.log"
    tc = FakeToolchain(
        log, kw.pop("unbuildable", None), kw.pop("before", None), kw.pop("jobserver", True)
    )
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
