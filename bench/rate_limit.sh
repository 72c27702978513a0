#!/usr/bin/env bash
# Authenticated `GET /api-keys` throughput with rate limiting in its different configurations, on SQLite,
# with wrk (64 connections, 2 threads), each run `seconds` long:
#
#   memory-unlimited  memory backend, limits so high nothing is refused (the cost of the check alone)
#   redis-unlimited   redis backend on loopback, same limits (two script calls per request: a look at the
#                     address bucket, a draw from the organization's)
#   memory-limited    memory backend, organization limited to 1000/s, burst 1000: most requests are 429s
#
#   bench/rate_limit.sh [seconds]
#
# Needs wrk (installed from Debian's packages when missing) and Redis on 127.0.0.1:6379. Everything runs on
# loopback and stops by itself.
set -euo pipefail
seconds=${1:-10}
root=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/opensend/target}

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
(cd "$root" && cargo build --release --bin opensend --quiet)
bin=$CARGO_TARGET_DIR/release/opensend

run() {
  local name=$1; shift
  local work
  work=$(mktemp -d)
  (
    cd "$work"
    export PORT=39152 INGESTER_PORT=39162 BIND_ADDRESS=127.0.0.1 LOG_FORMAT=json RUST_LOG=warn
    export DATABASE_URL="sqlite://$work/data/opensend.db"
    export RATE_LIMIT_REDIS_PREFIX="opensend-bench:$$:$name"
    for setting in "$@"; do export "${setting?}"; done
    "$bin" serve 2>"$work/serve.log" &
    pid=$!
    until curl -sf "http://127.0.0.1:$PORT/api/health" >/dev/null; do sleep 0.01; done
    org=$("$bin" admin create-org Bench 2>/dev/null | tail -n1)
    token=$("$bin" admin create-key --org "$org" --name bench 2>/dev/null | tail -n1)
    echo "== $name: $*"
    wrk -t2 -c64 -d"${seconds}s" --latency -H "Authorization: Bearer $token" \
      "http://127.0.0.1:$PORT/api-keys" | grep -E 'requests in|Requests/sec|Non-2xx|^ +(50|99)%'
    kill -TERM "$pid"
    wait "$pid"
  )
  rm -rf "$work"
}

high=(RATE_LIMIT_ORG_PER_SECOND=1000000 RATE_LIMIT_ORG_BURST=1000000 RATE_LIMIT_IP_PER_SECOND=1000000 RATE_LIMIT_IP_BURST=1000000)
run memory-unlimited RATE_LIMIT_BACKEND=memory "${high[@]}"
run redis-unlimited RATE_LIMIT_BACKEND=redis REDIS_URL=redis://127.0.0.1:6379 "${high[@]}"
run memory-limited RATE_LIMIT_BACKEND=memory RATE_LIMIT_ORG_PER_SECOND=1000 RATE_LIMIT_ORG_BURST=1000
