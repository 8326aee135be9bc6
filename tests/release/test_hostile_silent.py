"""Silent passes: an audit of nothing, or a publish on the word of a wheel's own manifest.

``audit`` of an empty directory, of a wheel without PE files, or of a tree it could not fully
read must not exit 0; ``publish`` must not upload a wheel whose METADATA names another project,
nor one whose manifest claims audit rungs that its content (no PE file, a GUI import) fails.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from publishing import Index, creds_env, publish_log, run_cli

from pefactory import build_pe
from pillow_variants.cli import main
from pillow_variants.wheeltools import write_wheel
from wheelfactory import ALL_PASSED, make_wheel

MANIFEST = {"recipe": {"name": "nanoserver", "audit": {"policy": "both"}}, "rungs": ALL_PASSED}


def _one_error_line(proc) -> str:  # type: ignore[no-untyped-def]
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert lines and lines[-1].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[-1]


# --------------------------------------------------------------------------------------------
# audit


def test_audit_of_nothing_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    no_pe = tmp_path / "no-pe"
    (no_pe / "PIL").mkdir(parents=True)
    (no_pe / "PIL" / "__init__.py").write_text("")
    (no_pe / "PIL" / "_imaging.pyd.txt").write_text("not a module")
    wheel = make_wheel(tmp_path / "w", rungs=ALL_PASSED)
    for target in (empty, no_pe, wheel):
        for extra in ([], ["--json"], ["--policy", "strict"]):
            proc = run_cli("audit", str(target), *extra)
            assert proc.stdout == ""
            line = _one_error_line(proc)
            assert line.startswith(f"error: no PE files in {target} "), line
    # one target with modules does not hide another without
    good = tmp_path / "good"
    build_pe(good, "m.pyd", imports={"KERNEL32.dll": ["Sleep"]})
    assert run_cli("audit", str(good)).returncode == 0
    assert "no PE files in " + str(empty) in _one_error_line(
        run_cli("audit", str(good), str(empty))
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "good", "no-pe", "w"]


def test_audit_of_a_tree_with_an_unreadable_directory_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """os.walk skips what it cannot list; the audit must say so instead of passing."""
    tree = tmp_path / "tree"
    build_pe(tree, "ok.pyd", imports={"KERNEL32.dll": ["Sleep"]})
    hidden = tree / "sub"
    build_pe(hidden, "gui.pyd", imports={"USER32.dll": ["GetDC"]})  # would fail the audit
    for p in hidden.iterdir():
        if p.is_dir():  # build_pe's work directory
            for f in p.iterdir():
                f.unlink()
            p.rmdir()
    hidden.chmod(0)
    if os.geteuid() == 0:  # root reads any directory: apply the permission check root skips
        real = os.scandir

        def scandir(path=".") -> os.ScandirIterator:  # type: ignore[no-untyped-def, type-arg]
            if not stat.S_IMODE(os.stat(path).st_mode) & stat.S_IRUSR:
                raise PermissionError(13, "Permission denied", os.fspath(path))
            return real(path)

        monkeypatch.setattr(os, "scandir", scandir)
    try:
        code = main(["audit", str(tree)])
        monkeypatch.undo()
    finally:
        hidden.chmod(0o755)
    out, err = capsys.readouterr()
    assert code == 2, out + err
    assert out == ""
    assert err == f"error: {hidden}: cannot list (Permission denied)\n"


# --------------------------------------------------------------------------------------------
# publish


def _publish(wheel: Path, index: Index, *extra: str):  # type: ignore[no-untyped-def]  # noqa: F811
    return run_cli("publish", str(wheel), "--repository-url", index.url, *extra, env=creds_env())


def test_a_wheel_without_pe_files_cannot_claim_audit_rungs(index: Index, tmp_path: Path) -> None:  # noqa: F811
    wheel = make_wheel(tmp_path, version="13.0.0+nope", manifest=MANIFEST)
    line = _one_error_line(_publish(wheel, index))
    assert "strict: the pre-upload audit failed: the wheel contains no PE file" in line, line
    assert "surface: the pre-upload audit failed" in line and "nothing was uploaded" in line
    log = publish_log(wheel)
    assert log["status"] == "refused" and log["audit"]["pe_files"] == 0

    # allowing the rungs to be missing is not enough when the manifest says they passed
    allowed = _publish(wheel, index, "--allow-missing-rungs", "strict", "surface")
    line = _one_error_line(allowed)
    assert "the pre-upload audit failed rungs the manifest says passed" in line, line
    assert "--force" in line
    assert not (index.packages / wheel.name).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [wheel.name, wheel.name + ".publish.json"]

    forced = _publish(wheel, index, "--force")
    assert forced.returncode == 0, forced.stderr
    assert publish_log(wheel)["overrides"]["audit_failed"] is True


def test_a_wheel_whose_manifest_lies_about_an_unrequired_rung_is_refused(
    index: Index,  # noqa: F811
    tmp_path: Path,
    gui_pyd: dict[str, bytes],  # noqa: F811
) -> None:
    wheel = make_wheel(tmp_path, version="13.0.0+lies", manifest=MANIFEST, files=gui_pyd)
    line = _one_error_line(_publish(wheel, index, "--require-rungs", "wine"))
    assert "the pre-upload audit failed rungs the manifest says passed (strict: " in line, line
    assert "GetDC" in line
    assert not (index.packages / wheel.name).exists()


def _wheel_as(tmp_path: Path, filename: str, files: dict[str, bytes], **kw: str) -> Path:
    built = make_wheel(tmp_path / "build", files=files, manifest=MANIFEST, **kw)
    return built.rename(tmp_path / filename)


@pytest.mark.parametrize(
    "name, version, expected",
    [
        ("other", "6.6.6", "METADATA says other 6.6.6, the file name pillow 13.0.0+meta"),
        ("pillow", "13.0.0+other", "METADATA says pillow 13.0.0+other, the file name pillow"),
        ("Pillow", "13.0.0+META", None),  # same project and version, other spelling: fine
    ],
)
def test_metadata_must_match_the_file_name(
    index: Index,  # noqa: F811
    tmp_path: Path,
    pyd: dict[str, bytes],  # noqa: F811
    name: str,
    version: str,
    expected: str | None,
) -> None:
    wheel = _wheel_as(
        tmp_path, "pillow-13.0.0+meta-cp313-cp313-win_amd64.whl", pyd, name=name, version=version
    )
    if expected is None:
        assert _publish(wheel, index).returncode == 0
        return
    for extra in ([], ["--force"]):  # not overridable
        line = _one_error_line(_publish(wheel, index, *extra))
        assert expected in line, line
        assert not (index.packages / wheel.name).exists()
        assert publish_log(wheel)["status"] == "refused"


@pytest.mark.parametrize(
    "metadata, dist_info, expected",
    [
        (b"Name: pillow\nVersion: 13.0.0+d\n", "other-1.0", "the .dist-info directory other-1.0"),
        (b"Name: pillow\nName: other\nVersion: 13.0.0+d\n", None, "2 'Name' fields"),
        (b"Name: pillow\nVersion: not a version\n", None, "is not a valid version"),
        (None, None, "the wheel has no .dist-info/METADATA"),
        # a byte that is not UTF-8 and a folded header: one line, and the log stays writable
        (b"Name: pill\xffow\n x\nVersion: 13.0.0+d\n", None, "METADATA says pill\ufffdow x 13"),
    ],
)
def test_malformed_metadata_is_refused(
    index: Index,  # noqa: F811
    tmp_path: Path,
    pyd: dict[str, bytes],  # noqa: F811
    metadata: bytes | None,
    dist_info: str | None,
    expected: str,
) -> None:
    di = f"{dist_info or 'pillow-13.0.0+d'}.dist-info"
    content = {**pyd, f"{di}/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: false\n"}
    content[f"{di}/pillow_variants.manifest.json"] = b'{"rungs": {}}'
    if metadata is not None:
        content[f"{di}/METADATA"] = b"Metadata-Version: 2.1\n" + metadata
    wheel = write_wheel(tmp_path / "pillow-13.0.0+d-cp313-cp313-win_amd64.whl", content)
    line = _one_error_line(_publish(wheel, index, "--force"))
    assert expected in line, line
    assert not (index.packages / wheel.name).exists()
    assert publish_log(wheel)["status"] == "refused"


def test_a_manifest_cannot_point_the_audit_at_a_file(
    index: Index,  # noqa: F811
    tmp_path: Path,
    pyd: dict[str, bytes],  # noqa: F811
) -> None:
    """The surface comes from data inside the wheel: only built-in profile names are used."""
    profile = tmp_path / "everything.json"
    profile.write_text('{"name": "x"}')
    manifest = {"recipe": {"audit": {"surface": str(profile)}}, "rungs": ALL_PASSED}
    wheel = make_wheel(tmp_path / "w", version="13.0.0+surf", manifest=manifest, files=pyd)
    line = _one_error_line(_publish(wheel, index))
    assert f"names the audit surface '{profile}', which is not a built-in profile" in line, line
    assert not (index.packages / wheel.name).exists()
