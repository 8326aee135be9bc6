"""publish with hostile input: credentials in every URL shape, and indexes that answer garbage.

A password must never reach stderr, ``--json``, the publish log or a traceback, whatever shape
the URL it came in has (no scheme, percent-encoded, a raw ``/`` in it, a bad port); a URL that
is not valid, or an index whose answer is not a project page, is one ``error:`` line, exit 2.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
from publishing import PASSWORD, USER, Index, creds_env, publish_log, run_cli

from pillow_variants.wheeltools import MANIFEST_NAME, read_wheel, write_wheel
from wheelfactory import ALL_PASSED, make_wheel

#: The secret of the URL tests: raw '/' and '%', each half distinctive on its own.
SECRET = "Tr0ub4dor/Secr3t%9x"
SECRET_FORMS = (
    SECRET,
    quote(SECRET, safe=""),
    quote(SECRET, safe="").lower(),
    *SECRET.split("/"),
    base64.b64encode(f"{USER}:{SECRET}".encode()).decode(),
)
MANIFEST = {"recipe": {"audit": {"policy": "both"}}, "rungs": ALL_PASSED}


def _assert_no_secret(texts: list[str], forms: tuple[str, ...] = SECRET_FORMS) -> None:
    for text in texts:
        for form in forms:
            assert form not in text, f"{form!r} leaked: {text!r}"


def _one_error_line(proc) -> str:  # type: ignore[no-untyped-def]
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


@pytest.fixture
def wheel(tmp_path: Path, pyd: dict[str, bytes]) -> Path:  # noqa: F811
    return make_wheel(tmp_path / "w", manifest=MANIFEST, files=pyd)


def _bad_urls(port: int) -> list[tuple[str, str]]:
    """(URL, what the error must say) — each with the secret in it, in some form."""
    enc = quote(SECRET, safe="")
    host = f"127.0.0.1:{port}"
    return [
        (f"{USER}:{enc}@{host}", "not an http:// or https:// URL"),  # no scheme, encoded
        (f"{USER}:{SECRET}@{host}/", "not an http:// or https:// URL"),  # no scheme, raw '/'
        (f"http://{USER}:{SECRET}@{host}/", "invalid host or port"),  # raw '/': port 'Tr0ub4dor'
        (f"http://{USER}:1234/{SECRET}@{host}/", "'@' after the host"),  # raw '/', numeric "port"
        (f"http://{USER}:{enc}@127.0.0.1:99999/", "invalid host or port"),
        (f"http://{USER}:{enc}@127.0.0.1:abc/", "invalid host or port"),
        (f"http://{USER}:{enc}@127.0.0.1:0/", "invalid port 0"),
        (f"http://{USER}:{enc}@[::1/", "invalid host or port"),
        (f"http://{USER}:{enc}@:{port}/", "no host in the URL"),
        (f"ftp://{USER}:{enc}@{host}/", "not an http:// or https:// URL"),
        (f"http://{USER}:{enc}@{host}/\nX-Injected: 1", "spaces or control characters"),
        (f"http://{USER}:{enc} @{host}/", "spaces or control characters"),
    ]


@pytest.mark.parametrize("option", ["--repository-url", "--index-url"])
@pytest.mark.parametrize("case", range(len(_bad_urls(0))))
def test_no_url_shape_echoes_the_password(
    index: Index,  # noqa: F811
    wheel: Path,
    case: int,
    option: str,
) -> None:
    before = _files(wheel.parent)
    port = int(index.url.rsplit(":", 1)[1].strip("/"))
    url, expected = _bad_urls(port)[case]
    if option == "--repository-url":
        args = ["--repository-url", url]
    else:
        args = ["--repository-url", index.url, "--index-url", url]
    proc = run_cli("publish", str(wheel), *args, "--json", env=creds_env())
    line = _one_error_line(proc)
    assert line.startswith(f"error: {option} "), line
    assert expected in line, (url, line)
    assert "****@" in line, line  # the userinfo is shown masked
    _assert_no_secret([proc.stdout, proc.stderr, index.log.read_text()])
    # refused before anything is written or sent
    assert _files(wheel.parent) == before
    assert not (index.packages / wheel.name).exists()


def test_url_credentials_never_printed_on_success_or_refusal(
    index: Index,  # noqa: F811
    wheel: Path,
) -> None:
    """Valid URLs with userinfo: the wrong secret (lower-case %2f) is refused by the index, the
    right one (with a '%') publishes; neither appears in stderr, --json or the log."""
    wrong = index.url.replace("http://", f"http://{USER}:{quote(SECRET, safe='').lower()}@")
    proc = run_cli("publish", str(wheel), "--repository-url", wrong, "--json")
    line = _one_error_line(proc)
    assert "credentials" in line and ("401" in line or "403" in line), line
    log = wheel.with_name(wheel.name + ".publish.json").read_text()
    _assert_no_secret([proc.stdout, proc.stderr, log, index.log.read_text()])

    right = index.with_credentials()
    simple = index.with_credentials() + "simple/"
    ok = run_cli("publish", str(wheel), "--repository-url", right, "--index-url", simple, "--json")
    assert ok.returncode == 0, ok.stderr
    result = json.loads(ok.stdout)
    assert result["repository_url"] == index.url
    assert result["results"][0]["status"] == "uploaded"
    texts = [ok.stdout, ok.stderr, json.dumps(publish_log(wheel)), index.log.read_text()]
    forms = (PASSWORD, PASSWORD.replace("%", "%25"), quote(PASSWORD, safe=""))
    _assert_no_secret(texts, forms)
    assert "****" not in ok.stdout  # nothing needed scrubbing: the URLs were cleaned first


# --------------------------------------------------------------------------------------------
# An index that answers garbage


@contextmanager
def _raw_server(replies: dict[str, bytes]) -> Iterator[tuple[str, list[bytes]]]:
    """A TCP server on 127.0.0.1 answering each request path with raw bytes (HTTP or not)."""
    seen: list[bytes] = []
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    request += chunk
                seen.append(request)
                path = request.split(b" ", 2)[1].decode() if b" " in request else ""
                auth = next(
                    (ln.split(b":", 1)[1].strip() for ln in request.split(b"\r\n")
                     if ln.lower().startswith(b"authorization:")),
                    b"",
                )  # fmt: skip
                reply = replies.get(path, b"HTTP/1.0 404 Not Found\r\n\r\n")
                conn.sendall(reply.replace(b"{AUTH}", auth))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/", seen
    finally:
        stop.set()
        thread.join(5)
        sock.close()


def _http(body: bytes, ctype: str = "application/vnd.pypi.simple.v1+json") -> bytes:
    head = f"HTTP/1.0 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def _page(files: object) -> bytes:
    return _http(
        json.dumps({"meta": {"api-version": "1.0"}, "name": "pillow", "files": files}).encode()
    )


GARBAGE = {
    "deep JSON": (_http(b"[" * 200_000), "malformed PEP 691 project page"),
    "deep JSON object": (_http(b'{"files":' + b"[" * 200_000), "malformed PEP 691"),
    "JSON list": (_http(b"[1, 2]"), "malformed PEP 691"),
    "files not a list": (_page("nope"), "malformed PEP 691"),
    "file not an object": (_page([1]), "malformed PEP 691"),
    "url not a string": (_page([{"filename": "x.whl", "url": 5}]), "malformed PEP 691"),
    "hashes a list": (_page([{"filename": "x.whl", "url": "x", "hashes": []}]), "malformed"),
    "binary JSON": (_http(b"\xff\xfe\x00garbage"), "malformed PEP 691"),
    "bad href": (_http(b'<a href="http://[oops/x.whl">x.whl</a>', "text/html"), "malformed HTML"),
    "not HTTP": (b"SSH-2.0-OpenSSH_9.6\r\n", "not a valid HTTP reply"),
    "bad status": (b"HTTP/1.1 abc OK\r\n\r\n", "not a valid HTTP reply"),
    "header junk": (b"HTTP/1.0 200 OK\r\n" + b"X: y\r\n" * 200 + b"\r\n", "not a valid HTTP"),
    "echoes credentials": (b"HTTP/1.0 500 {AUTH}\r\nContent-Length: 0\r\n\r\n", "HTTP 500"),
}


@pytest.mark.parametrize("case", list(GARBAGE))
def test_garbage_index_reply_is_one_line(case: str, wheel: Path) -> None:
    reply, expected = GARBAGE[case]
    with _raw_server({"/simple/pillow/": reply}) as (url, seen):
        proc = run_cli(
            "publish", str(wheel), "--repository-url", url, "--json",
            env={"TWINE_USERNAME": USER, "TWINE_PASSWORD": SECRET},
        )  # fmt: skip
    line = _one_error_line(proc)
    assert expected in line, line
    assert "Traceback" not in proc.stderr
    assert seen and all(b"/simple/pillow/" in r for r in seen)  # never reached an upload
    log = wheel.with_name(wheel.name + ".publish.json").read_text()
    assert json.loads(log)["status"] == "failed"
    _assert_no_secret([proc.stderr, log])


def test_a_listed_file_url_must_be_http(wheel: Path) -> None:
    """A page listing the wheel at file:///… must not make publish read a local file."""
    target = wheel.with_name("local-secret.txt")
    target.write_text("local")
    page = _page([{"filename": wheel.name, "url": target.as_uri(), "hashes": {}}])
    with _raw_server({"/simple/pillow/": page}) as (url, _):
        proc = run_cli("publish", str(wheel), "--repository-url", url)
    line = _one_error_line(proc)
    assert f"{target.as_uri()}: not an http(s) URL" in line, line


# --------------------------------------------------------------------------------------------
# A hostile manifest


@pytest.mark.parametrize(
    "manifest, expected",
    [
        (b"[" * 200_000, "is not valid JSON (nested too deeply)"),  # the parser's recursion
        (b'{"rungs": {"strict": ' + b"[" * 600 + b"]" * 600 + b"}}", "nested deeper than 32"),
        (b'{"rungs": {"wine": {"passed": true, "detail": ' + b"[" * 900 + b"]" * 900 + b"}}}",
         "nested deeper than 32"),
        (b'{"recipe": {"audit": {"surface": ["x"]}}, "rungs": {}}', "not a built-in profile"),
        (b'{"recipe": [], "rungs": {"strict": [], "wine": {"passed": "yes"}}}',
         "wine: failed"),
    ],
)  # fmt: skip
def test_a_hostile_manifest_is_one_line(
    index: Index,  # noqa: F811
    tmp_path: Path,
    pyd: dict[str, bytes],  # noqa: F811
    manifest: bytes,
    expected: str,
) -> None:
    built = make_wheel(tmp_path / "w", version="13.0.0+hostile", files=pyd, rungs={})
    content = read_wheel(built)
    content[f"pillow-13.0.0+hostile.dist-info/{MANIFEST_NAME}"] = manifest
    content.pop("pillow-13.0.0+hostile.dist-info/RECORD")
    wheel = write_wheel(built, content)
    proc = run_cli("publish", str(wheel), "--repository-url", index.url, "--json", env=creds_env())
    line = _one_error_line(proc)
    assert expected in line, line
    assert not (index.packages / wheel.name).exists()
