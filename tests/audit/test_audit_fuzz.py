"""Mutated real PE files never crash the audit: success, or one UserError (exit 2)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pefactory import build_pe
from pillow_variants.audit.engine import audit_image
from pillow_variants.audit.loader import Image, Module
from pillow_variants.audit.policy import load_policy
from pillow_variants.errors import UserError
from pillow_variants.pe import read_pe


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
