#!/usr/bin/env python3
"""Benchmark: cold vs warm wall time of the zig dependency build.

Cold = empty build cache (zig's CRT build, every configure and compile); warm = the same run
again, which must be all cache hits. Sources come from Debian's upstream tarballs
(scripts/debian_sources.py), so the benchmark runs offline after the first download.

    python scripts/bench_deps.py [--recipe recipes/upstream.toml] [--jobs 2] [--only NAME ...]
        [--sources DIR] [--json]

Speed targets belong here, not in the tests (which only assert what was rebuilt).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


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
    recipe: Path, sources: dict[str, Path], jobs: int, only: list[str] | None
) -> dict[str, Any]:
    """Build cold into a fresh cache, then warm; return the wall times and per-dependency
    results."""
    from pillow_variants.build.deps import DepsBuilder
    from pillow_variants.recipe.model import load_recipe
    from pillow_variants.toolchains.zig import ZigToolchain

    loaded = load_recipe(recipe)
    times: dict[str, float] = {}
    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="pv-bench-") as tmp:
        for run in ("cold", "warm"):
            builder = DepsBuilder(
                loaded,
                ZigToolchain(),
                Path(tmp) / "prefix",
                cache_dir=Path(tmp) / "cache",
                overrides=sources,
                jobs=jobs,
            )
            start = time.perf_counter()
            report = builder.build(only)
            times[run] = time.perf_counter() - start
            results[run] = [
                {"name": r.name, "status": r.status, "seconds": round(r.seconds, 2)}
                for r in report.results
            ]
    return {"recipe": str(recipe), "jobs": jobs, "seconds": times, "results": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", type=Path, default=ROOT / "recipes" / "upstream.toml")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", nargs="+", default=None)
    parser.add_argument(
        "--sources", type=Path, default=Path(tempfile.gettempdir()) / "pv-debian-sources"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    ds = _debian_sources()
    sources = ds.provide(ds.DEFAULT, args.sources)
    out = bench(args.recipe, sources, args.jobs, args.only)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        cold, warm = out["seconds"]["cold"], out["seconds"]["warm"]
        print(f"deps build (zig, -j{args.jobs}): cold {cold:.1f}s, warm {warm:.1f}s")
        for r in out["results"]["cold"]:
            print(f"  {r['name']:<14} {r['status']:<10} {r['seconds']:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
