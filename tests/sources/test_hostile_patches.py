"""Patching never runs commands from git configuration: a source tree that is (or points to) a
git repository with a filter named by its ``.gitattributes``, a filter in the user's global
config or in ``GIT_CONFIG_PARAMETERS`` must not run while ``git apply`` patches the tree.

The trees come in as ``--source`` directory overrides (copied, ``.git`` included), which is how
a user's own checkout reaches the patcher; archives with ``.git`` are refused earlier (see
test_hostile_archives.py). Each case was seen to create the marker with the old environment.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from httpserver import F3_PATCH, LIBFOO, make_project
from pillow_variants.cli import main
from pillow_variants.sources.patches import choose_tool

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def _filter(marker: Path) -> str:
    return (
        f'[filter "evil"]\n\tclean = "touch {marker}-clean; cat"\n'
        f'\tsmudge = "touch {marker}-smudge; cat"\n'
    )


def _repo(git_dir: Path, extra_config: str = "") -> None:
    """A minimal repository git recognises (HEAD, objects/, refs/, config)."""
    (git_dir / "objects").mkdir(parents=True)
    (git_dir / "refs").mkdir()
    (git_dir / "HEAD").write_text("ref: refs/heads/main\n")
    (git_dir / "config").write_text(
        "[core]\n\trepositoryformatversion = 0\n\tbare = false\n" + extra_config
    )


def _tree(tmp_path: Path, where: str, marker: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """libfoo's files plus ``.gitattributes`` and a filter defined ``where``."""
    tree = tmp_path / "libfoo-src"
    for name, text in LIBFOO.items():
        path = tree / name.split("/", 1)[1]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (tree / ".gitattributes").write_text("* filter=evil\n")
    if where == "tree config":
        _repo(tree / ".git", _filter(marker))
    elif where == "gitfile to a repository outside":
        _repo(tmp_path / "elsewhere.git", _filter(marker))
        (tree / ".git").write_text(f"gitdir: {tmp_path / 'elsewhere.git'}\n")
    elif where == "global config":
        _repo(tree / ".git")
        home = tmp_path / "home"
        home.mkdir()
        (home / ".gitconfig").write_text(_filter(marker))
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
        monkeypatch.delenv("GIT_CONFIG_GLOBAL", raising=False)
    elif where == "GIT_CONFIG_PARAMETERS":
        _repo(tree / ".git")
        value = f"'filter.evil.clean'='touch {marker}-clean; cat'"
        monkeypatch.setenv("GIT_CONFIG_PARAMETERS", value)
    return tree


WHERE = ["tree config", "gitfile to a repository outside", "global config", "GIT_CONFIG_PARAMETERS"]


@pytest.mark.parametrize("where", WHERE)
def test_patches_check_runs_no_git_filter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    assert choose_tool() == "git"
    marker = tmp_path / "marker"
    tree = _tree(tmp_path, where, marker, monkeypatch)
    recipe = make_project(
        tmp_path / "proj",
        libfoo_url="http://127.0.0.1:9/libfoo-1.0.tar.gz",
        libfoo_sha256="0" * 64,
        patches={"0001-f3.patch": F3_PATCH},
    )
    argv = ["patches", "check", str(recipe), "--source", f"libfoo={tree}"]
    argv += ["--cache-dir", str(tmp_path / "cache")]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "ok       0001-f3.patch" in captured.out and "Traceback" not in captured.err
    assert not list(tmp_path.glob("marker*"))


def test_extract_patched_runs_no_git_filter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "marker"
    tree = _tree(tmp_path, "tree config", marker, monkeypatch)
    recipe = make_project(
        tmp_path / "proj",
        libfoo_url="http://127.0.0.1:9/libfoo-1.0.tar.gz",
        libfoo_sha256="0" * 64,
        patches={"0001-f3.patch": F3_PATCH},
    )
    dest = tmp_path / "out"
    argv = ["sources", "extract", str(recipe), "libfoo", str(dest), "--patched"]
    assert main([*argv, "--source", f"libfoo={tree}"]) == 0
    assert "Traceback" not in capsys.readouterr().err
    assert "return 33;" in (dest / "src" / "foo.c").read_text()
    assert not list(tmp_path.glob("marker*"))
