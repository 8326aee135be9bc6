"""scripts/bench_sizes.py (the size table of ``nox -s bench``) on wheels of real PE files."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

from pefactory import build_pe
from wheelfactory import make_wheel

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_sizes.py"
PYD = "PIL/{}.cp313-win_amd64.pyd"


def _wheels(tmp_path: Path) -> tuple[Path, Path]:
    """An 'official' wheel with _imaging, _webp and _avif; 'ours' without _avif, its _imaging
    64 KB larger (an extra section) and its _webp the same file."""
    small = build_pe(tmp_path / "pe", "small.dll", exports=["f"]).read_bytes()
    big = build_pe(
        tmp_path / "pe", "big.dll", exports=["f"], section=(".pvbig", bytes(range(256)) * 256)
    ).read_bytes()
    official = make_wheel(
        tmp_path / "official",
        version="13.0.0",
        files={PYD.format(m): small for m in ("_imaging", "_webp", "_avif")},
    )
    ours = make_wheel(
        tmp_path / "ours", files={PYD.format("_imaging"): big, PYD.format("_webp"): small}
    )
    return official, ours


def test_table_names_the_modules_above_official_and_compares_same_features(
    tmp_path: Path,
) -> None:
    official, ours = _wheels(tmp_path)
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(official), str(ours), "--sections"],
        capture_output=True,
        text=True,
        check=True,
    )
    table, *blocks = proc.stdout.split("\n\n")
    rows = {line.split()[0]: line.split() for line in table.splitlines()}
    assert rows["PIL._avif"][2] == "-"  # ours has none
    assert rows["PIL._webp"][3] == "1.00"
    assert float(rows["PIL._imaging"][3]) > 1.5
    assert "target: ABOVE official: PIL._imaging;" in proc.stdout
    assert "(without PIL._avif)" in proc.stdout
    imaging = next(b for b in blocks if b.startswith("PIL._imaging sections"))
    sections = {line.split()[0]: line.split()[1:] for line in imaging.splitlines()[1:]}
    assert sections[".pvbig"] == ["-", "64.0"]  # the section that makes the difference


def test_zipped_size_leaves_out_modules_one_side_lacks(tmp_path: Path) -> None:
    """Without _avif, the official wheel costs what its other entries cost (within the zip's
    end record): the module's compressed bytes, headers and names are all taken off."""
    spec = importlib.util.spec_from_file_location("pv_bench_sizes", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    official, _ = _wheels(tmp_path)
    without = module.zipped_without(official, {"PIL._avif"})
    with zipfile.ZipFile(official) as zf:
        files = {i.filename: zf.read(i) for i in zf.infolist()}
    del files[PYD.format("_avif")]
    rebuilt = tmp_path / "rebuilt.zip"
    with zipfile.ZipFile(rebuilt, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    assert abs(without - rebuilt.stat().st_size) < 64
    assert module.zipped_without(official, set()) == official.stat().st_size
