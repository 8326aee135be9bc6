"""``pillow-variants sources fetch|extract``: fetch, verify and extract component sources.

::

    pillow-variants sources fetch RECIPE [COMPONENT...] [--source NAME=PATH]...
                                  [--cache-dir D] [--allow-unpinned] [--json]
    pillow-variants sources extract RECIPE COMPONENT DEST [--patched] [--source NAME=PATH]...
                                    [--cache-dir D] [--allow-unpinned] [--json]

The ``--json`` output of ``fetch`` follows ``schemas/sources-fetch.schema.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pillow_variants.cli import add_subcommands
from pillow_variants.errors import SourceError
from pillow_variants.recipe import Recipe, load_recipe
from pillow_variants.sources import (
    CACHE_ENV,
    FetchedSource,
    check_overrides,
    default_cache_dir,
    fetch_source,
    parse_source_overrides,
    prepare_source_tree,
)

COMMAND = "sources"
HELP = "Fetch component sources into the verified cache, or extract them."


def configure(parser: argparse.ArgumentParser) -> None:
    add_subcommands(
        parser,
        {
            "fetch": (
                "Fetch and verify component sources into the cache; print path, hash, origin.",
                _configure_fetch,
                _fetch,
            ),
            "extract": (
                "Extract a component's source tree to DEST (optionally with its patch set).",
                _configure_extract,
                _extract,
            ),
        },
    )


def run(args: argparse.Namespace) -> int:  # pragma: no cover - subcommands set their own _run
    raise AssertionError("unreachable")


def add_source_options(p: argparse.ArgumentParser) -> None:
    """The options every command that fetches sources takes."""
    p.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="use a local directory or archive for component NAME (recorded as local, "
        "unverified); repeatable",
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        help=f"source cache (default: ${CACHE_ENV} or {default_cache_dir()})",
    )
    p.add_argument(
        "--allow-unpinned",
        action="store_true",
        help='accept sources whose recipe sha256 is "unpinned" and record the computed hash',
    )
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")


def fetch_options(args: argparse.Namespace, recipe: Recipe) -> dict[str, Any]:
    """``fetch_source`` keyword arguments from the options of :func:`add_source_options`."""
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


def _configure_fetch(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", help="path to a recipe TOML file")
    p.add_argument("components", nargs="*", metavar="COMPONENT", help="default: all components")
    add_source_options(p)


def _fetch(args: argparse.Namespace) -> int:
    recipe = load_recipe(args.recipe)
    kwargs = fetch_options(args, recipe)
    for c in args.components:
        if c not in recipe.components:
            raise SourceError(
                f"no component {c!r} in recipe {recipe.name} "
                f"(components: {', '.join(recipe.components)})"
            )
    fetched = [fetch_source(recipe, c, **kwargs) for c in args.components or recipe.components]
    if args.json:
        doc = {
            "recipe": recipe.name,
            "cache_dir": str(args.cache_dir or default_cache_dir()),
            "sources": [{**f.manifest_entry(), "path": str(f.path)} for f in fetched],
        }
        print(json.dumps(doc, indent=2))
        return 0
    for f in fetched:
        print(f"{f.component:<14} {f.version:<9} {describe_source(f)}")
        print(f"{'':14} sha256 {f.sha256 or '-'}")
        print(f"{'':14} origin {f.origin}")
        print(f"{'':14} path   {f.path}")
    return 0


def _configure_extract(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", help="path to a recipe TOML file")
    p.add_argument("component", help="pillow or a dependency name")
    p.add_argument("dest", type=Path, help="directory to create (must not exist or be empty)")
    p.add_argument("--patched", action="store_true", help="apply the recipe's patch set too")
    add_source_options(p)


def _extract(args: argparse.Namespace) -> int:
    recipe = load_recipe(args.recipe)
    kwargs = fetch_options(args, recipe)
    tree, fetched = prepare_source_tree(
        recipe, args.component, args.dest, patched=args.patched, **kwargs
    )
    patches = [p.name for p in recipe.patch_files(args.component)] if args.patched else []
    if args.json:
        doc = {
            "component": args.component,
            "tree": str(tree.resolve()),
            "patched": args.patched,
            "patches": patches,
            "source": fetched.manifest_entry(),
        }
        print(json.dumps(doc, indent=2))
    else:
        applied = f", {len(patches)} patch(es) applied" if args.patched else ""
        print(f"{tree}  ({args.component} {fetched.version}, {describe_source(fetched)}{applied})")
    return 0
