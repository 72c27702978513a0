//! Which URLs we fetch on SNS's behalf: only Amazon SNS's own HTTPS endpoints (plus, in tests, one prefix the
//! server allows explicitly). The certificate is trusted because of where it comes from, so this policy is
//! the root of trust for every signature.

use url::{Host, Url};

/// Direction words of AWS region names (`us-east-1`, `ap-southeast-4`, `eu-central-2`, `cn-northwest-1`).
const REGION_DIRECTIONS: &[&str] = &[
    "east",
    "west",
    "north",
    "south",
    "central",
    "northeast",
    "northwest",
    "southeast",
    "southwest",
];

/// `sns.<region>.amazonaws.com` or `sns.<region>.amazonaws.com.cn`, and nothing else under those domains:
/// Amazon hosts other services there (`sns.s3.amazonaws.com` would be S3, where anyone can publish a file),
/// so only a name shaped like a real region is SNS. The host must be as the URL parser leaves it (lower
/// case, no trailing dot).
fn is_sns_host(host: &str) -> bool {
    let Some(rest) = host.strip_prefix("sns.") else {
        return false;
    };
    rest.strip_suffix(".amazonaws.com")
        .or_else(|| rest.strip_suffix(".amazonaws.com.cn"))
        .is_some_and(is_region_name)
}

/// `<area>(-gov|-iso[a-z]?)?-<direction>-<number>`: a two-letter area (`us`, `eu`, `ap`, `cn`, `il`, `me`…),
/// optionally a GovCloud or isolated partition, a direction word and a one- or two-digit number, e.g.
/// `us-east-1`, `us-gov-west-1`, `us-isob-east-1`, `ap-southeast-4`.
fn is_region_name(region: &str) -> bool {
    let mut parts = region.split('-');
    let area_ok = parts
        .next()
        .is_some_and(|area| area.len() == 2 && area.bytes().all(|b| b.is_ascii_lowercase()));
    let is_partition = |part: &str| {
        part == "gov"
            || part.strip_prefix("iso").is_some_and(|suffix| {
                suffix.is_empty()
                    || (suffix.len() == 1 && suffix.as_bytes()[0].is_ascii_lowercase())
            })
    };
    let mut next = parts.next();
    if next.is_some_and(is_partition) {
        next = parts.next();
    }
    let direction_ok = next.is_some_and(|d| REGION_DIRECTIONS.contains(&d));
    let number_ok = parts
        .next()
        .is_some_and(|n| (1..=2).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit()));
    area_ok && direction_ok && number_ok && parts.next().is_none()
}

/// `https`, an SNS host, no user info, the default port.
fn is_sns_https_url(url: &Url) -> bool {
    url.scheme() == "https"
        && url.username().is_empty()
        && url.password().is_none()
        && url.port().is_none()
        && matches!(url.host(), Some(Host::Domain(host)) if is_sns_host(host))
}

/// Whether `url` lies under the test prefix: same scheme, host and port, no user info, and the normalised URL
/// starts with the normalised prefix (so `http://127.0.0.1:8089/` admits neither port 80890 nor
/// `http://127.0.0.1:8089@elsewhere/`).
fn under_test_prefix(url: &Url, prefix: Option<&str>) -> bool {
    let Some(prefix) = prefix.and_then(|p| Url::parse(p).ok()) else {
        return false;
    };
    url.scheme() == prefix.scheme()
        && url.host() == prefix.host()
        && url.port_or_known_default() == prefix.port_or_known_default()
        && url.username().is_empty()
        && url.password().is_none()
        && url.as_str().starts_with(prefix.as_str())
}

/// The `SigningCertURL` we would fetch, or `None` if the policy refuses it: an SNS HTTPS URL whose path ends
/// in `.pem`, without query or fragment; or a URL under `test_prefix`.
pub fn cert_url(raw: &str, test_prefix: Option<&str>) -> Option<Url> {
    let url = Url::parse(raw).ok()?;
    if under_test_prefix(&url, test_prefix) {
        return Some(url);
    }
    let allowed = is_sns_https_url(&url)
        && url.path().ends_with(".pem")
        && url.query().is_none()
        && url.fragment().is_none();
    allowed.then_some(url)
}

/// Whether the policy lets us fetch `raw` as a `SigningCertURL`.
pub fn cert_url_allowed(raw: &str, test_prefix: Option<&str>) -> bool {
    cert_url(raw, test_prefix).is_some()
}

/// The `SubscribeURL` we would GET to confirm a subscription, or `None`: an SNS HTTPS URL, or one under
/// `test_prefix`.
pub fn subscribe_url(raw: &str, test_prefix: Option<&str>) -> Option<Url> {
    let url = Url::parse(raw).ok()?;
    (under_test_prefix(&url, test_prefix) || (is_sns_https_url(&url) && url.fragment().is_none()))
        .then_some(url)
}

/// Whether the policy lets us GET `raw` as a `SubscribeURL`. Fetch it only after the confirmation message
/// itself verified.
pub fn subscribe_url_allowed(raw: &str, test_prefix: Option<&str>) -> bool {
    subscribe_url(raw, test_prefix).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cert_urls_of_sns_are_allowed() {
        for url in [
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc123.pem",
            "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem",
            "https://SNS.EU-WEST-1.AMAZONAWS.COM/x.pem",
            "https://sns.us-gov-west-1.amazonaws.com:443/x.pem",
        ] {
            assert!(cert_url_allowed(url, None), "{url}");
        }
    }

    #[test]
    fn other_cert_urls_are_refused() {
        for url in [
            "http://sns.us-east-1.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com/x.pem.txt",
            "https://sns.us-east-1.amazonaws.com/x.pem?y=1",
            "https://sns.us-east-1.amazonaws.com/x.pem#f",
            "https://sns.us-east-1.amazonaws.com:8443/x.pem",
            "https://user@sns.us-east-1.amazonaws.com/x.pem",
            "https://user:pw@sns.us-east-1.amazonaws.com/x.pem",
            "https://sns.amazonaws.com/x.pem",
            "https://sns..amazonaws.com/x.pem",
            "https://sns.us_east.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com.evil.example/x.pem",
            "https://sns.us-east-1.amazonaws.com./x.pem",
            "https://evil.example/sns.us-east-1.amazonaws.com/x.pem",
            "https://sns.us.east.amazonaws.com/x.pem",
            "https://xsns.us-east-1.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.co/x.pem",
            "https://54.239.28.85/x.pem",
            "file:///etc/x.pem",
            "not a url",
            "",
        ] {
            assert!(!cert_url_allowed(url, None), "{url}");
        }
    }

    #[test]
    fn only_region_shaped_sns_hosts_are_trusted() {
        for host in [
            "sns.us-east-1.amazonaws.com",
            "sns.eu-central-2.amazonaws.com",
            "sns.ap-southeast-4.amazonaws.com",
            "sns.ap-northeast-3.amazonaws.com",
            "sns.us-gov-west-1.amazonaws.com",
            "sns.il-central-1.amazonaws.com",
            "sns.me-south-1.amazonaws.com",
            "sns.ca-west-1.amazonaws.com",
            "sns.us-iso-east-1.amazonaws.com",
            "sns.us-isob-east-1.amazonaws.com",
            "sns.cn-north-1.amazonaws.com.cn",
            "sns.cn-northwest-1.amazonaws.com.cn",
            "sns.eu-west-10.amazonaws.com",
        ] {
            assert!(is_sns_host(host), "{host}");
        }
        for host in [
            "sns.s3.amazonaws.com",
            "sns.amazonaws.com",
            "sns.amazonaws.com.cn",
            "sns..amazonaws.com",
            "sns.us-east.amazonaws.com",
            "sns.us-east-.amazonaws.com",
            "sns.us-east-1a.amazonaws.com",
            "sns.us-east-123.amazonaws.com",
            "sns.x-y-1.evil.amazonaws.com",
            "sns.us-east-1.evil.amazonaws.com",
            "sns.evil.us-east-1.amazonaws.com",
            "sns.usa-east-1.amazonaws.com",
            "sns.u-east-1.amazonaws.com",
            "sns.us-up-1.amazonaws.com",
            "sns.us-gov-1.amazonaws.com",
            "sns.us-gov-iso-east-1.amazonaws.com",
            "sns.us-isobb-east-1.amazonaws.com",
            "sns.us-iso1-east-1.amazonaws.com",
            "sns.us-east-1-1.amazonaws.com",
            "sns.us--east-1.amazonaws.com",
            "sns.-us-east-1.amazonaws.com",
            "sns.us-east-1.amazonaws.com.",
            "sns.us-east-1.amazonaws.com.cn.",
            "SNS.US-EAST-1.AMAZONAWS.COM",
            "sns.US-east-1.amazonaws.com",
            "sns.us-EAST-1.amazonaws.com",
            "sns.us-east-\u{0661}.amazonaws.com",
            "sns.us-east-1.amazonaws.co",
            "sns.us-east-1.amazonaws.cn",
            "xsns.us-east-1.amazonaws.com",
            "sqs.us-east-1.amazonaws.com",
        ] {
            assert!(!is_sns_host(host), "{host}");
        }
        // Through the URL parser: case is normalised to the one real host, lookalikes are not.
        assert!(cert_url_allowed(
            "https://SNS.US-EAST-1.AMAZONAWS.COM/x.pem",
            None
        ));
        for url in [
            "https://sns.s3.amazonaws.com/x.pem",
            "https://sns.x-y-1.evil.amazonaws.com/x.pem",
            "https://sns.us-east.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com./x.pem",
            "https://sns.us-east-\u{0661}.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com%2e/x.pem",
        ] {
            assert!(!cert_url_allowed(url, None), "{url}");
        }
        assert!(!subscribe_url_allowed(
            "https://sns.s3.amazonaws.com/?Action=ConfirmSubscription",
            None
        ));
    }

    #[test]
    fn test_prefix_admits_only_its_own_origin() {
        let prefix = Some("http://127.0.0.1:8089/");
        assert!(cert_url_allowed("http://127.0.0.1:8089/cert.pem", prefix));
        assert!(cert_url_allowed("http://127.0.0.1:8089/any/path", prefix));
        assert!(subscribe_url_allowed(
            "http://127.0.0.1:8089/confirm?x=1",
            prefix
        ));
        for url in [
            "http://127.0.0.1:80890/cert.pem",
            "http://127.0.0.1:8089@evil.example/cert.pem",
            "http://user@127.0.0.1:8089/cert.pem",
            "https://127.0.0.1:8089/cert.pem",
            "http://127.0.0.2:8089/cert.pem",
        ] {
            assert!(!cert_url_allowed(url, prefix), "{url}");
        }
        assert!(!cert_url_allowed("http://127.0.0.1:8089/cert.pem", None));
        // A prefix without the trailing slash is normalised, so it cannot match another port either.
        assert!(!cert_url_allowed(
            "http://127.0.0.1:80890/cert.pem",
            Some("http://127.0.0.1:8089")
        ));
        // A prefix with a path admits only URLs under that path.
        let deep = Some("http://127.0.0.1:8089/sns/");
        assert!(cert_url_allowed("http://127.0.0.1:8089/sns/c.pem", deep));
        assert!(!cert_url_allowed("http://127.0.0.1:8089/other/c.pem", deep));
    }

    #[test]
    fn subscribe_urls() {
        assert!(subscribe_url_allowed(
            "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-east-1:1:t&Token=abc",
            None
        ));
        for url in [
            "http://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription",
            "https://evil.example/?Action=ConfirmSubscription",
            "https://sns.us-east-1.amazonaws.com.evil.example/?Action=ConfirmSubscription",
            "https://sns.us-east-1.amazonaws.com:444/?Action=ConfirmSubscription",
            "https://a@sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription",
            "https://169.254.169.254/latest/meta-data/",
        ] {
            assert!(!subscribe_url_allowed(url, None), "{url}");
        }
    }
}
