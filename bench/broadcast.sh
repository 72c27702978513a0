#!/usr/bin/env bash
# A broadcast to a large segment, fanned out and delivered (capture) by one `opensend worker`:
#
#   bench/broadcast.sh BACKEND [contacts] [rate]
#
# An `api` process takes the broadcast; `contacts` contacts (default 100,000) are inserted with SQL into one
# segment; the broadcast (personalised subject and HTML, so every email is rendered) is sent with
# BROADCAST_RATE_PER_SECOND=`rate` (default 10000, the most allowed, to measure the fan-out itself); then a
# `worker` is started under /usr/bin/time -v and timed:
#
# - `fan_out_seconds`, `fan_out_per_second`: from the worker's start to the broadcast's `sent` (every email
#   and recipient row written);
# - `capture_per_second`: emails delivered to capture per second, from the worker's start until every email
#   is `sent`;
# - `worker_peak_rss_mib`: the worker's peak resident memory (/usr/bin/time's "Maximum resident set size").
#
# BACKEND is `sqlite` or `postgres`. Figures are printed as `FIGURE name value unit` (bench/lib.sh).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
backend=${1:?backend}
contacts=${2:-100000}
rate=${3:-10000}

bench_binary
bench_setup "$backend"
export BROADCAST_RATE_PER_SECOND=$rate WORKER_POLL_INTERVAL_MS=50 RUST_LOG=warn
bench_start api
bench_tenant
api="http://127.0.0.1:$PORT"
auth=(-H "Authorization: Bearer $OPENSEND_TOKEN" -H "Content-Type: application/json")

segment=$(curl -sf "${auth[@]}" -d '{"name":"Everyone"}' "$api/segments" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
# Contacts copy the segment's organization and creation time (the formats the store writes).
case $backend in
  sqlite)
    bench_sql "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $contacts)
      INSERT INTO contacts SELECT randomblob(16), s.organization_id, 'p' || i || '@example.com',
      'p' || i || '@example.com', 'First' || i, NULL, 0, s.created_at, s.created_at
      FROM n, (SELECT * FROM segments LIMIT 1) s" ;;
  postgres)
    bench_sql "INSERT INTO contacts SELECT gen_random_uuid(), s.organization_id, 'p' || i || '@example.com',
      'p' || i || '@example.com', 'First' || i, NULL, false, s.created_at, s.created_at
      FROM generate_series(1, $contacts) i, (SELECT * FROM segments LIMIT 1) s" ;;
esac
bench_sql "INSERT INTO contact_segments SELECT c.id, s.id, c.organization_id, c.created_at
  FROM contacts c, segments s"
echo "contacts in the segment: $(bench_sql 'SELECT count(*) FROM contact_segments')"

broadcast=$(curl -sf "${auth[@]}" -d "{\"segment_id\":\"$segment\",\"from\":\"news@example.com\",
  \"subject\":\"Hello {{{contact.first_name|there}}}\",
  \"html\":\"<p>Hi {{{contact.first_name}}}</p><a href=\\\"{{{RESEND_UNSUBSCRIBE_URL}}}\\\">Unsubscribe</a>\",
  \"send\":true}" "$api/broadcasts" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')

started=$(date +%s%N)
/usr/bin/time -v -o "$bench_work/worker.time" "$OPENSEND_BIN" worker 2>>"$bench_work/worker.log" &
timer=$!
# The worker is time's child: signals go to it (time would exit and leave it running), and time writes its
# report when it ends.
worker=
until [ -n "$worker" ]; do worker=$(pgrep -P "$timer" || true); sleep 0.01; done
bench_pids+=("$worker")
status=
until [ "$status" = sent ]; do
  status=$(curl -sf "${auth[@]}" "$api/broadcasts/$broadcast" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
  kill -0 "$worker" 2>/dev/null || { tail -20 "$bench_work/worker.log"; exit 1; }
  sleep 0.2
done
fan_out_ms=$(( ($(date +%s%N) - started) / 1000000 ))
emails=$(bench_sql "SELECT count(*) FROM emails")
until [ "$(bench_sql "SELECT count(*) FROM emails WHERE status = 'sent'")" = "$emails" ]; do
  kill -0 "$worker" 2>/dev/null || { tail -20 "$bench_work/worker.log"; exit 1; }
  sleep 0.2
done
delivered_ms=$(( ($(date +%s%N) - started) / 1000000 ))
bench_stop "$worker"
wait "$timer" 2>/dev/null || true
echo "fan-out: $emails emails in ${fan_out_ms} ms; all captured after ${delivered_ms} ms"
bench_figure fan_out_seconds "$(python3 -c "print(round($fan_out_ms / 1000, 1))")" s
bench_figure fan_out_per_second "$(python3 -c "print(round($emails * 1000 / max($fan_out_ms, 1)))")" emails/s
bench_figure capture_per_second "$(python3 -c "print(round($emails * 1000 / max($delivered_ms, 1)))")" emails/s
bench_figure worker_peak_rss_mib \
  "$(awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2/1024}' "$bench_work/worker.time")" MiB
