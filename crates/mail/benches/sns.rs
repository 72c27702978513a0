//! Cost of the SES event ingest path's CPU work:
//!
//!     cargo bench -p opensend-mail --bench sns
//!
//! (a) parsing the shared fixture's SES event (the `Message` of the notification) and the SNS envelope around
//! it; (b) verifying a signed SNS notification end to end with its certificate already cached (parse, topic,
//! age and URL checks, string to sign, RSA-2048 PKCS#1 v1.5 with SHA-1 and with SHA-256). The certificate is
//! served once from loopback to fill the cache; the measured iterations make no request.

#[path = "../tests/sns_support/mod.rs"]
mod sns_support;

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use opensend_mail::ses_events::parse_ses_event;
use opensend_mail::sns::{SnsMessage, SnsSettings, SnsVerifier};
use rsa::Pkcs1v15Sign;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sns_support::{FakeSns, KEY, TOPIC, notification};

const FIXTURE: &str = include_str!("../tests/fixtures/ses-event.json");

fn bench_parse(c: &mut Criterion) {
    let envelope: Value = serde_json::from_str(FIXTURE).expect("fixture");
    let message = envelope["Message"].as_str().expect("Message").to_owned();
    let mut group = c.benchmark_group("ses_event");
    group.bench_function("parse_fixture_event", |b| {
        b.iter(|| parse_ses_event(black_box(&message)).expect("parses"))
    });
    group.bench_function("parse_fixture_sns_envelope", |b| {
        b.iter(|| SnsMessage::parse(black_box(FIXTURE.as_bytes())).expect("parses"))
    });
    group.finish();
}

fn bench_verify(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sns = runtime.block_on(FakeSns::start(KEY.cert_pem.clone()));
    let verifier = SnsVerifier::new(SnsSettings {
        test_cert_prefix: Some(sns.prefix.clone()),
        ..SnsSettings::new(vec![TOPIC.to_owned()])
    })
    .expect("verifier");
    let envelope: Value = serde_json::from_str(FIXTURE).expect("fixture");
    let ses_message = envelope["Message"].as_str().expect("Message");

    let mut group = c.benchmark_group("sns_verify_cached_rsa2048");
    for (name, version) in [("sha1_v1", "1"), ("sha256_v2", "2")] {
        let mut message = notification(&sns.url("cert.pem"), ses_message);
        KEY.sign(&mut message, version);
        let body = serde_json::to_vec(&message).expect("json");
        runtime.block_on(verifier.verify(&body)).expect("verifies");
        group.bench_function(name, |b| {
            b.to_async(&runtime)
                .iter(|| async { verifier.verify(black_box(&body)).await.expect("verifies") })
        });
    }
    // The RSA operation alone, for scale: the rest of the figures above is parsing and checks.
    let public = KEY.key.to_public_key();
    let text = b"Message\nm\nMessageId\nid\nTimestamp\nt\nTopicArn\narn\nType\nNotification\n";
    let signature = KEY
        .key
        .sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(text))
        .expect("signature");
    group.bench_function("rsa_pkcs1v15_sha256_only", |b| {
        b.iter(|| {
            public
                .verify(
                    Pkcs1v15Sign::new::<Sha256>(),
                    &Sha256::digest(black_box(text)),
                    black_box(&signature),
                )
                .expect("verifies")
        })
    });
    group.finish();
    assert_eq!(
        sns.cert_hits(),
        1,
        "every measured verification hit the cache"
    );
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    bench_parse(&mut c);
    bench_verify(&mut c);
    c.final_summary();
}
