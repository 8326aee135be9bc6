"""``pillow-variants recipe show RECIPE [--json]``: print a resolved recipe."""

from __future__ import annotations

import argparse
import json

from pillow_variants.cli.options import add_subcommands
from pillow_variants.errors import one_line
from pillow_variants.recipe.model import Recipe, load_recipe

COMMAND = "recipe"
HELP = "Inspect recipes (inheritance applied, validated)."


def configure(parser: argparse.ArgumentParser) -> None:
    add_subcommands(
        parser,
        {"show": ("Print the resolved recipe (inheritance applied).", _configure_show, _show)},
    )


def _configure_show(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", help="path to a recipe TOML file")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _show(args: argparse.Namespace) -> int:
    recipe = load_recipe(args.recipe)
    if args.json:
        print(json.dumps(recipe.to_dict(), indent=2))
    else:
        print(format_recipe(recipe))
    return 0


def format_recipe(r: Recipe) -> str:
    lines = [
        f"recipe      {r.name}  ({r.path})",
        f"            {r.description}",
    ]
    if r.inherits:
        lines.append(f"inherits    {r.inherits}")
    tags = ", ".join("cp" + v.replace(".", "") for v in r.python)
    lines += [
        f"wheel       pillow {r.wheel_version}  {r.platform}  {tags}",
        f"audit       surface {r.audit.surface}, policy {r.audit.policy}",
        f"pillow      {r.pillow.version}  {r.pillow.source.pip or r.pillow.source.url}",
        f"            config-settings: {' '.join(r.pillow.config_settings) or '-'}",
        "dependencies (build order):",
    ]
    for name in r.build_order():
        d = r.dependencies[name]
        pin = d.source.sha256[:12] if d.source.pinned else "UNPINNED"
        extra = "" if d.in_wheel else "  (not in wheel)"
        deps = f"  after {', '.join(d.depends)}" if d.depends else ""
        lines.append(
            f"  {name:<14} {d.project} {d.version:<8} {d.build_system:<8} {pin}{deps}{extra}"
        )
    if r.patches:
        lines.append("patches:")
        for comp, files in r.patches.items():
            for f in files:
                lines.append(f"  {comp:<14} {f}")
    lines.append("features:")
    for name, feat in r.features.items():
        why = f"  — {feat.reason}" if feat.reason else ""
        lines.append(f"  {name:<16} {feat.state}{why}")
    # recipe strings must not move the cursor, clear the screen or reorder text
    return "\n".join(one_line(line) for line in lines)
