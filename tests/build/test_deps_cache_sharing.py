"""The dependency cache is shared by runs that differ only in parallelism: the tests build with
``-j2``, ``build all`` with every CPU, and CI's main job must find what the tests built."""

from __future__ import annotations

import sys

from depsfactory import FakeToolchain, builder, compiles

from pillow_variants.recipe.model import Recipe
from pillow_variants.toolchains.base import BuildPaths, Command, DepPlan


class JobsToolchain(FakeToolchain):
    """The fake toolchain, with the job count in its compile command (as cmake/meson have)."""

    def plan(self, recipe: Recipe, name: str, paths: BuildPaths, jobs: int) -> DepPlan:
        plan = super().plan(recipe, name, paths, jobs)
        argv = (sys.executable, "-c", "pass", f"--parallel={jobs}")
        plan.steps.insert(0, Command(argv, paths.source))
        return plan


def _build(project_, jobs: int):  # noqa: F811
    b, log = builder(project_, jobs=jobs)
    b.toolchain = JobsToolchain(log)
    return b.build(), log


def test_a_build_with_other_parallelism_is_a_cache_hit(project) -> None:  # noqa: F811
    first, log = _build(project, jobs=2)
    assert [r.status for r in first.results] == ["built"] * 3
    again, _ = _build(project, jobs=8)
    assert [r.status for r in again.results] == ["cached"] * 3
    assert [r.key for r in again.results] == [r.key for r in first.results]
    assert compiles(log) == ["a", "b", "c"]  # nothing compiled the second time


class VenvToolchain(FakeToolchain):
    """The fake toolchain with its build tool installed somewhere (as a venv's bin/cmake is)."""

    def __init__(self, log, tool_dir: str) -> None:
        super().__init__(log)
        self.cmake = f"{tool_dir}/bin/cmake"

    def tool_paths(self) -> dict[str, str]:
        return {"cmake": self.cmake}

    def plan(self, recipe: Recipe, name: str, paths: BuildPaths, jobs: int) -> DepPlan:
        plan = super().plan(recipe, name, paths, jobs)
        plan.steps.insert(0, Command((sys.executable, "-c", "pass", self.cmake), paths.source))
        return plan


def test_the_same_tools_in_another_venv_are_a_cache_hit(project) -> None:  # noqa: F811
    """The tests' nox venv and the main job's hold the same cmake at different paths: CI's
    main job must not rebuild what the tests built (issue #13)."""
    b, log = builder(project)
    b.toolchain = VenvToolchain(log, "/venvs/tests")
    first = b.build()
    assert [r.status for r in first.results] == ["built"] * 3
    b2, _ = builder(project)
    b2.toolchain = VenvToolchain(log, "/venvs/main-job")
    again = b2.build()
    assert [r.status for r in again.results] == ["cached"] * 3
    assert compiles(log) == ["a", "b", "c"]
