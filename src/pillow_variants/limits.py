"""Resource limits against hostile input, in one place, each overridable by the environment.

Wheels, PE files, recipes, patches and source archives come from outside. Without a cap a
2 MB wheel inflates to gigabytes, ``/dev/zero`` given as a recipe fills memory, a FIFO blocks
forever and a server dripping one byte every few seconds never trips a per-read timeout. Each
limit here is generous for real Pillow builds (the largest real member is a ~10 MB ``.pyd``, the
largest source tree ~100 MB) and named in the one-line error it causes, with the environment
variable that raises it::

    error: w.whl:pkg/big.pyd: 1.5 GiB exceeds the 512 MiB member limit; raise it with
    PILLOW_VARIANTS_MAX_MEMBER_BYTES

The values are read from the environment at each check (not at import), so a test or a user can
change them for one run. README.md ("Limits") lists them.
"""

from __future__ import annotations

import json
import os
import stat
import struct
import time
import zipfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO

from pillow_variants._record import FrozenRecord
from pillow_variants.errors import UserError

_PREFIX = "PILLOW_VARIANTS_MAX_"
_MIB = 1 << 20


class Limit(FrozenRecord):
    """One documented limit: ``PILLOW_VARIANTS_MAX_<key>`` overrides ``default``."""

    __slots__ = ("key", "default", "what", "unit")

    def __init__(self, key: str, default: int, what: str, unit: str) -> None:
        self.key = key
        self.default = default
        self.what = what  # as in "the 512 MiB member limit"
        self.unit = unit  # "bytes", "count" or "seconds": how the value is printed

    @property
    def env(self) -> str:
        return _PREFIX + self.key

    def value(self) -> int:
        raw = os.environ.get(self.env, "").strip()
        if not raw:
            return self.default
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value <= 0:
            raise UserError(f"{self.env}={raw!r}: expected a positive integer")
        return value

    def show(self, amount: int | float) -> str:
        if self.unit == "bytes":
            return human_bytes(int(amount))
        if self.unit == "seconds":
            return f"{amount:g} s"
        return f"{amount:,}"

    def error(self, subject: str, amount: int | float | None = None) -> UserError:
        """The one-line error for ``subject`` going over this limit."""
        size = f"{self.show(amount)} " if amount is not None else ""
        return UserError(
            f"{subject}: {size}exceeds the {self.show(self.value())} {self.what} limit; "
            f"raise it with {self.env}"
        )

    def check(self, subject: str, amount: int | float) -> None:
        if amount > self.value():
            raise self.error(subject, amount)


#: Bytes of one file read whole into memory: a PE file or wheel member, a recipe, a patch.
MEMBER_BYTES = Limit("MEMBER_BYTES", 512 * _MIB, "member", "bytes")
#: Bytes a source archive may extract to in total (sum of its members).
ARCHIVE_BYTES = Limit("ARCHIVE_BYTES", 2048 * _MIB, "extracted archive size", "bytes")
#: Entries in one archive (source archive or wheel).
ARCHIVE_MEMBERS = Limit("ARCHIVE_MEMBERS", 100_000, "archive member count", "count")
#: Seconds one download may take from the request to the last byte.
DOWNLOAD_SECONDS = Limit("DOWNLOAD_SECONDS", 1800, "download time", "seconds")
#: PE modules (.pyd/.dll/.exe) in one audited target.
DLLS = Limit("DLLS", 2000, "DLL count", "count")

ALL = (MEMBER_BYTES, ARCHIVE_BYTES, ARCHIVE_MEMBERS, DOWNLOAD_SECONDS, DLLS)


def human_bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", _MIB), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


# --------------------------------------------------------------------------------------------
# Reading files and members


def check_regular_file(path: str | os.PathLike[str], what: str = "file") -> os.stat_result:
    """Refuse anything but a regular file *before* it is opened: reading a FIFO blocks for
    ever and a device (``/dev/zero``) never ends. Returns the ``stat`` result."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError as exc:
        raise UserError(f"{p}: cannot read the {what} ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise UserError(f"{p}: is a directory, not a {what}")
    if not stat.S_ISREG(st.st_mode):
        raise UserError(f"{p}: not a regular file (a FIFO, socket or device); expected a {what}")
    return st


def read_regular_file(
    path: str | os.PathLike[str], what: str = "file", limit: Limit = MEMBER_BYTES
) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, refusing FIFOs and devices.

    The file is opened with ``O_NONBLOCK`` (a FIFO swapped in after the ``stat`` cannot block
    the open) and checked again on the open descriptor; at most ``limit + 1`` bytes are read,
    so a file growing while it is read cannot exhaust memory either.
    """
    p = Path(path)
    check_regular_file(p, what)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise UserError(f"{p}: cannot read the {what} ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise UserError(f"{p}: not a regular file; expected a {what}")
        limit.check(str(p), st.st_size)
        try:
            data = fh.read(limit.value() + 1)
        except OSError as exc:
            raise UserError(f"{p}: cannot read the {what} ({exc.strerror or exc})") from None
    limit.check(str(p), len(data))
    return data


def read_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, subject: str, limit: Limit = MEMBER_BYTES
) -> bytes:
    """A zip member's bytes, refused by its declared size and capped in what is inflated.

    ``ZipInfo.file_size`` comes from the archive and can lie; the stream is read for at most
    one byte more than it declares (itself within the limit), whatever the decompressor
    would produce, so memory stays bounded by the limit.
    """
    limit.check(subject, info.file_size)
    with zf.open(info) as fh:
        data = fh.read(info.file_size + 1)
    if len(data) > info.file_size:
        raise _inflates_more(subject, info.file_size)
    return data


def _inflates_more(subject: str, declared: int) -> UserError:
    return UserError(
        f"{subject}: the member inflates to more than the {declared} bytes it declares"
    )


#: Bytes inflated per read when a member is spooled (:func:`spool_member`): what one reader
#: holds of a member in memory at a time, whatever the member's size.
SPOOL_CHUNK = 256 << 10


def spool_member(
    zf: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    subject: str,
    dest: BinaryIO,
    limit: Limit = MEMBER_BYTES,
    chunk: int = SPOOL_CHUNK,
) -> int:
    """Inflate a zip member into ``dest`` (a file) ``chunk`` bytes at a time; its size.

    The same caps as :func:`read_member` (the declared size within the limit, at most one
    byte more than declared ever inflated), but the member never sits in memory whole: a
    caller that needs a few ranges of a large member (a PE file's headers and tables) maps
    the file instead of holding every byte. Deflated members of an archive on disk are
    inflated by :func:`_spool_deflated` (ISA-L when installed); others through zipfile.
    """
    limit.check(subject, info.file_size)
    if (
        info.compress_type == zipfile.ZIP_DEFLATED
        and not info.flag_bits & _ZIP_FLAGS_NOT_PLAIN
        and isinstance(zf.filename, str)
    ):
        return _spool_deflated(zf.filename, info, subject, dest, chunk)
    left = info.file_size + 1
    with zf.open(info) as fh:
        while left:
            data = fh.read(min(chunk, left))
            if not data:
                break
            dest.write(data)
            left -= len(data)
    if not left:
        raise _inflates_more(subject, info.file_size)
    return info.file_size + 1 - left


#: General-purpose flags that need zipfile's own reader: encryption (bit 0, zipfile asks for
#: the password), compressed patched data (bit 5, refused) and strong encryption (bit 6).
_ZIP_FLAGS_NOT_PLAIN = 0x1 | 0x20 | 0x40
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, (version..sizes), name and extra lengths


def _inflater() -> Any:
    """ISA-L's zlib-compatible module when installed (inflates a wheel's members 2-3x faster
    than zlib: most of an audit's time), else zlib itself."""
    try:
        from isal import isal_zlib

        return isal_zlib
    except ImportError:
        return zlib


def _spool_deflated(
    archive: str, info: zipfile.ZipInfo, subject: str, dest: BinaryIO, chunk: int
) -> int:
    """Inflate one deflated member from its raw stream, with zipfile's checks (the local
    header's name, the CRC, the stream's end) and the caps of :func:`spool_member`.

    Its own file handle, so that threads inflating several members of one archive neither
    share a position nor wait for zipfile's lock while they read.
    """
    lib = _inflater()
    with open(archive, "rb") as fh:
        fh.seek(info.header_offset)
        header = fh.read(_LOCAL_HEADER.size)
        if len(header) < _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
            raise zipfile.BadZipFile(f"bad local file header of {info.filename!r}")
        _, name_len, extra_len = _LOCAL_HEADER.unpack(header)
        name = fh.read(name_len)
        if name.decode("utf-8" if info.flag_bits & 0x800 else "cp437") != info.orig_filename:
            raise zipfile.BadZipFile(
                f"file name in directory {info.orig_filename!r} and header {name!r} differ"
            )
        fh.seek(extra_len, os.SEEK_CUR)
        inflate = lib.decompressobj(-15)
        raw_left, left, crc = info.compress_size, info.file_size + 1, 0
        pending = b""  # compressed input not yet consumed (output capped per call)
        try:
            while left and not inflate.eof:
                if not pending and raw_left:
                    pending = fh.read(min(chunk, raw_left))
                    raw_left = raw_left - len(pending) if pending else 0  # file cut short
                data = inflate.decompress(pending, min(chunk, left))
                pending = inflate.unconsumed_tail
                if not (data or pending or raw_left):
                    break  # all input given, nothing more comes out: the stream ends early
                dest.write(data)
                crc = lib.crc32(data, crc)
                left -= len(data)
        except lib.error as exc:
            raise zlib.error(str(exc)) from None
    if not left:
        raise _inflates_more(subject, info.file_size)
    size = info.file_size + 1 - left
    if not inflate.eof or size != info.file_size:
        raise EOFError(f"{subject}: the compressed stream ends early")
    if crc != info.CRC:
        raise zipfile.BadZipFile(f"Bad CRC-32 for file {info.filename!r}")
    return size


def loads_json(raw: str | bytes) -> object:
    """``json.loads`` without NaN/Infinity: Python accepts them, but printed back they make
    a ``--json`` output that no JSON parser reads. Raises ``ValueError`` (also for nesting
    too deep to decode) so callers keep one ``except ValueError``."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not a JSON value")

    try:
        return json.loads(raw, parse_constant=refuse)
    except RecursionError:
        raise ValueError("nested too deeply") from None


class Deadline:
    """A total time budget (a per-read socket timeout alone lets a server drip bytes for ever)."""

    def __init__(self, subject: str, limit: Limit = DOWNLOAD_SECONDS) -> None:
        self.subject = subject
        self.limit = limit
        self.seconds = limit.value()
        self.start = time.monotonic()

    def remaining(self) -> float:
        """Seconds left; raises the limit's error once none are."""
        left = self.seconds - (time.monotonic() - self.start)
        if left <= 0:
            raise self.limit.error(self.subject)
        return left
