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
//! `plugins/backscatterer.toml`. `mxaudit dnsbl ADDRESS…` uses
//! [`check_addresses`] with the lists of the plugin set (`Check::engine`).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use mxaudit_core::{
    AddressPolicy, CheckCx, CheckReport, CodeSpec, Engine, Lang, Observation, PluginMeta, Target,
};
use mxaudit_dns::{Answer, Dns, DomainName, RType, reverse_labels};

use crate::resolve::{mx_hosts, resolve_host};

/// The text of lists defined inline in the configuration (`[[dnsbl]]`):
/// `(path, source)` of a manifest with every dnsbl code, worded for any list.
pub const INLINE_TEXT: (&str, &str) = (
    "builtin:crates/checks/text/dnsbl-inline.toml",
    include_str!("../text/dnsbl-inline.toml"),
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

/// What a list lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ListKind {
    /// IP addresses (RFC 5782 §2.1, §2.4).
    #[default]
    Ip,
    /// Domain names (RFC 5782 §2.3), e.g. Spamhaus DBL.
    Domain,
}

/// `[params]` of the `dnsbl` engine.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsblParams {
    /// The list's zone, e.g. `zen.spamhaus.org`. Also the name in subjects, so a
    /// finding keeps its fingerprint when the DQS zone is used instead.
    pub zone: String,
    /// The list's name for people (default: the zone).
    #[serde(default)]
    pub name: Option<String>,
    /// `ip` (default) or `domain`.
    #[serde(default)]
    pub kind: ListKind,
    /// Return codes that mean "listed": `"127.0.0.2"` or a range
    /// `"127.0.0.4-127.0.0.7"`, to what it means (English).
    pub codes: BTreeMap<ReturnCodeRange, String>,
    /// The same meanings in Japanese (default: the English text).
    #[serde(default)]
    pub codes_ja: BTreeMap<ReturnCodeRange, String>,
    /// Return codes that are errors about the query, never listings
    /// (Spamhaus 127.255.255.0/24), to what they mean (English).
    #[serde(default)]
    pub errors: BTreeMap<ReturnCodeRange, String>,
    /// The same meanings in Japanese.
    #[serde(default)]
    pub errors_ja: BTreeMap<ReturnCodeRange, String>,
    /// The code a listing emits: `dnsbl.listed` (IP lists, default),
    /// `dnsbl.backscatterer_listed`, or `dnsbl.domain_listed` (domain lists, default).
    #[serde(default)]
    pub listed_code: Option<String>,
    /// Whether the list has IPv6 data (RFC 5782 §2.4); IPv6 addresses are not
    /// asked of lists without it.
    #[serde(default)]
    pub ipv6: bool,
    /// Questions per second sent to this list at most, across the whole run.
    #[serde(default)]
    pub queries_per_second: Option<f64>,
    /// Environment variable holding a query key (Spamhaus DQS). When it is set,
    /// the zone asked is `<key>.<key_zone>`; the key never appears in output.
    #[serde(default)]
    pub key_env: Option<String>,
    /// The zone under which the key is used, e.g. `zen.dq.spamhaus.net`.
    #[serde(default)]
    pub key_zone: Option<String>,
    /// RFC 5782 §5 test point that must be listed (default `127.0.0.2`, or
    /// `test` for domain lists).
    #[serde(default)]
    pub test_listed: Option<String>,
    /// RFC 5782 §5 test point that must not be listed (default `127.0.0.1`, or
    /// `invalid` for domain lists).
    #[serde(default)]
    pub test_not_listed: Option<String>,
    /// The list refuses queries that come through public resolvers.
    #[serde(default)]
    pub refuses_public_resolvers: bool,
    /// MX hosts examined at most.
    #[serde(default = "default_max_hosts")]
    pub max_hosts: usize,
    /// Ask the TXT record of a listed entry for the list's reason (RFC 5782 §2.1).
    #[serde(default = "yes")]
    pub fetch_reason: bool,
}

fn default_max_hosts() -> usize {
    20
}

fn yes() -> bool {
    true
}

/// The meaning of a return code in both output languages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Meaning {
    /// English.
    pub en: String,
    /// Japanese.
    pub ja: String,
}

impl Meaning {
    fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::En => &self.en,
            Lang::Ja => &self.ja,
        }
    }
}

/// A table of return codes (single addresses or ranges) in 127.0.0.0/8.
#[derive(Debug, Clone, Default)]
struct CodeTable(Vec<CodeEntry>);

#[derive(Debug, Clone)]
struct CodeEntry {
    first: u32,
    last: u32,
    meaning: Meaning,
}

/// A key of `[params.codes]` or `[params.errors]`: one return code
/// (`"127.0.0.2"`) or an inclusive range (`"127.0.0.4-127.0.0.7"`) in
/// 127.0.0.0/8. Parsed while the manifest is read, so that a wrong key is an
/// error located at its line and naming it (style rule 1).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReturnCodeRange {
    text: String,
    first: u32,
    last: u32,
}

impl<'de> Deserialize<'de> for ReturnCodeRange {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let text = String::deserialize(de)?;
        let (first, last) = parse_code_range(&text).map_err(serde::de::Error::custom)?;
        Ok(ReturnCodeRange { text, first, last })
    }
}

/// Parses `"127.0.0.2"` or `"127.0.0.4-127.0.0.7"`.
fn parse_code_range(key: &str) -> Result<(u32, u32), String> {
    let (a, b) = match key.split_once('-') {
        Some((a, b)) => (a.trim(), b.trim()),
        None => (key.trim(), key.trim()),
    };
    let parse = |s: &str| {
        s.parse::<Ipv4Addr>().map_err(|_| {
            format!(
                "`{}` is not a return code (write \"127.0.0.2\" or \"127.0.0.4-127.0.0.7\")",
                key.escape_debug()
            )
        })
    };
    let (first, last) = (parse(a)?, parse(b)?);
    // RFC 5782 §2.1: lists answer with addresses in 127.0.0.0/8; anything
    // else is an error by definition, so a table cannot give it a meaning.
    if first.octets()[0] != 127 || last.octets()[0] != 127 {
        return Err(format!(
            "`{}` is outside 127.0.0.0/8 (RFC 5782 §2.1)",
            key.escape_debug()
        ));
    }
    let (first, last) = (u32::from(first), u32::from(last));
    if first > last {
        return Err(format!(
            "`{}`: the range ends before it starts",
            key.escape_debug()
        ));
    }
    Ok((first, last))
}

impl CodeTable {
    fn parse(
        what: &str,
        en: &BTreeMap<ReturnCodeRange, String>,
        ja: &BTreeMap<ReturnCodeRange, String>,
    ) -> Result<CodeTable, String> {
        let mut entries: Vec<CodeEntry> = Vec::new();
        for key in ja.keys() {
            if !en.contains_key(key) {
                return Err(format!(
                    "{what}_ja: `{}` has no English meaning in {what}",
                    key.text.escape_debug()
                ));
            }
        }
        for (key, meaning) in en {
            let (first, last) = (key.first, key.last);
            if meaning.trim().is_empty() {
                return Err(format!(
                    "{what}: `{}` has an empty meaning",
                    key.text.escape_debug()
                ));
            }
            let ja = ja.get(key).cloned().unwrap_or_else(|| meaning.clone());
            for other in &entries {
                let overlaps = first <= other.last && other.first <= last;
                let nested = (first >= other.first && last <= other.last)
                    || (other.first >= first && other.last <= last);
                let same = first == other.first && last == other.last;
                if overlaps && (!nested || same) {
                    return Err(format!(
                        "{what}: `{}` overlaps another entry (ranges may only nest)",
                        key.text.escape_debug()
                    ));
                }
            }
            entries.push(CodeEntry {
                first,
                last,
                meaning: Meaning {
                    en: meaning.clone(),
                    ja,
                },
            });
        }
        Ok(CodeTable(entries))
    }

    /// The meaning of `code`: the narrowest entry containing it.
    fn lookup(&self, code: Ipv4Addr) -> Option<&Meaning> {
        let n = u32::from(code);
        self.0
            .iter()
            .filter(|e| e.first <= n && n <= e.last)
            .min_by_key(|e| e.last - e.first)
            .map(|e| &e.meaning)
    }

    fn intersects(&self, other: &CodeTable) -> bool {
        self.0.iter().any(|a| {
            other
                .0
                .iter()
                .any(|b| a.first <= b.last && b.first <= a.last)
        })
    }
}

/// Paces the questions sent to one list: at most one per `interval`, shared by
/// every target of the run (the engine lives as long as the loaded plugin).
///
/// Only questions that go out must wait. The run's DNS cache answers repeated
/// names without a query, so a name granted a slot within [`PACED_WINDOW`]
/// waits only for that same slot: a thousand domains on one shared address cost
/// one slot, not a thousand. (A later run within the window asks such a name
/// unpaced once; that is at most one extra question per name.)
struct Pacer {
    interval: Duration,
    state: Mutex<PacerState>,
}

struct PacerState {
    next_slot: Instant,
    granted: HashMap<String, Instant>,
}

impl Pacer {
    fn new(per_second: f64) -> Pacer {
        Pacer {
            interval: Duration::from_secs_f64(1.0 / per_second),
            state: Mutex::new(PacerState {
                next_slot: Instant::now(),
                granted: HashMap::new(),
            }),
        }
    }

    /// When `name` may be asked.
    fn slot_for(&self, name: &str) -> Instant {
        let now = Instant::now();
        // The state stays consistent even if a holder panicked: keep using it.
        let mut s = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(&slot) = s.granted.get(name)
            && now < slot + PACED_WINDOW
        {
            return slot;
        }
        let slot = s.next_slot.max(now);
        s.next_slot = slot + self.interval;
        if s.granted.len() >= 4096 {
            s.granted.retain(|_, t| now < *t + PACED_WINDOW);
        }
        s.granted.insert(name.to_owned(), slot);
        slot
    }
}

/// One RFC 5782 §5 test point: the labels asked and how it is shown.
#[derive(Debug, Clone)]
struct TestPoint {
    labels: String,
    shown: String,
}

#[derive(Debug, Clone)]
struct SelfTest {
    listed: TestPoint,
    not_listed: TestPoint,
}

/// Which test points apply to a question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
    Domain,
}

impl Family {
    fn of(ip: IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

/// Why a list's answer cannot be used (the `cause` template variable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCause {
    /// The list answered one of its documented error codes.
    ErrorCode,
    /// The answer is outside 127.0.0.0/8: not a DNSBL answer (a resolver or a
    /// parked domain answered instead).
    NotLoopback,
    /// The self-test: the test point that must be listed is not (zone gone, or
    /// queries are blocked silently).
    TestPointMissing,
    /// The self-test: the test point that must not be listed is (the zone
    /// answers every name).
    AnswersEverything,
}

impl RefusalCause {
    /// The stable name used in templates and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalCause::ErrorCode => "error_code",
            RefusalCause::NotLoopback => "not_loopback",
            RefusalCause::TestPointMissing => "test_point_missing",
            RefusalCause::AnswersEverything => "answers_everything",
        }
    }
}

/// What one answer of a list means.
#[derive(Debug, Clone, PartialEq)]
enum Verdict {
    /// NXDOMAIN or NODATA.
    NotListed(&'static str),
    /// Return codes in 127.0.0.0/8 that are not errors.
    Listed(Vec<(Ipv4Addr, Option<Meaning>)>),
    /// Error codes or non-loopback answers.
    Refused {
        codes: Vec<(IpAddr, Option<Meaning>)>,
        cause: RefusalCause,
    },
    /// No usable answer (timeout, SERVFAIL, …).
    Failed(String),
}

/// One question asked of a list and what came back.
#[derive(Debug, Clone)]
struct Lookup {
    /// The name asked, with any key hidden.
    shown_name: String,
    verdict: Verdict,
}

/// A list's RFC 5782 §5 self-test result for one family.
#[derive(Debug, Clone)]
enum Health {
    Usable {
        evidence: String,
    },
    /// The list answered, but not as a list must.
    Unusable {
        test_point: String,
        return_code: String,
        meaning: Option<Meaning>,
        cause: RefusalCause,
        evidence: Vec<String>,
    },
    /// The list did not answer.
    Unanswered {
        test_point: String,
        failure: String,
        evidence: Vec<String>,
    },
}

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

fn zone_name(what: &str, zone: &str) -> Result<String, String> {
    let name = DomainName::parse(zone.trim_end_matches('.')).map_err(|e| format!("{what}: {e}"))?;
    Ok(name.bare().to_owned())
}

fn ip_test_point(what: &str, text: &str) -> Result<TestPoint, String> {
    let ip: IpAddr = text
        .parse()
        .map_err(|_| format!("{what}: `{}` is not an IP address", text.escape_debug()))?;
    Ok(TestPoint {
        labels: reverse_labels(ip),
        shown: ip.to_string(),
    })
}

fn domain_test_point(what: &str, text: &str) -> Result<TestPoint, String> {
    let name = DomainName::parse(text).map_err(|e| format!("{what}: {e}"))?;
    Ok(TestPoint {
        labels: name.bare().to_owned(),
        shown: name.bare().to_owned(),
    })
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

    fn test_points(&self, family: Family) -> &SelfTest {
        match family {
            Family::V4 | Family::Domain => &self.self_test,
            Family::V6 => &self.self_test_v6,
        }
    }

    /// The labels asked for an address: reversed octets or nibbles (RFC 5782 §2.1, §2.4).
    fn labels_of(ip: IpAddr) -> String {
        reverse_labels(ip)
    }

    /// Asks `labels.<zone>` A (through the run's cache, paced) and classifies the answer.
    async fn lookup(&self, labels: &str, cx: &CheckCx) -> Lookup {
        let (dns, deadline) = (&cx.dns, cx.deadline);
        let full = format!("{labels}.{}", self.query_zone);
        let shown_name = self.redact(&full);
        let name = match DomainName::parse_relaxed(&full) {
            Ok(n) => n,
            Err(e) => {
                return Lookup {
                    shown_name,
                    verdict: Verdict::Failed(self.redact(&format!("cannot be asked: {e}"))),
                };
            }
        };
        if let Err(why) = self.pace(&name, deadline, cx.rate_limits).await {
            return Lookup {
                shown_name,
                verdict: Verdict::Failed(why),
            };
        }
        let answer = dns.query(&name, RType::A).await;
        let verdict = self.classify(answer.as_ref());
        Lookup {
            shown_name,
            verdict,
        }
    }

    async fn pace(&self, name: &DomainName, deadline: Instant, honour: bool) -> Result<(), String> {
        let Some(pacer) = self.pacer.as_ref().filter(|_| honour) else {
            return Ok(());
        };
        let slot = pacer.slot_for(name.as_str());
        if slot > deadline {
            return Err(format!(
                "the rate limit of {} would delay the query past the check's deadline",
                self.zone
            ));
        }
        tokio::time::sleep_until(slot.into()).await;
        Ok(())
    }

    /// What an A answer means (RFC 5782 §2.1: listed entries have A records in
    /// 127.0.0.0/8; a name without one is not listed).
    fn classify(&self, answer: &Answer) -> Verdict {
        match answer {
            Answer::NxDomain { .. } => Verdict::NotListed("NXDOMAIN"),
            Answer::NoData { .. } => Verdict::NotListed("NODATA"),
            Answer::Failed(why) => Verdict::Failed(self.redact(&why.to_string())),
            Answer::Records(set) => {
                let mut listed = Vec::new();
                let mut errors = Vec::new();
                let mut foreign = Vec::new();
                for ip in set.addresses() {
                    match ip {
                        IpAddr::V4(v4) if v4.octets()[0] == 127 => match self.errors.lookup(v4) {
                            Some(m) => errors.push((ip, Some(m.clone()))),
                            None => listed.push((v4, self.codes.lookup(v4).cloned())),
                        },
                        other => foreign.push((other, None)),
                    }
                }
                if !foreign.is_empty() {
                    Verdict::Refused {
                        codes: foreign,
                        cause: RefusalCause::NotLoopback,
                    }
                } else if !errors.is_empty() {
                    Verdict::Refused {
                        codes: errors,
                        cause: RefusalCause::ErrorCode,
                    }
                } else if listed.is_empty() {
                    // Only CNAMEs on the way, no address: nothing is listed.
                    Verdict::NotListed("NODATA")
                } else {
                    Verdict::Listed(listed)
                }
            }
        }
    }

    /// The TXT reason of a listed entry, if the list publishes one.
    async fn reason(&self, labels: &str, cx: &CheckCx) -> Option<String> {
        let (dns, deadline) = (&cx.dns, cx.deadline);
        if !self.fetch_reason {
            return None;
        }
        let name = DomainName::parse_relaxed(&format!("{labels}.{}", self.query_zone)).ok()?;
        self.pace(&name, deadline, cx.rate_limits).await.ok()?;
        let answer = dns.query(&name, RType::Txt).await;
        match answer.as_ref() {
            Answer::Records(set) => {
                let texts: Vec<String> = set
                    .txt_joined()
                    .iter()
                    .map(|t| clean_text(&String::from_utf8_lossy(t)))
                    .filter(|t| !t.is_empty())
                    .collect();
                if texts.is_empty() {
                    None
                } else {
                    Some(self.redact(&truncate(&texts.join(" | "), MAX_REASON_CHARS)))
                }
            }
            Answer::NxDomain { .. } | Answer::NoData { .. } | Answer::Failed(_) => None,
        }
    }

    /// The RFC 5782 §5 self-test for `family`, asked once per run (cached).
    async fn health(&self, family: Family, cx: &CheckCx) -> Health {
        let points = self.test_points(family);
        let (listed, not_listed) = tokio::join!(
            self.lookup(&points.listed.labels, cx),
            self.lookup(&points.not_listed.labels, cx)
        );
        let evidence = vec![
            format!("{} A: {}", listed.shown_name, describe(&listed.verdict)),
            format!(
                "{} A: {}",
                not_listed.shown_name,
                describe(&not_listed.verdict)
            ),
        ];
        let unusable = |tp: &TestPoint, codes: String, meaning, cause| Health::Unusable {
            test_point: tp.shown.clone(),
            return_code: codes,
            meaning,
            cause,
            evidence: evidence.clone(),
        };
        match (&listed.verdict, &not_listed.verdict) {
            (Verdict::Failed(f), _) => Health::Unanswered {
                test_point: points.listed.shown.clone(),
                failure: f.clone(),
                evidence: evidence.clone(),
            },
            (Verdict::Refused { codes, cause }, _) => unusable(
                &points.listed,
                join_codes(codes.iter().map(|(c, _)| *c)),
                join_meanings(codes.iter().map(|(_, m)| m.as_ref())),
                *cause,
            ),
            (Verdict::NotListed(answer), _) => unusable(
                &points.listed,
                (*answer).to_owned(),
                None,
                RefusalCause::TestPointMissing,
            ),
            (Verdict::Listed(_), Verdict::Failed(f)) => Health::Unanswered {
                test_point: points.not_listed.shown.clone(),
                failure: f.clone(),
                evidence: evidence.clone(),
            },
            (Verdict::Listed(_), Verdict::Refused { codes, cause }) => unusable(
                &points.not_listed,
                join_codes(codes.iter().map(|(c, _)| *c)),
                join_meanings(codes.iter().map(|(_, m)| m.as_ref())),
                *cause,
            ),
            (Verdict::Listed(_), Verdict::Listed(codes)) => unusable(
                &points.not_listed,
                join_codes(codes.iter().map(|(c, _)| IpAddr::V4(*c))),
                join_meanings(codes.iter().map(|(_, m)| m.as_ref())),
                RefusalCause::AnswersEverything,
            ),
            (Verdict::Listed(_), Verdict::NotListed(_)) => Health::Usable {
                evidence: format!(
                    "{} self-test (RFC 5782 §5): {} listed, {} not listed",
                    self.zone, points.listed.shown, points.not_listed.shown
                ),
            },
        }
    }

    /// An evidence line when the run's resolver is a public one.
    fn resolver_note(&self, dns: &Dns) -> Option<String> {
        let public = public_resolvers(dns.nameservers());
        let (ip, operator) = public.first()?;
        Some(if self.refuses_public_resolvers && self.key.is_none() {
            format!(
                "resolver {ip} is a public resolver ({operator}); {} refuses queries through public resolvers",
                self.zone
            )
        } else {
            format!("resolver {ip} is a public resolver ({operator})")
        })
    }

    fn subject_for(&self, queried: &str) -> String {
        format!("{queried} ({})", self.zone)
    }

    /// The observation for an unusable or silent list.
    fn health_observation(
        &self,
        family: Family,
        health: &Health,
        note: Option<&String>,
    ) -> Option<Observation> {
        let subject = match family {
            Family::V6 => format!("{} (IPv6)", self.zone),
            Family::V4 | Family::Domain => self.zone.clone(),
        };
        let obs = match health {
            Health::Usable { .. } => return None,
            Health::Unusable {
                test_point,
                return_code,
                meaning,
                cause,
                evidence,
            } => Observation::new(QUERY_REFUSED, subject)
                .evidence_lines(evidence.iter().cloned())
                .var("queried", test_point.clone())
                .var("list", self.list.clone())
                .var("zone", self.zone.clone())
                .var("return_code", return_code.clone())
                .var(
                    "meaning",
                    meaning.as_ref().map(|m| m.en.clone()).unwrap_or_default(),
                )
                .var(
                    "meaning_ja",
                    meaning.as_ref().map(|m| m.ja.clone()).unwrap_or_default(),
                )
                .var("cause", cause.as_str()),
            Health::Unanswered {
                test_point,
                failure,
                evidence,
            } => Observation::new(LOOKUP_FAILED, subject)
                .evidence_lines(evidence.iter().cloned())
                .var("queried", test_point.clone())
                .var("list", self.list.clone())
                .var("zone", self.zone.clone())
                .var("failure", failure.clone()),
        };
        Some(match note {
            Some(n) => obs.evidence(n.clone()),
            None => obs,
        })
    }

    /// Turns one lookup of `queried` into an observation (or nothing when not listed).
    fn lookup_observation(
        &self,
        queried: &str,
        hosts: &str,
        lookup: &Lookup,
        reason: Option<String>,
        health_line: &str,
    ) -> Option<Observation> {
        let subject = self.subject_for(queried);
        let obs = match &lookup.verdict {
            Verdict::NotListed(_) => return None,
            Verdict::Listed(codes) => {
                let meaning = join_meanings(codes.iter().map(|(_, m)| m.as_ref()));
                let mut obs = Observation::new(self.listed_code, subject).evidence(format!(
                    "{} A {}",
                    lookup.shown_name,
                    join_codes(codes.iter().map(|(c, _)| IpAddr::V4(*c))).replace(", ", " ")
                ));
                for (code, m) in codes {
                    if let Some(m) = m {
                        obs = obs.evidence(format!("{code}: {}", m.en));
                    }
                }
                if let Some(r) = &reason {
                    obs = obs.evidence(format!("{} TXT {r:?}", lookup.shown_name));
                }
                obs = obs.evidence(health_line.to_owned());
                let obs = obs
                    .var("list", self.list.clone())
                    .var("zone", self.zone.clone())
                    .var(
                        "return_code",
                        join_codes(codes.iter().map(|(c, _)| IpAddr::V4(*c))),
                    )
                    .var(
                        "meaning",
                        meaning.as_ref().map(|m| m.en.clone()).unwrap_or_default(),
                    )
                    .var(
                        "meaning_ja",
                        meaning.as_ref().map(|m| m.ja.clone()).unwrap_or_default(),
                    )
                    .var("reason", reason.unwrap_or_default());
                match self.kind {
                    ListKind::Ip => obs
                        .evidence(format!("used by: {hosts}"))
                        .var("address", queried.to_owned())
                        .var("hosts", hosts.to_owned()),
                    ListKind::Domain => obs.var("name", queried.to_owned()),
                }
            }
            Verdict::Refused { codes, cause } => {
                let meaning = join_meanings(codes.iter().map(|(_, m)| m.as_ref()));
                Observation::new(QUERY_REFUSED, subject)
                    .evidence(format!(
                        "{} A {}",
                        lookup.shown_name,
                        join_codes(codes.iter().map(|(c, _)| *c)).replace(", ", " ")
                    ))
                    .var("queried", queried.to_owned())
                    .var("list", self.list.clone())
                    .var("zone", self.zone.clone())
                    .var("return_code", join_codes(codes.iter().map(|(c, _)| *c)))
                    .var(
                        "meaning",
                        meaning.as_ref().map(|m| m.en.clone()).unwrap_or_default(),
                    )
                    .var(
                        "meaning_ja",
                        meaning.as_ref().map(|m| m.ja.clone()).unwrap_or_default(),
                    )
                    .var("cause", cause.as_str())
            }
            Verdict::Failed(failure) => Observation::new(LOOKUP_FAILED, subject)
                .evidence(format!("{} A: {failure}", lookup.shown_name))
                .var("queried", queried.to_owned())
                .var("list", self.list.clone())
                .var("zone", self.zone.clone())
                .var("failure", failure.clone()),
        };
        Some(obs)
    }

    /// The addresses to look up for a target: public MX addresses and outbound
    /// addresses, each with who uses it.
    async fn subjects(
        &self,
        target: &Target,
        cx: &CheckCx,
        report: &mut CheckReport,
    ) -> Vec<(IpAddr, Vec<String>)> {
        let mut subjects: Vec<(IpAddr, Vec<String>)> = Vec::new();
        let mut add = |ip: IpAddr, who: String| self.add_subject(&mut subjects, ip, who, cx);
        match mx_hosts(&target.domain, cx, self.max_hosts).await {
            Ok(hosts) => {
                for h in hosts {
                    for ip in h.addresses.addresses {
                        add(ip, format!("MX {}", h.host));
                    }
                }
            }
            // NXDOMAIN and MX failures are the mx engine's findings.
            Err(why) if why.ends_with("NXDOMAIN") => {}
            Err(why) => report.error(why),
        }
        for ip in &target.outbound_ips {
            add(*ip, "outbound".to_owned());
        }
        subjects
    }

    /// Adds `ip`, used by `who`, to the addresses to look up, unless the list
    /// cannot list it.
    fn add_subject(
        &self,
        subjects: &mut Vec<(IpAddr, Vec<String>)>,
        ip: IpAddr,
        who: String,
        cx: &CheckCx,
    ) {
        // Private, loopback and documentation addresses cannot be listed on a
        // public list (mx.target_private reports them), unless the user
        // allowed them as public (labs).
        if cx.addresses.non_public_reason(ip).is_some() {
            return;
        }
        if ip.is_ipv6() && !self.ipv6 {
            return;
        }
        match subjects.iter_mut().find(|(s, _)| *s == ip) {
            Some((_, users)) => {
                if !users.contains(&who) {
                    users.push(who);
                }
            }
            None => subjects.push((ip, vec![who])),
        }
    }

    /// Looks up `addresses`, used by `who` (e.g. `smart host mail.example.com`),
    /// as an audit looks up MX addresses: the self-test first, the same codes,
    /// the same questions through the run's cache. `preflight` asks this about
    /// the smart host. Addresses this list cannot list (private ones, IPv6 on
    /// an IPv4 list) are left out; the bool says whether any was asked.
    pub async fn check_ips(
        &self,
        addresses: &[IpAddr],
        who: &str,
        cx: &CheckCx,
    ) -> (CheckReport, bool) {
        let mut report = CheckReport::default();
        let mut subjects = Vec::new();
        if self.kind == ListKind::Ip {
            for ip in addresses {
                self.add_subject(&mut subjects, *ip, who.to_owned(), cx);
            }
        }
        let asked = !subjects.is_empty();
        self.check_subjects(subjects, cx, &mut report).await;
        (report, asked)
    }

    async fn run_ip(&self, target: &Target, cx: &CheckCx, report: &mut CheckReport) {
        let subjects = self.subjects(target, cx, report).await;
        self.check_subjects(subjects, cx, report).await;
    }

    async fn check_subjects(
        &self,
        subjects: Vec<(IpAddr, Vec<String>)>,
        cx: &CheckCx,
        report: &mut CheckReport,
    ) {
        if subjects.is_empty() {
            return;
        }
        let note = self.resolver_note(&cx.dns);
        let mut healths: Vec<(Family, Health)> = Vec::new();
        for family in [Family::V4, Family::V6] {
            if subjects.iter().any(|(ip, _)| Family::of(*ip) == family) {
                let health = self.health(family, cx).await;
                if let Some(obs) = self.health_observation(family, &health, note.as_ref()) {
                    report.error(format!(
                        "{}{}: the list is unusable or silent; its answers were not used",
                        self.zone,
                        if family == Family::V6 { " (IPv6)" } else { "" }
                    ));
                    report.push(obs);
                }
                healths.push((family, health));
            }
        }
        let checks = futures::future::join_all(subjects.iter().map(|(ip, users)| {
            let health = healths
                .iter()
                .find(|(f, _)| *f == Family::of(*ip))
                .map(|(_, h)| h);
            async move {
                let Some(Health::Usable { evidence }) = health else {
                    return None;
                };
                let labels = Self::labels_of(*ip);
                let lookup = self.lookup(&labels, cx).await;
                let reason = match lookup.verdict {
                    Verdict::Listed(_) => self.reason(&labels, cx).await,
                    Verdict::NotListed(_) | Verdict::Refused { .. } | Verdict::Failed(_) => None,
                };
                self.lookup_observation(
                    &ip.to_string(),
                    &users.join(", "),
                    &lookup,
                    reason,
                    evidence,
                )
            }
        }))
        .await;
        for obs in checks.into_iter().flatten() {
            if obs.code == LOOKUP_FAILED {
                report.error(format!("{}: {}", obs.subject, self.zone_failure(&obs)));
            }
            report.push(match &note {
                Some(n) => obs.evidence(n.clone()),
                None => obs,
            });
        }
    }

    fn zone_failure(&self, obs: &Observation) -> String {
        obs.vars
            .get("failure")
            .and_then(|v| v.as_str())
            .unwrap_or("no answer")
            .to_owned()
    }

    async fn run_domain(&self, target: &Target, cx: &CheckCx, report: &mut CheckReport) {
        let note = self.resolver_note(&cx.dns);
        let health = self.health(Family::Domain, cx).await;
        if let Some(obs) = self.health_observation(Family::Domain, &health, note.as_ref()) {
            report.error(format!(
                "{}: the list is unusable or silent; its answers were not used",
                self.zone
            ));
            report.push(obs);
        }
        let Health::Usable { evidence } = &health else {
            return;
        };
        let labels = target.domain.bare().to_owned();
        let lookup = self.lookup(&labels, cx).await;
        let reason = match lookup.verdict {
            Verdict::Listed(_) => self.reason(&labels, cx).await,
            Verdict::NotListed(_) | Verdict::Refused { .. } | Verdict::Failed(_) => None,
        };
        if let Some(obs) =
            self.lookup_observation(target.domain.bare(), "", &lookup, reason, evidence)
        {
            if obs.code == LOOKUP_FAILED {
                report.error(format!("{}: {}", obs.subject, self.zone_failure(&obs)));
            }
            report.push(match &note {
                Some(n) => obs.evidence(n.clone()),
                None => obs,
            });
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

    async fn run(&self, target: &Target, cx: &CheckCx) -> CheckReport {
        let mut report = CheckReport::default();
        match self.kind {
            ListKind::Ip => self.run_ip(target, cx, &mut report).await,
            ListKind::Domain => self.run_domain(target, cx, &mut report).await,
        }
        report
    }
}

fn describe(v: &Verdict) -> String {
    match v {
        Verdict::NotListed(a) => (*a).to_owned(),
        Verdict::Listed(codes) => join_codes(codes.iter().map(|(c, _)| IpAddr::V4(*c))),
        Verdict::Refused { codes, .. } => join_codes(codes.iter().map(|(c, _)| *c)),
        Verdict::Failed(f) => f.clone(),
    }
}

fn join_codes(codes: impl Iterator<Item = IpAddr>) -> String {
    let mut v: Vec<String> = Vec::new();
    for c in codes {
        let s = c.to_string();
        if !v.contains(&s) {
            v.push(s);
        }
    }
    v.join(", ")
}

/// The known meanings, de-duplicated, joined with "; ".
fn join_meanings<'a>(meanings: impl Iterator<Item = Option<&'a Meaning>>) -> Option<Meaning> {
    let mut en: Vec<&str> = Vec::new();
    let mut ja: Vec<&str> = Vec::new();
    for m in meanings.flatten() {
        if !en.contains(&m.en.as_str()) {
            en.push(&m.en);
            ja.push(&m.ja);
        }
    }
    if en.is_empty() {
        None
    } else {
        Some(Meaning {
            en: en.join("; "),
            ja: ja.join("; "),
        })
    }
}

/// Untrusted list text on one line: control characters become spaces.
fn clean_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        out.push(if c.is_control() { ' ' } else { c });
    }
    out.trim().to_owned()
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

// ---------------------------------------------------------------------------
// `mxaudit dnsbl ADDRESS…`: direct checks, like a blacklist-check page.
// ---------------------------------------------------------------------------

/// What one list said about one address or name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineStatus {
    /// Listed; `return_codes` and `meaning` say how.
    Listed,
    /// Not listed (NXDOMAIN or NODATA).
    NotListed,
    /// The list answered an error code or a non-loopback address for this query.
    Refused,
    /// The list failed its RFC 5782 §5 self-test; its answers are not used.
    Unusable,
    /// The list (or the host name) did not answer.
    Failed,
    /// Not asked: the list does not apply (IPv6 on an IPv4 list, an address on a
    /// domain list, a private address).
    Skipped,
}

impl LineStatus {
    fn label(self) -> &'static str {
        match self {
            LineStatus::Listed => "LISTED",
            LineStatus::NotListed => "not listed",
            LineStatus::Refused => "REFUSED",
            LineStatus::Unusable => "UNUSABLE",
            LineStatus::Failed => "FAILED",
            LineStatus::Skipped => "skipped",
        }
    }
}

/// One line of `mxaudit dnsbl`: one (input address or name, list).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DnsblLine {
    /// The input as given (an address or a host name).
    pub input: String,
    /// What was looked up: the address (of a host name) or the name.
    pub queried: String,
    /// The plugin id of the list.
    pub plugin: String,
    /// The list's name.
    pub list: String,
    /// The list's zone (public name; a DQS key is never shown).
    pub zone: String,
    /// The outcome.
    pub status: LineStatus,
    /// Return codes seen (listed, refused, unusable).
    pub return_codes: Vec<String>,
    /// What they mean, from the list's manifest.
    pub meaning: Option<Meaning>,
    /// The list's TXT reason (untrusted text).
    pub reason: Option<String>,
    /// Why not listed/failed/skipped/refused, in a few words.
    pub detail: Option<String>,
}

impl DnsblLine {
    /// One line of text: `INPUT  LIST (ZONE)  STATUS  CODES MEANING  "REASON"`.
    pub fn to_text(&self, lang: Lang) -> String {
        let mut s = String::new();
        let who = if self.input == self.queried {
            self.input.clone()
        } else {
            format!("{} ({})", self.input, self.queried)
        };
        let _ = write!(
            s,
            "{who}  {} ({})  {}",
            self.list,
            self.zone,
            self.status.label()
        );
        if !self.return_codes.is_empty() {
            let _ = write!(s, "  {}", self.return_codes.join(" "));
        }
        if let Some(m) = &self.meaning {
            let _ = write!(s, " {}", m.get(lang));
        }
        if let Some(r) = &self.reason {
            let _ = write!(s, "  {r:?}");
        }
        if let Some(d) = &self.detail {
            let _ = write!(s, "  ({d})");
        }
        s
    }
}

/// The text form of a `mxaudit dnsbl` result, one line per (input, list).
pub fn lines_to_text(lines: &[DnsblLine], lang: Lang) -> String {
    let mut out = String::new();
    for l in lines {
        out.push_str(&l.to_text(lang));
        out.push('\n');
    }
    out
}

/// An input of `mxaudit dnsbl` that is neither an address nor a host name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DnsblInputError {
    /// Not an IP address and not a valid host name.
    #[error("`{input}` is neither an IP address nor a host name: {why}")]
    NotAnAddress {
        /// The input, escaped.
        input: String,
        /// Why it is not a host name.
        why: String,
    },
}

enum Input {
    Address(IpAddr),
    Host(DomainName),
}

/// Checks addresses and host names against `lists` directly, like a
/// blacklist-check page: one [`DnsblLine`] per (address or name, list), in input
/// then list order. Host names are resolved (A and AAAA) through `dns`, and
/// domain lists are asked about the host name itself. Each list's RFC 5782 §5
/// self-test is asked once; a list that fails it gives `unusable` lines.
///
/// `mxaudit dnsbl` passes every list of the plugin set (built-in, plugin
/// directories, inline `[[dnsbl]]`), found with
/// `plugin.check.engine().downcast_ref::<Dnsbl>()`.
pub async fn check_addresses(
    dns: &Dns,
    lists: &[&Dnsbl],
    inputs: &[String],
    policy: &AddressPolicy,
) -> Result<Vec<DnsblLine>, DnsblInputError> {
    let mut parsed = Vec::new();
    for input in inputs {
        let trimmed = input.trim();
        let p = match trimmed.parse::<IpAddr>() {
            Ok(ip) => Input::Address(ip),
            Err(_) => Input::Host(DomainName::parse(trimmed).map_err(|e| {
                DnsblInputError::NotAnAddress {
                    input: trimmed.escape_debug().to_string(),
                    why: e.to_string(),
                }
            })?),
        };
        parsed.push((trimmed.to_owned(), p));
    }
    // A long deadline: the command waits for the pacing of every list.
    let cx = CheckCx {
        dns: dns.clone(),
        addresses: Arc::new(policy.clone()),
        deadline: Instant::now() + Duration::from_secs(3600),
        rate_limits: true,
    };
    let mut out = Vec::new();
    for (input, p) in &parsed {
        let (addresses, host_failure) = match p {
            Input::Address(ip) => (vec![*ip], None),
            Input::Host(name) => {
                let h = resolve_host(name, &cx).await;
                let failure = if h.addresses.is_empty() {
                    let mut why = h.failures.clone();
                    why.extend(h.evidence.iter().cloned());
                    Some(if why.is_empty() {
                        "no A/AAAA record".to_owned()
                    } else {
                        why.join(", ")
                    })
                } else {
                    None
                };
                (h.addresses, failure)
            }
        };
        let per_list = futures::future::join_all(
            lists
                .iter()
                .map(|list| list.lines_for(input, p, &addresses, host_failure.as_deref(), &cx)),
        )
        .await;
        out.extend(per_list.into_iter().flatten());
    }
    Ok(out)
}

impl Dnsbl {
    fn line(&self, input: &str, queried: &str, status: LineStatus) -> DnsblLine {
        DnsblLine {
            input: input.to_owned(),
            queried: queried.to_owned(),
            plugin: self.plugin.clone(),
            list: self.list.clone(),
            zone: self.zone.clone(),
            status,
            return_codes: Vec::new(),
            meaning: None,
            reason: None,
            detail: None,
        }
    }

    async fn lines_for(
        &self,
        input: &str,
        parsed: &Input,
        addresses: &[IpAddr],
        host_failure: Option<&str>,
        cx: &CheckCx,
    ) -> Vec<DnsblLine> {
        match (self.kind, parsed) {
            (ListKind::Domain, Input::Address(ip)) => {
                let mut l = self.line(input, &ip.to_string(), LineStatus::Skipped);
                l.detail = Some("domain list; give a host name".to_owned());
                vec![l]
            }
            (ListKind::Domain, Input::Host(name)) => {
                vec![self.line_for(input, name.bare(), Family::Domain, cx).await]
            }
            (ListKind::Ip, _) => {
                if let Some(why) = host_failure {
                    let mut l = self.line(input, input, LineStatus::Failed);
                    l.detail = Some(why.to_owned());
                    return vec![l];
                }
                let mut lines = Vec::new();
                for ip in addresses {
                    let queried = ip.to_string();
                    if let Some(why) = cx.addresses.non_public_reason(*ip) {
                        let mut l = self.line(input, &queried, LineStatus::Skipped);
                        l.detail = Some(format!("{why} address; public lists do not list it"));
                        lines.push(l);
                    } else if ip.is_ipv6() && !self.ipv6 {
                        let mut l = self.line(input, &queried, LineStatus::Skipped);
                        l.detail = Some("the list has no IPv6 data".to_owned());
                        lines.push(l);
                    } else {
                        lines.push(self.line_for(input, &queried, Family::of(*ip), cx).await);
                    }
                }
                lines
            }
        }
    }

    async fn line_for(
        &self,
        input: &str,
        queried: &str,
        family: Family,
        cx: &CheckCx,
    ) -> DnsblLine {
        let mut line = self.line(input, queried, LineStatus::NotListed);
        match self.health(family, cx).await {
            Health::Usable { .. } => {}
            Health::Unusable {
                test_point,
                return_code,
                meaning,
                cause,
                ..
            } => {
                line.status = LineStatus::Unusable;
                line.return_codes = vec![return_code];
                line.meaning = meaning;
                line.detail = Some(format!("self-test {test_point}: {}", cause.as_str()));
                return line;
            }
            Health::Unanswered {
                test_point,
                failure,
                ..
            } => {
                line.status = LineStatus::Failed;
                line.detail = Some(format!("self-test {test_point}: {failure}"));
                return line;
            }
        }
        let labels = match family {
            Family::Domain => queried.to_owned(),
            Family::V4 | Family::V6 => match queried.parse::<IpAddr>() {
                Ok(ip) => Self::labels_of(ip),
                Err(_) => queried.to_owned(),
            },
        };
        let lookup = self.lookup(&labels, cx).await;
        match lookup.verdict {
            Verdict::NotListed(answer) => line.detail = Some(answer.to_owned()),
            Verdict::Listed(codes) => {
                line.status = LineStatus::Listed;
                line.return_codes = codes.iter().map(|(c, _)| c.to_string()).collect();
                line.meaning = join_meanings(codes.iter().map(|(_, m)| m.as_ref()));
                line.reason = self.reason(&labels, cx).await;
            }
            Verdict::Refused { codes, cause } => {
                line.status = LineStatus::Refused;
                line.return_codes = codes.iter().map(|(c, _)| c.to_string()).collect();
                line.meaning = join_meanings(codes.iter().map(|(_, m)| m.as_ref()));
                line.detail = Some(cause.as_str().to_owned());
            }
            Verdict::Failed(failure) => {
                line.status = LineStatus::Failed;
                line.detail = Some(failure);
            }
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use mxaudit_dns::DnsConfig;
    use mxaudit_testbed::{DnsServer, ZoneText};

    fn params(toml_text: &str) -> DnsblParams {
        toml::from_str(toml_text).expect("params parse")
    }

    fn zen() -> DnsblParams {
        params(
            r#"
            zone = "zen.bl.test"
            name = "Test ZEN"
            ipv6 = true
            [codes]
            "127.0.0.2" = "SBL"
            "127.0.0.4-127.0.0.7" = "XBL"
            "127.0.0.10" = "PBL"
            [codes_ja]
            "127.0.0.2" = "SBL (ja)"
            [errors]
            "127.255.255.0-127.255.255.255" = "error"
            "127.255.255.254" = "public resolver"
            "#,
        )
    }

    fn build(p: DnsblParams) -> Dnsbl {
        Dnsbl::from_params(p, "test", |_| None).expect("builds")
    }

    fn records(ips: &[&str]) -> Answer {
        use mxaudit_dns::{Rdata, Record, RecordSet};
        Answer::Records(RecordSet(
            ips.iter()
                .map(|ip| Record {
                    name: "x.zen.bl.test.".to_owned(),
                    ttl: 60,
                    data: Rdata::A(ip.parse().expect("ip")),
                })
                .collect(),
        ))
    }

    #[test]
    fn code_tables_parse_ranges_and_pick_the_narrowest() {
        let list = build(zen());
        let m = |ip: &str| {
            list.codes
                .lookup(ip.parse().expect("ip"))
                .map(|m| m.en.clone())
        };
        assert_eq!(m("127.0.0.5").as_deref(), Some("XBL"));
        assert_eq!(m("127.0.0.8"), None);
        assert_eq!(
            list.codes
                .lookup("127.0.0.2".parse().expect("ip"))
                .map(|m| m.ja.as_str()),
            Some("SBL (ja)")
        );
        assert_eq!(
            list.codes
                .lookup("127.0.0.10".parse().expect("ip"))
                .map(|m| m.ja.as_str()),
            Some("PBL"),
            "ja falls back to en"
        );
        let e = list.errors.lookup("127.255.255.254".parse().expect("ip"));
        assert_eq!(e.map(|m| m.en.as_str()), Some("public resolver"));
        let e = list.errors.lookup("127.255.255.250".parse().expect("ip"));
        assert_eq!(e.map(|m| m.en.as_str()), Some("error"));
    }

    #[test]
    fn bad_params_are_refused_with_the_key() {
        // Key errors come from reading the manifest, the rest from build().
        let bad = |extra: &str, codes: &str| {
            let text = format!("zone = \"x.test\"\n{extra}\n[codes]\n{codes}\n");
            match toml::from_str::<DnsblParams>(&text) {
                Ok(p) => Dnsbl::from_params(p, "t", |_| None).expect_err("refused"),
                Err(e) => e.to_string(),
            }
        };
        assert!(bad("", "\"10.0.0.2\" = \"x\"").contains("outside 127.0.0.0/8"));
        assert!(bad("", "\"127.0.0.9-127.0.0.2\" = \"x\"").contains("ends before"));
        assert!(
            bad(
                "",
                "\"127.0.0.2-127.0.0.5\" = \"a\"\n\"127.0.0.4-127.0.0.9\" = \"b\""
            )
            .contains("overlaps")
        );
        assert!(bad("", "\"no\" = \"x\"").contains("`no` is not a return code"));
        assert!(
            bad(
                "listed_code = \"dnsbl.domain_listed\"",
                "\"127.0.0.2\" = \"x\""
            )
            .contains("listed_code")
        );
        assert!(
            bad("queries_per_second = 0.0", "\"127.0.0.2\" = \"x\"").contains("queries_per_second")
        );
        assert!(bad("key_env = \"K\"", "\"127.0.0.2\" = \"x\"").contains("go together"));
        let p = params(
            "zone = \"x.test\"\n[codes]\n\"127.0.0.2\" = \"x\"\n[errors]\n\"127.0.0.0-127.0.0.255\" = \"e\"\n",
        );
        assert!(
            Dnsbl::from_params(p, "t", |_| None)
                .expect_err("overlap")
                .contains("overlap")
        );
        let p = params(
            "zone = \"x.test\"\nkind = \"domain\"\nipv6 = true\n[codes]\n\"127.0.1.2\" = \"x\"\n",
        );
        assert!(
            Dnsbl::from_params(p, "t", |_| None)
                .expect_err("v6")
                .contains("ipv6")
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = toml::from_str::<DnsblParams>("zone = \"x\"\nzoen = \"y\"\n[codes]\n")
            .expect_err("typo");
        assert!(err.to_string().contains("zoen"), "{err}");
    }

    #[test]
    fn answers_are_classified() {
        let list = build(zen());
        match list.classify(&records(&["127.0.0.2", "127.0.0.4"])) {
            Verdict::Listed(codes) => assert_eq!(codes.len(), 2),
            other => panic!("{other:?}"),
        }
        // RFC 5782 §2.1: answers outside 127/8 are not list answers.
        assert!(matches!(
            list.classify(&records(&["198.51.100.80"])),
            Verdict::Refused {
                cause: RefusalCause::NotLoopback,
                ..
            }
        ));
        // An error code among listings: nothing is listed.
        assert!(matches!(
            list.classify(&records(&["127.0.0.2", "127.255.255.254"])),
            Verdict::Refused {
                cause: RefusalCause::ErrorCode,
                ..
            }
        ));
        assert_eq!(
            list.classify(&Answer::NxDomain { negative_ttl: None }),
            Verdict::NotListed("NXDOMAIN")
        );
        assert!(matches!(
            list.classify(&Answer::Failed(mxaudit_dns::LookupFailure::Timeout)),
            Verdict::Failed(_)
        ));
        // An undocumented code in 127/8 is a listing without a meaning.
        match list.classify(&records(&["127.0.0.8"])) {
            Verdict::Listed(codes) => assert_eq!(codes[0].1, None),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rfc5782_test_points() {
        let list = build(zen());
        assert_eq!(list.self_test.listed.labels, "2.0.0.127");
        assert_eq!(list.self_test.not_listed.labels, "1.0.0.127");
        // RFC 5782 §5: ::FFFF:7F00:2 in nibble form (§2.4).
        let v6 = &list.self_test_v6.listed.labels;
        assert!(v6.starts_with("2.0.0.0.0.0.f.7.f.f.f.f.0.0.0.0"), "{v6}");
        assert_eq!(v6.split('.').count(), 32);
        let p = params("zone = \"dbl.test\"\nkind = \"domain\"\n[codes]\n\"127.0.1.2\" = \"x\"\n");
        let dbl = build(p);
        assert_eq!(dbl.self_test.listed.labels, "test");
        assert_eq!(dbl.self_test.not_listed.labels, "invalid");
        assert_eq!(dbl.listed_code, DOMAIN_LISTED);
    }

    #[test]
    fn public_resolvers_are_recognised() {
        let found = public_resolvers(&[
            "127.0.0.1".parse().expect("ip"),
            "1.1.1.1".parse().expect("ip"),
            "2001:4860:4860::8888".parse().expect("ip"),
        ]);
        let ops: Vec<&str> = found.iter().map(|(_, o)| *o).collect();
        assert_eq!(ops, ["Cloudflare", "Google Public DNS"]);
    }

    #[test]
    fn the_key_is_used_and_never_shown() {
        let p = params(
            "zone = \"zen.bl.test\"\nkey_env = \"DQS\"\nkey_zone = \"zen.dq.test\"\n[codes]\n\"127.0.0.2\" = \"x\"\n",
        );
        let list = Dnsbl::from_params(p, "t", |v| (v == "DQS").then(|| "AbC123secret".to_owned()))
            .expect("builds");
        assert_eq!(list.query_zone, "abc123secret.zen.dq.test");
        assert!(list.keyed());
        assert_eq!(list.zone(), "zen.bl.test");
        assert!(!format!("{list:?}").contains("abc123secret"));
        assert_eq!(
            list.redact("2.0.0.127.abc123secret.zen.dq.test"),
            "2.0.0.127.***.zen.dq.test"
        );
        // A bad key is refused without echoing it.
        let p = params(
            "zone = \"zen.bl.test\"\nkey_env = \"DQS\"\nkey_zone = \"zen.dq.test\"\n[codes]\n\"127.0.0.2\" = \"x\"\n",
        );
        let err = Dnsbl::from_params(p, "t", |_| Some("bad key!".to_owned())).expect_err("bad");
        assert!(!err.contains("bad key!"), "{err}");
        // No key: the public zone.
        let p = params(
            "zone = \"zen.bl.test\"\nkey_env = \"DQS\"\nkey_zone = \"zen.dq.test\"\n[codes]\n\"127.0.0.2\" = \"x\"\n",
        );
        let list = Dnsbl::from_params(p, "t", |_| None).expect("builds");
        assert_eq!(list.query_zone, "zen.bl.test");
    }

    #[test]
    fn pacer_spaces_new_names_and_not_repeated_ones() {
        let pacer = Pacer::new(10.0);
        let a = pacer.slot_for("a.");
        let b = pacer.slot_for("b.");
        let c = pacer.slot_for("c.");
        assert!(b - a >= Duration::from_millis(99) && c - b >= Duration::from_millis(99));
        // A name already granted waits for its own slot, not a new one.
        assert_eq!(pacer.slot_for("b."), b);
        let d = pacer.slot_for("d.");
        assert!(d - c >= Duration::from_millis(99));
    }

    const KEYED_ZONE: &str = "$ORIGIN dq.test.
$TTL 60
@ IN SOA ns.dq.test. h.dq.test. 1 3600 600 86400 60
@ IN NS ns.dq.test.
ns IN A 127.0.0.1
2.0.0.127.secretkey1.zen IN A 127.0.0.2
2.0.0.127.secretkey1.zen IN TXT \"test point\"
10.113.0.203.secretkey1.zen IN A 127.0.0.4
10.113.0.203.secretkey1.zen IN TXT \"see https://lists.test/secretkey1/203.0.113.10\"
";

    /// DQS: the keyed zone is asked, findings show the public zone and never the key.
    #[tokio::test]
    async fn keyed_zone_is_asked_and_hidden() {
        let server = DnsServer::start(&[ZoneText {
            origin: "dq.test.".to_owned(),
            text: KEYED_ZONE.to_owned(),
        }])
        .await
        .expect("server");
        let dns = Dns::new(&DnsConfig {
            nameservers: vec![server.addr()],
            timeout: Duration::from_millis(500),
            attempts: 0,
            ..DnsConfig::default()
        })
        .expect("dns");
        let p = params(
            "zone = \"zen.spamhaus.test\"\nkey_env = \"DQS\"\nkey_zone = \"zen.dq.test\"\n[codes]\n\"127.0.0.2\" = \"SBL\"\n\"127.0.0.4\" = \"XBL\"\n",
        );
        let list = Dnsbl::from_params(p, "t", |_| Some("SecretKey1".to_owned())).expect("builds");
        let cx = CheckCx {
            dns: dns.clone(),
            addresses: Arc::new(AddressPolicy::new(vec![
                "203.0.113.0/24".parse().expect("net"),
            ])),
            deadline: Instant::now() + Duration::from_secs(10),
            rate_limits: true,
        };
        let mut target = Target::new(DomainName::parse("nomx.dq.test").expect("name"));
        target.outbound_ips = vec!["203.0.113.10".parse().expect("ip")];
        let report = list.run(&target, &cx).await;
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(report.observations.len(), 1, "{:?}", report.observations);
        let obs = &report.observations[0];
        assert_eq!(obs.code, LISTED);
        assert_eq!(obs.subject, "203.0.113.10 (zen.spamhaus.test)");
        let all = serde_json::to_string(&report.observations).expect("json");
        assert!(!all.to_ascii_lowercase().contains("secretkey1"), "{all}");
        assert!(all.contains("***.zen.dq.test"), "{all}");
        assert_eq!(
            server.count_of("10.113.0.203.secretkey1.zen.dq.test", "A"),
            1
        );
        // The CLI path hides it too.
        let lines = check_addresses(
            &dns,
            &[&list],
            &["203.0.113.10".to_owned()],
            &AddressPolicy::new(vec!["203.0.113.0/24".parse().expect("net")]),
        )
        .await
        .expect("valid input");
        let text = lines_to_text(&lines, Lang::En);
        assert!(text.contains("LISTED  127.0.0.4 XBL"), "{text}");
        assert!(!text.to_ascii_lowercase().contains("secretkey1"), "{text}");
        // Asked once per run: the CLI reused the run's answers.
        assert_eq!(
            server.count_of("10.113.0.203.secretkey1.zen.dq.test", "A"),
            1
        );
    }

    /// Every built-in list manifest loads, and every code renders in both
    /// languages for every `cause` with the variables the engine sets.
    #[test]
    fn builtin_manifests_render_every_code() {
        use mxaudit_core::registry::PluginSet;
        use mxaudit_core::text::TextRenderer;
        let set = PluginSet::load(crate::ENGINES, crate::BUILTIN_MANIFESTS, &[])
            .expect("built-in manifests load");
        let lists: Vec<_> = set
            .plugins
            .iter()
            .filter(|p| p.meta.engine == "dnsbl")
            .collect();
        assert_eq!(lists.len(), 8);
        for plugin in lists {
            for lang in [Lang::En, Lang::Ja] {
                let renderer = TextRenderer::new(lang);
                for spec in <Dnsbl as Engine>::CODES {
                    let causes: &[&str] = if spec.code == QUERY_REFUSED {
                        &[
                            "error_code",
                            "not_loopback",
                            "test_point_missing",
                            "answers_everything",
                        ]
                    } else {
                        &["error_code"]
                    };
                    for (cause, meaning) in causes.iter().flat_map(|c| [(c, "m"), (c, "")]) {
                        let mut obs = Observation::new(spec.code, "x");
                        for var in spec.vars {
                            obs = obs.var(var, format!("<{var}>"));
                        }
                        obs = obs
                            .var("cause", *cause)
                            .var("meaning", meaning)
                            .var("meaning_ja", meaning);
                        let f = renderer.finding(&plugin.meta, "example.com", &obs, None);
                        for text in [&f.title, &f.detail, &f.remediation] {
                            assert!(
                                !text.contains("[text error") && !text.contains("{{"),
                                "{} {}: {text}",
                                plugin.meta.id,
                                spec.code
                            );
                        }
                        if spec.code == QUERY_REFUSED {
                            assert!(f.remediation.lines().count() >= 2, "{}", f.remediation);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn public_resolver_note() {
        let dns = Dns::new(&DnsConfig {
            nameservers: vec!["1.1.1.1:53".parse().expect("addr")],
            ..DnsConfig::default()
        })
        .expect("dns");
        let mut p = zen();
        p.refuses_public_resolvers = true;
        let note = build(p).resolver_note(&dns).expect("a note");
        assert!(
            note.contains("1.1.1.1") && note.contains("refuses"),
            "{note}"
        );
        let note = build(zen()).resolver_note(&dns).expect("a note");
        assert!(!note.contains("refuses"), "{note}");
        let local = Dns::new(&DnsConfig {
            nameservers: vec!["127.0.0.1:53".parse().expect("addr")],
            ..DnsConfig::default()
        })
        .expect("dns");
        assert_eq!(build(zen()).resolver_note(&local), None);
    }

    #[test]
    fn invalid_cli_input_is_an_error() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let dns = Dns::new(&DnsConfig {
            nameservers: vec!["127.0.0.1:9".parse().expect("addr")],
            ..DnsConfig::default()
        })
        .expect("dns");
        let err = rt
            .block_on(check_addresses(
                &dns,
                &[],
                &["not an address!".to_owned()],
                &AddressPolicy::default(),
            ))
            .expect_err("invalid");
        assert!(err.to_string().contains("neither an IP address"), "{err}");
    }
}
