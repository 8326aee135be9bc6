"""Cache paths are absolute: later stages run tools from other working directories (the Pillow
tree), where a relative cache path (e.g. nox's ``session.create_tmp()``) would point elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from pillow_variants.build.pysdk import sdk_cache_dir
from pillow_variants.sources.fetch import CACHE_ENV, default_cache_dir


def test_relative_cache_settings_become_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(CACHE_ENV, "rel/cache")
    assert default_cache_dir() == tmp_path / "rel" / "cache"
    assert sdk_cache_dir(Path("other")) == tmp_path / "other" / "sdk"
    assert sdk_cache_dir() == tmp_path / "rel" / "cache" / "sdk"
