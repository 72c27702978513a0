//! SES transport against moto's server (a real SES v2 implementation we did not write) with moto's IAM
//! authentication switched on, so a request whose SigV4 signature is wrong is refused like AWS would.

mod common;

use std::process::Command;
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
    SesTransport::with_timeout(
        SesSettings {
            region: region.to_owned(),
            access_key_id: key_id.to_owned(),
            secret_access_key: SecretString::from(secret.to_owned()),
            session_token: None,
            endpoint: Some(endpoint.parse().expect("endpoint url")),
        },
        Duration::from_secs(10),
    )
    .expect("ses transport")
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

    // More than SES's 50 recipients per call: split into calls of at most 50, all accepted.
    let many: Vec<String> = (0..60).map(|i| format!("r{i}@many.example")).collect();
    let many_refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let no_header_recipients = "From: news@acme.example\r\nSubject: many\r\n\r\nHi\r\n";
    let outcome = ses
        .send(
            &envelope("news@acme.example", &many_refs),
            no_header_recipients.as_bytes(),
        )
        .await
        .expect("accepted in two calls");
    assert_eq!(outcome.recipients.len(), 60);
    assert!(outcome.recipients.iter().all(|r| r.accepted));
    let sent = moto.sent().await;
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[1].2.len(), 50);
    assert_eq!(sent[2].2.len(), 10);
    assert_eq!(sent[2].2[9], "r59@many.example");

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
    assert_eq!(moto.sent().await.len(), 3, "nothing else was sent");
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
