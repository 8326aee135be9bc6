"""verify: ._pth editing, wheel tag → CPython version, wheel unpacking, manifest rungs, the
smoke verdict parser, and the CLI's usage errors (no Wine, no matching CPython)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from httpserver import make_zip
from pillow_variants.cli import main
from pillow_variants.errors import UserError
from pillow_variants.verify.ladder import (
    RUNGS,
    WineVerdict,
    claimed_rungs,
    edit_pth,
    gui_dlls,
    install_wheel,
    parse_smoke_output,
    record_rung,
    wheel_python,
)
from pillow_variants.verify.wine import override_name, wine_env

PTH_313 = (
    "python313.zip\r\n.\r\n\r\n# Uncomment to run site.main() automatically\r\n#import site\r\n"
)
AVAILABLE = ["3.11", "3.12", "3.13"]
DATA = Path(__file__).resolve().parents[2] / "src" / "pillow_variants" / "data"


def test_edit_pth_adds_site_packages_and_enables_site() -> None:
    out = edit_pth(PTH_313)
    lines = out.split("\r\n")
    assert lines[:3] == ["python313.zip", ".", ""]
    assert "Lib\\site-packages" in lines and "import site" in lines and "#import site" not in lines
    assert lines.index("Lib\\site-packages") < lines.index("import site")
    assert edit_pth(out) == out  # idempotent


def test_edit_pth_without_site_line() -> None:
    assert edit_pth("python311.zip\n.\n").split("\r\n") == [
        "python311.zip",
        ".",
        "Lib\\site-packages",
        "import site",
        "",
    ]


@pytest.mark.parametrize(
    ("name", "python"),
    [
        ("pillow-13.0.0-cp313-cp313-win_amd64.whl", "3.13"),
        ("pillow-13.0.0-cp311-cp311-win_amd64.whl", "3.11"),
        ("pillow-13.0.0+nanoserver-cp312-cp312-win_amd64.whl", "3.12"),
        ("thing-1.0-cp39-abi3-win_amd64.whl", "3.13"),
        ("thing-1.0-cp312-abi3-win_amd64.whl", "3.13"),
        ("pure-1.0-py3-none-any.whl", "3.13"),
    ],
)
def test_wheel_python(name: str, python: str) -> None:
    assert wheel_python(Path(name), AVAILABLE) == python


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("pillow-13.0.0-cp310-cp310-win_amd64.whl", "no embeddable CPython for cp310-cp310"),
        ("pillow-13.0.0-cp314-cp314-win_amd64.whl", "available: 3.11, 3.12, 3.13"),
        ("pillow-13.0.0-cp313-cp313t-win_amd64.whl", "cp313-cp313t"),
        ("pillow-13.0.0-cp313-cp313-manylinux_2_28_x86_64.whl", "runs win_amd64 wheels"),
        ("pillow-13.0.0-cp313-cp313-win_arm64.whl", "runs win_amd64 wheels"),
        ("not-a-wheel.zip", "not a wheel file name"),
    ],
)
def test_wheel_python_refuses(name: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        wheel_python(Path(name), AVAILABLE)


def _wheel(path: Path, files: dict[str, bytes]) -> Path:
    path.write_bytes(make_zip(files))
    return path


def test_install_wheel_unpacks_root_and_platlib(tmp_path: Path) -> None:
    wheel = _wheel(
        tmp_path / "pkg-1.0-cp313-cp313-win_amd64.whl",
        {
            "pkg/__init__.py": b"X = 1\n",
            "pkg-1.0.dist-info/METADATA": b"Name: pkg\n",
            "pkg-1.0.data/platlib/pkg_ext.pyd": b"MZ",
            "pkg-1.0.data/scripts/tool": b"#!python\n",
        },
    )
    site = tmp_path / "site"
    assert install_wheel(wheel, site) == ["pkg", "pkg-1.0.dist-info", "pkg_ext.pyd"]
    assert (site / "pkg" / "__init__.py").read_bytes() == b"X = 1\n"
    assert (site / "pkg_ext.pyd").read_bytes() == b"MZ"
    assert not (site / "tool").exists() and not (site / "pkg-1.0.data").exists()


def test_install_wheel_refuses_escaping_paths(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path / "evil-1.0-py3-none-any.whl", {"../evil.py": b"boom"})
    with pytest.raises(UserError, match="unsafe path"):
        install_wheel(wheel, tmp_path / "site")
    assert not (tmp_path / "evil.py").exists()


def test_record_rung_records_only_runs_with_a_verdict() -> None:
    manifest: dict = {}
    with pytest.raises(ValueError, match="unknown verification rung"):
        record_rung(manifest, "vibes", {"passed": True})
    with pytest.raises(ValueError, match="must state 'passed'"):
        record_rung(manifest, "wine", {"python": "3.13.2"})
    assert manifest == {}
    entry = record_rung(manifest, "wine", {"passed": True, "python": "3.13.2"})
    assert entry["rung"] == "wine" and entry["python"] == "3.13.2"
    record_rung(manifest, "strict", {"passed": False, "violations": 3})
    record_rung(manifest, "surface", {"passed": True})
    assert claimed_rungs(manifest) == ["surface", "wine"]  # ladder order, failed strict not claimed
    assert set(manifest["rungs"]) <= set(RUNGS)
    assert "container" not in manifest["rungs"]  # never ran → absent


def test_verdict_rung_result_feeds_record_rung() -> None:
    smoke = {"smoke": "fail", "wine": "8.0", "counts": {"pass": 3, "fail": 1, "skip": 0}}
    failed = [{"name": "nanoserver: WMF load removed", "status": "fail", "detail": "x"}]
    v = WineVerdict("w.whl", "3.13", "3.13.2", "nanoserver", False, 1, 7.0, "r", smoke, failed)
    manifest: dict = {}
    entry = record_rung(manifest, "wine", v.rung_result())
    assert entry["passed"] is False and entry["failed_checks"] == ["nanoserver: WMF load removed"]
    assert claimed_rungs(manifest) == []


def test_parse_smoke_output_takes_the_last_verdict_line() -> None:
    out = 'PASS  x\n{"not": "it"}\n{"smoke": "fail"}\nnoise\n{"smoke": "pass", "checks": []}\n'
    assert parse_smoke_output(out) == {"smoke": "pass", "checks": []}
    assert parse_smoke_output("Fatal Python error: init_sys_streams\n{broken json\n") is None


def test_cli_without_wine_exits_2_with_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    wheel = _wheel(tmp_path / "pillow-13.0.0-cp313-cp313-win_amd64.whl", {"PIL/__init__.py": b""})
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert main(["verify", "wine", str(wheel)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == "error: wine not found: install wine64 (apt-get install -y wine64)"


def test_cli_wheel_without_matching_cpython_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wheel = _wheel(tmp_path / "pillow-13.0.0-cp310-cp310-win_amd64.whl", {"PIL/__init__.py": b""})
    assert main(["verify", "wine", str(wheel)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: pillow-13.0.0-cp310-cp310-win_amd64.whl: no embeddable CPython")
    assert "available: 3.11, 3.12, 3.13" in err


def test_default_smoke_test_is_the_installed_payload() -> None:
    """build all's Wine rung finds the smoke test inside the installed package by itself (a
    path computed from this module's location broke when the module moved, #13)."""
    import pillow_variants
    from pillow_variants.verify.ladder import default_smoke_test

    path = default_smoke_test()
    assert path == Path(pillow_variants.__file__).resolve().parent / "payload" / "smoke_test.py"
    assert path.is_file()


def test_gui_dlls_are_the_strict_policys_dll_rules(tmp_path: Path) -> None:
    raw = json.loads((DATA / "policies" / "strict.json").read_text())
    listed = {d.lower() for r in raw["rules"] for d in r.get("match", {}).get("dlls", [])}
    assert gui_dlls() == sorted(listed)
    assert {"user32.dll", "gdi32.dll", "winspool.drv"} <= set(gui_dlls())
    # another policy file: exactly its DLL list, function rules contribute nothing
    policy = tmp_path / "p.json"
    rules = [
        {"id": "a", "reason": "r", "fix": "f", "match": {"dlls": ["Foo.dll"]}},
        {"id": "b", "reason": "r", "fix": "f", "match": {"function_pattern": "A$"}},
    ]
    policy.write_text(json.dumps({"format": "pillow-variants-policy/1", "rules": rules}))
    assert gui_dlls(str(policy)) == ["foo.dll"]


def test_wine_env_disables_dlls_by_their_builtin_names(tmp_path: Path) -> None:
    assert (
        override_name("USER32.dll") == "user32" and override_name("winspool.drv") == "winspool.drv"
    )
    assert wine_env(tmp_path)["WINEDLLOVERRIDES"] == "mscoree,mshtml="
    env = wine_env(tmp_path, ["USER32.dll", "winspool.drv", "gdi32.dll", "user32.dll"])
    assert env["WINEDLLOVERRIDES"] == "mscoree,mshtml=;gdi32,user32,winspool.drv=d"


def test_nogui_verdict_is_evidence_for_the_wine_nogui_rung() -> None:
    smoke = {"smoke": "pass", "wine": None, "counts": {"pass": 77, "fail": 0, "skip": 6}}
    v = WineVerdict(
        "w.whl", "3.13", "3.13.2", "nanoserver", True, 0, 8.0, "r", smoke,
        disabled_dlls=["gdi32.dll", "user32.dll"],
    )  # fmt: skip
    assert v.rung == "wine-nogui"
    manifest: dict = {}
    entry = record_rung(manifest, v.rung, v.rung_result())
    assert entry["disabled_dlls"] == ["gdi32.dll", "user32.dll"]
    assert claimed_rungs(manifest) == ["wine-nogui"]
    plain = WineVerdict("w.whl", "3.13", "3.13.2", "nanoserver", True, 0, 8.0, "r", smoke)
    assert plain.rung == "wine" and "disabled_dlls" not in plain.rung_result()
