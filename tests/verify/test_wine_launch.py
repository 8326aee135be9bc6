"""``wine.run`` starts a program once more only when Wine did not run it: a start that ends
within seconds without a byte on stdout or stderr (what a wineserver going away does to a
starting client; the real thing is in test_verify_wine.py). A stand-in ``wine`` script plays
each case here; it counts its starts in a file."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from pillow_variants.verify import wine


def _fake_wine(tmp_path: Path, body: str) -> tuple[str, Path]:
    """A ``wine`` that records each start (``$n``: earlier starts) and runs ``body``."""
    count = tmp_path / "starts"
    count.write_text("0")
    script = tmp_path / "wine"
    script.write_text(f'#!/bin/sh\nn=$(cat "{count}")\necho $((n + 1)) > "{count}"\n{body}\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script), count


@pytest.fixture
def prefix(tmp_path: Path) -> Path:
    """A prefix ``ensure_prefix`` takes as made (no wineboot)."""
    path = tmp_path / "prefix"
    (path / "drive_c").mkdir(parents=True)
    (path / "system.reg").write_text("")
    return path


@pytest.fixture(autouse=True)
def no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wine, "RELAUNCH_PAUSE", 0.0)


def _run(tmp_path: Path, prefix: Path, body: str, timeout: float = 30) -> tuple[wine.WineRun, int]:
    launcher, count = _fake_wine(tmp_path, body)
    result = wine.run(["python.exe", "t.py"], prefix=prefix, cwd=tmp_path, timeout=timeout,
                      wine=launcher)  # fmt: skip
    return result, int(count.read_text())


def test_a_silent_start_is_started_again_and_recorded(
    tmp_path: Path, prefix: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pillow_variants")
    result, starts = _run(tmp_path, prefix, '[ "$n" = 0 ] && exit 1\necho hello')
    assert starts == 2
    assert result.returncode == 0 and result.stdout == "hello\n" and not result.silent
    assert [s["returncode"] for s in result.silent_starts] == [1]
    assert "python.exe exited 1 after" in caplog.text and "starting it once more" in caplog.text


def test_a_program_that_fails_silently_every_time_still_fails(tmp_path: Path, prefix: Path) -> None:
    result, starts = _run(tmp_path, prefix, "exit 1")
    assert starts == wine.LAUNCH_ATTEMPTS == 2
    assert result.returncode == 1 and result.silent and len(result.silent_starts) == 1


def test_a_silent_exit_0_is_a_silent_start_too(tmp_path: Path, prefix: Path) -> None:
    """The server going a moment later ends the client with exit 0, still before any output."""
    result, starts = _run(tmp_path, prefix, '[ "$n" = 0 ] && exit 0\necho hello')
    assert starts == 2 and result.stdout == "hello\n"
    assert [s["returncode"] for s in result.silent_starts] == [0]


@pytest.mark.parametrize(
    "body",
    [
        "echo started; exit 1",  # it ran: its failure is the verdict
        "echo 'Fatal Python error' >&2; exit 1",
        "echo done",
    ],
)
def test_a_start_that_ran_is_not_repeated(tmp_path: Path, prefix: Path, body: str) -> None:
    result, starts = _run(tmp_path, prefix, body)
    assert starts == 1 and result.silent_starts == [] and not result.silent


def test_a_silent_timeout_is_not_repeated(tmp_path: Path, prefix: Path) -> None:
    result, starts = _run(tmp_path, prefix, "sleep 30", timeout=1)
    assert starts == 1 and result.timed_out and result.returncode is None
    assert result.silent_starts == []


def test_a_late_silent_failure_ran_and_is_not_repeated(
    tmp_path: Path, prefix: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wine, "SILENT_START_LIMIT", 0.2)
    result, starts = _run(tmp_path, prefix, "sleep 0.5; exit 1")
    assert starts == 1 and result.returncode == 1 and result.silent_starts == []
