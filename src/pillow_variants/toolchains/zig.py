"""The zig toolchain: cross-compile the dependencies for x86_64 Windows (UCRT) on any host.

``zig cc`` (from the ``ziglang`` package on PyPI) is a clang with a bundled mingw-w64 CRT, so a
Linux machine produces PE/COFF static libraries for ``x86_64-windows-gnu``. CMake wants single
executables for its compilers, so small wrapper scripts (``zig-cc``, ``zig-c++``, ``zig-ar``,
``zig-ranlib``, ``zig-rc``) are generated next to a CMake toolchain file and a Meson cross file.
cmake, ninja and meson come from PyPI; nasm (libjpeg-turbo's SIMD code) from the host, and
without it the SIMD feature is left out and recorded.

Static libraries come out as GNU-style ``lib<name>.a`` archives of COFF objects — what zig's
lld (MinGW driver) links with ``-l<name>``; the manifest records every file.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from pillow_variants.errors import ToolchainError
from pillow_variants.recipe.model import Dependency, Recipe
from pillow_variants.toolchains.base import (
    INSTALL,
    JOBSERVER,
    BuildPaths,
    Command,
    Copy,
    DepPlan,
    Skipped,
    Step,
    Toolchain,
    format_edit,
    format_text,
    is_msvc_only_edit,
    license_copies,
)

TARGET = "x86_64-windows-gnu"

#: Every object zig compiles gets one section per function and per data item, so that the
#: linker's garbage collection (lld-link's default /OPT:REF without /DEBUG) drops what nothing
#: references: a static library's unused functions no longer ride along with the used ones in
#: the same object. MSVC's /O2, upstream's flag, implies the same function-level linking (/Gy).
#: zig cc passes -fno-function-sections -fno-data-sections unless it is told otherwise.
SECTION_FLAGS = ("-ffunction-sections", "-fdata-sections")

#: Compiler flags that only MSVC's cl.exe understands; removed from CMAKE_*_FLAGS values.
MSVC_ONLY_FLAGS = ("-nologo", "-d2FH4-")


@dataclass(frozen=True)
class ZigDep:
    """How the zig toolchain builds one project (recipe ``project``) — upstream's build
    adapted, with every adaptation spelled out so the manifest can record it."""

    #: Library files the build produces, relative to the build directory.
    libs: tuple[str, ...] = ()
    #: Options added to the recipe's: tools, tests and docs off (CI time), and what a
    #: cross build has to say explicitly.
    extra_options: tuple[str, ...] = ()
    #: Recipe option → replacement ('' drops it); ``{prefix}`` is the shared prefix.
    replace_options: dict[str, str] = field(default_factory=dict)
    #: Recipe targets this toolchain does not build, with the reason.
    skip_targets: dict[str, str] = field(default_factory=dict)
    #: Recipe target → the target built instead, with the reason.
    replace_targets: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: Build system used instead of the recipe's (msbuild projects are Windows-only).
    build_system: str = ""
    #: For a replaced build system: recipe option → equivalent configure option.
    option_map: dict[str, str] = field(default_factory=dict)
    skipped_features: tuple[tuple[str, str], ...] = ()
    #: Non-empty: the dependency is not built by this toolchain, for this reason.
    unbuildable: str = ""


ZIG_DEPS: dict[str, ZigDep] = {
    "libjpeg-turbo": ZigDep(
        libs=("libjpeg.a",),
        extra_options=("-DWITH_TOOLS=OFF", "-DWITH_TESTS=OFF", "-DWITH_TURBOJPEG=OFF"),
        skip_targets={
            "djpeg-static": "upstream builds djpeg.exe for Pillow's test suite; "
            "the wheel does not contain it (WITH_TOOLS=OFF)"
        },
    ),
    "zlib-ng": ZigDep(libs=("libz.a",), extra_options=("-DZLIB_ENABLE_TESTS=OFF",)),
    "xz": ZigDep(libs=("liblzma.a",), extra_options=("-DXZ_NLS=OFF", "-DXZ_DOC=OFF")),
    "libwebp": ZigDep(
        libs=("libsharpyuv.a", "libwebp.a", "libwebpmux.a", "libwebpdemux.a"),
        replace_targets={
            "webpmux": (
                "libwebpmux",
                "upstream's 'webpmux' is the command-line tool, built for its library "
                "libwebpmux; the library alone is what the wheel links",
            )
        },
        extra_options=tuple(
            f"-DWEBP_BUILD_{t}=OFF"
            for t in (
                "ANIM_UTILS CWEBP DWEBP GIF2WEBP IMG2WEBP VWEBP WEBPINFO WEBPMUX EXTRAS".split()
            )
        ),
    ),
    "libtiff": ZigDep(
        libs=("libtiff/libtiff.a",),
        replace_options={"-DWebP_LIBRARY=libwebp": "-DWebP_LIBRARY={prefix}/lib/libwebp.a"},
        extra_options=(
            "-Dtiff-tools=OFF",
            "-Dtiff-tests=OFF",
            "-Dtiff-contrib=OFF",
            "-Dtiff-docs=OFF",
            "-Dcxx=OFF",
            # Upstream's prefix has none of these, so its libtiff builds without them.
            "-Dzstd=OFF",
            "-Dlerc=OFF",
            "-Djbig=OFF",
            "-Dlibdeflate=OFF",
        ),
    ),
    "libpng": ZigDep(libs=("libpng16.a",), extra_options=("-DPNG_TOOLS=OFF",)),
    "brotli": ZigDep(
        libs=("libbrotlicommon.a", "libbrotlidec.a"), extra_options=("-DBROTLI_DISABLE_TESTS=ON",)
    ),
    "freetype": ZigDep(
        libs=("libfreetype.a",),
        build_system="cmake",
        option_map={
            "FT_CONFIG_OPTION_SYSTEM_ZLIB": "-DFT_REQUIRE_ZLIB=ON",
            "FT_CONFIG_OPTION_USE_PNG": "-DFT_REQUIRE_PNG=ON",
            "FT_CONFIG_OPTION_USE_BROTLI": "-DFT_REQUIRE_BROTLI=ON",
            "FT_CONFIG_OPTION_USE_HARFBUZZ": "-DFT_DISABLE_HARFBUZZ=ON",
        },
        extra_options=("-DFT_DISABLE_BZIP2=ON", "-DFT_ENABLE_ERROR_STRINGS=OFF"),
        skipped_features=(
            (
                "FT_CONFIG_OPTION_USE_HARFBUZZ",
                "freetype and harfbuzz depend on each other; upstream compiles freetype against "
                "harfbuzz's source headers and closes the cycle with an MSVC "
                "'#pragma comment(lib, \"harfbuzz.lib\")'. Without it the autofitter's "
                "harfbuzz-based OpenType feature coverage is off; glyph rendering is unchanged",
            ),
        ),
    ),
    "lcms2": ZigDep(
        libs=("src/liblcms2.a",),
        build_system="meson",
        extra_options=(
            "-Ddefault_library=static",
            "-Dtests=disabled",
            "-Djpeg=disabled",
            "-Dtiff=disabled",
            "-Dutils=false",
            # upstream's VC2022 project builds with CharacterSet=Unicode (UNICODE defined), so
            # its CreateMutex is CreateMutexW; lcms2's meson build does not define it
            "-Dc_args=-DUNICODE",
        ),
    ),
    "openjpeg": ZigDep(libs=("bin/libopenjp2.a",), extra_options=("-DBUILD_TESTING=OFF",)),
    "harfbuzz": ZigDep(
        libs=("libharfbuzz.a",),
        extra_options=(
            "-DHB_BUILD_SUBSET=OFF",
            "-DHB_BUILD_UTILS=OFF",
            "-DHB_HAVE_GLIB=OFF",
            "-DHB_HAVE_ICU=OFF",
            "-DHB_HAVE_GOBJECT=OFF",
            # MSVC has no pthreads, so upstream's harfbuzz locks with Windows critical
            # sections. With zig's mingw, CMake would find winpthreads, whose code imports
            # CreateEventA and GetModuleHandleA (absent on nanoserver): keep the Windows path.
            "-DCMAKE_DISABLE_FIND_PACKAGE_Threads=ON",
        ),
    ),
    "libimagequant": ZigDep(
        unbuildable="a Rust crate built with cargo (imagequant-sys); the zig toolchain has no "
        "Rust compiler, and upstream's wheels leave it out (imagequant=disable, GPL-3)"
    ),
    "fribidi": ZigDep(
        unbuildable="upstream builds it as a separate DLL with Pillow's own "
        "winbuild/fribidi.cmake and does not ship it (LGPL, loaded at run time); "
        "it is not one of the static libraries linked into the wheel"
    ),
    # libavif's codecs: upstream's libavif build fetches and builds them (LOCAL), which needs
    # the network at configure time; here each is a dependency of its own, built from a pinned
    # tree, and libavif takes them as SYSTEM libraries. Threads: all three would pick up
    # mingw's winpthreads if found, whose code imports CreateEventA/GetModuleHandleA (absent on
    # nanoserver); MSVC has no pthreads, so upstream's codecs use Win32 threads. Keep those.
    "dav1d": ZigDep(
        libs=("src/libdav1d.a",),
        # dav1d's meson build uses its own Win32 thread layer (src/win32/thread.c) whenever
        # the host is Windows, so nothing to force there.
        extra_options=(
            "-Ddefault_library=static",
            "-Denable_examples=false",
            "-Denable_docs=false",
        ),
    ),
    "aom": ZigDep(
        libs=("libaom.a",),
        extra_options=(
            "-DAOM_TARGET_CPU=x86_64",
            "-DENABLE_NASM=ON",  # aom looks for yasm by default; nasm is what the host has
            # FindThreads would report mingw's pthread_create as usable (CMAKE_USE_PTHREADS_INIT)
            # and aom then sets HAVE_PTHREAD_H and links winpthreads. Seed its checks as failed:
            # aom_util/aom_pthread.h then maps threads to Win32 (CreateThread, SRW locks).
            "-DCMAKE_HAVE_LIBC_PTHREAD=OFF",
            "-DCMAKE_HAVE_PTHREADS_CREATE=OFF",
            "-DCMAKE_HAVE_PTHREAD_CREATE=OFF",
            "-DTHREADS_HAVE_PTHREAD_ARG=OFF",
        ),
    ),
    "libyuv": ZigDep(
        libs=("libyuv.a",),
        # libyuv's CMakeLists adds -DHAVE_JPEG (MJPEG helpers) when it finds a libjpeg, which
        # the prefix has; libavif's LocalLibyuv.cmake hides JPEG from it too.
        extra_options=("-DCMAKE_DISABLE_FIND_PACKAGE_JPEG=ON",),
    ),
    "libavif": ZigDep(
        libs=("libavif.a",),
        replace_options={
            "-DAVIF_LIBYUV=LOCAL": "-DAVIF_LIBYUV=SYSTEM",
            "-DAVIF_CODEC_AOM=LOCAL": "-DAVIF_CODEC_AOM=SYSTEM",
            "-DAVIF_CODEC_DAV1D=LOCAL": "-DAVIF_CODEC_DAV1D=SYSTEM",
            # an aom option (LocalAom.cmake passes it on); set in the aom dependency instead
            "-DCONFIG_AV1_HIGHBITDEPTH=0": "",
            # LTO would leave LLVM bitcode, not COFF objects, in the archive
            "-DCMAKE_INTERPROCEDURAL_OPTIMIZATION=ON": "",
            "-DAVIF_LIBSHARPYUV=LOCAL": "-DAVIF_LIBSHARPYUV=OFF",
        },
        # avif_static is libavif.a: libavif merged with its LOCAL dependencies (`ar -M`);
        # with SYSTEM codecs that is libavif alone, and the codec archives are linked beside it
        extra_options=("-DAVIF_BUILD_APPS=OFF", "-DAVIF_BUILD_TESTS=OFF"),
        skipped_features=(
            (
                "AVIF_LIBSHARPYUV",
                "libsharpyuv is only used for 'sharp' RGB→YUV 4:2:0 downsampling "
                "(avifRGBImage.chromaDownsampling = SHARP_YUV), which Pillow never requests; "
                "upstream fetches a second libwebp tree for it",
            ),
        ),
    ),
}


@functools.cache
def _tool_version(argv: tuple[str, ...]) -> str:
    """First line of ``argv``'s output ('' when the tool is missing or fails)."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.strip().splitlines()[0] if out.strip() else ""


def find_zig() -> str:
    """The ``zig`` executable shipped inside the ``ziglang`` wheel (no PATH lookup: the
    pinned PyPI version is what the cache key names)."""
    import importlib.util

    spec = importlib.util.find_spec("ziglang")
    if spec is None or not spec.submodule_search_locations:
        raise ToolchainError("the zig toolchain needs the 'ziglang' package: pip install ziglang")
    for loc in spec.submodule_search_locations:
        for name in ("zig", "zig.exe"):
            exe = Path(loc) / name
            if exe.is_file():
                return str(exe)
    raise ToolchainError("the 'ziglang' package has no zig executable")


def zig_command() -> list[str]:
    """argv prefix that runs zig: the one lookup every zig user shares (dependencies, the
    Pillow build, import libraries), so nothing compiles with a different zig than the cache
    key names."""
    return [find_zig()]


def find_tool(name: str) -> str:
    """A build tool: next to this Python first (PyPI's cmake/ninja/meson in the venv), then
    PATH."""
    here = Path(sys.executable).parent
    for cand in (here / name, here / f"{name}.exe"):
        if cand.is_file():
            return str(cand)
    return shutil.which(name) or ""


_SH_COMPILER = """#!/bin/sh
# Generated by pillow-variants: {tool} for {target}. Every call is logged (the cache tests
# assert that a warm rebuild compiles nothing).
printf '%s\\n' "{tool} $*" >> '{log}'
link=1
for a in "$@"; do case "$a" in -c|-S|-E|-M|-MM) link=0 ;; esac; done
if [ $link = 1 ]; then
  # Linking: drop ISA flags (-msse4.2, -mavx2, ...). They change nothing for objects that are
  # already compiled, but zig rebuilds its whole mingw-w64 CRT for every distinct CPU feature
  # set it is given, which makes CMake's try_compile checks take minutes.
  for a in "$@"; do
    shift
    case "$a" in
      -municode|-mwindows|-mconsole|-mdll|-mthreads) set -- "$@" "$a" ;;
      -m*|-march=*) ;;
      *) set -- "$@" "$a" ;;
    esac
  done
fi
exec '{zig}' {tool} -target {target} {flags} "$@"
"""

_SH_TOOL = """#!/bin/sh
# Generated by pillow-variants: zig {tool}.
exec '{zig}' {tool} "$@"
"""

_SH_RC = """#!/bin/sh
# Generated by pillow-variants: zig rc. CMake drives it like rc.exe (/fo x.res); emit a COFF
# object instead of a raw .res so that what ends up in a static library is a COFF member that
# a linker can use (what windres -O coff gives MinGW builds).
exec '{zig}' rc /:output-format coff /:target x64 "$@"
"""

_CMD_COMPILER = (
    '@echo off\r\necho {tool} %* >> "{log}"\r\n"{zig}" {tool} -target {target} {flags} %*\r\n'
)
_CMD_TOOL = '@echo off\r\n"{zig}" {tool} %*\r\n'
_CMD_RC = '@echo off\r\n"{zig}" rc /:output-format coff /:target x64 %*\r\n'

_CMAKE_TOOLCHAIN = """# Generated by pillow-variants: cross-compile for {target} with zig.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR AMD64)
set(CMAKE_C_COMPILER "{cc}")
set(CMAKE_CXX_COMPILER "{cxx}")
set(CMAKE_AR "{ar}")
set(CMAKE_RANLIB "{ranlib}")
set(CMAKE_RC_COMPILER "{rc}")
{nasm}# Look for dependencies only in the prefix (CMAKE_FIND_ROOT_PATH), never on the host.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
"""

_MESON_CROSS = """# Generated by pillow-variants: cross-compile for {target} with zig.
[binaries]
c = '{cc}'
cpp = '{cxx}'
ar = '{ar}'
ranlib = '{ranlib}'
windres = '{rc}'
pkg-config = 'false'

[host_machine]
system = 'windows'
cpu_family = 'x86_64'
cpu = 'x86_64'
endian = 'little'
"""


class ZigToolchain(Toolchain):
    """zig cc for x86_64-windows-gnu (UCRT), driven by CMake/Ninja or Meson."""

    name = "zig"
    target = TARGET

    def __init__(
        self,
        zig: str | None = None,
        nasm: str | None = None,
        cmake: str | None = None,
        ninja: str | None = None,
        meson: str | None = None,
    ) -> None:
        self._zig = zig
        self.nasm = shutil.which("nasm") or "" if nasm is None else nasm
        self.cmake = cmake if cmake is not None else find_tool("cmake")
        self.ninja = ninja if ninja is not None else find_tool("ninja")
        self.meson = meson if meson is not None else find_tool("meson")
        self.workdir = ""

    @property
    def zig(self) -> str:
        if self._zig is None:
            self._zig = find_zig()
        return self._zig

    @property
    def version(self) -> str:
        return _tool_version((self.zig, "version"))

    def identity(self) -> dict[str, str]:
        nasm = _tool_version((self.nasm, "-v")) if self.nasm else "absent"
        # The wrappers and toolchain files shape every object file: hash what setup() writes --
        # but not where zig is installed (its version is keyed): the same ziglang in another
        # venv (the nox tests session, the main job's session) must find the same cache entries.
        generated = self.generated_files(self.workdir) if self.workdir else {}
        text = json.dumps(generated, sort_keys=True)
        if self.zig:
            text = text.replace(json.dumps(self.zig)[1:-1], "<zig>")
        files = hashlib.sha256(text.encode()).hexdigest()
        return {
            "name": self.name,
            "version": self.version,
            "target": self.target,
            "crt": "ucrt (mingw-w64 bundled with zig)",
            "nasm": nasm,
            "cmake": _tool_version((self.cmake, "--version")) if self.cmake else "",
            "meson": _tool_version((self.meson, "--version")) if self.meson else "",
            "generated_files_sha256": files,
        }

    def tool_paths(self) -> dict[str, str]:
        tools = {"zig": self.zig, "cmake": self.cmake, "ninja": self.ninja, "meson": self.meson}
        return {name: path for name, path in tools.items() if path}

    def check_host(self) -> None:
        if not self.version:
            raise ToolchainError(f"zig at {self.zig} does not run ('zig version' failed)")
        for tool, name in ((self.cmake, "cmake"), (self.ninja, "ninja")):
            if not tool:
                raise ToolchainError(f"the zig toolchain needs {name}: pip install {name}")

    def jobserver(self) -> bool:
        # ninja learned the jobserver client (fifo form) in 1.13; an older one given no -j
        # would start CPUs + 2 jobs per build, past the budget
        if not self.ninja:
            return False
        m = re.match(r"(\d+)\.(\d+)", _tool_version((self.ninja, "--version")))
        return m is not None and (int(m[1]), int(m[2])) >= (1, 13)

    # -- files -------------------------------------------------------------------------------

    def wrapper(self, tool: str) -> str:
        suffix = ".cmd" if os.name == "nt" else ""
        return os.path.join(self.workdir, f"zig-{tool}{suffix}")

    @property
    def compile_log(self) -> str:
        """One line per compiler invocation, appended by the wrappers."""
        return os.path.join(self.workdir, "compile.log")

    @property
    def cmake_toolchain_file(self) -> str:
        return os.path.join(self.workdir, "toolchain.cmake")

    @property
    def meson_cross_file(self) -> str:
        return os.path.join(self.workdir, "cross.ini")

    def generated_files(self, workdir: str) -> dict[str, str]:
        """File name → content of everything :meth:`setup` writes (pure, for tests)."""
        self.workdir = workdir
        fmt = {
            "zig": self.zig,
            "target": self.target,
            "log": self.compile_log,
            "flags": " ".join(SECTION_FLAGS),
        }
        files: dict[str, str] = {}
        windows = os.name == "nt"
        for tool in ("cc", "c++"):
            tpl = _CMD_COMPILER if windows else _SH_COMPILER
            files[self.wrapper(tool)] = tpl.format(tool=tool, **fmt)
        for tool in ("ar", "ranlib"):
            tpl = _CMD_TOOL if windows else _SH_TOOL
            files[self.wrapper(tool)] = tpl.format(tool=tool, zig=self.zig)
        files[self.wrapper("rc")] = (_CMD_RC if windows else _SH_RC).format(zig=self.zig)
        tools = {
            "cc": self.wrapper("cc"),
            "cxx": self.wrapper("c++"),
            "ar": self.wrapper("ar"),
            "ranlib": self.wrapper("ranlib"),
            "rc": self.wrapper("rc"),
        }
        nasm = f'set(CMAKE_ASM_NASM_COMPILER "{self.nasm}")\n' if self.nasm else ""
        files[self.cmake_toolchain_file] = _CMAKE_TOOLCHAIN.format(
            target=self.target, nasm=nasm, **tools
        )
        files[self.meson_cross_file] = _MESON_CROSS.format(target=self.target, **tools)
        return files

    def setup(self, workdir: str) -> dict[str, str]:
        os.makedirs(workdir, exist_ok=True)
        for path, text in self.generated_files(workdir).items():
            with open(path, "w", newline="") as fh:
                fh.write(text)
            if "zig-" in os.path.basename(path):
                os.chmod(path, 0o755)
        Path(self.compile_log).touch()
        env = {
            # zig caches its CRT builds; keep them with the toolchain, not in ~/.cache.
            "ZIG_GLOBAL_CACHE_DIR": os.path.join(workdir, "zig-cache"),
            "ZIG_LOCAL_CACHE_DIR": os.path.join(workdir, "zig-cache"),
            # Never let a host .pc file leak into a Windows build.
            "PKG_CONFIG_LIBDIR": os.path.join(workdir, "no-pkgconfig"),
            "PKG_CONFIG_PATH": "",
        }
        tool_dirs = {os.path.dirname(t) for t in (self.cmake, self.ninja, self.meson) if t}
        env["PATH"] = os.pathsep.join([*sorted(tool_dirs), os.environ.get("PATH", "")])
        return env

    # -- planning ----------------------------------------------------------------------------

    def plan(self, recipe: Recipe, name: str, paths: BuildPaths, jobs: int) -> DepPlan:
        dep = recipe.dependencies[name]
        spec = ZIG_DEPS.get(dep.project)
        if spec is None:
            raise ToolchainError(
                f"the zig toolchain has no build description for {dep.project} ({name})"
            )
        build_system = spec.build_system or dep.build_system
        plan = DepPlan(
            dependency=name,
            toolchain=self.name,
            build_system=build_system,
            options=[],
            edits=[],
            steps=[],
        )
        if spec.unbuildable:
            plan.unbuildable = spec.unbuildable
            return plan
        values = {"architecture": "AMD64", "prefix": paths.prefix}
        for edit in dep.upstream_edits:
            why = is_msvc_only_edit(edit)
            if why:
                plan.skipped_edits.append(Skipped(f"{edit.file}: {edit.search!r}", why))
            else:
                plan.edits.append(format_edit(edit, values))
        plan.options = self._options(dep, spec, plan, paths)
        plan.skipped_features += [Skipped(w, r) for w, r in spec.skipped_features]
        if build_system != dep.build_system:
            plan.notes.append(
                f"built with its own {build_system} build instead of upstream's "
                f"{dep.build_system} project (MSBuild needs Windows); options mapped: "
                + ", ".join(f"{k} → {v}" for k, v in spec.option_map.items())
            )
        if build_system == "cmake":
            plan.steps += self._cmake_steps(dep, spec, plan, paths, jobs)
        elif build_system == "meson":
            plan.steps += self._meson_steps(plan, paths, jobs)
        else:
            raise ToolchainError(f"zig: unsupported build system {build_system!r} for {name}")
        plan.steps += install_copies(dep, paths, spec.libs)
        return plan

    def _options(
        self, dep: Dependency, spec: ZigDep, plan: DepPlan, paths: BuildPaths
    ) -> list[str]:
        options: list[str] = []
        for opt in (format_text(o, {"architecture": "AMD64"}) for o in dep.options):
            if spec.option_map:
                if opt not in spec.option_map:
                    raise ToolchainError(f"zig: no mapping for {dep.name} option {opt!r}")
                options.append(spec.option_map[opt])
                continue
            if opt in spec.replace_options:
                new = spec.replace_options[opt].format(prefix=paths.prefix)
                plan.notes.append(f"option {opt!r} → {new!r}" if new else f"option {opt!r} dropped")
                if new:
                    options.append(new)
                continue
            stripped = strip_msvc_flags(opt)
            if stripped != opt:
                plan.notes.append(f"option {opt!r}: MSVC-only flags removed → {stripped!r}")
            if stripped:
                options.append(stripped)
        if dep.project == "libjpeg-turbo" and not self.nasm:
            options.append("-DWITH_SIMD=OFF")
            plan.skipped_features.append(
                Skipped("SIMD", "nasm not found; libjpeg-turbo's x86-64 SIMD code is assembly")
            )
        return options + list(spec.extra_options)

    def _cmake_steps(
        self, dep: Dependency, spec: ZigDep, plan: DepPlan, paths: BuildPaths, jobs: int
    ) -> list[Step]:
        targets = []
        for t in dep.targets:
            if t in spec.replace_targets:
                new, why = spec.replace_targets[t]
                plan.notes.append(f"target {t} → {new}: {why}")
                targets.append(new)
            elif t not in spec.skip_targets:
                targets.append(t)
        for t, why in spec.skip_targets.items():
            if t in dep.targets:
                plan.skipped_features.append(Skipped(f"target {t}", why))
        if dep.build_system == "msbuild":  # recipe targets are MSBuild projects
            targets = [dep.project]
        configure = [
            self.cmake,
            "-G",
            "Ninja",
            "-S",
            paths.source,
            "-B",
            paths.build,
            f"-DCMAKE_TOOLCHAIN_FILE={self.cmake_toolchain_file}",
            "-DCMAKE_BUILD_TYPE=Release",
            f"-DCMAKE_MAKE_PROGRAM={self.ninja}",
            f"-DCMAKE_INSTALL_PREFIX={paths.stage}",
            f"-DCMAKE_PREFIX_PATH={paths.prefix}",
            f"-DCMAKE_FIND_ROOT_PATH={paths.prefix}",
            # CMake 4 refuses projects declaring cmake_minimum_required < 3.5.
            "-DCMAKE_POLICY_VERSION_MINIMUM=3.5",
            "-DBUILD_TESTING=OFF",
            *plan.options,
        ]
        build = [self.cmake, "--build", paths.build]
        if jobs != JOBSERVER:
            build += ["--parallel", str(jobs)]
        for t in targets:
            build += ["--target", t]
        return [Command(tuple(configure), paths.source), Command(tuple(build), paths.source)]

    def _meson_steps(self, plan: DepPlan, paths: BuildPaths, jobs: int) -> list[Step]:
        if not self.meson:
            raise ToolchainError(f"zig: {plan.dependency} is built with meson: pip install meson")
        setup = [
            self.meson,
            "setup",
            paths.build,
            paths.source,
            f"--cross-file={self.meson_cross_file}",
            "--buildtype=release",
            f"--prefix={paths.stage}",
            *plan.options,
        ]
        compile_ = [self.meson, "compile", "-C", paths.build]
        if jobs != JOBSERVER:
            compile_ += ["-j", str(jobs)]
        return [Command(tuple(setup), paths.source), Command(tuple(compile_), paths.source)]


def strip_msvc_flags(option: str) -> str:
    """Remove cl.exe-only flags from a ``-DCMAKE_<LANG>_FLAGS=...`` option ('' if nothing is
    left)."""
    m = re.match(r"^(-DCMAKE_\w+_FLAGS(?::STRING)?=)(.*)$", option)
    if not m:
        return option
    kept = [f for f in m.group(2).split() if f not in MSVC_ONLY_FLAGS]
    return m.group(1) + " ".join(kept) if kept else ""


def install_copies(dep: Dependency, paths: BuildPaths, libs: tuple[str, ...]) -> list[Step]:
    """Headers (shared INSTALL spec), the toolchain's library files and licenses → stage."""
    spec = INSTALL[dep.project]
    steps: list[Step] = []
    for root, pattern, sub in spec.headers:
        base = paths.source if root == "source" else paths.build
        dest = f"{paths.stage}/include" + (f"/{sub.format(version=dep.version)}" if sub else "")
        steps.append(Copy(base=base, pattern=pattern, dest=dest))
    for lib in libs:
        steps.append(Copy(base=paths.build, pattern=lib, dest=f"{paths.stage}/lib"))
    steps += license_copies(dep, paths.source, f"{paths.stage}/licenses")
    return steps
