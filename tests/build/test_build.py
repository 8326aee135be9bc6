"""The wheel stage's parts: config-settings, version label, cross sysconfig and environment, the
sys.platform shim, header case shims, library staging, retagging and the extension checks; then
a toy setuptools project cross-built through the real driver with zig (seconds, not minutes).
Pillow itself is built in test_build_pillow.py."""

from __future__ import annotations

import configparser
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from httpserver import validate_json
from pillow_variants.build import cross_pep517, crossenv, pillow, pysdk
from pillow_variants.cli import main
from pillow_variants.errors import ToolchainError, UserError
from pillow_variants.wheeltools import read_wheel, write_wheel
from sdkfactory import fake_sdk

# --------------------------------------------------------------------------------------------
# config-settings, version


def test_config_settings_keep_repeats_in_order_and_disable_platform_guessing() -> None:
    got = pillow.config_settings(
        ["raqm=enable", "raqm=vendor", "fribidi=vendor", "imagequant=disable", "raqm=enable"]
    )
    assert got == {
        "raqm": ["enable", "vendor"],
        "fribidi": ["vendor"],
        "imagequant": ["disable"],
        "platform-guessing": ["disable"],
    }


@pytest.mark.parametrize("bad", ["raqm", "=enable", ""])
def test_config_settings_reject_items_without_key_and_value(bad: str) -> None:
    with pytest.raises(UserError, match="KEY=VALUE"):
        pillow.config_settings([bad])


def test_local_version_goes_to_egg_info_tag_build(tmp_path: Path) -> None:
    # Pillow's sdist ships this setup.cfg
    (tmp_path / "setup.cfg").write_text(
        "[egg_info]\ntag_build = \ntag_date = 0\n\n[other]\nKey = 1\n"
    )
    pillow.set_local_version(tmp_path, "nanoserver")
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.optionxform = str  # type: ignore[assignment,method-assign]
    cfg.read(tmp_path / "setup.cfg")
    assert cfg["egg_info"]["tag_build"] == "+nanoserver"
    assert cfg["other"]["Key"] == "1"  # other sections and key case survive
    pillow.set_local_version(tmp_path, "")
    cfg.read(tmp_path / "setup.cfg")
    assert cfg["egg_info"]["tag_build"] == ""


def test_local_version_without_setup_cfg(tmp_path: Path) -> None:
    pillow.set_local_version(tmp_path, "x1")
    assert "tag_build = +x1" in (tmp_path / "setup.cfg").read_text()


def test_requires_python_is_checked_against_the_target(tmp_path: Path) -> None:
    pillow.check_requires_python(tmp_path, "3.10")  # nothing declared: nothing to refuse
    (tmp_path / "PKG-INFO").write_text("Metadata-Version: 2.4\nName: x\nRequires-Python: >=3.11\n")
    with pytest.raises(UserError, match=r"requires Python >=3.11; cannot build for 3.10"):
        pillow.check_requires_python(tmp_path, "3.10")
    (tmp_path / "pyproject.toml").write_text('[project]\nrequires-python = ">=3.9"\n')
    pillow.check_requires_python(tmp_path, "3.10")  # pyproject wins over PKG-INFO
    pillow.check_requires_python(tmp_path, "3.14")


def test_build_requirements_read_from_pyproject(tmp_path: Path) -> None:
    assert pillow.build_requirements(tmp_path) == ["setuptools>=40.8.0"]
    (tmp_path / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["pybind11", "setuptools>=77"]\nbuild-backend = "backend"\n'
    )
    assert pillow.build_requirements(tmp_path) == ["pybind11", "setuptools>=77"]
    (tmp_path / "pyproject.toml").write_text("[build-system\n")
    with pytest.raises(pillow.BuildError, match="invalid TOML"):
        pillow.build_requirements(tmp_path)


def test_satisfied_checks_versions_and_markers() -> None:
    assert pillow.satisfied(["packaging>=20"])
    assert not pillow.satisfied(["packaging<1"])
    assert not pillow.satisfied(["no-such-distribution-pv"])
    assert pillow.satisfied(['no-such-distribution-pv; python_version < "3"'])


# --------------------------------------------------------------------------------------------
# cross sysconfig and environment


def _compiler() -> crossenv.CrossCompiler:
    return crossenv.CrossCompiler(cc=["zcc"], cxx=["zc++"], ar=["zar"])


def test_sysconfig_vars_name_the_target_and_link_the_import_library(tmp_path: Path) -> None:
    sdk = fake_sdk(tmp_path / "sdk")
    v = crossenv.sysconfig_vars(sdk, _compiler())
    assert v["EXT_SUFFIX"] == ".cp313-win_amd64.pyd"
    assert v["CC"] == "zcc -O2 -DNDEBUG"
    assert v["LDSHARED"].startswith("zcc -O2 -DNDEBUG -shared")
    assert f"-L{tmp_path / 'sdk' / 'libs'} -lpython313" in v["LDSHARED"]
    assert v["LDVERSION"] == "313"  # distutils' own "-lpython"+LDVERSION resolves too
    assert v["INCLUDEPY"] == v["CONFINCLUDEPY"] == str(tmp_path / "sdk" / "include")
    assert v["CCSHARED"] == "" and v["SHLIB_SUFFIX"] == ".dll"
    assert crossenv.sysconfig_vars(sdk, _compiler(), link_cxx=True)["LDSHARED"].startswith("zc++")


def test_zig_compiler_compiles_pillow_with_the_dependencies_flags(tmp_path: Path) -> None:
    """Pillow's objects get one section per function/data item, like the dependencies, so
    the extension link drops what nothing references (MSVC: /O2 implies /Gy), and the same
    loop code generation (no unrolled or vectorized copies of every loop)."""
    zig = crossenv.CrossCompiler.zig()
    flags = [
        "-ffunction-sections",
        "-fdata-sections",
        "-fno-unroll-loops",
        "-fno-vectorize",
        "-falign-loops=1",
    ]
    assert zig.cflags == ["-O2", "-DNDEBUG", *flags]
    v = crossenv.sysconfig_vars(fake_sdk(tmp_path / "sdk"), zig)
    assert v["CC"].endswith(" ".join(["-O2", "-DNDEBUG", *flags]))
    assert " -shared -s " in v["LDSHARED"]  # stripped: no symbol table in the modules


def test_zig_compiler_links_its_runtime_shim_and_the_ucrt_first(tmp_path: Path) -> None:
    """The link runtime's inputs go on LDSHARED ahead of the Python import library and of
    everything zig appends; the runtime is prepared once, with the compile command."""
    from pillow_variants.toolchains import zig

    assert crossenv.CrossCompiler.zig().link_runtime is zig.link_runtime
    seen: list[tuple[list[str], Path]] = []

    def runtime(cc: list[str], directory: Path) -> list[str]:
        seen.append((cc, directory))
        return [str(directory / "rt.o"), "/z/api-ms-win-crt-math-l1-1-0.lib"]

    base = crossenv.CrossCompiler(cc=["zcc"], cxx=["zc++"], ar=["zar"], link_runtime=runtime)
    linked = base.with_link_runtime(tmp_path / "rt")
    assert seen == [(["zcc", "-O2", "-DNDEBUG"], tmp_path / "rt")]
    assert linked.link_runtime is None and linked.with_link_runtime(tmp_path) is linked
    sdk = fake_sdk(tmp_path / "sdk")
    for key in ("LDSHARED", "LDCXXSHARED"):
        ld = crossenv.sysconfig_vars(sdk, linked)[key]
        assert f"-shared -s {tmp_path / 'rt' / 'rt.o'} /z/api-ms-win-crt-math-l1-1-0.lib -L" in ld
    assert _compiler().with_link_runtime(tmp_path / "none") == _compiler()
    assert not (tmp_path / "none").exists()


def test_generated_sysconfigdata_is_what_sysconfig_reports(tmp_path: Path) -> None:
    sdk = fake_sdk(tmp_path / "sdk")
    for sub in ("include", "libs"):
        (tmp_path / "sdk" / sub).mkdir(parents=True)
    crossenv.write_sysconfigdata(tmp_path / "sc", sdk, crossenv.sysconfig_vars(sdk, _compiler()))
    (tmp_path / "empty").mkdir()
    env = crossenv.cross_environment(
        dict(os.environ),
        sdk=sdk,
        sysconfig_dir=tmp_path / "sc",
        include_dirs=[tmp_path / "inc"],
        library_dirs=[tmp_path / "lib"],
        link_libraries=[tmp_path / "lib" / "libz.a"],
        empty_dir=tmp_path / "empty",
        jobs=2,
    )
    code = (
        "import json, sysconfig\n"
        "print(json.dumps([sysconfig.get_platform()] + "
        "[sysconfig.get_config_var(k) for k in ('EXT_SUFFIX', 'INCLUDEPY', 'CC', 'SOABI')]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    platform, suffix, include, cc, soabi = json.loads(out.stdout)
    assert platform == "win-amd64"
    assert (suffix, soabi) == (".cp313-win_amd64.pyd", "cp313-win_amd64")
    assert include == str(tmp_path / "sdk" / "include")
    assert cc == "zcc -O2 -DNDEBUG"


def test_cross_environment_removes_what_would_let_the_host_in(tmp_path: Path) -> None:
    base = {
        "PATH": "/usr/bin",
        "HOME": "/root",
        "CC": "gcc",
        "CFLAGS": "-I/usr/include/x",
        "CPATH": "/usr/include",
        "PKG_CONFIG_PATH": "/usr/lib/pkgconfig",
        "JPEG_ROOT": "/opt/jpeg",
        "_PYTHON_SYSCONFIGDATA_NAME": "other",
        "CIBW_BUILD": "cp313-*",
    }
    env = crossenv.cross_environment(
        base,
        sdk=fake_sdk(tmp_path),
        sysconfig_dir=tmp_path / "sc",
        include_dirs=[tmp_path / "inc", tmp_path / "shims"],
        library_dirs=[tmp_path / "lib"],
        link_libraries=[tmp_path / "lib" / "libz.a", tmp_path / "lib" / "libjpeg.a"],
        empty_dir=tmp_path / "empty",
        jobs=3,
    )
    for gone in ("CC", "CPATH", "JPEG_ROOT", "CIBW_BUILD"):
        assert gone not in env
    assert env["PATH"] == "/usr/bin" and env["HOME"] == "/root"
    assert env["CFLAGS"] == f"-I{tmp_path / 'inc'} -I{tmp_path / 'shims'}"
    assert env["LDFLAGS"].split() == [
        f"-L{tmp_path / 'lib'}",
        str(tmp_path / "lib" / "libz.a"),
        str(tmp_path / "lib" / "libjpeg.a"),
    ]
    assert env["PKG_CONFIG_PATH"] == "" and env["PKG_CONFIG_LIBDIR"] == str(tmp_path / "empty")
    assert env["ProgramFiles"] == str(tmp_path / "empty")
    assert env["_PYTHON_HOST_PLATFORM"] == "win-amd64"
    assert env["_PYTHON_SYSCONFIGDATA_NAME"] == "_sysconfigdata_pv_cp313_win_amd64"
    assert env["PYTHONPATH"] == str(tmp_path / "sc")
    assert env["MAX_CONCURRENCY"] == "3"


def test_cross_environment_refuses_paths_with_whitespace(tmp_path: Path) -> None:
    with pytest.raises(ToolchainError, match="whitespace"):
        crossenv.cross_environment(
            {},
            sdk=fake_sdk(tmp_path),
            sysconfig_dir=tmp_path / "sc",
            include_dirs=[tmp_path / "my include"],
            library_dirs=[],
            link_libraries=[],
            empty_dir=tmp_path,
            jobs=1,
        )


def test_check_sdk_names_what_is_missing(tmp_path: Path) -> None:
    sdk = fake_sdk(tmp_path)
    with pytest.raises(ToolchainError, match="Python.h"):
        crossenv.check_sdk(sdk)
    (tmp_path / "include").mkdir()
    (tmp_path / "include" / "Python.h").write_text("")
    with pytest.raises(ToolchainError, match="pyconfig.h"):
        crossenv.check_sdk(sdk)
    (tmp_path / "include" / "pyconfig.h").write_text("")
    with pytest.raises(ToolchainError, match="libpython313.a"):
        crossenv.check_sdk(sdk)
    (tmp_path / "libs").mkdir()
    (tmp_path / "libs" / "libpython313.a").write_bytes(b"!<arch>\n")
    crossenv.check_sdk(sdk)


# --------------------------------------------------------------------------------------------
# the sys.platform shim


def test_target_sys_is_seen_by_the_script_only() -> None:
    code = (
        "import sys\n"
        "import os\n"
        "from sys import platform as imported\n"
        "def later():\n"
        "    return sys.platform\n"
        "sys.argv.append('--pillow-configuration=x=y')\n"
        "result = (sys.platform, imported, later(), os.sys.platform, sys.version_info[:2])\n"
    )
    namespace: dict = {"__builtins__": cross_pep517.target_builtins("win32")}
    argv = list(sys.argv)
    try:
        exec(compile(code, "setup.py", "exec"), namespace)
        assert sys.argv[-1] == "--pillow-configuration=x=y"  # edits reach the real sys
    finally:
        sys.argv[:] = argv
    platform, imported, later, real, version = namespace["result"]
    assert (platform, imported, later) == ("win32", "win32", "win32")
    assert real == sys.platform != "win32"  # modules the script imports keep the host's
    assert version == sys.version_info[:2]
    assert sys.platform != "win32"


def test_exec_setup_script_treats_exit_zero_as_success(tmp_path: Path) -> None:
    script = tmp_path / "setup.py"
    script.write_text("import sys\nsys.exit(0)\n")
    cross_pep517.exec_setup_script(script, "win32")
    script.write_text("import sys\nsys.exit('failed: ' + sys.platform)\n")
    with pytest.raises(SystemExit, match="failed: win32"):
        cross_pep517.exec_setup_script(script, "win32")


# --------------------------------------------------------------------------------------------
# header case shims, library staging


def test_case_shims_cover_spellings_that_differ_from_the_sdk(tmp_path: Path) -> None:
    sdk_headers = tmp_path / "sdk"
    sdk_headers.mkdir()
    for name in ("windows.h", "winsock2.h", "Python.h"):
        (sdk_headers / name).write_text("")
    tree = tmp_path / "tree"
    (tree / "src").mkdir(parents=True)
    (tree / "src" / "a.c").write_text(
        '#include <Windows.h>\n  #  include <WinSock2.h>\n#include "Local.h"\n'
        "#include <windows.h>\n#include <Python.h>\n#include <sys/Types.h>\n"
    )
    (tree / "src" / "b.txt").write_text("#include <Shlobj.h>\n")  # not a source file
    written = crossenv.write_case_shims(tree, sdk_headers, tmp_path / "shims")
    assert written == ["WinSock2.h", "Windows.h"]
    assert "#include <windows.h>" in (tmp_path / "shims" / "Windows.h").read_text()
    assert "#include <winsock2.h>" in (tmp_path / "shims" / "WinSock2.h").read_text()


def test_prefix_layout_and_staging(tmp_path: Path) -> None:
    prefix = tmp_path / "prefix"
    with pytest.raises(ToolchainError, match="not a dependency prefix"):
        pillow.prefix_layout(prefix)
    (prefix / "include").mkdir(parents=True)
    (prefix / "lib").mkdir()
    with pytest.raises(ToolchainError, match="no static libraries"):
        pillow.prefix_layout(prefix)
    for name in ("libz.a", "libjpeg.lib", "lcms2_static.lib", "notes.txt"):
        (prefix / "lib" / name).write_bytes(b"!<arch>\n")
    include, lib, archives = pillow.prefix_layout(prefix)
    assert [a.name for a in archives] == ["lcms2_static.lib", "libjpeg.lib", "libz.a"]
    staged = pillow.stage_libraries(archives, tmp_path / "stage")
    # Pillow's win32 branch asks for "libjpeg" and "lcms2_static": lib<name>.a must exist
    assert [p.name for p in staged] == ["liblcms2_static.a", "liblibjpeg.a", "libz.a"]
    assert all(p.resolve().parent == prefix / "lib" for p in staged)
    (prefix / "lib" / "zlib1.dll").write_bytes(b"MZ")
    with pytest.raises(ToolchainError, match="zlib1.dll"):
        pillow.prefix_layout(prefix)


def test_staging_refuses_two_archives_with_one_name(tmp_path: Path) -> None:
    (tmp_path / "libz.a").write_bytes(b"")
    (tmp_path / "z.lib").write_bytes(b"")
    with pytest.raises(ToolchainError, match="both stage as libz.a"):
        pillow.stage_libraries([tmp_path / "libz.a", tmp_path / "z.lib"], tmp_path / "stage")


def test_needs_cxx_recognises_cxx_archives(tmp_path: Path) -> None:
    (tmp_path / "libz.a").write_bytes(b"!<arch>\n deflate inflate crc32")
    (tmp_path / "libharfbuzz.a").write_bytes(b"!<arch>\n hb_font_create __cxa_guard_acquire")
    assert not pillow.needs_cxx([tmp_path / "libz.a"])
    assert pillow.needs_cxx([tmp_path / "libz.a", tmp_path / "libharfbuzz.a"])


# --------------------------------------------------------------------------------------------
# retagging


def _wheel(path: Path, version: str, tag: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    di = f"pillow-{version}.dist-info"
    files = {
        "PIL/__init__.py": b"",
        f"{di}/METADATA": f"Metadata-Version: 2.4\nName: pillow\nVersion: {version}\n".encode(),
        f"{di}/WHEEL": f"Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: {tag}\n".encode(),
    }
    return write_wheel(path, files)


def test_finalize_wheel_rewrites_host_tags(tmp_path: Path) -> None:
    raw = _wheel(
        tmp_path / "pillow-13.0.0+nanoserver-cp311-cp311-win_amd64.whl",
        "13.0.0+nanoserver",
        "cp311-cp311-win_amd64",
    )
    out, retagged = pillow.finalize_wheel(
        raw, fake_sdk(tmp_path), "13.0.0+nanoserver", tmp_path / "out"
    )
    assert retagged
    assert out.name == "pillow-13.0.0+nanoserver-cp313-cp313-win_amd64.whl"
    files = read_wheel(out)
    wheel_meta = files["pillow-13.0.0+nanoserver.dist-info/WHEEL"].decode()
    assert [ln for ln in wheel_meta.splitlines() if ln.startswith("Tag:")] == [
        "Tag: cp313-cp313-win_amd64"
    ]
    assert "Root-Is-Purelib: false" in wheel_meta


def test_finalize_wheel_keeps_a_correct_wheel_and_checks_the_version(tmp_path: Path) -> None:
    raw = _wheel(
        tmp_path / "raw" / "pillow-13.0.0-cp313-cp313-win_amd64.whl",
        "13.0.0",
        "cp313-cp313-win_amd64",
    )
    out, retagged = pillow.finalize_wheel(raw, fake_sdk(tmp_path), "13.0.0", tmp_path / "out")
    assert not retagged and out.read_bytes() == raw.read_bytes()
    with pytest.raises(
        pillow.BuildError, match="built version 13.0.0, the recipe asks for 13.0.0\\+x"
    ):
        pillow.finalize_wheel(raw, fake_sdk(tmp_path), "13.0.0+x", tmp_path / "out")


def test_check_extensions_requires_native_files(tmp_path: Path) -> None:
    raw = _wheel(
        tmp_path / "pillow-13.0.0-cp313-cp313-win_amd64.whl", "13.0.0", "cp313-cp313-win_amd64"
    )
    with pytest.raises(pillow.BuildError, match="no extension modules"):
        pillow.check_extensions(raw, fake_sdk(tmp_path))


# --------------------------------------------------------------------------------------------
# CLI errors


def _build_wheel_cli(prefix: Path, sdk: Path, python: str = "3.13") -> int:
    recipe = Path(__file__).parents[2] / "recipes" / "upstream.toml"
    argv = ["build", "wheel", str(recipe), "--python", python]
    return main([*argv, "--deps-prefix", str(prefix), "--sdk", str(sdk)])


def test_cli_reports_a_missing_sdk_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _build_wheel_cli(tmp_path, tmp_path / "nosdk")
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and "not a prepared SDK" in err and len(err.splitlines()) == 1


def test_cli_accepts_only_a_pillow_source_override(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = Path(__file__).parents[2] / "recipes" / "upstream.toml"
    argv = ["build", "wheel", str(recipe), "--python", "3.13", "--deps-prefix", str(tmp_path)]
    code = main([*argv, "--sdk", str(tmp_path), "--source", f"libjpeg={tmp_path}"])
    assert code == 2 and "builds Pillow only" in capsys.readouterr().err


def test_cli_reports_a_prefix_without_libraries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sdk_root = tmp_path / "sdk"
    sdk = fake_sdk(sdk_root)
    (sdk_root / "include").mkdir(parents=True)
    (sdk_root / "libs").mkdir()
    for f in ("include/Python.h", "include/pyconfig.h", "libs/libpython313.a"):
        (sdk_root / f).write_text("")
    (sdk_root / pysdk.SDK_MANIFEST).write_text(json.dumps(sdk.to_dict()))
    (tmp_path / "prefix" / "include").mkdir(parents=True)
    (tmp_path / "prefix" / "lib").mkdir()
    code = _build_wheel_cli(tmp_path / "prefix", sdk_root)
    err = capsys.readouterr().err
    assert code == 2 and "no static libraries" in err and len(err.splitlines()) == 1
    assert _build_wheel_cli(tmp_path / "prefix", sdk_root, "3.12") == 2
    assert "is for Python 3.13, not 3.12" in capsys.readouterr().err


def test_build_wheel_json_schema_accepts_a_record(tmp_path: Path) -> None:
    record = pillow.WheelBuild(
        wheel=tmp_path / "pillow-13.0.0-cp313-cp313-win_amd64.whl",
        recipe="upstream",
        python="3.13",
        version="13.0.0",
        tag="cp313-cp313-win_amd64",
        config_settings={"platform-guessing": ["disable"]},
        extensions=[
            pillow.ExtensionCheck("PIL/_imaging.cp313-win_amd64.pyd", "amd64", ["python313.dll"])
        ],
        seconds=12.5,
        source={"component": "pillow"},
        log=None,
        retagged=False,
    )
    validate_json(record.to_dict(), "build-wheel.schema.json")
