"""Allow ``python -m pillow_variants``."""

from pillow_variants.cli import run

run()
