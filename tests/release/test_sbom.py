"""The CycloneDX SBOM: valid 1.6 (schema-checked), deterministic, faithful to recipe + manifest."""

from __future__ import annotations

import base64
import json
import shutil
import zipfile
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from pillow_variants.errors import UserError
from pillow_variants.recipe.model import load_recipe
from pillow_variants.release.sbom import build_sbom, purl_version
from pillow_variants.wheeltools import SBOM_NAME, embed_provenance
from wheelfactory import ALL_PASSED, make_wheel

ROOT = Path(__file__).resolve().parents[2]

PATCH = """Subject: Map TIFF files with CreateFileMappingW
Removes: KERNEL32 CreateFileMappingA
Why: nanoserver lacks the ANSI entry point.
Upstream: not submitted
diff --git a/libtiff/tif_win32.c b/libtiff/tif_win32.c
--- a/libtiff/tif_win32.c
+++ b/libtiff/tif_win32.c
@@ -1,1 +1,1 @@
-CreateFileMapping(fd, NULL, PAGE_READONLY, 0, 0, NULL);
+CreateFileMappingW(fd, NULL, PAGE_READONLY, 0, 0, NULL);
"""


def _validate(bom: dict) -> None:
    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(bom))
    assert errors is None, errors


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """recipes/upstream.toml + a variant with one libtiff patch, laid out as the project is."""
    (tmp_path / "recipes").mkdir()
    shutil.copy(ROOT / "recipes" / "upstream.toml", tmp_path / "recipes" / "upstream.toml")
    version = load_recipe(tmp_path / "recipes" / "upstream.toml").component_version("libtiff")
    (tmp_path / "recipes" / "variant.toml").write_text(
        '[recipe]\ninherits = "upstream.toml"\nlocal_version = "nanoserver"\n'
        '[patches]\nlibtiff = ["0001-createfilemappingw.patch"]\n'
    )
    pdir = tmp_path / "patches" / "libtiff" / version
    pdir.mkdir(parents=True)
    (pdir / "0001-createfilemappingw.patch").write_text(PATCH)
    return tmp_path


def _component(bom: dict, name: str) -> dict:
    return next(c for c in bom["components"] if c["name"] == name)


def test_sbom_is_valid_cyclonedx_and_deterministic(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    recipe = load_recipe(project / "recipes" / "variant.toml")
    bom = build_sbom(recipe)
    _validate(bom)
    assert bom["specVersion"] == "1.6"
    assert "timestamp" not in bom["metadata"]
    assert build_sbom(recipe) == bom  # same inputs, same document (serial number included)
    assert bom["serialNumber"].startswith("urn:uuid:")

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    stamped = build_sbom(recipe)
    _validate(stamped)
    assert stamped["metadata"]["timestamp"] == "2023-11-14T22:13:20Z"
    assert stamped["serialNumber"] != bom["serialNumber"]


def test_components_carry_versions_urls_hashes_licenses(project: Path) -> None:
    recipe = load_recipe(project / "recipes" / "variant.toml")
    bom = build_sbom(recipe)
    names = {c["name"] for c in bom["components"]}
    # Only what the wheel bundles: fribidi (run-time DLL) and libimagequant (disabled) are out.
    expected = {d.project for d in recipe.dependencies.values() if d.in_wheel}
    assert names == expected and "fribidi" not in names and "libimagequant" not in names
    tiff = _component(bom, "libtiff")
    dep = recipe.dependencies["libtiff"]
    assert tiff["version"] == dep.version
    assert tiff["externalReferences"] == [{"type": "distribution", "url": dep.source.url}]
    assert tiff["purl"].startswith(f"pkg:generic/libtiff@{dep.version}?download_url=https%3A")
    assert tiff["licenses"] == [{"expression": "libtiff"}]
    if dep.source.pinned:
        assert tiff["hashes"] == [{"alg": "SHA-256", "content": dep.source.sha256}]
    main = bom["metadata"]["component"]
    assert main["version"] == "13.0.0+nanoserver"
    assert main["purl"] == "pkg:pypi/pillow@13.0.0%2Bnanoserver"
    deps = {d["ref"]: d.get("dependsOn", []) for d in bom["dependencies"]}
    assert set(deps[main["bom-ref"]]) == {c["bom-ref"] for c in bom["components"]}
    libjpeg = _component(bom, "libjpeg-turbo")["bom-ref"]
    assert libjpeg in deps[tiff["bom-ref"]]  # libtiff depends on libjpeg in the recipe


def test_patches_are_embedded_as_pedigree(project: Path) -> None:
    bom = build_sbom(load_recipe(project / "recipes" / "variant.toml"))
    (patch,) = _component(bom, "libtiff")["pedigree"]["patches"]
    assert patch["type"] == "unofficial"
    assert base64.b64decode(patch["diff"]["text"]["content"]).decode() == PATCH
    assert patch["diff"]["url"].startswith("patches/libtiff/")
    assert patch["resolves"][0]["name"] == "0001-createfilemappingw.patch"
    assert "CreateFileMappingW" in patch["resolves"][0]["description"]
    assert "patches" not in _component(bom, "zlib-ng").get("pedigree", {})


def test_manifest_hashes_and_local_overrides_win_over_the_recipe(project: Path) -> None:
    recipe = load_recipe(project / "recipes" / "variant.toml")
    manifest = {
        "sources": {
            "zlib": {"sha256": "ab" * 32, "local": False, "verified": False, "origin": "u"},
            "libpng": {"sha256": None, "local": True, "verified": False, "origin": "/src/png"},
        }
    }
    bom = build_sbom(recipe, manifest)
    _validate(bom)
    zlib = _component(bom, "zlib-ng")
    assert zlib["hashes"] == [{"alg": "SHA-256", "content": "ab" * 32}]
    assert {"name": "pillow-variants:sha256", "value": "unpinned in the recipe"} in zlib[
        "properties"
    ]
    png = _component(bom, "libpng")
    assert "hashes" not in png and "externalReferences" not in png
    assert {"name": "pillow-variants:source", "value": "local override"} in png["properties"]


def test_missing_patch_file_is_an_error(project: Path) -> None:
    for p in (project / "patches").rglob("*.patch"):
        p.unlink()
    with pytest.raises(UserError, match="listed but missing"):
        build_sbom(load_recipe(project / "recipes" / "variant.toml"))


def test_the_projects_own_recipes_give_valid_sboms() -> None:
    for name in ("upstream.toml", "nanoserver.toml"):
        _validate(build_sbom(load_recipe(ROOT / "recipes" / name)))


def test_sbom_lands_at_the_pep770_path_in_the_wheel(project: Path, tmp_path: Path) -> None:
    bom = build_sbom(load_recipe(project / "recipes" / "variant.toml"))
    wheel = make_wheel(tmp_path)
    embed_provenance(wheel, {"rungs": ALL_PASSED}, bom)
    with zipfile.ZipFile(wheel) as zf:
        stored = zf.read(f"pillow-13.0.0+nanoserver.dist-info/sboms/{SBOM_NAME}")
    assert json.loads(stored) == bom
    assert stored == json.dumps(bom, indent=2, sort_keys=True).encode() + b"\n"


def test_purl_versions_are_percent_encoded() -> None:
    assert purl_version("13.0.0+nanoserver") == "13.0.0%2Bnanoserver"
    assert purl_version("2.14.3") == "2.14.3"
