"""Real PE files for the audit/surface tests, built with zig (``pip install ziglang``).

:func:`build_pe` writes PE files with chosen exports, forwarders, imports, delay imports,
machine and extra sections, by generating C, import libraries (``zig dlltool``) and linking
with ``zig lld-link``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any


def zig(*args: str, cwd: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ziglang", *args], cwd=cwd, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise RuntimeError(f"zig {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")


def _cname(dll: str, fn: str) -> str:
    return f"imp_{dll.replace('.', '_').replace('-', '_')}_{fn}"


def build_pe(
    folder: Path,
    name: str,
    *,
    exports: list[str] = (),  # type: ignore[assignment]
    forwarders: dict[str, str] | None = None,
    imports: dict[str, list[str]] | None = None,
    delay: dict[str, list[str]] | None = None,
    section: tuple[str, bytes] | None = None,
    link_args: tuple[str, ...] = (),
) -> Path:
    """Build ``folder/name`` (an x64 DLL) and return its path (see :func:`set_machine`)."""
    work = folder / f".build-{name}"
    work.mkdir(parents=True, exist_ok=True)
    imports, delay, forwarders = imports or {}, delay or {}, forwarders or {}
    lines = [
        f"__declspec(dllexport) int {e}(void) {{ return {i}; }}" for i, e in enumerate(exports)
    ]
    calls = []
    libs = []
    for dll, funcs in {**imports, **delay}.items():
        stem = dll.replace(".", "_")
        (work / f"{stem}.def").write_text(
            f"LIBRARY {dll}\nEXPORTS\n" + "".join(f"{f}\n" for f in funcs), encoding="ascii"
        )
        zig("dlltool", "-d", f"{stem}.def", "-l", f"{stem}.lib", "-m", "i386:x86-64", cwd=work)
        libs.append(f"{stem}.lib")
        for f in funcs:
            lines.append(f"__declspec(dllimport) int {f}(void);")
            calls.append(f"{f}()")
    if delay:
        lines.append("void *__delayLoadHelper2(const void *d, void **s) { (void)d; return *s; }")
    if section:
        # trailing zeros are left to the initialiser: a 50 MB mostly-zero section compiles fast
        size = len(section[1]) or 1
        data = ", ".join(str(b) for b in section[1].rstrip(b"\0")) or "0"
        lines.append(
            f'__attribute__((section("{section[0]}"), used)) '
            f"const unsigned char section_data[{size}] = {{{data}}};"
        )
    lines.append(
        "__declspec(dllexport) int pv_entry(void) { return 0"
        + "".join(f" + {c}" for c in calls)
        + "; }"
    )
    (work / "m.c").write_text("\n".join(lines) + "\n", encoding="ascii")
    out = folder / name
    def_lines = ["pv_entry", *exports, *(f"{k}={v}" for k, v in forwarders.items())]
    (work / "m.def").write_text(f"LIBRARY {name}\nEXPORTS\n" + "\n".join(def_lines) + "\n")
    zig("cc", "-target", "x86_64-windows-gnu", "-O2", "-c", "-o", "m.obj", "m.c", cwd=work)
    link = ["lld-link", "/dll", "/noentry", f"/out:{out}", "/def:m.def", "m.obj", *libs]
    link += ["/machine:x64", *link_args] + [f"/delayload:{d}" for d in delay]
    zig(*link, cwd=work)
    return out


def long_rdata(size: int) -> dict[str, Any]:
    """:func:`build_pe` keywords for a ``.rdata`` section of ``size`` bytes that also holds the
    export tables, as MSVC links them (``.edata`` merged into ``.rdata``): pefile's export
    parser used to copy that whole section (see pe.MappedPE)."""
    return {"section": (".rdata", b"\1" + bytes(size)), "link_args": ("/merge:.edata=.rdata",)}


def set_machine(path: Path, machine: int) -> Path:
    """Rewrite FILE_HEADER.Machine: the loader simulation only compares this field, and
    building a real x86 DLL with zig would compile a whole mingw CRT first."""
    data = bytearray(path.read_bytes())
    pe_offset = int.from_bytes(data[0x3C:0x40], "little")
    data[pe_offset + 4 : pe_offset + 6] = machine.to_bytes(2, "little")
    path.write_bytes(bytes(data))
    return path
