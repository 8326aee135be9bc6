"""``pillow-variants features RECIPE [--against BASELINE] [--json]``: what a variant keeps,
removes or changes of Pillow compared with a baseline recipe (default: the one it inherits)."""

from __future__ import annotations

import argparse
import json

from pillow_variants.errors import EXIT_OK
from pillow_variants.recipe.features import feature_report, format_feature_report, resolve_baseline
from pillow_variants.recipe.model import load_recipe

COMMAND = "features"
HELP = "List each Pillow feature as kept, removed (with the reason) or changed against a baseline."


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="variant recipe (e.g. recipes/nanoserver.toml)")
    parser.add_argument(
        "--against",
        metavar="RECIPE",
        help="baseline recipe (default: the recipe the variant inherits, e.g. upstream.toml)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable report on stdout")


def run(args: argparse.Namespace) -> int:
    variant = load_recipe(args.recipe)
    report = feature_report(variant, resolve_baseline(variant, args.against))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_feature_report(report))
    return EXIT_OK
