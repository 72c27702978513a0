# What the load harnesses share: a binary to run, a fresh database, free ports, a server started and stopped,
# an organization with a key, and wrk/oha output turned into figures. Sourced by the scripts in bench/.
#
# Every figure a harness measures is printed as one line `FIGURE <name> <value> <unit>`, so bench/ab.sh can
# collect them; everything else it prints is for people.

bench_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/opensend/target}

# The `opensend` binary to measure: $OPENSEND_BIN, or this tree built in release mode.
bench_binary() {
  if [ -z "${OPENSEND_BIN:-}" ]; then
    (cd "$bench_root" && cargo build --release --bin opensend --quiet)
    OPENSEND_BIN=$CARGO_TARGET_DIR/release/opensend
  fi
  export OPENSEND_BIN
}

# A release example of this tree (or of $OPENSEND_EXAMPLES, a directory of prebuilt ones): prints its path.
bench_example() {
  local name=$1
  if [ -n "${OPENSEND_EXAMPLES:-}" ]; then
    echo "$OPENSEND_EXAMPLES/$name"
    return
  fi
  (cd "$bench_root" && cargo build --release -p opensend-server --example "$name" --quiet)
  echo "$CARGO_TARGET_DIR/release/examples/$name"
}

bench_need() {
  local tool=$1 package=${2:-$1}
  command -v "$tool" >/dev/null || {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null 2>&1 ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null; }
  }
}

bench_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

bench_pids=()
bench_cleanups=()
bench_cleanup() {
  local p
  for p in "${bench_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for p in "${bench_cleanups[@]}"; do eval "$p" || true; done
  [ -n "${bench_work:-}" ] && rm -rf "$bench_work"
}

# A private directory, free ports, limits out of the way, and a fresh database on `backend` (sqlite or
# postgres): sets DATABASE_URL and defines `bench_sql QUERY` (prints the first column of the first row).
bench_setup() {
  local backend=$1
  bench_work=$(mktemp -d)
  trap bench_cleanup EXIT
  cd "$bench_work"
  export PORT=$(bench_free_port) INGESTER_PORT=$(bench_free_port) BIND_ADDRESS=127.0.0.1
  export DATA_DIR="$bench_work/data" RUST_LOG=${RUST_LOG:-info}
  # This measures the request path, not the limiter (bench/rate_limit.sh does that).
  export RATE_LIMIT_ORG_PER_SECOND=1000000 RATE_LIMIT_ORG_BURST=1000000
  export RATE_LIMIT_IP_PER_SECOND=1000000 RATE_LIMIT_IP_BURST=1000000
  case $backend in
    sqlite)
      export DATABASE_URL="sqlite://$bench_work/opensend.db"
      bench_sql() {
        python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); r=c.execute(sys.argv[2]).fetchall(); c.commit(); print(r[0][0] if r else "")' \
          "$bench_work/opensend.db" "$1"
      } ;;
    postgres)
      bench_db=opensend_bench_$$_$RANDOM
      psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $bench_db"
      bench_cleanups+=("psql -h 127.0.0.1 -U postgres -qc 'DROP DATABASE IF EXISTS $bench_db WITH (FORCE)'")
      export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$bench_db"
      bench_sql() { psql -h 127.0.0.1 -U postgres -d "$bench_db" -Atqc "$1"; } ;;
    *) echo "backend must be sqlite or postgres"; exit 2 ;;
  esac
}

# Starts `opensend ROLE` in the background (its log in the work directory) and waits for the API to answer.
# Sets bench_pid; prints nothing.
bench_start() {
  local role=$1
  "$OPENSEND_BIN" "$role" 2>>"$bench_work/$role.log" &
  bench_pid=$!
  bench_pids+=("$bench_pid")
  until curl -sf "http://127.0.0.1:$PORT/api/health" >/dev/null; do
    kill -0 "$bench_pid" 2>/dev/null || { tail -20 "$bench_work/$role.log"; exit 1; }
    sleep 0.002
  done
}

bench_stop() {
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# An organization and a full-access key: sets OPENSEND_TOKEN.
bench_tenant() {
  local org
  org=$("$OPENSEND_BIN" admin create-org Bench 2>/dev/null | tail -n1)
  OPENSEND_TOKEN=$("$OPENSEND_BIN" admin create-key --org "$org" --name bench 2>/dev/null | tail -n1)
  export OPENSEND_TOKEN
}

bench_rss_mib() { awk '/^'"${2:-VmRSS}"':/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }

bench_figure() { echo "FIGURE $1 $2 $3"; }

# wrk's --latency output on stdin: prints it for people and the figures `<prefix>_per_second`,
# `<prefix>_p50_ms`, `<prefix>_p99_ms` and `<prefix>_errors` (non-2xx answers and socket errors).
bench_wrk_figures() {
  local prefix=$1 out
  out=$(cat)
  echo "$out" | sed -n '/Latency Distribution/,$p'
  local rps p50 p99 non2xx errors
  rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
  p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  errors=$(echo "$out" | awk '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}')
  bench_figure "${prefix}_per_second" "${rps:-0}" req/s
  bench_figure "${prefix}_p50_ms" "$(bench_ms "${p50:-0}")" ms
  bench_figure "${prefix}_p99_ms" "$(bench_ms "${p99:-0}")" ms
  bench_figure "${prefix}_errors" "$(( ${non2xx:-0} + ${errors:-0} ))" requests
}

# wrk latency (`850.00us`, `12.34ms`, `1.20s`) in milliseconds.
bench_ms() {
  python3 -c 'import sys,re; v=sys.argv[1]; m=re.match(r"([\d.]+)(us|ms|s)$", v); print(round(float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)], 3) if m else 0)' "$1"
}
