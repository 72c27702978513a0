#!/usr/bin/env bash
# Memory under adversarial send bodies: for each kind in bench/adversarial_bodies.py (a 40 MiB `to` list, a
# 40 MiB-deep `template`, a `template` with millions of variables, millions of `headers`, a batch of 100
# emails with huge `to` lists; and, for comparison, `huge_html`: one 40 MiB string, the shape of a legitimate
# large send), a fresh release `opensend serve` on a new SQLite database receives
# `concurrency` such requests at once, `rounds` times, sent chunked; the server's peak resident memory
# (VmHWM in /proc/<pid>/status) is recorded after each kind, with its idle figure before it.
#
#   bench/adversarial_bodies.sh [concurrency] [rounds]
#
# OPENSEND_BIN=path/to/opensend runs another build (e.g. an older commit's) instead of building this tree.
# Needs python3. Everything runs on loopback and stops by itself.
set -euo pipefail
concurrency=${1:-8}
rounds=${2:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/opensend/target}
if [ -z "${OPENSEND_BIN:-}" ]; then
  (cd "$root" && cargo build --release --bin opensend --quiet)
  OPENSEND_BIN=$CARGO_TARGET_DIR/release/opensend
fi
bin=$OPENSEND_BIN

work=$(mktemp -d)
cd "$work"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export PORT=$(free_port) INGESTER_PORT=$(free_port) BIND_ADDRESS=127.0.0.1 RUST_LOG=warn DATA_DIR="$work/data"
export DATABASE_URL="sqlite://$work/opensend.db"
# Limits out of the way: this measures what a request costs once it is let in.
export RATE_LIMIT_ORG_PER_SECOND=1000000 RATE_LIMIT_ORG_BURST=1000000
export RATE_LIMIT_IP_PER_SECOND=1000000 RATE_LIMIT_IP_BURST=1000000
pid=
cleanup() { [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

"$bin" migrate >/dev/null
org=$("$bin" admin create-org Bench 2>/dev/null | tail -n1)
token=$("$bin" admin create-key --org "$org" --name bench 2>/dev/null | tail -n1)

mib() { awk '/^'"$1"':/ {printf "%.1f", $2/1024}' "/proc/$2/status"; }
echo "binary: $bin ($("$bin" --version 2>/dev/null || echo unknown version))"
echo "concurrency $concurrency, rounds $rounds"
printf '%-22s %10s %10s  %s\n' kind "idle MiB" "peak MiB" "answers"
for kind in huge_to deep_template wide_template wide_headers batch_of_huge_items huge_html; do
  "$bin" serve 2>>"$work/serve.log" &
  pid=$!
  until curl -sf "http://127.0.0.1:$PORT/api/health" >/dev/null; do sleep 0.05; done
  idle=$(mib VmHWM "$pid")
  answers=$(python3 "$root/bench/adversarial_bodies.py" "http://127.0.0.1:$PORT" "$token" "$kind" \
    --concurrency "$concurrency" --rounds "$rounds")
  peak=$(mib VmHWM "$pid")
  printf '%-22s %10s %10s  %s\n' "$kind" "$idle" "$peak" "${answers#*: }"
  kill -TERM "$pid"
  wait "$pid" || true
  pid=
done
