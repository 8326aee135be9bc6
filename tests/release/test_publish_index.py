"""The simple-API client (PEP 691 JSON and PEP 503 HTML), credentials lookup and scrubbing."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pillow_variants.release.index import (
    PEP691_JSON,
    Credentials,
    IndexAccessError,
    SimpleIndex,
    parse_project_page,
    resolve_credentials,
    scrub,
    secrets_of,
    simple_url_for,
    split_userinfo,
)

WHEEL = b"wheel bytes"
SHA = hashlib.sha256(WHEEL).hexdigest()
CREDS = Credentials("bob", "pw-123", "test")


class _Handler(BaseHTTPRequestHandler):
    seen: list[tuple[str, str | None]] = []
    other_port = 0

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def _send(self, code: int, body: bytes, ctype: str = "text/html") -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        auth = self.headers.get("Authorization")
        self.seen.append((self.path, auth))
        if self.path.startswith("/files/"):  # the other host, e.g. a CDN
            self._send(200, WHEEL, "application/octet-stream")
            return
        if auth != CREDS.header():
            self._send(401, b"no")
            return
        if self.path == "/simple/pillow/":
            if PEP691_JSON in (self.headers.get("Accept") or ""):
                doc = {
                    "meta": {"api-version": "1.0"},
                    "name": "pillow",
                    "files": [
                        {
                            "filename": "pillow-1-py3-none-any.whl",
                            "url": "../../packages/pillow-1-py3-none-any.whl",
                            "hashes": {"sha256": SHA},
                        },
                        {
                            "filename": "pillow-2-py3-none-any.whl",
                            "url": f"http://127.0.0.1:{self.other_port}/files/p2.whl",
                            "hashes": {},
                        },
                    ],
                }
                self._send(200, json.dumps(doc).encode(), PEP691_JSON)
            return
        if self.path == "/simple/redirected/":
            self.send_response(302)
            self.send_header("Location", "/simple/pillow/")
            self.end_headers()
            return
        if self.path == "/packages/pillow-1-py3-none-any.whl":
            self._send(200, WHEEL, "application/octet-stream")
            return
        self._send(404, b"")


def _serve() -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def servers() -> Iterator[tuple[str, str]]:
    main, main_url = _serve()
    other, other_url = _serve()
    _Handler.other_port = other.server_address[1]
    _Handler.seen = []
    yield main_url, other_url
    main.shutdown()
    other.shutdown()


def test_pep691_json_listing_download_and_credentials_scope(servers: tuple[str, str]) -> None:
    main_url, _ = servers
    index = SimpleIndex(main_url + "/simple", CREDS)
    files = index.files("Pillow")  # names are normalised (PEP 503)
    assert [f.filename for f in files] == ["pillow-1-py3-none-any.whl", "pillow-2-py3-none-any.whl"]
    assert files[0].url == main_url + "/packages/pillow-1-py3-none-any.whl"
    assert files[0].sha256 == SHA and files[1].sha256 is None
    assert index.download(files[0]) == WHEEL
    assert index.download(files[1]) == WHEEL
    # The credentials went to the index host only, never to the file host.
    sent = dict(_Handler.seen)
    assert sent["/packages/pillow-1-py3-none-any.whl"] == CREDS.header()
    assert sent["/files/p2.whl"] is None
    # Unknown project: no files (404), not an error.
    assert index.files("nothing-here") == []
    # A same-host redirect keeps the credentials.
    assert len(index.files("redirected")) == 2


def test_hash_mismatch_and_refusal_are_user_errors(servers: tuple[str, str]) -> None:
    main_url, _ = servers
    index = SimpleIndex(main_url + "/simple/", CREDS)
    (first, _) = index.files("pillow")
    bad = type(first)(first.filename, first.url, "0" * 64)
    with pytest.raises(IndexAccessError, match="do not match"):
        index.download(bad)
    wrong = SimpleIndex(main_url + "/simple/", Credentials("bob", "nope-999"))
    with pytest.raises(IndexAccessError, match="HTTP 401.*check the credentials") as exc:
        wrong.files("pillow")
    assert "nope-999" not in str(exc.value)
    with pytest.raises(IndexAccessError, match="unreachable"):
        SimpleIndex("http://127.0.0.1:9/simple/", CREDS, timeout=5).files("pillow")


def test_pep503_html_with_hash_fragments() -> None:
    html = (
        b"<html><body>"
        b'<a href="/packages/pillow-13.0.0%2Bnanoserver-cp313-cp313-win_amd64.whl#sha256='
        + SHA.encode()
        + b'">pillow-13.0.0+nanoserver-cp313-cp313-win_amd64.whl</a>'
        b'<a href="../p/pillow-1.tar.gz"></a></body></html>'
    )
    files = parse_project_page(html, "text/html; charset=utf-8", "http://h/simple/pillow/")
    assert files[0].filename == "pillow-13.0.0+nanoserver-cp313-cp313-win_amd64.whl"
    assert files[0].sha256 == SHA
    assert (
        files[1].filename == "pillow-1.tar.gz"
        and files[1].url == "http://h/simple/p/pillow-1.tar.gz"
    )
    with pytest.raises(IndexAccessError, match="malformed PEP 691"):
        parse_project_page(b"{}", PEP691_JSON, "http://h/simple/pillow/")


def test_scrub_removes_userinfo_and_every_encoding_of_the_secret() -> None:
    creds = Credentials("bob", "p@ss w%rd")
    token = base64.b64encode(b"bob:p@ss w%rd").decode()
    text = (
        "GET https://bob:p%40ss%20w%25rd@host/simple/ failed; password p@ss w%rd; "
        f"Authorization: Basic {token}; ftp://x:y@h/"
    )
    out = scrub(text, secrets_of(creds))
    assert "p@ss" not in out and "p%40ss" not in out and token not in out and "x:y" not in out
    assert "https://****@host/simple/" in out
    assert repr(creds).count("p@ss") == 0


def test_credentials_come_from_url_env_or_pypirc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("TWINE_USERNAME", "TWINE_PASSWORD", "TWINE_CONFIG_FILE"):
        monkeypatch.delenv(var, raising=False)
    url, creds = resolve_credentials("https://u%40x:p%3Aw@idx.example/legacy/", use_keyring=False)
    assert url == "https://idx.example/legacy/"
    assert creds is not None and (creds.username, creds.password) == ("u@x", "p:w")

    monkeypatch.setenv("TWINE_USERNAME", "envuser")
    monkeypatch.setenv("TWINE_PASSWORD", "envpw")
    _, creds = resolve_credentials("https://idx.example/legacy/", use_keyring=False)
    assert creds is not None and creds.origin == "TWINE_USERNAME/TWINE_PASSWORD"

    monkeypatch.delenv("TWINE_USERNAME")
    monkeypatch.delenv("TWINE_PASSWORD")
    rc = tmp_path / "pypirc"
    rc.write_text(
        "[distutils]\nindex-servers = mine\n\n[mine]\n"
        "repository = https://idx.example/legacy\nusername = rcuser\npassword = rcpw\n"
    )
    _, creds = resolve_credentials("https://idx.example/legacy/", pypirc=rc, use_keyring=False)
    assert creds is not None and (creds.username, creds.password) == ("rcuser", "rcpw")
    _, creds = resolve_credentials("https://other.example/", pypirc=rc, use_keyring=False)
    assert creds is None


def test_simple_url_is_derived_from_the_upload_url() -> None:
    assert simple_url_for("https://idx.example/legacy/") == "https://idx.example/simple/"
    assert simple_url_for("http://127.0.0.1:8080/") == "http://127.0.0.1:8080/simple/"
    assert simple_url_for("https://h/root/dev/") == "https://h/root/dev/simple/"
    assert split_userinfo("http://[::1]:80/x")[0] == "http://[::1]:80/x"
