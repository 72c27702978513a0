#!/usr/bin/env bash
# A real Postfix, configured as a relaying client (`relayhost`, SASL over STARTTLS with user `resend` and an API
# key), delivers one message through OpenSend's SMTP submission relay: To, Cc and a blind copy that is only an
# envelope recipient. Checks through the API that the email was stored with the subject and the three
# recipients (the blind one in `bcc`) and that the captured message has no Bcc header.
#
# Starts its own `opensend serve` (tests/serve.sh, capture delivery, the relay on free ports) and a private
# Postfix instance in a temporary directory (loopback only, no listening smtpd, never the system's mail
# server); both are stopped when the script exits. Needs root (Postfix's master runs as root) and Postfix
# with Cyrus SASL's PLAIN module: tests/smtp/install.sh installs them.
# Exit code 3: Postfix is not installed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

fail() { echo "postfix_relay.sh: FAIL: $*" >&2; exit 1; }
command -v postfix >/dev/null || [ -x /usr/sbin/postfix ] ||
  { echo "postfix is not installed (tests/smtp/install.sh)" >&2; exit 3; }
export PATH="$PATH:/usr/sbin"

# Capture delivery: any From is accepted and the message as it would have gone out is kept (`raw`).
export DELIVERY=capture
# shellcheck source=../serve.sh
source "$here/../serve.sh"
opensend_start
curl -sf "$OPENSEND_URL/api/health" >/dev/null || { opensend_log_tail; fail "opensend did not start"; }
echo "opensend on $OPENSEND_URL, SMTP relay (STARTTLS) on 127.0.0.1:$SMTP_PORT"

pf="$(mktemp -d)"
pf_stop() {
  postfix -c "$pf/etc" stop >/dev/null 2>&1 || true
  # master leaves on its own within a few seconds; wait for it so that the directory can go.
  for _ in $(seq 1 50); do [ -e "$pf/spool/pid/master.pid" ] && kill -0 "$(cat "$pf/spool/pid/master.pid" 2>/dev/null)" 2>/dev/null || break; sleep 0.1; done
  rm -rf "$pf"
}
trap 'pf_stop; opensend_stop' EXIT
pf_log() {
  echo "--- postfix log (end) ---"
  tail -n 40 "$pf/maillog" 2>/dev/null || echo "(no maillog)"
  postqueue -c "$pf/etc" -p 2>/dev/null || true
}
fail_with_logs() { pf_log >&2; opensend_log_tail >&2; fail "$*"; }

# A private instance: its own configuration, queue and data directories; every service outside a chroot (the
# chroot would be the temporary queue directory, without the files the services expect there); no smtpd.
mkdir -p "$pf/etc" "$pf/spool" "$pf/data"
chmod 755 "$pf" # master opens its lock file in data_directory as the mail owner
chown postfix "$pf/data"
grep -v '^smtp[[:space:]]\+inet' /etc/postfix/master.cf >"$pf/etc/master.cf"
: >"$pf/etc/main.cf"
postconf -c "$pf/etc" -e \
  "compatibility_level = 3.6" \
  "queue_directory = $pf/spool" \
  "data_directory = $pf/data" \
  "myhostname = postfix-relay.test" \
  "mydomain = postfix-relay.test" \
  "myorigin = \$myhostname" \
  "mydestination =" \
  "local_transport = error:no local delivery" \
  "inet_interfaces = loopback-only" \
  "inet_protocols = ipv4" \
  "relayhost = [127.0.0.1]:$SMTP_PORT" \
  "smtp_sasl_auth_enable = yes" \
  "smtp_sasl_password_maps = static:resend:$OPENSEND_TOKEN" \
  "smtp_sasl_security_options = noanonymous" \
  "smtp_sasl_tls_security_options = noanonymous" \
  "smtp_tls_security_level = encrypt" "smtp_tls_loglevel = 1" \
  "maillog_file = $pf/maillog" \
  "maillog_file_prefixes = $pf" \
  "alias_maps =" "alias_database =" \
  "smtp_host_lookup = native" \
  "queue_run_delay = 2s" "minimal_backoff_time = 2s" "maximal_backoff_time = 5s"
postconf -c "$pf/etc" -F '*/*/chroot = n'
postfix -c "$pf/etc" check >/dev/null 2>&1 || true # creates the queue's directories with their owners
postfix -c "$pf/etc" start >"$pf/start.log" 2>&1 || { cat "$pf/start.log" >&2; fail_with_logs "postfix did not start"; }

# One message: a To, a Cc, and a blind copy known only to the envelope (with a Bcc header as a mail client
# writes it, which must not reach the stored message).
tag="pf-$(date +%s)-$$"
subject="Postfix relay $tag"
to="to-$tag@example.net" cc="cc-$tag@example.org" bcc="bcc-$tag@example.com"
sendmail -C "$pf/etc" -f "sender@example.com" -- "$to" "$cc" "$bcc" <<EOF || fail_with_logs "sendmail refused the message"
From: Sender <sender@example.com>
To: $to
Cc: $cc
Bcc: $bcc
Subject: $subject

Sent through Postfix's relayhost to OpenSend ($tag).
EOF
echo "queued in Postfix: $subject"

# The email appears in the API once Postfix's smtp client has been answered 250. A refused AUTH or message
# is a deferral or a bounce in Postfix (which retries other deferrals every few seconds): stop waiting then.
api() { curl -sf -H "Authorization: Bearer $OPENSEND_TOKEN" "$OPENSEND_URL$1"; }
id=""
deadline=$((SECONDS + 60))
while [ "$SECONDS" -lt "$deadline" ]; do
  refused="$(grep -E 'SASL authentication failed|status=bounced' "$pf/maillog" 2>/dev/null | head -n1 || true)"
  [ -z "$refused" ] || fail_with_logs "Postfix could not hand the message to the relay: ${refused#*: }"
  id="$(api /emails | python3 -c '
import json, sys
subject = sys.argv[1]
for e in json.load(sys.stdin).get("data", []):
    if e.get("subject") == subject:
        print(e["id"]); break
' "$subject" 2>/dev/null || true)"
  [ -n "$id" ] && break
  sleep 0.5
done
[ -n "$id" ] || fail_with_logs "no email with subject '$subject' after 60 s"
echo "stored as email $id"
# smtp_tls_security_level = encrypt already refuses a plain session, and the relay refuses MAIL without AUTH:
# a 250 means both happened. The log says so too.
grep -q "TLS connection established to 127.0.0.1" "$pf/maillog" || fail_with_logs "Postfix's log shows no TLS session"
grep -E "TLS connection established|status=sent" "$pf/maillog" | tail -n 4

api "/emails/$id" >"$pf/email.json" || fail_with_logs "GET /emails/$id failed"
python3 - "$pf/email.json" "$subject" "$to" "$cc" "$bcc" <<'EOF' || fail_with_logs "the stored email is not what Postfix sent"
import json, sys
path, subject, to, cc, bcc = sys.argv[1:]
email = json.load(open(path))
problems = []
def addrs(field):
    value = email.get(field) or []
    return [value] if isinstance(value, str) else value
if email.get("subject") != subject:
    problems.append(f"subject {email.get('subject')!r}, expected {subject!r}")
for field, addr in (("to", to), ("cc", cc), ("bcc", bcc)):
    if not any(addr in a for a in addrs(field)):
        problems.append(f"{addr} not in {field}: {addrs(field)!r}")
if any(bcc in a for a in addrs("to") + addrs("cc")):
    problems.append(f"the blind copy {bcc} is in to/cc")
raw = email.get("raw")
if not raw:
    problems.append("no raw message (capture delivery)")
else:
    head = raw.replace("\r\n", "\n").split("\n\n", 1)[0]
    if any(line.lower().startswith("bcc:") for line in head.split("\n")):
        problems.append("the captured message has a Bcc header")
    if bcc in head:
        problems.append(f"the blind copy {bcc} appears in the captured header")
for p in problems:
    print("  " + p, file=sys.stderr)
if problems:
    sys.exit(1)
print(f"to={addrs('to')} cc={addrs('cc')} bcc={addrs('bcc')}; no Bcc header in the captured message")
EOF
echo "postfix_relay.sh: OK (Postfix relayhost -> OpenSend SMTP relay, STARTTLS + AUTH, email $id)"
