"""Toolchains: how one dependency of a recipe is configured, compiled and installed.

A toolchain turns a recipe dependency into a :class:`DepPlan` — the exact commands, the
upstream edits it applies or skips (with the reason), the files it installs and the features it
leaves out. Planning is a pure function of the recipe and the paths, so plans for a toolchain
that cannot run on this host (MSVC on Linux) are still generated and unit-tested; the shared
builder in :mod:`pillow_variants.build.deps` executes plans, whichever toolchain made them.

Both toolchains build exactly the recipe's targets (as upstream Pillow's build_prepare.py does)
and then copy headers and static libraries into the prefix according to :data:`INSTALL` —
upstream's per-dependency "headers"/"libs" lists, expressed once for every toolchain.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from pillow_variants.errors import ToolchainError
from pillow_variants.recipe.model import Dependency, Recipe, SourceEdit


@dataclass(frozen=True)
class BuildPaths:
    """Where a dependency is built. Strings, not Paths: an MSVC plan made on Linux uses
    Windows paths that :class:`pathlib.Path` would mangle."""

    source: str
    build: str
    #: Staging prefix of this dependency (include/, lib/, licenses/) — what the cache stores.
    stage: str
    #: The shared prefix holding the already built dependencies.
    prefix: str
    #: Source trees of other components this build reads (freetype ← harfbuzz headers).
    extra_sources: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Command:
    """A program to run, with its working directory."""

    argv: tuple[str, ...]
    cwd: str
    #: Path-list variables to prepend to (upstream's build_env.cmd puts the prefix's include
    #: and lib directories first in INCLUDE and LIB).
    env: tuple[tuple[str, str], ...] = ()

    def display(self, windows: bool = False) -> str:
        """The command as a user would type it (cmd.exe quoting for Windows plans)."""
        import shlex
        import subprocess

        return subprocess.list2cmdline(self.argv) if windows else shlex.join(self.argv)


@dataclass(frozen=True)
class Copy:
    """Copy what ``pattern`` (a glob relative to ``base``) matches into directory ``dest``:
    files as they are, a directory's contents recursively (upstream's ``xcopy /E``); with
    ``rename`` the single match gets that name. No match is an error: a missing header or
    library must fail the build, not the link of Pillow later."""

    base: str
    pattern: str
    dest: str
    rename: str = ""


Step = Command | Copy


@dataclass(frozen=True)
class Skipped:
    """Something left out of a build — a feature, an edit, a whole dependency — and why."""

    what: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"what": self.what, "reason": self.reason}


@dataclass
class DepPlan:
    """Everything a toolchain decided for one dependency; the builder executes ``steps``."""

    dependency: str
    toolchain: str
    #: The build system actually used (may differ from the recipe's, e.g. msbuild → cmake).
    build_system: str
    #: Effective configure options (recipe options, adapted, plus the toolchain's own).
    options: list[str]
    #: Search/replace edits applied after patches: the recipe's and the toolchain's own.
    edits: list[SourceEdit]
    steps: list[Step]
    skipped_edits: list[Skipped] = field(default_factory=list)
    skipped_features: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Empty when buildable; otherwise why this toolchain cannot build the dependency here.
    unbuildable: str = ""
    #: Other components whose source trees the build reads (see BuildPaths.extra_sources).
    extra_sources: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        windows = self.toolchain == "msvc"
        return {
            "dependency": self.dependency,
            "toolchain": self.toolchain,
            "build_system": self.build_system,
            "options": list(self.options),
            "edits": [
                {"file": e.file, "search": e.search, "replace": e.replace} for e in self.edits
            ],
            "skipped_edits": [s.to_dict() for s in self.skipped_edits],
            "skipped_features": [s.to_dict() for s in self.skipped_features],
            "notes": list(self.notes),
            "unbuildable": self.unbuildable,
            "commands": [s.display(windows) for s in self.steps if isinstance(s, Command)],
        }


@dataclass(frozen=True)
class InstallSpec:
    """What upstream copies into its inc/ and lib/ directories for one project.

    ``headers``: (root, glob, subdirectory) with root ``source`` or ``build``; a glob naming a
    directory copies its contents. ``libs``: library base names as the project's build names
    them (the toolchain maps a base name to its file name and location, and to upstream's
    installed name, e.g. ``jpeg-static.lib`` → ``libjpeg.lib``).
    """

    headers: tuple[tuple[str, str, str], ...]
    libs: tuple[str, ...]


#: Per project (recipe ``project``): upstream build_prepare.py's "headers"/"libs"/copy steps.
#: Generated headers (jconfig.h, zconf.h, pnglibconf.h, tiffconf.h, opj_config.h) are in the
#: build directory because we build out of source; upstream builds in source (``-B .``).
INSTALL: dict[str, InstallSpec] = {
    "libjpeg-turbo": InstallSpec(
        headers=(("build", "jconfig.h", ""), ("source", "src/j*.h", "")),
        libs=("jpeg",),
    ),
    "zlib-ng": InstallSpec(headers=(("build", "z*.h", ""),), libs=("zlib",)),
    "xz": InstallSpec(
        headers=(
            ("source", "src/liblzma/api/lzma.h", ""),
            ("source", "src/liblzma/api/lzma/*.h", "lzma"),
        ),
        libs=("lzma",),
    ),
    "libwebp": InstallSpec(
        headers=(("source", "src/webp/*.h", "webp"),),
        libs=("sharpyuv", "webp", "webpmux", "webpdemux"),
    ),
    "libtiff": InstallSpec(
        headers=(("source", "libtiff/tiff*.h", ""), ("build", "libtiff/tiff*.h", "")),
        libs=("tiff",),
    ),
    "libpng": InstallSpec(
        headers=(("source", "png*.h", ""), ("build", "pnglibconf.h", "")), libs=("png16",)
    ),
    "brotli": InstallSpec(
        headers=(("source", "c/include", ""),), libs=("brotlicommon", "brotlidec")
    ),
    "freetype": InstallSpec(headers=(("source", "include", ""),), libs=("freetype",)),
    "lcms2": InstallSpec(headers=(("source", "include/*.h", ""),), libs=("lcms2",)),
    "openjpeg": InstallSpec(
        headers=(
            ("source", "src/lib/openjp2/*.h", "openjpeg-{version}"),
            ("build", "src/lib/openjp2/*.h", "openjpeg-{version}"),
        ),
        libs=("openjp2",),
    ),
    "harfbuzz": InstallSpec(headers=(("source", "src/*.h", ""),), libs=("harfbuzz",)),
    # libavif's codecs (upstream builds them inside libavif; see the recipe's built_inside)
    "dav1d": InstallSpec(headers=(("source", "include/dav1d/*.h", "dav1d"),), libs=("dav1d",)),
    "aom": InstallSpec(headers=(("source", "aom/*.h", "aom"),), libs=("aom",)),
    "libyuv": InstallSpec(
        headers=(("source", "include/libyuv.h", ""), ("source", "include/libyuv/*.h", "libyuv")),
        libs=("yuv",),
    ),
    "libavif": InstallSpec(headers=(("source", "include", ""),), libs=("avif",)),
}


def format_text(text: str, values: dict[str, str]) -> str:
    """Expand upstream's ``str.format`` placeholders (``{architecture}``, ``{{`` → ``{``).

    The recipe copies build_prepare.py's option and edit strings verbatim, and those are
    format strings over its "prefs" (architecture, inc_dir, lib_dir, dir_<component>).
    """
    try:
        return text.format(**values)
    except (KeyError, IndexError, ValueError) as exc:
        raise ToolchainError(f"{text[:60]!r}: unknown placeholder {exc}") from None


def format_edit(edit: SourceEdit, values: dict[str, str]) -> SourceEdit:
    return SourceEdit(
        file=format_text(edit.file, values),
        search=format_text(edit.search, values),
        replace=format_text(edit.replace, values),
    )


def is_msvc_only_edit(edit: SourceEdit) -> str:
    """Why an upstream edit only makes sense for MSVC ('' if it applies everywhere).

    Decided from the edit's content, so new recipe edits are classified without code changes.
    """
    if "#pragma comment(lib" in edit.replace and "#pragma comment(lib" not in edit.search:
        return (
            "adds '#pragma comment(lib, ...)', an MSVC linker directive; "
            "the link line names the library instead"
        )
    if edit.file.endswith((".vcxproj", ".props", ".sln")):
        return "edits an MSBuild project file, which this toolchain does not use"
    if "CMAKE_GENERATOR_PLATFORM" in edit.search:
        return "MSVC generator-platform detection (ARM64 cross builds); not used by this toolchain"
    return ""


def license_copies(dep: Dependency, source: str, licenses_dir: str, sep: str = "/") -> list[Copy]:
    """Copy the dependency's license files into ``licenses/<name>/`` of the stage."""
    dest = f"{licenses_dir}{sep}{dep.name}"
    return [Copy(base=source, pattern=f, dest=dest) for f in dep.license_files]


class Toolchain(ABC):
    """A compiler + build tools that can turn recipe dependencies into static libraries."""

    name: str = ""
    target: str = ""

    @abstractmethod
    def identity(self) -> dict[str, str]:
        """Name, version and target: everything about the toolchain that changes outputs.
        Part of every cache key."""

    def tool_paths(self) -> dict[str, str]:
        """Executables whose *location* appears in the plans' commands (name → path). Cache
        keys show them as ``<name>``: their versions are in :meth:`identity`, and the same
        tools installed in another environment (the tests' venv, the main job's) must find
        the same cache entries."""
        return {}

    @abstractmethod
    def check_host(self) -> None:
        """Raise ToolchainError (exit 2) when this host cannot run the toolchain — before any
        work is done."""

    @abstractmethod
    def setup(self, workdir: str) -> dict[str, str]:
        """Write wrapper scripts / toolchain files under ``workdir``; return the environment
        variables the build commands need."""

    def jobserver(self) -> bool:
        """Whether plans made with ``jobs=JOBSERVER`` take their parallelism from a GNU make
        jobserver named in ``MAKEFLAGS`` (ninja >= 1.13, make >= 4.4): the dependency builder
        then runs independent builds side by side within one budget of compile processes.
        A toolchain that cannot is built one dependency after another, ``-jN`` each."""
        return False

    @abstractmethod
    def plan(self, recipe: Recipe, name: str, paths: BuildPaths, jobs: int) -> DepPlan:
        """The pure build plan of dependency ``name`` (no file system access); ``jobs`` is the
        build tool's job count, or :data:`JOBSERVER` (pass none: the jobserver decides)."""


#: ``plan(..., jobs=JOBSERVER)``: no job count on the build commands (see ``jobserver()``).
JOBSERVER = 0
