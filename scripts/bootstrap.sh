#!/usr/bin/env bash
# Set up a fresh Debian machine for pillow-variants: Debian source packages (the real upstream
# trees for CI/offline builds), Wine (the verify rung), nasm (libjpeg-turbo's SIMD code),
# git/patch (patch sets), and nox. Idempotent; no prompts.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# deb-src for the pinned suites (stdlib only, so it runs before the package is installed)
$SUDO env PYTHONPATH="$PWD/src" python3 -m pillow_variants.sources.aptsrc --no-update
$SUDO apt-get update -qq
# wine + wine64 (with recommends: /usr/bin/wine comes from "wine")
$SUDO apt-get install -y -qq git patch ca-certificates nasm wine wine64 >/dev/null
python3 -m pip install -q --disable-pip-version-check nox
echo "bootstrap: done"
