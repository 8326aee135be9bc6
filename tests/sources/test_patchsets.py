"""The nanoserver patch sets against the real upstream trees.

For every component the nanoserver recipe patches, the patch set must apply in order (``git
apply``) to a fresh copy of the exact upstream tree, and each patched C/C++ file, cross-compiled
for Windows x64 with zig, must no longer import anything nanoserver lacks (USER32/GDI32, ANSI
-A functions, the Global*/Local* heap API) — while the unpatched file, compiled the same way,
does. Files left unpatched on purpose are compiled as upstream configures them and must already
be clean: that is the evidence behind the justifications in patches/README.md.

Upstream trees come from Debian source packages (the ``*.orig.tar.*``, i.e. upstream's own tree
without Debian's patches; needs deb-src in the apt sources), the Pillow sdist from the package
index through pillow_variants.sources.fetch (sha256-verified). HarfBuzz 14.5.0 is not in Debian: its
tree is the ``harfbuzz/`` directory of the uharfbuzz 0.56.2 sdist (uharfbuzz vendors HarfBuzz
as a git submodule; 0.56.2 carries 14.5.0, checked below). Only single files are compiled, not
whole libraries; a later stage checks the full static libraries.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pillow_variants.recipe.model import load_recipe
from pillow_variants.sources.archives import extract_archive
from pillow_variants.sources.patches import read_patch

ROOT = Path(__file__).resolve().parents[2]
NANOSERVER = ROOT / "recipes" / "nanoserver.toml"


# --------------------------------------------------------------------------------------------
# Patch files and headers (no network)


def test_recipe_lists_every_patch_file_in_order() -> None:
    recipe = load_recipe(NANOSERVER)
    assert recipe.patches, "the nanoserver recipe lists no patch set"
    for component in recipe.patches:
        listed = recipe.patch_files(component)
        directory = listed[0].parent
        on_disk = sorted(directory.glob("*.patch"))
        assert listed == on_disk, f"{component}: [patches] and {directory} disagree"
        numbers = [int(p.name[:4]) for p in listed]
        assert numbers == list(range(1, len(listed) + 1)), f"{component}: not numbered 0001…"


def test_every_patch_has_a_complete_header() -> None:
    recipe = load_recipe(NANOSERVER)
    paths = [p for component in recipe.patches for p in recipe.patch_files(component)]
    assert len(paths) >= 10  # every patch of every set, not a vacuous loop
    for path in paths:
        patch = read_patch(path)  # raises PatchError if a field is missing
        assert patch.summary and patch.removes and patch.reason and patch.upstream
        assert "diff --git a/" in path.read_text(encoding="utf-8"), path.name


def test_readme_table_covers_every_patch() -> None:
    readme = (ROOT / "patches" / "README.md").read_text(encoding="utf-8")
    recipe = load_recipe(NANOSERVER)
    paths = [p for component in recipe.patches for p in recipe.patch_files(component)]
    assert len(paths) >= 10
    for path in paths:
        assert path.name in readme, f"patches/README.md does not describe {path.name}"


# --------------------------------------------------------------------------------------------
# What nanoserver lacks, from the import definitions zig ships (mingw-w64's .def files)


def _zig_def_dir() -> Path:
    import ziglang

    return Path(ziglang.__file__).parent / "lib" / "libc" / "mingw" / "lib-common"


def _def_exports(path: Path) -> set[str]:
    """Export names of a mingw-w64 .def/.def.in file (F64(x)-style macros unwrapped)."""
    names = set()
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line or line.startswith(("#", "LIBRARY", "EXPORTS")):
            continue
        m = re.match(r"^\w+\((\w+)", line)  # F64(name), F_X86_ANY(name@8), …
        token = m.group(1) if m else line.split()[0]
        names.add(token.split("@", 1)[0].split("=", 1)[0])
    return names


@functools.cache
def _surface() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    d = _zig_def_dir()
    user32 = _def_exports(d / "user32.def.in")
    gdi32 = _def_exports(d / "gdi32.def")
    kernel32 = _def_exports(d / "kernel32.def.in")
    assert {"GetDC", "CreateWindowExA"} <= user32 and "BitBlt" in gdi32
    assert {"CreateFileA", "CreateFileW"} <= kernel32
    return frozenset(user32), frozenset(gdi32), frozenset(kernel32)


_HEAP = re.compile(
    r"^(Global|Local)(Alloc|ReAlloc|Free|Lock|Unlock|Size|Handle|Flags|Discard|Compact|Fix|Unfix"
    r"|Wire|Unwire)$"
)


def hostile(name: str) -> str | None:
    """Why nanoserver's variant must not import ``name`` (None if it may)."""
    user32, gdi32, kernel32 = _surface()
    if name in user32:
        return "USER32"
    if name in gdi32:
        return "GDI32"
    if _HEAP.match(name):
        return "Global*/Local* heap"
    if name.endswith("A") and name in kernel32 and name[:-1] + "W" in kernel32:
        return "ANSI -A"
    return None


def test_hostile_classification() -> None:
    assert hostile("GetDC") == "USER32"
    assert hostile("StretchDIBits") == "GDI32"
    assert hostile("GlobalLock") == "Global*/Local* heap"
    assert hostile("CreateFileMappingA") == "ANSI -A"
    assert hostile("LoadLibraryA") == "ANSI -A"
    for fine in ("CreateFileMappingW", "GlobalMemoryStatusEx", "GetProcAddress", "HeapAlloc"):
        assert hostile(fine) is None, fine


# --------------------------------------------------------------------------------------------
# COFF objects: the functions an object imports (``__imp_`` references)


def coff_imports(obj: Path) -> set[str]:
    """Names referenced through ``__imp_NAME`` (dllimport) by an x64 COFF object."""
    data = obj.read_bytes()
    machine, _, _, symtab, count = struct.unpack_from("<HHIII", data, 0)
    assert machine == 0x8664, f"{obj} is not an x64 COFF object"
    strings = symtab + 18 * count
    names: set[str] = set()
    i = 0
    while i < count:
        entry = symtab + 18 * i
        raw = data[entry : entry + 8]
        if raw[:4] == b"\0\0\0\0":
            start = strings + struct.unpack_from("<I", raw, 4)[0]
            raw = data[start : data.index(b"\0", start)]
        name = raw.rstrip(b"\0").decode()
        section, storage, aux = struct.unpack_from("<hxxBB", data, entry + 12)
        if section == 0 and storage == 2 and name.startswith("__imp_"):  # external, undefined
            names.add(name[len("__imp_") :])
        i += 1 + aux
    return names


def zig_compile(
    source: Path,
    out: Path,
    *,
    includes: Iterable[Path] = (),
    defines: Iterable[str] = (),
) -> set[str]:
    """Cross-compile one file for x86_64-windows-gnu and return what it imports."""
    tool = "c++" if source.suffix in (".cc", ".cpp") else "cc"
    cmd = [sys.executable, "-m", "ziglang", tool, "-target", "x86_64-windows-gnu", "-c", "-w"]
    cmd += [f"-I{p}" for p in includes] + [f"-D{d}" for d in defines]
    cmd += [str(source), "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr[-3000:]}"
    return coff_imports(out)


# --------------------------------------------------------------------------------------------
# Upstream trees


@dataclass(frozen=True)
class DebianSource:
    """A Debian source package whose orig tarball is the upstream tree of a component."""

    package: str
    #: Upstream part of the Debian version ("" = newest available).
    upstream: str


DEBIAN = {
    "libtiff": DebianSource("tiff", "4.7.2"),
    "freetype": DebianSource("freetype", "2.14.3+dfsg"),
    "openjpeg": DebianSource("openjpeg2", "2.5.4"),
    "lcms2": DebianSource("lcms2", "2.19.1"),
    "libwebp": DebianSource("libwebp", "1.6.0"),
    "xz": DebianSource("xz-utils", "5.8.3"),
    # CPython's Include/ and PC/pyconfig.h, to compile Pillow's C files for Windows.
    "cpython": DebianSource("python3.13", ""),
}


def _upstream_part(debian_version: str) -> str:
    version = debian_version.split(":", 1)[-1]
    return version.rsplit("-", 1)[0] if "-" in version else version


def _debian_versions(src: DebianSource) -> list[str]:
    """Debian versions of ``src`` apt knows, newest first (all share one orig tarball when
    their upstream part is the same)."""
    proc = subprocess.run(
        ["apt-cache", "showsrc", src.package], capture_output=True, text=True, check=False
    )
    versions = re.findall(r"^Version: (\S+)$", proc.stdout, re.MULTILINE)
    if not versions:
        pytest.fail(f"apt-cache showsrc {src.package}: no source package (is deb-src enabled?)")
    wanted = [v for v in versions if not src.upstream or _upstream_part(v) == src.upstream]
    if not wanted:
        pytest.fail(f"{src.package}: no Debian source of upstream {src.upstream} ({versions})")
    return sorted(set(wanted), key=lambda v: [int(x) for x in re.findall(r"\d+", v)], reverse=True)


def _orig_tarball(src: DebianSource, downloads: Path) -> Path:
    """The orig tarball, downloaded with ``apt-get source --download-only``; a version the
    index lists but the mirror no longer has is skipped for the next one."""
    errors = []
    for version in _debian_versions(src):
        pattern = f"{src.package}_{_upstream_part(version)}.orig.tar.*"
        found = [p for p in downloads.glob(pattern) if not p.name.endswith(".asc")]
        if not found:
            proc = subprocess.run(
                ["apt-get", "source", "--download-only", f"{src.package}={version}"],
                cwd=downloads,
                capture_output=True,
                text=True,
            )
            errors.append(f"{version}: {proc.stderr.strip()[-500:]}")
            found = [p for p in downloads.glob(pattern) if not p.name.endswith(".asc")]
        if found:
            return found[0]
    pytest.fail(f"apt-get source {src.package} failed:\n" + "\n".join(errors))


class Trees:
    """Pristine upstream trees, fetched and extracted once per session."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.downloads = base / "downloads"
        self.downloads.mkdir(parents=True, exist_ok=True)
        self._trees: dict[str, Path] = {}

    def pristine(self, component: str) -> Path:
        if component not in self._trees:
            self._trees[component] = self._fetch(component)
        return self._trees[component]

    def _fetch(self, component: str) -> Path:
        dest = self.base / "pristine" / component
        if component == "pillow":
            from pillow_variants.sources.fetch import extract_source, fetch_source

            fetched = fetch_source(load_recipe(NANOSERVER), "pillow", cache_dir=self.downloads)
            return extract_source(fetched, dest)
        if component == "harfbuzz":
            return _harfbuzz_from_uharfbuzz(self.downloads, dest)
        tarball = _orig_tarball(DEBIAN[component], self.downloads)
        if component == "cpython":
            return _extract_cpython_headers(tarball, dest)
        return extract_archive(tarball, dest)

    def patched(self, component: str, dest: Path) -> Path:
        """A fresh copy of the pristine tree with the component's patch set applied in order."""
        tree = shutil.copytree(self.pristine(component), dest, symlinks=True)
        env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(dest.parent)}
        for patch in load_recipe(NANOSERVER).patch_files(component):
            for args in (["--check"], []):
                proc = subprocess.run(
                    ["git", "apply", "-p1", *args, str(patch)],
                    cwd=tree,
                    env=env,
                    capture_output=True,
                    text=True,
                )
                assert proc.returncode == 0, f"{patch.name} does not apply:\n{proc.stderr}"
        return tree


#: uharfbuzz release whose sdist vendors the recipe's HarfBuzz version.
UHARFBUZZ = ("0.56.2", "14.5.0")


def _harfbuzz_from_uharfbuzz(downloads: Path, dest: Path) -> Path:
    release, harfbuzz = UHARFBUZZ
    sdist = downloads / f"uharfbuzz-{release}.tar.gz"
    if not sdist.is_file():
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        proc = subprocess.run(
            [*cmd, f"uharfbuzz=={release}", "-d", str(downloads)], capture_output=True, text=True
        )
        assert sdist.is_file(), f"pip download uharfbuzz=={release} failed:\n{proc.stderr[-2000:]}"
    tree = extract_archive(sdist, dest.parent / "uharfbuzz") / "harfbuzz"
    version = (tree / "src" / "hb-version.h").read_text(encoding="utf-8")
    assert f'#define HB_VERSION_STRING "{harfbuzz}"' in version, "not the pinned HarfBuzz"
    return tree


def _extract_cpython_headers(tarball: Path, dest: Path) -> Path:
    """Only Include/ and PC/pyconfig.h(.in) of a CPython source tarball; pyconfig.h lands in
    dest/pc next to a ``Windows.h`` that forwards to mingw's lower-case ``windows.h`` (Pillow
    includes ``<Windows.h>``; Windows file systems do not care, Linux does)."""
    dest.mkdir(parents=True)
    with tarfile.open(tarball) as tar:
        wanted = [
            m
            for m in tar.getmembers()
            if "/Include/" in m.name or re.search(r"/PC/pyconfig\.h(\.in)?$", m.name)
        ]
        tar.extractall(dest, members=wanted, filter="data")
    (top,) = dest.iterdir()
    pc = dest / "pc"
    pc.mkdir()
    config = next((top / "PC").glob("pyconfig.h*"))
    shutil.copy(config, pc / "pyconfig.h")
    (pc / "Windows.h").write_text("#include <windows.h>\n")
    return top


@pytest.fixture(scope="session")
def trees(tmp_path_factory: pytest.TempPathFactory) -> Trees:
    return Trees(tmp_path_factory.mktemp("upstream"))


# --------------------------------------------------------------------------------------------
# CMake-style generated headers some files need (a tiny configure_file)


def configure_file(template: Path, out: Path, values: dict[str, str]) -> None:
    """Expand ``#cmakedefine``, ``#cmakedefine01`` and ``@VAR@`` as CMake's configure_file."""

    def on(name: str) -> bool:
        return values.get(name, "").upper() not in ("", "0", "OFF", "FALSE", "NO")

    lines = []
    for line in template.read_text(encoding="utf-8").splitlines():
        line = re.sub(r"@(\w+)@", lambda m: values.get(m.group(1), ""), line)
        m = re.match(r"^#cmakedefine01\s+(\w+)", line)
        if m:
            line = f"#define {m.group(1)} {int(on(m.group(1)))}"
        m = re.match(r"^#cmakedefine\s+(\w+)(.*)$", line)
        if m:
            line = (
                f"#define {m.group(1)}{m.group(2)}"
                if on(m.group(1))
                else f"/* #undef {m.group(1)} */"
            )
        lines.append(line)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")


def _libtiff_config(tree: Path, out: Path) -> list[Path]:
    ints = {f"TIFF_{s}INT{n}_T": f"{s.lower()}int{n}_t" for s in ("", "U") for n in (8, 16, 32, 64)}
    values = {
        **ints,
        "TIFF_SSIZE_T": "int64_t",
        "HOST_BIG_ENDIAN": "0",
        "SIZEOF_SIZE_T": "8",
        "USE_WIN32_FILEIO": "1",
        "HAVE_IO_H": "1",
        "HAVE_FCNTL_H": "1",
        "HAVE_SYS_TYPES_H": "1",
        "HAVE_ASSERT_H": "1",
        "TIFF_MAX_DIR_COUNT": "1048576",
        "STRIP_SIZE_DEFAULT": "8192",
        "LIBTIFF_VERSION": "4.7.2",
        "LIBTIFF_RELEASE_DATE": "20250101",
        "LIBTIFF_MAJOR_VERSION": "4",
        "LIBTIFF_MINOR_VERSION": "7",
        "LIBTIFF_MICRO_VERSION": "2",
    }
    # tiffvers.h is generated too in a tree from git (Debian's orig tarball); releases ship it
    for name in ("tif_config.h", "tiffconf.h", "tiffvers.h"):
        configure_file(tree / "libtiff" / f"{name[:-2]}.h.cmake.in", out / name, values)
    return [out, tree / "libtiff"]


def _openjpeg_config(tree: Path, out: Path) -> list[Path]:
    values = {
        "OPENJPEG_VERSION_MAJOR": "2",
        "OPENJPEG_VERSION_MINOR": "5",
        "OPENJPEG_VERSION_BUILD": "4",
        "PACKAGE_VERSION": "2.5.4",
        "OPJ_HAVE__ALIGNED_MALLOC": "1",
        "OPJ_HAVE_MALLOC_H": "1",
    }
    lib = tree / "src" / "lib" / "openjp2"
    for name in ("opj_config.h", "opj_config_private.h"):
        configure_file(lib / f"{name[:-2]}.h.cmake.in", out / name, values)
    return [out, lib]


# --------------------------------------------------------------------------------------------
# The compile cases


@dataclass(frozen=True)
class Case:
    component: str
    file: str
    #: Hostile imports the unpatched file has and the patched file must have lost.
    removed: frozenset[str]
    defines: tuple[str, ...] = ()
    #: Include directories, relative to the tree ("{cpython}", "{lcms2}" = other trees).
    includes: tuple[str, ...] = ()
    #: "libtiff" / "openjpeg": generate the CMake config headers first.
    config: str = ""
    #: Imports the patched file must have (the W replacements; for a file left unpatched,
    #: proof that the code in question was compiled at all).
    added: frozenset[str] = field(default_factory=frozenset)


PILLOW_INCLUDES = ("{cpython}/Include", "{cpython}/../pc", "src", "src/libImaging")

PATCHED = [
    Case(
        "pillow",
        "src/display.c",
        frozenset(
            {"GetDC", "CreateWindowExA", "BitBlt", "CreateDIBSection", "SetEnhMetaFileBits"}
            | {"OpenClipboard", "GlobalLock", "GlobalUnlock", "GlobalSize", "LoadLibraryA"}
            | {"GetModuleHandleA", "RegisterClassA", "CreateDCA"}
        ),
        defines=("PILLOW_NO_GDI",),
        includes=PILLOW_INCLUDES,
    ),
    Case(
        "pillow",
        "src/libImaging/Dib.c",
        frozenset({"CreateDIBSection", "StretchDIBits", "CreatePalette", "RealizePalette"}),
        defines=("PILLOW_NO_GDI",),
        includes=PILLOW_INCLUDES,
    ),
    Case(
        "pillow",
        "src/_imagingcms.c",
        frozenset({"GetDC", "ReleaseDC", "GetICMProfileA"}),
        defines=("PILLOW_NO_GDI",),
        includes=(*PILLOW_INCLUDES, "{lcms2}/include"),
    ),
    Case(
        "pillow",
        "src/thirdparty/fribidi-shim/fribidi.c",
        frozenset({"LoadLibraryA"}),
        includes=PILLOW_INCLUDES,
        added=frozenset({"LoadLibraryW"}),
    ),
    Case(
        "libtiff",
        "libtiff/tif_win32.c",
        frozenset({"CreateFileMappingA", "CreateFileA"}),
        config="libtiff",
        added=frozenset({"CreateFileMappingW", "CreateFileW"}),
    ),
    Case(
        "freetype",
        "builds/windows/ftsystem.c",
        frozenset({"CreateFileA", "CreateFileMappingA"}),
        defines=("FT2_BUILD_LIBRARY",),
        includes=("include",),
        added=frozenset({"CreateFileW", "CreateFileMappingW"}),
    ),
    Case(
        "harfbuzz",
        "src/hb-blob.cc",
        frozenset({"CreateFileMappingA"}),
        added=frozenset({"CreateFileMappingW"}),
    ),
    Case(
        "openjpeg",
        "src/lib/openjp2/thread.c",
        frozenset({"CreateEventA"}),
        defines=("MUTEX_win32", "OPJ_STATIC"),
        config="openjpeg",
        added=frozenset({"CreateEventW"}),
    ),
    Case(
        "lcms2",
        "src/cmsplugin.c",
        frozenset({"CreateMutexA"}),
        includes=("include",),
        added=frozenset({"CreateMutexW"}),
    ),
]


def _build_flags(case: Case, tree: Path, trees: Trees, work: Path) -> tuple[list[Path], list[str]]:
    includes: list[Path] = []
    for inc in case.includes:
        m = re.match(r"^\{(\w+)\}(.*)$", inc)
        base = trees.pristine(m.group(1)) if m else tree
        includes.append(((base / m.group(2).lstrip("/")) if m else (tree / inc)).resolve())
    if case.config == "libtiff":
        includes += _libtiff_config(tree, work / "config")
    elif case.config == "openjpeg":
        includes += _openjpeg_config(tree, work / "config")
    return includes, list(case.defines)


def _hostile(imports: set[str]) -> dict[str, str]:
    return {name: why for name in sorted(imports) if (why := hostile(name))}


@pytest.mark.network
@pytest.mark.parametrize("case", PATCHED, ids=lambda c: f"{c.component}:{c.file}")
def test_patch_set_removes_hostile_imports(case: Case, trees: Trees, tmp_path: Path) -> None:
    pristine = trees.pristine(case.component)
    patched = trees.patched(case.component, tmp_path / "tree")

    includes, defines = _build_flags(case, pristine, trees, tmp_path / "before")
    before = zig_compile(
        pristine / case.file, tmp_path / "before.o", includes=includes, defines=defines
    )
    includes, defines = _build_flags(case, patched, trees, tmp_path / "after")
    after = zig_compile(
        patched / case.file, tmp_path / "after.o", includes=includes, defines=defines
    )

    assert case.removed <= before, f"unpatched file lacks {sorted(case.removed - before)}"
    assert case.removed <= set(_hostile(before)), "expected imports are not hostile"
    assert _hostile(after) == {}, f"{case.file} still imports {_hostile(after)}"
    assert case.added <= after, f"patched file lacks {sorted(case.added - after)}"


# Files with a hostile call in their source that stay unpatched: as upstream configures them
# (Pillow's winbuild: x64, Release, static harfbuzz), the call is not compiled.
UNPATCHED_CLEAN = [
    # CreateEvent/CreateSemaphore only when _WIN32_WINNT < 0x0600; x64 uses condition variables.
    Case(
        "libwebp",
        "src/utils/thread_utils.c",
        frozenset(),
        defines=("WEBP_USE_THREAD",),
        includes=(".",),
        added=frozenset({"InitializeConditionVariable", "WakeConditionVariable"}),
    ),
    # GetModuleHandleA is inside a comment (the Win95 variant); GlobalMemoryStatusEx is not heap.
    Case(
        "xz",
        "src/common/tuklib_physmem.c",
        frozenset(),
        includes=("src/common",),
        added=frozenset({"GlobalMemoryStatusEx"}),
    ),
    # OutputDebugStringA only with FT_DEBUG_LEVEL_ERROR (Debug configurations).
    Case(
        "freetype",
        "builds/windows/ftdebug.c",
        frozenset(),
        defines=("FT2_BUILD_LIBRARY",),
        includes=("include",),
    ),
    # LoadLibraryA only with FT_CONFIG_OPTION_USE_HARFBUZZ_DYNAMIC; upstream links harfbuzz.
    Case(
        "freetype",
        "src/autofit/ft-hb.c",
        frozenset(),
        defines=("FT2_BUILD_LIBRARY", "FT_CONFIG_OPTION_USE_HARFBUZZ"),
        includes=("include",),
    ),
]


@pytest.mark.network
@pytest.mark.parametrize("case", UNPATCHED_CLEAN, ids=lambda c: f"{c.component}:{c.file}")
def test_unpatched_file_is_clean_as_configured(case: Case, trees: Trees, tmp_path: Path) -> None:
    tree = trees.pristine(case.component)
    includes, defines = _build_flags(case, tree, trees, tmp_path)
    imports = zig_compile(tree / case.file, tmp_path / "o.o", includes=includes, defines=defines)
    assert case.added <= imports, f"{case.file} lacks {sorted(case.added - imports)}"
    assert _hostile(imports) == {}


@pytest.mark.network
def test_unpatched_files_are_hostile_in_the_other_configuration(
    trees: Trees, tmp_path: Path
) -> None:
    """The justifications hinge on a configuration; in the other one the import is there."""
    freetype = trees.pristine("freetype")
    debug = zig_compile(
        freetype / "builds/windows/ftdebug.c",
        tmp_path / "d.o",
        includes=[freetype / "include"],
        defines=["FT2_BUILD_LIBRARY", "FT_DEBUG_LEVEL_ERROR"],
    )
    assert "OutputDebugStringA" in debug
    webp = trees.pristine("libwebp")
    old = zig_compile(
        webp / "src/utils/thread_utils.c",
        tmp_path / "w.o",
        includes=[webp],
        defines=["WEBP_USE_THREAD", "_WIN32_WINNT=0x0501"],
    )
    assert {"CreateEventA", "CreateSemaphoreA"} <= old
