//! The shared test peers, plus helpers for building envelopes.

#![allow(dead_code)]

pub use opensend_test_support::peers::*;

use opensend_core::EmailAddress;
use opensend_mail::transport::Envelope;

pub fn address(s: &str) -> EmailAddress {
    EmailAddress::parse(s).expect("test address")
}

pub fn envelope(from: &str, to: &[&str]) -> Envelope {
    Envelope {
        mail_from: address(from),
        recipients: to.iter().map(|a| address(a)).collect(),
    }
}
