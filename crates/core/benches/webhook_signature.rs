//! Cost of signing one webhook delivery (Standard Webhooks, HMAC-SHA256, base64) for the sample payload
//! `benches/webhook-payload.json` (a Resend-style `email.sent` event, 496 bytes).
//!
//! `cargo bench -p opensend-core --bench webhook_signature`

use criterion::{Criterion, criterion_group, criterion_main};
use opensend_core::webhook::{WebhookSecret, message_id, signature_header};
use std::hint::black_box;

fn signing(c: &mut Criterion) {
    let payload = include_bytes!("webhook-payload.json");
    let secret = WebhookSecret::generate().expect("random secret");
    let previous = WebhookSecret::generate().expect("random secret");
    let id = message_id(opensend_core::new_id());
    let timestamp = 1_764_230_400;
    c.bench_function("sign fixture payload (one secret)", |b| {
        b.iter(|| black_box(secret.sign(black_box(&id), timestamp, black_box(payload))))
    });
    c.bench_function("signature header during a rotation (two secrets)", |b| {
        b.iter(|| {
            black_box(signature_header(
                &[&secret, &previous],
                black_box(&id),
                timestamp,
                black_box(payload),
            ))
        })
    });
}

criterion_group!(benches, signing);
criterion_main!(benches);
