#!/usr/bin/env bash
# The dashboard's browser test alone: installs Chromium and chromedriver if needed, then runs the scenario in
# crates/server/tests/browser.rs (on SQLite, and on PostgreSQL when OPENSEND_TEST_DATABASE_URL is set).
# Screenshots land in tests/browser/artifacts/. Fails when the browser cannot be had.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tests/browser/install.sh
OPENSEND_BROWSER_TESTS=1 cargo test -p opensend-server --test browser -- --nocapture
ls tests/browser/artifacts/*.png
