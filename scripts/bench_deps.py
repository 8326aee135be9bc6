#!/usr/bin/env python3
"""Benchmark: the zig dependency build, cold and warm, one dependency at a time vs side by side.

For each schedule -- ``serial`` (one build at a time, ``-j JOBS`` each, as before the
scheduler) and ``concurrent`` (independent dependencies side by side within one budget of JOBS
compile processes, shared through a jobserver) -- a cold run into an empty cache (zig's CRT
build, every configure and compile), then the same run again, which must be all cache hits.
Every schedule uses the same cache path, emptied first: the zig wrappers and the objects'
source paths name it, so keys and libraries are only comparable at one path.
Each run prints where its wall time went (``_log.timed``: the toolkit's own CPU time vs the
compilers, linkers and build tools it waits for). Both schedules must compute the same cache
keys and, as builds are reproducible, produce the same library files: the bench says whether
they did. Sources come from Debian's upstream tarballs (scripts/debian_sources.py), so the
benchmark runs offline after the first download. The shared cache is never touched.

    python scripts/bench_deps.py [--recipe recipes/nanoserver.toml] [--jobs 2]
        [--schedules serial concurrent] [--only NAME ...] [--sources DIR]
        [--workdir DIR (default: a new temporary directory)] [--json]

Speed targets belong here, not in the tests (which only assert what was rebuilt).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCHEDULES = {"serial": 1, "concurrent": None}  # DepsBuilder(builds=...)


def _debian_sources() -> Any:
    spec = importlib.util.spec_from_file_location(
        "debian_sources", ROOT / "scripts" / "debian_sources.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["debian_sources"] = module
    spec.loader.exec_module(module)
    return module


def bench(
    recipe: Path,
    sources: dict[str, Path],
    jobs: int,
    only: list[str] | None,
    schedules: list[str],
    workdir: Path | None = None,
) -> dict[str, Any]:
    """Per schedule: build cold into a fresh cache, then warm; the wall times, their split,
    and the per-dependency results (keys and library hashes included, to compare)."""
    from pillow_variants._log import StepTime, summarize, timed
    from pillow_variants.build.deps import DepsBuilder
    from pillow_variants.recipe.model import load_recipe
    from pillow_variants.sources.fetch import default_cache_dir
    from pillow_variants.toolchains.zig import ZigToolchain

    loaded = load_recipe(recipe)
    out: dict[str, Any] = {"recipe": str(recipe), "jobs": jobs, "schedules": {}}
    steps: list[StepTime] = []
    if workdir and (workdir / "cache").resolve() == default_cache_dir().resolve():
        raise SystemExit("--workdir: its cache/ is the shared cache, which the bench empties")
    with tempfile.TemporaryDirectory(prefix="pv-bench-") as tmp_dir:
        tmp = workdir or Path(tmp_dir)
        for schedule in schedules:
            for old in (tmp / "prefix", tmp / "cache"):
                shutil.rmtree(old, ignore_errors=True)
            runs: dict[str, Any] = {}
            for run in ("cold", "warm"):
                builder = DepsBuilder(
                    loaded,
                    ZigToolchain(),
                    Path(tmp) / "prefix",
                    cache_dir=Path(tmp) / "cache",
                    overrides=sources,
                    jobs=jobs,
                    builds=SCHEDULES[schedule],
                )
                start = time.perf_counter()
                with timed(f"{schedule} {run}", steps, sink=_stderr):
                    report = builder.build(only)
                step = steps[-1]
                runs[run] = {
                    "seconds": time.perf_counter() - start,
                    "toolkit_cpu": step.toolkit,
                    "tools": step.tools,
                    "tools_cpu": step.tools_cpu,
                    "concurrent": builder.concurrent(),
                    "results": [
                        {
                            "name": r.name,
                            "status": r.status,
                            "seconds": round(r.seconds, 2),
                            "key": r.key,
                            "libraries": {
                                a["path"]: a["sha256"] for a in r.entry.get("artifacts", [])
                            },
                        }
                        for r in report.results
                    ],
                }
            out["schedules"][schedule] = runs
    out["summary"] = summarize(steps)
    return out


def _stderr(line: str) -> None:
    """The time lines go to stderr, with progress: stdout stays the figures (or --json)."""
    print(line, file=sys.stderr, flush=True)


def _same(out: dict[str, Any], field: str) -> str:
    """Whether every schedule's cold run got the same ``field`` per dependency."""
    seen = {
        s: {r["name"]: r[field] for r in runs["cold"]["results"]}
        for s, runs in out["schedules"].items()
    }
    first = next(iter(seen.values()))
    differ = sorted({n for v in seen.values() for n in v if v[n] != first.get(n)})
    return "yes" if not differ else "NO: " + ", ".join(differ)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", type=Path, default=ROOT / "recipes" / "nanoserver.toml")
    parser.add_argument("--jobs", type=int, default=2, help="compile processes (the budget)")
    parser.add_argument("--schedules", nargs="+", choices=list(SCHEDULES), default=list(SCHEDULES))
    parser.add_argument("--only", nargs="+", default=None)
    parser.add_argument(
        "--sources", type=Path, default=Path(tempfile.gettempdir()) / "pv-debian-sources"
    )
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from pillow_variants import _log

    _log.setup(0)  # the builds' progress lines on stderr
    ds = _debian_sources()
    sources = ds.provide(ds.DEFAULT, args.sources)
    out = bench(args.recipe, sources, args.jobs, args.only, args.schedules, args.workdir)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    for schedule, runs in out["schedules"].items():
        cold, warm = runs["cold"], runs["warm"]
        print(
            f"deps build (zig, {args.recipe.name}, {schedule}, budget -j{args.jobs}): "
            f"cold {cold['seconds']:.1f}s, warm {warm['seconds']:.1f}s"
        )
        for r in cold["results"]:
            print(f"  {r['name']:<14} {r['status']:<10} {r['seconds']:.1f}s")
    if len(out["schedules"]) > 1:
        walls = {s: runs["cold"]["seconds"] for s, runs in out["schedules"].items()}
        if "serial" in walls and "concurrent" in walls:
            print(f"cold: concurrent / serial = {walls['concurrent'] / walls['serial']:.2f}")
        print(f"same cache keys: {_same(out, 'key')}; same libraries: {_same(out, 'libraries')}")
    print(out["summary"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
