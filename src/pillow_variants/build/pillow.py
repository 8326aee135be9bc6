"""The wheel stage: Pillow's own build, cross-compiled for win_amd64 with zig, into a wheel.

Nothing here knows Pillow's C sources. The recipe's Pillow sdist is extracted and patched
(:mod:`sources`, :mod:`patches`), and its own PEP 517 backend (``setup.py`` + setuptools'
``build_ext``) runs on the Linux host interpreter in a cross environment (:mod:`crossenv`): a
generated sysconfig for the Windows CPython of a :mod:`pysdk` SDK, zig as compiler and linker,
the static dependency prefix as include/library directories. :mod:`cross_pep517` makes
``setup.py`` take its ``sys.platform == "win32"`` branches. A new Pillow release therefore needs
a new recipe, not new code.

After the build, the wheel is checked rather than trusted: its tags must be those of the
target CPython (rewritten if the host's leaked in), its version the recipe's, every extension
module must carry the target's ``EXT_SUFFIX``, be an AMD64 PE DLL, import the SDK's
``pythonXY.dll`` and otherwise only Windows system DLLs (the UCRT through its
``api-ms-win-crt-*`` API sets) — never a DLL from the toolchain or the prefix.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from pillow_variants._log import Progress
from pillow_variants._log import progress as progress_line
from pillow_variants.build import crossenv
from pillow_variants.build.pysdk import WindowsSDK, load_sdk, split_target
from pillow_variants.errors import BuildError, ToolchainError, UserError
from pillow_variants.pe import read_pe
from pillow_variants.recipe.model import Recipe
from pillow_variants.wheeltools import dist_info_dir, read_wheel, write_wheel

#: The cross-build driver, executed by path with the build environment's interpreter.
DRIVER = Path(__file__).with_name("cross_pep517.py")
#: ``$id`` of the ``--json`` output's schema.
SCHEMA_ID = "pillow-variants-build-wheel/1"
#: Config setting added to every build: Pillow must not search the host's /usr, /usr/local.
NO_PLATFORM_GUESSING = "platform-guessing=disable"
#: The surface whose DLL list defines "a Windows system DLL" for the post-build check.
SYSTEM_SURFACE = "servercore-ltsc2022"
#: Archive contents that mean "compiled C++": the link then needs the C++ driver (libc++).
_CXX_MARKERS = (b"__gxx_personality", b"__cxa_", b"_Znwy", b"_ZdlPv")
#: Lines of a build log that state an error (compiler, linker, setuptools, Python).
_ERROR_LINE = re.compile(r"(^error:|: (fatal )?error:|^\w*(Error|Exception): )")


@dataclass(frozen=True)
class ExtensionCheck:
    """One extension module of the built wheel and what it imports (DLL names)."""

    name: str
    machine: str
    imports: list[str]
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "machine": self.machine,
            "imports": self.imports,
            "problems": self.problems,
        }


@dataclass(frozen=True)
class WheelBuild:
    """What :func:`run_wheel_build` produced and how."""

    wheel: Path
    recipe: str
    python: str
    version: str
    tag: str
    config_settings: dict[str, list[str]]
    extensions: list[ExtensionCheck]
    seconds: float
    source: dict[str, Any]
    log: Path | None  # None when the work directory was temporary
    retagged: bool

    def to_dict(self) -> dict[str, Any]:
        """The ``build wheel --json`` document (schemas/build-wheel.schema.json)."""
        from pillow_variants import __version__

        return {
            "schema": SCHEMA_ID,
            "tool": {"name": "pillow-variants", "version": __version__},
            "wheel": str(self.wheel),
            "recipe": self.recipe,
            "python": self.python,
            "version": self.version,
            "tag": self.tag,
            "config_settings": self.config_settings,
            "extensions": [e.to_dict() for e in self.extensions],
            "seconds": round(self.seconds, 1),
            "source": self.source,
            "log": str(self.log) if self.log else None,
            "retagged": self.retagged,
        }


# --------------------------------------------------------------------------------------------
# Inputs


def config_settings(items: list[str]) -> dict[str, list[str]]:
    """PEP 517 config-settings from ``KEY=VALUE`` items, repeated keys kept in order.

    This is what ``pip wheel -C raqm=enable -C raqm=vendor`` hands to the backend; Pillow's
    backend turns each pair into a ``--pillow-configuration`` argument. Platform guessing is
    always disabled: a cross build must find its libraries in the prefix, never on the host.
    """
    out: dict[str, list[str]] = {}
    for item in [*items, NO_PLATFORM_GUESSING]:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"config setting {item!r}: expected KEY=VALUE")
        values = out.setdefault(key.strip(), [])
        if value not in values:
            values.append(value)
    return out


def set_local_version(tree: Path, local: str) -> None:
    """Give the distribution the recipe's local version label (``13.0.0+nanoserver``).

    setuptools' ``egg_info.tag_build`` (setup.cfg) is appended to the project's version when
    the metadata is generated; Pillow's own ``PIL.__version__`` (and the ``PILLOW_VERSION`` its
    C modules compare it with at import) stays the upstream version, so code that parses
    ``PIL.__version__`` keeps working. ``local`` empty removes any tag.
    """
    path = tree / "setup.cfg"
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    if path.is_file():
        parser.read(path, encoding="utf-8")
    if not parser.has_section("egg_info"):
        parser.add_section("egg_info")
    parser.set("egg_info", "tag_build", f"+{local}" if local else "")
    parser.set("egg_info", "tag_date", "0")
    with path.open("w", encoding="utf-8") as fh:
        parser.write(fh)


def check_requires_python(tree: Path, python: str) -> None:
    """Refuse a target CPython the project does not support (its ``Requires-Python``).

    The cross build would otherwise succeed: nothing compiles the project's Python code for
    the target, so a wheel for an unsupported version would only fail when imported there.
    """
    from packaging.specifiers import SpecifierSet

    spec = ""
    pyproject = tree / "pyproject.toml"
    if pyproject.is_file():
        project = tomllib.loads(pyproject.read_text("utf-8")).get("project", {})
        spec = project.get("requires-python", "")
    if not spec and (tree / "PKG-INFO").is_file():
        meta = BytesParser().parsebytes((tree / "PKG-INFO").read_bytes(), headersonly=True)
        spec = meta.get("Requires-Python", "")
    minor = split_target(python)[0]  # "3.14t" is CPython 3.14
    if spec and not SpecifierSet(spec).contains(f"{minor}.0", prereleases=True):
        raise UserError(f"{tree.name} requires Python {spec}; cannot build for {python}")


def build_requirements(tree: Path) -> list[str]:
    """``[build-system] requires`` of the tree (setuptools' PEP 517 default if absent)."""
    pyproject = tree / "pyproject.toml"
    if not pyproject.is_file():
        return ["setuptools>=40.8.0"]
    try:
        system = tomllib.loads(pyproject.read_text("utf-8")).get("build-system", {})
    except tomllib.TOMLDecodeError as exc:
        raise BuildError(f"{pyproject}: invalid TOML ({exc})") from None
    return [str(r) for r in system.get("requires", ["setuptools>=40.8.0"])]


def satisfied(requirements: list[str]) -> bool:
    """Does this interpreter have every requirement (markers evaluated) installed?"""
    from importlib import metadata

    for line in requirements:
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            installed = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            return False
        if not req.specifier.contains(installed, prereleases=True):
            return False
    return True


def build_environment(
    requirements: list[str], cache_dir: Path, progress: Progress = progress_line
) -> str:
    """An interpreter that has ``requirements`` (Pillow's build-system requires).

    This interpreter if it already has them (no network, e.g. a prepared CI image); otherwise a
    venv in the cache keyed by the requirements and this Python's version, created once with
    pip (the user's index configuration applies) and renamed into place atomically.
    """
    for item in requirements:
        try:
            Requirement(item)
        except InvalidRequirement as exc:
            raise BuildError(f"build requirement {item!r}: {exc}") from None
    if satisfied(requirements):
        return sys.executable
    key = hashlib.sha256(
        json.dumps([sys.version_info[:2], sorted(requirements)]).encode()
    ).hexdigest()[:16]
    env_dir = cache_dir / "build-env" / f"py{sys.version_info[0]}{sys.version_info[1]}-{key}"
    python = env_dir / "bin" / "python"
    if python.is_file():  # complete: it is renamed into place only after pip succeeded
        return str(python)
    progress(f"creating build environment: {' '.join(requirements)}")
    env_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".incoming-", dir=env_dir.parent))
    try:
        subprocess.run([sys.executable, "-m", "venv", str(tmp)], check=True, capture_output=True)
        proc = subprocess.run(
            [str(tmp / "bin" / "python"), "-m", "pip", "install", "-q", *requirements],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["pip failed"])[-1]
            raise BuildError(f"installing build requirements failed: {tail}")
        # venv scripts embed their path; the venv is used only through bin/python, which
        # resolves its prefix from pyvenv.cfg beside it, so the rename is safe.
        if env_dir.exists():
            shutil.rmtree(env_dir)
        os.rename(tmp, env_dir)
    except subprocess.CalledProcessError as exc:
        raise BuildError(f"creating a venv failed: {exc.stderr.decode(errors='replace')}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(python)


def prefix_layout(prefix: Path) -> tuple[Path, Path, list[Path]]:
    """The prefix's include dir, lib dir and static libraries (``lib*.a`` or ``*.lib``)."""
    include, lib = prefix / "include", prefix / "lib"
    if not include.is_dir() or not lib.is_dir():
        raise ToolchainError(f"{prefix}: not a dependency prefix (needs include/ and lib/)")
    archives = sorted(p for p in lib.iterdir() if p.suffix in (".a", ".lib") and p.is_file())
    if not archives:
        raise ToolchainError(f"{lib}: no static libraries (lib*.a or *.lib)")
    dlls = sorted(p.name for p in lib.iterdir() if p.suffix.lower() == ".dll")
    if dlls:
        raise ToolchainError(f"{lib}: holds DLLs ({', '.join(dlls)}); the build links statically")
    return include, lib, archives


def stage_libraries(archives: list[Path], dest: Path) -> list[Path]:
    """Symlink the prefix's archives into ``dest`` under the names setuptools looks for.

    Pillow's ``setup.py`` finds a library through the unix compiler's ``find_library_file``,
    which looks for ``lib<name>.a``; a prefix laid out as upstream's (``zlib.lib``,
    ``libjpeg.lib``) is staged as ``libzlib.a``, ``liblibjpeg.a`` — exactly the names
    Pillow's win32 branch then asks for (``zlib``, ``libjpeg``). ``.a`` files keep their name.
    """
    dest.mkdir(parents=True, exist_ok=True)
    staged: dict[str, Path] = {}
    for archive in archives:
        name = archive.name if archive.suffix == ".a" else f"lib{archive.stem}.a"
        if name in staged:
            raise ToolchainError(f"{archive} and {staged[name]} both stage as {name}")
        (dest / name).symlink_to(archive.resolve())
        staged[name] = archive
    return [dest / name for name in sorted(staged)]


def needs_cxx(archives: list[Path]) -> bool:
    """Whether a static library contains C++ (HarfBuzz): linking then needs the C++ runtime."""
    return any(any(m in a.read_bytes() for m in _CXX_MARKERS) for a in archives)


# --------------------------------------------------------------------------------------------
# The build


def cross_build_env(
    cross: Path,
    tree: Path,
    sdk: WindowsSDK,
    compiler: crossenv.CrossCompiler,
    *,
    include_dirs: list[Path],
    library_dirs: list[Path],
    archives: list[Path],
    jobs: int,
    base_env: dict[str, str] | None = None,
) -> dict[str, str]:
    """Write the cross files into ``cross`` (emptied first) and return the build environment.

    ``cross`` receives ``lib/`` (:func:`stage_libraries`), ``sysconfig/_sysconfigdata_….py``,
    ``case-shims/`` (:func:`crossenv.write_case_shims`), ``runtime/``
    (:meth:`crossenv.CrossCompiler.with_link_runtime`) and an ``empty/`` directory for
    pkg-config and ``ProgramFiles``.
    """
    shutil.rmtree(cross, ignore_errors=True)
    staged = stage_libraries(archives, cross / "lib")
    shims = cross / "case-shims"
    shims.mkdir(parents=True)
    crossenv.write_case_shims(tree, crossenv.windows_header_dir(compiler), shims)
    compiler = compiler.with_link_runtime(cross / "runtime")
    variables = crossenv.sysconfig_vars(sdk, compiler, link_cxx=needs_cxx(archives))
    crossenv.write_sysconfigdata(cross / "sysconfig", sdk, variables)
    (cross / "empty").mkdir()
    return crossenv.cross_environment(
        dict(os.environ if base_env is None else base_env),
        sdk=sdk,
        sysconfig_dir=cross / "sysconfig",
        include_dirs=[*include_dirs, shims],
        library_dirs=[cross / "lib", *library_dirs],
        link_libraries=staged,
        empty_dir=cross / "empty",
        jobs=jobs,
    )


def run_backend(
    python: str,
    tree: Path,
    wheel_dir: Path,
    settings: dict[str, list[str]],
    env: dict[str, str],
    log: Path,
) -> Path:
    """Run the cross driver; the build's output goes to ``log`` (its tail into the error)."""
    cmd = [python, str(DRIVER), str(tree), str(wheel_dir), json.dumps(settings), "win32"]
    with log.open("w", encoding="utf-8") as fh:
        fh.write(f"$ {' '.join(cmd)}\n")
        fh.flush()
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=fh, text=True)
    if proc.returncode != 0:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
        errors = [ln for ln in lines if _ERROR_LINE.search(ln)][-3:] or lines[-3:]
        raise BuildError(
            f"the project's build failed (exit {proc.returncode}); log: {log}; "
            + " | ".join(e.strip()[:300] for e in errors)
        )
    name = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    wheel = wheel_dir / name
    if not name.endswith(".whl") or not wheel.is_file():
        raise BuildError(f"the backend reported no wheel (log: {log})")
    return wheel


def expected_tag(sdk: WindowsSDK) -> str:
    """``cp314-cp314t-win_amd64``: interpreter, ABI (``t`` = free-threaded) and platform."""
    return f"{sdk.python_tag}-{sdk.abi_tag}-{sdk.platform_tag}"


def finalize_wheel(wheel: Path, sdk: WindowsSDK, version: str, out_dir: Path) -> tuple[Path, bool]:
    """Check version and tags; rewrite WHEEL and the file name if the tags are not the target's.

    setuptools derives the interpreter tag from the *running* interpreter on some versions;
    the wheel must carry the target's (``cp313-cp313-win_amd64``) whatever the host is.
    Returns the final path in ``out_dir`` and whether the tags had to be rewritten.
    """
    files = read_wheel(wheel)
    dist_info = dist_info_dir(files, wheel)
    meta = BytesParser().parsebytes(files[f"{dist_info}/METADATA"], headersonly=True)
    name, built = meta["Name"], meta["Version"]
    if Version(built) != Version(version):
        raise BuildError(f"{wheel.name}: built version {built}, the recipe asks for {version}")
    tag = expected_tag(sdk)
    wheel_file = f"{dist_info}/WHEEL"
    lines = files[wheel_file].decode("utf-8").splitlines()
    tags = [ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("Tag:")]
    final = out_dir / f"{canonicalize_name(name).replace('-', '_')}-{Version(built)}-{tag}.whl"
    out_dir.mkdir(parents=True, exist_ok=True)
    if tags == [tag] and wheel.name == final.name:
        shutil.copyfile(wheel, final)
        return final, False
    kept = [ln for ln in lines if not ln.startswith("Tag:")]
    files[wheel_file] = ("\n".join([*kept, f"Tag: {tag}"]) + "\n").encode()
    return write_wheel(final, files), True


def check_extensions(wheel: Path, sdk: WindowsSDK) -> list[ExtensionCheck]:
    """Every native file of the wheel: suffix, PE machine, DLL imports (see module docstring)."""
    from pillow_variants.audit.surface import load_surface

    system = load_surface(SYSTEM_SURFACE)
    python_dll = sdk.dll.lower()
    out: list[ExtensionCheck] = []
    for name, data in sorted(read_wheel(wheel).items()):
        lower = name.lower()
        if not lower.endswith((".pyd", ".so", ".dll", ".dylib")):
            continue
        problems: list[str] = []
        if not name.endswith(sdk.ext_suffix):
            problems.append(f"file name does not end with the target EXT_SUFFIX {sdk.ext_suffix}")
        try:
            info = read_pe(data, name)
        except UserError as exc:
            out.append(ExtensionCheck(name, "?", [], [*problems, str(exc)]))
            continue
        dlls = [d.name for d in info.imports]
        if info.machine != "amd64":
            problems.append(f"machine {info.machine}, not amd64 (0x8664)")
        if not info.is_dll:
            problems.append("not a DLL")
        if python_dll not in {d.lower() for d in dlls}:
            problems.append(f"does not import {sdk.dll}")
        for dll in dlls:
            low = dll.lower()
            if low == python_dll:
                continue
            if low.startswith("python") or low.startswith("msvcr") or low == "msvcrt.dll":
                problems.append(f"imports {dll} (wrong Python or C runtime)")
            elif not system.find_dll(dll, name)[1].present:
                problems.append(f"imports {dll}, not a Windows system DLL")
        out.append(ExtensionCheck(name, info.machine, dlls, problems))
    if not out:
        raise BuildError(f"{wheel.name}: no extension modules in the wheel")
    return out


def run_wheel_build(
    recipe: Recipe,
    python_version: str,
    deps_prefix: Path,
    sdk: WindowsSDK | Path,
    out_dir: Path,
    *,
    source_overrides: dict[str, Path] | None = None,
    cache_dir: Path | None = None,
    allow_unpinned: bool = False,
    work_dir: Path | None = None,
    jobs: int | None = None,
    compiler: crossenv.CrossCompiler | None = None,
    build_python: str | None = None,
    progress: Progress = progress_line,
) -> WheelBuild:
    """Build Pillow for ``python_version`` on win_amd64 into ``out_dir``; see the module doc.

    ``work_dir`` (default: a temporary directory, removed afterwards) receives the patched
    source tree, the generated sysconfig and the build log; give one to keep them.
    """
    from pillow_variants.sources.fetch import default_cache_dir, prepare_source_tree

    started = time.monotonic()
    target = load_sdk(Path(sdk)) if not isinstance(sdk, WindowsSDK) else sdk
    if target.python != python_version:
        raise UserError(f"SDK {target.root} is for Python {target.python}, not {python_version}")
    if python_version not in recipe.python:
        raise UserError(
            f"recipe {recipe.name} builds Python {', '.join(recipe.python)}, not {python_version}"
        )
    if target.platform_tag != recipe.platform:
        raise UserError(f"SDK platform {target.platform_tag} != recipe {recipe.platform}")
    crossenv.check_sdk(target)
    include, _lib, archives = prefix_layout(Path(deps_prefix).resolve())
    # absolute: the build runs in the source tree, where a relative path would miss
    cache = (Path(cache_dir) if cache_dir is not None else default_cache_dir()).resolve()
    compiler = compiler or crossenv.CrossCompiler.zig()
    settings = config_settings(recipe.pillow.config_settings)

    own_work = work_dir is None
    work = Path(tempfile.mkdtemp(prefix="pv-wheel-")) if work_dir is None else work_dir.resolve()
    out_dir = Path(out_dir).resolve()
    keep = not own_work
    try:
        work.mkdir(parents=True, exist_ok=True)
        tree_dir = work / f"pillow-{recipe.pillow.version}-cp{target.nodot}"
        if tree_dir.exists():
            shutil.rmtree(tree_dir)
        progress(f"preparing Pillow {recipe.pillow.version} sources")
        tree, fetched = prepare_source_tree(
            recipe,
            "pillow",
            tree_dir,
            cache_dir=cache,
            overrides=source_overrides,
            allow_unpinned=allow_unpinned,
        )
        check_requires_python(tree, python_version)
        set_local_version(tree, recipe.local_version)

        cross = work / f"cross-cp{target.nodot}"
        env = cross_build_env(
            cross,
            tree,
            target,
            compiler,
            include_dirs=[include],
            library_dirs=[],
            archives=archives,
            jobs=jobs or crossenv.default_jobs(),
        )
        python = build_python or build_environment(build_requirements(tree), cache, progress)

        progress(f"building Pillow for CPython {python_version} {target.platform_tag} with zig")
        log = work / f"build-cp{target.nodot}.log"
        raw_dir = cross / "dist"
        compile_started = time.monotonic()
        raw = run_backend(python, tree, raw_dir, settings, env, log)
        progress(f"compiled and linked in {time.monotonic() - compile_started:.0f} s")

        wheel, retagged = finalize_wheel(raw, target, recipe.wheel_version, out_dir)
        checks = check_extensions(wheel, target)
        bad = [f"{c.name}: {p}" for c in checks for p in c.problems]
        if bad:
            raise BuildError(f"{wheel.name}: " + "; ".join(bad))
        return WheelBuild(
            wheel=wheel,
            recipe=recipe.name,
            python=python_version,
            version=recipe.wheel_version,
            tag=expected_tag(target),
            config_settings=settings,
            extensions=checks,
            seconds=time.monotonic() - started,
            source=fetched.manifest_entry(),
            log=None if own_work else log,
            retagged=retagged,
        )
    except BuildError:
        if own_work:
            keep = True  # the log and the tree are what the user needs to see next
            progress(f"build directory kept for inspection: {work}")
        raise
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def build_wheel(
    recipe: Recipe,
    python_version: str,
    deps_prefix: Path,
    sdk: WindowsSDK | Path,
    out_dir: Path,
    **kwargs: Any,
) -> Path:
    """:func:`run_wheel_build` for callers that need only the wheel's path (``build all``)."""
    return run_wheel_build(recipe, python_version, deps_prefix, sdk, out_dir, **kwargs).wheel
