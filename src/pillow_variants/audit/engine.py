"""The audit stage as a library: open targets, run the loader simulation and the policy.

``audit_paths(paths, surface=..., policy=...)`` is what the build pipeline calls; the CLI
(``main_audit.py``) only formats its :class:`~pillow_variants.audit.report.AuditReport`.

Start-up is part of the ``audit`` command's benchmark (scripts/bench_audit.py): this module
imports only what starts reading a wheel; the loader, the surface and policy models, the
report and pefile are imported (and the profiles loaded) once the first wheel's members are
being inflated in other threads, which is most of an audit's work.
"""

from __future__ import annotations

import lzma
import mmap
import os
import re
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Generator, Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING

from pillow_variants import limits
from pillow_variants.audit import MODES
from pillow_variants.errors import UserError
from pillow_variants.pe import MappedPE, is_pe_name, read_pe

if TYPE_CHECKING:
    from pillow_variants.audit.loader import DllResult, Image
    from pillow_variants.audit.policy import Policy
    from pillow_variants.audit.report import AuditReport, Finding, TargetReport

DEFAULT_SURFACE = "nanoserver-ltsc2022"
_CPYTHON_TAG = re.compile(r"^cp(\d)(\d+)$")
#: Bytes inflated ahead of the parser (temporary files not yet parsed): all of a Pillow
#: wheel's 13.5 MB of modules, while a wheel of huge modules does not fill the disk.
_READ_AHEAD_BYTES = 64 << 20


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


#: One inflated member: its name, its temporary file and size, or the error reading it.
_Spooled = tuple[str, "IO[bytes] | None", int, "BaseException | None"]

#: Threads inflating one wheel. Two, on the machines this is measured on (2 cores): with one,
#: a Pillow wheel's 8 MB ``_avif`` module and the 5.5 MB of the others were inflated one after
#: the other and the parser, done with its imports, waited ~45 ms for them; with two, the others
#: are inflated while ``_avif`` is. Every thread that allocates gets its own malloc arena
#: (a thread per member cost the audit 1.5 MiB of peak memory), so not more.
_INFLATE_THREADS = 2


class _Inflater:
    """Inflates a wheel's members, each into an anonymous temporary file, in worker threads
    while the parser works: zlib (and ISA-L) release the GIL, so inflating, most of an audit,
    runs beside the parsing and the imports on other cores.

    Members are taken largest first (the largest one sets how long inflating takes) and handed
    to the parser as they are done (:meth:`next_done`), not in the archive's order: Pillow's
    8 MB ``_avif`` module sorts first, and the parser, handed members in order, waited ~35 ms
    for it while the other modules were ready. The read ahead is bounded in bytes
    (``budget``: inflated and not yet parsed), not in members: bounded at two members,
    inflating stopped after Pillow's first three modules until the parser, still importing,
    took the first one. Only a chunk of a member is in memory at a time
    (limits.spool_member); the parser maps the file and touches only the pages of the headers
    and tables it reads, not the megabytes of code in between.
    """

    def __init__(
        self,
        zf: zipfile.ZipFile,
        members: list[str],
        budget: int = _READ_AHEAD_BYTES,
        threads: int = _INFLATE_THREADS,
    ) -> None:
        self.zf, self.members, self.budget = zf, members, budget
        # Positions in the order of taking; ties (and lying sizes) keep the archive's order.
        sizes = [zf.getinfo(n).file_size for n in members]
        self.order = sorted(range(len(members)), key=lambda i: -sizes[i])
        self.room = threading.Condition()
        self.done: dict[int, _Spooled] = {}  # position -> inflated, not yet taken by the parser
        self.finished: set[int] = set()  # positions inflated (or failed), taken or not
        self.taken = 0  # members handed to a worker (positions below this one)
        self.pending = 0  # bytes inflated and not yet released by the parser
        self.stopped = False
        self.threads = [
            threading.Thread(target=self._work, daemon=True, name=f"pv-inflate-{i}")
            for i in range(max(1, min(threads, len(members))))
        ]
        for t in self.threads:
            t.start()

    def _work(self) -> None:
        while True:
            with self.room:
                while self.pending >= self.budget and not self.stopped:
                    self.room.wait()
                if self.stopped or self.taken == len(self.members):
                    return
                position = self.taken
                self.taken += 1
            name = self.members[self.order[position]]
            file: IO[bytes] | None = None
            try:
                info = self.zf.getinfo(name)
                file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the consumer
                size = limits.spool_member(self.zf, info, f"{self.zf.filename}:{name}", file)
                file.flush()  # mapped by the parser: no bytes left in the buffer
                result: _Spooled = (name, file, size, None)
            except BaseException as exc:  # re-raised in the parser's thread
                if file is not None:
                    file.close()
                size, result = 0, (name, None, 0, exc)
            with self.room:
                self.done[position] = result
                self.finished.add(position)
                self.pending += size
                self.room.notify_all()
            if result[3] is not None:
                return  # the parser stops at this member: nothing after it is needed

    def next_done(self) -> tuple[int, _Spooled]:
        """An inflated member and its index in ``members`` (the parser's thread waits for one).

        A member that failed is reported once every member taken before it is inflated
        (handed over already or not: ``finished``, never ``done``, which the parser empties),
        and the one reported is the first failed in the order of taking: the same error for
        the same wheel, whichever thread was quicker.
        """
        with self.room:
            while True:
                failed = [p for p, r in self.done.items() if r[3] is not None]
                if failed:
                    first = min(failed)
                    if all(p in self.finished for p in range(first)):
                        return self.order[first], self.done.pop(first)
                else:
                    for position in self.done:
                        return self.order[position], self.done.pop(position)
                self.room.wait()

    def release(self, size: int) -> None:
        """The parser is done with a member of ``size`` bytes: room for more."""
        with self.room:
            self.pending -= size
            self.room.notify_all()

    def alive(self) -> bool:
        return any(t.is_alive() for t in self.threads)

    def close(self) -> None:
        """Stop after the members being inflated and drop what was not parsed."""
        with self.room:
            self.stopped = True
            self.room.notify_all()
        for t in self.threads:
            t.join()
        for _, file, _, _ in self.done.values():
            if file is not None:
                file.close()
        self.done.clear()


def _read_ahead(
    inflater: _Inflater,
) -> Generator[tuple[int, str, bytes | mmap.mmap], None, None]:
    """``(index, name, bytes)`` of each member as it is inflated, valid until the next one is
    asked for (the inflater is already running: a generator's body only starts at the first
    ``next``)."""
    try:
        for _ in inflater.members:
            index, (name, file, size, exc) = inflater.next_done()
            if exc is not None:
                raise exc
            assert file is not None
            with file:
                if not size:  # an empty file cannot be mapped
                    yield index, name, b""
                else:
                    with MappedPE(file.fileno(), 0, access=mmap.ACCESS_READ) as view:
                        yield index, name, view
            inflater.release(size)
    finally:  # an error or an abandoned generator: let reads finish before the zip closes
        inflater.close()


def _wheel_error(path: Path, exc: BaseException) -> UserError:
    if isinstance(exc, zipfile.BadZipFile | zipfile.LargeZipFile | EOFError | ValueError):
        return UserError(f"{path}: not a readable wheel ({exc})")
    # bad CRC, encryption, compression method, corrupt deflate/LZMA streams
    return UserError(f"{path}: cannot read from the wheel ({exc})")


#: What reading a wheel can raise besides UserError (see _wheel_error).
_WHEEL_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    EOFError,
    ValueError,
    OSError,
    RuntimeError,
    NotImplementedError,
    zlib.error,
    lzma.LZMAError,
)


class _Opening:
    """A target being opened: a wheel's members start inflating when this is created, so
    that :func:`audit_paths` can import and load what the audit needs meanwhile; the PE
    files are parsed by :meth:`image`. An error opening the target is raised by
    :meth:`image` too, after the surface and policy errors, as before the read ahead."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.error: UserError | None = None
        self.zf: zipfile.ZipFile | None = None
        self.inflater: _Inflater | None = None
        self.contents: Generator[tuple[int, str, bytes | mmap.mmap], None, None] | None = None
        try:
            self._start()
        except UserError as exc:
            self.error = exc
            self.close()

    def _start(self) -> None:
        p = self.path
        if p.is_dir():
            return
        if not p.exists():
            raise UserError(f"{p}: no such file or directory")
        limits.check_regular_file(p, "wheel or PE file")  # before is_zipfile opens a FIFO
        if not (p.suffix.lower() == ".whl" or zipfile.is_zipfile(p)):
            return
        try:
            self.zf = zipfile.ZipFile(p)
            names = self.zf.namelist()
            if not any(re.fullmatch(r"[^/]+\.dist-info/WHEEL", n) for n in names):
                raise UserError(f"{p}: not a wheel (no .dist-info/WHEEL in the archive)")
            members = sorted(n for n in names if is_pe_name(n) and not n.endswith("/"))
            _check_counts(p, len(names), len(members))
            self.inflater = _Inflater(self.zf, members)
            self.contents = _read_ahead(self.inflater)
        except _WHEEL_ERRORS as exc:
            raise _wheel_error(p, exc) from None

    def image(self) -> Image:
        from pillow_variants.audit.loader import Image, Module

        if self.error is not None:
            raise self.error
        p = self.path
        try:
            if self.contents is not None:
                try:  # parsed as inflated, reported in the archive's (sorted) order
                    parsed = sorted(
                        (
                            (i, Module(n, read_pe(data, f"{p.name}:{n}")))
                            for i, n, data in self.contents
                        ),
                        key=lambda im: im[0],
                    )
                except _WHEEL_ERRORS as exc:
                    raise _wheel_error(p, exc) from None
                modules = [m for _, m in parsed]
                return Image("wheel", str(p), modules, _python_dlls(p.name))
            if p.is_dir():
                return _open_directory(p)
            return Image("pe", str(p), [Module(p.name, read_pe(_read(p), str(p)))])
        finally:
            self.close()

    def close(self) -> None:
        if self.contents is not None:
            self.contents.close()
        if self.inflater is not None:  # also when the parse never started (a profile error)
            self.inflater.close()
        if self.zf is not None:
            self.zf.close()


def _walk_error(exc: OSError) -> None:
    """os.walk skips a directory it cannot list; an audit that skips one has not audited it."""
    where = exc.filename if exc.filename is not None else "a directory"
    raise UserError(f"{where}: cannot list ({exc.strerror or exc})")


def _check_counts(path: Path, entries: int, modules: int) -> None:
    """Refuse targets whose size alone would exhaust time or memory (limits.py)."""
    limits.ARCHIVE_MEMBERS.check(str(path), entries)
    limits.DLLS.check(str(path), modules)


def _open_directory(path: Path) -> Image:
    from pillow_variants.audit.loader import Image, Module

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
    return _Opening(path).image()


def _surface_findings(d: DllResult) -> list[Finding]:
    from pillow_variants.audit.loader import MESSAGES
    from pillow_variants.audit.report import Finding

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
    from pillow_variants.audit.report import Finding

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
    from pillow_variants.audit.loader import Loader
    from pillow_variants.audit.report import ModuleReport, TargetReport
    from pillow_variants.audit.surface import load_surface

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
    todo = list(paths)
    # The first target starts inflating now; what follows (imports, profiles) runs meanwhile.
    first = _Opening(todo[0]) if todo else None
    try:
        from pillow_variants.audit.policy import load_policy
        from pillow_variants.audit.report import AuditReport
        from pillow_variants.audit.surface import load_surface

        rules = load_policy(policy_file) if policy in ("strict", "both") else None
        surf = load_surface(surface) if policy in ("surface", "both") else None
        targets = []
        for i, p in enumerate(todo):
            image = first.image() if i == 0 and first is not None else open_target(p)
            if not image.modules:  # an audit of nothing must not read as a pass
                raise UserError(f"no PE files in {p} (nothing to audit: .pyd, .dll or .exe)")
            targets.append(audit_image(image, surface if surf else None, policy, rules))
    finally:
        if first is not None:
            first.close()
    return AuditReport(
        targets=targets,
        mode=policy,
        surface=surf.summary() if surf else None,
        policy=(
            {"name": rules.name, "rules": [r.to_dict() for r in rules.rules]} if rules else None
        ),
    )
