"""The ``pillow-variants`` command line.

One module per command, ``main_<command>.py`` (the auditwheel layout), listed in
:data:`COMMANDS`. Each defines ``COMMAND``, ``HELP`` and ``configure(parser)``, and either
``run(args) -> int`` or subcommands (``options.add_subcommands``) that set their own. Only the
requested command's module is imported: start-up time matters (``audit`` is benchmarked
against ``delvewheel show``).

Exit codes (:mod:`pillow_variants.errors`): 0 ok, 1 verification failed (findings), 2 usage or
input error, 3 build or tool failure, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
from types import ModuleType

from pillow_variants import __version__, _log
from pillow_variants.cli.options import verbosity_options
from pillow_variants.errors import EXIT_INTERRUPTED, EXIT_TERMINATED, UserError, one_line

#: Every command, in pipeline order.
COMMANDS = (
    "recipe",
    "features",
    "upstream",
    "sources",
    "patches",
    "deps",
    "sdk",
    "build",
    "cibw",
    "audit",
    "surface",
    "verify",
    "compare",
    "publish",
)


#: Commands whose process ends without the interpreter's teardown (see :func:`run`).
QUICK_EXIT = frozenset({"audit"})


def _command(argv: list[str]) -> str | None:
    """The command named in ``argv`` (the first argument that is not an option: the options
    before a command are -v/-q, which take no value)."""
    return next((a for a in argv if not a.startswith("-")), None)


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"pillow_variants.cli.main_{name}")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    argv = sys.argv[1:] if argv is None else argv
    common = verbosity_options()
    parser = argparse.ArgumentParser(
        prog="pillow-variants",
        parents=[common],
        description="Build variants of Pillow's Windows wheels from recipes and patch sets, "
        "prove what they load against (audit, Wine, containers), and publish them.",
        epilog="exit codes: 0 ok, 1 verification failed, 2 usage/input error, "
        "3 build/tool failure, 130 interrupted, 143 terminated (SIGTERM)",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    first = _command(argv)
    names = [first] if first in COMMANDS else list(COMMANDS)  # all for help and usage errors
    for name in names:
        module = _module(name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP, parents=[common])
        module.configure(p)
        if hasattr(module, "run"):
            p.set_defaults(_run=module.run)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so the same ``finally`` blocks and temp-dir cleanups run."""


def _on_sigterm(signum: int, frame: object) -> None:
    # A second SIGTERM while the first one's cleanup removes a large staging directory would
    # abort that cleanup half-way; ignore it (SIGKILL still works).
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    _log.setup(-1 if getattr(args, "quiet", False) else getattr(args, "verbose", 0))
    # The default SIGTERM action kills the process on the spot: commands that stage into
    # temporary directories (extract, fetch, build) would leave them behind. Only the main
    # thread may install handlers; as Python does for SIGINT, an inherited SIG_IGN or an
    # embedding program's own handler is kept.
    previous = None
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    ):
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return int(args._run(args))
    except UserError as exc:
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except Terminated:
        print("error: terminated (SIGTERM)", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def run() -> None:
    """The ``pillow-variants`` executable and ``python -m pillow_variants``: :func:`main`, then
    the process exits with its code.

    After ``audit`` the process ends with ``os._exit`` once its output is flushed: the
    interpreter's teardown (freeing every module and object of the finished command) was
    ~11 ms of a ~115 ms audit of a Pillow wheel, which is benchmarked against ``delvewheel
    show``. The audit leaves that teardown nothing to do: its temporary files are unlinked
    when created (deleted on close on Windows), its threads are joined, it registers no
    ``atexit`` handler. A failed flush takes the ordinary way out, which reports it.
    """
    code = main()
    if _command(sys.argv[1:]) in QUICK_EXIT:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except OSError:
            sys.exit(code)
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
