"""Run a project's own PEP 517 ``build_wheel`` so that its ``setup.py`` believes it targets Windows.

This file is executed **by path** with the build environment's Python (which has the project's
``build-system.requires`` but not necessarily pillow-variants), so it imports only the standard
library and whatever the backend itself needs::

    python cross_pep517.py SOURCE_TREE WHEEL_DIR CONFIG_SETTINGS_JSON TARGET_PLATFORM

Why a shim at all: Pillow's ``setup.py`` chooses the Windows link libraries (kernel32, user32,
gdi32, psapi, ...), the Windows defines (``USE_WIN32_FILEIO``, ``OPJ_STATIC``) and the Windows
library names (``libjpeg``, ``zlib``, ``lcms2_static``) by testing ``sys.platform == "win32"``.
Setting ``sys.platform`` process-wide would also turn the host's setuptools, subprocess and
sysconfig into (broken) Windows code. So only the code of ``setup.py`` itself sees the target
platform: it is executed with its own ``__builtins__`` whose ``__import__`` hands it a proxy of
``sys`` that answers ``platform`` with the target value and forwards everything else to the real
module. Functions defined in ``setup.py`` (``build_extensions``) share those globals, so they see
the target platform too when setuptools calls them later. Everything else — setuptools' choice
of the unix compiler class, the compiler commands and ``EXT_SUFFIX`` from the cross sysconfig
data named by ``_PYTHON_SYSCONFIGDATA_NAME`` — is untouched host behaviour.

The backend is the project's own (``[build-system] build-backend`` / ``backend-path``), so the
project's config-settings handling (Pillow's ``--pillow-configuration``) runs unchanged. The shim
is inserted into the backend's class hierarchy *between* the project's backend class and
setuptools' ``_BuildMetaBackend`` (whose ``run_setup`` is the documented override point for
custom backends): the project's ``run_setup`` still runs first, and its ``super().run_setup()``
reaches the shim instead of setuptools' plain ``exec``.
"""

from __future__ import annotations

import builtins
import importlib
import json
import os
import sys
import tomllib
import types
from pathlib import Path
from typing import Any


class TargetSys(types.ModuleType):
    """``sys`` as the cross-compiled ``setup.py`` should see it: only ``platform`` differs."""

    def __init__(self, platform: str) -> None:
        super().__init__("sys", sys.__doc__)
        self.__dict__["platform"] = platform

    def __getattr__(self, name: str) -> Any:
        return getattr(sys, name)

    def __setattr__(self, name: str, value: Any) -> None:
        # setup.py may edit sys.argv/sys.path; those edits must reach the real module.
        setattr(sys, name, value)


def target_builtins(platform: str) -> dict[str, Any]:
    """A copy of the builtins whose ``__import__`` returns a :class:`TargetSys` for ``sys``."""
    proxy = TargetSys(platform)
    real_import = builtins.__import__

    def _import(name: str, globals=None, locals=None, fromlist=(), level=0):  # noqa: A002
        module = real_import(name, globals, locals, fromlist, level)
        return proxy if (name == "sys" and level == 0) else module

    namespace = dict(vars(builtins))
    namespace["__import__"] = _import
    return namespace


def exec_setup_script(path: Path, platform: str) -> None:
    """Execute ``setup.py`` as setuptools' ``run_setup`` does, but seeing the target platform."""
    code = compile(path.read_bytes(), str(path), "exec")
    namespace: dict[str, Any] = {"__file__": str(path), "__name__": "__main__"}
    namespace["__builtins__"] = target_builtins(platform)
    try:
        exec(code, namespace)
    except SystemExit as exc:  # setuptools' run_setup treats exit code 0 the same way
        if exc.code:
            raise


def load_backend(tree: Path) -> Any:
    """The backend object named by the tree's ``pyproject.toml`` (setuptools' if none)."""
    pyproject = tree / "pyproject.toml"
    system: dict[str, Any] = {}
    if pyproject.is_file():
        system = tomllib.loads(pyproject.read_text("utf-8")).get("build-system", {})
    name = system.get("build-backend", "setuptools.build_meta:__legacy__")
    for entry in reversed(system.get("backend-path", [])):
        sys.path.insert(0, str((tree / entry).resolve()))
    module_name, _, attr = name.partition(":")
    backend: Any = importlib.import_module(module_name)
    for part in filter(None, attr.split(".")):
        backend = getattr(backend, part)
    return backend


def cross_backend(backend: Any, platform: str) -> Any:
    """An instance of the backend's class with :func:`exec_setup_script` as setuptools' step."""
    from setuptools.build_meta import _BuildMetaBackend

    instance = getattr(backend.build_wheel, "__self__", None)
    if not isinstance(instance, _BuildMetaBackend):
        raise SystemExit(
            f"cross_pep517: the build backend {getattr(backend, '__name__', backend)!r} is not "
            "built on setuptools' build_meta; only setuptools-based projects can be cross-built"
        )

    class _TargetSetup(_BuildMetaBackend):
        def run_setup(self, setup_script: str = "setup.py") -> None:
            exec_setup_script(Path(setup_script).resolve(), platform)

    project_class = type(instance)
    # A plain setuptools project's backend *is* _BuildMetaBackend: the shim class then suffices.
    bases = (
        (_TargetSetup,) if project_class in _TargetSetup.__mro__ else (project_class, _TargetSetup)
    )
    cross_class = type("CrossBackend", bases, {})
    return cross_class()


def main(argv: list[str]) -> int:
    tree, wheel_dir, settings_json, platform = argv
    settings: dict[str, list[str]] = json.loads(settings_json)
    wheel_dir = str(Path(wheel_dir).resolve())
    # stdout carries only the wheel's file name: everything the build prints (setuptools
    # through sys.stdout, compilers through the inherited descriptor) goes to stderr, in order.
    result = os.fdopen(os.dup(1), "w")
    sys.stdout.flush()
    os.dup2(2, 1)
    os.chdir(tree)
    sys.path.insert(0, tree)  # as PEP 517 frontends run hooks from the source tree
    backend = cross_backend(load_backend(Path(tree)), platform)
    name = backend.build_wheel(wheel_dir, settings)
    print(f"cross_pep517: built {name}", file=sys.stderr, flush=True)
    result.write(name + "\n")
    result.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
