"""Read what the Windows loader needs from a PE file: machine, imports, delay imports, exports.

pefile is used with ``fast_load=True`` for the headers, the sections (RVA mapping) and the
export directory: parsing resources, relocations or debug data would dominate the run time on
large extension modules and tells the loader simulation nothing.

The import and delay-import tables are walked here, the way the loader walks them, not by
pefile: pefile's parser drops, without an exception, descriptors and thunks it finds odd but
the loader accepts (many thunks sharing one hint/name entry, an ordinal thunk with high bits
set, more than 8,192 imports, a descriptor with no functions, a non-ASCII name), and an audit
that misses an import says "clean" for a DLL that loads USER32. Where the loader's behaviour
cannot be known from the file (a name whose meaning depends on the ANSI code page, a table that
runs out of its section, a name RVA with high bits set) or a table exceeds the bounds below,
the file is reported unreadable (:class:`PEReadError`, exit 2): never a partial list.

``PE.close()`` is never called: the data is the caller's (bytes, or a map the caller closes)
and pefile's close() runs a full ``gc.collect()``, which would cost more than the parsing itself.

Anything pefile cannot make sense of becomes a :class:`PEReadError` (a ``UserError``), so a
truncated download or a random file gives one ``error:`` line, never a traceback.
"""

from __future__ import annotations

import mmap
import struct
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pillow_variants._record import FrozenRecord, Record
from pillow_variants.errors import UserError

if TYPE_CHECKING:
    import pefile

#: Data directory indexes and the PE32+ magic: fixed numbers of the PE format, spelled here so
#: that importing this module does not import pefile (a fifth of the ``audit`` command's
#: start-up). pefile is imported by the first parse, which the audit starts once the wheel's
#: members are being inflated in other threads (tests/test_pe.py checks them against pefile).
_DIR_EXPORT, _DIR_IMPORT, _DIR_RESOURCE, _DIR_DELAY = 0, 1, 2, 13
_PE32_PLUS = 0x20B

MACHINES = {
    0x014C: "x86",
    0x8664: "amd64",
    0xAA64: "arm64",
    0xA641: "arm64ec",
    0x01C4: "arm",
}


#: Bounds that keep a hostile import table linear in time and memory; beyond them the file is
#: refused rather than read in part. Real extension modules stay far below (Pillow's largest
#: imports a few hundred functions from a dozen DLLs).
MAX_IMPORT_DESCRIPTORS = 4096
MAX_IMPORTED_FUNCTIONS = 1 << 16
MAX_IMPORT_NAME = 4096
MAX_IMPORT_NAME_BYTES = 8 << 20

_ORDINAL_FLAG = {4: 1 << 31, 8: 1 << 63}

#: pefile's longest string read (``pefile.MAX_STRING_LENGTH``; tests/test_pe.py checks it).
_LONGEST_STRING = 0x100000
#: Slices of a :class:`MappedPE` longer than this come back as a :class:`_Window`, not a copy.
_WINDOW = 64 << 10


class _Window:
    """A range of a :class:`MappedPE`, handed out instead of a copy of it.

    pefile takes long slices for two things only: a whole section, to take its length
    (``len(section.get_data())`` in the export parser: 0.7 MB of ``.rdata`` copied for Pillow's
    ``_imaging``, 3.6 MB for ``_avif``), and a string, up to 1 MiB clamped to its section's
    end, to cut it at its NUL (``data[offset:]``, ``find``, then a short slice). Both are
    served from the map without copying (a long slice of a window is a window); every other
    use gets the bytes (``__bytes__``, ``decode``, equality), so a string with no NUL in its
    window reads as it would from bytes.
    """

    __slots__ = ("_map", "_start", "_stop")

    def __init__(self, data: mmap.mmap, start: int, stop: int) -> None:
        self._map, self._start, self._stop = data, start, stop

    def __len__(self) -> int:
        return self._stop - self._start

    def __getitem__(self, key: int | slice) -> Any:
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            return self._map[self._start + start : self._start + stop : step]
        if key < 0:
            key += len(self)
        if not 0 <= key < len(self):
            raise IndexError("index out of range")
        return mmap.mmap.__getitem__(self._map, self._start + key)

    def find(self, sub: bytes, start: int = 0, end: int | None = None) -> int:
        lo, hi, _ = slice(start, end).indices(len(self))
        at = self._map.find(sub, self._start + lo, self._start + hi)
        return at - self._start if at >= 0 else -1

    def __bytes__(self) -> bytes:
        return mmap.mmap.__getitem__(self._map, slice(self._start, self._stop))

    def decode(self, *args: Any, **kwargs: Any) -> str:
        return bytes(self).decode(*args, **kwargs)

    def __eq__(self, other: object) -> bool:
        return bytes(self) == (bytes(other) if isinstance(other, _Window) else other)

    def __hash__(self) -> int:
        return hash(bytes(self))


class MappedPE(mmap.mmap):
    """A read-only map of a PE file (e.g. a wheel member inflated to a temporary file) for
    :func:`read_pe`: only the pages of the headers and tables read are ever loaded, and long
    slices are :class:`_Window` views, not copies (the copies were the peak of an audit's
    memory)."""

    def __getitem__(self, key: int | slice) -> Any:  # type: ignore[override]
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step == 1 and stop - start > _WINDOW:
                return _Window(self, start, stop)
        return super().__getitem__(key)


#: A PE file's bytes: in memory, or mapped.
PEData = bytes | mmap.mmap


class PEReadError(UserError):
    """A file is not a PE image the loader could map, or its import/export tables are broken."""


class ImportedFunction(FrozenRecord):
    """One entry of an import table: by name, or by ordinal when ``name`` is None."""

    __slots__ = ("name", "ordinal")

    def __init__(self, name: str | None, ordinal: int | None = None) -> None:
        self.name = name
        self.ordinal = ordinal

    @property
    def label(self) -> str:
        return self.name if self.name is not None else f"#{self.ordinal}"


class ImportedDll(FrozenRecord):
    """A DLL named in the import (or delay-import) directory and the functions taken from it."""

    __slots__ = ("name", "functions", "delay")

    def __init__(self, name: str, functions: tuple[ImportedFunction, ...], delay: bool = False):
        self.name = name
        self.functions = functions
        self.delay = delay


class ExportTable(Record):
    """Exports as the loader sees them: names, ordinals and forwarder strings ("DLL.Func")."""

    __slots__ = ("names", "ordinals", "forwarders")

    def __init__(
        self,
        names: set[str] | None = None,
        ordinals: dict[int, str | None] | None = None,
        forwarders: dict[str, str] | None = None,
    ) -> None:
        self.names = set() if names is None else names
        self.ordinals = {} if ordinals is None else ordinals  # ordinal -> name (or None)
        self.forwarders = {} if forwarders is None else forwarders  # name/"#ord" -> "DLL.x"

    def to_dict(self) -> dict:
        """JSON form used by captured surface profiles (sorted for stable diffs)."""
        return {
            "names": sorted(self.names),
            "ordinals": {str(k): v for k, v in sorted(self.ordinals.items())},
            "forwarders": dict(sorted(self.forwarders.items())),
        }


class PEInfo(Record):
    """The loader-relevant content of one PE file."""

    __slots__ = ("name", "machine", "is_dll", "imports", "exports")

    def __init__(
        self,
        name: str,
        machine: str,
        is_dll: bool,
        imports: list[ImportedDll],
        exports: ExportTable,
    ) -> None:
        self.name = name
        self.machine = machine
        self.is_dll = is_dll
        self.imports = imports
        self.exports = exports


def _text(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    return raw.decode("ascii", errors="backslashreplace")


#: CPython's own hash modules, which hashlib uses when OpenSSL's is absent (3.12 merged
#: _sha256 and _sha512 into _sha2).
_BUILTIN_HASHES = (
    ("_md5", "_sha1", "_sha2")
    if sys.version_info >= (3, 12)
    else ("_md5", "_sha1", "_sha256", "_sha512")
)


def prefer_builtin_hashes() -> bool:
    """Import hashlib without its OpenSSL backend, if nothing in the process has imported it.

    For the ``audit`` command's own process only (``cli/main_audit.py`` calls it first):
    pefile imports md5/sha1/sha256/sha512 from hashlib, for section hashes the audit never
    asks for, and hashlib's first import loads OpenSSL's libcrypto: 3.4 MiB of the command's
    peak memory (benchmarked against ``delvewheel show``). CPython's own implementations give
    the same digests; what the process loses is OpenSSL-only API (``pbkdf2_hmac``, ``scrypt``),
    which is why a library caller never gets this. True when hashlib came without OpenSSL.
    """
    if "hashlib" in sys.modules or "_hashlib" in sys.modules:
        return False
    from importlib.util import find_spec

    if not all(find_spec(m) is not None for m in _BUILTIN_HASHES):
        return False
    sys.modules["_hashlib"] = None  # type: ignore[assignment] # "import _hashlib" fails
    try:
        import hashlib
    finally:
        del sys.modules["_hashlib"]
    if all(hasattr(hashlib, n) for n in ("md5", "sha1", "sha256", "sha512")):
        return True
    del sys.modules["hashlib"]  # let pefile import it with OpenSSL after all
    return False


def _open(data: PEData, name: str, directories: list[int]) -> pefile.PE:
    if data[:2] != b"MZ":
        raise PEReadError(f"{name}: not a PE file (no MZ header)")
    import pefile

    try:
        pe = pefile.PE(data=data, fast_load=True)
        pe.parse_data_directories(directories=directories)
    except pefile.PEFormatError as exc:
        raise PEReadError(f"{name}: not a valid PE file ({exc.value})") from None
    except Exception as exc:  # pefile raises assorted errors on hostile input
        raise PEReadError(f"{name}: unreadable PE file ({type(exc).__name__}: {exc})") from None
    return pe


class _ImportWalker:
    """Walks the import and delay-import directories as the loader does (see module doc).

    Descriptors are read until the all-zero one; each descriptor's lookup table (the
    OriginalFirstThunk, else the FirstThunk; the delay INT) until its zero thunk. An ordinal
    thunk means ordinal ``value & 0xFFFF`` whatever its other bits (``IMAGE_ORDINAL``); any
    other thunk is the RVA of a hint/name entry, which many thunks may share.
    """

    def __init__(self, pe: pefile.PE, name: str) -> None:
        self.pe, self.name = pe, name
        self.thunk_size = 8 if pe.PE_TYPE == _PE32_PLUS else 4
        self.functions = 0
        self.name_bytes = 0
        self.names: dict[int, str] = {}  # hint/name RVA -> name: shared entries decode once

    def fail(self, why: str) -> PEReadError:
        return PEReadError(f"{self.name}: cannot read the import directory completely: {why}")

    def _mapped(self, rva: int, size: int) -> tuple[bytes, bool]:
        """Up to ``size`` bytes at ``rva`` as the loader maps them, and whether the mapping
        goes on (zero-filled) after them. Bytes a section declares but the file lacks (a
        truncated file) are an error, not zeros."""
        pe = self.pe
        data: PEData = pe.__data__
        section = pe.get_section_by_rva(rva)
        if section is None:
            headers = min(pe.OPTIONAL_HEADER.SizeOfHeaders, len(data))
            if rva >= headers:
                raise self.fail(f"RVA 0x{rva:x} is outside every section")
            return bytes(data[rva : min(rva + size, headers)]), False
        offset = section.get_offset_from_rva(rva)
        raw_end = section.get_PointerToRawData_adj() + section.SizeOfRawData
        chunk = bytes(data[offset : max(offset, min(offset + size, raw_end))])
        if offset + len(chunk) < min(offset + size, raw_end):
            label = section.Name.rstrip(b"\0").decode("ascii", "backslashreplace")
            raise self.fail(f"the file ends inside section {label!r} (truncated?)")
        end = rva + len(chunk)
        if len(chunk) < size and section.contains_rva(end):
            # the section's memory continues past its raw data: the loader zero-fills it
            # (section_max_addr: pefile's mapped extent, set by the contains_rva() call)
            fill = min(size - len(chunk), section.section_max_addr - end)
            return chunk + b"\0" * fill, section.contains_rva(end + fill)
        return chunk, section.contains_rva(end)

    def read(self, rva: int, size: int) -> bytes:
        """Exactly ``size`` mapped bytes at ``rva``, or fail."""
        data, _ = self._mapped(rva, size)
        if len(data) < size:
            raise self.fail(f"data at RVA 0x{rva:x} crosses the end of its section")
        return data

    def string(self, rva: int, what: str) -> bytes:
        """The NUL-terminated string at ``rva`` (at most MAX_IMPORT_NAME bytes)."""
        data, _ = self._mapped(rva, MAX_IMPORT_NAME + 1)
        end = data.find(b"\0")
        if end < 0:
            if len(data) > MAX_IMPORT_NAME:
                raise self.fail(f"{what} at RVA 0x{rva:x} is longer than {MAX_IMPORT_NAME} bytes")
            raise self.fail(f"{what} at RVA 0x{rva:x} runs off its section")
        self.name_bytes += end
        if self.name_bytes > MAX_IMPORT_NAME_BYTES:
            raise self.fail(f"more than {MAX_IMPORT_NAME_BYTES} bytes of imported names")
        return data[:end]

    def dll_name(self, rva: int) -> str:
        raw = self.string(rva, "DLL name")
        if not raw:
            raise self.fail("a descriptor names a DLL with an empty name")
        if not raw.isascii():
            # The loader decodes it with the system's ANSI code page: which file that opens
            # (and whether it is a GUI DLL) is not knowable from the file.
            shown = raw.decode("ascii", "backslashreplace")
            raise self.fail(f"DLL name {shown!r} is not ASCII")
        return raw.decode("ascii")

    def thunks(self, rva: int, dll: str, base: int = 0) -> tuple[ImportedFunction, ...]:
        """The functions of one lookup table at ``rva`` (``base``: ImageBase for VA tables)."""
        size, flag = self.thunk_size, _ORDINAL_FLAG[self.thunk_size]
        out: list[ImportedFunction] = []
        while True:
            value = int.from_bytes(self.read(rva, size), "little")
            if value == 0:
                return tuple(out)
            self.functions += 1
            if self.functions > MAX_IMPORTED_FUNCTIONS:
                raise self.fail(f"more than {MAX_IMPORTED_FUNCTIONS} imported functions")
            if value & flag:
                out.append(ImportedFunction(None, value & 0xFFFF))
            else:
                name_rva = value - base
                if not 0 < name_rva <= 0xFFFFFFFF:
                    raise self.fail(f"import of {dll} has a name at 0x{value:x}, not in the image")
                out.append(ImportedFunction(self.function_name(name_rva, dll)))
            rva += size

    def function_name(self, rva: int, dll: str) -> str:
        name = self.names.get(rva)
        if name is None:
            raw = self.string(rva + 2, f"name of a function imported from {dll}")
            if not raw:
                raise self.fail(f"import of {dll} has an empty function name")
            # Binding compares bytes with the exporter's names: keep non-ASCII ones visible.
            name = self.names[rva] = raw.decode("ascii", "backslashreplace")
        return name

    def descriptors(self, rva: int, size: int) -> Iterator[bytes]:
        for i in range(MAX_IMPORT_DESCRIPTORS + 1):
            raw = self.read(rva + i * size, size)
            if not any(raw):
                return
            if i == MAX_IMPORT_DESCRIPTORS:
                raise self.fail(f"more than {MAX_IMPORT_DESCRIPTORS} import descriptors")
            yield raw

    def imports(self, rva: int) -> list[ImportedDll]:
        """IMAGE_IMPORT_DESCRIPTOR: OriginalFirstThunk, TimeDateStamp, ForwarderChain, Name,
        FirstThunk (5 DWORDs)."""
        out = []
        for raw in self.descriptors(rva, 20):
            oft, _, _, name_rva, ft = struct.unpack("<5I", raw)
            if not name_rva or not ft:
                # Loaders differ on whether this ends the list or is an error: do not guess.
                raise self.fail("a descriptor without a name or import address table")
            dll = self.dll_name(name_rva)
            out.append(ImportedDll(dll, self.thunks(oft or ft, dll)))
        return out

    def delay_imports(self, rva: int) -> list[ImportedDll]:
        """ImgDelayDescr: Attributes, DllNameRVA, ModuleHandleRVA, ImportAddressTableRVA,
        ImportNameTableRVA, BoundIAT, UnloadIAT, TimeDateStamp (8 DWORDs). Attributes bit 0
        clear means the fields are VAs (old 32-bit linkers)."""
        out = []
        base = self.pe.OPTIONAL_HEADER.ImageBase
        for raw in self.descriptors(rva, 32):
            attrs, name_rva, _, iat, int_rva = struct.unpack("<5I", raw[:20])
            vas = base if not attrs & 1 else 0
            if not name_rva or not int_rva or not iat:
                raise self.fail("a delay-import descriptor without a name, IAT or INT")
            if name_rva < vas or int_rva < vas:
                raise self.fail("a delay-import descriptor with addresses below the image base")
            dll = self.dll_name(name_rva - vas)
            out.append(ImportedDll(dll, self.thunks(int_rva - vas, dll, vas), delay=True))
        return out


def _dir_rva(pe: pefile.PE, index: int) -> int:
    """A directory's RVA, 0 when absent. The loader ignores the declared size."""
    dirs = pe.OPTIONAL_HEADER.DATA_DIRECTORY
    return dirs[index].VirtualAddress if index < len(dirs) else 0


def _read_imports(pe: pefile.PE, name: str) -> list[ImportedDll]:
    walker = _ImportWalker(pe, name)
    out: list[ImportedDll] = []
    if rva := _dir_rva(pe, _DIR_IMPORT):
        out += walker.imports(rva)
    if rva := _dir_rva(pe, _DIR_DELAY):
        out += walker.delay_imports(rva)
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


def read_pe(data: PEData, name: str, *, imports: bool = True) -> PEInfo:
    """Parse ``data`` (the bytes or a map of a PE file called ``name``) into a :class:`PEInfo`.

    ``imports=False`` parses the export directory only: capturing a System32 needs exports of
    thousands of DLLs and nothing else.
    """
    pe = _open(data, name, [_DIR_EXPORT])
    try:
        imported = _read_imports(pe, name) if imports else []
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
    pe = _open(data, name, [_DIR_RESOURCE])
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
