"""``pillow-variants patches check``: apply every patch set of a recipe to fresh sources.

::

    pillow-variants patches check RECIPE [--only COMPONENT...] [--source NAME=PATH]...
                                  [--cache-dir D] [--allow-unpinned] [--json]

Each patched component's source is fetched (verified, through the cache) and extracted into a
temporary directory; its patches are applied in order and reported one by one: ``ok``,
``failed`` (with the file and hunk) or ``skipped`` (after a failure). Exit 0 when every patch
applies, 1 when any fails, 2 on usage or source errors. The ``--json`` output follows
``schemas/patches-check.schema.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pillow_variants._log import progress
from pillow_variants.cli.options import (
    add_fetch_options,
    add_subcommands,
    describe_source,
    fetch_options,
)
from pillow_variants.errors import EXIT_FINDINGS, EXIT_OK, UserError
from pillow_variants.recipe.model import Recipe, load_recipe
from pillow_variants.sources.fetch import FetchedSource, extract_source, fetch_source
from pillow_variants.sources.patches import PatchResult, check_patch_set

COMMAND = "patches"
HELP = "Check that a recipe's patch sets apply to the verified sources."


def configure(parser: argparse.ArgumentParser) -> None:
    add_subcommands(
        parser,
        {
            "check": (
                "Apply each patch set of RECIPE to a fresh copy of its source; report per patch.",
                _configure_check,
                _check,
            )
        },
    )


def _configure_check(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", help="path to a recipe TOML file")
    p.add_argument(
        "--only",
        nargs="+",
        default=[],
        metavar="COMPONENT",
        help="check only these components' patch sets",
    )
    add_fetch_options(p)


def patched_components(recipe: Recipe, only: list[str]) -> list[str]:
    """Components with a non-empty patch set, restricted to ``only`` (validated) if given."""
    with_patches = [c for c, files in recipe.patches.items() if files]
    for c in only:
        if c not in recipe.components:
            raise UserError(
                f"--only {c}: no such component in recipe {recipe.name} "
                f"(components: {', '.join(recipe.components)})"
            )
        if c not in with_patches:
            raise UserError(f"--only {c}: recipe {recipe.name} has no patch set for {c}")
    return [c for c in with_patches if not only or c in only]


@dataclass(frozen=True)
class ComponentCheck:
    """One component's patch-set check: the source it ran on and each patch's result."""

    component: str
    fetched: FetchedSource
    results: list[PatchResult]

    @property
    def ok(self) -> bool:
        return all(r.status == "ok" for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "version": self.fetched.version,
            "source": self.fetched.manifest_entry(),
            "results": [r.to_dict() for r in self.results],
        }


def check_component(recipe: Recipe, component: str, **fetch_kwargs: Any) -> ComponentCheck:
    """Fetch, extract to a temporary tree and check ``component``'s patch set."""
    fetched = fetch_source(recipe, component, **fetch_kwargs)
    with tempfile.TemporaryDirectory(prefix="pv-patches-check-") as tmp:
        tree = extract_source(fetched, Path(tmp) / "tree")
        results = check_patch_set(tree, recipe.patch_files(component))
    return ComponentCheck(component, fetched, results)


def _check(args: argparse.Namespace) -> int:
    recipe = load_recipe(args.recipe)
    kwargs = fetch_options(args, recipe)
    components = patched_components(recipe, args.only)
    checked = []
    for c in components:
        progress(f"checking {c} ({len(recipe.patches[c])} patches)")
        checked.append(check_component(recipe, c, **kwargs))
    all_ok = all(c.ok for c in checked)
    if args.json:
        doc = {"recipe": recipe.name, "ok": all_ok, "components": [c.to_dict() for c in checked]}
        print(json.dumps(doc, indent=2))
    else:
        print(format_report(recipe, checked))
    return EXIT_OK if all_ok else EXIT_FINDINGS


def format_report(recipe: Recipe, checked: list[ComponentCheck]) -> str:
    """The text report: one line per component, one per patch, and a summary."""
    if not checked:
        return f"recipe {recipe.name} has no patch sets"
    lines = []
    total = bad = 0
    for c in checked:
        f = c.fetched
        lines.append(f"{c.component} {f.version}  ({f.origin}, {describe_source(f)})")
        for r in c.results:
            total += 1
            if r.status == "ok":
                lines.append(f"  ok       {r.name}  {r.patch.summary if r.patch else ''}")
            else:
                bad += 1
                detail = r.describe().split(": ", 1)[1] if r.status == "failed" else ""
                lines.append(f"  {r.status:<8} {r.name}  {detail}".rstrip())
    lines.append(
        f"all {total} patches apply" if not bad else f"{bad} of {total} patches failed or skipped"
    )
    return "\n".join(lines)
