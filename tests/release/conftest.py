"""Fixtures of the publish tests: a real pypiserver per module, PE modules for fixture wheels."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from publishing import PYD, Index, start_pypiserver

from pefactory import build_pe


@pytest.fixture(scope="module")
def pyd(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """A PE module that passes strict and surface: publish re-runs those rungs on every wheel,
    and refuses a wheel without PE files whose manifest claims them."""
    path = build_pe(tmp_path_factory.mktemp("pyd"), "m.pyd", imports={"KERNEL32.dll": ["Sleep"]})
    return {PYD: path.read_bytes()}


@pytest.fixture(scope="module")
def gui_pyd(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """A PE module importing USER32!GetDC: fails the strict rung (and the nanoserver surface)."""
    path = build_pe(tmp_path_factory.mktemp("gui"), "m.pyd", imports={"USER32.dll": ["GetDC"]})
    return {PYD: path.read_bytes()}


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    """Credentials needed for everything: upload, listing and download."""
    yield from start_pypiserver(tmp_path_factory.mktemp("pypi"), "update,download,list")


@pytest.fixture(scope="module")
def upload_only_auth_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    """Anonymous reads, authenticated uploads: a wrong password fails in twine itself."""
    yield from start_pypiserver(tmp_path_factory.mktemp("pypi-ro"), "update")
