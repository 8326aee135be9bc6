"""``pillow-variants cibw {build,prepare,gate}``: the Windows-host build with MSVC and cibuildwheel.

::

    pillow-variants cibw build RECIPE [--toolchain msvc] [--python X.Y ...] [--variant V]
                               [--work-dir WINPATH] [--out WINPATH] [--plan-dir DIR] [--dry-run]
    pillow-variants cibw prepare RECIPE DEST [--source pillow=PATH] [--cache-dir D]
                                 [--allow-unpinned]
    pillow-variants cibw gate DIR|WHEEL... [--surface S] [--policy P]

``build`` writes ``cibuildwheel.toml`` and ``build-windows.cmd`` (see
:mod:`pillow_variants.build.cibw`) and runs the script; ``--dry-run`` prints both and every
command instead, on any host. Without ``--dry-run`` it needs a Windows host with Visual
Studio (exit 2 elsewhere). ``prepare`` and ``gate`` are the script's own steps (the Pillow
tree, and the audit after delvewheel repair); both run on any host.
"""

from __future__ import annotations

import argparse
import ntpath
import sys
from pathlib import Path

from pillow_variants._log import progress
from pillow_variants.audit import MODES
from pillow_variants.audit.engine import DEFAULT_SURFACE, audit_paths
from pillow_variants.build import cibw
from pillow_variants.cli.options import add_cache_dir, add_source_options, add_subcommands
from pillow_variants.errors import EXIT_OK, UserError
from pillow_variants.recipe.model import VARIANTS, load_recipe
from pillow_variants.sources.fetch import parse_source_overrides
from pillow_variants.toolchains.msvc import MsvcToolchain

COMMAND = "cibw"
HELP = "Windows-host build: MSVC dependencies + cibuildwheel (generated config, --dry-run)."


def configure(parser: argparse.ArgumentParser) -> None:
    add_subcommands(
        parser,
        {
            "build": (
                "Generate cibuildwheel.toml + build-windows.cmd and run them (Windows + MSVC).",
                _configure_build,
                _build,
            ),
            "prepare": (
                "Extract the verified Pillow sdist, apply the patch set, set the local version.",
                _configure_prepare,
                _prepare,
            ),
            "gate": (
                "Audit repaired wheels (cibuildwheel's repair step); exit 1 on findings.",
                _configure_gate,
                _gate,
            ),
        },
    )


def _configure_build(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", help="path to a recipe TOML file")
    p.add_argument(
        "--toolchain",
        choices=["msvc"],
        default="msvc",
        help="msvc (the only toolchain cibuildwheel drives here; zig: 'build wheel')",
    )
    p.add_argument(
        "--python",
        action="append",
        default=[],
        metavar="X.Y",
        help="CPython version to build (repeatable; default: the recipe's)",
    )
    p.add_argument(
        "--variant", choices=VARIANTS, help="smoke-test variant (default: the recipe's name)"
    )
    p.add_argument(
        "--work-dir",
        help=f"Windows path for deps and the Pillow tree (default: {cibw.DEFAULT_WORK_DIR})",
    )
    p.add_argument("--out", default=cibw.DEFAULT_OUT_DIR, help="wheel directory (Windows path)")
    p.add_argument(
        "--plan-dir",
        type=Path,
        help="where to write the generated files (default: the work directory)",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="print the configuration and commands; run nothing"
    )


def _build(args: argparse.Namespace) -> int:
    if not args.dry_run:
        MsvcToolchain().check_host()  # exit 2 before anything is written
    recipe = load_recipe(args.recipe)
    plan = cibw.plan_build(
        recipe,
        pythons=args.python or None,
        variant=args.variant,
        work_dir=args.work_dir,
        out_dir=args.out,
    )
    plan_dir = args.plan_dir or _local_dir(recipe.root, plan.work_dir)
    if args.dry_run:
        config, script = plan.write(plan_dir)
        print(plan.dry_run_text(), end="")
        progress(f"wrote {config} and {script} (dry run: nothing was run)")
        return EXIT_OK
    rc = cibw.run_plan(plan, plan_dir)
    if rc != 0:
        raise UserError(f"{plan_dir / cibw.SCRIPT_NAME} failed (exit {rc}); see its output above")
    return EXIT_OK


def _local_dir(root: Path, work_dir: str) -> Path:
    """The work directory on this host (a relative Windows path is under the project root)."""
    if ntpath.isabs(work_dir):
        if sys.platform != "win32":
            raise UserError(f"--work-dir {work_dir} is a Windows path: pass --plan-dir here")
        return Path(work_dir)
    return root / Path(*work_dir.split("\\"))


def _configure_prepare(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", help="path to a recipe TOML file")
    p.add_argument("dest", type=Path, help="directory to create (must not exist or be empty)")
    add_source_options(p, only="pillow")
    add_cache_dir(p)


def _prepare(args: argparse.Namespace) -> int:
    recipe = load_recipe(args.recipe)
    tree, fetched, patches = cibw.prepare_pillow(
        recipe,
        args.dest,
        overrides=parse_source_overrides(args.source),
        cache_dir=args.cache_dir,
        allow_unpinned=args.allow_unpinned,
    )
    origin = "local, unverified" if fetched.local else f"sha256 {fetched.sha256}"
    progress(
        f"prepared {tree}: pillow {recipe.wheel_version} ({origin}),"
        f" {len(patches)} patch(es) applied"
    )
    print(tree)
    return EXIT_OK


def _configure_gate(p: argparse.ArgumentParser) -> None:
    p.add_argument("targets", nargs="+", type=Path, metavar="DIR|WHEEL")
    p.add_argument("--surface", default=DEFAULT_SURFACE, metavar="NAME|FILE")
    p.add_argument("--policy", choices=MODES, default="both")


def _gate(args: argparse.Namespace) -> int:
    wheels = cibw.gate_wheels(args.targets)
    report = audit_paths(wheels, surface=args.surface, policy=args.policy)
    print(report.to_text(verbose=False))
    return report.exit_code
