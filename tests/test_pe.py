"""PE reading on files these tests build themselves with zig (``pip install ziglang``).

The files come from :mod:`pefactory` (``build_pe``), shared with the audit and surface tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pefactory import build_pe, long_rdata, set_machine
from pillow_variants.pe import PEReadError, read_pe, read_section


@pytest.fixture(scope="session")
def pe_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pe")


def test_format_constants_match_pefile() -> None:
    """pe.py spells the directory indexes and the PE32+ magic itself (importing it must not
    import pefile: the audit's start-up); they are pefile's numbers."""
    import pefile

    from pillow_variants import pe

    entry = pefile.DIRECTORY_ENTRY
    assert pe._DIR_EXPORT == entry["IMAGE_DIRECTORY_ENTRY_EXPORT"]
    assert pe._DIR_IMPORT == entry["IMAGE_DIRECTORY_ENTRY_IMPORT"]
    assert pe._DIR_RESOURCE == entry["IMAGE_DIRECTORY_ENTRY_RESOURCE"]
    assert pe._DIR_DELAY == entry["IMAGE_DIRECTORY_ENTRY_DELAY_IMPORT"]
    assert pe._PE32_PLUS == pefile.OPTIONAL_HEADER_MAGIC_PE_PLUS
    assert pe._LONGEST_STRING == pefile.MAX_STRING_LENGTH  # MappedPE's bytes/view threshold


def test_a_mapped_file_reads_as_its_bytes(pe_dir: Path, tmp_path: Path) -> None:
    """MappedPE (a map whose long slices are zero-copy views) gives read_pe what the bytes
    give, on a file whose export tables sit in a section longer than pefile's longest string
    read (MSVC merges .edata into .rdata), forwarders included."""
    import mmap

    from pillow_variants.pe import MappedPE

    path = build_pe(
        pe_dir,
        "mapped.dll",
        exports=["alpha", "beta"],
        forwarders={"Fwd": "other.Target", "FwdOrd": "other.#7"},
        imports={"KERNEL32.dll": ["Sleep"]},
        **long_rdata(3 << 20),
    )
    with path.open("rb") as fh, MappedPE(fh.fileno(), 0, access=mmap.ACCESS_READ) as view:
        assert len(view[:]) == len(view) and view[:2] == b"MZ"
        mapped = read_pe(view, path.name)
    assert mapped == read_pe(path.read_bytes(), path.name)
    assert {"alpha", "beta", "Fwd", "FwdOrd"} <= mapped.exports.names
    assert mapped.exports.forwarders == {"Fwd": "other.Target", "FwdOrd": "other.#7"}


@pytest.mark.parametrize("nul_at", [70_000, None], ids=["string", "no-nul"])
def test_a_long_slice_of_a_map_behaves_as_its_bytes(tmp_path: Path, nul_at: int | None) -> None:
    """Long slices of a MappedPE are windows on the map, not copies; whatever pefile does with
    one (measure it, find a NUL and cut a string, or keep it whole when there is no NUL) gives
    what the bytes give."""
    import mmap

    import pefile

    from pillow_variants.pe import _WINDOW, MappedPE

    raw = bytearray(b"A" * 200_000)
    if nul_at is not None:
        raw[nul_at] = 0
    path = tmp_path / "blob"
    path.write_bytes(bytes(raw))
    pe = pefile.PE.__new__(pefile.PE)  # only get_string_from_data, which reads no state
    with path.open("rb") as fh, MappedPE(fh.fileno(), 0, access=mmap.ACCESS_READ) as view:
        window = view[10 : 10 + _WINDOW + 1]
        assert not isinstance(window, bytes) and len(window) == _WINDOW + 1
        assert (
            view[10:20] == raw[10:20] and window[5] == raw[15] and window[-1] == raw[_WINDOW + 10]
        )
        expected = bytes(raw[10:])
        got = pe.get_string_from_data(0, view[10:])
        want = pe.get_string_from_data(0, expected)
        assert got == want and bytes(got) == want and hash(got) == hash(want)
        assert got.decode("ascii") == want.decode("ascii")
        assert window.find(b"\0") == expected[: _WINDOW + 1].find(b"\0")
        assert window.find(b"A", 3, 9) == 3 and window.find(b"B") == -1


def test_reads_imports_delay_imports_exports_forwarders(pe_dir: Path) -> None:
    path = build_pe(
        pe_dir,
        "mod.pyd",
        exports=["alpha"],
        forwarders={"Fwd": "other.Target"},
        imports={"KERNEL32.dll": ["GlobalLock", "CreateFileMappingA"], "USER32.dll": ["GetDC"]},
        delay={"lazy.dll": ["LazyFn"]},
    )
    info = read_pe(path.read_bytes(), path.name)
    assert info.machine == "amd64" and info.is_dll
    static = {d.name: sorted(f.name for f in d.functions) for d in info.imports if not d.delay}
    assert static == {"KERNEL32.dll": ["CreateFileMappingA", "GlobalLock"], "USER32.dll": ["GetDC"]}
    delayed = [(d.name, [f.name for f in d.functions]) for d in info.imports if d.delay]
    assert delayed == [("lazy.dll", ["LazyFn"])]
    assert {"alpha", "pv_entry", "Fwd"} <= info.exports.names
    assert info.exports.forwarders == {"Fwd": "other.Target"}
    assert set(info.exports.ordinals.values()) >= {"alpha", "Fwd"}


def test_machine_field(pe_dir: Path) -> None:
    path = set_machine(build_pe(pe_dir, "x86.dll", exports=["f"]), 0x014C)
    assert read_pe(path.read_bytes(), "x86.dll").machine == "x86"


def test_section_reader(pe_dir: Path) -> None:
    path = build_pe(pe_dir, "sect.dll", section=(".apiset", b"\x06\x00\x00\x00hello"))
    data = read_section(path.read_bytes(), "sect.dll", ".apiset")
    assert data is not None and data.startswith(b"\x06\x00\x00\x00hello")
    assert read_section(path.read_bytes(), "sect.dll", ".nothere") is None


@pytest.mark.parametrize(
    "blob, message",
    [
        (b"", "no MZ header"),
        (b"random bytes that are not a PE at all", "no MZ header"),
        (b"MZ" + b"\0" * 10, "not a valid PE file"),
    ],
)
def test_garbage_is_a_user_error(blob: bytes, message: str) -> None:
    with pytest.raises(PEReadError, match=message):
        read_pe(blob, "x.dll")


def test_truncated_pe_is_a_user_error(pe_dir: Path) -> None:
    data = build_pe(pe_dir, "trunc.dll", imports={"KERNEL32.dll": ["Sleep"]}).read_bytes()
    with pytest.raises(PEReadError):
        read_pe(data[:300], "trunc.dll")


_LEAN_PROBE = """
import hashlib_probe_setup, json, sys
from pillow_variants.pe import prefer_builtin_hashes, read_pe
lean = prefer_builtin_hashes() if sys.argv[2] == "lean" else None
info = read_pe(open(sys.argv[1], "rb").read(), "probe.dll")
import hashlib
print(json.dumps({
    "openssl": "_hashlib" in sys.modules,
    "lean": lean,
    "md5": hashlib.md5(b"abc").hexdigest(),
    "sha256": hashlib.sha256(b"abc").hexdigest(),
    "imports": [d.name for d in info.imports],
}))
"""


@pytest.mark.parametrize(
    ("setup", "mode", "openssl"),
    [
        ("", "lean", False),  # asked first: hashlib without OpenSSL
        ("", "library", True),  # not asked (a library caller): pefile's hashlib as it comes
        ("import hashlib", "lean", True),  # hashlib already imported: left as it is
        ("import sys; sys.modules['_md5'] = None", "lean", True),  # no built-in md5
    ],
    ids=["lean", "library", "hashlib-first", "no-builtin-md5"],
)
def test_pefile_is_imported_without_openssl_only_when_asked(
    pe_dir: Path, tmp_path: Path, setup: str, mode: str, openssl: bool
) -> None:
    """prefer_builtin_hashes() (what the audit command calls first) makes hashlib come
    without its OpenSSL backend (libcrypto, 3.4 MiB of the command's memory), with the same
    digests; a library caller that does not ask, a process that imported hashlib first, or
    one without CPython's own md5 keeps OpenSSL. Each case in a fresh interpreter."""
    import json
    import subprocess
    import sys

    path = build_pe(pe_dir, "probe.dll", imports={"KERNEL32.dll": ["Sleep"]})
    (tmp_path / "hashlib_probe_setup.py").write_text(setup + "\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    proc = subprocess.run(
        [sys.executable, "-c", _LEAN_PROBE, str(path), mode],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    out = json.loads(proc.stdout)
    assert out["openssl"] is openssl and out["imports"] == ["KERNEL32.dll"]
    assert out["lean"] is (None if mode == "library" else not openssl)
    assert out["md5"] == "900150983cd24fb0d6963f7d28e17f72"
    assert out["sha256"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
