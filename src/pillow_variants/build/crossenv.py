"""The cross environment: how a Linux CPython is told it builds extensions for Windows CPython.

cibuildwheel's iOS and Android support cross-compiles with the *target's* sysconfig data: the
build runs on the host interpreter, but ``_PYTHON_HOST_PLATFORM`` names the target platform and
``_PYTHON_SYSCONFIGDATA_NAME`` names a ``_sysconfigdata_*`` module (found through
``PYTHONPATH``) whose ``build_time_vars`` hold the target's compiler commands, ``EXT_SUFFIX``
and header directories. setuptools' unix compiler, ``build_ext`` and ``bdist_wheel`` read all of
that through ``sysconfig``, so the project's own ``setup.py`` drives the build unchanged.

Windows CPython ships no ``_sysconfigdata`` module (its sysconfig is computed at run time), so
:func:`sysconfig_vars` writes one with the values a MinGW-style build of CPython X.Y for
win_amd64 would have, pointing at the Windows headers and import library of a Python SDK
(``pysdk``) and at zig as the compiler. :func:`cross_environment` is the process environment for
the build: the cross variables, the dependency prefix as ``CFLAGS``/``LDFLAGS`` (Pillow's
``setup.py`` reads ``-I``/``-L`` from them), and *nothing* that would let the host leak in
(pkg-config's host ``.pc`` files, ``CPATH``, a host ``CC``).
"""

from __future__ import annotations

import os
import pprint
import re
import shlex
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pillow_variants.build.pysdk import WindowsSDK
from pillow_variants.errors import ToolchainError

#: zig's target triple for the CPython ABI of python.org's win_amd64 builds (UCRT, x64).
ZIG_TARGET = "x86_64-windows-gnu"

#: Variables that would point the build at the host's compiler, headers or libraries. They are
#: removed from the build's environment; the cross values come from the sysconfig data instead.
HOST_LEAKS = (
    "CC",
    "CXX",
    "CPP",
    "LDSHARED",
    "LDCXXSHARED",
    "AR",
    "ARFLAGS",
    "RANLIB",
    "CFLAGS",
    "CXXFLAGS",
    "CPPFLAGS",
    "LDFLAGS",
    "C_INCLUDE_PATH",
    "CPLUS_INCLUDE_PATH",
    "CPATH",
    "INCLUDE",
    "LIB",
    "LIBRARY_PATH",
    "LD_RUN_PATH",
    "PKG_CONFIG",
    "PKG_CONFIG_PATH",
    "PKG_CONFIG_SYSROOT_DIR",
    "_PYTHON_HOST_PLATFORM",
    "_PYTHON_SYSCONFIGDATA_NAME",
    "_PYTHON_SYSCONFIGDATA_PATH",
    "PYTHONPATH",
    "PYTHONHOME",
    "SETUPTOOLS_EXT_SUFFIX",
)
#: Pillow's ``setup.py`` adds ``$<NAME>_ROOT/{lib,include}`` of these; a stray one on the host
#: would add host directories, so they are removed too.
PILLOW_ROOTS = tuple(
    f"{n}_ROOT"
    for n in (
        "AVIF",
        "FREETYPE",
        "HARFBUZZ",
        "FRIBIDI",
        "IMAGEQUANT",
        "JPEG",
        "JPEG2K",
        "LCMS",
        "RAQM",
        "TIFF",
        "WEBP",
        "ZLIB",
    )
)


@dataclass(frozen=True)
class CrossCompiler:
    """Compiler commands for the target (argv lists; joined with shlex for setuptools)."""

    cc: list[str]
    cxx: list[str]
    ar: list[str]
    cflags: list[str] = field(default_factory=lambda: ["-O2", "-DNDEBUG"])
    ldflags: list[str] = field(default_factory=lambda: ["-s"])
    #: Prepares link inputs that every extension's link needs ahead of the compiler's own
    #: runtime (argument: the compile command, a directory to write into; returns paths).
    link_runtime: Callable[[list[str], Path], list[str]] | None = None

    @classmethod
    def zig(cls) -> CrossCompiler:
        """zig from the ``ziglang`` wheel: :func:`~pillow_variants.toolchains.zig.zig_command`.

        Pillow's own objects get the dependencies' compile flags: one section per function and
        data item, so the link drops their unreferenced code as MSVC's /Gy + /OPT:REF do, and
        no loop unrolling, vectorization or padding (what they cost: ``zig.CODEGEN_FLAGS``).
        The links get :func:`~pillow_variants.toolchains.zig.link_runtime`'s inputs, so that
        the C library comes from the UCRT and not from zig's whole-object runtime archives.
        """
        from pillow_variants.toolchains.zig import COMPILE_FLAGS, link_runtime, zig_command

        base = zig_command()
        return cls(
            cc=[*base, "cc", "-target", ZIG_TARGET],
            cxx=[*base, "c++", "-target", ZIG_TARGET],
            ar=[*base, "ar"],
            cflags=["-O2", "-DNDEBUG", *COMPILE_FLAGS],
            link_runtime=link_runtime,
        )

    def with_link_runtime(self, directory: Path) -> CrossCompiler:
        """This compiler with :attr:`link_runtime`'s inputs (prepared in ``directory``) on
        its link command, ahead of everything the link adds itself."""
        if self.link_runtime is None:
            return self
        inputs = self.link_runtime(self.cc + self.cflags, directory)
        return replace(self, ldflags=[*self.ldflags, *inputs], link_runtime=None)


def sysconfigdata_name(sdk: WindowsSDK) -> str:
    """Module name of the generated sysconfig data (``_sysconfigdata_`` as sysconfig expects)."""
    return f"_sysconfigdata_pv_{sdk.abi_tag}_{sdk.platform_tag}"


def host_platform(sdk: WindowsSDK) -> str:
    """sysconfig's platform string (``win-amd64``); bdist_wheel derives the platform tag from it."""
    return sdk.platform_tag.replace("_", "-")


def check_sdk(sdk: WindowsSDK) -> None:
    """Fail early, in one line, when the SDK lacks what the compile and link need."""
    include = Path(sdk.include_dirs[0]) if sdk.include_dirs else None
    if include is None or not (include / "Python.h").is_file():
        raise ToolchainError(f"SDK {sdk.root}: no Python.h in its include directory")
    if not (include / "pyconfig.h").is_file():
        raise ToolchainError(f"SDK {sdk.root}: no pyconfig.h (Windows PC/pyconfig.h)")
    libs = [Path(d) / f"lib{sdk.libraries[0]}.a" for d in sdk.library_dirs]
    if not any(p.is_file() for p in libs):
        raise ToolchainError(f"SDK {sdk.root}: import library lib{sdk.libraries[0]}.a missing")


def sysconfig_vars(
    sdk: WindowsSDK, compiler: CrossCompiler, *, link_cxx: bool = False
) -> dict[str, Any]:
    """``build_time_vars`` for the target: the SDK's values plus how to compile and link.

    The link command carries the Python import library itself (``-L… -lpython3XY``): MSVC
    builds get it from a ``#pragma comment(lib)`` in pyconfig.h, which a MinGW-mode link
    ignores. lld resolves archives whatever their position on the command line, so it may
    precede the objects. ``link_cxx`` links with the C++ driver, needed when a static
    dependency (HarfBuzz) is C++.
    """
    cc = shlex.join(compiler.cc + compiler.cflags)
    cxx = shlex.join(compiler.cxx + compiler.cflags)
    python_lib = " ".join(
        [f"-L{d}" for d in sdk.library_dirs] + [f"-l{lib}" for lib in sdk.libraries]
    )
    ldflags = shlex.join(compiler.ldflags)
    ldshared = f"{cxx if link_cxx else cc} -shared {ldflags} {python_lib}"
    include = sdk.include_dirs[0]
    variables: dict[str, Any] = dict(sdk.sysconfig_vars())
    variables.update(
        {
            "CC": cc,
            "CXX": cxx,
            "LDSHARED": ldshared,
            "LDCXXSHARED": f"{cxx} -shared {ldflags} {python_lib}",
            "BLDSHARED": ldshared,
            "AR": shlex.join(compiler.ar),
            "ARFLAGS": "rcs",
            "CFLAGS": "",  # in CC already: setuptools appends CFLAGS to CC *and* LDSHARED
            "CCSHARED": "",  # no -fPIC on PE/COFF
            "OPT": "",
            "LDFLAGS": "",
            "SHLIB_SUFFIX": ".dll",
            # distutils links "python" + LDVERSION when cross-compiling (its Android rule
            # fires because ANDROID_API_LEVEL is unset): make that the import library's name.
            "LDVERSION": sdk.nodot,
            "CONFINCLUDEPY": include,
            "INCLUDEDIR": include,
            "LIBPL": sdk.library_dirs[0],
            "Py_ENABLE_SHARED": 1,
            "MULTIARCH": "",
            "HOST_GNU_TYPE": "x86_64-w64-mingw32",
        }
    )
    return variables


def write_sysconfigdata(directory: Path, sdk: WindowsSDK, variables: dict[str, Any]) -> Path:
    """Write ``_sysconfigdata_….py`` into ``directory``; return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{sysconfigdata_name(sdk)}.py"
    body = (
        f"# Generated by pillow-variants: sysconfig of CPython {sdk.python} for "
        f"{sdk.platform_tag}, cross-compiled with zig.\n"
        f"build_time_vars = {pprint.pformat(variables, width=100, sort_dicts=True)}\n"
    )
    path.write_text(body, encoding="utf-8")
    return path


def cross_environment(
    base: dict[str, str],
    *,
    sdk: WindowsSDK,
    sysconfig_dir: Path,
    include_dirs: list[Path],
    library_dirs: list[Path],
    link_libraries: list[Path],
    empty_dir: Path,
    jobs: int,
) -> dict[str, str]:
    """The environment of the build process, derived from ``base`` (normally ``os.environ``).

    * ``_PYTHON_HOST_PLATFORM`` / ``_PYTHON_SYSCONFIGDATA_NAME`` + ``PYTHONPATH``: the cross
      sysconfig (see the module docstring).
    * ``CFLAGS`` ``-I`` / ``LDFLAGS`` ``-L``: the dependency prefix. Pillow's ``setup.py`` turns
      them into the include and library directories it searches for ``zlib.h``, ``libjpeg`` …
    * ``link_libraries`` go on every link line as full paths: the transitive dependencies of a
      static library (libtiff → liblzma, libwebp → libsharpyuv, freetype → libpng, brotli) are
      named by no ``-l`` of Pillow's; lld pulls from an archive only the members that resolve an
      undefined symbol, so each .pyd still gets only what it uses.
    * pkg-config is pointed at an empty directory (host ``.pc`` files would add ``/usr/include``)
      and ``ProgramFiles`` at an empty directory (Pillow's win32 branch lists it for OpenJPEG).
    """
    for path in [*include_dirs, *library_dirs, *link_libraries, sysconfig_dir]:
        if any(c.isspace() for c in str(path)):
            # Pillow's setup.py splits CFLAGS/LDFLAGS on whitespace; a quoted path would not
            # survive its "-I([^\\s]+)" parsing.
            raise ToolchainError(f"{path}: build paths must not contain whitespace")
    env = {
        k: v
        for k, v in base.items()
        if k not in HOST_LEAKS and k not in PILLOW_ROOTS and not k.startswith("CIBW_")
    }
    env.update(
        {
            "_PYTHON_HOST_PLATFORM": host_platform(sdk),
            "_PYTHON_SYSCONFIGDATA_NAME": sysconfigdata_name(sdk),
            "PYTHONPATH": str(sysconfig_dir),
            "CFLAGS": " ".join(f"-I{d}" for d in include_dirs),
            "LDFLAGS": " ".join(
                [f"-L{d}" for d in library_dirs] + [str(p) for p in link_libraries]
            ),
            "PKG_CONFIG_LIBDIR": str(empty_dir),
            "PKG_CONFIG_PATH": "",
            "ProgramFiles": str(empty_dir),
            "MAX_CONCURRENCY": str(max(1, jobs)),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONNOUSERSITE": "1",
        }
    )
    return env


def default_jobs() -> int:
    """Parallel compile jobs: the CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


_ANGLE_INCLUDE = re.compile(rb"^[ \t]*#[ \t]*include[ \t]*<([^>/\\]+)>", re.M)
_SOURCE_SUFFIXES = {".c", ".h", ".cc", ".cpp", ".cxx", ".hh", ".hpp"}


def windows_header_dir(compiler: CrossCompiler) -> Path:
    """The compiler's directory of Windows SDK headers (where its ``windows.h`` lives).

    Asked of the compiler itself (``-M`` on ``#include <windows.h>``), so any cross compiler
    works, not only zig's bundled mingw-w64 headers.
    """
    with tempfile.TemporaryDirectory(prefix="pv-probe-") as tmp:
        proc = subprocess.run(
            [*compiler.cc, "-M", "-x", "c", "-"],
            input=b"#include <windows.h>\n",
            cwd=tmp,
            capture_output=True,
        )
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip().splitlines()
            raise ToolchainError(
                f"{shlex.join(compiler.cc)} cannot compile for Windows: "
                + (err[-1] if err else f"exit status {proc.returncode}")
            )
        for token in proc.stdout.decode().replace("\\\n", " ").split():
            if token.endswith("/windows.h"):
                return (Path(tmp) / token).resolve().parent
    raise ToolchainError(f"{shlex.join(compiler.cc)}: could not locate windows.h")


def write_case_shims(tree: Path, header_dir: Path, dest: Path) -> list[str]:
    """Headers that the sources spell in another case than the SDK does, e.g. ``<Windows.h>``.

    Windows file systems ignore case, so Pillow writes ``#include <Windows.h>``; mingw-w64's
    header is ``windows.h`` and Linux is case-sensitive. For each such spelling found in the
    tree, ``dest/<Spelling>`` is written with one ``#include`` of the SDK's file. Derived from the
    sources rather than listed, so a new release with a new spelling needs no change here.
    """
    available = {p.name.lower(): p.name for p in header_dir.iterdir() if p.is_file()}
    wanted: set[str] = set()
    for path in tree.rglob("*"):
        if path.suffix.lower() in _SOURCE_SUFFIXES and path.is_file():
            wanted.update(
                m.decode("utf-8", "replace") for m in _ANGLE_INCLUDE.findall(path.read_bytes())
            )
    written: list[str] = []
    for name in sorted(wanted):
        real = available.get(name.lower())
        if real is not None and real != name:
            dest.mkdir(parents=True, exist_ok=True)
            (dest / name).write_text(
                f"/* {name}: case-insensitive spelling of the SDK's {real} */\n#include <{real}>\n"
            )
            written.append(name)
    return written
