//! SES transport against moto's server (a real SES v2 implementation we did not write) with moto's IAM
//! authentication switched on, so a request whose SigV4 signature is wrong is refused like AWS would.

mod common;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use common::{Peer, envelope, free_port, peer_available};
use opensend_mail::transport::{SesSettings, SesTransport, Transport, TransportError};
use secrecy::SecretString;

const REGION: &str = "eu-west-1";

struct Moto {
    peer: Peer,
    client: reqwest::Client,
}

impl Moto {
    /// moto with authentication enforced after the first three actions, which create the IAM user whose
    /// key the tests then sign with.
    async fn start() -> (Moto, String, String) {
        let port = free_port();
        let mut command = Command::new("python3");
        command
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .env("INITIAL_NO_AUTH_ACTION_COUNT", "3");
        let moto = Moto {
            peer: Peer::spawn("moto server", command, port),
            client: reqwest::Client::new(),
        };
        let bootstrap = ("AKIDBOOTSTRAP".to_owned(), "bootstrap-secret".to_owned());
        moto.iam(
            &bootstrap,
            "Action=CreateUser&UserName=sender&Version=2010-05-08",
        )
        .await;
        let created = moto
            .iam(
                &bootstrap,
                "Action=CreateAccessKey&UserName=sender&Version=2010-05-08",
            )
            .await;
        let key_id = xml_tag(&created, "AccessKeyId");
        let secret = xml_tag(&created, "SecretAccessKey");
        let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
        let form = format!(
            "Action=PutUserPolicy&UserName=sender&PolicyName=all&PolicyDocument={}&Version=2010-05-08",
            percent_encode(policy)
        );
        moto.iam(&bootstrap, &form).await;
        (moto, key_id, secret)
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer.port)
    }

    async fn iam(&self, credentials: &(String, String), form: &str) -> String {
        let url = format!("{}/", self.endpoint());
        let (status, body) = self
            .signed(
                credentials,
                "iam",
                "us-east-1",
                &url,
                "application/x-www-form-urlencoded",
                form.as_bytes(),
            )
            .await;
        assert_eq!(status, 200, "IAM call failed: {body}");
        body
    }

    /// SES v2 CreateEmailIdentity: moto then treats the domain as verified for sending.
    async fn verify_identity(&self, credentials: &(String, String), identity: &str) {
        let url = format!("{}/v2/email/identities", self.endpoint());
        let body = format!(r#"{{"EmailIdentity":"{identity}"}}"#);
        let (status, text) = self
            .signed(
                credentials,
                "ses",
                REGION,
                &url,
                "application/json",
                body.as_bytes(),
            )
            .await;
        assert_eq!(status, 200, "CreateEmailIdentity failed: {text}");
    }

    async fn signed(
        &self,
        credentials: &(String, String),
        service: &str,
        region: &str,
        url: &str,
        content_type: &str,
        body: &[u8],
    ) -> (u16, String) {
        let identity = Credentials::new(&credentials.0, &credentials.1, None, None, "test").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name(service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .expect("signing params")
            .into();
        let headers = [("content-type", content_type)];
        let signable =
            SignableRequest::new("POST", url, headers.into_iter(), SignableBody::Bytes(body))
                .expect("signable");
        let (instructions, _) = sign(signable, &params).expect("signed").into_parts();
        let mut request = self
            .client
            .post(url)
            .header("content-type", content_type)
            .body(body.to_vec());
        for (name, value) in instructions.headers() {
            request = request.header(name, value);
        }
        let response = request.send().await.expect("moto answers");
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }

    /// What moto recorded as sent: `(message id, source, destinations, raw data)`.
    async fn sent(&self) -> Vec<(String, String, Vec<String>, String)> {
        let url = format!("{}/moto-api/data.json", self.endpoint());
        let data: serde_json::Value = self
            .client
            .get(url)
            .send()
            .await
            .expect("moto data")
            .json()
            .await
            .expect("moto json");
        data["ses"]["RawMessage"]
            .as_array()
            .expect("RawMessage list")
            .iter()
            .map(|m| {
                (
                    m["id"].as_str().expect("id").to_owned(),
                    m["source"].as_str().expect("source").to_owned(),
                    m["destinations"]
                        .as_array()
                        .expect("destinations")
                        .iter()
                        .map(|d| d.as_str().expect("address").to_owned())
                        .collect(),
                    m["raw_data"].as_str().expect("raw").to_owned(),
                )
            })
            .collect()
    }
}

fn xml_tag(text: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = text
        .find(&open)
        .unwrap_or_else(|| panic!("no {tag} in {text}"))
        + open.len();
    let end = text[start..].find("</").expect("closing tag") + start;
    text[start..end].to_owned()
}

fn percent_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn transport(endpoint: &str, region: &str, key_id: &str, secret: &str) -> SesTransport {
    transport_with_set(endpoint, region, key_id, secret, None)
}

fn transport_with_set(
    endpoint: &str,
    region: &str,
    key_id: &str,
    secret: &str,
    configuration_set: Option<&str>,
) -> SesTransport {
    let settings = SesSettings::new(
        region.to_owned(),
        key_id.to_owned(),
        SecretString::from(secret.to_owned()),
        None,
        Some(endpoint.parse().expect("endpoint url")),
        configuration_set.map(str::to_owned),
    )
    .expect("ses settings");
    SesTransport::with_timeout(settings, Duration::from_secs(10)).expect("ses transport")
}

/// An HTTP server on loopback standing in for SES: records each request body (JSON) and answers the
/// `n`-th request with `answers[n]` (status and body), the last answer repeating.
struct RecordingEndpoint {
    url: String,
    requests: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl RecordingEndpoint {
    async fn start(answers: Vec<(u16, &'static str)>) -> Self {
        let requests: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
        let seen = requests.clone();
        let app = axum::Router::new().route(
            "/v2/email/outbound-emails",
            axum::routing::post(move |body: axum::body::Bytes| {
                let seen = seen.clone();
                let answers = answers.clone();
                async move {
                    let mut seen = seen.lock().unwrap();
                    seen.push(serde_json::from_slice(&body).expect("JSON request"));
                    let (status, body) = answers[(seen.len() - 1).min(answers.len() - 1)];
                    (
                        axum::http::StatusCode::from_u16(status).unwrap(),
                        [("content-type", "application/json")],
                        body,
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, requests }
    }

    fn requests(&self) -> Vec<serde_json::Value> {
        self.requests.lock().unwrap().clone()
    }
}

const MESSAGE: &str = "From: Acme <news@acme.example>\r\n\
                       To: ann@one.example\r\n\
                       Cc: bob@two.example\r\n\
                       Subject: Hello\r\n\
                       MIME-Version: 1.0\r\n\
                       Content-Type: text/plain; charset=utf-8\r\n\
                       \r\n\
                       Hello from SES.\r\n";

#[tokio::test]
async fn ses_v2_send_against_moto() {
    if !peer_available("ses against moto", "moto.server") {
        return;
    }
    let (moto, key_id, secret) = Moto::start().await;
    let keys = (key_id.clone(), secret.clone());
    moto.verify_identity(&keys, "acme.example").await;
    let ses = transport(&moto.endpoint(), REGION, &key_id, &secret);

    // Every envelope recipient is named to SES, including the one in no header (Bcc).
    let env = envelope(
        "news@acme.example",
        &["ann@one.example", "bob@two.example", "hidden@three.example"],
    );
    let outcome = ses
        .send(&env, MESSAGE.as_bytes())
        .await
        .expect("accepted by SES");
    let id = outcome.provider_message_id.clone().expect("MessageId");
    assert_eq!(outcome.recipients.len(), 3);
    for r in &outcome.recipients {
        assert!(r.accepted, "{r:?}");
        assert_eq!(r.reply_code(), Some(250));
        assert!(r.response.contains(&id));
        assert_eq!(r.provider_message_id.as_deref(), Some(id.as_str()));
    }
    let sent = moto.sent().await;
    assert_eq!(sent.len(), 1);
    let (sent_id, source, destinations, raw) = &sent[0];
    assert_eq!(sent_id, &id);
    assert_eq!(source, "news@acme.example");
    // moto appends the header addresses after the ones in the request.
    assert_eq!(
        destinations[..3],
        ["ann@one.example", "bob@two.example", "hidden@three.example"]
    );
    assert_eq!(raw, MESSAGE, "the raw message arrives unchanged");

    // More than SES's 50 recipients per call: split into calls of at most 50, all accepted, and every
    // recipient carries the MessageId of the call that carried it (what its bounces will name).
    let many: Vec<String> = (0..120).map(|i| format!("r{i}@many.example")).collect();
    let many_refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let no_header_recipients = "From: news@acme.example\r\nSubject: many\r\n\r\nHi\r\n";
    let outcome = ses
        .send(
            &envelope("news@acme.example", &many_refs),
            no_header_recipients.as_bytes(),
        )
        .await
        .expect("accepted in three calls");
    assert_eq!(outcome.recipients.len(), 120);
    assert!(outcome.recipients.iter().all(|r| r.accepted));
    let sent = moto.sent().await;
    assert_eq!(sent.len(), 4);
    let calls = &sent[1..];
    assert_eq!(
        calls.iter().map(|c| c.2.len()).collect::<Vec<_>>(),
        [50, 50, 20]
    );
    assert_eq!(calls[2].2[19], "r119@many.example");
    let ids: std::collections::HashSet<&str> = calls.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(ids.len(), 3, "one MessageId per call");
    for (i, r) in outcome.recipients.iter().enumerate() {
        let call = &calls[i / 50];
        assert!(call.2.contains(&r.address.to_string()), "{r:?}");
        assert_eq!(
            r.provider_message_id.as_deref(),
            Some(call.0.as_str()),
            "{r:?}"
        );
    }
    assert_eq!(
        outcome.provider_message_id.as_deref(),
        Some(calls[0].0.as_str())
    );

    // An unverified sender is refused by SES for good.
    let err = ses
        .send(
            &envelope("news@unverified.example", &["ann@one.example"]),
            MESSAGE.as_bytes(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TransportError::Permanent(m) if m.contains("MessageRejected")),
        "{err:?}"
    );

    // The identity was verified in eu-west-1 only: signing for another region reaches another SES.
    let elsewhere = transport(&moto.endpoint(), "us-west-2", &key_id, &secret);
    let err = elsewhere.send(&env, MESSAGE.as_bytes()).await.unwrap_err();
    assert!(!err.is_temporary(), "{err:?}");

    // A wrong secret fails moto's signature check: temporary (configuration), and the secret is not shown.
    let wrong = transport(&moto.endpoint(), REGION, &key_id, "not-the-right-secret");
    let err = wrong.send(&env, MESSAGE.as_bytes()).await.unwrap_err();
    assert!(
        matches!(&err, TransportError::Temporary(m) if m.contains("SignatureDoesNotMatch")),
        "{err:?}"
    );
    assert!(!err.to_string().contains("not-the-right-secret"));
    assert!(!err.to_string().contains(&secret));
    assert_eq!(moto.sent().await.len(), 4, "nothing else was sent");
}

#[tokio::test]
async fn ses_endpoint_not_listening_is_temporary() {
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let ses = transport(&endpoint, REGION, "AKIDEXAMPLE", "secret");
    let err = ses
        .send(
            &envelope("a@acme.example", &["b@one.example"]),
            MESSAGE.as_bytes(),
        )
        .await
        .unwrap_err();
    assert!(err.is_temporary(), "{err:?}");
}

#[tokio::test]
async fn the_configuration_set_is_named_in_every_call_when_configured() {
    let endpoint = RecordingEndpoint::start(vec![(200, r#"{"MessageId":"id-1"}"#)]).await;
    let many: Vec<String> = (0..60).map(|i| format!("r{i}@many.example")).collect();
    let many_refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let env = envelope("news@acme.example", &many_refs);

    let with_set = transport_with_set(
        &endpoint.url,
        REGION,
        "AKIDEXAMPLE",
        "secret",
        Some("opensend-events"),
    );
    with_set.send(&env, MESSAGE.as_bytes()).await.expect("sent");
    let requests = endpoint.requests();
    assert_eq!(requests.len(), 2, "60 recipients are two calls");
    for request in &requests {
        assert_eq!(
            request["ConfigurationSetName"], "opensend-events",
            "{request}"
        );
        assert_eq!(request["FromEmailAddress"], "news@acme.example");
    }

    let without = transport(&endpoint.url, REGION, "AKIDEXAMPLE", "secret");
    without.send(&env, MESSAGE.as_bytes()).await.expect("sent");
    let requests = endpoint.requests();
    assert_eq!(requests.len(), 4);
    for request in &requests[2..] {
        let fields = request.as_object().expect("object");
        assert!(!fields.contains_key("ConfigurationSetName"), "{request}");
        assert!(fields.contains_key("Destination"), "{request}");
    }
}

#[tokio::test]
async fn recipients_of_a_failed_later_call_have_no_provider_id() {
    let endpoint = RecordingEndpoint::start(vec![
        (200, r#"{"MessageId":"first-call"}"#),
        (
            400,
            r#"{"__type":"MessageRejected","message":"Email address is not verified."}"#,
        ),
    ])
    .await;
    let many: Vec<String> = (0..70).map(|i| format!("r{i}@many.example")).collect();
    let many_refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let ses = transport(&endpoint.url, REGION, "AKIDEXAMPLE", "secret");
    let outcome = ses
        .send(
            &envelope("news@acme.example", &many_refs),
            MESSAGE.as_bytes(),
        )
        .await
        .expect("the first 50 were delivered");
    assert_eq!(outcome.provider_message_id.as_deref(), Some("first-call"));
    let (delivered, refused) = outcome.recipients.split_at(50);
    for r in delivered {
        assert!(r.accepted, "{r:?}");
        assert_eq!(r.provider_message_id.as_deref(), Some("first-call"));
    }
    assert_eq!(refused.len(), 20);
    for r in refused {
        assert!(!r.accepted, "{r:?}");
        assert_eq!(r.reply_code(), Some(554));
        assert_eq!(r.provider_message_id, None, "{r:?}");
    }
}
