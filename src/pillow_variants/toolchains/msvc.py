"""The MSVC toolchain: the dependencies built as upstream Pillow builds them on Windows.

Mirrors ``winbuild/build_prepare.py``: Visual Studio found with vswhere, its developer
environment from ``vcvarsall.bat x86_amd64``, CMake with cl.exe and upstream's flags
(``-DCMAKE_BUILD_TYPE=Release -DCMAKE_VERBOSE_MAKEFILE=ON -DCMAKE_RULE_MESSAGES:BOOL=OFF
-DCMAKE_C_COMPILER=cl.exe -DCMAKE_CXX_COMPILER=cl.exe -DCMAKE_C_FLAGS=-nologo
-DCMAKE_CXX_FLAGS=-nologo`` + the recipe's options, Ninja or NMake Makefiles), MSBuild for
freetype and lcms2 with upstream's project edits (``/MD`` RuntimeLibrary, toolset and SDK
retargeting, freetype.user.props), cargo for libimagequant. Upstream's INCLUDE/LIB set-up
(prefix first) makes dependents find what was built before them.

Differences from upstream, all deliberate: builds are out of source (``-B <build dir>``
instead of ``-B .``), ``--parallel N`` takes the ``--jobs`` value, and files are copied by
the shared builder from the same per-project lists upstream's copy commands use.

Planning is pure, so on Linux the generated commands and edits are unit-tested; running the
plan needs a Windows host with Visual Studio (``check_host`` says so, exit 2).
"""

from __future__ import annotations

import ntpath
import os
import re
import subprocess
import sys
from dataclasses import dataclass

from pillow_variants.errors import ToolchainError
from pillow_variants.recipe.model import Dependency, Recipe, SourceEdit
from pillow_variants.toolchains.base import (
    INSTALL,
    BuildPaths,
    Command,
    Copy,
    DepPlan,
    InstallSpec,
    Step,
    Toolchain,
    format_edit,
    format_text,
    license_copies,
)

#: build_prepare.py ARCHITECTURES["AMD64"].
VCVARS_ARCH = "x86_amd64"
MSBUILD_ARCH = "x64"

#: build_prepare.py cmds_cmake(): the flags every CMake configure starts with.
CMAKE_BASE_FLAGS = (
    "-DCMAKE_VERBOSE_MAKEFILE=ON",
    "-DCMAKE_RULE_MESSAGES:BOOL=OFF",  # for NMake
    "-DCMAKE_C_COMPILER=cl.exe",  # for Ninja
    "-DCMAKE_CXX_COMPILER=cl.exe",  # for Ninja
    "-DCMAKE_C_FLAGS=-nologo",
    "-DCMAKE_CXX_FLAGS=-nologo",
)

#: Library files upstream copies into its lib dir: (root, glob, installed name or '').
MSVC_LIBS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "libjpeg-turbo": (("build", "jpeg-static.lib", "libjpeg.lib"),),
    "zlib-ng": (("build", "zlib.lib", ""),),
    "xz": (("build", "lzma.lib", ""),),
    "libwebp": (("build", "libsharpyuv.lib", ""), ("build", "libwebp*.lib", "")),
    "libtiff": (("build", "libtiff/*.lib", ""),),
    "libpng": (("build", "libpng{xy}_static.lib", "libpng{xy}.lib"),),
    "brotli": (("build", "*.lib", ""),),
    "freetype": (("source", "objs/x64/Release Static/freetype.lib", ""),),
    "lcms2": (("source", "Lib/MS/*.lib", ""),),
    "openjpeg": (("build", "bin/*.lib", ""),),
    "libimagequant": (("source", "target/release/imagequant_sys.lib", ""),),
    "harfbuzz": (("build", "*.lib", ""),),
    "libavif": (("build", "avif.lib", ""),),
}

#: Headers of the projects the shared INSTALL table does not cover (not in the zig build).
MSVC_HEADERS: dict[str, InstallSpec] = {
    "libimagequant": InstallSpec(
        headers=(("source", "imagequant-sys/libimagequant.h", ""),), libs=()
    ),
    "libavif": InstallSpec(headers=(("source", "include", ""),), libs=()),
    "fribidi": InstallSpec(headers=(), libs=()),
}


@dataclass(frozen=True)
class VisualStudio:
    """A Visual Studio installation as find_msvs() returns it."""

    path: str
    msbuild: str
    vcvarsall: str


def vswhere_command(program_files: str) -> list[str]:
    """build_prepare.py find_msvs(): the newest VS (prereleases too) with the x64 C tools."""
    return [
        ntpath.join(program_files, "Microsoft Visual Studio", "Installer", "vswhere.exe"),
        "-latest",
        "-prerelease",
        "-requires",
        "Microsoft.VisualStudio.Component.VC.Tools.x86.x64",
        "-property",
        "installationPath",
        "-products",
        "*",
    ]


def locate_vs_files(vspath: str, exists=os.path.isfile) -> VisualStudio:
    """MSBuild (VS2017 layout, else VS2019+) and vcvarsall.bat under an installation."""
    if (
        not os.path.isdir(ntpath.join(vspath, "VC", "Auxiliary", "Build"))
        and exists is os.path.isfile
    ):
        raise ToolchainError(f"Visual Studio at {vspath} has no C compiler (VC\\Auxiliary\\Build)")
    msbuild = ntpath.join(vspath, "MSBuild", "15.0", "Bin", "MSBuild.exe")
    if not exists(msbuild):
        msbuild = ntpath.join(vspath, "MSBuild", "Current", "Bin", "MSBuild.exe")
        if not exists(msbuild):
            raise ToolchainError(f"Visual Studio at {vspath}: MSBuild.exe not found")
    vcvarsall = ntpath.join(vspath, "VC", "Auxiliary", "Build", "vcvarsall.bat")
    if not exists(vcvarsall):
        raise ToolchainError(f"Visual Studio at {vspath}: vcvarsall.bat not found")
    return VisualStudio(vspath, msbuild, vcvarsall)


def find_msvs() -> VisualStudio:
    """Find Visual Studio as upstream does (vswhere under Program Files (x86))."""
    root = os.environ.get("ProgramFiles(x86)") or os.environ.get("ProgramFiles")
    if not root:
        raise ToolchainError("Program Files not found; is this a Windows host?")
    try:
        out = subprocess.check_output(vswhere_command(root))
        vspath = out.decode("mbcs" if sys.platform == "win32" else "utf-8").strip()
    except (subprocess.CalledProcessError, OSError, UnicodeDecodeError):
        raise ToolchainError(
            "vswhere.exe found no Visual Studio with the C++ x64 tools "
            "(Microsoft.VisualStudio.Component.VC.Tools.x86.x64)"
        ) from None
    if not vspath:
        raise ToolchainError("vswhere.exe found no Visual Studio with the C++ x64 tools")
    return locate_vs_files(vspath)


def vcvars_command(vs: VisualStudio) -> str:
    """A cmd.exe line printing the developer environment (``set``) after vcvarsall."""
    return f'call "{vs.vcvarsall}" {VCVARS_ARCH} >nul && set'


def parse_set_output(text: str) -> dict[str, str]:
    """Environment from cmd.exe's ``set`` output (NAME=value lines)."""
    env: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name and not name.startswith(" "):
            env[name] = value
    return env


def msbuild_command(msbuild: str, file: str, configuration: str, target: str) -> tuple[str, ...]:
    """build_prepare.py cmd_msbuild() as an argument vector."""
    return (
        msbuild,
        file,
        f"/t:{target}",
        f"/p:Configuration={configuration}",
        f"/p:Platform={MSBUILD_ARCH}",
        "/m",
    )


def split_msbuild_target(target: str) -> tuple[str, str, str]:
    """Recipe msbuild target → (project file, configuration, target).

    ``builds/windows/vc2010/freetype.vcxproj:Release Static`` names a configuration of a
    project; ``Projects/VC2022/lcms2.sln:lcms2_static:Rebuild`` a target in a solution, as
    upstream's cmd_msbuild() calls do.
    """
    for ext in (".vcxproj", ".sln"):
        file, sep, rest = target.partition(ext + ":")
        if sep:
            file += ext
            if ext == ".vcxproj":
                return file, rest, "Build"
            return file, "Release", rest
    raise ToolchainError(
        f"msbuild target {target!r}: expected FILE.vcxproj:CONFIG or FILE.sln:TARGET"
    )


class MsvcToolchain(Toolchain):
    """cl.exe + CMake/MSBuild in a Visual Studio developer environment (Windows only)."""

    name = "msvc"
    target = "x86_64-pc-windows-msvc"

    def __init__(
        self,
        vs: VisualStudio | None = None,
        generator: str = "Ninja",
        cmake: str = "cmake.exe",
        platform: str | None = None,
    ) -> None:
        self.vs = vs
        self.generator = generator
        self.cmake = cmake
        self.platform = platform or sys.platform
        self.env: dict[str, str] = {}

    def check_host(self) -> None:
        if self.platform != "win32":
            raise ToolchainError(
                f"--toolchain msvc needs a Windows host with Visual Studio "
                f"(vswhere, cl.exe, MSBuild); this host is {self.platform}. "
                "The zig toolchain cross-compiles here: 'pillow-variants build all RECIPE'"
                " (or 'deps build RECIPE --toolchain zig')."
            )
        if self.vs is None:
            self.vs = find_msvs()

    def identity(self) -> dict[str, str]:
        return {
            "name": self.name,
            "version": self.env.get("VCToolsVersion", ""),
            "target": self.target,
            "visual_studio": self.vs.path if self.vs else "",
            "sdk": self.env.get("WindowsSDKVersion", ""),
            "generator": self.generator,
        }

    def setup(self, workdir: str) -> dict[str, str]:
        assert self.vs is not None, "check_host() first"
        out = subprocess.run(
            ["cmd.exe", "/d", "/s", "/c", vcvars_command(self.vs)],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            raise ToolchainError(f"vcvarsall.bat {VCVARS_ARCH} failed: {out.stderr.strip()[-300:]}")
        self.env = parse_set_output(out.stdout)
        self.env["py_vcruntime_redist"] = "true"  # upstream build_env.cmd: always /MD
        return self.env

    # -- planning ----------------------------------------------------------------------------

    def plan(self, recipe: Recipe, name: str, paths: BuildPaths, jobs: int) -> DepPlan:
        dep = recipe.dependencies[name]
        inc = ntpath.join(paths.prefix, "include")
        lib = ntpath.join(paths.prefix, "lib")
        # Upstream's edits and options are build_prepare.py format strings over its "prefs";
        # {dir_<component>} names another component's source tree (freetype ← harfbuzz).
        plan = DepPlan(
            dependency=name,
            toolchain=self.name,
            build_system=dep.build_system,
            options=[],
            edits=[],
            steps=[],
        )
        if dep.built_inside:
            # upstream's build of the dependent fetches and builds it (libavif's LOCAL codecs)
            plan.unbuildable = (
                f"upstream builds it inside {dep.built_inside}'s own build "
                "(fetched and compiled at configure time), not as a dependency of its own"
            )
            return plan
        texts = [o for o in dep.options] + [e.replace for e in dep.upstream_edits]
        plan.extra_sources = sorted(
            {c for t in texts for c in re.findall(r"\{dir_([a-z0-9_.-]+)\}", t)}
        )
        values = {
            "architecture": "AMD64",
            "inc_dir": inc,
            "lib_dir": lib,
            **{f"dir_{c}": paths.extra_sources.get(c, f"@{c.upper()}") for c in plan.extra_sources},
        }
        plan.options = [format_text(o, values) for o in dep.options]
        if dep.zig_options:
            plan.notes.append(f"the recipe's zig_options not passed: {' '.join(dep.zig_options)}")
        plan.edits = [format_edit(e, values) for e in dep.upstream_edits]
        if dep.build_system == "cmake":
            plan.steps += self._cmake_steps(dep, plan, paths, jobs)
        elif dep.build_system == "msbuild":
            plan.steps += self._msbuild_steps(dep, plan, paths)
        elif dep.build_system == "cargo":
            crate = ntpath.join(paths.source, dep.targets[0] if dep.targets else "")
            plan.steps.append(Command(("cargo", "build", "--release"), crate))
        else:
            raise ToolchainError(f"msvc: unsupported build system {dep.build_system!r} for {name}")
        plan.steps += self._install(dep, paths)
        return plan

    def _cmake_steps(
        self, dep: Dependency, plan: DepPlan, paths: BuildPaths, jobs: int
    ) -> list[Step]:
        steps: list[Step] = []
        build_type = "Release"
        options = []
        for opt in plan.options:
            if opt.startswith("-DCMAKE_BUILD_TYPE="):  # libavif: cmds_cmake(build_type=...)
                build_type = opt.partition("=")[2]
            else:
                options.append(opt)
        if dep.project == "fribidi":
            # Upstream replaces fribidi's build with Pillow's winbuild/fribidi.cmake.
            plan.extra_sources.append("pillow")
            pillow = paths.extra_sources.get("pillow", "@PILLOW")
            steps.append(
                Copy(
                    ntpath.join(pillow, "winbuild"), "fribidi.cmake", paths.source, "CMakeLists.txt"
                )
            )
        configure = (
            self.cmake,
            f"-DCMAKE_BUILD_TYPE={build_type}",
            *CMAKE_BASE_FLAGS,
            *options,
            "-G",
            self.generator,
            "-B",
            paths.build,
            "-S",
            ".",
        )
        build = (
            self.cmake,
            "--build",
            paths.build,
            "--clean-first",
            "--parallel",
            str(jobs),
            "--target",
            *dep.targets,
        )
        env = self._dep_env(paths)
        steps += [Command(configure, paths.source, env), Command(build, paths.source, env)]
        plan.options = [f"-DCMAKE_BUILD_TYPE={build_type}", *CMAKE_BASE_FLAGS, *options]
        return steps

    def _msbuild_steps(self, dep: Dependency, plan: DepPlan, paths: BuildPaths) -> list[Step]:
        msbuild = self.vs.msbuild if self.vs else "MSBuild.exe"
        steps: list[Step] = []
        env = self._dep_env(paths)
        for target in dep.targets:
            file, configuration, tgt = split_msbuild_target(target)
            win_file = file.replace("/", "\\")
            for t in ("Clean", tgt):
                steps.append(
                    Command(msbuild_command(msbuild, win_file, configuration, t), paths.source, env)
                )
        if dep.project == "freetype":
            # The recipe's freetype options are freetype.user.props UserDefines.
            plan.edits.append(
                SourceEdit(
                    "builds/windows/vc2010/freetype.user.props",
                    "<UserDefines></UserDefines>",
                    f"<UserDefines>{';'.join(plan.options)}</UserDefines>",
                )
            )
        return steps

    @staticmethod
    def _dep_env(paths: BuildPaths) -> tuple[tuple[str, str], ...]:
        """upstream build_env.cmd: INCLUDE and LIB start with the prefix (before vcvarsall's)."""
        return (
            ("INCLUDE", ntpath.join(paths.prefix, "include")),
            ("LIB", ntpath.join(paths.prefix, "lib")),
        )

    def _install(self, dep: Dependency, paths: BuildPaths) -> list[Step]:
        spec = INSTALL.get(dep.project) or MSVC_HEADERS.get(dep.project)
        if spec is None:
            raise ToolchainError(f"msvc: no install description for {dep.project}")
        steps: list[Step] = []
        roots = {"source": paths.source, "build": paths.build}
        for root, pattern, sub in spec.headers:
            dest = ntpath.join(paths.stage, "include", sub.format(version=dep.version))
            steps.append(Copy(roots[root], pattern, dest.rstrip("\\")))
        xy = "".join(dep.version.split(".")[:2])
        for root, pattern, rename in MSVC_LIBS.get(dep.project, ()):
            steps.append(
                Copy(
                    roots[root],
                    pattern.format(xy=xy),
                    ntpath.join(paths.stage, "lib"),
                    rename.format(xy=xy),
                )
            )
        if dep.project == "fribidi":
            steps.append(Copy(paths.build, "*.dll", ntpath.join(paths.stage, "bin")))
        if dep.project == "libjpeg-turbo":
            steps.append(
                Copy(paths.build, "djpeg-static.exe", ntpath.join(paths.stage, "bin"), "djpeg.exe")
            )
        steps += license_copies(dep, paths.source, ntpath.join(paths.stage, "licenses"), "\\")
        return steps
