"""Compare two wheels: files, extension modules, per-module import tables, sizes, provenance.

The question a user of a variant asks is "what exactly is different from the official wheel?":
which modules were dropped or added, which Windows functions a module no longer imports (the
whole point of the nanoserver variant), what got bigger, and which sources, patches and
toolchain the build used. Wheels for different Python versions name their extension modules
differently only in the tag (``_imaging.cp313-win_amd64.pyd``), so modules are matched by their
dotted module name and file paths are compared with the tag, the ``.dist-info`` and ``.data``
directory names normalised.

Official wheels have no build manifest; the report says so instead of inventing a difference.
Both wheels' CycloneDX SBOMs (PEP 770 ``.dist-info/sboms/``), if any, contribute the versions
of the libraries they declare.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from pillow_variants import limits
from pillow_variants.limits import read_member
from pillow_variants.pe import read_pe
from pillow_variants.wheeltools import MANIFEST_NAME, WheelError, dist_info_dir, parse_manifest

SCHEMA_ID = "pillow-variants/compare-report/1"
_EXT_RE = re.compile(
    r"^(?P<stem>[^/]+?)(?P<tag>\.(?:cp|pypy|abi|graalpy)[^./]*)?\.(?P<ext>pyd|so)$"
)
_DATA_RE = re.compile(r"^[^/]+\.data/")
_PYTHON_DLL_RE = re.compile(r"^python3\d+\.dll$")
#: In text output, long file lists are cut after this many entries (--json has them all).
TEXT_LIST_LIMIT = 25
#: Manifest sections shown first (the rest follow in key order).
MANIFEST_SECTIONS = ("recipe", "sources", "patches", "toolchain", "rungs")


@dataclass
class PEModule:
    """An extension module or bundled DLL of a wheel, with its import table."""

    key: str  # dotted module name ("PIL._imaging") or "lib:<path>" for a bundled DLL
    path: str
    size: int
    sha256: str
    machine: str
    #: "user32.dll" (or "user32.dll (delay)") → sorted functions; pythonXY.dll is "python3X.dll"
    imports: dict[str, list[str]]


@dataclass
class WheelView:
    """What :func:`compare_wheels` needs to know about one wheel."""

    path: Path
    filename: str
    project: str
    version: str
    tags: list[str]
    size: int
    files: dict[str, tuple[int, str]]  # normalised path → (size, sha256)
    modules: dict[str, PEModule] = field(default_factory=dict)
    manifest: dict[str, Any] | None = None
    sbom_components: dict[str, str] = field(default_factory=dict)  # name → version


def module_key(path: str) -> str | None:
    """The dotted module name of an extension module path, None for anything else.

    ``PIL/_imaging.cp313-win_amd64.pyd`` → ``PIL._imaging``; ``foo.abi3.so`` → ``foo``.
    """
    directory, _, base = path.rpartition("/")
    m = _EXT_RE.match(base)
    if m is None:
        return None
    dotted = directory.replace("/", ".")
    return f"{dotted}.{m.group('stem')}" if dotted else m.group("stem")


def normalize_path(path: str, dist_info: str) -> str:
    """A path with wheel-specific names replaced, so that two versions' files line up."""
    if path.startswith(dist_info + "/"):
        return "{dist-info}/" + path[len(dist_info) + 1 :]
    path = _DATA_RE.sub("{data}/", path)
    directory, _, base = path.rpartition("/")
    m = _EXT_RE.match(base)
    if m is not None and m.group("tag"):
        base = f"{m.group('stem')}.{{tag}}.{m.group('ext')}"
    return f"{directory}/{base}" if directory else base


def _imports(data: bytes, name: str) -> tuple[str, dict[str, list[str]]]:
    info = read_pe(data, name)
    table: dict[str, set[str]] = {}
    for dll in info.imports:
        # pythonXY.dll differs by design between Python versions; compare what is imported.
        name = "python3X.dll" if _PYTHON_DLL_RE.match(dll.name.lower()) else dll.name.lower()
        key = name + (" (delay)" if dll.delay else "")
        table.setdefault(key, set()).update(f.label for f in dll.functions)
    return info.machine, {k: sorted(v) for k, v in sorted(table.items())}


def _sbom_versions(zf: zipfile.ZipFile, dist_info: str) -> dict[str, str]:
    out: dict[str, str] = {}
    prefix = f"{dist_info}/sboms/"
    for name in sorted(n for n in zf.namelist() if n.startswith(prefix)):
        if not name.endswith(".json"):
            continue
        try:
            doc = json.loads(read_member(zf, zf.getinfo(name), f"{zf.filename}:{name}"))
        except ValueError:
            continue
        if not isinstance(doc, dict):  # an SBOM of the wrong JSON type names no components
            continue
        for comp in doc.get("components") or []:
            if isinstance(comp, dict) and comp.get("name") and comp.get("version"):
                out.setdefault(str(comp["name"]), str(comp["version"]))
    return out


def read_wheel_view(path: Path) -> WheelView:
    """Read a wheel's files, PE modules (import tables via pefile), manifest and SBOM."""
    path = Path(path)
    try:
        project, version, _, tags = parse_wheel_filename(path.name)
    except InvalidWheelFilename as exc:
        raise WheelError(f"{path}: not a wheel file name ({exc})") from None
    if path.exists():
        limits.check_regular_file(path, "wheel")  # before ZipFile opens a FIFO
    try:
        zf = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise WheelError(f"{path}: no such file") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise WheelError(f"{path}: not a readable wheel ({exc})") from None
    with zf:
        try:
            return _read_view(zf, path, str(project), str(version), sorted(str(t) for t in tags))
        except (
            zipfile.BadZipFile,
            EOFError,
            OSError,
            RuntimeError,
            NotImplementedError,
            zlib.error,
            lzma.LZMAError,
        ) as exc:  # bad headers or CRC, encryption, compression method, corrupt streams
            raise WheelError(f"{path}: cannot read from the wheel ({exc})") from None


def _read_view(
    zf: zipfile.ZipFile, path: Path, project: str, version: str, tags: list[str]
) -> WheelView:
    limits.ARCHIVE_MEMBERS.check(str(path), len(zf.infolist()))
    names = [i.filename for i in zf.infolist() if not i.filename.endswith("/")]
    dist_info = dist_info_dir(names, path)
    view = WheelView(
        path=path,
        filename=path.name,
        project=project,
        version=version,
        tags=tags,
        size=path.stat().st_size,
        files={},
    )
    for name in names:
        data = read_member(zf, zf.getinfo(name), f"{path.name}:{name}")
        sha = hashlib.sha256(data).hexdigest()
        view.files[normalize_path(name, dist_info)] = (len(data), sha)
        key = module_key(name)
        if key is None and name.lower().endswith(".dll"):
            key = f"lib:{normalize_path(name, dist_info)}"
        if key is not None and name.lower().endswith((".pyd", ".dll")):
            machine, imports = _imports(data, f"{path.name}:{name}")
            view.modules[key] = PEModule(key, name, len(data), sha, machine, imports)
    manifest_name = f"{dist_info}/{MANIFEST_NAME}"
    if manifest_name in names:
        raw = read_member(zf, zf.getinfo(manifest_name), f"{path.name}:{manifest_name}")
        view.manifest = parse_manifest(raw, path)
    view.sbom_components = _sbom_versions(zf, dist_info)
    return view


# --------------------------------------------------------------------------------------------
# Differences


def diff_imports(a: dict[str, list[str]], b: dict[str, list[str]]) -> dict[str, dict[str, list]]:
    """Functions imported by one side only, per DLL (whole DLLs included)."""
    only_a: dict[str, list[str]] = {}
    only_b: dict[str, list[str]] = {}
    for dll in sorted(set(a) | set(b)):
        fa, fb = set(a.get(dll, ())), set(b.get(dll, ()))
        if fa - fb:
            only_a[dll] = sorted(fa - fb)
        if fb - fa:
            only_b[dll] = sorted(fb - fa)
    return {"only_a": only_a, "only_b": only_b}


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted-key view of a JSON value; lists of named objects are keyed by their name."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k in sorted(value):
            out.update(_flatten(value[k], f"{prefix}.{k}" if prefix else str(k)))
        return out or {prefix: {}}
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        label = next((k for k in ("name", "component", "file") if all(k in v for v in value)), "")
        if label:
            out = {}
            for v in value:
                out.update(_flatten(v, f"{prefix}[{v[label]}]"))
            return out
    if isinstance(value, list):
        return (
            {prefix: value}
            if not value
            else {
                k: v
                for i, item in enumerate(value)
                for k, v in _flatten(item, f"{prefix}[{i}]").items()
            }
        )
    return {prefix: value}


def diff_manifests(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """Every dotted key whose value differs (missing on one side = null), sections first."""
    fa, fb = _flatten(a), _flatten(b)
    keys = sorted(
        set(fa) | set(fb),
        key=lambda k: (
            MANIFEST_SECTIONS.index(k.split(".")[0].split("[")[0])
            if k.split(".")[0].split("[")[0] in MANIFEST_SECTIONS
            else len(MANIFEST_SECTIONS),
            k,
        ),
    )
    return [{"key": k, "a": fa.get(k), "b": fb.get(k)} for k in keys if fa.get(k) != fb.get(k)]


def _side(v: WheelView) -> dict[str, Any]:
    return {
        "wheel": v.filename,
        "path": str(v.path),
        "project": v.project,
        "version": v.version,
        "tags": v.tags,
        "size": v.size,
        "files": len(v.files),
        "modules": len(v.modules),
        "manifest": v.manifest is not None,
    }


def compare_views(a: WheelView, b: WheelView) -> dict[str, Any]:
    """The comparison report (the ``--json`` document; see compare-report.schema.json)."""
    fa, fb = set(a.files), set(b.files)
    changed = [
        {"path": p, "size_a": a.files[p][0], "size_b": b.files[p][0]}
        for p in sorted(fa & fb)
        if a.files[p][1] != b.files[p][1]
    ]
    ma, mb = set(a.modules), set(b.modules)
    imports: dict[str, Any] = {}
    module_sizes: dict[str, Any] = {}
    for key in sorted(ma | mb):
        pa, pb = a.modules.get(key), b.modules.get(key)
        sa, sb = (pa.size if pa else None), (pb.size if pb else None)
        module_sizes[key] = {
            "a": sa,
            "b": sb,
            "delta": (sb - sa) if sa is not None and sb is not None else None,
        }
        if pa and pb:
            d = diff_imports(pa.imports, pb.imports)
            if d["only_a"] or d["only_b"]:
                imports[key] = d
    if a.manifest is not None and b.manifest is not None:
        mdiff = diff_manifests(a.manifest, b.manifest)
        note = "" if mdiff else "the build manifests are identical"
    else:
        mdiff = []
        missing = [s for s, v in (("A", a), ("B", b)) if v.manifest is None]
        note = (
            f"{' and '.join(missing)} {'has' if len(missing) == 1 else 'have'} no build manifest "
            f"({MANIFEST_NAME}): not built by pillow-variants (e.g. an official wheel), so "
            "sources, patches and toolchain cannot be compared"
        )
    libs = {
        name: {"a": a.sbom_components.get(name), "b": b.sbom_components.get(name)}
        for name in sorted(set(a.sbom_components) | set(b.sbom_components))
        if a.sbom_components.get(name) != b.sbom_components.get(name)
    }
    sbom = {"a": bool(a.sbom_components), "b": bool(b.sbom_components), "components": libs}
    report: dict[str, Any] = {
        "schema": SCHEMA_ID,
        "a": _side(a),
        "b": _side(b),
        "files": {
            "only_a": sorted(fa - fb),
            "only_b": sorted(fb - fa),
            "changed": changed,
            "same": len(fa & fb) - len(changed),
        },
        "modules": {
            "only_a": sorted(ma - mb),
            "only_b": sorted(mb - ma),
            "common": sorted(ma & mb),
        },
        "imports": imports,
        "sizes": {
            "wheel": {"a": a.size, "b": b.size, "delta": b.size - a.size},
            "modules": module_sizes,
        },
        "manifest": {
            "a": a.manifest is not None,
            "b": b.manifest is not None,
            "note": note,
            "differences": mdiff,
        },
        "sbom": sbom,
    }
    report["identical"] = not (
        fa ^ fb
        or changed
        or imports
        or mdiff
        or libs
        or (a.manifest is None) != (b.manifest is None)
    )
    return report


def compare_wheels(a: Path, b: Path) -> dict[str, Any]:
    """Read and compare two wheels (see :func:`compare_views`)."""
    return compare_views(read_wheel_view(Path(a)), read_wheel_view(Path(b)))


# --------------------------------------------------------------------------------------------
# Text


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:77] + "..."


def format_report(r: dict[str, Any]) -> str:
    """A human-readable rendering: what differs, most important first."""
    a, b = r["a"], r["b"]
    lines = [f"A  {a['wheel']}  ({a['size']:,} bytes)", f"B  {b['wheel']}  ({b['size']:,} bytes)"]
    if r["identical"]:
        lines.append("no differences")
        return "\n".join(lines)
    mods = r["modules"]
    lines.append(f"\nmodules: {len(mods['common'])} in both")
    lines += [f"  only in A: {m}" for m in mods["only_a"]]
    lines += [f"  only in B: {m}" for m in mods["only_b"]]
    lines.append("\nimport tables (functions imported by one wheel only):")
    if not r["imports"]:
        lines.append("  no differences in the modules both wheels have")
    for module, d in r["imports"].items():
        lines.append(f"  {module}")
        for side, label in (("only_a", "A only"), ("only_b", "B only")):
            for dll, funcs in d[side].items():
                lines.append(f"    {label}  {dll}: {', '.join(funcs)}")
    files = r["files"]
    lines.append(
        f"\nfiles: {files['same']} identical, {len(files['changed'])} changed, "
        f"{len(files['only_a'])} only in A, {len(files['only_b'])} only in B"
    )
    listed = [f"  only in A: {p}" for p in files["only_a"]]
    listed += [f"  only in B: {p}" for p in files["only_b"]]
    listed += [
        f"  changed:   {c['path']}  {c['size_a']:,} → {c['size_b']:,}" for c in files["changed"]
    ]
    lines += listed[:TEXT_LIST_LIMIT]
    if len(listed) > TEXT_LIST_LIMIT:
        lines.append(f"  … and {len(listed) - TEXT_LIST_LIMIT} more (--json lists them all)")
    lines.append("\nsizes:")
    w = r["sizes"]["wheel"]
    lines.append(f"  wheel  {w['a']:,} → {w['b']:,}  ({w['delta']:+,})")
    for module, s in r["sizes"]["modules"].items():
        if s["delta"]:
            lines.append(f"  {module}  {s['a']:,} → {s['b']:,}  ({s['delta']:+,})")
    sbom = r["sbom"]
    if sbom["components"]:
        lines.append("\ncomponent versions (from the wheels' SBOMs, .dist-info/sboms/):")
        for side in ("a", "b"):
            if not sbom[side]:
                lines.append(f"  {side.upper()} has no SBOM")
        for name, v in sbom["components"].items():
            lines.append(f"  {name}: {v['a'] or '-'} → {v['b'] or '-'}")
    lines.append("\nbuild manifests:")
    m = r["manifest"]
    if m["note"]:
        lines.append(f"  {m['note']}")
    for d in m["differences"]:
        lines.append(f"  {d['key']}: {_short(d['a'])} → {_short(d['b'])}")
    return "\n".join(lines)
