#!/usr/bin/env bash
# Client compatibility: the official Resend SDKs (PyPI `resend`, npm `resend`) and webhook verifiers (PyPI
# `svix`, `standardwebhooks`, npm `svix`), unchanged, against a real
# `opensend serve` on loopback with a fresh SQLite database. Installs the pinned SDK versions first.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/opensend/target}"

python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore -r "$here/requirements.txt"
(cd "$here/node" && npm ci --silent --no-audit --no-fund)
(cd "$root" && cargo build --quiet --bin opensend)
bin="$CARGO_TARGET_DIR/debug/opensend"

work="$(mktemp -d)"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export PORT="$(free_port)" INGESTER_PORT="$(free_port)" BIND_ADDRESS=127.0.0.1
export DATABASE_URL="sqlite://$work/opensend.db" DATA_DIR="$work/data" WORKER_POLL_INTERVAL_MS=50 RUST_LOG=warn
# The SDK checks poll quickly; the default limits (10/s) are for real tenants, not for this script.
export RATE_LIMIT_ORG_PER_SECOND=100000 RATE_LIMIT_ORG_BURST=100000
# Webhook receivers run on loopback in these checks; a real deployment refuses such endpoints.
export ALLOW_PRIVATE_WEBHOOK_URLS=true
(cd "$work" && exec "$bin" serve 2>"$work/serve.log") &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$PORT/api/health" >/dev/null && break; sleep 0.05; done

org="$(cd "$work" && "$bin" admin create-org "Compat" | tail -n1)"
token="$(cd "$work" && "$bin" admin create-key --org "$org" --name compat | tail -n1)"

status=0
RESEND_API_URL="http://127.0.0.1:$PORT" RESEND_API_KEY="$token" python3 "$here/python_sdk.py" || status=1
RESEND_BASE_URL="http://127.0.0.1:$PORT" RESEND_API_KEY="$token" node "$here/node/sdk.mjs" || status=1
RESEND_API_URL="http://127.0.0.1:$PORT" RESEND_API_KEY="$token" python3 "$here/audience.py" || status=1
RESEND_BASE_URL="http://127.0.0.1:$PORT" RESEND_API_KEY="$token" node "$here/node/audience.mjs" || status=1
RESEND_API_URL="http://127.0.0.1:$PORT" RESEND_API_KEY="$token" python3 "$here/webhooks.py" || status=1
RESEND_BASE_URL="http://127.0.0.1:$PORT" RESEND_API_KEY="$token" node "$here/node/webhooks.mjs" || status=1
if [ "$status" -ne 0 ]; then
  echo "--- server log ---"; tail -n 50 "$work/serve.log"
fi
exit "$status"
