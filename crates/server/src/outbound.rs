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
//! What a tenant is told never names what lies behind the URL: a refusal says the URL "is not a public
//! address" or "names a host that does not resolve", without the addresses the name resolved to, their
//! kind, or the resolver's words, and [`describe_request_error`] turns a failed request into words without
//! URL, address or socket error text. The detail goes to the log (debug level, warn when a name changes to a
//! non-public address between the check and the connection) for the operator.
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

/// Why a URL is refused. The messages (`Display`) are for the tenant and complete a sentence that starts
/// with the field's name (see [`UrlRefusal::describe`]); they never name an address, a resolved name or
/// the resolver's answer. Those stay in the fields, for the log ([`UrlRefusal::detail`]).
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
    #[error("is not a public address")]
    Address { ip: IpAddr, kind: AddressKind },
    /// The host name resolves to an address that is not public.
    #[error("is not a public address")]
    Resolves {
        host: String,
        ip: IpAddr,
        kind: AddressKind,
    },
    #[error("names a host that does not resolve")]
    Unresolvable { host: String, reason: String },
}

impl UrlRefusal {
    /// The whole story, for the operator's log only: which address, of what kind, what the resolver said.
    pub fn detail(&self) -> String {
        match self {
            UrlRefusal::Address { ip, kind } => format!("points at {ip}, {kind}"),
            UrlRefusal::Resolves { host, ip, kind } => format!("{host} resolves to {ip}, {kind}"),
            UrlRefusal::Unresolvable { host, reason } => {
                format!("{host} does not resolve: {reason}")
            }
            other => other.to_string(),
        }
    }

    /// Whether the URL was refused for where it leads (not for how it is written).
    pub fn is_non_public(&self) -> bool {
        matches!(
            self,
            UrlRefusal::Address { .. } | UrlRefusal::Resolves { .. }
        )
    }

    /// The whole sentence for an API error: `` `endpoint` is not a public address; webhooks can only be
    /// delivered to public addresses ``. `public_only` is added when the address was the problem.
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
                let refused = match lookup(&self.inner.resolver, host).await {
                    Err(refusal) => refusal,
                    Ok(_) if self.inner.allow_private => return Ok(()),
                    Ok(addresses) => match addresses
                        .into_iter()
                        .find_map(|ip| classify(ip).map(|kind| (ip, kind)))
                    {
                        Some((ip, kind)) => UrlRefusal::Resolves {
                            host: host.to_owned(),
                            ip,
                            kind,
                        },
                        None => return Ok(()),
                    },
                };
                tracing::debug!(refusal = %refused.detail(), "outbound URL refused");
                Err(refused)
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
            Some(kind) if !self.inner.allow_private => {
                let refusal = UrlRefusal::Address { ip, kind };
                tracing::debug!(refusal = %refusal.detail(), "outbound URL refused");
                Err(refusal)
            }
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
            let addresses = lookup(&resolver, &host).await.inspect_err(|refusal| {
                tracing::debug!(refusal = %refusal.detail(), "outbound connection refused");
            })?;
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
                (true, Some((ip, kind))) => {
                    let refusal = UrlRefusal::Resolves { host, ip, kind };
                    // Checked URLs only get here when their name changed to a non-public address since.
                    tracing::warn!(refusal = %refusal.detail(), "outbound connection refused");
                    Err(Box::new(refusal) as Box<dyn std::error::Error + Send + Sync>)
                }
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

/// An error and its causes, outermost first. Unlike walking `source()` alone this also enters an
/// `io::Error` that wraps another error (its `source()` skips the wrapped error), which is how TLS
/// failures and connect-time refusals travel through the HTTP stack.
fn causes<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |e| match e.downcast_ref::<std::io::Error>() {
        Some(io) => io
            .get_ref()
            .map(|inner| inner as &(dyn std::error::Error + 'static)),
        None => e.source(),
    })
}

/// The refusal somewhere in an error's chain of causes: how a refusal by gate 3 surfaces from reqwest.
pub fn refusal_in<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a UrlRefusal> {
    causes(error).find_map(|e| e.downcast_ref::<UrlRefusal>())
}

/// What a tenant may read about a failed outbound request (a webhook delivery, a fetch by `path`): what
/// went wrong in a few words, without the URL, any address, or the socket's or resolver's error text,
/// e.g. `no answer within 15 s`, `could not connect (connection refused)`, `TLS handshake failed`,
/// `the URL is not a public address`.
/// `timeout` is the request's own, for the wording of a timeout. The full error chain is logged at debug
/// level for the operator.
pub fn describe_request_error(error: &reqwest::Error, timeout: Duration) -> String {
    tracing::debug!(error = %error_chain(error), "outbound request failed");
    if let Some(refusal) = refusal_in(error) {
        return match refusal {
            UrlRefusal::Unresolvable { .. } => "the URL's host does not resolve".to_owned(),
            _ => "the URL is not a public address".to_owned(),
        };
    }
    let io_kinds = io_error_kinds(error);
    if error.is_timeout() || io_kinds.contains(&std::io::ErrorKind::TimedOut) {
        return if error.is_connect() {
            format!(
                "could not connect within {} s",
                timeout.min(CONNECT_TIMEOUT).as_secs()
            )
        } else {
            format!("no answer within {} s", timeout.as_secs())
        };
    }
    if error.is_connect() {
        use std::io::ErrorKind::*;
        // rustls' verdicts reach us as invalid data; nothing before TLS in a connection produces that.
        if io_kinds.contains(&InvalidData) {
            return "TLS handshake failed".to_owned();
        }
        let why = io_kinds.iter().rev().find_map(|kind| match kind {
            ConnectionRefused => Some("connection refused"),
            ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => {
                Some("the connection was closed")
            }
            HostUnreachable | NetworkUnreachable => Some("unreachable"),
            _ => None,
        });
        return match why {
            Some(why) => format!("could not connect ({why})"),
            None => "could not connect".to_owned(),
        };
    }
    if error.is_body() || error.is_decode() {
        return "the answer broke off".to_owned();
    }
    if error.is_request() {
        return "the connection closed before a complete answer".to_owned();
    }
    "the request failed".to_owned()
}

/// The kinds of the I/O errors in an error's chain of causes, outermost first.
fn io_error_kinds(error: &(dyn std::error::Error + 'static)) -> Vec<std::io::ErrorKind> {
    causes(error)
        .filter_map(|e| e.downcast_ref::<std::io::Error>().map(std::io::Error::kind))
        .collect()
}

/// Every level of an error's chain, for the log.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = String::new();
    for e in causes(error) {
        let part = e.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    text
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

    /// Whether `text` names an IP address or a socket address anywhere.
    fn names_an_address(text: &str) -> bool {
        text.split(|c: char| !(c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '[' | ']')))
            .filter(|token| token.len() > 2)
            .any(|token| {
                let token = token.trim_matches(|c| c == '.' || c == ':');
                token.parse::<IpAddr>().is_ok()
                    || token.parse::<SocketAddr>().is_ok()
                    || token
                        .trim_matches(|c| c == '[' || c == ']')
                        .parse::<IpAddr>()
                        .is_ok()
            })
    }

    #[test]
    fn the_address_detector_finds_addresses() {
        assert!(names_an_address(
            "tcp connect error: 127.0.0.1:8080: refused"
        ));
        assert!(names_an_address("resolves to 10.0.0.5, a private address"));
        assert!(names_an_address("at [fd00::1]:443"));
        assert!(!names_an_address("no answer within 15 s"));
        assert!(!names_an_address("could not connect (connection refused)"));
    }

    /// A loopback listener that runs `answer` on every connection.
    async fn listener<F, Fut>(answer: F) -> SocketAddr
    where
        F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(answer(stream));
            }
        });
        addr
    }

    async fn read_head(stream: &mut tokio::net::TcpStream) {
        use tokio::io::AsyncReadExt;
        let mut head = Vec::new();
        let mut buffer = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buffer[..n]),
            }
        }
    }

    /// The tenant's text for a request to `url`, checked to name neither the URL nor any address.
    async fn tenant_text(client: &reqwest::Client, url: &str, timeout: Duration) -> String {
        let error = client.get(url).send().await.unwrap_err();
        let text = describe_request_error(&error, timeout);
        let port = Url::parse(url).unwrap().port().map(|p| p.to_string());
        assert!(!names_an_address(&text), "{text}");
        assert!(!text.contains(url) && !text.contains("os error"), "{text}");
        if let Some(port) = port {
            assert!(!text.contains(&port), "{text}");
        }
        text
    }

    #[tokio::test]
    async fn failed_requests_are_described_without_addresses() {
        use tokio::io::AsyncWriteExt;
        let client = policy(true).client(Duration::from_secs(2)).unwrap();
        let timeout = Duration::from_secs(2);

        let closed = {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            listener.local_addr().unwrap()
        };
        assert_eq!(
            tenant_text(&client, &format!("http://{closed}/hook"), timeout).await,
            "could not connect (connection refused)"
        );

        // Plain HTTP where TLS was expected: the handshake fails.
        let plain = listener(|mut stream| async move {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        })
        .await;
        assert_eq!(
            tenant_text(&client, &format!("https://{plain}/hook"), timeout).await,
            "TLS handshake failed"
        );

        // Connected, never answered.
        let silent = listener(|stream| async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(stream);
        })
        .await;
        let quick = policy(true).client(Duration::from_secs(1)).unwrap();
        assert_eq!(
            tenant_text(
                &quick,
                &format!("http://{silent}/hook"),
                Duration::from_secs(1)
            )
            .await,
            "no answer within 1 s"
        );

        // Hung up after reading the request.
        let hangs_up = listener(|mut stream| async move {
            read_head(&mut stream).await;
            drop(stream);
        })
        .await;
        assert_eq!(
            tenant_text(&client, &format!("http://{hangs_up}/hook"), timeout).await,
            "the connection closed before a complete answer"
        );

        // Promised 100 bytes, sent 5.
        let short = listener(|mut stream| async move {
            read_head(&mut stream).await;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nhello")
                .await;
        })
        .await;
        let response = client
            .get(format!("http://{short}/file"))
            .send()
            .await
            .unwrap();
        let error = response.bytes().await.unwrap_err();
        let text = describe_request_error(&error, timeout);
        assert_eq!(text, "the answer broke off");
        assert!(!names_an_address(&text), "{text}");
    }

    #[tokio::test]
    async fn refusals_at_connect_time_are_described_without_addresses() {
        let dns = opensend_test_support::dns::TestDns::start().await;
        dns.set_a("internal.example.test", Ipv4Addr::new(10, 0, 0, 5));
        let guard = OutboundPolicy::new(false, Some(dns.addr()), Duration::from_secs(2)).unwrap();
        let client = guard.client(Duration::from_secs(2)).unwrap();
        let timeout = Duration::from_secs(2);
        let text = tenant_text(&client, "http://internal.example.test:8080/hook", timeout).await;
        assert_eq!(text, "the URL is not a public address");
        assert!(
            !text.contains("private") && !text.contains("internal"),
            "{text}"
        );
        let text = tenant_text(&client, "http://missing.example.test/hook", timeout).await;
        assert_eq!(text, "the URL's host does not resolve");
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
            "`endpoint` is not a public address; webhooks can only be delivered to public addresses"
        );
        // The operator's log has what the tenant is not told.
        assert_eq!(
            refusal.detail(),
            "hooks.example.com resolves to 10.0.0.5, a private address"
        );
        let literal = UrlRefusal::Address {
            ip: "169.254.169.254".parse().unwrap(),
            kind: AddressKind::LinkLocal,
        };
        assert_eq!(
            literal.describe(
                "path",
                "attachments can only be fetched from public addresses"
            ),
            "`path` is not a public address; attachments can only be fetched from public addresses"
        );
        let unresolvable = UrlRefusal::Unresolvable {
            host: "internal.corp.example".to_owned(),
            reason: "DNS lookup failed: request timed out (10.0.0.2:53)".to_owned(),
        };
        assert_eq!(
            unresolvable.describe("endpoint", "unused"),
            "`endpoint` names a host that does not resolve"
        );
        assert!(unresolvable.detail().contains("10.0.0.2:53"));
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
