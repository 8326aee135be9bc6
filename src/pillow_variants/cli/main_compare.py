"""``pillow-variants compare A.whl B.whl [--json]``: how two wheels differ."""

from __future__ import annotations

import argparse
import json

from pillow_variants.errors import EXIT_FINDINGS, EXIT_OK
from pillow_variants.release.compare import compare_wheels, format_report

COMMAND = "compare"
HELP = "Compare two wheels: modules, import tables, files, sizes, build manifests (1: differ)."


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("a", metavar="A.whl", help="first wheel (e.g. the official one)")
    parser.add_argument("b", metavar="B.whl", help="second wheel (e.g. the variant)")
    parser.add_argument("--json", action="store_true", help="machine-readable report on stdout")


def run(args: argparse.Namespace) -> int:
    report = compare_wheels(args.a, args.b)
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print(format_report(report))
    return EXIT_OK if report["identical"] else EXIT_FINDINGS
