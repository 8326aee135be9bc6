"""``pillow-variants audit TARGET... [--surface NAME|FILE] [--policy strict|surface|both] [--json]``

Answers "will this wheel import in nanoserver?" function by function: every import of every
PE file in the target is bound against the wheel itself, the Python runtime and a surface
profile, with Windows' own error numbers (126 module / 127 procedure not found).
"""

from __future__ import annotations

import argparse
import sys

from pillow_variants.audit import MODES
from pillow_variants.audit.engine import DEFAULT_SURFACE, audit_paths
from pillow_variants.pe import prefer_builtin_hashes

#: The GIL switch interval while auditing. The threads inflating a wheel release the GIL while
#: zlib/ISA-L works and need it back after every chunk; with the default 5 ms each of those
#: waits for the main thread, busy importing and parsing, to be made to let go: inflating a
#: Pillow wheel beside a busy main thread took ~75 ms instead of ~30, ~45 ms at 0.5 ms.
SWITCH_INTERVAL = 0.0005

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
    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, SWITCH_INTERVAL))
    try:
        report = audit_paths(
            args.targets, surface=args.surface, policy=args.policy, policy_file=args.rules
        )
    finally:  # main() may be called in a longer-lived process (the tests do)
        sys.setswitchinterval(interval)
    verbose = getattr(args, "verbose", 0) > 0  # -v lists every DLL and function
    print(report.to_json() if args.json else report.to_text(verbose=verbose))
    return report.exit_code
