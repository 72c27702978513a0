"""The official Resend Python SDK's template methods (create, get, list, update, publish, duplicate, remove),
emails.send and batch with a template, and a sent email's attachments, against a running OpenSend
(RESEND_API_URL, RESEND_API_KEY).

Each check prints one line; the last line is the count, e.g. "python templates: 6 passed, 0 failed".
"""

import os
import sys
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


def create_and_get():
    created = resend.Templates.create({
        "name": f"Order {tag}",
        "alias": f"order-{tag}",
        "from": "Acme <orders@acme.test>",
        "subject": "Your {{{PRODUCT}}}",
        "html": "<p>{{{PRODUCT}}} costs {{{PRICE}}}</p>",
        "text": "{{{PRODUCT}}} costs {{{PRICE}}}",
        "variables": [
            {"key": "PRODUCT", "type": "string"},
            {"key": "PRICE", "type": "number", "fallback_value": 25},
        ],
    })
    assert created["object"] == "template" and created["id"], created
    state["template"] = created["id"]
    got = resend.Templates.get(created["id"])
    assert got["name"] == f"Order {tag}" and got["status"] == "draft", got
    assert got["variables"][1] == {"key": "PRICE", "type": "number", "fallback_value": 25}, got
    by_alias = resend.Templates.get(f"order-{tag}")
    assert by_alias["id"] == created["id"], by_alias


def list_and_update():
    listed = resend.Templates.list({"limit": 10})
    assert listed["object"] == "list" and any(t["id"] == state["template"] for t in listed["data"]), listed
    updated = resend.Templates.update({"id": state["template"], "name": f"Orders {tag}"})
    assert updated["id"] == state["template"], updated
    assert resend.Templates.get(state["template"])["name"] == f"Orders {tag}"


def publish_and_send():
    published = resend.Templates.publish(state["template"])
    assert published["id"] == state["template"], published
    assert resend.Templates.get(state["template"])["status"] == "published"
    sent = resend.Emails.send({
        "to": "jane@example.com",
        "template": {"id": f"order-{tag}", "variables": {"PRODUCT": "<Lamp>", "PRICE": 9.5}},
    })
    email = resend.Emails.get(sent["id"])
    assert email["subject"] == "Your <Lamp>", email
    assert email["html"] == "<p>&lt;Lamp&gt; costs 9.5</p>", email
    assert email["text"] == "<Lamp> costs 9.5", email
    batch = resend.Batch.send([
        {"to": "a@example.com", "template": {"id": state["template"], "variables": {"PRODUCT": "A"}}},
        {"to": "b@example.com", "template": {"id": state["template"], "variables": {"PRODUCT": "B"}}},
    ])
    assert len(batch["data"]) == 2, batch


def missing_variable_is_refused():
    try:
        resend.Emails.send({"to": "jane@example.com", "template": {"id": state["template"]}})
    except resend.exceptions.ResendError as e:
        assert "PRODUCT" in str(e), e
        return
    raise AssertionError("a send without a required variable was accepted")


def duplicate_and_remove():
    copy = resend.Templates.duplicate(state["template"])
    assert copy["object"] == "template" and copy["id"] != state["template"], copy
    assert resend.Templates.get(copy["id"])["status"] == "draft"
    for template in (copy["id"], state["template"]):
        removed = resend.Templates.remove(template)
        assert removed["deleted"] is True and removed["id"] == template, removed


def sent_attachments():
    sent = resend.Emails.send({
        "from": "hello@acme.test",
        "to": "jane@example.com",
        "subject": "Files",
        "text": "see attached",
        "attachments": [{"filename": "a.txt", "content": [104, 105]}],
    })
    listed = resend.Emails.Attachments.list(sent["id"])
    assert listed["object"] == "list" and len(listed["data"]) == 1, listed
    first = listed["data"][0]
    assert first["filename"] == "a.txt" and first["size"] == 2 and first["download_url"], first
    got = resend.Emails.Attachments.get(sent["id"], first["id"])
    assert got["object"] == "attachment" and got["id"] == first["id"] and got["expires_at"], got


check("templates create and get", create_and_get)
check("templates list and update", list_and_update)
check("templates publish and send", publish_and_send)
check("templates missing variable", missing_variable_is_refused)
check("templates duplicate and remove", duplicate_and_remove)
check("sent email attachments", sent_attachments)
print(f"python templates: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
