//! Which addresses a connector may reach: only globally routable ones, unless
//! the operator explicitly allowed a private range (for local development and
//! tests). The table below is the IANA special-purpose registries, IPv4 and
//! IPv6; addresses that embed an IPv4 address (IPv4-mapped, NAT64, 6to4) are
//! judged by the address they embed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use ipnet::IpNet;

/// Non-global ranges and why they are refused.
const SPECIAL_PURPOSE: &[(&str, &str)] = &[
    ("0.0.0.0/8", "unspecified (this network)"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared address space (CGNAT)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local (incl. cloud metadata)"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved (incl. broadcast)"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::/96", "IPv4-compatible (deprecated)"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("100::/64", "discard-only"),
    (
        "2001::/23",
        "IETF protocol assignments (Teredo, benchmarking, ORCHID)",
    ),
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
    ("5f00::/16", "segment routing"),
    ("fc00::/7", "unique local (private)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local (deprecated)"),
    ("ff00::/8", "multicast"),
];

static TABLE: LazyLock<Vec<(IpNet, &'static str)>> = LazyLock::new(|| {
    SPECIAL_PURPOSE
        .iter()
        .map(|(net, why)| (net.parse().expect("valid range in the table"), *why))
        .collect()
});

/// The IPv4 address an IPv6 address stands for, if it embeds one:
/// IPv4-mapped (`::ffff:a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`) or 6to4
/// (`2002:aabb:ccdd::`).
fn embedded_ipv4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = v6.segments();
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return Some(Ipv4Addr::new(
            (s[6] >> 8) as u8,
            s[6] as u8,
            (s[7] >> 8) as u8,
            s[7] as u8,
        ));
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    None
}

/// Why `addr` is not globally routable, or `None` when it is.
pub fn non_global_reason(addr: IpAddr) -> Option<String> {
    if let IpAddr::V6(v6) = addr
        && let Some(v4) = embedded_ipv4(v6)
    {
        return non_global_reason(IpAddr::V4(v4)).map(|why| format!("{why}, embedded in {v6}"));
    }
    TABLE
        .iter()
        .find(|(net, _)| net.contains(&addr))
        .map(|(_, why)| why.to_string())
}

/// The operator's decision on non-global destinations.
#[derive(Debug, Clone, Default)]
pub struct NetworkPolicy {
    allowed_private: Vec<IpNet>,
}

impl NetworkPolicy {
    /// Only global addresses, plus `allowed_private` (off by default).
    pub fn new(allowed_private: Vec<IpNet>) -> Self {
        Self { allowed_private }
    }

    /// The private ranges the operator allowed.
    pub fn allowed_private(&self) -> &[IpNet] {
        &self.allowed_private
    }

    /// `Ok` when a connector may connect to `addr`, else why not.
    pub fn check(&self, addr: IpAddr) -> Result<(), String> {
        let Some(why) = non_global_reason(addr) else {
            return Ok(());
        };
        let canonical = match addr {
            IpAddr::V6(v6) => embedded_ipv4(v6).map(IpAddr::V4).unwrap_or(addr),
            v4 => v4,
        };
        if self
            .allowed_private
            .iter()
            .any(|net| net.contains(&addr) || net.contains(&canonical))
        {
            return Ok(());
        }
        Err(format!("{addr} is {why}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked(text: &str) -> bool {
        non_global_reason(text.parse().unwrap()).is_some()
    }

    #[test]
    fn non_global_addresses_are_refused() {
        for addr in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12::1",
            "ff02::1",
            "2001:db8::1",
            "2001:2::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "2002:c0a8:101::",
        ] {
            assert!(blocked(addr), "{addr} should be refused");
        }
    }

    #[test]
    fn global_addresses_pass_including_embedded_global_ipv4() {
        for addr in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700::1111",
            "::ffff:93.184.216.34",
            "64:ff9b::5db8:d822",
        ] {
            assert!(!blocked(addr), "{addr} should be allowed");
        }
    }

    #[test]
    fn operator_ranges_allow_exactly_what_they_name() {
        let policy = NetworkPolicy::new(vec!["127.0.0.1/32".parse().unwrap()]);
        assert!(policy.check("127.0.0.1".parse().unwrap()).is_ok());
        assert!(policy.check("::ffff:127.0.0.1".parse().unwrap()).is_ok());
        assert!(policy.check("127.0.0.2".parse().unwrap()).is_err());
        assert!(policy.check("::1".parse().unwrap()).is_err());
        let error = NetworkPolicy::default()
            .check("169.254.169.254".parse().unwrap())
            .unwrap_err();
        assert!(error.contains("link-local"), "{error}");
    }
}
