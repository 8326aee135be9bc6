#!/usr/bin/env python3
"""Every tag of a recipe: the first build cold (dependencies + one wheel), each further tag with
the dependency cache that build left warm, timed against the cold build.

    python scripts/bench_tags.py RECIPE --sources-file ARGS [--out DIST] [--cache-dir DIR]

Target (issue #17): each further CPython tag with a warm dependency cache <= 10% of the cold
build. 3.13 goes first because it is buildable everywhere. The cache directory is a new
temporary one unless ``--cache-dir`` is given (then "cold" is only as cold as that directory).
Wine is not run (``--no-wine``): the figure is the build's. A tag this machine cannot build
is printed with its reason and not timed. Each build's progress goes to stderr as it happens;
its ``--json`` report is read from stdout.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pillow_variants.recipe.model import load_recipe

TARGET = 0.10


def recipe_tags(recipe: Path) -> list[str]:
    """The recipe's Python list (inherited ones included), 3.13 first."""
    tags = load_recipe(recipe).python
    return ["3.13", *(t for t in tags if t != "3.13")]


def build(recipe: Path, tag: str, common: list[str]) -> tuple[float, dict]:
    """Wall seconds and the summary row of ``build all RECIPE --python TAG``."""
    argv = ["pillow-variants", "build", "all", str(recipe), "--python", tag, *common]
    start = time.monotonic()
    proc = subprocess.run(argv, stdout=subprocess.PIPE, text=True, check=False)
    seconds = time.monotonic() - start
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise SystemExit(
            f"{tag}: build all exited {proc.returncode} without a JSON report"
        ) from None
    return seconds, report["wheels"][0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("recipe", type=Path)
    ap.add_argument("--sources-file", required=True)
    ap.add_argument("--out", type=Path, help="where the wheels go (default: a temporary dir)")
    ap.add_argument("--cache-dir", type=Path, help="default: a new temporary directory")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="pv-bench-tags-"))
    cache = args.cache_dir or tmp / "cache"
    out = args.out or tmp / "dist"
    common = ["--sources-file", args.sources_file, "--cache-dir", str(cache), "--no-wine"]
    common += ["--out", str(out), "--json", "-q"]
    timings: dict[str, float] = {}
    try:
        for tag in recipe_tags(args.recipe):
            print(f"building {tag} ...", file=sys.stderr, flush=True)
            seconds, row = build(args.recipe, tag, common)
            if row["status"] != "built":
                print(f"  {tag:6} {row['status']}: {row.get('reason', '')}")
                continue
            timings[tag] = seconds
    finally:
        if args.cache_dir is None:
            shutil.rmtree(cache, ignore_errors=True)
    if "3.13" not in timings:
        print("3.13 was not built: no cold figure to compare with")
        return 1
    cold = timings.pop("3.13")
    print(f"build all, cold (deps + cp313):  {cold:7.1f} s")
    worst = 0.0
    for tag, seconds in timings.items():
        ratio = seconds / cold
        worst = max(worst, ratio)
        print(f"  {tag:6} warm deps: {seconds:7.1f} s  ratio {ratio:5.2f}")
    met = "met" if worst <= TARGET else "NOT MET"
    print(f"worst further tag: {worst:.2f} of the cold build (target <= {TARGET:.2f}: {met})")
    print(f"total, {1 + len(timings)} built tags: {cold + sum(timings.values()):7.1f} s")
    print(f"wheels: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
