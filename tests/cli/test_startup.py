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
