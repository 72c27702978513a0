#!/usr/bin/env bash
# Load harness for the SMTP submission relay: `opensend smtp` alone (no worker, so the figure is the accept path
# over SMTP: TLS, the message parsed, the From check against a verified domain, the accept transaction before
# each 250), loaded by bench/smtp_load.py with several implicit-TLS connections; peak RSS of the server.
#
#   bench/smtp.sh sqlite|postgres [messages] [connections]
#
# Postfix's smtp-source cannot be used: it speaks neither AUTH nor TLS, which the relay requires.
# Everything runs on loopback and stops by itself.
set -euo pipefail
backend=${1:-sqlite}
messages=${2:-3000}
connections=${3:-16}
root=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/opensend/target}
(cd "$root" && cargo build --release --bin opensend --quiet)
bin=$CARGO_TARGET_DIR/release/opensend

work=$(mktemp -d)
cd "$work"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export PORT=$(free_port) INGESTER_PORT=$(free_port) SMTP_PORT=0 SMTPS_PORT=$(free_port)
export BIND_ADDRESS=127.0.0.1 RUST_LOG=warn DATA_DIR="$work/data"
export RATE_LIMIT_ORG_PER_SECOND=1000000 RATE_LIMIT_ORG_BURST=1000000
# Not capture: the From check then reads the verified domain, as in production; nothing is delivered (no worker).
export DELIVERY=smtp SMTP_URL="smtp://127.0.0.1:9?tls=none"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
case $backend in
  sqlite) export DATABASE_URL="sqlite://$work/opensend.db"
          sql() { python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); r=c.execute(sys.argv[2]).fetchall(); c.commit(); print(r[0][0] if r else "")' "$work/opensend.db" "$1"; } ;;
  postgres)
    db=opensend_bench_$$
    psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $db"
    trap 'cleanup; psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"' EXIT
    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db"
    sql() { psql -h 127.0.0.1 -U postgres -d "$db" -Atqc "$1"; } ;;
  *) echo "backend must be sqlite or postgres"; exit 2 ;;
esac

"$bin" migrate >/dev/null
org=$("$bin" admin create-org Bench | tail -n1)
token=$("$bin" admin create-key --org "$org" --name bench | tail -n1)

# A verified sending domain, made through the API and marked verified directly (the bench has no DNS).
"$bin" api 2>"$work/api.log" &
api=$!; pids+=($api)
until curl -sf "http://127.0.0.1:$PORT/api/health" >/dev/null; do sleep 0.05; done
curl -sf -X POST "http://127.0.0.1:$PORT/domains" -H "Authorization: Bearer $token" \
  -H 'Content-Type: application/json' -d '{"name":"acme.test"}' >/dev/null
sql "UPDATE domains SET status = 'verified'" >/dev/null
kill -TERM "$api"; wait "$api" 2>/dev/null || true

"$bin" smtp 2>"$work/smtp.log" &
smtp=$!; pids+=($smtp)
until python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$SMTPS_PORT),1)" 2>/dev/null; do sleep 0.05; done

echo "backend: $backend, commit $(git -C "$root" rev-parse --short HEAD)"
python3 "$root/bench/smtp_load.py" 127.0.0.1 "$SMTPS_PORT" "$token" "$connections" "$messages"
echo "smtp peak RSS: $(awk '/VmHWM/ {printf "%.1f MiB", $2/1024}' /proc/$smtp/status)"
echo "emails stored: $(sql "SELECT COUNT(*) FROM emails")"
