#!/usr/bin/env bash
# Installs the cargo tools CI uses beyond the toolchain: cargo-modules (the module graph check). A quick no-op
# when the pinned version is already installed, so CI can call it on every run.
set -euo pipefail

cargo_modules_version="0.27.0" # 0.28 needs a newer rustc than this machine's 1.95

if [ "$(cargo modules --version 2>/dev/null | awk '{print $2}')" != "$cargo_modules_version" ]; then
  echo "installing cargo-modules $cargo_modules_version"
  # Its own target directory, so the install is not rebuilt when the project's target is cleaned.
  CARGO_TARGET_DIR="${TOOLS_TARGET_DIR:-/var/cache/opensend/tools-target}" \
    cargo install --locked --quiet cargo-modules --version "$cargo_modules_version"
fi
cargo modules --version
