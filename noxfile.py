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
    session.install("-e", ".[test,zig]")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Check style and formatting with ruff."""
    session.install("ruff>=0.4")
    session.run("ruff", "check", "src", "tests", "scripts", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "scripts", "noxfile.py")


def _official_wheel(session: nox.Session, version: str = "13.0.0", python: str = "3.13") -> str:
    """Download the official Pillow win_amd64 wheel (through pip: the user's index config)."""
    dest = session.cache_dir / "official-wheels"
    session.run(
        "python", "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
        "--platform", "win_amd64", "--python-version", python, f"pillow=={version}",
        "-d", str(dest),
    )  # fmt: skip
    tag = "cp" + python.replace(".", "")
    return str(dest / f"pillow-{version}-{tag}-{tag}-win_amd64.whl")


@nox.session(python=PYTHON)
def audit(session: nox.Session) -> None:
    """Will these wheels/PE files load on nanoserver? (pillow-variants audit ARGS)."""
    session.install(".")
    if not session.posargs:
        session.error("usage: nox -s audit -- WHEEL|DIR|PE... [--surface S] [--policy P] [--json]")
    session.run("pillow-variants", "audit", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Print benchmark figures: audit vs delvewheel show (ratio)."""
    session.install(".", "delvewheel")
    wheel = _official_wheel(session)
    session.run("python", "scripts/bench_audit.py", wheel)


@nox.session(python=PYTHON)
def fuzz(session: nox.Session) -> None:
    """Fuzz the audit with 10,000 mutated real PE files (exit 1 on any crash)."""
    session.install(".")
    wheel = _official_wheel(session)
    iterations = session.posargs[0] if session.posargs else "10000"
    session.run("python", "scripts/fuzz_audit.py", "--seed", wheel, "--iterations", iterations)
