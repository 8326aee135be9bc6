"""Fixtures of the build-stage tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from depsfactory import DEP, PATCH, RECIPE, make_source  # noqa: F401


@pytest.fixture
def project(tmp_path: Path):
    """Recipe a ← b ← c (c depends on b, b on a) with a patch on b, sources as overrides."""
    deps = "".join(
        DEP.format(name=n, depends=json.dumps(d), edits=e)
        for n, d, e in [
            ("a", [], ""),
            ("b", ["a"], ""),
            (
                "c",
                ["b"],
                '[[dependencies.c.upstream_edits]]\nfile = "c.c"\nsearch = "see"\n'
                'replace = "sea"\n',
            ),
        ]
    )
    (tmp_path / "recipes").mkdir()
    recipe_path = tmp_path / "recipes" / "t.toml"
    recipe_path.write_text(RECIPE.format(deps=deps))
    patch_dir = tmp_path / "patches" / "b" / "1.0"
    patch_dir.mkdir(parents=True)
    (patch_dir / "0001-change-b.patch").write_text(PATCH.format(old="b source", new="b patched"))
    overrides = {
        "a": make_source(tmp_path, "a", "a source"),
        "b": make_source(tmp_path, "b", "b source"),
        "c": make_source(tmp_path, "c", "c see"),
    }
    return tmp_path, recipe_path, overrides
