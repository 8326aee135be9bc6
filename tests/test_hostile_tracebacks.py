"""Hostile input that used to end in a traceback where the promise is ONE ``error:`` line and
exit 2: one group per class (recipes, downloads, archives, audit/compare, surfaces, SDKs).

Each case runs the CLI through ``run_cli`` (test_hostile_limits.py): a subprocess under a
1 GiB address-space limit and a timeout, asserting the exit code, one error line, no
traceback and nothing written outside the test's directory.
"""

from __future__ import annotations

import io
import json
import lzma
import os
import random
import socket
import subprocess
import sys
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from hostile import error_line, fetch, raw_server, run_cli
from httpserver import make_project, make_tar, make_zip
from wheelfactory import make_wheel

DUMMY_URL = "http://127.0.0.1:9/libfoo-1.0.tar.gz"


def _project(tmp_path: Path, **kw) -> Path:
    return make_project(tmp_path / "proj", libfoo_url=DUMMY_URL, libfoo_sha256="0" * 64, **kw)


# --------------------------------------------------------------------------------------------
# Recipes


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        (
            "non-utf8",
            lambda d: _write(d / "r.toml", b'[recipe]\ndescription = "\xff"\n'),
            "not UTF-8",
        ),
        (
            "directory",
            lambda d: (d / "r.toml").mkdir(parents=True) or d / "r.toml",
            "is a directory",
        ),
        ("empty-path", lambda d: Path(""), "is a directory"),
        ("under-a-file", lambda d: _write(d / "f", "x") / "r.toml", "r.toml: "),
        ("deep-nesting", lambda d: _write(d / "r.toml", "x = " + "[" * 5000 + "]" * 5000), "TOML"),
    ],
)
def test_unreadable_recipes_are_one_line(tmp_path, name, make, message) -> None:
    path = make(tmp_path / "in")
    proc = run_cli(tmp_path, "recipe", "show", str(path))
    assert message in error_line(proc)


def test_1200_long_inherits_chain_loads(tmp_path) -> None:
    base = _project(tmp_path)
    for i in range(1200):
        parent = base.name if i == 0 else f"r{i - 1}.toml"
        _write(base.parent / f"r{i}.toml", f'[recipe]\ninherits = "{parent}"\n')
    proc = run_cli(tmp_path, "recipe", "show", str(base.parent / "r1199.toml"), code=0)
    assert "inherits    r1198.toml" in proc.stdout


def test_1200_long_depends_chain_is_ordered(tmp_path) -> None:
    recipe = _project(tmp_path)
    text = recipe.read_text()
    for i in range(1200):
        dep = f'depends = ["d{i + 1}"]\n' if i + 1 < 1200 else ""
        text += (
            f'\n[dependencies.d{i}]\nproject = "d{i}"\nversion = "1.0"\nbuild_system = "cmake"\n'
            f'license_files = []\n{dep}[dependencies.d{i}.source]\nurl = "{DUMMY_URL}"\n'
            'sha256 = "unpinned"\nsha256_source = "test"\n'
        )
    recipe.write_text(text)
    proc = run_cli(tmp_path, "recipe", "show", str(recipe), code=0)
    order = [ln.split()[0] for ln in proc.stdout.splitlines() if ln.startswith("  d")]
    assert order[:2] == ["d1199", "d1198"] and order[-1] == "d0" and len(order) == 1200
    # a cycle in a long chain is still a one-line error naming the key
    recipe.write_text(text.replace('project = "d1199"', 'project = "d1199"\ndepends = ["d0"]'))
    proc = run_cli(tmp_path, "recipe", "show", str(recipe))
    assert "depends: cycle: " in error_line(proc)


def test_recipe_show_escapes_control_characters(tmp_path) -> None:
    recipe = _project(tmp_path)
    text = recipe.read_text().replace(
        "[recipe]\n", '[recipe]\ndescription = "evil\\u001b[2J\\u0007\\u202ename"\n', 1
    )
    recipe.write_text(text)
    proc = run_cli(tmp_path, "recipe", "show", str(recipe), code=0)
    assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout and "\u202e" not in proc.stdout
    assert "evil\\x1b[2J\\x07\\u202ename" in proc.stdout


# --------------------------------------------------------------------------------------------
# Downloads


def _reply(data: bytes):
    def handler(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(data)

    return handler


@pytest.mark.parametrize(
    ("name", "reply"),
    [
        ("bad-status-line", b"NOT HTTP AT ALL\r\n\r\n"),
        ("too-many-headers", b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 150 + b"\r\n"),
        ("huge-header", b"HTTP/1.1 200 OK\r\nX-A: " + b"b" * 70000 + b"\r\n\r\n"),
        (
            "truncated-chunked",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100\r\nabc",
        ),
    ],
)
def test_malformed_http_responses_are_one_line(tmp_path, name, reply) -> None:
    with raw_server(_reply(reply)) as url:
        proc = fetch(tmp_path, url, timeout=30)
    line = error_line(proc)
    assert f"could not fetch {url} (" in line and "--source libfoo=PATH" in line
    assert not list((tmp_path / "work" / "cache").glob("**/libfoo-1.0.tar.gz"))


def test_unusable_cache_dir_is_one_line(tmp_path) -> None:
    recipe = _project(tmp_path)
    blocker = _write(tmp_path / "work" / "file", "x")
    args = ["sources", "fetch", str(recipe), "libfoo", "--cache-dir", str(blocker / "cache")]
    proc = run_cli(tmp_path, *args)
    assert "unusable cache directory" in error_line(proc)


# --------------------------------------------------------------------------------------------
# Source archives


def _noise(n: int) -> bytes:
    return random.Random(n).randbytes(n)


def _truncated(mode: str) -> bytes:
    data = make_tar({"libfoo-1.0/big.bin": _noise(300_000), "libfoo-1.0/README": "x"}, mode=mode)
    return data[: len(data) // 2]


def _encrypted_zip() -> bytes:
    data = bytearray(make_zip({"libfoo-1.0/README": "secret\n"}))
    # set the "encrypted" flag bit in the local and the central header
    for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(sig)
        data[at + off] |= 1
    return bytes(data)


def _duplicate_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf, pytest.warns(UserWarning):
        zf.writestr("libfoo-1.0/README", "one")
        zf.writestr("libfoo-1.0/README", "two")
    return buf.getvalue()


def _tar_with(*infos: tarfile.TarInfo) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for info in infos:
            tar.addfile(info, io.BytesIO(bytes(info.size)) if info.isreg() else None)
    return buf.getvalue()


def _hardlink_to_missing() -> bytes:
    link = tarfile.TarInfo("libfoo-1.0/link")
    link.type, link.linkname = tarfile.LNKTYPE, "libfoo-1.0/nowhere"
    return _tar_with(tarfile.TarInfo("libfoo-1.0/README"), link)


def _long_path() -> bytes:
    return _tar_with(tarfile.TarInfo("libfoo-1.0/" + "a" * 300))


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("truncated.tar.gz", _truncated("w:gz"), "unreadable archive"),
        ("truncated.tar.xz", _truncated("w:xz"), "unreadable archive"),
        ("encrypted.zip", _encrypted_zip(), "encrypted"),
        ("duplicate.zip", _duplicate_zip(), "duplicate member name"),
        ("hardlink.tar.gz", _hardlink_to_missing(), "which is not an earlier member"),
        ("longpath.tar.gz", _long_path(), "path longer than the file system allows"),
    ],
)
def test_malformed_archives_are_one_line(tmp_path, name, data, message) -> None:
    archive = _write(tmp_path / "in" / name, data)
    recipe = _project(tmp_path)
    dest = tmp_path / "work" / "dest"
    args = ["sources", "extract", str(recipe), "libfoo", str(dest), "--source", f"libfoo={archive}"]
    proc = run_cli(tmp_path, *args)
    assert message in error_line(proc)
    assert not dest.exists() and {p.name for p in dest.parent.iterdir()} == {"home", "tmp", "cache"}


def test_fifo_in_a_source_directory_is_one_line(tmp_path) -> None:
    src = tmp_path / "in" / "libfoo"
    _write(src / "README", "x")
    os.mkfifo(src / "pipe")
    recipe = _project(tmp_path)
    dest = tmp_path / "work" / "dest"
    args = ["sources", "extract", str(recipe), "libfoo", str(dest), "--source", f"libfoo={src}"]
    proc = run_cli(tmp_path, *args, timeout=30)
    assert "pipe is not a regular file, directory or symlink" in error_line(proc)
    assert not dest.exists()


# --------------------------------------------------------------------------------------------
# Audit and compare


def _corrupt_member(tmp_path: Path, method: int) -> Path:
    wheel = tmp_path / "in" / "pkg-1.0-cp313-cp313-win_amd64.whl"
    wheel.parent.mkdir(parents=True, exist_ok=True)
    text = b"".join(b"line %d of a module that compresses well\n" % i for i in range(20000))
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("pkg/_ext.pyd", text, compress_type=method)
        zf.writestr("pkg-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\n")
    data = bytearray(wheel.read_bytes())
    start = data.find(b"pkg/_ext.pyd") + len("pkg/_ext.pyd") + 40
    for i in range(start, start + 2000, 7):  # scramble the compressed stream
        data[i] ^= 0x5A
    wheel.write_bytes(bytes(data))
    return wheel


@pytest.mark.parametrize(
    ("method", "what"), [(zipfile.ZIP_DEFLATED, "decompressing"), (zipfile.ZIP_LZMA, "")]
)
@pytest.mark.parametrize("command", ["audit", "compare"])
def test_corrupt_compressed_members_are_one_line(tmp_path, method, what, command) -> None:
    wheel = _corrupt_member(tmp_path, method)
    if method == zipfile.ZIP_DEFLATED:  # the case is the decompressor's error, not the CRC's
        with zipfile.ZipFile(wheel) as zf, pytest.raises(Exception, match="decompressing"):
            zf.read("pkg/_ext.pyd")
    else:
        with zipfile.ZipFile(wheel) as zf, pytest.raises(lzma.LZMAError):
            zf.read("pkg/_ext.pyd")
    args = [command, str(wheel)] + ([str(wheel)] if command == "compare" else [])
    proc = run_cli(tmp_path, *args)
    assert "cannot read from the wheel" in error_line(proc)


def test_sbom_of_the_wrong_json_type_is_ignored(tmp_path) -> None:
    sbom = {"pillow-13.0.0+nanoserver.dist-info/sboms/x.cdx.json": b"[1, 2, 3]"}
    a = make_wheel(tmp_path / "in" / "a", files=sbom)
    b = make_wheel(tmp_path / "in" / "b")
    proc = run_cli(tmp_path, "compare", str(a), str(b), "--json", code=None)
    assert proc.returncode in (0, 1), proc.stderr
    json.loads(proc.stdout)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_manifest_with_nan_is_refused_not_printed(tmp_path, constant) -> None:
    a = make_wheel(tmp_path / "in" / "a", rungs={})
    raw = zipfile.ZipFile(a)
    members = {n: raw.read(n) for n in raw.namelist()}
    raw.close()
    name = next(n for n in members if n.endswith("pillow_variants.manifest.json"))
    members[name] = b'{"format_version": 1, "rungs": {}, "size": %s}' % constant.encode()
    with zipfile.ZipFile(a, "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data)
    proc = run_cli(tmp_path, "compare", str(a), str(a), "--json")
    assert f"{constant} is not a JSON value" in error_line(proc)
    assert constant not in proc.stdout


# --------------------------------------------------------------------------------------------
# Surfaces


@pytest.fixture(scope="module")
def apiset_user(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pefactory import build_pe

    d = tmp_path_factory.mktemp("apiset")
    return build_pe(d, "user.pyd", imports={"api-ms-win-pv-test-l1-1-0.dll": ["Fn"]})


def _surface(path: Path, apisets: dict) -> Path:
    profile = {"format": 1, "name": "t", "kind": "captured", "dlls": {}, "apisets": apisets}
    from pillow_variants.audit.surface import FORMAT

    profile["format"] = FORMAT
    return _write(path, json.dumps(profile))


def test_apiset_cycle_is_a_verdict_not_a_recursion(tmp_path, apiset_user) -> None:
    surface = _surface(
        tmp_path / "in" / "s.json",
        {
            "api-ms-win-pv-test-l1-1": {"hosts": ["api-ms-win-pv-other-l1-1-0.dll"]},
            "api-ms-win-pv-other-l1-1": {"hosts": ["api-ms-win-pv-test-l1-1-0.dll"]},
        },
    )
    args = ["audit", str(apiset_user), "--surface", str(surface), "--policy", "surface"]
    proc = run_cli(tmp_path, *args, code=1)
    assert "error 126" in proc.stdout
    assert "API set api-ms-win-pv-test-l1-1 -> api-ms-win-pv-other-l1-1-0.dll" in proc.stdout


@pytest.mark.parametrize(
    "entry", [{}, {"hosts": "kernel32.dll"}, [], {"hosts": [], "exceptions": []}]
)
def test_apiset_entry_with_missing_or_wrong_keys_is_one_line(tmp_path, apiset_user, entry) -> None:
    surface = _surface(tmp_path / "in" / "s.json", {"api-ms-win-pv-test-l1-1": entry})
    proc = run_cli(tmp_path, "audit", str(apiset_user), "--surface", str(surface))
    assert "malformed surface profile" in error_line(proc)


def test_surface_capture_to_a_missing_directory_is_one_line(tmp_path) -> None:
    system32 = tmp_path / "in" / "System32"
    system32.mkdir(parents=True)
    out = tmp_path / "work" / "missing" / "p.json"
    args = ["surface", "capture", str(system32), "--image", "i", "--digest", "sha256:" + "0" * 64]
    proc = run_cli(tmp_path, *args, "-o", str(out))
    assert "the output directory" in error_line(proc) and "does not exist" in error_line(proc)


# --------------------------------------------------------------------------------------------
# SDKs


@pytest.mark.parametrize("content", ["not json", "[1, 2]", "{}", '{"python": "3.13"}', "NaN"])
def test_bad_sdk_json_is_one_line(tmp_path, content) -> None:
    root = tmp_path / "in" / "sdk"
    _write(root / "sdk.json", content)
    proc = run_cli(tmp_path, "sdk", "show", str(root))
    assert "sdk.json: not a valid sdk.json" in error_line(proc)


def test_garbage_python_dll_in_python_dir_is_one_line(tmp_path) -> None:
    wheel = make_wheel(tmp_path / "in")
    pydir = tmp_path / "in" / "python"
    _write(pydir / "python313.dll", b"this is not a DLL" * 100)
    proc = run_cli(tmp_path, "verify", "wine", str(wheel), "--python-dir", str(pydir))
    assert "python313.dll: not a readable Windows DLL" in error_line(proc)


def test_surface_profile_with_nan_is_refused_not_printed(tmp_path, apiset_user) -> None:
    surface = _surface(tmp_path / "in" / "s.json", {})
    surface.write_text(surface.read_text().replace('"dlls": {}', '"dlls": {}, "os": {"b": NaN}'))
    args = ["audit", str(apiset_user), "--surface", str(surface), "--json"]
    proc = run_cli(tmp_path, *args)
    assert "NaN is not a JSON value" in error_line(proc) and "NaN" not in proc.stdout


# --------------------------------------------------------------------------------------------
# The input fuzzer (nox -s fuzz runs it for thousands of inputs)


def test_fuzz_inputs_finds_no_crash(tmp_path) -> None:
    script = Path(__file__).resolve().parents[1] / "scripts" / "fuzz_inputs.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--iterations", "150", "--random-seed", "7"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "fuzz: 150 inputs, 0 crashes" in proc.stdout
