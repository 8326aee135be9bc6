"""The speed bench of ``nox -s bench``: scripts/bench_speed.py (pooling, ratios, the geometric
mean, the table, its arguments) and its payload (package data: payload/speed_bench.py, as
installed) on this machine's native Pillow; then both together under Wine with the official
wheel (needs wine64 and PyPI)."""

from __future__ import annotations

import importlib.util
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from pillow_variants.verify import wine
from pillow_variants.verify.ladder import payload_file
from wheelfactory import make_wheel

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_speed.py"
PAYLOAD = payload_file("speed_bench.py")
#: Cheap operations: one per kind (geometry, a codec pair) keeps the payload runs short.
FEW_OPS = "resize BILINEAR,PNG level 6 encode,PNG level 6 decode"


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return _load(SCRIPT, "pv_bench_speed")


@pytest.fixture(scope="module")
def payload() -> ModuleType:
    return _load(PAYLOAD, "pv_speed_bench")


def _run(results: dict[str, list[float]], **extra: dict[str, str]) -> dict:
    """A payload verdict with these samples."""
    return {
        "speed": "ok",
        "results": {op: {"median_ms": 0.0, "samples_ms": s} for op, s in results.items()},
        **extra,
    }


# --------------------------------------------------------------------------------------------
# scripts/bench_speed.py


def test_samples_are_pooled_over_rounds(bench: ModuleType) -> None:
    runs = [
        _run({"a": [1.0, 100.0], "b": [5.0]}),
        _run({"a": [2.0, 3.0], "b": [7.0]}, skipped={"c": "webp not available"}),
    ]
    samples, skipped, errors = bench.pool(runs)
    assert samples == {"a": [1.0, 100.0, 2.0, 3.0], "b": [5.0, 7.0]}
    assert skipped == {"c": "webp not available"} and errors == {}
    rows, _ = bench.compare(samples, samples)
    # the median of the pooled [1, 2, 3, 100]; a median of per-round medians would be 26.75
    assert rows[0]["official_ms"] == 2.5 and rows[1]["official_ms"] == 6.0
    rows, _ = bench.compare(samples, samples, stat="min")
    assert rows[0]["official_ms"] == 1.0 and rows[1]["official_ms"] == 5.0


def test_an_operation_that_failed_in_any_round_has_no_figure(bench: ModuleType) -> None:
    runs = [_run({"a": [1.0], "b": [2.0]}), _run({"b": [2.0]}, errors={"a": "OSError: x"})]
    samples, _, errors = bench.pool(runs)
    assert samples == {"b": [2.0, 2.0]} and errors == {"a": "OSError: x"}


def test_ratios_and_their_geometric_mean(bench: ModuleType) -> None:
    official = {"a": [10.0], "b": [10.0], "c": [4.0], "only official": [1.0]}
    ours = {"a": [20.0], "b": [5.0], "c": [4.0], "only ours": [1.0]}
    rows, geomean = bench.compare(official, ours, order=["c", "b"])
    assert [r["op"] for r in rows] == ["c", "b", "a", "only official", "only ours"]
    ratio = {r["op"]: r["ratio"] for r in rows}
    assert ratio == {"a": 2.0, "b": 0.5, "c": 1.0, "only official": None, "only ours": None}
    assert geomean == pytest.approx(1.0)  # 2 x 0.5 x 1, not the arithmetic mean 1.17
    _, geomean = bench.compare({"a": [1.0], "b": [1.0]}, {"a": [2.0], "b": [8.0]})
    assert geomean == pytest.approx(4.0)
    rows, geomean = bench.compare({"a": [1.0]}, {})
    assert rows == [{"op": "a", "official_ms": 1.0, "ours_ms": None, "ratio": None, "spread": None}]
    assert geomean is None


def test_spread_is_that_of_the_sample_by_sample_ratios(bench: ModuleType) -> None:
    """A load that slows both sides alike moves each side's samples but not their ratios."""
    official, ours = [10.0, 20.0, 40.0, 80.0, 10.0], [11.0, 22.0, 44.0, 88.0, 11.0]
    assert bench.spread(official, ours) == pytest.approx(0.0)
    noisy = [11.0, 18.0, 44.0, 120.0, 12.0]
    ratios = [b / a for a, b in zip(official, noisy, strict=True)]
    q1, q2, q3 = statistics.quantiles(ratios, n=4)
    assert bench.spread(official, noisy) == pytest.approx((q3 - q1) / q2)
    assert bench.spread([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) is None  # too few pairs
    assert bench.spread(official, ours[:4]) is None  # samples that do not pair up
    rows, _ = bench.compare({"a": official}, {"a": noisy})
    assert rows[0]["spread"] == pytest.approx((q3 - q1) / q2)


def test_table_shows_skips_and_leaves_them_out_of_the_mean(bench: ModuleType) -> None:
    rows, geomean = bench.compare(
        {"resize": [10.0] * 4, "AVIF encode": [3.0]}, {"resize": [12.0, 13.0, 12.0, 13.0]}
    )
    table = bench.format_table(rows, geomean, {"ours": {"AVIF encode": "avif not available"}})
    lines = table.splitlines()
    assert lines[0].split() == ["operation", "official", "ms", "ours", "ms", "ours/off", "spread"]
    assert lines[1].split() == ["resize", "10.00", "12.50", "1.25", "8%"]
    assert lines[2].split() == ["AVIF", "encode", "3.00", "skip", "-", "-"]
    assert lines[3].startswith("geometric mean of ratios") and "1.250  (1 operations)" in lines[3]
    assert lines[4] == "skipped (ours): AVIF encode: avif not available"


def test_the_verdict_is_the_last_json_line_of_the_payload(bench: ModuleType) -> None:
    def result(stdout: str, stderr: str = "", timed_out: bool = False) -> wine.WineRun:
        return wine.WineRun(None if timed_out else 1, stdout, stderr, 1.0, timed_out)

    out = 'Fontconfig warning\n{"not": "it"}\n{"speed": "ok", "results": {}}\nbye\n'
    assert bench.parse_run(result(out), "x.whl") == {"speed": "ok", "results": {}}
    with pytest.raises(bench.NoVerdict, match=r"^x\.whl: .* no verdict: started \| .*: boom$"):
        bench.parse_run(result("started\n", "Traceback...\nImportError: boom\n"), "x.whl")
    with pytest.raises(bench.NoVerdict, match=r"^x\.whl: the speed payload timed out$"):
        bench.parse_run(result("started\n", timed_out=True), "x.whl")


def test_a_crashed_run_stops_its_peer_and_both_are_reported(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The driver's side of the lockstep: the run that dies without a verdict gets an
    ``abort`` file written for its peer (which would otherwise wait for its next turn)."""

    def fake_run_payload(wheel: Path, script: Path, args: list[str], **kw: object) -> wine.WineRun:
        assert script == PAYLOAD and kw["python"] == "3.13"
        turns = Path(args[args.index("--lockstep") + 1][2:].replace("\\", "/"))
        if args[args.index("--side") + 1] == "0":
            return wine.WineRun(1, "", "ImportError: DLL load failed\n", 1.0, False)
        for _ in range(500):  # the peer: gives up once the driver says so
            if (turns / "abort").exists():
                return wine.WineRun(1, "", "RuntimeError: turn 1: the peer ended\n", 1.0, False)
            time.sleep(0.01)
        return wine.WineRun(None, "", "", 5.0, True)

    monkeypatch.setattr(bench.ladder, "run_payload", fake_run_payload)
    wheels = {"official": tmp_path / "a.whl", "ours": tmp_path / "b.whl"}
    with pytest.raises(SystemExit) as exc:
        bench.run_pair(wheels, ["--repeats", "1"], python="3.13")
    assert str(exc.value).splitlines() == [
        "a.whl: the speed payload printed no verdict: ImportError: DLL load failed",
        "b.whl: the speed payload printed no verdict: RuntimeError: turn 1: the peer ended",
    ]


def _script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True)


def test_usage_errors(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path)
    proc = _script(str(wheel), str(tmp_path / "nope.whl"))
    assert proc.returncode == 2 and "ours wheel" in proc.stderr and "no such file" in proc.stderr
    proc = _script(str(wheel), str(wheel), "--repeats", "0")
    assert proc.returncode == 2 and "--repeats and --rounds must be >= 1" in proc.stderr
    proc = _script(str(wheel), str(wheel), "--stat", "mean")
    assert proc.returncode == 2 and "invalid choice: 'mean'" in proc.stderr
    assert _script(str(wheel)).returncode == 2


def test_wheels_of_different_tags_are_refused(tmp_path: Path) -> None:
    a = make_wheel(tmp_path / "a")
    b = make_wheel(tmp_path / "b", tag="cp312-cp312-win_amd64")
    proc = _script(str(a), str(b))
    assert proc.returncode == 1
    assert "different CPythons (official 3.13, ours 3.12): compare the same tag" in proc.stderr


# --------------------------------------------------------------------------------------------
# payload/speed_bench.py on the native Pillow


def _payload(*args: str) -> tuple[int, dict, str]:
    proc = subprocess.run(
        [sys.executable, str(PAYLOAD), *args], capture_output=True, text=True, timeout=120
    )
    lines = proc.stdout.strip().splitlines()
    verdict = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    return proc.returncode, verdict, proc.stdout + proc.stderr


def test_payload_times_the_chosen_operations() -> None:
    rc, verdict, out = _payload("--repeats", "3", "--warmup", "0", "--ops", FEW_OPS)
    assert rc == 0, out
    assert verdict["speed"] == "ok" and verdict["errors"] == {} and verdict["skipped"] == {}
    assert list(verdict["results"]) == FEW_OPS.split(",")
    for result in verdict["results"].values():
        samples = result["samples_ms"]
        assert len(samples) == 3 and all(s > 0 for s in samples)
        assert result["median_ms"] == sorted(samples)[1]


def test_payload_lists_every_operation_the_issue_asks_for() -> None:
    proc = subprocess.run(
        [sys.executable, str(PAYLOAD), "--list"], capture_output=True, text=True, check=True
    )
    ops = proc.stdout.splitlines()
    kinds = ["resize LANCZOS", "resize BILINEAR", "convert RGB->L", "convert RGB->CMYK",
             "GaussianBlur r4", "filter SHARPEN", "rotate 33 BICUBIC", "ImageMath I a*b+a",
             "ImageMath F a*b+a", "ImageChops multiply", "ImageChops add", "point LUT",
             "alpha_composite", "ImageCms sRGB->LAB", "FreeType text"]  # fmt: skip
    codecs = ["JPEG q90", "PNG level 6", "WebP lossy q80", "WebP lossless", "TIFF LZW",
              "TIFF deflate", "JPEG2000", "AVIF q75"]  # fmt: skip
    assert ops == kinds + [f"{c} {way}" for c in codecs for way in ("encode", "decode")]


def test_payload_refuses_unknown_operations_and_bad_counts() -> None:
    rc, _, out = _payload("--ops", "resize BILINEAR,warp drive")
    assert rc == 2 and "unknown operation(s): warp drive" in out
    assert _payload("--repeats", "0")[0] == 2


def test_a_feature_the_build_lacks_is_skipped_with_its_reason(
    payload: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import features

    real = features.check
    monkeypatch.setattr(features, "check", lambda f: False if f == "webp" else real(f))
    ops = payload.build_ops()
    wanted = ["WebP lossy q80 encode", "WebP lossless decode", "resize BILINEAR"]
    verdict = payload.run({o: ops[o] for o in wanted}, 1, 0, echo=lambda _: None)
    assert verdict["skipped"] == {
        "WebP lossy q80 encode": "webp not available in this build",
        "WebP lossless decode": "webp not available in this build",
    }
    assert list(verdict["results"]) == ["resize BILINEAR"] and verdict["errors"] == {}


def test_an_operation_that_raises_is_an_error_not_a_figure(payload: ModuleType) -> None:
    def broken() -> object:
        raise OSError("encoder error -2")

    lines: list[str] = []
    verdict = payload.run(
        {"broken codec": lambda: broken, "fine": lambda: object}, 1, 1, lines.append
    )
    assert verdict["errors"] == {"broken codec": "OSError: encoder error -2"}
    assert list(verdict["results"]) == ["fine"]
    assert lines[0] == "ERROR  broken codec  -- OSError: encoder error -2"


def test_two_runs_take_turns_sample_by_sample(tmp_path: Path) -> None:
    """Two payload processes in lockstep: each turn's file is written once, in order, and the
    runs interleave: side 1 times sample j only after side 0 has timed its sample j."""
    args = [sys.executable, str(PAYLOAD), "--repeats", "2", "--ops", FEW_OPS]
    args += ["--lockstep", str(tmp_path)]
    procs = [
        subprocess.Popen([*args, "--side", str(side)], stdout=subprocess.PIPE, text=True)
        for side in (0, 1)
    ]
    (tmp_path / "t0").touch()
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    verdicts = [json.loads(out.strip().splitlines()[-1]) for out in outs]
    assert all(list(v["results"]) == FEW_OPS.split(",") for v in verdicts)
    slots = 3 * (1 + 2) * 2  # operations x (setup + repeats) x sides
    turns = sorted(int(p.name[1:]) for p in tmp_path.glob("t*"))
    assert turns == list(range(slots + 1))
    times = [(tmp_path / f"t{n}").stat().st_mtime_ns for n in turns]
    assert times == sorted(times)


def test_a_run_gives_up_when_its_peer_ended_without_a_verdict(tmp_path: Path) -> None:
    (tmp_path / "t0").touch()  # side 0's first turn: never taken, side 1 waits for t1
    (tmp_path / "abort").touch()
    rc, _, out = _payload("--ops", FEW_OPS, "--lockstep", str(tmp_path), "--side", "1")
    assert rc == 1 and "turn 1: the peer ended without a verdict" in out


def test_synthetic_images_are_deterministic(payload: ModuleType) -> None:
    a, b = payload.synthetic_rgb(64), payload.synthetic_rgb(64)
    assert a.mode == "RGB" and a.size == (64, 64) and a.tobytes() == b.tobytes()
    colors = a.getcolors(64 * 64)  # an image, not a flat fill a codec skips through
    assert colors is not None and len(colors) > 100
    assert all(low < high for low, high in a.getextrema())


# --------------------------------------------------------------------------------------------
# Under Wine


@pytest.mark.network
@pytest.mark.wine
def test_bench_runs_the_payload_under_wine(official_wheel: Path, cache: Path) -> None:
    """The official wheel against itself, one round, one repeat, three operations: both sides
    run in the official CPython under Wine, by turns (the turn files are found through Wine's
    drive Z:, or the runs would wait), and give a figure for every operation."""
    proc = _script(
        str(official_wheel), str(official_wheel), "--repeats", "1", "--rounds", "1",
        "--ops", FEW_OPS, "--json", "--cache-dir", str(cache),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["cpython"] == "3.13.2" and report["errors"] == {"official": {}, "ours": {}}
    assert [r["op"] for r in report["rows"]] == FEW_OPS.split(",")
    for row in report["rows"]:
        assert row["official_ms"] > 0 and row["ours_ms"] > 0 and row["ratio"] > 0
    assert report["geomean"] > 0 and report["stat"] == "median"
    assert {op: len(s) for op, s in report["samples_ms"]["ours"].items()} == dict.fromkeys(
        FEW_OPS.split(","), 1
    )
    assert "round 1/1: official and ours by turns" in proc.stderr
