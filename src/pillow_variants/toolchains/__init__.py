"""Stage 3, toolchains: the compiler drivers behind one interface (:mod:`.base`) — zig on any
host (:mod:`.zig`, cross-compiling for x86_64-windows-gnu against the UCRT) and MSVC on Windows
(:mod:`.msvc`, upstream's reference build).

Layers import only downward: see ``tests/test_layers.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pillow_variants.errors import ToolchainError

if TYPE_CHECKING:
    from pillow_variants.toolchains.base import Toolchain

NAMES = ("zig", "msvc")


def get_toolchain(name: str, **kwargs: Any) -> Toolchain:
    """Instantiate a toolchain by its CLI name (imported on demand: each pulls in its own tools)."""
    if name == "zig":
        from pillow_variants.toolchains.zig import ZigToolchain

        return ZigToolchain(**kwargs)
    if name == "msvc":
        from pillow_variants.toolchains.msvc import MsvcToolchain

        return MsvcToolchain(**kwargs)
    raise ToolchainError(f"unknown toolchain {name!r} (choose zig or msvc)")
