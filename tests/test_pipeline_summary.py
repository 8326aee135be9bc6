"""``build all``'s summary when a step fails part-way: the row keeps the wheel's name, its size
and every rung that ran, names the failing step, and the run exits 1.

The stages around the bookkeeping (dependency build, SDK, Pillow build, repair, audit, Wine)
are replaced by doubles here; ``test_pipeline.py`` runs them for real.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from pillow_variants import pipeline, toolchains, wheeltools
from pillow_variants.build import deps, pillow, pysdk, repair
from pillow_variants.errors import UserError
from pillow_variants.recipe.model import load_recipe
from pillow_variants.release import sbom
from pillow_variants.verify import ladder

ROOT = Path(__file__).resolve().parents[1]
WHEEL_BYTES = b"x" * 2_500_000


class _Deps:
    """``DepsBuilder`` double: a prefix manifest with no dependency."""

    def __init__(self, recipe, toolchain_, prefix: Path, **kwargs) -> None:
        self.prefix = prefix

    def build(self) -> SimpleNamespace:
        self.prefix.mkdir(parents=True, exist_ok=True)
        path = self.prefix / "manifest.json"
        path.write_text(json.dumps({"dependencies": {}, "toolchain": {}}))
        return SimpleNamespace(manifest_path=path)


def _wheel_build(recipe, python, prefix, sdk, out: Path, **kwargs) -> SimpleNamespace:
    tag = "cp" + python.replace(".", "")
    wheel = out / f"pillow-13.0.0+nanoserver-{tag}-{tag}-win_amd64.whl"
    wheel.write_bytes(WHEEL_BYTES)
    return SimpleNamespace(wheel=wheel, source={"component": "pillow"})


def _audit_passes(recipe, wheel: Path) -> dict:
    return {rung: {"passed": True, "detail": "clean"} for rung in ("strict", "surface")}


@pytest.fixture
def stages(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setattr(deps, "DepsBuilder", _Deps)
    monkeypatch.setattr(toolchains, "get_toolchain", lambda name: object())
    sdk = SimpleNamespace(runtime=True, sources={}, dll="python313.dll")  # a runtime is reachable
    monkeypatch.setattr(pysdk, "prepare_sdk", lambda python, cache_dir=None: sdk)
    monkeypatch.setattr(pillow, "run_wheel_build", _wheel_build)
    monkeypatch.setattr(repair, "repair_wheel", lambda wheel, out, progress: wheel)
    monkeypatch.setattr(pipeline, "audit_rungs", _audit_passes)
    return monkeypatch


def _run(tmp_path: Path) -> pipeline.PipelineReport:
    return pipeline.build_all(
        load_recipe(ROOT / "recipes" / "nanoserver.toml"),
        pythons=["3.11", "3.13"],
        out_dir=tmp_path / "dist",
        deps_prefix=tmp_path / "deps",
        cache_dir=tmp_path / "cache",
        progress=lambda line: None,
    )


def test_a_failing_wine_step_keeps_the_audit_verdicts_and_names_the_step(
    stages: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def no_smoke_test(wheel: Path, **kwargs):
        raise UserError("smoke_test.py is missing from the installed package")

    stages.setattr(ladder, "verify_wine", no_smoke_test)
    report = _run(tmp_path)

    assert report.exit_code == 1
    rows = report.table().splitlines()
    assert rows[0].split() == [
        "python", "wheel", "size", "strict", "surface", "wine", "wine-nogui", "status",
    ]  # fmt: skip
    for python, row in zip(["3.11", "3.13"], rows[1:], strict=True):
        tag = "cp" + python.replace(".", "")
        cells = row.split()
        assert cells[:8] == [
            python, f"pillow-13.0.0+nanoserver-{tag}-{tag}-win_amd64.whl", "2.5", "MB",
            "pass", "pass", "not", "run",
        ]  # fmt: skip
        assert "failed: wine failed: smoke_test.py is missing" in row
    for outcome in report.outcomes:
        assert outcome.failed_step == "wine" and outcome.wheel is None
        assert set(outcome.rungs) == {"strict", "surface"}
        assert report.to_dict()["wheels"][0]["failed_step"] == "wine"
    assert not (tmp_path / "dist").exists()  # no half-finished wheel is published


def test_a_failing_wine_nogui_rung_is_recorded_and_named(
    stages: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def smoke(wheel: Path, variant: str, cache_dir: Path, no_gui: bool = False):
        passed = not no_gui  # the plain wine rung passes, the one without GUI DLLs does not
        disabled = ladder.gui_dlls() if no_gui else []
        reason = "import PIL._imaging: DLL load failed" if no_gui else "77 passed"
        return ladder.WineVerdict(
            wheel.name, "3.13", "3.13.2", variant, passed, 0, 1.0, reason, None,
            disabled_dlls=disabled,
        )  # fmt: skip

    stages.setattr(ladder, "verify_wine", smoke)
    stages.setattr(wheeltools, "embed_provenance", lambda wheel, m, s, out: _copy(wheel, out))
    stages.setattr(sbom, "build_sbom", lambda recipe, manifest: {})
    report = _run(tmp_path)

    assert report.exit_code == 1
    for outcome in report.outcomes:
        assert outcome.status == "failed" and outcome.failed_step == "wine-nogui"
        assert outcome.rungs["wine"]["passed"] and not outcome.rungs["wine-nogui"]["passed"]
        assert "user32.dll" in outcome.rungs["wine-nogui"]["disabled_dlls"]
        assert outcome.reason == "rungs failed: wine-nogui"
    row = report.table().splitlines()[1].split()
    assert row[4:9] == ["pass", "pass", "pass", "FAIL", "failed:"]


def _copy(wheel: Path, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(wheel.read_bytes())
    return out


def test_a_failing_build_step_names_it_and_has_no_wheel(
    stages: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken(*args, **kwargs):
        raise UserError("setup.py exited 1")

    stages.setattr(pillow, "run_wheel_build", broken)
    report = _run(tmp_path)

    assert report.exit_code == 3  # a build failure, not a verification failure (README)
    for outcome, row in zip(report.outcomes, report.table().splitlines()[1:], strict=True):
        assert outcome.failed_step == "build" and not outcome.rungs
        assert row.split()[1:6] == ["-", "-", "not", "run", "not"]
        assert row.endswith("failed: build failed: setup.py exited 1")


def test_a_failing_wine_rung_names_the_step(stages: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def fails(wheel: Path, **kwargs):
        return SimpleNamespace(
            passed=False,
            reason="1 failed",
            rung_result=lambda: {"passed": False, "reason": "1 failed"},
        )

    stages.setattr(ladder, "verify_wine", fails)
    stages.setattr(pipeline, "build_manifest", lambda *a: {"rungs": a[-1]})
    stages.setattr(sbom, "build_sbom", lambda recipe, manifest: {})

    def embed(wheel: Path, manifest, sbom, out: Path) -> Path:
        out.write_bytes(wheel.read_bytes())
        return out

    stages.setattr(wheeltools, "embed_provenance", embed)
    report = _run(tmp_path)
    assert report.exit_code == 1
    for outcome in report.outcomes:
        assert outcome.status == "failed" and outcome.failed_step == "wine"
        assert outcome.wheel is not None and outcome.wheel.is_file()
        assert outcome.rungs["wine"]["passed"] is False
