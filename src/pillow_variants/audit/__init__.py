"""Stage 5, audit: read every PE's imports and resolve them the way the Windows loader would
against a surface profile (API sets, forwarders), plus the strict policy; surface capture.

Layers import only downward: see ``tests/test_layers.py``.
"""

from pathlib import Path

#: The package's data folder, where the built-in surface profiles and policies are. Beside
#: this file rather than through importlib.resources: the profiles are files opened by path
#: either way, and importing importlib.resources is ~3 ms of the ``audit`` command's start-up
#: (benchmarked against ``delvewheel show``).
DATA = Path(__file__).resolve().parent.parent / "data"

#: What ``audit --policy`` takes: import rules only, the loader simulation only, or both.
MODES = ("strict", "surface", "both")
