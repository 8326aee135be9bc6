"""Read wheels and rewrite them deterministically (the auditwheel ``wheeltools`` counterpart).

Adding the build manifest and the SBOM to a wheel changes its RECORD, so the wheel has to be
rewritten. The rewrite is a pure function of the wheel's *contents* and ``SOURCE_DATE_EPOCH``:
entries are sorted (``.dist-info`` last, RECORD very last, as the wheel spec recommends), every
entry gets the same timestamp and fixed permissions, compression settings are fixed, and RECORD
is regenerated in entry order. Rebuilding with the same inputs and the same SOURCE_DATE_EPOCH
therefore gives a byte-identical wheel, whatever the input zip's timestamps or order were.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import posixpath
import time
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pillow_variants.errors import UserError
from pillow_variants.limits import loads_json

#: The build manifest, inside the wheel's ``.dist-info`` directory.
MANIFEST_NAME = "pillow_variants.manifest.json"
#: Our SBOM, under ``.dist-info/sboms/`` (PEP 770). Pillow's own SBOM (``pillow-X.cdx.json``)
#: describes Pillow's sources; ours describes the libraries this build bundled.
SBOM_NAME = "pillow-variants.cdx.json"

#: The earliest timestamp a zip can store (1980-01-01 00:00:00).
ZIP_EPOCH = 315532800
_FILE_MODE = 0o644
_EXEC_MODE = 0o755
_COMPRESS_LEVEL = 6
#: Signatures over RECORD become invalid when RECORD changes; they are dropped.
_SIGNATURES = ("RECORD.jws", "RECORD.p7s")


class WheelError(UserError):
    """A file is not a readable wheel (bad zip, no or several ``.dist-info`` directories)."""


def source_date_epoch() -> int | None:
    """``SOURCE_DATE_EPOCH`` as an int, or None when unset (reproducible-builds.org spec)."""
    raw = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise UserError(f"SOURCE_DATE_EPOCH must be an integer, got {raw!r}") from None


def zip_date_time(epoch: int | None) -> tuple[int, int, int, int, int, int]:
    """The zip timestamp for every entry: SOURCE_DATE_EPOCH clamped to the zip epoch (UTC)."""
    t = time.gmtime(max(ZIP_EPOCH, epoch if epoch is not None else ZIP_EPOCH))
    return (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)


def record_hash(data: bytes) -> str:
    """A RECORD hash field: ``sha256=`` + urlsafe base64 without padding."""
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def dumps_json(obj: Any) -> bytes:
    """Deterministic JSON bytes (sorted keys, fixed indentation, trailing newline)."""
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def dist_info_dir(names: Iterable[str], wheel: Path | str = "wheel") -> str:
    """The single top-level ``*.dist-info`` directory among a wheel's entry names."""
    found = sorted({n.split("/", 1)[0] for n in names if n.split("/", 1)[0].endswith(".dist-info")})
    if len(found) != 1:
        what = "no" if not found else f"{len(found)} ({', '.join(found)})"
        raise WheelError(f"{wheel}: not a wheel: {what} .dist-info directories")
    return found[0]


def read_wheel(wheel: Path) -> dict[str, bytes]:
    """All file entries of a wheel (directories skipped), keyed by archive name."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            return {i.filename: zf.read(i) for i in zf.infolist() if not i.is_dir()}
    except FileNotFoundError:
        raise WheelError(f"{wheel}: no such file") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise WheelError(f"{wheel}: not a readable wheel ({exc})") from None


def read_dist_info_file(wheel: Path, name: str) -> bytes | None:
    """One file of the wheel's ``.dist-info`` directory (``name`` relative to it), or None."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            names = zf.namelist()
            path = f"{dist_info_dir(names, wheel)}/{name}"
            return zf.read(path) if path in names else None
    except FileNotFoundError:
        raise WheelError(f"{wheel}: no such file") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise WheelError(f"{wheel}: not a readable wheel ({exc})") from None


def read_manifest(wheel: Path) -> dict[str, Any] | None:
    """The build manifest of a wheel, or None when the wheel has none (e.g. an official one)."""
    raw = read_dist_info_file(wheel, MANIFEST_NAME)
    return None if raw is None else parse_manifest(raw, wheel)


#: Deeper than any manifest the build writes (about 6 levels), shallow enough that every
#: recursive consumer (``dataclasses.asdict``, ``json.dumps(indent=…)``) stays far from
#: Python's recursion limit.
MANIFEST_MAX_DEPTH = 32


def _depth(data: Any) -> int:
    """Nesting depth of decoded JSON, computed without recursion."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(node, dict):
            stack.extend((v, level + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, level + 1) for v in node)
    return deepest


def parse_manifest(raw: bytes, wheel: Path | str) -> dict[str, Any]:
    """The manifest's JSON object; a ``WheelError`` naming the wheel if it is not one.

    The manifest is data from a wheel, possibly a hostile one: nesting that exhausts the JSON
    parser's recursion, or that is parsed but later overflows a recursive consumer, is refused.
    """
    try:
        data = loads_json(raw)  # no NaN/Infinity: printed back they would not be JSON
    except (ValueError, RecursionError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise WheelError(f"{wheel}: {MANIFEST_NAME} is not valid JSON ({why})") from None
    if not isinstance(data, dict):
        raise WheelError(f"{wheel}: {MANIFEST_NAME} is not a JSON object")
    if _depth(data) > MANIFEST_MAX_DEPTH:
        raise WheelError(
            f"{wheel}: {MANIFEST_NAME} is nested deeper than {MANIFEST_MAX_DEPTH} levels"
        )
    return data


def _entry_order(name: str, dist_info: str) -> tuple[int, str]:
    if name == f"{dist_info}/RECORD":
        return (2, name)
    return (1 if name.startswith(dist_info + "/") else 0, name)


def _mode(name: str) -> int:
    # Scripts installed from <name>.data/scripts/ keep an executable bit; nothing else does.
    parts = name.split("/")
    executable = len(parts) > 2 and parts[0].endswith(".data") and parts[1] == "scripts"
    return _EXEC_MODE if executable else _FILE_MODE


def build_record(files: Mapping[str, bytes], dist_info: str, order: list[str]) -> bytes:
    """RECORD content for ``files`` in ``order`` (RECORD's own line has no hash)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    record = f"{dist_info}/RECORD"
    for name in order:
        if name == record:
            writer.writerow([record, "", ""])
        else:
            writer.writerow([name, record_hash(files[name]), len(files[name])])
    return out.getvalue().encode()


def write_wheel(path: Path, files: Mapping[str, bytes], *, epoch: int | None = None) -> Path:
    """Write ``files`` as a wheel at ``path`` with a fresh RECORD, deterministically.

    ``epoch`` defaults to ``SOURCE_DATE_EPOCH`` (or the zip epoch when unset). The file is
    written beside ``path`` and renamed over it, so a failure never leaves a half-written wheel.
    """
    path = Path(path)
    dist_info = dist_info_dir(files, path)
    record = f"{dist_info}/RECORD"
    content = {
        n: d for n, d in files.items() if posixpath.basename(n) not in _SIGNATURES or n == record
    }
    content[record] = b""
    order = sorted(content, key=lambda n: _entry_order(n, dist_info))
    content[record] = build_record(content, dist_info, order)
    date_time = zip_date_time(source_date_epoch() if epoch is None else epoch)

    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with zipfile.ZipFile(tmp, "w") as zf:
            for name in order:
                info = zipfile.ZipInfo(name, date_time)
                info.create_system = 3  # Unix, so external_attr carries the mode
                info.external_attr = (0o100000 | _mode(name)) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, content[name], compresslevel=_COMPRESS_LEVEL)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def add_files(
    wheel: Path, files: Mapping[str, bytes], *, out: Path | None = None, epoch: int | None = None
) -> Path:
    """Add (or replace) entries in a wheel and rewrite it deterministically.

    Names in ``files`` are archive paths; a ``{dist_info}`` prefix is expanded to the wheel's
    ``.dist-info`` directory (callers need not know the wheel's name and version). Writes to
    ``out`` (default: the wheel itself) and returns the path written.
    """
    wheel = Path(wheel)
    content = read_wheel(wheel)
    dist_info = dist_info_dir(content, wheel)
    for name, data in files.items():
        name = name.replace("{dist_info}", dist_info)
        if name.startswith("/") or ".." in name.split("/") or "\\" in name:
            raise UserError(f"refusing to add {name!r} to {wheel.name}: not a relative path")
        content[name] = data
    return write_wheel(out or wheel, content, epoch=epoch)


def embed_provenance(
    wheel: Path,
    manifest: Mapping[str, Any],
    sbom: Mapping[str, Any] | None,
    *,
    out: Path | None = None,
    epoch: int | None = None,
) -> Path:
    """Put the build manifest and the CycloneDX SBOM into a wheel's ``.dist-info``.

    The manifest goes to ``.dist-info/pillow_variants.manifest.json``, the SBOM to
    ``.dist-info/sboms/pillow-variants.cdx.json`` (PEP 770), both as deterministic JSON. The
    build stage calls this once per wheel, after repair and before the audit rungs record
    their results (re-run it to update the manifest's ``rungs``).
    """
    files = {"{dist_info}/" + MANIFEST_NAME: dumps_json(dict(manifest))}
    if sbom is not None:
        files["{dist_info}/sboms/" + SBOM_NAME] = dumps_json(dict(sbom))
    return add_files(wheel, files, out=out, epoch=epoch)


def wheel_project(filename: str) -> str:
    """The distribution name part of a wheel filename (``pillow-13.0.0+x-...whl`` → pillow)."""
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    try:
        return str(parse_wheel_filename(filename)[0])
    except InvalidWheelFilename as exc:
        raise WheelError(f"{filename}: not a wheel file name ({exc})") from None
