"""``pillow-variants build wheel RECIPE --python 3.13 --deps-prefix DIR --sdk DIR``.

Cross-compiles Pillow's extensions for win_amd64 with zig through Pillow's own setup.py and
writes the wheel (see :mod:`pillow_variants.build`). Progress goes to stderr; ``--json`` prints
the build record on stdout.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pillow_variants.build import WheelBuild, run_wheel_build
from pillow_variants.cli import add_subcommands
from pillow_variants.errors import UserError
from pillow_variants.recipe import load_recipe
from pillow_variants.sources import parse_source_overrides

COMMAND = "build"
HELP = "Build stages of a recipe (the wheel, cross-compiled with zig)."


def configure(parser: argparse.ArgumentParser) -> None:
    add_subcommands(
        parser,
        {
            "wheel": (
                "Cross-compile Pillow for one CPython version into a win_amd64 wheel.",
                _configure_wheel,
                _wheel,
            )
        },
    )


def run(args: argparse.Namespace) -> int:  # pragma: no cover - subcommands set their own _run
    raise AssertionError("unreachable")


def _configure_wheel(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", help="path to a recipe TOML file")
    p.add_argument("--python", required=True, help="target CPython minor version, e.g. 3.13")
    p.add_argument(
        "--deps-prefix",
        required=True,
        type=Path,
        help="prefix of statically built dependencies (include/, lib/*.a), from 'deps build'",
    )
    p.add_argument(
        "--sdk", required=True, type=Path, help="Windows CPython SDK directory, from 'sdk prepare'"
    )
    p.add_argument("--out", type=Path, default=Path("dist"), help="wheel directory (./dist)")
    p.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="pillow=PATH",
        help="use a local Pillow tree or sdist instead of the recipe's (recorded as local)",
    )
    p.add_argument("--cache-dir", type=Path, help="download/build-env cache")
    p.add_argument(
        "--allow-unpinned", action="store_true", help="accept a source without a pinned sha256"
    )
    p.add_argument("--work-dir", type=Path, help="keep the patched tree, sysconfig and log here")
    p.add_argument("-j", "--jobs", type=int, help="parallel compile jobs (default: CPUs)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _wheel(args: argparse.Namespace) -> int:
    recipe = load_recipe(args.recipe)
    overrides = parse_source_overrides(args.source)
    others = sorted(set(overrides) - {"pillow"})
    if others:
        raise UserError(
            f"--source {others[0]}=…: this stage builds Pillow only (deps: 'deps build')"
        )
    result = run_wheel_build(
        recipe,
        args.python,
        args.deps_prefix,
        args.sdk,
        args.out,
        source_overrides=overrides,
        cache_dir=args.cache_dir,
        allow_unpinned=args.allow_unpinned,
        work_dir=args.work_dir,
        jobs=args.jobs,
    )
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(format_build(result))
    return 0


def format_build(b: WheelBuild) -> str:
    lines = [
        f"wheel       {b.wheel}",
        f"            {b.tag}  version {b.version}  ({b.seconds:.0f} s)",
        f"settings    {' '.join(f'{k}={v}' for k, vs in b.config_settings.items() for v in vs)}",
        "extensions:",
    ]
    for e in b.extensions:
        lines.append(f"  {e.name}  {e.machine}  {', '.join(e.imports)}")
    if b.log:
        lines.append(f"log         {b.log}")
    return "\n".join(lines)
