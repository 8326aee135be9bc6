"""``.ci/run``: after the tests it runs the README's main command exactly as the README writes it,
fails when that fails, and gives the tests and the main job one dependency cache.

The behaviour is checked on a copy of the script with stand-ins for ``scripts/bootstrap.sh``
and ``nox`` that log their calls (the real ones install system packages and build for 20 min).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / ".ci" / "run"


def readme_commands() -> list[str]:
    """The commands of the README's first ``sh`` block (the main job, then the tests)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block is not None
    lines = [ln.split("#", 1)[0].strip() for ln in block.group(1).splitlines()]
    return [ln for ln in lines if ln]


def script_commands(path: Path = SCRIPT) -> list[str]:
    """What the script runs, without its set-up lines (set, cd, export) and echoes."""
    skip = ("set ", "cd ", "export ", "echo ")
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    return [ln for ln in lines if ln and not ln.startswith(("#", *skip))]


def test_ci_runs_the_readme_commands_tests_first_and_the_main_command_last() -> None:
    main, tests = readme_commands()
    assert main == "bash scripts/bootstrap.sh && nox -s build-nanoserver"
    assert tests == "nox -s lint tests"
    assert script_commands() == ["bash scripts/bootstrap.sh", tests, main]


@pytest.fixture
def ci(tmp_path: Path):
    """A copy of .ci/run with logging stand-ins; returns run(fail=...) -> (rc, calls)."""
    tree = tmp_path / "checkout"
    (tree / ".ci").mkdir(parents=True)
    (tree / "scripts").mkdir()
    shutil.copy2(SCRIPT, tree / ".ci" / "run")
    log = tmp_path / "calls.log"
    (tree / "scripts" / "bootstrap.sh").write_text(
        'echo "bootstrap" >> "$CALLS"\n'
        '[ "$(grep -c bootstrap "$CALLS")" != "${FAIL_BOOTSTRAP:-0}" ] || exit 4\n'
    )
    bindir = tmp_path / "bin"
    bindir.mkdir()
    nox = bindir / "nox"
    nox.write_text(
        "#!/bin/sh\n"
        'echo "nox $* cache=$PILLOW_VARIANTS_CACHE" >> "$CALLS"\n'
        'case "$*" in "${FAIL_NOX:-none}") exit 3;; esac\n'
    )
    nox.chmod(0o755)

    def run(**fail: str) -> tuple[int, list[str]]:
        env = {k: v for k, v in os.environ.items() if k != "PILLOW_VARIANTS_CACHE"}
        env.update(PATH=f"{bindir}{os.pathsep}{env['PATH']}", HOME=str(tmp_path), CALLS=str(log))
        env.update(fail)
        log.unlink(missing_ok=True)
        proc = subprocess.run(
            ["bash", str(tree / ".ci" / "run")], env=env, capture_output=True, text=True
        )
        return proc.returncode, log.read_text().splitlines()

    return run


def test_the_tests_then_the_main_command_share_one_cache(ci, tmp_path: Path) -> None:
    rc, calls = ci()
    cache = tmp_path / ".cache" / "pillow-variants"
    assert rc == 0
    assert calls == [
        "bootstrap",
        f"nox -s lint tests cache={cache}",
        "bootstrap",
        f"nox -s build-nanoserver cache={cache}",
    ]


def test_a_failing_main_command_fails_ci(ci) -> None:
    rc, calls = ci(FAIL_NOX="-s build-nanoserver")
    assert rc == 3 and calls[-1].startswith("nox -s build-nanoserver")


def test_a_failing_set_up_before_the_main_job_fails_ci(ci) -> None:
    rc, calls = ci(FAIL_BOOTSTRAP="2")
    assert rc == 4 and calls[-1] == "bootstrap"  # the build never started


def test_failing_tests_stop_ci_before_the_main_job(ci) -> None:
    rc, calls = ci(FAIL_NOX="-s lint tests")
    assert rc == 3 and calls == ["bootstrap", calls[1]] and calls[1].startswith("nox -s lint")
