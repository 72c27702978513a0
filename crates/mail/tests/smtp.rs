//! SMTP transport against a real SMTP server on loopback (aiosmtpd, see `tests/peers/smtp_sink.py`).

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::{SmtpSink as Sink, envelope, free_port, peer_available};
use opensend_mail::transport::{SmtpSettings, SmtpTransport, Transport, TransportError};

/// A message with a To and a Cc header but no Bcc, a line starting with a dot, 8-bit UTF-8, and CRLF
/// line ends throughout (as the MIME builder produces).
fn message() -> Vec<u8> {
    let text = "From: Acme <news@acme.example>\r\n\
                To: ann@one.example\r\n\
                Cc: bob@two.example\r\n\
                Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\
                Message-ID: <1@acme.example>\r\n\
                MIME-Version: 1.0\r\n\
                Content-Type: text/plain; charset=utf-8\r\n\
                Content-Transfer-Encoding: 8bit\r\n\
                \r\n\
                Grüße aus Köln.\r\n\
                .a line that starts with a dot\r\n\
                ..and two\r\n\
                .\r\n\
                last line\r\n";
    text.as_bytes().to_vec()
}

fn transport(url: &str) -> SmtpTransport {
    SmtpTransport::from_url(url).expect("smtp transport")
}

#[tokio::test]
async fn delivers_exact_bytes_to_every_envelope_recipient_including_bcc() {
    if !peer_available("smtp delivery", "aiosmtpd") {
        return;
    }
    let sink = Sink::start(&[]);
    let transport = transport(&sink.url(""));
    let env = envelope(
        "bounces@acme.example",
        &["ann@one.example", "bob@two.example", "hidden@three.example"],
    );
    let outcome = transport.send(&env, &message()).await.expect("sent");

    assert_eq!(outcome.recipients.len(), 3);
    for r in &outcome.recipients {
        assert!(r.accepted, "{r:?}");
        assert!(r.response.starts_with("250 "), "{r:?}");
        assert_eq!(r.reply_code(), Some(250));
        assert!(!r.is_temporary_failure());
    }
    // The sink answers "250 2.0.0 Ok: queued as ID" like Postfix; every recipient of the session has it.
    let id = outcome.provider_message_id.expect("queue id");
    assert!(outcome.recipients[0].response.ends_with(&id));
    for r in &outcome.recipients {
        assert_eq!(r.provider_message_id.as_deref(), Some(id.as_str()), "{r:?}");
    }

    let received = sink.messages();
    assert_eq!(received.len(), 1);
    let got = &received[0];
    assert_eq!(got.mail_from, "bounces@acme.example");
    assert_eq!(
        got.rcpt_tos,
        ["ann@one.example", "bob@two.example", "hidden@three.example"]
    );
    assert_eq!(got.data, message(), "the bytes must arrive unchanged");
    assert!(got.mail_options.iter().any(|o| o == "BODY=8BITMIME"));
    assert!(!String::from_utf8_lossy(&got.data).contains("hidden@"));
}

#[tokio::test]
async fn message_without_final_crlf_and_with_bare_lf_arrives_as_crlf_lines() {
    if !peer_available("smtp line endings", "aiosmtpd") {
        return;
    }
    let sink = Sink::start(&[]);
    let transport = transport(&sink.url(""));
    let env = envelope("a@acme.example", &["ann@one.example"]);
    transport
        .send(&env, b"Subject: x\n\nline one\n.\nline two")
        .await
        .expect("sent");
    let received = sink.messages();
    assert_eq!(received.len(), 1);
    // The lone "." line is not the end of the data: the normalised CRLF line is dot-stuffed.
    assert_eq!(
        received[0].data,
        b"Subject: x\r\n\r\nline one\r\n.\r\nline two\r\n"
    );
}

#[tokio::test]
async fn refused_recipients_are_reported_and_the_others_still_receive_it() {
    if !peer_available("smtp per-recipient", "aiosmtpd") {
        return;
    }
    let sink = Sink::start(&["--reject", "gone@two.example"]);
    let transport = transport(&sink.url(""));
    let env = envelope(
        "a@acme.example",
        &[
            "ann@one.example",
            "gone@two.example",
            "defer-450@three.example",
            "reject-550-x@four.example",
            "zed@five.example",
        ],
    );
    let outcome = transport.send(&env, &message()).await.expect("partly sent");
    let by_address = |a: &str| {
        outcome
            .recipients
            .iter()
            .find(|r| r.address.as_str() == a)
            .unwrap_or_else(|| panic!("outcome for {a}"))
    };
    assert!(by_address("ann@one.example").accepted);
    assert!(by_address("zed@five.example").accepted);
    // The queue id belongs to the recipients the message went to, not to the refused ones.
    let id = outcome.provider_message_id.clone().expect("queue id");
    for r in &outcome.recipients {
        let expected = r.accepted.then_some(id.as_str());
        assert_eq!(r.provider_message_id.as_deref(), expected, "{r:?}");
    }

    let gone = by_address("gone@two.example");
    assert!(!gone.accepted);
    assert_eq!(gone.reply_code(), Some(550));
    assert!(gone.response.contains("User unknown"), "{gone:?}");
    assert!(!gone.is_temporary_failure());

    let deferred = by_address("defer-450@three.example");
    assert!(!deferred.accepted);
    assert_eq!(deferred.reply_code(), Some(450));
    assert!(deferred.is_temporary_failure());

    assert_eq!(
        by_address("reject-550-x@four.example").reply_code(),
        Some(550)
    );

    let received = sink.messages();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].rcpt_tos,
        ["ann@one.example", "zed@five.example"]
    );
}

#[tokio::test]
async fn every_recipient_refused_is_permanent_and_a_deferral_makes_it_temporary() {
    if !peer_available("smtp all refused", "aiosmtpd") {
        return;
    }
    let sink = Sink::start(&[]);
    let transport = transport(&sink.url(""));

    let all_550 = envelope(
        "a@acme.example",
        &["reject-550@one.example", "reject-550b@two.example"],
    );
    let err = transport.send(&all_550, &message()).await.unwrap_err();
    assert!(
        matches!(&err, TransportError::Permanent(m) if m.contains("550")),
        "{err:?}"
    );

    let with_450 = envelope(
        "a@acme.example",
        &["reject-550@one.example", "defer-450@two.example"],
    );
    let err = transport.send(&with_450, &message()).await.unwrap_err();
    assert!(
        matches!(&err, TransportError::Temporary(m) if m.contains("450")),
        "{err:?}"
    );

    // The refused transactions were reset, so the same pooled connection still delivers.
    let ok = envelope("a@acme.example", &["ann@one.example"]);
    transport
        .send(&ok, &message())
        .await
        .expect("sent after refusals");
    let received = sink.messages();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].rcpt_tos, ["ann@one.example"]);
}

#[tokio::test]
async fn pooled_connections_survive_a_server_restart() {
    if !peer_available("smtp pool", "aiosmtpd") {
        return;
    }
    let mut sink = Sink::start(&[]);
    let transport = transport(&sink.url("&max_connections=2"));
    let env = envelope("a@acme.example", &["ann@one.example"]);
    for _ in 0..3 {
        transport.send(&env, &message()).await.expect("sent");
    }
    // Concurrent sends beyond the connection cap wait for a connection instead of failing.
    let mut sends = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let (transport, env) = (transport.clone(), env.clone());
        sends.spawn(async move {
            transport
                .send(&env, b"Subject: c\r\n\r\nconcurrent\r\n")
                .await
        });
    }
    while let Some(result) = sends.join_next().await {
        result.expect("task").expect("concurrent send");
    }
    assert_eq!(sink.messages().len(), 9);

    // The idle pooled connection now points at a dead server process; the next send must notice and
    // reconnect instead of failing.
    sink.restart();
    transport
        .send(&env, &message())
        .await
        .expect("sent after restart");
    assert_eq!(sink.messages().len(), 10);
}

#[tokio::test]
async fn authenticates_and_a_wrong_password_is_temporary_and_not_shown() {
    if !peer_available("smtp auth", "aiosmtpd") {
        return;
    }
    let sink = Sink::start(&["--auth", "mailer:s3cret-pass"]);
    let port = sink.peer.port;
    let env = envelope("a@acme.example", &["ann@one.example"]);

    let good = transport(&format!(
        "smtp://mailer:s3cret-pass@127.0.0.1:{port}?tls=none"
    ));
    good.send(&env, &message()).await.expect("sent with auth");
    let received = sink.messages();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].auth_user.as_deref(), Some("mailer"));

    let bad = transport(&format!(
        "smtp://mailer:wrong-pass-123@127.0.0.1:{port}?tls=none"
    ));
    let err = bad.send(&env, &message()).await.unwrap_err();
    assert!(err.is_temporary(), "{err:?}");
    assert!(err.to_string().contains("authentication"), "{err}");
    assert!(!err.to_string().contains("wrong-pass-123"), "{err}");

    let none = transport(&sink.url(""));
    let err = none.send(&env, &message()).await.unwrap_err();
    assert!(
        err.to_string().contains("530"),
        "MAIL without AUTH is refused: {err}"
    );
}

#[tokio::test]
async fn starttls_with_a_private_ca() {
    if !peer_available("smtp starttls", "aiosmtpd") {
        return;
    }
    let sink = Sink::start_with_tls();
    let ca = sink.tls_dir().join("ca.pem");
    assert!(ca.exists(), "the sink wrote its CA before listening");

    let env = envelope("a@acme.example", &["ann@one.example"]);
    let url = format!(
        "smtp://127.0.0.1:{}?tls=starttls&tls_ca_file={}",
        sink.peer.port,
        ca.display()
    );
    transport(&url)
        .send(&env, &message())
        .await
        .expect("sent over STARTTLS");
    let received = sink.messages();
    assert_eq!(received.len(), 1);
    assert!(received[0].tls);
    assert_eq!(received[0].data, message());

    // Without the private CA the certificate is not trusted: temporary, nothing sent in clear.
    let untrusted = format!("smtp://127.0.0.1:{}?tls=starttls", sink.peer.port);
    let err = transport(&untrusted)
        .send(&env, &message())
        .await
        .unwrap_err();
    assert!(err.is_temporary(), "{err:?}");
    assert_eq!(sink.messages().len(), 1);
}

#[tokio::test]
async fn starttls_required_but_not_offered_is_temporary() {
    if !peer_available("smtp no starttls", "aiosmtpd") {
        return;
    }
    let sink = Sink::start(&[]);
    let url = format!("smtp://127.0.0.1:{}?tls=starttls", sink.peer.port);
    let env = envelope("a@acme.example", &["ann@one.example"]);
    let err = transport(&url).send(&env, &message()).await.unwrap_err();
    assert!(
        matches!(&err, TransportError::Temporary(m) if m.contains("STARTTLS")),
        "{err:?}"
    );
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn nothing_listening_is_temporary() {
    let port = free_port();
    let transport = transport(&format!(
        "smtp://127.0.0.1:{port}?tls=none&connect_timeout=2"
    ));
    let env = envelope("a@acme.example", &["ann@one.example"]);
    let started = Instant::now();
    let err = transport.send(&env, &message()).await.unwrap_err();
    assert!(err.is_temporary(), "{err:?}");
    // Bounded by the connect timeout (generous margin; this checks that it cannot hang).
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_as_temporary() {
    // Accepts the TCP connection (backlog) but never sends a greeting.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let transport = transport(&format!(
        "smtp://127.0.0.1:{port}?tls=none&connect_timeout=1"
    ));
    let env = envelope("a@acme.example", &["ann@one.example"]);
    let started = Instant::now();
    let err = transport.send(&env, &message()).await.unwrap_err();
    assert!(
        matches!(&err, TransportError::Temporary(m) if m.contains("within 1 s")),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    drop(listener);
}

#[test]
fn settings_from_url_are_what_the_worker_gets() {
    let s = SmtpSettings::from_url("smtp://u:p@relay.example:2525?tls=starttls").expect("settings");
    assert_eq!((s.host.as_str(), s.port), ("relay.example", 2525));
}
