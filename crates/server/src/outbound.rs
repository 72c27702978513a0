//! Requests the server makes on a user's behalf (webhook deliveries, attachments given by `path`), and the
//! guard that keeps them away from the deployment's own network (server-side request forgery).
//!
//! A URL a user hands us passes three gates:
//!
//! 1. [`OutboundPolicy::check_url`], syntax: `http` or `https`, at most [`MAX_URL_CHARS`], a host, no user
//!    name or password. A host written as an IP address must be public ([`classify`]); the `url` crate has
//!    already normalised spellings such as `0x7f000001` or `127.1` to `127.0.0.1`.
//! 2. [`OutboundPolicy::check_resolved`], DNS: the host's A and AAAA records are looked up, and the URL is
//!    refused if the name does not resolve or if *any* address is not public. This is what lets the API
//!    answer a precise 422 before anything is sent.
//! 3. At connect time: the clients this module builds resolve names through a resolver that drops every
//!    address that is not public and fails when none remain, so a name whose answer changes between the
//!    check and the connection (DNS rebinding) still cannot reach a private address. reqwest hands IP-literal
//!    hosts straight to the socket without asking the resolver, so gate 1 is the only check those get:
//!    always run it first.
//!
//! The clients follow no redirects (a 3xx is returned as the response), ignore proxy settings from the
//! environment (a proxy would resolve the name itself, behind the guard), speak rustls, and send
//! `User-Agent: OpenSend`.
//!
//! `ALLOW_PRIVATE_WEBHOOK_URLS=true` turns the address checks off (the syntax checks stay) for local
//! development and tests; a production deployment refuses to start with it (see `startup_checks`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::LookupIpStrategy;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use url::{Host, Url};

use crate::config::Config;

/// Longest URL accepted, in characters (and in bytes once normalised).
pub const MAX_URL_CHARS: usize = 2048;
/// `User-Agent` of every outbound request.
pub const USER_AGENT: &str = "OpenSend";
/// Longest wait for a connection (TCP and TLS), whatever the request's own timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an address is not public.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressKind {
    /// `0.0.0.0`, `::`.
    Unspecified,
    /// `0.0.0.0/8` other than `0.0.0.0`.
    ThisNetwork,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// `10/8`, `172.16/12`, `192.168/16`, and the deprecated IPv6 site-local `fec0::/10`.
    Private,
    /// `100.64.0.0/10`, carrier-grade NAT.
    Shared,
    /// `169.254/16`, `fe80::/10`.
    LinkLocal,
    /// `fc00::/7`.
    UniqueLocal,
    /// `224/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// `198.18/15`, `2001:2::/48`.
    Benchmarking,
    /// Everything else that is not global unicast: `240/4`, `192.0.0/24`, IPv6 outside `2000::/3`,
    /// `2001::/23` (Teredo, ORCHID…).
    Reserved,
}

impl fmt::Display for AddressKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressKind::Unspecified => "an unspecified address",
            AddressKind::ThisNetwork => "a \"this network\" address (0.0.0.0/8)",
            AddressKind::Loopback => "a loopback address",
            AddressKind::Private => "a private address",
            AddressKind::Shared => "a shared address (carrier-grade NAT, 100.64.0.0/10)",
            AddressKind::LinkLocal => "a link-local address",
            AddressKind::UniqueLocal => "a unique-local (private) address",
            AddressKind::Multicast => "a multicast address",
            AddressKind::Broadcast => "the broadcast address",
            AddressKind::Documentation => "a documentation address",
            AddressKind::Benchmarking => "a benchmarking address",
            AddressKind::Reserved => "a reserved address",
        })
    }
}

/// `None` for a public address; otherwise what kind of non-public address it is. IPv6 addresses that embed an
/// IPv4 address (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4
/// `2002::/16`) are judged by the IPv4 address inside.
pub fn classify(ip: IpAddr) -> Option<AddressKind> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<AddressKind> {
    use AddressKind::*;
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip.is_unspecified() => Unspecified,
        _ if ip.is_broadcast() => Broadcast,
        (0, _, _) => ThisNetwork,
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => Private,
        (100, 64..=127, _) => Shared,
        (127, _, _) => Loopback,
        (169, 254, _) => LinkLocal,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => Documentation,
        (198, 18..=19, _) => Benchmarking,
        // IETF protocol assignments, and the deprecated 6to4 relay anycast prefix.
        (192, 0, 0) | (192, 88, 99) => Reserved,
        (224..=239, _, _) => Multicast,
        (240..=255, _, _) => Reserved,
        _ => return None,
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<AddressKind> {
    use AddressKind::*;
    let s = ip.segments();
    let embedded = |high: u16, low: u16| {
        let [a, b] = high.to_be_bytes();
        let [c, d] = low.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    if ip.is_unspecified() {
        return Some(Unspecified);
    }
    if ip.is_loopback() {
        return Some(Loopback);
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    // IPv4-compatible (deprecated): never a destination today, whatever it embeds.
    if s[..6] == [0; 6] {
        return Some(classify_v4(embedded(s[6], s[7])).unwrap_or(Reserved));
    }
    // NAT64's well-known prefix reaches the IPv4 address inside through a translator.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return classify_v4(embedded(s[6], s[7]));
    }
    // 6to4: the IPv4 address is in bits 16 to 48.
    if s[0] == 0x2002 {
        return classify_v4(embedded(s[1], s[2]));
    }
    match s[0] {
        0xff00..=0xffff => return Some(Multicast),
        0xfe80..=0xfebf => return Some(LinkLocal),
        0xfec0..=0xfeff => return Some(Private),
        0xfc00..=0xfdff => return Some(UniqueLocal),
        // Only global unicast (2000::/3) is public; this also covers 64:ff9b:1::/48 (local NAT64) and
        // 100::/64 (discard).
        0x2000..=0x3fff => {}
        _ => return Some(Reserved),
    }
    match (s[0], s[1], s[2]) {
        (0x2001, 0x0db8, _) => Some(Documentation),
        (0x3fff, 0..=0x0fff, _) => Some(Documentation),
        (0x2001, 0x0002, 0) => Some(Benchmarking),
        (0x2001, 0..=0x01ff, _) => Some(Reserved),
        _ => None,
    }
}

/// Why a URL is refused. The messages complete a sentence that starts with the field's name; see
/// [`UrlRefusal::describe`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefusal {
    #[error("is longer than {MAX_URL_CHARS} characters")]
    TooLong,
    #[error("is not a valid URL ({0})")]
    Invalid(url::ParseError),
    #[error("must be an http:// or https:// URL, not `{0}:`")]
    Scheme(String),
    #[error("must not contain a user name or password")]
    Credentials,
    #[error("has no host")]
    NoHost,
    /// The host is an IP address that is not public.
    #[error("points at {ip}, {kind}")]
    Address { ip: IpAddr, kind: AddressKind },
    /// The host name resolves to an address that is not public.
    #[error("resolves to {ip}, {kind}")]
    Resolves {
        host: String,
        ip: IpAddr,
        kind: AddressKind,
    },
    #[error("names a host that does not resolve: {host} ({reason})")]
    Unresolvable { host: String, reason: String },
}

impl UrlRefusal {
    /// Whether the URL was refused for where it leads (not for how it is written).
    pub fn is_non_public(&self) -> bool {
        matches!(
            self,
            UrlRefusal::Address { .. } | UrlRefusal::Resolves { .. }
        )
    }

    /// The whole sentence for an API error: `` `endpoint` resolves to 10.0.0.5, a private address; webhooks
    /// can only be delivered to public addresses ``. `public_only` is added when the address was the problem.
    pub fn describe(&self, field: &str, public_only: &str) -> String {
        if self.is_non_public() {
            format!("`{field}` {self}; {public_only}")
        } else {
            format!("`{field}` {self}")
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OutboundSetupError {
    #[error(transparent)]
    Dns(#[from] opensend_mail::dns::DnsSetupError),
    #[error("cannot set up the DNS resolver for outbound requests: {0}")]
    Resolver(String),
    #[error("cannot set up the HTTP client for outbound requests: {0}")]
    Client(String),
}

/// Decides which URLs the server may fetch for a user, and builds the HTTP clients that fetch them. Cheap to
/// clone.
#[derive(Clone)]
pub struct OutboundPolicy {
    inner: Arc<Inner>,
}

struct Inner {
    allow_private: bool,
    resolver: TokioResolver,
    /// Pooled client shared by request handlers; each request sets its own timeout.
    shared: reqwest::Client,
}

impl fmt::Debug for OutboundPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboundPolicy")
            .field("allow_private", &self.inner.allow_private)
            .finish_non_exhaustive()
    }
}

impl OutboundPolicy {
    /// `allow_private`: skip the address checks (development and tests only). `dns_server`: one nameserver to
    /// ask instead of the system's (`DNS_RESOLVER`); `dns_timeout` applies per query.
    pub fn new(
        allow_private: bool,
        dns_server: Option<SocketAddr>,
        dns_timeout: Duration,
    ) -> Result<Self, OutboundSetupError> {
        let (config, mut options) = opensend_mail::dns::resolver_config(dns_server)?;
        options.timeout = dns_timeout;
        options.attempts = 2;
        // Nothing cached here: gate 2 and gate 3 each ask afresh (the system's resolver may cache).
        options.cache_size = 0;
        options.positive_max_ttl = Some(Duration::ZERO);
        options.negative_max_ttl = Some(Duration::ZERO);
        // Names are always absolute: no search domain may be appended to them.
        options.ndots = 0;
        options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        let resolver = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(options)
            .build()
            .map_err(|e| OutboundSetupError::Resolver(e.to_string()))?;
        let shared = builder(&resolver, allow_private)
            .build()
            .map_err(|e| OutboundSetupError::Client(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                allow_private,
                resolver,
                shared,
            }),
        })
    }

    /// From `ALLOW_PRIVATE_WEBHOOK_URLS`, `DNS_RESOLVER` and `DNS_TIMEOUT_SECONDS`.
    pub fn from_config(config: &Config) -> Result<Self, OutboundSetupError> {
        Self::new(
            config.allow_private_webhook_urls,
            config.domains.dns_resolver,
            config.domains.dns_timeout,
        )
    }

    /// Whether the address checks are off (`ALLOW_PRIVATE_WEBHOOK_URLS=true`).
    pub fn allows_private(&self) -> bool {
        self.inner.allow_private
    }

    /// Gate 1: the URL's syntax, and its host when that is an IP address. No I/O.
    pub fn check_url(&self, raw: &str) -> Result<Url, UrlRefusal> {
        if raw.chars().count() > MAX_URL_CHARS {
            return Err(UrlRefusal::TooLong);
        }
        let url = Url::parse(raw).map_err(UrlRefusal::Invalid)?;
        if url.as_str().len() > MAX_URL_CHARS {
            return Err(UrlRefusal::TooLong);
        }
        if !matches!(url.scheme(), "http" | "https") {
            return Err(UrlRefusal::Scheme(url.scheme().to_owned()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlRefusal::Credentials);
        }
        match url.host() {
            None => return Err(UrlRefusal::NoHost),
            Some(Host::Domain("")) => return Err(UrlRefusal::NoHost),
            Some(Host::Domain(_)) => {}
            Some(Host::Ipv4(ip)) => self.check_literal(IpAddr::V4(ip))?,
            Some(Host::Ipv6(ip)) => self.check_literal(IpAddr::V6(ip))?,
        }
        Ok(url)
    }

    /// Gate 2: looks the host up (A and AAAA) and refuses the URL if the name does not resolve or if any
    /// address is not public. With private addresses allowed, only the first condition applies.
    pub async fn check_resolved(&self, url: &Url) -> Result<(), UrlRefusal> {
        match url.host() {
            None => Err(UrlRefusal::NoHost),
            Some(Host::Ipv4(ip)) => self.check_literal(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => self.check_literal(IpAddr::V6(ip)),
            Some(Host::Domain(host)) => {
                let addresses = lookup(&self.inner.resolver, host).await?;
                if self.inner.allow_private {
                    return Ok(());
                }
                match addresses
                    .into_iter()
                    .find_map(|ip| classify(ip).map(|kind| (ip, kind)))
                {
                    Some((ip, kind)) => Err(UrlRefusal::Resolves {
                        host: host.to_owned(),
                        ip,
                        kind,
                    }),
                    None => Ok(()),
                }
            }
        }
    }

    /// Gates 1 and 2 together.
    pub async fn check(&self, raw: &str) -> Result<Url, UrlRefusal> {
        let url = self.check_url(raw)?;
        self.check_resolved(&url).await?;
        Ok(url)
    }

    /// A new pooled client with gate 3 built in, whose requests give up after `timeout` (connecting included).
    /// Build it once and keep it: every client has its own connection pool.
    pub fn client(&self, timeout: Duration) -> Result<reqwest::Client, OutboundSetupError> {
        builder(&self.inner.resolver, self.inner.allow_private)
            .timeout(timeout)
            .connect_timeout(timeout.min(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| OutboundSetupError::Client(e.to_string()))
    }

    /// The client request handlers share (gate 3 built in, no overall timeout: set one per request with
    /// `RequestBuilder::timeout`).
    pub fn shared_client(&self) -> &reqwest::Client {
        &self.inner.shared
    }

    fn check_literal(&self, ip: IpAddr) -> Result<(), UrlRefusal> {
        match classify(ip) {
            Some(kind) if !self.inner.allow_private => Err(UrlRefusal::Address { ip, kind }),
            _ => Ok(()),
        }
    }
}

/// Every client of this module starts here.
fn builder(resolver: &TokioResolver, allow_private: bool) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .use_rustls_tls()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver {
            resolver: resolver.clone(),
            allow_private,
        }))
        .user_agent(USER_AGENT)
        .connect_timeout(CONNECT_TIMEOUT)
}

/// A host's A and AAAA addresses; a name without any is refused, saying why.
async fn lookup(resolver: &TokioResolver, host: &str) -> Result<Vec<IpAddr>, UrlRefusal> {
    let unresolvable = |reason: String| UrlRefusal::Unresolvable {
        host: host.to_owned(),
        reason,
    };
    let absolute = format!("{}.", host.trim_end_matches('.'));
    match resolver.lookup_ip(absolute.as_str()).await {
        Ok(found) => {
            let addresses: Vec<IpAddr> = found.iter().collect();
            if addresses.is_empty() {
                Err(unresolvable("it has no A or AAAA record".to_owned()))
            } else {
                Ok(addresses)
            }
        }
        Err(NetError::Dns(DnsError::NoRecordsFound(none))) => Err(unresolvable(
            if none.response_code == ResponseCode::NXDomain {
                "no such name in DNS".to_owned()
            } else {
                "it has no A or AAAA record".to_owned()
            },
        )),
        Err(e) => Err(unresolvable(format!("DNS lookup failed: {e}"))),
    }
}

/// Gate 3: reqwest's resolver for our clients. Drops addresses that are not public and fails when none
/// remain, so the connection can only go where the checks allow, whatever DNS answers by then.
struct GuardedResolver {
    resolver: TokioResolver,
    allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let resolver = self.resolver.clone();
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses = lookup(&resolver, &host).await?;
            if allow_private {
                let all = addresses.into_iter().map(|ip| SocketAddr::new(ip, 0));
                return Ok(Box::new(all.collect::<Vec<_>>().into_iter()) as reqwest::dns::Addrs);
            }
            let mut refused = None;
            let mut kept = Vec::with_capacity(addresses.len());
            for ip in addresses {
                match classify(ip) {
                    None => kept.push(SocketAddr::new(ip, 0)),
                    Some(kind) => {
                        tracing::debug!(%host, %ip, "outbound connection: address dropped, not public");
                        refused.get_or_insert((ip, kind));
                    }
                }
            }
            match (kept.is_empty(), refused) {
                (true, Some((ip, kind))) => Err(Box::new(UrlRefusal::Resolves { host, ip, kind })
                    as Box<dyn std::error::Error + Send + Sync>),
                (true, None) => Err(Box::new(UrlRefusal::Unresolvable {
                    host,
                    reason: "it has no A or AAAA record".to_owned(),
                })
                    as Box<dyn std::error::Error + Send + Sync>),
                (false, _) => Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs),
            }
        })
    }
}

/// The refusal somewhere in an error's chain of causes: how a refusal by gate 3 surfaces from reqwest.
pub fn refusal_in<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a UrlRefusal> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(refusal) = e.downcast_ref::<UrlRefusal>() {
            return Some(refusal);
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow_private: bool) -> OutboundPolicy {
        // A nameserver nobody answers on: these tests never resolve.
        OutboundPolicy::new(
            allow_private,
            Some("127.0.0.1:9".parse().unwrap()),
            Duration::from_secs(1),
        )
        .unwrap()
    }

    #[test]
    fn non_public_addresses_are_refused() {
        let refused = [
            ("127.0.0.1", AddressKind::Loopback),
            ("127.255.0.9", AddressKind::Loopback),
            ("::1", AddressKind::Loopback),
            ("10.1.2.3", AddressKind::Private),
            ("172.16.0.1", AddressKind::Private),
            ("172.31.255.255", AddressKind::Private),
            ("192.168.1.1", AddressKind::Private),
            ("169.254.169.254", AddressKind::LinkLocal),
            ("::ffff:127.0.0.1", AddressKind::Loopback),
            ("::ffff:10.0.0.1", AddressKind::Private),
            ("::ffff:169.254.169.254", AddressKind::LinkLocal),
            ("::127.0.0.1", AddressKind::Loopback),
            ("::8.8.8.8", AddressKind::Reserved),
            ("100.64.0.1", AddressKind::Shared),
            ("100.127.255.254", AddressKind::Shared),
            ("224.0.0.1", AddressKind::Multicast),
            ("239.255.255.250", AddressKind::Multicast),
            ("255.255.255.255", AddressKind::Broadcast),
            ("0.0.0.0", AddressKind::Unspecified),
            ("0.1.2.3", AddressKind::ThisNetwork),
            ("::", AddressKind::Unspecified),
            ("fc00::1", AddressKind::UniqueLocal),
            ("fd12:3456::1", AddressKind::UniqueLocal),
            ("fe80::1", AddressKind::LinkLocal),
            ("fec0::1", AddressKind::Private),
            ("ff02::1", AddressKind::Multicast),
            ("64:ff9b::a00:1", AddressKind::Private),
            ("64:ff9b::7f00:1", AddressKind::Loopback),
            ("64:ff9b:1::1", AddressKind::Reserved),
            ("2002:a00:1::1", AddressKind::Private),
            ("2002:7f00:1::1", AddressKind::Loopback),
            ("192.0.2.1", AddressKind::Documentation),
            ("198.51.100.7", AddressKind::Documentation),
            ("203.0.113.9", AddressKind::Documentation),
            ("2001:db8::1", AddressKind::Documentation),
            ("3fff::1", AddressKind::Documentation),
            ("198.18.0.1", AddressKind::Benchmarking),
            ("2001:2::1", AddressKind::Benchmarking),
            ("2001::1", AddressKind::Reserved),
            ("240.0.0.1", AddressKind::Reserved),
            ("192.0.0.8", AddressKind::Reserved),
            ("100::1", AddressKind::Reserved),
        ];
        for (ip, kind) in refused {
            let parsed: IpAddr = ip.parse().unwrap();
            assert_eq!(classify(parsed), Some(kind), "{ip}");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "192.169.0.1",
            "223.255.255.255",
            "2606:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(classify(ip.parse().unwrap()), None, "{ip}");
        }
    }

    #[tokio::test]
    async fn urls_are_refused_for_their_syntax_or_literal_address() {
        let guard = policy(false);
        type Expected = fn(&UrlRefusal) -> bool;
        let cases: [(&str, Expected); 12] = [
            (
                "ftp://example.com/file",
                |r| matches!(r, UrlRefusal::Scheme(s) if s == "ftp"),
            ),
            ("file:///etc/passwd", |r| matches!(r, UrlRefusal::Scheme(_))),
            ("http://user:pw@example.com/", |r| {
                *r == UrlRefusal::Credentials
            }),
            ("http://user@example.com/", |r| {
                *r == UrlRefusal::Credentials
            }),
            ("http://[::1]/", |r| {
                matches!(
                    r,
                    UrlRefusal::Address {
                        kind: AddressKind::Loopback,
                        ..
                    }
                )
            }),
            ("http://127.0.0.1/", |r| {
                matches!(
                    r,
                    UrlRefusal::Address {
                        kind: AddressKind::Loopback,
                        ..
                    }
                )
            }),
            ("http://0x7f000001/", |r| {
                matches!(
                    r,
                    UrlRefusal::Address {
                        kind: AddressKind::Loopback,
                        ..
                    }
                )
            }),
            ("http://127.1:8080/", |r| {
                matches!(
                    r,
                    UrlRefusal::Address {
                        kind: AddressKind::Loopback,
                        ..
                    }
                )
            }),
            ("https://[::ffff:a9fe:a9fe]/latest", |r| {
                matches!(
                    r,
                    UrlRefusal::Address {
                        kind: AddressKind::LinkLocal,
                        ..
                    }
                )
            }),
            ("not a url", |r| matches!(r, UrlRefusal::Invalid(_))),
            ("http://", |r| matches!(r, UrlRefusal::Invalid(_))),
            ("http://10.0.0.5/hook", |r| {
                matches!(
                    r,
                    UrlRefusal::Address {
                        kind: AddressKind::Private,
                        ..
                    }
                )
            }),
        ];
        for (raw, expected) in cases {
            let refusal = guard.check_url(raw).unwrap_err();
            assert!(expected(&refusal), "{raw}: {refusal:?}");
            // An IP literal is refused by the resolution check as well (no lookup needed).
            if let Ok(url) = Url::parse(raw)
                && matches!(refusal, UrlRefusal::Address { .. })
            {
                assert_eq!(guard.check_resolved(&url).await.unwrap_err(), refusal);
            }
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_CHARS));
        assert_eq!(guard.check_url(&long).unwrap_err(), UrlRefusal::TooLong);
    }

    #[test]
    fn public_and_named_urls_pass_the_syntax_check() {
        let guard = policy(false);
        for raw in [
            "https://example.com/hook",
            "http://example.com:8080/a?b=c",
            "https://8.8.8.8/",
            "https://[2606:4700::1111]/x",
            "https://hooks.example.com./trailing-dot",
        ] {
            assert!(guard.check_url(raw).is_ok(), "{raw}");
        }
    }

    #[tokio::test]
    async fn allowing_private_addresses_keeps_the_syntax_checks() {
        let guard = policy(true);
        assert!(guard.allows_private());
        let url = guard.check_url("http://127.0.0.1:3000/hook").unwrap();
        guard.check_resolved(&url).await.unwrap();
        assert!(guard.check_url("http://[::1]/").is_ok());
        assert_eq!(
            guard.check_url("http://a:b@127.0.0.1/").unwrap_err(),
            UrlRefusal::Credentials
        );
        assert!(matches!(
            guard.check_url("gopher://127.0.0.1/").unwrap_err(),
            UrlRefusal::Scheme(_)
        ));
    }

    #[test]
    fn refusals_say_why() {
        let refusal = UrlRefusal::Resolves {
            host: "hooks.example.com".to_owned(),
            ip: "10.0.0.5".parse().unwrap(),
            kind: AddressKind::Private,
        };
        assert_eq!(
            refusal.describe(
                "endpoint",
                "webhooks can only be delivered to public addresses"
            ),
            "`endpoint` resolves to 10.0.0.5, a private address; webhooks can only be delivered to public addresses"
        );
        assert_eq!(
            UrlRefusal::Credentials.describe("endpoint", "unused"),
            "`endpoint` must not contain a user name or password"
        );
        #[derive(Debug, thiserror::Error)]
        #[error("connect failed")]
        struct Wrapper(#[source] UrlRefusal);
        let wrapped = Wrapper(refusal.clone());
        assert_eq!(refusal_in(&wrapped), Some(&refusal));
    }
}
