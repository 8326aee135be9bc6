"""nox sessions: thin wrappers over the ``pillow-variants`` CLI (every stage is a CLI command).

``nox -l`` lists them; arguments after ``--`` go to the command, e.g.
``nox -s audit -- dist/*.whl --json``.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["lint", "tests"]

PYTHON = "3.11"


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the test suite (real files, a local HTTP server, PyPI downloads, zig cross-builds)."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Check style and formatting with ruff."""
    session.install("ruff>=0.4")
    session.run("ruff", "check", "src", "tests", "scripts", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "scripts", "noxfile.py")
