"""The dependency builder's scheduler: independent dependencies build side by side within the
job budget, dependents wait for what they depend on, the first failure (or Ctrl-C) stops the
other builds and their child processes, and cache keys do not depend on any of it.

The fake toolchain (depsfactory) runs a Python snippet before a dependency's "compile": two
snippets that each wait for the other's marker file can only both finish when the two builds
run at the same time (one after the other, the first times out and fails).
"""

from __future__ import annotations

import _thread
import threading
import time
from pathlib import Path

import pytest
from depsfactory import FakeToolchain, builder, compiles, make_project

from pillow_variants.build.deps import BuildFailed, DepsBuilder
from pillow_variants.recipe.model import load_recipe

DIAMOND = {"a": [], "b": [], "c": ["a", "b"]}
#: Generous: the snippets wait this long for each other before giving up.
PATIENCE = 120

RENDEZVOUS = """
import pathlib, sys, time
marks = pathlib.Path({marks!r})
(marks / {me!r}).touch()
end = time.monotonic() + {patience}
while not (marks / {other!r}).exists() and time.monotonic() < end:
    time.sleep(0.05)
sys.exit(0 if (marks / {other!r}).exists() else 1)
"""

# A build that starts a grandchild (as make/ninja start compilers) and waits for it.
SPAWN = """
import pathlib, subprocess, sys
marks = pathlib.Path({marks!r})
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
(marks / "{me}.pid").write_text(str(child.pid))
child.wait()
"""

FAIL_WHEN = """
import pathlib, sys, time
marks = pathlib.Path({marks!r})
end = time.monotonic() + {patience}
while not (marks / {other!r}).exists() and time.monotonic() < end:
    time.sleep(0.05)
sys.exit(1)
"""


def _rendezvous(marks: Path, me: str, other: str) -> str:
    return RENDEZVOUS.format(marks=str(marks), me=me, other=other, patience=PATIENCE)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie waiting for its reaper does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _gone(pid: int) -> bool:
    end = time.monotonic() + 30  # SIGTERM is immediate; generous for a loaded machine
    while _alive(pid) and time.monotonic() < end:
        time.sleep(0.05)
    return not _alive(pid)


def _progress(root: Path) -> list[str]:
    return (root / "progress.txt").read_text().splitlines()


def test_independent_dependencies_build_at_the_same_time(tmp_path):
    project = make_project(tmp_path, DIAMOND)
    marks = tmp_path / "marks"
    marks.mkdir()
    before = {"a": _rendezvous(marks, "a", "b"), "b": _rendezvous(marks, "b", "a")}
    b, log = builder(project, jobs=2, before=before)
    report = b.build()
    assert [(r.name, r.status) for r in report.results] == [
        ("a", "built"),
        ("b", "built"),
        ("c", "built"),
    ]
    assert sorted(compiles(log)[:2]) == ["a", "b"] and compiles(log)[2] == "c"
    lines = _progress(tmp_path)
    # c starts only once both of its dependencies are done (and installed)
    done = [i for i, line in enumerate(lines) if ": built in " in line]
    assert lines.index("[3/3] c 1.0: ...") > max(done[:2])
    # Each was built against exactly what it depends on: b, built at the same time as a, never
    # sees a's library (the cache key of b does not name a).
    prefix = tmp_path / "prefix"
    assert (prefix / "lib" / "liba.a").read_text() == "a source\n"
    assert (prefix / "lib" / "libb.a").read_text() == "b patched\n"
    assert (prefix / "lib" / "libc.a").read_text() == "c sea\na source\nb patched\n"


def test_a_dependency_sees_only_what_it_depends_on_also_one_at_a_time(tmp_path):
    """Serial builds use the same private prefixes: the output is the same either way."""
    project = make_project(tmp_path, DIAMOND)
    b, log = builder(project, jobs=2, builds=1)
    assert not b.concurrent()
    b.build()
    assert compiles(log) == ["a", "b", "c"]
    assert (tmp_path / "prefix" / "lib" / "libb.a").read_text() == "b patched\n"


def test_concurrency_needs_a_budget_and_a_jobserver(project):
    assert builder(project, jobs=2)[0].concurrent()
    assert not builder(project, jobs=1)[0].concurrent()
    assert not builder(project, jobs=4, builds=1)[0].concurrent()
    assert not builder(project, jobs=4, jobserver=False)[0].concurrent()


def test_first_failure_stops_the_other_builds_and_their_children(tmp_path):
    project = make_project(tmp_path, DIAMOND)
    marks = tmp_path / "marks"
    marks.mkdir()
    before = {
        # a fails once b runs, while b (started at the same time) waits for its grandchild
        "a": FAIL_WHEN.format(marks=str(marks), other="b.pid", patience=PATIENCE),
        "b": SPAWN.format(marks=str(marks), me="b"),
    }
    b, log = builder(project, jobs=2, before=before)
    start = time.monotonic()
    with pytest.raises(BuildFailed, match=r"^a: python.* failed \(exit 1\); full log kept at "):
        b.build()
    assert time.monotonic() - start < 600  # b's grandchild was not waited for
    assert _gone(int((marks / "b.pid").read_text()))
    assert compiles(log) == []  # neither b nor c got to compile
    assert not list((tmp_path / "cache" / "deps").glob("*"))  # nothing half-published
    lines = _progress(tmp_path)
    assert "[3/3] c 1.0: ..." not in lines
    assert sum("--- last lines of" in line for line in lines) == 1  # a's, not b's


def test_interrupt_stops_the_running_builds(tmp_path):
    """Ctrl-C (and SIGTERM, which the CLI raises as KeyboardInterrupt) in the main thread:
    the builds' process groups are stopped, the interrupt propagates."""
    project = make_project(tmp_path, DIAMOND)
    marks = tmp_path / "marks"
    marks.mkdir()
    before = {n: SPAWN.format(marks=str(marks), me=n) for n in ("a", "b")}
    b, _ = builder(project, jobs=2, before=before)
    pids = [marks / "a.pid", marks / "b.pid"]

    def interrupt_when_both_run() -> None:
        end = time.monotonic() + PATIENCE
        while not all(p.exists() for p in pids) and time.monotonic() < end:
            time.sleep(0.05)
        if all(p.exists() for p in pids):
            _thread.interrupt_main()

    threading.Thread(target=interrupt_when_both_run, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        b.build()
    assert all(_gone(int(p.read_text())) for p in pids)


@pytest.mark.parametrize(
    ("shape", "keys"),
    [
        (
            {"a": [], "b": ["a"], "c": ["b"]},
            {
                "a": "1d9b95790cd559834cce9532e76c5929488fb9544b1a11e7c9ddc4ea4cce40e1",
                "b": "acfac50e58b8268ec7500eee511558fd69e57c76abdec0b640869f2c7219440f",
                "c": "ba434f694f47a6612bdc0a8507dc1074a7b628a012ff03f78d6368299172a34f",
            },
        ),
        (
            DIAMOND,
            {
                "a": "1d9b95790cd559834cce9532e76c5929488fb9544b1a11e7c9ddc4ea4cce40e1",
                "b": "455647d73bf359204e9d9a0d9f007bc1bd31241e6fe46896e1c4af482b4bd53e",
                "c": "0c59ecdbf3515f493f59b26965e853038a9101290508617b9b1b7c550d09dbd6",
            },
        ),
    ],
)
def test_cache_keys_do_not_depend_on_scheduling(tmp_path, shape, keys):
    """The keys the serial builder (before the scheduler) computed for these recipes, pinned:
    neither the job budget, nor building side by side, nor the private prefixes change them,
    so existing cache entries stay valid."""
    project = make_project(tmp_path, shape, sources="tree")
    for run, kw in enumerate([{"jobs": 1}, {"jobs": 2}, {"jobs": 8, "builds": 1}, {"jobs": 8}]):
        root, recipe_path, overrides = project
        b = DepsBuilder(
            load_recipe(recipe_path),
            FakeToolchain(root / "compiles.log"),
            root / f"prefix{run}",
            cache_dir=root / f"cache{run}",  # cold each time: the keys are computed, not read
            overrides=overrides,
            progress=lambda line: None,
            **kw,
        )
        assert {r.name: r.key for r in b.build().results} == keys
