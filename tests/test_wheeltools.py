"""wheeltools: deterministic rewrites (byte-identical wheels), RECORD, provenance placement."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from pathlib import Path

import jsonschema
import pytest

from httpserver import validate_json
from pillow_variants.errors import UserError
from pillow_variants.wheeltools import (
    MANIFEST_NAME,
    SBOM_NAME,
    WheelError,
    add_files,
    embed_provenance,
    read_manifest,
    record_hash,
    zip_date_time,
)
from wheelfactory import ALL_PASSED, make_wheel

MANIFEST = {"format_version": 1, "recipe": {"name": "nanoserver"}, "rungs": ALL_PASSED}
SBOM = {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, "components": []}


def _scrambled_copy(src: Path, dest: Path) -> Path:
    """The same files in reverse order, other timestamps, other modes, stored uncompressed."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w") as zout:
        for i, info in enumerate(reversed(zin.infolist())):
            new = zipfile.ZipInfo(info.filename, (2020, 1 + i % 12, 1, 12, 0, 0))
            new.external_attr = (0o100777 if i % 2 else 0o100600) << 16
            zout.writestr(new, zin.read(info), compress_type=zipfile.ZIP_STORED)
    return dest


def test_embed_provenance_twice_on_the_same_input_is_byte_identical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    src = make_wheel(tmp_path, files={"PIL/_imaging.cp313-win_amd64.pyd": b"MZ" + bytes(100)})
    out1 = embed_provenance(src, MANIFEST, SBOM, out=tmp_path / "one.whl")
    out2 = embed_provenance(src, MANIFEST, SBOM, out=tmp_path / "two.whl")
    assert out1.read_bytes() == out2.read_bytes()

    # The input's zip order, timestamps, modes and compression do not leak into the output.
    scrambled = _scrambled_copy(src, tmp_path / "scrambled.whl")
    assert scrambled.read_bytes() != src.read_bytes()
    out3 = embed_provenance(scrambled, MANIFEST, SBOM, out=tmp_path / "three.whl")
    assert out3.read_bytes() == out1.read_bytes()

    # A different SOURCE_DATE_EPOCH is a different input, hence (only) different timestamps.
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1710000000")
    out4 = embed_provenance(src, MANIFEST, SBOM, out=tmp_path / "four.whl")
    assert out4.read_bytes() != out1.read_bytes()
    with zipfile.ZipFile(out1) as a, zipfile.ZipFile(out4) as b:
        assert [(i.filename, i.CRC) for i in a.infolist()] == [
            (i.filename, i.CRC) for i in b.infolist()
        ]


def test_provenance_goes_to_dist_info_and_pep770_sboms(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path)
    embed_provenance(wheel, MANIFEST, SBOM)
    dist_info = "pillow-13.0.0+nanoserver.dist-info"
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert json.loads(zf.read(f"{dist_info}/{MANIFEST_NAME}")) == MANIFEST
        assert json.loads(zf.read(f"{dist_info}/sboms/{SBOM_NAME}")) == SBOM
        infos = zf.infolist()
    assert read_manifest(wheel) == MANIFEST
    # .dist-info last, RECORD very last; the rest sorted.
    assert names[-1] == f"{dist_info}/RECORD"
    first_dist_info = next(i for i, n in enumerate(names) if n.startswith(dist_info))
    assert all(n.startswith(dist_info) for n in names[first_dist_info:])
    assert names[:first_dist_info] == sorted(names[:first_dist_info])
    # Fixed permissions and timestamps (no SOURCE_DATE_EPOCH in make_wheel's call → its epoch).
    assert {i.external_attr >> 16 for i in infos} == {0o100644}
    assert len({i.date_time for i in infos}) == 1


def test_record_lists_every_file_with_its_hash(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path)
    add_files(wheel, {"{dist_info}/extra.txt": b"hello\n", "PIL/new.py": b"x = 1\n"})
    with zipfile.ZipFile(wheel) as zf:
        dist_info = "pillow-13.0.0+nanoserver.dist-info"
        rows = list(csv.reader(io.StringIO(zf.read(f"{dist_info}/RECORD").decode())))
        assert sorted(r[0] for r in rows) == sorted(zf.namelist())
        for path, digest, size in rows:
            if path.endswith("/RECORD"):
                assert (digest, size) == ("", "")
                continue
            data = zf.read(path)
            assert digest == record_hash(data) and int(size) == len(data)
    assert record_hash(b"") == "sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"


def test_signatures_over_record_are_dropped(tmp_path: Path) -> None:
    dist_info = "pillow-13.0.0+nanoserver.dist-info"
    wheel = make_wheel(tmp_path, files={f"{dist_info}/RECORD.jws": b"{}"})
    add_files(wheel, {"PIL/x.py": b""})
    with zipfile.ZipFile(wheel) as zf:
        assert f"{dist_info}/RECORD.jws" not in zf.namelist()


def test_zip_timestamps_clamp_to_1980_and_follow_source_date_epoch() -> None:
    assert zip_date_time(None) == (1980, 1, 1, 0, 0, 0)
    assert zip_date_time(0) == (1980, 1, 1, 0, 0, 0)
    assert zip_date_time(1700000000) == (2023, 11, 14, 22, 13, 20)


def test_bad_input_is_a_one_line_user_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    junk = tmp_path / "junk.whl"
    junk.write_bytes(b"not a zip")
    with pytest.raises(WheelError, match="not a readable wheel"):
        read_manifest(junk)
    nodist = tmp_path / "x-1-py3-none-any.whl"
    with zipfile.ZipFile(nodist, "w") as zf:
        zf.writestr("x.py", "")
    with pytest.raises(WheelError, match="no .dist-info"):
        add_files(nodist, {})
    wheel = make_wheel(tmp_path)
    with pytest.raises(UserError, match="not a relative path"):
        add_files(wheel, {"../evil": b""})
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(UserError, match="SOURCE_DATE_EPOCH"):
        add_files(wheel, {})


def test_rewrite_keeps_content(tmp_path: Path) -> None:
    payload = hashlib.sha256(b"seed").digest() * 1000
    wheel = make_wheel(tmp_path, files={"PIL/data.bin": payload})
    add_files(wheel, {"PIL/more.txt": b"more"})
    with zipfile.ZipFile(wheel) as zf:
        assert zf.read("PIL/data.bin") == payload
        assert zf.testzip() is None


def test_manifest_layout_matches_its_schema() -> None:
    manifest = dict(
        MANIFEST,
        sources={
            "libtiff": {
                "component": "libtiff",
                "version": "4.7.2",
                "kind": "url",
                "origin": "https://download.example/tiff-4.7.2.tar.gz",
                "sha256": "ab" * 32,
                "local": False,
                "verified": True,
                "note": "sha256 verified against the recipe",
            }
        },
        patches={"libtiff": [{"name": "0001-createfilemappingw.patch", "sha256": "cd" * 32}]},
        toolchain={"cc": "zig cc"},
    )
    validate_json(manifest, "build-manifest.schema.json")
    with pytest.raises(jsonschema.ValidationError, match="'maybe' is not of type 'boolean'"):
        validate_json({"rungs": {"wine": {"passed": "maybe"}}}, "build-manifest.schema.json")
