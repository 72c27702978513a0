#!/usr/bin/env bash
# swaks against the SMTP relay: STARTTLS with AUTH and a blind copy, implicit TLS with PIPELINING, a wrong key,
# AUTH without TLS, and an oversized message. Run by crates/server/tests/smtp_relay.rs with SMTP_HOST,
# SMTP_PORT, SMTPS_PORT and SMTP_API_KEY; prints `id=<email id>` for each accepted message.
# Exit code 3: swaks is not installed (tests/smtp/install.sh installs it).
set -uo pipefail
command -v swaks >/dev/null || { echo "swaks is not installed (tests/smtp/install.sh)" >&2; exit 3; }

common=(--server "$SMTP_HOST" --from alice@example.com --auth PLAIN --auth-user resend --timeout 60)
fail() { echo "swaks.sh: $1" >&2; echo "$2" >&2; exit 1; }
id_in() { grep -o 'id=[0-9a-f-]*' <<<"$1" | head -n1; }

out=$(swaks "${common[@]}" --port "$SMTP_PORT" --tls --auth-password "$SMTP_API_KEY" \
  --to bob@example.net,blind@example.org --header "To: bob@example.net" --header "Subject: swaks starttls" 2>&1) ||
  fail "STARTTLS send failed" "$out"
id=$(id_in "$out"); [ -n "$id" ] || fail "no id after STARTTLS" "$out"; echo "$id"

out=$(swaks "${common[@]}" --port "$SMTPS_PORT" --tls-on-connect --pipeline --auth-password "$SMTP_API_KEY" \
  --to bob@example.net --header "Subject: swaks pipelined" 2>&1) || fail "implicit TLS + PIPELINING failed" "$out"
grep -q PIPELINING <<<"$out" || fail "PIPELINING not advertised" "$out"
id=$(id_in "$out"); [ -n "$id" ] || fail "no id after PIPELINING" "$out"; echo "$id"

out=$(swaks "${common[@]}" --port "$SMTPS_PORT" --tls-on-connect --auth-password os_wrong --to bob@example.net 2>&1) &&
  fail "a wrong key was accepted" "$out"
grep -q '535 5.7.8' <<<"$out" || fail "a wrong key was not answered 535" "$out"

out=$(swaks "${common[@]}" --port "$SMTP_PORT" --auth-password "$SMTP_API_KEY" --to bob@example.net 2>&1) &&
  fail "AUTH without TLS went through" "$out"
grep -q '235 ' <<<"$out" && fail "AUTH succeeded without TLS" "$out"

big=$(mktemp); trap 'rm -f "$big"' EXIT
head -c $((42 * 1024 * 1024)) /dev/zero | tr '\0' 'x' | fold -w 998 >"$big"
out=$(swaks "${common[@]}" --port "$SMTPS_PORT" --tls-on-connect --auth-password "$SMTP_API_KEY" \
  --to bob@example.net --body @"$big" 2>&1) && fail "an oversized message was accepted" "$out"
grep -q '552 5.3.4' <<<"$out" || fail "an oversized message was not answered 552" "$out"
exit 0
