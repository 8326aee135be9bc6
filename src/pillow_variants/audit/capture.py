"""Capture a surface profile from a real System32: ground truth replacing a derived profile.

Run on (or with a copy from) the image to describe, e.g. on a Windows host::

    docker create --name nano mcr.microsoft.com/windows/nanoserver:ltsc2022@sha256:<digest>
    docker cp nano:C:\\Windows\\System32 .\\nano-system32
    pillow-variants surface capture .\\nano-system32 \\
        --image mcr.microsoft.com/windows/nanoserver:ltsc2022 --digest sha256:<digest> \\
        -o nanoserver-ltsc2022-captured.json

or inside the container with Python copied in, on ``C:\\Windows\\System32`` directly. Every DLL's
exports (names, ordinals, forwarders) are recorded, and apisetschema.dll's ``.apiset`` section
gives the API set -> host map the loader uses.
"""

from __future__ import annotations

import datetime as _dt
import re
from pathlib import Path
from typing import Any

from pillow_variants import __version__
from pillow_variants._log import Progress
from pillow_variants._log import progress as progress_line
from pillow_variants.audit.apiset import parse_apiset_schema
from pillow_variants.audit.surface import FORMAT, SurfaceError
from pillow_variants.pe import PEReadError, read_file_version, read_pe, read_section

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_SUFFIXES = (".dll", ".drv")


def _files(system32: Path) -> dict[str, Path]:
    if not system32.is_dir():
        raise SurfaceError(f"{system32}: not a directory (give a copy of Windows\\System32)")
    return {
        p.name.lower(): p
        for p in sorted(system32.iterdir())
        if p.is_file() and p.suffix.lower() in _SUFFIXES
    }


def capture_surface(
    system32: Path,
    *,
    name: str,
    image: str,
    digest: str,
    os_build: str | None = None,
    progress: Progress | None = progress_line,
) -> dict[str, Any]:
    """Read every DLL of ``system32`` into a ``captured`` surface profile (a JSON-ready dict)."""
    if not _DIGEST.match(digest):
        raise SurfaceError(f"image digest must look like sha256:<64 hex digits>, got {digest!r}")
    files = _files(system32)
    schema = files.get("apisetschema.dll")
    if schema is None:
        raise SurfaceError(f"{system32}: no apisetschema.dll (needed for the API set map)")
    section = read_section(schema.read_bytes(), str(schema), ".apiset")
    if section is None:
        raise SurfaceError(f"{schema}: no .apiset section")
    apisets = parse_apiset_schema(section)
    if os_build is None and "kernel32.dll" in files:
        os_build = read_file_version(files["kernel32.dll"].read_bytes(), "kernel32.dll")
    if not os_build:
        raise SurfaceError("cannot read the OS build from kernel32.dll: pass --os-build")

    dlls: dict[str, Any] = {}
    unreadable: list[str] = []
    for i, (key, path) in enumerate(files.items()):
        if progress and i % 200 == 0:
            progress(f"capture: {i}/{len(files)} DLLs")
        try:
            info = read_pe(path.read_bytes(), str(path), imports=False)
        except (PEReadError, OSError):
            unreadable.append(key)  # e.g. resource-only or locked files: recorded, not fatal
            continue
        dlls[key] = {
            "status": "present",
            "exports": "listed",
            **info.exports.to_dict(),
            "provenance": {"basis": "captured", "sources": ["capture"]},
        }
    when = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d")
    return {
        "format": FORMAT,
        "name": name,
        "kind": "captured",
        "description": f"captured from {image}@{digest} (OS build {os_build})",
        "os": {"image": image, "digest": digest, "build": os_build},
        "sources": {
            "capture": f"exports of {len(dlls)} DLLs and the apiset schema v6 read from "
            f"{system32} by pillow-variants {__version__} on {when}"
        },
        "unknown_dll": "not in the captured System32",
        "unreadable": unreadable,
        "apiset_prefixes": [],
        "apisets": dict(sorted(apisets.items())),
        "contracts": {},
        "dlls": dlls,
    }
