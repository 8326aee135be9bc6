"""upstream diff: the recipe against Pillow's winbuild/build_prepare.py (read, never executed).

``tests/fixtures/pillow-13.0.0-dependencies.json`` stands in for the 13.0.0 tag's
``.github/dependencies.json``, which the sdist does not contain. It holds the keys
build_prepare.py reads (``V['jpegturbo']`` … ``V['libavif']``) plus ``libxcb``, with the
versions of the official 13.0.0 wheels (their embedded CycloneDX SBOM lists libjpeg-turbo 3.2.0,
zlib-ng 2.3.3, libtiff 4.7.2, libpng 1.6.58, freetype 2.14.3, lcms2 2.19.1, openjpeg 2.5.4,
libimagequant 4.4.1, harfbuzz 14.5.0, fribidi 1.0.17, libavif 1.4.2, libwebp 1.6.0, libxcb
1.17.0; xz 5.8.3 and brotli 1.2.0 come from the project's research notes, which match the
repository file's values around that release). Keys of other platforms' builds (bzip2, zstd,
highway, jpegxl) are left out because their 13.0.0 values are not established here.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest

from httpserver import validate_json
from pillow_variants.cli import main
from pillow_variants.errors import UserError
from pillow_variants.recipe.model import load_recipe
from pillow_variants.recipe.upstream_diff import (
    read_pillow_source,
    upstream_dependencies,
    upstream_diff,
)

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).parents[1] / "fixtures" / "pillow-13.0.0-dependencies.json"


@pytest.fixture(scope="module")
def sdist() -> Path:
    """The real Pillow 13.0.0 sdist, sha256-verified, from the sources cache (or pip)."""
    from pillow_variants.sources.fetch import fetch_source

    return fetch_source(load_recipe(ROOT / "recipes" / "upstream.toml"), "pillow").path


def _drift_keys(report: dict) -> set[tuple[str, str, str]]:
    return {
        (d["component"], d["field"], json.dumps(d["upstream"], sort_keys=True))
        for d in report["drift"]
    }


@pytest.mark.network
def test_upstream_recipe_has_no_drift_against_the_13_0_0_sdist(sdist: Path) -> None:
    report = upstream_diff(load_recipe(ROOT / "recipes" / "upstream.toml"), sdist, FIXTURE)
    validate_json(report, "upstream-diff.schema.json")
    assert report["pillow"] == {"recipe": "13.0.0", "upstream": "13.0.0"}
    assert not [n for n in report["notes"] if "CPython tags not compared" in n]
    assert report["drift"] == [], "\n".join(
        f"{d['component']}.{d['field']}: recipe {d['recipe']!r} upstream {d['upstream']!r}"
        for d in report["drift"]
    )
    # every dependency build_prepare.py builds was compared
    assert list(report["components"]) == [
        "libjpeg", "zlib", "xz", "libwebp", "libtiff", "libpng", "brotli", "freetype", "lcms2",
        "openjpeg", "libimagequant", "harfbuzz", "fribidi", "libavif",
        "dav1d", "aom", "libyuv",  # recipe-only: upstream's libavif build makes them (LOCAL)
    ]  # fmt: skip
    for codec in ("dav1d", "aom", "libyuv"):
        assert f"{codec}: upstream builds it inside libavif's own build" in report["notes"]


@pytest.mark.network
def test_edited_recipe_copy_reports_exactly_the_edits(
    sdist: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(ROOT / "recipes", tmp_path / "recipes")
    baseline = upstream_diff(load_recipe(tmp_path / "recipes" / "upstream.toml"), sdist, FIXTURE)
    toml = tmp_path / "recipes" / "upstream.toml"
    text = toml.read_text()
    for old, new in (
        ('version = "1.6.58"', 'version = "1.6.59"'),  # libpng
        ('"-DPNG_SHARED:BOOL=OFF", "-DPNG_TESTS:BOOL=OFF"', '"-DPNG_SHARED:BOOL=OFF"'),
        ("releases/download/v5.8.3/xz-5.8.3.tar.gz", "releases/download/v5.8.3/xz-5.8.3.tar.xz"),
    ):
        assert old in text
        text = text.replace(old, new, 1)
    toml.write_text(text)

    rc = main(["upstream", "diff", str(sdist), "--recipe", str(toml),
               "--dependencies-json", str(FIXTURE), "--json"])  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    validate_json(report, "upstream-diff.schema.json")
    assert rc == 1
    new = [d for d in report["drift"] if d not in baseline["drift"]]
    assert {(d["component"], d["field"]) for d in new} == {
        ("libpng", "version"),
        ("libpng", "options"),
        ("xz", "url"),
        ("xz", "filename"),
    }
    by_field = {(d["component"], d["field"]): d for d in new}
    assert by_field[("libpng", "version")]["recipe"] == "1.6.59"
    assert by_field[("libpng", "version")]["upstream"] == "1.6.58"
    assert by_field[("xz", "filename")]["upstream"] == "xz-5.8.3.tar.gz"

    # A newer dependencies.json (upstream moved on) is drift for the untouched recipe too.
    moved = json.loads(FIXTURE.read_text()) | {"harfbuzz": "14.6.0"}
    (tmp_path / "deps.json").write_text(json.dumps(moved))
    report = upstream_diff(
        load_recipe(ROOT / "recipes" / "upstream.toml"), sdist, tmp_path / "deps.json"
    )
    hb = [d for d in report["drift"] if d["component"] == "harfbuzz"]
    assert {d["field"] for d in hb} == {"version", "url", "filename"}


@pytest.mark.network
def test_sdist_without_dependencies_json_needs_the_option(
    sdist: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert read_pillow_source(sdist).dependencies_json is None
    rc = main(["upstream", "diff", str(sdist), "--recipe", str(ROOT / "recipes/upstream.toml")])
    assert rc == 2
    assert "--dependencies-json" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# The evaluator on small, hand-written build_prepare.py files (12.x layout: V inline)

MINI = r"""
import json, sys
from typing import Any

def cmd_cd(path: str) -> str:
    return f"cd /D {path}"

def cmd_copy(src: str, tgt: str) -> str:
    return f'copy /Y /B "{src}" "{tgt}"'

def cmds_cmake(
    target, *params: str, build_dir: str = ".", build_type: str = "Release"
) -> list[str]:
    return []

def cmd_msbuild(
    file: str, configuration: str = "Release", target: str = "Build", plat: str = "{x}"
) -> str:
    return ""

SF = "https://sf.example/projects"
V = {"libpng": "1.6.50", "foo": "2.0", "quant": "4.0", "fri": "1.0.1", "ft": "2.14.0"}
V["libpng-xy"] = "".join(V["libpng"].split(".")[:2])

DEPS: dict[str, dict[str, Any]] = {
    "libpng": {
        "url": f"{SF}/libpng/files/libpng{V['libpng-xy']}/{V['libpng']}/FILENAME/download",
        "filename": f"libpng-{V['libpng']}.tar.gz",
        "license": "LICENSE",
        "build": [
            *cmds_cmake("png_static", "-DPNG_SHARED:BOOL=OFF", '-DCMAKE_C_FLAGS="-nologo -DX"'),
            cmd_copy("a", "b"),
        ],
    },
    "foo": {
        "url": "https://foo.example/FILENAME",
        "filename": f"foo-{V['foo']}.zip",
        "license": ["COPYING", r"docs\LICENSE"],
        "patch": {r"src\a.c": {"#ifdef X": "#ifdef X\n#pragma y", "{{keep}}": "{{kept}}"}},
        "build": [
            " ^&^& ".join(["if x", *cmds_cmake("foo-gen", "-DARCH=x86", build_dir="b86")]),
            *cmds_cmake(("foo", "foo2"), "-DARCH={architecture}", build_type="MinSizeRel"),
            f"{sys.executable} -m pip install meson",
        ],
    },
    "quant": {
        "url": "https://q.example/{V['quant']}.tar.gz",
        "filename": f"quant-{V['quant']}.tar.gz",
        "license": "COPYRIGHT",
        "build": [cmd_cd("quant-sys"), "cargo build --release"],
    },
    "ft": {
        "url": "https://ft.example/FILENAME",
        "filename": f"ft-{V['ft']}.tar.gz",
        "license": "LICENSE.TXT",
        "patch": {
            r"builds\x.user.props": {
                "<UserDefines></UserDefines>": "<UserDefines>A_OPT;B_OPT</UserDefines>",
                "<UserLibraryDirectories></UserLibraryDirectories>":
                    "<UserLibraryDirectories>{lib_dir}</UserLibraryDirectories>",
            },
        },
        "build": [
            cmd_msbuild(r"builds\x.vcxproj", "Release Static", "Clean"),
            cmd_msbuild(r"builds\x.vcxproj", "Release Static", "Build"),
            cmd_msbuild(r"P\x.sln", "Release", "x_static:Rebuild"),
        ],
    },
}
"""

MINI_RECIPE = """
[recipe]
python = ["3.13"]
[pillow]
version = "12.0.0"
[pillow.source]
pip = "pillow==12.0.0"
sha256 = "unpinned"
sha256_source = "test"
[dependencies.libpng]
project = "libpng"
version = "1.6.50"
build_system = "cmake"
targets = ["png_static"]
options = ["-DPNG_SHARED:BOOL=OFF", "-DCMAKE_C_FLAGS=-nologo -DX"]
license_files = ["LICENSE"]
[dependencies.libpng.source]
url = "https://sf.example/projects/libpng/files/libpng16/1.6.50/libpng-1.6.50.tar.gz/download"
filename = "libpng-1.6.50.tar.gz"
sha256 = "unpinned"
sha256_source = "test"
[dependencies.extra]
project = "extra"
version = "1.0"
build_system = "cmake"
license_files = ["COPYING"]
[dependencies.extra.source]
url = "https://extra.example/extra-1.0.tar.gz"
sha256 = "unpinned"
sha256_source = "test"
"""


def test_evaluator_reads_urls_builds_and_edits_without_running_anything() -> None:
    deps, notes = upstream_dependencies(MINI, None)
    png = deps["libpng"]
    assert png.version == "1.6.50" and png.version_key == "libpng"
    assert (
        png.url
        == "https://sf.example/projects/libpng/files/libpng16/1.6.50/libpng-1.6.50.tar.gz/download"
    )
    assert png.options == ["-DPNG_SHARED:BOOL=OFF", "-DCMAKE_C_FLAGS=-nologo -DX"]
    assert png.build_system == "cmake" and png.targets == ["png_static"]

    foo = deps["foo"]
    assert foo.url == "https://foo.example/foo-2.0.zip"
    assert foo.license_files == ["COPYING", "docs/LICENSE"]
    assert foo.targets == ["foo", "foo2"]
    assert foo.options == ["-DARCH={architecture}", "-DCMAKE_BUILD_TYPE=MinSizeRel"]
    assert foo.aux_builds == ["cmake foo-gen in b86 -DARCH=x86"]
    assert foo.upstream_edits == [
        {"file": "src/a.c", "search": "#ifdef X", "replace": "#ifdef X\n#pragma y"},
        {"file": "src/a.c", "search": "{{keep}}", "replace": "{{kept}}"},
    ]

    quant = deps["quant"]
    assert quant.build_system == "cargo" and quant.targets == ["quant-sys"]
    assert quant.url == "https://q.example/4.0.tar.gz"
    assert "not an f-string" in quant.notes[0]

    ft = deps["ft"]
    assert ft.build_system == "msbuild"
    assert ft.targets == ["builds/x.vcxproj:Release Static", "P/x.sln:x_static:Rebuild"]
    assert ft.options == ["A_OPT", "B_OPT"]  # <UserDefines> are the msbuild options
    assert [e["search"] for e in ft.upstream_edits] == [
        "<UserLibraryDirectories></UserLibraryDirectories>"
    ]
    assert notes == []


def test_diff_against_a_tarball_with_its_own_versions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sdist = tmp_path / "pillow-12.0.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as tf:
        for name, text in (
            ("pillow-12.0.0/winbuild/build_prepare.py", MINI),
            ("pillow-12.0.0/PKG-INFO", "Metadata-Version: 2.1\nName: pillow\nVersion: 12.0.0\n"),
        ):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    (tmp_path / "recipes").mkdir()
    recipe = tmp_path / "recipes" / "mini.toml"
    recipe.write_text(MINI_RECIPE)

    rc = main(["upstream", "diff", str(sdist), "--recipe", str(recipe), "--json"])
    report = json.loads(capsys.readouterr().out)
    validate_json(report, "upstream-diff.schema.json")
    assert rc == 1
    fields = {(d["component"], d["field"]) for d in report["drift"]}
    assert fields == {
        ("foo", "component"),
        ("quant", "component"),
        ("ft", "component"),
        ("extra", "component"),
    }
    assert report["dependencies_json"] is None  # V came from the file itself

    # An explicit dependencies.json does not override a V the file defines: it says so.
    deps = tmp_path / "deps.json"
    deps.write_text('{"libpng": "9.9.9"}')
    report = upstream_diff(load_recipe(recipe), sdist, deps)
    assert any("defines V itself" in n for n in report["notes"])
    assert not any(d["field"] == "version" for d in report["drift"])

    assert main(["upstream", "diff", str(sdist), "--recipe", str(recipe)]) == 1
    out = capsys.readouterr().out
    assert "extra.component: recipe 'extra' ≠ upstream null  (upstream does not build it)" in out


def test_unreadable_inputs_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such Pillow source"):
        read_pillow_source(tmp_path / "nope")
    (tmp_path / "tree").mkdir()
    with pytest.raises(UserError, match="no winbuild/build_prepare.py"):
        read_pillow_source(tmp_path / "tree")
    (tmp_path / "tree" / "winbuild").mkdir()
    (tmp_path / "tree" / "winbuild" / "build_prepare.py").write_text(
        "V = json.loads(open('x').read())\nDEPS = {}\n"
    )
    recipe = load_recipe(ROOT / "recipes" / "upstream.toml")
    with pytest.raises(UserError, match="pass --dependencies-json"):
        upstream_diff(recipe, tmp_path / "tree")
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(UserError, match="expected a JSON object"):
        upstream_diff(recipe, tmp_path / "tree", bad)
    (tmp_path / "tree" / "winbuild" / "build_prepare.py").write_text("def (:\n")
    with pytest.raises(UserError, match="not valid Python"):
        upstream_diff(recipe, tmp_path / "tree", FIXTURE)


def test_upstream_pythons_follow_classifiers_requires_python_and_cibuildwheel() -> None:
    from pillow_variants.recipe.upstream_diff import upstream_pythons

    def pyproject(extra: str = "") -> str:
        classifiers = ", ".join(
            f'"Programming Language :: Python :: 3.{m}"' for m in (10, 11, 12, 13, 14, 15)
        )
        return (
            f'[project]\nrequires-python = ">=3.11"\nclassifiers = ['
            f'"Programming Language :: Python :: 3 :: Only", {classifiers}]\n'
            f"[tool.cibuildwheel]\n{extra}"
        )

    # 3.10 is below requires-python; free-threaded from 3.14 on (cibuildwheel's default)
    assert upstream_pythons(pyproject()) == [
        "3.11",
        "3.12",
        "3.13",
        "3.14",
        "3.14t",
        "3.15",
        "3.15t",
    ]
    assert "3.13t" in upstream_pythons(pyproject('enable = ["cpython-freethreading"]\n'))
    assert upstream_pythons(pyproject('skip = "cp314t-* cp315*"\n')) == [
        "3.11", "3.12", "3.13", "3.14",
    ]  # fmt: skip


@pytest.mark.network
def test_recipe_python_list_drift_is_reported(sdist: Path, tmp_path: Path) -> None:
    shutil.copytree(ROOT / "recipes", tmp_path / "recipes")
    toml = tmp_path / "recipes" / "upstream.toml"
    text = toml.read_text()
    toml.write_text(text.replace('"3.14", "3.14t", "3.15", "3.15t"]', '"3.14"]'))
    report = upstream_diff(load_recipe(toml), sdist, FIXTURE)
    assert [(d["component"], d["field"]) for d in report["drift"]] == [("recipe", "python")]
    assert report["drift"][0]["upstream"][-3:] == ["3.14t", "3.15", "3.15t"]
