"""Every error message that tells the user to "pass --X" names an option the command that can
raise it accepts.

The hints are found in the source (string constants outside docstrings and argparse help,
phrased "pass/use/with/point --X"), so a new hint fails here until it is listed with the
commands that reach it; each listed command's parser must then accept the option.
"""

from __future__ import annotations

import argparse
import ast
import functools
import re
import subprocess
import sys
from pathlib import Path

import pytest

import pillow_variants
from pillow_variants.cli import build_parser
from pillow_variants.verify.ladder import payload_file

SRC = Path(pillow_variants.__file__).resolve().parent  # the installed package
#: "pass --X", "use --X VALUE": the option and the word after it (a value if it takes one)
HINT = re.compile(
    r"\b(?:pass|use|with|point)\s+(--[a-z][a-z0-9-]*)(?:[ =]([a-z][a-z0-9_-]*))?", re.IGNORECASE
)

#: Commands whose code fetches a recipe source (sources.fetch_source, directly or not).
FETCHING = [
    ("sources", "fetch"),
    ("sources", "extract"),
    ("patches", "check"),
    ("deps", "build"),
    ("build", "all"),
    ("build", "wheel"),
    ("cibw", "prepare"),
]
PAYLOAD = "payload program"  # the hint is the payload script's own option

#: (module, option) → the commands that can print that hint.
HINTS: dict[tuple[str, str], list[tuple[str, ...]] | str] = {
    ("audit/capture.py", "--os-build"): [("surface", "capture")],
    ("build/cibw.py", "--variant"): [("cibw", "build")],
    ("verify/container.py", "--dry-run"): [("verify", "container")],
    ("recipe/features.py", "--against"): [("features",)],
    ("cli/main_cibw.py", "--plan-dir"): [("cibw", "build")],
    ("cli/main_sdk.py", "--from-dir"): [("sdk", "prepare")],
    ("cli/main_verify.py", "--python-dir"): [("verify", "wine"), ("verify", "container")],
    ("cli/main_verify.py", "--recipe"): [("verify", "suite")],
    ("release/publish.py", "--allow-missing-rungs"): [("publish",)],
    ("sources/fetch.py", "--allow-unpinned"): FETCHING,
    ("sources/fetch.py", "--cache-dir"): FETCHING,
    ("sources/fetch.py", "--source"): FETCHING,
    ("recipe/upstream_diff.py", "--dependencies-json"): [("upstream", "diff")],
    ("payload/check_imports.py", "--parse-only"): PAYLOAD,
}


def _not_messages(tree: ast.AST) -> set[int]:
    """ids of string nodes that are documentation, not messages: docstrings, and everything
    inside argparse set-up calls and ``help=``/``description=`` arguments."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            if ast.get_docstring(node, clean=False) is not None:
                skip.add(id(node.body[0].value))  # type: ignore[attr-defined]
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            inside = [node] if name in ("add_argument", "add_parser") else []
            inside += [k.value for k in node.keywords if k.arg in ("help", "description")]
            skip.update(id(sub) for part in inside for sub in ast.walk(part))
    return skip


def hints_in_source() -> dict[tuple[str, str], set[str]]:
    """(module, option) → the words that follow the option in those hints."""
    found: dict[tuple[str, str], set[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _not_messages(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if id(node) not in skip:
                    rel = path.relative_to(SRC).as_posix()
                    for opt, word in HINT.findall(node.value):
                        found.setdefault((rel, opt), set()).add(word)
    return found


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and name in action.choices:
            return action.choices[name]
    raise AssertionError(f"{parser.prog}: no subcommand {name!r}")


@functools.cache
def _root_parser() -> argparse.ArgumentParser:
    return build_parser([])


def accepts(command: tuple[str, ...], option: str, words: set[str] = frozenset()) -> bool:
    """``command`` has ``option``; if the option has choices, every hinted value is one."""
    parser = _root_parser()
    for name in command:
        parser = _subparser(parser, name)
    action = parser._option_string_actions.get(option)
    if action is None:
        return False
    return not action.choices or all(w in action.choices for w in words if w)


def test_every_hint_in_the_source_is_listed_with_its_commands() -> None:
    assert set(hints_in_source()) == set(HINTS)


@pytest.mark.parametrize(("where", "option"), sorted(HINTS))
def test_the_commands_that_print_a_hint_accept_its_option(where: str, option: str) -> None:
    commands = HINTS[(where, option)]
    if commands == PAYLOAD:
        script = payload_file(Path(where).name)
        out = subprocess.run(
            [sys.executable, str(script), "--help"], capture_output=True, text=True, check=True
        ).stdout
        assert option in out
        return
    words = hints_in_source()[(where, option)]
    rejected = [" ".join(c) for c in commands if not accepts(c, option, words)]
    assert not rejected, f"{where}: hint {option} but these commands reject it: {rejected}"


def test_the_walk_catches_a_hint_for_an_option_that_does_not_exist() -> None:
    """The checker itself: a made-up hint is found, and the command refuses it."""
    tree = ast.parse('raise UserError("cannot go on; pass --no-such-option")')
    values = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)]
    assert [HINT.findall(v) for v in values] == [[("--no-such-option", "")]]
    assert not accepts(("build", "all"), "--smoke-test")  # the hint issue #13 found
    assert accepts(("verify", "wine"), "--smoke-test")
    # a value outside the option's choices: 'cibw build' takes --toolchain msvc only
    assert HINT.findall("Use --toolchain zig here") == [("--toolchain", "zig")]
    assert not accepts(("cibw", "build"), "--toolchain", {"zig"})
    assert accepts(("deps", "build"), "--toolchain", {"zig"})
