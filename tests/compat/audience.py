"""The official Resend Python SDK's audience methods (contacts, contact properties, segments, audiences,
topics, a contact's segments and topics) against a running OpenSend (RESEND_API_URL, RESEND_API_KEY).

Each check prints one line; the last line is the count, e.g. "python audience: 9 passed, 0 failed".
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


def contact_properties():
    created = resend.ContactProperties.create({"key": f"plan_{tag}", "type": "string", "fallback_value": "free"})
    assert created["object"] == "contact_property" and created["id"], created
    state["property"] = created["id"]
    got = resend.ContactProperties.get(created["id"])
    assert got["key"] == f"plan_{tag}" and got["type"] == "string" and got["fallback_value"] == "free", got
    resend.ContactProperties.update({"id": created["id"], "fallback_value": "trial"})
    assert resend.ContactProperties.get(created["id"])["fallback_value"] == "trial"
    listed = resend.ContactProperties.list({"limit": 10})
    assert any(p["id"] == created["id"] for p in listed["data"]), listed
    extra = resend.ContactProperties.create({"key": f"gone_{tag}", "type": "number"})
    removed = resend.ContactProperties.remove(extra["id"])
    assert removed["deleted"] is True, removed


def segments():
    created = resend.Segments.create({"name": f"VIP {tag}"})
    assert created["id"], created
    state["segment"] = created["id"]
    assert resend.Segments.get(created["id"])["name"] == f"VIP {tag}"
    resend.Segments.update(created["id"], {"name": f"VIPs {tag}"})
    assert resend.Segments.get(created["id"])["name"] == f"VIPs {tag}"
    listed = resend.Segments.list({"limit": 5})
    assert any(s["id"] == created["id"] for s in listed["data"]), listed
    other = resend.Segments.create({"name": f"Temp {tag}"})
    assert resend.Segments.remove(other["id"])["deleted"] is True


def topics():
    created = resend.Topics.create({"name": f"News {tag}", "default_subscription": "opt_in", "description": "Monthly"})
    assert created["id"], created
    state["topic"] = created["id"]
    got = resend.Topics.get(created["id"])
    assert got["default_subscription"] == "opt_in" and got["visibility"] == "private", got
    resend.Topics.update(created["id"], {"visibility": "public"})
    assert resend.Topics.get(created["id"])["visibility"] == "public"
    listed = resend.Topics.list()
    assert any(t["id"] == created["id"] for t in listed["data"]), listed
    other = resend.Topics.create({"name": f"Temp {tag}", "default_subscription": "opt_out"})
    assert resend.Topics.remove(other["id"])["deleted"] is True


def contacts():
    email = f"Py.{tag}@Example.com"
    created = resend.Contacts.create({
        "email": email, "first_name": "Py", "unsubscribed": False,
        "properties": {f"plan_{tag}": "pro"},
        "segments": [{"id": state["segment"]}],
        "topics": [{"id": state["topic"], "subscription": "opt_out"}],
    })
    assert created["id"], created
    state["contact"] = created["id"]
    got = resend.Contacts.get(id=created["id"])
    assert got["first_name"] == "Py" and got["properties"][f"plan_{tag}"]["value"] == "pro", got
    by_email = resend.Contacts.get(email=email.lower())
    assert by_email["id"] == created["id"], by_email
    resend.Contacts.update({"email": email, "last_name": "Thon"})
    resend.Contacts.update({"id": created["id"], "unsubscribed": True})
    got = resend.Contacts.get(id=created["id"])
    assert got["last_name"] == "Thon" and got["unsubscribed"] is True, got
    listed = resend.Contacts.list(params={"limit": 10})
    assert any(c["id"] == created["id"] for c in listed["data"]), listed
    in_segment = resend.Contacts.list(segment_id=state["segment"])
    assert [c["id"] for c in in_segment["data"]] == [created["id"]], in_segment


def contact_segments():
    other = resend.Segments.create({"name": f"Second {tag}"})
    added = resend.Contacts.Segments.add({"contact_id": state["contact"], "segment_id": other["id"]})
    assert added["id"], added
    listed = resend.Contacts.Segments.list({"contact_id": state["contact"]})
    assert {s["id"] for s in listed["data"]} == {state["segment"], other["id"]}, listed
    removed = resend.Contacts.Segments.remove({"email": f"py.{tag}@example.com", "segment_id": other["id"]})
    assert removed["deleted"] is True, removed


def contact_topics():
    listed = resend.Contacts.Topics.list(contact_id=state["contact"])
    mine = [t for t in listed["data"] if t["id"] == state["topic"]]
    assert mine and mine[0]["subscription"] == "opt_out", listed
    updated = resend.Contacts.Topics.update({
        "id": state["contact"], "topics": [{"id": state["topic"], "subscription": "opt_in"}],
    })
    assert updated["id"] == state["contact"], updated
    listed = resend.Contacts.Topics.list(email=f"py.{tag}@example.com")
    assert [t["subscription"] for t in listed["data"] if t["id"] == state["topic"]] == ["opt_in"], listed


def audiences():
    created = resend.Audiences.create({"name": f"Legacy {tag}"})
    assert created["id"] and created["name"] == f"Legacy {tag}", created
    got = resend.Audiences.get(created["id"])
    assert got["name"] == f"Legacy {tag}", got
    listed = resend.Audiences.list()
    assert any(a["id"] == created["id"] for a in listed["data"]), listed
    member = resend.Contacts.create({"audience_id": created["id"], "email": f"old.{tag}@example.com"})
    assert resend.Contacts.get(audience_id=created["id"], id=member["id"])["email"] == f"old.{tag}@example.com"
    resend.Contacts.update({"audience_id": created["id"], "id": member["id"], "first_name": "Old"})
    members = resend.Contacts.list(audience_id=created["id"])
    assert [c["id"] for c in members["data"]] == [member["id"]], members
    assert resend.Contacts.remove(audience_id=created["id"], id=member["id"])["deleted"] is True
    assert resend.Audiences.remove(created["id"])["deleted"] is True


def errors():
    try:
        resend.Contacts.create({"email": f"bad.{tag}@example.com", "properties": {f"plan_{tag}": 5}})
    except resend.exceptions.ResendError as e:
        assert f"plan_{tag}" in str(e), e
    else:
        raise AssertionError("a number for a string property was accepted")
    try:
        resend.Contacts.get(id=str(uuid.uuid4()))
    except resend.exceptions.ResendError as e:
        assert "not found" in str(e).lower(), e
    else:
        raise AssertionError("a missing contact was found")


def wait_import(import_id):
    import time
    last = None
    for _ in range(200):
        last = resend.Contacts.Imports.get(import_id)
        if last["status"] in ("completed", "failed"):
            return last
        time.sleep(0.05)
    raise AssertionError(f"import {import_id} never finished: {last}")


def imports():
    csv = f"Email,Name,Plan\nimp1.{tag}@example.com,One,pro\nnot-an-address,Bad,pro\nimp2.{tag}@example.com,Two,\n"
    created = resend.Contacts.Imports.create({
        "file": csv.encode(),
        "column_map": {"email": "Email", "first_name": "Name",
                       "properties": {f"plan_{tag}": {"column": "Plan", "type": "string"}}},
        "on_conflict": "upsert",
        "segments": [{"id": state["segment"]}],
        "topics": [{"id": state["topic"], "subscription": "opt_in"}],
    })
    assert created["object"] == "contact_import" and created["id"], created
    done = wait_import(created["id"])
    assert done["status"] == "completed", done
    assert done["counts"]["created"] == 2 and done["counts"]["failed"] == 1, done
    assert resend.Contacts.get(email=f"imp1.{tag}@example.com")["properties"][f"plan_{tag}"]["value"] == "pro"
    listed = resend.Contacts.Imports.list({"status": "completed"})
    assert any(i["id"] == created["id"] for i in listed["data"]), listed


def remove_contact():
    removed = resend.Contacts.remove(id=state["contact"])
    assert removed["deleted"] is True, removed


for name, fn in [
    ("contact properties", contact_properties), ("segments", segments), ("topics", topics),
    ("contacts", contacts), ("contact segments", contact_segments), ("contact topics", contact_topics),
    ("audiences", audiences), ("audience errors", errors), ("contact imports", imports), ("remove contact", remove_contact),
]:
    check(name, fn)

print(f"python audience: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
