"""Patch sets: headers, ordered application with git apply (and GNU patch), atomicity."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from httpserver import LIBFOO, foo_diff, foo_hunk, patch_text, snapshot
from pillow_variants.errors import PatchError
from pillow_variants.sources.patches import (
    apply_patch_set,
    check_patch_set,
    parse_hunks,
    read_patch,
)

# git apply is the tool; GNU patch the fallback. Both must be installed (CI installs them).
TOOLS = ["git", "patch"]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """libfoo's tree with an executable script, a private file and a symlink (modes matter)."""
    root = tmp_path / "work" / "libfoo"
    for name, text in LIBFOO.items():
        path = root / name.split("/", 1)[1]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "configure").chmod(0o755)
    (root / "src" / "private.h").write_text("#define P 1\n")
    (root / "src" / "private.h").chmod(0o600)
    (root / "foo-link.c").symlink_to("src/foo.c")
    return root


def _write(dirpath: Path, name: str, text: str) -> Path:
    dirpath.mkdir(parents=True, exist_ok=True)
    (dirpath / name).write_text(text)
    return dirpath / name


GOOD_1 = patch_text("change f3", foo_diff(foo_hunk(4, "int f3(void) { return 3; }", "int f3;")))
GOOD_2 = patch_text(
    "change f10 and f30 (on top of the first patch's file)",
    foo_diff(
        foo_hunk(11, "int f10(void) { return 10; }", "int f10;"),
        foo_hunk(31, "int f30(void) { return 30; }", "int f30;"),
    ),
)
NEW_FILE = patch_text(
    "add a header",
    "diff --git a/src/new.h b/src/new.h\nnew file mode 100644\n--- /dev/null\n+++ b/src/new.h\n"
    "@@ -0,0 +1 @@\n+#define NEW 1\n",
)
# Second hunk of this patch does not match the tree (the first one does).
BAD_HUNK_2 = patch_text(
    "change f20 and a line that is not there",
    foo_diff(
        foo_hunk(21, "int f20(void) { return 20; }", "int f20;"),
        foo_hunk(26, "int f25(void) { return 2500; }", "int f25;").replace(
            "-int f25(void) { return 25; }", "-int f25(void) { return 2500; }"
        ),
    ),
)


def test_read_patch_header(tmp_path: Path) -> None:
    p = read_patch(_write(tmp_path, "0001-x.patch", GOOD_1))
    assert p.summary == "change f3"
    assert p.removes == "nothing (test patch)"
    assert p.reason == "the tests need a patch whose effect they can check, written over two lines."
    assert p.upstream == "not applicable"
    assert len(p.sha256) == 64 and p.name == "0001-x.patch"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD_1.replace("Upstream: not applicable\n", ""), "missing Upstream:"),
        (GOOD_1.replace("Why:", "Reason:"), "missing Why:"),
        (GOOD_1.replace("Subject: change f3\n", ""), "missing Subject:"),
        ("From 0123abc Mon Sep 17 00:00:00 2001\n" + GOOD_1, "must start with 'Subject:'"),
        ("Subject: a\nSubject: b\n" + GOOD_1, "given twice"),
        (GOOD_1.split("diff --git")[0], "no diff found"),
    ],
)
def test_read_patch_rejects_bad_headers(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(PatchError, match=message):
        read_patch(_write(tmp_path, "0001-x.patch", text))


def test_parse_hunks_numbers_hunks_per_file() -> None:
    hunks = parse_hunks(GOOD_2 + NEW_FILE)
    assert [(h.file, h.number, h.old_start) for h in hunks] == [
        ("src/foo.c", 1, 9),
        ("src/foo.c", 2, 29),
        ("src/new.h", 1, 0),
    ]
    assert hunks[1].header == "@@ -29,5 +29,5 @@"


@pytest.mark.parametrize("tool", TOOLS)
def test_patch_set_applies_in_order(tree: Path, tmp_path: Path, tool: str) -> None:
    pdir = tmp_path / "patches"
    files = [
        _write(pdir, "0001-f3.patch", GOOD_1),
        _write(pdir, "0002-f10-f30.patch", GOOD_2),
        _write(pdir, "0003-new.patch", NEW_FILE),
    ]
    applied = apply_patch_set(tree, files, tool=tool)  # type: ignore[arg-type]
    assert [p.name for p in applied] == [f.name for f in files]
    text = (tree / "src" / "foo.c").read_text()
    assert "int f3;\n" in text and "int f10;\n" in text and "int f30;\n" in text
    assert (tree / "src" / "new.h").read_text() == "#define NEW 1\n"
    assert os.access(tree / "configure", os.X_OK)  # modes survive the copy-and-swap
    assert (tree / "foo-link.c").is_symlink()
    assert [p.name for p in tree.parent.iterdir()] == ["libfoo"]  # no work dirs left


@pytest.mark.parametrize("tool", TOOLS)
def test_failing_patch_in_the_middle_leaves_tree_byte_identical(
    tree: Path, tmp_path: Path, tool: str
) -> None:
    pdir = tmp_path / "patches"
    files = [
        _write(pdir, "0001-f3.patch", GOOD_1),
        _write(pdir, "0002-bad.patch", BAD_HUNK_2),
        _write(pdir, "0003-new.patch", NEW_FILE),
    ]
    before = snapshot(tree.parent)
    with pytest.raises(PatchError) as exc:
        apply_patch_set(tree, files, tool=tool)  # type: ignore[arg-type]
    assert snapshot(tree.parent) == before  # contents, modes, links; no leftovers
    msg = str(exc.value)
    assert msg.startswith("patch 0002-bad.patch: src/foo.c hunk #2 (@@ -24,5 +24,5 @@)")
    assert "the tree was left unchanged" in msg and "\n" not in msg


def test_check_patch_set_reports_each_patch(tree: Path, tmp_path: Path) -> None:
    pdir = tmp_path / "patches"
    files = [
        _write(pdir, "0001-f3.patch", GOOD_1),
        _write(pdir, "0002-bad.patch", BAD_HUNK_2),
        _write(pdir, "0003-new.patch", NEW_FILE),
    ]
    results = check_patch_set(tree, files)
    assert [r.status for r in results] == ["ok", "failed", "skipped"]
    bad = results[1].to_dict()
    assert (bad["file"], bad["hunk"], bad["hunk_header"], bad["line"]) == (
        "src/foo.c",
        2,
        "@@ -24,5 +24,5 @@",
        24,
    )
    assert results[0].to_dict()["summary"] == "change f3"


def test_missing_file_is_named(tree: Path, tmp_path: Path) -> None:
    text = GOOD_1.replace("src/foo.c", "src/gone.c")
    (result,) = check_patch_set(tree, [_write(tmp_path, "0001-gone.patch", text)])
    assert result.status == "failed" and result.file == "src/gone.c"
    assert "No such file" in result.describe()


def test_patch_cannot_write_outside_the_tree(tree: Path, tmp_path: Path) -> None:
    evil = patch_text(
        "escape",
        "--- a/../../escaped.txt\n+++ b/../../escaped.txt\n@@ -0,0 +1 @@\n+gotcha\n",
    )
    before = snapshot(tmp_path)
    with pytest.raises(PatchError, match="0001-evil.patch"):
        apply_patch_set(tree, [_write(tmp_path / "p", "0001-evil.patch", evil)])
    after = snapshot(tmp_path)
    after.pop("p"), after.pop("p/0001-evil.patch")
    assert after == before
    assert not list(tmp_path.parent.glob("escaped.txt"))


def test_tree_inside_a_git_repository_is_patched_as_a_directory(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    target = repo / "build" / "libfoo"
    (target / "src").mkdir(parents=True)
    (target / "src" / "foo.c").write_text(LIBFOO["libfoo-1.0/src/foo.c"])
    apply_patch_set(target, [_write(tmp_path / "p", "0001-f3.patch", GOOD_1)])
    assert "int f3;\n" in (target / "src" / "foo.c").read_text()
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True, check=True
    )
    assert status.stdout == "?? build/\n"  # nothing was staged in the surrounding repository


def test_empty_patch_set_is_a_no_op(tree: Path) -> None:
    before = snapshot(tree)
    assert apply_patch_set(tree, []) == []
    assert snapshot(tree) == before


def test_bad_header_fails_before_touching_anything(tree: Path, tmp_path: Path) -> None:
    before = snapshot(tree.parent)
    with pytest.raises(PatchError, match="missing Why:"):
        apply_patch_set(tree, [_write(tmp_path, "0001-x.patch", GOOD_1.replace("Why:", "W:"))])
    assert snapshot(tree.parent) == before
