"""Small but valid wheels for the publish / compare / wheeltools tests.

A real variant wheel comes from the build stage; these tests need wheels with the same file
names and metadata layout (``pillow-13.0.0+nanoserver-cp313-cp313-win_amd64.whl``) and a build
manifest with chosen rungs, built here so that tests control every byte.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pillow_variants.wheeltools import MANIFEST_NAME, dumps_json, write_wheel

ALL_PASSED = {
    "strict": {"passed": True, "detail": "no import outside the strict policy"},
    "surface": {"passed": True, "detail": "every import resolves on nanoserver-ltsc2022"},
    "wine": {"passed": True, "detail": "import PIL._imaging under Wine"},
    "wine-nogui": {"passed": True, "detail": "the same with the GUI DLLs disabled"},
    "container": {"passed": False, "detail": "not run: needs a Windows host"},
}


def make_wheel(
    directory: Path,
    *,
    name: str = "pillow",
    version: str = "13.0.0+nanoserver",
    tag: str = "cp313-cp313-win_amd64",
    files: dict[str, bytes] | None = None,
    manifest: dict[str, Any] | None = None,
    rungs: dict[str, Any] | None = None,
    epoch: int = 1_700_000_000,
) -> Path:
    """Write a wheel into ``directory`` and return its path.

    ``rungs`` builds a minimal manifest around the given rungs; ``manifest`` gives a whole one.
    """
    dist_info = f"{name}-{version}.dist-info"
    python_tag, abi_tag, platform_tag = tag.split("-")
    content: dict[str, bytes] = {
        "PIL/__init__.py": f'__version__ = "{version}"\n'.encode(),
        f"{dist_info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            "Summary: test wheel for pillow-variants\n\n"
        ).encode(),
        f"{dist_info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: pillow-variants-tests\nRoot-Is-Purelib: false\n"
            f"Tag: {python_tag}-{abi_tag}-{platform_tag}\n"
        ).encode(),
        f"{dist_info}/top_level.txt": b"PIL\n",
    }
    content.update(files or {})
    if rungs is not None and manifest is None:
        manifest = {"format_version": 1, "recipe": {"name": "nanoserver"}, "rungs": rungs}
    if manifest is not None:
        content[f"{dist_info}/{MANIFEST_NAME}"] = dumps_json(manifest)
    Path(directory).mkdir(parents=True, exist_ok=True)
    path = Path(directory) / f"{name}-{version}-{tag}.whl"
    return write_wheel(path, content, epoch=epoch)


def download_official_wheel(dest: Path, version: str, python: str) -> Path:
    """The official win_amd64 wheel of Pillow ``version`` for CPython ``python`` (X.Y), via pip.

    pip honours the user's index configuration (PIP_INDEX_URL, pip.conf), as for any download.
    """
    import subprocess
    import sys

    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps",
            "--only-binary", ":all:", "--platform", "win_amd64", "--python-version", python,
            "--dest", str(dest), f"pillow=={version}",
        ],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    tag = "cp" + python.replace(".", "")
    (wheel,) = dest.glob(f"pillow-{version}-{tag}-{tag}-win_amd64.whl")
    return wheel
