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


def setup(verbosity: int = 0) -> None:
    """Send the package's log lines to stderr: -1 quiet (warnings), 0 progress, 1+ debug."""
    level = logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG
    LOGGER.setLevel(level)
    if not any(getattr(h, "_pillow_variants", False) for h in LOGGER.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._pillow_variants = True  # type: ignore[attr-defined]
        LOGGER.addHandler(handler)
    LOGGER.propagate = False
