"""The package as users install it (``pip install .``, a wheel, no source tree beside it) carries
everything it runs inside a foreign Python: the smoke test and the import checker.

The project is copied out of the checkout, built into a wheel there, and installed into a new
venv (``--no-deps``; the dependencies from this run's site-packages) that is run from a
directory with no ``scripts/`` anywhere above it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from pillow_variants.verify.ladder import PAYLOAD

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def project_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This project's wheel, built from a copy (the checkout's build/ stays untouched)."""
    copy = tmp_path_factory.mktemp("project")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, copy / name)
    shutil.copytree(ROOT / "src", copy / "src", ignore=shutil.ignore_patterns("*.egg-info"))
    out = tmp_path_factory.mktemp("project-wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(copy)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = out.glob("pillow_variants-*.whl")
    return wheel


@pytest.fixture(scope="module")
def user_venv(tmp_path_factory: pytest.TempPathFactory, project_wheel: Path) -> Path:
    """A new venv holding the wheel; its scripts directory. The dependencies come from this
    test run's site-packages, listed *after* the venv's own in a .pth file (plain entries:
    an editable pillow_variants hook there is not activated)."""
    venv = tmp_path_factory.mktemp("user") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bindir = venv / ("Scripts" if sys.platform == "win32" else "bin")
    subprocess.run(
        [bindir / "python", "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         str(project_wheel)],
        check=True,
    )  # fmt: skip
    own = subprocess.run(
        [bindir / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(own) / "zz-test-deps.pth").write_text("".join(f"{d}\n" for d in sorted(deps)))
    return bindir


def _run(bindir: Path, argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env=env)


def test_the_wheel_ships_the_payload_programs(project_wheel: Path) -> None:
    with zipfile.ZipFile(project_wheel) as zf:
        names = set(zf.namelist())
        for name in PAYLOAD:
            member = f"pillow_variants/payload/{name}"
            assert member in names
            shipped = zf.read(member)
            assert shipped == (ROOT / "src" / "pillow_variants" / "payload" / name).read_bytes()


def test_an_installed_package_finds_and_runs_its_smoke_test(
    user_venv: Path, tmp_path: Path
) -> None:
    code = (
        "import json, pillow_variants, pillow_variants.verify.ladder as v;"
        "print(json.dumps([pillow_variants.__file__, str(v.default_smoke_test()),"
        " str(v.payload_file('check_imports.py'))]))"
    )
    proc = _run(user_venv, [str(user_venv / "python"), "-c", code], tmp_path)
    assert proc.returncode == 0, proc.stderr
    package, smoke, checker = paths = [Path(p) for p in json.loads(proc.stdout)]
    for path in paths:  # inside the new venv, nowhere in the checkout
        assert user_venv.parent in path.parents and ROOT not in path.parents, path
    assert smoke.parent == checker.parent == package.parent / "payload"
    # the installed smoke test runs (on this host's native Pillow, from the system site)
    proc = _run(user_venv, [str(user_venv / "python"), str(smoke), "--quiet"], tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1])["smoke"] == "pass"


@pytest.mark.network
@pytest.mark.wine
def test_verify_wine_from_the_installed_package(
    user_venv: Path, official_wheel: Path, cache: Path, tmp_path: Path
) -> None:
    argv = [str(user_venv / "pillow-variants"), "verify", "wine", str(official_wheel)]
    proc = _run(user_venv, [*argv, "--json", "--cache-dir", str(cache)], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (verdict,) = json.loads(proc.stdout)["verdicts"]
    assert verdict["passed"] and verdict["smoke"]["smoke"] == "pass"


def test_the_checkouts_entry_point_runs_the_shipped_smoke_test(tmp_path: Path) -> None:
    """``scripts/smoke_test.py`` stays for cibuildwheel's test command (``{project}`` is the
    checkout; pillow-variants is not installed in cibuildwheel's test venv): it runs the
    payload, whatever the working directory."""
    shim = ROOT / "scripts" / "smoke_test.py"
    proc = subprocess.run(
        [sys.executable, str(shim), "--quiet"], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    verdict = json.loads(proc.stdout.strip().splitlines()[-1])
    assert verdict["smoke"] == "pass" and len(verdict["checks"]) > 20
    assert len(shim.read_text().splitlines()) < 25  # an entry point, not a second copy
