"""The smoke test (package data: pillow_variants/payload/smoke_test.py, as installed) on this
machine's native Pillow (a test dependency), and its pieces:
the generated font, the WMF fixture, the nanoserver error contract, and that it can fail."""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image, ImageFont

from pillow_variants.verify.ladder import payload_file

SCRIPT = payload_file("smoke_test.py")


@pytest.fixture(scope="module")
def smoke() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pv_smoke_test", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(*args: str) -> tuple[int, dict, str]:
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True)
    last = proc.stdout.strip().splitlines()[-1]
    return proc.returncode, json.loads(last), proc.stdout


def test_passes_on_native_pillow() -> None:
    rc, result, out = _run()
    assert rc == 0, out
    assert result["smoke"] == "pass"
    status = {c["name"]: c["status"] for c in result["checks"]}
    for name in ("PNG RGB", "GIF animated", "BMP 1", "ImageCms sRGB->LAB known values"):
        assert status[name] == "pass", name
    assert status["FreeType generated box font geometry"] == "pass"
    assert status["Windows GDI features"] == "skip"  # not Windows here
    assert result["features"]["freetype2"]
    assert result["counts"]["fail"] == 0 and result["counts"]["pass"] > 60


def test_font_option_draws_with_the_given_file(smoke: ModuleType, tmp_path: Path) -> None:
    font = tmp_path / "box.ttf"
    font.write_bytes(smoke.box_font())
    rc, result, out = _run("--font", str(font), "--quiet")
    assert rc == 0, out
    assert out.count("\n") == 1  # --quiet: only the JSON line
    check = next(c for c in result["checks"] if c["name"].startswith("FreeType --font"))
    assert check["status"] == "pass" and "PVSmokeBox" in check["detail"]


def test_a_broken_claimed_codec_fails(
    smoke: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A JPEG writer that writes something else must fail the JPEG checks and the verdict."""
    Image.init()
    monkeypatch.setitem(Image.SAVE, "JPEG", Image.SAVE["PNG"])
    assert smoke.main(["--quiet"]) == 1
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    failed = {c["name"] for c in result["checks"] if c["status"] == "fail"}
    assert result["smoke"] == "fail"
    assert {"JPEG RGB", "JPEG L", "JPEG progressive"} <= failed
    assert "PNG RGB" not in failed


def test_generated_font_metrics(smoke: ModuleType) -> None:
    font = ImageFont.truetype(io.BytesIO(smoke.box_font()), 100)
    assert font.getname() == ("PVSmokeBox", "Regular")
    assert font.getlength("I") == 60
    assert font.getlength(" ") == 30


def test_documented_gdi_error_contract(smoke: ModuleType) -> None:
    ok = smoke.documented_gdi_error
    assert ok(OSError("ImageGrab.grab is not available: this Pillow build has no GDI"))
    assert ok(NotImplementedError("removed in the nanoserver variant"))
    assert not ok(OSError("screen grab failed"))  # the upstream wheel under Wine
    assert not ok(AttributeError("module has no attribute grabscreen_win32 (GDI)"))

    assert "nanoserver" in smoke.expect_removed(_raise(OSError("no GDI on nanoserver")), "x")
    with pytest.raises(smoke.CheckFailed, match="returned None"):
        smoke.expect_removed(lambda: None, "grabclipboard()")
    with pytest.raises(smoke.CheckFailed, match="not the documented error"):
        smoke.expect_removed(_raise(OSError("screen grab failed")), "grab()")


def test_placeable_wmf_fixture(smoke: ModuleType) -> None:
    im = Image.open(io.BytesIO(smoke.placeable_wmf()))
    assert im.format == "WMF" and im.size == (72, 36)
    # without a WMF handler (not Windows) load fails, but not with the documented nanoserver error
    with pytest.raises(smoke.CheckFailed, match="not the documented error"):
        smoke.expect_removed(im.load, "WMF load()")


def test_nanoserver_mode_off_windows_records_a_skip() -> None:
    rc, result, _ = _run("--variant", "nanoserver", "--quiet")
    assert rc == 0
    gdi = [c for c in result["checks"] if "GDI" in c["name"]]
    assert gdi == [
        {"name": "Windows GDI features", "status": "skip", "detail": "not Windows (linux)"}
    ]


def _raise(exc: Exception):
    def fn() -> None:
        raise exc

    return fn
