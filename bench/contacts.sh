#!/usr/bin/env bash
# Contacts at scale, against one `opensend serve`:
#
#   bench/contacts.sh BACKEND [import_rows] [contacts] [seconds]
#
# 1. `POST /contacts/imports` of a generated CSV of `import_rows` rows (default 100,000; email, first_name,
#    last_name), timed from the upload to `completed`: `import_rows_per_second`, and the server's peak RSS
#    over the run, `import_peak_rss_mib` (VmHWM).
# 2. The organization grown to `contacts` contacts (default 1,000,000; inserted with SQL), then wrk for
#    `seconds` (default 10) each on `GET /contacts?limit=100` (`list_per_second`, `list_p99_ms`) and
#    `GET /contacts/{email}` (`get_per_second`, `get_p99_ms`).
#
# BACKEND is `sqlite` or `postgres`. Figures are printed as `FIGURE name value unit` (bench/lib.sh).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
backend=${1:?backend}
rows=${2:-100000}
contacts=${3:-1000000}
seconds=${4:-10}

bench_binary
bench_need wrk
bench_setup "$backend"
bench_start serve
bench_tenant
api="http://127.0.0.1:$PORT"

python3 - "$rows" > "$bench_work/contacts.csv" <<'PY'
import sys
print("email,first_name,last_name")
for i in range(int(sys.argv[1])):
    print(f"person{i}@example.com,First{i},Last{i}")
PY
started=$(date +%s%N)
id=$(curl -sf -H "Authorization: Bearer $OPENSEND_TOKEN" -F "file=@$bench_work/contacts.csv;type=text/csv" \
  "$api/contacts/imports" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
while :; do
  status=$(curl -sf -H "Authorization: Bearer $OPENSEND_TOKEN" "$api/contacts/imports/$id" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["status"], d["counts"]["total"])')
  case $status in completed*|failed*) break ;; esac
  sleep 0.2
done
elapsed_ms=$(( ($(date +%s%N) - started) / 1000000 ))
echo "import: $status in ${elapsed_ms} ms"
bench_figure import_rows_per_second "$(python3 -c "print(round($rows * 1000 / max($elapsed_ms, 1)))")" rows/s
bench_figure import_peak_rss_mib "$(bench_rss_mib "$bench_pid" VmHWM)" MiB

# Grow the organization to `contacts` contacts, copying the formats of an imported row.
more=$(( contacts - rows ))
if [ "$more" -gt 0 ]; then
  case $backend in
    sqlite) bench_sql "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $more)
      INSERT INTO contacts SELECT randomblob(16), c.organization_id, 'bulk' || i || '@example.com',
      'bulk' || i || '@example.com', NULL, NULL, 0, c.created_at, c.updated_at
      FROM n, (SELECT * FROM contacts LIMIT 1) c" ;;
    postgres) bench_sql "INSERT INTO contacts SELECT gen_random_uuid(), c.organization_id,
      'bulk' || i || '@example.com', 'bulk' || i || '@example.com', NULL, NULL, false, c.created_at,
      c.updated_at FROM generate_series(1, $more) i, (SELECT * FROM contacts LIMIT 1) c" ;;
  esac
fi
echo "contacts: $(bench_sql 'SELECT count(*) FROM contacts')"

cat > "$bench_work/auth.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $OPENSEND_TOKEN"
LUA
for target in "list:/contacts?limit=100" "get:/contacts/person4242@example.com"; do
  name=${target%%:*}
  path=${target#*:}
  wrk -t2 -c16 -d"${seconds}s" --latency -s "$bench_work/auth.lua" "$api$path" | bench_wrk_figures "$name"
done
