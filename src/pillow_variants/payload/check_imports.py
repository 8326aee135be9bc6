"""Resolve every import of every PE file with the real Windows loader, and name what is missing.

Runs INSIDE the target Windows Python (a nanoserver container, a servercore container, Wine):
standard library only, one file, because nanoserver has nothing else. ``pillow-variants audit``
*predicts* from a surface profile whether a wheel's imports resolve; this script *asks* the
loader of the system it runs on, so a container run is ground truth for that image.

For each PE file (``.pyd``/``.dll``/``.exe``) under the given paths it parses the import and
delay-import tables itself (``struct``; pefile is not available in the container), then for
every imported DLL calls ``LoadLibraryExW`` with the search order CPython uses for extension
modules (application directory, System32, and the PE's own directory via ``AddDllDirectory``)
and ``GetProcAddress`` for every imported name or ordinal. A DLL that does not load is error 126
("module not found"), a function it lacks is error 127 ("procedure not found") -- the two
errors an import fails with. A missing *delay-load* import is reported as a warning: it fails
only when called.

Output: one line per problem, a summary, and as the LAST line a JSON object
``{"check_imports": "pass"|"fail", "missing": [...], "delay_missing": [...], ...}``. Exit 0
when every non-delay import resolves, 1 when one does not, 2 on usage errors. On a non-Windows
host only ``--parse-only`` works (it lists the imports, for tests and debugging).
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

PE_SUFFIXES = (".pyd", ".dll", ".exe")
IMPORT_DIRECTORY = 1
DELAY_IMPORT_DIRECTORY = 13
LOAD_LIBRARY_SEARCH_DEFAULT_DIRS = 0x00001000
ERROR_MOD_NOT_FOUND = 126
ERROR_PROC_NOT_FOUND = 127


class PEFormatError(ValueError):
    """The file is not a PE image this checker can read."""


@dataclass
class DllImports:
    """The functions one PE imports from one DLL (names, or ordinals as ``#N``)."""

    dll: str
    functions: list[str | int] = field(default_factory=list)
    delay: bool = False


@dataclass
class Missing:
    """An import the loader could not resolve."""

    file: str
    dll: str
    function: str | None  # None: the DLL itself did not load
    error: int
    delay: bool

    def label(self) -> str:
        what = f"{self.dll}!{self.function}" if self.function else self.dll
        kind = "delay-load " if self.delay else ""
        return f"{self.file}: {kind}{what} (error {self.error})"


# --------------------------------------------------------------------------------------------
# PE parsing (PE32 and PE32+), from the PE/COFF specification's layouts


class PEImage:
    """The parts of a PE image needed to read its import tables."""

    def __init__(self, data: bytes, name: str = "<pe>") -> None:
        self.data = data
        self.name = name
        if len(data) < 0x40 or data[:2] != b"MZ":
            raise PEFormatError(f"{name}: no MZ header")
        (pe_offset,) = self._unpack("<I", 0x3C)
        if data[pe_offset : pe_offset + 4] != b"PE\0\0":
            raise PEFormatError(f"{name}: no PE signature")
        coff = pe_offset + 4
        _machine, n_sections, _ts, _sym, _nsym, opt_size, _chars = self._unpack("<HHIIIHH", coff)
        opt = coff + 20
        (magic,) = self._unpack("<H", opt)
        if magic == 0x20B:  # PE32+
            self.pe32plus = True
            (self.image_base,) = self._unpack("<Q", opt + 24)
            n_dirs_at, dirs_at = opt + 108, opt + 112
        elif magic == 0x10B:  # PE32
            self.pe32plus = False
            (self.image_base,) = self._unpack("<I", opt + 28)
            n_dirs_at, dirs_at = opt + 92, opt + 96
        else:
            raise PEFormatError(f"{name}: unknown optional header magic {magic:#x}")
        (n_dirs,) = self._unpack("<I", n_dirs_at)
        self.directories = [self._unpack("<II", dirs_at + 8 * i) for i in range(min(n_dirs, 16))]
        self.sections = []
        table = opt + opt_size
        for i in range(n_sections):
            fields = self._unpack("<8sIIII", table + 40 * i)
            _name, vsize, vaddr, raw_size, raw_ptr = fields
            self.sections.append((vaddr, max(vsize, raw_size), raw_ptr, raw_size))

    def _unpack(self, fmt: str, offset: int) -> tuple:  # type: ignore[type-arg]
        size = struct.calcsize(fmt)
        if offset < 0 or offset + size > len(self.data):
            raise PEFormatError(f"{self.name}: truncated at offset {offset:#x}")
        return struct.unpack_from(fmt, self.data, offset)

    def offset(self, rva: int) -> int:
        """File offset of a relative virtual address."""
        for vaddr, vsize, raw_ptr, raw_size in self.sections:
            if vaddr <= rva < vaddr + vsize:
                delta = rva - vaddr
                if delta >= raw_size:
                    raise PEFormatError(f"{self.name}: RVA {rva:#x} is not backed by file data")
                return raw_ptr + delta
        raise PEFormatError(f"{self.name}: RVA {rva:#x} is in no section")

    def cstring(self, rva: int) -> str:
        start = self.offset(rva)
        end = self.data.find(b"\0", start)
        if end < 0:
            raise PEFormatError(f"{self.name}: unterminated string at RVA {rva:#x}")
        return self.data[start:end].decode("ascii", "replace")

    def _thunks(self, rva: int) -> Iterator[str | int]:
        """Names (str) or ordinals (int) of an import lookup table."""
        size, fmt = (8, "<Q") if self.pe32plus else (4, "<I")
        ordinal_flag = 1 << (size * 8 - 1)
        at = self.offset(rva)
        while True:
            (value,) = self._unpack(fmt, at)
            if value == 0:
                return
            if value & ordinal_flag:
                yield value & 0xFFFF
            else:
                yield self.cstring((value & 0x7FFFFFFF) + 2)  # skip the 2-byte hint
            at += size

    def imports(self) -> list[DllImports]:
        """The import and delay-import tables, in file order."""
        out: list[DllImports] = []
        rva, size = self._directory(IMPORT_DIRECTORY)
        if rva and size:
            at = self.offset(rva)
            while True:
                lookup, _ts, _fwd, name_rva, iat = self._unpack("<IIIII", at)
                if not (lookup or name_rva or iat):
                    break
                out.append(DllImports(self.cstring(name_rva), list(self._thunks(lookup or iat))))
                at += 20
        rva, size = self._directory(DELAY_IMPORT_DIRECTORY)
        if rva and size:
            at = self.offset(rva)
            while True:
                attrs, name, _handle, iat, int_, _bound, _unload, _ts = self._unpack("<8I", at)
                if not (name or int_):
                    break
                # attribute bit 0 clear: very old linkers stored virtual addresses, not RVAs
                base = 0 if attrs & 1 else self.image_base
                out.append(
                    DllImports(
                        self.cstring(name - base), list(self._thunks(int_ - base)), delay=True
                    )
                )
                at += 32
        return out

    def _directory(self, index: int) -> tuple[int, int]:
        return self.directories[index] if index < len(self.directories) else (0, 0)


def pe_files(paths: list[str]) -> list[str]:
    """PE files named or found (recursively, sorted) under ``paths``."""
    found: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs.sort()
                found += [
                    os.path.join(root, f) for f in sorted(files) if f.lower().endswith(PE_SUFFIXES)
                ]
        elif os.path.isfile(path):
            found.append(path)
        else:
            raise FileNotFoundError(path)
    return found


# --------------------------------------------------------------------------------------------
# Resolution with the real loader (Windows / Wine only)


class Loader:
    """LoadLibraryExW/GetProcAddress through ctypes, with CPython's extension search order."""

    def __init__(self) -> None:
        import ctypes
        from ctypes import wintypes

        self.ctypes = ctypes
        k32 = ctypes.WinDLL("kernel32", use_last_error=True)
        self.load = k32.LoadLibraryExW
        self.load.argtypes = [wintypes.LPCWSTR, wintypes.HANDLE, wintypes.DWORD]
        self.load.restype = wintypes.HMODULE
        self.proc = k32.GetProcAddress
        self.proc.argtypes = [wintypes.HMODULE, ctypes.c_void_p]
        self.proc.restype = ctypes.c_void_p
        self.add_dir = k32.AddDllDirectory
        self.add_dir.argtypes = [wintypes.LPCWSTR]
        self.add_dir.restype = ctypes.c_void_p
        self.remove_dir = k32.RemoveDllDirectory
        self.remove_dir.argtypes = [ctypes.c_void_p]
        self.remove_dir.restype = wintypes.BOOL
        # keep loaded modules loaded: unloading and reloading would re-run their DllMain
        self.modules: dict[str, int | None] = {}

    def module(self, dll: str, pe_dir: str) -> tuple[int | None, int]:
        key = f"{pe_dir.lower()}|{dll.lower()}"
        if key not in self.modules:
            cookie = self.add_dir(os.path.abspath(pe_dir))
            try:
                handle = self.load(dll, None, LOAD_LIBRARY_SEARCH_DEFAULT_DIRS)
                error = 0 if handle else self.ctypes.get_last_error()
            finally:
                if cookie:
                    self.remove_dir(cookie)
            self.modules[key] = handle or None
            if not handle:
                return None, error or ERROR_MOD_NOT_FOUND
        return self.modules[key], 0

    def has(self, handle: int, function: str | int) -> bool:
        if isinstance(function, int):
            return bool(self.proc(handle, function))  # MAKEINTRESOURCE(ordinal)
        return bool(self.proc(handle, self.ctypes.c_char_p(function.encode("ascii"))))


def check(files: list[str], loader: Loader) -> tuple[list[Missing], int]:
    """Resolve every import of ``files``; (missing imports, number of imports checked)."""
    missing: list[Missing] = []
    count = 0
    for path in files:
        with open(path, "rb") as fh:
            image = PEImage(fh.read(), path)
        pe_dir = os.path.dirname(os.path.abspath(path))
        for entry in image.imports():
            handle, error = loader.module(entry.dll, pe_dir)
            count += len(entry.functions)
            if handle is None:
                missing.append(Missing(path, entry.dll, None, error, entry.delay))
                continue
            for fn in entry.functions:
                if not loader.has(handle, fn):
                    label = f"#{fn}" if isinstance(fn, int) else fn
                    missing.append(
                        Missing(path, entry.dll, label, ERROR_PROC_NOT_FOUND, entry.delay)
                    )
    return missing, count


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("paths", nargs="+", help="PE files or directories (searched recursively)")
    ap.add_argument(
        "--parse-only", action="store_true", help="list the imports; do not load anything"
    )
    ap.add_argument("--quiet", action="store_true", help="print only the final JSON line")
    args = ap.parse_args(argv)
    try:
        files = pe_files(args.paths)
    except FileNotFoundError as exc:
        print(f"error: no such file or directory: {exc}", file=sys.stderr)
        return 2
    if not files:
        print("error: no .pyd/.dll/.exe files under " + ", ".join(args.paths), file=sys.stderr)
        return 2
    if args.parse_only:
        listing = {}
        for path in files:
            with open(path, "rb") as fh:
                listing[path] = [asdict(d) for d in PEImage(fh.read(), path).imports()]
        print(json.dumps({"imports": listing}))
        return 0
    if sys.platform != "win32":
        print("error: resolving imports needs Windows (or Wine); use --parse-only", file=sys.stderr)
        return 2
    missing, count = check(files, Loader())
    hard = [m for m in missing if not m.delay]
    soft = [m for m in missing if m.delay]
    if not args.quiet:
        for m in hard:
            print(f"MISSING  {m.label()}", flush=True)
        for m in soft:
            print(f"WARNING  {m.label()} -- fails only when called", flush=True)
        print(
            f"{len(files)} files, {count} imports, {len(hard)} missing,"
            f" {len(soft)} delay-load missing"
        )
    verdict = {
        "check_imports": "fail" if hard else "pass",
        "files": len(files),
        "imports": count,
        "missing": [asdict(m) for m in hard],
        "delay_missing": [asdict(m) for m in soft],
        "windows": sys.getwindowsversion().platform_version
        if hasattr(sys, "getwindowsversion")
        else None,
    }
    print(json.dumps(verdict), flush=True)
    return 1 if hard else 0


if __name__ == "__main__":
    sys.exit(main())
