//! Record checks against a DNS server on loopback that serves right, wrong, missing, failing and silent answers,
//! and DKIM keys whose published record verifies a signature made with the private key.

use std::time::Duration;

use hickory_proto::rr::RecordType as WireType;
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;
use mail_auth::hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator};
use opensend_mail::dkim::{self, DkimAlgorithm};
use opensend_mail::records::{RecordPurpose, RecordType};
use opensend_mail::{DnsChecker, ExpectedRecord, RecordStatus};
use opensend_test_support::dns::{Answer, TestDns};

fn record(
    purpose: RecordPurpose,
    record_type: RecordType,
    name: &str,
    value: &str,
) -> ExpectedRecord {
    ExpectedRecord {
        purpose,
        record_type,
        name: name.into(),
        value: value.into(),
        priority: None,
        required: true,
        selector: None,
    }
}

#[tokio::test]
async fn each_kind_of_answer_gives_its_status() {
    let dns = TestDns::start().await;
    let checker = DnsChecker::new(Some(dns.addr()), Duration::from_millis(500)).unwrap();
    let spf = record(
        RecordPurpose::Spf,
        RecordType::Txt,
        "send.example.com",
        "v=spf1 include:amazonses.com ~all",
    );
    let mx = record(
        RecordPurpose::Spf,
        RecordType::Mx,
        "send.example.com",
        "feedback-smtp.us-east-1.amazonses.com",
    );
    let cname = record(
        RecordPurpose::Tracking,
        RecordType::Cname,
        "links.example.com",
        "track.example.net",
    );

    // Nothing published: NXDOMAIN.
    let results = checker
        .check_all(&[spf.clone(), mx.clone(), cname.clone()])
        .await;
    assert!(
        results.iter().all(|r| r.status == RecordStatus::Pending),
        "{results:?}"
    );

    // Right values.
    dns.set_txt("send.example.com", &["v=spf1 include:amazonses.com ~all"]);
    dns.set_mx(
        "send.example.com",
        10,
        "feedback-smtp.us-east-1.amazonses.com",
    );
    dns.set_cname("links.example.com", "track.example.net");
    let results = checker
        .check_all(&[spf.clone(), mx.clone(), cname.clone()])
        .await;
    assert!(
        results.iter().all(|r| r.status == RecordStatus::Verified),
        "{results:?}"
    );

    // Wrong values: failed, and the check says what it found.
    dns.set_txt(
        "send.example.com",
        &["v=spf1 include:elsewhere.example ~all"],
    );
    dns.set_mx("send.example.com", 10, "mx.elsewhere.example");
    let results = checker.check_all(&[spf.clone(), mx.clone()]).await;
    assert_eq!(results[0].status, RecordStatus::Failed);
    assert_eq!(
        results[0].detail.as_deref(),
        Some("found: v=spf1 include:elsewhere.example ~all")
    );
    assert_eq!(results[1].status, RecordStatus::Failed);
    assert_eq!(
        results[1].detail.as_deref(),
        Some("found: mx.elsewhere.example")
    );

    // The name exists but not with this type: still pending.
    dns.remove("send.example.com", WireType::MX);
    assert_eq!(checker.check(&mx).await.status, RecordStatus::Pending);

    // SERVFAIL and silence are temporary failures, not verdicts on the record.
    dns.set("send.example.com", WireType::TXT, Answer::ServFail);
    assert_eq!(
        checker.check(&spf).await.status,
        RecordStatus::TemporaryFailure
    );
    dns.set("send.example.com", WireType::TXT, Answer::Silence);
    let timed_out = checker.check(&spf).await;
    assert_eq!(
        timed_out.status,
        RecordStatus::TemporaryFailure,
        "{timed_out:?}"
    );
}

const MESSAGE: &str = "From: Alice <alice@example.com>\r\nTo: bob@example.net\r\nSubject: Hello\r\nDate: Fri, 27 Nov 2026 09:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n\r\nHi Bob.\r\n";

#[tokio::test]
async fn published_keys_verify_signatures_made_with_the_private_keys() {
    let dns = TestDns::start().await;
    let checker = DnsChecker::new(Some(dns.addr()), Duration::from_secs(2)).unwrap();
    let base = dkim::new_selector_base().unwrap();
    let [rsa, ed] = dkim::generate_keys(&base).unwrap();
    let mut expected = Vec::new();
    for key in [&rsa, &ed] {
        let name = format!("{}._domainkey.example.com", key.selector);
        let value = dkim::record_value(key.algorithm, &key.public_key);
        // The RSA record is longer than one TXT string: it is served split, as published.
        if key.algorithm == DkimAlgorithm::RsaSha256 {
            assert!(value.len() > 255);
        }
        dns.set_txt(&name, &[&value]);
        expected.push(record(RecordPurpose::Dkim, RecordType::Txt, &name, &value));
    }
    for check in checker.check_all(&expected).await {
        assert_eq!(check.status, RecordStatus::Verified, "{check:?}");
    }

    let rsa_signature = DkimSigner::from_key(dkim::load_rsa(&rsa.private_key).unwrap())
        .domain("example.com")
        .selector(rsa.selector.as_str())
        .headers(["From", "To", "Subject", "Date", "Message-ID"])
        .sign(MESSAGE.as_bytes())
        .unwrap();
    let ed_signature = DkimSigner::from_key(dkim::load_ed25519(&ed.private_key).unwrap())
        .domain("example.com")
        .selector(ed.selector.as_str())
        .headers(["From", "To", "Subject", "Date", "Message-ID"])
        .sign(MESSAGE.as_bytes())
        .unwrap();
    let signed = format!(
        "{}{}{}",
        rsa_signature.to_header(),
        ed_signature.to_header(),
        MESSAGE
    );

    let authenticator = authenticator_for(&dns);
    let message = AuthenticatedMessage::parse(signed.as_bytes()).unwrap();
    let results = authenticator.verify_dkim(&message).await;
    assert_eq!(results.len(), 2);
    for result in &results {
        assert_eq!(result.result(), &DkimResult::Pass, "{result:?}");
    }

    // A tampered body fails: the pass above is a real verification.
    let tampered = signed.replace("Hi Bob.", "Hi Eve.");
    let message = AuthenticatedMessage::parse(tampered.as_bytes()).unwrap();
    let results = authenticator.verify_dkim(&message).await;
    assert!(
        results.iter().all(|r| r.result() != &DkimResult::Pass),
        "{results:?}"
    );
}

fn authenticator_for(dns: &TestDns) -> MessageAuthenticator {
    let mut ns = NameServerConfig::udp_and_tcp(dns.addr().ip());
    for connection in &mut ns.connections {
        connection.port = dns.addr().port();
    }
    MessageAuthenticator::new(
        ResolverConfig::from_parts(None, vec![], vec![ns]),
        ResolverOpts::default(),
    )
    .unwrap()
}
