"""``build all``'s rows for tags this machine cannot build, without building anything: the
dependency stage and the SDK stage are replaced, so only the pipeline's own decisions run."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from pillow_variants.build import deps, pysdk
from pillow_variants.errors import SourceError, ToolchainError, UserError
from pillow_variants.pipeline import build_all
from pillow_variants.recipe.model import load_recipe

ROOT = Path(__file__).resolve().parents[1]


class _NoDeps:
    def __init__(self, recipe, toolchain, prefix, **kwargs) -> None:
        self.prefix = prefix

    def build(self) -> SimpleNamespace:
        self.prefix.mkdir(parents=True, exist_ok=True)
        manifest = self.prefix / "manifest.json"
        manifest.write_text(json.dumps({"dependencies": {}}))
        return SimpleNamespace(manifest_path=manifest)


def test_every_upstream_tag_is_a_row_and_sdk_errors_are_skips_or_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    errors: dict[str, UserError] = {
        "3.12": UserError("Python 3.12: no CPython 3.12 headers reachable here"),
        "3.14": SourceError("cannot fetch python3.14_3.14.10.orig.tar.xz: 404 Not Found"),
        "3.14t": SourceError("cannot fetch python3.14_3.14.10.orig.tar.xz: 404 Not Found"),
        "3.15": ToolchainError("zig dlltool failed for python315.def"),  # ours: a failure
    }

    def prepare(python: str, **kwargs) -> pysdk.WindowsSDK:
        raise errors.get(python, UserError(f"{python}: not here"))

    monkeypatch.setattr(deps, "DepsBuilder", _NoDeps)
    monkeypatch.setattr(pysdk, "prepare_sdk", prepare)
    recipe = load_recipe(ROOT / "recipes" / "nanoserver.toml")
    report = build_all(
        recipe, deps_prefix=tmp_path / "deps", cache_dir=tmp_path, progress=lambda m: None
    )
    rows = {o.python: (o.status, o.reason) for o in report.outcomes}
    assert list(rows) == ["3.11", "3.12", "3.13", "3.14", "3.14t", "3.15", "3.15t"]
    assert rows["3.14t"] == ("skipped", f"no Windows CPython SDK here ({errors['3.14t']})")
    assert rows["3.12"][0] == "skipped" and "headers reachable here" in rows["3.12"][1]
    assert rows["3.15"] == ("failed", f"Windows CPython SDK: {errors['3.15']}")
    assert report.exit_code == 3  # our tool failed making an SDK: a build failure (README)
    assert len(report.table().splitlines()) == 1 + 7
