// The official Resend Node SDK against a running OpenSend (RESEND_BASE_URL, RESEND_API_KEY).
// Each check prints one line; the last line is the count, e.g. "node: 8 passed, 0 failed".
import { Resend } from "resend";

const resend = new Resend(process.env.RESEND_API_KEY);
let passed = 0;
let failed = 0;
const state = {};

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

// The SDK answers { data, error }; an error here is a failed check.
function ok({ data, error }) {
  if (error) throw new Error(`API error: ${JSON.stringify(error)}`);
  return data;
}

const later = (ms) => new Date(Date.now() + ms).toISOString();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(id, status) {
  let last;
  for (let i = 0; i < 200; i++) {
    last = ok(await resend.emails.get(id));
    if (last.last_event === status) return last;
    await sleep(50);
  }
  throw new Error(`${id} never reached ${status}: ${JSON.stringify(last)}`);
}

const checks = {
  async send() {
    const data = ok(
      await resend.emails.send({
        from: "Acme <hello@acme.test>",
        to: ["jane@example.com"],
        cc: "cc@example.com",
        subject: "Hello from Node",
        html: "<p>Hi</p>",
        replyTo: "support@acme.test",
        attachments: [{ filename: "hi.txt", content: Buffer.from("hello") }],
        headers: { "X-Entity-Ref-ID": "node-1" },
      }),
    );
    assert(data.id, "no id");
    state.id = data.id;
  },
  async get() {
    const email = await waitFor(state.id, "sent");
    assert(email.subject === "Hello from Node", JSON.stringify(email));
    assert(email.reply_to[0] === "support@acme.test", JSON.stringify(email));
  },
  async list() {
    const page = ok(await resend.emails.list({ limit: 5 }));
    assert(page.data.some((e) => e.id === state.id), JSON.stringify(page));
  },
  async batch() {
    const data = ok(
      await resend.batch.send([
        { from: "hello@acme.test", to: "a@example.com", subject: "One", text: "1" },
        { from: "hello@acme.test", to: "b@example.com", subject: "Two", text: "2" },
      ]),
    );
    assert(data.data.length === 2, JSON.stringify(data));
    for (const item of data.data) await waitFor(item.id, "sent");
  },
  async "schedule, update, cancel"() {
    const { id } = ok(
      await resend.emails.send({
        from: "hello@acme.test",
        to: "later@example.com",
        subject: "Later",
        text: "soon",
        scheduledAt: later(3600_000),
      }),
    );
    await waitFor(id, "scheduled");
    ok(await resend.emails.update({ id, scheduledAt: later(7200_000) }));
    ok(await resend.emails.cancel(id));
    const email = ok(await resend.emails.get(id));
    assert(email.last_event === "canceled", JSON.stringify(email));
  },
  async idempotency() {
    const params = { from: "hello@acme.test", to: "once@example.com", subject: "Once", text: "x" };
    const first = ok(await resend.emails.send(params, { idempotencyKey: "node-once" }));
    const again = ok(await resend.emails.send(params, { idempotencyKey: "node-once" }));
    assert(first.id === again.id, `${first.id} != ${again.id}`);
    const changed = await resend.emails.send({ ...params, subject: "Changed" }, { idempotencyKey: "node-once" });
    assert(changed.error?.name === "invalid_idempotent_request", JSON.stringify(changed));
  },
  async errors() {
    const { error } = await resend.emails.send({ from: "hello@acme.test", to: "x@example.com", text: "x" });
    assert(error && error.name === "missing_required_field", JSON.stringify(error));
  },
  async "api keys"() {
    const created = ok(await resend.apiKeys.create({ name: "from node" }));
    assert(created.token.startsWith("os_"), JSON.stringify(created));
    const listed = ok(await resend.apiKeys.list());
    assert(listed.data.some((k) => k.id === created.id), JSON.stringify(listed));
    ok(await resend.apiKeys.remove(created.id));
  },
  async logs() {
    // The log is written just after each response; the api-keys call above is soon in it.
    let entry;
    for (let i = 0; i < 200 && !entry; i++) {
      const listed = ok(await resend.logs.list({ limit: 100 }));
      entry = listed.data.find((e) => e.endpoint === "/api-keys" && e.method === "POST");
      if (!entry) await sleep(50);
    }
    assert(entry, "no log of POST /api-keys");
    const log = ok(await resend.logs.get(entry.id));
    assert(log.object === "log" && log.id === entry.id, JSON.stringify(log));
    assert(log.response_body.token === "[redacted]", JSON.stringify(log));
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
console.log(`node: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
