"""Surface profiles: which DLLs and functions a Windows image provides, and why we think so.

A profile is JSON data (``data/surfaces/<name>.json`` or any file). Three kinds exist:

* ``captured`` — exports read from a real System32 (``pillow-variants surface capture``):
  ground truth for one image digest.
* ``derived`` — built from public evidence (``scripts/derive_nanoserver_surface.py``): every
  DLL, function list and absence rule carries source ids, because no public export dump of
  nanoserver exists.
* ``model`` — a stated assumption, e.g. "any function of a known system DLL is present".

Each DLL entry says ``status`` (present/absent) and ``exports``: ``listed`` (only ``names``,
``ordinals`` and ``forwarders`` exist) or ``any`` (every name is accepted). On top of that,
``present_evidence`` and ``absent_evidence`` name functions seen present or missing, and
``rules`` remove whole groups of functions with a reason. API set names resolve through
``apisets`` (a captured schema: contract -> host DLLs), then ``contracts`` (derived profiles:
one model per API set contract, keyed without the minor version), then ``apiset_prefixes``
(e.g. every ``api-ms-win-crt-*`` -> ucrtbase.dll). The lookup order is: evidence of
presence, evidence of absence, rules, then the export list — so a confirmed observation always
beats an inference.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from pillow_variants._record import FrozenRecord, Record
from pillow_variants.audit import DATA
from pillow_variants.audit.apiset import contract_key, is_apiset
from pillow_variants.errors import UserError
from pillow_variants.limits import loads_json
from pillow_variants.pe import ImportedFunction

FORMAT = "pillow-variants-surface/1"


class SurfaceError(UserError):
    """A surface profile cannot be found or is malformed."""


class Resolution(FrozenRecord):
    """The outcome of looking up one function (or one DLL) in a provider.

    ``forward`` is set when the export is a forwarder ("DLL.Func" / "DLL.#12"): the loader
    must resolve that target before the import counts as present.
    """

    __slots__ = ("present", "basis", "detail", "sources", "forward")

    def __init__(
        self,
        present: bool,
        basis: str,
        detail: str = "",
        sources: tuple[str, ...] = (),
        forward: str | None = None,
    ) -> None:
        self.present = present
        self.basis = basis
        self.detail = detail
        self.sources = sources
        self.forward = forward


class AbsenceRule(FrozenRecord):
    """A group of functions taken as absent, with the reason and the evidence behind it."""

    __slots__ = ("id", "reason", "names", "pattern", "sources")

    def __init__(
        self,
        id: str,  # noqa: A002 - the rule's id, as in the profile JSON
        reason: str,
        names: frozenset[str] = frozenset(),
        pattern: re.Pattern[str] | None = None,
        sources: tuple[str, ...] = (),
    ) -> None:
        self.id = id
        self.reason = reason
        self.names = names
        self.pattern = pattern
        self.sources = sources

    def matches(self, name: str) -> bool:
        return name in self.names or bool(self.pattern and self.pattern.search(name))


class DllModel(Record):
    """One DLL of a surface profile (or one API set contract in a derived profile)."""

    __slots__ = (
        "name",
        "present",
        "any_export",
        "names",
        "ordinals",
        "forwarders",
        "present_evidence",
        "absent_evidence",
        "rules",
        "basis",
        "note",
        "sources",
    )

    def __init__(
        self,
        name: str,
        present: bool = True,
        any_export: bool = False,
        names: frozenset[str] = frozenset(),
        ordinals: dict[int, str | None] | None = None,
        forwarders: dict[str, str] | None = None,
        present_evidence: dict[str, tuple[str, ...]] | None = None,
        absent_evidence: dict[str, tuple[str, ...]] | None = None,
        rules: tuple[AbsenceRule, ...] = (),
        basis: str = "captured",
        note: str = "",
        sources: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.present = present
        self.any_export = any_export
        self.names = names
        self.ordinals = {} if ordinals is None else ordinals
        self.forwarders = {} if forwarders is None else forwarders
        self.present_evidence = {} if present_evidence is None else present_evidence
        self.absent_evidence = {} if absent_evidence is None else absent_evidence
        self.rules = rules
        self.basis = basis
        self.note = note
        self.sources = sources

    def lookup(self, fn: ImportedFunction) -> Resolution:
        """Resolve one imported function against this DLL's model."""
        if fn.name is None:
            return self._lookup_ordinal(int(fn.ordinal or 0))
        name = fn.name
        if name in self.present_evidence:
            return Resolution(True, "evidence", "seen present", self.present_evidence[name])
        if name in self.absent_evidence:
            return Resolution(False, "evidence", "reported missing", self.absent_evidence[name])
        for rule in self.rules:
            if rule.matches(name):
                return Resolution(False, f"rule:{rule.id}", rule.reason, rule.sources)
        if name in self.forwarders:
            return Resolution(True, self.basis, "forwarder", self.sources, self.forwarders[name])
        if self.any_export or name in self.names:
            return Resolution(True, self.basis, self.note, self.sources)
        return Resolution(False, self.basis, f"not exported by {self.name}", self.sources)

    def _lookup_ordinal(self, ordinal: int) -> Resolution:
        if self.any_export:
            return Resolution(True, self.basis, self.note, self.sources)
        if not self.ordinals:
            # Derived lists carry names only: an ordinal import cannot be checked.
            return Resolution(True, "unverified", f"{self.name} has no ordinal data", self.sources)
        if ordinal not in self.ordinals:
            return Resolution(False, self.basis, f"ordinal {ordinal} not exported", self.sources)
        target = self.forwarders.get(f"#{ordinal}")
        name = self.ordinals[ordinal]
        if name is not None:
            target = self.forwarders.get(name, target)
        return Resolution(True, self.basis, "exported by ordinal", self.sources, target)


class Surface(Record):
    """A loaded surface profile with the lookups the loader simulation needs (``raw``: the
    profile's JSON, kept for tools that rewrite it)."""

    __slots__ = (
        "name",
        "kind",
        "description",
        "os",
        "sources",
        "dlls",
        "apisets",
        "contracts",
        "apiset_prefixes",
        "unknown_dll",
        "path",
        "raw",
    )

    def __init__(
        self,
        name: str,
        kind: str,
        description: str,
        os: dict[str, Any],
        sources: dict[str, str],
        dlls: dict[str, DllModel],
        apisets: dict[str, dict[str, Any]],
        contracts: dict[str, DllModel],
        apiset_prefixes: list[dict[str, Any]],
        unknown_dll: str,
        path: str = "",
        raw: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.kind = kind
        self.description = description
        self.os = os
        self.sources = sources
        self.dlls = dlls
        self.apisets = apisets
        self.contracts = contracts
        self.apiset_prefixes = apiset_prefixes
        self.unknown_dll = unknown_dll
        self.path = path
        self.raw = {} if raw is None else raw

    def __repr__(self) -> str:  # the profile's JSON would drown the rest
        return f"Surface(name={self.name!r}, kind={self.kind!r}, path={self.path!r})"

    def find_dll(self, dll: str, importer: str = "") -> tuple[DllModel | None, Resolution]:
        """Find the DLL the loader would map for the import name ``dll``.

        API set names go through the schema map (or, in derived profiles, through contract
        entries and prefix rules); other names are looked up directly. Returns the model (or
        None) and a Resolution that explains a missing DLL in the profile's own terms.
        """
        key = normalize_dll(dll)
        if is_apiset(key):
            return self._find_apiset(key, importer.lower())
        model = self.dlls.get(key)
        if model is None:
            return None, Resolution(False, self.kind, self.unknown_dll)
        if not model.present:
            return None, Resolution(False, model.basis, model.note or "absent", model.sources)
        return model, Resolution(True, model.basis, model.note, model.sources)

    def _find_apiset(self, key: str, importer: str) -> tuple[DllModel | None, Resolution]:
        ckey = contract_key(key)
        entry = self.apisets.get(ckey)
        if entry is not None:
            host = entry.get("exceptions", {}).get(importer) or next(iter(entry["hosts"]), "")
            if not host:
                return None, Resolution(False, self.kind, f"API set {ckey} has no host")
            model, res = self._find_host(ckey, host)
            detail = f"API set {ckey} -> {host}"
            return model, Resolution(res.present, res.basis, detail, res.sources)
        model = self.contracts.get(ckey)
        if model is not None and model.present:
            return model, Resolution(True, model.basis, model.note, model.sources)
        if model is not None:
            return None, Resolution(False, model.basis, model.note, model.sources)
        for rule in self.apiset_prefixes:
            if key.startswith(rule["prefix"]):
                host = rule.get("host")
                srcs = tuple(rule.get("sources", ()))
                if host is None:
                    any_model = DllModel(ckey, any_export=True, basis=self.kind, sources=srcs)
                    any_model.note = rule.get("note", "")
                    return any_model, Resolution(True, self.kind, any_model.note, srcs)
                model, res = self._find_host(ckey, host)
                return model, Resolution(res.present, res.basis, f"API set -> {host}", srcs)
        return None, Resolution(False, self.kind, f"API set {ckey} is not in the schema")

    def _find_host(self, ckey: str, host: str) -> tuple[DllModel | None, Resolution]:
        """The host DLL of an API set. The schema maps contracts to real DLLs only; a host
        that is itself an API set (a chain, or a cycle in a hostile profile) is not followed,
        so a profile cannot send the lookup round in circles."""
        if is_apiset(normalize_dll(host)):
            why = f"API set {ckey} maps to the API set {host}, which the loader does not follow"
            return None, Resolution(False, self.kind, why)
        return self.find_dll(host)

    def summary(self) -> dict[str, Any]:
        """What a report records about the surface it checked against."""
        return {"name": self.name, "kind": self.kind, "os": self.os, "path": self.path}


def normalize_dll(name: str) -> str:
    """Loader name normalisation: the file the loader opens for an imported DLL name.

    Case-insensitive; ``.dll`` appended when there is no extension, unless the name ends with
    a dot (the documented way to say "no extension"); then Win32 path rules drop trailing dots
    and spaces, so ``USER32.dll.`` and ``USER32.dll `` open user32.dll.
    """
    name = name.strip().lower().replace("/", "\\").rsplit("\\", 1)[-1]
    explicit = name.endswith(".")
    name = name.rstrip(". ")
    return name if explicit or "." in name else name + ".dll"


def _tuple(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value or ())


def _rule(raw: dict[str, Any], where: str) -> AbsenceRule:
    try:
        pattern = re.compile(raw["pattern"]) if raw.get("pattern") else None
    except re.error as exc:
        raise SurfaceError(f"{where}: bad pattern in rule {raw.get('id')}: {exc}") from None
    return AbsenceRule(
        id=str(raw["id"]),
        reason=str(raw.get("reason", "")),
        names=frozenset(raw.get("names", ())),
        pattern=pattern,
        sources=_tuple(raw.get("sources")),
    )


def _dll(name: str, raw: dict[str, Any], where: str) -> DllModel:
    prov = raw.get("provenance", {})
    return DllModel(
        name=name,
        present=raw.get("status", "present") == "present",
        any_export=raw.get("exports", "listed") == "any",
        names=frozenset(raw.get("names", ())),
        ordinals={int(k): v for k, v in raw.get("ordinals", {}).items()},
        forwarders=dict(raw.get("forwarders", {})),
        present_evidence={k: _tuple(v) for k, v in raw.get("present_evidence", {}).items()},
        absent_evidence={k: _tuple(v) for k, v in raw.get("absent_evidence", {}).items()},
        rules=tuple(_rule(r, f"{where}: {name}") for r in raw.get("rules", ())),
        basis=str(prov.get("basis", "captured")),
        note=str(prov.get("note", "")),
        sources=_tuple(prov.get("sources")),
    )


def _apiset(entry: Any, key: str) -> dict[str, Any]:
    """An ``apisets`` entry checked at load time (a lookup must not meet a missing key)."""
    hosts = entry.get("hosts") if isinstance(entry, dict) else None
    exceptions = entry.get("exceptions", {}) if isinstance(entry, dict) else None
    if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
        raise ValueError(f"apisets.{key}: expected an object with a 'hosts' array of names")
    if not isinstance(exceptions, dict) or not all(isinstance(v, str) for v in exceptions.values()):
        raise ValueError(f"apisets.{key}.exceptions: expected an object of DLL names")
    return entry


def surface_from_dict(raw: object, where: str = "<profile>") -> Surface:
    """Build a :class:`Surface` from profile JSON, with errors that name the file and key."""
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise SurfaceError(f"{where}: not a surface profile (format must be {FORMAT!r})")
    try:
        dlls = {normalize_dll(k): _dll(normalize_dll(k), v, where) for k, v in raw["dlls"].items()}
        return Surface(
            name=str(raw["name"]),
            kind=str(raw["kind"]),
            description=str(raw.get("description", "")),
            os=dict(raw.get("os", {})),
            sources={str(k): str(v) for k, v in raw.get("sources", {}).items()},
            dlls=dlls,
            apisets={str(k): _apiset(v, str(k)) for k, v in raw.get("apisets", {}).items()},
            contracts={  # keys are contract keys already (no minor version)
                k.lower(): _dll(k.lower(), v, where) for k, v in raw.get("contracts", {}).items()
            },
            apiset_prefixes=list(raw.get("apiset_prefixes", [])),
            unknown_dll=str(raw.get("unknown_dll", "not in the profile")),
            path=where,
            raw=raw,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        msg = f"{where}: malformed surface profile ({type(exc).__name__}: {exc})"
        raise SurfaceError(msg) from None


def builtin_surfaces() -> list[str]:
    """Names of the profiles shipped in the package."""
    return sorted(p.name[:-5] for p in (DATA / "surfaces").iterdir() if p.name.endswith(".json"))


@lru_cache(maxsize=8)
def _load_cached(path: str, mtime_ns: int) -> Surface:
    try:
        raw = loads_json(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # also UTF-8, NaN/Infinity, nesting
        raise SurfaceError(f"{path}: cannot read surface profile ({exc})") from None
    return surface_from_dict(raw, path)


def surface_path(spec: str) -> Path:
    """A built-in profile name or a path to a profile file -> the file."""
    candidate = Path(spec)
    if spec.endswith(".json") or candidate.exists():
        if not candidate.is_file():
            raise SurfaceError(f"{spec}: surface profile file not found")
        return candidate
    builtin = DATA / "surfaces" / f"{spec}.json"
    if not builtin.is_file():
        known = ", ".join(builtin_surfaces())
        raise SurfaceError(f"unknown surface {spec!r} (built-in: {known}; or give a .json file)")
    return builtin


def load_surface(spec: str) -> Surface:
    """Load (once per process and file version) a surface by built-in name or file path."""
    path = surface_path(spec).resolve()
    return _load_cached(str(path), path.stat().st_mtime_ns)
