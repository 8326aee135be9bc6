"""Fixtures of the build-stage tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from depsfactory import DEP, PATCH, RECIPE, make_project, make_source  # noqa: F401


@pytest.fixture
def project(tmp_path: Path):
    """Recipe a ← b ← c (c depends on b, b on a) with a patch on b, sources as overrides."""
    return make_project(tmp_path, {"a": [], "b": ["a"], "c": ["b"]})
