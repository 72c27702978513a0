"""The official Resend Python SDK against a running OpenSend (RESEND_API_URL, RESEND_API_KEY).

Each check prints one line; the last line is the count, e.g. "python: 9 passed, 0 failed".
"""

import datetime
import os
import sys
import time

import resend

resend.api_key = os.environ["RESEND_API_KEY"]
passed = failed = 0


def check(name, fn):
    global passed, failed
    try:
        fn()
        passed += 1
        print(f"ok   python {name}")
    except Exception as e:  # noqa: BLE001 - report every failure and keep going
        failed += 1
        print(f"FAIL python {name}: {type(e).__name__}: {e}")


def wait_for(email_id, status):
    last = None
    for _ in range(200):
        last = resend.Emails.get(email_id)
        if last["last_event"] == status:
            return last
        time.sleep(0.05)
    raise AssertionError(f"{email_id} never reached {status}: {last}")


def later(**kw):
    return (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(**kw)).isoformat()


state = {}


def send():
    r = resend.Emails.send({
        "from": "Acme <hello@acme.test>",
        "to": ["jane@example.com"],
        "bcc": "hidden@example.com",
        "subject": "Hello from Python",
        "html": "<p>Hi</p>",
        "tags": [{"name": "sdk", "value": "python"}],
        "attachments": [{"filename": "hi.txt", "content": list(b"hello")}],
    })
    assert r["id"], r
    state["id"] = r["id"]


def get():
    email = wait_for(state["id"], "sent")
    assert email["subject"] == "Hello from Python", email
    assert email["to"] == ["jane@example.com"], email
    assert email["bcc"] == ["hidden@example.com"], email


def list_emails():
    page = resend.Emails.list({"limit": 10})
    assert any(e["id"] == state["id"] for e in page["data"]), page


def batch():
    r = resend.Batch.send([
        {"from": "hello@acme.test", "to": "a@example.com", "subject": "One", "text": "1"},
        {"from": "hello@acme.test", "to": "b@example.com", "subject": "Two", "text": "2"},
    ])
    assert len(r["data"]) == 2, r
    for item in r["data"]:
        wait_for(item["id"], "sent")


def batch_permissive():
    r = resend.Batch.send(
        [
            {"from": "hello@acme.test", "to": "a@example.com", "subject": "Ok", "text": "1"},
            {"from": "broken", "to": "b@example.com", "subject": "Bad", "text": "2"},
        ],
        options={"batch_validation": "permissive"},
    )
    assert len(r["data"]) == 1 and r["errors"][0]["index"] == 1, r


def schedule_update_cancel():
    r = resend.Emails.send({
        "from": "hello@acme.test", "to": "later@example.com", "subject": "Later",
        "text": "soon", "scheduled_at": later(hours=1),
    })
    wait_for(r["id"], "scheduled")
    u = resend.Emails.update({"id": r["id"], "scheduled_at": later(hours=2)})
    assert u["id"] == r["id"], u
    c = resend.Emails.cancel(r["id"])
    assert c["id"] == r["id"], c
    assert resend.Emails.get(r["id"])["last_event"] == "canceled"


def idempotency():
    params = {"from": "hello@acme.test", "to": "once@example.com", "subject": "Once", "text": "x"}
    first = resend.Emails.send(params, options={"idempotency_key": "py-once"})
    again = resend.Emails.send(params, options={"idempotency_key": "py-once"})
    assert first["id"] == again["id"], (first, again)
    try:
        resend.Emails.send(dict(params, subject="Changed"), options={"idempotency_key": "py-once"})
    except resend.exceptions.ResendError as e:
        assert e.code == 409 or "idempotent" in str(e).lower(), e
    else:
        raise AssertionError("a different body under the same key was accepted")


def errors():
    try:
        resend.Emails.send({"from": "hello@acme.test", "to": "x@example.com"})
    except resend.exceptions.ResendError as e:
        assert "subject" in str(e), e
    else:
        raise AssertionError("missing subject was accepted")


def api_keys():
    created = resend.ApiKeys.create({"name": "from python", "permission": "sending_access"})
    assert created["token"].startswith("os_"), created
    listed = resend.ApiKeys.list()
    assert any(k["id"] == created["id"] for k in listed["data"]), listed
    resend.ApiKeys.remove(created["id"])


def logs():
    # The log is written just after each response; the api-keys call above is soon in it.
    entry = None
    for _ in range(200):
        listed = resend.Logs.list({"limit": 100})
        entry = next((e for e in listed["data"] if e["endpoint"] == "/api-keys" and e["method"] == "POST"), None)
        if entry:
            break
        time.sleep(0.05)
    assert entry, "no log of POST /api-keys"
    log = resend.Logs.get(entry["id"])
    assert log["object"] == "log" and log["id"] == entry["id"], log
    assert log["response_body"]["token"] == "[redacted]", log


for name, fn in [
    ("send", send), ("get", get), ("list", list_emails), ("batch", batch),
    ("batch permissive", batch_permissive), ("schedule, update, cancel", schedule_update_cancel),
    ("idempotency", idempotency), ("errors", errors), ("api keys", api_keys), ("logs", logs),
]:
    check(name, fn)

print(f"python: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
