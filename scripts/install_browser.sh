#!/usr/bin/env bash
# Installs Debian's headless-capable Chromium for the browser end-to-end test
# (tests/app/test_app_browser.py); does nothing when it is already there.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    echo "chromium already installed: $(chromium --version 2>/dev/null || true)"
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends chromium
