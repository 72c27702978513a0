"""One message through the SMTP relay, for tests/smtp/crash_retry.sh.

    crash_client.py crash PID SUBJECT DELAY_MS  # send it, SIGKILL the server DELAY_MS after the final dot
    crash_client.py retry PID SUBJECT           # send it again, as a client's queue would; it must be accepted
    crash_client.py count SUBJECT               # how many stored emails have that subject (the API)

The message carries a `Resend-Idempotency-Key` derived from SUBJECT, so a retry of a message that was
committed before the kill answers with the same email instead of making a second one. Needs SMTP_PORT and
OPENSEND_TOKEN in the environment (tests/serve.sh exports them), and OPENSEND_URL for `count`.
"""

import json
import os
import signal
import smtplib
import ssl
import sys
import time
import urllib.request

if sys.argv[1] == "count":
    subjects, after = [], None
    while True:
        url = os.environ["OPENSEND_URL"] + "/emails?limit=100" + (f"&after={after}" if after else "")
        request = urllib.request.Request(url, headers={"Authorization": "Bearer " + os.environ["OPENSEND_TOKEN"]})
        page = json.load(urllib.request.urlopen(request))
        subjects += [e["subject"] for e in page["data"]]
        if not page.get("has_more") or not page["data"]:
            break
        after = page["data"][-1]["id"]
    print(subjects.count(sys.argv[2]))
    sys.exit(0)

mode, pid, subject = sys.argv[1], int(sys.argv[2]), sys.argv[3]
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE  # the local deployment's self-signed certificate
message = (
    "From: Alice <alice@example.com>\r\nTo: bob@example.net\r\n"
    f"Subject: {subject}\r\nResend-Idempotency-Key: key-{subject.replace(' ', '-')}\r\n"
    "Content-Type: text/plain\r\n\r\n" + "A line of the body.\r\n" * 2000
).encode()

def session():
    smtp = smtplib.SMTP("127.0.0.1", int(os.environ["SMTP_PORT"]), timeout=30)
    smtp.ehlo()
    smtp.starttls(context=context)
    smtp.ehlo()
    smtp.login("resend", os.environ["OPENSEND_TOKEN"])
    smtp.mail("alice@example.com")
    code, text = smtp.rcpt("bob@example.net")
    assert code == 250, (code, text)
    return smtp


if mode == "crash":
    smtp = session()
    code, text = smtp.docmd("DATA")
    assert code == 354, (code, text)
    smtp.send(message + b".\r\n")
    time.sleep(int(sys.argv[4]) / 1000)
    os.kill(pid, signal.SIGKILL)
    try:
        print(f"  killed; a reply got out first: {smtp.getreply()}")
    except (smtplib.SMTPServerDisconnected, OSError) as e:
        print(f"  killed before replying ({type(e).__name__})")
else:
    # As a client's queue does: a 4xx is tried again later. The killed attempt may still hold the key
    # (451 "still being processed") until IDEMPOTENCY_IN_FLIGHT_SECONDS have passed.
    deadline = time.monotonic() + float(os.environ.get("RETRY_FOR_SECONDS", "30"))
    while True:
        smtp = session()
        # smtplib's data() returns the reply to the final dot whatever its code (it raises only before it).
        code, text = smtp.data(message)
        if 400 <= code < 500 and time.monotonic() < deadline:
            print(f"  retry deferred: {code} {text.decode()}")
            smtp.quit()
            time.sleep(1)
            continue
        assert code == 250, (code, text)
        print(f"  retry accepted: {text.decode()}")
        smtp.quit()
        break
