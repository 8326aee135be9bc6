"""The CLI dispatcher: an explicit command list, one module each, shared -v/-q, exit codes."""

from __future__ import annotations

import importlib
import logging
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

from pillow_variants import cli
from pillow_variants._log import LOGGER, progress


def test_the_command_list_names_every_command_module() -> None:
    on_disk = {
        m.name.removeprefix("main_")
        for m in pkgutil.iter_modules(cli.__path__)
        if m.name.startswith("main_")
    }
    assert on_disk == set(cli.COMMANDS)
    for name in cli.COMMANDS:
        module = importlib.import_module(f"pillow_variants.cli.main_{name}")
        assert module.COMMAND == name
        assert module.HELP and callable(module.configure)


def test_help_lists_every_command_and_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert name in out
    assert "3 build/tool failure" in " ".join(out.split())


def test_only_the_requested_command_is_imported() -> None:
    code = (
        "import sys; from pillow_variants import cli; cli.build_parser(['recipe', 'show', 'x']);"
        "print(sorted(m for m in sys.modules if m.startswith('pillow_variants.cli.main_')))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "['pillow_variants.cli.main_recipe']"


def test_deps_build_passes_the_job_budget_and_the_build_count(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pillow_variants.cli import main_deps
    from pillow_variants.errors import UserError

    seen: dict[str, object] = {}

    class Recorder:
        def __init__(self, recipe: object, toolchain: object, prefix: object, **kw: object):
            seen.update(kw)

        def build(self, only: object) -> None:
            raise UserError("recorded")

    class Host:
        name = "zig"

        def check_host(self) -> None:
            pass

    monkeypatch.setattr(main_deps, "DepsBuilder", Recorder)
    monkeypatch.setattr(main_deps, "get_toolchain", lambda name: Host())
    recipe = str(Path(__file__).resolve().parents[2] / "recipes" / "nanoserver.toml")
    assert cli.main(["deps", "build", recipe, "-j", "3", "--builds", "1"]) == 2
    assert (seen["jobs"], seen["builds"]) == (3, 1)
    assert cli.main(["deps", "build", recipe, "-j", "2"]) == 2
    assert (seen["jobs"], seen["builds"]) == (2, None)


def test_unknown_command_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["frobnicate"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "level"),
    [
        (["recipe", "show", "R"], logging.INFO),
        (["-q", "recipe", "show", "R"], logging.WARNING),
        (["recipe", "-v", "show", "R"], logging.DEBUG),
        (["recipe", "show", "R", "-vv"], logging.DEBUG),
    ],
)
def test_verbosity_anywhere_on_the_line(
    argv: list[str], level: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[int] = []
    from pillow_variants.cli import main_recipe

    def fake_show(args: object) -> int:
        seen.append(LOGGER.level)
        progress("a progress line")
        return 0

    monkeypatch.setattr(main_recipe, "_show", fake_show)
    assert cli.main(argv) == 0
    assert seen == [level]
    err = capsys.readouterr().err
    assert ("a progress line" in err) == (level <= logging.INFO)


def test_quiet_and_verbose_together_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["recipe", "show", "R", "-q", "-v"])
    assert exc.value.code == 2
    assert "not allowed with" in capsys.readouterr().err
