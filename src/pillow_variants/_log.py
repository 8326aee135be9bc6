"""One way to report progress: the ``pillow_variants`` logger, set up once by the CLI.

Long steps (dependency builds, Wine runs, downloads) report through :func:`progress`, which
logs at INFO; ``-q`` hides it, ``-v`` adds DEBUG detail (every command run). Lines go to
stderr unadorned, one event per line, so CI logs read like the terminal and stdout stays free
for ``--json``. Library code never configures logging itself: embedding programs keep control.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

LOGGER = logging.getLogger("pillow_variants")

#: A progress sink: stages take one (default :func:`progress`) so callers can collect lines.
Progress = Callable[[str], None]


def progress(message: str) -> None:
    """Report one step of long-running work (INFO)."""
    LOGGER.info(message)


def debug(message: str) -> None:
    """Detail for ``-v``: commands run, cache decisions."""
    LOGGER.debug(message)


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time (not the stream at set-up), flushed:
    progress must interleave with the subprocess output that tools write to the same fd."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # noqa: BLE001 - logging must never take the command down
            self.handleError(record)


def setup(verbosity: int = 0) -> None:
    """Send the package's log lines to stderr: -1 quiet (warnings), 0 progress, 1+ debug."""
    level = logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG
    LOGGER.setLevel(level)
    if not any(isinstance(h, _StderrHandler) for h in LOGGER.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        LOGGER.addHandler(handler)
    LOGGER.propagate = False
