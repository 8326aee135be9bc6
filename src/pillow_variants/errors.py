"""Exceptions that the CLI turns into one-line messages and exit codes.

Every error a user can cause (bad recipe, unreachable URL, hash mismatch, failing patch,
unreadable PE) is a ``UserError``: the CLI prints ``error: <message>`` and exits with its code,
never a traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1  # the command ran and found violations (audit, compare, ...)
EXIT_USAGE = 2  # bad input, usage error, unreadable file, failed precondition
EXIT_BUILD = 3  # a compiler, linker or other tool failed on good input
EXIT_INTERRUPTED = 130  # SIGINT (Ctrl-C)
EXIT_TERMINATED = 143  # SIGTERM: cleaned up like Ctrl-C, reported as 128 + 15


class UserError(Exception):
    """An error caused by input or environment, reported in one line."""

    exit_code = EXIT_USAGE


class RecipeError(UserError):
    """A recipe file is malformed: names the file, the key path and what was expected."""

    def __init__(self, path: object, key: str, message: str) -> None:
        self.path = str(path)
        self.key = key
        where = f"{self.path}: {key}: " if key else f"{self.path}: "
        super().__init__(where + message)


class SourceError(UserError):
    """A source could not be fetched, verified or extracted."""


class PatchError(UserError):
    """A patch did not apply; names the patch, the file and the hunk."""


class ToolchainError(UserError):
    """A toolchain is not usable on this host."""


class BuildError(UserError):
    """A build step (compiler, linker, build backend) failed on valid input; names its log."""

    exit_code = EXIT_BUILD


def one_line(message: str) -> str:
    """``message`` as one terminal line: control characters from hostile input (a newline in
    an archive member's name, an escape sequence in a URL) are shown escaped, never obeyed."""
    return "".join(
        c if c.isprintable() or c == " " else c.encode("unicode_escape").decode("ascii")
        for c in message
    )
