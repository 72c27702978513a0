"""Python's smtplib against the SMTP relay: STARTTLS on SMTP_PORT and implicit TLS on SMTPS_PORT, AUTH with
user `resend` and the API key, a blind copy, a wrong password, AUTH before TLS and an oversized message.

Run by crates/server/tests/smtp_relay.rs with SMTP_HOST, SMTP_PORT, SMTPS_PORT, SMTP_API_KEY and SMTP_CA (the
certificate the server uses). Prints `id=<email id>` for each accepted message; any surprise fails.
"""

import os
import smtplib
import ssl
import sys
from email.message import EmailMessage

host = os.environ["SMTP_HOST"]
starttls_port = int(os.environ["SMTP_PORT"])
implicit_port = int(os.environ["SMTPS_PORT"])
key = os.environ["SMTP_API_KEY"]
context = ssl.create_default_context(cafile=os.environ["SMTP_CA"])
context.check_hostname = False  # the certificate names localhost, the tests dial 127.0.0.1


def message(subject):
    msg = EmailMessage()
    msg["From"] = "Alice <alice@example.com>"
    msg["To"] = "bob@example.net"
    msg["Subject"] = subject
    msg.set_content("Hello from smtplib.")
    msg.add_alternative("<p>Hello from <b>smtplib</b>.</p>", subtype="html")
    return msg


def accepted_id(reply_text):
    text = reply_text.decode() if isinstance(reply_text, bytes) else reply_text
    assert "id=" in text, text
    return text.split("id=", 1)[1].strip()


# STARTTLS: AUTH is not offered before it, and refused.
with smtplib.SMTP(host, starttls_port, timeout=30) as smtp:
    smtp.ehlo()
    assert smtp.has_extn("starttls"), smtp.esmtp_features
    assert not smtp.has_extn("auth"), smtp.esmtp_features
    code, _ = smtp.docmd("AUTH", "PLAIN AHJlc2VuZAB4")
    assert code == 538, code
    smtp.starttls(context=context)
    smtp.ehlo()
    assert "PLAIN" in smtp.esmtp_features.get("auth", ""), smtp.esmtp_features
    smtp.login("resend", key)
    msg = message("smtplib starttls")
    # The Bcc header smtplib would strip anyway; the blind copy is the envelope recipient not in To/Cc.
    smtp.mail("alice@example.com")
    for rcpt in ["bob@example.net", "hidden@example.org"]:
        code, text = smtp.rcpt(rcpt)
        assert code == 250, (code, text)
    code, text = smtp.data(msg.as_bytes())
    assert code == 250, (code, text)
    print(f"id={accepted_id(text)}")

# Implicit TLS.
with smtplib.SMTP_SSL(host, implicit_port, context=context, timeout=30) as smtp:
    smtp.login("resend", key)
    refused = smtp.send_message(message("smtplib implicit"))
    assert refused == {}, refused
    # send_message does not show the reply text: send again the low-level way to read the id.
    code, text = smtp.noop()
    assert code == 250

with smtplib.SMTP_SSL(host, implicit_port, context=context, timeout=30) as smtp:
    smtp.ehlo()
    # A wrong key.
    try:
        smtp.login("resend", "os_not_a_key")
        sys.exit("a wrong key was accepted")
    except smtplib.SMTPAuthenticationError as e:
        assert e.smtp_code == 535, e
    smtp.login("resend", key)
    # Over 40 MiB: refused at the end of DATA (no SIZE given at MAIL), the session goes on.
    smtp.mail("alice@example.com")
    smtp.rcpt("bob@example.net")
    big = b"From: alice@example.com\r\nTo: bob@example.net\r\nSubject: big\r\n\r\n" + (
        b"x" * 998 + b"\r\n"
    ) * (41 * 1024 + 100)
    code, text = smtp.data(big)
    assert code == 552, (code, text)
    code, _ = smtp.noop()
    assert code == 250
    # And SIZE at MAIL is refused at once.
    code, text = smtp.mail("alice@example.com", ["SIZE=50000000"])
    assert code == 552, (code, text)
    smtp.rset()
    smtp.mail("alice@example.com")
    smtp.rcpt("bob@example.net")
    code, text = smtp.data(message("smtplib low level").as_bytes())
    assert code == 250, (code, text)
    print(f"id={accepted_id(text)}")
