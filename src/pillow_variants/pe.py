"""Read what the Windows loader needs from a PE file: machine, imports, delay imports, exports.

pefile is used with ``fast_load=True`` and only the three data directories the audit needs are
parsed (exports, imports, delay imports): parsing resources, relocations or debug data would
dominate the run time on large extension modules and tells the loader simulation nothing.

``PE.close()`` is never called: the data is a bytes object (no mmap to release) and pefile's
close() runs a full ``gc.collect()``, which would cost more than the parsing itself.

Anything pefile cannot make sense of becomes a :class:`PEReadError` (a ``UserError``), so a
truncated download or a random file gives one ``error:`` line, never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pefile

from pillow_variants.errors import UserError

_DIR_EXPORT = pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_EXPORT"]
_DIR_IMPORT = pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_IMPORT"]
_DIR_DELAY = pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_DELAY_IMPORT"]

MACHINES = {
    0x014C: "x86",
    0x8664: "amd64",
    0xAA64: "arm64",
    0xA641: "arm64ec",
    0x01C4: "arm",
}


class PEReadError(UserError):
    """A file is not a PE image the loader could map, or its import/export tables are broken."""


@dataclass(frozen=True)
class ImportedFunction:
    """One entry of an import table: by name, or by ordinal when ``name`` is None."""

    name: str | None
    ordinal: int | None = None

    @property
    def label(self) -> str:
        return self.name if self.name is not None else f"#{self.ordinal}"


@dataclass(frozen=True)
class ImportedDll:
    """A DLL named in the import (or delay-import) directory and the functions taken from it."""

    name: str
    functions: tuple[ImportedFunction, ...]
    delay: bool = False


@dataclass
class ExportTable:
    """Exports as the loader sees them: names, ordinals and forwarder strings ("DLL.Func")."""

    names: set[str] = field(default_factory=set)
    ordinals: dict[int, str | None] = field(default_factory=dict)  # ordinal -> name (or None)
    forwarders: dict[str, str] = field(default_factory=dict)  # name or "#ord" -> "DLL.target"

    def to_dict(self) -> dict:
        """JSON form used by captured surface profiles (sorted for stable diffs)."""
        return {
            "names": sorted(self.names),
            "ordinals": {str(k): v for k, v in sorted(self.ordinals.items())},
            "forwarders": dict(sorted(self.forwarders.items())),
        }


@dataclass
class PEInfo:
    """The loader-relevant content of one PE file."""

    name: str
    machine: str
    is_dll: bool
    imports: list[ImportedDll]
    exports: ExportTable


def _text(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    return raw.decode("ascii", errors="backslashreplace")


def _dir_present(pe: pefile.PE, index: int) -> bool:
    dirs = pe.OPTIONAL_HEADER.DATA_DIRECTORY
    return index < len(dirs) and dirs[index].VirtualAddress != 0 and dirs[index].Size != 0


def _open(data: bytes, name: str, directories: list[int]) -> pefile.PE:
    if data[:2] != b"MZ":
        raise PEReadError(f"{name}: not a PE file (no MZ header)")
    try:
        pe = pefile.PE(data=data, fast_load=True)
        pe.parse_data_directories(directories=directories)
    except pefile.PEFormatError as exc:
        raise PEReadError(f"{name}: not a valid PE file ({exc.value})") from None
    except Exception as exc:  # pefile raises assorted errors on hostile input
        raise PEReadError(f"{name}: unreadable PE file ({type(exc).__name__}: {exc})") from None
    return pe


def _check_parsed(pe: pefile.PE, name: str, index: int, attr: str, what: str) -> None:
    """A directory that is declared but did not parse means the loader would refuse the file."""
    if _dir_present(pe, index) and not hasattr(pe, attr):
        raise PEReadError(f"{name}: the {what} directory is present but unreadable")


def _read_imports(pe: pefile.PE, name: str) -> list[ImportedDll]:
    out: list[ImportedDll] = []
    for attr, delay in (("DIRECTORY_ENTRY_IMPORT", False), ("DIRECTORY_ENTRY_DELAY_IMPORT", True)):
        for entry in getattr(pe, attr, ()):
            dll = _text(entry.dll)
            if not dll:
                raise PEReadError(f"{name}: import directory names a DLL without a name")
            funcs = tuple(
                ImportedFunction(_text(imp.name), None if imp.name else imp.ordinal)
                for imp in entry.imports
            )
            if any(f.name is None and f.ordinal is None for f in funcs):
                raise PEReadError(f"{name}: import of {dll} has neither a name nor an ordinal")
            out.append(ImportedDll(dll, funcs, delay))
    return out


def _read_exports(pe: pefile.PE) -> ExportTable:
    table = ExportTable()
    exp = getattr(pe, "DIRECTORY_ENTRY_EXPORT", None)
    if exp is None:
        return table
    for sym in exp.symbols:
        sym_name = _text(sym.name)
        if sym_name:
            table.names.add(sym_name)
        if sym.ordinal is not None:
            table.ordinals[int(sym.ordinal)] = sym_name
        if sym.forwarder:
            table.forwarders[sym_name or f"#{sym.ordinal}"] = _text(sym.forwarder) or ""
    return table


def read_pe(data: bytes, name: str, *, imports: bool = True) -> PEInfo:
    """Parse ``data`` (the bytes of a PE file called ``name``) into a :class:`PEInfo`.

    ``imports=False`` parses the export directory only: capturing a System32 needs exports of
    thousands of DLLs and nothing else.
    """
    dirs = [_DIR_EXPORT, _DIR_IMPORT, _DIR_DELAY] if imports else [_DIR_EXPORT]
    pe = _open(data, name, dirs)
    try:
        if imports:
            _check_parsed(pe, name, _DIR_IMPORT, "DIRECTORY_ENTRY_IMPORT", "import")
            _check_parsed(pe, name, _DIR_DELAY, "DIRECTORY_ENTRY_DELAY_IMPORT", "delay-import")
            imported = _read_imports(pe, name)
        else:
            imported = []
        machine_id = pe.FILE_HEADER.Machine
        return PEInfo(
            name=name,
            machine=MACHINES.get(machine_id, f"0x{machine_id:04x}"),
            is_dll=bool(pe.FILE_HEADER.Characteristics & 0x2000),
            imports=imported,
            exports=_read_exports(pe),
        )
    except PEReadError:
        raise
    except Exception as exc:  # attribute/struct errors on hostile tables
        raise PEReadError(f"{name}: unreadable PE tables ({type(exc).__name__}: {exc})") from None


def is_pe_name(path: str) -> bool:
    """Files the audit treats as PE images by name (what a wheel or runtime ships)."""
    return path.lower().endswith((".pyd", ".dll", ".exe"))


def read_file_version(data: bytes, name: str) -> str | None:
    """The FileVersion (a.b.c.d) of a PE's VS_FIXEDFILEINFO, or None without a version resource.

    Used to record the OS build of a captured System32 (kernel32.dll carries it).
    """
    pe = _open(data, name, [pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_RESOURCE"]])
    try:
        infos = getattr(pe, "VS_FIXEDFILEINFO", None)
        if not infos:
            return None
        ms, ls = infos[0].FileVersionMS, infos[0].FileVersionLS
        return f"{ms >> 16}.{ms & 0xFFFF}.{ls >> 16}.{ls & 0xFFFF}"
    except Exception:  # a broken version resource is no reason to fail a capture
        return None


def read_section(data: bytes, name: str, section: str) -> bytes | None:
    """Raw data of the section called ``section`` (e.g. apisetschema.dll's ``.apiset``)."""
    pe = _open(data, name, [])
    for s in pe.sections:
        if s.Name.rstrip(b"\0").decode("ascii", "replace") == section:
            return s.get_data()
    return None
