#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests (tests/test_dagster_ui.py). Idempotent:
# does nothing but print the version when it is already installed.
set -euo pipefail

if ! command -v chromium >/dev/null 2>&1; then
    if [[ $(id -u) -ne 0 ]]; then
        echo "install_browser.sh: installing chromium needs root (try: sudo bash $0)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    # Refresh the package lists only when apt does not know the package yet.
    if ! apt-cache show chromium >/dev/null 2>&1; then
        apt-get update -q
    fi
    apt-get install -y -q --no-install-recommends chromium
fi

chromium --version
