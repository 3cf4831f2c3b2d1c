#!/usr/bin/env bash
# The browser tests' Chromium and ChromeDriver, from Debian's packages when
# they are missing (tests/test_ui_browser.py skips, saying why, without them).
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "no apt-get: install chromium and chromedriver yourself, or the browser tests skip" >&2
    exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
    sudo="sudo"
fi
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q chromium chromium-driver
