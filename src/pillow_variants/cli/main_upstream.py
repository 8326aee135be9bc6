"""``pillow-variants upstream diff PILLOW_SOURCE``: does a recipe still match upstream's build?"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pillow_variants.cli.options import add_subcommands
from pillow_variants.errors import EXIT_FINDINGS, EXIT_OK
from pillow_variants.recipe.model import load_recipe
from pillow_variants.recipe.upstream_diff import format_report, upstream_diff

COMMAND = "upstream"
HELP = "Compare recipes with upstream Pillow's own Windows build (winbuild/build_prepare.py)."


def configure(parser: argparse.ArgumentParser) -> None:
    add_subcommands(
        parser,
        {
            "diff": (
                "Report version, URL and build-option drift between a recipe and a Pillow "
                "source tree or sdist (exit 1 on drift).",
                _configure_diff,
                _diff,
            )
        },
    )


def _configure_diff(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="PILLOW_SOURCE", help="Pillow source directory or sdist")
    p.add_argument(
        "--dependencies-json",
        type=Path,
        metavar="FILE",
        help="Pillow's .github/dependencies.json for this version (sdists do not contain it)",
    )
    p.add_argument(
        "--recipe",
        default="recipes/upstream.toml",
        help="the recipe to check (default: recipes/upstream.toml)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable report on stdout")


def _diff(args: argparse.Namespace) -> int:
    report = upstream_diff(load_recipe(args.recipe), Path(args.source), args.dependencies_json)
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print(format_report(report))
    return EXIT_FINDINGS if report["drift"] else EXIT_OK
