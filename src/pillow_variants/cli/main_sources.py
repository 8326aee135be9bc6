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

from pillow_variants.cli.options import (
    add_fetch_options,
    add_subcommands,
    describe_source,
    fetch_options,
)
from pillow_variants.errors import SourceError
from pillow_variants.recipe.model import load_recipe
from pillow_variants.sources.fetch import (
    default_cache_dir,
    fetch_source,
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


def _configure_fetch(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", help="path to a recipe TOML file")
    p.add_argument("components", nargs="*", metavar="COMPONENT", help="default: all components")
    add_fetch_options(p)


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
    add_fetch_options(p)


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
