//! Which client a request comes from, for login throttling.
//!
//! By default the TCP peer, whatever headers say: `X-Forwarded-For` is written by the
//! client unless a proxy overwrites it, so trusting it by default would let anyone pick
//! the address they are throttled as. Behind a reverse proxy or load balancer, list its
//! addresses in `API_TRUSTED_PROXIES`: when the peer is one of them, the client is the
//! nearest `X-Forwarded-For` entry that is not itself a trusted proxy (walking from the
//! right, the end our own proxies append to). IPv6 clients are grouped by /64, the block
//! one subscriber usually holds.

use poem::Request;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// The throttling key of the client of `req`: an IPv4 address, an IPv6 /64 prefix, or
/// `local` for a non-IP peer (a Unix socket).
pub fn client_address(req: &Request, trusted_proxies: &[IpAddr]) -> String {
    let Some(peer) = req.remote_addr().as_socket_addr().map(SocketAddr::ip) else {
        return "local".into();
    };
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    throttle_key(resolve(peer, &forwarded, trusted_proxies))
}

/// The client behind `peer` given the `X-Forwarded-For` chain (comma-separated, oldest
/// first) and the trusted proxies.
fn resolve(peer: IpAddr, forwarded: &str, trusted_proxies: &[IpAddr]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted_proxies.contains(&canonical(*ip));
    let mut client = canonical(peer);
    if !is_trusted(&client) {
        return client;
    }
    for entry in forwarded.rsplit(',').map(str::trim) {
        // An entry we cannot read ends what we can vouch for: keep the last proxy.
        let Some(ip) = parse_entry(entry) else { break };
        client = canonical(ip);
        if !is_trusted(&client) {
            break;
        }
    }
    client
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:5678`.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// IPv4-mapped IPv6 addresses as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn throttle_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            format!("{}/64", Ipv6Addr::from(prefix))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() {
        assert_eq!(resolve(ip("10.0.0.9"), "203.0.113.7", &[]), ip("10.0.0.9"));
        assert_eq!(
            resolve(ip("10.0.0.9"), "203.0.113.7", &[ip("10.0.0.1")]),
            ip("10.0.0.9")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_nearest_untrusted_hop_is_the_client() {
        let proxies = [ip("10.0.0.1"), ip("10.0.0.2")];
        // The client forged the first entry; our proxies appended the rest.
        assert_eq!(
            resolve(ip("10.0.0.1"), "1.1.1.1, 203.0.113.7, 10.0.0.2", &proxies),
            ip("203.0.113.7")
        );
        // Only proxies: the oldest one is the best we know.
        assert_eq!(
            resolve(ip("10.0.0.1"), "10.0.0.2", &proxies),
            ip("10.0.0.2")
        );
        // Garbage stops the walk at the last proxy we trust.
        assert_eq!(
            resolve(ip("10.0.0.1"), "203.0.113.7, garbage", &proxies),
            ip("10.0.0.1")
        );
        assert_eq!(
            resolve(ip("10.0.0.1"), "[2001:db8::1]:443", &proxies),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn ipv6_clients_are_grouped_by_64_and_mapped_ipv4_is_ipv4() {
        assert_eq!(
            throttle_key(ip("2001:db8:1:2:aaaa::1")),
            throttle_key(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_eq!(throttle_key(ip("2001:db8:1:2::1")), "2001:db8:1:2::/64");
        assert_eq!(throttle_key(canonical(ip("::ffff:192.0.2.1"))), "192.0.2.1");
    }
}
