"""Simulate the Windows loader on the modules of one target, function by function.

For each static import the loader maps a DLL and then binds every imported function; one DLL
not found is error 126 (ERROR_MOD_NOT_FOUND), one function not found is error 127
(ERROR_PROC_NOT_FOUND) — and either fails the whole ``LoadLibrary`` of the module that
started the load, which Python reports as "DLL load failed while importing X".

Where a DLL name is looked for, in order:

1. API set names (api-ms-*/ext-ms-*) never touch the disk: the surface's schema decides.
2. The target's own DLLs: the importer's directory, delvewheel's ``<pkg>.libs/`` directories
   (added with ``os.add_dll_directory`` by the patched ``__init__``), the target's root.
3. The Python runtime next to python.exe: ``pythonXY.dll``, ``python3.dll``,
   ``vcruntime140.dll``, ``vcruntime140_1.dll`` (python.org installers and the embeddable zip
   ship them; Nano Server has no VC++ redistributable of its own).
4. The surface profile (System32 of the target image).

The target's own DLLs are followed transitively; system DLLs are not (what they import is the
image's business, already reflected in the profile). Exports that are forwarders are followed
to their target, and a forwarder to something absent counts as absent.
"""

from __future__ import annotations

import posixpath
import re
from collections import deque

from pillow_variants._record import Record
from pillow_variants.audit.apiset import is_apiset
from pillow_variants.audit.surface import DllModel, Resolution, Surface, normalize_dll
from pillow_variants.pe import ImportedDll, ImportedFunction, PEInfo

ERROR_MOD_NOT_FOUND = 126
ERROR_PROC_NOT_FOUND = 127
ERROR_BAD_EXE_FORMAT = 193
MESSAGES = {
    ERROR_MOD_NOT_FOUND: "The specified module could not be found",
    ERROR_PROC_NOT_FOUND: "The specified procedure could not be found",
    ERROR_BAD_EXE_FORMAT: "%1 is not a valid Win32 application",
}
_RUNTIME_FIXED = frozenset({"python3.dll", "vcruntime140.dll", "vcruntime140_1.dll"})
_PYTHON_DLL = re.compile(r"^python3\d+t?\.dll$")  # python314t.dll: free-threaded
#: Forwarder hops followed before giving up. The Windows loader has no small fixed limit (it
#: recurses until a real cycle or stack exhaustion); genuine chains through API sets and
#: compatibility DLLs are a few hops, so 64 leaves room while bounding hostile input. A loop
#: (the same DLL and function again) is reported as a loop whatever its length.
MAX_FORWARD_DEPTH = 64


class Module(Record):
    """A PE file of the target, by its POSIX path inside the target."""

    __slots__ = ("path", "info")

    def __init__(self, path: str, info: PEInfo) -> None:
        self.path = path
        self.info = info

    @property
    def directory(self) -> str:
        return posixpath.dirname(self.path)

    @property
    def key(self) -> str:
        return posixpath.basename(self.path).lower()


class Image(Record):
    """What the loader can see of one target: its PE modules and the runtime it expects.

    ``python_dlls`` restricts which ``pythonXY.dll`` the runtime provides (from the wheel tags:
    a cp311 wheel gets python311.dll and python3.dll); None accepts any.
    """

    __slots__ = ("kind", "path", "modules", "python_dlls")

    def __init__(
        self,
        kind: str,
        path: str,
        modules: list[Module],
        python_dlls: frozenset[str] | None = None,
    ) -> None:
        self.kind = kind
        self.path = path
        self.modules = modules
        self.python_dlls = python_dlls


class Provider(Record):
    """Where an import name landed: ``wheel`` (a module of the target), ``runtime``,
    ``surface`` or ``missing``."""

    __slots__ = ("where", "model", "resolution", "module")

    def __init__(
        self,
        where: str,
        model: DllModel | None,
        resolution: Resolution,
        module: Module | None = None,
    ) -> None:
        self.where = where
        self.model = model
        self.resolution = resolution
        self.module = module

    @property
    def found(self) -> bool:
        return self.model is not None


class FunctionResult(Record):
    """One imported function's verdict (its fields are set as the loader binds it)."""

    __slots__ = (
        "name",
        "ordinal",
        "present",
        "basis",
        "detail",
        "sources",
        "forwarded_to",
        "rules",
    )

    def __init__(self, name: str | None, ordinal: int | None, present: bool | None) -> None:
        self.name = name
        self.ordinal = ordinal
        self.present = present  # None: not checked (strict-only audits consult no surface)
        self.basis = ""
        self.detail = ""
        self.sources: tuple[str, ...] = ()
        self.forwarded_to: list[str] = []
        self.rules: list[str] = []

    @property
    def label(self) -> str:
        return self.name if self.name is not None else f"#{self.ordinal}"

    @property
    def error(self) -> int | None:
        return ERROR_PROC_NOT_FOUND if self.present is False else None


class DllResult(Record):
    """One imported DLL's verdict and its functions'."""

    __slots__ = (
        "name",
        "key",
        "delay",
        "where",
        "present",
        "basis",
        "detail",
        "sources",
        "resolved_as",
        "error",
        "functions",
        "rules",
    )

    def __init__(
        self,
        name: str,
        key: str,
        delay: bool,
        where: str,
        present: bool | None,
        basis: str = "",
        detail: str = "",
        sources: tuple[str, ...] = (),
        resolved_as: str = "",
    ) -> None:
        self.name = name
        self.key = key
        self.delay = delay
        self.where = where
        self.present = present
        self.basis = basis
        self.detail = detail
        self.sources = sources
        self.resolved_as = resolved_as
        self.error: int | None = None
        self.functions: list[FunctionResult] = []
        self.rules: list[str] = []


class LoadVerdict(Record):
    """Whether ``LoadLibrary`` of a module succeeds, and which module in its chain fails."""

    __slots__ = ("ok", "error", "chain", "detail")

    def __init__(
        self,
        ok: bool,
        error: int | None = None,
        chain: list[str] | None = None,
        detail: str = "",
    ) -> None:
        self.ok = ok
        self.error = error
        self.chain = [] if chain is None else chain
        self.detail = detail

    @property
    def message(self) -> str:
        return MESSAGES.get(self.error or 0, "")


class ModuleResult(Record):
    """One module's imports as bound, and (with a surface) whether it loads."""

    __slots__ = ("path", "machine", "imports", "load")

    def __init__(self, path: str, machine: str, imports: list[DllResult]) -> None:
        self.path = path
        self.machine = machine
        self.imports = imports
        self.load: LoadVerdict | None = None

    def first_static_error(self) -> tuple[int, str] | None:
        for dll in self.imports:
            if dll.delay:
                continue
            if dll.error:
                return dll.error, f"{dll.name} not found"
            for fn in dll.functions:
                if fn.error:
                    return fn.error, f"{dll.name}!{fn.label}"
        return None


class Loader:
    """Resolves imports for one :class:`Image` against one surface (or none: strict-only)."""

    def __init__(self, image: Image, surface: Surface | None) -> None:
        self.image = image
        self.surface = surface
        self._by_dir: dict[tuple[str, str], Module] = {
            (m.directory, m.key): m for m in image.modules
        }
        libs = sorted({m.directory for m in image.modules if m.directory.endswith(".libs")})
        self._extra_dirs = [*libs, ""]
        self._own_models: dict[str, DllModel] = {}
        self._runtime = DllModel(
            "python runtime",
            any_export=True,
            basis="runtime",
            note="ships next to python.exe (functions not checked)",
        )

    # -- DLL lookup -------------------------------------------------------------------------
    def find_dll(self, name: str, importer: Module | None) -> Provider:
        key = normalize_dll(name)
        if is_apiset(key):
            return self._from_surface(key, importer)
        own = self._own(key, importer)
        if own is not None:
            return Provider("wheel", self._own_model(own), Resolution(True, "wheel"), own)
        if self._is_runtime(key):
            res = Resolution(True, "runtime", self._runtime.note)
            return Provider("runtime", self._runtime, res)
        return self._from_surface(key, importer)

    def _own(self, key: str, importer: Module | None) -> Module | None:
        dirs = [importer.directory] if importer is not None else []
        for d in [*dirs, *self._extra_dirs]:
            mod = self._by_dir.get((d, key))
            if mod is not None:
                return mod
        return None

    def _own_model(self, module: Module) -> DllModel:
        model = self._own_models.get(module.path)
        if model is None:
            exp = module.info.exports
            model = DllModel(
                module.key,
                names=frozenset(exp.names),
                ordinals=exp.ordinals,
                forwarders=exp.forwarders,
                basis="wheel",
                note=f"shipped as {module.path}",
            )
            self._own_models[module.path] = model
        return model

    def _is_runtime(self, key: str) -> bool:
        if key in _RUNTIME_FIXED:
            return True
        if _PYTHON_DLL.match(key):
            return self.image.python_dlls is None or key in self.image.python_dlls
        return False

    def _from_surface(self, key: str, importer: Module | None) -> Provider:
        if self.surface is None:
            return Provider("system", None, Resolution(True, "unchecked"))
        model, res = self.surface.find_dll(key, importer.key if importer else "")
        return Provider("surface" if model else "missing", model, res)

    # -- function binding -------------------------------------------------------------------
    def bind(self, provider: Provider, fn: ImportedFunction) -> FunctionResult:
        """Bind one function, following forwarders through any provider."""
        result = FunctionResult(fn.name, fn.ordinal, None)
        if provider.model is None:
            return result
        current, func = provider, fn
        visited: set[tuple[str, str]] = set()
        for _ in range(MAX_FORWARD_DEPTH):
            assert current.model is not None
            hop = (current.model.name.lower(), func.label)
            if hop in visited:
                result.present, result.basis = False, "forwarder"
                result.detail = "forwarder loop: " + " -> ".join(result.forwarded_to)
                return result
            visited.add(hop)
            res = current.model.lookup(func)
            result.present, result.basis = res.present, res.basis
            result.detail, result.sources = res.detail, res.sources
            if not (res.present and res.forward):
                return result
            result.forwarded_to.append(res.forward)
            target_dll, _, target = res.forward.rpartition(".")
            current = self.find_dll(target_dll or res.forward, provider.module)
            if current.model is None:
                if self.surface is None:  # strict-only: forwarders to the system are not checked
                    result.present = None
                    return result
                result.present, result.basis = False, "forwarder"
                result.detail = f"forwarded to {res.forward}, but {target_dll} is absent"
                return result
            func = _forward_target(target)
        result.present, result.basis = False, "forwarder"
        result.detail = f"forwarder chain deeper than {MAX_FORWARD_DEPTH} hops"
        return result

    def resolve_import(self, module: Module, imp: ImportedDll) -> DllResult:
        provider = self.find_dll(imp.name, module)
        res = provider.resolution
        out = DllResult(
            name=imp.name,
            key=normalize_dll(imp.name),
            delay=imp.delay,
            where=provider.where,
            present=None if res.basis == "unchecked" else provider.found,
            basis=res.basis,
            detail=res.detail,
            sources=res.sources,
            resolved_as=provider.module.path if provider.module else "",
        )
        if out.present is False:
            out.error = ERROR_MOD_NOT_FOUND
        out.functions = [self.bind(provider, fn) for fn in imp.functions]
        return out

    def resolve_module(self, module: Module) -> ModuleResult:
        imports = [self.resolve_import(module, imp) for imp in module.info.imports]
        return ModuleResult(module.path, module.info.machine, imports)

    # -- closure ----------------------------------------------------------------------------
    def load_verdicts(self, results: dict[str, ModuleResult]) -> None:
        """Set ``load`` on every result: a module loads only if its whole static closure of
        own DLLs binds (and has the importer's machine type).

        The verdict of each module is the shortest chain (first in import order among equals)
        to a failing module of its closure, exactly what a breadth-first walk from each module
        finds; it is computed for all modules at once, by one breadth-first walk backwards
        from the failing modules per machine type, so that N chained DLLs cost O(N) walks
        rather than a walk per module (hostile wheels of thousands of chained DLLs).
        """
        modules = {m.path: m for m in self.image.modules}
        edges = {path: _static_own(r) for path, r in results.items()}
        by_machine: dict[str, dict[str, int]] = {}
        for path, result in results.items():
            machine = modules[path].info.machine
            if machine not in by_machine:
                by_machine[machine] = _distances(machine, results, modules, edges)
            result.load = _verdict(path, machine, by_machine[machine], results, modules, edges)


def _static_own(result: ModuleResult) -> list[str]:
    """The module's static imports of the target's own DLLs, in import order, once each."""
    out: dict[str, None] = {}
    for dll in result.imports:
        if not dll.delay and dll.where == "wheel":
            out.setdefault(dll.resolved_as)
    return list(out)


def _failure(
    path: str, machine: str, results: dict[str, ModuleResult], modules: dict[str, Module]
) -> tuple[int, str] | None:
    """Why ``path`` itself fails to load in a process of ``machine``, or None."""
    if modules[path].info.machine != machine:
        return ERROR_BAD_EXE_FORMAT, f"{path} is not {machine}"
    return results[path].first_static_error()


def _distances(
    machine: str,
    results: dict[str, ModuleResult],
    modules: dict[str, Module],
    edges: dict[str, list[str]],
) -> dict[str, int]:
    """Hops from each module to the nearest failing module of its closure (absent: none)."""
    importers: dict[str, list[str]] = {}
    for path, targets in edges.items():
        for t in targets:
            importers.setdefault(t, []).append(path)
    dist = {p: 0 for p in results if _failure(p, machine, results, modules) is not None}
    queue = deque(dist)
    while queue:
        current = queue.popleft()
        for importer in importers.get(current, ()):
            if importer not in dist:
                dist[importer] = dist[current] + 1
                queue.append(importer)
    return dist


def _verdict(
    root: str,
    machine: str,
    dist: dict[str, int],
    results: dict[str, ModuleResult],
    modules: dict[str, Module],
    edges: dict[str, list[str]],
) -> LoadVerdict:
    if root not in dist:
        return LoadVerdict(True)
    chain = [root]
    while dist[chain[-1]] > 0:  # the first import one hop nearer to a failure
        chain.append(next(t for t in edges[chain[-1]] if dist.get(t) == dist[chain[-1]] - 1))
    failure = _failure(chain[-1], machine, results, modules)
    assert failure is not None
    return LoadVerdict(False, failure[0], chain, failure[1])


def _forward_target(target: str) -> ImportedFunction:
    if target.startswith("#") and target[1:].isdigit():
        return ImportedFunction(None, int(target[1:]))
    return ImportedFunction(target)
