//! Which URLs we fetch on SNS's behalf: only Amazon SNS's own HTTPS endpoints (plus, in tests, one prefix the
//! server allows explicitly). The certificate is trusted because of where it comes from, so this policy is
//! the root of trust for every signature.

use url::{Host, Url};

/// `sns.<region>.amazonaws.com` or `sns.<region>.amazonaws.com.cn`, region = lowercase letters, digits, dashes.
fn is_sns_host(host: &str) -> bool {
    let rest = match host.strip_prefix("sns.") {
        Some(rest) => rest,
        None => return false,
    };
    let region = rest
        .strip_suffix(".amazonaws.com")
        .or_else(|| rest.strip_suffix(".amazonaws.com.cn"));
    match region {
        Some(region) => {
            !region.is_empty()
                && region
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        }
        None => false,
    }
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
