"""Options shared by several commands, defined once so their names and help never drift.

Every command's parser is built from here, ``audit`` included, whose start-up is benchmarked:
the recipe and fetch modules (packaging, urllib, ssl, tomllib) are imported only by the
helpers that use them, never at import time (tests/cli/test_startup.py).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pillow_variants.recipe.model import Recipe
    from pillow_variants.sources.fetch import FetchedSource

#: A subcommand table: name -> (help, configure(parser), run(args) -> exit code).
Subcommands = dict[
    str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]
]


def verbosity_options() -> argparse.ArgumentParser:
    """-v/-q as a parent parser of every level, so they work before or after any command."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_mutually_exclusive_group()
    # SUPPRESS: a level that did not see the option leaves the value another level set.
    g.add_argument(
        "-v", "--verbose", action="count", default=argparse.SUPPRESS, help="more detail (-vv)"
    )
    g.add_argument(
        "-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="errors only"
    )
    return p


def add_subcommands(parser: argparse.ArgumentParser, commands: Subcommands) -> None:
    """Add nested sub-subcommands (e.g. ``patches check``)."""
    sub = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
    sub.required = True
    common = verbosity_options()
    for name, (help_, configure, run) in commands.items():
        p = sub.add_parser(name, help=help_, description=help_, parents=[common])
        configure(p)
        p.set_defaults(_run=run)


def add_cache_dir(p: argparse.ArgumentParser) -> None:
    """``--cache-dir``: one cache for downloads, SDKs, runtimes and dependency builds."""
    p.add_argument(
        "--cache-dir",
        type=Path,
        help="cache for downloads, SDKs, runtimes and builds "
        "(default: $PILLOW_VARIANTS_CACHE or the user cache directory)",
    )


def add_source_options(p: argparse.ArgumentParser, *, only: str | None = None) -> None:
    """``--source NAME=PATH`` (repeatable) and ``--allow-unpinned``; ``only`` restricts NAME."""
    metavar = f"{only}=PATH" if only else "NAME=PATH"
    what = "Pillow tree or sdist" if only == "pillow" else "tree or archive for component NAME"
    p.add_argument(
        "--source",
        action="append",
        default=[],
        metavar=metavar,
        help=f"use a local {what} (recorded as local, unverified); repeatable",
    )
    p.add_argument(
        "--allow-unpinned",
        action="store_true",
        help='accept sources whose recipe sha256 is "unpinned" and record the computed hash',
    )


def add_json(p: argparse.ArgumentParser, what: str = "the result") -> None:
    """``--json``: machine-readable output on stdout (one line; schemas in ``schemas/``)."""
    p.add_argument("--json", action="store_true", help=f"print {what} as JSON on stdout")


def add_fetch_options(p: argparse.ArgumentParser) -> None:
    """What every command that fetches a recipe's sources takes (``sources``, ``patches``)."""
    add_source_options(p)
    add_cache_dir(p)
    add_json(p)


def fetch_options(args: argparse.Namespace, recipe: Recipe) -> dict[str, Any]:
    """``fetch_source`` keyword arguments from the options of :func:`add_fetch_options`."""
    from pillow_variants.sources.fetch import check_overrides, parse_source_overrides

    overrides = parse_source_overrides(args.source)
    check_overrides(recipe, overrides)
    return {
        "cache_dir": args.cache_dir,
        "overrides": overrides,
        "allow_unpinned": args.allow_unpinned,
    }


def describe_source(f: FetchedSource) -> str:
    """How far a fetched source can be trusted, in a few words."""
    if f.local:
        return "local, unverified"
    return "unpinned, hash computed" if f.unpinned else "sha256 verified"
