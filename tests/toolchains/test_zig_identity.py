"""The zig toolchain's identity (part of every dependency cache key) names zig's version, not
where it is installed: the nox ``tests`` session and the main job's session each have their
own venv with the same ziglang, and must share cache entries."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pillow_variants.toolchains.zig import ZigToolchain

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="the fake zig is a sh script")


def _zig(directory: Path, version: str) -> str:
    directory.mkdir(parents=True)
    zig = directory / "zig"
    zig.write_text(f"#!/bin/sh\necho {version}\n")
    zig.chmod(0o755)
    return str(zig)


def _identity(zig: str, workdir: Path) -> dict[str, str]:
    tc = ZigToolchain(zig=zig, nasm="", cmake="", ninja="", meson="")
    tc.setup(str(workdir))
    return tc.identity()


@posix_only
def test_the_same_zig_in_another_venv_has_the_same_identity(tmp_path: Path) -> None:
    tests_zig = _zig(tmp_path / ".nox" / "tests" / "ziglang", "0.17.1")
    main_zig = _zig(tmp_path / ".nox" / "build-nanoserver" / "ziglang", "0.17.1")
    cache = tmp_path / "cache" / "toolchains" / "zig"  # one shared cache
    first = _identity(tests_zig, cache)
    assert tests_zig in (cache / "zig-cc").read_text()  # the wrappers call their own zig
    second = _identity(main_zig, cache)
    assert main_zig in (cache / "zig-cc").read_text()
    assert first == second


@posix_only
def test_another_zig_version_is_another_identity(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    old = _identity(_zig(tmp_path / "a" / "ziglang", "0.17.1"), cache)
    new = _identity(_zig(tmp_path / "b" / "ziglang", "0.18.0"), cache)
    assert old["version"] != new["version"] and old != new
