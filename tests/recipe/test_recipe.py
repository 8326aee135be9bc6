"""Recipes: inheritance, strict validation with file/key errors, and the CLI's exit codes."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from pillow_variants.cli import main
from pillow_variants.errors import RecipeError
from pillow_variants.recipe.model import UNPINNED, load_recipe

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes"


@pytest.fixture
def recipe_copy(tmp_path: Path) -> Path:
    """A writable copy of recipes/ (and patches/, which recipes point into)."""
    shutil.copytree(RECIPES, tmp_path / "recipes")
    if (ROOT / "patches").is_dir():
        shutil.copytree(ROOT / "patches", tmp_path / "patches")
    return tmp_path / "recipes"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_upstream_recipe_pins_pillow_and_orders_dependencies() -> None:
    r = load_recipe(RECIPES / "upstream.toml")
    assert r.pillow.version == "13.0.0"
    assert r.pillow.source.pip == "pillow==13.0.0"
    assert r.pillow.source.pinned and len(r.pillow.source.sha256) == 64
    assert r.wheel_version == "13.0.0"
    assert r.patches == {}
    order = r.build_order()
    assert set(order) == set(r.dependencies) and len(order) >= 10
    for name in order:
        for dep in r.dependencies[name].depends:
            assert order.index(dep) < order.index(name), (dep, name)
    # every source is either pinned or says why not
    for d in r.dependencies.values():
        assert d.source.pinned or d.source.sha256_source


def test_nanoserver_inherits_upstream_and_overrides() -> None:
    up = load_recipe(RECIPES / "upstream.toml")
    nano = load_recipe(RECIPES / "nanoserver.toml")
    assert nano.inherits == "upstream.toml"
    assert nano.wheel_version == "13.0.0+nanoserver"
    assert nano.audit.surface == "nanoserver-ltsc2022" and nano.audit.policy == "both"
    # the dependencies are upstream's, but for the zig-only libwebp flags (issue #17: size)
    webp = nano.dependencies["libwebp"]
    assert webp.zig_options and not up.dependencies["libwebp"].zig_options
    assert {**nano.dependencies, "libwebp": replace(webp, zig_options=[])} == up.dependencies
    assert nano.pillow.source == up.pillow.source and nano.pillow.version == up.pillow.version
    assert nano.pillow.config_settings == [*up.pillow.config_settings, "gdi=disable"]
    assert nano.features["imagegrab"].state == "removed" and nano.features["imagegrab"].reason
    assert up.features["imagegrab"].state == "enabled"
    # features nanoserver does not mention are inherited unchanged
    assert nano.features["freetype2"] == up.features["freetype2"]


def test_patch_files_resolve_under_component_version(recipe_copy: Path) -> None:
    nano = load_recipe(recipe_copy / "nanoserver.toml")
    files = [(comp, f) for comp in nano.patches for f in nano.patch_files(comp)]
    assert len(files) >= 10  # the loop below must have something to check
    for comp, f in files:
        assert f.parent == recipe_copy.parent / "patches" / comp / nano.component_version(comp)


@pytest.mark.parametrize(
    ("file", "old", "new", "key", "expected"),
    [
        (
            "nanoserver.toml",
            "local_version =",
            "local_versoin =",
            "recipe.local_versoin",
            "unknown key",
        ),
        (
            "upstream.toml",
            'version = "14.5.0"',
            "version = 14",
            "dependencies.harfbuzz.version",
            "expected a string, got integer",
        ),
        (
            "upstream.toml",
            'build_system = "cmake"\ntargets = ["jpeg-static"',
            'build_system = "scons"\ntargets = ["jpeg-static"',
            "dependencies.libjpeg.build_system",
            "expected one of",
        ),
        (
            "upstream.toml",
            'policy = "surface"',
            'policy = "lenient"',
            "audit.policy",
            "expected one of",
        ),
        (
            "upstream.toml",
            'depends = ["freetype"]',
            'depends = ["freetyp"]',
            "dependencies.harfbuzz.depends[0]",
            "unknown dependency 'freetyp'",
        ),
        (
            "upstream.toml",
            'sha256 = "cdcd1ba2',
            'sha256 = "CDCD1BA2',
            "pillow.source.sha256",
            "64 lowercase hex",
        ),
        (
            "nanoserver.toml",
            'state = "changed"\nreason = ',
            'state = "changed"\nreasons = ',
            "features.display_profile.reasons",
            "unknown key",
        ),
        (
            "upstream.toml",
            "[dependencies.xz]\n",
            "[dependencies.xz]\nflavour = 1\n",
            "dependencies.xz.flavour",
            "unknown key",
        ),
        (
            "upstream.toml",
            'built_inside = "libavif"\ntargets = ["aom"]',
            'built_inside = "libtiff"\ntargets = ["aom"]',
            "dependencies.aom.built_inside",
            "'libtiff' is no dependency that depends on it",
        ),
    ],
)
def test_invalid_recipes_name_file_and_key(
    recipe_copy: Path, file: str, old: str, new: str, key: str, expected: str
) -> None:
    target = recipe_copy / file
    _edit(target, old, new)
    with pytest.raises(RecipeError) as info:
        load_recipe(recipe_copy / "nanoserver.toml")
    assert info.value.path == str(target.resolve())
    assert info.value.key == key
    assert expected in str(info.value)


def test_unpinned_source_must_say_why(recipe_copy: Path) -> None:
    text = (recipe_copy / "upstream.toml").read_text()
    start = text.index("[dependencies.xz.source]")
    block_end = text.index("\n\n", start)
    block = text[start:block_end]
    lines = [ln for ln in block.splitlines() if not ln.startswith("sha256")]
    lines.append(f'sha256 = "{UNPINNED}"')
    (recipe_copy / "upstream.toml").write_text(text[:start] + "\n".join(lines) + text[block_end:])
    with pytest.raises(RecipeError, match="unpinned source must say why"):
        load_recipe(recipe_copy / "upstream.toml")


def test_inheritance_cycle_and_missing_parent(recipe_copy: Path) -> None:
    _edit(recipe_copy / "upstream.toml", "[recipe]\n", '[recipe]\ninherits = "nanoserver.toml"\n')
    with pytest.raises(RecipeError, match="inheritance cycle"):
        load_recipe(recipe_copy / "nanoserver.toml")
    (recipe_copy / "orphan.toml").write_text('[recipe]\ninherits = "nope.toml"\n')
    with pytest.raises(RecipeError, match="no such recipe"):
        load_recipe(recipe_copy / "orphan.toml")


def test_dependency_cycle_is_reported(recipe_copy: Path) -> None:
    _edit(
        recipe_copy / "upstream.toml",
        'depends = ["zlib", "libpng", "brotli"]',
        'depends = ["zlib", "libpng", "brotli", "harfbuzz"]',
    )
    with pytest.raises(RecipeError, match="cycle: .*freetype"):
        load_recipe(recipe_copy / "upstream.toml")


def test_cli_show_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recipe", "show", str(RECIPES / "nanoserver.toml"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["wheel_version"] == "13.0.0+nanoserver"
    assert data["dependencies"]["libtiff"]["version"] == "4.7.2"
    assert data["features"]["wmf_emf"]["state"] == "removed"
    assert data["build_order"].index("zlib") < data["build_order"].index("libpng")


def test_cli_show_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recipe", "show", str(RECIPES / "upstream.toml")]) == 0
    out = capsys.readouterr().out
    assert "pillow 13.0.0  win_amd64" in out and "libtiff" in out


def test_cli_bad_recipe_is_one_line_exit_2(
    recipe_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _edit(recipe_copy / "nanoserver.toml", "local_version =", "local_versoin =")
    assert main(["recipe", "show", str(recipe_copy / "nanoserver.toml"), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err
    assert "nanoserver.toml: recipe.local_versoin: unknown key" in lines[0]


def test_cli_invalid_toml_syntax(recipe_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (recipe_copy / "broken.toml").write_text("[recipe\n")
    assert main(["recipe", "show", str(recipe_copy / "broken.toml")]) == 2
    assert "broken.toml: not valid TOML" in capsys.readouterr().err
