"""The Windows-host build: the recipe's dependencies with MSVC, then cibuildwheel, as upstream.

Upstream Pillow builds its Windows wheels with ``winbuild\\build_prepare.py`` (MSVC builds of
the C libraries, ``build_env.cmd``) and ``python -m cibuildwheel`` with its pyproject's
``config-settings``. The same recipe, patches, audit and smoke test apply here; only the
toolchain differs from the zig path. This module turns a recipe into:

* ``cibuildwheel.toml`` -- a ``[tool.cibuildwheel]`` configuration usable with
  ``cibuildwheel --config-file``: the recipe's build identifiers, its config-settings, the
  dependency prefix in INCLUDE/LIB/PATH (upstream's build_env.cmd values, plus its
  ``DISTUTILS_USE_SDK=1`` and ``py_vcruntime_redist=true``), ``delvewheel repair`` followed by
  the audit gate (the recipe's surface and policy), and the smoke test as test command;
* ``build-windows.cmd`` -- every command, in order: ``pillow-variants deps build --toolchain
  msvc``, ``pillow-variants cibw prepare`` (verified sdist + patch set + local version), the
  Visual Studio developer environment (vswhere + vcvarsall, as upstream), cibuildwheel.

Generation is pure and host-independent (Windows paths are strings, :mod:`ntpath`), so the
files are produced and tested on Linux; running them needs Windows with Visual Studio.

Paths in the generated files are relative to the project root (the script refuses to run
elsewhere) unless given absolute; the environment needs an absolute prefix, which the script
exports as ``PILLOW_VARIANTS_PREFIX`` and the configuration reads (``$PILLOW_VARIANTS_PREFIX``,
expanded by cibuildwheel).
"""

from __future__ import annotations

import json
import ntpath
import re
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pillow_variants import __version__
from pillow_variants.errors import UserError
from pillow_variants.recipe.model import VARIANTS, Recipe
from pillow_variants.sources.fetch import FetchedSource, prepare_source_tree
from pillow_variants.toolchains.base import BuildPaths, Command, DepPlan
from pillow_variants.toolchains.msvc import VCVARS_ARCH, MsvcToolchain, vswhere_command

CONFIG_NAME = "cibuildwheel.toml"
SCRIPT_NAME = "build-windows.cmd"
#: Environment variable holding the absolute dependency prefix (set by the script).
PREFIX_VAR = "PILLOW_VARIANTS_PREFIX"
#: What the script asks for when cibuildwheel is missing (4.x: option names used here).
CIBUILDWHEEL_REQUIREMENT = "cibuildwheel>=4.3,<5"
WINDOWS_ARCH = "AMD64"
DEFAULT_WORK_DIR = "build\\cibw-{recipe}"
DEFAULT_OUT_DIR = "wheelhouse"

#: Pillow's setup.py feature names → the recipe dependency that only that feature needs.
#: ``X=disable`` in the config-settings means upstream does not build the library at all
#: (build_prepare.py ``--no-imagequant`` for ``imagequant=disable``).
FEATURE_DEPENDENCY = {
    "zlib": "zlib",
    "jpeg": "libjpeg",
    "tiff": "libtiff",
    "freetype": "freetype",
    "lcms": "lcms2",
    "webp": "libwebp",
    "jpeg2000": "openjpeg",
    "imagequant": "libimagequant",
    "avif": "libavif",
}


def windows_path(path: str) -> str:
    """A user-given path as a normalised Windows path (``/`` → ``\\``)."""
    if not path.strip():
        raise UserError("empty path")
    return ntpath.normpath(path.replace("/", "\\"))


def in_root(path: str) -> str:
    """``path`` as the script must write it: relative paths start at the project root."""
    return path if ntpath.isabs(path) else f"%CD%\\{path}"


def build_identifiers(recipe: Recipe, pythons: list[str] | None = None) -> list[str]:
    """cibuildwheel identifiers (``cp313-win_amd64``) of the recipe's CPython versions."""
    if recipe.platform != "win_amd64":
        raise UserError(
            f"{recipe.name}: platform {recipe.platform}; the MSVC path builds win_amd64"
        )
    return [f"cp{p.replace('.', '')}-{recipe.platform}" for p in recipe.select_pythons(pythons)]


def disabled_dependencies(recipe: Recipe) -> dict[str, str]:
    """Dependencies left out because a config-setting disables the only feature using them
    (and no built dependency needs them)."""
    off = {}
    for item in recipe.pillow.config_settings:
        feature, _, value = item.partition("=")
        dep = FEATURE_DEPENDENCY.get(feature)
        if value == "disable" and dep in recipe.dependencies:
            off[dep] = f"config-setting {item} (upstream does not build it either)"
    needed = {d for n, dep in recipe.dependencies.items() if n not in off for d in dep.depends}
    return {name: why for name, why in off.items() if name not in needed}


def repair_commands(recipe: Recipe) -> list[str]:
    """cibuildwheel's Windows default repair, then the audit gate on the repaired wheel."""
    return [
        "delvewheel repair -w {dest_dir} {wheel}",
        f"pillow-variants cibw gate {{dest_dir}} --surface {recipe.audit.surface}"
        f" --policy {recipe.audit.policy}",
    ]


def environment() -> dict[str, str]:
    """upstream build_env.cmd's variables, the prefix first.

    cibuildwheel evaluates each value like a double-quoted bash word: ``$X`` expands, and a
    backslash escapes the next character -- so each Windows path separator is doubled.
    """
    prefix = f"${PREFIX_VAR}"
    sep = "\\\\"
    return {
        "INCLUDE": f"{prefix}{sep}include;$INCLUDE",
        "INCLIB": f"{prefix}{sep}lib",
        "LIB": f"{prefix}{sep}lib;$LIB",
        "PATH": f"$PATH;{prefix}{sep}bin",
        "DISTUTILS_USE_SDK": "1",  # use the developer prompt's cl.exe, as upstream
        "py_vcruntime_redist": "true",  # always /MD, never /MT (upstream)
    }


@dataclass
class CibwPlan:
    """Everything the Windows-host build of one recipe will do."""

    recipe: Recipe
    variant: str
    identifiers: list[str]
    work_dir: str
    out_dir: str
    deps: list[str]
    skipped_deps: dict[str, str]
    dep_plans: list[DepPlan] = field(default_factory=list)

    @property
    def recipe_arg(self) -> str:
        return str(self.recipe.path.relative_to(self.recipe.root)).replace("/", "\\")

    @property
    def pillow_dir(self) -> str:
        return ntpath.join(self.work_dir, "pillow")

    @property
    def prefix(self) -> str:
        return ntpath.join(self.work_dir, "deps")

    def wheel_names(self) -> list[str]:
        names = []
        for identifier in self.identifiers:
            abi, platform = identifier.split("-", 1)
            python = abi.removesuffix("t")  # cp314t-win_amd64 → cp314-cp314t-win_amd64
            names.append(f"pillow-{self.recipe.wheel_version}-{python}-{abi}-{platform}.whl")
        return names

    def config(self) -> dict[str, Any]:
        """The ``[tool.cibuildwheel]`` table."""
        return {
            "build": list(self.identifiers),
            "build-verbosity": 1,
            "config-settings": " ".join(self.recipe.pillow.config_settings),
            "test-command": f"python {{project}}/scripts/smoke_test.py --variant {self.variant}",
            "test-requires": [],
            "windows": {
                "archs": [WINDOWS_ARCH],
                "repair-wheel-command": repair_commands(self.recipe),
                "environment": environment(),
            },
        }

    def config_toml(self) -> str:
        head = [
            f"# cibuildwheel configuration for recipe {self.recipe.name} "
            f"(pillow {self.recipe.wheel_version}), generated by pillow-variants {__version__}.",
            f"# Use: cibuildwheel --platform windows --config-file {CONFIG_NAME} PILLOW_TREE",
            f"# from a Visual Studio developer prompt, with {PREFIX_VAR} set to the absolute",
            "# dependency prefix of 'pillow-variants deps build --toolchain msvc' "
            f"({SCRIPT_NAME} does all of it).",
        ]
        text = "\n".join(head) + "\n\n" + toml_tables({"tool": {"cibuildwheel": self.config()}})
        if tomllib.loads(text) != {"tool": {"cibuildwheel": self.config()}}:
            raise AssertionError("generated TOML does not round-trip")  # a bug, not user input
        return text

    def commands(self) -> list[tuple[str, str]]:
        """(comment, cmd.exe line) of each step, in order."""
        only = ["--only", *self.deps] if self.skipped_deps else []
        deps = ["pillow-variants", "deps", "build", self.recipe_arg, "--toolchain", "msvc"]
        deps += ["--prefix", f"%{PREFIX_VAR}%", *only]
        vswhere = vswhere_command("%ProgramFiles(x86)%")
        cibw = ["python", "-m", "cibuildwheel", "--platform", "windows"]
        cibw += ["--config-file", f"%~dp0{CONFIG_NAME}", "--output-dir", self.out_dir]
        cibw.append(self.pillow_dir)
        return [
            (
                "C dependencies with MSVC, as upstream's winbuild\\build_dep_all.cmd builds them",
                _cmdline(deps),
            ),
            (
                "Pillow's verified sdist with the recipe's patch set and local version",
                _cmdline(["pillow-variants", "cibw", "prepare", self.recipe_arg, self.pillow_dir]),
            ),
            (
                "Visual Studio's developer environment (upstream build_env.cmd: vcvarsall)",
                f'for /f "usebackq delims=" %%i in (`{_cmdline(vswhere)}`) do set "VSINSTALL=%%i"',
            ),
            (
                "",
                "if not defined VSINSTALL (echo error: vswhere found no Visual Studio with the"
                " C++ x64 tools 1>&2 & exit /B 2)",
            ),
            # vcvarsall would otherwise cd to %USERPROFILE%\\Source when that exists
            ("", 'set "VSCMD_START_DIR=%CD%"'),
            ("", f'call "%VSINSTALL%\\VC\\Auxiliary\\Build\\vcvarsall.bat" {VCVARS_ARCH}'),
            (
                f"cibuildwheel with {CONFIG_NAME}: config-settings, environment, repair + audit"
                " gate, smoke test",
                _cmdline(cibw),
            ),
        ]

    def script(self) -> str:
        lines = [
            "@echo off",
            f"rem Build recipe {self.recipe.name} ({', '.join(self.identifiers)}) with MSVC and"
            " cibuildwheel.",
            f"rem Generated by pillow-variants {__version__}; regenerate, do not edit:",
            f"rem   pillow-variants cibw build {self.recipe_arg} --toolchain msvc"
            f" --work-dir {self.work_dir} --out {self.out_dir}",
            f"rem Run from the project root: {ntpath.join(self.work_dir, SCRIPT_NAME)}",
            "setlocal",
            'if not exist "scripts\\smoke_test.py" (',
            "  echo error: run this script from the pillow-variants project root 1>&2",
            "  exit /B 2",
            ")",
            "where pillow-variants >nul 2>nul || (echo error: pillow-variants is not on PATH"
            " 1>&2 & exit /B 2)",
            "python -m cibuildwheel --version >nul 2>nul || (echo error: cibuildwheel is not"
            f' installed: python -m pip install "{CIBUILDWHEEL_REQUIREMENT}" 1>&2 & exit /B 2)',
            f'set "{PREFIX_VAR}={in_root(self.prefix)}"',
        ]
        step = 0
        for comment, line in self.commands():
            if comment:
                step += 1
                lines += ["", f"rem {step}. {comment}"]
            lines.append(line)
            if not line.startswith(("for ", "if ", "set ")):
                lines.append("if errorlevel 1 exit /B 1")
        lines += ["", f"echo wheels in {self.out_dir}: {' '.join(self.wheel_names())}"]
        return "\r\n".join(lines) + "\r\n"

    def dependency_commands(self) -> list[str]:
        """What ``deps build --toolchain msvc`` runs per dependency (its own work paths shown
        as <source>, <build>, <stage>)."""
        out = []
        for plan in self.dep_plans:
            commands = [s for s in plan.steps if isinstance(s, Command)]
            where = commands[0].cwd if commands else "<source>"
            copies = len(plan.steps) - len(commands)
            out.append(
                f"rem {plan.dependency} ({plan.build_system}, in {where};"
                f" then {copies} copies into <stage>)"
            )
            out += [c.display(windows=True) for c in commands]
        return out

    def dry_run_text(self) -> str:
        parts = [
            f"# {CONFIG_NAME}",
            self.config_toml(),
            f"# {SCRIPT_NAME} (the commands, in order)",
            self.script().replace("\r\n", "\n"),
            "# per dependency, the MSVC commands 'pillow-variants deps build' runs",
            "\n".join(self.dependency_commands()),
        ]
        if self.skipped_deps:
            parts.append("# not built")
            parts += [f"#   {n}: {why}" for n, why in self.skipped_deps.items()]
        parts += ["# expected wheels", *self.wheel_names()]
        return "\n".join(parts) + "\n"

    def write(self, directory: Path) -> tuple[Path, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        config = directory / CONFIG_NAME
        script = directory / SCRIPT_NAME
        config.write_text(self.config_toml(), encoding="utf-8", newline="\n")
        script.write_bytes(self.script().encode("utf-8"))
        return config, script


def plan_build(
    recipe: Recipe,
    *,
    pythons: list[str] | None = None,
    variant: str | None = None,
    work_dir: str | None = None,
    out_dir: str = DEFAULT_OUT_DIR,
) -> CibwPlan:
    """The Windows-host build plan of ``recipe`` (pure: works on any host)."""
    variant = variant or recipe.name
    if variant not in VARIANTS:
        raise UserError(
            f"recipe {recipe.name}: which smoke-test variant?"
            f" pass --variant ({', '.join(VARIANTS)})"
        )
    skipped = disabled_dependencies(recipe)
    # as upstream: libavif's codecs are built by libavif's own (LOCAL) build, not first
    deps = [
        n
        for n in recipe.build_order()
        if n not in skipped and not recipe.dependencies[n].built_inside
    ]
    plan = CibwPlan(
        recipe=recipe,
        variant=variant,
        identifiers=build_identifiers(recipe, pythons),
        work_dir=windows_path(work_dir or DEFAULT_WORK_DIR.format(recipe=recipe.name)),
        out_dir=windows_path(out_dir),
        deps=deps,
        skipped_deps=skipped,
    )
    toolchain = MsvcToolchain()
    shown = BuildPaths(
        source="<source>",
        build="<build>",
        stage="<stage>",
        prefix=f"%{PREFIX_VAR}%",
        extra_sources={c: f"<source of {c}>" for c in recipe.components},
    )
    plan.dep_plans = [toolchain.plan(recipe, name, shown, jobs=2) for name in deps]
    return plan


def prepare_pillow(
    recipe: Recipe,
    dest: Path,
    *,
    overrides: dict[str, Path] | None = None,
    cache_dir: Path | None = None,
    allow_unpinned: bool = False,
) -> tuple[Path, FetchedSource, list[str]]:
    """The Pillow tree cibuildwheel builds: the verified sdist (or a recorded local override),
    the recipe's patch set, and the recipe's local version (``13.0.0+nanoserver``) -- the same
    steps, through the same functions, as the zig wheel build."""
    from pillow_variants.build.pillow import set_local_version  # the zig build's own definition

    tree, fetched = prepare_source_tree(
        recipe,
        "pillow",
        dest,
        patched=True,
        cache_dir=cache_dir,
        overrides=overrides,
        allow_unpinned=allow_unpinned,
    )
    set_local_version(tree, recipe.local_version)
    return tree, fetched, [p.name for p in recipe.patch_files("pillow")]


def gate_wheels(targets: list[Path]) -> list[Path]:
    """The wheels to audit: given ``.whl`` files, or every wheel in a given directory
    (cibuildwheel's ``{dest_dir}`` holds the repaired wheel)."""
    wheels: list[Path] = []
    for target in targets:
        if target.is_dir():
            found = sorted(target.glob("*.whl"))
            if not found:
                raise UserError(f"{target}: no wheel in the directory (did the repair run?)")
            wheels += found
        elif target.suffix == ".whl" and target.is_file():
            wheels.append(target)
        else:
            raise UserError(f"{target}: not a wheel or a directory")
    return wheels


def run_plan(plan: CibwPlan, plan_dir: Path) -> int:
    """Write the files and run the script from the project root (Windows only: the caller
    checks the host first). The script's exit code is returned."""
    _config, script = plan.write(plan_dir)
    proc = subprocess.run(["cmd.exe", "/d", "/c", str(script)], cwd=plan.recipe.root, check=False)
    return proc.returncode


def _cmdline(argv: list[str]) -> str:
    """A cmd.exe command line. Arguments with ``%VAR%``/``%~dp0`` are quoted as well: cmd
    expands them before splitting, and their values may contain spaces."""
    return " ".join(
        f'"{a}"' if "%" in a and " " not in a else subprocess.list2cmdline([a]) for a in argv
    )


# --------------------------------------------------------------------------------------------
# TOML output (no writer in the standard library; the values here are strings, integers,
# arrays of strings and tables)

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        # literal strings keep Windows paths readable; fall back to basic (JSON-escaped) strings
        if "'" not in value and "\n" not in value and value.isprintable():
            return f"'{value}'"
        return json.dumps(value)
    if isinstance(value, list):
        if not value:
            return "[]"
        inner = ",\n".join(f"    {_toml_value(v)}" for v in value)
        return f"[\n{inner},\n]"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def toml_tables(data: dict[str, Any], prefix: str = "") -> str:
    """``data`` (nested dicts) as TOML: scalars first, then one ``[table]`` per sub-dict."""
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    out = []
    if scalars and prefix:
        out.append(f"[{prefix}]")
    out += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in scalars.items()]
    text = "\n".join(out) + ("\n" if out else "")
    for k, v in tables.items():
        sub = f"{prefix}.{_toml_key(k)}" if prefix else _toml_key(k)
        chunk = toml_tables(v, sub)
        text += ("\n" if text else "") + chunk
    return text
