"""``pillow-variants verify wine WHEEL... [--variant V] [--json] [--python-dir D]``.

Installs each wheel into python.org's embeddable CPython of the wheel's version (pinned,
Authenticode-checked) and runs ``scripts/smoke_test.py`` there under Wine. Exit 0 when every
wheel passes, 1 when one fails, 2 on usage errors (no Wine, no matching CPython, bad wheel).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pillow_variants import verify
from pillow_variants.cli import add_subcommands
from pillow_variants.errors import EXIT_FINDINGS, EXIT_OK

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
            )
        },
    )


def run(args: argparse.Namespace) -> int:  # pragma: no cover - subcommands set their own _run
    raise AssertionError("unreachable")


def _configure_wine(p: argparse.ArgumentParser) -> None:
    p.add_argument("wheels", nargs="+", type=Path, metavar="WHEEL", help="win_amd64 wheel(s)")
    p.add_argument(
        "--variant", choices=verify.VARIANTS, default="upstream", help="what the smoke test asserts"
    )
    p.add_argument(
        "--python-dir",
        type=Path,
        help="a Windows CPython directory to use instead of the pinned one",
    )
    p.add_argument(
        "--smoke-test", type=Path, help="smoke test script (default: scripts/smoke_test.py)"
    )
    p.add_argument("--font", type=Path, help="an extra TrueType font for the text checks")
    p.add_argument(
        "--timeout", type=float, default=verify.DEFAULT_TIMEOUT, help="seconds per wheel"
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        help="cache directory (default: PILLOW_VARIANTS_CACHE or user cache)",
    )
    p.add_argument("--json", action="store_true", help="print the verdicts as JSON on stdout")


def _wine(args: argparse.Namespace) -> int:
    verdicts = []
    for wheel in args.wheels:
        print(f"verify wine: {wheel.name} ({args.variant})", file=sys.stderr, flush=True)
        v = verify.verify_wine(
            wheel,
            variant=args.variant,
            python_dir=args.python_dir,
            cache_dir=args.cache_dir,
            smoke_test=args.smoke_test,
            font=args.font,
            timeout=args.timeout,
            on_line=verify.progress_line,
        )
        verdicts.append(v)
        if not args.json:
            status = "PASS" if v.passed else "FAIL"
            where = f"CPython {v.cpython} under Wine, {v.variant}"
            print(f"{status}  {v.wheel}  {where}: {v.reason} ({v.seconds} s)")
    if args.json:
        doc = {"schema": SCHEMA, "verdicts": [v.to_dict() for v in verdicts]}
        print(json.dumps(doc, indent=2))
    return EXIT_OK if all(v.passed for v in verdicts) else EXIT_FINDINGS
