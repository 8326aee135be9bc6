"""The ``pillow-variants`` command line.

Subcommands are discovered from the ``main_<command>.py`` modules of this package (the
auditwheel layout): each module defines ``COMMAND`` (its name), ``HELP`` (one line),
``configure(parser)`` and ``run(args) -> int``. Adding a stage means adding one module.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from types import ModuleType

from pillow_variants import __version__
from pillow_variants.errors import UserError, one_line


def _command_names() -> list[str]:
    """Module names ``main_<command>`` of this package, found without importing them."""
    import pillow_variants

    return sorted(
        m.name for m in pkgutil.iter_modules(pillow_variants.__path__) if m.name.startswith("main_")
    )


def _command_modules(argv: list[str]) -> list[ModuleType]:
    """Import only the module of the requested subcommand (start-up time matters: ``audit``
    is benchmarked against ``delvewheel show``); import all for help and usage errors."""
    names = _command_names()
    first = next((a for a in argv if not a.startswith("-")), None)
    wanted = f"main_{first.replace('-', '_')}" if first else None
    if wanted in names:
        names = [wanted]
    return [importlib.import_module(f"pillow_variants.{n}") for n in names]


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pillow-variants",
        description="Build variants of Pillow's Windows wheels from recipes and patch sets, "
        "prove what they load against (audit, Wine, containers), and publish them.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in _command_modules(sys.argv[1:] if argv is None else argv):
        p = sub.add_parser(module.COMMAND, help=module.HELP, description=module.HELP)
        module.configure(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        return int(args._run(args))
    except UserError as exc:
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def add_subcommands(
    parser: argparse.ArgumentParser, commands: dict[str, tuple[str, object, object]]
) -> None:
    """Add nested sub-subcommands (e.g. ``patches check``): name → (help, configure, run)."""
    sub = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
    sub.required = True
    for name, (help_, configure, run) in commands.items():
        p = sub.add_parser(name, help=help_, description=help_)
        configure(p)  # type: ignore[operator]
        p.set_defaults(_run=run)


if __name__ == "__main__":
    sys.exit(main())
