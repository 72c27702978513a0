#!/usr/bin/env bash
# The SMTP relay killed mid-message: a client sends a message with a `Resend-Idempotency-Key` header, the
# server is killed with SIGKILL the moment the message's final dot has been sent (before the client reads the
# reply, so the accept may or may not have committed), the server is started again on the same database, and
# the client sends the same message again, as any SMTP client retries a message that got no reply. Each message
# must then exist exactly once. Several rounds, so both sides of the race (killed before and after the commit)
# are met. Without the header a retry after a commit is a second email: that is the documented window
# (docs/smtp.md), which the header closes.
#
#   bash tests/smtp/crash_retry.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

source "$here/../serve.sh"
# A killed attempt's idempotency key is waited for this long before a retry may take it over; the retry is
# deferred (451) until then, as it would be for a minute by default.
export IDEMPOTENCY_IN_FLIGHT_SECONDS=2
opensend_start
bin="$CARGO_TARGET_DIR/debug/opensend"
echo "opensend on $OPENSEND_URL, SMTP relay (STARTTLS) on 127.0.0.1:$SMTP_PORT"

restart() {
  wait "$OPENSEND_PID" 2>/dev/null || true
  (cd "$OPENSEND_WORK" && exec "$bin" serve 2>>"$OPENSEND_WORK/serve.log") &
  OPENSEND_PID=$!
  for _ in $(seq 1 400); do curl -sf "$OPENSEND_URL/api/health" >/dev/null && return 0; sleep 0.05; done
  echo "the server did not come back after being killed" >&2
  opensend_log_tail >&2
  exit 1
}

# How long after the final dot each round kills the server: from at once (the message is still being read)
# to well after the commit (the reply was about to go out), so both sides of the race are met.
delays=(0 2 10 50 250 1000)
committed_before_kill=0
for round in "${!delays[@]}"; do
  subject="crash-retry $round $$"
  python3 "$here/crash_client.py" crash "$OPENSEND_PID" "$subject" "${delays[$round]}"
  restart
  before=$(python3 "$here/crash_client.py" count "$subject")
  echo "  killed ${delays[$round]} ms after the final dot; stored before the retry: $before"
  committed_before_kill=$((committed_before_kill + before))
  # The retry, as the client's queue would send it.
  python3 "$here/crash_client.py" retry "$OPENSEND_PID" "$subject"
  after=$(python3 "$here/crash_client.py" count "$subject")
  if [ "$after" != 1 ]; then
    echo "crash_retry.sh: '$subject' is stored $after times after the retry, not once" >&2
    curl -s -H "Authorization: Bearer $OPENSEND_TOKEN" "$OPENSEND_URL/emails?limit=20" >&2
    echo >&2
    opensend_log_tail >&2
    exit 1
  fi
done
# Without a round whose message was committed before the kill, the retries proved nothing about duplicates.
if [ "$committed_before_kill" -lt 1 ]; then
  echo "crash_retry.sh: no round was killed after its commit; the check did not meet the race's other side" >&2
  exit 1
fi
echo "crash_retry.sh: OK (${#delays[@]} messages killed after their final dot and retried, each stored once; $committed_before_kill committed before the kill)"
