"""The zig toolchain's generated files, wrappers and plans (no compiler needed: a fake zig)."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from pillow_variants.errors import ToolchainError
from pillow_variants.recipe.model import load_recipe
from pillow_variants.toolchains import get_toolchain
from pillow_variants.toolchains.base import (
    JOBSERVER,
    BuildPaths,
    Command,
    Copy,
    is_msvc_only_edit,
)
from pillow_variants.toolchains.zig import (
    COMPILE_FLAGS,
    TARGET,
    ZIG_DEPS,
    ZigToolchain,
    link_runtime,
    strip_msvc_flags,
    ucrt_import_libraries,
)

ROOT = Path(__file__).resolve().parents[2]
PATHS = BuildPaths(source="/w/src", build="/w/build", stage="/w/stage", prefix="/p")
posix_only = pytest.mark.skipif(os.name == "nt", reason="POSIX shell wrappers")


@pytest.fixture(scope="module")
def recipe():
    return load_recipe(ROOT / "recipes" / "upstream.toml")


@pytest.fixture
def fake_zig(tmp_path: Path) -> Path:
    """A 'zig' that records its arguments, one per line, in args.txt."""
    exe = tmp_path / "fakezig"
    exe.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path / "args.txt"}\n')
    exe.chmod(0o755)
    return exe


def toolchain(**kw) -> ZigToolchain:
    kw = {
        "zig": "/z/zig",
        "nasm": "/usr/bin/nasm",
        "cmake": "/v/cmake",
        "ninja": "/v/ninja",
        "meson": "/v/meson",
        **kw,
    }
    tc = ZigToolchain(**kw)
    tc.workdir = "/tc"
    return tc


def test_get_toolchain():
    assert isinstance(get_toolchain("zig"), ZigToolchain)
    with pytest.raises(ToolchainError, match="unknown toolchain"):
        get_toolchain("gcc")


def test_generated_cmake_toolchain_and_meson_cross_file():
    files = toolchain().generated_files("/tc")
    cmake = files["/tc/toolchain.cmake"]
    assert "set(CMAKE_SYSTEM_NAME Windows)" in cmake
    assert 'set(CMAKE_C_COMPILER "/tc/zig-cc")' in cmake
    assert 'set(CMAKE_CXX_COMPILER "/tc/zig-c++")' in cmake
    assert 'set(CMAKE_AR "/tc/zig-ar")' in cmake
    assert 'set(CMAKE_RC_COMPILER "/tc/zig-rc")' in cmake
    assert 'set(CMAKE_ASM_NASM_COMPILER "/usr/bin/nasm")' in cmake
    assert "set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)" in cmake
    cross = files["/tc/cross.ini"]
    assert "c = '/tc/zig-cc'" in cross and "system = 'windows'" in cross
    assert "pkg-config = 'false'" in cross
    no_nasm = toolchain(nasm="").generated_files("/tc")["/tc/toolchain.cmake"]
    assert "NASM" not in no_nasm


@posix_only
def test_compiler_wrapper_logs_and_targets_windows(tmp_path, fake_zig):
    tc = toolchain(zig=str(fake_zig))
    tc.setup(str(tmp_path / "tc"))
    subprocess.run([tc.wrapper("cc"), "-c", "-mavx2", "a.c", "-o", "a.obj"], check=True)
    args = (tmp_path / "args.txt").read_text().split("\n")
    assert args[:3] == ["cc", "-target", "x86_64-windows-gnu"]
    # one section per function and data item: what lets the link drop unused library code
    assert args[3:5] == ["-ffunction-sections", "-fdata-sections"]
    assert "-mavx2" in args  # compiling keeps ISA flags
    log = Path(tc.compile_log).read_text().splitlines()
    assert log == ["cc -c -mavx2 a.c -o a.obj"]


@posix_only
def test_link_drops_isa_flags_keeps_subsystem_flags(tmp_path, fake_zig):
    tc = toolchain(zig=str(fake_zig))
    tc.setup(str(tmp_path / "tc"))
    argv = [
        tc.wrapper("c++"),
        "-mpclmul",
        "-msse4.2",
        "-march=haswell",
        "-municode",
        "a.obj",
        "-o",
        "a b.exe",
        "-lkernel32",
    ]
    subprocess.run(argv, check=True)
    args = (tmp_path / "args.txt").read_text().splitlines()
    assert args == [
        "c++",
        "-target",
        "x86_64-windows-gnu",
        *COMPILE_FLAGS,
        "-municode",
        "a.obj",
        "-o",
        "a b.exe",
        "-lkernel32",
    ]


@posix_only
def test_tool_wrappers(tmp_path, fake_zig):
    tc = toolchain(zig=str(fake_zig))
    env = tc.setup(str(tmp_path / "tc"))
    subprocess.run([tc.wrapper("ar"), "qc", "x.a", "y.obj"], check=True)
    assert (tmp_path / "args.txt").read_text().splitlines() == ["ar", "qc", "x.a", "y.obj"]
    assert env["ZIG_GLOBAL_CACHE_DIR"] == str(tmp_path / "tc" / "zig-cache")
    assert env["PKG_CONFIG_LIBDIR"].startswith(str(tmp_path / "tc"))


def test_strip_msvc_flags():
    assert strip_msvc_flags("-DCMAKE_C_FLAGS=-nologo -DLZMA_API_STATIC") == (
        "-DCMAKE_C_FLAGS=-DLZMA_API_STATIC"
    )
    assert strip_msvc_flags("-DCMAKE_CXX_FLAGS=-nologo -d2FH4-") == ""
    assert strip_msvc_flags("-DBUILD_SHARED_LIBS:BOOL=OFF") == "-DBUILD_SHARED_LIBS:BOOL=OFF"


def test_msvc_only_edits_are_classified_by_content(recipe):
    webp = recipe.dependencies["libwebp"].upstream_edits[0]
    assert "pragma comment" in is_msvc_only_edit(webp)
    jpeg = recipe.dependencies["libjpeg"].upstream_edits[0]
    assert "generator-platform" in is_msvc_only_edit(jpeg)
    (openjpeg,) = recipe.dependencies["openjpeg"].upstream_edits
    assert is_msvc_only_edit(openjpeg) == ""  # a code fix: every toolchain applies it


def test_every_recipe_dependency_has_a_zig_description(recipe):
    assert {d.project for d in recipe.dependencies.values()} <= set(ZIG_DEPS)


def test_plan_cmake_libjpeg(recipe):
    p = toolchain().plan(recipe, "libjpeg", PATHS, 2)
    configure, build = (s for s in p.steps if isinstance(s, Command))
    assert configure.argv[:7] == ("/v/cmake", "-G", "Ninja", "-S", "/w/src", "-B", "/w/build")
    assert "-DCMAKE_TOOLCHAIN_FILE=/tc/toolchain.cmake" in configure.argv
    assert "-DCMAKE_BUILD_TYPE=Release" in configure.argv
    assert "-DCMAKE_FIND_ROOT_PATH=/p" in configure.argv
    assert "-DWITH_JPEG8:BOOL=TRUE" in configure.argv and "-DWITH_TOOLS=OFF" in configure.argv
    assert build.argv == (
        "/v/cmake",
        "--build",
        "/w/build",
        "--parallel",
        "2",
        "--target",
        "jpeg-static",
    )
    assert [s.what for s in p.skipped_features] == ["target djpeg-static"]
    assert [s.what.split(":")[0] for s in p.skipped_edits] == ["CMakeLists.txt"]
    assert p.edits == []
    libs = [s for s in p.steps if isinstance(s, Copy) and s.dest == "/w/stage/lib"]
    assert [(s.base, s.pattern) for s in libs] == [("/w/build", "libjpeg.a")]


def test_plan_appends_the_recipes_zig_options_last():
    """nanoserver's libwebp choices reach the zig build after every other option, so its
    CMAKE_C_FLAGS_RELEASE (-Os) replaces CMake's Release default, and the manifest notes them."""
    nano = load_recipe(ROOT / "recipes" / "nanoserver.toml")
    p = toolchain().plan(nano, "libwebp", PATHS, 2)
    zig_options = ["-DCMAKE_C_FLAGS=-mno-sse4.1 -mno-avx2", "-DCMAKE_C_FLAGS_RELEASE=-Os -DNDEBUG"]
    assert p.options[:2] == ["-DBUILD_SHARED_LIBS:BOOL=OFF", "-DWEBP_LINK_STATIC:BOOL=OFF"]
    assert p.options[-2:] == zig_options
    configure = next(s for s in p.steps if isinstance(s, Command))
    assert configure.argv[-2:] == tuple(zig_options)
    assert any("zig_options" in n and "-Os" in n for n in p.notes)
    # the upstream recipe has none
    upstream = load_recipe(ROOT / "recipes" / "upstream.toml")
    assert not any("-Os" in o for o in toolchain().plan(upstream, "libwebp", PATHS, 2).options)


@posix_only
@pytest.mark.parametrize("kernel", ["sse4.1", "avx2"])
def test_real_wrapper_fails_libwebps_check_for_the_kernels_the_recipe_drops(tmp_path, kernel):
    """nanoserver drops libwebp's SSE4.1/AVX2 kernels by putting -mno-X in CMAKE_C_FLAGS:
    libwebp's cmake/cpu.cmake then compiles its check with ``-mno-X ... -mX`` (CMake's order)
    and finds no X. That relies on zig cc letting the -mno-X win when it compiles (clang's
    rule is the last flag wins, and zig's -E follows it): if a zig upgrade changes this, the
    kernels come back without an error and ``_webp`` outgrows the official module."""
    nano = load_recipe(ROOT / "recipes" / "nanoserver.toml")
    cflags = next(
        o.split("=", 1)[1]
        for o in nano.dependencies["libwebp"].zig_options
        if o.startswith("-DCMAKE_C_FLAGS=")
    ).split()
    assert f"-mno-{kernel}" in cflags
    macro = {"sse4.1": "__SSE4_1__", "avx2": "__AVX2__"}[kernel]
    (tmp_path / "check.c").write_text(f"#ifndef {macro}\n#error no {kernel}\n#endif\n")
    tc = ZigToolchain()
    tc.setup(str(tmp_path / "tc"))
    check = [tc.wrapper("cc"), *cflags, f"-m{kernel}", "-c", "check.c", "-o", "check.obj"]
    proc = subprocess.run(check, cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode != 0 and f"no {kernel}" in proc.stderr
    plain = [tc.wrapper("cc"), f"-m{kernel}", "-c", "check.c", "-o", "check.obj"]
    subprocess.run(plain, cwd=tmp_path, check=True, capture_output=True)  # the control


def test_plan_without_nasm_records_missing_simd(recipe):
    p = toolchain(nasm="").plan(recipe, "libjpeg", PATHS, 2)
    assert "-DWITH_SIMD=OFF" in p.options
    assert any(s.what == "SIMD" and "nasm" in s.reason for s in p.skipped_features)


def test_plan_libtiff_adapts_msvc_options(recipe):
    p = toolchain().plan(recipe, "libtiff", PATHS, 2)
    assert "-DWebP_LIBRARY=/p/lib/libwebp.a" in p.options
    assert "-DCMAKE_C_FLAGS=-DLZMA_API_STATIC" in p.options
    assert not any("-nologo" in o for o in p.options)
    assert len(p.skipped_edits) == 2 and all("pragma" in s.reason for s in p.skipped_edits)


def test_plan_freetype_uses_cmake_with_mapped_options(recipe):
    p = toolchain().plan(recipe, "freetype", PATHS, 2)
    assert p.build_system == "cmake"
    assert {
        "-DFT_REQUIRE_ZLIB=ON",
        "-DFT_REQUIRE_PNG=ON",
        "-DFT_REQUIRE_BROTLI=ON",
        "-DFT_DISABLE_HARFBUZZ=ON",
    } <= set(p.options)
    assert [s.what for s in p.skipped_features] == ["FT_CONFIG_OPTION_USE_HARFBUZZ"]
    assert p.steps[1].argv[-2:] == ("--target", "freetype")
    assert all(
        ".props" in s.what or ".vcxproj" in s.what or "pragma" in s.reason for s in p.skipped_edits
    )


def test_plan_lcms2_uses_meson(recipe):
    p = toolchain().plan(recipe, "lcms2", PATHS, 2)
    setup, compile_ = (s.argv for s in p.steps if isinstance(s, Command))
    assert setup[:4] == ("/v/meson", "setup", "/w/build", "/w/src")
    assert "--cross-file=/tc/cross.ini" in setup and "-Ddefault_library=static" in setup
    assert compile_ == ("/v/meson", "compile", "-C", "/w/build", "-j", "2")


def test_plan_for_a_jobserver_names_no_job_count(recipe, tmp_path):
    """Under the builder's jobserver, ninja must be run without -j (an explicit count turns
    its jobserver client off) -- cmake and meson alike."""
    for name in ("libjpeg", "lcms2"):
        commands = [
            s.argv
            for s in toolchain().plan(recipe, name, PATHS, JOBSERVER).steps
            if isinstance(s, Command)
        ]
        assert commands[1][:4] in (
            ("/v/cmake", "--build", "/w/build", "--target"),
            ("/v/meson", "compile", "-C", "/w/build"),
        )
        assert not {"-j", "--parallel"} & set(commands[1])
    for version, expected in (("1.13.2.git.kitware.jobserver-pipe-1", True), ("1.11.1", False)):
        ninja = tmp_path / f"ninja-{version}"  # a file each: versions are cached by argv
        ninja.write_text(f"#!/bin/sh\necho {version}\n")
        ninja.chmod(0o755)
        assert toolchain(ninja=str(ninja)).jobserver() is expected


@pytest.mark.parametrize("name", ["libimagequant", "fribidi"])
def test_unbuildable_dependencies_say_why(recipe, name):
    p = toolchain().plan(recipe, name, PATHS, 2)
    assert p.unbuildable and p.steps == []


def test_plan_libavif_links_the_codecs_built_before_it(recipe):
    """No LOCAL option survives (each would download a codec at configure time); the codecs
    come from the prefix, built as dependencies of their own."""
    assert recipe.dependencies["libavif"].depends == ["dav1d", "aom", "libyuv"]
    p = toolchain().plan(recipe, "libavif", PATHS, 2)
    assert not p.unbuildable
    configure, build = (s.argv for s in p.steps if isinstance(s, Command))
    assert not [o for o in configure if o.endswith("=LOCAL")], configure
    for opt in ("-DAVIF_CODEC_AOM=SYSTEM", "-DAVIF_CODEC_DAV1D=SYSTEM", "-DAVIF_LIBYUV=SYSTEM"):
        assert opt in configure
    assert "-DAVIF_CODEC_AOM_DECODE=OFF" in configure  # dav1d decodes, as upstream
    assert "-DCMAKE_INTERPROCEDURAL_OPTIMIZATION=ON" not in configure  # bitcode, not COFF
    assert "-DCMAKE_FIND_ROOT_PATH=/p" in configure
    assert build[-2:] == ("--target", "avif_static")  # libavif.a (libavif_internal.a + merge)
    assert [s.what for s in p.skipped_features] == ["AVIF_LIBSHARPYUV"]
    assert any(isinstance(s, Copy) and s.pattern == "libavif.a" for s in p.steps)


def test_plan_aom_is_an_encoder_with_win32_threads(recipe):
    configure = toolchain().plan(recipe, "aom", PATHS, 2).steps[0].argv
    assert {"-DCONFIG_AV1_DECODER=0", "-DENABLE_TESTS=0", "-DENABLE_TOOLS=0"} <= set(configure)
    assert "-DENABLE_EXAMPLES=0" in configure and "-DENABLE_NASM=ON" in configure
    # FindThreads' checks seeded as failed: aom_pthread.h then uses Win32, not winpthreads
    for check in ("LIBC_PTHREAD", "PTHREADS_CREATE", "PTHREAD_CREATE"):
        assert f"-DCMAKE_HAVE_{check}=OFF" in configure


def test_plan_dav1d_is_a_static_meson_build_without_tools(recipe):
    setup = toolchain().plan(recipe, "dav1d", PATHS, 2).steps[0].argv
    assert setup[:2] == ("/v/meson", "setup")
    assert {"-Ddefault_library=static", "-Denable_tools=false", "-Denable_tests=false"} <= set(
        setup
    )


def test_plan_libyuv_builds_only_the_library_without_jpeg(recipe):
    configure, build = (
        s.argv for s in toolchain().plan(recipe, "libyuv", PATHS, 2).steps if isinstance(s, Command)
    )
    assert "-DCMAKE_DISABLE_FIND_PACKAGE_JPEG=ON" in configure
    assert build[-2:] == ("--target", "yuv")


def test_identity_names_zig_version_and_target(tmp_path, fake_zig):
    (tmp_path / "zigv").write_text("#!/bin/sh\necho 0.99.1\n")
    (tmp_path / "zigv").chmod(0o755)
    ident = ZigToolchain(zig=str(tmp_path / "zigv"), nasm="", cmake="", meson="").identity()
    assert ident["version"] == "0.99.1" and ident["target"] == "x86_64-windows-gnu"
    assert ident["nasm"] == "absent"
    assert ident["compile_flags"].split() == list(COMPILE_FLAGS)


def test_check_host_needs_cmake(tmp_path):
    (tmp_path / "zigv").write_text("#!/bin/sh\necho 0.99.2\n")
    (tmp_path / "zigv").chmod(0o755)
    with pytest.raises(ToolchainError, match="needs cmake"):
        ZigToolchain(zig=str(tmp_path / "zigv"), cmake="").check_host()


def test_real_zig_is_the_pinned_package():
    """The toolchain runs the zig inside the ziglang wheel, not one from PATH."""
    tc = ZigToolchain()
    assert Path(tc.zig).parent.name == "ziglang"
    assert tc.version.count(".") == 2, tc.version
    assert sys.executable  # the wrappers do not depend on this interpreter


def _coff_code_bytes(obj: bytes) -> int:
    """Bytes of executable code in a COFF object (sections flagged IMAGE_SCN_CNT_CODE)."""
    (count,) = struct.unpack_from("<H", obj, 2)
    table = 20 + struct.unpack_from("<H", obj, 16)[0]
    headers = (obj[table + 40 * i : table + 40 * (i + 1)] for i in range(count))
    return sum(struct.unpack_from("<I", h, 16)[0] for h in headers if h[36] & 0x20)


@posix_only
def test_real_wrapper_compiles_loops_without_unrolled_vector_copies(tmp_path):
    """A simple loop through the cc wrapper at CMake's Release level (-O3): one scalar loop,
    not clang's vector body + unrolled copies + remainder, which is what a direct zig cc
    makes of it (the bytes CODEGEN_FLAGS exist to save)."""
    tc = ZigToolchain()
    tc.setup(str(tmp_path / "tc"))
    (tmp_path / "l.c").write_text(
        "void add(float *restrict a, const float *restrict b, int n)\n"
        "{ for (int i = 0; i < n; i++) a[i] += b[i] * 3.0f; }\n"
    )
    sizes = {}
    for name, cc in (("wrapper", [tc.wrapper("cc")]), ("zig", [tc.zig, "cc", "-target", TARGET])):
        subprocess.run([*cc, "-O3", "-c", "l.c", "-o", f"{name}.obj"], cwd=tmp_path, check=True)
        sizes[name] = _coff_code_bytes((tmp_path / f"{name}.obj").read_bytes())
    assert 0 < sizes["wrapper"] * 2 < sizes["zig"], sizes


@posix_only
def test_real_wrapper_objects_let_the_link_drop_unused_functions(tmp_path):
    """The generated cc wrapper with the real zig: one section per function, so a DLL linked
    from the object keeps the function it exports and drops the one nothing calls (the
    static libraries' unused code). With zig's default (one .text per object) both stay."""
    tc = ZigToolchain()
    tc.setup(str(tmp_path / "tc"))
    marker = 0x5A17DEAD
    (tmp_path / "m.c").write_text(
        "__declspec(dllexport) int used(int x) { return x * 3; }\n"
        f"int unused(int x) {{ return x ^ {marker:#x}; }}\n"
    )
    subprocess.run(
        [tc.wrapper("cc"), "-O2", "-c", "m.c", "-o", "m.obj"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    assert b".text$unused" in (tmp_path / "m.obj").read_bytes()  # a section of its own
    link = [tc.zig, "lld-link", "/dll", "/noentry", "/machine:x64", "/out:m.dll", "m.obj"]
    subprocess.run(link, cwd=tmp_path, check=True, capture_output=True)
    dll = (tmp_path / "m.dll").read_bytes()
    assert struct.pack("<I", marker) not in dll
    assert b"used" in dll  # the export survived


@posix_only
def test_rc_wrapper_emits_coff_objects(tmp_path, fake_zig):
    tc = toolchain(zig=str(fake_zig))
    tc.setup(str(tmp_path / "tc"))
    subprocess.run([tc.wrapper("rc"), "/fo", "v.res", "v.rc"], check=True)
    args = (tmp_path / "args.txt").read_text().splitlines()
    assert args == ["rc", "/:output-format", "coff", "/:target", "x64", "/fo", "v.res", "v.rc"]


def test_identity_changes_with_the_generated_files():
    a = toolchain(nasm="")
    files = a.generated_files("/tc")
    assert all(" ".join(COMPILE_FLAGS) in files[a.wrapper(t)] for t in ("cc", "c++"))
    b = toolchain(nasm="")
    b.generated_files("/other")
    assert a.identity()["generated_files_sha256"] != b.identity()["generated_files_sha256"]


def test_ucrt_import_libraries_are_read_from_zigs_link_line():
    line = (
        "lld-link -lldmingw -DLL -OUT:m.pyd m.o /c/o/1/dllcrt2.obj /c/o/2/compiler_rt.lib "
        "/c/o/3/api-ms-win-crt-math-l1-1-0.lib /c/o/4/api-ms-win-crt-private-l1-1-0.lib "
        "/c/o/3/api-ms-win-crt-math-l1-1-0.lib /c/o/5/kernel32.lib"
    )
    assert ucrt_import_libraries(line) == [
        "/c/o/3/api-ms-win-crt-math-l1-1-0.lib",
        "/c/o/4/api-ms-win-crt-private-l1-1-0.lib",
    ]


#: Calls each symbol of the runtime shim: fmod (UCRT; compiler_rt defines it too), hypotf and
#: __isnan (mingw math.h helpers the UCRT lacks), and a 64 KiB stack frame (___chkstk_ms).
SHIM_USER_C = r"""
#include <stdio.h>
#include <string.h>
int __isnan(double);
float hypotf(float, float);
double fmod(double, double);
__declspec(dllexport) int probe(double x) {
    char big[65536];  /* filled at run time: the frame needs the probe */
    snprintf(big, sizeof big, "%0*d", (int)(x * 8000), 0);
    printf("fmod=%g hypotf=%g isnan=%d,%d stack=%zu\n", fmod(x, 4.0), (double)hypotf(3.0f, 4.0f),
           __isnan(x), __isnan(x - x + 0.0 / 0.0 * x), strlen(big));
    return 0;
}
/* ___chkstk_ms called directly: every register it is given must come back unchanged. */
static int probe_keeps_registers(void) {
    unsigned long long rax = 0x2345, r10 = 0x1111222233334444ULL, r11 = 0x5555666677778888ULL;
    unsigned long long rcx = 0x99999999ULL;
    __asm__ volatile("movq %0, %%rax\n movq %1, %%r10\n movq %2, %%r11\n movq %3, %%rcx\n"
                     "call ___chkstk_ms\n"
                     "movq %%rax, %0\n movq %%r10, %1\n movq %%r11, %2\n movq %%rcx, %3\n"
                     : "+m"(rax), "+m"(r10), "+m"(r11), "+m"(rcx)
                     :
                     : "rax", "r10", "r11", "rcx", "cc", "memory");
    return rax == 0x2345 && r10 == 0x1111222233334444ULL && r11 == 0x5555666677778888ULL &&
           rcx == 0x99999999ULL;
}
int main(void) { printf("registers=%d\n", probe_keeps_registers()); return probe(7.5); }
"""


@pytest.mark.wine
def test_link_runtime_keeps_zigs_runtime_archives_out_and_works(tmp_path, cache):
    """With the runtime shim and the UCRT import libraries ahead of zig's own runtime, a DLL
    takes the C library from the UCRT (as an MSVC link does) instead of pulling in zig's
    whole-object compiler_rt/zigc (~60 KB each for one symbol); an executable using every shim
    symbol (the stack probe too) runs under Wine with the right results."""
    from pillow_variants.build import crossenv
    from pillow_variants.verify import wine

    compiler = crossenv.CrossCompiler.zig()
    cc = compiler.cc + compiler.cflags  # the extensions' flags: zig's CRT builds are shared
    (tmp_path / "u.c").write_text(SHIM_USER_C)
    inputs = link_runtime(cc, tmp_path / "rt")
    assert Path(inputs[0]).name == "pv_runtime.o"

    def link(out: str, *extra: str) -> bytes:
        argv = [*cc, "-s", *extra, "u.c", "-o", out]
        subprocess.run(argv, cwd=tmp_path, check=True, capture_output=True)
        return (tmp_path / out).read_bytes()

    import pefile

    slim = pefile.PE(data=link("slim.dll", "-shared", *inputs))
    fat = pefile.PE(data=link("fat.dll", "-shared"))
    imports = {
        (e.dll.decode().lower(), i.name.decode())
        for e in slim.DIRECTORY_ENTRY_IMPORT
        for i in e.imports
    }
    assert {("api-ms-win-crt-math-l1-1-0.dll", n) for n in ("fmod", "_hypotf")} <= imports
    assert len(fat.__data__) - len(slim.__data__) > 40_000, (len(fat.__data__), len(slim.__data__))
    # the debug directory (zig's /Brepro entry) moved into .rdata: no 512-byte .buildid section
    sections = [s.Name.rstrip(b"\0") for s in slim.sections]
    assert b".buildid" in [s.Name.rstrip(b"\0") for s in fat.sections]
    assert b".buildid" not in sections and b".rdata" in sections
    assert [d.struct.Type for d in slim.DIRECTORY_ENTRY_DEBUG] == [16]  # IMAGE_DEBUG_TYPE_REPRO

    link("u.exe", *inputs)
    run = wine.run(["u.exe"], prefix=cache / "wine" / "prefix", cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr[-500:]
    assert "fmod=3.5 hypotf=5 isnan=0,1 stack=60000" in run.stdout
    assert "registers=1" in run.stdout
