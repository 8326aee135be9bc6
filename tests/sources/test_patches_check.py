"""The CLI: ``patches check``, ``sources fetch`` and ``sources extract`` against sources served over
HTTP on 127.0.0.1, local overrides, error paths (exit 2, one line), and the real Pillow sdist."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from httpserver import (
    LIBFOO,
    LIBFOO_TGZ,
    Server,
    foo_diff,
    foo_hunk,
    make_project,
    make_tar,
    patch_text,
    serve_libfoo,
    sha256,
    validate_json,
)
from pillow_variants.cli import main

REPO = Path(__file__).resolve().parents[2]
OK_1 = patch_text("change f3", foo_diff(foo_hunk(4, "int f3(void) { return 3; }", "int f3;")))
OK_2 = patch_text("change f10", foo_diff(foo_hunk(11, "int f10(void) { return 10; }", "int f10;")))
BAD = patch_text(
    "change f20 and f25 (f25's context is wrong)",
    foo_diff(
        foo_hunk(21, "int f20(void) { return 20; }", "int f20;"),
        foo_hunk(26, "int f25(void) { return 25; }", "int f25;").replace(" 24; }", " 2400; }"),
    ),
)


@pytest.fixture
def srv() -> Iterator[Server]:
    with serve_libfoo() as server:
        yield server


def _project(tmp_path: Path, srv: Server, patches: dict[str, str], **kw: str) -> Path:
    kw.setdefault("libfoo_sha256", sha256(LIBFOO_TGZ))
    return make_project(
        tmp_path / "proj", libfoo_url=srv.url("libfoo-1.0.tar.gz"), patches=patches, **kw
    )


def _run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _one_line_error(err: str) -> str:
    """The CLI's error: the last stderr line, a single ``error: ...`` line, no traceback."""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("error: ") and sum(x.startswith("error: ") for x in lines) == 1
    return lines[-1]


def test_patches_check_all_ok(tmp_path: Path, srv: Server, capsys: pytest.CaptureFixture) -> None:
    recipe = _project(tmp_path, srv, {"0001-f3.patch": OK_1, "0002-f10.patch": OK_2})
    rc, out, _ = _run(capsys, "patches", "check", recipe, "--cache-dir", tmp_path / "c")
    assert rc == 0
    assert "libfoo 1.0  (" + srv.url("libfoo-1.0.tar.gz") + ", sha256 verified)" in out
    assert "  ok       0001-f3.patch  change f3" in out
    assert out.strip().endswith("all 2 patches apply")


def test_patches_check_reports_failure_with_file_and_hunk(
    tmp_path: Path, srv: Server, capsys: pytest.CaptureFixture
) -> None:
    recipe = _project(
        tmp_path, srv, {"0001-f3.patch": OK_1, "0002-bad.patch": BAD, "0003-f10.patch": OK_2}
    )
    rc, out, _ = _run(capsys, "patches", "check", recipe, "--cache-dir", tmp_path / "c")
    assert rc == 1
    assert "  failed   0002-bad.patch  src/foo.c hunk #2 (@@ -24,5 +24,5 @@) does not apply" in out
    assert "  skipped  0003-f10.patch" in out
    assert "2 of 3 patches failed or skipped" in out

    rc, out, _ = _run(capsys, "patches", "check", recipe, "--cache-dir", tmp_path / "c", "--json")
    assert rc == 1
    doc = json.loads(out)
    validate_json(doc, "patches-check.schema.json")
    assert doc["ok"] is False
    (comp,) = doc["components"]
    assert [r["status"] for r in comp["results"]] == ["ok", "failed", "skipped"]
    assert (comp["results"][1]["file"], comp["results"][1]["hunk"]) == ("src/foo.c", 2)
    assert comp["source"]["verified"] is True


def test_patches_check_with_local_sources(
    tmp_path: Path, srv: Server, capsys: pytest.CaptureFixture
) -> None:
    recipe = _project(tmp_path, srv, {"0001-f3.patch": OK_1}, libfoo_sha256="unpinned")
    checkout = tmp_path / "libfoo-checkout"
    for name, text in LIBFOO.items():
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        (checkout / name).write_text(text)
    archive = tmp_path / "libfoo-local.tar.xz"
    archive.write_bytes(make_tar(LIBFOO, mode="w:xz"))

    # A directory (its single top directory is the tree) and an archive: local, unverified.
    for local in (checkout / "libfoo-1.0", archive):
        rc, out, _ = _run(
            capsys, "patches", "check", recipe, "--source", f"libfoo={local}", "--json"
        )
        assert rc == 0
        doc = json.loads(out)
        validate_json(doc, "patches-check.schema.json")
        source = doc["components"][0]["source"]
        assert (source["local"], source["verified"], source["origin"]) == (True, False, str(local))
    assert srv.requests == []  # nothing fetched: the recipe's URL was never used
    rc, out, _ = _run(capsys, "patches", "check", recipe, "--source", f"libfoo={archive}")
    assert f"({archive}, local, unverified)" in out
    assert (checkout / "libfoo-1.0" / "src" / "foo.c").read_text() == LIBFOO[
        "libfoo-1.0/src/foo.c"
    ]  # the user's checkout was not patched


def test_sources_fetch_and_extract(
    tmp_path: Path, srv: Server, capsys: pytest.CaptureFixture
) -> None:
    recipe = _project(tmp_path, srv, {"0001-f3.patch": OK_1})
    cache = tmp_path / "c"
    rc, out, _ = _run(capsys, "sources", "fetch", recipe, "libfoo", "--cache-dir", cache, "--json")
    assert rc == 0
    doc = json.loads(out)
    validate_json(doc, "sources-fetch.schema.json")
    (entry,) = doc["sources"]
    assert entry["path"] == str(cache / "sha256" / sha256(LIBFOO_TGZ) / "libfoo-1.0.tar.gz")
    assert (entry["sha256"], entry["kind"], entry["verified"]) == (sha256(LIBFOO_TGZ), "url", True)

    rc, out, _ = _run(capsys, "sources", "fetch", recipe, "libfoo", "--cache-dir", cache)
    assert rc == 0 and "sha256 verified" in out and f"sha256 {sha256(LIBFOO_TGZ)}" in out

    dest = tmp_path / "out" / "libfoo"
    rc, out, _ = _run(
        capsys, "sources", "extract", recipe, "libfoo", dest, "--patched", "--cache-dir", cache
    )
    assert rc == 0 and out.startswith(str(dest))
    assert "int f3;\n" in (dest / "src" / "foo.c").read_text()
    plain = tmp_path / "out" / "plain"
    rc, out, _ = _run(capsys, "sources", "extract", recipe, "libfoo", plain, "--cache-dir", cache)
    assert (plain / "src" / "foo.c").read_text() == LIBFOO["libfoo-1.0/src/foo.c"]
    assert srv.requests == ["libfoo-1.0.tar.gz"]  # everything after the first fetch: the cache


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["patches", "check", "{proj}/recipes/nope.toml"], "recipe file not found"),
        (["patches", "check", "{recipe}", "--source", "libfoo"], "expected NAME=PATH"),
        (["patches", "check", "{recipe}", "--source", "libbar={tmp}"], "no such component"),
        (["patches", "check", "{recipe}", "--only", "libbar"], "--only libbar: no such component"),
        (["patches", "check", "{recipe}", "--only", "pillow"], "has no patch set for pillow"),
        (["sources", "fetch", "{recipe}", "libbar"], "no component 'libbar'"),
        (["sources", "fetch", "{recipe}", "pillow"], "--allow-unpinned"),
        (["sources", "extract", "{recipe}", "libfoo", "{proj}"], "not an empty directory"),
        (
            ["sources", "extract", "{recipe}", "libfoo", "{tmp}/bad-tree", "--patched"],
            "patch 0002-bad.patch: src/foo.c hunk #2",
        ),
    ],
)
def test_cli_errors_exit_2_with_one_line(
    tmp_path: Path,
    srv: Server,
    capsys: pytest.CaptureFixture,
    argv: list[str],
    expected: str,
) -> None:
    recipe = _project(tmp_path, srv, {"0001-f3.patch": OK_1, "0002-bad.patch": BAD})
    fill = {"recipe": recipe, "proj": tmp_path / "proj", "tmp": tmp_path}
    args = [a.format(**fill) for a in argv] + ["--cache-dir", str(tmp_path / "c")]
    rc, out, err = _run(capsys, *args)
    assert rc == 2 and out == ""
    assert expected in _one_line_error(err)
    assert not (tmp_path / "bad-tree").exists()  # a failed --patched extract leaves no tree


def test_404_exits_2_naming_url_and_source_flag(
    tmp_path: Path, srv: Server, capsys: pytest.CaptureFixture
) -> None:
    del srv.files["libfoo-1.0.tar.gz"]
    recipe = _project(tmp_path, srv, {"0001-f3.patch": OK_1})
    rc, out, err = _run(capsys, "patches", "check", recipe, "--cache-dir", tmp_path / "c")
    assert rc == 2 and out == ""
    assert _one_line_error(err) == (
        f"error: could not fetch {srv.url('libfoo-1.0.tar.gz')} (HTTP 404 Not Found); "
        "provide it with --source libfoo=PATH (a directory or archive)"
    )


# --------------------------------------------------------------------------------------------
# The real Pillow 13.0.0 sdist, fetched with pip from the configured index.

DISPLAY_OK = patch_text(
    "Mark src/display.c as patched",
    """diff --git a/src/display.c b/src/display.c
--- a/src/display.c
+++ b/src/display.c
@@ -2,5 +2,5 @@
  * The Python Imaging Library.
  *
- * display support (and other windows-related stuff)
+ * display support (and other windows-related stuff), patched by a pillow-variants test
  *
  * History:
""",
)
DISPLAY_BAD = patch_text(
    "Touch display_setup (second hunk's context is not in 13.0.0)",
    """diff --git a/src/display.c b/src/display.c
--- a/src/display.c
+++ b/src/display.c
@@ -37,3 +37,3 @@
 #if SIZEOF_VOID_P == 8
-#define F_HANDLE "K"
+#define F_HANDLE "K" /* patched */
 #else
@@ -49,4 +49,4 @@
 int
-display_setup(void) {
+display_setup(void) { /* patched */
     if (PyType_Ready(&ImagingDisplayTypeThatDoesNotExist) < 0) {
         return -1;
""",
)


@pytest.mark.network
def test_real_pillow_sdist_patch_check(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    proj = tmp_path / "proj"
    shutil.copytree(REPO / "recipes", proj / "recipes")
    pdir = proj / "patches" / "pillow" / "13.0.0"
    pdir.mkdir(parents=True)
    (pdir / "0001-display-comment.patch").write_text(DISPLAY_OK)
    (pdir / "0002-display-stale.patch").write_text(DISPLAY_BAD)
    for name, files in {
        "good": ["0001-display-comment.patch"],
        "bad": sorted(p.name for p in pdir.iterdir()),
    }.items():
        listed = ", ".join(f'"{f}"' for f in files)
        (proj / "recipes" / f"{name}.toml").write_text(
            f'[recipe]\ninherits = "upstream.toml"\n\n[patches]\npillow = [{listed}]\n'
        )
    cache = tmp_path / "cache"
    upstream_sha = "cdcd1ba258178f7356d74170c9a81ba4eab6a5d55748bc402a5a2a6fe6be3510"

    good = proj / "recipes" / "good.toml"
    rc, out, err = _run(capsys, "patches", "check", good, "--cache-dir", cache, "--json")
    assert rc == 0, err
    doc = json.loads(out)
    validate_json(doc, "patches-check.schema.json")
    (comp,) = doc["components"]
    assert comp["source"] == {
        "component": "pillow",
        "version": "13.0.0",
        "kind": "pip",
        "origin": "pillow==13.0.0",
        "sha256": upstream_sha,
        "local": False,
        "verified": True,
        "note": "sha256 verified against the recipe",
    }
    assert [r["status"] for r in comp["results"]] == ["ok"]
    assert (cache / "sha256" / upstream_sha / "pillow-13.0.0.tar.gz").is_file()

    bad = proj / "recipes" / "bad.toml"
    rc, out, _ = _run(capsys, "patches", "check", bad, "--cache-dir", cache, "--only", "pillow")
    assert rc == 1
    assert "  ok       0001-display-comment.patch" in out
    assert "  failed   0002-display-stale.patch  src/display.c hunk #2 (@@ -49,4 +49,4 @@)" in out

    dest = tmp_path / "pillow-src"
    rc, out, _ = _run(
        capsys, "sources", "extract", good, "pillow", dest, "--patched", "--cache-dir", cache
    )
    assert rc == 0
    assert "patched by a pillow-variants test" in (dest / "src" / "display.c").read_text()
    assert (dest / "PKG-INFO").is_file()
