//! Open and click tracking for the emails of a domain that turned it on (`open_tracking`, `click_tracking`).
//!
//! When the delivery worker builds such an email's message, each web link of its HTML body is rewritten to
//! `{tracking base}/t/c/{token}` and a 1×1 image `{tracking base}/t/o/{token}` is added (see
//! [`opensend_mail::tracking`] for what counts as a link). A token is signed ([`LinkSigner`], a key derived from
//! `AUTH_SECRET` per purpose) and carries the organization, the email and, for a click, the destination: nothing
//! is stored per link, and the redirect goes only where a signed token says, never to a URL it was handed
//! (no open redirect). The tracking base is `https://{tracking_subdomain}.{domain}` when the domain has a
//! tracking subdomain (its CNAME points at this deployment; the scheme and port are `APP_URL`'s), else
//! `APP_URL`. What the routes count is in [`routes`].

pub mod routes;

use opensend_core::signed_link::LinkSigner;
use opensend_store::records::DomainRecord;
use url::Url;
use uuid::Uuid;

use crate::config::Config;

/// The path prefix of tracked links.
pub const CLICK_PATH: &str = "/t/c/";
/// The path prefix of the open pixel.
pub const OPEN_PATH: &str = "/t/o/";
/// Longest link the rewriting signs; a longer one is left as it was (the token would make it longer still).
pub const MAX_TRACKED_URL: usize = 2_048;

/// Token payloads begin with this version byte, so their layout can change without misreading old emails.
const TOKEN_VERSION: u8 = 1;

/// Signs and reads tracking tokens. `None` in [`crate::state::AppState`] only when `AUTH_SECRET` is unset
/// (the startup checks generate or require it), and then nothing is tracked.
pub struct Tracker {
    open: LinkSigner,
    click: LinkSigner,
    app_url: Url,
}

/// What one domain tracks, and under which host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DomainTracking {
    pub opens: bool,
    pub clicks: bool,
    /// `{tracking_subdomain}.{domain}`, when the domain has one.
    pub host: Option<String>,
}

impl DomainTracking {
    pub fn of(domain: &DomainRecord) -> Self {
        Self {
            opens: domain.open_tracking,
            clicks: domain.click_tracking,
            host: domain
                .tracking_subdomain
                .as_ref()
                .map(|label| format!("{label}.{}", domain.name)),
        }
    }
}

/// The email a token is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrackedEmail {
    pub organization_id: Uuid,
    pub email_id: Uuid,
}

impl Tracker {
    pub fn from_config(config: &Config) -> Option<Self> {
        let secret = config.secrets.auth_secret.as_ref()?;
        Some(Self {
            open: LinkSigner::new(secret, "tracking-open"),
            click: LinkSigner::new(secret, "tracking-click"),
            app_url: config.app_url.clone(),
        })
    }

    /// `html` with its links and the open pixel rewritten as `tracking` asks.
    pub fn track_html(&self, html: &str, email: TrackedEmail, tracking: &DomainTracking) -> String {
        if !tracking.opens && !tracking.clicks {
            return html.to_owned();
        }
        let base = self.base(tracking);
        let unsubscribe = format!(
            "{}/unsubscribe/",
            self.app_url.as_str().trim_end_matches('/')
        );
        let mut html = if tracking.clicks {
            opensend_mail::tracking::rewrite_links(html, |link| {
                let url = Url::parse(link).ok()?;
                let url = url.as_str();
                // The unsubscribe link stays what the List-Unsubscribe header says: one step, untracked.
                if url.starts_with(&unsubscribe) {
                    return None;
                }
                (url.len() <= MAX_TRACKED_URL).then(|| {
                    let mut payload = email_payload(email);
                    payload.extend_from_slice(url.as_bytes());
                    format!("{base}{CLICK_PATH}{}", self.click.sign(&payload))
                })
            })
        } else {
            html.to_owned()
        };
        if tracking.opens {
            let token = self.open.sign(&email_payload(email));
            html = opensend_mail::tracking::add_open_pixel(
                &html,
                &format!("{base}{OPEN_PATH}{token}"),
            );
        }
        html
    }

    /// The email of an open pixel's token; `None` for anything this deployment did not sign as one.
    pub fn read_open(&self, token: &str) -> Option<TrackedEmail> {
        let payload = self.open.verify(token)?;
        let (email, rest) = read_email_payload(&payload)?;
        rest.is_empty().then_some(email)
    }

    /// The email and destination of a tracked link's token; `None` for anything this deployment did not sign
    /// as one.
    pub fn read_click(&self, token: &str) -> Option<(TrackedEmail, Url)> {
        let payload = self.click.verify(token)?;
        let (email, rest) = read_email_payload(&payload)?;
        let url = Url::parse(std::str::from_utf8(rest).ok()?).ok()?;
        matches!(url.scheme(), "http" | "https").then_some((email, url))
    }

    /// Where tracked URLs point: the domain's tracking host (with `APP_URL`'s scheme and port), else `APP_URL`.
    fn base(&self, tracking: &DomainTracking) -> String {
        let app = self.app_url.as_str().trim_end_matches('/');
        let Some(host) = &tracking.host else {
            return app.to_owned();
        };
        match self.app_url.port() {
            Some(port) => format!("{}://{host}:{port}", self.app_url.scheme()),
            None => format!("{}://{host}", self.app_url.scheme()),
        }
    }
}

fn email_payload(email: TrackedEmail) -> Vec<u8> {
    let mut payload = Vec::with_capacity(33 + MAX_TRACKED_URL);
    payload.push(TOKEN_VERSION);
    payload.extend_from_slice(email.organization_id.as_bytes());
    payload.extend_from_slice(email.email_id.as_bytes());
    payload
}

fn read_email_payload(payload: &[u8]) -> Option<(TrackedEmail, &[u8])> {
    let (&version, rest) = payload.split_first()?;
    if version != TOKEN_VERSION {
        return None;
    }
    let organization = rest.get(..16)?;
    let email = rest.get(16..32)?;
    Some((
        TrackedEmail {
            organization_id: Uuid::from_slice(organization).ok()?,
            email_id: Uuid::from_slice(email).ok()?,
        },
        rest.get(32..)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Vars;

    fn tracker(app_url: &str) -> Tracker {
        let config = Config::from_vars(&Vars::from_pairs([
            ("APP_URL", app_url),
            (
                "AUTH_SECRET",
                "a-test-secret-that-is-long-enough-0123456789",
            ),
        ]))
        .unwrap();
        Tracker::from_config(&config).unwrap()
    }

    fn email() -> TrackedEmail {
        TrackedEmail {
            organization_id: Uuid::now_v7(),
            email_id: Uuid::now_v7(),
        }
    }

    fn token_after<'a>(html: &'a str, prefix: &str) -> &'a str {
        let start = html.find(prefix).unwrap() + prefix.len();
        let rest = &html[start..];
        &rest[..rest.find('"').unwrap()]
    }

    #[test]
    fn links_and_the_pixel_carry_signed_tokens() {
        let tracker = tracker("http://localhost:3015");
        let email = email();
        let both = DomainTracking {
            opens: true,
            clicks: true,
            host: None,
        };
        let html = tracker.track_html(
            r#"<a href="https://example.com/a?b=1&amp;c=2">x</a>"#,
            email,
            &both,
        );
        let click = token_after(&html, "http://localhost:3015/t/c/");
        let (read, url) = tracker.read_click(click).unwrap();
        assert_eq!(read, email);
        assert_eq!(url.as_str(), "https://example.com/a?b=1&c=2");
        let open = token_after(&html, "http://localhost:3015/t/o/");
        assert_eq!(tracker.read_open(open), Some(email));
        // A token of one kind is not one of the other.
        assert_eq!(tracker.read_open(click), None);
        assert_eq!(tracker.read_click(open), None);
        // Nor is a token of another deployment.
        assert_eq!(tracker_other().read_click(click), None);
    }

    fn tracker_other() -> Tracker {
        let config = Config::from_vars(&Vars::from_pairs([
            ("APP_URL", "http://localhost:3015"),
            ("AUTH_SECRET", "another-deployment-secret-0123456789abcdef"),
        ]))
        .unwrap();
        Tracker::from_config(&config).unwrap()
    }

    #[test]
    fn what_the_domain_does_not_track_is_left_alone() {
        let tracker = tracker("https://mail.example.org");
        let html = r#"<a href="https://example.com/">x</a>"#;
        let none = DomainTracking::default();
        assert_eq!(tracker.track_html(html, email(), &none), html);
        let opens = DomainTracking {
            opens: true,
            ..DomainTracking::default()
        };
        let out = tracker.track_html(html, email(), &opens);
        assert!(out.starts_with(html), "{out}");
        assert!(
            out.contains(r#"<img src="https://mail.example.org/t/o/"#),
            "{out}"
        );
    }

    #[test]
    fn a_tracking_subdomain_is_the_host_of_tracked_links() {
        let tracker = tracker("https://mail.example.org");
        let tracking = DomainTracking {
            opens: false,
            clicks: true,
            host: Some("links.acme.test".to_owned()),
        };
        let out = tracker.track_html(
            r#"<a href="https://example.com/">x</a>"#,
            email(),
            &tracking,
        );
        assert!(
            out.contains(r#"href="https://links.acme.test/t/c/"#),
            "{out}"
        );
    }
}
