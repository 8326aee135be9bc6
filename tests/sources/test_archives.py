"""Safe extraction: good archives extract with modes and in-tree links; hostile ones are refused
before anything is written, and nothing ever lands outside the destination."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from httpserver import files_in, make_tar, make_zip, snapshot
from pillow_variants.errors import SourceError
from pillow_variants.sources.archives import extract_archive, list_members, looks_like_archive

GOOD = {
    "pkg-1.0/README": "hello\n",
    "pkg-1.0/src/a.c": "int a;\n",
    "pkg-1.0/configure": "#!/bin/sh\n",
}


@pytest.mark.parametrize("mode", ["w:gz", "w:xz", "w:bz2", "w"])
def test_tar_formats_extract_and_unwrap(tmp_path: Path, mode: str) -> None:
    archive = tmp_path / "pkg.archive"
    archive.write_bytes(make_tar(GOOD, mode=mode, exec_=("pkg-1.0/configure",)))
    dest = extract_archive(archive, tmp_path / "out" / "tree")
    assert dest == tmp_path / "out" / "tree"
    assert (dest / "src" / "a.c").read_text() == "int a;\n"
    assert (dest / "configure").stat().st_mode & 0o111
    assert not (dest / "README").stat().st_mode & 0o111
    # Only the tree is left: the temporary extraction directory is gone.
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["tree"]


def test_zip_extracts_with_exec_bits_and_inner_symlink(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("pkg-1.0/src/a.c", "int a;\n")
        info = zipfile.ZipInfo("pkg-1.0/configure")
        info.external_attr = (stat.S_IFREG | 0o755) << 16
        zf.writestr(info, "#!/bin/sh\n")
        link = zipfile.ZipInfo("pkg-1.0/a-link.c")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "src/a.c")
    archive = tmp_path / "pkg.zip"
    archive.write_bytes(buf.getvalue())
    dest = extract_archive(archive, tmp_path / "tree")
    assert (dest / "configure").stat().st_mode & 0o111
    assert (dest / "a-link.c").is_symlink()
    assert (dest / "a-link.c").read_text() == "int a;\n"


def test_tar_inner_symlink_is_kept(tmp_path: Path) -> None:
    archive = tmp_path / "p.tar.gz"
    archive.write_bytes(_tar_with(_member("pkg/sub/link", tarfile.SYMTYPE, "../ok.txt")))
    dest = extract_archive(archive, tmp_path / "tree")
    assert (dest / "sub" / "link").is_symlink()
    assert (dest / "sub" / "link").read_text() == "fine\n"


def test_several_top_level_entries_are_not_unwrapped(tmp_path: Path) -> None:
    archive = tmp_path / "flat.tar.gz"
    archive.write_bytes(make_tar({"a.txt": "a", "b/c.txt": "c"}))
    dest = extract_archive(archive, tmp_path / "tree")
    assert sorted(p.name for p in dest.iterdir()) == ["a.txt", "b"]
    assert stat.S_IMODE(dest.stat().st_mode) == 0o755


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


def _tar_with(*members: tarfile.TarInfo) -> bytes:
    """A tar of a harmless ``pkg/ok.txt`` followed by ``members`` (regular ones get content)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        ok = b"fine\n"
        first = tarfile.TarInfo("pkg/ok.txt")
        first.size = len(ok)
        tar.addfile(first, io.BytesIO(ok))
        for m in members:
            data = b"evil\n" if m.type == tarfile.REGTYPE else b""
            m.size = len(data)
            tar.addfile(m, io.BytesIO(data))
    return buf.getvalue()


HOSTILE_TARS: dict[str, tuple[Callable[[Path], list[tarfile.TarInfo]], str]] = {
    "dotdot": (lambda out: [_member("pkg/../../evil.txt")], "'..' in path"),
    "absolute": (lambda out: [_member(str(out / "evil.txt"))], "absolute path"),
    "symlink-out": (
        lambda out: [_member("pkg/link", tarfile.SYMTYPE, "../../outside")],
        "leaves the tree",
    ),
    "symlink-absolute": (
        lambda out: [_member("pkg/link", tarfile.SYMTYPE, str(out))],
        "symlink to absolute path",
    ),
    "write-through-symlink": (
        lambda out: [_member("pkg/link", tarfile.SYMTYPE, "."), _member("pkg/link/evil.txt")],
        "goes through the symlink",
    ),
    "hardlink-out": (
        lambda out: [_member("pkg/hard", tarfile.LNKTYPE, "../../etc/passwd")],
        "hardlink",
    ),
    "hardlink-absolute": (
        lambda out: [_member("pkg/hard", tarfile.LNKTYPE, "/etc/passwd")],
        "hardlink",
    ),
    "char-device": (lambda out: [_member("pkg/null", tarfile.CHRTYPE)], "device"),
    "block-device": (lambda out: [_member("pkg/sda", tarfile.BLKTYPE)], "device"),
    "fifo": (lambda out: [_member("pkg/fifo", tarfile.FIFOTYPE)], "device"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_TARS))
def test_hostile_tar_is_refused_and_nothing_written(tmp_path: Path, case: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    work = tmp_path / "work"
    work.mkdir()
    members, why = HOSTILE_TARS[case]
    archive = tmp_path / "hostile.tar.gz"
    archive.write_bytes(_tar_with(*members(outside)))
    before = snapshot(tmp_path)

    with pytest.raises(SourceError, match="refusing unsafe archive member") as exc:
        extract_archive(archive, work / "a" / "b" / "tree")
    assert why in str(exc.value)
    assert snapshot(tmp_path) == before  # not the tree, not the temp dir, nothing outside


HOSTILE_ZIPS = {
    "dotdot": ("pkg/../../evil.txt", "'..' in path"),
    "absolute": ("/tmp/pv-evil.txt", "absolute path"),
    "drive": ("C:/evil.txt", "absolute path"),
    "backslash-dotdot": ("pkg\\..\\..\\evil.txt", "'..' in path"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_ZIPS))
def test_hostile_zip_is_refused_and_nothing_written(tmp_path: Path, case: str) -> None:
    name, why = HOSTILE_ZIPS[case]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("pkg/ok.txt", "fine")
        # ZipInfo keeps the name as given (writestr(str) would normalise some of it away).
        zf.writestr(zipfile.ZipInfo(name), "evil")
    archive = tmp_path / "hostile.zip"
    archive.write_bytes(buf.getvalue())
    (tmp_path / "work").mkdir()
    before = snapshot(tmp_path)

    with pytest.raises(SourceError, match="refusing unsafe archive member") as exc:
        extract_archive(archive, tmp_path / "work" / "tree")
    assert why in str(exc.value)
    assert snapshot(tmp_path) == before
    assert not Path("/tmp/pv-evil.txt").exists()


def test_zip_symlink_leaving_the_tree_is_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        link = zipfile.ZipInfo("pkg/link")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "../../outside")
    archive = tmp_path / "link.zip"
    archive.write_bytes(buf.getvalue())
    with pytest.raises(SourceError, match="leaves the tree"):
        extract_archive(archive, tmp_path / "tree")
    assert files_in(tmp_path) == [archive]


def test_not_an_archive(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"this is not an archive at all")
    assert not looks_like_archive(junk)
    with pytest.raises(SourceError, match="not a tar or zip archive"):
        extract_archive(junk, tmp_path / "tree")
    assert not (tmp_path / "tree").exists()


def test_truncated_archive_leaves_nothing(tmp_path: Path) -> None:
    data = make_tar({f"pkg/f{i}": bytes(range(256)) * 400 for i in range(20)}, mode="w")
    archive = tmp_path / "cut.tar"
    archive.write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError, match="unreadable archive"):
        extract_archive(archive, tmp_path / "tree")
    assert files_in(tmp_path) == [archive]


def test_destination_must_be_empty(tmp_path: Path) -> None:
    archive = tmp_path / "pkg.zip"
    archive.write_bytes(make_zip(GOOD))
    dest = tmp_path / "tree"
    dest.mkdir()
    (dest / "old.txt").write_text("old")
    with pytest.raises(SourceError, match="not an empty directory"):
        extract_archive(archive, dest)
    assert [p.name for p in dest.iterdir()] == ["old.txt"]
    (dest / "old.txt").unlink()
    assert (extract_archive(archive, dest) / "README").read_text() == "hello\n"


def test_list_members_kinds(tmp_path: Path) -> None:
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(_tar_with(_member("pkg/l", tarfile.SYMTYPE, "ok.txt")))
    kinds = {m.name: (m.kind, m.link) for m in list_members(archive)}
    assert kinds == {"pkg/ok.txt": ("file", ""), "pkg/l": ("symlink", "ok.txt")}
