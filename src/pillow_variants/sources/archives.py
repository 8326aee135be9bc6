"""Safe extraction of source archives (.tar, .tar.gz, .tar.xz, .tar.bz2, .zip).

Source archives come from the network, so extraction must never write outside the destination.
Every member is checked *before* anything is written: absolute names, ``..`` components, ``.git``
(a repository's config can make git run commands), links whose target leaves the tree (also
after the single top directory is unwrapped), members reached through a link, and device/FIFO
files are refused
with a ``SourceError`` naming the archive and the member. Tar extraction then still runs under
tarfile's ``data`` filter (defence in depth: it re-checks real paths as it goes). Zip files are
extracted by hand because :mod:`zipfile` neither restores symlinks nor keeps executable bits.

Extraction goes to a temporary directory beside the destination and is renamed into place, so a
failure never leaves a half-extracted tree at the destination.
"""

from __future__ import annotations

import lzma
import os
import posixpath
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from pillow_variants import limits
from pillow_variants.errors import SourceError, UserError

#: File name endings recognised as archives (the content decides the format, not the name).
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tbz2", ".tar", ".zip")

_DRIVE_RE = re.compile(r"^[A-Za-z]:")
#: Longest symlink target and member path a POSIX file system takes (PATH_MAX, NAME_MAX).
_PATH_MAX, _NAME_MAX = 4096, 255
#: What a hostile archive raises while it is read: truncated or corrupt gz/xz/bz2 streams,
#: encrypted or unsupported zip members, bad CRCs.
_READ_ERRORS = (
    tarfile.TarError,
    zipfile.BadZipFile,
    EOFError,
    OSError,
    zlib.error,
    lzma.LZMAError,
    RuntimeError,
    NotImplementedError,
    ValueError,
)


@dataclass(frozen=True)
class Member:
    """One archive entry, reduced to what the safety checks need."""

    name: str
    kind: str  # "file", "dir", "symlink", "hardlink", "device"
    link: str = ""  # symlink target (as stored) or hardlink target (a member name)
    mode: int = 0o644
    size: int = 0  # bytes the member extracts to (as declared by the archive)


def looks_like_archive(path: Path) -> bool:
    """True if ``path`` is a file in a format :func:`extract_archive` can read."""
    path = Path(path)
    try:
        return path.is_file() and (zipfile.is_zipfile(path) or tarfile.is_tarfile(path))
    except _READ_ERRORS:  # is_tarfile lets a truncated gz/xz stream's EOFError through
        return False


def _archive_kind(path: Path) -> str:
    if not path.is_file():
        raise SourceError(f"{path}: no such archive")
    # zip first: a zip can carry a tar-looking prefix, never the other way round.
    if zipfile.is_zipfile(path):
        return "zip"
    if looks_like_archive(path):
        return "tar"
    raise SourceError(
        f"{path}: not a tar or zip archive (expected one of {', '.join(ARCHIVE_SUFFIXES)})"
    )


def _tar_members(tar: tarfile.TarFile) -> list[Member]:
    out = []
    for m in _bounded_tar_members(tar):
        if m.issym():
            kind = "symlink"
        elif m.islnk():
            kind = "hardlink"
        elif m.isdir():
            kind = "dir"
        elif m.isreg():
            kind = "file"
        else:  # character/block devices, FIFOs, anything exotic
            kind = "device"
        out.append(Member(m.name, kind, m.linkname, m.mode, m.size))
    return out


def _zip_members(zf: zipfile.ZipFile) -> list[Member]:
    out = []
    limits.ARCHIVE_MEMBERS.check(f"{zf.filename}", len(zf.infolist()))
    for info in zf.infolist():
        mode = info.external_attr >> 16
        ftype = stat.S_IFMT(mode)
        if info.filename.endswith("/") or ftype == stat.S_IFDIR:  # is_dir() fails on ""
            kind = "dir"
        elif ftype == stat.S_IFLNK:
            kind = "symlink"
        elif ftype in (0, stat.S_IFREG):  # 0: archivers that store no Unix mode
            kind = "file"
        else:
            kind = "device"
        link = _zip_link(zf, info) if kind == "symlink" else ""
        out.append(Member(info.filename, kind, link, stat.S_IMODE(mode) or 0o644, info.file_size))
    return out


def _unsafe_name(name: str) -> str | None:
    """Why a member name is unsafe, or None."""
    raw = name.replace("\\", "/")
    if raw.startswith("/") or _DRIVE_RE.match(raw):
        return "absolute path"
    if ".." in raw.split("/"):
        return "'..' in path"
    if "\0" in raw:
        return "NUL in path"
    if ".git" in raw.lower().split("/"):
        # A repository in the tree makes every git run there read its config, whose filters,
        # hooks and fsmonitor are shell commands: patching and builds must never see one.
        return "git metadata ('.git' can make git run commands in the tree)"
    return None


def unwrapped_top(members: list[Member]) -> str:
    """The single top-level directory that unwrapping makes the tree root, or "" if none.

    Mirrors :func:`_publish`: one top-level name, and it is a directory (declared or implied).
    """
    names = [posixpath.normpath(m.name.replace("\\", "/")) for m in members]
    tops = {n.split("/", 1)[0] for n in names if n != "."}
    if len(tops) != 1:
        return ""
    (top,) = tops
    if any(n == top and m.kind != "dir" for n, m in zip(names, members, strict=True)):
        return ""
    return top


def check_members(archive: Path, members: list[Member], *, unwrap: bool = False) -> None:
    """Refuse the whole archive if any member could write outside the tree.

    With ``unwrap`` the tree is the single top directory (if there is one), so a link like
    ``pkg/up -> ..`` that stays inside the archive still leaves the tree. Raises
    ``SourceError`` naming the archive and the first offending member.
    """
    root = unwrapped_top(members) if unwrap else ""
    links = {posixpath.normpath(m.name.replace("\\", "/")) for m in members if m.kind == "symlink"}
    for m in members:
        why = _unsafe_name(m.name)
        name = posixpath.normpath(m.name.replace("\\", "/"))
        if why is None and m.kind == "device":
            why = "device or special file"
        if why is None:
            # A member reached through a symlink can land anywhere the link points.
            parts = name.split("/")
            for i in range(1, len(parts)):
                if "/".join(parts[:i]) in links:
                    why = f"path goes through the symlink {'/'.join(parts[:i])!r}"
                    break
        if why is None and m.kind == "symlink":
            target = m.link.replace("\\", "/")
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
            if target.startswith("/") or _DRIVE_RE.match(target) or not target:
                why = f"symlink to absolute path {m.link!r}"
            elif resolved == ".." or resolved.startswith("../"):
                why = f"symlink {m.link!r} leaves the tree"
            elif root and resolved != root and not resolved.startswith(root + "/"):
                why = f"symlink {m.link!r} leaves the tree once {root!r} is unwrapped"
        if why is None and m.kind == "hardlink":
            if _unsafe_name(m.link) is not None:
                why = f"hardlink to {m.link!r} leaves the tree"
        if why is not None:
            raise SourceError(f"{archive}: refusing unsafe archive member {m.name!r}: {why}")


# --------------------------------------------------------------------------------------------
# Resource limits and malformed archives (see pillow_variants.limits)


def _bounded_tar_members(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """The tar's members, stopping at the member-count limit: ``getmembers()`` would read
    every header of a tar of millions of empty entries into memory first."""
    out: list[tarfile.TarInfo] = []
    cap = limits.ARCHIVE_MEMBERS.value()
    for m in tar:
        if len(out) == cap:
            name = os.fsdecode(tar.name) if tar.name else "archive"
            raise limits.ARCHIVE_MEMBERS.error(f"{name} (more entries)")
        out.append(m)
    return out


def _zip_link(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    """A zip symlink's target: a short string, whatever size the member claims (a symlink
    member of 1 GB must not be inflated into memory)."""
    if info.file_size > _PATH_MAX:
        raise SourceError(
            f"{zf.filename}: refusing archive member {info.filename!r}: symlink target of "
            f"{info.file_size} bytes (longer than {_PATH_MAX})"
        )
    with zf.open(info) as fh:
        return fh.read(_PATH_MAX + 1)[:_PATH_MAX].decode("utf-8", "surrogateescape")


def check_limits(archive: Path, members: list[Member]) -> None:
    """Refuse archives that would exhaust the disk or that cannot be extracted faithfully:
    too many members or bytes (``limits``), duplicate names (the later one silently wins, or
    a file meets a directory), names longer than the file system takes, hardlinks to members
    that do not come before them."""
    limits.ARCHIVE_MEMBERS.check(str(archive), len(members))
    limits.ARCHIVE_BYTES.check(f"{archive} (extracted)", sum(m.size for m in members))
    seen: set[str] = set()
    for m in members:
        name = posixpath.normpath(m.name.replace("\\", "/")).rstrip("/")
        why = None
        raw = name.encode("utf-8", "surrogateescape")
        if name in ("", "."):
            why = "empty member name"
        elif len(raw) >= _PATH_MAX or any(len(c) > _NAME_MAX for c in raw.split(b"/")):
            why = f"path longer than the file system allows ({_PATH_MAX}, {_NAME_MAX} per name)"
        elif name in seen and m.kind != "dir":
            why = "duplicate member name"
        elif m.kind == "hardlink":
            target = posixpath.normpath(m.link.replace("\\", "/"))
            if target not in seen:
                why = f"hardlink to {m.link!r}, which is not an earlier member"
        if why is not None:
            shown = m.name if len(m.name) <= 80 else m.name[:77] + "..."
            raise SourceError(f"{archive}: refusing archive member {shown!r}: {why}")
        seen.add(name)


def list_members(archive: Path) -> list[Member]:
    """The members of a tar or zip archive (unchecked)."""
    archive = Path(archive)
    try:
        if _archive_kind(archive) == "zip":
            with zipfile.ZipFile(archive) as zf:
                return _zip_members(zf)
        with tarfile.open(archive, "r:*") as tar:
            return _tar_members(tar)
    except UserError:
        raise
    except _READ_ERRORS as exc:
        raise SourceError(f"{archive}: unreadable archive: {_why(exc)}") from None


def _why(exc: BaseException) -> str:
    """An exception as a short one-line reason."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _extract_tar(tar: tarfile.TarFile, archive: Path, into: Path) -> None:
    try:
        tar.extractall(into, filter="data")
    except tarfile.FilterError as exc:
        raise SourceError(f"{archive}: refusing unsafe archive member: {exc}") from None


def _extract_zip(zf: zipfile.ZipFile, members: list[Member], archive: Path, into: Path) -> None:
    root = into.resolve()
    for info, m in zip(zf.infolist(), members, strict=True):
        target = root / posixpath.normpath(m.name.replace("\\", "/"))
        # check_members makes this impossible; assert it anyway before writing.
        if os.path.commonpath([root, target.resolve()]) != str(root):
            raise SourceError(f"{archive}: refusing unsafe archive member {m.name!r}")
        if m.kind == "dir":
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if m.kind == "symlink":
            os.symlink(m.link, target)
            continue
        with zf.open(info) as src, open(target, "wb") as dst:
            _copy_bounded(src, dst, archive, m.name, info.file_size)
        # Keep the executable bits (configure scripts), drop set-id and group/other write.
        target.chmod(0o755 if m.mode & 0o111 else 0o644)


def _copy_bounded(src: object, dst: object, archive: Path, name: str, declared: int) -> None:
    """Copy a member, never writing more than it declared (the total was checked from the
    declared sizes, so a member that lies must not write past them)."""
    left = declared
    while chunk := src.read(min(1 << 20, left + 1)):  # type: ignore[attr-defined]
        left -= len(chunk)
        if left < 0:
            raise SourceError(f"{archive}: member {name!r} is larger than it declares")
        dst.write(chunk)  # type: ignore[attr-defined]


def extract_archive(archive: Path, dest: Path, *, unwrap: bool = True) -> Path:
    """Extract ``archive`` safely so that ``dest`` becomes the source tree root.

    ``dest`` must not exist (or be an empty directory). With ``unwrap``, an archive holding a
    single top-level directory (``pillow-13.0.0/...``) has that directory's contents at ``dest``.
    Returns ``dest``. Every member is checked before anything (even ``dest``'s parent) is
    created, and extraction goes to a temporary directory beside ``dest``, renamed at the end.
    """
    archive, dest = Path(archive), Path(dest)
    kind = _archive_kind(archive)
    try:
        with tarfile.open(archive, "r:*") if kind == "tar" else zipfile.ZipFile(archive) as handle:
            if isinstance(handle, tarfile.TarFile):
                members = _tar_members(handle)
            else:
                members = _zip_members(handle)
            check_members(archive, members, unwrap=unwrap)
            check_limits(archive, members)
            _prepare_dest(dest)
            tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.extract-", dir=dest.parent))
            try:
                if isinstance(handle, tarfile.TarFile):
                    _extract_tar(handle, archive, tmp)
                else:
                    _extract_zip(handle, members, archive, tmp)
                _check_links(archive, _unwrap_top(tmp, unwrap) or tmp)
                _publish(tmp, dest, unwrap)
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp)
    except UserError:
        raise
    except _READ_ERRORS as exc:
        raise SourceError(f"{archive}: unreadable archive: {_why(exc)}") from None
    return dest


def _check_links(archive: Path, tree: Path) -> None:
    """Resolve every extracted symlink on disk and refuse any that leads outside ``tree``.

    The name checks are lexical; a chain (``s/a -> ..``, ``b -> s/a/..``) resolves ``..``
    after following ``s/a``, which only the file system can do. Runs before the tree is
    published, so a refusal leaves nothing at the destination.
    """
    root = tree.resolve()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            if path.is_symlink() and not Path(os.path.realpath(path)).is_relative_to(root):
                rel = path.relative_to(root).as_posix()
                raise SourceError(
                    f"{archive}: refusing unsafe archive member {rel!r}: symlink "
                    f"{os.readlink(path)!r} resolves outside the tree"
                )


def _unwrap_top(tmp: Path, unwrap: bool) -> Path | None:
    """The single top directory of an extraction that becomes the tree, if unwrapping."""
    entries = list(tmp.iterdir())
    top = entries[0] if unwrap and len(entries) == 1 else None
    return top if top is not None and top.is_dir() and not top.is_symlink() else None


def _publish(tmp: Path, dest: Path, unwrap: bool) -> None:
    """Rename the extracted tree (or its single top directory) to ``dest``."""
    entries = list(tmp.iterdir())
    top = _unwrap_top(tmp, unwrap)
    if top is not None:
        _move_into_place(top, dest)
        return
    tree = tmp / (tmp.name + ".tree")  # move the contents, so ``tmp`` itself can be removed
    tree.mkdir()
    for entry in entries:
        os.rename(entry, tree / entry.name)
    _move_into_place(tree, dest)


def _prepare_dest(dest: Path) -> None:
    if dest.is_symlink() or (dest.exists() and (not dest.is_dir() or any(dest.iterdir()))):
        raise SourceError(f"{dest}: destination exists and is not an empty directory")
    dest.parent.mkdir(parents=True, exist_ok=True)


def _move_into_place(src: Path, dest: Path) -> None:
    if dest.is_dir():
        dest.rmdir()  # empty (checked by _prepare_dest); rename needs the name free
    os.rename(src, dest)
