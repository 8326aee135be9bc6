"""The hostile-input contract, shared by the tests/**/test_hostile_*.py suites: run the CLI in a
subprocess bounded in memory (``RLIMIT_AS``) and time, and assert exit code, ONE ``error:`` line,
no traceback and nothing written outside the test's directory; a raw TCP server for protocol
abuse."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from httpserver import make_project

RSS_LIMIT = 1 << 30  # 1 GiB of address space for each CLI run


def _limit_memory() -> None:  # runs in the child between fork and exec
    resource.setrlimit(resource.RLIMIT_AS, (RSS_LIMIT, RSS_LIMIT))


def _files(root: Path) -> dict[str, float]:
    return {
        str(p.relative_to(root)): p.lstat().st_mtime
        for p in root.rglob("*")
        if not p.is_dir() or p.is_symlink()
    }


def run_cli(
    tmp_path: Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    code: int | None = 2,
    allowed: tuple[str, ...] = ("work",),
) -> subprocess.CompletedProcess[str]:
    """Run ``pillow-variants ARGS`` bounded in memory and time; assert the one-line-error
    contract. Files may appear only under ``tmp_path/<allowed>``; inputs stay untouched."""
    work = tmp_path / "work"
    for d in ("home", "tmp", "cache"):
        (work / d).mkdir(parents=True, exist_ok=True)
    before = {k: v for k, v in _files(tmp_path).items() if not k.startswith(allowed)}
    full_env = {
        **os.environ,
        "HOME": str(work / "home"),
        "TMPDIR": str(work / "tmp"),
        "PILLOW_VARIANTS_CACHE": str(work / "cache"),
        "XDG_CACHE_HOME": str(work / "cache"),
        "PYTHONDONTWRITEBYTECODE": "1",
        **(env or {}),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "pillow_variants", *args],
        cwd=work,
        env=full_env,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        preexec_fn=_limit_memory,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    if code is not None:
        assert proc.returncode == code, (proc.returncode, proc.stderr)
        if code == 2:
            lines = proc.stderr.strip().splitlines()
            errors = [x for x in lines if x.startswith("error: ")]
            assert len(errors) == 1 and lines[-1] == errors[0], proc.stderr
    after = {k: v for k, v in _files(tmp_path).items() if not k.startswith(allowed)}
    assert after == before, "files written or changed outside the allowed directories"
    return proc


def error_line(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stderr.strip().splitlines()[-1]


@contextmanager
def raw_server(handler) -> Iterator[str]:
    """A TCP server on localhost calling ``handler(conn)`` per connection; yields its URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    stop = threading.Event()

    def serve() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            threading.Thread(target=_handle, args=(handler, conn, stop), daemon=True).start()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/libfoo-1.0.tar.gz"
    finally:
        stop.set()
        t.join()
        sock.close()


def _handle(handler, conn: socket.socket, stop: threading.Event) -> None:
    with conn:
        try:
            conn.recv(65536)
            handler(conn, stop)
        except OSError:
            pass


def fetch(tmp_path: Path, url: str, **kw) -> subprocess.CompletedProcess[str]:
    recipe = make_project(tmp_path / "proj", libfoo_url=url, libfoo_sha256="0" * 64)
    return run_cli(tmp_path, "sources", "fetch", str(recipe), "libfoo", **kw)
