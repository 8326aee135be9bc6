"""``surface capture`` on a System32 built here: DLLs and an apisetschema.dll made with zig.

A real capture needs a Windows host (docker cp of an image's System32); what runs here is the
whole capture and the audit against its result, on PE files with known contents.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from pefactory import build_pe
from pillow_variants.audit.apiset import ApiSetSchemaError, contract_key, parse_apiset_schema
from pillow_variants.audit.capture import capture_surface
from pillow_variants.audit.engine import audit_paths
from pillow_variants.audit.surface import SurfaceError
from pillow_variants.cli import main

DIGEST = "sha256:" + "ab" * 32


def apiset_schema(contracts: dict[str, dict[str, str]]) -> bytes:
    """Serialise a version-6 API set schema: contract -> {importer or "": host}."""
    names = list(contracts)
    entries_off = 28
    values_off = entries_off + 24 * len(names)
    strings_off = values_off + 20 * sum(len(v) for v in contracts.values())
    strings = bytearray()

    def put(text: str) -> tuple[int, int]:
        raw = text.encode("utf-16-le")
        if not raw:
            return 0, 0
        strings.extend(raw)
        return strings_off + len(strings) - len(raw), len(raw)

    entries, values, cursor = bytearray(), bytearray(), values_off
    for name in names:
        n_off, n_len = put(name)
        hashed = len(contract_key(name)) * 2
        entries += struct.pack("<6I", 1, n_off, n_len, hashed, cursor, len(contracts[name]))
        for importer, host in contracts[name].items():
            values += struct.pack("<5I", 0, *put(importer), *put(host))
        cursor += 20 * len(contracts[name])
    total = strings_off + len(strings)
    return (
        struct.pack("<7I", 6, total, 0, len(names), entries_off, total, 31)
        + entries
        + values
        + strings
    )


SCHEMA = {
    "api-ms-win-core-foo-l1-1-0": {"": "kernelbase.dll"},
    "api-ms-win-core-empty-l1-1-0": {"": ""},
    "api-ms-win-core-special-l1-1-0": {"": "kernelbase.dll", "kernel32.dll": "ntdll.dll"},
}


def test_apiset_schema_round_trip() -> None:
    parsed = parse_apiset_schema(apiset_schema(SCHEMA))
    assert parsed["api-ms-win-core-foo-l1-1"]["hosts"] == ["kernelbase.dll"]
    assert parsed["api-ms-win-core-empty-l1-1"]["hosts"] == []
    assert parsed["api-ms-win-core-special-l1-1"]["exceptions"] == {"kernel32.dll": "ntdll.dll"}


@pytest.mark.parametrize(
    "blob, message",
    [
        (b"\x02\x00", "too small"),
        (struct.pack("<7I", 2, 0, 0, 0, 28, 0, 0), "version 2"),
        (struct.pack("<7I", 6, 0, 0, 1000, 28, 0, 0), "do not fit"),
    ],
)
def test_apiset_schema_errors(blob: bytes, message: str) -> None:
    with pytest.raises(ApiSetSchemaError, match=message):
        parse_apiset_schema(blob)


@pytest.fixture(scope="module")
def system32(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("System32")
    build_pe(d, "kernel32.dll", exports=["Sleep", "CreateFileW"],
             forwarders={"HeapAlloc": "NTDLL.RtlAllocateHeap", "Gone": "missing.Func"})  # fmt: skip
    build_pe(d, "ntdll.dll", exports=["RtlAllocateHeap"])
    build_pe(d, "kernelbase.dll", exports=["GetFoo"])
    build_pe(d, "apisetschema.dll", section=(".apiset", apiset_schema(SCHEMA)))
    (d / "notes.dll").write_bytes(b"not a PE: recorded as unreadable, not fatal")
    return d


def test_capture_records_exports_forwarders_and_apisets(system32: Path) -> None:
    profile = capture_surface(
        system32,
        name="t",
        image="example/nano:1",
        digest=DIGEST,
        os_build="10.0.1.2",
        progress=None,
    )
    assert profile["kind"] == "captured"
    assert profile["os"] == {"image": "example/nano:1", "digest": DIGEST, "build": "10.0.1.2"}
    k32 = profile["dlls"]["kernel32.dll"]
    assert {"Sleep", "CreateFileW", "HeapAlloc"} <= set(k32["names"])
    assert k32["forwarders"]["HeapAlloc"] == "NTDLL.RtlAllocateHeap"
    assert set(k32["ordinals"].values()) >= {"Sleep", "HeapAlloc"}
    assert profile["apisets"]["api-ms-win-core-foo-l1-1"]["hosts"] == ["kernelbase.dll"]
    assert profile["unreadable"] == ["notes.dll"]


def test_capture_errors(system32: Path, tmp_path: Path) -> None:
    with pytest.raises(SurfaceError, match="digest"):
        capture_surface(system32, name="t", image="i", digest="latest", os_build="1")
    with pytest.raises(SurfaceError, match="apisetschema.dll"):
        capture_surface(tmp_path, name="t", image="i", digest=DIGEST, os_build="1")
    with pytest.raises(SurfaceError, match="os-build"):  # zig DLLs carry no version resource
        capture_surface(system32, name="t", image="i", digest=DIGEST, progress=None)


def test_audit_against_captured_profile(system32: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "captured.json"
    argv = ["surface", "capture", str(system32), "--image", "example/nano:1",
            "--digest", DIGEST, "--os-build", "10.0.1.2", "-o", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert json.loads(out.read_text())["name"] == "captured"
    assert main(["surface", "show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "captured" in shown and DIGEST in shown and "kernel32.dll" in shown

    mod = build_pe(
        tmp_path,
        "m.pyd",
        imports={
            "KERNEL32.dll": ["Sleep", "HeapAlloc", "CreateFileA", "Gone"],
            "api-ms-win-core-foo-l1-1-3.dll": ["GetFoo"],  # other minor version: same entry
        },
        delay={"api-ms-win-core-empty-l1-1-0.dll": ["X"], "USER32.dll": ["GetDC"]},
    )
    report = json.loads(audit_paths([mod], surface=str(out), policy="surface").to_json())
    m = report["targets"][0]["modules"][0]
    fns = {(d["name"], f["name"]): f for d in m["imports"] for f in d["functions"]}
    assert fns[("KERNEL32.dll", "Sleep")]["present"] is True
    assert fns[("KERNEL32.dll", "HeapAlloc")]["present"] is True
    assert fns[("KERNEL32.dll", "HeapAlloc")]["forwarded_to"] == ["NTDLL.RtlAllocateHeap"]
    assert fns[("KERNEL32.dll", "CreateFileA")]["error"] == 127
    assert fns[("KERNEL32.dll", "Gone")]["error"] == 127  # forwarder to an absent DLL
    assert fns[("api-ms-win-core-foo-l1-1-3.dll", "GetFoo")]["present"] is True
    dlls = {d["name"]: d for d in m["imports"]}
    assert dlls["api-ms-win-core-empty-l1-1-0.dll"]["error"] == 126
    assert dlls["USER32.dll"]["error"] == 126
    assert m["load"]["error"] == 127 and report["exit_code"] == 1
    warned = {f["dll"] for f in m["findings"] if f["severity"] == "warning"}
    assert warned == {"api-ms-win-core-empty-l1-1-0.dll", "USER32.dll"}
