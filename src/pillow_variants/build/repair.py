"""Repair: delvewheel, as upstream's wheels get it (vendors the DLLs a wheel needs but lacks)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from pillow_variants._log import Progress
from pillow_variants._log import progress as progress_line
from pillow_variants.errors import BuildError


def repair_wheel(wheel: Path, out_dir: Path, progress: Progress = progress_line) -> Path:
    """delvewheel repair: vendor DLLs the wheel needs but does not carry.

    Our wheels link every dependency statically, so delvewheel normally finds nothing to add
    and the wheel is kept as is; if it does vendor DLLs (a recipe building a dependency
    shared), the repaired wheel replaces the original and the audit then covers the DLLs.
    """
    with tempfile.TemporaryDirectory(prefix="pv-repair-") as tmp:
        cmd = [sys.executable, "-m", "delvewheel", "repair", str(wheel), "-w", tmp]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
            raise BuildError(f"delvewheel repair failed for {wheel.name}: {tail[0]}")
        if "no external dependencies are needed" in proc.stdout:
            progress("  repair: delvewheel found no DLLs to vendor (everything is static)")
            return wheel
        repaired = Path(tmp) / wheel.name
        if not repaired.is_file():
            raise BuildError(f"delvewheel repair produced no {wheel.name}")
        out_dir.mkdir(parents=True, exist_ok=True)
        dest = out_dir / wheel.name
        shutil.move(str(repaired), dest)
        progress("  repair: delvewheel vendored DLLs into the wheel")
        return dest
