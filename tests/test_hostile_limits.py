"""Hostile input against the resource limits (``pillow_variants.limits``): bombs, devices,
FIFOs, slow servers, thousands of chained DLLs.

Every CLI case runs in a subprocess under an address-space limit (``RLIMIT_AS``, 1 GiB) and a
timeout, with ``HOME``/``TMPDIR``/the cache inside the test's directory, and asserts: the exit
code, ONE ``error:`` line naming the limit and its environment variable, no traceback, nothing
written outside the test's directory. ``run_cli`` and the raw server are in ``tests/hostile.py``.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import tarfile
import threading
import time
import zipfile
import zlib
from pathlib import Path

import pytest

from hostile import error_line, fetch, raw_server, run_cli
from httpserver import make_project, make_tar
from pillow_variants import limits
from pillow_variants.audit.loader import MAX_FORWARD_DEPTH, Image, Loader, Module
from pillow_variants.errors import UserError
from pillow_variants.limits import read_member, spool_member
from pillow_variants.pe import ExportTable, ImportedDll, ImportedFunction, PEInfo

WHEEL = "pkg-1.0-cp313-cp313-win_amd64.whl"


def zero_member_zip(path: Path, members: dict[str, int], *, symlink: bool = False) -> Path:
    """A zip whose members are ``size`` zero bytes each, deflated (1.5 GiB is ~1.5 MB)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, size in members.items():
            info = zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            if symlink:
                info.external_attr = (0o120777 << 16) | 0
            with zf.open(info, "w", force_zip64=size > 0x7FFFFFFF) as fh:
                chunk = bytes(1 << 24)
                left = size
                while left > 0:
                    fh.write(chunk[: min(left, len(chunk))])
                    left -= len(chunk)
        if not symlink:
            zf.writestr(
                "pkg-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nTag: cp313-cp313-win_amd64\n"
            )
    return path


@pytest.fixture(scope="module")
def wheel_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ~1.5 MB wheel whose one .pyd inflates to 1.5 GiB (more than the RSS limit)."""
    d = tmp_path_factory.mktemp("bomb")
    return zero_member_zip(d / WHEEL, {"pkg/_ext.pyd": 3 << 29})


# --------------------------------------------------------------------------------------------
# Wheel members: declared size refused before inflating; capped stream


def test_audit_refuses_a_wheel_member_over_the_member_limit(tmp_path, wheel_bomb) -> None:
    assert wheel_bomb.stat().st_size < 4 << 20
    proc = run_cli(tmp_path, "audit", str(wheel_bomb))
    line = error_line(proc)
    assert "pkg/_ext.pyd: 1.5 GiB exceeds the 512 MiB member limit" in line
    assert line.endswith("raise it with PILLOW_VARIANTS_MAX_MEMBER_BYTES")


def test_compare_refuses_a_wheel_member_over_the_member_limit(tmp_path, wheel_bomb) -> None:
    proc = run_cli(tmp_path, "compare", str(wheel_bomb), str(wheel_bomb))
    assert "exceeds the 512 MiB member limit" in error_line(proc)


def test_member_limit_is_overridable_by_the_environment(tmp_path) -> None:
    wheel = zero_member_zip(tmp_path / WHEEL, {"pkg/_ext.pyd": 5000})
    proc = run_cli(tmp_path, "audit", str(wheel), env={"PILLOW_VARIANTS_MAX_MEMBER_BYTES": "4096"})
    assert "4.88 KiB exceeds the 4 KiB member limit" in error_line(proc)
    # raised: the member is read and judged on its content (zeros are not a PE file)
    proc = run_cli(tmp_path, "audit", str(wheel), env={"PILLOW_VARIANTS_MAX_MEMBER_BYTES": "5000"})
    assert "not a PE file" in error_line(proc)
    proc = run_cli(tmp_path, "audit", str(wheel), env={"PILLOW_VARIANTS_MAX_MEMBER_BYTES": "x"})
    assert "PILLOW_VARIANTS_MAX_MEMBER_BYTES='x': expected a positive integer" in error_line(proc)


class Endless(io.RawIOBase):
    """A member stream that would inflate for ever; records the size of every read."""

    def __init__(self, asked: list[int]) -> None:
        self.asked = asked

    def readinto(self, buf) -> int:
        buf[:] = bytes(len(buf))
        return len(buf)

    def read(self, n: int = -1) -> bytes:
        self.asked.append(n)
        assert n >= 0, "an unbounded read of a member"
        return bytes(n)


def test_a_member_lying_about_its_size_is_capped(tmp_path, monkeypatch) -> None:
    """The central directory says 100 bytes, the stream would inflate for ever: no more than
    the declared size (plus one byte) is ever read."""
    wheel = zero_member_zip(tmp_path / WHEEL, {"pkg/_ext.pyd": 100})
    asked: list[int] = []
    with zipfile.ZipFile(wheel) as zf:
        monkeypatch.setattr(zf, "open", lambda info: Endless(asked))
        with pytest.raises(UserError, match="inflates to more than the 100 bytes it declares"):
            read_member(zf, zf.getinfo("pkg/_ext.pyd"), "w:pkg/_ext.pyd")
    assert asked == [101]


def test_a_spooled_member_lying_about_its_size_is_capped(tmp_path, monkeypatch) -> None:
    """The audit's reader (inflate to a file, chunk by chunk) has the same cap as read_member,
    and never asks for more than a chunk at once."""
    wheel = zero_member_zip(tmp_path / WHEEL, {"pkg/_ext.pyd": 100})
    asked: list[int] = []
    # an archive in memory (no file name): zipfile's reader, not the raw-stream one
    with zipfile.ZipFile(io.BytesIO(wheel.read_bytes())) as zf:
        monkeypatch.setattr(zf, "open", lambda info: Endless(asked))
        with pytest.raises(UserError, match="inflates to more than the 100 bytes it declares"):
            spool_member(zf, zf.getinfo("pkg/_ext.pyd"), "w:pkg/_ext.pyd", io.BytesIO(), chunk=64)
    assert asked == [64, 37]


def _patch_central(path: Path, offset: int, value: bytes) -> Path:
    """Overwrite a field of the first central directory header (``offset`` from its start)."""
    raw = bytearray(path.read_bytes())
    at = raw.index(b"PK\x01\x02") + offset
    raw[at : at + len(value)] = value
    path.write_bytes(bytes(raw))
    return path


class _Sink(io.BytesIO):
    """Records the size of every write: how much was ever inflated at once."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[int] = []

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.writes.append(len(data))
        return super().write(data)


@pytest.fixture(params=["isal", "zlib"])
def inflater(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each raw-stream test runs with ISA-L and with zlib (the fallback without isal)."""
    if request.param == "zlib":
        monkeypatch.setattr(limits, "_inflater", lambda: zlib)
    else:
        assert limits._inflater().__name__.startswith("isal")
    return str(request.param)


def test_a_raw_stream_lying_about_its_size_is_capped(tmp_path, inflater) -> None:
    """The raw-stream reader (deflated members of an archive on disk) inflates at most one
    byte more than the central directory declares, a chunk at a time, whatever the stream
    holds: 1 MiB of zeros declared as 100 bytes."""
    wheel = zero_member_zip(tmp_path / WHEEL, {"pkg/_ext.pyd": 1 << 20})
    _patch_central(wheel, 24, (100).to_bytes(4, "little"))  # uncompressed size
    sink = _Sink()
    with zipfile.ZipFile(wheel) as zf:
        info = zf.getinfo("pkg/_ext.pyd")
        assert info.file_size == 100
        with pytest.raises(UserError, match="inflates to more than the 100 bytes it declares"):
            spool_member(zf, info, "w:pkg/_ext.pyd", sink, chunk=64)
    assert sum(sink.writes) == 101 and max(sink.writes) <= 64


@pytest.mark.parametrize(
    ("offset", "value", "error", "match"),
    [
        (16, b"\0\0\0\0", zipfile.BadZipFile, "Bad CRC-32"),  # CRC of the member
        (24, (1 << 21).to_bytes(4, "little"), EOFError, "ends early"),  # size larger than real
        (42, (1).to_bytes(4, "little"), zipfile.BadZipFile, "bad local file header"),
    ],
    ids=["crc", "short-stream", "local-header"],
)
def test_a_raw_stream_is_checked_like_zipfile(
    tmp_path, inflater, offset: int, value: bytes, error: type[Exception], match: str
) -> None:
    """What zipfile's reader refuses, the raw-stream reader refuses too (the engine turns
    each into a one-line "cannot read" / "not a readable wheel" error)."""
    wheel = zero_member_zip(tmp_path / WHEEL, {"pkg/_ext.pyd": 1 << 20})
    _patch_central(wheel, offset, value)
    with zipfile.ZipFile(wheel) as zf, pytest.raises(error, match=match):
        spool_member(zf, zf.getinfo("pkg/_ext.pyd"), "w:pkg/_ext.pyd", io.BytesIO())


def test_a_corrupt_raw_stream_is_a_zlib_error(tmp_path, inflater) -> None:
    """A broken deflate stream raises zlib.error with either inflater (isal has its own)."""
    wheel = zero_member_zip(tmp_path / WHEEL, {"pkg/_ext.pyd": 1 << 20})
    raw = bytearray(wheel.read_bytes())
    with zipfile.ZipFile(wheel) as zf:
        info = zf.getinfo("pkg/_ext.pyd")
    start = info.header_offset + 30 + len(info.filename)
    raw[start : start + 4] = b"\xff\xff\xff\xff"  # reserved block type 3
    wheel.write_bytes(bytes(raw))
    with zipfile.ZipFile(wheel) as zf, pytest.raises(zlib.error):
        spool_member(zf, zf.getinfo("pkg/_ext.pyd"), "w:pkg/_ext.pyd", io.BytesIO())


def test_raw_stream_and_zipfile_agree(tmp_path, inflater) -> None:
    """Both readers give the same bytes for a real deflated member."""
    payload = os.urandom(300_000) + bytes(700_000)
    wheel = tmp_path / WHEEL
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("pkg/_ext.pyd", payload)
    out = io.BytesIO()
    with zipfile.ZipFile(wheel) as zf:
        assert spool_member(zf, zf.getinfo("pkg/_ext.pyd"), "w", out, chunk=4096) == len(payload)
    assert out.getvalue() == payload


def test_dll_count_limit(tmp_path) -> None:
    wheel = zero_member_zip(tmp_path / WHEEL, {f"pkg/m{i}.pyd": 10 for i in range(12)})
    proc = run_cli(tmp_path, "audit", str(wheel), env={"PILLOW_VARIANTS_MAX_DLLS": "10"})
    assert error_line(proc) == (
        f"error: {wheel}: 12 exceeds the 10 DLL count limit; raise it with PILLOW_VARIANTS_MAX_DLLS"
    )


# --------------------------------------------------------------------------------------------
# Devices and FIFOs: refused before they are opened (no hang, no endless read)


def special_file(path: Path, kind: str) -> Path:
    """A FIFO (reading blocks for ever) or a device (``/dev/zero``: reading never ends)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    return path


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_audit_refuses_fifo_and_device(tmp_path, kind) -> None:
    target = special_file(tmp_path / "in" / "x.pyd", kind)
    proc = run_cli(tmp_path, "audit", str(target), timeout=20)
    assert "not a regular file" in error_line(proc)
    # the same in a directory target
    proc = run_cli(tmp_path, "audit", str(target.parent), timeout=20)
    assert "not a regular file" in error_line(proc)


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_recipe_show_refuses_fifo_and_device(tmp_path, kind) -> None:
    recipe = special_file(tmp_path / "in" / "r.toml", kind)
    proc = run_cli(tmp_path, "recipe", "show", str(recipe), timeout=20)
    assert "not a regular file" in error_line(proc)


def test_patch_that_is_a_fifo_is_reported_not_waited_for(tmp_path) -> None:
    recipe = make_project(
        tmp_path / "proj",
        libfoo_url="http://127.0.0.1:9/libfoo-1.0.tar.gz",
        libfoo_sha256="0" * 64,
        patches={"0001-fix.patch": "x\n"},
    )
    patch = tmp_path / "proj" / "patches" / "libfoo" / "1.0" / "0001-fix.patch"
    patch.unlink()
    os.mkfifo(patch)
    src = tmp_path / "src"
    src.mkdir()
    (src / "README").write_text("libfoo\n")
    args = ["patches", "check", str(recipe), "--only", "libfoo", "--source", f"libfoo={src}"]
    proc = run_cli(tmp_path, *args, timeout=30, code=1)
    assert "not a regular file" in proc.stdout + proc.stderr


# --------------------------------------------------------------------------------------------
# Source archives: total size, member count, a symlink member inflating to 1 GiB


def _extract(tmp_path: Path, archive: Path, **kw) -> subprocess.CompletedProcess[str]:
    recipe = make_project(
        tmp_path / "proj", libfoo_url="http://127.0.0.1:9/x.tgz", libfoo_sha256="0" * 64
    )
    dest = tmp_path / "work" / "dest"
    args = ["sources", "extract", str(recipe), "libfoo", str(dest), "--source", f"libfoo={archive}"]
    proc = run_cli(tmp_path, *args, **kw)
    if proc.returncode == 2:
        assert not dest.exists()
        assert not [p for p in dest.parent.iterdir() if p.name.startswith(".dest")]
    return proc


def test_archive_total_size_limit(tmp_path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("libfoo-1.0/zeros")
        info.size = 64 << 20
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    archive = tmp_path / "bomb.tar.gz"
    archive.write_bytes(buf.getvalue())
    env = {"PILLOW_VARIANTS_MAX_ARCHIVE_BYTES": str(16 << 20)}
    line = error_line(_extract(tmp_path, archive, env=env))
    assert "(extracted): 64 MiB exceeds the 16 MiB extracted archive size limit" in line
    assert line.endswith("PILLOW_VARIANTS_MAX_ARCHIVE_BYTES")


def test_archive_member_count_limit(tmp_path) -> None:
    archive = tmp_path / "many.tar.gz"
    archive.write_bytes(make_tar({f"libfoo-1.0/f{i}": "" for i in range(50)}))
    env = {"PILLOW_VARIANTS_MAX_ARCHIVE_MEMBERS": "20"}
    line = error_line(_extract(tmp_path, archive, env=env))
    assert "exceeds the 20 archive member count limit" in line


def test_zip_symlink_member_of_1_gib_is_not_read(tmp_path) -> None:
    archive = zero_member_zip(tmp_path / "link.zip", {"libfoo-1.0/link": 1 << 30}, symlink=True)
    line = error_line(_extract(tmp_path, archive))
    assert "'libfoo-1.0/link': symlink target of 1073741824 bytes" in line


# --------------------------------------------------------------------------------------------
# Downloads: a total deadline, not only a per-read timeout


def test_server_dripping_bytes_hits_the_total_deadline(tmp_path) -> None:
    def drip(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        while not stop.is_set():
            conn.sendall(b"x")
            time.sleep(0.2)

    with raw_server(drip) as url:
        start = time.monotonic()
        proc = fetch(tmp_path, url, env={"PILLOW_VARIANTS_MAX_DOWNLOAD_SECONDS": "2"}, timeout=30)
        assert time.monotonic() - start < 20
    line = error_line(proc)
    assert "exceeds the 2 s download time limit; raise it with" in line
    assert "PILLOW_VARIANTS_MAX_DOWNLOAD_SECONDS" in line
    assert not list((tmp_path / "work" / "cache").glob("**/libfoo-1.0.tar.gz"))


# --------------------------------------------------------------------------------------------
# The loader simulation: memoised load verdicts, forwarder chains


def _info(name: str, imports: dict[str, list[str]], exports=(), forwarders=None) -> PEInfo:
    table = ExportTable(names=set(exports) | set(forwarders or {}), forwarders=forwarders or {})
    dlls = [ImportedDll(d, tuple(ImportedFunction(f) for f in fs)) for d, fs in imports.items()]
    return PEInfo(name, "amd64", True, dlls, table)


def _chain_image(n: int, last_ok: bool) -> Image:
    mods = []
    for i in range(n):
        imports = {f"m{i + 1}.dll": ["f"]} if i + 1 < n else {}
        exports = ["f"] if (i + 1 < n or last_ok) else []
        if i == n - 1 and not last_ok:
            imports = {f"m{i}.dll": ["missing"]}  # a 127 at the end of the chain
        mods.append(Module(f"m{i}.dll", _info(f"m{i}.dll", imports, exports)))
    return Image("directory", "chain", mods)


@pytest.mark.parametrize("n", [6000])
def test_load_verdicts_of_chained_dlls_are_linear(n) -> None:
    image = _chain_image(n, last_ok=True)
    loader = Loader(image, None)
    results = {m.path: loader.resolve_module(m) for m in image.modules}
    start = time.monotonic()
    loader.load_verdicts(results)
    assert time.monotonic() - start < 5  # the old per-module walk took minutes here
    assert all(r.load is not None and r.load.ok for r in results.values())


def test_load_verdict_chain_names_the_failing_module() -> None:
    image = _chain_image(300, last_ok=False)
    loader = Loader(image, None)
    results = {m.path: loader.resolve_module(m) for m in image.modules}
    loader.load_verdicts(results)
    first = results["m0.dll"].load
    assert first is not None and not first.ok and first.error == 127
    assert first.chain == [f"m{i}.dll" for i in range(299)]  # m298 needs m299!f: 127
    assert first.detail == "m299.dll!f"
    assert results["m299.dll"].load.chain == ["m299.dll"]


def _forward_image(hops: int, loop: bool = False) -> tuple[Loader, Module]:
    mods = []
    for i in range(hops):
        target = f"d{(i + 1) % hops if loop else i + 1}.f"
        mods.append(Module(f"d{i}.dll", _info(f"d{i}.dll", {}, forwarders={"f": target})))
    if not loop:
        mods.append(Module(f"d{hops}.dll", _info(f"d{hops}.dll", {}, exports=["f"])))
    user = Module("user.pyd", _info("user.pyd", {"d0.dll": ["f"]}))
    return Loader(Image("directory", "fwd", [*mods, user]), None), user


@pytest.mark.parametrize("hops", [20, MAX_FORWARD_DEPTH - 1])
def test_a_genuine_forwarder_chain_resolves(hops) -> None:
    loader, user = _forward_image(hops)
    fn = loader.resolve_module(user).imports[0].functions[0]
    assert fn.present is True, fn.detail
    assert len(fn.forwarded_to) == hops


def test_forwarder_loop_and_excessive_depth_are_told_apart() -> None:
    loader, user = _forward_image(3, loop=True)
    fn = loader.resolve_module(user).imports[0].functions[0]
    assert fn.present is False and fn.detail == "forwarder loop: d1.f -> d2.f -> d0.f"
    loader, user = _forward_image(MAX_FORWARD_DEPTH + 5)
    fn = loader.resolve_module(user).imports[0].functions[0]
    assert (
        fn.present is False and fn.detail == f"forwarder chain deeper than {MAX_FORWARD_DEPTH} hops"
    )
