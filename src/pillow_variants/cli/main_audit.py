"""``pillow-variants audit TARGET... [--surface NAME|FILE] [--policy strict|surface|both] [--json]``

Answers "will this wheel import in nanoserver?" function by function: every import of every
PE file in the target is bound against the wheel itself, the Python runtime and a surface
profile, with Windows' own error numbers (126 module / 127 procedure not found).
"""

from __future__ import annotations

import argparse

from pillow_variants.audit import MODES
from pillow_variants.audit.engine import DEFAULT_SURFACE, audit_paths
from pillow_variants.pe import prefer_builtin_hashes

COMMAND = "audit"
HELP = "Check that wheels/PE files will load on a Windows surface (e.g. nanoserver), per function."


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("targets", nargs="+", metavar="TARGET", help=".whl, directory or PE file")
    parser.add_argument(
        "--surface",
        default=DEFAULT_SURFACE,
        metavar="NAME|FILE",
        help=f"surface profile: built-in name or JSON file (default: {DEFAULT_SURFACE})",
    )
    parser.add_argument(
        "--policy",
        choices=MODES,
        default="both",
        help="strict: import rules only; surface: loader simulation only; both (default)",
    )
    parser.add_argument(
        "--rules", default="strict", metavar="NAME|FILE", help="rule set for the strict policy"
    )
    parser.add_argument("--json", action="store_true", help="JSON report on stdout")


def run(args: argparse.Namespace) -> int:
    prefer_builtin_hashes()  # this process hashes nothing: no OpenSSL for pefile's hashlib
    report = audit_paths(
        args.targets, surface=args.surface, policy=args.policy, policy_file=args.rules
    )
    verbose = getattr(args, "verbose", 0) > 0  # -v lists every DLL and function
    print(report.to_json() if args.json else report.to_text(verbose=verbose))
    return report.exit_code
