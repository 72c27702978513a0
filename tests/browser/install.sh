#!/usr/bin/env bash
# Installs what the dashboard's browser tests drive: Debian's Chromium and its WebDriver (chromedriver). A quick
# no-op when both are there already, so CI can call it on every run.
set -euo pipefail

if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  chromium --version
  chromedriver --version
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >/dev/null
chromium --version
chromedriver --version
