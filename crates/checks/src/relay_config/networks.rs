//! Address ranges of trusted-network settings (Postfix `mynetworks`, Exchange
//! `RemoteIPRanges`) and how much of the public Internet they cover.
//!
//! Hand-written interval arithmetic on `u128`: `ipnet` parses prefixes but has
//! no notion of "lo-hi" ranges (Exchange) nor of the public part of a range,
//! which is what the threshold of `relay_config.mynetworks_too_wide` counts.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// More public IPv4 addresses than a /20 holds is more than one organisation's
/// own mail clients (findings.md: "a public IPv4 prefix shorter than /20").
const MAX_PUBLIC_V4: u128 = 1 << 12;
/// More public IPv6 addresses than a /32 holds (a whole LIR allocation).
const MAX_PUBLIC_V6: u128 = 1 << 96;

/// IPv4 blocks that are not public Internet space (RFC 6890 registry).
const SPECIAL_V4: &[(u32, u8)] = &[
    (0x0000_0000, 8),  // 0.0.0.0/8 "this network"
    (0x0a00_0000, 8),  // 10.0.0.0/8 private
    (0x6440_0000, 10), // 100.64.0.0/10 shared CGNAT
    (0x7f00_0000, 8),  // 127.0.0.0/8 loopback
    (0xa9fe_0000, 16), // 169.254.0.0/16 link-local
    (0xac10_0000, 12), // 172.16.0.0/12 private
    (0xc000_0000, 24), // 192.0.0.0/24 IETF protocol assignments
    (0xc000_0200, 24), // 192.0.2.0/24 TEST-NET-1
    (0xc0a8_0000, 16), // 192.168.0.0/16 private
    (0xc612_0000, 15), // 198.18.0.0/15 benchmarking
    (0xc633_6400, 24), // 198.51.100.0/24 TEST-NET-2
    (0xcb00_7100, 24), // 203.0.113.0/24 TEST-NET-3
    (0xe000_0000, 3),  // 224.0.0.0/4 multicast and 240.0.0.0/4 reserved
];

/// The public IPv6 space: global unicast 2000::/3 (RFC 4291 §2.4), less the
/// documentation prefixes 2001:db8::/32 (RFC 3849) and 3fff::/20 (RFC 9637).
const GLOBAL_V6: (u128, u8) = (0x2000 << 112, 3);
const SPECIAL_V6_IN_GLOBAL: &[(u128, u8)] = &[(0x2001_0db8 << 96, 32), (0x3fff << 112, 20)];

/// An inclusive range of addresses of one family (IPv4 kept in the low 32 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrRange {
    /// IPv6 when true.
    pub v6: bool,
    /// First address.
    pub lo: u128,
    /// Last address.
    pub hi: u128,
}

fn prefix_range(base: u128, len: u8, bits: u8) -> (u128, u128) {
    let host_bits = u32::from(bits.saturating_sub(len.min(bits)));
    let mask = if host_bits >= 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    };
    let lo = base & !mask;
    let hi = if bits == 32 {
        (lo | mask) & 0xffff_ffff
    } else {
        lo | mask
    };
    (lo, hi)
}

impl AddrRange {
    fn bits(self) -> u8 {
        if self.v6 { 128 } else { 32 }
    }

    /// The range of one address.
    pub fn single(ip: IpAddr) -> AddrRange {
        let (v6, n) = split(ip);
        AddrRange { v6, lo: n, hi: n }
    }

    /// `base/len`, host bits ignored (Postfix and Exchange both accept them).
    pub fn prefix(ip: IpAddr, len: u8) -> Option<AddrRange> {
        let (v6, n) = split(ip);
        let bits = if v6 { 128 } else { 32 };
        if len > bits {
            return None;
        }
        let (lo, hi) = prefix_range(n, len, bits);
        Some(AddrRange { v6, lo, hi })
    }

    /// `a.b.c.d/len`, `[v6]/len`, `v6/len` or a bare address.
    pub fn parse_cidr(s: &str) -> Option<AddrRange> {
        let s = s.trim();
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l.parse::<u8>().ok()?)),
            None => (s, None),
        };
        let addr = addr.trim_start_matches('[').trim_end_matches(']');
        let ip = parse_ip(addr)?;
        match len {
            Some(len) => AddrRange::prefix(ip, len),
            None => Some(AddrRange::single(ip)),
        }
    }

    /// An Exchange `RemoteIPRanges` entry: a single address (a `%zone` suffix is
    /// dropped), `lo-hi`, `base/len` or `base(netmask)`.
    pub fn parse_exchange(s: &str) -> Option<AddrRange> {
        let s = s.trim();
        if let Some((addr, mask)) = s.split_once('(') {
            let mask = parse_ip(mask.strip_suffix(')')?)?;
            let ip = parse_ip(addr)?;
            let (v6, m) = split(mask);
            if v6 != ip.is_ipv6() {
                return None;
            }
            let bits = if v6 { 128 } else { 32 };
            let len = if v6 {
                m.leading_ones() as u8
            } else {
                (m << 96).leading_ones() as u8
            };
            // A netmask is contiguous ones: exactly the mask of its own length.
            let full = if v6 { u128::MAX } else { 0xffff_ffff };
            let (_, host) = prefix_range(0, len, bits);
            if m != full & !host {
                return None;
            }
            return AddrRange::prefix(ip, len);
        }
        if s.contains('/') {
            return AddrRange::parse_cidr(s);
        }
        if let Some((a, b)) = s.split_once('-') {
            let (v6a, lo) = split(parse_ip(a)?);
            let (v6b, hi) = split(parse_ip(b)?);
            if v6a != v6b || lo > hi {
                return None;
            }
            return Some(AddrRange { v6: v6a, lo, hi });
        }
        parse_ip(s).map(AddrRange::single)
    }

    /// How many addresses, saturating at `u128::MAX` for all of IPv6.
    pub fn size(self) -> u128 {
        (self.hi - self.lo).saturating_add(1)
    }

    /// Every address of the family.
    pub fn is_everything(self) -> bool {
        self.lo == 0 && self.hi == if self.v6 { u128::MAX } else { 0xffff_ffff }
    }

    /// The number of public Internet addresses inside the range.
    pub fn public_size(self) -> u128 {
        public_blocks(self.v6)
            .iter()
            .map(|&(lo, hi)| {
                let a = lo.max(self.lo);
                let b = hi.min(self.hi);
                if a > b { 0 } else { (b - a).saturating_add(1) }
            })
            .fold(0u128, u128::saturating_add)
    }

    /// More public space than one organisation holds (the thresholds above).
    pub fn too_wide(self) -> bool {
        self.public_size()
            > if self.v6 {
                MAX_PUBLIC_V6
            } else {
                MAX_PUBLIC_V4
            }
    }

    /// The equivalent prefix length of its public part, for evidence
    /// ("public space of a /8").
    pub fn public_prefix_len(self) -> u8 {
        let n = self.public_size();
        if n == 0 {
            return self.bits();
        }
        let floor = 127 - n.leading_zeros() as u8;
        let ceil = if n.is_power_of_two() {
            floor
        } else {
            floor + 1
        };
        self.bits().saturating_sub(ceil)
    }
}

/// True when the union of `ranges` holds every public address of IPv4, or of IPv6.
pub fn covers_public_internet(ranges: &[AddrRange]) -> bool {
    [false, true].into_iter().any(|v6| {
        let mut mine: Vec<(u128, u128)> = ranges
            .iter()
            .filter(|r| r.v6 == v6)
            .map(|r| (r.lo, r.hi))
            .collect();
        if mine.is_empty() {
            return false;
        }
        mine.sort_unstable();
        public_blocks(v6).iter().all(|&(lo, hi)| {
            // Walk the sorted ranges and check that [lo, hi] has no gap.
            let mut next = lo;
            for &(a, b) in &mine {
                if a > next {
                    break;
                }
                if b >= next {
                    if b >= hi {
                        return true;
                    }
                    next = b + 1;
                }
            }
            false
        })
    })
}

/// The public blocks of a family, sorted and disjoint.
fn public_blocks(v6: bool) -> Vec<(u128, u128)> {
    let (universe, special): ((u128, u128), Vec<(u128, u128)>) = if v6 {
        (
            prefix_range(GLOBAL_V6.0, GLOBAL_V6.1, 128),
            SPECIAL_V6_IN_GLOBAL
                .iter()
                .map(|&(b, l)| prefix_range(b, l, 128))
                .collect(),
        )
    } else {
        (
            (0, 0xffff_ffff),
            SPECIAL_V4
                .iter()
                .map(|&(b, l)| prefix_range(u128::from(b), l, 32))
                .collect(),
        )
    };
    let mut special = special;
    special.sort_unstable();
    let mut out = Vec::new();
    let mut next = universe.0;
    for (a, b) in special {
        if a > next {
            out.push((next, a - 1));
        }
        if b >= next {
            if b == u128::MAX {
                return out;
            }
            next = b + 1;
        }
    }
    if next <= universe.1 {
        out.push((next, universe.1));
    }
    out
}

fn split(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(a) => (false, u128::from(u32::from(a))),
        IpAddr::V6(a) => (true, u128::from(a)),
    }
}

/// An address; an IPv6 zone (`%11`) is dropped.
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    let s = s.split_once('%').map_or(s, |(a, _)| a);
    s.parse::<IpAddr>().ok()
}

impl fmt::Display for AddrRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |n: u128| -> String {
            if self.v6 {
                Ipv6Addr::from(n).to_string()
            } else {
                Ipv4Addr::from(n as u32).to_string()
            }
        };
        // A prefix when the range is one.
        let size = self.size();
        if size.is_power_of_two() && self.lo & (size - 1) == 0 {
            let len = self.bits() - size.trailing_zeros() as u8;
            if len == self.bits() {
                return f.write_str(&show(self.lo));
            }
            return write!(f, "{}/{len}", show(self.lo));
        }
        if self.is_everything() && self.v6 {
            return f.write_str("::/0");
        }
        write!(f, "{}-{}", show(self.lo), show(self.hi))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> AddrRange {
        AddrRange::parse_exchange(s).unwrap_or_else(|| panic!("parses: {s}"))
    }

    #[test]
    fn forms() {
        assert_eq!(r("192.168.1.1-192.168.1.254").size(), 254);
        assert_eq!(r("192.168.1.77/24").to_string(), "192.168.1.0/24");
        assert_eq!(r("10.1.2.0(255.255.255.0)").to_string(), "10.1.2.0/24");
        assert_eq!(r("fe80::39bd:88f7:6969:d223%11").size(), 1);
        assert!(r("0.0.0.0-255.255.255.255").is_everything());
        assert!(r("::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff").is_everything());
        assert_eq!(r("::/0").to_string(), "::/0");
        assert!(AddrRange::parse_exchange("10.0.0.9-10.0.0.1").is_none());
        assert!(AddrRange::parse_exchange("10.0.0.0(255.0.255.0)").is_none());
        assert!(AddrRange::parse_exchange("10.0.0.1-::1").is_none());
        assert!(AddrRange::parse_cidr("[2001:db8::]/33").is_some());
        assert!(AddrRange::parse_cidr("10.0.0.0/33").is_none());
    }

    #[test]
    fn thresholds_count_public_space_only() {
        // A /20 of public space is one organisation; a /19 is not.
        assert!(!r("8.8.0.0/20").too_wide());
        assert!(r("8.8.0.0/19").too_wide());
        // Private and loopback ranges are never too wide.
        for s in [
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "127.0.0.0/8",
        ] {
            assert_eq!(r(s).public_size(), 0, "{s}");
        }
        assert!(r("0.0.0.0/0").too_wide());
        assert_eq!(r("0.0.0.0/0").public_prefix_len(), 0);
        assert_eq!(r("11.0.0.0/8").public_prefix_len(), 8);
        // IPv6: shorter than /32 of global unicast.
        assert!(!r("2a00:1450::/32").too_wide());
        assert!(r("2a00::/31").too_wide());
        assert!(!r("fd00::/8").too_wide());
        assert!(r("::/0").too_wide());
    }

    #[test]
    fn union_of_halves_covers_the_internet() {
        assert!(covers_public_internet(&[r("0.0.0.0/1"), r("128.0.0.0/1")]));
        assert!(covers_public_internet(&[r("0.0.0.0-255.255.255.255")]));
        assert!(!covers_public_internet(&[r("0.0.0.0/1")]));
        assert!(covers_public_internet(&[r("2000::/3")]));
        assert!(!covers_public_internet(&[
            r("10.0.0.0/8"),
            r("2001:db8::/32")
        ]));
    }
}
