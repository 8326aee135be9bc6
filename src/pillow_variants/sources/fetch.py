"""Sources: fetch, verify, cache and extract the source archive of each recipe component.

Downloads land in a content-addressed cache, ``<cache>/sha256/<hex>/<filename>``. A file enters
the cache only after its sha256 has been checked: it is downloaded into a private temporary
directory beside the cache entries (same file system, so the final step is an atomic rename)
and that directory is removed whatever happens, so a mismatch or an interrupted download leaves
nothing behind.

Where the bytes come from:

* ``source.url`` — fetched with urllib (timeouts, progress on stderr for big files);
* ``source.pip`` — the Pillow sdist, fetched with ``python -m pip download`` so the user's index
  configuration (pip.conf, ``PIP_INDEX_URL``, a private mirror, credentials) applies;
* a ``--source NAME=PATH`` override — a local directory or archive for offline work. It is used
  as is and recorded in the build manifest as local and unverified, with the version its name
  declares (:func:`declared_version`) and the recipe's pin beside it when they differ.

Recipes may mark a source ``sha256 = "unpinned"`` when no trustworthy hash was known. Such a
source is refused unless the caller passes ``allow_unpinned``; the hash computed on download is
then recorded so the build manifest still says exactly which bytes were built.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from pillow_variants import __version__, _log
from pillow_variants.errors import SourceError, UserError
from pillow_variants.hashing import file_sha256
from pillow_variants.limits import Deadline
from pillow_variants.recipe.model import Recipe, Source, safe_filename, url_filename
from pillow_variants.sources.archives import extract_archive, looks_like_archive

#: Environment variable overriding the cache directory (the CLI's ``--cache-dir`` wins over it).
CACHE_ENV = "PILLOW_VARIANTS_CACHE"
#: Seconds a socket may stay silent before a download is abandoned.
DEFAULT_TIMEOUT = 60.0
#: Downloads at least this big report progress on stderr.
PROGRESS_THRESHOLD = 1 << 20
#: Temporary download directories older than this are debris from a killed process.
_STALE_SECONDS = 24 * 3600
_INCOMING_PREFIX = ".incoming-"
_CHUNK = 1 << 16


def default_cache_dir() -> Path:
    """``$PILLOW_VARIANTS_CACHE`` if set, else the platform's user cache dir for this tool."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser().resolve()
    import platformdirs

    return platformdirs.user_cache_path("pillow-variants")


#: Debian's upstream tarball: ``<source>_<version>.orig[-<component>].tar.<ext>``.
_DEBIAN_ORIG = re.compile(r"^[^_/]+_(?P<version>\d[^_/]*?)\.orig(?:-[\w-]+)?\.tar\.\w+$")
#: An upstream release archive or its unpacked tree: ``<name>-<version>[.tar[.<ext>]|.tgz|.zip]``.
_RELEASE = re.compile(r"^[^/]+?-v?(?P<version>\d+\.[\w.+~]*?)(?:\.tar(?:\.\w+)?|\.tgz|\.zip)?$")


def declared_version(path: Path) -> str | None:
    """The version a local source's name declares, or None.

    A ``--source`` tree need not be the recipe's pin (Debian has no libjpeg-turbo 3.2.0, so CI
    builds 3.1.3): what was built must be named by what it is. Release archives and their trees
    say so in their names (``libjpeg-turbo_3.1.3.orig.tar.gz``, ``zlib-ng-2.3.3``).
    """
    for pattern in (_DEBIAN_ORIG, _RELEASE):
        match = pattern.match(path.name)
        if match:
            return match["version"]
    return None


def built_version(recipe_version: str, override: Path | None) -> tuple[str, str | None]:
    """(version built, the recipe's pin if that differs, else None) of one component.

    An override whose name declares no version is taken to be the recipe's version.
    """
    declared = declared_version(override) if override is not None else None
    if declared is None or declared == recipe_version:
        return recipe_version, None
    return declared, recipe_version


def version_label(version: str, recipe_version: str | None = None) -> str:
    """``3.1.3 (recipe 3.2.0)`` when the built tree is not the recipe's pin, else ``3.1.3``."""
    return f"{version} (recipe {recipe_version})" if recipe_version else version


def parse_source_overrides(items: list[str]) -> dict[str, Path]:
    """Parse ``--source NAME=PATH`` values; PATH must be an existing directory or archive."""
    out: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        name = name.strip()
        if not sep or not name or not path:
            raise SourceError(f"--source {item!r}: expected NAME=PATH")
        if name in out:
            raise SourceError(f"--source {name}: given twice")
        p = Path(path).expanduser().resolve()
        if not p.exists():
            raise SourceError(f"--source {name}={path}: no such file or directory")
        if p.is_file() and not looks_like_archive(p):
            raise SourceError(f"--source {name}={path}: not a directory or a tar/zip archive")
        out[name] = p
    return out


def check_overrides(recipe: Recipe, overrides: dict[str, Path]) -> None:
    """Refuse overrides for components the recipe does not have (a typo would be ignored)."""
    for name in overrides:
        if name not in recipe.components:
            raise SourceError(
                f"--source {name}: no such component in recipe {recipe.name} "
                f"(components: {', '.join(recipe.components)})"
            )


@dataclass(frozen=True)
class FetchedSource:
    """A component's source as it will be built, and how far it can be trusted."""

    component: str
    version: str
    #: Archive file in the cache, or the local directory/archive of an override.
    path: Path
    #: Verified hash; for an override archive the hash of the file as found (unverified); None
    #: for a local directory override.
    sha256: str | None
    #: The URL, the pip requirement, or the local path.
    origin: str
    #: True for a ``--source`` override: recorded as local, unverified.
    local: bool
    #: True when the recipe had no pin and ``allow_unpinned`` accepted the computed hash.
    unpinned: bool = False
    #: The recipe's version when ``version`` (what an override's name declares) differs.
    recipe_version: str | None = None

    @property
    def verified(self) -> bool:
        """The bytes matched a hash pinned in the recipe."""
        return not self.local and not self.unpinned

    @property
    def kind(self) -> str:
        if self.local:
            return "local"
        return "url" if "://" in self.origin else "pip"

    def manifest_entry(self) -> dict[str, Any]:
        """What the build manifest records about this source."""
        if self.local:
            note = "local override, unverified"
        elif self.unpinned:
            note = "recipe has no pinned sha256; hash computed on download (--allow-unpinned)"
        else:
            note = "sha256 verified against the recipe"
        entry = {
            "component": self.component,
            "version": self.version,
            "kind": self.kind,
            "origin": self.origin,
            "sha256": self.sha256,
            "local": self.local,
            "verified": self.verified,
            "note": note,
        }
        if self.recipe_version:
            entry["recipe_version"] = self.recipe_version
        return entry


# --------------------------------------------------------------------------------------------
# The content-addressed cache


def cache_entry(cache_dir: Path, sha256: str) -> Path | None:
    """The cached file with this hash, if present *and* still matching it."""
    entry = Path(cache_dir) / "sha256" / sha256
    files = [p for p in entry.iterdir() if p.is_file()] if entry.is_dir() else []
    if len(files) != 1:
        return None
    if file_sha256(files[0]) != sha256:
        # Corrupted on disk (bit rot, a manual edit): drop it and fetch again.
        _log.LOGGER.warning(f"cache entry {entry} is corrupt; fetching again")
        shutil.rmtree(entry)
        return None
    return files[0]


def _incoming_dir(cache_dir: Path) -> Path:
    """A private directory for one download, beside the cache entries (same file system)."""
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        return _new_incoming(cache_dir)
    except OSError as exc:  # a cache path under a file, read-only, full: one line, not a trace
        raise SourceError(
            f"{cache_dir}: unusable cache directory ({exc.strerror or exc}); "
            f"choose another with --cache-dir or {CACHE_ENV}"
        ) from None


def _new_incoming(cache_dir: Path) -> Path:
    now = time.time()
    for old in cache_dir.glob(_INCOMING_PREFIX + "*"):
        try:
            if now - old.stat().st_mtime > _STALE_SECONDS:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass
    return Path(tempfile.mkdtemp(prefix=_INCOMING_PREFIX, dir=cache_dir))


def _commit(incoming: Path, file: Path, sha256: str, cache_dir: Path) -> Path:
    """Atomically publish a verified ``file`` (inside ``incoming``) as its cache entry."""
    entry = cache_dir / "sha256" / sha256
    staged = incoming / "entry"
    staged.mkdir()
    os.replace(file, staged / file.name)
    staged.chmod(0o755)
    entry.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(staged, entry)
    except OSError:
        # Another process published the same bytes first; theirs is as good as ours.
        existing = cache_entry(cache_dir, sha256)
        if existing is None:
            raise
        return existing
    return entry / file.name


def _verify(actual: str, source: Source, origin: str, component: str) -> bool:
    """Check a computed hash against the recipe; return True when the source is unpinned
    (the caller has already refused unpinned sources without ``allow_unpinned``)."""
    if not source.pinned:
        return True
    if actual != source.sha256:
        raise SourceError(
            f"{component}: sha256 mismatch for {origin}: recipe pins {source.sha256}, "
            f"download has {actual}; nothing was written to the cache"
        )
    return False


def _unpinned_error(component: str, origin: str, source: Source) -> SourceError:
    why = f" ({source.sha256_source})" if source.sha256_source else ""
    return SourceError(
        f"{component}: the recipe pins no sha256 for {origin}{why}; pass --allow-unpinned to "
        f"accept the downloaded bytes and record their hash, or provide the source with "
        f"--source {component}=PATH"
    )


# --------------------------------------------------------------------------------------------
# Downloading


def _hint(component: str) -> str:
    return f"provide it with --source {component}=PATH (a directory or archive)"


def download(url: str, into: Path, *, timeout: float = DEFAULT_TIMEOUT, label: str = "") -> str:
    """Stream ``url`` into the file ``into``; return its sha256. Raises ``OSError``/``URLError``,
    ``http.client.HTTPException`` or, past the total download deadline, ``UserError``.

    ``timeout`` bounds each wait on the socket; the whole download is bounded by
    ``limits.DOWNLOAD_SECONDS`` (a server sending one byte every few seconds never trips a
    per-read timeout): ``read1`` returns what has arrived instead of waiting for a full chunk,
    and the deadline is checked between reads, each of which waits at most ``timeout``.

    Progress goes to stderr for downloads of at least ``PROGRESS_THRESHOLD`` bytes (or of
    unknown size), at most every two seconds, so logs stay readable.
    """
    req = urllib.request.Request(url, headers={"User-Agent": f"pillow-variants/{__version__}"})
    h = hashlib.sha256()
    deadline = Deadline(f"downloading {url}")
    wait = min(timeout, deadline.remaining())
    with urllib.request.urlopen(req, timeout=wait) as resp, open(into, "wb") as out:
        total = int(resp.headers.get("Content-Length") or 0)
        loud = total == 0 or total >= PROGRESS_THRESHOLD
        if loud:
            size = f" ({total / 1e6:.1f} MB)" if total else ""
            _log.progress(f"fetching {label or url}{size}")
        done, last = 0, time.monotonic()
        while chunk := resp.read1(_CHUNK):
            deadline.remaining()
            out.write(chunk)
            h.update(chunk)
            done += len(chunk)
            if loud and time.monotonic() - last >= 2:
                last = time.monotonic()
                of = f"/{total / 1e6:.1f}" if total else ""
                _log.progress(f"  {done / 1e6:.1f}{of} MB")
        if total and done != total:
            raise OSError(f"connection closed after {done} of {total} bytes")
    return h.hexdigest()


def _download_name(component: str, source: Source) -> str:
    """The file name to download into: ``source.filename`` or the URL's decoded last segment.

    Checked here as well as in the recipe loader (a Source can be built in code): the name is
    joined to the cache directory, so ``../x`` or ``/abs`` would write outside it.
    """
    name = source.filename or url_filename(source.url)
    if not safe_filename(name) or name == "download":
        raise SourceError(
            f"{component}: cannot use {name!r} (from {source.url}) as a file name; set "
            "source.filename to one path component; nothing was written"
        )
    return name


def _fetch_url(
    component: str, source: Source, cache_dir: Path, timeout: float
) -> tuple[Path, str, bool]:
    filename = _download_name(component, source)
    incoming = _incoming_dir(cache_dir)
    try:
        tmp = incoming / filename
        if tmp.resolve().parent != incoming.resolve():  # defence in depth; see _download_name
            raise SourceError(f"{component}: download target {tmp} leaves {incoming}")
        try:
            actual = download(source.url, tmp, timeout=timeout, label=f"{component} {source.url}")
        except urllib.error.HTTPError as exc:
            raise SourceError(
                f"could not fetch {source.url} (HTTP {exc.code} {exc.reason}); {_hint(component)}"
            ) from None
        except urllib.error.URLError as exc:
            raise SourceError(
                f"could not fetch {source.url} ({exc.reason}); {_hint(component)}"
            ) from None
        except (OSError, ValueError, http.client.HTTPException) as exc:
            # timeouts, resets, truncation, bad URL, bad status line, too many headers,
            # a truncated chunked body (IncompleteRead): one line naming the URL
            why = " ".join(str(exc).split())[:200] or type(exc).__name__  # one line
            raise SourceError(f"could not fetch {source.url} ({why}); {_hint(component)}") from None
        except UserError as exc:  # the total download deadline
            raise SourceError(f"{exc}; {_hint(component)}") from None
        unpinned = _verify(actual, source, source.url, component)
        return _commit(incoming, tmp, actual, cache_dir), actual, unpinned
    finally:
        shutil.rmtree(incoming, ignore_errors=True)


def pip_download_command(
    requirement: str, dest: Path, *, hashes_file: Path | None = None
) -> list[str]:
    """The ``pip download`` command that fetches exactly one sdist and nothing else.

    With ``hashes_file`` (a requirements file holding ``requirement --hash=sha256:...``) pip
    itself refuses any other file (``--require-hashes``).

    ``--no-binary NAME`` (not ``:all:``) keeps the sdist requirement from leaking into the
    isolated build environment pip sets up to read the sdist's metadata, so its build
    dependencies still come as wheels. ``--no-build-isolation`` would skip that environment but
    fails unless the running interpreter happens to have Pillow's build requirements.
    """
    name = Requirement(requirement).name
    return [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        name,
        "--progress-bar",
        "off",
        "--dest",
        str(dest),
        *(["--require-hashes", "-r", str(hashes_file)] if hashes_file else [requirement]),
    ]


def _fetch_pip(
    component: str, version: str, source: Source, cache_dir: Path
) -> tuple[Path, str, bool]:
    try:
        req = Requirement(source.pip)
    except InvalidRequirement as exc:
        raise SourceError(f"{component}: source.pip {source.pip!r}: {exc}") from None
    pins = [s for s in req.specifier if s.operator in ("==", "===")]
    if len(pins) != 1 or pins[0].version != version:
        raise SourceError(
            f"{component}: source.pip {source.pip!r} must pin exactly =={version} "
            "(the recipe's version)"
        )
    incoming = _incoming_dir(cache_dir)
    try:
        dl = incoming / "pip"
        dl.mkdir()
        _log.progress(
            f"fetching {component} {source.pip} with pip download (pip reads the sdist's "
            "metadata, which takes a few seconds)"
        )
        tail = _run_forwarding(pip_download_command(source.pip, dl))
        if tail is not None:
            raise SourceError(
                f"could not fetch {source.pip} with pip download ({tail}); {_hint(component)}"
            )
        files = [p for p in dl.iterdir() if p.is_file()]
        if len(files) != 1:
            got = ", ".join(p.name for p in files) or "nothing"
            raise SourceError(f"{component}: pip download of {source.pip} gave {got}")
        (tmp,) = files
        if source.filename and tmp.name != source.filename:
            raise SourceError(
                f"{component}: pip download of {source.pip} gave {tmp.name}, "
                f"the recipe expects {source.filename}"
            )
        actual = file_sha256(tmp)
        unpinned = _verify(actual, source, source.pip, component)
        return _commit(incoming, tmp, actual, cache_dir), actual, unpinned
    finally:
        shutil.rmtree(incoming, ignore_errors=True)


def _run_forwarding(cmd: list[str]) -> str | None:
    """Run ``cmd`` echoing its output to stderr; None on success, else its last error line."""
    last: deque[str] = deque(maxlen=30)
    try:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        )
    except OSError as exc:
        return str(exc)
    assert proc.stdout is not None
    for line in proc.stdout:
        _log.debug("  " + line.rstrip("\n"))
        last.append(line.strip())
    if proc.wait() == 0:
        return None
    errors = [x for x in last if x.startswith("ERROR:") or x.startswith("error:")]
    return (errors[-1] if errors else next((x for x in reversed(last) if x), "")) or (
        f"exit status {proc.returncode}"
    )


# --------------------------------------------------------------------------------------------
# The public entry points


def fetch_source(
    recipe: Recipe,
    component: str,
    *,
    cache_dir: Path | None = None,
    overrides: dict[str, Path] | None = None,
    allow_unpinned: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> FetchedSource:
    """Return the verified source of ``component``, fetching it into the cache if needed.

    Order: a ``--source`` override wins (local, unverified); then a cache hit for a pinned hash;
    then the network (URL or pip). Raises ``SourceError`` with a one-line, actionable message.
    """
    if component not in recipe.components:
        raise SourceError(
            f"no component {component!r} in recipe {recipe.name} "
            f"(components: {', '.join(recipe.components)})"
        )
    version = recipe.component_version(component)
    local = (overrides or {}).get(component)
    if local is not None:
        local = Path(local).resolve()
        built, pin = built_version(version, local)
        if local.is_dir():
            sha = None
        elif looks_like_archive(local):
            sha = file_sha256(local)
        else:
            raise SourceError(f"--source {component}={local}: not a directory or tar/zip archive")
        origin = str(local)
        return FetchedSource(component, built, local, sha, origin, local=True, recipe_version=pin)

    source = recipe.component_source(component)
    origin = source.url or source.pip
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if source.pinned:
        hit = cache_entry(cache, source.sha256)
        if hit is not None:
            return FetchedSource(component, version, hit, source.sha256, origin, local=False)
    elif not allow_unpinned:
        raise _unpinned_error(component, origin, source)

    if source.url:
        path, sha, unpinned = _fetch_url(component, source, cache, timeout)
    else:
        path, sha, unpinned = _fetch_pip(component, version, source, cache)
    return FetchedSource(component, version, path, sha, origin, local=False, unpinned=unpinned)


def extract_source(fetched: FetchedSource, dest: Path) -> Path:
    """Put ``fetched``'s tree at ``dest`` (which must not exist or be empty); return ``dest``.

    Archives are extracted safely (see :mod:`pillow_variants.sources.archives`) with a single
    top-level directory unwrapped; a local directory override is copied (symlinks kept as links),
    so the user's checkout is never modified by patching or building.
    """
    dest = Path(dest)
    if not fetched.path.is_dir():
        return extract_archive(fetched.path, dest)
    _check_local_tree(fetched.path)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise SourceError(f"{dest}: destination exists and is not an empty directory")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.copy-", dir=dest.parent))
    try:
        shutil.copytree(fetched.path, tmp / "tree", symlinks=True)
        if dest.is_dir():
            dest.rmdir()
        os.rename(tmp / "tree", dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _check_local_tree(root: Path) -> None:
    """Refuse a ``--source`` directory holding FIFOs, sockets or devices before copying it:
    copying would block on a FIFO or fail half-way with a multi-line ``shutil.Error``."""
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            mode = path.lstat().st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
                raise SourceError(
                    f"--source {root}: {path.relative_to(root)} is not a regular file, "
                    "directory or symlink (a FIFO, socket or device)"
                )


def prepare_source_tree(
    recipe: Recipe, component: str, dest: Path, *, patched: bool = True, **fetch_kwargs: Any
) -> tuple[Path, FetchedSource]:
    """Fetch, extract to ``dest`` and (with ``patched``) apply the recipe's patch set.

    This is the tree a build starts from. If a patch fails, the extracted tree is removed again
    (``dest`` is as before) and ``PatchError`` names the patch, file and hunk.
    """
    from pillow_variants.sources.patches import apply_patch_set

    fetched = fetch_source(recipe, component, **fetch_kwargs)
    was_empty_dir = Path(dest).is_dir()
    tree = extract_source(fetched, dest)
    if patched:
        try:
            apply_patch_set(tree, recipe.patch_files(component))
        except BaseException:
            shutil.rmtree(tree)  # we created it; a half-prepared tree must not be built
            if was_empty_dir:
                tree.mkdir()
            raise
    return tree, fetched
