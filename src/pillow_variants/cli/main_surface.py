"""``pillow-variants surface {list,show,capture,check}``: inspect, capture and check profiles.

``show`` prints a profile's provenance (sources, and per DLL its basis, evidence and rules),
because a derived profile is only as good as the evidence it names. ``capture`` produces
ground truth from a System32 copy (see :mod:`pillow_variants.audit.capture`). ``check``
compares a profile with its ground-truth corpus: binaries with public evidence of loading or
failing on the image (see :mod:`pillow_variants.audit.corpus`).
"""

from __future__ import annotations

import argparse
import json
from importlib import resources
from pathlib import Path

from pillow_variants._log import progress
from pillow_variants.audit.capture import capture_surface
from pillow_variants.audit.corpus import check_corpus, load_corpus
from pillow_variants.audit.surface import (
    DllModel,
    Surface,
    builtin_surfaces,
    load_surface,
    normalize_dll,
)
from pillow_variants.cli.options import add_cache_dir, add_subcommands
from pillow_variants.errors import UserError
from pillow_variants.sources.corpus import materialise
from pillow_variants.sources.fetch import default_cache_dir

COMMAND = "surface"
HELP = "List, show (with provenance), capture and check surface profiles."
#: The corpus shipped with the package for the derived nanoserver profile.
DEFAULT_CORPUS = "nanoserver-ltsc2022"


def configure(parser: argparse.ArgumentParser) -> None:
    add_subcommands(
        parser,
        {
            "list": ("List the built-in surface profiles.", lambda p: None, _list),
            "show": ("Print a surface profile and its provenance.", _configure_show, _show),
            "capture": (
                "Capture a profile from a System32 directory of a real Windows image.",
                _configure_capture,
                _capture,
            ),
            "check": (
                "Audit the corpus binaries against the profile: agreement and disagreements.",
                _configure_check,
                _check,
            ),
        },
    )


def _list(args: argparse.Namespace) -> int:
    for name in builtin_surfaces():
        s = load_surface(name)
        print(f"{name:<24} {s.kind:<9} {len(s.dlls)} DLLs, {len(s.contracts)} contracts")
    return 0


def _configure_show(p: argparse.ArgumentParser) -> None:
    p.add_argument("surface", metavar="NAME|FILE")
    p.add_argument("--dll", help="show one DLL (or API set contract) in full")
    p.add_argument("--json", action="store_true", help="print the profile JSON")


def _show(args: argparse.Namespace) -> int:
    s = load_surface(args.surface)
    if args.json:
        print(json.dumps(s.raw, indent=1))
        return 0
    print("\n".join(_dll_detail(s, args.dll) if args.dll else _overview(s)))
    return 0


def _overview(s: Surface) -> list[str]:
    os_ = s.os
    lines = [
        f"surface   {s.name}  ({s.kind})  {s.path}",
        f"image     {os_.get('image')}  digest {os_.get('digest') or '-'}"
        f"  build {os_.get('build')}",
        f"about     {s.description}",
        f"unknown   {s.unknown_dll}",
        "sources:",
        *(f"  [{k}] {v}" for k, v in s.sources.items()),
        "DLLs:",
    ]
    lines += [f"  {_dll_line(m)}" for m in s.dlls.values()]
    if s.contracts:
        lines.append("API set contracts:")
        lines += [f"  {_dll_line(m)}" for m in s.contracts.values()]
    if s.apisets:
        lines.append(f"API set schema: {len(s.apisets)} contracts")
    for rule in s.apiset_prefixes:
        host = rule.get("host") or "(any function)"
        lines.append(
            f"API sets {rule['prefix']}* -> {host}  [{', '.join(rule.get('sources', []))}]"
        )
    return lines


def _dll_line(m: DllModel) -> str:
    if not m.present:
        state = "ABSENT"
    elif m.any_export:
        state = "any export"
    else:
        state = f"{len(m.names)} exports"
    extra = []
    if m.present_evidence:
        extra.append(f"+{len(m.present_evidence)} seen present")
    if m.absent_evidence:
        extra.append(f"-{len(m.absent_evidence)} reported missing")
    extra += [f"rule {r.id}" for r in m.rules]
    more = f" ({'; '.join(extra)})" if extra else ""
    return f"{m.name:<40} {m.basis:<9} {state}{more}  [{', '.join(m.sources)}]"


def _dll_detail(s: Surface, name: str) -> list[str]:
    key = name.lower()
    model = s.contracts.get(key) or s.dlls.get(normalize_dll(name))
    if model is None:
        raise UserError(f"{name}: not in surface {s.name} ({s.unknown_dll})")
    lines = [_dll_line(model), f"  note: {model.note}"]
    for fn, srcs in sorted(model.present_evidence.items()):
        lines.append(f"  present  {fn}  [{', '.join(srcs)}]")
    for fn, srcs in sorted(model.absent_evidence.items()):
        lines.append(f"  missing  {fn}  [{', '.join(srcs)}]")
    for rule in model.rules:
        what = (
            f"{len(rule.names)} names"
            if rule.names or not rule.pattern
            else f"pattern {rule.pattern.pattern!r}"
        )
        lines.append(f"  rule {rule.id}: {rule.reason} ({what}) [{', '.join(rule.sources)}]")
        lines += [f"    {n}" for n in sorted(rule.names)]
    return lines


def _configure_capture(p: argparse.ArgumentParser) -> None:
    p.add_argument("system32", type=Path, help="directory of DLLs: a copy of Windows\\System32")
    p.add_argument("--image", required=True, help="image reference, e.g. ...nanoserver:ltsc2022")
    p.add_argument("--digest", required=True, help="image digest sha256:...")
    p.add_argument("--os-build", help="OS build (default: kernel32.dll's file version)")
    p.add_argument("--name", help="profile name (default: output file stem)")
    p.add_argument("-o", "--output", type=Path, required=True, help="profile JSON to write")


def _capture(args: argparse.Namespace) -> int:
    out_dir = args.output.parent
    if not out_dir.is_dir():  # checked before reading thousands of DLLs, not after
        raise UserError(f"{args.output}: the output directory {out_dir} does not exist")
    profile = capture_surface(
        args.system32,
        name=args.name or args.output.stem,
        image=args.image,
        digest=args.digest,
        os_build=args.os_build,
    )
    try:
        args.output.write_text(json.dumps(profile, indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        why = exc.strerror or exc
        raise UserError(f"{args.output}: cannot write the profile ({why})") from None
    progress(
        f"captured {len(profile['dlls'])} DLLs, {len(profile['apisets'])} API sets -> {args.output}"
    )
    return 0


def _configure_check(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--corpus",
        type=Path,
        help=f"corpus JSON (default: the shipped {DEFAULT_CORPUS} corpus)",
    )
    p.add_argument("--surface", help="profile to check (default: the corpus's own)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_cache_dir(p)


def _check(args: argparse.Namespace) -> int:
    path = args.corpus
    if path is None:
        folder = resources.files("pillow_variants") / "data" / "corpus"
        path = Path(str(folder / f"{DEFAULT_CORPUS}.json"))
    corpus = load_corpus(path)
    targets = materialise(corpus, args.cache_dir or default_cache_dir())
    report = check_corpus(corpus, targets, args.surface)
    print(json.dumps(report.to_dict()) if args.json else report.to_text())
    return report.exit_code
