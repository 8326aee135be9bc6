"""Hostile source archives through ``sources extract``: links that leave the tree once the top
directory is unwrapped (directly or through a chain of links), and git metadata whose config
would run commands. Each is refused with one ``error:`` line, exit 2, and nothing is written:
no destination, no marker file, no link pointing outside."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from httpserver import F3_PATCH, LIBFOO, make_project, one_error_line, snapshot
from pillow_variants.cli import main
from pillow_variants.errors import SourceError
from pillow_variants.sources.archives import extract_archive


def _tar(entries: list[tuple[str, str, str]]) -> bytes:
    """(name, kind, content-or-link-target) → a .tar.gz; kind is file, dir or link."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, kind, value in entries:
            info = tarfile.TarInfo(name)
            if kind == "link":
                info.type, info.linkname = tarfile.SYMTYPE, value
                tar.addfile(info)
            elif kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                data = value.encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _zip(entries: list[tuple[str, str, str]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, kind, value in entries:
            info = zipfile.ZipInfo(name)
            if kind == "link":
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            elif kind == "dir":
                info.external_attr = (stat.S_IFDIR | 0o755) << 16
                zf.writestr(info, "")
                continue
            zf.writestr(info, value)
    return buf.getvalue()


LIBFOO_FILES = [(name, "file", text) for name, text in LIBFOO.items()]

# Links that stay inside the archive but leave the tree once libfoo-1.0/ is unwrapped, or that
# only leave it when resolved through another link (a lexical check cannot see those).
ESCAPES = {
    "up-after-unwrap": [("libfoo-1.0/up", "link", "..")],
    "chain-after-unwrap": [
        ("libfoo-1.0/a", "link", "."),
        ("libfoo-1.0/b", "link", "a/../.."),
    ],
    "chain-inside-unwrapped-dir": [
        ("libfoo-1.0/s/a", "link", ".."),
        ("libfoo-1.0/b", "link", "s/a/.."),
    ],
}


def _cli_extract(tmp_path: Path, archive: Path, *extra: str) -> tuple[int, Path]:
    recipe = make_project(
        tmp_path / "proj",
        libfoo_url="http://127.0.0.1:9/libfoo-1.0.tar.gz",
        libfoo_sha256="0" * 64,
        patches={"0001-f3.patch": F3_PATCH},
    )
    dest = tmp_path / "out" / "tree"
    argv = ["sources", "extract", str(recipe), "libfoo", str(dest), "--source"]
    argv += [f"libfoo={archive}", *extra]
    return main(argv), dest


@pytest.mark.parametrize("fmt", ["tar", "zip"])
@pytest.mark.parametrize("case", sorted(ESCAPES))
def test_links_leaving_the_unwrapped_tree_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str, case: str
) -> None:
    entries = LIBFOO_FILES + ESCAPES[case]
    archive = tmp_path / f"libfoo.{'tar.gz' if fmt == 'tar' else 'zip'}"
    archive.write_bytes(_tar(entries) if fmt == "tar" else _zip(entries))
    code, dest = _cli_extract(tmp_path, archive)
    assert code == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"{archive}: refusing unsafe archive member 'libfoo-1.0/" in line or (
        f"{archive}: refusing unsafe archive member '" in line and "resolves outside" in line
    )
    assert not dest.exists()
    out = tmp_path / "out"
    assert not out.exists() or list(out.iterdir()) == []  # no temporary left either


def test_chain_without_unwrapping_is_caught_on_disk(tmp_path: Path) -> None:
    """Two top-level entries (no unwrap): ``b -> s/a/..`` looks like ``s`` lexically but
    resolves to the parent of the tree; zip extraction is ours, so only the on-disk check
    can catch it."""
    archive = tmp_path / "two.zip"
    entries = [("README", "file", "x\n"), ("s/a", "link", ".."), ("b", "link", "s/a/..")]
    archive.write_bytes(_zip(entries))
    (tmp_path / "work").mkdir()
    before = snapshot(tmp_path)
    with pytest.raises(SourceError, match=r"'b': symlink 's/a/\.\.' resolves outside the tree"):
        extract_archive(archive, tmp_path / "work" / "tree")
    assert snapshot(tmp_path) == before


def test_links_inside_the_unwrapped_tree_still_extract(tmp_path: Path) -> None:
    entries = LIBFOO_FILES + [
        ("libfoo-1.0/s/a", "link", "../src"),
        ("libfoo-1.0/b", "link", "s/a/foo.c"),
        ("libfoo-1.0/here", "link", "."),
    ]
    for fmt, data in (("tar.gz", _tar(entries)), ("zip", _zip(entries))):
        archive = tmp_path / f"ok.{fmt}"
        archive.write_bytes(data)
        dest = extract_archive(archive, tmp_path / f"tree-{fmt}")
        assert (dest / "b").read_text() == LIBFOO["libfoo-1.0/src/foo.c"]
        assert (dest / "here").resolve() == dest.resolve()


def _hostile_git_entries(marker: Path, top: str = "libfoo-1.0") -> list[tuple[str, str, str]]:
    config = (
        "[core]\n\trepositoryformatversion = 0\n\tbare = false\n"
        f"\tfsmonitor = touch {marker}-fsmonitor\n"
        f'[filter "evil"]\n\tclean = "touch {marker}-clean; cat"\n'
        f'\tsmudge = "touch {marker}-smudge; cat"\n'
    )
    return [
        (f"{top}/.git/HEAD", "file", "ref: refs/heads/main\n"),
        (f"{top}/.git/config", "file", config),
        (f"{top}/.git/objects", "dir", ""),
        (f"{top}/.git/refs", "dir", ""),
        (f"{top}/.gitattributes", "file", "* filter=evil\n"),
    ]


@pytest.mark.parametrize("fmt", ["tar", "zip"])
def test_archive_with_a_git_repository_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    """The old code extracted it and ``git apply`` ran the filter while patching."""
    marker = tmp_path / "marker"
    entries = LIBFOO_FILES + _hostile_git_entries(marker)
    archive = tmp_path / f"libfoo.{'tar.gz' if fmt == 'tar' else 'zip'}"
    archive.write_bytes(_tar(entries) if fmt == "tar" else _zip(entries))
    code, dest = _cli_extract(tmp_path, archive, "--patched")
    assert code == 2
    line = one_error_line(capsys.readouterr().err)
    assert "refusing unsafe archive member 'libfoo-1.0/.git/" in line and "git metadata" in line
    assert not dest.exists() and not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["proj", archive.name])  # no marker


@pytest.mark.parametrize("name", ["pkg/.GIT/config", "pkg/sub/.git", ".git/config"])
def test_git_metadata_anywhere_in_any_case_is_refused(tmp_path: Path, name: str) -> None:
    archive = tmp_path / "g.tar.gz"
    archive.write_bytes(_tar([("pkg/README", "file", "x\n"), (name, "file", "x\n")]))
    with pytest.raises(SourceError, match="git metadata"):
        extract_archive(archive, tmp_path / "tree")
    assert not (tmp_path / "tree").exists()
