"""Stage 4, build: every C dependency (static, cached), the Windows CPython SDK, the
cross-compilation environment, Pillow's own PEP 517 build, the cibuildwheel plan, and the repair.

Layers import only downward: see ``tests/test_layers.py``.
"""
