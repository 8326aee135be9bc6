"""Headers from Debian's binary libpython3.X-dev (3.14, 3.15), without the network: the pins,
the .deb reader (hostile members), the Windows pyconfig.h derived from 3.13's PC/pyconfig.h.in,
the download from the configured mirror (a local HTTP server) and the SDK's provenance."""

from __future__ import annotations

import io
import re
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from httpserver import make_tar, serve, sha256, validate_json
from pillow_variants.build import pysdk
from pillow_variants.cli.main_sdk import format_sdk
from pillow_variants.errors import SourceError
from pillow_variants.sources import aptsrc

#: The version-specific lines of CPython 3.13's PC/pyconfig.h.in, verbatim, in a shortened file.
TEMPLATE = """#ifndef Py_CONFIG_H
#define Py_CONFIG_H
#define MS_WIN64
#ifndef Py_GIL_DISABLED
/* #define Py_GIL_DISABLED 1 */
#endif
#if defined(MS_COREDLL) && !defined(Py_BUILD_CORE)
#                       if defined(Py_GIL_DISABLED)
#                       if defined(_DEBUG)
#                               pragma comment(lib,"python313t_d.lib")
#                       elif defined(Py_LIMITED_API)
#                               pragma comment(lib,"python3t.lib")
#                       else
#                               pragma comment(lib,"python313t.lib")
#                       endif /* _DEBUG */
#                       else /* Py_GIL_DISABLED */
#                       if defined(_DEBUG)
#                               pragma comment(lib,"python313_d.lib")
#                       elif defined(Py_LIMITED_API)
#                               pragma comment(lib,"python3.lib")
#                       else
#                               pragma comment(lib,"python313.lib")
#                       endif /* _DEBUG */
#                       endif /* Py_GIL_DISABLED */
#endif
#define SIZEOF_LONG 4
#endif
"""

HEADERS = {
    "Python.h": b"#include <pyconfig.h>\n#include <object.h>\n",
    "patchlevel.h": b'#define PY_VERSION "3.99.2"\n',
    "object.h": b"PyAPI_FUNC(PyObject *) PyObject_Repr(PyObject *);\n"
    b"PyAPI_DATA(PyTypeObject) PyType_Type;\n",
    "cpython/object.h": b"/* cpython */\n",
}


def _ar(members: dict[str, bytes]) -> bytes:
    out = bytearray(b"!<arch>\n")
    for name, data in members.items():
        header = f"{name:<16}{0:<12}{0:<6}{0:<6}{0o100644:<8o}{len(data):<10}`\n"
        out += header.encode("ascii") + data + (b"\n" if len(data) % 2 else b"")
    return bytes(out)


def _data_tar(files: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


def _deb(tmp_path: Path, data: bytes, name: str = "libpython3.99-dev_3.99.2-1_amd64.deb") -> Path:
    control = make_tar({"./control": b"Package: libpython3.99-dev\n"}, mode="w:xz")
    deb = tmp_path / name
    deb.write_bytes(
        _ar({"debian-binary": b"2.0\n", "control.tar.xz": control, "data.tar.xz": data})
    )
    return deb


def _good_deb(tmp_path: Path) -> Path:
    files = {f"./usr/include/python3.99/{k}": v for k, v in HEADERS.items()}
    files["./usr/include/python3.99/pyconfig.h"] = b"#include <x86_64-linux-gnu/...>\n"
    files["./usr/include/x86_64-linux-gnu/python3.99/pyconfig.h"] = b"#define HAVE_FORK 1\n"
    files["./usr/lib/x86_64-linux-gnu/libpython3.99.a"] = b"!<arch>\n"
    links = {"./usr/include/python3.99/evil.h": "/etc/passwd"}
    return _deb(tmp_path, _data_tar(files, links))


def test_pins_for_314_and_315_are_binary_debs_with_a_pyconfig_source() -> None:
    pins = pysdk.load_pins()
    for py in ("3.14", "3.15"):
        pin = pins[py].headers_deb
        assert pin is not None and pins[py].headers is None and pins[py].embed is None
        assert pin.package == f"libpython{py}-dev" and pin.debian_source == f"python{py}"
        assert pin.pool_path == (
            f"pool/main/p/python{py}/libpython{py}-dev_{pin.debian_version}_amd64.deb"
        )
        assert re.fullmatch(r"[0-9a-f]{64}", pin.sha256)
        assert pin.suite in aptsrc.SUITES
        assert pins[pin.pyconfig_from].headers is not None  # its PC/pyconfig.h.in is pinned


def test_extract_deb_headers_takes_include_without_the_linux_pyconfig(tmp_path: Path) -> None:
    include = pysdk.extract_deb_headers(_good_deb(tmp_path), "3.99", tmp_path / "sdk")
    got = sorted(p.relative_to(include).as_posix() for p in include.rglob("*"))
    assert got == ["Python.h", "cpython", "cpython/object.h", "object.h", "patchlevel.h"]
    assert (include / "object.h").read_bytes() == HEADERS["object.h"]
    assert not (include / "evil.h").exists() and not (include / "evil.h").is_symlink()


@pytest.mark.parametrize(
    "name",
    [
        "./usr/include/python3.99/../../../../evil.h",
        "../evil.h",
        "/tmp/evil.h",
    ],
)
def test_extract_deb_headers_refuses_unsafe_members(name: str, tmp_path: Path) -> None:
    files = {f"./usr/include/python3.99/{k}": v for k, v in HEADERS.items()}
    files[name] = b"owned\n"
    deb = _deb(tmp_path, _data_tar(files))
    with pytest.raises(SourceError, match="unsafe path"):
        pysdk.extract_deb_headers(deb, "3.99", tmp_path / "out" / "sdk")
    assert not list(tmp_path.rglob("evil.h"))


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"PK\x03\x04 not an ar archive", "no ar archive header"),
        (_ar({"debian-binary": b"2.0\n", "control.tar.xz": b""}), "no data.tar"),
        (_ar({"debian-binary": b"3.0\n", "data.tar.xz": b""}), "not a Debian binary package"),
        (_ar({"debian-binary": b"2.0\n", "data.tar.xz": b"garbage"}), "unreadable data.tar.xz"),
        (_ar({"debian-binary": b"2.0\n"})[:-3], "truncated ar member"),
        (b"!<arch>\n" + b"x" * 60, "corrupt ar member header"),
    ],
)
def test_extract_deb_headers_refuses_what_is_not_a_deb(
    data: bytes, error: str, tmp_path: Path
) -> None:
    deb = tmp_path / "x.deb"
    deb.write_bytes(data)
    with pytest.raises(SourceError, match=error):
        pysdk.extract_deb_headers(deb, "3.99", tmp_path / "sdk")


def test_extract_deb_headers_needs_this_versions_python_h(tmp_path: Path) -> None:
    deb = _deb(tmp_path, _data_tar({"./usr/include/python3.98/Python.h": b"\n"}))
    with pytest.raises(SourceError, match="no usr/include/python3.99/Python.h"):
        pysdk.extract_deb_headers(deb, "3.99", tmp_path / "sdk")


def test_derive_windows_pyconfig_renames_the_import_libraries(tmp_path: Path) -> None:
    text = pysdk.derive_windows_pyconfig(TEMPLATE, "3.13", "3.14")
    for lib in ("python314t_d.lib", "python314t.lib", "python314_d.lib", "python314.lib"):
        assert f'pragma comment(lib,"{lib}")' in text
    assert "python313" not in text
    assert 'pragma comment(lib,"python3.lib")' in text  # the limited API's name has no version
    assert text.startswith("/* pillow-variants: CPython 3.14's Windows pyconfig.h, derived")
    # only those four lines (and the note) differ from the template
    changed = set(text.splitlines()) - set(TEMPLATE.splitlines())
    assert len(changed) == 4 + 2
    # the free-threaded build turns on Py_GIL_DISABLED as for an upstream PC/pyconfig.h.in
    pyconfig = tmp_path / "pyconfig.h"
    pyconfig.write_text(text)
    pysdk.enable_free_threading(pyconfig)
    assert "\n#define Py_GIL_DISABLED 1\n" in pyconfig.read_text()


@pytest.mark.parametrize(
    ("edit", "error"),
    [
        (lambda t: t.replace('pragma comment(lib,"python313_d.lib")', ""), "import library pra"),
        (lambda t: t.replace("python313", "python312"), "import library pragmas"),
        (lambda t: t.replace("#define MS_WIN64\n", ""), "no '#define MS_WIN64'"),
        (lambda t: t.replace("/* #define Py_GIL_DISABLED 1 */", ""), "no '/\\* #define Py_GIL"),
        (lambda t: t + '#define PY_DLL_NAME L"python313"\n', "outside the import library"),
        (lambda t: t + "/* CPython 3.13 only */\n", "outside the import library"),
    ],
    ids=["pragma-missing", "other-version", "no-win64", "no-gil-placeholder", "dll-name", "text"],
)
def test_derive_windows_pyconfig_refuses_an_unexpected_template(
    edit: Callable[[str], str], error: str
) -> None:
    with pytest.raises(
        SourceError, match=f"cannot derive CPython 3.14's Windows pyconfig.h.*{error}"
    ):
        pysdk.derive_windows_pyconfig(edit(TEMPLATE), "3.13", "3.14")


def test_windows_pyconfig_template_reads_pc_pyconfig_h_in(tmp_path: Path) -> None:
    orig = tmp_path / "python3.13_3.13.5.orig.tar.xz"
    files = {
        "Python-3.13.5/pyconfig.h.in": b"/* the POSIX one */\n",
        "Python-3.13.5/PC/pyconfig.h.in": TEMPLATE.encode(),
    }
    orig.write_bytes(make_tar(files, mode="w:xz"))
    assert pysdk.windows_pyconfig_template(orig) == TEMPLATE
    orig.write_bytes(make_tar({"Python-3.13.5/pyconfig.h.in": b"\n"}, mode="w:xz"))
    with pytest.raises(SourceError, match="no PC/pyconfig.h.in"):
        pysdk.windows_pyconfig_template(orig)


def test_debian_archive_uri_is_read_from_apt(tmp_path: Path) -> None:
    etc = tmp_path / "apt"
    (etc / "sources.list.d").mkdir(parents=True)
    (etc / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: x-security\n\n"
        "Types: deb\nURIs: http://mirror.example/debian/\nSuites: trixie\n"
    )
    assert aptsrc.debian_archive_uri(etc) == "http://mirror.example/debian"
    (etc / "sources.list.d" / "debian.sources").write_text("Types: deb\nURIs: http://x/ubuntu\n")
    with pytest.raises(SourceError, match="no Debian archive is configured"):
        aptsrc.debian_archive_uri(etc)


def _pin(deb: Path, digest: str) -> pysdk.DebHeadersPin:
    return pysdk.DebHeadersPin(
        "3.99",
        "libpython3.99-dev",
        "python3.99",
        "3.99.2-1",
        "sid",
        f"pool/main/p/python3.99/{deb.name}",
        digest,
        "3.13",
    )


def test_fetch_headers_deb_from_the_configured_mirror(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deb = _good_deb(tmp_path)
    data = deb.read_bytes()
    with serve() as server:
        monkeypatch.setattr(aptsrc, "debian_archive_uri", lambda: server.base + "/debian")
        server.files[f"debian/pool/main/p/python3.99/{deb.name}"] = data
        cache = tmp_path / "cache"
        got = pysdk.fetch_headers_deb(_pin(deb, sha256(data)), cache, progress=lambda m: None)
        assert got == cache.resolve() / "sdk" / "downloads" / deb.name
        assert got.read_bytes() == data
        assert pysdk.fetch_headers_deb(_pin(deb, sha256(data)), cache) == got  # cached
        assert len(server.requests) == 1
        with pytest.raises(SourceError, match="does not match the pinned"):
            pysdk.fetch_headers_deb(_pin(deb, "0" * 64), tmp_path / "c2")
        del server.files[f"debian/pool/main/p/python3.99/{deb.name}"]
        with pytest.raises(SourceError, match="cannot fetch pool/main/p/python3.99/.*404"):
            pysdk.fetch_headers_deb(_pin(deb, sha256(data)), tmp_path / "c3")
    assert not list((tmp_path / "c2").rglob("*.deb"))


@pytest.mark.parametrize("target", ["3.99", "3.99t"])
def test_sdk_from_a_binary_deb_records_the_derivation(
    target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deb = _good_deb(tmp_path)
    orig = tmp_path / "python3.13_3.13.5.orig.tar.xz"
    orig.write_bytes(make_tar({"Python-3.13.5/PC/pyconfig.h.in": TEMPLATE.encode()}, mode="w:xz"))
    template_pin = pysdk.HeadersPin(
        "3.13", "python3.13", "3.13.5-2", "trixie", "3.13.5", orig.name, sha256(orig.read_bytes())
    )
    pin = _pin(deb, sha256(deb.read_bytes()))
    pins = {
        "3.99": pysdk.PythonPins("3.99", None, None, headers_deb=pin),
        "3.13": pysdk.PythonPins("3.13", None, template_pin),
    }
    monkeypatch.setattr(pysdk, "load_pins", lambda: pins)
    monkeypatch.setattr(pysdk, "fetch_headers_deb", lambda *a, **k: deb)
    monkeypatch.setattr(pysdk, "fetch_headers_orig", lambda *a, **k: orig)
    cache = tmp_path / "cache"
    sdk = pysdk.prepare_sdk(target, cache_dir=cache, progress=lambda m: None)
    ft = target.endswith("t")
    include = Path(sdk.include_dirs[0])
    pyconfig = (include / "pyconfig.h").read_text()
    assert 'pragma comment(lib,"python399.lib")' in pyconfig and "python313" not in pyconfig
    assert ("\n#define Py_GIL_DISABLED 1\n" in pyconfig) is ft
    assert "HAVE_FORK" not in pyconfig  # not Debian's Linux one
    assert sdk.headers_version == "3.99.2" and not sdk.runtime
    headers = sdk.sources["headers"]
    assert headers["kind"] == "debian-binary" and headers["free_threaded"] is ft
    assert headers["package"] == "libpython3.99-dev=3.99.2-1" and headers["sha256"] == pin.sha256
    assert headers["pyconfig"]["inferred"] is True
    assert headers["pyconfig"]["from_sha256"] == template_pin.sha256
    assert "PC/pyconfig.h.in" in headers["pyconfig"]["from"]
    assert "python313 → python399" in headers["pyconfig"]["change"]
    assert sdk.sources["dlls"]["kind"] == "headers"
    assert sdk.sources["dlls"]["headers_sha256"] == pin.sha256
    definition = (Path(sdk.library_dirs[0]) / f"python{target.replace('.', '')}.def").read_text()
    assert "    PyType_Type DATA\n" in definition and "    PyObject_Repr\n" in definition
    validate_json(
        {"schema": "pillow-variants-sdk/1", "sdks": [sdk.to_dict()]}, "sdk-prepare.schema.json"
    )
    shown = format_sdk(sdk).splitlines()[3]
    assert shown.startswith("pyconfig.h  inferred: derived from python3.13_3.13.5.orig.tar.xz")
    said: list[str] = []
    assert pysdk.prepare_sdk(target, cache_dir=cache, progress=said.append) == sdk  # reused
    assert said == [f"SDK for Python {target} up to date in {sdk.root}"]
