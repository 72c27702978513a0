// The official Resend Node SDK's broadcast methods (create, get, list, update, send, recipients, cancel,
// duplicate, remove) against a running OpenSend (RESEND_BASE_URL, RESEND_API_KEY).
// Each check prints one line; the last line is the count, e.g. "node broadcasts: 6 passed, 0 failed".
import { randomUUID } from "node:crypto";
import { Resend } from "resend";

const resend = new Resend(process.env.RESEND_API_KEY);
let passed = 0;
let failed = 0;
const state = {};
const tag = randomUUID().slice(0, 8);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

function ok({ data, error }) {
  if (error) throw new Error(`API error: ${JSON.stringify(error)}`);
  return data;
}

const checks = {
  async setup() {
    state.segment = ok(await resend.segments.create({ name: `Broadcast ${tag}` })).id;
    for (const who of ["ann", "bob"]) {
      ok(await resend.contacts.create({ email: `${who}-${tag}@example.com`, firstName: who, segments: [{ id: state.segment }] }));
    }
  },
  async "create/get/list/update"() {
    const created = ok(
      await resend.broadcasts.create({
        segmentId: state.segment,
        from: "News <news@example.com>",
        subject: "Hello {{{contact.first_name|there}}}",
        html: "<p>Hi {{{FIRST_NAME}}}</p>",
        name: `Node ${tag}`,
        previewText: "Inside",
      }),
    );
    state.broadcast = created.id;
    const got = ok(await resend.broadcasts.get(created.id));
    assert(got.status === "draft" && got.segment_id === state.segment && got.preview_text === "Inside", JSON.stringify(got));
    const listed = ok(await resend.broadcasts.list({ limit: 10 }));
    assert(listed.data.some((b) => b.id === created.id), JSON.stringify(listed));
    ok(await resend.broadcasts.update(created.id, { subject: "Hi {{{contact.first_name|there}}}" }));
    assert(ok(await resend.broadcasts.get(created.id)).subject === "Hi {{{contact.first_name|there}}}", "not updated");
  },
  async "duplicate/remove"() {
    const copy = ok(await resend.broadcasts.duplicate(state.broadcast));
    assert(copy.id && copy.id !== state.broadcast, JSON.stringify(copy));
    assert(ok(await resend.broadcasts.remove(copy.id)).deleted === true, "not removed");
  },
  async "send/recipients"() {
    const sent = ok(await resend.broadcasts.send(state.broadcast));
    assert(sent.id === state.broadcast, JSON.stringify(sent));
    let status;
    for (let i = 0; i < 200 && status !== "sent"; i++) {
      status = ok(await resend.broadcasts.get(state.broadcast)).status;
      if (status !== "sent") await sleep(50);
    }
    assert(status === "sent", `status ${status}`);
    let rows = [];
    for (let i = 0; i < 200 && rows.length < 2; i++) {
      rows = ok(await resend.broadcasts.recipients(state.broadcast, { type: "sent" })).data;
      if (rows.length < 2) await sleep(50);
    }
    assert(rows.length === 2 && rows.every((r) => r.contact_id), JSON.stringify(rows));
  },
  async "schedule/cancel"() {
    const created = ok(
      await resend.broadcasts.create({
        segmentId: state.segment,
        from: "news@example.com",
        subject: "Later",
        text: "Later",
        send: true,
        scheduledAt: "in 1 hour",
      }),
    );
    assert(ok(await resend.broadcasts.get(created.id)).status === "scheduled", "not scheduled");
    assert(ok(await resend.broadcasts.cancel(created.id)).id === created.id, "not canceled");
    assert(ok(await resend.broadcasts.get(created.id)).status === "draft", "not a draft again");
    ok(await resend.broadcasts.remove(created.id));
  },
  async "sent is not a draft"() {
    const { error } = await resend.broadcasts.update(state.broadcast, { subject: "x" });
    assert(error && error.statusCode === 422 && error.message.includes("sent"), JSON.stringify(error));
  },
};

for (const [name, fn] of Object.entries(checks)) {
  try {
    await fn();
    passed++;
    console.log(`ok   node ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL node ${name}: ${e.message}`);
  }
}
console.log(`node broadcasts: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
