"""Start-up of ``pillow-variants audit`` (benchmarked against ``delvewheel show``, see
scripts/bench_audit.py): the audit command imports no module that only other commands use.

Asserted on the set of modules imported, not on time: a fresh interpreter runs ``audit`` on a
missing file (parser, set-up, surface and policy loaded, then the one-line error) and reports
``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys

#: Imported by the commands that fetch, build or publish; none of them is needed to audit.
NOT_FOR_AUDIT = (
    "pillow_variants.recipe",
    "pillow_variants.sources",
    "pillow_variants.build",
    "pillow_variants.verify",
    "pillow_variants.release",
    "packaging",
    "tomllib",
    "urllib.request",
    "http.client",
    "ssl",
    # the audit's own, imported by the first parse: by then the members are being inflated
    "pefile",
    # imported by the first progress line; the audit reports none
    "logging",
    # ~20 ms of the audit's start-up with its record types (pillow_variants._record)
    "dataclasses",
    "inspect",
    # the built-in profiles are found beside the package (pillow_variants.audit.DATA)
    "importlib.resources",
)

PROBE = """
import json, sys
from pillow_variants.cli import main
code = main(["audit", "no-such.whl"])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def test_the_audit_command_imports_nothing_of_the_other_commands() -> None:
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True)
    out = json.loads(proc.stdout)
    assert out["code"] == 2 and proc.stderr == "error: no-such.whl: no such file or directory\n"
    loaded = out["modules"]
    assert "pillow_variants.audit.surface" in loaded  # the probe did run the audit
    heavy = [m for m in loaded if any(m == h or m.startswith(h + ".") for h in NOT_FOR_AUDIT)]
    assert heavy == []


WHEEL_PROBE = """
import json, sys
from pillow_variants.cli import main
code = main(["audit", sys.argv[1], "--json"])
heavy = [m for m in ("_hashlib", "dataclasses", "importlib.resources") if m in sys.modules]
print(json.dumps({"code": code, "heavy": heavy}), file=sys.stderr)
"""


def test_the_audit_of_a_wheel_does_not_load_openssl_or_dataclasses(tmp_path) -> None:
    """OpenSSL's libcrypto was 3.4 MiB of the audit's peak memory (benchmarked against
    ``delvewheel show``), loaded only by pefile's import of hashlib: nothing on the audit path
    imports hashlib first, and the command asks for hashlib without it
    (pe.prefer_builtin_hashes). Nor does parsing and reporting import dataclasses or
    importlib.resources (the probe above stops before the first parse)."""
    from pefactory import build_pe
    from wheelfactory import make_wheel

    pyd = build_pe(tmp_path, "_imaging.pyd", imports={"KERNEL32.dll": ["Sleep"]})
    wheel = make_wheel(tmp_path, files={"PIL/_imaging.cp313-win_amd64.pyd": pyd.read_bytes()})
    proc = subprocess.run(
        [sys.executable, "-c", WHEEL_PROBE, str(wheel)], capture_output=True, text=True
    )
    assert json.loads(proc.stdout)["targets"][0]["modules"], proc.stderr  # it did audit
    assert json.loads(proc.stderr.splitlines()[-1]) == {"code": 0, "heavy": []}


def test_the_audit_shortens_the_switch_interval_and_restores_it(monkeypatch) -> None:
    """The threads inflating a wheel take the GIL back after every chunk: the command audits
    with a short switch interval (cli/main_audit.py) and leaves the process's as it was."""
    from pillow_variants.cli import main, main_audit

    seen = []

    def audit_paths(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(sys.getswitchinterval())
        raise KeyboardInterrupt  # the interval is restored on the way out of an error too

    monkeypatch.setattr(main_audit, "audit_paths", audit_paths)
    before = sys.getswitchinterval()
    assert main(["audit", "x.whl"]) == 130
    assert seen == [main_audit.SWITCH_INTERVAL] and sys.getswitchinterval() == before


EXIT_PROBE = """
import atexit, sys
atexit.register(lambda: sys.stderr.write("teardown ran\\n"))
sys.argv = ["pillow-variants", *sys.argv[1:]]
from pillow_variants.cli import run
run()
"""


def test_the_audit_process_ends_without_teardown_and_with_all_its_output(tmp_path) -> None:
    """After ``audit`` the executable skips the interpreter's teardown (~11 ms of an audit of
    a Pillow wheel): the whole report still arrives, with the command's exit code. Other
    commands end the ordinary way (atexit handlers run)."""
    from pefactory import build_pe
    from wheelfactory import make_wheel

    pyd = build_pe(tmp_path, "_imaging.pyd", imports={"USER32.dll": ["GetDC"]})
    wheel = make_wheel(tmp_path, files={"PIL/_imaging.cp313-win_amd64.pyd": pyd.read_bytes()})
    audit = subprocess.run(
        [sys.executable, "-c", EXIT_PROBE, "audit", str(wheel), "--json"],
        capture_output=True,
        text=True,
    )
    assert audit.returncode == 1 and audit.stderr == ""  # USER32: a finding, no teardown
    assert json.loads(audit.stdout)["exit_code"] == 1  # the whole JSON document arrived
    listing = subprocess.run(
        [sys.executable, "-c", EXIT_PROBE, "surface", "list"], capture_output=True, text=True
    )
    assert listing.returncode == 0 and "nanoserver-ltsc2022" in listing.stdout
    assert listing.stderr == "teardown ran\n"
