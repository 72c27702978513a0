//! Where the listeners bind, and the limits every listener applies to each connection and request.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{Reader, names, whole_number};

pub const DEFAULT_PORT: u16 = 3015;
pub const DEFAULT_INGESTER_PORT: u16 = 3016;
/// The SMTP submission relay with STARTTLS (587 is the standard port; 2587 needs no privileges).
pub const DEFAULT_SMTP_PORT: u16 = 2587;
/// The SMTP submission relay with implicit TLS (465 is the standard port).
pub const DEFAULT_SMTPS_PORT: u16 = 2465;
/// A request (body read, handler and answer) that takes longer is answered 408 and dropped.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// As long as the longest a request (or an SMTP message's accept) is allowed to run by default.
pub const DEFAULT_IDEMPOTENCY_IN_FLIGHT: Duration = Duration::from_secs(60);
/// A client that sends nothing of its body for this long is cut off (slow-body protection).
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(20);
/// Requests handled at once per listener; more are answered 503 at once rather than queued.
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenSettings {
    /// `BIND_ADDRESS`: the address both listeners bind (default `0.0.0.0`).
    pub bind_address: IpAddr,
    /// `PORT`: the public API.
    pub port: u16,
    /// `INGESTER_PORT`: provider events, inbound mail and job triggers.
    pub ingester_port: u16,
    /// `REQUEST_TIMEOUT_SECONDS`.
    pub request_timeout: Duration,
    /// `BODY_READ_TIMEOUT_SECONDS`: the longest pause between two pieces of a request body.
    pub body_read_timeout: Duration,
    /// `IDEMPOTENCY_IN_FLIGHT_SECONDS`: how long a request holding an idempotency key, with no answer yet, is
    /// waited for before another request with the key may take over (the first one's process presumably
    /// died). Exactly one of them is ever answered and written, whichever commits first (see
    /// `opensend_store::repos::idempotency`), so a short value costs duplicated work, never a duplicate email.
    pub idempotency_in_flight: Duration,
    /// `MAX_CONCURRENT_REQUESTS`: per listener.
    pub max_concurrent_requests: usize,
    /// `SMTP_PORT`: the SMTP submission relay (STARTTLS); `None` when set to 0.
    pub smtp_port: Option<u16>,
    /// `SMTPS_PORT`: the SMTP submission relay with implicit TLS; `None` when set to 0.
    pub smtps_port: Option<u16>,
    /// `MX_PORT`: inbound mail over SMTP; off unless set (and off when set to 0).
    pub mx_port: Option<u16>,
    /// `SMTP_TLS_CERT`, `SMTP_TLS_KEY`: PEM files of the certificate chain and key of the SMTP listeners.
    pub smtp_tls: Option<(PathBuf, PathBuf)>,
    /// Whether `SMTP_PORT` or `SMTPS_PORT` was set, rather than left at its default: a production deployment
    /// that asked for the relay and has no certificate is refused; one that never asked starts without it.
    pub smtp_relay_requested: bool,
}

impl ListenSettings {
    pub(super) fn read(r: &mut Reader) -> Self {
        Self {
            bind_address: r.setting(names::BIND_ADDRESS, IpAddr::from([0, 0, 0, 0]), |v| {
                v.parse::<IpAddr>()
                    .map_err(|_| format!("must be an IP address such as 0.0.0.0 or ::, not `{v}`"))
            }),
            port: r.setting(names::PORT, DEFAULT_PORT, parse_port),
            ingester_port: r.setting(names::INGESTER_PORT, DEFAULT_INGESTER_PORT, parse_port),
            request_timeout: r.setting(
                names::REQUEST_TIMEOUT_SECONDS,
                DEFAULT_REQUEST_TIMEOUT,
                |v| whole_number(v, 1, 3_600).map(Duration::from_secs),
            ),
            idempotency_in_flight: r.setting(
                names::IDEMPOTENCY_IN_FLIGHT_SECONDS,
                DEFAULT_IDEMPOTENCY_IN_FLIGHT,
                |v| whole_number(v, 1, 3_600).map(Duration::from_secs),
            ),
            body_read_timeout: r.setting(
                names::BODY_READ_TIMEOUT_SECONDS,
                DEFAULT_BODY_READ_TIMEOUT,
                |v| whole_number(v, 1, 600).map(Duration::from_secs),
            ),
            max_concurrent_requests: r.setting(
                names::MAX_CONCURRENT_REQUESTS,
                DEFAULT_MAX_CONCURRENT_REQUESTS,
                |v| whole_number(v, 1, 1_000_000).map(|n| n as usize),
            ),
            smtp_port: r.setting(
                names::SMTP_PORT,
                Some(DEFAULT_SMTP_PORT),
                parse_optional_port,
            ),
            smtps_port: r.setting(
                names::SMTPS_PORT,
                Some(DEFAULT_SMTPS_PORT),
                parse_optional_port,
            ),
            mx_port: r.setting(names::MX_PORT, None, parse_optional_port),
            smtp_tls: read_tls_files(r),
            smtp_relay_requested: r.raw(names::SMTP_PORT).is_some()
                || r.raw(names::SMTPS_PORT).is_some(),
        }
    }

    /// Whether the listeners are reachable only from this machine.
    pub fn is_loopback(&self) -> bool {
        self.bind_address.is_loopback()
    }
}

/// A certificate and its key are given together or not at all.
fn read_tls_files(r: &mut Reader) -> Option<(PathBuf, PathBuf)> {
    match (r.raw(names::SMTP_TLS_CERT), r.raw(names::SMTP_TLS_KEY)) {
        (Some(cert), Some(key)) => Some((PathBuf::from(cert), PathBuf::from(key))),
        (None, None) => None,
        _ => {
            r.problem("SMTP_TLS_CERT and SMTP_TLS_KEY must be set together (PEM files)");
            None
        }
    }
}

/// A port where 0 means "this listener is off" (unlike `PORT`, where 0 picks a free port).
fn parse_optional_port(v: &str) -> Result<Option<u16>, String> {
    parse_port(v).map(|port| (port != 0).then_some(port))
}

fn parse_port(v: &str) -> Result<u16, String> {
    v.parse::<u16>()
        .map_err(|_| format!("must be a port number from 0 to 65535, not `{v}`"))
}

#[cfg(test)]
mod tests {
    use super::super::{Config, ConfigError, Vars};
    use super::*;

    #[test]
    fn listener_limits_are_read_and_checked() {
        let config = Config::from_vars(&Vars::default()).unwrap();
        assert_eq!(config.listen.request_timeout, DEFAULT_REQUEST_TIMEOUT);
        assert_eq!(config.listen.body_read_timeout, DEFAULT_BODY_READ_TIMEOUT);
        assert_eq!(
            config.listen.idempotency_in_flight,
            DEFAULT_IDEMPOTENCY_IN_FLIGHT
        );
        assert!(!config.listen.is_loopback());
        let config = Config::from_vars(&Vars::from_pairs([
            ("BIND_ADDRESS", "127.0.0.1"),
            ("REQUEST_TIMEOUT_SECONDS", "5"),
            ("IDEMPOTENCY_IN_FLIGHT_SECONDS", "3"),
            ("BODY_READ_TIMEOUT_SECONDS", "2"),
            ("MAX_CONCURRENT_REQUESTS", "10"),
        ]))
        .unwrap();
        assert!(config.listen.is_loopback());
        assert_eq!(config.listen.request_timeout, Duration::from_secs(5));
        assert_eq!(config.listen.body_read_timeout, Duration::from_secs(2));
        assert_eq!(config.listen.idempotency_in_flight, Duration::from_secs(3));
        assert_eq!(config.listen.max_concurrent_requests, 10);
        let ConfigError(problems) = Config::from_vars(&Vars::from_pairs([
            ("REQUEST_TIMEOUT_SECONDS", "0"),
            ("BODY_READ_TIMEOUT_SECONDS", "forever"),
            ("MAX_CONCURRENT_REQUESTS", "0"),
        ]))
        .unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:#?}");
    }
}
