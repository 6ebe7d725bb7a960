//! Which addresses are ordinary public Internet addresses (RFC 6890 special-purpose
//! registries), and which the user allowed for labs and internal networks.

use std::net::IpAddr;

use ipnet::IpNet;

/// Special-purpose ranges that are not reachable from the public Internet,
/// with the name shown in evidence (RFC 6890 and its IANA registries).
const SPECIAL: &[(&str, &str)] = &[
    ("0.0.0.0/8", "\"this network\" (RFC 791)"),
    ("10.0.0.0/8", "private (RFC 1918)"),
    ("100.64.0.0/10", "shared CGNAT space (RFC 6598)"),
    ("127.0.0.0/8", "loopback (RFC 1122)"),
    ("169.254.0.0/16", "link-local (RFC 3927)"),
    ("172.16.0.0/12", "private (RFC 1918)"),
    ("192.0.0.0/24", "IETF protocol assignments (RFC 6890)"),
    ("192.0.2.0/24", "documentation TEST-NET-1 (RFC 5737)"),
    ("192.168.0.0/16", "private (RFC 1918)"),
    ("198.18.0.0/15", "benchmarking (RFC 2544)"),
    ("198.51.100.0/24", "documentation TEST-NET-2 (RFC 5737)"),
    ("203.0.113.0/24", "documentation TEST-NET-3 (RFC 5737)"),
    ("224.0.0.0/4", "multicast (RFC 5771)"),
    ("240.0.0.0/4", "reserved (RFC 1112)"),
    ("::/128", "unspecified (RFC 4291)"),
    ("::1/128", "loopback (RFC 4291)"),
    ("::ffff:0:0/96", "IPv4-mapped (RFC 4291)"),
    ("64:ff9b:1::/48", "local-use NAT64 (RFC 8215)"),
    ("100::/64", "discard-only (RFC 6666)"),
    ("2001:db8::/32", "documentation (RFC 3849)"),
    ("fc00::/7", "unique local (RFC 4193)"),
    ("fe80::/10", "link-local (RFC 4291)"),
    ("ff00::/8", "multicast (RFC 4291)"),
];

/// The user's address policy for one run.
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    special: Vec<(IpNet, &'static str)>,
    allowed: Vec<IpNet>,
}

impl AddressPolicy {
    /// A policy where `allowed` ranges count as ordinary public addresses.
    pub fn new(allowed: Vec<IpNet>) -> AddressPolicy {
        let special = SPECIAL
            .iter()
            .filter_map(|(net, name)| net.parse::<IpNet>().ok().map(|n| (n, *name)))
            .collect();
        AddressPolicy { special, allowed }
    }

    /// Why `ip` is not a public address, or `None` when it is public or allowed.
    pub fn non_public_reason(&self, ip: IpAddr) -> Option<&'static str> {
        if self.allowed.iter().any(|n| n.contains(&ip)) {
            return None;
        }
        self.special
            .iter()
            .find(|(net, _)| net.contains(&ip))
            .map(|(_, name)| *name)
    }

    /// True when the user allowed `ip` explicitly (`--allow-target`).
    pub fn is_allowed(&self, ip: IpAddr) -> bool {
        self.allowed.iter().any(|n| n.contains(&ip))
    }

    /// True when mxaudit may open a connection to `ip`: a public address, or one
    /// the user allowed. Loopback, private and reserved addresses are refused unless
    /// allowed.
    pub fn may_connect(&self, ip: IpAddr) -> bool {
        self.non_public_reason(ip).is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies() {
        let p = AddressPolicy::new(vec!["127.0.0.0/8".parse().expect("net")]);
        assert_eq!(
            p.non_public_reason("10.1.2.3".parse().expect("ip")),
            Some("private (RFC 1918)")
        );
        assert_eq!(p.non_public_reason("127.0.0.2".parse().expect("ip")), None);
        assert!(p.may_connect("127.0.0.2".parse().expect("ip")));
        assert!(!p.may_connect("192.168.1.1".parse().expect("ip")));
        assert!(!p.may_connect("fd00::1".parse().expect("ip")));
        assert!(p.may_connect("2a00:1450::1".parse().expect("ip")));
        assert!(p.may_connect("8.8.8.8".parse().expect("ip")));
    }
}
