"""The package's folders are the pipeline, and layers import only downward.

Every ``import`` of a ``pillow_variants`` module — at module level or inside a function — is
read with :mod:`ast` from the *installed* package, so a lazy import cannot hide an upward
dependency or a cycle.
"""

from __future__ import annotations

import ast
from importlib import resources
from pathlib import Path

import pytest

import pillow_variants

#: Lowest first. A module may import its own layer's modules and any layer below.
LAYERS = [
    # the foundation: errors, logging, records, and the two file formats several stages read
    {
        "pillow_variants",
        "pillow_variants.errors",
        "pillow_variants._log",
        "pillow_variants._record",
        "pillow_variants.payload",
    },
    {"pillow_variants.hashing", "pillow_variants.limits", "pillow_variants.pe"},
    {"pillow_variants.wheeltools"},
    # the audit needs nothing but PE reading: every later stage may use it (the build checks
    # its own extensions against the system surface, cibw gates on it)
    {"pillow_variants.audit"},
    {"pillow_variants.recipe"},
    {"pillow_variants.sources"},
    {"pillow_variants.toolchains"},
    {"pillow_variants.build"},
    {"pillow_variants.verify"},
    {"pillow_variants.release"},
    {"pillow_variants.pipeline"},
    {"pillow_variants.cli", "pillow_variants.__main__"},
]
#: Programs that run inside another Python (the PEP 517 hook runner, the smoke test and import
#: checker run by the Windows CPython under test): they must import nothing of ours.
STANDALONE = {
    "pillow_variants.build.cross_pep517",
    "pillow_variants.payload.smoke_test",
    "pillow_variants.payload.check_imports",
}


def _modules() -> dict[str, Path]:
    root = Path(str(resources.files(pillow_variants)))
    found = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(("pillow_variants", *parts))] = path
    return found


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The package modules ``path`` imports (``from pkg import mod`` counts as ``pkg.mod``)."""
    out = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("pillow_variants")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            if not base.startswith("pillow_variants"):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in known else base)
    return out - {name}


def _layer(module: str) -> int:
    for i, group in enumerate(LAYERS):
        if any(module == g or module.startswith(g + ".") for g in group if g != "pillow_variants"):
            return i
    assert module == "pillow_variants", f"{module} is in no layer: add it to LAYERS"
    return 0


MODULES = _modules()
GRAPH = {name: _imports(path, name, set(MODULES)) for name, path in MODULES.items()}


def test_every_stage_is_a_folder() -> None:
    stages = ["recipe", "sources", "toolchains", "build", "audit", "verify", "release", "cli"]
    for stage in stages:
        assert f"pillow_variants.{stage}" in MODULES, stage
        assert MODULES[f"pillow_variants.{stage}"].name == "__init__.py"
    assert len(MODULES) > 40  # the walk saw the whole package


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_only_downward(module: str) -> None:
    _layer(module)  # every module belongs to a layer
    upward = [m for m in GRAPH[module] if _layer(m) > _layer(module)]
    assert not upward, f"{module} imports from a higher layer: {upward}"
    if module in STANDALONE:
        assert not GRAPH[module], f"{module} runs in a foreign Python: {GRAPH[module]}"


def test_no_import_cycles() -> None:
    """Tarjan-free check: a depth-first walk that meets a module on its own stack."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    cycles: list[list[str]] = []

    def walk(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(GRAPH.get(node, ())):
            # A package importing its own submodule lazily (toolchains.get_toolchain) is how a
            # package offers its parts; the reverse edge through __init__ is the cycle we reject.
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                walk(nxt, [*stack, nxt])
        state[node] = 2

    for module in sorted(GRAPH):
        if module not in state:
            walk(module, [module])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_checker_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    """The graph must not miss imports inside functions, or it would pass any layering."""
    src = tmp_path / "mod.py"
    src.write_text(
        "def f():\n    from pillow_variants.verify import ladder\n"
        "    import pillow_variants.release.publish\n"
    )
    known = {"pillow_variants.verify.ladder", "pillow_variants.release.publish"}
    assert _imports(src, "pillow_variants.recipe.mod", known) == known
    assert _layer("pillow_variants.verify.ladder") > _layer("pillow_variants.recipe.model")
