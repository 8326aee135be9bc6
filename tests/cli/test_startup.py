"""Start-up of ``pillow-variants audit`` (benchmarked against ``delvewheel show``, see
scripts/bench_audit.py): the command's parser imports no module that only other commands use.

Asserted on the set of modules imported, not on time: a fresh interpreter builds the parser
for ``audit`` (which imports the command's module) and reports ``sys.modules``.
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
)

PROBE = """
import json, sys
from pillow_variants.cli import build_parser
build_parser(["audit", "x.whl"]).parse_args(["audit", "x.whl"])
print(json.dumps(sorted(sys.modules)))
"""


def test_the_audit_command_imports_nothing_of_the_other_commands() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    ).stdout
    loaded = json.loads(out)
    assert "pillow_variants.audit.engine" in loaded  # the probe did build the audit parser
    heavy = [m for m in loaded if any(m == h or m.startswith(h + ".") for h in NOT_FOR_AUDIT)]
    assert heavy == []
