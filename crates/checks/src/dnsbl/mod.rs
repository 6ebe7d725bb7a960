//! Engine `dnsbl`: DNS blocklists (RFC 5782). Every public address of the
//! domain's MX hosts and every configured outbound address is looked up in the
//! list's zone (reversed octets, or nibbles for IPv6, RFC 5782 §2.1 and §2.4);
//! domain lists (`kind = "domain"`, RFC 5782 §2.3) look the domain itself up.
//!
//! What makes a listing trustworthy here:
//! - each list is asked for its RFC 5782 §5 test points first (127.0.0.2 must
//!   be listed, 127.0.0.1 must not; `::FFFF:7F00:2`/`:1` for IPv6; `TEST` and
//!   `INVALID` for domain lists). A list that fails this is unusable, and none
//!   of its answers becomes a listing: that is how tools report the whole
//!   Internet as listed when a list's domain expires and is parked under a
//!   wildcard, or when a resolver rewrites NXDOMAIN to an advertising server;
//! - answers outside 127.0.0.0/8 (RFC 5782 §2.1: the list answers with loopback
//!   addresses) and the list's documented error codes (Spamhaus
//!   127.255.255.252/254/255) are `dnsbl.query_refused`, never "listed";
//! - a list that does not answer is `dnsbl.lookup_failed`, never "not listed".
//!
//! Every question goes through the run's DNS cache with identical names, so
//! each (address, list) pair and each self-test is asked once per run however
//! many domains share the address. The optional per-list rate limit gates only
//! the questions that go out, not the ones answered from the cache.
//!
//! The engine emits codes and facts; the prose is in `plugins/dnsbl-*.toml` and
//! `plugins/backscatterer.toml`. Other engines and `mxaudit dnsbl ADDRESS…`
//! ask a list through its [`Blocklist`] face.
//!
//! Files: `params.rs` (the `[params]`, code tables, test points), `pacing.rs`
//! (the per-list rate limit), `selftest.rs` (RFC 5782 §5), `lookup.rs` (the
//! questions and the subjects of a domain), `verdict.rs` (what an answer means
//! and the observation it becomes), `lines.rs` (the lines of `mxaudit dnsbl`).

mod lines;
mod lookup;
mod pacing;
mod params;
mod selftest;
mod verdict;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use mxaudit_core::peer::{Blocklist, BlocklistInput, BlocklistLine, LineStatus, Meaning};
use mxaudit_core::{CheckCx, CheckReport, CodeSpec, Engine, Observation, PluginMeta, Target};
use mxaudit_dns::{Answer, Dns, DomainName, RType, reverse_labels};

use crate::resolve::mx_hosts;

use self::pacing::Pacer;
use self::params::*;
pub use self::params::{DnsblParams, ListKind, ReturnCodeRange};
use self::selftest::*;
pub use self::verdict::RefusalCause;
use self::verdict::*;

/// The text of lists defined inline in the configuration (`[[dnsbl]]`):
/// `(path, source)` of a manifest with every dnsbl code, worded for any list.
pub const INLINE_TEXT: (&str, &str) = (
    "builtin:crates/checks/text/dnsbl-inline.toml",
    include_str!("../../text/dnsbl-inline.toml"),
);

/// `dnsbl.listed`: an MX or outbound address is on an IP list.
pub const LISTED: &str = "dnsbl.listed";
/// `dnsbl.backscatterer_listed`: the address is on ips.backscatterer.org.
pub const BACKSCATTERER_LISTED: &str = "dnsbl.backscatterer_listed";
/// `dnsbl.domain_listed`: the domain is on a domain list.
pub const DOMAIN_LISTED: &str = "dnsbl.domain_listed";
/// `dnsbl.query_refused`: the list answered with an error, or is unusable.
pub const QUERY_REFUSED: &str = "dnsbl.query_refused";
/// `dnsbl.lookup_failed`: the list did not answer.
pub const LOOKUP_FAILED: &str = "dnsbl.lookup_failed";

const LISTED_VARS: &[&str] = &[
    "address",
    "hosts",
    "list",
    "zone",
    "return_code",
    "meaning",
    "meaning_ja",
    "reason",
];

/// Public resolvers that list operators refuse or cannot attribute (Spamhaus
/// answers 127.255.255.254 to them; Barracuda needs a registered resolver).
const PUBLIC_RESOLVERS: &[(&str, &str)] = &[
    ("8.8.8.8", "Google Public DNS"),
    ("8.8.4.4", "Google Public DNS"),
    ("2001:4860:4860::8888", "Google Public DNS"),
    ("2001:4860:4860::8844", "Google Public DNS"),
    ("1.1.1.1", "Cloudflare"),
    ("1.0.0.1", "Cloudflare"),
    ("2606:4700:4700::1111", "Cloudflare"),
    ("2606:4700:4700::1001", "Cloudflare"),
    ("9.9.9.9", "Quad9"),
    ("149.112.112.112", "Quad9"),
    ("2620:fe::fe", "Quad9"),
    ("2620:fe::9", "Quad9"),
    ("208.67.222.222", "OpenDNS"),
    ("208.67.220.220", "OpenDNS"),
    ("2620:119:35::35", "OpenDNS"),
    ("2620:119:53::53", "OpenDNS"),
];

/// Names asked within this window count as already paced (see [`Pacer`]).
const PACED_WINDOW: Duration = Duration::from_secs(600);

/// TXT reasons are cut here: they are untrusted text from the list.
const MAX_REASON_CHARS: usize = 300;

/// The `dnsbl` engine: one blocklist.
pub struct Dnsbl {
    plugin: String,
    list: String,
    zone: String,
    query_zone: String,
    key: Option<String>,
    kind: ListKind,
    codes: CodeTable,
    errors: CodeTable,
    listed_code: &'static str,
    ipv6: bool,
    pacer: Option<Pacer>,
    self_test: SelfTest,
    self_test_v6: SelfTest,
    refuses_public_resolvers: bool,
    max_hosts: usize,
    fetch_reason: bool,
}

impl std::fmt::Debug for Dnsbl {
    // By hand: the query zone may carry the DQS key, which must never be printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dnsbl")
            .field("plugin", &self.plugin)
            .field("zone", &self.zone)
            .field("kind", &self.kind)
            .field("keyed", &self.key.is_some())
            .finish_non_exhaustive()
    }
}

/// Public resolvers among `servers`, with their operator.
pub fn public_resolvers(servers: &[IpAddr]) -> Vec<(IpAddr, &'static str)> {
    // Parsed once: every (domain, list) task asks this for its evidence line.
    static KNOWN: std::sync::LazyLock<Vec<(IpAddr, &'static str)>> =
        std::sync::LazyLock::new(|| {
            PUBLIC_RESOLVERS
                .iter()
                .filter_map(|(ip, operator)| ip.parse().ok().map(|ip| (ip, *operator)))
                .collect()
        });
    servers
        .iter()
        .filter_map(|ip| KNOWN.iter().find(|(known, _)| known == ip).copied())
        .collect()
}

impl Dnsbl {
    /// Builds a list from its parameters; `env` reads the key variable (the
    /// process environment, or a map in tests). Pure apart from that read.
    pub fn from_params(
        params: DnsblParams,
        plugin: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Dnsbl, String> {
        let zone = zone_name("zone", &params.zone)?;
        let codes = CodeTable::parse("codes", &params.codes, &params.codes_ja)?;
        if codes.0.is_empty() {
            return Err("codes: give at least one return code that means listed".to_owned());
        }
        let errors = CodeTable::parse("errors", &params.errors, &params.errors_ja)?;
        if codes.intersects(&errors) {
            return Err(
                "codes and errors overlap: a return code is either a listing or an error"
                    .to_owned(),
            );
        }
        let listed_code = match (params.kind, params.listed_code.as_deref()) {
            (ListKind::Ip, None | Some(LISTED)) => LISTED,
            (ListKind::Ip, Some(BACKSCATTERER_LISTED)) => BACKSCATTERER_LISTED,
            (ListKind::Domain, None | Some(DOMAIN_LISTED)) => DOMAIN_LISTED,
            (ListKind::Ip, Some(other)) => {
                return Err(format!(
                    "listed_code: `{}` is not a listing code of IP lists ({LISTED}, {BACKSCATTERER_LISTED})",
                    other.escape_debug()
                ));
            }
            (ListKind::Domain, Some(other)) => {
                return Err(format!(
                    "listed_code: `{}` is not a listing code of domain lists ({DOMAIN_LISTED})",
                    other.escape_debug()
                ));
            }
        };
        let pacer = match params.queries_per_second {
            None => None,
            Some(q) if q.is_finite() && q > 0.0 && q <= 100_000.0 => Some(Pacer::new(q)),
            Some(q) => {
                return Err(format!(
                    "queries_per_second: {q} must be above 0 (and at most 100000)"
                ));
            }
        };
        let (query_zone, key) = match (&params.key_env, &params.key_zone) {
            (None, None) => (zone.clone(), None),
            (Some(_), None) | (None, Some(_)) => {
                return Err("key_env and key_zone go together".to_owned());
            }
            (Some(var), Some(key_zone)) => {
                let key_zone = zone_name("key_zone", key_zone)?;
                match env(var)
                    .map(|k| k.trim().to_owned())
                    .filter(|k| !k.is_empty())
                {
                    // No key: the list's public zone (Spamhaus's public mirrors).
                    None => (zone.clone(), None),
                    Some(key) => {
                        // The key becomes a DNS label. Say what is wrong with it
                        // without ever echoing it.
                        if key.len() > 63 || !key.chars().all(|c| c.is_ascii_alphanumeric()) {
                            return Err(format!(
                                "key_env: the value of {var} is not a query key (1-63 letters and digits)"
                            ));
                        }
                        (
                            format!("{}.{key_zone}", key.to_ascii_lowercase()),
                            Some(key.to_ascii_lowercase()),
                        )
                    }
                }
            }
        };
        let self_test = match params.kind {
            ListKind::Ip => SelfTest {
                listed: ip_test_point(
                    "test_listed",
                    params.test_listed.as_deref().unwrap_or("127.0.0.2"),
                )?,
                not_listed: ip_test_point(
                    "test_not_listed",
                    params.test_not_listed.as_deref().unwrap_or("127.0.0.1"),
                )?,
            },
            ListKind::Domain => SelfTest {
                listed: domain_test_point(
                    "test_listed",
                    params.test_listed.as_deref().unwrap_or("test"),
                )?,
                not_listed: domain_test_point(
                    "test_not_listed",
                    params.test_not_listed.as_deref().unwrap_or("invalid"),
                )?,
            },
        };
        // RFC 5782 §5: IPv6 lists list ::FFFF:7F00:2 and not ::FFFF:7F00:1.
        let v6 = |ip: Ipv6Addr| TestPoint {
            labels: reverse_labels(IpAddr::V6(ip)),
            shown: ip.to_string(),
        };
        let self_test_v6 = SelfTest {
            listed: v6(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0x7f00, 2)),
            not_listed: v6(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0x7f00, 1)),
        };
        if params.kind == ListKind::Domain && params.ipv6 {
            return Err("ipv6: only IP lists have IPv6 data".to_owned());
        }
        Ok(Dnsbl {
            plugin: plugin.to_owned(),
            list: params
                .name
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| zone.clone()),
            zone,
            query_zone,
            key,
            kind: params.kind,
            codes,
            errors,
            listed_code,
            ipv6: params.ipv6,
            pacer,
            self_test,
            self_test_v6,
            refuses_public_resolvers: params.refuses_public_resolvers,
            max_hosts: params.max_hosts,
            fetch_reason: params.fetch_reason,
        })
    }

    /// The plugin id.
    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    /// The list's name for people.
    pub fn list_name(&self) -> &str {
        &self.list
    }

    /// The list's zone as shown (the public zone, even when a key is used).
    pub fn zone(&self) -> &str {
        &self.zone
    }

    /// IP or domain list.
    pub fn kind(&self) -> ListKind {
        self.kind
    }

    /// Whether a query key (DQS) is in use.
    pub fn keyed(&self) -> bool {
        self.key.is_some()
    }

    /// Hides the key in text that may contain the query zone.
    fn redact(&self, text: &str) -> String {
        match &self.key {
            Some(key) => text.replace(key.as_str(), "***"),
            None => text.to_owned(),
        }
    }
}

impl Engine for Dnsbl {
    const NAME: &'static str = "dnsbl";
    const CODES: &'static [CodeSpec] = &[
        CodeSpec {
            code: LISTED,
            vars: LISTED_VARS,
        },
        CodeSpec {
            code: BACKSCATTERER_LISTED,
            vars: LISTED_VARS,
        },
        CodeSpec {
            code: DOMAIN_LISTED,
            vars: &[
                "name",
                "list",
                "zone",
                "return_code",
                "meaning",
                "meaning_ja",
                "reason",
            ],
        },
        CodeSpec {
            code: QUERY_REFUSED,
            vars: &[
                "queried",
                "list",
                "zone",
                "return_code",
                "meaning",
                "meaning_ja",
                "cause",
            ],
        },
        CodeSpec {
            code: LOOKUP_FAILED,
            vars: &["queried", "list", "zone", "failure"],
        },
    ];
    type Params = DnsblParams;

    fn build(params: DnsblParams, plugin: &PluginMeta) -> Result<Self, String> {
        Dnsbl::from_params(params, &plugin.id, |var| std::env::var(var).ok())
    }

    fn emitted_codes(&self) -> Vec<&'static str> {
        vec![self.listed_code, QUERY_REFUSED, LOOKUP_FAILED]
    }

    fn blocklist(&self) -> Option<&dyn Blocklist> {
        Some(self)
    }

    async fn run(&self, target: &Target, cx: &CheckCx) -> CheckReport {
        let mut report = CheckReport::default();
        match self.kind {
            ListKind::Ip => self.run_ip(target, cx, &mut report).await,
            ListKind::Domain => self.run_domain(target, cx, &mut report).await,
        }
        report
    }
}
