"""publish against a real pypiserver (htpasswd auth) on 127.0.0.1, and pip installing from it.

The server runs as a subprocess exactly as a user would run it; uploads go through twine, the
checks through the simple API, and the final proof is ``pip download`` of the published
variant for another platform (win_amd64, CPython 3.13) with a hash comparison.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from publishing import AUDIT_STRICT, WRONG, Index, creds_env, publish_log, run_cli

from pillow_variants.hashing import file_sha256
from pillow_variants.release.publish import PublishRefused, publish, required_for, rung_problems
from pillow_variants.verify.ladder import record_rung
from pillow_variants.wheeltools import read_manifest
from wheelfactory import ALL_PASSED, download_official_wheel, make_wheel


def test_publish_verify_noop_and_pip_download(
    index: Index, tmp_path: Path, pyd: dict[str, bytes]
) -> None:
    manifest = {"recipe": AUDIT_STRICT, "rungs": ALL_PASSED}
    w313 = make_wheel(tmp_path, tag="cp313-cp313-win_amd64", manifest=manifest, files=pyd)
    w311 = make_wheel(tmp_path, tag="cp311-cp311-win_amd64", manifest=manifest, files=pyd)
    assert w313.name == "pillow-13.0.0+nanoserver-cp313-cp313-win_amd64.whl"

    first = run_cli("publish", str(w313), str(w311), "--repository-url", index.url, "--json",
                 env=creds_env())  # fmt: skip
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    assert [r["status"] for r in result["results"]] == ["uploaded", "uploaded"]
    for r, w in zip(result["results"], (w313, w311), strict=True):
        assert r["verified"]["sha256"] == file_sha256(w) == r["sha256"]
        assert r["audit"]["passed"] is True
        assert (index.packages / w.name).read_bytes() == w.read_bytes()
        assert publish_log(w)["status"] == "uploaded"
    assert "verified" in first.stderr

    again = run_cli("publish", str(w313), str(w311), "--repository-url", index.url, "--json",
                 env=creds_env())  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert [r["status"] for r in json.loads(again.stdout)["results"]] == ["already-present"] * 2
    assert "already on the index with the same sha256; nothing to upload" in again.stderr

    # The user's install path: pip, another platform and Python, credentials in the URL.
    dest = tmp_path / "pip"
    pip = subprocess.run(
        [
            sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
            "--no-cache-dir", "--only-binary", ":all:", "--platform", "win_amd64",
            "--python-version", "3.13", "--no-deps", "--dest", str(dest),
            "--index-url", index.with_credentials() + "simple",
            "pillow==13.0.0+nanoserver",
        ],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert pip.returncode == 0, pip.stdout + pip.stderr
    (got,) = dest.iterdir()
    assert got.name == w313.name
    assert file_sha256(got) == file_sha256(w313)


def test_wrong_password_is_clear_and_never_printed(
    index: Index, upload_only_auth_index: Index, tmp_path: Path, pyd: dict[str, bytes]
) -> None:
    wheel = make_wheel(
        tmp_path,
        tag="cp310-cp310-win_amd64",
        manifest={"recipe": AUDIT_STRICT, "rungs": ALL_PASSED},
        files=pyd,
    )
    attempts = [
        # twine's upload is refused (reads are anonymous on this index)
        (ro := upload_only_auth_index, ["--repository-url", ro.url], creds_env(WRONG)),
        (ro, ["--repository-url", ro.with_credentials(WRONG)], {}),
        # the simple API already refuses the pre-upload check
        (index, ["--repository-url", index.url], creds_env(WRONG)),
        (index, ["--repository-url", index.with_credentials(WRONG), "--json"], {}),
    ]  # fmt: skip
    for idx, args, env in attempts:
        proc = run_cli("publish", str(wheel), *args, env=env)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        out = proc.stdout + proc.stderr
        assert "403" in out or "401" in out, out
        assert "credentials" in out
        assert "Traceback" not in out
        log = wheel.with_name(wheel.name + ".publish.json")
        for text in (out, log.read_text() if log.exists() else "", idx.log.read_text()):
            assert WRONG not in text
            assert WRONG.replace("%", "%25") not in text
        assert not (idx.packages / wheel.name).exists()
    # the failure is logged beside the wheel, scrubbed
    assert publish_log(wheel)["status"] == "failed"


def test_missing_rungs_are_refused_and_overrides_recorded(
    index: Index, tmp_path: Path, gui_pyd: dict[str, bytes]
) -> None:
    # wine failed in the manifest; strict is not claimed, and publish's own audit fails it
    rungs = dict(ALL_PASSED, wine={"passed": False, "detail": "import failed under Wine"})
    rungs.pop("strict")
    rungs.pop("surface")
    wheel = make_wheel(
        tmp_path,
        tag="cp312-cp312-win_amd64",
        manifest={"recipe": {"audit": {"surface": "servercore-ltsc2022"}}, "rungs": rungs},
        files=gui_pyd,
    )
    refused = run_cli("publish", str(wheel), "--repository-url", index.url, env=creds_env())
    assert refused.returncode == 2
    assert "strict: the pre-upload audit failed: 1 error(s): gui-dll" in refused.stderr
    assert "wine: failed: import failed under Wine" in refused.stderr
    assert "surface:" not in refused.stderr  # servercore has GetDC: the surface rung passes
    assert "nothing was uploaded" in refused.stderr
    assert not (index.packages / wheel.name).exists()
    assert publish_log(wheel)["status"] == "refused"

    # Overriding one rung is not enough; both must be named (or --force).
    partial = run_cli("publish", str(wheel), "--repository-url", index.url,
                   "--allow-missing-rungs", "wine", env=creds_env())  # fmt: skip
    assert partial.returncode == 2 and "strict" in partial.stderr

    ok = run_cli("publish", str(wheel), "--repository-url", index.url,
              "--allow-missing-rungs", "wine", "strict", "--json", env=creds_env())  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    (r,) = json.loads(ok.stdout)["results"]
    assert r["status"] == "uploaded"
    assert r["overrides"]["overridden_rungs"] == ["strict", "wine"]
    assert r["missing_rungs"]["wine"].startswith("failed")
    assert r["audit"]["rungs"]["surface"]["passed"] is True
    assert publish_log(wheel)["overrides"] == r["overrides"]
    assert "override recorded" in ok.stderr


def test_wheel_without_manifest_needs_force(index: Index, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, version="13.0.0+nomanifest")
    refused = run_cli("publish", str(wheel), "--repository-url", index.url, env=creds_env())
    assert refused.returncode == 2
    assert "no pillow_variants.manifest.json" in refused.stderr
    forced = run_cli("publish", str(wheel), "--repository-url", index.url, "--force",
                  env=creds_env())  # fmt: skip
    assert forced.returncode == 0, forced.stderr
    log = publish_log(wheel)
    assert log["overrides"]["force"] is True
    assert log["overrides"]["overridden_rungs"] == ["strict", "surface", "wine"]


def test_a_different_file_under_a_published_name_is_an_error(
    index: Index, tmp_path: Path, pyd: dict[str, bytes]
) -> None:
    manifest = {"recipe": AUDIT_STRICT, "rungs": ALL_PASSED}
    first = make_wheel(tmp_path / "a", version="13.0.0+clash", manifest=manifest, files=pyd)
    assert run_cli("publish", str(first), "--repository-url", index.url,
                env=creds_env()).returncode == 0  # fmt: skip
    other = make_wheel(
        tmp_path / "b", version="13.0.0+clash", manifest=manifest, files={**pyd, "PIL/x.py": b"1"}
    )
    assert other.name == first.name
    proc = run_cli("publish", str(other), "--repository-url", index.url, env=creds_env())
    assert proc.returncode == 2
    assert "already has a different" in proc.stderr
    assert (index.packages / first.name).read_bytes() == first.read_bytes()


@pytest.mark.network
def test_the_pre_upload_audit_refuses_a_wheel_with_gui_imports(
    index: Index, tmp_path: Path, official_cms: bytes
) -> None:
    """A wheel whose manifest claims all rungs passed, but whose module imports USER32."""
    manifest = {"recipe": AUDIT_STRICT, "rungs": ALL_PASSED}
    wheel = make_wheel(
        tmp_path,
        version="13.0.0+audited",
        manifest=manifest,
        files={"PIL/_imagingcms.cp313-win_amd64.pyd": official_cms},
    )
    proc = run_cli("publish", str(wheel), "--repository-url", index.url, env=creds_env())
    assert proc.returncode == 2
    assert "pre-upload audit failed" in proc.stderr and "GetDC" in proc.stderr
    assert not (index.packages / wheel.name).exists()
    forced = run_cli("publish", str(wheel), "--repository-url", index.url, "--force",
                  env=creds_env())  # fmt: skip
    assert forced.returncode == 0, forced.stderr
    assert publish_log(wheel)["overrides"]["audit_failed"] is True


@pytest.fixture(scope="module")
def official_cms(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """PIL/_imagingcms from the official 13.0.0 cp313 wheel (imports USER32 GetDC/ReleaseDC)."""
    wheel = download_official_wheel(tmp_path_factory.mktemp("official"), "13.0.0", "3.13")
    with zipfile.ZipFile(wheel) as zf:
        return zf.read("PIL/_imagingcms.cp313-win_amd64.pyd")


def test_rung_problems_explain_each_rung() -> None:
    required = ["strict", "surface", "wine"]
    assert rung_problems({"rungs": ALL_PASSED}, required) == {}
    assert rung_problems(None, ["wine"]) == {
        "wine": "the wheel has no pillow_variants.manifest.json"
    }
    assert rung_problems({}, ["wine"]) == {"wine": "the manifest has no 'rungs' table"}
    # the table verify.record_rung() writes is what publish reads
    manifest: dict = {}
    for rung in required:
        record_rung(manifest, rung, {"passed": True})
    assert rung_problems(manifest, required) == {}
    got = rung_problems(
        {"rungs": {"strict": {"passed": "yes"}, "surface": {"detail": "x"}, "wine": {}}}, required
    )
    assert got == {
        "strict": "failed",
        "surface": "recorded without a 'passed' value",
        "wine": "recorded without a 'passed' value",
    }


def test_a_nanoserver_wheel_must_have_passed_wine_nogui(
    tmp_path: Path, pyd: dict[str, bytes]
) -> None:
    """Required whatever --require-rungs says; refused before any index is contacted."""
    rungs = {r: e for r, e in ALL_PASSED.items() if r != "wine-nogui"}
    wheel = make_wheel(tmp_path, manifest={"recipe": AUDIT_STRICT, "rungs": rungs}, files=pyd)
    assert required_for(wheel, read_manifest(wheel), ["wine"]) == ["wine", "wine-nogui"]
    with pytest.raises(PublishRefused, match="wine-nogui: not recorded"):
        publish([wheel], "http://127.0.0.1:9/", required_rungs=["strict", "surface", "wine"])
    # the same wheel named as upstream's build: Wine without GUI DLLs is not its promise
    upstream = {"name": "upstream", "audit": {"policy": "strict"}}
    plain = make_wheel(
        tmp_path / "up", version="13.0.0", manifest={"recipe": upstream, "rungs": rungs}
    )
    assert required_for(plain, read_manifest(plain), ["wine"]) == ["wine"]
    # without a manifest, the file name's local version names the variant
    assert required_for(wheel, None, []) == ["wine-nogui"]
