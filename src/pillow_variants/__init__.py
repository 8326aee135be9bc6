"""pillow-variants: build, audit, verify and publish variants of Pillow's Windows wheels.

The pipeline, one module per stage: recipe → sources → patches → toolchain → build → repair →
audit → verify → publish. Each CLI subcommand lives in a ``main_<command>.py`` module.
"""

__version__ = "0.1.0"
