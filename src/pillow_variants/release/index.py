"""A small client for a package index's simple API (PEP 503 HTML and PEP 691 JSON).

Publishing has to *prove* that the index serves the file that was uploaded: before an upload
it asks which files the project already has (and their sha256), after it downloads the file back
through the same API pip uses. Private indexes usually need credentials for that too, so this
module also resolves them from the places twine looks (URL userinfo, TWINE_USERNAME /
TWINE_PASSWORD, ``.pypirc``, keyring) and provides :func:`scrub`, which every message that may
contain a URL or tool output goes through: a password must never reach a terminal or a log.
"""

from __future__ import annotations

import base64
import configparser
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit
from urllib.request import HTTPRedirectHandler, Request, build_opener

from packaging.utils import canonicalize_name

from pillow_variants.errors import UserError

PEP691_JSON = "application/vnd.pypi.simple.v1+json"
ACCEPT = f"{PEP691_JSON}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"
DEFAULT_TIMEOUT = 60.0
_MASK = "****"
_USERINFO_RE = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")


class IndexAccessError(UserError):
    """The index could not be read (unreachable, refused, malformed answer)."""


@dataclass(frozen=True)
class Credentials:
    """A username/password pair and where it came from (never the secret in ``repr``)."""

    username: str
    password: str = field(repr=False)
    origin: str = ""

    def header(self) -> str:
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")
        return f"Basic {token}"


@dataclass(frozen=True)
class IndexFile:
    """One distribution file listed on a project page."""

    filename: str
    url: str
    sha256: str | None


# --------------------------------------------------------------------------------------------
# Secrets


def scrub(text: str, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """Remove URL userinfo and every given secret (raw, percent- and base64-encoded) from text.

    Tools echo URLs and sometimes request headers on failure; scrubbing every captured line
    before it is printed or logged is what keeps a password out of CI logs.
    """
    out = _USERINFO_RE.sub(lambda m: m.group("scheme") + _MASK + "@", text)
    for secret in secrets:
        if not secret:
            continue
        for form in {secret, quote(secret, safe=""), quote(secret)}:
            out = out.replace(form, _MASK)
    return out


def secrets_of(credentials: Credentials | None) -> list[str]:
    """The strings :func:`scrub` must hide for ``credentials`` (password, Basic token)."""
    if credentials is None or not credentials.password:
        return []
    token = credentials.header().split(" ", 1)[1]
    return [credentials.password, token]


def split_userinfo(url: str) -> tuple[str, Credentials | None]:
    """``https://u:p@host/x`` → (``https://host/x``, Credentials(u, p))."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    clean = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    creds = Credentials(unquote(parts.username or ""), unquote(parts.password or ""), "the URL")
    return clean, creds


def _same_repository(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def _from_pypirc(url: str, pypirc: Path | None) -> Credentials | None:
    path = pypirc or Path(os.environ.get("TWINE_CONFIG_FILE", "") or Path.home() / ".pypirc")
    if not path.is_file():
        return None
    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as exc:
        raise UserError(f"{path}: unreadable ({type(exc).__name__})") from None
    for section in parser.sections():
        repo = parser.get(section, "repository", fallback="")
        if repo and _same_repository(repo, url) and parser.has_option(section, "username"):
            return Credentials(
                parser.get(section, "username"),
                parser.get(section, "password", fallback=""),
                f"{path} [{section}]",
            )
    return None


def _from_keyring(url: str, username: str | None) -> Credentials | None:
    try:
        import keyring  # optional, as for twine
    except ImportError:
        return None
    try:
        cred = keyring.get_credential(url, username)
    except Exception:  # a broken keyring backend must not stop a publish with env credentials
        return None
    if cred is None or not cred.password:
        return None
    return Credentials(cred.username or username or "", cred.password, "keyring")


def resolve_credentials(
    repository_url: str, *, pypirc: Path | None = None, use_keyring: bool = True
) -> tuple[str, Credentials | None]:
    """The URL without userinfo and the credentials to use, looked up as twine does.

    Order: userinfo in the URL; TWINE_USERNAME/TWINE_PASSWORD; a ``.pypirc`` section whose
    ``repository`` is this URL; keyring (for the URL and, if known, the username).
    """
    url, creds = split_userinfo(repository_url)
    if creds is not None:
        return url, creds
    user = os.environ.get("TWINE_USERNAME")
    password = os.environ.get("TWINE_PASSWORD")
    if user is not None and password is not None:
        return url, Credentials(user, password, "TWINE_USERNAME/TWINE_PASSWORD")
    creds = _from_pypirc(url, pypirc)
    if creds is not None and creds.password:
        return url, creds
    if use_keyring:
        from_keyring = _from_keyring(url, creds.username if creds else user)
        if from_keyring is not None:
            return url, from_keyring
    return url, creds


# --------------------------------------------------------------------------------------------
# The simple API


class _AnchorParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []  # (href, text)
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href") or ""
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.append((self._href, "".join(self._text).strip()))
            self._href = None


def _fragment_sha256(url: str) -> str | None:
    frag = urlsplit(url).fragment
    if frag.startswith("sha256="):
        return frag.split("=", 1)[1].lower()
    return None


def parse_project_page(body: bytes, content_type: str, base_url: str) -> list[IndexFile]:
    """Files from a project page, in PEP 691 JSON or PEP 503 HTML (chosen by content type)."""
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype == PEP691_JSON:
        try:
            data = json.loads(body)
            files = data["files"]
            return [
                IndexFile(
                    f["filename"],
                    urljoin(base_url, f["url"]),
                    (f.get("hashes") or {}).get("sha256"),
                )
                for f in files
            ]
        except (ValueError, KeyError, TypeError) as exc:
            raise IndexAccessError(f"{base_url}: malformed PEP 691 project page ({exc})") from None
    parser = _AnchorParser()
    parser.feed(body.decode("utf-8", errors="replace"))
    out = []
    for href, text in parser.links:
        url = urljoin(base_url, href)
        name = text or unquote(urlsplit(url).path.rsplit("/", 1)[-1])
        out.append(IndexFile(name, url, _fragment_sha256(url)))
    return out


class _SameHostAuthRedirect(HTTPRedirectHandler):
    """Follow redirects, re-sending Authorization only when the redirect stays on one host."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        auth = req.unredirected_hdrs.get("Authorization")
        if new is not None and auth and urlsplit(newurl).netloc == urlsplit(req.full_url).netloc:
            new.add_unredirected_header("Authorization", auth)
        return new


class SimpleIndex:
    """Read a project's files from a simple API root such as ``https://host/simple/``."""

    def __init__(
        self,
        url: str,
        credentials: Credentials | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        clean, in_url = split_userinfo(url)
        self.url = clean.rstrip("/") + "/"
        self.credentials = credentials or in_url
        self.timeout = timeout
        self._host = urlsplit(self.url).netloc

    def _secrets(self) -> list[str]:
        return secrets_of(self.credentials)

    def _get(self, url: str, accept: str | None = None) -> tuple[bytes, str, str]:
        req = Request(url)
        if accept:
            req.add_header("Accept", accept)
        # Credentials go to the index host only, never to a CDN a file URL points at.
        if self.credentials is not None and urlsplit(url).netloc == self._host:
            req.add_unredirected_header("Authorization", self.credentials.header())
        try:
            with build_opener(_SameHostAuthRedirect).open(req, timeout=self.timeout) as resp:
                return resp.read(), resp.headers.get("Content-Type", ""), resp.geturl()
        except HTTPError as exc:
            if exc.code == 404:
                raise
            hint = ""
            if exc.code in (401, 403):
                hint = " (check the credentials: URL, TWINE_USERNAME/TWINE_PASSWORD, .pypirc)"
            msg = f"{url}: HTTP {exc.code} {exc.reason}{hint}"
            raise IndexAccessError(scrub(msg, self._secrets())) from None
        except (URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise IndexAccessError(
                scrub(f"{url}: unreachable ({reason})", self._secrets())
            ) from None

    def project_url(self, project: str) -> str:
        return f"{self.url}{canonicalize_name(project)}/"

    def files(self, project: str) -> list[IndexFile]:
        """The files of ``project`` (empty when the index does not know the project)."""
        url = self.project_url(project)
        try:
            body, ctype, final = self._get(url, ACCEPT)
        except HTTPError:  # 404: the project has no files yet
            return []
        return parse_project_page(body, ctype, final)

    def find(self, project: str, filename: str) -> IndexFile | None:
        for f in self.files(project):
            if f.filename == filename:
                return f
        return None

    def download(self, file: IndexFile) -> bytes:
        """The file's bytes; checked against the sha256 the index advertises, if any."""
        try:
            body, _, _ = self._get(file.url)
        except HTTPError as exc:
            raise IndexAccessError(scrub(f"{file.url}: HTTP {exc.code}", self._secrets())) from None
        if file.sha256 and hashlib.sha256(body).hexdigest() != file.sha256:
            raise IndexAccessError(
                f"{file.filename}: downloaded bytes do not match the index's sha256 {file.sha256}"
            )
        return body


def simple_url_for(repository_url: str) -> str:
    """Guess the simple API root from an upload URL.

    Warehouse-style upload endpoints end in ``/legacy/`` (simple API at ``/simple/``);
    pypiserver and devpi accept uploads at the root and serve ``/simple/`` below it.
    """
    url = repository_url.rstrip("/")
    if url.endswith("/legacy"):
        url = url[: -len("/legacy")]
    if url.endswith("/simple"):
        return url + "/"
    return url + "/simple/"
