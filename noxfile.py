"""nox sessions: thin wrappers over the ``pillow-variants`` CLI (every stage is a CLI command).

``nox -l`` lists them; arguments after ``--`` go to the command, e.g.
``nox -s audit -- dist/*.whl --json``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["lint", "tests"]

PYTHON = "3.11"


def _install_project(session: nox.Session, extras: str = "", *more: str) -> None:
    """Install this project the way users do (``pip install .``), never editable.

    pip builds the wheel in the tree, and setuptools copies everything under ``build/lib``
    into it: a module deleted or moved in ``src/`` since the last build would ship again.
    Its own output dirs go first (``build/deps-*``, the dependency prefix, stays).
    """
    for stale in [Path("build/lib"), *Path("build").glob("bdist.*")]:
        shutil.rmtree(stale, ignore_errors=True)
    session.install(f".[{extras}]" if extras else ".", *more)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the test suite (real files, a local HTTP server, PyPI downloads, zig cross-builds)
    against the installed package, as users get it -- not the source tree."""
    _install_project(session, "test,zig")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Check style and formatting with ruff, and types with mypy (the package's own settings)."""
    _install_project(session, "lint")  # the package's dependencies give mypy their types
    session.run("ruff", "check", "src", "tests", "scripts", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "scripts", "noxfile.py")
    session.run("mypy")


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
    _install_project(session)
    if not session.posargs:
        session.error("usage: nox -s audit -- WHEEL|DIR|PE... [--surface S] [--policy P] [--json]")
    session.run("pillow-variants", "audit", *session.posargs)


def _debian_sources(session: nox.Session) -> str:
    """Every dependency's real upstream tree from Debian (pinned), as a --sources-file."""
    dest = session.cache_dir / "debian-sources"
    args = dest / "args.txt"
    session.run(
        "python", "scripts/debian_sources.py", "--dest", str(dest), "--args-file", str(args),
        silent=True,
    )  # fmt: skip
    return str(args)


def _build(session: nox.Session, recipe: str) -> None:
    """The whole pipeline for ``recipe``: zig on any host, or the Windows MSVC/cibuildwheel
    build with ``-- --toolchain msvc [--dry-run]``."""
    args = list(session.posargs)
    toolchain = "zig"
    if "--toolchain" in args:
        i = args.index("--toolchain")
        toolchain = args[i + 1] if i + 1 < len(args) else ""
        if toolchain == "zig":
            del args[i : i + 2]
    if toolchain == "msvc":
        _install_project(session, "", "cibuildwheel>=4.3,<5")
        session.run("pillow-variants", "cibw", "build", recipe, *args)
        return
    _install_project(session, "zig")
    if "--recipe-sources" in args:  # fetch the recipe's pinned upstream archives instead
        args.remove("--recipe-sources")
    else:
        args = ["--sources-file", _debian_sources(session), *args]
    session.run("pillow-variants", "build", "all", recipe, *args)


@nox.session(name="build-nanoserver", python=PYTHON)
def build_nanoserver(session: nox.Session) -> None:
    """Build, audit and verify the nanoserver wheels (zig + Wine; --toolchain msvc on Windows)."""
    _build(session, "recipes/nanoserver.toml")


@nox.session(name="build-upstream", python=PYTHON)
def build_upstream(session: nox.Session) -> None:
    """Reproduce upstream's wheels: the same pipeline with no patches."""
    _build(session, "recipes/upstream.toml")


@nox.session(python=PYTHON)
def suite(session: nox.Session) -> None:
    """Pillow's own test suite under Wine, compared test by test with the official wheel's run
    (~5-10 min per wheel on 2 cores; the official run is cached by its sha256).
    ``-- WHEEL... [--recipe R] [--record] [--json]`` checks given wheels (verify suite); without
    arguments the nanoserver cp313 wheel is built with every rung, suite included."""
    if session.posargs:
        _install_project(session)
        session.run("pillow-variants", "verify", "suite", *session.posargs)
        return
    _install_project(session, "zig")
    session.run(
        "pillow-variants", "build", "all", "recipes/nanoserver.toml", "--python", "3.13",
        "--suite", "--sources-file", _debian_sources(session),
    )  # fmt: skip


@nox.session(python=PYTHON)
def publish(session: nox.Session) -> None:
    """Upload built wheels to a private index (twine), rungs checked, re-download verified."""
    _install_project(session)
    if not session.posargs:
        session.error("usage: nox -s publish -- WHEEL... --repository-url URL")
    session.run("pillow-variants", "publish", *session.posargs)


BENCH_PARTS = ("audit", "deps", "tags", "sizes", "speed")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Print benchmark figures: audit vs delvewheel, deps cold vs warm (serial and concurrent),
    every tag vs the cold build, per-module sizes and speed (under Wine) against the official
    wheel. ``-- PART...`` runs only some of: audit, deps, tags, sizes, speed (sizes and speed
    need tags' wheels)."""
    parts = set(session.posargs or BENCH_PARTS)
    if unknown := parts - set(BENCH_PARTS):
        session.error(f"unknown bench part(s): {', '.join(sorted(unknown))}")
    _install_project(session, "zig", "delvewheel")
    wheel = _official_wheel(session)
    if "audit" in parts:
        session.run("python", "scripts/bench_audit.py", wheel)
    if "deps" in parts:
        session.run("python", "scripts/bench_deps.py", "--jobs", "2")
    dist = session.cache_dir / "bench-dist"  # kept across sessions: sizes/speed alone reuse it
    if "tags" in parts:
        shutil.rmtree(dist, ignore_errors=True)
        session.run("python", "scripts/bench_tags.py", "recipes/nanoserver.toml",
                    "--sources-file", _debian_sources(session), "--out", str(dist))  # fmt: skip
    if parts & {"sizes", "speed"}:
        ours = sorted(dist.glob("pillow-*-cp313-cp313-win_amd64.whl"))
        if not ours:
            session.error(f"no cp313 wheel in {dist}: run the tags part first")
        if "sizes" in parts:
            session.run("python", "scripts/bench_sizes.py", wheel, str(ours[0]), "--sections")
        if "speed" in parts:
            session.run("python", "scripts/bench_speed.py", wheel, str(ours[0]))


@nox.session(python=PYTHON)
def fuzz(session: nox.Session) -> None:
    """Fuzz with 10,000 mutated real PE files through the audit, then 3,000 mutated recipes,
    source archives and wheels through the CLI (exit 1 on any crash: a traceback, or an exit
    code other than 0/1/2). ``-- PE_ITERATIONS [INPUT_ITERATIONS]`` changes the counts."""
    _install_project(session)
    wheel = _official_wheel(session)
    iterations = session.posargs[0] if session.posargs else "10000"
    inputs = session.posargs[1] if len(session.posargs) > 1 else "3000"
    session.run("python", "scripts/fuzz_audit.py", "--seed", wheel, "--iterations", iterations)
    session.run("python", "scripts/fuzz_inputs.py", "--seed", wheel, "--iterations", inputs)
