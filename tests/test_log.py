"""The step timer of _log.py: where a step's wall time went (tools vs the toolkit itself)."""

from __future__ import annotations

import subprocess
import sys
import time

from pillow_variants._log import StepTime, summarize, timed

#: A child that burns 0.3 s of its own CPU time, whatever the machine's load.
BUSY_CHILD = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass"


def test_a_tool_run_counts_as_tools_not_as_toolkit() -> None:
    steps: list[StepTime] = []
    lines: list[str] = []
    with timed("compile", steps, lines.append):
        subprocess.run([sys.executable, "-c", BUSY_CHILD], check=True)
    (step,) = steps
    assert step.tools_cpu >= 0.28  # the child's CPU, collected when it was waited for
    assert step.toolkit < 0.15  # this process only forked and waited
    assert step.tools >= step.wall - step.toolkit - 1e-9 and step.tools > 0.25
    assert lines == [step.line()]
    assert lines[0].startswith("  time compile: ") and "toolkit" in lines[0]


def test_the_toolkits_own_work_counts_as_toolkit() -> None:
    steps: list[StepTime] = []
    with timed("parse", steps, lambda _: None):
        t = time.process_time()
        while time.process_time() - t < 0.2:
            pass
    (step,) = steps
    assert step.toolkit >= 0.18 and step.tools_cpu < 0.05  # os.times ticks: 10 ms


def test_a_failing_step_is_still_timed() -> None:
    steps: list[StepTime] = []
    try:
        with timed("fails", steps, lambda _: None):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert [s.name for s in steps] == ["fails"]


def test_summary_gives_the_toolkit_share() -> None:
    steps = [StepTime("a", 90.0, 1.0, 170.0), StepTime("b", 10.0, 1.0, 0.0)]
    assert summarize(steps) == "time total: 100.0 s; toolkit 2.00 s (2.0%), tools 98.0 s"
    assert StepTime("c", 0.0, 0.0, 0.0).line().endswith("(0.0%); tools' CPU 0.0 s")


def test_setup_before_the_logger_exists_applies_on_first_use() -> None:
    """The logger (and the logging module) are created on first use: a level set up before
    that is still the one the first lines meet."""
    probe = (
        "import sys\n"
        "from pillow_variants import _log\n"
        "_log.setup(int(sys.argv[1]))\n"
        "assert 'logging' not in sys.modules\n"
        "_log.progress('a progress line')\n"
        "_log.debug('a debug line')\n"
        "_log.LOGGER.warning('a warning')\n"
    )
    for verbosity, shown in ((-1, ["a warning"]), (0, ["a progress line", "a warning"]),
                             (1, ["a progress line", "a debug line", "a warning"])):  # fmt: skip
        proc = subprocess.run(
            [sys.executable, "-c", probe, str(verbosity)], capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr.splitlines() == shown and proc.stdout == ""
