"""Import tables the Windows loader accepts but pefile's parser silently drops: the audit must
see every import (and fail on USER32 / legacy heap), or refuse the file (exit 2) — never say
clean. Fixtures are real DLLs built with zig (``build_pe``) and then edited the way a hostile
linker would write them; pefile (on the pristine file) finds the bytes to edit."""

from __future__ import annotations

import json
from pathlib import Path

import pefile
import pytest

from pefactory import build_pe
from pillow_variants import pe as pe_module
from pillow_variants.cli import main
from pillow_variants.pe import read_pe

THUNK = 8  # x64


@pytest.fixture(scope="module")
def d(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile-pe")


class Editor:
    """Byte edits on a built DLL, addressed through its (pristine) import directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data = bytearray(path.read_bytes())
        self.pe = pefile.PE(data=bytes(self.data))

    def entry(self, dll: str) -> pefile.ImportDescData:
        return next(e for e in self.pe.DIRECTORY_ENTRY_IMPORT if e.dll.decode() == dll)

    def set_thunk(self, dll: str, index: int, value: int) -> None:
        """Write the same value to the lookup (OFT) and address (FT) thunk, as linkers do."""
        st = self.entry(dll).struct
        for table in (st.OriginalFirstThunk, st.FirstThunk):
            off = self.pe.get_offset_from_rva(table + index * THUNK)
            self.data[off : off + THUNK] = value.to_bytes(THUNK, "little")

    def thunk(self, dll: str, index: int) -> int:
        off = self.pe.get_offset_from_rva(self.entry(dll).struct.OriginalFirstThunk + index * THUNK)
        return int.from_bytes(self.data[off : off + THUNK], "little")

    def replace_string(self, old: bytes, new: bytes) -> None:
        assert len(old) == len(new) and self.data.count(old + b"\0") == 1
        at = self.data.index(old + b"\0")
        self.data[at : at + len(new)] = new

    def save(self, name: str) -> Path:
        out = self.path.with_name(name)
        out.write_bytes(bytes(self.data))
        return out


def _audit(path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict, str]:
    code = main(["audit", str(path), "--json", *args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, json.loads(captured.out) if captured.out else {}, captured.err


def _rules(report: dict) -> list[str]:
    return [
        f["rule"]
        for t in report["targets"]
        for m in t["modules"]
        for f in m["findings"]
        if f.get("rule")
    ]


def _pefile_sees(path: Path) -> dict[str, int]:
    """What pefile's own parser reports: DLL -> number of functions (the old audit's view)."""
    pe = pefile.PE(str(path))
    return {e.dll.decode(): len(e.imports) for e in getattr(pe, "DIRECTORY_ENTRY_IMPORT", [])}


def test_walk_matches_pefile_on_an_ordinary_dll(d: Path) -> None:
    path = build_pe(
        d,
        "plain.pyd",
        imports={"KERNEL32.dll": ["Sleep", "CreateFileW"], "USER32.dll": ["GetDC"]},
        delay={"lazy.dll": ["LazyFn"]},
    )
    pe = pefile.PE(str(path))
    expected = [
        (e.dll.decode(), delay, [i.name.decode() for i in e.imports])
        for attr, delay in (
            ("DIRECTORY_ENTRY_IMPORT", False),
            ("DIRECTORY_ENTRY_DELAY_IMPORT", True),
        )
        for e in getattr(pe, attr)
    ]
    got = [
        (i.name, i.delay, [f.name for f in i.functions])
        for i in read_pe(path.read_bytes(), "p").imports
    ]
    assert got == expected


def test_sixteen_thunks_sharing_one_hint_name_entry(d: Path, capsys) -> None:
    """GlobalAlloc×16 through one hint/name entry: pefile drops the whole descriptor."""
    names = ["GlobalAlloc"] + [f"PvUnused{i}" for i in range(15)]
    ed = Editor(build_pe(d, "shared-src.pyd", imports={"KERNEL32.dll": names}))
    first = ed.thunk("KERNEL32.dll", 0)
    for i in range(16):
        ed.set_thunk("KERNEL32.dll", i, first)
    path = ed.save("shared.pyd")
    assert "KERNEL32.dll" not in _pefile_sees(path)  # the hole this closes
    code, report, _ = _audit(path, capsys, "--policy", "strict")
    assert code == 1
    assert _rules(report).count("legacy-heap") == 16


def test_ordinal_thunk_with_high_bits_set(d: Path, capsys) -> None:
    """IMAGE_ORDINAL keeps the low 16 bits; pefile discards the table when bits 16-30 are set."""
    ed = Editor(build_pe(d, "ord-src.pyd", imports={"USER32.dll": ["GetDC", "ReleaseDC"]}))
    ed.set_thunk("USER32.dll", 1, (1 << 63) | 0x7FF10000 | 5)
    path = ed.save("ord.pyd")
    assert "USER32.dll" not in _pefile_sees(path)
    info = read_pe(path.read_bytes(), "ord.pyd")
    assert [(f.name, f.ordinal) for f in info.imports[0].functions] == [("GetDC", None), (None, 5)]
    code, report, _ = _audit(path, capsys, "--policy", "strict")
    assert code == 1 and "gui-dll" in _rules(report)


def test_more_than_8192_imports(d: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    many = [f"PvF{i}" for i in range(8200)]
    path = build_pe(d, "many.pyd", imports={"AAAA.dll": many, "USER32.dll": ["GetDC"]})
    seen = _pefile_sees(path)
    assert seen.get("USER32.dll", 0) + seen.get("AAAA.dll", 0) < 8201  # pefile stops at 8192
    code, report, _ = _audit(path, capsys, "--policy", "strict")
    assert code == 1 and "gui-dll" in _rules(report)
    # Past the walker's own bound the file is refused, not read in part.
    monkeypatch.setattr(pe_module, "MAX_IMPORTED_FUNCTIONS", 1000)
    code, _, err = _audit(path, capsys, "--policy", "strict")
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("error: ") and "more than 1000 imported functions" in err


def test_descriptor_with_no_functions_still_loads_the_dll(d: Path, capsys) -> None:
    src = build_pe(d, "empty-src.pyd", imports={"KERNEL32.dll": ["Sleep"], "USER32.dll": ["GetDC"]})
    ed = Editor(src)
    ed.set_thunk("USER32.dll", 0, 0)
    path = ed.save("empty.pyd")
    assert "USER32.dll" not in _pefile_sees(path)
    info = read_pe(path.read_bytes(), "empty.pyd")
    assert [(i.name, i.functions) for i in info.imports if i.name == "USER32.dll"] == [
        ("USER32.dll", ())
    ]
    code, report, _ = _audit(path, capsys, "--policy", "strict")
    assert code == 1 and "gui-dll" in _rules(report)


@pytest.mark.parametrize("tail", [b".", b" "])
def test_trailing_dot_or_space_names_the_same_dll(d: Path, capsys, tail: bytes) -> None:
    ed = Editor(build_pe(d, "dot-src.pyd", imports={"USER32.dllx": ["GetDC"]}))
    ed.replace_string(b"USER32.dllx", b"USER32.dll" + tail)
    path = ed.save(f"dot{tail.hex()}.pyd")
    code, report, _ = _audit(path, capsys, "--policy", "strict")
    assert code == 1 and "gui-dll" in _rules(report)


def test_non_ascii_dll_name_is_unreadable(d: Path, capsys) -> None:
    """The loader decodes it with the ANSI code page: which DLL that is cannot be known."""
    ed = Editor(build_pe(d, "na-src.pyd", imports={"USER32.dll": ["GetDC"]}))
    ed.replace_string(b"USER32.dll", b"US\xc9R32.dll")
    path = ed.save("na.pyd")
    code, _, err = _audit(path, capsys, "--policy", "strict")
    assert code == 2 and err.count("\n") == 1
    assert "na.pyd: cannot read the import directory completely: DLL name" in err


def test_non_ascii_function_name_is_kept(d: Path, capsys) -> None:
    """pefile drops it (and then the descriptor); the loader would fail to bind it."""
    ed = Editor(build_pe(d, "nf-src.pyd", imports={"KERNEL32.dll": ["Sleep"]}))
    ed.replace_string(b"Sleep", b"Sl\xe9ep")
    path = ed.save("nf.pyd")
    assert "KERNEL32.dll" not in _pefile_sees(path)
    code, report, _ = _audit(path, capsys, "--policy", "surface")
    assert code == 1
    findings = [f for t in report["targets"] for m in t["modules"] for f in m["findings"]]
    assert any(f.get("error") == 127 and "Sl\\xe9ep" in f["message"] for f in findings)


@pytest.mark.parametrize(
    "edit, message",
    [
        ("name-rva-high-bits", "not in the image"),
        ("thunks-off-the-end", "outside every section"),
        ("truncated", "truncated"),
    ],
)
def test_tables_the_loader_cannot_read_are_refused(
    d: Path, capsys, edit: str, message: str
) -> None:
    src = build_pe(d, "bad-src.pyd", imports={"USER32.dll": ["GetDC"]})
    ed = Editor(src)
    st = ed.entry("USER32.dll").struct
    if edit == "name-rva-high-bits":
        ed.set_thunk("USER32.dll", 0, ed.thunk("USER32.dll", 0) | (1 << 40))
    elif edit == "thunks-off-the-end":
        off = st.get_file_offset()  # OriginalFirstThunk is the descriptor's first field
        ed.data[off : off + 4] = (0x7FFF0000).to_bytes(4, "little")
    else:
        section = ed.pe.get_section_by_rva(st.OriginalFirstThunk)
        cut = ed.pe.get_offset_from_rva(st.OriginalFirstThunk)
        assert cut < section.PointerToRawData + section.SizeOfRawData
        del ed.data[cut:]
    path = ed.save(f"{edit}.pyd")
    code, _, err = _audit(path, capsys, "--policy", "strict")
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ")
    assert message in err
