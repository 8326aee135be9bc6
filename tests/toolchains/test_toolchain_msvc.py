"""The MSVC toolchain's generated commands and edits, against upstream Pillow's build.

The expected strings are upstream's winbuild/build_prepare.py (Pillow 13.0.0) commands written
out literally — cmds_cmake(), cmd_msbuild(), the copy lists and the "patch" edits — so a
change in our generation that drifts from upstream fails here. MSVC cannot run on this host;
these plans are exactly what a Windows host would execute.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pillow_variants.cli import main
from pillow_variants.errors import ToolchainError
from pillow_variants.recipe.model import load_recipe
from pillow_variants.toolchains.base import BuildPaths, Command, Copy
from pillow_variants.toolchains.msvc import (
    MsvcToolchain,
    VisualStudio,
    locate_vs_files,
    msbuild_command,
    parse_set_output,
    split_msbuild_target,
    vcvars_command,
    vswhere_command,
)

ROOT = Path(__file__).resolve().parents[2]
VS = VisualStudio(
    r"C:\VS",
    r"C:\VS\MSBuild\Current\Bin\MSBuild.exe",
    r"C:\VS\VC\Auxiliary\Build\vcvarsall.bat",
)
PATHS = BuildPaths(
    source=r"C:\w\src",
    build=r"C:\w\build",
    stage=r"C:\w\stage",
    prefix=r"C:\p",
    extra_sources={"harfbuzz": r"C:\w\hb", "pillow": r"C:\w\pillow"},
)
# build_prepare.py cmds_cmake() prefix, Ninja generator (upstream's default without --nmake).
BASE = (
    "cmake.exe -DCMAKE_BUILD_TYPE=Release -DCMAKE_VERBOSE_MAKEFILE=ON "
    "-DCMAKE_RULE_MESSAGES:BOOL=OFF -DCMAKE_C_COMPILER=cl.exe -DCMAKE_CXX_COMPILER=cl.exe "
    "-DCMAKE_C_FLAGS=-nologo -DCMAKE_CXX_FLAGS=-nologo"
)
TAIL = r"-G Ninja -B C:\w\build -S ."


@pytest.fixture(scope="module")
def recipe():
    return load_recipe(ROOT / "recipes" / "upstream.toml")


def plan(recipe, name, **kw):
    return MsvcToolchain(vs=VS, platform="win32", **kw).plan(recipe, name, PATHS, 2)


def commands(recipe, name, **kw) -> list[str]:
    return plan(recipe, name, **kw).to_dict()["commands"]


@pytest.mark.parametrize(
    ("name", "options", "targets"),
    [
        (
            "libjpeg",
            "-DENABLE_SHARED:BOOL=FALSE -DWITH_JPEG8:BOOL=TRUE -DWITH_CRT_DLL:BOOL=TRUE",
            "jpeg-static djpeg-static",
        ),
        ("zlib", "-DBUILD_SHARED_LIBS:BOOL=OFF -DZLIB_COMPAT:BOOL=ON", "zlib-ng"),
        ("xz", "-DBUILD_SHARED_LIBS:BOOL=OFF", "liblzma"),
        (
            "libwebp",
            "-DBUILD_SHARED_LIBS:BOOL=OFF -DWEBP_LINK_STATIC:BOOL=OFF",
            "webp webpmux webpdemux",
        ),
        (
            "libtiff",
            '-DBUILD_SHARED_LIBS:BOOL=OFF -DWebP_LIBRARY=libwebp "-DCMAKE_C_FLAGS=-nologo '
            '-DLZMA_API_STATIC"',
            "tiff",
        ),
        ("libpng", "-DPNG_SHARED:BOOL=OFF -DPNG_TESTS:BOOL=OFF", "png_static"),
        ("brotli", "-DBUILD_SHARED_LIBS:BOOL=OFF", "brotlicommon brotlidec"),
        ("openjpeg", "-DBUILD_CODEC:BOOL=OFF -DBUILD_SHARED_LIBS:BOOL=OFF", "openjp2"),
        (
            "harfbuzz",
            '-DHB_HAVE_FREETYPE:BOOL=TRUE "-DCMAKE_CXX_FLAGS=-nologo -d2FH4-"',
            "harfbuzz",
        ),
    ],
)
def test_cmake_commands_match_upstream(recipe, name, options, targets):
    assert commands(recipe, name) == [
        f"{BASE} {options} {TAIL}",
        rf"cmake.exe --build C:\w\build --clean-first --parallel 2 --target {targets}",
    ]


def test_zig_options_are_not_passed_to_cl():
    """nanoserver's zig_options (clang flags for libwebp) leave the MSVC build upstream's."""
    nano = load_recipe(ROOT / "recipes" / "nanoserver.toml")
    assert nano.dependencies["libwebp"].zig_options
    p = plan(nano, "libwebp")
    assert p.to_dict()["commands"][0] == (
        f"{BASE} -DBUILD_SHARED_LIBS:BOOL=OFF -DWEBP_LINK_STATIC:BOOL=OFF {TAIL}"
    )
    assert any("zig_options not passed" in n for n in p.notes)


def test_libavif_uses_minsizerel_like_upstream(recipe):
    configure = commands(recipe, "libavif")[0]
    assert configure.startswith(
        "cmake.exe -DCMAKE_BUILD_TYPE=MinSizeRel -DCMAKE_VERBOSE_MAKEFILE=ON"
    )
    assert "-DCMAKE_BUILD_TYPE=Release" not in configure
    assert "-DAVIF_CODEC_AOM=LOCAL -DCONFIG_AV1_HIGHBITDEPTH=0" in configure
    assert configure.endswith("-DCMAKE_INTERPROCEDURAL_OPTIMIZATION=ON " + TAIL)


@pytest.mark.parametrize("name", ["dav1d", "aom", "libyuv"])
def test_libavif_codecs_are_left_to_libavifs_own_build(recipe, name):
    """Upstream builds them inside libavif (AVIF_CODEC_*=LOCAL), never as steps of their own."""
    p = plan(recipe, name)
    assert p.steps == [] and "inside libavif" in p.unbuildable


def test_nmake_generator(recipe):
    configure = commands(recipe, "xz", generator="NMake Makefiles")[0]
    assert configure.endswith(r'-G "NMake Makefiles" -B C:\w\build -S .')


def test_freetype_msbuild_like_upstream(recipe):
    p = plan(recipe, "freetype")
    msbuild = r"C:\VS\MSBuild\Current\Bin\MSBuild.exe builds\windows\vc2010\freetype.vcxproj"
    assert p.to_dict()["commands"] == [
        f'{msbuild} /t:Clean "/p:Configuration=Release Static" /p:Platform=x64 /m',
        f'{msbuild} /t:Build "/p:Configuration=Release Static" /p:Platform=x64 /m',
    ]
    edits = {(e.file, e.search): e.replace for e in p.edits}
    props = "builds/windows/vc2010/freetype.user.props"
    assert edits[(props, "<UserDefines></UserDefines>")] == (
        "<UserDefines>FT_CONFIG_OPTION_SYSTEM_ZLIB;FT_CONFIG_OPTION_USE_PNG;"
        "FT_CONFIG_OPTION_USE_HARFBUZZ;FT_CONFIG_OPTION_USE_BROTLI</UserDefines>"
    )
    assert edits[(props, "<UserIncludeDirectories></UserIncludeDirectories>")] == (
        r"<UserIncludeDirectories>C:\w\hb\src;C:\p\include</UserIncludeDirectories>"
    )
    assert edits[(props, "<UserLibraryDirectories></UserLibraryDirectories>")] == (
        r"<UserLibraryDirectories>C:\p\lib</UserLibraryDirectories>"
    )
    assert edits[(props, "<UserDependencies></UserDependencies>")] == (
        "<UserDependencies>zlib.lib;libpng16.lib;brotlicommon.lib;brotlidec.lib</UserDependencies>"
    )
    vcxproj = "builds/windows/vc2010/freetype.vcxproj"
    assert edits[(vcxproj, "<RuntimeLibrary>MultiThreaded</RuntimeLibrary>")] == (
        "<RuntimeLibrary>MultiThreadedDLL</RuntimeLibrary>"
    )
    assert edits[("src/autofit/afshaper.c", "#ifdef FT_CONFIG_OPTION_USE_HARFBUZZ")] == (
        '#ifdef FT_CONFIG_OPTION_USE_HARFBUZZ\n#pragma comment(lib, "harfbuzz.lib")'
    )
    # harfbuzz's source tree is needed (for its headers) before harfbuzz is built.
    assert p.extra_sources == ["harfbuzz"]
    libs = [s for s in p.steps if isinstance(s, Copy) and s.dest == r"C:\w\stage\lib"]
    assert [(s.base, s.pattern) for s in libs] == [
        (r"C:\w\src", "objs/x64/Release Static/freetype.lib")
    ]


def test_lcms2_msbuild_like_upstream(recipe):
    p = plan(recipe, "lcms2")
    msbuild = r"C:\VS\MSBuild\Current\Bin\MSBuild.exe Projects\VC2022\lcms2.sln"
    assert p.to_dict()["commands"] == [
        f"{msbuild} /t:Clean /p:Configuration=Release /p:Platform=x64 /m",
        f"{msbuild} /t:lcms2_static:Rebuild /p:Configuration=Release /p:Platform=x64 /m",
    ]
    replaced = {e.search: e.replace for e in p.edits}
    assert replaced["<PlatformToolset>v143</PlatformToolset>"] == (
        "<PlatformToolset>$(DefaultPlatformToolset)</PlatformToolset>"
    )
    assert replaced["<RuntimeLibrary>MultiThreaded</RuntimeLibrary>"] == (
        "<RuntimeLibrary>MultiThreadedDLL</RuntimeLibrary>"
    )


def test_upstream_edits_are_formatted(recipe):
    libjpeg = {e.search: e.replace for e in plan(recipe, "libjpeg").edits}
    assert libjpeg['elseif(CMAKE_GENERATOR_PLATFORM_LC MATCHES "arm64")'] == (
        "elseif(AMD64 STREQUAL ARM64)"
    )
    zlib = plan(recipe, "zlib").edits[0]
    assert (
        zlib.search == "set_target_properties(zlib-ng PROPERTIES OUTPUT_NAME zlibstatic${SUFFIX})"
    )
    assert zlib.replace == "set_target_properties(zlib-ng PROPERTIES OUTPUT_NAME zlib)"
    openjpeg = plan(recipe, "openjpeg").edits[0]
    assert "nb_tps) {\n" in openjpeg.replace and openjpeg.replace.rstrip().endswith("}")


def test_install_copies_match_upstream_names(recipe):
    def lib_copies(name):
        return [
            (s.pattern, s.rename)
            for s in plan(recipe, name).steps
            if isinstance(s, Copy) and s.dest == r"C:\w\stage\lib"
        ]

    assert lib_copies("libjpeg") == [("jpeg-static.lib", "libjpeg.lib")]
    assert lib_copies("libpng") == [("libpng16_static.lib", "libpng16.lib")]
    assert lib_copies("zlib") == [("zlib.lib", "")]
    assert lib_copies("libwebp") == [("libsharpyuv.lib", ""), ("libwebp*.lib", "")]
    headers = [
        (s.pattern, s.dest)
        for s in plan(recipe, "openjpeg").steps
        if isinstance(s, Copy) and "include" in s.dest
    ]
    assert (r"src/lib/openjp2/*.h", r"C:\w\stage\include\openjpeg-2.5.4") in headers


def test_prefix_first_in_include_and_lib(recipe):
    configure = plan(recipe, "libtiff").steps[0]
    assert isinstance(configure, Command)
    assert configure.env == (("INCLUDE", r"C:\p\include"), ("LIB", r"C:\p\lib"))
    assert configure.cwd == r"C:\w\src"


def test_fribidi_uses_pillows_cmake_file(recipe):
    p = plan(recipe, "fribidi")
    assert p.extra_sources == ["pillow"]
    first = p.steps[0]
    assert first == Copy(r"C:\w\pillow\winbuild", "fribidi.cmake", r"C:\w\src", "CMakeLists.txt")
    assert "-DARCH=AMD64 -G Ninja" in p.to_dict()["commands"][0]


def test_libimagequant_cargo(recipe):
    p = plan(recipe, "libimagequant")
    assert p.steps[0] == Command(("cargo", "build", "--release"), r"C:\w\src\imagequant-sys")


def test_vswhere_and_vcvars():
    assert vswhere_command(r"C:\Program Files (x86)") == [
        r"C:\Program Files (x86)\Microsoft Visual Studio\Installer\vswhere.exe",
        "-latest",
        "-prerelease",
        "-requires",
        "Microsoft.VisualStudio.Component.VC.Tools.x86.x64",
        "-property",
        "installationPath",
        "-products",
        "*",
    ]
    assert vcvars_command(VS) == (
        r'call "C:\VS\VC\Auxiliary\Build\vcvarsall.bat" x86_amd64 >nul && set'
    )
    env = parse_set_output("INCLUDE=C:\\a;C:\\b\nPath=C:\\x\n  junk\nVCToolsVersion=14.44.1\n")
    assert env == {"INCLUDE": r"C:\a;C:\b", "Path": r"C:\x", "VCToolsVersion": "14.44.1"}


def test_locate_vs_files_prefers_vs2017_layout_then_current():
    present = {r"C:\VS\MSBuild\Current\Bin\MSBuild.exe", r"C:\VS\VC\Auxiliary\Build\vcvarsall.bat"}
    vs = locate_vs_files(r"C:\VS", exists=present.__contains__)
    assert vs == VS
    with pytest.raises(ToolchainError, match="MSBuild.exe not found"):
        locate_vs_files(r"C:\VS", exists=lambda p: p.endswith("vcvarsall.bat"))


def test_msbuild_helpers():
    assert msbuild_command("msbuild", "a.sln", "Release", "t:Rebuild") == (
        "msbuild",
        "a.sln",
        "/t:t:Rebuild",
        "/p:Configuration=Release",
        "/p:Platform=x64",
        "/m",
    )
    assert split_msbuild_target("x/f.vcxproj:Release Static") == (
        "x/f.vcxproj",
        "Release Static",
        "Build",
    )
    assert split_msbuild_target("P/l.sln:lcms2_static:Rebuild") == (
        "P/l.sln",
        "Release",
        "lcms2_static:Rebuild",
    )
    with pytest.raises(ToolchainError):
        split_msbuild_target("Makefile")


def test_check_host_refuses_non_windows():
    with pytest.raises(ToolchainError, match="needs a Windows host with Visual Studio"):
        MsvcToolchain(platform="linux").check_host()


def test_cli_msvc_exits_2_before_doing_anything(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")  # the refusal, whatever the test host
    prefix = tmp_path / "prefix"
    rc = main(
        [
            "deps",
            "build",
            str(ROOT / "recipes" / "upstream.toml"),
            "--toolchain",
            "msvc",
            "--prefix",
            str(prefix),
            "--cache-dir",
            str(tmp_path / "cache"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: --toolchain msvc needs a Windows host with Visual Studio")
    assert len(err.strip().splitlines()) == 1
    assert not prefix.exists() and not (tmp_path / "cache").exists()
