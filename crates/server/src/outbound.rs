//! TEMPORARY shim until the SSRF guard lands (replaced by the real module on merge).
use std::time::Duration;

#[derive(Clone, Debug, Default)]
pub struct OutboundPolicy;

#[derive(Debug, thiserror::Error)]
#[error("is not an http(s) URL")]
pub struct UrlRefusal;

impl OutboundPolicy {
    pub fn check_url(&self, raw: &str) -> Result<url::Url, UrlRefusal> {
        let url = url::Url::parse(raw).map_err(|_| UrlRefusal)?;
        matches!(url.scheme(), "http" | "https")
            .then_some(url)
            .ok_or(UrlRefusal)
    }
    pub async fn check_resolved(&self, _url: &url::Url) -> Result<(), UrlRefusal> {
        Ok(())
    }
    pub fn client(&self, timeout: Duration) -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default()
    }
}
