//! Checking published records with real DNS queries.
//!
//! The resolver uses the system's nameservers (`/etc/resolv.conf`), or one `host:port` given by `DNS_RESOLVER`.
//! Nothing is cached: a record published a second ago must be seen by the next check. Each record's result:
//! `verified`, `pending` (NXDOMAIN or no record of that type), `failed` (records exist but none has the expected
//! value; what was found is reported), or `temporary_failure` (timeout, SERVFAIL, network error).

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::rr::{Name, RData, RecordType as WireType};

use crate::records::{ExpectedRecord, RecordPurpose, RecordStatus, RecordType};

/// Longest `found` text reported back, in characters.
const FOUND_MAX_CHARS: usize = 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordCheck {
    pub status: RecordStatus,
    /// For `failed`: the values found instead. For `temporary_failure`: what went wrong.
    pub detail: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot set up the DNS resolver: {0}")]
pub struct DnsSetupError(String);

/// Answers "is this record published?". Cheap to clone.
#[derive(Clone)]
pub struct DnsChecker {
    resolver: TokioResolver,
}

/// Where DNS questions go: `server` (from `DNS_RESOLVER`) alone when given, otherwise the system's nameservers
/// (`/etc/resolv.conf`). Options start at hickory's defaults; each user sets its own timeouts and caching.
pub fn resolver_config(
    server: Option<SocketAddr>,
) -> Result<(ResolverConfig, ResolverOpts), DnsSetupError> {
    match server {
        Some(addr) => {
            let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
            for connection in &mut ns.connections {
                connection.port = addr.port();
            }
            Ok((
                ResolverConfig::from_parts(None, vec![], vec![ns]),
                ResolverOpts::default(),
            ))
        }
        None => hickory_resolver::system_conf::read_system_conf().map_err(|e| {
            DnsSetupError(format!(
                "cannot read the system's nameservers ({e}); set DNS_RESOLVER to one, e.g. 127.0.0.1:53"
            ))
        }),
    }
}

impl DnsChecker {
    /// `server`: one nameserver to ask instead of the system's. `timeout` applies per query attempt.
    pub fn new(server: Option<SocketAddr>, timeout: Duration) -> Result<Self, DnsSetupError> {
        let (config, mut options) = resolver_config(server)?;
        options.timeout = timeout;
        options.attempts = 1;
        options.cache_size = 0;
        options.positive_max_ttl = Some(Duration::ZERO);
        options.negative_max_ttl = Some(Duration::ZERO);
        // Names are always absolute: no search domain may be appended to them.
        options.ndots = 0;
        let resolver = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(options)
            .build()
            .map_err(|e| DnsSetupError(e.to_string()))?;
        Ok(Self { resolver })
    }

    /// Checks every record concurrently; results are in the order of `records`.
    pub async fn check_all(&self, records: &[ExpectedRecord]) -> Vec<RecordCheck> {
        futures::future::join_all(records.iter().map(|r| self.check(r))).await
    }

    pub async fn check(&self, record: &ExpectedRecord) -> RecordCheck {
        let Ok(name) = Name::from_ascii(format!("{}.", record.name)) else {
            return RecordCheck {
                status: RecordStatus::Failed,
                detail: Some("the record name is not a valid DNS name".to_owned()),
            };
        };
        let wire_type = match record.record_type {
            RecordType::Txt => WireType::TXT,
            RecordType::Mx => WireType::MX,
            RecordType::Cname => WireType::CNAME,
        };
        let lookup = match self.resolver.lookup(name, wire_type).await {
            Ok(lookup) => lookup,
            Err(NetError::Dns(DnsError::NoRecordsFound(_))) => return pending(),
            Err(e) => {
                return RecordCheck {
                    status: RecordStatus::TemporaryFailure,
                    detail: Some(truncate(&e.to_string())),
                };
            }
        };
        let found: Vec<String> = lookup
            .answers()
            .iter()
            .filter_map(|answer| match &answer.data {
                RData::TXT(txt) => Some(
                    txt.txt_data
                        .iter()
                        .map(|part| String::from_utf8_lossy(part).into_owned())
                        .collect::<String>(),
                ),
                RData::MX(mx) => Some(host(&mx.exchange.to_ascii())),
                RData::CNAME(cname) => Some(host(&cname.0.to_ascii())),
                _ => None,
            })
            .collect();
        judge(record, &found)
    }
}

/// Compares what DNS holds with what is expected.
pub fn judge(record: &ExpectedRecord, found: &[String]) -> RecordCheck {
    let relevant: Vec<&String> = match record.purpose {
        RecordPurpose::Dkim => found
            .iter()
            .filter(|v| starts_with_tag(v, "v=DKIM1"))
            .collect(),
        RecordPurpose::Spf if record.record_type == RecordType::Txt => found
            .iter()
            .filter(|v| starts_with_tag(v, "v=spf1"))
            .collect(),
        RecordPurpose::Dmarc => found
            .iter()
            .filter(|v| starts_with_tag(v, "v=DMARC1"))
            .collect(),
        _ => found.iter().collect(),
    };
    if relevant.is_empty() {
        return if found.is_empty() {
            pending()
        } else {
            failed(found.iter())
        };
    }
    let matches = |value: &str| match (record.purpose, record.record_type) {
        (RecordPurpose::Dkim, _) => dkim_matches(&record.value, value),
        (RecordPurpose::Spf, RecordType::Txt) => spf_matches(&record.value, value),
        // Any DMARC policy will do: the recommended one is only a starting point.
        (RecordPurpose::Dmarc, _) => true,
        _ => value.eq_ignore_ascii_case(&record.value),
    };
    // Two SPF records on one name make SPF fail for every message (RFC 7208 §4.5).
    if record.purpose == RecordPurpose::Spf
        && record.record_type == RecordType::Txt
        && relevant.len() > 1
    {
        return failed(relevant.into_iter());
    }
    if relevant.iter().any(|v| matches(v)) {
        RecordCheck {
            status: RecordStatus::Verified,
            detail: None,
        }
    } else {
        failed(relevant.into_iter())
    }
}

fn pending() -> RecordCheck {
    RecordCheck {
        status: RecordStatus::Pending,
        detail: None,
    }
}

fn failed<'a>(found: impl Iterator<Item = &'a String>) -> RecordCheck {
    let joined = found.map(String::as_str).collect::<Vec<_>>().join(" | ");
    RecordCheck {
        status: RecordStatus::Failed,
        detail: Some(truncate(&format!("found: {joined}"))),
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(FOUND_MAX_CHARS).collect()
}

fn host(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn starts_with_tag(value: &str, tag: &str) -> bool {
    value
        .trim_start()
        .get(..tag.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(tag))
}

/// `tag=value` pairs of a DKIM key record, with whitespace removed from values (RFC 6376 §3.6.1 allows folding).
fn dkim_tags(record: &str) -> Vec<(String, String)> {
    record
        .split(';')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| {
            (
                k.trim().to_ascii_lowercase(),
                v.chars().filter(|c| !c.is_whitespace()).collect(),
            )
        })
        .collect()
}

fn dkim_matches(expected: &str, found: &str) -> bool {
    let expected = dkim_tags(expected);
    let found = dkim_tags(found);
    let tag = |tags: &[(String, String)], name: &str| {
        tags.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    };
    // `k=` defaults to rsa when absent (RFC 6376 §3.6.1).
    let key_type = |tags: &[(String, String)]| tag(tags, "k").unwrap_or_else(|| "rsa".to_owned());
    tag(&found, "p").is_some()
        && tag(&found, "p") == tag(&expected, "p")
        && key_type(&found) == key_type(&expected)
}

/// The published SPF record must contain every mechanism we ask for; the owner may add others.
fn spf_matches(expected: &str, found: &str) -> bool {
    let found_terms: Vec<String> = found
        .split_whitespace()
        .map(|t| t.trim_start_matches('+').to_ascii_lowercase())
        .collect();
    expected
        .split_whitespace()
        .filter(|t| !t.eq_ignore_ascii_case("v=spf1") && !t.ends_with("all"))
        .all(|t| found_terms.contains(&t.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expected(purpose: RecordPurpose, record_type: RecordType, value: &str) -> ExpectedRecord {
        ExpectedRecord {
            purpose,
            record_type,
            name: "x.example.com".into(),
            value: value.into(),
            priority: None,
            required: true,
            selector: None,
        }
    }

    fn status(record: &ExpectedRecord, found: &[&str]) -> RecordStatus {
        let found: Vec<String> = found.iter().map(|s| s.to_string()).collect();
        judge(record, &found).status
    }

    #[test]
    fn dkim_compares_key_and_type_ignoring_folding() {
        let r = expected(
            RecordPurpose::Dkim,
            RecordType::Txt,
            "v=DKIM1; k=rsa; p=ABCDEF",
        );
        assert_eq!(
            status(&r, &["v=DKIM1; k=rsa; p=ABC DEF"]),
            RecordStatus::Verified
        );
        assert_eq!(status(&r, &["v=DKIM1; p=ABCDEF"]), RecordStatus::Verified);
        assert_eq!(
            status(&r, &["v=DKIM1; k=rsa; p=OTHER"]),
            RecordStatus::Failed
        );
        assert_eq!(
            status(&r, &["v=DKIM1; k=ed25519; p=ABCDEF"]),
            RecordStatus::Failed
        );
        assert_eq!(
            status(&r, &["google-site-verification=x"]),
            RecordStatus::Failed
        );
        assert_eq!(status(&r, &[]), RecordStatus::Pending);
        let check = judge(&r, &["v=DKIM1; k=rsa; p=OTHER".to_string()]);
        assert_eq!(
            check.detail.as_deref(),
            Some("found: v=DKIM1; k=rsa; p=OTHER")
        );
    }

    #[test]
    fn spf_needs_our_mechanisms_and_exactly_one_record() {
        let r = expected(
            RecordPurpose::Spf,
            RecordType::Txt,
            "v=spf1 include:amazonses.com ~all",
        );
        assert_eq!(
            status(&r, &["v=spf1 ip4:1.2.3.4 include:amazonses.com -all"]),
            RecordStatus::Verified
        );
        assert_eq!(
            status(&r, &["v=spf1 include:other.com ~all"]),
            RecordStatus::Failed
        );
        assert_eq!(
            status(&r, &["v=spf1 include:amazonses.com ~all", "v=spf1 mx ~all"]),
            RecordStatus::Failed
        );
    }

    #[test]
    fn mx_and_cname_compare_hosts() {
        let r = expected(
            RecordPurpose::Spf,
            RecordType::Mx,
            "feedback-smtp.us-east-1.amazonses.com",
        );
        assert_eq!(
            status(&r, &["feedback-smtp.us-east-1.amazonses.com"]),
            RecordStatus::Verified
        );
        assert_eq!(status(&r, &["mx.other.com"]), RecordStatus::Failed);
    }
}
