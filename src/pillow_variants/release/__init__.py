"""Stage 7, release: the CycloneDX SBOM, wheel-to-wheel comparison, the package index client and
publishing with twine.

Layers import only downward: see ``tests/test_layers.py``.
"""
