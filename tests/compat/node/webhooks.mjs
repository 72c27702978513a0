// Webhook deliveries from a running OpenSend, checked by npm `svix` and the Resend SDK's own
// `webhooks.verify`; endpoints managed with the Resend SDK (RESEND_BASE_URL, RESEND_API_KEY).
// Covers a fresh secret, a rotated secret (each secret verifies alone) and a replay (same svix-id).
// The last line is the count, e.g. "node webhooks: 3 passed, 0 failed".
import http from "node:http";
import { Resend } from "resend";
import { Webhook } from "svix";

const resend = new Resend(process.env.RESEND_API_KEY);
const received = [];
let passed = 0;
let failed = 0;
const state = {};

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    received.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
    res.writeHead(200, { "content-type": "text/plain" }).end("thanks");
  });
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const endpoint = `http://127.0.0.1:${server.address().port}/hooks/resend`;

function assert(condition, message) {
  if (!condition) throw new Error(message);
}
function ok({ data, error }) {
  if (error) throw new Error(`API error: ${JSON.stringify(error)}`);
  return data;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(count) {
  for (let i = 0; i < 400; i++) {
    if (received.length >= count) return received[count - 1];
    await sleep(50);
  }
  throw new Error(`expected ${count} deliveries, got ${received.length}`);
}

// npm svix and the Resend SDK both accept the delivery; returns the payload.
function verifyEverywhere(secret, { headers, body }) {
  // npm svix throws on a bad signature and returns nothing on a good one.
  new Webhook(secret).verify(body, headers);
  const payload = JSON.parse(body);
  const fromResend = resend.webhooks.verify({
    payload: body,
    headers: { id: headers["svix-id"], timestamp: headers["svix-timestamp"], signature: headers["svix-signature"] },
    webhookSecret: secret,
  });
  assert(fromResend.type === payload.type, "the verifiers disagree");
  return payload;
}

async function send() {
  return ok(await resend.emails.send({
    from: "Acme <hello@acme.test>", to: ["webhooks@example.com"], subject: "Webhook", text: "Hi",
  })).id;
}

async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   node webhooks ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL node webhooks ${name}: ${e.message}`);
  }
}

await check("fresh secret", async () => {
  const created = ok(await resend.webhooks.create({ endpoint, events: ["email.sent"] }));
  assert(created.signing_secret.startsWith("whsec_"), JSON.stringify(created));
  Object.assign(state, { webhook: created.id, secret: created.signing_secret });
  const emailId = await send();
  const delivery = await waitFor(1);
  const payload = verifyEverywhere(state.secret, delivery);
  assert(payload.type === "email.sent" && payload.data.email_id === emailId, JSON.stringify(payload));
  let refused = false;
  try {
    new Webhook(state.secret).verify(delivery.body.replace("email", "emai1"), delivery.headers);
  } catch {
    refused = true;
  }
  assert(refused, "a tampered body verified");
});

await check("replay", async () => {
  const events = ok(await resend.webhooks.events.list({ webhookId: state.webhook }));
  const first = events.data[events.data.length - 1];
  for (let i = 0; i < 100; i++) {
    const event = ok(await resend.webhooks.events.get({ webhookId: state.webhook, eventId: first.id }));
    if (event.status === "success") break;
    await sleep(50);
  }
  ok(await resend.webhooks.events.replay({ webhookId: state.webhook, eventId: first.id }));
  const original = await waitFor(1);
  const replayed = await waitFor(2);
  assert(replayed.headers["svix-id"] === original.headers["svix-id"], "the replay has another svix-id");
  verifyEverywhere(state.secret, replayed);
});

await check("rotated secret", async () => {
  const old = state.secret;
  const rotated = ok(await resend.webhooks.rotateSigningSecret(state.webhook));
  assert(rotated.signing_secret !== old, "the secret did not change");
  await send();
  const delivery = await waitFor(3);
  assert(delivery.headers["svix-signature"].split(" ").length === 2, delivery.headers["svix-signature"]);
  verifyEverywhere(rotated.signing_secret, delivery);
  verifyEverywhere(old, delivery);
  ok(await resend.webhooks.remove(state.webhook));
});

server.close();
console.log(`node webhooks: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
