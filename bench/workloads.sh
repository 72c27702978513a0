#!/usr/bin/env bash
# One measured workload against one `opensend` binary, its figures printed as `FIGURE name value unit` lines
# (see bench/lib.sh). bench/ab.sh runs these for two commits in turn; they can also be run by hand:
#
#   OPENSEND_BIN=path/to/opensend bench/workloads.sh WORKLOAD BACKEND [ARGS…]
#
# | workload | what it measures | figures |
# |---|---|---|
# | `start` | cold start of `opensend serve` to a healthy `/api/health`, idle memory | `cold_start_ms`, `idle_rss_mib` |
# | `get [seconds]` | authenticated `GET /api-keys`, wrk with 2 threads and 64 connections | `get_per_second`, `get_p50_ms`, `get_p99_ms`, `get_errors`, `get_rss_mib` |
# | `send [seconds]` | accepted `POST /emails` (1 recipient, ~2 KB HTML; `opensend api`, no worker), wrk 64 connections | `send_per_second`, `send_p50_ms`, `send_p99_ms`, `send_errors`, `send_rss_mib` |
# | `send-fixed rate [seconds]` | the same at a fixed rate with oha (`-q`), for the latency at that load | `fixed_p50_ms`, `fixed_p99_ms`, `fixed_success` |
# | `deliver [emails]` | one `opensend worker` delivering queued emails (DKIM RSA-2048 + Ed25519) over SMTP into Postfix's `smtp-sink` | `deliver_per_second`, `deliver_rss_mib` |
# | `webhooks [deliveries] [endpoints]` | the webhook dispatcher, outbox to a receiver on loopback (example `webhook_throughput`) | `webhooks_per_second` |
# | `ses [notifications] [in_flight]` | signed SNS notifications through `POST /events/ses` (example `ses_ingest_throughput`) | `ses_per_second` |
#
# BACKEND is `sqlite` or `postgres` (PostgreSQL on 127.0.0.1:5432, trust auth; a database per run). The
# examples come from $OPENSEND_EXAMPLES when set (bench/ab.sh builds them per commit), else this tree.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
workload=${1:?workload}
backend=${2:?backend}
shift 2

case $workload in
  start)
    bench_binary
    bench_setup "$backend"
    "$OPENSEND_BIN" migrate >/dev/null
    started=$(date +%s%N)
    bench_start serve
    ready=$(date +%s%N)
    sleep 2
    bench_figure cold_start_ms $(( (ready - started) / 1000000 )) ms
    bench_figure idle_rss_mib "$(bench_rss_mib "$bench_pid")" MiB
    ;;
  get)
    seconds=${1:-10}
    bench_need wrk
    bench_binary
    bench_setup "$backend"
    bench_start serve
    bench_tenant
    wrk -t2 -c64 -d"${seconds}s" --latency -H "Authorization: Bearer $OPENSEND_TOKEN" \
      "http://127.0.0.1:$PORT/api-keys" | bench_wrk_figures get
    bench_figure get_rss_mib "$(bench_rss_mib "$bench_pid" VmHWM)" MiB
    ;;
  send | send-fixed)
    bench_binary
    bench_setup "$backend"
    "$OPENSEND_BIN" migrate >/dev/null
    bench_tenant
    bench_start api
    # A verified sending domain, made directly: the bench has no DNS to verify against.
    curl -sf -X POST "http://127.0.0.1:$PORT/domains" -H "Authorization: Bearer $OPENSEND_TOKEN" \
      -H 'Content-Type: application/json' -d '{"name":"acme.test"}' >/dev/null
    bench_sql "UPDATE domains SET status = 'verified'" >/dev/null
    if [ "$workload" = send ]; then
      seconds=${1:-10}
      bench_need wrk
      wrk -t2 -c64 -d"${seconds}s" --latency -s "$bench_root/bench/send.lua" "http://127.0.0.1:$PORT" |
        bench_wrk_figures send
      bench_figure send_rss_mib "$(bench_rss_mib "$bench_pid" VmHWM)" MiB
    else
      rate=${1:?rate}
      seconds=${2:-10}
      oha=$(bash "$bench_root/bench/tools.sh" oha)
      body=$(python3 -c 'import json; print(json.dumps({"from": "Acme <hello@acme.test>", "to": "customer@example.com", "subject": "Receipt", "html": "<html><body><h1>Your receipt</h1>" + "<p>Thank you for your order. Here is what you bought.</p>" * 36 + "</body></html>"}))')
      "$oha" -z "${seconds}s" -q "$rate" -c 64 --no-tui --output-format json -m POST \
        -H "Authorization: Bearer $OPENSEND_TOKEN" -H 'Content-Type: application/json' -d "$body" \
        "http://127.0.0.1:$PORT/emails" >"$bench_work/oha.json"
      python3 - "$bench_work/oha.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
latency = report["latencyPercentiles"]
print(f"FIGURE fixed_p50_ms {latency['p50'] * 1000:.3f} ms")
print(f"FIGURE fixed_p99_ms {latency['p99'] * 1000:.3f} ms")
print(f"FIGURE fixed_success {report['summary']['successRate'] * 100:.2f} %")
print(f"FIGURE fixed_per_second {report['summary']['requestsPerSec']:.1f} req/s")
PY
    fi
    ;;
  deliver)
    emails=${1:-5000}
    bench_binary
    sink=$(bash "$bench_root/bench/tools.sh" smtp-sink)
    bench_setup "$backend"
    sink_port=$(bench_free_port)
    # Accepts everything and keeps nothing: the sink is never the limit.
    "$sink" -u nobody -c 127.0.0.1:"$sink_port" 1024 >"$bench_work/sink.log" 2>&1 &
    bench_pids+=("$!")
    export DELIVERY=smtp SMTP_URL="smtp://127.0.0.1:$sink_port?tls=none&max_connections=16"
    "$OPENSEND_BIN" migrate >/dev/null
    bench_tenant
    bench_start api
    api=$bench_pid
    curl -sf -X POST "http://127.0.0.1:$PORT/domains" -H "Authorization: Bearer $OPENSEND_TOKEN" \
      -H 'Content-Type: application/json' -d '{"name":"acme.test"}' >/dev/null
    bench_sql "UPDATE domains SET status = 'verified'" >/dev/null
    python3 - "http://127.0.0.1:$PORT" "$OPENSEND_TOKEN" "$emails" <<'PY'
import json, sys, urllib.request
base, token, emails = sys.argv[1], sys.argv[2], int(sys.argv[3])
html = "<p>" + "x" * 2000 + "</p>"
for i in range(0, emails, 100):
    batch = [{"from": "Acme <hello@acme.test>", "to": f"r{i + k}@example.com", "subject": "Receipt", "html": html}
             for k in range(min(100, emails - i))]
    request = urllib.request.Request(base + "/emails/batch", data=json.dumps(batch).encode(), method="POST",
                                     headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    urllib.request.urlopen(request).read()
PY
    bench_stop "$api"
    queued=$(bench_sql "SELECT COUNT(*) FROM delivery_jobs")
    echo "delivering $queued emails with one worker (WORKER_CONCURRENCY=${WORKER_CONCURRENCY:-16})"
    started=$(date +%s%N)
    WORKER_CONCURRENCY=${WORKER_CONCURRENCY:-16} "$OPENSEND_BIN" worker 2>"$bench_work/worker.log" &
    worker=$!
    bench_pids+=("$worker")
    peak=0
    while true; do
      left=$(bench_sql "SELECT COUNT(*) FROM delivery_jobs")
      rss=$(awk '/VmHWM/ {print $2}' "/proc/$worker/status" 2>/dev/null || echo 0)
      [ "$rss" -gt "$peak" ] && peak=$rss
      [ "$left" = "0" ] && break
      kill -0 "$worker" 2>/dev/null || { tail -20 "$bench_work/worker.log"; exit 1; }
      sleep 0.05
    done
    ended=$(date +%s%N)
    sent=$(bench_sql "SELECT COUNT(*) FROM emails WHERE status = 'sent'")
    ms=$(( (ended - started) / 1000000 ))
    echo "sent: $sent of $queued in $ms ms"
    bench_figure deliver_per_second "$(( sent * 1000 / (ms > 0 ? ms : 1) ))" msg/s
    bench_figure deliver_rss_mib "$(( peak / 1024 ))" MiB
    ;;
  webhooks | ses)
    example=$(bench_example "$([ "$workload" = webhooks ] && echo webhook_throughput || echo ses_ingest_throughput)")
    target=sqlite
    [ "$backend" = postgres ] && target=postgres://postgres@127.0.0.1:5432/postgres
    if [ "$workload" = webhooks ]; then
      out=$("$example" "$target" "${1:-20000}" "${2:-16}")
      echo "$out"
      bench_figure webhooks_per_second "$(echo "$out" | sed -n 's/.* = \([0-9.]*\) deliveries\/s.*/\1/p' | tail -1)" deliveries/s
    else
      out=$("$example" "$target" "${1:-5000}" "${2:-32}")
      echo "$out"
      bench_figure ses_per_second "$(echo "$out" | sed -n 's/.* = \([0-9.]*\) events\/s.*/\1/p' | tail -1)" events/s
    fi
    ;;
  *)
    echo "unknown workload $workload (start, get, send, send-fixed, deliver, webhooks, ses)"
    exit 2
    ;;
esac
