//! Cost of DKIM signing on the delivery path:
//!
//!     cargo bench -p opensend-mail --bench dkim
//!
//! One ~2.3 KB HTML message signed the way the delivery worker signs it (each stored PKCS#8 key loaded,
//! then relaxed/relaxed over the signed headers): RSA-2048 alone, Ed25519 alone, and both (what is sent);
//! and loading the RSA key alone, for scale.

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use opensend_mail::dkim::{self, GeneratedKey, SigningKey};

fn signer(key: &GeneratedKey) -> SigningKey {
    SigningKey {
        selector: key.selector.clone(),
        algorithm: key.algorithm,
        private_key: key.private_key.clone(),
    }
}

fn bench_sign(c: &mut Criterion) {
    let [rsa, ed] = dkim::generate_keys("osbench001").expect("keys");
    let message = format!(
        "From: Acme <hello@acme.test>\r\nTo: r1@example.com\r\nSubject: Receipt\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@acme.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>{}</p>\r\n",
        "x".repeat(2000)
    );
    let mut group = c.benchmark_group("dkim");
    for (name, keys) in [
        ("sign_rsa2048", vec![signer(&rsa)]),
        ("sign_ed25519", vec![signer(&ed)]),
        ("sign_both", vec![signer(&rsa), signer(&ed)]),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                dkim::sign_message(black_box(message.as_bytes()), "acme.test", &keys)
                    .expect("signs")
            })
        });
    }
    group.bench_function("load_rsa2048", |b| {
        b.iter(|| dkim::load_rsa(black_box(&rsa.private_key)).expect("loads"))
    });
    group.finish();
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    bench_sign(&mut c);
    c.final_summary();
}
