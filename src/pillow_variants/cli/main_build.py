"""``pillow-variants build all RECIPE`` (the whole pipeline) and ``build wheel`` (one stage).

Cross-compiles Pillow's extensions for win_amd64 with zig through Pillow's own setup.py and
writes the wheel (see :mod:`pillow_variants.build.pillow`). Progress goes to stderr; ``--json``
prints the build record on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from pillow_variants.build.pillow import WheelBuild, run_wheel_build
from pillow_variants.cli.options import add_cache_dir, add_source_options, add_subcommands
from pillow_variants.errors import UserError
from pillow_variants.recipe.model import load_recipe
from pillow_variants.sources.fetch import parse_source_overrides

COMMAND = "build"
HELP = "Build a recipe's wheels: the whole pipeline (all) or only the Pillow wheel (wheel)."


def configure(parser: argparse.ArgumentParser) -> None:
    add_subcommands(
        parser,
        {
            "all": (
                "Dependencies, SDK, wheel, repair, audit gate, Wine smoke test and provenance "
                "for each CPython version of the recipe (zig toolchain).",
                _configure_all,
                _all,
            ),
            "wheel": (
                "Cross-compile Pillow for one CPython version into a win_amd64 wheel.",
                _configure_wheel,
                _wheel,
            ),
        },
    )


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
    add_source_options(p, only="pillow")
    add_cache_dir(p)
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


def _configure_all(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", help="path to a recipe TOML file")
    p.add_argument(
        "--python",
        action="append",
        default=[],
        metavar="X.Y",
        help="only this CPython version (repeatable; default: every version of the recipe)",
    )
    p.add_argument("--out", type=Path, default=Path("dist"), help="wheel directory (./dist)")
    p.add_argument(
        "--deps-prefix", type=Path, help="dependency prefix (default: build/deps-<recipe>-zig)"
    )
    add_source_options(p)
    p.add_argument(
        "--sources-file",
        type=Path,
        help="file of NAME=PATH lines (as written by scripts/debian_sources.py --args-file)",
    )
    add_cache_dir(p)
    p.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 2, help="parallel jobs")
    p.add_argument(
        "--no-wine", action="store_true", help="skip the Wine rungs (wine, wine-nogui, suite)"
    )
    p.add_argument(
        "--suite",
        action="store_true",
        help="also run Pillow's test suite under Wine against the official wheel's run (the "
        "suite rung; minutes per wheel)",
    )
    p.add_argument("--json", action="store_true", help="print the run report as JSON on stdout")


def read_sources_file(path: Path) -> list[str]:
    """NAME=PATH lines (a leading ``--source``/``--source=`` is accepted, # comments ignored)."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise UserError(f"cannot read --sources-file {path}: {exc.strerror}") from None
    items = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        for prefix in ("--source=", "--source "):
            line = line.removeprefix(prefix)
        items.append(line.strip())
    return items


def _all(args: argparse.Namespace) -> int:
    from pillow_variants.pipeline import build_all

    recipe = load_recipe(args.recipe)
    items = list(args.source)
    if args.sources_file:
        items = read_sources_file(args.sources_file) + items
    report = build_all(
        recipe,
        pythons=args.python or None,
        out_dir=args.out,
        deps_prefix=args.deps_prefix,
        overrides=parse_source_overrides(items),
        cache_dir=args.cache_dir,
        allow_unpinned=args.allow_unpinned,
        jobs=args.jobs,
        wine=not args.no_wine,
        suite=args.suite and not args.no_wine,
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.summary())
    return report.exit_code
