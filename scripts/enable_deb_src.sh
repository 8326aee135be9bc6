#!/usr/bin/env bash
# Enable deb-src for the Debian suites whose source packages give the real upstream trees
# (bookworm, trixie, sid), in a file of our own under /etc/apt/sources.list.d/, reusing the URIs
# of the machine's existing Debian entry (so a configured mirror is honoured). Idempotent.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
target=/etc/apt/sources.list.d/pillow-variants-src.sources
if grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ \
   && grep -rqs '^Suites:.*sid' /etc/apt/sources.list.d/*.sources; then
  echo "deb-src already enabled"; exit 0
fi
uris=$(grep -hs '^URIs:' /etc/apt/sources.list.d/debian.sources | head -n1 | sed 's/^URIs:[[:space:]]*//')
if [ -z "$uris" ]; then
  uris=$(grep -hsE '^deb[[:space:]]' /etc/apt/sources.list | grep -v security | head -n1 | awk '{print $2}')
fi
if [ -z "$uris" ]; then echo "error: no Debian apt source found to copy URIs from" >&2; exit 2; fi
$SUDO tee "$target" >/dev/null <<SRC
Types: deb-src
URIs: $uris
Suites: bookworm trixie sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
echo "wrote $target"
