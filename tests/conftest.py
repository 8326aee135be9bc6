"""Fixtures shared by the test modules."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def shared_cache() -> Path | None:
    """``PILLOW_VARIANTS_CACHE``, the cache the package itself uses when it is set: CI sets it
    so that the main job after the tests (``nox -s build-nanoserver``) finds the dependencies,
    SDKs and Wine prefix the tests made instead of building them again."""
    env = os.environ.get("PILLOW_VARIANTS_CACHE")
    return Path(env).expanduser().resolve() if env else None


@pytest.fixture(scope="session")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One pillow-variants cache for the session's network tests: each download, SDK and Wine
    prefix is made once. ``PILLOW_VARIANTS_CACHE`` reuses a cache across runs."""
    path = shared_cache() or tmp_path_factory.getbasetemp() / "pv-cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def runtime(cache: Path) -> Path:
    """python.org's embeddable CPython 3.13 (signature-checked), unpacked in the cache."""
    from pillow_variants.build import pysdk

    return pysdk.embed_runtime("3.13", cache)


@pytest.fixture(scope="session")
def zig_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cache of the session's zig dependency builds: the upstream build of test_deps_build
    fills it (cold in a fresh one), and the pipeline tests reuse what it built. Fresh per
    session, or ``PILLOW_VARIANTS_CACHE`` (see :func:`shared_cache`)."""
    path = shared_cache() or tmp_path_factory.getbasetemp() / "zig-cache"
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


#: The official Pillow 13.0.0 cp313 wheel: the negative control of the audit and Wine tests.
OFFICIAL_WHEEL = "pillow-13.0.0-cp313-cp313-win_amd64.whl"
OFFICIAL_WHEEL_SHA256 = "9dda0788a9932776a75d8bcc020076edc308ce2508b51f6739a45e3158b3fc42"


@pytest.fixture(scope="session")
def official_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("wheels")
    cmd = [sys.executable, "-m", "pip", "download", "--only-binary", ":all:", "--platform"]
    cmd += ["win_amd64", "--python-version", "3.13", "--no-deps", "pillow==13.0.0", "-d", str(dest)]
    subprocess.run(cmd, check=True, capture_output=True)
    wheel = dest / OFFICIAL_WHEEL
    from pillow_variants.hashing import file_sha256

    assert file_sha256(wheel) == OFFICIAL_WHEEL_SHA256
    return wheel
