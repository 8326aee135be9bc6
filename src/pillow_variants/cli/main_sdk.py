"""``pillow-variants sdk prepare 3.13 [--dest D] [--from-dir D | --from-nupkg F --nupkg-sha256 H]
[--json]``: a Windows CPython SDK (``3.14t``: the free-threaded build).

Prepares headers, import libraries and the cross sysconfig values for building Windows
extensions on Linux (see :mod:`pillow_variants.build.pysdk` for where each part comes from and how
it is verified). ``sdk show`` prints a prepared SDK's description.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pillow_variants.build import pysdk
from pillow_variants.cli.options import add_cache_dir, add_subcommands

COMMAND = "sdk"
HELP = "Prepare Windows CPython SDKs (headers, import libraries, cross sysconfig)."
SCHEMA = "pillow-variants-sdk/1"  # schemas/sdk-prepare.schema.json


def configure(parser: argparse.ArgumentParser) -> None:
    add_subcommands(
        parser,
        {
            "prepare": (
                "Fetch, verify and assemble the SDK for one or more CPython versions.",
                _configure_prepare,
                _prepare,
            ),
            "show": ("Print the description of a prepared SDK directory.", _configure_show, _show),
        },
    )


def _configure_prepare(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "python", nargs="+", help="CPython minor version(s), e.g. 3.13; 3.14t = free-threaded"
    )
    p.add_argument(
        "--dest", type=Path, help="SDK directory (default: <cache>/sdk/cpXY); one version only"
    )
    p.add_argument(
        "--from-dir",
        type=Path,
        help="a Windows CPython installation (or NuGet 'tools' dir) to take the DLLs/include from",
    )
    p.add_argument(
        "--from-nupkg",
        type=Path,
        help="python.org's NuGet package (python / python-freethreaded .nupkg), as cibuildwheel "
        "uses on Windows; needs --nupkg-sha256",
    )
    p.add_argument("--nupkg-sha256", help="the pinned sha256 of --from-nupkg")
    add_cache_dir(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _prepare(args: argparse.Namespace) -> int:
    if args.dest is not None and len(args.python) > 1:
        raise pysdk.UserError("--dest takes one Python version")
    from_dir = args.from_dir
    if args.from_nupkg is not None:
        if from_dir is not None or not args.nupkg_sha256:
            raise pysdk.UserError("--from-nupkg needs --nupkg-sha256 and excludes --from-dir")
        from_dir = pysdk.nupkg_dir(args.from_nupkg, args.nupkg_sha256, args.cache_dir).parent
    try:
        sdks = [
            pysdk.prepare_sdk(py, cache_dir=args.cache_dir, dest=args.dest, from_dir=from_dir)
            for py in args.python
        ]
    except pysdk.NotPinned as exc:  # this command's way to use a local CPython
        raise pysdk.UserError(
            f"{exc}; point --from-dir at a Windows CPython installation, or --from-nupkg at a "
            "NuGet package"
        ) from None
    if args.json:
        print(json.dumps({"schema": SCHEMA, "sdks": [s.to_dict() for s in sdks]}, indent=2))
    else:
        for s in sdks:
            print(format_sdk(s))
    return 0


def _configure_show(p: argparse.ArgumentParser) -> None:
    p.add_argument("root", type=Path, help="a prepared SDK directory")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _show(args: argparse.Namespace) -> int:
    sdk = pysdk.load_sdk(args.root)
    print(
        json.dumps({"schema": SCHEMA, "sdks": [sdk.to_dict()]}, indent=2)
        if args.json
        else format_sdk(sdk)
    )
    return 0


def format_sdk(s: pysdk.WindowsSDK) -> str:
    dlls, headers = s.sources.get("dlls", {}), s.sources.get("headers", {})
    libs = " ".join(f"-l{name}" for name in s.libraries + s.limited_api_libraries)
    origin = dlls.get("pip") or dlls.get("path") or dlls.get("definition", "?")
    signers = ", ".join(sorted({sig["signer"].split(",")[0] for sig in dlls.get("signatures", [])}))
    lines = [
        f"python      {s.python}  ({s.soabi}, EXT_SUFFIX {s.ext_suffix})",
        f"root        {s.root}",
        f"include     {' '.join(s.include_dirs)}  (CPython {s.headers_version}, "
        f"{headers.get('package') or headers.get('path', '?')})",
        f"libs        {' '.join(s.library_dirs)}  {libs}",
        f"dll         {s.dll} {s.dll_version}  ({origin}; {signers})",
    ]
    derived = headers.get("pyconfig")
    if derived:  # 3.14/3.15: not upstream's file; say so wherever the SDK is shown
        lines.insert(
            3, f"pyconfig.h  inferred: derived from {derived['from']} ({derived['change']})"
        )
    return "\n".join(lines)
