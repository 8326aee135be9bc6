"""``pillow-variants verify wine WHEEL... [--variant V] [--no-gui] [--json] [--python-dir D]``,
``pillow-variants verify suite WHEEL... [--recipe R] [--official W] [--record] [--json]``
and ``pillow-variants verify container WHEEL... [--dry-run] [--image-digest sha256:...]``.

Installs each wheel into python.org's embeddable CPython of the wheel's version (pinned,
Authenticode-checked) and runs the package's smoke test (``payload/smoke_test.py``) there under
Wine. Exit 0 when every wheel passes, 1 when one fails, 2 on usage errors (no Wine, no matching
CPython, bad wheel). ``--no-gui`` is the ``wine-nogui`` rung: Wine with every DLL the strict
policy names disabled, where the official wheel fails to import ``_imaging``.

``suite`` runs upstream Pillow's own test suite (the recipe's sdist) on each wheel and on the
official wheel of the same version under Wine, and passes when every per-test difference is a
test of a feature the recipe's feature report removes (:mod:`pillow_variants.verify.suite`).

``container`` assembles, per wheel, a Docker build context (servercore stage installs the wheel
into the same embeddable CPython, nanoserver stage runs ``payload/check_imports.py`` and the
smoke test) and captures the image's System32 as a surface profile; see
:mod:`pillow_variants.verify.container`. ``--dry-run`` writes the contexts and prints the
Dockerfiles and commands on any host; a real run needs Windows with Docker in
Windows-containers mode and, with ``--record``, records the ``container`` rung in each wheel's
build manifest.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pillow_variants._log import progress
from pillow_variants.audit.engine import audit_paths
from pillow_variants.build import pysdk
from pillow_variants.cli.options import add_cache_dir, add_subcommands
from pillow_variants.errors import EXIT_FINDINGS, EXIT_OK, UserError
from pillow_variants.recipe.model import Recipe, load_recipe
from pillow_variants.sources.fetch import default_cache_dir
from pillow_variants.verify import container, ladder, suite
from pillow_variants.wheeltools import MANIFEST_NAME, add_files, dumps_json, read_manifest

COMMAND = "verify"
SCHEMA = "pillow-variants-verify-wine/1"  # schemas/verify-wine.schema.json
HELP = "Run verification rungs on built wheels (Wine: official embeddable CPython + smoke test)."


def configure(parser: argparse.ArgumentParser) -> None:
    add_subcommands(
        parser,
        {
            "wine": (
                "Install wheels into official embeddable CPython; run the smoke test under Wine.",
                _configure_wine,
                _wine,
            ),
            "suite": (
                "Run Pillow's own test suite under Wine; compare with the official wheel's run.",
                _configure_suite,
                _suite,
            ),
            "container": (
                "Check imports + smoke test in nanoserver:ltsc2022 (Windows host with Docker).",
                _configure_container,
                _container,
            ),
        },
    )


def run(args: argparse.Namespace) -> int:  # pragma: no cover - subcommands set their own _run
    raise AssertionError("unreachable")


def _configure_wine(p: argparse.ArgumentParser) -> None:
    p.add_argument("wheels", nargs="+", type=Path, metavar="WHEEL", help="win_amd64 wheel(s)")
    p.add_argument(
        "--variant", choices=ladder.VARIANTS, default="upstream", help="what the smoke test asserts"
    )
    p.add_argument(
        "--python-dir",
        type=Path,
        help="a Windows CPython directory to use instead of the pinned one",
    )
    p.add_argument(
        "--smoke-test",
        type=Path,
        help="smoke test script (default: the one shipped in the package)",
    )
    p.add_argument("--font", type=Path, help="an extra TrueType font for the text checks")
    p.add_argument(
        "--no-gui",
        action="store_true",
        help="the wine-nogui rung: every DLL the strict policy names is disabled in Wine",
    )
    p.add_argument(
        "--record",
        action="store_true",
        help="record the rung (wine, or wine-nogui) in each wheel's build manifest (rewritten)",
    )
    p.add_argument(
        "--timeout", type=float, default=ladder.DEFAULT_TIMEOUT, help="seconds per wheel"
    )
    add_cache_dir(p)
    p.add_argument("--json", action="store_true", help="print the verdicts as JSON on stdout")


def _wine(args: argparse.Namespace) -> int:
    verdicts = []
    for wheel in args.wheels:
        rung = "wine-nogui" if args.no_gui else "wine"
        progress(f"verify {rung}: {wheel.name} ({args.variant})")
        with _python_dir_hint():
            v = ladder.verify_wine(
                wheel,
                variant=args.variant,
                python_dir=args.python_dir,
                cache_dir=args.cache_dir,
                smoke_test=args.smoke_test,
                font=args.font,
                timeout=args.timeout,
                on_line=ladder.progress_line,
                no_gui=args.no_gui,
            )
        verdicts.append(v)
        if args.record:
            _record(wheel, v.rung, v.rung_result())
        if not args.json:
            status = "PASS" if v.passed else "FAIL"
            gui = ", GUI DLLs disabled" if v.disabled_dlls else ""
            where = f"CPython {v.cpython} under Wine{gui}, {v.variant}"
            print(f"{status}  {v.wheel}  {where}: {v.reason} ({v.seconds} s)")
    if args.json:
        doc = {"schema": SCHEMA, "verdicts": [v.to_dict() for v in verdicts]}
        print(json.dumps(doc, indent=2))
    return EXIT_OK if all(v.passed for v in verdicts) else EXIT_FINDINGS


def _configure_suite(p: argparse.ArgumentParser) -> None:
    p.add_argument("wheels", nargs="+", type=Path, metavar="WHEEL", help="win_amd64 wheel(s)")
    p.add_argument(
        "--recipe",
        type=Path,
        help="the wheels' recipe: its pinned sdist gives the suite, its feature report the "
        "allowed differences (default: recipes/NAME.toml, NAME from the wheel's manifest)",
    )
    p.add_argument("--sdist", type=Path, help="Pillow sdist (archive or tree) instead of the pin")
    p.add_argument(
        "--official", type=Path, help="the official wheel to compare with (default: pip fetches it)"
    )
    p.add_argument(
        "--pytest-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra pytest argument, repeatable (e.g. --pytest-arg=-k --pytest-arg=wmf, or a "
        "Tests/ file); the default runs the whole suite",
    )
    p.add_argument(
        "--timeout", type=float, default=suite.DEFAULT_TIMEOUT, help="seconds per suite run"
    )
    p.add_argument(
        "--record",
        action="store_true",
        help="record the suite rung in each wheel's build manifest (wheels are rewritten)",
    )
    add_cache_dir(p)
    p.add_argument("--json", action="store_true", help="print the verdicts as JSON on stdout")


def _suite_recipe(wheel: Path, given: Path | None) -> Recipe:
    if given is not None:
        return load_recipe(given)
    name = ((read_manifest(wheel) or {}).get("recipe") or {}).get("name")
    path = Path("recipes") / f"{name or 'upstream'}.toml"
    if not path.is_file():
        raise UserError(f"{wheel.name}: no recipe {path} here; give it with --recipe")
    return load_recipe(path)


def _suite(args: argparse.Namespace) -> int:
    cache_dir = (args.cache_dir or default_cache_dir()).resolve()
    verdicts = []
    for wheel in args.wheels:
        recipe = _suite_recipe(wheel, args.recipe)
        progress(f"verify suite: {wheel.name} (recipe {recipe.name})")
        v = suite.verify_suite_for_recipe(
            wheel,
            recipe,
            cache_dir=cache_dir,
            sdist=args.sdist,
            official=args.official,
            select=args.pytest_arg,
            timeout=args.timeout,
        )
        verdicts.append(v)
        if args.record:
            _record(wheel, "suite", v.rung_result())
        if not args.json:
            print(f"{'PASS' if v.passed else 'FAIL'}  {wheel.name}  Pillow's suite: {v.reason}")
            for d in v.comparison.differences:
                why = f"removed feature {d.feature}" if d.feature else "UNEXPLAINED"
                print(f"  {d.test}: {d.official} → {d.ours}  ({why})")
    if args.json:
        doc = {"schema": suite.SCHEMA, "verdicts": [v.to_dict() for v in verdicts]}
        print(json.dumps(doc, indent=2))
    return EXIT_OK if all(v.passed for v in verdicts) else EXIT_FINDINGS


def _record(wheel: Path, rung: str, result: dict[str, Any]) -> None:
    """Record ``rung`` in the wheel's build manifest (the wheel is rewritten in place)."""
    manifest = read_manifest(wheel)
    if manifest is None:
        print(f"{wheel.name}: no build manifest; rung not recorded", file=sys.stderr)
        return
    ladder.record_rung(manifest, rung, result)
    add_files(wheel, {"{dist_info}/" + MANIFEST_NAME: dumps_json(manifest)})


@contextlib.contextmanager
def _python_dir_hint() -> Iterator[None]:
    """A CPython version without a pinned embeddable build: name this command's option."""
    try:
        yield
    except pysdk.NotPinned as exc:
        raise UserError(f"{exc}; pass --python-dir with a Windows CPython directory") from None


def _configure_container(p: argparse.ArgumentParser) -> None:
    p.add_argument("wheels", nargs="+", type=Path, metavar="WHEEL", help="win_amd64 wheel(s)")
    p.add_argument(
        "--variant", choices=ladder.VARIANTS, default="upstream", help="what the smoke test asserts"
    )
    p.add_argument(
        "--image-digest",
        metavar="sha256:...",
        help="nanoserver:ltsc2022 digest (default: the pin in data/images.json)",
    )
    p.add_argument("--servercore-digest", metavar="sha256:...", help="servercore:ltsc2022 digest")
    p.add_argument(
        "--context-dir",
        type=Path,
        default=Path("build") / "verify-container",
        help="where the build contexts and the capture go (default: build/verify-container)",
    )
    p.add_argument(
        "--python-dir", type=Path, help="a Windows CPython directory instead of the pinned one"
    )
    p.add_argument(
        "--scripts-dir",
        type=Path,
        help="directory with smoke_test.py and check_imports.py (default: the package's own)",
    )
    add_cache_dir(p)
    p.add_argument(
        "--no-capture", action="store_true", help="skip the System32 capture and its audit"
    )
    p.add_argument(
        "--record",
        action="store_true",
        help="record the container rung in each wheel's build manifest (wheels are rewritten)",
    )
    p.add_argument(
        "--timeout", type=float, default=container.DEFAULT_TIMEOUT, help="seconds per docker step"
    )
    p.add_argument("--dry-run", action="store_true", help="write contexts, print; run nothing")


def _container(args: argparse.Namespace) -> int:
    docker = None if args.dry_run else container.check_host()  # exit 2 before any work
    nano = container.image_pin("nanoserver", args.image_digest)
    core = container.image_pin("servercore", args.servercore_digest)
    plans = []
    for wheel in args.wheels:
        with _python_dir_hint():
            plan, pristine = container.plan_wheel(
                wheel,
                variant=args.variant,
                servercore=core,
                nanoserver=nano,
                python_dir=args.python_dir,
                cache_dir=args.cache_dir,
            )
        context = args.context_dir / plan.wheel.name[: -len(".whl")]
        container.write_context(plan, pristine, context, args.scripts_dir)
        plans.append(plan)
    capture_dir = args.context_dir / "capture"
    if docker is None:
        for plan in plans:
            print(f"# {Path(str(plan.context)) / 'Dockerfile'}")
            print(plan.dockerfile())
            print(f"# commands for {plan.wheel.name}")
            for argv in plan.commands(str(plan.context)):
                print(subprocess.list2cmdline(argv))
            print()
        if not args.no_capture:
            print("# surface capture of the same nanoserver image, then the audit against it")
            for argv in container.capture_commands(nano, capture_dir, "pv-capture"):
                print(subprocess.list2cmdline(argv))
            for plan in plans:
                profile = capture_dir / container.CAPTURED_PROFILE
                argv = ["pillow-variants", "audit", str(plan.wheel), "--surface", str(profile)]
                print(subprocess.list2cmdline([*argv, "--policy", "surface"]))
        print("dry run: nothing was run; no rung recorded", file=sys.stderr)
        return EXIT_OK
    return _run_containers(args, plans, docker, nano, capture_dir)


def _run_containers(
    args: argparse.Namespace,
    plans: list[container.ContainerPlan],
    docker: str,
    nano: container.ImagePin,
    capture_dir: Path,
) -> int:
    verdicts = [container.run_plan(plan, docker, args.timeout) for plan in plans]
    ok = all(v.passed for v in verdicts)
    for v in verdicts:
        print(f"{'PASS' if v.passed else 'FAIL'}  {v.wheel}  {v.image}: {v.reason}")
    if not args.no_capture:
        capture_dir.mkdir(parents=True, exist_ok=True)
        profile = container.capture_surface_in_container(nano, docker, capture_dir, args.timeout)
        report = audit_paths([p.wheel for p in plans], surface=str(profile), policy="surface")
        print(f"audit against the captured {profile.name}:")
        print(report.to_text(verbose=False))
        ok = ok and report.exit_code == EXIT_OK
    if args.record:
        for plan, v in zip(plans, verdicts, strict=True):
            _record(plan.wheel, "container", v.rung_result())
    return EXIT_OK if ok else EXIT_FINDINGS
