"""Loader simulation, report and CLI on wheels/PE files built here with zig."""

from __future__ import annotations

import json
import threading
import tracemalloc
import zipfile
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from pefactory import build_pe, long_rdata, set_machine
from pillow_variants.audit.engine import audit_paths
from pillow_variants.cli import main

SCHEMA = json.loads(
    (resources.files("pillow_variants") / "schemas" / "audit-report.schema.json").read_text()
)


def validate(report_json: str) -> dict:
    data = json.loads(report_json)
    jsonschema.Draft202012Validator(SCHEMA).validate(data)
    return data


def make_wheel(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        zf.writestr("pkg-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nTag: cp313-cp313-win_amd64\n")
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("loader")
    return {
        # vendored by delvewheel into pkg.libs/, name-mangled
        "dep": build_pe(
            d,
            "libdep-0a1b2c3d.dll",
            exports=["dep_ok"],
            forwarders={"dep_fwd_ok": "KERNEL32.Sleep", "dep_fwd_bad": "gdiplus.GdipAlloc"},
            imports={"KERNEL32.dll": ["Sleep"]},
        ),
        "good": build_pe(
            d,
            "good.pyd",
            imports={
                "libdep-0a1b2c3d.dll": ["dep_ok", "dep_fwd_ok"],
                "python313.dll": ["PyModule_Create2"],
                "VCRUNTIME140.dll": ["memcpy"],
                "api-ms-win-crt-runtime-l1-1-0.dll": ["_initterm"],
                "KERNEL32.dll": ["CloseHandle", "CreateFileW"],
            },
            delay={"USER32.dll": ["MessageBoxW", "CreateWindowExW"]},
        ),
        "bad127": build_pe(
            d, "bad127.pyd", exports=["bad_api"], imports={"libdep-0a1b2c3d.dll": ["dep_missing"]}
        ),
        "badfwd": build_pe(d, "badfwd.pyd", imports={"libdep-0a1b2c3d.dll": ["dep_fwd_bad"]}),
        "bad126": build_pe(d, "bad126.pyd", imports={"MSVCP140.dll": ["_Thrd_yield"]}),
        "gui": build_pe(
            d,
            "gui.pyd",
            imports={
                "KERNEL32.dll": ["CreateFileMappingA", "GlobalLock", "GetStartupInfoA"],
                "GDI32.dll": ["BitBlt"],
            },
        ),
        "chain": build_pe(d, "chain.pyd", imports={"bad127.pyd": ["bad_api"]}),
        "x86dep": set_machine(build_pe(d, "x86dep.dll", exports=["f"]), 0x014C),
        "usesx86": build_pe(d, "usesx86.pyd", imports={"x86dep.dll": ["f"]}),
    }


def _module(report: dict, path: str) -> dict:
    mods = [m for t in report["targets"] for m in t["modules"] if m["path"] == path]
    assert len(mods) == 1, path
    return mods[0]


def _fn(module: dict, dll: str, fn: str) -> dict:
    for d in module["imports"]:
        if d["name"] == dll:
            for f in d["functions"]:
                if f["name"] == fn:
                    return f
    raise AssertionError(f"{dll}!{fn} not imported by {module['path']}")


def test_clean_wheel_resolves_libs_runtime_and_forwarders(built, tmp_path) -> None:
    wheel = make_wheel(
        tmp_path / "pkg-1.0-cp313-cp313-win_amd64.whl",
        {
            "pkg/good.cp313-win_amd64.pyd": built["good"].read_bytes(),
            "pkg.libs/libdep-0a1b2c3d.dll": built["dep"].read_bytes(),
        },
    )
    report = audit_paths([wheel], surface="nanoserver-ltsc2022", policy="both")
    data = validate(report.to_json())
    # encoded a piece at a time (report._dumps), the text is json.dumps's, indented or not
    assert report.to_json() == json.dumps(report.to_dict())
    assert report.to_json(indent=1) == json.dumps(report.to_dict(), indent=1)
    assert report.exit_code == 0, report.to_text()
    good = _module(data, "pkg/good.cp313-win_amd64.pyd")
    assert good["load"]["ok"] is True
    dep = next(d for d in good["imports"] if d["name"] == "libdep-0a1b2c3d.dll")
    assert dep["where"] == "wheel" and dep["resolved_as"] == "pkg.libs/libdep-0a1b2c3d.dll"
    assert _fn(good, "libdep-0a1b2c3d.dll", "dep_fwd_ok")["forwarded_to"] == ["KERNEL32.Sleep"]
    assert {d["name"]: d["where"] for d in good["imports"]}["python313.dll"] == "runtime"
    # Delay-loaded USER32: warnings only, with the function named.
    warnings = [f for f in good["findings"] if f["severity"] == "warning"]
    assert {f["function"] for f in warnings if f["kind"] == "surface"} == {"CreateWindowExW"}
    assert data["summary"]["warnings"] >= 1 and data["summary"]["errors"] == 0


def test_wrong_python_dll_for_the_wheel_tag_is_126(built, tmp_path) -> None:
    wheel = make_wheel(
        tmp_path / "pkg-1.0-cp311-cp311-win_amd64.whl",
        {
            "pkg/good.pyd": built["good"].read_bytes(),
            "pkg.libs/libdep-0a1b2c3d.dll": built["dep"].read_bytes(),
        },
    )
    data = validate(audit_paths([wheel], policy="surface").to_json())
    good = _module(data, "pkg/good.pyd")
    assert good["load"]["error"] == 126 and "python313.dll" in good["load"]["detail"]


def test_free_threaded_wheel_runs_on_python3xyt_dll_only(built, tmp_path) -> None:
    """cp313-cp313t: the runtime next to python.exe is python313t.dll (free-threaded CPython);
    an extension importing python313.dll would not load there."""
    ft = build_pe(tmp_path / "pe", "ft.pyd", imports={"python313t.dll": ["PyLong_FromLong"]})
    wheel = make_wheel(
        tmp_path / "pkg-1.0-cp313-cp313t-win_amd64.whl",
        {"pkg/ft.pyd": ft.read_bytes(), "pkg/gil.pyd": built["good"].read_bytes(),
         "pkg.libs/libdep-0a1b2c3d.dll": built["dep"].read_bytes()},
    )  # fmt: skip
    data = validate(audit_paths([wheel], policy="surface").to_json())
    ok = _module(data, "pkg/ft.pyd")
    assert ok["load"]["ok"] is True
    assert {d["name"]: d["where"] for d in ok["imports"]}["python313t.dll"] == "runtime"
    gil = _module(data, "pkg/gil.pyd")
    assert gil["load"]["error"] == 126 and "python313.dll" in gil["load"]["detail"]


def test_missing_function_in_own_dll_is_127_and_propagates(built, tmp_path) -> None:
    for key in ("bad127", "chain", "dep"):
        (tmp_path / built[key].name).write_bytes(built[key].read_bytes())
    report = audit_paths([tmp_path], policy="surface")
    data = validate(report.to_json())
    assert report.exit_code == 1
    bad = _module(data, "bad127.pyd")
    assert bad["load"] == {
        "ok": False,
        "error": 127,
        "message": "The specified procedure could not be found",
        "chain": ["bad127.pyd"],
        "detail": "libdep-0a1b2c3d.dll!dep_missing",
    }
    chain = _module(data, "chain.pyd")
    assert chain["load"]["error"] == 127 and chain["load"]["chain"] == ["chain.pyd", "bad127.pyd"]
    assert chain["findings"] == []  # its own imports bind; the failure is bad127's


def test_forwarder_to_absent_dll_counts_as_absent(built, tmp_path) -> None:
    for key in ("badfwd", "dep"):
        (tmp_path / built[key].name).write_bytes(built[key].read_bytes())
    data = validate(audit_paths([tmp_path], policy="surface").to_json())
    fn = _fn(_module(data, "badfwd.pyd"), "libdep-0a1b2c3d.dll", "dep_fwd_bad")
    assert fn["present"] is False and fn["error"] == 127 and fn["basis"] == "forwarder"
    assert fn["forwarded_to"] == ["gdiplus.GdipAlloc"]


def test_unknown_dll_is_126_on_both_surfaces(built) -> None:
    for surface in ("nanoserver-ltsc2022", "servercore-ltsc2022"):
        report = audit_paths([built["bad126"]], surface=surface, policy="surface")
        data = validate(report.to_json())
        m = data["targets"][0]["modules"][0]
        assert m["load"]["error"] == 126, surface
        assert m["findings"][0]["error"] == 126
        assert "The specified module could not be found" in m["findings"][0]["message"]


def test_machine_mismatch_is_193(built, tmp_path) -> None:
    for key in ("usesx86", "x86dep"):
        (tmp_path / built[key].name).write_bytes(built[key].read_bytes())
    data = validate(audit_paths([tmp_path], policy="surface").to_json())
    load = _module(data, "usesx86.pyd")["load"]
    assert load["error"] == 193 and load["chain"] == ["usesx86.pyd", "x86dep.dll"]


def test_strict_policy_rules_and_surface_verdicts(built) -> None:
    data = validate(audit_paths([built["gui"]], policy="both").to_json())
    m = data["targets"][0]["modules"][0]
    rules = {(f["rule"], f["function"]) for f in m["findings"] if f["kind"] == "policy"}
    assert ("gui-dll", None) in rules
    assert ("ansi-function", "CreateFileMappingA") in rules
    assert ("ansi-function", "GetStartupInfoA") in rules
    assert ("legacy-heap", "GlobalLock") in rules
    kernel = {
        f["name"]: f for d in m["imports"] if d["name"] == "KERNEL32.dll" for f in d["functions"]
    }
    # reported missing by NanoServerApiScan on pre-1809 Nano Server: a rule, not evidence
    assert kernel["GetStartupInfoA"]["basis"] == "rule:pre1809-scan"
    assert kernel["GetStartupInfoA"]["sources"] == ["derived-rule", "nanoserverapiscan"]
    assert kernel["GlobalLock"]["basis"] == "rule:legacy-contract"
    # strict alone needs no surface and gives no loader verdict
    strict = validate(audit_paths([built["gui"]], policy="strict").to_json())
    assert strict["surface"] is None
    assert strict["targets"][0]["modules"][0]["load"] is None
    assert strict["exit_code"] == 1


def test_cli_exit_codes_and_text(built, capsys) -> None:
    assert main(["audit", str(built["gui"])]) == 1
    out = capsys.readouterr().out
    assert "FAILS: error 127" in out and "GlobalLock" in out and "[legacy-heap]" in out
    assert (
        main(
            ["audit", "--policy", "surface", "--surface", "servercore-ltsc2022", str(built["gui"])]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["audit", "--json", str(built["gui"])]) == 1
    assert validate(capsys.readouterr().out)["exit_code"] == 1


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("random.pyd", b"\x8f\x13" * 300, "not a PE file"),
        ("empty.dll", b"", "not a PE file"),
        ("notawheel.whl", None, "not a wheel"),
        ("garbage.whl", b"PK\x03\x04 this is not a zip", "not a readable wheel"),
    ],
)
def test_malformed_inputs_exit_2_with_one_line(tmp_path, capsys, name, content, message) -> None:
    path = tmp_path / name
    if content is None:
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("hello.txt", "not a wheel")
    else:
        path.write_bytes(content)
    assert main(["audit", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_truncated_pe_and_bogus_import_directory_exit_2(built, tmp_path, capsys) -> None:
    data = built["gui"].read_bytes()
    (tmp_path / "trunc.pyd").write_bytes(data[: len(data) // 3])
    bogus = bytearray(data)
    pe_off = int.from_bytes(bogus[0x3C:0x40], "little")
    import_dir = pe_off + 24 + 112 + 8  # PE32+: optional header data directory #1
    bogus[import_dir : import_dir + 8] = (0x7FFF0000).to_bytes(4, "little") + (64).to_bytes(
        4, "little"
    )
    (tmp_path / "bogus.pyd").write_bytes(bytes(bogus))
    for name in ("trunc.pyd", "bogus.pyd"):
        assert main(["audit", str(tmp_path / name)]) == 2, name
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert "import directory" in err


def test_usage_errors_exit_2(built, capsys) -> None:
    assert main(["audit", "--surface", "no-such-surface", str(built["gui"])]) == 2
    assert "unknown surface" in capsys.readouterr().err
    assert main(["audit", "/no/such/file.whl"]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["audit", "--policy", "lenient", str(built["gui"])])
    assert exc.value.code == 2


def _counting_spool(monkeypatch) -> tuple[list[str], set[int]]:
    """Record which members start inflating, in order, and on which threads."""
    from pillow_variants import limits

    started: list[str] = []
    threads: set[int] = set()
    spool = limits.spool_member

    def counting(zf, info, subject, dest, *args, **kwargs):  # type: ignore[no-untyped-def]
        started.append(info.filename)
        threads.add(threading.get_ident())
        return spool(zf, info, subject, dest, *args, **kwargs)

    monkeypatch.setattr(limits, "spool_member", counting)
    return started, threads


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_wheel_members_are_read_ahead_and_bounded(tmp_path, monkeypatch, workers) -> None:
    """Members are inflated by worker threads ahead of the parser, largest first, each handed
    over once, within a budget of bytes inflated and not yet parsed: with a budget of one
    byte, no worker starts a member while an inflated one waits for the parser, so at most one
    per worker is ahead of it. Inflations are counted when they start, so the bound is not
    timing-bound."""
    from pillow_variants.audit import engine

    started, threads = _counting_spool(monkeypatch)
    names = [f"m{i}.dll" for i in range(7)]
    sizes = [3, 1, 7, 2, 7, 5, 4]  # x 999 bytes; m2 and m4 tie: the archive's order
    members = {n: n.encode() * 999 * k for n, k in zip(names, sizes, strict=True)}
    wheel = make_wheel(tmp_path / "many-1.0-py3-none-any.whl", members)
    with zipfile.ZipFile(wheel) as zf:
        seen = []
        inflater = engine._Inflater(zf, names, budget=1, threads=workers)
        for index, name, data in engine._read_ahead(inflater):
            seen.append(name)
            assert len(seen) <= len(started) <= len(seen) + workers - 1
            assert name == names[index] and data[:] == members[name]
        assert inflater.pending == 0
    largest_first = ["m2.dll", "m4.dll", "m5.dll", "m6.dll", "m0.dll", "m3.dll", "m1.dll"]
    assert [names[i] for i in inflater.order] == largest_first
    assert sorted(seen) == sorted(started) == names
    if workers == 1:
        assert seen == started == largest_first
    assert 1 <= len(threads) <= workers and threading.get_ident() not in threads


def test_a_slow_first_member_does_not_hold_up_the_others(tmp_path, monkeypatch) -> None:
    """With two workers the members after a slow first one are inflated while it is, and
    handed to the parser before it: it cannot finish until the parser has all the others.
    Pillow's 8 MB ``_avif`` sorts first: one worker inflated everything after it, and the
    parser, handed members in order, waited for it."""
    from pillow_variants import limits
    from pillow_variants.audit import engine

    spool, others_parsed = limits.spool_member, threading.Event()
    first_saw_others: list[bool] = []

    def slow_first(zf, info, subject, dest, *args, **kwargs):  # type: ignore[no-untyped-def]
        if info.filename == "m0.dll":
            first_saw_others.append(others_parsed.wait(5))
        return spool(zf, info, subject, dest, *args, **kwargs)

    monkeypatch.setattr(limits, "spool_member", slow_first)
    names = [f"m{i}.dll" for i in range(4)]
    members = {n: n.encode() * (999 if n == "m0.dll" else 99) for n in names}
    wheel = make_wheel(tmp_path / "many-1.0-py3-none-any.whl", members)
    seen = []
    with zipfile.ZipFile(wheel) as zf:
        inflater = engine._Inflater(zf, names)  # the audit's default: two workers
        for _, name, _ in engine._read_ahead(inflater):
            seen.append(name)
            if len(seen) == 3:
                others_parsed.set()
    assert seen == ["m1.dll", "m2.dll", "m3.dll", "m0.dll"] and first_saw_others == [True]


def test_of_two_bad_members_the_first_taken_is_reported(tmp_path, monkeypatch) -> None:
    """Members are handed over as they are done, but an error is not: the small bad member
    fails first, and the large one, taken first, is still the one reported (the same error
    for the same wheel, whichever thread was quicker)."""
    from pillow_variants import limits
    from pillow_variants.audit import engine

    small_failed = threading.Event()

    def failing(zf, info, subject, dest, *args, **kwargs):  # type: ignore[no-untyped-def]
        if info.filename == "small.dll":
            small_failed.set()
        else:
            assert small_failed.wait(5)
        raise zipfile.BadZipFile(f"bad {info.filename}")

    monkeypatch.setattr(limits, "spool_member", failing)
    names = ["large.dll", "small.dll"]
    wheel = make_wheel(
        tmp_path / "two-1.0-py3-none-any.whl", {"large.dll": bytes(999), "small.dll": b"x"}
    )
    with zipfile.ZipFile(wheel) as zf:
        inflater = engine._Inflater(zf, names)
        with pytest.raises(zipfile.BadZipFile, match="bad large.dll"):
            list(engine._read_ahead(inflater))
    assert not inflater.alive()


def test_a_member_failing_after_others_were_parsed_is_reported(tmp_path, monkeypatch) -> None:
    """The large member is parsed, then a later one fails to inflate: its error is reported.
    (The inflater used to wait for the parsed member to be done again: the audit hung.)"""
    from pillow_variants import limits
    from pillow_variants.audit import engine

    spool, large_parsed = limits.spool_member, threading.Event()

    def failing(zf, info, subject, dest, *args, **kwargs):  # type: ignore[no-untyped-def]
        if info.filename == "bad.dll":
            assert large_parsed.wait(5)
            raise zipfile.BadZipFile("bad bad.dll")
        return spool(zf, info, subject, dest, *args, **kwargs)

    monkeypatch.setattr(limits, "spool_member", failing)
    names = ["large.dll", "bad.dll"]
    wheel = make_wheel(
        tmp_path / "two-1.0-py3-none-any.whl", {"large.dll": bytes(999), "bad.dll": b"x"}
    )
    seen: list[str] = []

    def parse() -> None:
        try:
            for _, name, _ in engine._read_ahead(inflater):
                seen.append(name)
                large_parsed.set()
        except zipfile.BadZipFile as exc:
            seen.append(str(exc))

    with zipfile.ZipFile(wheel) as zf:
        inflater = engine._Inflater(zf, names)
        parser = threading.Thread(target=parse, daemon=True)
        parser.start()
        parser.join(10)
        assert not parser.is_alive(), "the parser waits for ever"
    assert seen == ["large.dll", "bad bad.dll"] and not inflater.alive()


def test_a_wheel_with_a_corrupt_small_module_exits_2_without_hanging(built, tmp_path) -> None:
    """The same through the command, on a wheel shaped like Pillow's: one large module and
    small ones, one of them corrupt (a CRC error found by an inflating thread)."""
    import subprocess
    import sys
    import zlib

    good = built["good"].read_bytes()
    members = {"pkg/_big.pyd": good + bytes(4 << 20)}  # an overlay: still a valid PE
    members.update({f"pkg/m{i}.pyd": good for i in range(6)})
    wheel = make_wheel(tmp_path / "pkg-1.0-cp313-cp313-win_amd64.whl", members)
    with zipfile.ZipFile(wheel) as zf:
        info = zf.getinfo("pkg/m5.pyd")
    raw = bytearray(wheel.read_bytes())
    at = info.header_offset + 30 + len(info.filename) + len(info.extra) + info.compress_size // 2
    raw[at] ^= 0xFF  # inside m5's deflated bytes
    wheel.write_bytes(bytes(raw))
    with pytest.raises((zlib.error, zipfile.BadZipFile)), zipfile.ZipFile(wheel) as zf:
        zf.read("pkg/m5.pyd")
    proc = subprocess.run(
        [sys.executable, "-m", "pillow_variants", "audit", str(wheel)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1
    assert "pkg/m5.pyd" in proc.stderr


def test_an_abandoned_read_ahead_stops_its_thread(tmp_path) -> None:
    """A parse error on the first member stops the inflater: no thread left running, no
    temporary file left open, later members not inflated."""
    from pillow_variants.audit import engine

    names = [f"m{i}.dll" for i in range(7)]
    wheel = make_wheel(tmp_path / "many-1.0-py3-none-any.whl", {n: bytes(200_000) for n in names})
    with zipfile.ZipFile(wheel) as zf:
        inflater = engine._Inflater(zf, names, budget=400_000)
        reader = engine._read_ahead(inflater)
        assert next(reader)[1] in names
        reader.close()
    assert not inflater.alive() and not inflater.done


def test_a_large_member_is_audited_without_holding_it_in_memory(tmp_path) -> None:
    """Members are inflated to temporary files a chunk at a time and mapped, so the audit of
    a 48 MiB module holds a few chunks of it, not the module (read whole, it was held twice),
    nor the 48 MiB section that holds its export tables (pefile copied it to take its length:
    MSVC merges .edata into .rdata, as the /merge here does)."""
    import pefile

    from pillow_variants.audit.engine import DEFAULT_SURFACE
    from pillow_variants.audit.policy import load_policy
    from pillow_variants.audit.surface import load_surface

    size = 48 << 20
    big = build_pe(
        tmp_path,
        "big.pyd",
        exports=["alpha"],
        imports={"KERNEL32.dll": ["Sleep"], "USER32.dll": ["MessageBoxW"]},
        **long_rdata(size),
    )
    user = build_pe(tmp_path, "user.pyd", imports={"big.pyd": ["alpha"]})
    pe = pefile.PE(str(big), fast_load=True)
    exports_at = pe.OPTIONAL_HEADER.DATA_DIRECTORY[0].VirtualAddress
    assert pe.get_section_by_rva(exports_at).SizeOfRawData > size
    wheel = make_wheel(tmp_path / "big-1.0-cp313-cp313-win_amd64.whl", {})
    with zipfile.ZipFile(wheel, "a", zipfile.ZIP_DEFLATED) as zf:
        zf.write(big, "pkg/big.pyd")  # streamed from the file: no copy in this process
        zf.write(user, "pkg/user.pyd")
    load_surface(DEFAULT_SURFACE), load_policy()  # cached: not part of the measured audit
    tracemalloc.start()
    try:
        report = json.loads(audit_paths([wheel]).to_json())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, f"{peak / (1 << 20):.1f} MiB traced for a {size >> 20} MiB member"
    imports = _module(report, "pkg/big.pyd")["imports"]
    assert {d["name"]: [f["name"] for f in d["functions"]] for d in imports} == {
        "KERNEL32.dll": ["Sleep"],
        "USER32.dll": ["MessageBoxW"],
    }
    (alpha,) = _module(report, "pkg/user.pyd")["imports"]  # bound to big.pyd's exports
    assert alpha["where"] == "wheel" and alpha["functions"][0]["present"] is True


def test_corrupt_member_error_from_a_reader_thread_is_one_line(built, tmp_path, capsys) -> None:
    wheel = tmp_path / "pkg-1.0-cp313-cp313-win_amd64.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("pkg/a.pyd", built["good"].read_bytes())
        zf.writestr("pkg/b.pyd", built["gui"].read_bytes())
        zf.writestr("pkg-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\n")
    raw = bytearray(wheel.read_bytes())
    at = raw.index(b"PE\0\0", raw.index(b"pkg/b.pyd")) + 200  # inside b.pyd's stored bytes
    raw[at] ^= 0xFF
    wheel.write_bytes(bytes(raw))
    assert main(["audit", str(wheel)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "pkg/b.pyd" in err
    assert "CRC" in err  # the reader thread's own error, not a parse of missing data
    assert "Traceback" not in err


def test_a_profile_error_stops_the_read_ahead(built, tmp_path) -> None:
    """The first wheel starts inflating before the profiles load: a bad profile still gives
    its own error first, and leaves no inflater thread behind."""
    from pillow_variants.errors import UserError

    members = {f"pkg/m{i}.pyd": built["good"].read_bytes() for i in range(6)}
    wheel = make_wheel(tmp_path / "pkg-1.0-cp313-cp313-win_amd64.whl", members)
    with pytest.raises(UserError, match="unknown surface"):
        audit_paths([wheel], surface="no-such-surface")
    with pytest.raises(UserError, match="unknown policy 'no-such-rules'"):
        audit_paths([wheel, tmp_path / "missing.whl"], policy_file="no-such-rules")
    assert not [t for t in threading.enumerate() if t.name.startswith("pv-inflate")]
