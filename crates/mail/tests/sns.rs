//! SNS verification end to end: messages signed with our own RSA key, the certificate served over loopback
//! under the test prefix, every refusal checked by its variant.

mod sns_support;

use std::process::Command;
use std::time::Duration;

use chrono::Utc;
use opensend_mail::sns::{
    SnsConfirmError, SnsMessage, SnsMessageType, SnsRefusal, SnsSettings, SnsVerifier,
};
use serde_json::Value;
use sns_support::{FakeSns, KEY, TOPIC, TestKey, confirmation, notification, timestamp};

const SES_EVENT: &str = include_str!("fixtures/ses-event.json");

fn ses_message() -> String {
    let envelope: Value = serde_json::from_str(SES_EVENT).expect("fixture");
    envelope["Message"].as_str().expect("Message").to_owned()
}

fn verifier(sns: &FakeSns) -> SnsVerifier {
    SnsVerifier::new(SnsSettings {
        topic_arns: vec![TOPIC.to_owned()],
        max_age: Duration::from_secs(3600),
        test_cert_prefix: Some(sns.prefix.clone()),
    })
    .expect("verifier")
}

async fn setup() -> (FakeSns, SnsVerifier) {
    let sns = FakeSns::start(KEY.cert_pem.clone()).await;
    let verifier = verifier(&sns);
    (sns, verifier)
}

fn body(message: &Value) -> Vec<u8> {
    serde_json::to_vec(message).expect("json")
}

fn signed(mut message: Value, version: &str) -> Value {
    KEY.sign(&mut message, version);
    message
}

#[tokio::test]
async fn signed_notifications_verify_with_sha1_and_sha256() {
    let (sns, verifier) = setup().await;
    for version in ["1", "2"] {
        let message = signed(notification(&sns.url("cert.pem"), &ses_message()), version);
        let verified = verifier
            .verify(&body(&message))
            .await
            .unwrap_or_else(|e| panic!("version {version}: {e}"));
        assert_eq!(verified.message_type, SnsMessageType::Notification);
        assert_eq!(verified.topic_arn, TOPIC);
        assert_eq!(verified.message, ses_message());
        assert_eq!(
            verified.subject.as_deref(),
            Some("Amazon SES Email Event Notification")
        );
        assert_eq!(verified.signature_version.as_str(), version);
    }
}

#[tokio::test]
async fn notification_without_subject_verifies() {
    let (sns, verifier) = setup().await;
    let mut message = notification(&sns.url("cert.pem"), "plain text");
    message.as_object_mut().expect("object").remove("Subject");
    let message = signed(message, "2");
    let verified = verifier.verify(&body(&message)).await.expect("verifies");
    assert_eq!(verified.subject, None);
}

#[tokio::test]
async fn confirmations_verify_and_subscription_is_confirmed() {
    let (sns, verifier) = setup().await;
    for version in ["1", "2"] {
        let message = signed(
            confirmation(
                "SubscriptionConfirmation",
                &sns.url("cert.pem"),
                &sns.url("confirm?Action=ConfirmSubscription&Token=abc"),
            ),
            version,
        );
        let verified = verifier
            .verify_with_type_header(&body(&message), Some("SubscriptionConfirmation"))
            .await
            .unwrap_or_else(|e| panic!("version {version}: {e}"));
        assert_eq!(
            verified.message_type,
            SnsMessageType::SubscriptionConfirmation
        );
        assert!(verifier.subscribe_url_allowed(verified.subscribe_url.as_deref().unwrap()));
        verifier
            .confirm_subscription(&verified)
            .await
            .expect("confirmed");
    }
    assert_eq!(sns.confirm_hits(), 2);

    let message = signed(
        confirmation(
            "UnsubscribeConfirmation",
            &sns.url("cert.pem"),
            &sns.url("confirm?Action=ConfirmSubscription&Token=abc"),
        ),
        "1",
    );
    let verified = verifier.verify(&body(&message)).await.expect("verifies");
    assert_eq!(
        verified.message_type,
        SnsMessageType::UnsubscribeConfirmation
    );
    assert_eq!(
        verifier.confirm_subscription(&verified).await,
        Err(SnsConfirmError::NotAConfirmation)
    );
    assert_eq!(sns.confirm_hits(), 2);
}

#[tokio::test]
async fn a_changed_message_byte_breaks_the_signature() {
    let (sns, verifier) = setup().await;
    for version in ["1", "2"] {
        let mut message = signed(notification(&sns.url("cert.pem"), &ses_message()), version);
        let mut text = message["Message"].as_str().unwrap().to_owned();
        text.replace_range(20..21, "X");
        message["Message"] = text.into();
        assert_eq!(
            verifier.verify(&body(&message)).await,
            Err(SnsRefusal::BadSignature),
            "version {version}"
        );
    }
    // Every other signed field is covered too.
    for (field, value) in [
        ("MessageId", "other-id"),
        ("Subject", "Other"),
        ("Type", "SubscriptionConfirmation"),
    ] {
        let mut message = signed(notification(&sns.url("cert.pem"), "m"), "2");
        message[field] = value.into();
        if field == "Type" {
            message["SubscribeURL"] = sns.url("confirm").into();
            message["Token"] = "t".into();
        }
        assert_eq!(
            verifier.verify(&body(&message)).await,
            Err(SnsRefusal::BadSignature),
            "{field}"
        );
    }
    let mut message = signed(notification(&sns.url("cert.pem"), "m"), "2");
    message.as_object_mut().unwrap().remove("Subject");
    assert_eq!(
        verifier.verify(&body(&message)).await,
        Err(SnsRefusal::BadSignature),
        "dropping the subject"
    );
}

#[tokio::test]
async fn a_signature_of_another_digest_or_key_is_refused() {
    let (sns, verifier) = setup().await;
    // Signed with SHA-256 but claiming version 1.
    let mut message = signed(notification(&sns.url("cert.pem"), "m"), "2");
    message["SignatureVersion"] = "1".into();
    assert_eq!(
        verifier.verify(&body(&message)).await,
        Err(SnsRefusal::BadSignature)
    );
    // Signed by a key that is not the certificate's.
    let other = TestKey::generate();
    let mut message = notification(&sns.url("cert.pem"), "m");
    other.sign(&mut message, "2");
    assert_eq!(
        verifier.verify(&body(&message)).await,
        Err(SnsRefusal::BadSignature)
    );
    // Not base64 at all.
    let mut message = signed(notification(&sns.url("cert.pem"), "m"), "2");
    message["Signature"] = "not base64!".into();
    assert_eq!(
        verifier.verify(&body(&message)).await,
        Err(SnsRefusal::BadSignature)
    );
    // Version 3 does not exist.
    let mut message = signed(notification(&sns.url("cert.pem"), "m"), "2");
    message["SignatureVersion"] = "3".into();
    assert_eq!(
        verifier.verify(&body(&message)).await,
        Err(SnsRefusal::UnsupportedSignatureVersion("3".to_owned()))
    );
}

#[tokio::test]
async fn other_topics_are_refused_without_fetching() {
    let (sns, verifier) = setup().await;
    let mut message = notification(&sns.url("cert.pem"), "m");
    message["TopicArn"] = "arn:aws:sns:us-east-1:999999999999:Elsewhere".into();
    let message = signed(message, "1");
    assert!(matches!(
        verifier.verify(&body(&message)).await,
        Err(SnsRefusal::TopicNotAllowed(_))
    ));

    let nobody = SnsVerifier::new(SnsSettings {
        topic_arns: vec![],
        ..verifier.settings().clone()
    })
    .unwrap();
    let message = signed(notification(&sns.url("cert.pem"), "m"), "1");
    let refusal = nobody.verify(&body(&message)).await.unwrap_err();
    assert!(matches!(refusal, SnsRefusal::TopicNotAllowed(_)));
    assert_eq!(refusal.http_status(), 403);
    assert!(!refusal.is_temporary());
    assert_eq!(sns.cert_hits(), 0);
}

#[tokio::test]
async fn old_and_future_messages_are_refused() {
    let (sns, verifier) = setup().await;
    let mut message = notification(&sns.url("cert.pem"), "m");
    message["Timestamp"] = timestamp(Utc::now() - chrono::Duration::hours(2)).into();
    let message = signed(message, "2");
    assert!(matches!(
        verifier.verify(&body(&message)).await,
        Err(SnsRefusal::TooOld {
            max_age_seconds: 3600,
            ..
        })
    ));

    let mut message = notification(&sns.url("cert.pem"), "m");
    message["Timestamp"] = timestamp(Utc::now() + chrono::Duration::minutes(10)).into();
    let message = signed(message, "2");
    assert!(matches!(
        verifier.verify(&body(&message)).await,
        Err(SnsRefusal::FromTheFuture { .. })
    ));

    // A little skew either way is fine.
    for offset in [-59, 2] {
        let mut message = notification(&sns.url("cert.pem"), "m");
        message["Timestamp"] = timestamp(Utc::now() + chrono::Duration::minutes(offset)).into();
        let message = signed(message, "2");
        verifier
            .verify(&body(&message))
            .await
            .expect("recent enough");
    }

    let mut message = notification(&sns.url("cert.pem"), "m");
    message["Timestamp"] = "yesterday".into();
    let message = signed(message, "2");
    assert_eq!(
        verifier.verify(&body(&message)).await,
        Err(SnsRefusal::BadTimestamp("yesterday".to_owned()))
    );
}

#[tokio::test]
async fn certificate_urls_off_policy_are_refused_without_fetching() {
    let (sns, verifier) = setup().await;
    let port = sns.prefix.trim_end_matches('/').rsplit(':').next().unwrap();
    for url in [
        // Another host (same port, another loopback address).
        format!("http://127.0.0.2:{port}/cert.pem"),
        "https://evil.example/SimpleNotificationService-abc.pem".to_owned(),
        "https://sns.us-east-1.amazonaws.com.evil.example/x.pem".to_owned(),
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem".to_owned(),
    ] {
        let message = signed(notification(&url, "m"), "1");
        assert_eq!(
            verifier.verify(&body(&message)).await,
            Err(SnsRefusal::CertUrlNotAllowed(url.clone())),
            "{url}"
        );
    }

    // Without the test prefix, the loopback http:// URL is not an SNS URL.
    let production = SnsVerifier::new(SnsSettings::new(vec![TOPIC.to_owned()])).unwrap();
    let message = signed(notification(&sns.url("cert.pem"), "m"), "1");
    let refusal = production.verify(&body(&message)).await.unwrap_err();
    assert!(matches!(refusal, SnsRefusal::CertUrlNotAllowed(_)));
    assert_eq!(refusal.http_status(), 403);
    assert_eq!(sns.cert_hits(), 0);
}

#[tokio::test]
async fn subscribe_urls_off_host_are_refused() {
    let (sns, verifier) = setup().await;
    for url in [
        "https://evil.example/?Action=ConfirmSubscription&Token=abc",
        "http://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription",
        "http://169.254.169.254/latest/meta-data/",
    ] {
        let message = signed(
            confirmation("SubscriptionConfirmation", &sns.url("cert.pem"), url),
            "1",
        );
        assert_eq!(
            verifier.verify(&body(&message)).await,
            Err(SnsRefusal::SubscribeUrlNotAllowed(url.to_owned())),
            "{url}"
        );
        assert!(!verifier.subscribe_url_allowed(url));
    }
    assert!(verifier.subscribe_url_allowed(
        "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=abc"
    ));
    assert_eq!(sns.confirm_hits(), 0);
}

#[tokio::test]
async fn a_message_type_header_must_match() {
    let (sns, verifier) = setup().await;
    let message = signed(notification(&sns.url("cert.pem"), "m"), "1");
    assert!(matches!(
        verifier
            .verify_with_type_header(&body(&message), Some("SubscriptionConfirmation"))
            .await,
        Err(SnsRefusal::TypeHeaderMismatch { .. })
    ));
    verifier
        .verify_with_type_header(&body(&message), Some("Notification"))
        .await
        .expect("matching header");
}

#[tokio::test]
async fn the_certificate_is_fetched_once_and_then_cached() {
    let (sns, verifier) = setup().await;
    for version in ["1", "2", "1"] {
        let message = signed(notification(&sns.url("cert.pem"), "m"), version);
        verifier.verify(&body(&message)).await.expect("verifies");
    }
    assert_eq!(sns.cert_hits(), 1);
    // Clones share the cache.
    let message = signed(notification(&sns.url("cert.pem"), "m"), "2");
    verifier
        .clone()
        .verify(&body(&message))
        .await
        .expect("verifies");
    assert_eq!(sns.cert_hits(), 1);
    // A forged message costs no fetch once the certificate is cached.
    let mut forged = message.clone();
    forged["Message"] = "forged".into();
    assert_eq!(
        verifier.verify(&body(&forged)).await,
        Err(SnsRefusal::BadSignature)
    );
    assert_eq!(sns.cert_hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_share_one_fetch() {
    let (sns, verifier) = setup().await;
    let message = body(&signed(notification(&sns.url("slow.pem"), "m"), "2"));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (verifier, message) = (verifier.clone(), message.clone());
        tasks.push(tokio::spawn(async move { verifier.verify(&message).await }));
    }
    for task in tasks {
        task.await.expect("task").expect("verifies");
    }
    assert_eq!(sns.cert_hits(), 1);
}

#[tokio::test]
async fn certificate_fetch_failures_say_whose_fault_they_are() {
    let (sns, verifier) = setup().await;
    let refusal = |path: &str| {
        let message = body(&signed(notification(&sns.url(path), "m"), "1"));
        let verifier = verifier.clone();
        async move { verifier.verify(&message).await.unwrap_err() }
    };

    let unavailable = refusal("unavailable.pem").await;
    assert!(
        matches!(unavailable, SnsRefusal::CertUnavailable(_)),
        "{unavailable}"
    );
    assert!(unavailable.is_temporary());
    assert_eq!(unavailable.http_status(), 503);

    for path in ["missing.pem", "big.pem", "moved.pem", "not-a-cert.pem"] {
        let refusal = refusal(path).await;
        assert!(
            matches!(refusal, SnsRefusal::BadCertificate(_)),
            "{path}: {refusal}"
        );
        assert!(!refusal.is_temporary());
        assert_eq!(refusal.http_status(), 403);
    }
    // The redirect was not followed.
    assert_eq!(sns.cert_hits(), 0);
    // Failures are not cached: once the URL serves a certificate, it works.
    let ok = body(&signed(notification(&sns.url("cert.pem"), "m"), "1"));
    verifier.verify(&ok).await.expect("verifies");

    // Nothing listening: temporary.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let prefix = format!("http://127.0.0.1:{closed}/");
    let lonely = SnsVerifier::new(SnsSettings {
        test_cert_prefix: Some(prefix.clone()),
        ..SnsSettings::new(vec![TOPIC.to_owned()])
    })
    .unwrap();
    let message = body(&signed(
        notification(&format!("{prefix}cert.pem"), "m"),
        "1",
    ));
    let refusal = lonely.verify(&message).await.unwrap_err();
    assert!(
        matches!(refusal, SnsRefusal::CertUnavailable(_)),
        "{refusal}"
    );
}

#[tokio::test]
async fn malformed_bodies_are_refused_without_panicking() {
    let (sns, verifier) = setup().await;
    let valid = body(&signed(
        notification(&sns.url("cert.pem"), &ses_message()),
        "1",
    ));

    // Every truncation of a valid body.
    for end in 0..valid.len() {
        let refusal = verifier.verify(&valid[..end]).await.unwrap_err();
        assert_eq!(refusal.http_status(), 400, "cut at {end}: {refusal}");
    }

    let huge = [
        b"{\"Type\":\"Notification\",\"Message\":\"".as_slice(),
        &[b'a'; 300 * 1024],
        b"\"}",
    ]
    .concat();
    let mut not_utf8 = valid.clone();
    let at = not_utf8
        .windows(4)
        .position(|w| w == b"bounce")
        .unwrap_or(40);
    not_utf8[at] = 0xff;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("huge", huge, "body_too_large"),
        ("not UTF-8", not_utf8, "malformed"),
        (
            "leading BOM",
            [b"\xef\xbb\xbf".as_slice(), &valid].concat(),
            "malformed",
        ),
        ("array", b"[1,2,3]".to_vec(), "malformed"),
        ("string", b"\"Notification\"".to_vec(), "malformed"),
        ("null", b"null".to_vec(), "malformed"),
        ("deep nesting", vec![b'['; 100_000], "malformed"),
        ("type as number", br#"{"Type":1}"#.to_vec(), "malformed"),
        (
            "message as object",
            br#"{"Type":"Notification","Message":{}}"#.to_vec(),
            "malformed",
        ),
        (
            "unknown type",
            br#"{"Type":"Bogus"}"#.to_vec(),
            "unknown_type",
        ),
        ("no type", br#"{"Message":"x"}"#.to_vec(), "malformed"),
        (
            "trailing garbage",
            [valid.as_slice(), b"{}"].concat(),
            "malformed",
        ),
    ];
    for (name, body, code) in cases {
        let refusal = verifier.verify(&body).await.unwrap_err();
        assert_eq!(refusal.code(), code, "{name}: {refusal}");
        assert!(!refusal.is_temporary());
    }

    // Each field given the wrong JSON type.
    let message: Value = serde_json::from_slice(&valid).unwrap();
    for field in message.as_object().unwrap().keys() {
        for replacement in [
            Value::from(1),
            Value::from(true),
            serde_json::json!([]),
            serde_json::json!({}),
        ] {
            let mut broken = message.clone();
            broken[field] = replacement;
            let refusal = verifier.verify(&body(&broken)).await.unwrap_err();
            assert_eq!(refusal.code(), "malformed", "{field}: {refusal}");
        }
    }
    assert_eq!(sns.cert_hits(), 0);
}

#[tokio::test]
async fn the_fixture_envelope_parses_but_is_not_verifiable() {
    // Its timestamp is long past (and its signature a placeholder): refused before any fetch.
    let production = SnsVerifier::new(SnsSettings::new(vec![TOPIC.to_owned()])).unwrap();
    let refusal = production.verify(SES_EVENT.as_bytes()).await.unwrap_err();
    assert!(
        matches!(
            refusal,
            SnsRefusal::TooOld { .. } | SnsRefusal::FromTheFuture { .. }
        ),
        "{refusal}"
    );

    let message = SnsMessage::parse(SES_EVENT.as_bytes()).expect("fixture parses");
    assert_eq!(message.message_type, SnsMessageType::Notification);
    assert_eq!(message.topic_arn, TOPIC);
    assert_eq!(message.timestamp, "2026-05-29T10:00:01.000Z");
    assert!(
        message
            .string_to_sign()
            .starts_with("Message\n{\"notificationType\":\"Bounce\"")
    );
    assert!(
        message
            .string_to_sign()
            .ends_with(&format!("TopicArn\n{TOPIC}\nType\nNotification\n"))
    );
    assert_eq!(
        message.string_to_sign(),
        sns_support::string_to_sign(&serde_json::from_str(SES_EVENT).unwrap())
    );
}

/// The signature checked against an implementation we did not write: OpenSSL makes the key and certificate
/// and signs the string to sign; skipped where the `openssl` command is missing.
#[tokio::test]
async fn signatures_made_by_openssl_verify() {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("openssl not found: skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    let cert = dir.path().join("cert.pem");
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=sns.test",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl req");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );

    let sns = FakeSns::start(std::fs::read_to_string(&cert).unwrap()).await;
    let verifier = verifier(&sns);
    for (version, digest) in [("1", "-sha1"), ("2", "-sha256")] {
        let mut message = notification(&sns.url("cert.pem"), &ses_message());
        message["SignatureVersion"] = version.into();
        let text = dir.path().join("text");
        std::fs::write(&text, sns_support::string_to_sign(&message)).unwrap();
        let signed = Command::new("openssl")
            .args(["dgst", digest, "-sign"])
            .arg(&key)
            .arg(&text)
            .output()
            .expect("openssl dgst");
        assert!(signed.status.success());
        use base64::Engine;
        message["Signature"] = base64::engine::general_purpose::STANDARD
            .encode(&signed.stdout)
            .into();
        verifier
            .verify(&body(&message))
            .await
            .unwrap_or_else(|e| panic!("version {version}: {e}"));
    }
}
