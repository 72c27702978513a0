//! What sending domains need from the deployment: where DNS questions go, and the record values that depend
//! on the transport.

use std::net::SocketAddr;
use std::time::Duration;

use super::{Reader, names, parse_host};

pub const DEFAULT_DNS_TIMEOUT_SECONDS: u64 = 5;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainSettings {
    /// `DNS_RESOLVER`: one nameserver instead of the system's.
    pub dns_resolver: Option<SocketAddr>,
    pub dns_timeout: Duration,
    /// `SPF_INCLUDE`: SPF mechanisms for the return path, e.g. `include:_spf.relay.example ip4:203.0.113.7`.
    pub spf_include: Option<String>,
    /// `RETURN_PATH_MX`: host of the bounce MX record.
    pub return_path_mx: Option<String>,
    /// `DMARC_RUA`: address for aggregate reports in the recommended DMARC record.
    pub dmarc_rua: Option<String>,
    /// `TRACKING_CNAME_TARGET`: host tracking subdomains point at.
    pub tracking_cname_target: Option<String>,
}

impl DomainSettings {
    pub(super) fn read(r: &mut Reader) -> Self {
        Self {
            dns_resolver: r.setting(names::DNS_RESOLVER, None, |v| {
                v.parse::<SocketAddr>().map(Some).map_err(|_| {
                    format!("must be an IP address and port such as 127.0.0.1:53, not `{v}`")
                })
            }),
            dns_timeout: r.setting(
                names::DNS_TIMEOUT_SECONDS,
                Duration::from_secs(DEFAULT_DNS_TIMEOUT_SECONDS),
                |v| match v.parse::<u64>() {
                    Ok(n) if (1..=60).contains(&n) => Ok(Duration::from_secs(n)),
                    _ => Err(format!(
                        "must be a whole number of seconds from 1 to 60, not `{v}`"
                    )),
                },
            ),
            spf_include: r.setting(names::SPF_INCLUDE, None, |v| parse_spf_include(v).map(Some)),
            return_path_mx: r.setting(names::RETURN_PATH_MX, None, |v| parse_host(v).map(Some)),
            dmarc_rua: r.setting(names::DMARC_RUA, None, |v| {
                let address = v.strip_prefix("mailto:").unwrap_or(v);
                match address.rsplit_once('@') {
                    Some((local, domain))
                        if !local.is_empty()
                            && !local.contains([' ', ';', ',', '!', '"'])
                            && opensend_core::DomainName::parse(domain).is_ok() =>
                    {
                        Ok(Some(address.to_owned()))
                    }
                    _ => Err(format!(
                        "must be an email address such as dmarc@example.com, not `{v}`"
                    )),
                }
            }),
            tracking_cname_target: r.setting(names::TRACKING_CNAME_TARGET, None, |v| {
                parse_host(v).map(Some)
            }),
        }
    }
}

/// SPF mechanisms an operator may configure: the ones that name senders (no `all`, no modifiers).
fn parse_spf_include(v: &str) -> Result<String, String> {
    let valid = |term: &str| {
        let term = term.trim_start_matches(['+', '?', '~', '-']);
        let (name, arg) = term.split_once(':').unwrap_or((term, ""));
        let name = name.split('/').next().unwrap_or_default();
        matches!(name.to_ascii_lowercase().as_str(), "include" | "ip4" | "ip6" | "exists" if !arg.is_empty())
            || matches!(name.to_ascii_lowercase().as_str(), "a" | "mx")
    };
    let terms: Vec<&str> = v.split_whitespace().collect();
    if terms.is_empty()
        || !terms
            .iter()
            .all(|t| valid(t) && t.is_ascii() && !t.contains(['"', ';']))
    {
        return Err(format!(
            "must be SPF mechanisms such as `include:_spf.relay.example ip4:203.0.113.7` (include, ip4, ip6, a, mx, exists), not `{v}`"
        ));
    }
    Ok(terms.join(" "))
}

#[cfg(test)]
mod tests {
    use super::super::{Config, Vars};
    use super::*;

    #[test]
    fn domain_settings_are_parsed() {
        let vars = Vars::from_pairs([
            ("DNS_RESOLVER", "127.0.0.1:5353"),
            (
                "SPF_INCLUDE",
                " include:_spf.relay.example   ip4:203.0.113.7 ",
            ),
            ("RETURN_PATH_MX", "Bounces.Example.com"),
            ("DMARC_RUA", "mailto:dmarc@example.com"),
        ]);
        let d = Config::from_vars(&vars).unwrap().domains;
        assert_eq!(d.dns_resolver, Some("127.0.0.1:5353".parse().unwrap()));
        assert_eq!(d.dns_timeout, Duration::from_secs(5));
        assert_eq!(
            d.spf_include.as_deref(),
            Some("include:_spf.relay.example ip4:203.0.113.7")
        );
        assert_eq!(d.return_path_mx.as_deref(), Some("bounces.example.com"));
        assert_eq!(d.dmarc_rua.as_deref(), Some("dmarc@example.com"));
        assert_eq!(d.tracking_cname_target, None);
    }
}
