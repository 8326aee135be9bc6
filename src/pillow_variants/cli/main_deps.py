"""``pillow-variants deps build RECIPE``: build the recipe's C dependencies as static libraries.

    pillow-variants deps build recipes/upstream.toml [--toolchain zig|msvc] [--only NAME ...]
        [--jobs N] [--builds N] [--prefix DIR] [--source NAME=PATH ...] [--allow-unpinned]
        [--cache-dir D] [--json]

The prefix gets include/, lib/ (static libraries), licenses/ and manifest.json. ``--only``
builds the named dependencies *and what they depend on* (unchanged ones are cache hits), so a
prefix never holds a library built against one that is missing. Progress goes to stderr;
``--json`` prints the run's report (schemas/deps-build.json) on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from pillow_variants._log import progress
from pillow_variants.build.deps import DepsBuilder
from pillow_variants.cli.options import add_cache_dir, add_source_options, add_subcommands
from pillow_variants.recipe.model import load_recipe
from pillow_variants.sources.fetch import parse_source_overrides
from pillow_variants.toolchains import get_toolchain

COMMAND = "deps"
HELP = "Build the recipe's C dependencies (static, PE/COFF) with zig or MSVC."


def configure(parser: argparse.ArgumentParser) -> None:
    add_subcommands(
        parser,
        {"build": ("Build dependencies into a prefix (cached).", _configure_build, _build)},
    )


def _configure_build(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", help="path to a recipe TOML file")
    p.add_argument(
        "--toolchain",
        choices=["zig", "msvc"],
        default="zig",
        help="zig (any host, cross-compiles) or msvc (Windows host with Visual Studio)",
    )
    p.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        default=[],
        help="build only these dependencies (plus what they depend on)",
    )
    p.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=os.cpu_count() or 2,
        help="compile processes for the whole run (default: CPUs)",
    )
    p.add_argument(
        "--builds",
        type=int,
        default=None,
        metavar="N",
        help="dependencies built at once, within --jobs (default: as many as --jobs allows; "
        "1: one after another, -j N each)",
    )
    p.add_argument(
        "--prefix",
        type=Path,
        default=None,
        help="output prefix (default: build/deps-<recipe>-<toolchain>)",
    )
    add_source_options(p)
    add_cache_dir(p)
    p.add_argument("--json", action="store_true", help="print the run report as JSON on stdout")


def _build(args: argparse.Namespace) -> int:
    toolchain = get_toolchain(args.toolchain)
    toolchain.check_host()  # msvc on Linux: exit 2 before anything is read or written
    recipe = load_recipe(args.recipe)
    overrides = parse_source_overrides(args.source)
    prefix = args.prefix or Path("build") / f"deps-{recipe.name}-{toolchain.name}"
    builder = DepsBuilder(
        recipe,
        toolchain,
        prefix,
        cache_dir=args.cache_dir,
        overrides=overrides,
        allow_unpinned=args.allow_unpinned,
        jobs=args.jobs,
        builds=args.builds,
    )
    report = builder.build(args.only or None)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        built = [r for r in report.results if r.status != "not-built"]
        progress(f"prefix {report.prefix}: {len(built)} dependencies ready")
        for r in report.results:
            if r.status == "not-built":
                progress(f"  not built: {r.name}: {r.entry['reason']}")
        print(report.manifest_path)
    return 0
