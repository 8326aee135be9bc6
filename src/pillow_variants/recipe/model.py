"""Recipes: TOML data (``recipes/*.toml``) validated into typed objects.

A recipe pins everything a variant build depends on: the Pillow sdist, every bundled C library
(version, upstream URL, sha256 or an explicit "unpinned" marker, build system and options as
upstream Pillow's ``winbuild/build_prepare.py`` uses them), the Pillow features, the patch sets
per component and the audit target. A variant ``inherits`` another recipe; tables are merged
key by key and the child wins.

Validation is strict because a typo in a recipe silently changes a build: unknown keys are
errors, and every error names the file, the dotted key path and what was expected.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import types
import typing
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from packaging.version import InvalidVersion, Version

from pillow_variants import limits
from pillow_variants.errors import RecipeError, UserError

#: The sha256 value that says "no verified hash exists"; builds refuse it without --allow-unpinned.
UNPINNED = "unpinned"
#: The variants the smoke test knows (what it asserts about removed features).
VARIANTS = ("upstream", "nanoserver")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_COMPONENT_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
# Versions and file names become path components (patches/<component>/<version>/, the cache's
# sha256/<hex>/<filename>): one component, no separators, and never "." or "..".
_VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._+~-]{0,63}$")
_FILENAME_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._+~-]{0,199}$")
#: Wheel platform tags a recipe may target (Pillow's Windows wheels); the tag ends up in wheel
#: names and cibuildwheel identifiers, so anything else is a typo or an injection.
PLATFORMS = ("win_amd64", "win32", "win_arm64")

BuildSystem = Literal["cmake", "meson", "msbuild", "cargo", "autotools"]
FeatureState = Literal["enabled", "disabled", "removed", "changed"]
Policy = Literal["strict", "surface", "both"]


@dataclass(frozen=True)
class Source:
    """Where a component's source comes from and how it is verified.

    Exactly one of ``url`` (an upstream archive) or ``pip`` (a requirement fetched with
    ``pip download``, so the user's index configuration applies) is set.
    """

    sha256: str
    url: str = ""
    pip: str = ""
    filename: str = ""
    #: Why the sha256 is what it is: where the pin came from, or why it is unpinned.
    sha256_source: str = ""

    @property
    def pinned(self) -> bool:
        return self.sha256 != UNPINNED


def safe_filename(name: str) -> bool:
    """True if ``name`` is a single, harmless path component (no separator, not ``.``/``..``,
    no leading dot or dash): download targets are joined from it."""
    return bool(_FILENAME_RE.match(name))


def url_filename(url: str) -> str:
    """The file name a URL's last path segment gives, percent-decoded (may be unsafe: check
    it with :func:`safe_filename`; ``%2F`` decodes to a separator only after the split)."""
    return urllib.parse.unquote(PurePosixPath(urllib.parse.urlparse(url).path).name)


@dataclass(frozen=True)
class SourceEdit:
    """One of upstream Pillow's own search → replace edits (build_prepare.py ``patch`` dicts)."""

    file: str
    search: str
    replace: str


@dataclass(frozen=True)
class DependencySpec:
    """A bundled C library as a recipe writes it: built statically and linked into Pillow's
    extension modules."""

    project: str
    version: str
    source: Source
    build_system: BuildSystem
    license_files: list[str]
    depends: list[str] = field(default_factory=list)
    #: Build targets (cmake --target / cargo package), as upstream builds them.
    targets: list[str] = field(default_factory=list)
    #: Configure options (cmake -D…, meson -D…), as upstream passes them.
    options: list[str] = field(default_factory=list)
    #: Configure options only the zig toolchain passes, after all others: a variant's choices
    #: about clang's code (its flags, which SIMD kernels it compiles) that would mean something
    #: else to cl.exe, so that the MSVC build keeps upstream's commands.
    zig_options: list[str] = field(default_factory=list)
    #: Upstream's in-place edits after extraction (not our patches: those are in patch sets).
    upstream_edits: list[SourceEdit] = field(default_factory=list)
    #: False when upstream's wheels do not contain the library (e.g. libimagequant, fribidi).
    in_wheel: bool = True
    #: Upstream builds this library inside another dependency's build (libavif fetches its
    #: codecs itself, AVIF_CODEC_*=LOCAL) rather than as a dependency of its own. A toolchain
    #: that reproduces upstream leaves it to that build; one that cannot download at configure
    #: time builds it first.
    built_inside: str = ""
    notes: str = ""


@dataclass(frozen=True, kw_only=True)
class Dependency(DependencySpec):
    """A dependency of a resolved recipe: the spec plus its name (the recipe table key)."""

    name: str


@dataclass(frozen=True)
class PillowSource:
    version: str
    source: Source
    #: PEP 517 config-settings, in order (keys repeat: raqm=enable raqm=vendor …).
    config_settings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Feature:
    """A Pillow feature/module and its state in this variant."""

    state: FeatureState
    reason: str = ""
    modules: list[str] = field(default_factory=list)
    #: Pillow test-suite node-id patterns (``Tests/test_x.py`` = the whole file, or fnmatch
    #: globs with ``::``) that exercise the feature: what the ``suite`` rung lets differ when
    #: a variant removes it.
    tests: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Audit:
    surface: str = "servercore-ltsc2022"
    policy: Policy = "surface"


@dataclass(frozen=True)
class Recipe:
    """A resolved recipe (inheritance applied)."""

    name: str
    description: str
    path: Path
    pillow: PillowSource
    dependencies: dict[str, Dependency]
    python: list[str]
    platform: str = "win_amd64"
    local_version: str = ""
    inherits: str = ""
    features: dict[str, Feature] = field(default_factory=dict)
    #: component → ordered patch file names under patches/<component>/<version>/
    patches: dict[str, list[str]] = field(default_factory=dict)
    audit: Audit = field(default_factory=Audit)

    @property
    def root(self) -> Path:
        """The project directory: ``<root>/recipes`` holds recipes, ``<root>/patches`` patches."""
        return self.path.resolve().parent.parent

    @property
    def wheel_version(self) -> str:
        v = self.pillow.version
        return f"{v}+{self.local_version}" if self.local_version else v

    def component_version(self, component: str) -> str:
        if component == "pillow":
            return self.pillow.version
        return self.dependencies[component].version

    def component_source(self, component: str) -> Source:
        if component == "pillow":
            return self.pillow.source
        return self.dependencies[component].source

    @property
    def components(self) -> list[str]:
        return ["pillow", *self.dependencies]

    def patch_files(self, component: str) -> list[Path]:
        """The ordered patch files of one component's patch set (absolute paths).

        The loader already restricts versions and patch names to single safe path components;
        the resolved directory is checked again because a patch read from elsewhere would be
        applied (and reported as ours) without anyone noticing.
        """
        base = (self.root / "patches").resolve()
        directory = (base / component / self.component_version(component)).resolve()
        if not directory.is_relative_to(base / component):
            key = "pillow.version" if component == "pillow" else f"dependencies.{component}.version"
            raise RecipeError(self.path, key, f"patch directory {directory} is outside {base}")
        files = [(directory / name).resolve() for name in self.patches.get(component, [])]
        for i, f in enumerate(files):
            if f.parent != directory:
                raise RecipeError(
                    self.path, f"patches.{component}[{i}]", f"{f} is outside {directory}"
                )
        return files

    def build_order(self) -> list[str]:
        """Dependencies in an order where each comes after what it depends on (recipe order
        breaks ties, so the result is stable)."""
        order: list[str] = []
        done: set[str] = set()
        # An explicit stack, not recursion: a hostile chain of thousands of ``depends`` must
        # not overflow Python's stack. Each entry is a dependency and its next ``depends`` index.
        for start in self.dependencies:
            if start in done:
                continue
            stack: list[tuple[str, int]] = [(start, 0)]
            on_stack = {start}
            while stack:
                name, i = stack[-1]
                depends = self.dependencies[name].depends
                if i == len(depends):
                    stack.pop()
                    on_stack.discard(name)
                    done.add(name)
                    order.append(name)
                    continue
                stack[-1] = (name, i + 1)
                dep = depends[i]
                if dep in done:
                    continue
                if dep in on_stack:
                    cycle = " → ".join([n for n, _ in stack] + [dep])
                    raise RecipeError(self.path, f"dependencies.{dep}.depends", f"cycle: {cycle}")
                stack.append((dep, 0))
                on_stack.add(dep)
        return order

    def select_pythons(self, wanted: list[str] | None) -> list[str]:
        """``wanted`` CPython versions (all when empty) in the recipe's order; a version the
        recipe does not target is a usage error, whatever stage asks."""
        chosen = wanted or self.python
        unknown = [p for p in chosen if p not in self.python]
        if unknown:
            raise UserError(
                f"Python {', '.join(unknown)} not in recipe {self.name} "
                f"(recipe.python: {', '.join(self.python)})"
            )
        return [p for p in self.python if p in chosen]

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["path"] = str(self.path)
        data["wheel_version"] = self.wheel_version
        data["build_order"] = self.build_order()
        return data


# --------------------------------------------------------------------------------------------
# Loading and validation


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is str:
        return "a string"
    if tp is bool:
        return "a boolean"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin is list:
        return "an array"
    if origin is dict or dataclasses.is_dataclass(tp):
        return "a table"
    return str(tp)


def _toml_type(value: Any) -> str:
    return {
        str: "string",
        bool: "boolean",
        int: "integer",
        float: "float",
        list: "array",
        dict: "table",
    }.get(type(value), type(value).__name__)


def _convert(tp: Any, value: Any, path: Path, key: str, partial: bool) -> Any:
    """Check ``value`` against type ``tp`` and build the typed object.

    With ``partial`` (a single file before inheritance is applied) missing required fields are
    allowed; unknown keys and wrong types are always errors.
    """
    origin = typing.get_origin(tp)
    if origin is types.UnionType or origin is typing.Union:
        raise TypeError("unions are not used in recipe types")
    if tp is str or tp is bool:
        if type(value) is not tp:
            raise RecipeError(path, key, f"expected {_type_name(tp)}, got {_toml_type(value)}")
        return value
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise RecipeError(path, key, f"expected {_type_name(tp)}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise RecipeError(path, key, f"expected an array, got {_toml_type(value)}")
        (item,) = typing.get_args(tp)
        return [_convert(item, v, path, f"{key}[{i}]", partial) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise RecipeError(path, key, f"expected a table, got {_toml_type(value)}")
        _, item = typing.get_args(tp)
        return {
            k: _convert(item, v, path, f"{key}.{k}" if key else k, partial)
            for k, v in value.items()
        }
    if dataclasses.is_dataclass(tp):
        return _convert_dataclass(tp, value, path, key, partial)
    raise TypeError(f"unsupported recipe type {tp!r}")


def _convert_dataclass(cls: Any, value: Any, path: Path, key: str, partial: bool) -> Any:
    if not isinstance(value, dict):
        raise RecipeError(path, key, f"expected a table, got {_toml_type(value)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for k in value:
        if k not in fields or k in _INJECTED:
            allowed = ", ".join(f for f in fields if f not in _INJECTED)
            where = f"{key}.{k}" if key else k
            raise RecipeError(path, where, f"unknown key (allowed here: {allowed})")
    out: dict[str, Any] = {}
    for name, f in fields.items():
        if name in _INJECTED:
            continue
        where = f"{key}.{name}" if key else name
        if name in value:
            out[name] = _convert(hints[name], value[name], path, where, partial)
        elif (
            f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
            and not partial
        ):
            raise RecipeError(path, where, f"missing required key ({_type_name(hints[name])})")
    return out


# Fields filled in by the loader, not written in TOML.
_INJECTED = {"path", "name"}


def _merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge TOML tables; the child's scalars and arrays replace the base's."""
    out = dict(base)
    for k, v in child.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.exists() and not path.is_symlink():
        raise RecipeError(path, "", "recipe file not found")
    try:
        # a regular file only (a FIFO would block, /dev/zero never end), of bounded size
        data = limits.read_regular_file(path, "recipe file")
    except UserError as exc:
        raise RecipeError(path, "", str(exc).removeprefix(f"{path}: ")) from None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise RecipeError(path, "", f"not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(path, "", f"not valid TOML: {exc}") from None
    except RecursionError:
        raise RecipeError(path, "", "not valid TOML: nested too deeply") from None


# The TOML layout: [recipe] metadata, [pillow], [dependencies.NAME], [features.NAME],
# [patches] component = [files], [audit].
@dataclass(frozen=True)
class _RecipeMeta:
    description: str = ""
    inherits: str = ""
    python: list[str] = field(default_factory=list)
    platform: str = ""
    local_version: str = ""


@dataclass(frozen=True)
class _RecipeToml:
    recipe: _RecipeMeta
    pillow: PillowSource
    dependencies: dict[str, DependencySpec] = field(default_factory=dict)
    features: dict[str, Feature] = field(default_factory=dict)
    patches: dict[str, list[str]] = field(default_factory=dict)
    audit: Audit = field(default_factory=Audit)


def _load_raw(path: Path, seen: tuple[Path, ...] = ()) -> tuple[dict[str, Any], dict[str, Path]]:
    """Read a recipe and its ``inherits`` chain into one merged dict (each file checked alone).

    Also returns, for every leaf key path, the file that set it, so that errors found only
    after merging still name the file the user has to edit. The chain is walked in a loop,
    not by recursion: a hostile chain of thousands of recipes must not overflow the stack.
    """
    chain: list[tuple[Path, dict[str, Any]]] = []
    visited = set(seen)
    path = path.resolve()
    while True:
        if path in visited:
            raise RecipeError(path, "recipe.inherits", "inheritance cycle")
        visited.add(path)
        data = _read_toml(path)
        _convert_dataclass(_RecipeToml, data, path, "", partial=True)
        chain.append((path, data))
        parent = data.get("recipe", {}).get("inherits", "")
        if not parent:
            break
        parent_path = (path.parent / parent).resolve()
        if not parent_path.is_file():
            raise RecipeError(path, "recipe.inherits", f"no such recipe: {parent_path}")
        path = parent_path
    merged: dict[str, Any] = {}
    origins: dict[str, Path] = {}
    for path, data in reversed(chain):  # the root base first; each child wins over its base
        merged.get("recipe", {}).pop("inherits", None)
        merged = _merge(merged, data)
        origins |= dict.fromkeys(_leaf_keys(data), path)
    return merged, origins


def _leaf_keys(data: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else k
        keys += _leaf_keys(v, key) if isinstance(v, dict) else [key]
    return keys


class _Origins:
    """Maps a dotted key path (possibly with ``[i]``) to the recipe file that set it."""

    def __init__(self, origins: dict[str, Path], default: Path) -> None:
        self._origins = origins
        self._default = default

    def __call__(self, key: str) -> Path:
        key = re.sub(r"\[\d+\]$", "", key)
        while key:
            if key in self._origins:
                return self._origins[key]
            # a table key: any leaf under it decides (the last file that touched it)
            under = [p for k, p in self._origins.items() if k.startswith(key + ".")]
            if under:
                return under[-1]
            key = key.rpartition(".")[0]
        return self._default


def _check_sha256(origin: _Origins, key: str, source: Source) -> None:
    path = origin(key)
    if source.sha256 != UNPINNED and not _SHA256_RE.match(source.sha256):
        raise RecipeError(
            path, key, f"expected 64 lowercase hex digits or {UNPINNED!r}, got {source.sha256!r}"
        )
    if source.sha256 == UNPINNED and not source.sha256_source:
        raise RecipeError(
            path, key.replace("sha256", "sha256_source"), "an unpinned source must say why"
        )
    if bool(source.url) == bool(source.pip):
        raise RecipeError(path, key.rsplit(".", 1)[0], "set exactly one of 'url' or 'pip'")


def _check_version(origin: _Origins, key: str, value: str) -> None:
    path = origin(key)
    try:
        Version(value)
    except InvalidVersion:
        raise RecipeError(path, key, f"expected a version, got {value!r}") from None
    _check_component_version(origin, key, value)


def _check_component_version(origin: _Origins, key: str, value: str) -> None:
    """A library version names a patch directory: letters, digits, ``._+~-``, one component."""
    if not _VERSION_RE.match(value):
        raise RecipeError(
            origin(key), key, f"expected a version (letters, digits, '._+~-'), got {value!r}"
        )


def _check_filename(origin: _Origins, key: str, source: Source) -> None:
    """The download's file name (``source.filename``, else the URL's last segment, decoded)
    must be one safe path component: it is joined to the cache directory."""
    rule = "one path component of letters, digits and '._+~-', not starting with '.' or '-'"
    if source.filename:
        where = f"{key}.filename"
        if not safe_filename(source.filename):
            raise RecipeError(origin(where), where, f"expected {rule}, got {source.filename!r}")
    elif source.url and not safe_filename(name := url_filename(source.url)):
        where = f"{key}.url"
        raise RecipeError(
            origin(where),
            where,
            f"the URL's file name {name!r} is not {rule}; set {key}.filename",
        )


_NO_DEP = DependencySpec(
    project="", version="", source=Source(sha256=UNPINNED), build_system="cmake", license_files=[]
)


def load_recipe(path: str | Path) -> Recipe:
    """Load, merge and validate a recipe; raises ``RecipeError`` naming file and key."""
    p = Path(path).resolve()
    raw, origins = _load_raw(p)
    at = _Origins(origins, p)
    t: _RecipeToml = _build(_RecipeToml, _convert_dataclass(_RecipeToml, raw, p, "", partial=False))

    _check_version(at, "pillow.version", t.pillow.version)
    _check_sha256(at, "pillow.source.sha256", t.pillow.source)
    _check_filename(at, "pillow.source", t.pillow.source)
    deps: dict[str, Dependency] = {}
    for name, d in t.dependencies.items():
        key = f"dependencies.{name}"
        if not _COMPONENT_RE.match(name):
            raise RecipeError(at(key), key, "names are lowercase letters, digits, '-', '_', '.'")
        _check_sha256(at, f"{key}.source.sha256", d.source)
        _check_filename(at, f"{key}.source", d.source)
        _check_component_version(at, f"{key}.version", d.version)
        for i, dep in enumerate(d.depends):
            if dep not in t.dependencies:
                k = f"{key}.depends[{i}]"
                raise RecipeError(at(k), k, f"unknown dependency {dep!r}")
        if d.built_inside and name not in t.dependencies.get(d.built_inside, _NO_DEP).depends:
            k = f"{key}.built_inside"
            raise RecipeError(at(k), k, f"{d.built_inside!r} is no dependency that depends on it")
        deps[name] = Dependency(
            name=name, **{f.name: getattr(d, f.name) for f in dataclasses.fields(d)}
        )
    for comp, files in t.patches.items():
        key = f"patches.{comp}"
        if comp != "pillow" and comp not in deps:
            raise RecipeError(at(key), key, "no such component (pillow or a dependency)")
        for i, f in enumerate(files):
            if not re.match(r"^\d{4}-[a-z0-9][a-z0-9-]*\.patch$", f):
                raise RecipeError(at(key), f"{key}[{i}]", f"expected NNNN-slug.patch, got {f!r}")
    for name, feat in t.features.items():
        key = f"features.{name}.reason"
        if feat.state in ("removed", "changed", "disabled") and not feat.reason:
            raise RecipeError(at(key), key, f"a {feat.state} feature needs a reason")
    if not t.recipe.python:
        raise RecipeError(p, "recipe.python", "missing required key (an array)")
    for i, v in enumerate(t.recipe.python):
        if not re.match(r"^3\.\d+t?$", v):  # "3.14t": the free-threaded build
            k = f"recipe.python[{i}]"
            raise RecipeError(at(k), k, f"expected 'X.Y' or 'X.Yt', got {v!r}")
    if t.recipe.platform and t.recipe.platform not in PLATFORMS:
        k = "recipe.platform"
        raise RecipeError(
            at(k), k, f"expected one of {', '.join(PLATFORMS)}, got {t.recipe.platform!r}"
        )
    if t.recipe.local_version and not re.match(
        r"^[a-z0-9]+(\.[a-z0-9]+)*$", t.recipe.local_version
    ):
        k = "recipe.local_version"
        raise RecipeError(at(k), k, "expected a PEP 440 local version label")

    recipe = Recipe(
        name=p.stem,
        description=t.recipe.description,
        path=p,
        pillow=t.pillow,
        dependencies=deps,
        python=t.recipe.python,
        platform=t.recipe.platform or "win_amd64",
        local_version=t.recipe.local_version,
        inherits=_read_toml(p).get("recipe", {}).get("inherits", ""),
        features=t.features,
        patches=t.patches,
        audit=t.audit,
    )
    try:
        recipe.build_order()
    except RecipeError as exc:
        raise RecipeError(at(exc.key), exc.key, str(exc).split(": ", 2)[-1]) from None
    return recipe


def _build(cls: Any, data: Any) -> Any:
    """Turn the validated nested dicts into the frozen dataclasses."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _build_value(hints[name], value)
    return cls(**kwargs)


def _build_value(tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value)
    if origin is list:
        (item,) = typing.get_args(tp)
        return [_build_value(item, v) for v in value]
    if origin is dict:
        _, item = typing.get_args(tp)
        return {k: _build_value(item, v) for k, v in value.items()}
    return value
