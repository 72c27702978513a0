//! What the SNS tests and bench need from a fake SNS: an RSA key with a self-signed certificate, signed
//! messages (the string to sign is built here from AWS's documentation, independently of the library), and a
//! loopback HTTP server that serves the certificate and counts requests.

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use rsa::pkcs1v15::SigningKey;
use rsa::rand_core::OsRng;
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::der::EncodePem;
use x509_cert::der::pem::LineEnding;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::Validity;

pub const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:OpenSendSESEvents";

/// An RSA-2048 key and a self-signed certificate for it.
pub struct TestKey {
    pub key: RsaPrivateKey,
    pub cert_pem: String,
}

impl TestKey {
    pub fn generate() -> TestKey {
        let key = RsaPrivateKey::new(&mut OsRng, 2048).expect("RSA key");
        let signer = SigningKey::<Sha256>::new(key.clone());
        let spki = SubjectPublicKeyInfoOwned::from_key(key.to_public_key()).expect("spki");
        let subject: Name = "CN=sns.us-east-1.amazonaws.com".parse().expect("name");
        let cert = CertificateBuilder::new(
            Profile::Root,
            SerialNumber::from(1u32),
            Validity::from_now(Duration::from_secs(86_400)).expect("validity"),
            subject,
            spki,
            &signer,
        )
        .expect("builder")
        .build::<rsa::pkcs1v15::Signature>()
        .expect("certificate");
        let cert_pem = cert.to_pem(LineEnding::LF).expect("pem");
        TestKey { key, cert_pem }
    }

    /// Sets `Signature` (and `SignatureVersion`) of `message` for its current fields.
    pub fn sign(&self, message: &mut Value, version: &str) {
        message["SignatureVersion"] = version.into();
        let text = string_to_sign(message);
        let signature = match version {
            "1" => self.key.sign(
                Pkcs1v15Sign::new::<sha1::Sha1>(),
                &sha1::Sha1::digest(text.as_bytes()),
            ),
            _ => self.key.sign(
                Pkcs1v15Sign::new::<Sha256>(),
                &Sha256::digest(text.as_bytes()),
            ),
        }
        .expect("signature");
        message["Signature"] = BASE64.encode(signature).into();
    }
}

/// The key most tests sign with (made once per test binary: RSA generation takes a while).
pub static KEY: LazyLock<TestKey> = LazyLock::new(TestKey::generate);

/// AWS's documented string to sign, from the JSON message.
pub fn string_to_sign(message: &Value) -> String {
    let fields: &[&str] = if message["Type"] == "Notification" {
        &[
            "Message",
            "MessageId",
            "Subject",
            "Timestamp",
            "TopicArn",
            "Type",
        ]
    } else {
        &[
            "Message",
            "MessageId",
            "SubscribeURL",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type",
        ]
    };
    let mut out = String::new();
    for field in fields {
        if let Some(value) = message.get(*field).and_then(Value::as_str) {
            out.push_str(&format!("{field}\n{value}\n"));
        }
    }
    out
}

pub fn timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// An unsigned notification from [`TOPIC`] carrying `message`, its certificate at `cert_url`.
pub fn notification(cert_url: &str, message: &str) -> Value {
    json!({
        "Type": "Notification",
        "MessageId": "a6c4e2f0-1b2a-4c3d-8e9f-0a1b2c3d4e5f",
        "TopicArn": TOPIC,
        "Subject": "Amazon SES Email Event Notification",
        "Message": message,
        "Timestamp": timestamp(Utc::now()),
        "SignatureVersion": "1",
        "Signature": "",
        "SigningCertURL": cert_url,
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:us-east-1:123456789012:OpenSendSESEvents:abc",
    })
}

/// An unsigned confirmation (`SubscriptionConfirmation` or `UnsubscribeConfirmation`).
pub fn confirmation(kind: &str, cert_url: &str, subscribe_url: &str) -> Value {
    json!({
        "Type": kind,
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a747ba6f3beb71854e285d6ad02428b09ceece29417f1f02d609c582afbacc99c583a916b9981dd2728f4ae6fdb82efd087cc3b7849e05798d2d2785c03b0879594eeac82c01f235d0e717736",
        "TopicArn": TOPIC,
        "Message": "You have chosen to subscribe to the topic arn:aws:sns:us-east-1:123456789012:OpenSendSESEvents.\nTo confirm the subscription, visit the SubscribeURL included in this message.",
        "SubscribeURL": subscribe_url,
        "Timestamp": timestamp(Utc::now()),
        "SignatureVersion": "1",
        "Signature": "",
        "SigningCertURL": cert_url,
    })
}

/// A loopback HTTP server playing SNS: `/cert.pem` (the certificate, counted), `/slow.pem` (the same after
/// 300 ms, counted), `/missing.pem` (404), `/unavailable.pem` (503), `/big.pem` (20 KiB),
/// `/moved.pem` (302 to `/cert.pem`), `/not-a-cert.pem`, and `/confirm` (counted).
pub struct FakeSns {
    pub prefix: String,
    pub cert_hits: Arc<AtomicUsize>,
    pub confirm_hits: Arc<AtomicUsize>,
}

impl FakeSns {
    pub async fn start(cert_pem: String) -> FakeSns {
        let cert_hits = Arc::new(AtomicUsize::new(0));
        let confirm_hits = Arc::new(AtomicUsize::new(0));
        let pem = Arc::new(cert_pem);
        let serve = {
            let (pem, hits) = (pem.clone(), cert_hits.clone());
            move || {
                let (pem, hits) = (pem.clone(), hits.clone());
                async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    (
                        [(header::CONTENT_TYPE, "application/x-x509-ca-cert")],
                        pem.as_str().to_owned(),
                    )
                }
            }
        };
        let slow = {
            let (pem, hits) = (pem.clone(), cert_hits.clone());
            move || {
                let (pem, hits) = (pem.clone(), hits.clone());
                async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    pem.as_str().to_owned()
                }
            }
        };
        let confirm = {
            let hits = confirm_hits.clone();
            move || {
                let hits = hits.clone();
                async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    "<ConfirmSubscriptionResponse/>"
                }
            }
        };
        let app = Router::new()
            .route("/cert.pem", get(serve))
            .route("/slow.pem", get(slow))
            .route("/missing.pem", get(|| async { StatusCode::NOT_FOUND }))
            .route(
                "/unavailable.pem",
                get(|| async { StatusCode::SERVICE_UNAVAILABLE }),
            )
            .route("/big.pem", get(|| async { "A".repeat(20 * 1024) }))
            .route(
                "/moved.pem",
                get(|| async {
                    (StatusCode::FOUND, [(header::LOCATION, "/cert.pem")]).into_response()
                }),
            )
            .route(
                "/not-a-cert.pem",
                get(|| async { "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" }),
            )
            .route("/confirm", get(confirm));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        FakeSns {
            prefix: format!("http://127.0.0.1:{port}/"),
            cert_hits,
            confirm_hits,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.prefix)
    }

    pub fn cert_hits(&self) -> usize {
        self.cert_hits.load(Ordering::SeqCst)
    }

    pub fn confirm_hits(&self) -> usize {
        self.confirm_hits.load(Ordering::SeqCst)
    }
}
