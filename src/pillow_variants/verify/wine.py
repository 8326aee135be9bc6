"""Running Windows programs under Wine, the way CPython needs it.

Facts this module encodes (Debian's Wine 8, checked on Debian 12):

* ``wine64`` installs ``/usr/bin/wine``; a private ``WINEPREFIX`` keeps our runs away from the
  user's prefix; its first use runs ``wineboot`` (seconds to a minute) — done once, under a lock.
* python.exe dies in ``init_sys_streams`` ("WinError 6: Invalid handle") unless stdin is
  redirected (``</dev/null``) and stdout/stderr are *pipes*: a regular file as stdout fails too.
  So the child gets ``stdin=DEVNULL`` and pipes, and we copy its output ourselves.
* ``WINEDEBUG=-all`` silences Wine's fixme noise; ``WINEDLLOVERRIDES=mscoree,mshtml=`` stops
  wineboot from trying to install Mono/Gecko (no network to fetch them, no display to ask).
* ``WINEDLLOVERRIDES`` entries are ``name,name=mode`` joined by ``;``; an empty mode or ``d``
  disables the DLL: ``LoadLibrary`` then fails with error 126 as on a Windows without it. Names
  are Wine's builtin names: lower case, ``.dll`` dropped, other extensions (``winspool.drv``)
  kept. Wine has every GUI DLL, so disabling them is how a run shows what a reduced Windows does.
* A wineserver that goes away while a client starts (killed by anyone with ``wineserver -k``,
  or dying) ends the client before the program prints a byte: exit 1, or 0 when the server goes
  a moment later. Seen once in CI (the upstream wheel's smoke test, exit 1, no output; it passed
  in 21 reruns here); ``wineserver -k`` 0.05-0.2 s into a run reproduces it every time. Every
  program run here prints before it ends (smoke test, pytest, speed bench), so a start that ends
  within :data:`SILENT_START_LIMIT` without a byte on stdout or stderr, not on a timeout, is one
  Wine did not run: it is started once more (:data:`LAUNCH_ATTEMPTS`); the verdict is the second
  run's, and the silent start is recorded with it. A program silent every time still fails.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pillow_variants import _log
from pillow_variants.errors import ToolchainError

INSTALL_HINT = "install wine64 (apt-get install -y wine64)"

#: Starts of one program: a silent failure (see the module docstring) is retried once.
LAUNCH_ATTEMPTS = 2
#: Seconds between a silent start and the next: a wineserver that was going away is gone.
RELAUNCH_PAUSE = 1.0
#: A silent end later than this is a program that ran (CPython starts in under a second under
#: Wine here): it is not retried.
SILENT_START_LIMIT = 30.0


def find_wine() -> str:
    """Path of the ``wine`` launcher; ToolchainError (exit 2) with the install hint if absent."""
    for name in ("wine", "wine64"):
        path = shutil.which(name)
        if path:
            return path
    raise ToolchainError(f"wine not found: {INSTALL_HINT}")


def override_name(dll: str) -> str:
    """Wine's DLL-override name of ``dll``: lower case, without a ``.dll`` suffix."""
    name = dll.lower()
    return name[: -len(".dll")] if name.endswith(".dll") else name


def wine_env(prefix: Path, disabled_dlls: Sequence[str] = ()) -> dict[str, str]:
    """The environment of a Wine run; ``disabled_dlls`` (DLL file names) are made unloadable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WINE")}
    overrides = "mscoree,mshtml="
    if disabled_dlls:
        overrides += ";" + ",".join(sorted({override_name(d) for d in disabled_dlls})) + "=d"
    env.update(
        WINEPREFIX=str(prefix),
        WINEDEBUG="-all",
        WINEDLLOVERRIDES=overrides,
        WINEARCH="win64",
        PYTHONIOENCODING="utf-8",
        PYTHONUTF8="1",
    )
    env.pop("DISPLAY", None)  # headless: no window may pop up, nothing waits for input
    return env


def ensure_prefix(prefix: Path, wine: str | None = None, timeout: float = 600) -> Path:
    """Create the private Wine prefix once (wineboot), serialised by a lock file."""
    wine = wine or find_wine()
    prefix.parent.mkdir(parents=True, exist_ok=True)
    with open(prefix.parent / f".{prefix.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (prefix / "system.reg").is_file() and (prefix / "drive_c").is_dir():
            return prefix
        _log.progress(f"initialising Wine prefix {prefix} (first run only)")
        proc = subprocess.run(
            [wine, "wineboot", "--init"],
            env=wine_env(prefix),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if proc.returncode != 0 or not (prefix / "system.reg").is_file():
            raise ToolchainError(f"wineboot failed for {prefix}: {proc.stderr.strip()[-300:]}")
        # wineboot returns before wineserver has flushed the registry: wait for it to exit
        server = shutil.which("wineserver")
        if server:
            subprocess.run([server, "-w"], env=wine_env(prefix), timeout=timeout, check=False)
    return prefix


@dataclass(frozen=True)
class WineRun:
    """Outcome of one program run under Wine."""

    returncode: int | None  # None: killed on timeout
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool
    #: earlier starts of this program that ended printing nothing (Wine did not run it),
    #: each ``{"returncode": ..., "seconds": ...}``; empty when the first start ran
    silent_starts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def silent(self) -> bool:
        """Ended soon, not on a timeout, without a byte of output: the program never ran."""
        quiet = not self.stdout and not self.stderr
        return quiet and not self.timed_out and self.seconds < SILENT_START_LIMIT


def run(
    argv: Sequence[str],
    *,
    prefix: Path,
    cwd: Path,
    timeout: float,
    on_line: Callable[[str], None] | None = None,
    wine: str | None = None,
    disabled_dlls: Sequence[str] = (),
) -> WineRun:
    """Run ``wine argv...`` in ``cwd``: stdin from /dev/null, output through pipes, each stdout
    line passed to ``on_line`` as it arrives; killed (its whole process group) after ``timeout``.
    ``disabled_dlls`` cannot be loaded in this run (the prefix is made with all of them).
    A start that ends printing nothing is retried once (module docstring): ``silent_starts``.
    """
    wine = wine or find_wine()
    ensure_prefix(prefix, wine)
    silent: list[dict[str, Any]] = []
    for attempt in range(1, LAUNCH_ATTEMPTS + 1):
        result = _run_once(argv, wine, prefix, cwd, timeout, on_line, disabled_dlls)
        if not result.silent or attempt == LAUNCH_ATTEMPTS:
            break
        silent.append({"returncode": result.returncode, "seconds": result.seconds})
        _log.progress(
            f"wine: {argv[0]} exited {result.returncode} after {result.seconds} s printing "
            "nothing (Wine did not run it); starting it once more"
        )
        time.sleep(RELAUNCH_PAUSE)
    return replace(result, silent_starts=silent)


def _run_once(
    argv: Sequence[str],
    wine: str,
    prefix: Path,
    cwd: Path,
    timeout: float,
    on_line: Callable[[str], None] | None,
    disabled_dlls: Sequence[str],
) -> WineRun:
    """One start of ``wine argv...`` (see :func:`run`)."""
    start = time.monotonic()
    proc = subprocess.Popen(
        [wine, *argv],
        cwd=cwd,
        env=wine_env(prefix, disabled_dlls),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
        start_new_session=True,  # own process group: a timeout kills exactly what we started
    )
    out: list[str] = []
    err: list[str] = []

    def pump_out() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.append(line)
            if on_line:
                on_line(line.rstrip("\n"))

    def pump_err() -> None:
        assert proc.stderr is not None
        err.extend(proc.stderr)

    threads = [threading.Thread(target=f, daemon=True) for f in (pump_out, pump_err)]
    for t in threads:
        t.start()
    timed_out = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    for t in threads:
        t.join(timeout=10)
    return WineRun(
        returncode=None if timed_out else proc.returncode,
        stdout="".join(out),
        stderr="".join(err),
        seconds=round(time.monotonic() - start, 2),
        timed_out=timed_out,
    )
