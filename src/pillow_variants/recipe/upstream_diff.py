"""Compare a recipe with how upstream Pillow builds its Windows wheels.

Upstream's truth is ``winbuild/build_prepare.py`` (the ``DEPS`` table: URLs, file names,
license files, in-place ``patch`` edits, cmake/msbuild/cargo commands) plus, since 13.0, the
versions in the repository's ``.github/dependencies.json`` (read as ``V[...]``; sdists do not
ship it, so it can be given separately). The script downloads and runs a Visual Studio setup
when executed, so it is never imported or run here: its syntax tree is *evaluated* by a small
interpreter that knows literals, f-strings, ``V[...]`` lookups, a few ``str`` methods and the
command helpers (``cmds_cmake``, ``cmd_msbuild``, …), whose calls are bound to the parameters
and defaults declared in the same file. Anything else becomes an opaque value that shows up
verbatim in the report instead of being guessed.

Every version, URL, file name, license file, build target, build option and upstream edit that
differs is *drift* (exit 1). The recipe model differs from build_prepare.py in representation
only in documented ways: cmake arguments are argv elements (``-DX=a b`` rather than
``-DX="a b"``), a non-default cmake build type is an option (``-DCMAKE_BUILD_TYPE=…``), msbuild
targets are ``project[:configuration][:target]`` (defaults omitted, Clean passes dropped), and
the ``<UserDefines>`` of an MSBuild ``.props`` edit are the msbuild dependency's options.
"""

from __future__ import annotations

import ast
import functools
import json
import re
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from pillow_variants.errors import UserError
from pillow_variants.recipe.model import Recipe

SCHEMA_ID = "pillow-variants/upstream-diff/1"
BUILD_PREPARE = "winbuild/build_prepare.py"
DEPENDENCIES_JSON = ".github/dependencies.json"
_V_REF_RE = re.compile(r"""\{V\[['"]([^'"]+)['"]\]\}""")
_USER_DEFINES_RE = re.compile(r"<UserDefines>(.*?)</UserDefines>", re.S)
_QUOTED_VALUE_RE = re.compile(r'^(-D[^=]+=)"(.*)"$')


# --------------------------------------------------------------------------------------------
# Reading the Pillow source (directory or sdist) without extracting or executing anything


@dataclass(frozen=True)
class PillowSourceFiles:
    origin: str
    build_prepare: str
    dependencies_json: str | None
    version: str | None
    pyproject: str | None = None


def _member_text(names: dict[str, Callable[[], bytes]], suffix: str) -> str | None:
    """The file whose path is ``<top>/<suffix>`` (or ``<suffix>``), decoded."""
    for name, read in names.items():
        parts = PurePosixPath(name).parts
        if (
            "/".join(parts[-len(PurePosixPath(suffix).parts) :]) == suffix
            and len(parts) <= len(PurePosixPath(suffix).parts) + 1
        ):
            return read().decode("utf-8")
    return None


def _archive_readers(path: Path) -> dict[str, Callable[[], bytes]]:
    wanted = (BUILD_PREPARE, DEPENDENCIES_JSON, "PKG-INFO", "pyproject.toml")
    readers: dict[str, Callable[[], bytes]] = {}
    try:
        if zipfile.is_zipfile(path):
            zf = zipfile.ZipFile(path)
            for info in zf.infolist():
                if not info.is_dir() and info.filename.endswith(wanted):
                    readers[info.filename] = functools.partial(zf.read, info)
            return readers
        tf = tarfile.open(path, "r:*")
        for m in tf.getmembers():
            if m.isreg() and m.name.endswith(wanted):
                readers[m.name] = functools.partial(_tar_member, tf, m)
        return readers
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise UserError(f"{path}: not a readable sdist/archive ({exc})") from None


def _tar_member(tf: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    """A regular member's bytes (the caller picked regular files, so there is a file object)."""
    fh = tf.extractfile(member)
    if fh is None:
        raise OSError(f"{member.name}: not a regular file")
    return fh.read()


def _pkg_info_version(text: str | None) -> str | None:
    if not text:
        return None
    m = re.search(r"^Version:\s*(\S+)", text, re.M)
    return m.group(1) if m else None


def read_pillow_source(path: Path) -> PillowSourceFiles:
    """build_prepare.py, dependencies.json (if present) and the version from a tree or sdist."""
    path = Path(path)
    if path.is_dir():

        def read(rel: str) -> str | None:
            f = path / rel
            return f.read_text(encoding="utf-8") if f.is_file() else None

        prepare, deps, pkg_info = read(BUILD_PREPARE), read(DEPENDENCIES_JSON), read("PKG-INFO")
        pyproject = read("pyproject.toml")
        version = _pkg_info_version(pkg_info)
        if version is None and (path / "src/PIL/_version.py").is_file():
            m = re.search(r"""__version__\s*=\s*["']([^"']+)""", read("src/PIL/_version.py") or "")
            version = m.group(1) if m else None
    elif path.is_file():
        readers = _archive_readers(path)
        prepare = _member_text(readers, BUILD_PREPARE)
        deps = _member_text(readers, DEPENDENCIES_JSON)
        version = _pkg_info_version(_member_text(readers, "PKG-INFO"))
        pyproject = _member_text(readers, "pyproject.toml")
    else:
        raise UserError(f"{path}: no such Pillow source directory or sdist")
    if prepare is None:
        raise UserError(f"{path}: no {BUILD_PREPARE} in this Pillow source")
    return PillowSourceFiles(str(path), prepare, deps, version, pyproject)


# --------------------------------------------------------------------------------------------
# Which CPython tags upstream publishes

#: cibuildwheel (3.x) builds the free-threaded CPython by default from this version on; earlier
#: ones only with ``enable = ["cpython-freethreading"]``.
FREE_THREADED_DEFAULT = (3, 14)
_CLASSIFIER_RE = re.compile(r"^Programming Language :: Python :: (3\.\d+)$")


def upstream_pythons(pyproject_text: str, platform: str = "win_amd64") -> list[str]:
    """The recipe-style tags ("3.14", "3.14t") upstream's wheels cover, from its pyproject.

    The CPython minor versions are the classifiers allowed by ``requires-python``; the
    free-threaded builds are those cibuildwheel makes by default (:data:`FREE_THREADED_DEFAULT`)
    or through ``tool.cibuildwheel.enable``; ``tool.cibuildwheel.skip`` patterns
    (``cp314t-*``) remove identifiers for ``platform``.
    """
    import fnmatch
    import tomllib

    from packaging.specifiers import SpecifierSet

    try:
        data = tomllib.loads(pyproject_text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"upstream pyproject.toml is not valid TOML ({exc})") from None
    project, cibw = data.get("project", {}), data.get("tool", {}).get("cibuildwheel", {})
    spec = SpecifierSet(project.get("requires-python", ""))
    enable = cibw.get("enable", [])
    enable = enable.split() if isinstance(enable, str) else list(enable)
    skip = cibw.get("skip", [])
    skip = skip.split() if isinstance(skip, str) else list(skip)
    out: list[str] = []
    for classifier in project.get("classifiers", []):
        m = _CLASSIFIER_RE.match(classifier)
        if m is None or not spec.contains(f"{m.group(1)}.0", prereleases=True):
            continue
        minor = m.group(1)
        major_minor = tuple(int(x) for x in minor.split("."))
        tags = [minor]
        if major_minor >= FREE_THREADED_DEFAULT or "cpython-freethreading" in enable:
            tags.append(minor + "t")
        for tag in tags:
            ident = f"cp{tag.replace('.', '')}-{platform}"
            if not any(fnmatch.fnmatch(ident, pat) for pat in skip):
                out.append(tag)
    return out


# --------------------------------------------------------------------------------------------
# A tiny evaluator for build_prepare.py's data


@dataclass(frozen=True)
class Opaque:
    """An expression the evaluator does not interpret; kept as its source text."""

    source: str

    def __str__(self) -> str:
        return "{" + self.source + "}"


@dataclass(frozen=True)
class HelperCall:
    """A call of one of build_prepare.py's command helpers, arguments bound by name."""

    name: str
    args: dict[str, Any]


@dataclass(frozen=True)
class Compound:
    """Commands joined into one line (``" ^&^& ".join([...])``)."""

    parts: tuple[Any, ...]


@dataclass
class _Signature:
    params: list[str]
    defaults: dict[str, Any]
    vararg: str | None
    returns_list: bool


class _Evaluator:
    def __init__(self, source: str, env: dict[str, Any]) -> None:
        self.source = source
        self.env = env
        self.helpers: dict[str, _Signature] = {}
        self.notes: list[str] = []

    def opaque(self, node: ast.AST) -> Opaque:
        return Opaque(ast.get_source_segment(self.source, node) or ast.dump(node))

    def signature(self, fn: ast.FunctionDef) -> _Signature:
        a = fn.args
        positional = [p.arg for p in a.posonlyargs + a.args]
        defaults = {
            p: self.eval(d)
            for p, d in zip(
                positional[len(positional) - len(a.defaults) :], a.defaults, strict=True
            )
        }
        defaults |= {
            p.arg: self.eval(d) for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True) if d
        }
        returns = ast.get_source_segment(self.source, fn.returns) if fn.returns else ""
        return _Signature(
            positional,
            defaults,
            a.vararg.arg if a.vararg else None,
            bool(returns and returns.startswith("list")),
        )

    def call_helper(self, name: str, node: ast.Call) -> Any:
        sig = self.helpers[name]
        args = dict(sig.defaults)
        positional: list[Any] = []
        for a in node.args:
            if isinstance(a, ast.Starred):
                positional.extend(self._iter(a.value))
            else:
                positional.append(self.eval(a))
        for pname, value in zip(sig.params, positional, strict=False):
            args[pname] = value
        if sig.vararg:
            args[sig.vararg] = positional[len(sig.params) :]
        for kw in node.keywords:
            if kw.arg is not None:
                args[kw.arg] = self.eval(kw.value)
        call = HelperCall(name, args)
        return [call] if sig.returns_list else call

    def _iter(self, node: ast.AST) -> list[Any]:
        value = self.eval(node)
        return list(value) if isinstance(value, (list, tuple)) else [value]

    def eval(self, node: ast.AST) -> Any:  # noqa: C901 - a dispatcher over node types
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.JoinedStr):
            out = []
            for v in node.values:
                if isinstance(v, ast.Constant):
                    out.append(str(v.value))
                else:
                    value = self.eval(v.value)  # type: ignore[attr-defined]
                    if v.format_spec is not None or not isinstance(value, (str, int, Opaque)):  # type: ignore[attr-defined]
                        return self.opaque(node)
                    out.append(str(value))
            return "".join(out)
        if isinstance(node, ast.Name):
            return self.env[node.id] if node.id in self.env else self.opaque(node)
        if isinstance(node, (ast.List, ast.Tuple)):
            items: list[Any] = []
            for e in node.elts:
                if isinstance(e, ast.Starred):
                    items.extend(self._iter(e.value))
                else:
                    items.append(self.eval(e))
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.Dict):
            return {
                self.eval(k): self.eval(v) for k, v in zip(node.keys, node.values, strict=True) if k
            }
        if isinstance(node, ast.Subscript):
            base, index = self.eval(node.value), self.eval(node.slice)
            try:
                return base[index]
            except (KeyError, IndexError, TypeError):
                return self.opaque(node)
        if isinstance(node, ast.Slice):
            parts = [
                self.eval(p) if p is not None else None for p in (node.lower, node.upper, node.step)
            ]
            return slice(*parts)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.eval(node.left), self.eval(node.right)
            if type(left) is type(right) and isinstance(left, (str, list)):
                return left + right
            return self.opaque(node)
        if isinstance(node, ast.Call):
            return self.eval_call(node)
        return self.opaque(node)

    def eval_call(self, node: ast.Call) -> Any:
        func = node.func
        if isinstance(func, ast.Name) and func.id in self.helpers:
            return self.call_helper(func.id, node)
        if isinstance(func, ast.Attribute) and not node.keywords:
            target = self.eval(func.value)
            args = [self.eval(a) for a in node.args]
            if isinstance(target, str) and func.attr == "join" and len(args) == 1:
                items = args[0] if isinstance(args[0], (list, tuple)) else None
                if items is not None and all(isinstance(i, str) for i in items):
                    return target.join(items)
                if items is not None:
                    return Compound(tuple(items))
            if isinstance(target, str) and func.attr in ("split", "replace", "lower", "upper"):
                if all(isinstance(a, str) for a in args):
                    return getattr(target, func.attr)(*args)
        return self.opaque(node)


def _collect(tree: ast.Module, ev: _Evaluator) -> dict[str, Any]:
    """Run the module's top-level definitions (no calls outside the evaluator's whitelist)."""
    deps: dict[str, Any] | None = None
    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef) and stmt.name.startswith(("cmd_", "cmds_")):
            ev.helpers[stmt.name] = ev.signature(stmt)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if stmt.value is None or len(targets) != 1:
                continue
            target = targets[0]
            value = ev.eval(stmt.value)
            if isinstance(target, ast.Name):
                if isinstance(value, Opaque) and target.id in ev.env:
                    continue  # e.g. V = json.loads(<file>): the caller seeded V
                if target.id == "V" and "V" in ev.env:
                    ev.notes.append(
                        f"{BUILD_PREPARE} defines V itself (line {stmt.lineno}); "
                        "the given dependencies.json is not used"
                    )
                ev.env[target.id] = value
                if target.id == "DEPS":
                    deps = value
            elif isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
                container = ev.env.get(target.value.id)
                key = ev.eval(target.slice)
                if isinstance(container, dict) and isinstance(key, str):
                    container[key] = value
    if not isinstance(deps, dict):
        raise UserError(f"{BUILD_PREPARE}: no DEPS table the evaluator can read")
    return deps


def _v_keys(node: ast.AST | None) -> list[str]:
    """The ``V[...]`` keys used in an expression (which dependencies.json entry it depends on)."""
    keys = []
    for sub in ast.walk(node) if node is not None else ():
        if (
            isinstance(sub, ast.Subscript)
            and isinstance(sub.value, ast.Name)
            and sub.value.id == "V"
            and isinstance(sub.slice, ast.Constant)
        ):
            keys.append(str(sub.slice.value))
    return keys


def _deps_nodes(tree: ast.Module) -> dict[str, dict[str, ast.expr]]:
    """DEPS as syntax: dependency → field → expression (to see which ``V`` key a field uses)."""
    target: ast.expr
    for stmt in tree.body:
        if isinstance(stmt, ast.AnnAssign):
            target, value = stmt.target, stmt.value
        elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target, value = stmt.targets[0], stmt.value
        else:
            continue
        if not (
            isinstance(target, ast.Name) and target.id == "DEPS" and isinstance(value, ast.Dict)
        ):
            continue
        out: dict[str, dict[str, ast.expr]] = {}
        for k, v in zip(value.keys, value.values, strict=True):
            if isinstance(k, ast.Constant) and isinstance(v, ast.Dict):
                out[str(k.value)] = {
                    str(fk.value): fv
                    for fk, fv in zip(v.keys, v.values, strict=True)
                    if isinstance(fk, ast.Constant)
                }
        return out
    return {}


# --------------------------------------------------------------------------------------------
# Upstream's view of each dependency, in the recipe's terms


@dataclass
class UpstreamDependency:
    name: str
    version: str | None
    version_key: str | None
    url: str
    filename: str
    license_files: list[str]
    build_system: str
    targets: list[str]
    options: list[str]
    upstream_edits: list[dict[str, str]]
    aux_builds: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _text(value: Any) -> str:
    return str(value) if not isinstance(value, str) else value


def _norm_path(p: str) -> str:
    return p.replace("\\", "/")


def _norm_option(opt: str) -> str:
    m = _QUOTED_VALUE_RE.match(opt)
    return m.group(1) + m.group(2) if m else opt


def _flatten_commands(build: Any) -> list[Any]:
    out: list[Any] = []
    for item in build if isinstance(build, (list, tuple)) else [build]:
        out.extend(_flatten_commands(list(item.parts)) if isinstance(item, Compound) else [item])
    return out


def _substitute_v(text: str, versions: dict[str, Any], notes: list[str], what: str) -> str:
    """Fill ``{V['x']}`` left in a plain (non-f) string — an upstream slip, reported as a note."""
    if not _V_REF_RE.search(text):
        return text
    notes.append(
        f"upstream's {what} is a plain string containing {{V[...]}} (not an f-string), so "
        "build_prepare.py would use it literally; compared with the version filled in"
    )
    return _V_REF_RE.sub(lambda m: str(versions.get(m.group(1), m.group(0))), text)


def _build_facts(commands: list[Any], cmake_defaults: dict[str, Any]) -> dict[str, Any]:
    """Build system, targets and options from a dependency's command list."""
    system, targets, options, aux = "", [], [], []
    cwd = ""
    for cmd in commands:
        if isinstance(cmd, HelperCall) and cmd.name == "cmds_cmake":
            target = cmd.args.get("target")
            names = target.split() if isinstance(target, str) else [_text(t) for t in target or ()]
            params = [_norm_option(_text(p)) for p in cmd.args.get("params", [])]
            build_type = cmd.args.get("build_type")
            if build_type != cmake_defaults.get("build_type"):
                params.append(f"-DCMAKE_BUILD_TYPE={build_type}")
            if cmd.args.get("build_dir", ".") != cmake_defaults.get("build_dir", "."):
                aux.append(f"cmake {' '.join(names)} in {cmd.args['build_dir']} {' '.join(params)}")
                continue
            system = "cmake"
            targets += [n for n in names if n not in targets]
            options += [p for p in params if p not in options]
        elif isinstance(cmd, HelperCall) and cmd.name == "cmd_msbuild":
            if cmd.args.get("target") == "Clean":
                continue
            system = "msbuild"
            spec = _norm_path(_text(cmd.args.get("file")))
            if cmd.args.get("configuration") != "Release":
                spec += f":{cmd.args.get('configuration')}"
            if cmd.args.get("target") != "Build":
                spec += f":{cmd.args.get('target')}"
            targets.append(spec)
        elif isinstance(cmd, HelperCall) and cmd.name == "cmd_cd":
            cwd = _norm_path(_text(cmd.args.get("path")))
        elif isinstance(cmd, str) and cmd.startswith("cargo build"):
            system = "cargo"
            targets.append(cwd or ".")
    return {"build_system": system, "targets": targets, "options": options, "aux_builds": aux}


def upstream_dependencies(
    build_prepare: str, versions: dict[str, Any] | None
) -> tuple[dict[str, UpstreamDependency], list[str]]:
    """Evaluate build_prepare.py's DEPS with ``V`` = ``versions`` (None: the file's own V)."""
    try:
        tree = ast.parse(build_prepare)
    except SyntaxError as exc:
        raise UserError(f"{BUILD_PREPARE}: not valid Python ({exc})") from None
    env: dict[str, Any] = {"V": dict(versions)} if versions is not None else {}
    ev = _Evaluator(build_prepare, env)
    deps = _collect(tree, ev)
    if not isinstance(ev.env.get("V"), dict):
        raise UserError(
            f"{BUILD_PREPARE} reads its versions from {DEPENDENCIES_JSON}, which this source "
            "lacks (sdists do not ship it): pass --dependencies-json FILE"
        )
    v = ev.env["V"]
    nodes = _deps_nodes(tree)
    cmake_defaults = ev.helpers["cmds_cmake"].defaults if "cmds_cmake" in ev.helpers else {}
    out: dict[str, UpstreamDependency] = {}
    for name, dep in deps.items():
        notes: list[str] = []
        filename = _text(dep.get("filename", ""))
        url = _substitute_v(_text(dep.get("url", "")), v, notes, f"{name} url")
        url = url.replace("FILENAME", filename)
        keys = _v_keys(nodes.get(name, {}).get("filename"))
        key = keys[0] if keys else None
        licenses = dep.get("license", [])
        licenses = [licenses] if isinstance(licenses, str) else list(licenses)
        edits = [
            {"file": _norm_path(_text(f)), "search": _text(s), "replace": _text(r)}
            for f, pairs in (dep.get("patch") or {}).items()
            for s, r in pairs.items()
        ]
        facts = _build_facts(_flatten_commands(dep.get("build", [])), cmake_defaults)
        if facts["build_system"] == "msbuild":
            kept = []
            for e in edits:
                m = _USER_DEFINES_RE.search(e["replace"])
                if m and "<UserDefines></UserDefines>" in e["search"]:
                    facts["options"] += [d for d in m.group(1).split(";") if d]
                else:
                    kept.append(e)
            edits = kept
        out[name] = UpstreamDependency(
            name=name,
            version=str(v[key]) if key and key in v else None,
            version_key=key,
            url=url,
            filename=filename,
            license_files=[_norm_path(_text(x)) for x in licenses],
            build_system=facts["build_system"],
            targets=facts["targets"],
            options=facts["options"],
            upstream_edits=edits,
            aux_builds=facts["aux_builds"],
            notes=notes,
        )
    return out, ev.notes


# --------------------------------------------------------------------------------------------
# The diff


def _recipe_side(recipe: Recipe, name: str) -> dict[str, Any]:
    d = recipe.dependencies[name]
    filename = d.source.filename or PurePosixPath(d.source.url.split("?", 1)[0]).name
    return {
        "version": d.version,
        "url": d.source.url,
        "filename": filename,
        "license_files": list(d.license_files),
        "build_system": d.build_system,
        "targets": list(d.targets),
        "options": list(d.options),
        "upstream_edits": [
            {"file": e.file, "search": e.search, "replace": e.replace} for e in d.upstream_edits
        ],
    }


_FIELDS = ("version", "url", "filename", "license_files", "build_system", "targets", "options")


def _edit_drift(name: str, recipe: list[dict], upstream: list[dict]) -> list[dict[str, Any]]:
    def key(e: dict[str, str]) -> tuple[str, str, str]:
        return (e["file"], e["search"], e["replace"])

    r, u = {key(e) for e in recipe}, {key(e) for e in upstream}
    out = []
    for e in sorted(u - r):
        out.append(
            _drift(
                name, "upstream_edits", None, _edit_dict(e), "upstream edit missing in the recipe"
            )
        )
    for e in sorted(r - u):
        out.append(
            _drift(
                name, "upstream_edits", _edit_dict(e), None, "recipe edit upstream does not make"
            )
        )
    return out


def _edit_dict(e: tuple[str, str, str]) -> dict[str, str]:
    return {"file": e[0], "search": e[1], "replace": e[2]}


def _drift(component: str, field_: str, recipe: Any, upstream: Any, detail: str = "") -> dict:
    return {
        "component": component,
        "field": field_,
        "recipe": recipe,
        "upstream": upstream,
        "detail": detail,
    }


def diff_recipe(
    recipe: Recipe, source: PillowSourceFiles, versions: dict[str, Any] | None
) -> dict[str, Any]:
    """The upstream-diff report (see upstream-diff.schema.json); ``drift`` empty = in sync."""
    upstream, notes = upstream_dependencies(source.build_prepare, versions)
    drift: list[dict[str, Any]] = []
    if source.version is not None and source.version != recipe.pillow.version:
        drift.append(_drift("pillow", "version", recipe.pillow.version, source.version))
    if source.pyproject is not None:
        published = upstream_pythons(source.pyproject, recipe.platform)
        if published != list(recipe.python):
            drift.append(
                _drift("recipe", "python", list(recipe.python), published, "CPython tags published")
            )
    else:
        notes.append("no pyproject.toml in the upstream source: CPython tags not compared")
    components: dict[str, Any] = {}
    for name in list(upstream) + [n for n in recipe.dependencies if n not in upstream]:
        up = upstream.get(name)
        if name not in recipe.dependencies:
            drift.append(
                _drift(name, "component", None, name, "upstream builds it; the recipe lacks it")
            )
            components[name] = {"upstream": up.to_dict() if up else None, "recipe": None}
            continue
        mine = _recipe_side(recipe, name)
        components[name] = {"upstream": up.to_dict() if up else None, "recipe": mine}
        if up is None:
            inside = recipe.dependencies[name].built_inside
            if inside and inside in upstream:  # libavif's codecs: in upstream's libavif build
                notes.append(f"{name}: upstream builds it inside {inside}'s own build")
            else:
                drift.append(_drift(name, "component", name, None, "upstream does not build it"))
            continue
        theirs = up.to_dict()
        for f in _FIELDS:
            if theirs[f] != mine[f]:
                drift.append(_drift(name, f, mine[f], theirs[f]))
        drift += _edit_drift(name, mine["upstream_edits"], theirs["upstream_edits"])
        notes += [f"{name}: {n}" for n in up.notes]
        notes += [f"{name}: auxiliary build not modelled by recipes: {a}" for a in up.aux_builds]
    return {
        "schema": SCHEMA_ID,
        "recipe": str(recipe.path),
        "source": source.origin,
        "dependencies_json": None,
        "pillow": {"recipe": recipe.pillow.version, "upstream": source.version},
        "drift": drift,
        "notes": notes,
        "components": components,
    }


def load_versions(
    source: PillowSourceFiles, dependencies_json: Path | None
) -> tuple[dict[str, Any] | None, str | None]:
    """The ``V`` table: an explicit file wins over the source's own; None if neither exists."""
    if dependencies_json is not None:
        try:
            text = Path(dependencies_json).read_text(encoding="utf-8")
        except OSError as exc:
            raise UserError(f"{dependencies_json}: cannot read ({exc.strerror})") from None
        where = str(dependencies_json)
    elif source.dependencies_json is not None:
        text, where = source.dependencies_json, f"{source.origin}:{DEPENDENCIES_JSON}"
    else:
        return None, None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UserError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a JSON object of name → version")
    return data, where


def upstream_diff(
    recipe: Recipe, pillow_source: Path, dependencies_json: Path | None = None
) -> dict[str, Any]:
    """Compare ``recipe`` with the Pillow source at ``pillow_source`` (tree or sdist)."""
    source = read_pillow_source(pillow_source)
    versions, where = load_versions(source, dependencies_json)
    report = diff_recipe(recipe, source, versions)
    report["dependencies_json"] = where
    return report


def format_report(report: dict[str, Any]) -> str:
    lines = [
        f"recipe   {report['recipe']}",
        f"upstream {report['source']}"
        + (f" + {report['dependencies_json']}" if report["dependencies_json"] else ""),
    ]
    if not report["drift"]:
        lines.append(f"no drift: {len(report['components'])} components match upstream")
    else:
        lines.append(f"{len(report['drift'])} drift(s):")
        for d in report["drift"]:
            what = (
                f"  {d['component']}.{d['field']}: recipe {_show(d['recipe'])}"
                f" ≠ upstream {_show(d['upstream'])}"
            )
            lines.append(what + (f"  ({d['detail']})" if d["detail"] else ""))
    lines += [f"note: {n}" for n in report["notes"]]
    return "\n".join(lines)


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 160 else text[:157] + "..."
