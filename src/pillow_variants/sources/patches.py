"""Patch sets: ``patches/<component>/<version>/NNNN-slug.patch``, applied in order.

Each patch starts with a header that says what it changes and why (``git apply`` ignores text
before the first diff)::

    Subject: <one line: what it changes>
    Removes: <imports/functions it removes>
    Why: <one or more lines: why>
    Upstream: <status>

Patches are applied with ``git apply`` (strict: no fuzz, whole-patch atomic, refuses paths
outside the tree and writes through symlinks); GNU ``patch --fuzz=0`` is the fallback when git
is missing. Git runs as if there were no repository and no configuration at all (see
:func:`_git_env`): a source archive can carry ``.git/config`` and ``.gitattributes``, and a
filter or fsmonitor command in them would otherwise run while we patch.

A patch *set* is applied atomically: all patches go to a copy of the tree, and only when every
one applied is the copy swapped in. On failure the tree is byte-identical to before and the
``PatchError`` names the patch, the file and the hunk.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pillow_variants import limits
from pillow_variants.errors import PatchError, UserError

#: Header keys, in the order they are written; all are required.
HEADER_KEYS = ("Subject", "Removes", "Why", "Upstream")
_KEY_RE = re.compile(r"^(" + "|".join(HEADER_KEYS) + r"):[ \t]*(.*)$")
# Where the header ends: the first line of a diff (git, unified, or format-patch's "---").
_DIFF_START_RE = re.compile(r"^(diff --git |diff -|--- |Index: |---$)")
_HUNK_RE = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")

Tool = Literal["git", "patch"]


@dataclass(frozen=True)
class Patch:
    """A patch file and its header."""

    path: Path
    sha256: str
    summary: str  # Subject:
    reason: str  # Why:
    upstream: str  # Upstream:
    removes: str = ""  # Removes:

    @property
    def name(self) -> str:
        return self.path.name

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "sha256": self.sha256,
            "summary": self.summary,
            "removes": self.removes,
            "reason": self.reason,
            "upstream": self.upstream,
        }


@dataclass(frozen=True)
class Hunk:
    """One ``@@`` hunk of a patch, located by file and position for error messages."""

    file: str  # path inside the tree (after -p1)
    number: int  # 1-based, counted within its file
    header: str  # the full "@@ -a,b +c,d @@ context" line
    old_start: int


def read_patch(path: Path) -> Patch:
    """Read a patch file and its header; ``PatchError`` if a header field or the diff is missing."""
    path = Path(path)
    try:
        # a regular file only (a FIFO would block, /dev/zero never end), capped (limits.py)
        data = limits.read_regular_file(path, "patch")
    except UserError as exc:
        raise PatchError(f"cannot read patch: {exc}") from None
    text = data.decode("utf-8", "replace")
    fields: dict[str, list[str]] = {}
    current: str | None = None
    diff_found = False
    for lineno, line in enumerate(text.splitlines(), 1):
        if _DIFF_START_RE.match(line):
            diff_found = True
            break
        m = _KEY_RE.match(line)
        if m:
            current = m.group(1)
            if current in fields:
                raise PatchError(f"{path}:{lineno}: header field {current}: given twice")
            fields[current] = [m.group(2).strip()]
        elif line.strip():
            if current is None:
                raise PatchError(
                    f"{path}:{lineno}: the header must start with 'Subject:' "
                    f"(fields: {', '.join(HEADER_KEYS)})"
                )
            fields[current].append(line.strip())
    if not diff_found or not parse_hunks(text):
        raise PatchError(f"{path}: no diff found after the header")
    missing = [k for k in HEADER_KEYS if not " ".join(fields.get(k, [])).strip()]
    if missing:
        raise PatchError(f"{path}: header is missing {', '.join(k + ':' for k in missing)}")
    value = {k: " ".join(x for x in v if x) for k, v in fields.items()}
    return Patch(
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        summary=value["Subject"],
        reason=value["Why"],
        upstream=value["Upstream"],
        removes=value["Removes"],
    )


def _strip_prefix(name: str) -> str:
    name = name.split("\t", 1)[0].strip()
    if name.startswith('"') and name.endswith('"'):
        name = name[1:-1]
    return name.split("/", 1)[1] if "/" in name else name  # -p1


def parse_hunks(text: str) -> list[Hunk]:
    """The hunks of a unified/git diff, with the tree-relative file each belongs to."""
    hunks: list[Hunk] = []
    old = new = ""
    counts: dict[str, int] = {}
    for line in text.splitlines():
        if line.startswith("--- "):
            old = _strip_prefix(line[4:])
        elif line.startswith("+++ "):
            new = _strip_prefix(line[4:])
        else:
            m = _HUNK_RE.match(line)
            if m and (old or new):
                file = old if new in ("", "dev/null") else new  # deletions: the old name
                counts[file] = counts.get(file, 0) + 1
                hunks.append(Hunk(file, counts[file], line.rstrip(), int(m.group(1))))
    return hunks


@dataclass(frozen=True)
class PatchResult:
    """What happened to one patch of a set."""

    path: Path
    status: Literal["ok", "failed", "skipped"]
    patch: Patch | None = None
    file: str = ""  # the file that failed, relative to the tree
    hunk: Hunk | None = None
    line: int | None = None
    message: str = ""
    tool_output: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name

    def describe(self) -> str:
        """One line: 'PATCH: FILE hunk #N (@@ ...) failed at line L' or the tool's message."""
        if self.status != "failed":
            return f"{self.name}: {self.status}"
        where = ""
        if self.hunk is not None:
            where = f"{self.file} hunk #{self.hunk.number} ({self.hunk.header}) does not apply"
        elif self.file:
            at = f" (hunk at line {self.line})" if self.line else ""
            where = f"{self.file}: {self.message or 'does not apply'}{at}"
        return f"{self.name}: {where or self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "patch": self.name,
            "path": str(self.path),
            "status": self.status,
            "sha256": self.patch.sha256 if self.patch else None,
            "summary": self.patch.summary if self.patch else None,
            "file": self.file or None,
            "hunk": self.hunk.number if self.hunk else None,
            "hunk_header": self.hunk.header if self.hunk else None,
            "line": self.line,
            "message": self.describe() if self.status == "failed" else "",
        }


def choose_tool() -> Tool:
    """``git`` if available, else GNU ``patch``."""
    if shutil.which("git"):
        return "git"
    if shutil.which("patch"):
        return "patch"
    raise PatchError("applying patches needs git (or GNU patch); neither is on PATH")


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, errors="replace", check=False
    )
    return proc.returncode, (proc.stdout + proc.stderr).splitlines()


def _git_env(tree: Path, empty: Path) -> dict[str, str]:
    """The environment for ``git apply`` in an untrusted tree: no repository, no config.

    The tree comes from a downloaded archive. If git found a repository there (``tree/.git``,
    or a ``.git`` file pointing anywhere) it would read that repository's config, and a
    ``filter.*.clean``/``smudge`` named by the tree's ``.gitattributes`` would run as a shell
    command on every patched file. ``GIT_DIR`` set to an empty directory makes git treat the
    tree as a plain directory (``git apply`` runs without a repository, still refusing paths
    outside it); system, global and XDG config are switched off, and the caller's ``GIT_*``
    variables (``GIT_CONFIG_PARAMETERS``, ``GIT_CONFIG_COUNT``...) are dropped, so no filter,
    attributes file or hook from anywhere applies. C locale keeps messages parseable.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k == "GIT_EXEC_PATH"}
    env.update(
        GIT_DIR=str(empty),
        GIT_CEILING_DIRECTORIES=str(tree.resolve().parent),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_SYSTEM=os.devnull,
        GIT_ATTR_NOSYSTEM="1",
        HOME=str(empty),
        XDG_CONFIG_HOME=str(empty),
        LC_ALL="C",
        LANGUAGE="C",
    )
    return env


def _git_apply(tree: Path, patch: Path) -> tuple[int, list[str]]:
    cmd = ["git", "apply", "-p1", "--whitespace=nowarn", str(patch.resolve())]
    with tempfile.TemporaryDirectory(prefix="pv-git-") as empty:
        return _run(cmd, tree, _git_env(tree, Path(empty)))


def _gnu_patch(tree: Path, patch: Path) -> tuple[int, list[str]]:
    env = dict(os.environ, LC_ALL="C", LANGUAGE="C")
    cmd = [
        "patch",
        "-p1",
        "--batch",
        "--forward",
        "--fuzz=0",
        "--no-backup-if-mismatch",
        "--reject-file=-",
        "-i",
        str(patch.resolve()),
    ]
    return _run(cmd, tree, env)


_GIT_FAILED_RE = re.compile(r"^error: patch failed: (.+):(\d+)$")
_GIT_FILE_ERR_RE = re.compile(r"^error: (.+?): (.+)$")
_GNU_FILE_RE = re.compile(r"^(?:patching|checking) file '?(.+?)'?$")
_GNU_HUNK_RE = re.compile(r"^Hunk #(\d+) FAILED at (\d+)")


def _locate_failure(
    tool: Tool, output: list[str], hunks: list[Hunk]
) -> tuple[str, Hunk | None, int | None, str]:
    """(file, hunk, line, message) from the tool's output."""
    if tool == "git":
        for line in output:
            m = _GIT_FAILED_RE.match(line)
            if m:
                file, at = m.group(1), int(m.group(2))
                in_file = [h for h in hunks if h.file == file]
                hunk = next((h for h in in_file if h.old_start == at), None)
                return file, hunk, at, "patch does not apply"
        for line in output:
            m = _GIT_FILE_ERR_RE.match(line)
            if m and not m.group(1).startswith(("patch ", "corrupt", "No valid")):
                return m.group(1), None, None, m.group(2)
    else:
        file = ""
        for line in output:
            m = _GNU_FILE_RE.match(line)
            if m:
                file = m.group(1)
                continue
            m = _GNU_HUNK_RE.match(line)
            if m:
                number = int(m.group(1))
                hunk = next((h for h in hunks if h.file == file and h.number == number), None)
                return file, hunk, int(m.group(2)), "patch does not apply"
    errors = [x.removeprefix("error: ") for x in output if x.strip()]
    return "", None, None, (errors[0] if errors else "failed with no message")


def check_patch_set(
    tree: Path, patches: list[Path], *, tool: Tool | None = None
) -> list[PatchResult]:
    """Apply ``patches`` in order to ``tree`` *in place*, recording each result.

    Stops at the first failure (later patches usually build on earlier ones) and marks the rest
    ``skipped``. The tree is left partly patched: use this on a throwaway copy, as
    ``patches check`` does, or use :func:`apply_patch_set`.
    """
    tree = Path(tree)
    tool = tool or choose_tool()
    apply = _git_apply if tool == "git" else _gnu_patch
    results: list[PatchResult] = []
    failed = False
    for path in patches:
        path = Path(path)
        if failed:
            results.append(PatchResult(path, "skipped"))
            continue
        try:
            patch = read_patch(path)
        except PatchError as exc:
            failed = True
            results.append(PatchResult(path, "failed", message=str(exc)))
            continue
        rc, output = apply(tree, path)
        if rc == 0:
            results.append(PatchResult(path, "ok", patch))
            continue
        failed = True
        hunks = parse_hunks(path.read_text("utf-8", "replace"))
        file, hunk, line, message = _locate_failure(tool, output, hunks)
        results.append(PatchResult(path, "failed", patch, file, hunk, line, message, output))
    return results


def apply_patch_set(tree: Path, patches: list[Path], *, tool: Tool | None = None) -> list[Patch]:
    """Apply a patch set atomically; returns the applied patches (with their headers).

    Every patch is applied to a copy beside ``tree``; only if all apply is the copy swapped in.
    On failure ``tree`` is untouched and ``PatchError`` names the patch, the file and the hunk.
    """
    tree = Path(tree)
    patches = [Path(p) for p in patches]
    if not tree.is_dir():
        raise PatchError(f"{tree}: no such source tree")
    headers = [read_patch(p) for p in patches]  # bad headers fail before any copying
    if not patches:
        return []
    work = Path(tempfile.mkdtemp(prefix=f".{tree.name}.patching-", dir=tree.parent))
    try:
        copy = work / "tree"
        shutil.copytree(tree, copy, symlinks=True)
        results = check_patch_set(copy, patches, tool=tool)
        failure = next((r for r in results if r.status == "failed"), None)
        if failure is not None:
            raise PatchError(f"patch {failure.describe()}; the tree was left unchanged")
        old = work / "old"
        os.rename(tree, old)
        try:
            os.rename(copy, tree)
        except OSError:
            os.rename(old, tree)
            raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return headers
