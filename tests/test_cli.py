"""The CLI dispatcher: every subcommand module is reachable by its name, help lists all."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from pillow_variants import cli


def test_each_command_module_is_named_after_its_command() -> None:
    # The dispatcher imports only main_<command> for speed, so names must agree.
    for name in cli._command_names():
        module = importlib.import_module(f"pillow_variants.{name}")
        assert name == "main_" + module.COMMAND.replace("-", "_")
        assert module.HELP and callable(module.configure) and callable(module.run)


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in cli._command_names():
        assert importlib.import_module(f"pillow_variants.{name}").COMMAND in out


def test_only_the_requested_command_is_imported() -> None:
    code = (
        "import sys; from pillow_variants import cli; cli.build_parser(['recipe', 'show', 'x']);"
        "print(sorted(m for m in sys.modules if m.startswith('pillow_variants.main_')))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "['pillow_variants.main_recipe']"


def test_unknown_command_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["frobnicate"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
