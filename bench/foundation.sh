#!/usr/bin/env bash
# Load harness for the foundation: cold start of `opensend serve` to a healthy /api/health, idle resident
# memory, and authenticated `GET /api-keys` throughput and latency with wrk (64 connections, 2 threads).
#
#   bench/foundation.sh sqlite|postgres [seconds]
#
# Needs wrk (installed from Debian's packages when missing) and, for postgres, PostgreSQL on 127.0.0.1:5432.
# Everything runs on loopback and stops by itself.
set -euo pipefail
backend=${1:-sqlite}
seconds=${2:-15}
root=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/opensend/target}

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
(cd "$root" && cargo build --release --bin opensend --quiet)
bin=$CARGO_TARGET_DIR/release/opensend

work=$(mktemp -d)
cd "$work"
export PORT=39151 INGESTER_PORT=39161 BIND_ADDRESS=127.0.0.1
# Limits out of the way: this measures the request path, not the limiter (bench/rate_limit.sh does that).
export RATE_LIMIT_ORG_PER_SECOND=1000000 RATE_LIMIT_ORG_BURST=1000000
case $backend in
  sqlite) export DATABASE_URL="sqlite://$work/data/opensend.db" ;;
  postgres)
    db=opensend_bench_$$
    psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $db"
    trap 'psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"' EXIT
    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db" ;;
  *) echo "backend must be sqlite or postgres"; exit 2 ;;
esac

started=$(date +%s%N)
"$bin" serve 2>"$work/serve.log" &
pid=$!
until curl -sf "http://127.0.0.1:$PORT/api/health" >/dev/null; do sleep 0.002; done
ready=$(date +%s%N)
echo "backend: $backend"
echo "cold start to healthy: $(( (ready - started) / 1000000 )) ms"
sleep 2
echo "idle RSS: $(awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' /proc/$pid/status)"

org=$("$bin" admin create-org Bench 2>/dev/null | tail -n1)
token=$("$bin" admin create-key --org "$org" --name bench 2>/dev/null | tail -n1)
wrk -t2 -c64 -d"${seconds}s" --latency -H "Authorization: Bearer $token" \
  "http://127.0.0.1:$PORT/api-keys" | sed -n '/Latency Distribution/,$p'
echo "RSS after load: $(awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' /proc/$pid/status)"
kill -TERM "$pid"
wait "$pid"
