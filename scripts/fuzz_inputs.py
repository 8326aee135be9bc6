#!/usr/bin/env python3
"""Fuzz the CLI with mutated recipes, source archives and wheels: every input must give a
result (exit 0/1) or ONE ``error:`` line with exit 2 — never a traceback.

    python scripts/fuzz_inputs.py [--iterations 3000] [--random-seed 0] [--crash-dir DIR]
        [--seed WHEEL ...] [--kinds recipe,archive,wheel]

Seeds are built here (the repository's recipes; small tar/zip source trees with links and
executable files; small wheels, plus the PE members of ``--seed`` wheels when given). Each
iteration mutates one seed — byte flips, truncation, duplicated runs, and structural edits
(hostile member names, links, duplicate entries, TOML keys) — and runs it through the CLI in
this process (``recipe show``, ``sources extract``, ``audit``, ``compare``). A crash is an
exception escaping the CLI, an exit code other than 0/1/2, or an exit 2 whose stderr is not
one ``error:`` line; crashing inputs are saved under --crash-dir. Exit 0 when nothing crashed.
PE-level mutations of real DLLs are scripts/fuzz_audit.py's job.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import random
import shutil
import sys
import tarfile
import tempfile
import time
import traceback
import zipfile
from pathlib import Path

from pillow_variants.cli import main as cli_main
from pillow_variants.pe import is_pe_name

ROOT = Path(__file__).resolve().parents[1]
WHEEL_NAME = "fuzz-1.0-cp313-cp313-win_amd64.whl"
HOSTILE_NAMES = ["../evil", "/abs/evil", "a/../../evil", "C:/evil", "x" * 300, "d/" * 200 + "f",
                 "pkg/\x00nul", "pkg/dup", "pkg/dup", "", ".", "pkg/../pkg/x"]  # fmt: skip
RECIPE_SNIPPETS = [
    b'\ninherits = "upstream.toml"\n', b"\n[dependencies.zlib]\ndepends = [\"zlib\"]\n",
    b"\n[recipe]\n", b"\x00", b"\xff\xfe", b"[[[[[[[[", b"= = =", b'"\\u001b[2J"',
    b"\npython = [\"3.x\"]\n", b"\n[patches]\nzlib = [\"../../etc/passwd\"]\n",
    b"\n[features.x]\nstate = \"removed\"\n", b"1e999", b"nan", b"inf",
]  # fmt: skip

RECIPE_TEXT = """
[recipe]
python = ["3.12"]
[pillow]
version = "13.0.0"
[pillow.source]
pip = "pillow==13.0.0"
sha256 = "unpinned"
sha256_source = "fuzz"
[dependencies.libfoo]
project = "libfoo"
version = "1.0"
build_system = "cmake"
license_files = ["COPYING"]
[dependencies.libfoo.source]
url = "http://127.0.0.1:9/libfoo-1.0.tar.gz"
sha256 = "unpinned"
sha256_source = "fuzz"
"""


# --------------------------------------------------------------------------------------------
# Seeds


def _tree() -> dict[str, bytes]:
    return {
        "libfoo-1.0/README": b"libfoo\n",
        "libfoo-1.0/configure": b"#!/bin/sh\necho ok\n",
        "libfoo-1.0/src/foo.c": b"".join(
            b"int f%d(void) { return %d; }\n" % (i, i) for i in range(200)
        ),  # fmt: skip
    }


def tar_seed(mode: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for name, data in _tree().items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755 if name.endswith("configure") else 0o644
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("libfoo-1.0/link")
        link.type, link.linkname = tarfile.SYMTYPE, "README"
        tar.addfile(link)
        hard = tarfile.TarInfo("libfoo-1.0/hard")
        hard.type, hard.linkname = tarfile.LNKTYPE, "libfoo-1.0/README"
        tar.addfile(hard)
    return buf.getvalue()


def zip_seed(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0))
            info.compress_type = method
            info.external_attr = (0o755 if name.endswith("configure") else 0o644) << 16
            zf.writestr(info, data)
        if any(n.startswith("libfoo") for n in members):
            link = zipfile.ZipInfo("libfoo-1.0/link", (2020, 1, 1, 0, 0, 0))
            link.external_attr = 0o120777 << 16
            zf.writestr(link, "README")
    return buf.getvalue()


def wheel_members(pe_files: list[bytes]) -> dict[str, bytes]:
    members = {f"fuzz/_m{i}.pyd": pe for i, pe in enumerate(pe_files[:3])}
    members["fuzz/__init__.py"] = b""
    members["fuzz-1.0.dist-info/WHEEL"] = b"Wheel-Version: 1.0\nTag: cp313-cp313-win_amd64\n"
    members["fuzz-1.0.dist-info/pillow_variants.manifest.json"] = (
        b'{"format_version": 1, "rungs": {"strict": {"passed": true}}}'
    )
    members["fuzz-1.0.dist-info/sboms/x.cdx.json"] = (
        b'{"components": [{"name": "zlib", "version": "1.3"}]}'
    )
    return members


def load_pe_seeds(paths: list[Path]) -> list[bytes]:
    out: list[bytes] = []
    for path in paths:
        with zipfile.ZipFile(path) as zf:
            out += [zf.read(n) for n in zf.namelist() if is_pe_name(n)]
    out = [pe for pe in out if len(pe) <= 2_000_000]
    return out or [b"MZ" + bytes(510)]


# --------------------------------------------------------------------------------------------
# Mutations


def mutate_bytes(data: bytes, rng: random.Random, snippets: list[bytes] = ()) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        if not buf:
            buf += b"\0"
        kind = rng.random()
        pos = rng.randrange(len(buf))
        if kind < 0.45:
            buf[pos] = rng.randrange(256)
        elif kind < 0.6:
            buf[pos : pos + rng.randint(1, 64)] = bytes(rng.randint(0, 64))
        elif kind < 0.75:
            buf[pos:pos] = buf[pos : pos + rng.randint(1, 512)]
        elif kind < 0.85 and snippets:
            buf[pos:pos] = rng.choice(snippets)
        else:
            del buf[pos:]
    return bytes(buf)


def mutate_members(members: dict[str, bytes], rng: random.Random) -> dict[str, bytes]:
    """Structural edits: hostile names, renamed or dropped members."""
    out = dict(members)
    for _ in range(rng.randint(1, 3)):
        if rng.random() < 0.5:
            out[rng.choice(HOSTILE_NAMES)] = rng.randbytes(rng.randint(0, 64))
        elif out:
            name = rng.choice(list(out))
            data = out.pop(name)
            if rng.random() < 0.5:
                out[name + rng.choice(["/", "/x", ".pyd", "\\..\\x"])] = data
    return out


# --------------------------------------------------------------------------------------------
# Running one input


class Crash(Exception):
    pass


#: The input being run, saved to --crash-dir when it crashes.
LAST_INPUT: dict[str, bytes] = {"data": b""}


def run(argv: list[str]) -> int:
    """The CLI in-process; raises Crash on a traceback, a bad exit code or a multi-line error."""
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli_main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code if isinstance(exc.code, int) else 2
    except Exception:
        raise Crash(f"{argv}: exception\n{traceback.format_exc()}") from None
    if code not in (0, 1, 2):
        raise Crash(f"{argv}: exit code {code}\n{err.getvalue()}")
    if code == 2:
        lines = err.getvalue().strip().splitlines()
        errors = [x for x in lines if x.startswith("error: ")]
        if len(errors) != 1 or lines[-1] != errors[0]:
            raise Crash(f"{argv}: exit 2 without one error line:\n{err.getvalue()}")
    return code


def fuzz_recipe(rng: random.Random, work: Path) -> int:
    recipes = work / "recipes"
    if not recipes.exists():
        shutil.copytree(ROOT / "recipes", recipes)
    target = rng.choice(["upstream.toml", "nanoserver.toml"])
    seed = (ROOT / "recipes" / target).read_bytes()
    data = mutate_bytes(seed, rng, RECIPE_SNIPPETS)
    (recipes / target).write_bytes(data)
    LAST_INPUT["data"] = data
    try:
        argv = ["recipe", "show", str(recipes / "nanoserver.toml")]
        code = run(argv + (["--json"] if rng.random() < 0.3 else []))
    finally:
        (recipes / target).write_bytes(seed)
    return code


def fuzz_archive(rng: random.Random, work: Path, seeds: dict[str, bytes]) -> int:
    kind = rng.choice(list(seeds))
    if kind == "zip" and rng.random() < 0.4:
        data = zip_seed(mutate_members(_tree(), rng))
    else:
        data = mutate_bytes(seeds[kind], rng)
    archive = work / f"libfoo-1.0.{kind}"
    archive.write_bytes(data)
    LAST_INPUT["data"] = data
    recipe = work / "fuzz.toml"
    if not recipe.exists():
        recipe.write_text(RECIPE_TEXT)
    dest = work / "dest"
    try:
        argv = ["sources", "extract", str(recipe), "libfoo", str(dest)]
        code = run(argv + ["--source", f"libfoo={archive}", "--cache-dir", str(work / "cache")])
    finally:
        shutil.rmtree(dest, ignore_errors=True)
        for debris in work.glob(".dest*"):
            shutil.rmtree(debris, ignore_errors=True)
    return code


def fuzz_wheel(rng: random.Random, work: Path, pe_seeds: list[bytes]) -> int:
    members = wheel_members(rng.sample(pe_seeds, min(len(pe_seeds), 2)))
    method = rng.choice([zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED, zipfile.ZIP_LZMA])
    if rng.random() < 0.3:
        members = mutate_members(members, rng)
    if rng.random() < 0.3:
        manifest = "fuzz-1.0.dist-info/pillow_variants.manifest.json"
        members[manifest] = mutate_bytes(members.get(manifest, b"{}"), rng, [b"NaN", b"[]"])
    data = zip_seed(members, method)
    if rng.random() < 0.7:
        data = mutate_bytes(data, rng)
    wheel = work / WHEEL_NAME
    wheel.write_bytes(data)
    LAST_INPUT["data"] = data
    if rng.random() < 0.5:
        code = run(["audit", str(wheel), "--json"] if rng.random() < 0.5 else ["audit", str(wheel)])
    else:
        other = work / "other" / WHEEL_NAME
        other.parent.mkdir(exist_ok=True)
        other.write_bytes(zip_seed(wheel_members(pe_seeds[:1])))
        code = run(["compare", str(wheel), str(other)] + (["--json"] if rng.random() < 0.5 else []))
    return code


def fuzz(iterations: int, rng_seed: int, kinds: list[str], pe_seeds: list[bytes],
         crash_dir: Path | None) -> int:  # fmt: skip
    rng = random.Random(rng_seed)
    archive_seeds = {
        f"tar.{c}" if c else "tar": tar_seed(f"w:{c}") for c in ("gz", "xz", "bz2", "")
    }
    archive_seeds["zip"] = zip_seed(_tree())
    counts = {k: [0, 0, 0] for k in kinds}  # exit 0, 1, 2
    crashes = 0
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for i in range(iterations):
            kind = kinds[i % len(kinds)]
            try:
                if kind == "recipe":
                    code = fuzz_recipe(rng, work)
                elif kind == "archive":
                    code = fuzz_archive(rng, work, archive_seeds)
                else:
                    code = fuzz_wheel(rng, work, pe_seeds)
                counts[kind][code] += 1
            except Crash as exc:
                crashes += 1
                print(f"CRASH at iteration {i} ({kind}): {exc}", file=sys.stderr)
                if crash_dir:
                    crash_dir.mkdir(parents=True, exist_ok=True)
                    (crash_dir / f"crash-{i}-{kind}.bin").write_bytes(LAST_INPUT["data"])
                    (crash_dir / f"crash-{i}-{kind}.txt").write_text(str(exc))
            if (i + 1) % 500 == 0:
                rate = (i + 1) / (time.monotonic() - start)
                print(
                    f"fuzz: {i + 1}/{iterations} ({rate:.0f}/s) crashes {crashes}", file=sys.stderr
                )
    for kind, (ok, findings, rejected) in counts.items():
        print(f"fuzz {kind}: {ok + findings + rejected} inputs: exit 0 {ok}, exit 1 {findings}, "
              f"exit 2 {rejected}")  # fmt: skip
    print(f"fuzz: {iterations} inputs, {crashes} crashes")
    return crashes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--random-seed", type=int, default=0)
    parser.add_argument("--crash-dir", type=Path)
    parser.add_argument("--seed", type=Path, action="append", default=[], help="wheel with PEs")
    parser.add_argument("--kinds", default="recipe,archive,wheel")
    args = parser.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    if not kinds or set(kinds) - {"recipe", "archive", "wheel"}:
        parser.error("--kinds: a comma-separated subset of recipe,archive,wheel")
    pe_seeds = load_pe_seeds(args.seed)
    return 1 if fuzz(args.iterations, args.random_seed, kinds, pe_seeds, args.crash_dir) else 0


if __name__ == "__main__":
    sys.exit(main())
