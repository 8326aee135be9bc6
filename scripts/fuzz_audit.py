#!/usr/bin/env python3
"""Fuzz the audit with mutated real PE files: every input must give a report or a UserError.

    python scripts/fuzz_audit.py --seed WHEEL_OR_PE_OR_DIR [...] [--iterations 10000]
        [--random-seed 0] [--crash-dir DIR] [--max-seed-size 2000000]

Seeds are PE files (or the PE members of wheels/directories). Each iteration mutates one seed
— byte flips biased towards the headers and the import/export/delay-import tables, zeroed or
duplicated runs, truncation — and audits it in-process against the nanoserver profile with
the strict policy. Every 25th input is also packed into a wheel and audited through
``audit_paths`` (the zip path). Exit 0 when nothing crashed; otherwise 1, with each crashing
input saved under --crash-dir and its traceback printed.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import traceback
import zipfile
from pathlib import Path

import pefile

from pillow_variants.audit.engine import audit_image, audit_paths
from pillow_variants.audit.loader import Image, Module
from pillow_variants.audit.policy import load_policy
from pillow_variants.errors import UserError
from pillow_variants.pe import is_pe_name, read_pe

SURFACE = "nanoserver-ltsc2022"
_TABLES = ("IMAGE_DIRECTORY_ENTRY_EXPORT", "IMAGE_DIRECTORY_ENTRY_IMPORT",
           "IMAGE_DIRECTORY_ENTRY_DELAY_IMPORT")  # fmt: skip


def load_seeds(paths: list[Path], max_size: int) -> list[bytes]:
    seeds: list[bytes] = []
    for path in paths:
        if path.is_dir():
            seeds += [p.read_bytes() for p in sorted(path.rglob("*")) if is_pe_name(p.name)]
        elif zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                seeds += [zf.read(n) for n in zf.namelist() if is_pe_name(n)]
        else:
            seeds.append(path.read_bytes())
    return [s for s in seeds if len(s) <= max_size]


def hot_ranges(data: bytes) -> list[tuple[int, int]]:
    """File ranges worth mutating: headers and the three tables the audit parses."""
    ranges = [(0, min(len(data), 1024))]
    try:
        pe = pefile.PE(data=data, fast_load=True)
        for name in _TABLES:
            entry = pe.OPTIONAL_HEADER.DATA_DIRECTORY[pefile.DIRECTORY_ENTRY[name]]
            if entry.VirtualAddress and entry.Size:
                start = pe.get_offset_from_rva(entry.VirtualAddress)
                ranges.append((start, min(len(data), start + max(entry.Size, 256))))
    except Exception:  # a seed without tables still gets header mutations
        pass
    return [(a, b) for a, b in ranges if 0 <= a < b]


def mutate(data: bytes, hot: list[tuple[int, int]], rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        kind = rng.random()
        if kind < 0.6:
            a, b = rng.choice(hot)
            b = min(b, len(buf))
            pos = rng.randrange(a, b) if a < b else rng.randrange(len(buf))
            buf[pos] = rng.randrange(256)
        elif kind < 0.75:
            pos = rng.randrange(len(buf))
            buf[pos : pos + rng.randint(1, 64)] = bytes(rng.randint(1, 64))
        elif kind < 0.85:
            pos = rng.randrange(len(buf))
            buf[pos:pos] = buf[pos : pos + rng.randint(1, 256)]
        else:
            del buf[rng.randrange(len(buf)) :]
        if not buf:
            break
    return bytes(buf)


def audit_bytes(data: bytes, policy) -> None:
    image = Image("pe", "fuzz.pyd", [Module("fuzz.pyd", read_pe(data, "fuzz.pyd"))])
    audit_image(image, SURFACE, "both", policy)


def audit_as_wheel(data: bytes, folder: Path) -> None:
    wheel = folder / "fuzz-1.0-cp313-cp313-win_amd64.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("fuzz/_ext.cp313-win_amd64.pyd", data)
        zf.writestr("fuzz-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\n")
    audit_paths([wheel], surface=SURFACE, policy="both").to_json()


def fuzz(seeds: list[bytes], iterations: int, rng_seed: int, crash_dir: Path | None) -> int:
    """Run ``iterations`` mutated inputs; return the number of crashes (non-UserError)."""
    rng = random.Random(rng_seed)
    policy = load_policy("strict")
    hot = [hot_ranges(s) for s in seeds]
    crashes = ok = rejected = 0
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(iterations):
            k = rng.randrange(len(seeds))
            data = mutate(seeds[k], hot[k], rng)
            try:
                audit_as_wheel(data, Path(tmp)) if i % 25 == 0 else audit_bytes(data, policy)
                ok += 1
            except UserError:
                rejected += 1
            except Exception:
                crashes += 1
                print(f"CRASH at iteration {i}:\n{traceback.format_exc()}", file=sys.stderr)
                if crash_dir:
                    crash_dir.mkdir(parents=True, exist_ok=True)
                    (crash_dir / f"crash-{i}.bin").write_bytes(data)
            if (i + 1) % 1000 == 0:
                rate = (i + 1) / (time.monotonic() - start)
                print(f"fuzz: {i + 1}/{iterations} ({rate:.0f}/s) audited {ok}, rejected "
                      f"{rejected}, crashes {crashes}", file=sys.stderr)  # fmt: skip
    print(
        f"fuzz: {iterations} inputs: {ok} audited, {rejected} rejected (exit 2), {crashes} crashes"
    )
    return crashes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=Path, action="append", required=True)
    parser.add_argument("--iterations", type=int, default=10_000)
    parser.add_argument("--random-seed", type=int, default=0)
    parser.add_argument("--crash-dir", type=Path)
    parser.add_argument("--max-seed-size", type=int, default=2_000_000)
    args = parser.parse_args(argv)
    seeds = load_seeds(args.seed, args.max_seed_size)
    if not seeds:
        parser.error("no PE seed files found (or all larger than --max-seed-size)")
    return 1 if fuzz(seeds, args.iterations, args.random_seed, args.crash_dir) else 0


if __name__ == "__main__":
    sys.exit(main())
