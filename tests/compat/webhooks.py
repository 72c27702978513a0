"""Webhook deliveries from a running OpenSend, checked by the official verifiers: PyPI `svix`,
`standardwebhooks` and the Resend SDK's own `Webhooks.verify`. Endpoints are managed with the Resend SDK.

Covers a fresh secret, a rotated secret (both signatures, each secret verifies alone) and a replay (same
`svix-id`). Needs RESEND_API_URL and RESEND_API_KEY; the server must allow loopback endpoints
(ALLOW_PRIVATE_WEBHOOK_URLS=true). The last line is the count, e.g. "python webhooks: 4 passed, 0 failed".
"""

import http.server
import os
import sys
import threading
import time

import resend
import standardwebhooks
from svix.webhooks import Webhook as SvixWebhook
from svix.webhooks import WebhookVerificationError as SvixError

resend.api_key = os.environ["RESEND_API_KEY"]
passed = failed = 0
received = []
lock = threading.Lock()


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - the name http.server calls
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        with lock:
            received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=server.serve_forever, daemon=True).start()
endpoint = f"http://127.0.0.1:{server.server_address[1]}/hooks/resend"


def check(name, fn):
    global passed, failed
    try:
        fn()
        passed += 1
        print(f"ok   python webhooks {name}")
    except Exception as e:  # noqa: BLE001 - report every failure and keep going
        failed += 1
        print(f"FAIL python webhooks {name}: {type(e).__name__}: {e}")


def wait_for(count):
    for _ in range(400):
        with lock:
            if len(received) >= count:
                return received[count - 1]
        time.sleep(0.05)
    raise AssertionError(f"expected {count} deliveries, got {len(received)}")


def verify_everywhere(secret, headers, body):
    """Every official verifier accepts the delivery; returns the payload."""
    SvixWebhook(secret).verify(body, headers)
    payload = standardwebhooks.Webhook(secret).verify(body, headers)
    from_resend = resend.Webhooks.verify({
        "payload": body.decode(),
        "headers": {
            "id": headers["svix-id"],
            "timestamp": headers["svix-timestamp"],
            "signature": headers["svix-signature"],
        },
        "webhook_secret": secret,
    })
    assert from_resend["type"] == payload["type"], (from_resend, payload)
    return payload


def tampered_is_refused(secret, headers, body):
    try:
        SvixWebhook(secret).verify(body.replace(b"email", b"emai1", 1), headers)
    except SvixError:
        return
    raise AssertionError("a tampered body verified")


def send():
    return resend.Emails.send({
        "from": "Acme <hello@acme.test>", "to": ["webhooks@example.com"], "subject": "Webhook", "text": "Hi",
    })["id"]


state = {}


def fresh_secret():
    created = resend.Webhooks.create({"endpoint": endpoint, "events": ["email.sent", "email.delivered"]})
    assert created["signing_secret"].startswith("whsec_"), created
    state.update(webhook=created["id"], secret=created["signing_secret"])
    email_id = send()
    headers, body = wait_for(1)
    payload = verify_everywhere(state["secret"], headers, body)
    assert payload["type"] == "email.sent" and payload["data"]["email_id"] == email_id, payload
    tampered_is_refused(state["secret"], headers, body)
    fetched = resend.Webhooks.get(state["webhook"])
    assert fetched["endpoint"] == endpoint and fetched["status"] == "enabled", fetched


def replay():
    events = resend.Webhooks.list_events(state["webhook"])
    first = events["data"][-1]
    assert first["type"] == "email.sent", events
    for _ in range(100):
        if resend.Webhooks.get_event(state["webhook"], first["id"])["status"] == "success":
            break
        time.sleep(0.05)
    event = resend.Webhooks.get_event(state["webhook"], first["id"])
    assert event["status"] == "success" and event["payload"]["type"] == "email.sent", event
    attempts = resend.Webhooks.list_event_attempts(state["webhook"], first["id"])
    assert attempts["data"][0]["http_status_code"] == 204, attempts
    original_headers, _ = wait_for(1)
    resend.Webhooks.replay_event(state["webhook"], first["id"])
    headers, body = wait_for(2)
    assert headers["svix-id"] == original_headers["svix-id"], (headers, original_headers)
    verify_everywhere(state["secret"], headers, body)


def rotated_secret():
    old = state["secret"]
    rotated = resend.Webhooks.rotate_signing_secret(state["webhook"])
    new = rotated["signing_secret"]
    assert new.startswith("whsec_") and new != old, rotated
    send()
    headers, body = wait_for(3)
    assert len(headers["svix-signature"].split(" ")) == 2, headers
    verify_everywhere(new, headers, body)
    verify_everywhere(old, headers, body)
    state["secret"] = new


def update_and_remove():
    resend.Webhooks.update({"webhook_id": state["webhook"], "events": ["email.bounced"], "status": "disabled"})
    fetched = resend.Webhooks.get(state["webhook"])
    assert fetched["events"] == ["email.bounced"] and fetched["status"] == "disabled", fetched
    listed = resend.Webhooks.list()
    assert any(w["id"] == state["webhook"] for w in listed["data"]), listed
    removed = resend.Webhooks.remove(state["webhook"])
    assert removed["deleted"] is True, removed


for name, fn in [
    ("fresh secret", fresh_secret), ("replay", replay), ("rotated secret", rotated_secret),
    ("update and remove", update_and_remove),
]:
    check(name, fn)

server.shutdown()
print(f"python webhooks: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
