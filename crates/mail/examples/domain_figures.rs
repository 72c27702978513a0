//! Figures for `docs/benchmarks.md` (a measurement, not a test): how long a domain's keys take to generate, and
//! the round trip of verifying a domain's records against a DNS server on loopback.
//!
//! `cargo run --release -p opensend-mail --example domain_figures -- [KEYGEN_ROUNDS] [VERIFY_ROUNDS]`

use std::time::{Duration, Instant};

use opensend_core::{DnsLabel, DomainName};
use opensend_mail::dkim;
use opensend_mail::records::{self, BounceMx, DomainRecordsInput, PublishedKey, RecordSettings};
use opensend_mail::{DnsChecker, RecordStatus};

// The test DNS server lives in the test-support crate, which also pulls in the database layer; including its one
// file keeps this example's release build to the mail crate's own dependencies.
#[allow(dead_code)]
#[path = "../../test-support/src/dns.rs"]
mod dns;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn summary(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let total: Duration = samples.iter().sum();
    println!(
        "{label}: n={} mean={:.2?} p50={:.2?} p90={:.2?} max={:.2?}",
        samples.len(),
        total / samples.len() as u32,
        percentile(&samples, 0.5),
        percentile(&samples, 0.9),
        samples[samples.len() - 1]
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let keygen_rounds: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(20);
    let verify_rounds: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(200);

    let (mut rsa, mut ed, mut both) = (Vec::new(), Vec::new(), Vec::new());
    let mut last = None;
    for _ in 0..keygen_rounds {
        let base = dkim::new_selector_base()?;
        let started = Instant::now();
        let r = dkim::generate_rsa(&base)?;
        let rsa_done = Instant::now();
        let e = dkim::generate_ed25519(&base)?;
        let done = Instant::now();
        rsa.push(rsa_done - started);
        ed.push(done - rsa_done);
        both.push(done - started);
        last = Some((r, e));
    }
    summary("keygen RSA-2048", rsa);
    summary("keygen Ed25519", ed);
    summary("keygen domain (RSA-2048 + Ed25519)", both);

    let (rsa_key, ed_key) = last.ok_or("KEYGEN_ROUNDS must be at least 1")?;

    // Signing one message as the delivery worker does (key loaded from PKCS#8 each time, then signed).
    let message = format!(
        "From: a@example.com\r\nTo: b@example.org\r\nSubject: Receipt\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n{}\r\n",
        "<p>Thank you for your order.</p>".repeat(70)
    );
    let signer = |key: &dkim::GeneratedKey| dkim::SigningKey {
        selector: key.selector.clone(),
        algorithm: key.algorithm,
        private_key: key.private_key.clone(),
    };
    for (label, keys) in [
        ("sign RSA-2048", vec![signer(&rsa_key)]),
        ("sign Ed25519", vec![signer(&ed_key)]),
        (
            "sign both (what is sent)",
            vec![signer(&rsa_key), signer(&ed_key)],
        ),
    ] {
        let mut samples = Vec::new();
        for _ in 0..verify_rounds.max(1) {
            let started = Instant::now();
            dkim::sign_message(message.as_bytes(), "example.com", &keys)?;
            samples.push(started.elapsed());
        }
        summary(label, samples);
    }
    let name = DomainName::parse("example.com")?;
    let return_path = DnsLabel::parse("send")?;
    let tracking = DnsLabel::parse("links")?;
    let expected = records::expected_records(
        &DomainRecordsInput {
            name: &name,
            return_path: &return_path,
            tracking_subdomain: Some(&tracking),
            region: "us-east-1",
            keys: [&rsa_key, &ed_key]
                .iter()
                .map(|k| PublishedKey {
                    algorithm: k.algorithm,
                    selector: &k.selector,
                    public_key: &k.public_key,
                    required: true,
                })
                .collect(),
        },
        &RecordSettings {
            spf_mechanisms: "include:amazonses.com".into(),
            bounce_mx: BounceMx::SesRegion,
            dmarc_rua: None,
            tracking_target: "track.example.net".into(),
        },
    );
    let server = dns::TestDns::start().await;
    for record in &expected {
        match record.record_type {
            records::RecordType::Txt => server.set_txt(&record.name, &[&record.value]),
            records::RecordType::Mx => server.set_mx(&record.name, 10, &record.value),
            records::RecordType::Cname => server.set_cname(&record.name, &record.value),
        }
    }
    let checker = DnsChecker::new(Some(server.addr()), Duration::from_secs(2))?;
    let mut rounds = Vec::with_capacity(verify_rounds);
    for _ in 0..verify_rounds {
        let started = Instant::now();
        let results = checker.check_all(&expected).await;
        rounds.push(started.elapsed());
        if results.iter().any(|r| r.status != RecordStatus::Verified) {
            return Err(format!("unexpected result: {results:?}").into());
        }
    }
    summary(
        &format!(
            "verify domain ({} records, concurrent lookups, loopback DNS)",
            expected.len()
        ),
        rounds,
    );
    Ok(())
}
