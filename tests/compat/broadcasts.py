"""The official Resend Python SDK's broadcast methods (create, get, list, update, send, recipients, cancel,
duplicate, remove) against a running OpenSend (RESEND_API_URL, RESEND_API_KEY).

Each check prints one line; the last line is the count, e.g. "python broadcasts: 7 passed, 0 failed".
"""

import os
import sys
import time
import uuid

import resend

resend.api_key = os.environ["RESEND_API_KEY"]
passed = failed = 0
state = {}
tag = uuid.uuid4().hex[:8]


def check(name, fn):
    global passed, failed
    try:
        fn()
        passed += 1
        print(f"ok   python {name}")
    except Exception as e:  # noqa: BLE001 - report every failure and keep going
        failed += 1
        print(f"FAIL python {name}: {type(e).__name__}: {e}")


def setup():
    state["segment"] = resend.Segments.create({"name": f"Broadcast {tag}"})["id"]
    for who in ("ann", "bob"):
        resend.Contacts.create(
            {"email": f"{who}-{tag}@example.com", "first_name": who.title(), "segments": [{"id": state["segment"]}]}
        )


def create_get_list_update():
    created = resend.Broadcasts.create(
        {
            "segment_id": state["segment"],
            "from": "News <news@example.com>",
            "subject": "Hello {{{contact.first_name|there}}}",
            "html": "<p>Hi {{{FIRST_NAME}}}</p>",
            "name": f"Python {tag}",
        }
    )
    assert created["id"], created
    state["broadcast"] = created["id"]
    got = resend.Broadcasts.get(created["id"])
    assert got["status"] == "draft" and got["segment_id"] == state["segment"], got
    listed = resend.Broadcasts.list({"limit": 10})
    assert any(b["id"] == created["id"] for b in listed["data"]), listed
    resend.Broadcasts.update({"broadcast_id": created["id"], "subject": "Hi {{{contact.first_name|there}}}"})
    assert resend.Broadcasts.get(created["id"])["subject"] == "Hi {{{contact.first_name|there}}}"


def duplicate_and_remove():
    copy = resend.Broadcasts.duplicate(state["broadcast"])
    assert copy["id"] and copy["id"] != state["broadcast"], copy
    removed = resend.Broadcasts.remove(copy["id"])
    assert removed["deleted"] is True, removed


def send_and_recipients():
    sent = resend.Broadcasts.send({"broadcast_id": state["broadcast"]})
    assert sent["id"] == state["broadcast"], sent
    for _ in range(200):
        if resend.Broadcasts.get(state["broadcast"])["status"] == "sent":
            break
        time.sleep(0.05)
    assert resend.Broadcasts.get(state["broadcast"])["status"] == "sent"
    for _ in range(200):
        rows = resend.Broadcasts.recipients(state["broadcast"], {"type": "sent"})["data"]
        if len(rows) == 2:
            break
        time.sleep(0.05)
    assert len(rows) == 2 and all(r["contact_id"] for r in rows), rows
    ann = resend.Broadcasts.recipients(state["broadcast"], {"type": "sent", "email": "ann-"})["data"]
    assert len(ann) == 1 and ann[0]["email"] == f"ann-{tag}@example.com", ann


def schedule_and_cancel():
    created = resend.Broadcasts.create(
        {
            "segment_id": state["segment"],
            "from": "news@example.com",
            "subject": "Later",
            "text": "Later",
            "send": True,
            "scheduled_at": "in 1 hour",
        }
    )
    assert resend.Broadcasts.get(created["id"])["status"] == "scheduled"
    canceled = resend.Broadcasts.cancel(created["id"])
    assert canceled["id"] == created["id"], canceled
    assert resend.Broadcasts.get(created["id"])["status"] == "draft"
    resend.Broadcasts.remove(created["id"])


def sent_is_not_a_draft():
    try:
        resend.Broadcasts.update({"broadcast_id": state["broadcast"], "subject": "x"})
    except resend.exceptions.ResendError as e:
        assert "sent" in str(e), e
        return
    raise AssertionError("a sent broadcast was updated")


check("setup", setup)
check("broadcasts create/get/list/update", create_get_list_update)
check("broadcasts duplicate/remove", duplicate_and_remove)
check("broadcasts send/recipients", send_and_recipients)
check("broadcasts schedule/cancel", schedule_and_cancel)
check("broadcasts sent is not a draft", sent_is_not_a_draft)
print(f"python broadcasts: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
