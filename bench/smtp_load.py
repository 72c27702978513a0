"""Load on the SMTP relay: CONNECTIONS processes, each on its own implicit-TLS connection (AUTH once), sending
MESSAGES/CONNECTIONS messages of one recipient and about 2 KB of HTML, one after the other (each waits for its
250, which comes after the commit). Prints messages/s over the whole run and any refusals.

    python3 bench/smtp_load.py HOST PORT API_KEY CONNECTIONS MESSAGES
"""

import multiprocessing
import smtplib
import ssl
import sys
import time

host, port, key = sys.argv[1], int(sys.argv[2]), sys.argv[3]
connections, messages = int(sys.argv[4]), int(sys.argv[5])

HTML = "<p>" + "x" * 2000 + "</p>"


def run(worker):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the local deployment's self-signed certificate
    refused = 0
    with smtplib.SMTP_SSL(host, port, context=context, timeout=120) as smtp:
        smtp.login("resend", key)
        for n in range(messages // connections):
            body = (
                "From: Acme <hello@acme.test>\r\n"
                f"To: r{worker}-{n}@example.com\r\n"
                "Subject: Receipt\r\n"
                "MIME-Version: 1.0\r\n"
                "Content-Type: text/html; charset=utf-8\r\n\r\n"
                f"{HTML}\r\n"
            )
            smtp.mail("hello@acme.test")
            smtp.rcpt(f"r{worker}-{n}@example.com")
            code, _ = smtp.data(body.encode())
            refused += code != 250
    return refused


if __name__ == "__main__":
    started = time.monotonic()
    with multiprocessing.Pool(connections) as pool:
        refused = sum(pool.map(run, range(connections)))
    elapsed = time.monotonic() - started
    sent = messages // connections * connections
    print(f"{sent} messages over {connections} connections in {elapsed:.2f} s = {sent / elapsed:.0f} messages/s")
    print(f"refused: {refused}")
