#!/bin/sh
# Installs Debian's Chromium for the Playwright browser tests (Playwright's own download does not
# work offline). Without root or sudo it only explains; the browser tests then skip.
set -e
if command -v chromium >/dev/null 2>&1; then exit 0; fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "chromium is not installed and this user cannot install it: browser tests will be skipped" >&2
    exit 0
  fi
fi
echo "Installing Debian's chromium for the browser tests..."
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
