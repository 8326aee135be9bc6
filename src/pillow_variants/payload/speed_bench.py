"""Speed benchmark of a Pillow build, run INSIDE the Python that has that Pillow installed.

Used by ``scripts/bench_speed.py`` (embeddable CPython under Wine, once per wheel, alternating):
two wheels of the same CPython tag run this same program in the same CPython, so a difference in
the timings is a difference in the wheels' compiled code (compiler, flags, library versions).
Wine runs x86-64 code natively; only system calls go through Wine, and the operations timed
here make almost none -- they are CPU-bound work inside Pillow's C code and its libraries.

Self-contained like ``smoke_test.py``: standard library + PIL only, no files from anywhere.
The images are synthetic and deterministic (a Mandelbrot set and gradients, merged into RGB),
so every run times exactly the same work; natural-looking rather than noise, because codecs
behave very differently on noise.

Each operation is timed with ``time.perf_counter``: ``--warmup`` untimed calls, then
``--repeats`` timed ones; the result is every sample and their median. With ``--lockstep DIR
--side 0|1`` two runs (one per wheel) take turns, sample by sample (:class:`Baton`). An
operation whose feature the build lacks (``PIL.features``) is skipped with the reason; one that
raises is an error (exit 1) -- a bench must not quietly time a broken codec.

Output: one line per operation, then as the LAST line a JSON object
``{"speed": "ok"|"error", "results": {op: {"median_ms", "samples_ms"}}, "skipped": {op: why},
"errors": {op: why}, ...}``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

#: Side of the large test image (resize, convert: the cheap per-pixel operations).
BIG = 2048
#: Size the big image is resized to (not a divisor of it: no special-cased fast path).
HALF = (BIG // 2 + 7, BIG // 2 + 7)
#: Side of the medium test image (filters, codecs).
MEDIUM = 1024
#: Side of the small test image (the slow codecs: lossless WebP, JPEG 2000, AVIF).
SMALL = 256


class Unavailable(Exception):
    """The build lacks what this operation needs; the message says what."""


def synthetic_rgb(side: int) -> Any:
    """A deterministic RGB image: a Mandelbrot set (edges, flat areas) and two gradients."""
    from PIL import Image

    mandel = Image.effect_mandelbrot((side, side), (-2.0, -1.25, 0.75, 1.25), 64)
    linear = Image.linear_gradient("L").resize((side, side))
    radial = Image.radial_gradient("L").resize((side, side))
    return Image.merge("RGB", (mandel, linear, radial))


def _need(feature: str) -> None:
    from PIL import features

    if not features.check(feature):
        raise Unavailable(f"{feature} not available in this build")


def _roundtrip(
    image: Any, fmt: str, feature: str | None, **params: Any
) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """Encode and decode callables for ``image`` saved as ``fmt`` with ``params``."""
    from PIL import Image

    if feature:
        _need(feature)

    def encode() -> bytes:
        buf = io.BytesIO()
        image.save(buf, fmt, **params)
        return buf.getvalue()

    data = encode()

    def decode() -> Any:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            return im

    return encode, decode


def build_ops() -> dict[str, Callable[[], Callable[[], Any]]]:
    """Operation name -> setup: the setup (untimed) makes the inputs and returns the callable
    that is timed; it raises :class:`Unavailable` for a feature the build lacks."""
    from PIL import Image, ImageChops, ImageCms, ImageDraw, ImageFilter, ImageFont, ImageMath

    cache: dict[int, Any] = {}

    def rgb(side: int) -> Any:
        if side not in cache:
            cache[side] = synthetic_rgb(side)
        return cache[side]

    def on(side: int, op: Callable[[Any], Any]) -> Callable[[], Callable[[], Any]]:
        """Setup of ``op`` applied to the ``side`` test image."""

        def setup() -> Callable[[], Any]:
            im = rgb(side)
            return lambda: op(im)

        return setup

    def on_two(op: Callable[[Any, Any], Any]) -> Callable[[], Callable[[], Any]]:
        """Setup of ``op`` applied to the big test image and that image rotated."""

        def setup() -> Callable[[], Any]:
            a, b = rgb(BIG), rgb(BIG).rotate(90)
            return lambda: op(a, b)

        return setup

    def imagemath(mode: str) -> Callable[[], Any]:
        a = rgb(BIG).getchannel(0).convert(mode)
        b = rgb(BIG).getchannel(1).convert(mode)
        return lambda: ImageMath.lambda_eval(lambda x: x["a"] * x["b"] + x["a"], a=a, b=b)

    def point() -> Callable[[], Any]:
        im = rgb(BIG)
        table = [(i * 7) % 256 for i in range(256)] * 3
        return lambda: im.point(table)

    def composite() -> Callable[[], Any]:
        base = rgb(BIG).convert("RGBA")
        over = rgb(BIG).transpose(Image.Transpose.ROTATE_90).convert("RGBA")
        over.putalpha(rgb(BIG).getchannel(0))
        return lambda: Image.alpha_composite(base, over)

    def cms() -> Callable[[], Any]:
        _need("littlecms2")
        transform = ImageCms.buildTransform(
            ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB"
        )
        im = rgb(MEDIUM)
        return lambda: ImageCms.applyTransform(im, transform)

    def text() -> Callable[[], Any]:
        _need("freetype2")
        font = ImageFont.load_default(size=24)
        if not isinstance(font, ImageFont.FreeTypeFont):
            raise Unavailable("load_default() gave the bitmap font: no bundled FreeType font")
        line = "Sphinx of black quartz, judge my vow 0123456789"

        def draw() -> Any:
            canvas = Image.new("RGB", (800, 40 * 20), "white")
            pen = ImageDraw.Draw(canvas)
            for i in range(20):
                pen.text((4, 40 * i), line, font=font, fill=(i * 12, 0, 0))
            return canvas

        return draw

    codecs: dict[str, tuple[int, str, str | None, dict[str, Any]]] = {
        # name: (side, format, feature, save parameters)
        "JPEG q90": (BIG, "JPEG", "jpg", {"quality": 90}),
        "PNG level 6": (MEDIUM, "PNG", "zlib", {"compress_level": 6}),
        "WebP lossy q80": (MEDIUM, "WEBP", "webp", {"quality": 80}),
        "WebP lossless": (SMALL * 2, "WEBP", "webp", {"lossless": True}),
        "TIFF LZW": (MEDIUM, "TIFF", "libtiff", {"compression": "tiff_lzw"}),
        "TIFF deflate": (MEDIUM, "TIFF", "libtiff", {"compression": "tiff_adobe_deflate"}),
        "JPEG2000": (SMALL, "JPEG2000", "jpg_2000", {}),
        "AVIF q75": (SMALL, "AVIF", "avif", {"quality": 75, "speed": 8}),
    }
    ops: dict[str, Callable[[], Callable[[], Any]]] = {
        "resize LANCZOS": on(BIG, lambda im: im.resize(HALF, Image.Resampling.LANCZOS)),
        "resize BILINEAR": on(BIG, lambda im: im.resize(HALF, Image.Resampling.BILINEAR)),
        "convert RGB->L": on(BIG, lambda im: im.convert("L")),
        "convert RGB->CMYK": on(BIG, lambda im: im.convert("CMYK")),
        "GaussianBlur r4": on(MEDIUM, lambda im: im.filter(ImageFilter.GaussianBlur(4))),
        "filter SHARPEN": on(MEDIUM, lambda im: im.filter(ImageFilter.SHARPEN)),
        "rotate 33 BICUBIC": on(
            MEDIUM, lambda im: im.rotate(33, Image.Resampling.BICUBIC, expand=True)
        ),
        "ImageMath I a*b+a": lambda: imagemath("I"),
        "ImageMath F a*b+a": lambda: imagemath("F"),
        "ImageChops multiply": on_two(ImageChops.multiply),
        "ImageChops add": on_two(lambda a, b: ImageChops.add(a, b, 2.0)),
        "point LUT": point,
        "alpha_composite": composite,
        "ImageCms sRGB->LAB": cms,
        "FreeType text": text,
    }
    for name, (side, fmt, feature, params) in codecs.items():

        def pair(
            which: int, side: int = side, fmt: str = fmt, feature: str | None = feature,
            params: dict[str, Any] = params,
        ) -> Callable[[], Callable[[], Any]]:  # fmt: skip
            return lambda: _roundtrip(rgb(side), fmt, feature, **params)[which]

        ops[f"{name} encode"] = pair(0)
        ops[f"{name} decode"] = pair(1)
    return ops


class Baton:
    """Turns shared with a peer process (the other wheel's run of this program), so that the
    two runs time the same operation by turns, sample by sample: a machine that others load
    slows both alike, where runs one after the other would each meet a different load.

    The turns are numbered slots: side 0 owns the even ones, side 1 the odd ones, and slot
    ``n`` begins when the file ``t<n>`` exists in the shared ``directory`` (the driver writes
    ``t0``; the end of slot ``n`` writes ``t<n+1>``). A file that appears is the only signal:
    nothing is ever rewritten or opened by both, so no Windows sharing rule can interfere.
    A file ``abort`` (the driver's, when the peer died without a verdict) ends the wait.
    Both sides walk the same operation list and hold a turn even for an operation they skip.
    Without a ``directory`` every turn is free (a run on its own).
    """

    def __init__(self, directory: str | None = None, side: int = 0, timeout: float = 600) -> None:
        self.directory, self.slot, self.timeout = directory, side, timeout

    def _path(self, slot: int) -> str:
        return os.path.join(self.directory or "", f"t{slot}")

    @contextmanager
    def turn(self) -> Iterator[None]:
        if self.directory is None:
            yield
            return
        deadline = time.monotonic() + self.timeout
        while not os.path.exists(self._path(self.slot)):
            if os.path.exists(os.path.join(self.directory, "abort")):
                raise RuntimeError(f"turn {self.slot}: the peer ended without a verdict")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no turn {self.slot} after {self.timeout:.0f} s: peer gone?")
            time.sleep(0.002)
        try:
            yield
        finally:
            open(self._path(self.slot + 1), "w").close()
            self.slot += 2


def _error(exc: BaseException) -> str:
    return traceback.format_exception_only(type(exc), exc)[-1].strip()


def run(
    ops: dict[str, Callable[[], Callable[[], Any]]],
    repeats: int,
    warmup: int,
    echo: Callable[[str], None] = print,
    baton: Baton | None = None,
) -> dict[str, Any]:
    """Set up and time every operation; the verdict (the JSON object printed last).

    Per operation, one turn of the ``baton`` for the setup and the ``warmup`` untimed calls,
    then one turn per timed call (``time.perf_counter``, milliseconds)."""
    baton = baton or Baton()
    results: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    errors: dict[str, str] = {}
    for name, setup in ops.items():
        fn: Callable[[], Any] | None = None
        with baton.turn():
            try:
                fn = setup()
                for _ in range(warmup):
                    fn()
            except Unavailable as exc:
                skipped[name] = str(exc)
                echo(f"SKIP   {name}  -- {exc}")
                fn = None
            except Exception as exc:  # noqa: BLE001 - reported per operation, the others run
                errors[name] = _error(exc)
                echo(f"ERROR  {name}  -- {errors[name]}")
                fn = None
        samples: list[float] = []
        for _ in range(repeats):
            with baton.turn():
                if fn is None:
                    continue
                try:
                    start = time.perf_counter()
                    fn()
                    samples.append((time.perf_counter() - start) * 1000.0)
                except Exception as exc:  # noqa: BLE001 - as above
                    errors[name], fn = _error(exc), None
                    echo(f"ERROR  {name}  -- {errors[name]}")
        if fn is None:
            continue
        median = statistics.median(samples)
        rounded = [round(x, 3) for x in samples]
        results[name] = {"median_ms": round(median, 3), "samples_ms": rounded}
        echo(f"{median:9.2f} ms  {name}")
    return {"results": results, "skipped": skipped, "errors": errors}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per operation")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls first")
    parser.add_argument(
        "--ops", help="comma-separated operation names (default: all); --list shows them"
    )
    parser.add_argument("--list", action="store_true", help="print the operation names")
    parser.add_argument("--quiet", action="store_true", help="print only the JSON line")
    parser.add_argument("--lockstep", metavar="DIR", help="take turns with a peer (see Baton)")
    parser.add_argument("--side", type=int, choices=(0, 1), default=0, help="turns: 0 or 1")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0:
        parser.error("--repeats must be >= 1 and --warmup >= 0")
    import PIL

    ops = build_ops()
    if args.list:
        print("\n".join(ops))
        return 0
    if args.ops:
        wanted = [o.strip() for o in args.ops.split(",") if o.strip()]
        unknown = [o for o in wanted if o not in ops]
        if unknown:
            parser.error(f"unknown operation(s): {', '.join(unknown)} (see --list)")
        ops = {o: ops[o] for o in wanted}
    echo: Callable[[str], None] = (lambda _: None) if args.quiet else print
    verdict = run(ops, args.repeats, args.warmup, echo, Baton(args.lockstep, args.side))
    print(
        json.dumps(
            {
                "speed": "error" if verdict["errors"] else "ok",
                "pillow": PIL.__version__,
                "python": platform.python_version(),
                "platform": sys.platform,
                "repeats": args.repeats,
                "warmup": args.warmup,
                **verdict,
            }
        ),
        flush=True,
    )
    return 1 if verdict["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
