//! The DNS records a sending domain publishes, and how their check results add up to the domain's status.
//!
//! | `record` | type | name | value |
//! |---|---|---|---|
//! | `DKIM` | TXT | `{selector}._domainkey.{domain}` (one per key) | `v=DKIM1; k=rsa\|ed25519; p=…` |
//! | `SPF` | TXT | `{return_path}.{domain}` | `v=spf1 {mechanisms} ~all` (mechanisms depend on the transport) |
//! | `SPF` | MX (priority 10) | `{return_path}.{domain}` | the bounce host |
//! | `DMARC` | TXT | `_dmarc.{domain}` | `v=DMARC1; p=none;` (+ ` rua=mailto:…;`) — a recommendation |
//! | `Tracking` | CNAME | `{tracking_subdomain}.{domain}` | the tracking host |
//!
//! The bounce MX and SPF records are labelled `SPF`, as Resend labels them. DMARC is an extension of Resend's
//! list; its status is reported but never holds a domain back.

use opensend_core::{DnsLabel, DomainName};

use crate::dkim::{DkimAlgorithm, record_value};

// The words for records and statuses live in `opensend_core`, shared with the store and the API.
pub use opensend_core::dns_record::{RecordPurpose, RecordStatus, RecordType};
pub use opensend_core::status::DomainStatus;

/// MX preference of the bounce record.
pub const BOUNCE_MX_PRIORITY: u16 = 10;

/// One record the domain owner must (or, for DMARC, should) publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedRecord {
    pub purpose: RecordPurpose,
    pub record_type: RecordType,
    /// Fully qualified, without the trailing dot.
    pub name: String,
    pub value: String,
    pub priority: Option<u16>,
    /// Whether the domain's status depends on it.
    pub required: bool,
    /// For DKIM records: the selector, so a verified new key can be promoted after a rotation.
    pub selector: Option<String>,
}

/// A DKIM public key to publish.
pub struct PublishedKey<'a> {
    pub algorithm: DkimAlgorithm,
    pub selector: &'a str,
    pub public_key: &'a [u8],
    /// Keys of a rotation in progress are listed but do not decide the domain's status.
    pub required: bool,
}

/// What the deployment contributes to the records (from configuration, per transport).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordSettings {
    /// Mechanisms between `v=spf1` and `~all`, e.g. `include:amazonses.com`.
    pub spf_mechanisms: String,
    pub bounce_mx: BounceMx,
    /// `rua` address for the DMARC recommendation, without `mailto:`.
    pub dmarc_rua: Option<String>,
    /// Host the tracking CNAME points at.
    pub tracking_target: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BounceMx {
    /// `feedback-smtp.{region}.amazonses.com`, with the domain's region.
    SesRegion,
    Host(String),
}

/// The domain's settings that shape its records.
pub struct DomainRecordsInput<'a> {
    pub name: &'a DomainName,
    pub return_path: &'a DnsLabel,
    pub tracking_subdomain: Option<&'a DnsLabel>,
    pub region: &'a str,
    pub keys: Vec<PublishedKey<'a>>,
}

pub fn expected_records(
    input: &DomainRecordsInput<'_>,
    settings: &RecordSettings,
) -> Vec<ExpectedRecord> {
    let domain = input.name.as_str();
    let mut records: Vec<ExpectedRecord> = input
        .keys
        .iter()
        .map(|key| ExpectedRecord {
            purpose: RecordPurpose::Dkim,
            record_type: RecordType::Txt,
            name: format!("{}._domainkey.{domain}", key.selector),
            value: record_value(key.algorithm, key.public_key),
            priority: None,
            required: key.required,
            selector: Some(key.selector.to_owned()),
        })
        .collect();
    let return_path = input.name.prefixed(input.return_path);
    records.push(ExpectedRecord {
        purpose: RecordPurpose::Spf,
        record_type: RecordType::Txt,
        name: return_path.clone(),
        value: format!("v=spf1 {} ~all", settings.spf_mechanisms.trim()),
        priority: None,
        required: true,
        selector: None,
    });
    let mx_host = match &settings.bounce_mx {
        BounceMx::SesRegion => format!("feedback-smtp.{}.amazonses.com", input.region),
        BounceMx::Host(host) => host.clone(),
    };
    records.push(ExpectedRecord {
        purpose: RecordPurpose::Spf,
        record_type: RecordType::Mx,
        name: return_path,
        value: mx_host,
        priority: Some(BOUNCE_MX_PRIORITY),
        required: true,
        selector: None,
    });
    let rua = settings
        .dmarc_rua
        .as_deref()
        .map(|a| format!(" rua=mailto:{a};"))
        .unwrap_or_default();
    records.push(ExpectedRecord {
        purpose: RecordPurpose::Dmarc,
        record_type: RecordType::Txt,
        name: format!("_dmarc.{domain}"),
        value: format!("v=DMARC1; p=none;{rua}"),
        priority: None,
        required: false,
        selector: None,
    });
    if let Some(label) = input.tracking_subdomain {
        records.push(ExpectedRecord {
            purpose: RecordPurpose::Tracking,
            record_type: RecordType::Cname,
            name: input.name.prefixed(label),
            value: settings.tracking_target.clone(),
            priority: None,
            required: true,
            selector: None,
        });
    }
    records
}

/// The domain's status after a check, from its previous status and each record's `(required, status)`.
///
/// - every required record verified → `verified`;
/// - any required record found with a wrong value → `failed`;
/// - a lookup that failed (timeout, SERVFAIL) → `temporary_failure`, except that a verified domain stays
///   verified through a DNS hiccup (its records are re-checked soon) rather than stopping its mail;
/// - a required record missing → `pending`, or `failed` for a domain that was verified (its record was removed).
pub fn domain_status(previous: DomainStatus, checks: &[(bool, RecordStatus)]) -> DomainStatus {
    let required = || checks.iter().filter(|(r, _)| *r).map(|(_, s)| *s);
    if required().all(|s| s == RecordStatus::Verified) {
        return DomainStatus::Verified;
    }
    if required().any(|s| s == RecordStatus::Failed) {
        return DomainStatus::Failed;
    }
    if required().any(|s| s == RecordStatus::TemporaryFailure) {
        return match previous {
            DomainStatus::Verified => DomainStatus::Verified,
            _ => DomainStatus::TemporaryFailure,
        };
    }
    match previous {
        DomainStatus::Verified | DomainStatus::Failed => DomainStatus::Failed,
        _ => DomainStatus::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RecordStatus::*;

    fn settings() -> RecordSettings {
        RecordSettings {
            spf_mechanisms: "include:amazonses.com".into(),
            bounce_mx: BounceMx::SesRegion,
            dmarc_rua: Some("dmarc@example.com".into()),
            tracking_target: "track.opensend.test".into(),
        }
    }

    #[test]
    fn records_for_a_domain() {
        let name = DomainName::parse("example.com").unwrap();
        let rp = DnsLabel::parse("send").unwrap();
        let links = DnsLabel::parse("links").unwrap();
        let input = DomainRecordsInput {
            name: &name,
            return_path: &rp,
            tracking_subdomain: Some(&links),
            region: "eu-west-1",
            keys: vec![PublishedKey {
                algorithm: DkimAlgorithm::Ed25519Sha256,
                selector: "osabce",
                public_key: &[0u8; 32],
                required: true,
            }],
        };
        let records = expected_records(&input, &settings());
        let summary: Vec<_> = records
            .iter()
            .map(|r| {
                (
                    r.purpose,
                    r.record_type,
                    r.name.as_str(),
                    r.value.as_str(),
                    r.priority,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    RecordPurpose::Dkim,
                    RecordType::Txt,
                    "osabce._domainkey.example.com",
                    "v=DKIM1; k=ed25519; p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                    None
                ),
                (
                    RecordPurpose::Spf,
                    RecordType::Txt,
                    "send.example.com",
                    "v=spf1 include:amazonses.com ~all",
                    None
                ),
                (
                    RecordPurpose::Spf,
                    RecordType::Mx,
                    "send.example.com",
                    "feedback-smtp.eu-west-1.amazonses.com",
                    Some(10)
                ),
                (
                    RecordPurpose::Dmarc,
                    RecordType::Txt,
                    "_dmarc.example.com",
                    "v=DMARC1; p=none; rua=mailto:dmarc@example.com;",
                    None
                ),
                (
                    RecordPurpose::Tracking,
                    RecordType::Cname,
                    "links.example.com",
                    "track.opensend.test",
                    None
                ),
            ]
        );
        assert!(!records[3].required, "DMARC is a recommendation");
    }

    #[test]
    fn statuses_add_up() {
        use DomainStatus as D;
        let all_ok = [(true, Verified), (true, Verified), (false, Pending)];
        assert_eq!(domain_status(D::Pending, &all_ok), D::Verified);
        assert_eq!(
            domain_status(D::NotStarted, &[(true, Verified), (true, Pending)]),
            D::Pending
        );
        assert_eq!(
            domain_status(D::Verified, &[(true, Verified), (true, Pending)]),
            D::Failed
        );
        assert_eq!(
            domain_status(D::Pending, &[(true, Failed), (true, TemporaryFailure)]),
            D::Failed
        );
        assert_eq!(
            domain_status(D::Pending, &[(true, Verified), (true, TemporaryFailure)]),
            D::TemporaryFailure
        );
        assert_eq!(
            domain_status(D::Verified, &[(true, Verified), (true, TemporaryFailure)]),
            D::Verified
        );
        assert_eq!(
            domain_status(D::Pending, &[(true, Verified), (false, Failed)]),
            D::Verified
        );
    }
}
