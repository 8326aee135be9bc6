"""The audit report: findings per module, JSON (schema ``schemas/audit-report.schema.json``)
and the human text grouped module -> DLL -> functions.

Exit codes follow the project: 0 clean, 1 at least one error-severity finding. Delay-load
problems are warnings — the module loads, and fails only when the function is first called.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from pillow_variants import __version__
from pillow_variants._record import Record
from pillow_variants.audit.loader import MESSAGES, FunctionResult, Image, ModuleResult
from pillow_variants.errors import EXIT_FINDINGS, EXIT_OK

SCHEMA_ID = "pillow-variants-audit-report/1"


class Finding(Record):
    """One problem found, as the report's ``findings`` list it."""

    __slots__ = ("severity", "kind", "dll", "function", "message", "rule", "error")

    def __init__(
        self,
        severity: str,
        kind: str,
        dll: str,
        function: str | None,
        message: str,
        rule: str | None = None,
        error: int | None = None,
    ) -> None:
        self.severity = severity  # "error" | "warning"
        self.kind = kind  # "surface" | "policy"
        self.dll = dll
        self.function = function
        self.message = message
        self.rule = rule
        self.error = error


class ModuleReport(Record):
    """One module's result and the findings about it."""

    __slots__ = ("result", "findings")

    def __init__(self, result: ModuleResult, findings: list[Finding] | None = None) -> None:
        self.result = result
        self.findings = [] if findings is None else findings

    @property
    def errors(self) -> int:
        return sum(f.severity == "error" for f in self.findings)

    @property
    def warnings(self) -> int:
        return sum(f.severity == "warning" for f in self.findings)


class TargetReport(Record):
    """One target (wheel, directory or PE file) and its modules' reports."""

    __slots__ = ("image", "modules")

    def __init__(self, image: Image, modules: list[ModuleReport]) -> None:
        self.image = image
        self.modules = modules


class AuditReport(Record):
    """Everything one ``audit`` run found; ``exit_code`` and ``to_json()`` for callers."""

    __slots__ = ("targets", "mode", "surface", "policy")

    def __init__(
        self,
        targets: list[TargetReport],
        mode: str,
        surface: dict[str, Any] | None,
        policy: dict[str, Any] | None,
    ) -> None:
        self.targets = targets
        self.mode = mode
        self.surface = surface
        self.policy = policy

    def _modules(self) -> list[ModuleReport]:
        return [m for t in self.targets for m in t.modules]

    @property
    def errors(self) -> int:
        return sum(m.errors for m in self._modules())

    @property
    def warnings(self) -> int:
        return sum(m.warnings for m in self._modules())

    @property
    def exit_code(self) -> int:
        return EXIT_FINDINGS if self.errors else EXIT_OK

    def to_dict(self) -> dict[str, Any]:
        return self._document(lazy=False)

    def _document(self, lazy: bool) -> dict[str, Any]:
        """The JSON document; ``lazy``: each target's modules as an iterator of their dicts,
        built one at a time as :func:`_dumps` encodes them."""
        modules = self._modules()
        return {
            "schema": SCHEMA_ID,
            "tool": {"name": "pillow-variants", "version": __version__},
            "mode": self.mode,
            "surface": self.surface,
            "policy": self.policy,
            "exit_code": self.exit_code,
            "summary": {
                "targets": len(self.targets),
                "modules": len(modules),
                "modules_failing": sum(
                    bool(m.result.load and not m.result.load.ok) for m in modules
                ),
                "errors": self.errors,
                "warnings": self.warnings,
            },
            "targets": [_target_dict(t, lazy) for t in self.targets],
        }

    def to_json(self, indent: int | None = None) -> str:
        """One line by default: the report lists every bound function (hundreds of kB for a
        Pillow wheel), and only an unindented dump runs json's C encoder."""
        if indent is not None:
            return json.dumps(self.to_dict(), indent=indent)
        return _dumps(self._document(lazy=True), _SPLIT_DEPTH)

    def to_text(self, verbose: bool = False) -> str:
        return "\n".join(_text_lines(self, verbose))


#: Levels of the report encoded container by container (report, targets, target, modules):
#: below them each module's dict is encoded whole.
_SPLIT_DEPTH = 4


def _dumps(value: Any, depth: int) -> str:
    """``json.dumps(value)``, the same text, with less memory: json's C encoder holds every
    piece of one call (tens of thousands of small strings for a Pillow wheel's report) until
    it joins them, so the top ``depth`` levels of lists and string-keyed dicts are encoded one
    item at a time (default separators ``", "``/``": "``), and an iterator (a target's
    modules) is encoded as a list whose items are built only as they are encoded: the whole
    report as dicts and pieces was 1.6 MB, the peak of an audit's memory."""
    if depth and isinstance(value, list | Iterator):
        return "[" + ", ".join(_dumps(v, depth - 1) for v in value) + "]"
    if depth and isinstance(value, dict) and all(isinstance(k, str) for k in value):
        items = (f"{json.dumps(k)}: {_dumps(v, depth - 1)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    return json.dumps(value)


def _target_dict(t: TargetReport, lazy: bool = False) -> dict[str, Any]:
    py = sorted(t.image.python_dlls) if t.image.python_dlls is not None else None
    modules = map(_module_dict, t.modules)
    return {
        "path": t.image.path,
        "kind": t.image.kind,
        "python_dlls": py,
        "modules": modules if lazy else list(modules),
    }


def _module_dict(m: ModuleReport) -> dict[str, Any]:
    r = m.result
    load = None
    if r.load is not None:
        load = {
            "ok": r.load.ok,
            "error": r.load.error,
            "message": r.load.message,
            "chain": r.load.chain,
            "detail": r.load.detail,
        }
    # Field by field: the report of one wheel holds thousands of imported functions.
    imports = [
        {
            "name": d.name,
            "key": d.key,
            "delay": d.delay,
            "where": d.where,
            "present": d.present,
            "basis": d.basis,
            "detail": d.detail,
            "sources": list(d.sources),
            "resolved_as": d.resolved_as,
            "error": d.error,
            "functions": [_function_dict(f) for f in d.functions],
            "rules": list(d.rules),
        }
        for d in r.imports
    ]
    return {
        "path": r.path,
        "machine": r.machine,
        "load": load,
        "imports": imports,
        "findings": [f.as_dict() for f in m.findings],
    }


def _function_dict(f: FunctionResult) -> dict[str, Any]:
    return {
        "name": f.name,
        "ordinal": f.ordinal,
        "present": f.present,
        "error": f.error,
        "basis": f.basis,
        "detail": f.detail,
        "sources": list(f.sources),
        "forwarded_to": f.forwarded_to,
        "rules": f.rules,
    }


def _text_lines(report: AuditReport, verbose: bool) -> list[str]:
    s = report.surface
    head = f"surface {s['name']} ({s['kind']})" if s else "no surface (strict policy only)"
    lines = [f"audit: {head}, policy {report.mode}"]
    for t in report.targets:
        lines.append(f"{t.image.path}  [{t.image.kind}, {len(t.modules)} PE modules]")
        for m in t.modules:
            lines.extend(_module_lines(m, verbose))
    modules = report._modules()
    failing = sum(bool(m.result.load and not m.result.load.ok) for m in modules)
    lines.append(
        f"summary: {len(modules)} modules, {failing} would fail to load, "
        f"{report.errors} violations, {report.warnings} warnings -> exit {report.exit_code}"
    )
    return lines


def _module_lines(m: ModuleReport, verbose: bool) -> list[str]:
    r = m.result
    if r.load is None:
        state = "violations" if m.errors else "ok"
    elif r.load.ok:
        state = "loads"
    else:
        via = f" via {' -> '.join(r.load.chain)}" if len(r.load.chain) > 1 else ""
        state = f'FAILS: error {r.load.error} "{r.load.message}" ({r.load.detail}{via})'
    lines = [f"  {r.path}  {r.machine}  {state}"]
    by_dll: dict[tuple[str, bool], list[Finding]] = {}
    for f in m.findings:
        by_dll.setdefault((f.dll, f.severity == "warning"), []).append(f)
    for d in r.imports:
        found = by_dll.get((d.name, d.delay), [])
        if not found and not verbose:
            continue
        missing = sum(fn.present is False for fn in d.functions)
        where = d.resolved_as or d.where
        delay = " delay-load" if d.delay else ""
        dll_rules = ",".join(d.rules)
        tail = f"  [{dll_rules}]" if dll_rules else ""
        lines.append(
            f"    {d.name}{delay}  ({where}, {d.basis})  {len(d.functions)} imported, "
            f"{missing} missing{tail}"
        )
        if d.error:
            lines.append(f'      error {d.error} "{MESSAGES[d.error]}": {d.detail}')
        for fn in d.functions:
            if fn.present is not False and not fn.rules and not verbose:
                continue
            verdict = f"error {fn.error} ({fn.basis})" if fn.error else "present"
            rules = f"  [{','.join(fn.rules)}]" if fn.rules else ""
            lines.append(f"      {fn.label:<32} {verdict}{rules}")
    return lines
