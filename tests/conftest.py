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


@pytest.fixture(scope="session")
def zig_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh cache shared by the zig dependency builds of one session: the upstream build of
    test_deps_build is cold there, and the pipeline tests reuse what it built."""
    path = tmp_path_factory.getbasetemp() / "zig-cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def debian_sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every dependency's upstream tree from Debian (scripts/debian_sources.py, pinned)."""
    import importlib.util
    import sys

    script = Path(__file__).resolve().parents[1] / "scripts" / "debian_sources.py"
    spec = importlib.util.spec_from_file_location("debian_sources", script)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["debian_sources"] = module
    spec.loader.exec_module(module)
    return module.provide(list(module.DEFAULT), tmp_path_factory.getbasetemp() / "debian-src")
