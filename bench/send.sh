#!/usr/bin/env bash
# Load harness for sending:
#  1. accepted `POST /emails` per second and latency (1 recipient, ~2 KB HTML, wrk with 64 connections), with the
#     worker off (`opensend api`), so the figure is the accept path alone;
#  2. end-to-end delivery: N emails queued through the batch route, then delivered by one `opensend worker` over
#     SMTP into an aiosmtpd sink on loopback, DKIM-signed with RSA-2048 + Ed25519 (the domain is marked verified
#     in the database, since the bench has no DNS), timed from worker start to an empty queue.
#
#   bench/send.sh sqlite|postgres [seconds] [emails]
#
# Needs wrk, python3 with aiosmtpd (bash tests/peers/install.sh), and for postgres a server on 127.0.0.1:5432.
# Everything runs on loopback and stops by itself.
set -euo pipefail
backend=${1:-sqlite}
seconds=${2:-10}
emails=${3:-5000}
root=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/opensend/target}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
bash "$root/tests/peers/install.sh"
(cd "$root" && cargo build --release --bin opensend --quiet)
bin=$CARGO_TARGET_DIR/release/opensend

work=$(mktemp -d)
cd "$work"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export PORT=$(free_port) INGESTER_PORT=$(free_port) BIND_ADDRESS=127.0.0.1 RUST_LOG=warn DATA_DIR="$work/data"
export RATE_LIMIT_ORG_PER_SECOND=1000000 RATE_LIMIT_ORG_BURST=1000000
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

sink_port=$(free_port)
python3 "$root/tests/peers/smtp_sink.py" --port "$sink_port" --dir "$work/mail" >/dev/null 2>&1 &
pids+=($!)
export DELIVERY=smtp SMTP_URL="smtp://127.0.0.1:$sink_port?tls=none&max_connections=16"

"$bin" migrate >/dev/null
org=$("$bin" admin create-org Bench | tail -n1)
export OPENSEND_TOKEN=$("$bin" admin create-key --org "$org" --name bench | tail -n1)

"$bin" api 2>"$work/api.log" &
api=$!; pids+=($api)
until curl -sf "http://127.0.0.1:$PORT/api/health" >/dev/null; do sleep 0.05; done
# A verified sending domain, made directly: the bench has no DNS to verify against.
curl -sf -X POST "http://127.0.0.1:$PORT/domains" -H "Authorization: Bearer $OPENSEND_TOKEN" \
  -H 'Content-Type: application/json' -d '{"name":"acme.test"}' >/dev/null
sql "UPDATE domains SET status = 'verified'" >/dev/null

echo "backend: $backend"
echo "== accept: POST /emails, 64 connections, ${seconds}s (worker off)"
wrk -t2 -c64 -d"${seconds}s" --latency -s "$root/bench/send.lua" "http://127.0.0.1:$PORT" | sed -n '/Latency Distribution/,$p'
echo "api RSS: $(awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' /proc/$api/status)"

sql "DELETE FROM delivery_jobs" >/dev/null
html=$(python3 -c 'print("<p>" + "x" * 2000 + "</p>")')
for ((i = 0; i < emails / 100; i++)); do
  python3 -c 'import json,sys; print(json.dumps([{"from":"Acme <hello@acme.test>","to":"r%d-%d@example.com"%(int(sys.argv[1]),k),"subject":"Receipt","html":sys.argv[2]} for k in range(100)]))' "$i" "$html" \
    | curl -sf -X POST "http://127.0.0.1:$PORT/emails/batch" -H "Authorization: Bearer $OPENSEND_TOKEN" \
        -H 'Content-Type: application/json' --data-binary @- >/dev/null
done
queued=$(sql "SELECT COUNT(*) FROM delivery_jobs")
echo "== delivery: $queued emails, one worker (WORKER_CONCURRENCY=16), SMTP sink on loopback, DKIM RSA + Ed25519"
started=$(date +%s%N)
WORKER_CONCURRENCY=16 "$bin" worker 2>"$work/worker.log" &
worker=$!; pids+=($worker)
peak=0
while true; do
  left=$(sql "SELECT COUNT(*) FROM delivery_jobs")
  rss=$(awk '/VmRSS/ {print $2}' /proc/$worker/status 2>/dev/null || echo 0)
  [ "$rss" -gt "$peak" ] && peak=$rss
  [ "$left" = "0" ] && break
  sleep 0.1
done
ended=$(date +%s%N)
ms=$(( (ended - started) / 1000000 ))
received=$(ls "$work/mail" | grep -c '\.json$' || true)
echo "delivered: $received messages in $ms ms = $(( received * 1000 / (ms > 0 ? ms : 1) )) messages/s"
echo "worker peak RSS: $(( peak / 1024 )) MiB"
sent=$(sql "SELECT COUNT(*) FROM emails WHERE status = 'sent'")
echo "emails marked sent: $sent"
