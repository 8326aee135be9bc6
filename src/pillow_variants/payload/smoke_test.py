"""Smoke test of a Pillow build, run INSIDE the Python that has that Pillow installed.

Used by ``pillow-variants verify wine`` (embeddable CPython under Wine) and, later, inside
Windows containers (nanoserver, servercore); it also runs on Linux/macOS. It is deliberately
self-contained: standard library + PIL only, one file, no network, no fixture files -- a wheel
carries no test data and a nanoserver container has nothing else to offer.

What it checks, and why that way:

* Formats: every codec the build *claims* (``PIL.features``) must work, because a claimed but
  broken codec is exactly what a patched or re-linked dependency can cause. Lossless formats must
  round-trip pixel-exactly; lossy ones (JPEG, lossy WEBP/AVIF/JPEG 2000) within a tolerance.
  Optional libtiff codecs (webp, lzma, zstd inside TIFF) are compile-time choices of libtiff that
  Pillow cannot query: one that refuses to encode is recorded as "skip"; one that encodes must
  decode correctly. Every other format registered for saving is swept (save, reopen, compare).
* Text: a TrueType font is generated here (a box glyph with known metrics), so FreeType's output
  can be checked geometrically; Pillow's bundled default font (``load_default(size)``) and an
  optional ``--font PATH`` are drawn as well.
* ImageCms: sRGB -> LAB with profiles from ``ImageCms.createProfile`` against known LAB values.
* ImageOps/ImageFilter: operations with exactly predictable results.
* Windows GDI (``sys.platform == "win32"`` only): with ``--variant nanoserver`` the removed GDI
  features must raise the documented error -- ``OSError`` or ``NotImplementedError`` whose message
  mentions nanoserver or GDI -- and ``ImageCms.get_display_profile()`` must return None. With the
  upstream variant the GDI entry points must exist and work; ``ImageGrab.grab()`` is not called
  under Wine or without a desktop, where it fails for lack of a screen, not of Pillow.

Output: one line per check, a summary, and as the LAST line a JSON object
``{"smoke": "pass"|"fail", "checks": [...], "features": {...}, ...}``. Exit code 0 on pass, 1 on
fail.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import struct
import sys
import traceback
from collections.abc import Callable
from typing import Any

PASS, FAIL, SKIP = "pass", "fail", "skip"


class CheckFailed(Exception):
    """A check's expectation was not met (as opposed to an unexpected exception)."""


class Skip(Exception):
    """The check does not apply to this build or platform; the reason is recorded."""


class Runner:
    """Runs named checks, records their outcome, never stops at the first failure."""

    def __init__(self, verbose: bool = True) -> None:
        self.checks: list[dict[str, str]] = []
        self.verbose = verbose

    def run(self, name: str, fn: Callable[[], str | None]) -> bool:
        try:
            detail = fn() or ""
            status = PASS
        except Skip as exc:
            status, detail = SKIP, str(exc)
        except CheckFailed as exc:
            status, detail = FAIL, str(exc)
        except Exception as exc:  # noqa: BLE001 - any exception in a check is a failure to report
            tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
            status, detail = FAIL, f"unexpected {tb}"
        self.checks.append({"name": name, "status": status, "detail": detail})
        if self.verbose:
            print(f"{status.upper():<4}  {name}" + (f"  -- {detail}" if detail else ""), flush=True)
        return status == PASS

    @property
    def failed(self) -> list[dict[str, str]]:
        return [c for c in self.checks if c["status"] == FAIL]


def expect(cond: bool, message: str) -> None:
    if not cond:
        raise CheckFailed(message)


# --------------------------------------------------------------------------------------------
# Test images and comparisons


def make_image(mode: str, size: tuple[int, int] = (37, 23), smooth: bool = False) -> Any:
    """A deterministic image with gradients in ``mode`` (odd size: catches stride bugs).

    The blue channel is high-frequency unless ``smooth`` (lossy codecs get the smooth image, so
    a small tolerance still catches a broken codec).
    """
    from PIL import Image

    w, h = size
    rgb = Image.new("RGB", size)
    blue = (
        (lambda x, y: (x + y) * 255 // (w + h - 2)) if smooth else (lambda x, y: (x + y) * 37 % 256)
    )
    rgb.putdata(
        [
            ((x * 255) // (w - 1), (y * 255) // (h - 1), blue(x, y))
            for y in range(h)
            for x in range(w)
        ]
    )
    if mode == "RGB":
        return rgb
    if mode == "RGBA":
        im = rgb.copy()
        im.putalpha(Image.linear_gradient("L").resize(size))
        return im
    if mode == "P":
        return rgb.quantize(colors=64, dither=Image.Dither.NONE)
    if mode == "1":
        return rgb.convert("L").point(lambda v: 255 if v > 127 else 0).convert("1")
    if mode == "I;16":
        im = Image.new("I;16", size)
        im.putdata([(x * 1771 + y * 613) % 65536 for y in range(h) for x in range(w)])
        return im
    if mode == "I":
        return rgb.convert("L").convert("I").point(lambda v: v * 1000 - 50000)
    if mode == "F":
        return rgb.convert("L").convert("F").point(lambda v: v / 3.0)
    return rgb.convert(mode)


def mean_abs_diff(a: Any, b: Any) -> float:
    from PIL import ImageChops, ImageStat

    diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB"))
    return sum(ImageStat.Stat(diff).mean) / 3.0


def same_pixels(a: Any, b: Any) -> bool:
    if a.size != b.size:
        return False
    if a.mode == "P" or b.mode == "P":
        a, b = a.convert("RGBA"), b.convert("RGBA")
    if a.mode != b.mode:
        return False
    return a.tobytes() == b.tobytes()


def roundtrip(im: Any, fmt: str, **params: Any) -> Any:
    from PIL import Image

    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    expect(buf.tell() > 0, f"{fmt} writer produced no data")
    buf.seek(0)
    out = Image.open(buf)
    out.load()
    expect(out.format == fmt, f"reopened as {out.format}, expected {fmt}")
    expect(out.size == im.size, f"size {out.size} != {im.size}")
    return out


def lossless(
    fmt: str, mode: str, expect_mode: str | None = None, **params: Any
) -> Callable[[], str]:
    def check() -> str:
        im = make_image(mode)
        out = roundtrip(im, fmt, **params)
        if expect_mode is not None:
            expect(out.mode == expect_mode, f"mode {out.mode} != {expect_mode}")
            im = im.convert(expect_mode)
        expect(same_pixels(im, out), f"{fmt} {mode} pixels differ after round trip")
        return f"{out.mode} {out.size[0]}x{out.size[1]} exact"

    return check


def lossy(fmt: str, mode: str, tolerance: float, **params: Any) -> Callable[[], str]:
    def check() -> str:
        im = make_image(mode, (64, 48), smooth=True)
        out = roundtrip(im, fmt, **params)
        d = mean_abs_diff(im, out)
        expect(d <= tolerance, f"mean abs difference {d:.2f} > {tolerance}")
        return f"{out.mode} mean abs diff {d:.2f} (<= {tolerance})"

    return check


# --------------------------------------------------------------------------------------------
# Formats


def require(feature: str) -> None:
    from PIL import features

    if not features.check(feature):
        raise Skip(f"build does not claim {feature}")


def format_checks(r: Runner) -> set[str]:
    """Round trips of the formats Pillow's own codecs and the claimed libraries provide."""
    from PIL import features

    done = {"PNG", "JPEG", "JPEG2000", "TIFF", "WEBP", "GIF", "BMP", "ICO", "PPM", "AVIF", "ICNS"}
    zlib = features.check("zlib")
    for mode in ("RGB", "RGBA", "L", "LA", "P", "1", "I;16"):
        r.run(f"PNG {mode}", _needs(zlib, "zlib", lossless("PNG", mode)))
    r.run("PNG optimize+interlace", _needs(zlib, "zlib", lossless("PNG", "RGB", optimize=True)))

    jpg = features.check("jpg")
    for mode in ("RGB", "L", "CMYK"):
        r.run(f"JPEG {mode}", _needs(jpg, "jpg", lossy("JPEG", mode, 6.0, quality=95)))
    r.run(
        "JPEG progressive",
        _needs(jpg, "jpg", lossy("JPEG", "RGB", 6.0, quality=95, progressive=True)),
    )
    r.run(
        "JPEG subsampling 4:2:0 q75",
        _needs(jpg, "jpg", lossy("JPEG", "RGB", 12.0, quality=75, subsampling=2)),
    )

    j2k = features.check("jpg_2000")
    r.run(
        "JPEG2000 RGB lossless",
        _needs(j2k, "jpg_2000", lossless("JPEG2000", "RGB", irreversible=False)),
    )
    r.run("JPEG2000 L lossless", _needs(j2k, "jpg_2000", lossless("JPEG2000", "L")))
    r.run(
        "JPEG2000 RGB lossy",
        _needs(
            j2k,
            "jpg_2000",
            lossy("JPEG2000", "RGB", 8.0, quality_mode="rates", quality_layers=[10]),
        ),
    )
    r.run("JPEG2000 codestream", _needs(j2k, "jpg_2000", lossless("JPEG2000", "RGB", no_jp2=True)))

    tiff_checks(r)

    webp = features.check("webp")
    r.run("WEBP RGB lossless", _needs(webp, "webp", lossless("WEBP", "RGB", lossless=True)))
    r.run(
        "WEBP RGBA lossless",
        _needs(webp, "webp", lossless("WEBP", "RGBA", lossless=True, exact=True)),
    )
    r.run("WEBP RGB lossy", _needs(webp, "webp", lossy("WEBP", "RGB", 10.0, quality=90)))
    r.run("WEBP animated", _needs(webp, "webp", lambda: animated("WEBP", lossless=True)))

    avif = features.check("avif")
    r.run("AVIF RGB lossy", _needs(avif, "avif", lossy("AVIF", "RGB", 10.0, quality=90)))
    r.run("AVIF RGBA", _needs(avif, "avif", lossy("AVIF", "RGBA", 10.0, quality=90)))

    r.run("GIF P", lossless("GIF", "P"))
    r.run("GIF L", lossless("GIF", "L"))
    r.run("GIF animated", lambda: animated("GIF"))
    for mode in ("RGB", "L", "P", "1"):
        r.run(f"BMP {mode}", lossless("BMP", mode))
    r.run("ICO RGBA", lambda: ico())
    for mode in ("RGB", "L", "1", "I;16"):
        expect_mode = "I" if mode == "I;16" else None
        r.run(f"PPM {mode}", lossless("PPM", mode, expect_mode=expect_mode))
    r.run("ICNS RGBA", icns)
    return done


def avif_checks(r: Runner) -> None:
    """AVIF through both codecs the wheels bundle: aom encodes, dav1d decodes. Named
    explicitly, so a build that silently falls back to another codec (or has none) fails."""
    from PIL import features

    r.run("AVIF codecs", _needs(features.check("avif"), "avif", _avif_codecs))
    r.run("AVIF aom→dav1d round trip", _needs(features.check("avif"), "avif", _avif_roundtrip))


def _avif_codecs() -> str:
    from PIL import _avif  # type: ignore[attr-defined]

    expect(_avif.encoder_codec_available("aom"), "no aom encoder in _avif")
    expect(_avif.decoder_codec_available("dav1d"), "no dav1d decoder in _avif")
    return str(_avif.codec_versions())


def _avif_roundtrip() -> str:
    from PIL import AvifImagePlugin, Image

    im = make_image("RGB", (64, 48), smooth=True)
    buf = io.BytesIO()
    im.save(buf, "AVIF", codec="aom", quality=90)
    expect(buf.getvalue()[4:12] == b"ftypavif", "the AVIF writer did not write an avif file")
    old, AvifImagePlugin.DECODE_CODEC_CHOICE = AvifImagePlugin.DECODE_CODEC_CHOICE, "dav1d"
    try:
        buf.seek(0)
        with Image.open(buf) as out:
            out.load()
            expect(out.format == "AVIF" and out.size == im.size, f"{out.format} {out.size}")
            d = mean_abs_diff(im, out.convert("RGB"))
    finally:
        AvifImagePlugin.DECODE_CODEC_CHOICE = old
    expect(d <= 10.0, f"mean abs difference {d:.2f} > 10.0")
    return f"{len(buf.getvalue())} bytes, mean abs diff {d:.2f} (<= 10.0)"


def _needs(claimed: bool, feature: str, fn: Callable[[], str]) -> Callable[[], str]:
    def check() -> str:
        if not claimed:
            raise Skip(f"build does not claim {feature}")
        return fn()

    return check


def animated(fmt: str, **params: Any) -> str:
    from PIL import Image, ImageSequence

    frames = [make_image("RGB").quantize(colors=32, dither=Image.Dither.NONE).convert("RGB")]
    frames.append(frames[0].transpose(Image.Transpose.ROTATE_180))
    buf = io.BytesIO()
    frames[0].save(
        buf, fmt, save_all=True, append_images=frames[1:], duration=100, loop=0, **params
    )
    buf.seek(0)
    out = Image.open(buf)
    expect(getattr(out, "n_frames", 1) == 2, f"{getattr(out, 'n_frames', 1)} frames, expected 2")
    got = [f.convert("RGB") for f in ImageSequence.Iterator(out)]
    for i, (a, b) in enumerate(zip(frames, got, strict=True)):
        expect(same_pixels(a, b), f"frame {i} differs")
    return "2 frames exact"


def ico() -> str:
    from PIL import Image

    im = make_image("RGBA", (48, 48))
    buf = io.BytesIO()
    im.save(buf, "ICO", sizes=[(16, 16), (32, 32), (48, 48)])
    buf.seek(0)
    out = Image.open(buf)
    expect(out.format == "ICO", f"reopened as {out.format}")
    sizes = sorted(out.info.get("sizes", set()))
    expect(sizes == [(16, 16), (32, 32), (48, 48)], f"sizes {sizes}")
    out.size = (48, 48)  # IcoImageFile selects the entry through .size
    out.load()
    expect(same_pixels(im, out.convert("RGBA")), "48x48 entry differs")
    return "3 sizes, 48x48 exact"


def icns() -> str:
    """ICNS stores a fixed set of sizes (resampled from the input); check the 16x16@2x entry."""
    from PIL import Image

    im = make_image("RGBA", (32, 32))
    buf = io.BytesIO()
    im.save(buf, "ICNS")
    buf.seek(0)
    out = Image.open(buf)
    expect(out.format == "ICNS", f"reopened as {out.format}")
    sizes = out.info.get("sizes", [])
    expect((16, 16, 2) in sizes, f"no 16x16@2x entry in {sizes}")
    out.size = (16, 16)  # IcnsImageFile selects the entry through .size + scale
    out.load(scale=2)
    expect(same_pixels(im, out.convert("RGBA")), "16x16@2x entry differs from the 32x32 input")
    return f"{len(sizes)} sizes, 16x16@2x exact"


# libtiff compressions: always-built ones must work; optional codecs may be absent from libtiff.
TIFF_REQUIRED = ("raw", "tiff_lzw", "packbits")
TIFF_ZLIB = ("tiff_adobe_deflate", "tiff_deflate")
TIFF_OPTIONAL_LOSSLESS = ("tiff_lzma", "tiff_zstd", "tiff_webp")


def tiff_checks(r: Runner) -> None:
    from PIL import features

    libtiff = features.check("libtiff")
    r.run("TIFF RGB (Pillow writer)", lossless("TIFF", "RGB"))
    r.run("TIFF I;16", lossless("TIFF", "I;16"))
    r.run("TIFF F", lossless("TIFF", "F"))
    for comp in TIFF_REQUIRED:
        r.run(f"TIFF {comp}", _needs(libtiff, "libtiff", lossless("TIFF", "RGB", compression=comp)))
    r.run(
        "TIFF group4 (1-bit)",
        _needs(libtiff, "libtiff", lossless("TIFF", "1", compression="group4")),
    )
    for comp in TIFF_ZLIB:
        r.run(
            f"TIFF {comp}",
            _needs(
                libtiff and features.check("zlib"),
                "libtiff+zlib",
                lossless("TIFF", "RGB", compression=comp),
            ),
        )
    r.run(
        "TIFF jpeg",
        _needs(
            libtiff and features.check("jpg"),
            "libtiff+jpg",
            lossy("TIFF", "RGB", 8.0, compression="jpeg", quality=95),
        ),
    )
    for comp in TIFF_OPTIONAL_LOSSLESS:
        params: dict[str, Any] = {"compression": comp}
        if comp == "tiff_webp":
            params["lossless"] = True
        r.run(f"TIFF {comp} (optional)", _needs(libtiff, "libtiff", _optional_codec(comp, params)))


def _optional_codec(comp: str, params: dict[str, Any]) -> Callable[[], str]:
    def check() -> str:
        im = make_image("RGB")
        buf = io.BytesIO()
        try:
            im.save(buf, "TIFF", **params)
        except (OSError, ValueError) as exc:
            raise Skip(f"libtiff in this build does not encode {comp}: {exc}") from None
        from PIL import Image

        buf.seek(0)
        out = Image.open(buf)
        out.load()
        if comp == "tiff_webp":  # libtiff's WEBP lossless flag is a codec option; allow lossy
            d = mean_abs_diff(im, out)
            expect(d <= 10.0, f"mean abs difference {d:.2f}")
            return f"encoded and decoded, mean abs diff {d:.2f}"
        expect(same_pixels(im, out), "pixels differ")
        return "encoded, decoded exact"

    return check


# Formats swept generically: tried modes in order; lossless ones must round-trip exactly.
SWEEP_MODES = ("RGB", "L", "RGBA", "P", "1", "F")
SWEEP_LOSSY = {"DDS"}  # DDS may pick a block-compressed pixel format
WRITE_ONLY_OK = {"PDF", "PALM", "EPS", "XV", "MPO", "BUFR", "GRIB", "HDF5", "WMF"}


def sweep_formats(r: Runner, done: set[str]) -> None:
    """Every other format registered for saving: save in the first mode it accepts, reopen."""
    from PIL import Image

    Image.init()
    for fmt in sorted(set(Image.SAVE) - done):
        r.run(f"sweep {fmt}", lambda fmt=fmt: _sweep_one(fmt))


def _sweep_one(fmt: str) -> str:
    from PIL import Image

    errors = []
    for mode in SWEEP_MODES:
        im = make_image(mode)
        buf = io.BytesIO()
        try:
            im.save(buf, fmt)
        except Exception as exc:  # noqa: BLE001 - an unsupported mode is the usual reason
            errors.append(f"{mode}: {exc}")
            continue
        if fmt in WRITE_ONLY_OK or fmt not in Image.OPEN:
            expect(buf.tell() > 0, "writer produced no data")
            return f"{mode} written ({buf.tell()} bytes); not reopened (write-only here)"
        buf.seek(0)
        out = Image.open(buf)
        out.load()
        expect(out.size == im.size, f"size {out.size} != {im.size}")
        ref = im if out.mode == im.mode else im.convert(out.mode)
        if same_pixels(ref, out):
            return f"{mode} -> {out.mode} exact"
        expect(fmt in SWEEP_LOSSY, f"{mode} -> {out.mode}: pixels differ")
        d = mean_abs_diff(ref, out)
        expect(d <= 12.0, f"{mode} -> {out.mode}: mean abs difference {d:.2f}")
        return f"{mode} -> {out.mode}, mean abs diff {d:.2f}"
    if fmt in WRITE_ONLY_OK:
        raise Skip(f"needs an external handler or program ({errors[0]})")
    raise CheckFailed(f"no mode could be saved: {'; '.join(errors)[:300]}")


# --------------------------------------------------------------------------------------------
# Text


def box_font() -> bytes:
    """A minimal TrueType font: glyph 'I' is a filled box, ' ' is empty; units per em 1000.

    'I' has advance 600 and a box from (100, 0) to (500, 700); ascender 800, descender -200.
    Generated here so that FreeType rendering can be checked against known geometry without
    shipping or downloading a font.
    """

    def table_checksum(data: bytes) -> int:
        data += b"\0" * (-len(data) % 4)
        return sum(struct.unpack(f">{len(data) // 4}I", data)) & 0xFFFFFFFF

    box = struct.pack(">hhhhh", 1, 100, 0, 500, 700)  # one contour, bbox
    box += struct.pack(">HH", 3, 0)  # endPtsOfContours[0]=3, no instructions
    box += bytes([0x01] * 4)  # four on-curve points, 16-bit deltas
    box += struct.pack(">hhhh", 100, 0, 400, 0)  # x deltas: 100,100,500,500
    box += struct.pack(">hhhh", 0, 700, 0, -700)  # y deltas: 0,700,700,0 (clockwise)
    glyphs = [b"", box, b""]  # .notdef, I, space
    glyf = b"".join(g + b"\0" * (len(g) % 2) for g in glyphs)
    offsets = [0]
    for g in glyphs:
        offsets.append(offsets[-1] + len(g) + len(g) % 2)
    loca = struct.pack(f">{len(offsets)}H", *(o // 2 for o in offsets))
    metrics = [(500, 0), (600, 100), (300, 0)]
    hmtx = b"".join(struct.pack(">Hh", a, lsb) for a, lsb in metrics)
    head = struct.pack(
        ">IIIIHHqqhhhhHHhhh",
        0x00010000, 0x00010000, 0, 0x5F0F3CF5, 0x000B, 1000, 0, 0,
        0, -200, 600, 800, 0, 8, 2, 0, 0,
    )  # fmt: skip
    hhea = struct.pack(
        ">IhhhHhhhhhhhhhhhH",
        0x00010000, 800, -200, 0, 600, 0, 0, 500, 1, 0, 0, 0, 0, 0, 0, 0, len(glyphs),
    )  # fmt: skip
    maxp = struct.pack(
        ">IHHHHHHHHHHHHHH", 0x00010000, len(glyphs), 4, 1, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0
    )
    # cmap format 4: ' ' -> 2, 'I' -> 1, plus the mandatory 0xFFFF end segment
    segs = [(0x20, 0x20, 2 - 0x20), (0x49, 0x49, 1 - 0x49), (0xFFFF, 0xFFFF, 1)]
    n = len(segs)
    sub = struct.pack(">HHHHHHH", 4, 16 + 8 * n, 0, 2 * n, 4, 1, 2 * n - 4)
    sub += struct.pack(f">{n}H", *(e for _, e, _ in segs)) + b"\0\0"
    sub += struct.pack(f">{n}H", *(s for s, _, _ in segs))
    sub += struct.pack(f">{n}h", *(((d + 0x8000) % 0x10000) - 0x8000 for _, _, d in segs))
    sub += struct.pack(f">{n}H", *([0] * n))
    cmap = struct.pack(">HHHHI", 0, 1, 3, 1, 12) + sub
    names = {1: "PVSmokeBox", 2: "Regular", 4: "PVSmokeBox Regular", 6: "PVSmokeBox-Regular"}
    strings = b""
    records = b""
    for nid, text in names.items():
        raw = text.encode("utf-16-be")
        records += struct.pack(">HHHHHH", 3, 1, 0x409, nid, len(raw), len(strings))
        strings += raw
    name = struct.pack(">HHH", 0, len(names), 6 + 12 * len(names)) + records + strings
    post = struct.pack(">IIhhIIIII", 0x00030000, 0, -100, 50, 0, 0, 0, 0, 0)
    os2 = struct.pack(
        ">HhHHHhhhhhhhhhhh10sIIII4sHHHhhhHHII",
        1, 500, 400, 5, 0, 650, 700, 0, 140, 650, 700, 0, 480, 50, 300, 0,
        b"\0" * 10, 1, 0, 0, 0, b"PVSB", 0x40, 0x20, 0x49, 800, -200, 0, 800, 200, 1, 0,
    )  # fmt: skip
    tables = {
        b"OS/2": os2, b"cmap": cmap, b"glyf": glyf, b"head": head, b"hhea": hhea,
        b"hmtx": hmtx, b"loca": loca, b"maxp": maxp, b"name": name, b"post": post,
    }  # fmt: skip
    num = len(tables)
    entry_sel = num.bit_length() - 1
    out = struct.pack(
        ">IHHHH", 0x00010000, num, 16 << entry_sel, entry_sel, num * 16 - (16 << entry_sel)
    )
    offset = 12 + 16 * num
    body = b""
    for tag in sorted(tables):
        data = tables[tag]
        out += struct.pack(">4sIII", tag, table_checksum(data), offset + len(body), len(data))
        body += data + b"\0" * (-len(data) % 4)
    return out + body


def text_checks(r: Runner, font_path: str | None) -> None:
    from PIL import features

    ft = features.check("freetype2")
    r.run("FreeType generated box font geometry", _needs(ft, "freetype2", _box_font_check))
    r.run("FreeType bundled default font", _needs(ft, "freetype2", _default_font_check))
    if font_path:
        r.run(
            f"FreeType --font {font_path}",
            _needs(ft, "freetype2", lambda: _draw_text_check(font_path)),
        )
    if features.check("raqm"):
        r.run("FreeType RAQM layout", _raqm_check)
    r.run("bitmap default font (no FreeType)", _bitmap_font_check)


def _box_font_check() -> str:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(io.BytesIO(box_font()), 100)
    expect(font.getname() == ("PVSmokeBox", "Regular"), f"name {font.getname()}")
    length = font.getlength("I I")
    expect(abs(length - 150.0) < 0.01, f"getlength('I I') = {length}, expected 150")
    bbox = font.getbbox("I", anchor="ls")
    expect(bbox[1:4:2] == (-70, 0), f"getbbox('I', anchor='ls') = {bbox}, expected y from -70 to 0")
    im = Image.new("L", (200, 120), 0)
    ImageDraw.Draw(im).text((20, 100), "II", font=font, fill=255, anchor="ls")
    # glyph boxes at x 30..70 and 90..130, y 30..100 -- 2 * 40 * 70 = 5600 pixels
    lit = lit_pixels(im)
    expect(abs(lit - 5600) <= 160, f"{lit} lit pixels, expected ~5600")
    for xy, val in (
        ((50, 65), 255),
        ((110, 65), 255),
        ((80, 65), 0),
        ((50, 20), 0),
        ((50, 105), 0),
    ):
        expect(im.getpixel(xy) == val, f"pixel {xy} = {im.getpixel(xy)}, expected {val}")
    return f"metrics exact, {lit} lit pixels"


def lit_pixels(im: Any) -> int:
    """Pixels of an "L" image above half intensity."""
    return sum(1 for v in im.tobytes() if v > 127)


def _default_font_check() -> str:
    from PIL import ImageFont

    font = ImageFont.load_default(size=24)
    expect(
        isinstance(font, ImageFont.FreeTypeFont), f"load_default(size) gave {type(font).__name__}"
    )
    return _draw_text_check(font)


def _draw_text_check(font: Any) -> str:
    from PIL import Image, ImageDraw, ImageFont

    if isinstance(font, str):
        font = ImageFont.truetype(font, 24)
    im = Image.new("L", (300, 60), 0)
    ImageDraw.Draw(im).text((10, 10), "Hamburgefonstiv I", font=font, fill=255)
    bbox = im.getbbox()
    expect(bbox is not None, "nothing was drawn")
    assert bbox is not None
    lit = lit_pixels(im)
    expect(
        bbox[2] - bbox[0] > 5 and 50 < lit < 6000,
        f"implausible rendering: bbox {bbox}, {lit} lit",
    )
    return f"{font.getname()[0]}: bbox {bbox}, {lit} lit pixels"


def _raqm_check() -> str:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(io.BytesIO(box_font()), 50, layout_engine=ImageFont.Layout.RAQM)
    expect(
        abs(font.getlength("II", features=["-kern"]) - 60.0) < 0.01, "RAQM advance of 'II' != 60"
    )
    im = Image.new("L", (200, 60), 0)
    ImageDraw.Draw(im).text((5, 5), "II", font=font, fill=255, features=["-kern"])
    expect(im.getbbox() is not None, "nothing drawn with RAQM layout")
    return "drawn with layout features"


def _bitmap_font_check() -> str:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default_imagefont()
    im = Image.new("L", (100, 20), 0)
    ImageDraw.Draw(im).text((2, 2), "Hello", font=font, fill=255)
    expect(im.getbbox() is not None, "nothing drawn")
    return f"bbox {im.getbbox()}"


# --------------------------------------------------------------------------------------------
# ImageCms, ImageOps, ImageFilter


def cms_checks(r: Runner) -> None:
    from PIL import features

    r.run(
        "ImageCms sRGB->LAB known values",
        _needs(features.check("littlecms2"), "littlecms2", _cms_lab),
    )
    r.run(
        "ImageCms sRGB->LAB->sRGB round trip",
        _needs(features.check("littlecms2"), "littlecms2", _cms_roundtrip),
    )


def _cms_lab() -> str:
    from PIL import Image, ImageCms

    srgb, lab = ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB")
    xf = ImageCms.buildTransform(srgb, lab, "RGB", "LAB")
    # Pillow's LAB: L scaled to 0..255, a/b offset by 128. sRGB red is D50 LAB (54.3, 80.8, 69.9).
    cases = {
        (255, 255, 255): (255, 128, 128),
        (0, 0, 0): (0, 128, 128),
        (255, 0, 0): (138, 209, 198),
    }
    got = {}
    for rgb, want in cases.items():
        px = ImageCms.applyTransform(Image.new("RGB", (1, 1), rgb), xf).getpixel((0, 0))
        got[rgb] = px
        expect(
            all(abs(a - b) <= 3 for a, b in zip(px, want, strict=True)),
            f"{rgb} -> LAB {px}, expected ~{want}",
        )
    return f"white/black/red -> {list(got.values())}"


def _cms_roundtrip() -> str:
    from PIL import ImageCms

    srgb, lab = ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB")
    im = make_image("RGB")
    to_lab = ImageCms.profileToProfile(im, srgb, lab, outputMode="LAB")
    assert to_lab is not None
    back = ImageCms.profileToProfile(to_lab, lab, srgb, outputMode="RGB")
    d = mean_abs_diff(im, back)
    expect(d <= 2.5, f"mean abs difference {d:.2f}")
    return f"mean abs diff {d:.2f}"


def ops_checks(r: Runner) -> None:
    r.run("ImageOps flip/mirror/invert/grayscale", _ops)
    r.run("ImageFilter blur/edges/median on known input", _filters)
    r.run("Image resize/rotate/convert", _geometry)


def _ops() -> str:
    from PIL import Image, ImageOps

    im = make_image("RGB")
    expect(same_pixels(ImageOps.flip(ImageOps.flip(im)), im), "flip twice != identity")
    expect(
        same_pixels(ImageOps.mirror(im), im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
        "mirror != transpose",
    )
    inv = ImageOps.invert(im)
    expect(inv.getpixel((3, 4)) == tuple(255 - v for v in im.getpixel((3, 4))), "invert wrong")
    expect(ImageOps.grayscale(im).mode == "L", "grayscale mode")
    ramp = Image.new("L", (4, 1))
    ramp.putdata([50, 60, 70, 80])
    ac = ImageOps.autocontrast(ramp)
    expect(list(ac.tobytes()) == [0, 85, 170, 255], f"autocontrast {list(ac.tobytes())}")
    expanded = ImageOps.expand(im, border=3, fill=(1, 2, 3))
    expect(expanded.size == (43, 29) and expanded.getpixel((0, 0)) == (1, 2, 3), "expand wrong")
    return "exact"


def _filters() -> str:
    from PIL import Image, ImageFilter

    flat = Image.new("RGB", (32, 32), (90, 120, 200))
    for f in (ImageFilter.GaussianBlur(3), ImageFilter.BoxBlur(2), ImageFilter.MedianFilter(3)):
        expect(same_pixels(flat.filter(f), flat), f"{type(f).__name__} changed a flat image")
    edges = flat.convert("L").filter(ImageFilter.FIND_EDGES).crop((1, 1, 31, 31))  # border: edge
    expect(edges.getextrema() == (0, 0), f"FIND_EDGES inside a flat image: {edges.getextrema()}")
    step = Image.new("L", (20, 20), 0)
    step.paste(255, (10, 0, 20, 20))
    blurred = step.filter(ImageFilter.GaussianBlur(2))
    row = [blurred.getpixel((x, 10)) for x in range(20)]
    expect(row == sorted(row) and 0 < row[9] < 255, f"blurred step not monotonic: {row}")
    return "flat images unchanged, step blurred monotonically"


def _geometry() -> str:
    from PIL import Image

    im = make_image("RGB")
    expect(
        same_pixels(im.rotate(90, expand=True), im.transpose(Image.Transpose.ROTATE_90)),
        "rotate 90",
    )
    flat = Image.new("RGB", (50, 30), (7, 77, 177))
    for res in (Image.Resampling.LANCZOS, Image.Resampling.BICUBIC, Image.Resampling.BILINEAR):
        expect(
            same_pixels(flat.resize((23, 61), res), Image.new("RGB", (23, 61), (7, 77, 177))),
            f"{res!r}",
        )
    for mode in ("L", "RGBA", "CMYK", "YCbCr", "HSV", "I", "F"):
        expect(im.convert(mode).size == im.size, f"convert {mode}")
    return "exact"


# --------------------------------------------------------------------------------------------
# Windows GDI features (removed in the nanoserver variant)


def wine_version() -> str | None:
    """Wine's version when running under Wine (ntdll exports wine_get_version), else None."""
    if sys.platform != "win32":
        return None
    try:  # _ctypes itself does not load under Wine with its GUI DLLs disabled (ole32 needs them)
        import ctypes

        fn = ctypes.WinDLL("ntdll").wine_get_version
    except (ImportError, AttributeError, OSError):
        return None
    fn.restype = ctypes.c_char_p
    return fn().decode()


def machine() -> str:
    """The CPU architecture, without platform.machine(): on Windows that queries WMI (_wmi), which
    aborts under Wine 8 (propsys.VariantToString is unimplemented)."""
    if sys.platform == "win32":
        import os

        return os.environ.get("PROCESSOR_ARCHITECTURE", "unknown")
    return platform.machine()


def documented_gdi_error(exc: BaseException) -> bool:
    """The nanoserver variant's contract: OSError/NotImplementedError naming nanoserver or GDI."""
    text = str(exc).lower()
    return isinstance(exc, (OSError, NotImplementedError)) and (
        "nanoserver" in text or "gdi" in text
    )


def expect_removed(fn: Callable[[], Any], what: str) -> str:
    try:
        result = fn()
    except Exception as exc:  # noqa: BLE001 - the kind of exception is what is checked
        if documented_gdi_error(exc):
            return f"{type(exc).__name__}: {exc}"
        raise CheckFailed(
            f"{what} raised {type(exc).__name__}: {exc} -- not the documented error"
        ) from None
    raise CheckFailed(f"{what} returned {result!r} -- expected the documented nanoserver/GDI error")


def placeable_wmf(width: int = 72, height: int = 36) -> bytes:
    """A placeable WMF (1440 units per inch) with only the EOF record: renders as white."""
    bbox = (0, 0, width * 20, height * 20)
    head = struct.pack("<IH4hHI", 0x9AC6CDD7, 0, *bbox, 1440, 0)
    checksum = 0
    for (word,) in struct.iter_unpack("<H", head):
        checksum ^= word
    head += struct.pack("<H", checksum)
    eof = struct.pack("<IH", 3, 0)
    meta = struct.pack("<HHHIHIH", 1, 9, 0x0300, 9 + 3, 0, 3, 0)
    return head + meta + eof


def gdi_checks(r: Runner, variant: str) -> None:
    if sys.platform != "win32":
        r.run("Windows GDI features", lambda: _skip(f"not Windows ({sys.platform})"))
        return
    from PIL import Image, ImageCms, ImageGrab, ImageWin

    wine = wine_version()
    if variant == "nanoserver":
        r.run(
            "nanoserver: ImageGrab.grab removed",
            lambda: expect_removed(ImageGrab.grab, "ImageGrab.grab()"),
        )
        r.run(
            "nanoserver: ImageGrab.grabclipboard removed",
            lambda: expect_removed(ImageGrab.grabclipboard, "ImageGrab.grabclipboard()"),
        )
        r.run("nanoserver: ImageWin.Dib draw/expose removed", _dib_removed)
        r.run(
            "nanoserver: WMF load removed",
            lambda: expect_removed(
                lambda: Image.open(io.BytesIO(placeable_wmf())).load(), "WMF load()"
            ),
        )

        def no_profile() -> str:
            profile = ImageCms.get_display_profile()
            expect(profile is None, f"get_display_profile() returned {profile!r}, expected None")
            return "None"

        r.run("nanoserver: ImageCms.get_display_profile() is None", no_profile)
        return

    def entry_points() -> str:
        names = ("grabscreen_win32", "grabclipboard_win32", "display", "drawwmf", "createwindow")
        missing = [n for n in names if not hasattr(Image.core, n)]
        expect(not missing, f"_imaging lacks {missing}")
        return "present: " + ", ".join(names)

    r.run("upstream: GDI entry points in _imaging", entry_points)

    def grab() -> str:
        if wine:
            raise Skip(f"not called under Wine {wine}: no screen to capture")
        im = ImageGrab.grab()
        expect(im.size[0] > 0 and im.size[1] > 0, f"grab size {im.size}")
        return f"grabbed {im.size}"

    r.run("upstream: ImageGrab.grab", grab)
    r.run(
        "upstream: ImageGrab.grabclipboard",
        lambda: f"returned {type(ImageGrab.grabclipboard()).__name__}",
    )

    def dib() -> str:
        import ctypes

        d = ImageWin.Dib("RGB", (8, 8))
        d.paste(Image.new("RGB", (8, 8), (10, 20, 30)))
        data = d.tobytes()
        expect(
            data[:3] == bytes((30, 20, 10)), f"DIB bits start {data[:3]!r}, expected BGR 30,20,10"
        )
        hdc = ctypes.windll.gdi32.CreateCompatibleDC(None)
        expect(hdc != 0, "CreateCompatibleDC failed")
        try:
            d.expose(ImageWin.HDC(hdc))
            d.draw(ImageWin.HDC(hdc), (0, 0, 8, 8))
        finally:
            ctypes.windll.gdi32.DeleteDC(hdc)
        return "DIB created, pasted, exposed and drawn on a memory DC"

    r.run("upstream: ImageWin.Dib", dib)

    def wmf() -> str:
        im = Image.open(io.BytesIO(placeable_wmf()))
        im.load()
        expect(im.size == (72, 36), f"size {im.size}")
        expect(
            im.getextrema() == ((255, 255), (255, 255), (255, 255)), f"extrema {im.getextrema()}"
        )
        return "rendered white 72x36"

    r.run("upstream: WMF load (GDI rendering)", wmf)
    r.run(
        "upstream: ImageCms.get_display_profile()",
        lambda: f"returned {ImageCms.get_display_profile()!r}",
    )


def _dib_removed() -> str:
    from PIL import ImageWin

    try:
        d = ImageWin.Dib("RGB", (8, 8))
    except Exception as exc:  # noqa: BLE001
        if documented_gdi_error(exc):
            return f"Dib(): {type(exc).__name__}: {exc}"
        raise CheckFailed(
            f"Dib() raised {type(exc).__name__}: {exc} -- not the documented error"
        ) from None
    first = expect_removed(lambda: d.expose(ImageWin.HDC(0)), "Dib.expose()")
    expect_removed(lambda: d.draw(ImageWin.HDC(0), (0, 0, 8, 8)), "Dib.draw()")
    return f"expose/draw: {first}"


def _skip(reason: str) -> str:
    raise Skip(reason)


# --------------------------------------------------------------------------------------------


def collect_features() -> dict[str, Any]:
    from PIL import features

    out: dict[str, Any] = {}
    for name in (
        features.get_supported_modules()
        + features.get_supported_codecs()
        + features.get_supported_features()
    ):
        out[name] = features.version(name) or True
    for name in (
        "freetype2",
        "littlecms2",
        "webp",
        "avif",
        "jpg",
        "jpg_2000",
        "zlib",
        "libtiff",
        "raqm",
    ):
        out.setdefault(name, False)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--variant", default="upstream", choices=["upstream", "nanoserver"])
    ap.add_argument("--font", help="a TrueType/OpenType font file to draw with as well")
    ap.add_argument("--quiet", action="store_true", help="print only the final JSON line")
    args = ap.parse_args(argv)
    for stream in (sys.stdout, sys.stderr):  # a cp1252 console must not kill the report
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")

    r = Runner(verbose=not args.quiet)
    result: dict[str, Any] = {
        "smoke": FAIL,
        "variant": args.variant,
        "python": platform.python_version(),
        "platform": sys.platform,
        "machine": machine(),
        "wine": wine_version(),
    }
    try:
        import PIL
        from PIL import Image

        Image.new("RGB", (1, 1)).load()
    except Exception as exc:  # noqa: BLE001 - the import failing is the finding (e.g. error 127)
        r.checks.append(
            {
                "name": "import PIL._imaging",
                "status": FAIL,
                "detail": f"{type(exc).__name__}: {exc}",
            }
        )
        print(f"FAIL  import PIL._imaging  -- {type(exc).__name__}: {exc}")
        result.update(checks=r.checks, features={})
        print(json.dumps(result))
        return 1
    result["pillow"] = PIL.__version__
    r.checks.append({"name": "import PIL._imaging", "status": PASS, "detail": PIL.__version__})
    r.run("features", lambda: f"{len(collect_features())} reported")
    done = format_checks(r)
    avif_checks(r)
    sweep_formats(r, done)
    text_checks(r, args.font)
    cms_checks(r)
    ops_checks(r)
    gdi_checks(r, args.variant)

    counts = {s: sum(1 for c in r.checks if c["status"] == s) for s in (PASS, FAIL, SKIP)}
    result["smoke"] = FAIL if r.failed else PASS
    result.update(counts=counts, checks=r.checks, features=collect_features())
    if not args.quiet:
        summary = f"{counts[PASS]} passed, {counts[FAIL]} failed, {counts[SKIP]} skipped"
        print(f"smoke {result['smoke']}: {summary}")
        for c in r.failed:
            print(f"  failed: {c['name']}: {c['detail']}")
    print(json.dumps(result))
    return 0 if result["smoke"] == PASS else 1


if __name__ == "__main__":
    sys.exit(main())
