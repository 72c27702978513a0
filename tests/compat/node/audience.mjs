// The official Resend Node SDK's audience methods (contacts, contact properties, segments, audiences,
// topics, a contact's segments and topics) against a running OpenSend (RESEND_BASE_URL, RESEND_API_KEY).
// Each check prints one line; the last line is the count, e.g. "node audience: 9 passed, 0 failed".
import { randomUUID } from "node:crypto";
import { Resend } from "resend";

const resend = new Resend(process.env.RESEND_API_KEY);
let passed = 0;
let failed = 0;
const state = {};
const tag = randomUUID().slice(0, 8);

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

function ok({ data, error }) {
  if (error) throw new Error(`API error: ${JSON.stringify(error)}`);
  return data;
}

const checks = {
  async "contact properties"() {
    const created = ok(await resend.contactProperties.create({ key: `plan_${tag}`, type: "string", fallbackValue: "free" }));
    assert(created.id, JSON.stringify(created));
    state.property = created.id;
    const got = ok(await resend.contactProperties.get(created.id));
    assert(got.key === `plan_${tag}` && got.fallbackValue === "free", JSON.stringify(got));
    ok(await resend.contactProperties.update({ id: created.id, fallbackValue: "trial" }));
    assert(ok(await resend.contactProperties.get(created.id)).fallbackValue === "trial", "fallback not updated");
    const listed = ok(await resend.contactProperties.list({ limit: 10 }));
    assert(listed.data.some((p) => p.id === created.id), JSON.stringify(listed));
    const extra = ok(await resend.contactProperties.create({ key: `gone_${tag}`, type: "number" }));
    assert(ok(await resend.contactProperties.remove(extra.id)).deleted === true, "not removed");
  },
  async segments() {
    const created = ok(await resend.segments.create({ name: `VIP ${tag}` }));
    state.segment = created.id;
    assert(ok(await resend.segments.get(created.id)).name === `VIP ${tag}`, "wrong name");
    ok(await resend.segments.update(created.id, { name: `VIPs ${tag}` }));
    assert(ok(await resend.segments.get(created.id)).name === `VIPs ${tag}`, "not renamed");
    const listed = ok(await resend.segments.list({ limit: 5 }));
    assert(listed.data.some((s) => s.id === created.id), JSON.stringify(listed));
    const other = ok(await resend.segments.create({ name: `Temp ${tag}` }));
    assert(ok(await resend.segments.remove(other.id)).deleted === true, "not removed");
  },
  async topics() {
    const created = ok(await resend.topics.create({ name: `News ${tag}`, defaultSubscription: "opt_in", description: "Monthly" }));
    state.topic = created.id;
    const got = ok(await resend.topics.get(created.id));
    assert(got.default_subscription === "opt_in" && got.visibility === "private", JSON.stringify(got));
    ok(await resend.topics.update({ id: created.id, visibility: "public" }));
    assert(ok(await resend.topics.get(created.id)).visibility === "public", "not updated");
    const listed = ok(await resend.topics.list());
    assert(listed.data.some((t) => t.id === created.id), JSON.stringify(listed));
    const other = ok(await resend.topics.create({ name: `Temp ${tag}`, defaultSubscription: "opt_out" }));
    assert(ok(await resend.topics.remove(other.id)).deleted === true, "not removed");
  },
  async contacts() {
    const email = `Node.${tag}@Example.com`;
    const created = ok(
      await resend.contacts.create({
        email,
        firstName: "Node",
        unsubscribed: false,
        properties: { [`plan_${tag}`]: "pro" },
        segments: [{ id: state.segment }],
        topics: [{ id: state.topic, subscription: "opt_out" }],
      }),
    );
    state.contact = created.id;
    const got = ok(await resend.contacts.get({ id: created.id }));
    assert(got.first_name === "Node" && got.properties[`plan_${tag}`].value === "pro", JSON.stringify(got));
    assert(ok(await resend.contacts.get(created.id)).id === created.id, "get by string");
    assert(ok(await resend.contacts.get({ email: email.toLowerCase() })).id === created.id, "get by email");
    ok(await resend.contacts.update({ email, lastName: "Script" }));
    ok(await resend.contacts.update({ id: created.id, unsubscribed: true }));
    const updated = ok(await resend.contacts.get({ id: created.id }));
    assert(updated.last_name === "Script" && updated.unsubscribed === true, JSON.stringify(updated));
    const listed = ok(await resend.contacts.list({ limit: 10 }));
    assert(listed.data.some((c) => c.id === created.id), JSON.stringify(listed));
    const members = ok(await resend.contacts.list({ segmentId: state.segment }));
    assert(members.data.length === 1 && members.data[0].id === created.id, JSON.stringify(members));
  },
  async "contact segments"() {
    const other = ok(await resend.segments.create({ name: `Second ${tag}` }));
    ok(await resend.contacts.segments.add({ contactId: state.contact, segmentId: other.id }));
    const listed = ok(await resend.contacts.segments.list({ contactId: state.contact }));
    assert(listed.data.length === 2, JSON.stringify(listed));
    const removed = ok(await resend.contacts.segments.remove({ email: `node.${tag}@example.com`, segmentId: other.id }));
    assert(removed.deleted === true, JSON.stringify(removed));
  },
  async "contact topics"() {
    const listed = ok(await resend.contacts.topics.list({ id: state.contact }));
    assert(listed.data.find((t) => t.id === state.topic)?.subscription === "opt_out", JSON.stringify(listed));
    ok(await resend.contacts.topics.update({ id: state.contact, topics: [{ id: state.topic, subscription: "opt_in" }] }));
    const again = ok(await resend.contacts.topics.list({ email: `node.${tag}@example.com` }));
    assert(again.data.find((t) => t.id === state.topic)?.subscription === "opt_in", JSON.stringify(again));
  },
  async audiences() {
    // The Node SDK's `audiences` are its segments; the deprecated contact routes take an audience id.
    const created = ok(await resend.audiences.create({ name: `Legacy ${tag}` }));
    assert(ok(await resend.audiences.get(created.id)).name === `Legacy ${tag}`, "wrong name");
    const member = ok(await resend.contacts.create({ audienceId: created.id, email: `old.${tag}@example.com` }));
    const got = ok(await resend.contacts.get({ audienceId: created.id, id: member.id }));
    assert(got.email === `old.${tag}@example.com`, JSON.stringify(got));
    ok(await resend.contacts.update({ audienceId: created.id, id: member.id, firstName: "Old" }));
    const members = ok(await resend.contacts.list({ audienceId: created.id }));
    assert(members.data.length === 1 && members.data[0].id === member.id, JSON.stringify(members));
    assert(ok(await resend.contacts.remove({ audienceId: created.id, id: member.id })).deleted === true, "not removed");
    const listed = ok(await resend.audiences.list());
    assert(listed.data.some((a) => a.id === created.id), JSON.stringify(listed));
    assert(ok(await resend.audiences.remove(created.id)).deleted === true, "audience not removed");
  },
  async "audience errors"() {
    const bad = await resend.contacts.create({ email: `bad.${tag}@example.com`, properties: { [`plan_${tag}`]: 5 } });
    assert(bad.error?.name === "validation_error" && bad.error.message.includes(`plan_${tag}`), JSON.stringify(bad));
    const missing = await resend.contacts.get({ id: randomUUID() });
    assert(missing.error?.name === "not_found", JSON.stringify(missing));
  },
  async "contact imports"() {
    const csv = `Email,Name,Plan\nnimp1.${tag}@example.com,One,pro\nnot-an-address,Bad,pro\nnimp2.${tag}@example.com,Two,\n`;
    const created = ok(
      await resend.contacts.imports.create({
        file: new Blob([csv], { type: "text/csv" }),
        columnMap: { email: "Email", firstName: "Name", properties: { [`plan_${tag}`]: { column: "Plan", type: "string" } } },
        onConflict: "skip",
        segments: [{ id: state.segment }],
        topics: [{ id: state.topic, subscription: "opt_in" }],
      }),
    );
    assert(created.object === "contact_import" && created.id, JSON.stringify(created));
    let done;
    for (let i = 0; i < 200; i++) {
      done = ok(await resend.contacts.imports.get(created.id));
      if (done.status === "completed" || done.status === "failed") break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert(done.status === "completed" && done.counts.created === 2 && done.counts.failed === 1, JSON.stringify(done));
    const listed = ok(await resend.contacts.imports.list({ status: "completed" }));
    assert(listed.data.some((i) => i.id === created.id), JSON.stringify(listed));
  },
  async "remove contact"() {
    assert(ok(await resend.contacts.remove(state.contact)).deleted === true, "not removed");
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
console.log(`node audience: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
