"""The audit stage as a library: open targets, run the loader simulation and the policy.

``audit_paths(paths, surface=..., policy=...)`` is what the build pipeline calls; the CLI
(``main_audit.py``) only formats its :class:`~pillow_variants.audit.report.AuditReport`.
"""

from __future__ import annotations

import itertools
import lzma
import mmap
import os
import re
import tempfile
import threading
import zipfile
import zlib
from collections import deque
from collections.abc import Generator, Iterable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import IO

from pillow_variants import limits
from pillow_variants.audit.loader import MESSAGES, DllResult, Image, Loader, Module
from pillow_variants.audit.policy import MODES, Policy, load_policy
from pillow_variants.audit.report import AuditReport, Finding, ModuleReport, TargetReport
from pillow_variants.audit.surface import load_surface
from pillow_variants.errors import UserError
from pillow_variants.pe import MappedPE, is_pe_name, read_pe

DEFAULT_SURFACE = "nanoserver-ltsc2022"
_CPYTHON_TAG = re.compile(r"^cp(\d)(\d+)$")
_READ_AHEAD = 2  # members inflated ahead of the parser; 2 keeps both cores of a small host busy


def _python_dlls(wheel_name: str) -> frozenset[str] | None:
    """pythonXY.dll names a wheel's tags allow; None when the tags do not pin CPython.

    The file name is split by the wheel spec (``name-ver[-build]-py-abi-plat.whl``, compressed
    tags joined by ``.``) rather than with packaging.utils: importing packaging.tags costs more
    than the whole audit of a small wheel, and only the python/abi tags are needed here.
    """
    parts = wheel_name[:-4].split("-") if wheel_name.endswith(".whl") else []
    if len(parts) not in (5, 6):
        return None
    pythons, abis = parts[-3].split("."), parts[-2].split(".")
    names = {"python3.dll"} if "abi3" in abis else set()
    for py in pythons:
        m = _CPYTHON_TAG.match(py)
        if m is None:
            return None
        # cp314-cp314t: the free-threaded runtime is python314t.dll, not python314.dll
        if f"{py}t" in abis:
            names.add(f"python{m.group(1)}{m.group(2)}t.dll")
        if set(abis) - {f"{py}t"}:
            names.add(f"python{m.group(1)}{m.group(2)}.dll")
    return frozenset(names) or None


class _Inflate(threading.Thread):
    """Inflate one member into an anonymous temporary file in a thread: zlib releases the GIL,
    so inflating the next modules overlaps with parsing this one (inflating is most of a
    wheel's audit). Only a chunk of the member is in memory at any time (limits.spool_member);
    the parser maps the file and touches only the pages of the headers and tables it reads,
    not the megabytes of code in between (a Pillow ``_avif`` module is 8 MB)."""

    def __init__(self, zf: zipfile.ZipFile, name: str) -> None:
        super().__init__(daemon=True)
        self.zf, self.member = zf, name
        self.file: IO[bytes] | None = None
        self.size = 0
        self.exc: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            # ZipFile serialises the shared file handle; the size is capped (limits.py)
            info = self.zf.getinfo(self.member)
            self.file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by discard()
            subject = f"{self.zf.filename}:{self.member}"
            self.size = limits.spool_member(self.zf, info, subject, self.file)
        except BaseException as exc:  # re-raised in the caller's thread by mapped()
            self.exc = exc

    @contextmanager
    def mapped(self) -> Iterator[bytes | mmap.mmap]:
        """The member's bytes, mapped read-only, until the block ends (then the file goes)."""
        self.join()
        try:
            if self.exc is not None:
                raise self.exc
            assert self.file is not None
            if not self.size:  # an empty file cannot be mapped
                yield b""
                return
            self.file.flush()
            with MappedPE(self.file.fileno(), 0, access=mmap.ACCESS_READ) as view:
                yield view
        finally:
            self.discard()

    def discard(self) -> None:
        if self.file is not None:
            self.file.close()


def _read_ahead(
    zf: zipfile.ZipFile, members: list[str], ahead: int = _READ_AHEAD
) -> Generator[tuple[str, bytes | mmap.mmap], None, None]:
    """``(name, bytes)`` of each member in order, valid until the next one is asked for, with
    at most ``ahead`` members being inflated in advance (each to its own temporary file)."""
    pending: deque[_Inflate] = deque()
    todo = iter(members)
    try:
        for name in itertools.islice(todo, ahead):
            pending.append(_Inflate(zf, name))
        while pending:
            current = pending.popleft()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append(_Inflate(zf, nxt))
            with current.mapped() as data:
                yield current.member, data
    finally:  # an error or an abandoned generator: let reads finish before the zip closes
        for t in pending:
            t.join()
            t.discard()


def _open_wheel(path: Path) -> Image:
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            if not any(re.fullmatch(r"[^/]+\.dist-info/WHEEL", n) for n in names):
                raise UserError(f"{path}: not a wheel (no .dist-info/WHEEL in the archive)")
            members = sorted(n for n in names if is_pe_name(n) and not n.endswith("/"))
            _check_counts(path, len(names), len(members))
            with closing(_read_ahead(zf, members)) as contents:
                modules = [Module(n, read_pe(data, f"{path.name}:{n}")) for n, data in contents]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as exc:
        raise UserError(f"{path}: not a readable wheel ({exc})") from None
    except (OSError, RuntimeError, NotImplementedError, zlib.error, lzma.LZMAError) as exc:
        # bad CRC, encryption, compression method, corrupt deflate/LZMA streams
        raise UserError(f"{path}: cannot read from the wheel ({exc})") from None
    return Image("wheel", str(path), modules, _python_dlls(path.name))


def _walk_error(exc: OSError) -> None:
    """os.walk skips a directory it cannot list; an audit that skips one has not audited it."""
    where = exc.filename if exc.filename is not None else "a directory"
    raise UserError(f"{where}: cannot list ({exc.strerror or exc})")


def _check_counts(path: Path, entries: int, modules: int) -> None:
    """Refuse targets whose size alone would exhaust time or memory (limits.py)."""
    limits.ARCHIVE_MEMBERS.check(str(path), entries)
    limits.DLLS.check(str(path), modules)


def _open_directory(path: Path) -> Image:
    modules = []
    for root, dirs, files in os.walk(path, onerror=_walk_error):
        dirs.sort()
        for f in sorted(files):
            if is_pe_name(f):
                full = Path(root, f)
                rel = full.relative_to(path).as_posix()
                modules.append(Module(rel, read_pe(_read(full), str(full))))
                limits.DLLS.check(str(path), len(modules))
    return Image("directory", str(path), modules)


def _read(path: Path) -> bytes:
    # a regular file only (a FIFO would block, /dev/zero never end), capped (limits.py)
    return limits.read_regular_file(path, "PE file")


def open_target(path: str | os.PathLike[str]) -> Image:
    """A .whl, a directory (walked for .pyd/.dll/.exe) or one PE file -> :class:`Image`."""
    p = Path(path)
    if p.is_dir():
        return _open_directory(p)
    if not p.exists():
        raise UserError(f"{p}: no such file or directory")
    limits.check_regular_file(p, "wheel or PE file")  # before is_zipfile opens a FIFO
    if p.suffix.lower() == ".whl" or zipfile.is_zipfile(p):
        return _open_wheel(p)
    return Image("pe", str(p), [Module(p.name, read_pe(_read(p), str(p)))])


def _surface_findings(d: DllResult) -> list[Finding]:
    severity = "warning" if d.delay else "error"
    when = " (delay-load: fails only when called)" if d.delay else ""
    if d.error:
        msg = f'error {d.error} "{MESSAGES[d.error]}": {d.name} — {d.detail}{when}'
        return [Finding(severity, "surface", d.name, None, msg, error=d.error)]
    out = []
    for fn in d.functions:
        if fn.error:
            why = f"{fn.basis}: {fn.detail}" if fn.detail else fn.basis
            msg = f'error {fn.error} "{MESSAGES[fn.error]}": {d.name}!{fn.label} — {why}{when}'
            out.append(Finding(severity, "surface", d.name, fn.label, msg, error=fn.error))
    return out


def _policy_findings(d: DllResult, policy: Policy) -> list[Finding]:
    if d.where not in ("surface", "missing", "system"):
        return []  # the target's own DLLs and the Python runtime are not system imports
    severity = "warning" if d.delay else "error"
    out = []
    names = [fn.label for fn in d.functions]
    for rule in policy.rules:
        if rule.dll_level and rule.matches(d.key, None):
            d.rules.append(rule.id)
            for fn in d.functions:
                fn.rules.append(rule.id)
            shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
            msg = (
                f"{rule.id}: imports {len(names)} functions from {d.name} ({shown}) — {rule.reason}"
            )
            out.append(Finding(severity, "policy", d.name, None, msg, rule=rule.id))
    for fn in d.functions:
        for rule in policy.rules:
            if not rule.dll_level and rule.matches(d.key, fn.name):
                fn.rules.append(rule.id)
                msg = f"{rule.id}: {d.name}!{fn.label} — {rule.reason}"
                out.append(Finding(severity, "policy", d.name, fn.label, msg, rule=rule.id))
    return out


def audit_image(
    image: Image, surface: str | None, mode: str, policy: Policy | None
) -> TargetReport:
    """Audit one opened target; ``surface`` None means strict-only (no loader verdicts)."""
    loader = Loader(image, load_surface(surface) if surface else None)
    results = {m.path: loader.resolve_module(m) for m in image.modules}
    if loader.surface is not None:
        loader.load_verdicts(results)
    modules = []
    for result in results.values():
        findings: list[Finding] = []
        for d in result.imports:
            if mode in ("surface", "both"):
                findings += _surface_findings(d)
            if policy is not None and mode in ("strict", "both"):
                findings += _policy_findings(d, policy)
        modules.append(ModuleReport(result, findings))
    return TargetReport(image, modules)


def audit_paths(
    paths: Iterable[str | os.PathLike[str]],
    surface: str = DEFAULT_SURFACE,
    policy: str = "both",
    policy_file: str = "strict",
) -> AuditReport:
    """Audit wheels, directories or PE files.

    ``surface``: built-in profile name or profile JSON path; ``policy``: ``strict`` (rules only,
    no surface needed), ``surface`` (loader simulation only) or ``both``; ``policy_file``: the
    rule set for the strict part (built-in ``strict`` or a JSON path).
    """
    if policy not in MODES:
        raise UserError(f"unknown policy mode {policy!r} (choose from {', '.join(MODES)})")
    rules = load_policy(policy_file) if policy in ("strict", "both") else None
    surf = load_surface(surface) if policy in ("surface", "both") else None
    targets = []
    for p in paths:
        image = open_target(p)
        if not image.modules:  # an audit of nothing must not read as a pass
            raise UserError(f"no PE files in {p} (nothing to audit: .pyd, .dll or .exe)")
        targets.append(audit_image(image, surface if surf else None, policy, rules))
    return AuditReport(
        targets=targets,
        mode=policy,
        surface=surf.summary() if surf else None,
        policy=(
            {"name": rules.name, "rules": [r.to_dict() for r in rules.rules]} if rules else None
        ),
    )
