"""Stage 2, sources: the content-addressed download cache, safe archive extraction, Debian
source packages (apt), patch sets applied atomically, and source-tree preparation.

Layers import only downward: see ``tests/test_layers.py``.
"""
