//! The public blocklists as the testbed's Internet has them: zones named like
//! the real lists (zen.spamhaus.org, bl.spamcop.net, …) with their RFC 5782 §5
//! test points answered as the real lists answer them, and a few listed
//! documentation addresses for the demo and the tests. Every [`DnsServer`]
//! serves them (unless a world brings its own zone of the same name), so the
//! built-in blocklist plugins, enabled by default, work in every test world
//! and in the offline demo.
//!
//! Listed here: 203.0.113.66 on ZEN (XBL), SpamCop and UCEPROTECT level 1;
//! 203.0.113.67 on Backscatterer.org; 203.0.113.68 on ZEN (PBL).
//!
//! [`DnsServer`]: crate::DnsServer

use crate::dns::{ZoneText, builtin_zones};

const ZONES: &[(&str, &str)] = &[
    (
        "zen.spamhaus.org",
        include_str!("../worlds/blocklists/zen.spamhaus.org.zone"),
    ),
    (
        "dbl.spamhaus.org",
        include_str!("../worlds/blocklists/dbl.spamhaus.org.zone"),
    ),
    (
        "bl.spamcop.net",
        include_str!("../worlds/blocklists/bl.spamcop.net.zone"),
    ),
    (
        "b.barracudacentral.org",
        include_str!("../worlds/blocklists/b.barracudacentral.org.zone"),
    ),
    (
        "ips.backscatterer.org",
        include_str!("../worlds/blocklists/ips.backscatterer.org.zone"),
    ),
    (
        "dnsbl-1.uceprotect.net",
        include_str!("../worlds/blocklists/dnsbl-1.uceprotect.net.zone"),
    ),
    (
        "psbl.surriel.com",
        include_str!("../worlds/blocklists/psbl.surriel.com.zone"),
    ),
    (
        "bl.mailspike.net",
        include_str!("../worlds/blocklists/bl.mailspike.net.zone"),
    ),
];

/// The blocklist zones.
pub fn zones() -> Vec<ZoneText> {
    builtin_zones(ZONES)
}
