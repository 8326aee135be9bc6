"""Sources: fetched over real HTTP from 127.0.0.1 (and through pip from a local find-links
directory), verified before they enter the cache, with clear offline errors and overrides."""

from __future__ import annotations

import io
import os
import socket
import tarfile
from collections.abc import Iterator
from pathlib import Path

import platformdirs
import pytest

from httpserver import (
    LIBFOO,
    LIBFOO_TGZ,
    Server,
    files_in,
    make_project,
    make_zip,
    serve_libfoo,
    sha256,
)
from pillow_variants.errors import SourceError
from pillow_variants.recipe.model import Recipe, load_recipe
from pillow_variants.sources.fetch import (
    CACHE_ENV,
    PROGRESS_THRESHOLD,
    check_overrides,
    default_cache_dir,
    extract_source,
    fetch_source,
    parse_source_overrides,
    pip_download_command,
)


@pytest.fixture
def srv() -> Iterator[Server]:
    with serve_libfoo() as server:
        yield server


def _recipe(tmp_path: Path, url: str, digest: str, **kw: str) -> Recipe:
    return load_recipe(make_project(tmp_path / "proj", libfoo_url=url, libfoo_sha256=digest, **kw))


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv(CACHE_ENV)
    assert default_cache_dir() == platformdirs.user_cache_path("pillow-variants")


def test_fetch_over_http_verifies_and_caches(tmp_path: Path, srv: Server) -> None:
    cache = tmp_path / "cache"
    url = srv.url("libfoo-1.0.tar.gz")
    recipe = _recipe(tmp_path, url, sha256(LIBFOO_TGZ))
    got = fetch_source(recipe, "libfoo", cache_dir=cache)
    assert got.path == cache / "sha256" / sha256(LIBFOO_TGZ) / "libfoo-1.0.tar.gz"
    assert got.path.read_bytes() == LIBFOO_TGZ
    assert (got.sha256, got.local, got.verified) == (sha256(LIBFOO_TGZ), False, True)
    assert got.manifest_entry() == {
        "component": "libfoo",
        "version": "1.0",
        "kind": "url",
        "origin": url,
        "sha256": sha256(LIBFOO_TGZ),
        "local": False,
        "verified": True,
        "note": "sha256 verified against the recipe",
    }
    assert files_in(cache) == [got.path]  # no temp files left beside the entry
    # A second fetch is a cache hit: no request reaches the server.
    assert fetch_source(recipe, "libfoo", cache_dir=cache) == got
    assert srv.requests == ["libfoo-1.0.tar.gz"]

    tree = extract_source(got, tmp_path / "tree")
    assert (tree / "src" / "foo.c").read_text() == LIBFOO["libfoo-1.0/src/foo.c"]
    assert os.access(tree / "configure", os.X_OK)


def test_hash_mismatch_leaves_nothing_in_the_cache(tmp_path: Path, srv: Server) -> None:
    cache = tmp_path / "cache"
    recipe = _recipe(tmp_path, srv.url("libfoo-1.0.tar.gz"), "0" * 64)
    with pytest.raises(SourceError, match="sha256 mismatch") as exc:
        fetch_source(recipe, "libfoo", cache_dir=cache)
    assert sha256(LIBFOO_TGZ) in str(exc.value) and "0" * 64 in str(exc.value)
    assert list(cache.rglob("*")) == []  # not the file, not a partial, not a temp dir


def test_truncated_download_leaves_nothing_in_the_cache(tmp_path: Path, srv: Server) -> None:
    cache = tmp_path / "cache"
    srv.truncated.add("libfoo-1.0.tar.gz")
    recipe = _recipe(tmp_path, srv.url("libfoo-1.0.tar.gz"), sha256(LIBFOO_TGZ))
    with pytest.raises(SourceError, match="could not fetch .*libfoo-1.0.tar.gz"):
        fetch_source(recipe, "libfoo", cache_dir=cache)
    assert list(cache.rglob("*")) == []


def test_404_is_a_clear_offline_error(tmp_path: Path, srv: Server) -> None:
    url = srv.url("missing/libfoo-1.0.tar.gz")
    recipe = _recipe(tmp_path, url, sha256(LIBFOO_TGZ))
    with pytest.raises(SourceError) as exc:
        fetch_source(recipe, "libfoo", cache_dir=tmp_path / "cache")
    msg = str(exc.value)
    assert msg.startswith(f"could not fetch {url} (HTTP 404")
    assert "provide it with --source libfoo=PATH" in msg
    assert "\n" not in msg


def test_unreachable_host_names_the_url(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/libfoo-1.0.tar.gz"
    recipe = _recipe(tmp_path, url, sha256(LIBFOO_TGZ))
    with pytest.raises(SourceError, match=f"could not fetch {url} .*--source libfoo=PATH"):
        fetch_source(recipe, "libfoo", cache_dir=tmp_path / "cache")


def test_unpinned_is_refused_unless_allowed(tmp_path: Path, srv: Server) -> None:
    cache = tmp_path / "cache"
    recipe = _recipe(tmp_path, srv.url("libfoo-1.0.tar.gz"), "unpinned")
    with pytest.raises(SourceError) as exc:
        fetch_source(recipe, "libfoo", cache_dir=cache)
    assert "--allow-unpinned" in str(exc.value)
    assert "--source libfoo=PATH" in str(exc.value)
    assert srv.requests == []  # refused before any download

    got = fetch_source(recipe, "libfoo", cache_dir=cache, allow_unpinned=True)
    assert got.sha256 == sha256(LIBFOO_TGZ)  # the computed hash is recorded
    assert (got.unpinned, got.verified) == (True, False)
    entry = got.manifest_entry()
    assert entry["sha256"] == sha256(LIBFOO_TGZ) and entry["verified"] is False
    assert "--allow-unpinned" in entry["note"]


def test_corrupt_cache_entry_is_fetched_again(tmp_path: Path, srv: Server) -> None:
    cache = tmp_path / "cache"
    recipe = _recipe(tmp_path, srv.url("libfoo-1.0.tar.gz"), sha256(LIBFOO_TGZ))
    first = fetch_source(recipe, "libfoo", cache_dir=cache)
    first.path.write_bytes(b"bit rot")
    second = fetch_source(recipe, "libfoo", cache_dir=cache)
    assert len(srv.requests) == 2
    assert second.path.read_bytes() == LIBFOO_TGZ


def test_local_overrides(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path, "http://127.0.0.1:9/never-fetched.tar.gz", "unpinned")
    src_dir = tmp_path / "libfoo-checkout"
    (src_dir / "src").mkdir(parents=True)
    (src_dir / "src" / "foo.c").write_text("int local;\n")
    archive = tmp_path / "libfoo-local.zip"
    archive.write_bytes(make_zip({"libfoo-1.0/src/foo.c": "int zipped;\n"}))

    overrides = parse_source_overrides([f"libfoo={src_dir}", f"pillow={archive}"])
    check_overrides(recipe, overrides)
    d = fetch_source(recipe, "libfoo", overrides=overrides)  # unpinned, yet no refusal
    assert (d.local, d.verified, d.sha256, d.origin) == (True, False, None, str(src_dir))
    assert d.manifest_entry()["kind"] == "local"
    assert d.manifest_entry()["note"] == "local override, unverified"
    tree = extract_source(d, tmp_path / "tree-d")
    assert (tree / "src" / "foo.c").read_text() == "int local;\n"
    (tree / "src" / "foo.c").write_text("changed")  # the copy, never the user's checkout
    assert (src_dir / "src" / "foo.c").read_text() == "int local;\n"

    a = fetch_source(recipe, "pillow", overrides=overrides)
    assert (a.local, a.sha256, a.path) == (True, sha256(archive.read_bytes()), archive)
    assert (extract_source(a, tmp_path / "tree-a") / "src" / "foo.c").read_text() == "int zipped;\n"


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["libfoo"], "expected NAME=PATH"),
        (["=x"], "expected NAME=PATH"),
        (["libfoo=/no/such/path"], "no such file or directory"),
        (["libfoo={dir}", "libfoo={dir}"], "given twice"),
        (["libfoo={junk}"], "not a directory or a tar/zip archive"),
    ],
)
def test_bad_overrides(tmp_path: Path, items: list[str], message: str) -> None:
    junk = tmp_path / "junk.txt"
    junk.write_text("junk")
    items = [i.format(dir=tmp_path, junk=junk) for i in items]
    with pytest.raises(SourceError, match=message):
        parse_source_overrides(items)


def test_override_for_unknown_component(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path, "http://127.0.0.1:9/x.tar.gz", "unpinned")
    with pytest.raises(SourceError, match="--source libbar: no such component"):
        check_overrides(recipe, {"libbar": tmp_path})
    with pytest.raises(SourceError, match="no component 'libbar'"):
        fetch_source(recipe, "libbar")


# --------------------------------------------------------------------------------------------
# pip: an sdist served from a local find-links directory, so the user's pip configuration
# (here PIP_NO_INDEX / PIP_FIND_LINKS in the environment) is what decides where pip looks.

_BACKEND = """
import os

def get_requires_for_build_wheel(config_settings=None):
    return []

def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    d = os.path.join(metadata_directory, "pvtoy-13.0.0.dist-info")
    os.makedirs(d)
    with open(os.path.join(d, "METADATA"), "w") as f:
        f.write("Metadata-Version: 2.1\\nName: pvtoy\\nVersion: 13.0.0\\n")
    return "pvtoy-13.0.0.dist-info"

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    raise RuntimeError("not needed for pip download")
"""


def _toy_sdist() -> bytes:
    buf = io.BytesIO()
    files = {
        "pvtoy-13.0.0/PKG-INFO": "Metadata-Version: 2.1\nName: pvtoy\nVersion: 13.0.0\n",
        "pvtoy-13.0.0/pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "backend"\n'
        'backend-path = ["."]\n',
        "pvtoy-13.0.0/backend.py": _BACKEND,
    }
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _pip_recipe(tmp_path: Path, requirement: str, digest: str) -> Recipe:
    """A recipe whose Pillow comes from ``pip download REQUIREMENT`` (libfoo is never fetched)."""
    url = "http://127.0.0.1:9/never-fetched.tar.gz"
    return _recipe(tmp_path, url, "unpinned", pillow_pip=requirement, pillow_sha256=digest)


@pytest.fixture
def toy_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> bytes:
    links = tmp_path / "links"
    links.mkdir()
    sdist = _toy_sdist()
    (links / "pvtoy-13.0.0.tar.gz").write_bytes(sdist)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    return sdist


def test_pip_source_honours_pip_configuration(tmp_path: Path, toy_index: bytes) -> None:
    cache = tmp_path / "cache"
    recipe = _pip_recipe(tmp_path, "pvtoy==13.0.0", sha256(toy_index))
    got = fetch_source(recipe, "pillow", cache_dir=cache)
    assert got.path == cache / "sha256" / sha256(toy_index) / "pvtoy-13.0.0.tar.gz"
    assert (got.origin, got.verified, got.manifest_entry()["kind"]) == (
        "pvtoy==13.0.0",
        True,
        "pip",
    )
    assert files_in(cache) == [got.path]


def test_pip_hash_mismatch_leaves_nothing(tmp_path: Path, toy_index: bytes) -> None:
    cache = tmp_path / "cache"
    recipe = _pip_recipe(tmp_path, "pvtoy==13.0.0", "1" * 64)
    with pytest.raises(SourceError, match="sha256 mismatch for pvtoy==13.0.0"):
        fetch_source(recipe, "pillow", cache_dir=cache)
    assert list(cache.rglob("*")) == []


def test_pip_failure_is_a_clear_error(tmp_path: Path, toy_index: bytes) -> None:
    cache = tmp_path / "cache"
    recipe = _pip_recipe(tmp_path, "pvnothing==13.0.0", "1" * 64)
    with pytest.raises(SourceError) as exc:
        fetch_source(recipe, "pillow", cache_dir=cache)
    msg = str(exc.value)
    assert msg.startswith("could not fetch pvnothing==13.0.0 with pip download (")
    assert "No matching distribution" in msg or "Could not find a version" in msg
    assert msg.endswith("provide it with --source pillow=PATH (a directory or archive)")
    assert list(cache.rglob("*")) == []


def test_pip_requirement_must_pin_the_recipe_version(tmp_path: Path) -> None:
    recipe = _pip_recipe(tmp_path, "pillow>=12", "1" * 64)
    with pytest.raises(SourceError, match="must pin exactly ==13.0.0"):
        fetch_source(recipe, "pillow", cache_dir=tmp_path / "cache")


def test_pip_download_command_fetches_one_sdist(tmp_path: Path) -> None:
    cmd = pip_download_command("pillow==13.0.0", tmp_path)
    assert cmd[1:4] == ["-m", "pip", "download"]
    assert "--no-deps" in cmd and cmd[cmd.index("--no-binary") + 1] == "pillow"
    assert cmd[cmd.index("--dest") + 1] == str(tmp_path) and cmd[-1] == "pillow==13.0.0"


def test_big_download_reports_progress_on_stderr(
    tmp_path: Path, srv: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    big = os.urandom(PROGRESS_THRESHOLD + 1)
    srv.files["big.tar.gz"] = big
    recipe = _recipe(tmp_path, srv.url("big.tar.gz"), sha256(big))
    fetch_source(recipe, "libfoo", cache_dir=tmp_path / "cache")
    out, err = capsys.readouterr()
    assert out == ""
    assert f"fetching libfoo {srv.url('big.tar.gz')} (1.0 MB)" in err


def test_stalled_server_times_out(tmp_path: Path, srv: Server) -> None:
    srv.stalled.add("libfoo-1.0.tar.gz")
    recipe = _recipe(tmp_path, srv.url("libfoo-1.0.tar.gz"), sha256(LIBFOO_TGZ))
    with pytest.raises(SourceError, match=r"could not fetch .* \(.*timed out\)") as exc:
        fetch_source(recipe, "libfoo", cache_dir=tmp_path / "cache", timeout=0.2)
    assert "--source libfoo=PATH" in str(exc.value)
    assert list((tmp_path / "cache").rglob("*")) == []
