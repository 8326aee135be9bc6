"""``verify container``: the generated Dockerfile and build context (pinned digests, COPY paths,
USER, PATH, hashes), the commands, the verdict logic -- and the Python directory the Dockerfile
assembles, rebuilt here step by step and run under Wine with the exact container commands.
Docker with Windows containers is not available here: the real run is untested in this project."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import sys
import zipfile
from pathlib import Path

import pytest

from pillow_variants.build import pysdk
from pillow_variants.cli import main
from pillow_variants.errors import UserError
from pillow_variants.hashing import file_sha256
from pillow_variants.verify import container, ladder, wine

ROOT = Path(__file__).resolve().parents[2]
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def _plan(wheel: Path, variant: str = "nanoserver") -> container.ContainerPlan:
    return container.ContainerPlan(
        wheel=wheel,
        python="3.13",
        cpython="3.13.2",
        variant=variant,
        servercore=container.image_pin("servercore"),
        nanoserver=container.image_pin("nanoserver"),
        pth_name="python313._pth",
        pth_lines=["python313.zip", ".", "Lib\\site-packages", "import site"],
        pe_dirs=["PIL"],
    )


def test_images_are_pinned_by_digest_with_their_source() -> None:
    for name, image in (
        ("nanoserver", "mcr.microsoft.com/windows/nanoserver:ltsc2022"),
        ("servercore", "mcr.microsoft.com/windows/servercore:ltsc2022"),
    ):
        pin = container.image_pin(name)
        assert pin.image == image and DIGEST.fullmatch(pin.digest) and len(pin.source) > 20
        assert pin.ref == f"{image}@{pin.digest}"
    given = "sha256:" + "ab" * 32
    assert container.image_pin("nanoserver", given).ref.endswith(given)
    with pytest.raises(UserError, match="sha256:<64 hex digits>"):
        container.image_pin("nanoserver", "latest")


def test_dockerfile_pins_both_stages_copies_python_and_sets_user_and_path() -> None:
    plan = _plan(Path("/w/pillow-13.0.0+nanoserver-cp313-cp313-win_amd64.whl"))
    text = plan.dockerfile()
    lines = text.splitlines()
    assert lines[0] == "# escape=`"  # backslashes in Windows paths stay literal
    core, nano = plan.servercore.ref, plan.nanoserver.ref
    assert f"FROM {core} AS python" in lines
    assert f"FROM {nano}" in lines
    assert lines.index(f"FROM {core} AS python") < lines.index(f"FROM {nano}")
    for line in (
        "COPY python C:\\Python",
        "COPY wheel C:\\wheel",
        "COPY SHA256SUMS C:\\SHA256SUMS",
        "COPY --from=python C:\\Python C:\\Python",
        "COPY scripts C:\\pillow-variants",
        'ENV PATH="C:\\Python;C:\\Windows\\System32;C:\\Windows"',
        "WORKDIR C:\\pillow-variants",
        'CMD ["python.exe", "smoke_test.py", "--variant", "nanoserver"]',
    ):
        assert line in lines, line
    nano_stage = lines[lines.index(f"FROM {nano}") :]
    assert nano_stage.index("USER ContainerAdministrator") < nano_stage.index(
        'ENV PATH="C:\\Python;C:\\Windows\\System32;C:\\Windows"'
    )
    assert "Get-FileHash -Algorithm SHA256" in text and "throw ('sha256 mismatch: '" in text
    wheel = "'C:\\wheel\\pillow-13.0.0+nanoserver-cp313-cp313-win_amd64.whl'"
    assert f"RUN Copy-Item -LiteralPath {wheel} -Destination C:\\wheel.zip; `" in lines
    assert (
        "Expand-Archive -LiteralPath C:\\wheel.zip -DestinationPath C:\\Python\\Lib\\site-packages"
        in text
    )
    assert (
        "RUN Set-Content -LiteralPath 'C:\\Python\\python313._pth' -Encoding Ascii -Value"
        " @('python313.zip', '.', 'Lib\\site-packages', 'import site')" in lines
    )
    assert plan.commands("ctx") == [
        ["docker", "build", "--tag", plan.tag, "ctx"],
        ["docker", "run", "--rm", plan.tag, "python.exe", "check_imports.py",
         "C:\\Python\\Lib\\site-packages\\PIL"],
        ["docker", "run", "--rm", plan.tag, "python.exe", "smoke_test.py", "--variant",
         "nanoserver"],
    ]  # fmt: skip
    assert plan.tag == "pillow-variants-verify:pillow-13.0.0-nanoserver-cp313-cp313-win_amd64"


def test_capture_commands_copy_system32_of_the_same_image(tmp_path: Path) -> None:
    pin = container.image_pin("nanoserver")
    create, copy, remove, capture = container.capture_commands(pin, tmp_path, "pv-x")
    assert create == ["docker", "create", "--name", "pv-x", pin.ref]
    assert copy == ["docker", "cp", "pv-x:C:\\Windows\\System32", str(tmp_path / "system32")]
    assert remove == ["docker", "rm", "pv-x"]
    assert capture == [
        "pillow-variants", "surface", "capture", str(tmp_path / "system32"), "--image",
        pin.image, "--digest", pin.digest, "-o", str(tmp_path / container.CAPTURED_PROFILE),
    ]  # fmt: skip


def test_a_wheel_with_data_directories_is_refused(tmp_path: Path) -> None:
    wheel = tmp_path / "x-1-cp313-cp313-win_amd64.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("x-1.data/platlib/x/_x.pyd", b"MZ")
        zf.writestr("x-1.dist-info/WHEEL", "")
    with pytest.raises(UserError, match=".data directory"):
        container.wheel_layout(wheel)


@pytest.mark.skipif(sys.platform == "win32", reason="the refusal is for non-Windows hosts")
def test_a_real_run_needs_windows_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ctx = tmp_path / "ctx"
    rc = main(["verify", "container", str(tmp_path / "x.whl"), "--context-dir", str(ctx)])
    assert rc == 2
    assert "needs a Windows host with Docker in Windows-containers mode" in capsys.readouterr().err
    assert not ctx.exists()


def _fake_docker(path: Path, check: dict, check_rc: int) -> str:
    """A docker double answering ``run`` like the real scripts do (their final JSON line)."""
    smoke = {"smoke": "pass", "counts": {"pass": 5, "fail": 0, "skip": 1}}
    path.write_text(
        "#!/usr/bin/env python3\nimport sys\n"
        "if 'check_imports.py' in sys.argv:\n"
        f"    print({json.dumps(json.dumps(check))})\n"
        f"    sys.exit({check_rc})\n"
        "if 'smoke_test.py' in sys.argv:\n"
        f"    print({json.dumps(json.dumps(smoke))})\n"
    )
    path.chmod(0o755)
    return str(path)


def test_verdicts_from_the_scripts_output_and_the_rung(tmp_path: Path) -> None:
    plan = _plan(tmp_path / "pillow-13.0.0-cp313-cp313-win_amd64.whl")
    plan.context = tmp_path
    user32 = {"file": "C:\\Python\\Lib\\site-packages\\PIL\\_imaging.pyd",
              "dll": "USER32.dll", "function": None, "error": 126, "delay": False}  # fmt: skip
    failing = {"check_imports": "fail", "imports": 9, "missing": [user32]}
    v = container.run_plan(plan, _fake_docker(tmp_path / "docker", failing, 1))
    assert not v.passed and v.reason == "1 imports missing: USER32.dll!"
    manifest: dict = {}
    ladder.record_rung(manifest, "container", v.rung_result())
    assert manifest["rungs"]["container"]["missing_imports"] == ["USER32.dll"]
    assert ladder.claimed_rungs(manifest) == []
    passing = {"check_imports": "pass", "imports": 9, "missing": []}
    v = container.run_plan(plan, _fake_docker(tmp_path / "docker", passing, 0))
    assert v.passed and v.reason == "all 9 imports resolve; smoke test 5 passed, 1 skipped"
    ladder.record_rung(manifest, "container", v.rung_result())
    assert ladder.claimed_rungs(manifest) == ["container"]
    assert manifest["rungs"]["container"]["image"] == plan.nanoserver.ref


# --------------------------------------------------------------------------------------------
# With the official wheel: the context, and the assembled Python under Wine


@pytest.fixture(scope="module")
def context(
    official_wheel: Path, cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("vc")
    out = io.StringIO()  # capsys is function-scoped; this fixture is shared
    with contextlib.redirect_stdout(out):
        rc = main(["verify", "container", str(official_wheel), "--variant", "upstream",
                   "--dry-run", "--context-dir", str(root), "--cache-dir", str(cache)])  # fmt: skip
    assert rc == 0
    return root / official_wheel.name[: -len(".whl")], out.getvalue()


@pytest.mark.network
def test_dry_run_writes_a_verified_context_and_prints_every_command(
    context: tuple[Path, str], official_wheel: Path
) -> None:
    ctx, out = context
    assert sorted(p.name for p in ctx.iterdir()) == [
        "Dockerfile", "SHA256SUMS", "python", "scripts", "wheel",
    ]  # fmt: skip
    dockerfile = (ctx / "Dockerfile").read_bytes().decode()
    assert "\r\n" in dockerfile and dockerfile.replace("\r\n", "\n") in out
    for script in container.SCRIPTS:
        shipped = ladder.payload_file(script).read_bytes()  # the installed package's copy
        assert (ctx / "scripts" / script).read_bytes() == shipped
    sums = dict(
        reversed(line.split("  ", 1)) for line in (ctx / "SHA256SUMS").read_text().splitlines()
    )
    assert f"wheel/{official_wheel.name}" in sums
    for name, digest in sums.items():
        assert file_sha256(ctx / name) == digest
    pin = pysdk.pins_for("3.13").embed
    assert pin is not None
    for name, digest in pin.files.items():  # the pinned embeddable CPython, unmodified
        assert sums[f"python/{name}"] == digest
    tag = "pillow-variants-verify:pillow-13.0.0-cp313-cp313-win_amd64"
    assert f"docker build --tag {tag} {ctx}" in out
    assert (
        f"docker run --rm {tag} python.exe check_imports.py C:\\Python\\Lib\\site-packages\\PIL"
        in out
    )
    assert f"docker run --rm {tag} python.exe smoke_test.py --variant upstream" in out
    assert (
        "docker create --name pv-capture mcr.microsoft.com/windows/nanoserver:ltsc2022@sha256:"
        in out
    )
    assert "pillow-variants surface capture " in out and " --policy surface" in out


def _assemble_like_the_dockerfile(ctx: Path, dest: Path) -> Path:
    """What the servercore stage does, step by step, read from the generated Dockerfile."""
    text = (ctx / "Dockerfile").read_text()
    python = dest / "Python"
    shutil.copytree(ctx / "python", python)  # COPY python C:\Python
    for line in (ctx / "SHA256SUMS").read_text().splitlines():  # the Get-FileHash loop
        digest, name = line.split("  ", 1)
        assert file_sha256(ctx / name) == digest
    wheel = re.search(r"Copy-Item -LiteralPath 'C:\\wheel\\([^']+)'", text)
    assert wheel is not None
    with zipfile.ZipFile(ctx / "wheel" / wheel.group(1)) as zf:  # Expand-Archive
        zf.extractall(python / "Lib" / "site-packages")
    pth = re.search(r"Set-Content -LiteralPath 'C:\\Python\\([^']+)' .* -Value @\((.*)\)", text)
    assert pth is not None
    values = [v.replace("''", "'") for v in re.findall(r"'((?:[^']|'')*)'", pth.group(2))]
    (python / pth.group(1)).write_text("\r\n".join(values) + "\r\n", encoding="ascii")
    scripts = re.search(r"^COPY scripts (\S+)$", text, re.M)
    assert scripts is not None and scripts.group(1) == container.SCRIPTS_DIR
    shutil.copytree(ctx / "scripts", python, dirs_exist_ok=True)  # beside python.exe under Wine
    return python


@pytest.mark.network
@pytest.mark.wine
def test_the_assembled_python_passes_both_container_commands_under_wine(
    context: tuple[Path, str], cache: Path, tmp_path: Path
) -> None:
    ctx, _out = context
    python = _assemble_like_the_dockerfile(ctx, tmp_path)
    plan_args = re.findall(r"^docker run --rm \S+ (python\.exe .*)$", _out, re.M)
    assert len(plan_args) == 2
    prefix = pysdk.sdk_cache_dir(cache).parent / "wine" / "prefix"
    results = {}
    for args in plan_args:
        argv = args.replace(container.SITE_PACKAGES, "Lib\\site-packages").split(" ")
        run = wine.run(argv, prefix=prefix, cwd=python, timeout=900)
        results[argv[1]] = run
    checked = container.last_json(results["check_imports.py"].stdout, "check_imports")
    assert checked is not None and checked["check_imports"] == "pass", results[
        "check_imports.py"
    ].stdout[-2000:]
    assert checked["missing"] == [] and checked["files"] == 8
    smoke = ladder.parse_smoke_output(results["smoke_test.py"].stdout)
    assert smoke is not None and smoke["smoke"] == "pass" and smoke["pillow"] == "13.0.0"
    assert json.dumps(smoke)  # the verdict the container run records
