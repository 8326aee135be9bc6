"""Test helpers for sources and patches: a real HTTP server on 127.0.0.1, small archives, and a
project directory (recipes/ + patches/) laid out around them.

The server is ``http.server`` in a thread, so fetching goes through urllib, sockets, headers and
status codes exactly as it would against a real mirror.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path

import jsonschema
import referencing


@dataclass
class Server:
    """What the server serves and what it was asked for."""

    base: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    #: Paths whose response claims more bytes than it sends (a connection dropped mid-download).
    truncated: set[str] = field(default_factory=set)
    #: Paths that answer nothing for a second (a stalled mirror), to exercise timeouts.
    stalled: set[str] = field(default_factory=set)
    requests: list[str] = field(default_factory=list)

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"


@contextmanager
def serve() -> Iterator[Server]:
    """Run an HTTP server on 127.0.0.1 (a free port) for the duration of the block."""
    state = Server()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            name = self.path.lstrip("/")
            state.requests.append(name)
            if name in state.stalled:
                time.sleep(1)
                return
            body = state.files.get(name)
            if body is None:
                self.send_error(404, "Not Found")
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            extra = 1000 if name in state.truncated else 0
            self.send_header("Content-Length", str(len(body) + extra))
            self.end_headers()
            self.wfile.write(body)
            if extra:
                self.close_connection = True

        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextmanager
def serve_libfoo() -> Iterator[Server]:
    """A running server that serves libfoo's source archive as ``libfoo-1.0.tar.gz``."""
    with serve() as server:
        server.files["libfoo-1.0.tar.gz"] = LIBFOO_TGZ
        yield server


def make_tar(files: dict[str, bytes | str], *, mode: str = "w:gz", exec_: tuple = ()) -> bytes:
    """A tar archive of ``files`` (name → content); names in ``exec_`` get mode 0755."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name in exec_ else 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_zip(files: dict[str, bytes | str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return buf.getvalue()


#: A small "library" source: what the test patches are written against.
LIBFOO = {
    "libfoo-1.0/README": "libfoo\n",
    "libfoo-1.0/src/foo.c": "".join(f"int f{i}(void) {{ return {i}; }}\n" for i in range(40)),
    "libfoo-1.0/configure": "#!/bin/sh\necho configured\n",
}
LIBFOO_TGZ = make_tar(LIBFOO, exec_=("libfoo-1.0/configure",))


def patch_text(subject: str, diff: str) -> str:
    """A patch file with the project's header in front of ``diff``."""
    return (
        f"Subject: {subject}\n"
        "Removes: nothing (test patch)\n"
        "Why: the tests need a patch whose effect they can check,\n"
        "  written over two lines.\n"
        "Upstream: not applicable\n"
        "\n"
        f"{diff}"
    )


def foo_hunk(old_line: int, old: str, new: str) -> str:
    """A one-line change at ``old_line`` (1-based) of libfoo's src/foo.c, with 2 lines context."""
    lines = LIBFOO["libfoo-1.0/src/foo.c"].splitlines()
    i = old_line - 1
    before, after = lines[i - 2 : i], lines[i + 1 : i + 3]
    body = [f" {x}" for x in before] + [f"-{old}", f"+{new}"] + [f" {x}" for x in after]
    return f"@@ -{i - 1},5 +{i - 1},5 @@\n" + "\n".join(body) + "\n"


def foo_diff(*hunks: str) -> str:
    return "diff --git a/src/foo.c b/src/foo.c\n--- a/src/foo.c\n+++ b/src/foo.c\n" + "".join(hunks)


#: A patch that applies to libfoo (f3 returns 33), for tests that need any working patch.
F3_PATCH = patch_text(
    "f3 returns 33",
    foo_diff(foo_hunk(4, "int f3(void) { return 3; }", "int f3(void) { return 33; }")),
)


def one_error_line(err: str) -> str:
    """The single ``error: ...`` line a failed command printed on stderr (no traceback)."""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def make_project(
    root: Path,
    *,
    libfoo_url: str,
    libfoo_sha256: str,
    patches: dict[str, str] | None = None,
    pillow_pip: str = "pillow==13.0.0",
    pillow_sha256: str = "unpinned",
) -> Path:
    """Write ``root/recipes/test.toml`` (Pillow + one dependency, libfoo) and libfoo's patch set
    under ``root/patches/libfoo/1.0/``; return the recipe path."""
    patches = patches or {}
    (root / "recipes").mkdir(parents=True)
    pdir = root / "patches" / "libfoo" / "1.0"
    pdir.mkdir(parents=True)
    for name, text in patches.items():
        (pdir / name).write_text(text)
    listed = ", ".join(f'"{n}"' for n in patches)
    recipe = root / "recipes" / "test.toml"
    recipe.write_text(
        f"""
[recipe]
python = ["3.12"]

[pillow]
version = "13.0.0"
[pillow.source]
pip = "{pillow_pip}"
sha256 = "{pillow_sha256}"
sha256_source = "test recipe"

[dependencies.libfoo]
project = "libfoo"
version = "1.0"
build_system = "cmake"
license_files = ["COPYING"]
[dependencies.libfoo.source]
url = "{libfoo_url}"
sha256 = "{libfoo_sha256}"
sha256_source = "test recipe"

[patches]
libfoo = [{listed}]
"""
    )
    return recipe


def files_in(directory: Path) -> list[Path]:
    """Every file or link under ``directory`` (directories themselves excluded)."""
    return sorted(p for p in directory.rglob("*") if not p.is_dir() or p.is_symlink())


def snapshot(directory: Path) -> dict[str, tuple]:
    """Every entry under ``directory`` with its mode and content hash (or link target)."""
    out: dict[str, tuple] = {}
    for p in sorted(directory.rglob("*")):
        st = p.lstat()
        rel = str(p.relative_to(directory))
        if p.is_symlink():
            out[rel] = ("link", st.st_mode, str(p.readlink()))
        elif p.is_dir():
            out[rel] = ("dir", st.st_mode)
        else:
            out[rel] = ("file", st.st_mode, sha256(p.read_bytes()))
    return out


def validate_json(doc: object, schema_name: str) -> None:
    """Validate ``doc`` against one of the package's schemas (cross-file $refs resolved)."""
    schemas = resources.files("pillow_variants") / "schemas"
    registry: referencing.Registry = referencing.Registry()
    for entry in schemas.iterdir():
        if entry.name.endswith(".schema.json"):
            contents = json.loads(entry.read_text())
            resource = referencing.Resource.from_contents(contents)
            registry = registry.with_resource(contents.get("$id", entry.name), resource)
    schema = json.loads((schemas / schema_name).read_text())
    jsonschema.Draft202012Validator(schema, registry=registry).validate(doc)
