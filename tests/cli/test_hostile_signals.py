"""SIGTERM (what ``timeout``, CI cancellation, systemd and ``docker stop`` send) cleans up as
Ctrl-C does: a command killed while staging into a temporary directory leaves nothing behind.

The default SIGTERM action ends the process without running ``finally`` blocks, which left an
extraction's hidden ``.DEST.extract-*`` directory (hundreds of MB for a real tree) beside DEST.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "nanoserver.toml"
FILES = 20_000  # enough small members that extracting takes seconds, little disk


@pytest.fixture(scope="module")
def big_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Pillow-like source tarball whose extraction takes a few seconds."""
    path = tmp_path_factory.mktemp("archive") / "pillow-13.0.0.tar.gz"
    data = b"/* generated */\n" * 64
    with tarfile.open(path, "w:gz", compresslevel=1) as tf:
        for i in range(FILES):
            info = tarfile.TarInfo(f"pillow-13.0.0/src/d{i // 1000}/f{i}.c")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def _wait_for(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


@pytest.mark.parametrize("sig, code, message", [
    (signal.SIGTERM, 128 + signal.SIGTERM, "error: terminated (SIGTERM)"),
    (signal.SIGINT, 130, "error: interrupted"),
])  # fmt: skip
def test_signal_during_extract_removes_the_staging_directory(
    tmp_path: Path, big_archive: Path, sig: int, code: int, message: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    dest = work / "tree"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "pillow_variants", "sources", "extract", str(RECIPE), "pillow",
            str(dest), "--source", f"pillow={big_archive}", "--cache-dir", str(tmp_path / "cache"),
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        # a shell's background job inherits SIGINT ignored, and Python then keeps it ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        staging = lambda: [p for p in work.iterdir() if p.name.startswith(".tree.extract-")]  # noqa: E731
        assert _wait_for(lambda: staging() and any(staging()[0].rglob("*.c")), 60), (
            "extraction never started: " + proc.communicate(timeout=60)[1]
        )
        t0 = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert time.monotonic() - t0 < 30, "cleanup after the signal took too long"
    assert proc.returncode == code, err
    assert err.splitlines() == [message], err
    assert "Traceback" not in err and out == ""
    assert list(work.iterdir()) == []  # no staging directory, no half DEST
