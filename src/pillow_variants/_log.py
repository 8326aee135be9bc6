"""One way to report progress: the ``pillow_variants`` logger, set up once by the CLI.

Long steps (dependency builds, Wine runs, downloads) report through :func:`progress`, which
logs at INFO; ``-q`` hides it, ``-v`` adds DEBUG detail (every command run). Lines go to
stderr unadorned, one event per line, so CI logs read like the terminal and stdout stays free
for ``--json``. Library code never configures logging itself: embedding programs keep control.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from pillow_variants._record import FrozenRecord

if TYPE_CHECKING:
    import logging

_NAME = "pillow_variants"
#: The logger, created on first use with the verbosity :func:`setup` was given: a command that
#: reports no progress (``audit``, benchmarked for its start-up) never imports logging.
_logger: logging.Logger | None = None
_verbosity: int | None = None

#: A progress sink: stages take one (default :func:`progress`) so callers can collect lines.
Progress = Callable[[str], None]


def _get() -> logging.Logger:
    global _logger
    if _logger is None:
        import logging

        _logger = logging.getLogger(_NAME)
        if _verbosity is not None:
            _configure(_logger, _verbosity)
    return _logger


def __getattr__(name: str) -> logging.Logger:
    """``LOGGER``: the package's logger (``logging.getLogger("pillow_variants")``)."""
    if name == "LOGGER":
        return _get()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def progress(message: str) -> None:
    """Report one step of long-running work (INFO)."""
    _get().info(message)


def debug(message: str) -> None:
    """Detail for ``-v``: commands run, cache decisions."""
    _get().debug(message)


class StepTime(FrozenRecord):
    """Where one step's wall time went: the toolkit's own work (this process's CPU time) and
    the rest, spent waiting for the tools it ran (compilers, linkers, CMake, pip, Wine).

    The split answers "is the toolkit the slow part?" without instrumenting every call:
    while a tool runs, this process sleeps in ``wait()`` and accrues no CPU time.
    """

    __slots__ = ("name", "wall", "toolkit", "tools_cpu")

    def __init__(self, name: str, wall: float, toolkit: float, tools_cpu: float) -> None:
        self.name = name
        self.wall = wall
        self.toolkit = toolkit  # CPU seconds of this process
        self.tools_cpu = tools_cpu  # CPU seconds of the finished child processes (all cores)

    @property
    def tools(self) -> float:
        """Wall seconds not spent in the toolkit itself."""
        return max(self.wall - self.toolkit, 0.0)

    def line(self) -> str:
        share = 100 * self.toolkit / self.wall if self.wall else 0.0
        return (
            f"  time {self.name}: {self.wall:.1f} s = tools {self.tools:.1f} s + toolkit "
            f"{self.toolkit:.2f} s ({share:.1f}%); tools' CPU {self.tools_cpu:.1f} s"
        )


def _cpu() -> tuple[float, float]:
    t = os.times()
    return t.user + t.system, t.children_user + t.children_system


@contextmanager
def timed(name: str, steps: list[StepTime], sink: Progress = progress) -> Iterator[None]:
    """Time a step (see :class:`StepTime`), append it to ``steps`` and report its line."""
    wall0, (own0, kids0) = time.monotonic(), _cpu()
    try:
        yield
    finally:
        own1, kids1 = _cpu()
        step = StepTime(name, time.monotonic() - wall0, own1 - own0, kids1 - kids0)
        steps.append(step)
        sink(step.line())


def summarize(steps: list[StepTime]) -> str:
    """One line: the toolkit's share of the wall time of ``steps``."""
    wall = sum(s.wall for s in steps)
    own = sum(s.toolkit for s in steps)
    share = 100 * own / wall if wall else 0.0
    return f"time total: {wall:.1f} s; toolkit {own:.2f} s ({share:.1f}%), tools {wall - own:.1f} s"


_handler_class: type[logging.Handler] | None = None


def _stderr_handler() -> logging.Handler:
    """A handler that writes to whatever ``sys.stderr`` is at the time (not the stream at
    set-up), flushed: progress must interleave with the subprocess output that tools write to
    the same fd. (A class made on first use: defining it needs the logging module.)"""
    global _handler_class
    if _handler_class is None:
        import logging

        class _StderrHandler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                try:
                    sys.stderr.write(self.format(record) + "\n")
                    sys.stderr.flush()
                except Exception:  # noqa: BLE001 - logging must never take the command down
                    self.handleError(record)

        _handler_class = _StderrHandler
    return _handler_class()


def _configure(logger: logging.Logger, verbosity: int) -> None:
    import logging

    level = logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG
    logger.setLevel(level)
    if _handler_class is None or not any(isinstance(h, _handler_class) for h in logger.handlers):
        handler = _stderr_handler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.propagate = False


def setup(verbosity: int = 0) -> None:
    """Send the package's log lines to stderr: -1 quiet (warnings), 0 progress, 1+ debug.

    Applied now if the logger exists, else when it is first used (nothing can have logged
    through it before)."""
    global _verbosity
    _verbosity = verbosity
    if _logger is not None:
        _configure(_logger, verbosity)
