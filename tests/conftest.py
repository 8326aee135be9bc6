"""Fixtures shared by the test modules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One pillow-variants cache for the session's network tests: each download, SDK and Wine
    prefix is made once. ``PILLOW_VARIANTS_CACHE`` reuses a cache across runs."""
    env = os.environ.get("PILLOW_VARIANTS_CACHE")
    path = Path(env) if env else tmp_path_factory.getbasetemp() / "pv-cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def runtime(cache: Path) -> Path:
    """python.org's embeddable CPython 3.13 (signature-checked), unpacked in the cache."""
    from pillow_variants import pysdk

    return pysdk.embed_runtime("3.13", cache)
