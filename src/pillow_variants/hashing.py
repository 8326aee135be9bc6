"""sha256 of files, the one helper every stage uses (standard library only: ``aptsrc`` runs it
from ``scripts/bootstrap.sh`` before the package's dependencies are installed)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in chunks (archives and wheels can be large)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def bytes_sha256(data: bytes) -> str:
    """Hex sha256 of bytes already in memory (a downloaded wheel, a wheel member)."""
    return hashlib.sha256(data).hexdigest()
