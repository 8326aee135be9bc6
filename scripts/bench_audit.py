#!/usr/bin/env python3
"""Wall time of ``pillow-variants audit`` beside ``delvewheel show`` on the same wheel.

    python scripts/bench_audit.py WHEEL [--repeat N] [--surface NAME]

Both run as fresh processes of this interpreter (startup, imports and parsing included) and
the best of N runs is compared. The audit binds every imported function against the surface;
delvewheel works at DLL level. Target: ratio <= 1.0. Needs delvewheel installed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1) or not proc.stdout or "Traceback" in proc.stderr:
        sys.exit(f"error: {' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return elapsed


def in_process(wheel: str, surface: str) -> float:
    """The audit alone (no interpreter start, no CLI), after one warm-up run."""
    from pillow_variants.audit.engine import audit_paths

    audit_paths([wheel], surface=surface).to_json()
    start = time.perf_counter()
    audit_paths([wheel], surface=surface).to_json()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheel")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--surface", default="nanoserver-ltsc2022")
    args = parser.parse_args(argv)
    audit_cmd = [sys.executable, "-m", "pillow_variants", "audit", args.wheel,
                 "--surface", args.surface, "--json"]  # fmt: skip
    show_cmd = [sys.executable, "-m", "delvewheel", "show", args.wheel]
    audit = show = float("inf")
    for _ in range(args.repeat):  # interleaved, best of N: robust against a busy machine
        audit = min(audit, timed(audit_cmd))
        show = min(show, timed(show_cmd))
    ratio = audit / show
    print(
        f"pillow-variants audit: {audit:.3f} s (CLI process; every function bound, {args.surface})"
    )
    print(f"delvewheel show:       {show:.3f} s (CLI process; DLL level)")
    print(
        f"ratio audit/show:      {ratio:.2f}x  "
        f"({'within' if ratio <= 1.0 else 'ABOVE'} the 1.0x target)"
    )
    print(f"audit in-process:      {in_process(args.wheel, args.surface):.3f} s (warm, no startup)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
