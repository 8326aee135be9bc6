"""Stage 6, verify: run the wheel in the official Windows CPython under Wine, or in a real
nanoserver container, and record each rung of the evidence ladder in the wheel's manifest.

Layers import only downward: see ``tests/test_layers.py``.
"""
