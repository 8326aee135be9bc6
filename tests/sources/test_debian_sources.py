"""scripts/debian_sources.py: pins, deb-src set-up and a real (small) download."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from pillow_variants.errors import SourceError
from pillow_variants.recipe.model import load_recipe
from pillow_variants.sources.aptsrc import check_sha256

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ds():
    spec = importlib.util.spec_from_file_location(
        "debian_sources", ROOT / "scripts" / "debian_sources.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["debian_sources"] = module
    spec.loader.exec_module(module)
    return module


def test_pins_name_recipe_components_and_match_or_explain_versions(ds):
    recipe = load_recipe(ROOT / "recipes" / "upstream.toml")
    for name, pin in ds.PINS.items():
        assert name in recipe.dependencies, name
        assert len(pin.sha256) == 64 and pin.sha256 == pin.sha256.lower()
        if pin.upstream_version != recipe.dependencies[name].version:
            assert pin.note, f"{name}: version differs from the recipe without a note"
        if pin.kind == "deb":
            assert ".orig." in pin.filename  # the upstream tarball, never Debian's tree
    assert set(ds.DEFAULT) <= set(ds.PINS)


def test_source_args(ds, tmp_path):
    assert ds.source_args({"zlib": tmp_path / "z"}) == [f"--source=zlib={tmp_path / 'z'}"]


def test_unknown_component(ds, tmp_path):
    with pytest.raises(SourceError, match="no Debian pin for nope"):
        ds.provide(["nope"], tmp_path)


def test_checksum_mismatch_is_refused(ds, tmp_path):
    f = tmp_path / ds.PINS["brotli"].filename
    f.write_bytes(b"not brotli")
    with pytest.raises(SourceError, match="sha256"):
        check_sha256(f, ds.PINS["brotli"].sha256)


@pytest.mark.network
def test_download_verifies_the_pinned_upstream_tarball(ds, tmp_path, capsys):
    rc = ds.main(["--dest", str(tmp_path), "--only", "brotli", "--args-file", str(tmp_path / "a")])
    assert rc == 0
    path = tmp_path / ds.PINS["brotli"].filename
    assert ds.file_sha256(path) == ds.PINS["brotli"].sha256
    assert (tmp_path / "a").read_text() == f"--source=brotli={path}\n"
    assert capsys.readouterr().out.strip() == f"--source=brotli={path}"
