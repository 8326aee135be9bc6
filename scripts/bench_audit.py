#!/usr/bin/env python3
"""Wall time and peak memory of ``pillow-variants audit`` beside ``delvewheel show``.

    python scripts/bench_audit.py WHEEL [--pairs N] [--surface NAME]

Both run as fresh processes of this interpreter (start-up, imports and parsing included), in
N pairs alternating audit, show, audit, show... so that a machine whose load drifts slows both
alike. Reported: the median wall time of each and their ratio (target: audit <= 0.6x show),
the spread of the per-pair ratios, the median CPU time of each, and the peak memory (max
RSS of the process, from ``wait4``) of each (target: audit <= show). On Linux a child's max RSS
is never below this script's own RSS when it spawned it: that floor is printed too. The audit
binds every imported function against the surface; delvewheel works at DLL level. Needs
delvewheel installed and a POSIX host.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

RATIO_TARGET = 0.6  # median wall of audit / median wall of show
MEMORY_TARGET = 1.0  # peak RSS of audit / peak RSS of show


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, int, float]:
    """Wall seconds, max RSS (bytes) and CPU seconds (user + system) of one run of ``cmd``;
    exits on a failed run. On a shared machine the CPU time says what the wall time cannot:
    how much work each did, whatever the other processes took."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)  # the child's own rusage (max RSS)
        elapsed = time.perf_counter() - start
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        out_size = out.tell()
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    if code not in (0, 1) or not out_size or "Traceback" in stderr:
        sys.exit(f"error: {' '.join(cmd)} failed ({code}): {stderr.strip()}")
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return elapsed, usage.ru_maxrss * scale, usage.ru_utime + usage.ru_stime


def in_process(wheel: str, surface: str) -> float:
    """The audit alone (no interpreter start, no CLI), after one warm-up run."""
    from pillow_variants.audit.engine import audit_paths

    audit_paths([wheel], surface=surface).to_json()
    start = time.perf_counter()
    audit_paths([wheel], surface=surface).to_json()
    return time.perf_counter() - start


def verdict(value: float, target: float) -> str:
    return f"target <= {target:g}x: {'met' if value <= target else 'NOT MET'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheel")
    parser.add_argument("--pairs", type=int, default=15, help="paired runs (default: 15)")
    parser.add_argument("--surface", default="nanoserver-ltsc2022")
    args = parser.parse_args(argv)
    audit_cmd = [sys.executable, "-m", "pillow_variants", "audit", args.wheel,
                 "--surface", args.surface, "--json"]  # fmt: skip
    show_cmd = [sys.executable, "-m", "delvewheel", "show", args.wheel]
    # Both as installed for users: with bytecode caches (pip writes them at install; a
    # developer's PYTHONDONTWRITEBYTECODE would make every run recompile an editable install).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    run(audit_cmd, env), run(show_cmd, env)  # warm-up: caches written, files in page cache
    audit: list[tuple[float, int, float]] = []
    show: list[tuple[float, int, float]] = []
    for _ in range(args.pairs):
        audit.append(run(audit_cmd, env))
        show.append(run(show_cmd, env))
    a_wall, s_wall = (statistics.median(r[0] for r in runs) for runs in (audit, show))
    a_cpu, s_cpu = (statistics.median(r[2] for r in runs) for runs in (audit, show))
    pair_ratios = sorted(a[0] / s[0] for a, s in zip(audit, show, strict=True))
    a_peak, s_peak = (max(r[1] for r in runs) for runs in (audit, show))
    floor = run([sys.executable, "-c", "print()"], env)[1]  # wait4 floor: this process's RSS
    mib = 1 << 20
    print(f"{args.pairs} pairs (audit, show alternating), fresh processes of {sys.executable}")
    print(f"pillow-variants audit: median {a_wall:.3f} s (CPU {a_cpu:.3f} s), peak "
          f"{a_peak / mib:.1f} MiB (every function bound, {args.surface})")  # fmt: skip
    print(f"delvewheel show:       median {s_wall:.3f} s (CPU {s_cpu:.3f} s), peak "
          f"{s_peak / mib:.1f} MiB (DLL level)")  # fmt: skip
    ratio = a_wall / s_wall
    print(f"wall ratio audit/show: {ratio:.2f}x median, pairs {pair_ratios[0]:.2f}-"
          f"{pair_ratios[-1]:.2f}x ({verdict(ratio, RATIO_TARGET)})")  # fmt: skip
    mem = a_peak / s_peak
    print(f"peak ratio audit/show: {mem:.2f}x ({verdict(mem, MEMORY_TARGET)}); "
          f"an empty interpreter here peaks at {floor / mib:.1f} MiB")  # fmt: skip
    print(f"audit in-process:      {in_process(args.wheel, args.surface):.3f} s (warm, no startup)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
