//! Which address a request comes from, for per-address limits.
//!
//! With `TRUSTED_PROXY_HOPS=0` (the default) it is the socket peer and `X-Forwarded-For` is ignored, so a
//! client cannot choose its own address. With `N` proxies in front that each append the address they
//! received the connection from, the address the outermost proxy saw is the `N`th entry from the right of
//! `X-Forwarded-For`: entries further left were written by the client and are not trusted.
//!
//! Example, `TRUSTED_PROXY_HOPS=2` (a CDN, then a load balancer, then us), a client at 203.0.113.7 that sends
//! a forged `X-Forwarded-For: 1.2.3.4`: the CDN forwards `1.2.3.4, 203.0.113.7`, the load balancer appends the
//! CDN's address, `1.2.3.4, 203.0.113.7, 198.51.100.20`, and the second from the right is 203.0.113.7.
//!
//! When the header has fewer than `N` entries the request did not pass through every proxy (someone reached
//! an inner one directly); every entry present was then written by a trusted proxy, and the leftmost is the
//! farthest address one of them saw, so that is used. An entry that is not an address (`unknown`, garbage)
//! falls back to the socket peer: a proxy's own address, which limits more rather than less.
//!
//! IPv6 addresses count per /64, the block a single host or home is usually given; otherwise one machine
//! would have 2^64 buckets to rotate through. IPv4-mapped IPv6 addresses count as the IPv4 address.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::http::HeaderMap;

pub const FORWARDED_FOR: &str = "x-forwarded-for";

/// The address to limit `peer`'s request by.
pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted_hops: usize) -> IpAddr {
    bucket_address(request_ip(peer, headers, trusted_hops))
}

/// The address `peer`'s request came from: the peer itself, or behind `trusted_hops` proxies the address
/// they say they forwarded for.
pub fn request_ip(peer: SocketAddr, headers: &HeaderMap, trusted_hops: usize) -> IpAddr {
    if trusted_hops == 0 {
        peer.ip()
    } else {
        forwarded_client(headers, trusted_hops).unwrap_or(peer.ip())
    }
}

/// The `hops`th entry from the right of every `X-Forwarded-For` field (in order, as one list); the leftmost
/// when there are fewer. `None` when there is no entry or the chosen one is not an address.
fn forwarded_client(headers: &HeaderMap, hops: usize) -> Option<IpAddr> {
    let mut entries = Vec::new();
    for value in headers.get_all(FORWARDED_FOR) {
        // A field that is not visible ASCII was not written by a well-behaved proxy: trust none of it.
        let Ok(text) = value.to_str() else {
            return None;
        };
        entries.extend(text.split(',').map(str::trim).filter(|e| !e.is_empty()));
    }
    let chosen = match entries.len().checked_sub(hops) {
        Some(index) => entries.get(index)?,
        None => entries.first()?,
    };
    parse_entry(chosen)
}

/// An address as proxies write it: `192.0.2.1`, `2001:db8::1`, and also `192.0.2.1:4711`, `[2001:db8::1]` or
/// `[2001:db8::1]:4711`.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(socket) = entry.parse::<SocketAddr>() {
        return Some(socket.ip());
    }
    entry
        .strip_prefix('[')
        .and_then(|e| e.strip_suffix(']'))
        .and_then(|e| e.parse::<Ipv6Addr>().ok())
        .map(IpAddr::V6)
}

/// The address a bucket is kept under: IPv4 as is, IPv6 cut to its /64.
pub fn bucket_address(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(Ipv6Addr::from(segments))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const PEER: &str = "10.0.0.9:51000";

    fn ip_for(hops: usize, fields: &[&str]) -> String {
        let mut headers = HeaderMap::new();
        for field in fields {
            headers.append(FORWARDED_FOR, HeaderValue::from_str(field).unwrap());
        }
        client_ip(PEER.parse().unwrap(), &headers, hops).to_string()
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        assert_eq!(ip_for(0, &[]), "10.0.0.9");
        assert_eq!(ip_for(0, &["1.2.3.4"]), "10.0.0.9");
        assert_eq!(ip_for(0, &["1.2.3.4, 5.6.7.8"]), "10.0.0.9");
    }

    #[test]
    fn one_appending_proxy_means_the_last_entry() {
        // Real chain: the proxy appended the client's address.
        assert_eq!(ip_for(1, &["203.0.113.7"]), "203.0.113.7");
        // Forged: the client sent its own header, the proxy appended the real address after it.
        assert_eq!(ip_for(1, &["1.2.3.4, 203.0.113.7"]), "203.0.113.7");
        assert_eq!(ip_for(1, &["1.2.3.4", "203.0.113.7"]), "203.0.113.7");
        // No header: the request did not come through the proxy.
        assert_eq!(ip_for(1, &[]), "10.0.0.9");
    }

    #[test]
    fn two_proxies_mean_the_second_entry_from_the_right() {
        assert_eq!(ip_for(2, &["203.0.113.7, 198.51.100.20"]), "203.0.113.7");
        assert_eq!(
            ip_for(2, &["1.2.3.4, 6.6.6.6, 203.0.113.7, 198.51.100.20"]),
            "203.0.113.7"
        );
        // Only the inner proxy was passed: its single entry is the best address there is.
        assert_eq!(ip_for(2, &["198.51.100.20"]), "198.51.100.20");
    }

    #[test]
    fn entries_that_are_not_addresses_fall_back_to_the_peer() {
        assert_eq!(ip_for(1, &["1.2.3.4, unknown"]), "10.0.0.9");
        assert_eq!(ip_for(1, &["<script>"]), "10.0.0.9");
        assert_eq!(ip_for(1, &["1.2.3.4,  "]), "1.2.3.4");
    }

    #[test]
    fn ports_and_brackets_are_understood() {
        assert_eq!(ip_for(1, &["203.0.113.7:4711"]), "203.0.113.7");
        assert_eq!(ip_for(1, &["[2001:db8::1]:4711"]), "2001:db8::");
        assert_eq!(ip_for(1, &["[2001:db8::1]"]), "2001:db8::");
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let a = bucket_address("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = bucket_address("2001:db8:1:2:bbbb::2".parse().unwrap());
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "2001:db8:1:2::");
        assert_ne!(a, bucket_address("2001:db8:1:3::1".parse().unwrap()));
        assert_eq!(
            bucket_address("::ffff:192.0.2.1".parse().unwrap()).to_string(),
            "192.0.2.1"
        );
    }
}
