#!/usr/bin/env python3
"""Per-module size table: our wheel against the official wheel of the same tag.

    python scripts/bench_sizes.py OFFICIAL.whl OURS.whl [--sections]

Modules are matched by dotted name (release/compare.py). Raw size is the .pyd's bytes; the
zipped comparison counts only the modules both wheels have (the zig wheels have no ``_avif``,
so comparing the whole files would credit us with a module we do not ship). ``--sections``
adds each module's PE sections (raw sizes), which is where a size difference is explained:
code (``.text``), data, relocations, and sections one build carries and the other does not.
Target: every module and the same-feature zipped size <= official.
"""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

import pefile

from pillow_variants.release.compare import compare_wheels, module_key

#: Bytes a zip entry costs besides its data: local header (30) + central directory entry (46),
#: each followed by the name.
_ZIP_ENTRY_OVERHEAD = 30 + 46


def zipped_without(wheel: Path, modules: set[str]) -> int:
    """The wheel's size minus what its entries for ``modules`` cost in the archive."""
    size = wheel.stat().st_size
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            if module_key(info.filename) in modules:
                size -= info.compress_size + _ZIP_ENTRY_OVERHEAD + 2 * len(info.filename)
    return size


def sections(wheel: Path, member: str) -> dict[str, int]:
    """Section name → raw size of one PE member of the wheel."""
    with zipfile.ZipFile(wheel) as zf:
        pe = pefile.PE(data=zf.read(member), fast_load=True)
    out: dict[str, int] = {}
    for s in pe.sections:
        name = s.Name.rstrip(b"\0").decode("ascii", "replace")
        out[name] = out.get(name, 0) + s.SizeOfRawData
    return out


def _kb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1024:,.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("official", type=Path)
    parser.add_argument("ours", type=Path)
    parser.add_argument("--sections", action="store_true", help="per-section raw sizes too")
    args = parser.parse_args(argv)
    report = compare_wheels(args.official, args.ours)
    sizes = report["sizes"]["modules"]
    print(f"{'module':<22} {'official KB':>12} {'ours KB':>10} {'ours/off':>9}")
    over = []
    for key, s in sizes.items():
        ratio = f"{s['b'] / s['a']:.2f}" if s["a"] and s["b"] else "-"
        if s["a"] and s["b"] and s["b"] > s["a"]:
            over.append(key)
        print(f"{key:<22} {_kb(s['a']):>12} {_kb(s['b']):>10} {ratio:>9}")
    only = set(report["modules"]["only_a"]) | set(report["modules"]["only_b"])
    za, zb = zipped_without(args.official, only), zipped_without(args.ours, only)
    common = "without " + ", ".join(sorted(only)) if only else "same modules"
    print(f"{'wheel zipped':<22} {_kb(za):>12} {_kb(zb):>10} {zb / za:>9.2f}  ({common})")
    if args.sections:
        a_members = {module_key(p): p for p in _members(args.official)}
        b_members = {module_key(p): p for p in _members(args.ours)}
        for key in report["modules"]["common"]:
            sa = sections(args.official, a_members[key])
            sb = sections(args.ours, b_members[key])
            print(f"\n{key} sections (KB): official / ours")
            for name in sorted(set(sa) | set(sb), key=lambda n: -max(sa.get(n, 0), sb.get(n, 0))):
                print(f"  {name:<10} {_kb(sa.get(name)):>10} {_kb(sb.get(name)):>10}")
    verdict = "every module <= official" if not over else "ABOVE official: " + ", ".join(over)
    print(f"target: {verdict}; zipped {'<=' if zb <= za else 'ABOVE'} official")
    return 0


def _members(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        return [n for n in zf.namelist() if n.lower().endswith((".pyd", ".dll"))]


if __name__ == "__main__":
    raise SystemExit(main())
