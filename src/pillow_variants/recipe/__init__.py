"""Stage 1, recipe: the typed model of a variant (pinned sources, build options, features,
patch lists) loaded from TOML with strict validation, the feature report, and upstream drift.

Layers import only downward: see ``tests/test_layers.py``.
"""
