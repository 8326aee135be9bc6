"""The Windows-host build plan (``pillow-variants cibw``): the generated cibuildwheel
configuration and script, checked against upstream Pillow's own Windows flags, against the
recipes, and against cibuildwheel itself (its schema, its build selection, its environment
evaluation). The plan runs on Windows only; here it is generated and inspected."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile
import tomllib
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from cibuildwheel.environment import parse_environment

from pillow_variants.build import cibw
from pillow_variants.cli import main
from pillow_variants.recipe.model import load_recipe
from pillow_variants.sources.fetch import fetch_source

ROOT = Path(__file__).resolve().parents[2]
NANO = ROOT / "recipes" / "nanoserver.toml"
UPSTREAM = ROOT / "recipes" / "upstream.toml"
#: upstream Pillow 13.0.0 pyproject.toml [tool.cibuildwheel] config-settings
UPSTREAM_SETTINGS = "raqm=enable raqm=vendor fribidi=vendor imagequant=disable"


def dry_run(capsys: pytest.CaptureFixture[str], tmp_path: Path, recipe: Path, *extra: str) -> str:
    rc = main(
        ["cibw", "build", str(recipe), "--toolchain", "msvc", "--dry-run",
         "--plan-dir", str(tmp_path), *extra]
    )  # fmt: skip
    assert rc == 0
    return capsys.readouterr().out


def test_nanoserver_dry_run_prints_the_configuration_and_every_command(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = dry_run(capsys, tmp_path, NANO)
    recipe = load_recipe(NANO)
    tags = [f"cp{p.replace('.', '')}" for p in recipe.python]
    # configuration: upstream's settings + the variant's gdi=disable, in order
    assert f"config-settings = '{UPSTREAM_SETTINGS} gdi=disable'" in out
    assert "build = [\n" + "".join(f"    '{t}-win_amd64',\n" for t in tags) + "]" in out
    assert "build-verbosity = 1" in out  # upstream's
    assert "test-command = 'python {project}/scripts/smoke_test.py --variant nanoserver'" in out
    assert "test-requires = []" in out
    assert "archs = [\n    'AMD64',\n]" in out
    # repair: cibuildwheel's Windows default, then the audit gate from recipe.audit
    assert "    'delvewheel repair -w {dest_dir} {wheel}',\n" in out
    gate = "pillow-variants cibw gate {dest_dir} --surface nanoserver-ltsc2022 --policy both"
    assert f"    '{gate}',\n" in out
    # upstream build_env.cmd's variables, the prefix first
    for line in (
        "INCLUDE = '$PILLOW_VARIANTS_PREFIX\\\\include;$INCLUDE'",
        "INCLIB = '$PILLOW_VARIANTS_PREFIX\\\\lib'",
        "LIB = '$PILLOW_VARIANTS_PREFIX\\\\lib;$LIB'",
        "PATH = '$PATH;$PILLOW_VARIANTS_PREFIX\\\\bin'",
        "DISTUTILS_USE_SDK = '1'",
        "py_vcruntime_redist = 'true'",
    ):
        assert line in out, line
    # the commands, in order
    steps = [
        'set "PILLOW_VARIANTS_PREFIX=%CD%\\build\\cibw-nanoserver\\deps"',
        "pillow-variants deps build recipes\\nanoserver.toml --toolchain msvc"
        ' --prefix "%PILLOW_VARIANTS_PREFIX%" --only ',
        "pillow-variants cibw prepare recipes\\nanoserver.toml build\\cibw-nanoserver\\pillow",
        '"%ProgramFiles(x86)%\\Microsoft Visual Studio\\Installer\\vswhere.exe" -latest'
        " -prerelease -requires Microsoft.VisualStudio.Component.VC.Tools.x86.x64"
        " -property installationPath -products *",
        'call "%VSINSTALL%\\VC\\Auxiliary\\Build\\vcvarsall.bat" x86_amd64',
        'python -m cibuildwheel --platform windows --config-file "%~dp0cibuildwheel.toml"'
        " --output-dir wheelhouse build\\cibw-nanoserver\\pillow",
    ]
    at = [out.index(s) for s in steps]
    assert at == sorted(at)
    assert out.count("if errorlevel 1 exit /B 1") == 4
    # imagequant=disable: not built, as upstream's --no-imagequant
    assert "--only libjpeg zlib xz libwebp libtiff libpng brotli freetype lcms2 openjpeg" in out
    assert "#   libimagequant: config-setting imagequant=disable" in out
    # per dependency, the MSVC commands deps build runs (from the msvc toolchain's plan)
    assert "rem freetype (msbuild, in <source>; then" in out
    assert (
        'MSBuild.exe builds\\windows\\vc2010\\freetype.vcxproj /t:Build "/p:Configuration=Release'
        ' Static" /p:Platform=x64 /m' in out
    )
    assert "cmake.exe -DCMAKE_BUILD_TYPE=Release -DCMAKE_VERBOSE_MAKEFILE=ON" in out
    # the wheels: the recipe's local version
    for t in tags:
        assert f"pillow-13.0.0+nanoserver-{t.removesuffix('t')}-{t}-win_amd64.whl" in out
    # the same text is in the files written
    config = (tmp_path / "cibuildwheel.toml").read_text()
    script = (tmp_path / "build-windows.cmd").read_bytes()
    assert config in out
    assert b"\r\n" in script and script.decode().replace("\r\n", "\n") in out


def test_upstream_dry_run_gates_on_servercore_without_patches(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = dry_run(capsys, tmp_path, UPSTREAM, "--python", "3.13")
    assert f"config-settings = '{UPSTREAM_SETTINGS}'" in out
    assert "gdi=disable" not in out
    gate = "pillow-variants cibw gate {dest_dir} --surface servercore-ltsc2022 --policy surface"
    assert gate in out
    assert "--variant upstream" in out
    assert "build = [\n    'cp313-win_amd64',\n]" in out
    assert (
        "pillow-13.0.0-cp313-cp313-win_amd64.whl" in out and "+" not in out.split("# expected")[1]
    )


def test_libavif_codecs_are_no_msvc_steps_of_their_own() -> None:
    """As upstream: libavif's build fetches its codecs (LOCAL); only zig builds them first."""
    plan = cibw.plan_build(load_recipe(NANO))
    assert plan.deps[-1] == "libavif"
    assert not {"dav1d", "aom", "libyuv"} & set(plan.deps)
    assert not [line for line in plan.dependency_commands() if "aom" in line.split()[:2]]


def test_config_is_what_cibuildwheel_accepts_and_evaluates(tmp_path: Path) -> None:
    plan = cibw.plan_build(load_recipe(NANO), work_dir="D:\\b w\\work")
    config_file, _ = plan.write(tmp_path)
    data = tomllib.loads(config_file.read_text())
    schema_text = resources.files("cibuildwheel") / "resources" / "cibuildwheel.schema.json"
    schema = json.loads(schema_text.read_text())
    jsonschema.validate(data["tool"]["cibuildwheel"], schema)  # the table cibuildwheel defines
    # cibuildwheel's own build selection from this file (works on any host)
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "pyproject.toml").write_text('[project]\nname = "pillow"\nversion = "13.0.0"\n')
    listed = subprocess.run(
        [sys.executable, "-m", "cibuildwheel", "--print-build-identifiers", "--platform",
         "windows", "--config-file", str(config_file), str(package)],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert listed == plan.identifiers
    # its environment evaluation: Windows paths come out intact, the prefix first
    windows = data["tool"]["cibuildwheel"]["windows"]
    text = " ".join(f'{k}="{v}"' for k, v in windows["environment"].items())  # as cibuildwheel
    before = {
        "PILLOW_VARIANTS_PREFIX": "D:\\b w\\work\\deps",
        "INCLUDE": "C:\\VS\\include",
        "LIB": "C:\\VS\\lib",
        "PATH": "C:\\venv\\Scripts;C:\\Windows",
    }
    env = parse_environment(text).as_dictionary(prev_environment=dict(before))
    assert env["INCLUDE"] == "D:\\b w\\work\\deps\\include;C:\\VS\\include"
    assert env["LIB"] == "D:\\b w\\work\\deps\\lib;C:\\VS\\lib"
    assert env["INCLIB"] == "D:\\b w\\work\\deps\\lib"
    assert env["PATH"] == "C:\\venv\\Scripts;C:\\Windows;D:\\b w\\work\\deps\\bin"
    assert env["DISTUTILS_USE_SDK"] == "1" and env["py_vcruntime_redist"] == "true"
    assert 'set "PILLOW_VARIANTS_PREFIX=D:\\b w\\work\\deps"' in plan.script()


@pytest.mark.network
def test_flags_match_upstream_pillows_own_build_files(cache: Path) -> None:
    """The sdist's winbuild/build_prepare.py build_env() and pyproject's cibuildwheel
    config-settings are what the plan reproduces."""
    recipe = load_recipe(UPSTREAM)
    sdist = fetch_source(recipe, "pillow", cache_dir=cache).path
    with tarfile.open(sdist) as tar:
        prepare = tar.extractfile("pillow-13.0.0/winbuild/build_prepare.py").read().decode()
        pyproject = tomllib.loads(tar.extractfile("pillow-13.0.0/pyproject.toml").read().decode())
    assert pyproject["tool"]["cibuildwheel"]["config-settings"] == UPSTREAM_SETTINGS
    plan = cibw.plan_build(recipe)
    assert plan.config()["config-settings"] == UPSTREAM_SETTINGS
    body = prepare[prepare.index("def build_env(") :]
    body = body[: body.index("write_script(")]
    upstream = dict(re.findall(r'cmd_(?:set|append)\("(\w+)", "([^"]*)"\)', body))
    assert upstream == {
        "INCLUDE": "{inc_dir}",
        "INCLIB": "{lib_dir}",
        "LIB": "{lib_dir}",
        "PATH": "{bin_dir}",
        "DISTUTILS_USE_SDK": "1",
        "py_vcruntime_redist": "true",
    }
    ours = cibw.environment()
    assert set(ours) == set(upstream)
    for name in ("DISTUTILS_USE_SDK", "py_vcruntime_redist"):
        assert ours[name] == upstream[name]
    assert "call {vcvarsall} {vcvars_arch}" in body
    assert '"AMD64": {"vcvars_arch": "x86_amd64"' in prepare
    assert f'vcvarsall.bat" {cibw.VCVARS_ARCH}' in plan.script()


def test_python_selection_and_unknown_versions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = load_recipe(NANO)
    assert cibw.build_identifiers(recipe, ["3.13"]) == ["cp313-win_amd64"]
    plan = cibw.plan_build(recipe, pythons=["3.14", "3.14t"])
    assert plan.identifiers == ["cp314-win_amd64", "cp314t-win_amd64"]
    assert plan.wheel_names() == [  # free-threaded: the interpreter tag has no t, the ABI has
        "pillow-13.0.0+nanoserver-cp314-cp314-win_amd64.whl",
        "pillow-13.0.0+nanoserver-cp314-cp314t-win_amd64.whl",
    ]
    rc = main(["cibw", "build", str(NANO), "--dry-run", "--plan-dir", str(tmp_path),
               "--python", "3.9"])  # fmt: skip
    assert rc == 2
    assert "error: Python 3.9 not in recipe nanoserver" in capsys.readouterr().err


@pytest.mark.skipif(sys.platform == "win32", reason="the refusal is for non-Windows hosts")
def test_without_dry_run_a_linux_host_is_refused_before_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(
        ["cibw", "build", str(NANO), "--toolchain", "msvc", "--plan-dir", str(tmp_path / "p")]
    )
    assert rc == 2
    assert "needs a Windows host with Visual Studio" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


def test_toml_writer_round_trips_awkward_strings() -> None:
    data = {"a": {"q": 'it\'s "x"', "p": "C:\\x\\y", "n": 3, "l": ["a'b", "c"], "e": []}}
    assert tomllib.loads(cibw.toml_tables(data)) == data


@pytest.mark.network
def test_prepare_gives_the_patched_tree_with_the_local_version(
    cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "pillow"
    rc = main(["cibw", "prepare", str(NANO), str(dest), "--cache-dir", str(cache)])
    assert rc == 0
    assert capsys.readouterr().out.strip() == str(dest)
    assert "tag_build = +nanoserver" in (dest / "setup.cfg").read_text()
    assert "PILLOW_NO_GDI" in (dest / "src" / "display.c").read_text()  # patch 0001 applied


@pytest.mark.network
def test_gate_audits_the_repaired_wheel_with_the_recipes_surface(
    official_wheel: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "repaired"
    dest.mkdir()
    (dest / official_wheel.name).write_bytes(official_wheel.read_bytes())
    # the official wheel: fine on servercore, not on nanoserver (USER32/GDI32)
    assert main(["cibw", "gate", str(dest), "--surface", "servercore-ltsc2022",
                 "--policy", "surface"]) == 0  # fmt: skip
    assert main(["cibw", "gate", str(dest), "--surface", "nanoserver-ltsc2022",
                 "--policy", "both"]) == 1  # fmt: skip
    assert "USER32" in capsys.readouterr().out.upper()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["cibw", "gate", str(empty)]) == 2
