"""A fake Windows CPython SDK description for build tests that never compile."""

from __future__ import annotations

from pathlib import Path

from pillow_variants.build.pysdk import WindowsSDK


def fake_sdk(root: Path, python: str = "3.13") -> WindowsSDK:
    nodot = python.replace(".", "")
    return WindowsSDK(
        python=python,
        root=str(root),
        include_dirs=[str(root / "include")],
        library_dirs=[str(root / "libs")],
        libraries=[f"python{nodot}"],
        limited_api_libraries=["python3"],
        dll=f"python{nodot}.dll",
        dll_version=f"{python}.0",
        headers_version="fixture",
        ext_suffix=f".cp{nodot}-win_amd64.pyd",
        soabi=f"cp{nodot}-win_amd64",
        platform_tag="win_amd64",
        abi_tag=f"cp{nodot}",
        sources={},
    )
