"""Stage 5, audit: read every PE's imports and resolve them the way the Windows loader would
against a surface profile (API sets, forwarders), plus the strict policy; surface capture.

Layers import only downward: see ``tests/test_layers.py``.
"""

#: What ``audit --policy`` takes: import rules only, the loader simulation only, or both.
MODES = ("strict", "surface", "both")
