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
from http.client import HTTPException
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
_SCHEME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_ENCODE_HINT = (
    "a '/', '?', '#' or '@' in a user name or password must be percent-encoded (/ is %2F)"
)


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
    before it is printed or logged is what keeps a password out of CI logs. Encoded forms are
    matched case-insensitively: ``%2f`` and ``%2F`` are the same password.
    """
    out = _USERINFO_RE.sub(lambda m: m.group("scheme") + _MASK + "@", text)
    for secret in secrets:
        if not secret:
            continue
        for form in sorted({secret, quote(secret, safe=""), quote(secret)}, key=len, reverse=True):
            out = re.sub(re.escape(form), _MASK, out, flags=re.IGNORECASE)
    return out


def mask_url(text: str) -> str:
    """A URL as typed, safe to echo: everything between the scheme and the last ``@`` masked.

    For input that is not a valid URL, where :func:`scrub` cannot tell where userinfo ends
    (``user:p/w@host`` without a scheme, a raw ``/`` in a password); masking too much of an
    invalid URL is harmless, echoing part of a password is not. Non-printable characters are
    escaped so the message stays on one line.
    """
    scheme = _SCHEME_RE.match(text)
    head = scheme.group(0) if scheme else ""
    rest = text[len(head) :]
    if "@" in rest:
        rest = _MASK + "@" + rest.rpartition("@")[2]
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in head + rest)


def secrets_of(credentials: Credentials | None) -> list[str]:
    """The strings :func:`scrub` must hide for ``credentials`` (password, Basic token)."""
    if credentials is None or not credentials.password:
        return []
    token = credentials.header().split(" ", 1)[1]
    return [credentials.password, token]


def split_userinfo(url: str, what: str = "URL") -> tuple[str, Credentials | None]:
    """``https://u:p@host/x`` → (``https://host/x``, Credentials(u, p)), for a valid URL only.

    Every index URL a user types goes through here, so this is where a malformed one stops:
    no scheme, another scheme, a bad port, a raw ``/`` in a password (which moves the rest of
    the password into the path). ``UserError`` (exit 2) names ``what`` and the URL with any
    userinfo masked; the URL library's own messages are not used, they quote the bad part.
    """
    shown = mask_url(url)
    if any(not c.isprintable() or c.isspace() for c in url):
        raise UserError(f"{what} {shown}: a URL cannot contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        hint = f" ({_ENCODE_HINT})" if "@" in url else ""
        raise UserError(f"{what} {shown}: invalid host or port{hint}") from None
    if parts.scheme not in ("http", "https") or not _SCHEME_RE.match(url):
        raise UserError(f"{what} {shown}: not an http:// or https:// URL")
    if not parts.hostname:
        raise UserError(f"{what} {shown}: no host in the URL")
    if port == 0:
        raise UserError(f"{what} {shown}: invalid port 0")
    if "@" in url.partition("://")[2][len(parts.netloc) :]:
        raise UserError(f"{what} {shown}: '@' after the host ({_ENCODE_HINT})")
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.hostname
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host + (f":{port}" if port else "")
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
    repository_url: str,
    *,
    pypirc: Path | None = None,
    use_keyring: bool = True,
    what: str = "--repository-url",
) -> tuple[str, Credentials | None]:
    """The URL without userinfo and the credentials to use, looked up as twine does.

    Order: userinfo in the URL; TWINE_USERNAME/TWINE_PASSWORD; a ``.pypirc`` section whose
    ``repository`` is this URL; keyring (for the URL and, if known, the username).
    """
    url, creds = split_userinfo(repository_url, what)
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


def _json_files(body: bytes, base_url: str) -> list[IndexFile]:
    data = json.loads(body)
    files = data["files"] if isinstance(data, dict) else None
    if not isinstance(files, list):
        raise TypeError("'files' is not a list")
    out = []
    for f in files:
        if not (isinstance(f, dict) and isinstance(f.get("filename"), str)):
            raise TypeError("a file entry without a 'filename' string")
        hashes = f.get("hashes", {})
        sha = hashes.get("sha256") if isinstance(hashes, dict) else None
        if not isinstance(hashes, dict) or not isinstance(sha, str | None):
            raise TypeError(f"{f['filename'][:100]!r}: 'hashes' is not a name → string table")
        if not isinstance(f.get("url"), str):
            raise TypeError(f"{f['filename'][:100]!r}: 'url' is not a string")
        out.append(IndexFile(f["filename"], urljoin(base_url, f["url"]), sha))
    return out


def parse_project_page(body: bytes, content_type: str, base_url: str) -> list[IndexFile]:
    """Files from a project page, in PEP 691 JSON or PEP 503 HTML (chosen by content type).

    The page comes from a server, so anything can be in it: any malformed answer (wrong
    types, nesting deep enough to exhaust the JSON parser's recursion, unparsable URLs) is an
    ``IndexAccessError`` (one line, exit 2), never a traceback.
    """
    ctype = content_type.split(";", 1)[0].strip().lower()
    try:
        if ctype == PEP691_JSON:
            return _json_files(body, base_url)
        parser = _AnchorParser()
        parser.feed(body.decode("utf-8", errors="replace"))
        out = []
        for href, text in parser.links:
            url = urljoin(base_url, href)
            name = text or unquote(urlsplit(url).path.rsplit("/", 1)[-1])
            out.append(IndexFile(name, url, _fragment_sha256(url)))
        return out
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        kind = "PEP 691" if ctype == PEP691_JSON else "HTML"
        why = scrub(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)[:200]
        raise IndexAccessError(f"{base_url}: malformed {kind} project page ({why})") from None


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
        try:
            parts = urlsplit(url)
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https"):  # a page's file://, ftp://
            raise IndexAccessError(scrub(f"{url}: not an http(s) URL", self._secrets()))
        req = Request(url)
        if accept:
            req.add_header("Accept", accept)
        # Credentials go to the index host only, never to a CDN a file URL points at.
        if self.credentials is not None and parts.netloc == self._host:
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
        except (HTTPException, ValueError) as exc:  # not HTTP at all: garbage status line, ...
            why = f"{type(exc).__name__}: {str(exc)[:100]}".splitlines()[0]
            raise IndexAccessError(
                scrub(f"{url}: not a valid HTTP reply ({why})", self._secrets())
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
