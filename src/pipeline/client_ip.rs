//! The client's address behind reverse proxies (`--trusted-proxies`).
//!
//! `X-Forwarded-For` is a list each proxy appends its own peer to, so only its right end can be
//! trusted: walking from the right, every address that is a trusted proxy is a hop we believe,
//! and the first one that is not is the client. Everything further left was written by the
//! client itself and may be forged. The header is only read at all when the TCP peer is a
//! trusted proxy; otherwise anyone could claim any address.
//!
//! The address found this way has port 0 (`1.2.3.4:0` for the `request` source `remote-addr`):
//! the peer's port belongs to the proxy's connection, not to the client, and the header carries
//! none that we could trust.
//!
//! Pure: no I/O, no logging.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;

/// An entry of `--trusted-proxies` that is neither an address nor a network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an IP address or CIDR (e.g. 10.0.0.0/8, ::1)")]
pub struct NotAProxy(pub String);

/// The networks whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses `--trusted-proxies`: CIDRs or single addresses, separated by commas or
    /// whitespace. An empty string trusts no one.
    pub fn parse(text: &str) -> Result<Self, NotAProxy> {
        text.split(|c: char| c == ',' || c.is_whitespace())
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                let net = match entry.parse::<IpNet>() {
                    Ok(net) => net.trunc(),
                    Err(_) => entry
                        .parse::<IpAddr>()
                        .map(|ip| IpNet::from(ip.to_canonical()))
                        .map_err(|_| NotAProxy(entry.to_owned()))?,
                };
                Ok(net)
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` (IPv4-mapped IPv6 counts as IPv4) is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client address of a request from `peer` with these `headers`: the rightmost
    /// `X-Forwarded-For` entry that is not a trusted proxy, when `peer` is one; else `peer`.
    ///
    /// If every entry is trusted, the leftmost is the client. An unparsable entry stops the
    /// walk: the hop to its right (a trusted proxy) is the best address known, since whatever
    /// wrote the garbage is not one we trust.
    pub fn client_addr(&self, peer: SocketAddr, headers: &HeaderMap) -> SocketAddr {
        if !self.contains(peer.ip()) {
            return peer;
        }
        let mut client = peer;
        let values = headers.get_all("x-forwarded-for");
        // Several headers are one list in order (RFC 9110 §5.3): walk them from the last.
        let entries = values
            .iter()
            .rev()
            .flat_map(|value| value.as_bytes().rsplit(|b| *b == b','));
        for entry in entries {
            let Some(ip) = parse_entry(entry) else {
                return client;
            };
            client = SocketAddr::new(ip, 0);
            if !self.contains(ip) {
                return client;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, optionally with a port (`1.2.3.4:80`,
/// `[::1]:80`) or in brackets, surrounded by optional whitespace.
fn parse_entry(entry: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(entry).ok()?.trim();
    let ip = text
        .parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            text.strip_prefix('[')
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse().ok())
        })?;
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append("x-forwarded-for", value.parse().unwrap());
        }
        map
    }

    fn client(trusted: &str, peer: &str, xff: &[&str]) -> String {
        let trusted = TrustedProxies::parse(trusted).unwrap();
        trusted
            .client_addr(peer.parse().unwrap(), &headers(xff))
            .to_string()
    }

    #[test]
    fn untrusted_peers_are_the_client_whatever_they_claim() {
        assert_eq!(
            client("", "203.0.113.9:5000", &["1.2.3.4"]),
            "203.0.113.9:5000"
        );
        assert_eq!(
            client("10.0.0.0/8", "203.0.113.9:5000", &["10.0.0.1"]),
            "203.0.113.9:5000"
        );
    }

    #[test]
    fn the_rightmost_untrusted_entry_is_the_client() {
        let trusted = "10.0.0.0/8, 127.0.0.1";
        assert_eq!(
            client(trusted, "127.0.0.1:40000", &["198.51.100.7"]),
            "198.51.100.7:0"
        );
        // The client forged an entry; the proxy appended the real peer.
        assert_eq!(
            client(trusted, "127.0.0.1:40000", &["6.6.6.6, 198.51.100.7"]),
            "198.51.100.7:0"
        );
        // Two proxies.
        assert_eq!(
            client(
                trusted,
                "127.0.0.1:40000",
                &["6.6.6.6, 198.51.100.7, 10.1.2.3"]
            ),
            "198.51.100.7:0"
        );
        // Several headers are one list.
        assert_eq!(
            client(
                trusted,
                "127.0.0.1:40000",
                &["6.6.6.6", "198.51.100.7", "10.1.2.3"]
            ),
            "198.51.100.7:0"
        );
    }

    #[test]
    fn without_a_header_the_peer_is_the_client() {
        assert_eq!(
            client("127.0.0.1", "127.0.0.1:40000", &[]),
            "127.0.0.1:40000"
        );
        assert_eq!(
            client("127.0.0.1", "127.0.0.1:40000", &[""]),
            "127.0.0.1:40000"
        );
    }

    #[test]
    fn all_trusted_means_the_leftmost() {
        assert_eq!(
            client(
                "10.0.0.0/8 127.0.0.1",
                "127.0.0.1:1",
                &["10.0.0.2, 10.0.0.1"]
            ),
            "10.0.0.2:0"
        );
    }

    #[test]
    fn garbage_stops_at_the_nearest_trusted_hop() {
        assert_eq!(
            client(
                "10.0.0.0/8 127.0.0.1",
                "127.0.0.1:1",
                &["1.1.1.1, nonsense, 10.0.0.1"]
            ),
            "10.0.0.1:0"
        );
        assert_eq!(
            client("127.0.0.1", "127.0.0.1:1", &["nonsense"]),
            "127.0.0.1:1"
        );
    }

    #[test]
    fn ports_brackets_and_mapped_addresses() {
        assert_eq!(
            client("127.0.0.1", "127.0.0.1:1", &["1.2.3.4:8080"]),
            "1.2.3.4:0"
        );
        assert_eq!(
            client("127.0.0.1", "127.0.0.1:1", &["[2001:db8::1]:443"]),
            "[2001:db8::1]:0"
        );
        assert_eq!(
            client("127.0.0.1", "127.0.0.1:1", &["[2001:db8::1]"]),
            "[2001:db8::1]:0"
        );
        assert_eq!(
            client("127.0.0.1", "127.0.0.1:1", &["::ffff:1.2.3.4"]),
            "1.2.3.4:0"
        );
        // A dual-stack listener sees IPv4 peers as mapped addresses.
        assert_eq!(
            client("127.0.0.1", "[::ffff:127.0.0.1]:1", &["1.2.3.4"]),
            "1.2.3.4:0"
        );
    }

    #[test]
    fn parsing_the_flag() {
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        assert_eq!(TrustedProxies::parse("10.0.0.0/8,::1").unwrap().0.len(), 2);
        // Host bits are dropped, as in ip-whitelist rules.
        assert!(
            TrustedProxies::parse("10.1.2.3/8")
                .unwrap()
                .contains("10.9.9.9".parse().unwrap())
        );
        let error = TrustedProxies::parse("10.0.0.0/8,localhost").unwrap_err();
        assert!(error.to_string().contains("`localhost`"), "{error}");
    }
}
