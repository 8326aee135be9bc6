"""Hostile recipes: names and versions that would turn into paths outside the cache or outside
``patches/`` are refused when the recipe is loaded (one ``error:`` line naming file and key,
exit 2, nothing written), and the path joins re-check containment on their own."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from httpserver import F3_PATCH, LIBFOO_TGZ, Server, one_error_line, serve, sha256
from pillow_variants.cli import main
from pillow_variants.errors import RecipeError, SourceError
from pillow_variants.recipe.model import load_recipe
from pillow_variants.sources.fetch import fetch_source

WRONG_SHA = "0" * 64


@pytest.fixture
def srv() -> Iterator[Server]:
    with serve() as server:
        server.files["libfoo-1.0.tar.gz"] = LIBFOO_TGZ
        server.files["..%2F..%2Fx.tar.gz"] = LIBFOO_TGZ
        yield server


def _project(root: Path, *, source: str, version: str = "1.0", platform: str = "") -> Path:
    """A project (recipes/test.toml + patches/libfoo/1.0/0001-f3.patch) with libfoo's source
    table, version and the recipe's platform as given."""
    (root / "recipes").mkdir(parents=True)
    pdir = root / "patches" / "libfoo" / "1.0"
    pdir.mkdir(parents=True)
    (pdir / "0001-f3.patch").write_text(F3_PATCH)
    plat = f'platform = "{platform}"\n' if platform else ""
    recipe = root / "recipes" / "test.toml"
    recipe.write_text(
        f"""
[recipe]
python = ["3.12"]
{plat}
[pillow]
version = "13.0.0"
[pillow.source]
pip = "pillow==13.0.0"
sha256 = "unpinned"
sha256_source = "test recipe"

[dependencies.libfoo]
project = "libfoo"
version = "{version}"
build_system = "cmake"
license_files = ["COPYING"]
[dependencies.libfoo.source]
{source}
sha256_source = "test recipe"

[patches]
libfoo = ["0001-f3.patch"]
"""
    )
    return recipe


def _cli_fetch(recipe: Path, cache: Path) -> int:
    return main(["sources", "fetch", str(recipe), "libfoo", "--cache-dir", str(cache)])


def test_url_whose_last_segment_decodes_to_a_path_is_refused(
    tmp_path: Path, srv: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    url = srv.url("..%2F..%2Fx.tar.gz")
    recipe = _project(tmp_path / "proj", source=f'url = "{url}"\nsha256 = "{WRONG_SHA}"')
    work = tmp_path / "work"
    cache = work / "a" / "cache"
    assert _cli_fetch(recipe, cache) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "test.toml: dependencies.libfoo.source.url:" in line and "'../../x.tar.gz'" in line
    assert srv.requests == [] and not work.exists()


def test_absolute_filename_is_refused_before_any_download(
    tmp_path: Path, srv: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    source = (
        f'url = "{srv.url("libfoo-1.0.tar.gz")}"\nfilename = "{victim}"\nsha256 = "{WRONG_SHA}"'
    )
    recipe = _project(tmp_path / "proj", source=source)
    assert _cli_fetch(recipe, tmp_path / "cache") == 2
    line = one_error_line(capsys.readouterr().err)
    assert "dependencies.libfoo.source.filename:" in line and str(victim) in line
    assert victim.read_text() == "precious\n" and srv.requests == []
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    "name", ["../x.tar.gz", "sub/x.tar.gz", "..", ".hidden.tar.gz", "a\\b.tgz"]
)
def test_filename_must_be_one_safe_component(tmp_path: Path, name: str) -> None:
    url = "http://127.0.0.1:9/libfoo-1.0.tar.gz"
    source = f"url = {url!r}\nfilename = '{name}'\nsha256 = {WRONG_SHA!r}"  # TOML literals
    recipe = _project(tmp_path / "proj", source=source)
    with pytest.raises(RecipeError, match=r"test\.toml: dependencies\.libfoo\.source\.filename: "):
        load_recipe(recipe)


def test_download_target_is_checked_where_it_is_joined(tmp_path: Path, srv: Server) -> None:
    """A Source built in code skips the loader: the fetch still refuses to leave the cache."""
    url = srv.url("libfoo-1.0.tar.gz")
    recipe = load_recipe(
        _project(tmp_path / "proj", source=f'url = "{url}"\nsha256 = "{WRONG_SHA}"')
    )
    dep = recipe.dependencies["libfoo"]
    for bad in ("../../escaped.tar.gz", str(tmp_path / "abs.tar.gz")):
        evil = dataclasses.replace(dep, source=dataclasses.replace(dep.source, filename=bad))
        hostile = dataclasses.replace(recipe, dependencies={"libfoo": evil})
        cache = tmp_path / "c" / "cache"
        with pytest.raises(SourceError, match="nothing was written") as info:
            fetch_source(hostile, "libfoo", cache_dir=cache)
        assert "\n" not in str(info.value)
        assert srv.requests == [] and not (tmp_path / "c").exists()
    assert not (tmp_path / "escaped.tar.gz").exists() and not (tmp_path / "abs.tar.gz").exists()


def test_version_that_climbs_out_of_patches_is_refused(
    tmp_path: Path, srv: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """``version = "../../x"`` made ``patches check`` apply a patch from outside patches/."""
    root = tmp_path / "proj"
    url = srv.url("libfoo-1.0.tar.gz")
    recipe = _project(
        root, source=f'url = "{url}"\nsha256 = "{sha256(LIBFOO_TGZ)}"', version="../../x"
    )
    outside = root / "x"  # patches/libfoo/../../x
    outside.mkdir()
    (outside / "0001-f3.patch").write_text(F3_PATCH)
    code = main(["patches", "check", str(recipe), "--cache-dir", str(tmp_path / "cache")])
    assert code == 2
    line = one_error_line(capsys.readouterr().err)
    assert "test.toml: dependencies.libfoo.version: expected a version" in line
    assert srv.requests == []


def test_patch_directory_is_checked_where_it_is_joined(tmp_path: Path) -> None:
    source = f'url = "http://127.0.0.1:9/libfoo-1.0.tar.gz"\nsha256 = "{WRONG_SHA}"'
    recipe = load_recipe(_project(tmp_path / "proj", source=source))
    dep = dataclasses.replace(recipe.dependencies["libfoo"], version="../../x")
    hostile = dataclasses.replace(recipe, dependencies={"libfoo": dep})
    with pytest.raises(
        RecipeError, match=r"dependencies\.libfoo\.version: patch directory .* is outside"
    ):
        hostile.patch_files("libfoo")
    linked = dataclasses.replace(recipe.dependencies["libfoo"], version="2.0")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "proj" / "patches" / "libfoo" / "2.0").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(RecipeError, match="is outside"):
        dataclasses.replace(recipe, dependencies={"libfoo": linked}).patch_files("libfoo")


@pytest.mark.parametrize("platform", ["win_amd64; rm -rf /", "linux_x86_64", "../win_amd64"])
def test_platform_must_be_a_known_windows_tag(
    tmp_path: Path, platform: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = f'url = "http://127.0.0.1:9/libfoo-1.0.tar.gz"\nsha256 = "{WRONG_SHA}"'
    recipe = _project(tmp_path / "proj", source=source, platform=platform)
    assert main(["recipe", "show", str(recipe)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "test.toml: recipe.platform: expected one of win_amd64, win32, win_arm64" in line


def test_shipped_recipes_still_load() -> None:
    root = Path(__file__).resolve().parents[2] / "recipes"
    for path in root.glob("*.toml"):
        recipe = load_recipe(path)
        for component in recipe.components:
            recipe.patch_files(component)
