"""Mutated real PE files never crash the audit: success, or one UserError (exit 2); and read
mapped (as the audit reads wheel members) they read as their bytes do."""

from __future__ import annotations

import json
import mmap
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pefactory import build_pe, long_rdata
from pillow_variants.audit.engine import audit_image
from pillow_variants.audit.loader import Image, Module
from pillow_variants.audit.policy import load_policy
from pillow_variants.errors import UserError
from pillow_variants.pe import MappedPE, read_pe


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    d = tmp_path_factory.mktemp("fuzz")
    path = build_pe(
        d,
        "seed.pyd",
        exports=["a", "b"],
        forwarders={"f": "KERNEL32.Sleep"},
        imports={"KERNEL32.dll": ["GlobalLock", "CreateFileW"], "USER32.dll": ["GetDC"]},
        delay={"lazy.dll": ["L"]},
    )
    return path.read_bytes()


def audit_bytes(data: bytes) -> None:
    module = Module("seed.pyd", read_pe(data, "seed.pyd"))
    image = Image("pe", "seed.pyd", [module])
    audit_image(image, "nanoserver-ltsc2022", "both", load_policy("strict"))


mutation = st.tuples(st.integers(min_value=0, max_value=4095), st.integers(0, 255))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(edits=st.lists(mutation, min_size=1, max_size=12), cut=st.integers(0, 8192))
def test_mutated_pe_gives_result_or_user_error(seed: bytes, edits, cut: int) -> None:
    data = bytearray(seed)
    for offset, value in edits:
        # the first 4 KiB hold the headers and, in these small files, the import tables
        data[offset % len(data)] = value
    if cut:
        data = data[: max(0, len(data) - cut)]
    try:
        audit_bytes(bytes(data))
    except UserError:
        pass


@pytest.fixture(scope="module")
def long_seed(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, int]:
    """A PE whose export tables sit in a section longer than pefile's longest string read
    (MSVC merges .edata into .rdata), and the file offset of its export directory."""
    import pefile

    d = tmp_path_factory.mktemp("fuzz-long")
    path = build_pe(
        d,
        "long.pyd",
        exports=["a", "b"],
        forwarders={"f": "KERNEL32.Sleep", "g": "other.#3"},
        imports={"KERNEL32.dll": ["GlobalLock"]},
        **long_rdata(2 << 20),
    )
    pe = pefile.PE(str(path), fast_load=True)
    return path.read_bytes(), pe.get_offset_from_rva(
        pe.OPTIONAL_HEADER.DATA_DIRECTORY[0].VirtualAddress
    )


def _read_or_error(data: bytes | mmap.mmap) -> object:
    try:
        return read_pe(data, "long.pyd")
    except UserError as exc:
        return str(exc)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    edits=st.lists(
        st.tuples(st.booleans(), st.integers(0, 4095), st.integers(0, 255)), max_size=12
    ),
    cut=st.integers(0, 8192),
)
def test_a_mutated_mapped_pe_reads_as_its_bytes(long_seed, edits, cut: int) -> None:
    """MappedPE (long slices as zero-copy views, for pefile's export parser) gives read_pe the
    same result, or the same error, as the bytes, header or export table mutated."""
    seed, exports_at = long_seed
    data = bytearray(seed)
    for in_exports, offset, value in edits:
        data[(exports_at + offset % 512 if in_exports else offset) % len(data)] = value
    data = data[: len(data) - cut]
    with tempfile.TemporaryFile() as fh:
        fh.write(data)
        fh.flush()
        with MappedPE(fh.fileno(), 0, access=mmap.ACCESS_READ) as view:
            mapped = _read_or_error(view)
    assert mapped == _read_or_error(bytes(data))


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=5), inner, max_size=4)
        | st.dictionaries(st.integers(), inner, max_size=3)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(value=_JSON, depth=st.integers(0, 6))
def test_the_piecewise_json_encoder_writes_what_json_dumps_writes(value, depth: int) -> None:
    """The audit report's encoder (containers encoded item by item, for memory) gives the
    text of one json.dumps call, for any JSON value and split depth (integer dict keys,
    unicode, floats included); an iterator reads as the list of its items."""
    from pillow_variants.audit.report import _dumps

    assert _dumps(value, depth) == json.dumps(value)
    if isinstance(value, list):
        assert _dumps(iter(value), max(depth, 1)) == json.dumps(value)
