"""Debian source packages: the one place that reads apt's source lists, enables deb-src and
downloads upstream ``*.orig.tar.*`` tarballs with ``apt-get source``.

Why Debian: the recipe's upstream archive URLs are not always reachable (CI, offline mirrors),
while Debian's archive is, and Debian keeps every upstream release as an untouched orig tarball
that apt verifies against the signed Sources index; our own sha256 pin then decides.

A fresh Debian machine has only binary (``deb``) entries. :func:`ensure_deb_src` adds
``/etc/apt/sources.list.d/pillow-variants-src.sources`` for the suites not yet covered, copying
the URIs and Signed-By of the machine's Debian entry (so a configured mirror is honoured).

This module uses only the standard library and :mod:`pillow_variants.errors`, so
``scripts/bootstrap.sh`` runs it before the package is installed::

    sudo env PYTHONPATH=src python3 -m pillow_variants.sources.aptsrc [--dry-run] [--no-update]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from pillow_variants import _log
from pillow_variants._log import Progress
from pillow_variants._log import progress as progress_line
from pillow_variants.errors import SourceError, UserError
from pillow_variants.hashing import file_sha256

#: Every suite a pin uses: CPython headers (bookworm, trixie, sid) and dependency trees
#: (trixie, sid). tests check the pins against this list.
SUITES = ("bookworm", "trixie", "sid")
ETC_APT = Path("/etc/apt")
OUR_FILE = "pillow-variants-src.sources"


# --------------------------------------------------------------------------------------------
# Reading apt's source lists


def source_entries(etc_apt: Path = ETC_APT) -> list[tuple[Path, str]]:
    """(file, text) of every active apt source list (``sources.list`` and ``sources.list.d``)."""
    files = [etc_apt / "sources.list", *sorted((etc_apt / "sources.list.d").glob("*"))]
    out = []
    for f in files:
        if f.is_file() and (f.name == "sources.list" or f.suffix in (".list", ".sources")):
            try:
                out.append((f, f.read_text(encoding="utf-8", errors="replace")))
            except OSError:
                continue
    return out


def deb822_stanzas(text: str) -> list[dict[str, str]]:
    """The stanzas of a deb822 ``.sources`` file, keys lower-cased; disabled ones dropped."""
    stanzas: list[dict[str, str]] = []
    cur: dict[str, str] = {}
    for line in text.splitlines() + [""]:
        if not line.strip():
            if cur and cur.get("enabled", "yes").lower() != "no":
                stanzas.append(cur)
            cur = {}
        elif not line.startswith("#") and ":" in line and not line[0].isspace():
            key, _, value = line.partition(":")
            cur[key.strip().lower()] = value.strip()
    return stanzas


def _entries(path: Path, text: str) -> Iterable[tuple[set[str], str, list[str], str]]:
    """(types, uri, suites, signed-by) of each Debian archive entry (security excluded)."""
    if path.suffix == ".sources":
        for st in deb822_stanzas(text):
            for uri in st.get("uris", "").split():
                yield (
                    set(st.get("types", "").split()),
                    uri,
                    st.get("suites", "").split(),
                    st.get("signed-by", ""),
                )
    else:
        for line in text.splitlines():
            m = re.match(r"^\s*(deb(?:-src)?)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)", line)
            if m:
                signed = re.search(r"signed-by=(\S+)", m.group(2) or "")
                yield {m.group(1)}, m.group(3), [m.group(4)], signed.group(1) if signed else ""


def _is_debian_archive(uri: str) -> bool:
    return "debian" in uri and "security" not in uri


def plan_deb_src(entries: list[tuple[Path, str]], suites: Iterable[str]) -> str | None:
    """The deb822 text of our deb-src file for ``suites``, or None if they are all covered.

    Suites already offered by another deb-src entry for the Debian archive are left out; our own
    file is ignored when judging coverage, so re-planning rewrites it instead of stacking files.
    SourceError if no Debian entry exists to copy the URIs and signing key from.
    """
    wanted = list(dict.fromkeys(suites))
    covered: set[str] = set()
    template: tuple[str, str] | None = None
    for path, text in entries:
        if path.name == OUR_FILE:
            continue
        for types, uri, entry_suites, signed_by in _entries(path, text):
            if not _is_debian_archive(uri):
                continue
            if "deb-src" in types:
                covered.update(entry_suites)
            if template is None and types & {"deb", "deb-src"}:
                template = (uri, signed_by)
    missing = [s for s in wanted if s not in covered]
    if not missing:
        return None
    if template is None:
        raise SourceError(
            "no Debian apt source is configured to copy for deb-src; add a deb-src entry for "
            "the Debian archive (Suites: " + " ".join(wanted) + ")"
        )
    uri, signed_by = template
    lines = [
        "# Written by pillow-variants: upstream source tarballs from Debian's source packages.",
        "Types: deb-src",
        f"URIs: {uri}",
        "Suites: " + " ".join(missing),
        "Components: main",
    ]
    if signed_by:
        lines.append(f"Signed-By: {signed_by}")
    return "\n".join(lines) + "\n"


def debian_archive_uri(etc_apt: Path = ETC_APT) -> str:
    """The URI of the machine's Debian archive (its first ``deb``/``deb-src`` entry, security
    excluded), so binary pool files come from the mirror apt is configured with.
    SourceError if none is configured."""
    for path, text in source_entries(etc_apt):
        for types, uri, _suites, _signed in _entries(path, text):
            if _is_debian_archive(uri) and types & {"deb", "deb-src"}:
                return uri.rstrip("/")
    raise SourceError("no Debian archive is configured in apt's source lists")


# --------------------------------------------------------------------------------------------
# Changing them


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    if shutil.which(cmd[0]) is None:
        raise SourceError(f"{cmd[0]} not found: upstream trees come from Debian source packages")
    return subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"}
    )


def apt_update() -> None:
    """``apt-get update`` (root only); a failure names apt's last line."""
    proc = _run(["apt-get", "update", "-qq"])
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        raise SourceError(f"apt-get update failed: {last}")


def ensure_deb_src(
    suites: Iterable[str] = SUITES,
    *,
    etc_apt: Path = ETC_APT,
    update: bool = True,
    progress: Progress = progress_line,
) -> Path | None:
    """Enable deb-src for ``suites`` when missing; return the file written, or None.

    Needs root to write; otherwise the error carries the exact file text to install by hand.
    """
    plan = plan_deb_src(source_entries(etc_apt), suites)
    if plan is None:
        return None
    target = etc_apt / "sources.list.d" / OUR_FILE
    if target.is_file() and target.read_text(encoding="utf-8", errors="replace") == plan:
        return None  # written earlier (perhaps not yet fetched: fetch_orig updates if needed)
    try:
        target.write_text(plan, encoding="utf-8")
    except OSError as exc:
        raise SourceError(
            f"cannot enable deb-src ({exc.strerror or exc}); as root, write {target}:\n{plan}"
        ) from None
    progress(f"enabled deb-src in {target}")
    if update:
        progress("apt-get update")
        apt_update()
    return target


# --------------------------------------------------------------------------------------------
# Downloading orig tarballs


def source_versions(package: str) -> list[str]:
    """Versions of source package ``package`` that apt offers (empty without deb-src)."""
    proc = _run(["apt-cache", "showsrc", "--only-source", package])
    return re.findall(r"^Version: (\S+)$", proc.stdout, flags=re.M)


def upstream_part(version: str) -> str:
    """``1:3.1.3-4`` → ``3.1.3``: every Debian revision of it shares one orig tarball."""
    return version.split(":", 1)[-1].rsplit("-", 1)[0]


def check_sha256(path: Path, expected: str) -> None:
    got = file_sha256(path)
    if got != expected:
        raise SourceError(f"{path.name}: sha256 {got} does not match the pinned {expected}")


def fetch_orig(
    package: str,
    version: str,
    filename: str,
    sha256: str,
    dest: Path,
    *,
    etc_apt: Path = ETC_APT,
    progress: Progress = progress_line,
) -> Path:
    """``dest/filename``: the pinned upstream tarball of Debian source ``package=version``.

    Only the tarball is downloaded (``--tar-only``), never Debian's patched tree. The pinned
    revision may have been superseded (security updates); any revision with the same upstream
    version has the same orig tarball, so those are tried too, and the sha256 pin decides.
    """
    out = dest / filename
    if out.is_file() and file_sha256(out) == sha256:
        return out
    ensure_deb_src(etc_apt=etc_apt, progress=progress)
    offered = source_versions(package)
    if version not in offered and os.geteuid() == 0:
        apt_update()  # a stale index; deb-src may have been added by hand without an update
        offered = source_versions(package)
    candidates = list(
        dict.fromkeys(
            [version] + [v for v in offered if upstream_part(v) == upstream_part(version)]
        )
    )
    dest.mkdir(parents=True, exist_ok=True)
    errors = []
    for candidate in candidates:
        with tempfile.TemporaryDirectory(dir=dest) as tmp:
            progress(f"apt-get source --download-only --tar-only {package}={candidate}")
            proc = _run(
                ["apt-get", "source", "--download-only", "--tar-only", f"{package}={candidate}"],
                Path(tmp),
            )
            got = Path(tmp) / filename
            if got.is_file():
                check_sha256(got, sha256)
                os.replace(got, out)
                return out
            lines = proc.stderr.strip().splitlines()
            # apt's first error names the file and the mirror's answer (e.g. 404); its last one
            # ("Failed to fetch some archives.") says nothing
            said = [ln for ln in lines if ln.startswith("E: ")][:1] or lines[-1:]
            errors.append(f"{candidate}: {said[0] if said else f'no {filename}'}")
    hint = "" if offered else " (apt offers no version: is deb-src enabled and updated?)"
    raise SourceError(
        f"cannot fetch {filename} from Debian source package {package} "
        f"(tried {', '.join(candidates)}){hint}: {'; '.join(errors)}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pillow_variants.sources.aptsrc",
        description="Enable Debian deb-src entries for the suites pillow-variants pins use.",
    )
    parser.add_argument("--suite", action="append", help=f"suite (default: {' '.join(SUITES)})")
    parser.add_argument("--dry-run", action="store_true", help="print the file, write nothing")
    parser.add_argument("--no-update", action="store_true", help="skip apt-get update")
    parser.add_argument("--etc-apt", type=Path, default=ETC_APT, help="apt's configuration dir")
    args = parser.parse_args(argv)
    _log.setup()
    suites = args.suite or list(SUITES)
    try:
        if args.dry_run:
            plan = plan_deb_src(source_entries(args.etc_apt), suites)
            if plan:
                print(plan, end="")
            else:
                print(f"deb-src already enabled for: {' '.join(suites)}")
            return 0
        written = ensure_deb_src(suites, etc_apt=args.etc_apt, update=not args.no_update)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    if written is None:
        _log.progress(f"deb-src already enabled for: {' '.join(suites)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
