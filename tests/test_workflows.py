"""The GitHub Actions workflows for the project's users: valid against the GitHub workflow
schema (check-jsonschema's vendored copy, offline), and wired to the commands and versions this
project defines. They are not run here (no GitHub runner, no Windows)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from pillow_variants.build import pysdk
from pillow_variants.recipe.model import load_recipe

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def check_schema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
         str(path)],
        capture_output=True, text=True,
    )  # fmt: skip


def load(path: Path) -> dict:
    return YAML(typ="safe").load(path.read_text())


def test_there_is_a_workflow() -> None:
    assert [p.name for p in WORKFLOWS] == ["wheels.yml"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_matches_the_github_workflow_schema(path: Path) -> None:
    proc = check_schema(path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_schema_check_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    text = (ROOT / ".github" / "workflows" / "wheels.yml").read_text()
    broken.write_text(text.replace("runs-on: windows-2022", "runs_on: windows-2022", 1))
    proc = check_schema(broken)
    assert proc.returncode == 1 and "runs-on" in proc.stdout


def _runs(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def test_jobs_build_verify_and_collect_with_the_projects_commands() -> None:
    wf = load(ROOT / ".github" / "workflows" / "wheels.yml")
    jobs = wf["jobs"]
    linux, windows, collect = jobs["linux-zig"], jobs["windows-msvc"], jobs["collect"]
    assert linux["runs-on"].startswith("ubuntu-")
    assert "apt-get install -y wine64" in _runs(linux)
    assert re.search(r"^nox -s build-nanoserver$", _runs(linux), re.M)
    assert windows["runs-on"] == "windows-2022"  # runs Windows containers
    matrix = windows["strategy"]["matrix"]["python"]
    assert matrix == load_recipe(ROOT / "recipes" / "nanoserver.toml").python
    run = _runs(windows)
    build = "nox -s build-nanoserver -- --toolchain msvc --python ${{ matrix.python }}"
    assert build in run
    assert "pillow-variants verify container $wheels --variant nanoserver --record" in run
    verify = next(s for s in windows["steps"] if "verify container" in s.get("run", ""))
    # the container rung needs a pinned embeddable CPython: skipped exactly where none is pinned
    unpinned = [p for p in matrix if p not in pysdk.embed_versions()]
    assert verify["if"] == " && ".join(f"matrix.python != '{p}'" for p in unpinned)
    uploads = [s for s in windows["steps"] if s.get("uses", "").startswith("actions/upload")]
    assert uploads and "wheelhouse/*.whl" in uploads[0]["with"]["path"]
    assert sorted(collect["needs"]) == ["linux-zig", "windows-msvc"]
    steps = collect["steps"]
    assert steps[0]["uses"].startswith("actions/download-artifact@")
    assert steps[0]["with"]["pattern"] == "wheels-*"
