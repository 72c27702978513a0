# Sourced by the scripts that drive a real `opensend serve` (tests/compat, tests/conformance): builds the
# binary, starts it on free loopback ports over a fresh SQLite database, waits until it answers, creates an
# organization with a full-access key, and stops it (and removes its files) when the calling script exits.
#
# After `opensend_start`: OPENSEND_URL (http://127.0.0.1:PORT), OPENSEND_TOKEN, OPENSEND_WORK (its
# directory, with serve.log and opensend.db), SMTP_PORT and SMTPS_PORT (the SMTP relay, on 127.0.0.1). `opensend_log_tail` prints the end of the server's log.

opensend_start() {
  local root
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/opensend/target}"
  (cd "$root" && cargo build --quiet --bin opensend)
  local bin="$CARGO_TARGET_DIR/debug/opensend"

  OPENSEND_WORK="$(mktemp -d)"
  free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
  export PORT="$(free_port)" INGESTER_PORT="$(free_port)" BIND_ADDRESS=127.0.0.1
  # The SMTP relay too (STARTTLS and implicit TLS, a self-signed certificate on a local deployment): its default
  # ports would collide between two servers on one machine.
  export SMTP_PORT="$(free_port)" SMTPS_PORT="$(free_port)"
  export DATABASE_URL="sqlite://$OPENSEND_WORK/opensend.db" DATA_DIR="$OPENSEND_WORK/data"
  export WORKER_POLL_INTERVAL_MS=50 RUST_LOG="${RUST_LOG:-warn}"
  # The checks call quickly; the default limits (10/s) are for real tenants, not for these scripts.
  export RATE_LIMIT_ORG_PER_SECOND=100000 RATE_LIMIT_ORG_BURST=100000
  export RATE_LIMIT_IP_PER_SECOND=100000 RATE_LIMIT_IP_BURST=100000
  # Webhook receivers run on loopback in these checks; a real deployment refuses such endpoints.
  export ALLOW_PRIVATE_WEBHOOK_URLS=true
  (cd "$OPENSEND_WORK" && exec "$bin" serve 2>"$OPENSEND_WORK/serve.log") &
  OPENSEND_PID=$!
  trap opensend_stop EXIT
  OPENSEND_URL="http://127.0.0.1:$PORT"
  for _ in $(seq 1 200); do curl -sf "$OPENSEND_URL/api/health" >/dev/null && break; sleep 0.05; done

  local org
  org="$(cd "$OPENSEND_WORK" && "$bin" admin create-org "Checks" | tail -n1)"
  OPENSEND_TOKEN="$(cd "$OPENSEND_WORK" && "$bin" admin create-key --org "$org" --name checks | tail -n1)"
  export OPENSEND_URL OPENSEND_TOKEN OPENSEND_WORK
}

opensend_stop() {
  kill -TERM "$OPENSEND_PID" 2>/dev/null
  wait "$OPENSEND_PID" 2>/dev/null
  rm -rf "$OPENSEND_WORK"
}

opensend_log_tail() {
  echo "--- server log ---"
  tail -n 50 "$OPENSEND_WORK/serve.log"
}
