//! Parsing received mail: real-looking messages in `fixtures/inbound/`, broken ones, oversize ones, and
//! random damage to all of them.

use std::path::PathBuf;

use chrono::{TimeZone, Utc};
use opensend_mail::inbound::{
    InboundError, InboundLimits, ReceivedAddress, parse_received, parse_received_with,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/inbound")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const FIXTURES: &[&str] = &[
    "alternative.eml",
    "mixed_attachments.eml",
    "latin1.eml",
    "shift_jis.eml",
    "windows1252.eml",
    "no_blank_line.eml",
    "broken_boundary.eml",
    "truncated.eml",
];

fn mailbox(address: &str, name: Option<&str>) -> ReceivedAddress {
    ReceivedAddress {
        address: address.to_owned(),
        name: name.map(str::to_owned),
    }
}

#[test]
fn multipart_alternative_with_quoted_printable_and_base64_bodies() {
    let message = parse_received(&fixture("alternative.eml")).unwrap();
    assert_eq!(
        message.message_id.as_deref(),
        Some("order-1042.shipped@acme.example")
    );
    assert_eq!(
        message.from,
        Some(mailbox("support@acme.example", Some("Acme Support")))
    );
    assert_eq!(
        message.to,
        [
            mailbox("jane@inbound.example", Some("Jane Doe")),
            mailbox("ops@inbound.example", None),
        ]
    );
    assert_eq!(
        message.cc,
        [mailbox("john@inbound.example", Some("Doe, John"))]
    );
    assert_eq!(
        message.reply_to,
        [mailbox("help@acme.example", Some("Acme Help Desk"))]
    );
    assert_eq!(
        message.subject.as_deref(),
        Some("Your order #1042 has shipped")
    );
    assert_eq!(
        message.date,
        Some(Utc.with_ymd_and_hms(2026, 11, 26, 9, 14, 0).unwrap())
    );

    let text = message.text.as_deref().expect("text body");
    assert!(
        text.contains("Café au lait is on its way — expect it Thursday."),
        "quoted-printable UTF-8 decoded: {text:?}"
    );
    assert!(!text.contains("=C3"), "{text:?}");
    let html = message.html.as_deref().expect("html body");
    assert!(html.starts_with("<html><body><p>Hi Jane,</p>"), "{html:?}");
    assert!(html.contains("Café au lait"), "base64 UTF-8 decoded");
    assert!(message.attachments.is_empty(), "{:?}", message.attachments);

    // Every top-level field, in order, names as written and values unfolded.
    let names: Vec<&str> = message.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "Return-Path",
            "Received",
            "DKIM-Signature",
            "From",
            "To",
            "Cc",
            "Reply-To",
            "Subject",
            "Date",
            "Message-ID",
            "MIME-Version",
            "X-Mailer",
            "Content-Type",
        ]
    );
    let header = |name: &str| {
        message
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap()
    };
    assert_eq!(
        header("Received"),
        "from mail-out.acme.example (mail-out.acme.example [192.0.2.10])\tby mx.inbound.example with ESMTPS id 4Z8kq7;\tThu, 26 Nov 2026 09:14:03 +0000"
    );
    assert_eq!(header("X-Mailer"), "Acme Mailer 3.2");
    assert!(!header("DKIM-Signature").contains('\n'));
}

#[test]
fn multipart_mixed_with_an_inline_image_and_a_pdf() {
    let message = parse_received(&fixture("mixed_attachments.eml")).unwrap();
    assert_eq!(message.subject.as_deref(), Some("Invoice INV-2026-0117"));
    assert_eq!(
        message.text.as_deref(),
        Some("Please find invoice INV-2026-0117 attached. Amount due: 120.00 EUR.")
    );
    assert!(
        message
            .html
            .as_deref()
            .unwrap()
            .contains("cid:logo.png@vendor.example")
    );
    assert_eq!(message.attachments.len(), 2, "{:?}", message.attachments);

    let logo = &message.attachments[0];
    assert_eq!(logo.filename.as_deref(), Some("logo.png"));
    assert_eq!(logo.content_type, "image/png");
    assert_eq!(logo.content_id.as_deref(), Some("logo.png@vendor.example"));
    assert!(logo.inline);
    assert!(logo.content.starts_with(b"\x89PNG\r\n\x1a\n"), "decoded");
    assert!(logo.content.ends_with(b"IEND\xaeB`\x82"), "whole image");
    assert_eq!(logo.content.len(), 66);

    let pdf = &message.attachments[1];
    assert_eq!(pdf.filename.as_deref(), Some("INV-2026-0117.pdf"));
    assert_eq!(pdf.content_type, "application/pdf");
    assert_eq!(pdf.content_id, None);
    assert!(!pdf.inline);
    assert!(pdf.content.starts_with(b"%PDF-1.4\n"));
    assert!(pdf.content.ends_with(b"%%EOF\n"));
}

#[test]
fn iso_8859_1_headers_and_eight_bit_body() {
    let message = parse_received(&fixture("latin1.eml")).unwrap();
    assert_eq!(
        message.subject.as_deref(),
        Some("Réservation confirmée à Montréal")
    );
    assert_eq!(
        message.from,
        Some(mailbox("renee@hotel.example", Some("Renée François")))
    );
    let text = message.text.unwrap();
    assert!(
        text.contains("Votre réservation à Montréal est confirmée."),
        "{text:?}"
    );
    assert_eq!(message.html, None);
}

#[test]
fn shift_jis_headers_and_base64_body() {
    let message = parse_received(&fixture("shift_jis.eml")).unwrap();
    assert_eq!(message.subject.as_deref(), Some("会議の議事録"));
    assert_eq!(
        message.from,
        Some(mailbox("hanako@kaisha.example", Some("佐藤 花子")))
    );
    let text = message.text.unwrap();
    assert!(text.starts_with("山田様"), "{text:?}");
    assert!(
        text.contains("本日の会議の議事録を送付いたします。"),
        "{text:?}"
    );
    assert_eq!(
        message.date,
        Some(Utc.with_ymd_and_hms(2026, 11, 24, 8, 5, 0).unwrap())
    );
}

#[test]
fn windows_1252_quoted_printable_html_only() {
    let message = parse_received(&fixture("windows1252.eml")).unwrap();
    assert_eq!(message.subject.as_deref(), Some("€ 49 – “Early bird”"));
    assert_eq!(
        message.html.as_deref().map(str::trim_end),
        Some("<p>“Early bird” tickets: €49 – until Friday.</p>")
    );
    assert_eq!(message.text, None, "HTML only: no text is made up");
    assert!(message.attachments.is_empty());
}

#[test]
fn malformed_messages_are_read_as_far_as_they_go() {
    // No blank line after the header: the fields before the stray line are still read.
    let message = parse_received(&fixture("no_blank_line.eml")).unwrap();
    assert_eq!(message.subject.as_deref(), Some("no separator"));
    assert_eq!(message.from, Some(mailbox("someone@legacy.example", None)));

    // The declared boundary never appears: the body is kept as it is rather than lost.
    let message = parse_received(&fixture("broken_boundary.eml")).unwrap();
    assert_eq!(message.subject.as_deref(), Some("broken boundaries"));
    let kept: usize = message.text.iter().map(String::len).sum::<usize>()
        + message
            .attachments
            .iter()
            .map(|a| a.content.len())
            .sum::<usize>();
    assert!(kept > 0, "{message:?}");

    // Cut off in the middle of the last part.
    let message = parse_received(&fixture("truncated.eml")).unwrap();
    assert_eq!(message.subject.as_deref(), Some("cut off"));
    assert!(
        message
            .text
            .as_deref()
            .unwrap_or_default()
            .contains("Body before the cut."),
        "{message:?}"
    );
}

#[test]
fn what_is_not_a_message_is_refused() {
    for input in [
        &b""[..],
        b"\r\n\r\n",
        b"\r\nJust a body after a blank line.",
    ] {
        assert_eq!(
            parse_received(input),
            Err(InboundError::NotAMessage),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn limits_are_errors_not_cuts() {
    let raw = fixture("mixed_attachments.eml");
    let small = InboundLimits {
        max_bytes: raw.len() - 1,
        ..InboundLimits::default()
    };
    assert_eq!(
        parse_received_with(&raw, &small),
        Err(InboundError::TooLarge {
            size: raw.len(),
            limit: raw.len() - 1
        })
    );
    let exact = InboundLimits {
        max_bytes: raw.len(),
        ..InboundLimits::default()
    };
    assert!(parse_received_with(&raw, &exact).is_ok());

    // Over the default 40 MiB.
    let mut huge = b"From: a@example.com\r\nSubject: big\r\n\r\n".to_vec();
    huge.resize(40 * 1024 * 1024 + 1, b'a');
    assert!(matches!(
        parse_received(&huge),
        Err(InboundError::TooLarge { .. })
    ));

    let mut many = String::new();
    for i in 0..1_001 {
        many.push_str(&format!("X-Trace-{i}: hop {i}\r\n"));
    }
    many.push_str("Subject: many headers\r\n\r\nbody\r\n");
    assert_eq!(
        parse_received(many.as_bytes()),
        Err(InboundError::TooManyHeaders {
            count: 1_002,
            limit: 1_000
        })
    );

    let mut parts =
        String::from("From: a@example.com\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n");
    for i in 0..30 {
        parts.push_str(&format!(
            "--x\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n"
        ));
    }
    parts.push_str("--x--\r\n");
    let few_parts = InboundLimits {
        max_parts: 10,
        ..InboundLimits::default()
    };
    assert!(matches!(
        parse_received_with(parts.as_bytes(), &few_parts),
        Err(InboundError::TooManyParts { limit: 10, .. })
    ));
    assert!(parse_received(parts.as_bytes()).is_ok());
}

/// A small deterministic generator (xorshift64*), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that matter to a MIME parser, favoured when mutating.
const INTERESTING: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r\n\r\n",
    b"--",
    b":",
    b";",
    b"=?",
    b"?=",
    b"=",
    b"\"",
    b"<",
    b">",
    b"boundary=",
    b"Content-Type: multipart/mixed; boundary=\"",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Type: message/rfc822\r\n\r\n",
    b"charset=",
    b"\x00",
    b"\xff",
    b"\xe9",
];

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(8) {
        let at = rng.below(out.len() + 1);
        match rng.below(6) {
            0 if !out.is_empty() => {
                let at = at.min(out.len() - 1);
                out[at] = (rng.next() & 0xff) as u8;
            }
            1 => {
                let end = (at + rng.below(64)).min(out.len());
                out.drain(at..end);
            }
            2 => {
                let piece = INTERESTING[rng.below(INTERESTING.len())];
                out.splice(at..at, piece.iter().copied());
            }
            3 if !out.is_empty() => {
                // Repeat a slice (duplicated boundaries, headers, parts).
                let start = rng.below(out.len());
                let end = (start + rng.below(200)).min(out.len());
                let slice = out[start..end].to_vec();
                out.splice(at..at, slice);
            }
            4 => out.truncate(at),
            _ => {
                let byte = (rng.next() & 0xff) as u8;
                out.insert(at, byte);
            }
        }
    }
    out
}

#[test]
fn random_damage_never_panics() {
    let mut rng = Rng(0x0005_eed0_f1b0_u64 | 1);
    let samples: Vec<Vec<u8>> = FIXTURES.iter().map(|name| fixture(name)).collect();
    for round in 0..20_000 {
        let sample = &samples[round % samples.len()];
        let damaged = mutate(&mut rng, sample);
        // Any outcome but a panic (or the parser failing so badly it had to be caught) is fine.
        let result = parse_received(&damaged);
        assert_ne!(
            result,
            Err(InboundError::Unparseable),
            "round {round}: {:?}",
            String::from_utf8_lossy(&damaged)
        );
    }
}

#[test]
fn nul_in_decoded_text_is_replaced() {
    let raw = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: =?utf-8?B?YQBi?=\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\naABp\r\n";
    let message = opensend_mail::inbound::parse_received(raw).expect("parses");
    assert_eq!(message.subject.as_deref(), Some("a\u{FFFD}b"));
    assert_eq!(
        message.text.as_deref().map(str::trim_end),
        Some("h\u{FFFD}i")
    );
}
