#!/usr/bin/env bash
# Installs a tool the load harnesses need, when missing, and prints its path:
#
#   bench/tools.sh oha        # HTTP load at a fixed rate (crates.io), into /var/cache/opensend/tools
#   bench/tools.sh smtp-sink  # Postfix's SMTP sink (Debian package postfix), never started as a mail server
set -euo pipefail
tools=${OPENSEND_TOOLS_DIR:-/var/cache/opensend/tools}
case ${1:?tool} in
  oha)
    if [ ! -x "$tools/bin/oha" ]; then
      CARGO_TARGET_DIR="$tools/target" cargo install --locked --quiet --root "$tools" oha >&2
      rm -rf "$tools/target"
    fi
    echo "$tools/bin/oha"
    ;;
  smtp-sink)
    if ! command -v smtp-sink >/dev/null && [ ! -x /usr/sbin/smtp-sink ]; then
      echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections 2>/dev/null || true
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postfix >/dev/null 2>&1 ||
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postfix >/dev/null; }
    fi
    command -v smtp-sink || echo /usr/sbin/smtp-sink
    ;;
  *) echo "unknown tool $1 (oha, smtp-sink)" >&2; exit 2 ;;
esac
