"""Entry point for cibuildwheel's test command (``python {project}/scripts/smoke_test.py``).

The smoke test itself ships inside the package (``src/pillow_variants/payload/smoke_test.py``),
where ``verify wine`` and ``verify container`` find it from any install. cibuildwheel runs its
test command in a fresh virtualenv holding only the Pillow wheel under test -- pillow-variants
is not importable there -- with ``{project}`` the directory cibuildwheel was started in: this
checkout (``build-windows.cmd`` refuses to run elsewhere). So this file runs the payload by
its path in the checkout.
"""

import runpy
from pathlib import Path

PAYLOAD = Path(__file__).resolve().parents[1] / "src" / "pillow_variants" / "payload"

if __name__ == "__main__":
    runpy.run_path(str(PAYLOAD / "smoke_test.py"), run_name="__main__")
