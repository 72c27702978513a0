// The official Resend Node SDK's template methods (create, get, list, update, publish, duplicate, remove),
// emails.send and batch with a template, and a sent email's attachments, against a running OpenSend
// (RESEND_BASE_URL, RESEND_API_KEY). Each check prints one line; the last line is the count.
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
  async "templates create and get"() {
    const created = ok(
      await resend.templates.create({
        name: `Order ${tag}`,
        alias: `order-${tag}`,
        from: "Acme <orders@acme.test>",
        subject: "Your {{{PRODUCT}}}",
        replyTo: ["support@acme.test"],
        html: "<p>{{{PRODUCT}}} costs {{{PRICE}}}</p>",
        text: "{{{PRODUCT}}} costs {{{PRICE}}}",
        variables: [
          { key: "PRODUCT", type: "string" },
          { key: "PRICE", type: "number", fallbackValue: 25 },
        ],
      }),
    );
    assert(created.object === "template" && created.id, JSON.stringify(created));
    state.template = created.id;
    const got = ok(await resend.templates.get(created.id));
    assert(got.name === `Order ${tag}` && got.status === "draft", JSON.stringify(got));
    assert(JSON.stringify(got.reply_to) === JSON.stringify(["support@acme.test"]), JSON.stringify(got));
    assert(ok(await resend.templates.get(`order-${tag}`)).id === created.id, "alias lookup");
  },
  async "templates list and update"() {
    const listed = ok(await resend.templates.list({ limit: 10 }));
    assert(listed.data.some((t) => t.id === state.template), JSON.stringify(listed));
    ok(await resend.templates.update(state.template, { name: `Orders ${tag}` }));
    assert(ok(await resend.templates.get(state.template)).name === `Orders ${tag}`, "not renamed");
  },
  async "templates publish and send"() {
    ok(await resend.templates.publish(state.template));
    assert(ok(await resend.templates.get(state.template)).status === "published", "not published");
    const sent = ok(
      await resend.emails.send({
        to: "jane@example.com",
        template: { id: `order-${tag}`, variables: { PRODUCT: "<Lamp>", PRICE: 9.5 } },
      }),
    );
    const email = ok(await resend.emails.get(sent.id));
    assert(email.subject === "Your <Lamp>", JSON.stringify(email));
    assert(email.html === "<p>&lt;Lamp&gt; costs 9.5</p>", JSON.stringify(email));
    assert(email.text === "<Lamp> costs 9.5", JSON.stringify(email));
    const batch = ok(
      await resend.batch.send([
        { to: "a@example.com", template: { id: state.template, variables: { PRODUCT: "A" } } },
        { to: "b@example.com", template: { id: state.template, variables: { PRODUCT: "B" } } },
      ]),
    );
    assert(batch.data.length === 2, JSON.stringify(batch));
  },
  async "templates missing variable"() {
    const { error } = await resend.emails.send({ to: "jane@example.com", template: { id: state.template } });
    assert(error && error.message.includes("PRODUCT"), JSON.stringify(error));
  },
  async "templates duplicate (and publish, chained) and remove"() {
    const copy = ok(await resend.templates.duplicate(state.template).publish());
    assert(copy.id && copy.id !== state.template, JSON.stringify(copy));
    assert(ok(await resend.templates.get(copy.id)).status === "published", "the copy was not published");
    for (const id of [copy.id, state.template]) {
      const removed = ok(await resend.templates.remove(id));
      assert(removed.deleted === true && removed.id === id, JSON.stringify(removed));
    }
  },
  async "sent email attachments"() {
    const sent = ok(
      await resend.emails.send({
        from: "hello@acme.test",
        to: "jane@example.com",
        subject: "Files",
        text: "see attached",
        attachments: [{ filename: "a.txt", content: Buffer.from("hi") }],
      }),
    );
    const listed = ok(await resend.emails.attachments.list({ emailId: sent.id }));
    assert(listed.data.length === 1, JSON.stringify(listed));
    const first = listed.data[0];
    assert(first.filename === "a.txt" && first.size === 2 && first.download_url, JSON.stringify(first));
    const got = ok(await resend.emails.attachments.get({ emailId: sent.id, id: first.id }));
    assert(got.object === "attachment" && got.id === first.id && got.expires_at, JSON.stringify(got));
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
console.log(`node templates: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
