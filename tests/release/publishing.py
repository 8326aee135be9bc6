"""A real pypiserver (htpasswd auth) on 127.0.0.1 for the publish tests, and the CLI as a user
runs it. The fixtures over these live in this folder's ``conftest.py``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from passlib.apache import HtpasswdFile

USER = "alice"
PASSWORD = "s3cr3t-Pa55%word"  # a '%' checks percent-encoded forms are scrubbed too
WRONG = "wr0ng-Pa55word-xyz"
AUDIT_STRICT = {"name": "nanoserver", "audit": {"policy": "strict"}}
PYD = "PIL/_imaging.cp313-win_amd64.pyd"


@dataclass
class Index:
    url: str  # upload URL (no credentials)
    packages: Path
    log: Path

    def with_credentials(self, password: str = PASSWORD) -> str:
        return self.url.replace("http://", f"http://{USER}:{password.replace('%', '%25')}@")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_pypiserver(root: Path, authenticate: str) -> Iterator[Index]:
    """pypiserver as a subprocess, exactly as a user would run it; stopped when done."""
    packages = root / "packages"
    packages.mkdir(parents=True)
    htpasswd = HtpasswdFile(str(root / "htpasswd"), new=True)
    htpasswd.set_password(USER, PASSWORD)
    htpasswd.save()
    port = free_port()
    log = root / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "pypiserver", "run",
                "-i", "127.0.0.1", "-p", str(port),
                "-P", str(root / "htpasswd"), "-a", authenticate,
                "--disable-fallback", str(packages),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except urllib.error.HTTPError:
                break  # 401: up, and asking for credentials
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"pypiserver did not start: {log.read_text()}") from None
                time.sleep(0.2)
        yield Index(url, packages, log)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it: a subprocess, so every byte it prints is captured."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TWINE_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "pillow_variants", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def creds_env(password: str = PASSWORD) -> dict[str, str]:
    return {"TWINE_USERNAME": USER, "TWINE_PASSWORD": password}


def publish_log(wheel: Path) -> dict[str, Any]:
    return json.loads(wheel.with_name(wheel.name + ".publish.json").read_text())
