#!/usr/bin/env python3
"""Provide the dependencies' real upstream source trees from Debian, for CI and offline work.

The recipe's upstream URLs (GitHub, SourceForge, ...) are not always reachable; Debian's
archive is, and Debian keeps each upstream release as an untouched ``*.orig.tar.*`` tarball
beside its own packaging. This script downloads only those upstream tarballs — never the
Debian-patched tree — with ``apt-get source --download-only --tar-only NAME=VERSION``
(:func:`pillow_variants.sources.aptsrc.fetch_orig`), so apt verifies each file against the signed
Sources index; then it checks the sha256 pinned below (tests stay stable when Debian moves on).
zlib-ng is not in Debian: the ``zlib-ng`` sdist on the package index (Python bindings) bundles
zlib-ng's C tree, which is used instead.

Output: the tarballs under DEST, and ``--source NAME=PATH`` arguments for
``pillow-variants deps build`` — printed, written one per line with ``--args-file``, or as JSON
with ``--json``.

If deb-src is not enabled, :func:`pillow_variants.sources.aptsrc.ensure_deb_src` enables it (as
root; ``scripts/bootstrap.sh`` does it once for a fresh machine).

    python scripts/debian_sources.py --dest /tmp/pv-src --args-file /tmp/pv-src/args.txt
    pillow-variants deps build recipes/upstream.toml $(cat /tmp/pv-src/args.txt)

Versions that differ from the recipe (Debian has no exact match) are listed in
``PINS[...].note`` and printed; such trees are recorded as local overrides in the manifest.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pillow_variants.errors import SourceError, UserError
from pillow_variants.hashing import file_sha256
from pillow_variants.sources.aptsrc import check_sha256, fetch_orig
from pillow_variants.sources.fetch import pip_download_command


@dataclass(frozen=True)
class Pin:
    """One upstream tarball: where it comes from and its expected sha256."""

    component: str  # recipe dependency name
    package: str  # Debian source package, or the pip project for kind "pip"
    version: str  # Debian version (epoch included) or the pip version
    filename: str  # the orig tarball / sdist file name
    sha256: str
    upstream_version: str  # the upstream release inside
    kind: str = "deb"
    #: For "pip": the C tree inside the sdist.
    subdir: str = ""
    note: str = ""


PINS: dict[str, Pin] = {
    p.component: p
    for p in [
        Pin(
            "libjpeg",
            "libjpeg-turbo",
            "1:3.1.3-4",
            "libjpeg-turbo_3.1.3.orig.tar.gz",
            "3a13a5ba767dc8264bc40b185e41368a80d5d5f945944d1dbaa4b2fb0099f4e5",
            "3.1.3",
            note="recipe pins 3.2.0; Debian's nearest is 3.1.3",
        ),
        Pin(
            "zlib",
            "zlib-ng",
            "1.1.0",
            "zlib_ng-1.1.0.tar.gz",
            "08a3a8468d4f130e3dc80d28ec42fcc7a878a57dfed616233e791066327d78a3",
            "2.3.3",
            kind="pip",
            subdir="src/zlib_ng/zlib-ng",
            note="zlib-ng is not in Debian; the python-zlib-ng 1.1.0 sdist bundles zlib-ng 2.3.3",
        ),
        Pin(
            "xz",
            "xz-utils",
            "5.8.3-1",
            "xz-utils_5.8.3.orig.tar.xz",
            "fff1ffcf2b0da84d308a14de513a1aa23d4e9aa3464d17e64b9714bfdd0bbfb6",
            "5.8.3",
        ),
        Pin(
            "libwebp",
            "libwebp",
            "1.6.0-0.1",
            "libwebp_1.6.0.orig.tar.gz",
            "e4ab7009bf0629fd11982d4c2aa83964cf244cffba7347ecd39019a9e38c4564",
            "1.6.0",
        ),
        Pin(
            "libtiff",
            "tiff",
            "4.7.2-1",
            "tiff_4.7.2.orig.tar.bz2",
            "c5086d8f7c5ba51ca98241f24a8bd1cb66218c399077aeccbf6a236cf3152acc",
            "4.7.2",
        ),
        Pin(
            "libpng",
            "libpng1.6",
            "1.6.58-1",
            "libpng1.6_1.6.58.orig.tar.gz",
            "a9d4df463d36a6e5f9c29bd6f4967312d17e996c1854f3511f833924eb1993cf",
            "1.6.58",
        ),
        Pin(
            "brotli",
            "brotli",
            "1.2.0-4.1",
            "brotli_1.2.0.orig.tar.gz",
            "eb5f7dadf215d0670665fd81566e1fe2dfdc154d983f09142de7299df4c182e6",
            "1.2.0",
        ),
        Pin(
            "freetype",
            "freetype",
            "2.14.3+dfsg-1",
            "freetype_2.14.3+dfsg.orig.tar.xz",
            "dc1bec263a6fffa436029efe6428f601d6b1a0b800837508ee3e49bbab8f1006",
            "2.14.3",
            note="Debian's +dfsg repack of 2.14.3 (files without a free license removed)",
        ),
        Pin(
            "lcms2",
            "lcms2",
            "2.19.1-1",
            "lcms2_2.19.1.orig.tar.gz",
            "bfc54f7bab59fbc921012014a8032e4cba4abd46db47d46b76416a8c0b2815c8",
            "2.19.1",
        ),
        Pin(
            "openjpeg",
            "openjpeg2",
            "2.5.4-1.1",
            "openjpeg2_2.5.4.orig.tar.xz",
            "6f6cf917e9587bc2df83aee5b51aa22dd56111640b3bad290b93443b6a4682b7",
            "2.5.4",
        ),
        Pin(
            "harfbuzz",
            "harfbuzz",
            "12.3.2-2",
            "harfbuzz_12.3.2.orig.tar.xz",
            "6f6db164359a2da5a84ef826615b448b33e6306067ad829d85d5b0bf936f1bb8",
            "12.3.2",
            note="recipe pins 14.5.0; Debian's nearest is 12.3.2",
        ),
        Pin(
            "fribidi",
            "fribidi",
            "1.0.16-5",
            "fribidi_1.0.16.orig.tar.xz",
            "1b1cde5b235d40479e91be2f0e88a309e3214c8ab470ec8a2744d82a5a9ea05c",
            "1.0.16",
            note="recipe pins 1.0.17; Debian's nearest is 1.0.16",
        ),
        Pin(
            "libavif",
            "libavif",
            "1.4.2-1",
            "libavif_1.4.2.orig.tar.gz",
            "2b645287340ba5a631d268b551dc2d72bd73ac33335962dd36dcdb6d8366921d",
            "1.4.2",
        ),
        # libavif's codecs: the stable (trixie) release where it can be fetched.
        Pin(
            "dav1d",
            "dav1d",
            "1.5.1-1",
            "dav1d_1.5.1.orig.tar.xz",
            "401813f1f89fa8fd4295805aa5284d9aed9bc7fc1fdbe554af4292f64cbabe21",
            "1.5.1",
            note="recipe pins 1.5.3 (libavif 1.4.2's LOCAL tag); Debian stable has 1.5.1",
        ),
        Pin(
            "aom",
            "aom",
            "3.12.1-1+deb13u1",
            "aom_3.12.1.orig.tar.gz",
            "40c929a41b2a59c24319a699c358351422829b3ae646de31b18cbabed0191962",
            "3.12.1",
            note="recipe pins 3.14.1 (libavif 1.4.2's LOCAL tag); Debian stable has 3.12.1",
        ),
        Pin(
            "libyuv",
            "libyuv",
            "0.0~git20230123.b2528b0-1",
            "libyuv_0.0~git20230123.b2528b0.orig.tar.gz",
            "cc22ebe94004ac2e5718acdc45980c6f3b83599f19f5bd768c5ca034de659eef",
            "git-b2528b0 (LIBYUV_VERSION 1857)",
            note="recipe pins commit 644251f25 (libavif 1.4.2's LOCAL checkout); the newer "
            "Debian orig tarballs (trixie, sid) are missing from the archive mirror, so this is "
            "bookworm's b2528b0 (libyuv 1857; libavif wants >= 1813 for all its fast paths)",
        ),
    ]
}

#: What ``deps build --toolchain zig`` builds (the static libraries linked into the wheel).
DEFAULT = [
    "libjpeg",
    "zlib",
    "xz",
    "libwebp",
    "libtiff",
    "libpng",
    "brotli",
    "freetype",
    "lcms2",
    "openjpeg",
    "harfbuzz",
    "dav1d",
    "aom",
    "libyuv",
    "libavif",
]


def fetch_deb(pin: Pin, dest: Path) -> Path:
    """The orig tarball of ``pin``, downloaded by apt and checked against the pin."""
    return fetch_orig(pin.package, pin.version, pin.filename, pin.sha256, dest)


def fetch_pip(pin: Pin, dest: Path) -> Path:
    """The C tree inside a pinned sdist, extracted to ``DEST/<project>-<upstream version>``."""
    tree = dest / f"{pin.package}-{pin.upstream_version}"
    marker = tree / ".pillow-variants-sdist-sha256"
    if marker.is_file() and marker.read_text().strip() == pin.sha256:
        return tree
    sdist = dest / pin.filename
    if not (sdist.is_file() and file_sha256(sdist) == pin.sha256):
        proc = subprocess.run(
            pip_download_command(f"{pin.package}=={pin.version}", dest),
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0 or not sdist.is_file():
            raise SourceError(
                f"pip download {pin.package}=={pin.version}: {proc.stderr.strip()[-400:]}"
            )
    check_sha256(sdist, pin.sha256)
    if tree.exists():
        shutil.rmtree(tree)
    with tempfile.TemporaryDirectory(dir=dest) as tmp, tarfile.open(sdist) as tar:
        tar.extractall(tmp, filter="data")
        (top,) = Path(tmp).iterdir()
        inner = top / pin.subdir
        if not (inner / "CMakeLists.txt").is_file():
            raise SourceError(f"{pin.filename}: no C source tree at {pin.subdir}")
        gitlink = inner / ".git"  # a submodule pointer; it would confuse 'git apply'
        if gitlink.is_file():
            gitlink.unlink()
        shutil.move(str(inner), tree)
    marker.write_text(pin.sha256 + "\n")
    return tree


def provide(components: list[str], dest: Path) -> dict[str, Path]:
    """Download (or reuse) and verify the sources; return component → path for --source."""
    unknown = [c for c in components if c not in PINS]
    if unknown:
        raise SourceError(f"no Debian pin for {', '.join(unknown)} (known: {', '.join(PINS)})")
    pins = [PINS[c] for c in components]
    dest.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for pin in pins:
        out[pin.component] = fetch_pip(pin, dest) if pin.kind == "pip" else fetch_deb(pin, dest)
        print(f"{pin.component}: {out[pin.component].name}", file=sys.stderr)
    return out


def source_args(paths: dict[str, Path]) -> list[str]:
    return [f"--source={name}={path}" for name, path in paths.items()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", type=Path, required=True, help="download directory")
    parser.add_argument("--only", nargs="+", default=None, help="components (default: %(default)s)")
    parser.add_argument("--all", action="store_true", help="every pinned component")
    parser.add_argument("--args-file", type=Path, help="write one --source=NAME=PATH per line")
    parser.add_argument("--json", action="store_true", help="print {component: path} as JSON")
    args = parser.parse_args(argv)
    components = list(PINS) if args.all else (args.only or DEFAULT)
    try:
        paths = provide(components, args.dest.resolve())
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for c in components:
        if PINS[c].note:
            print(f"note: {c}: {PINS[c].note}", file=sys.stderr)
    lines = source_args(paths)
    if args.args_file:
        args.args_file.write_text("".join(line + "\n" for line in lines))
    if args.json:
        print(json.dumps({k: str(v) for k, v in paths.items()}, indent=2))
    else:
        print(" ".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
