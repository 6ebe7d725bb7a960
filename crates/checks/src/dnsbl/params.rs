//! `[params]` of the `dnsbl` engine: the list, its return codes and error
//! codes (single codes or ranges in 127.0.0.0/8), its RFC 5782 §5 test points.

use super::*;

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

pub(super) fn default_max_hosts() -> usize {
    20
}

pub(super) fn yes() -> bool {
    true
}

/// A table of return codes (single addresses or ranges) in 127.0.0.0/8.
#[derive(Debug, Clone, Default)]
pub(super) struct CodeTable(pub(super) Vec<CodeEntry>);

#[derive(Debug, Clone)]
pub(super) struct CodeEntry {
    pub(super) first: u32,
    pub(super) last: u32,
    pub(super) meaning: Meaning,
}

/// A key of `[params.codes]` or `[params.errors]`: one return code
/// (`"127.0.0.2"`) or an inclusive range (`"127.0.0.4-127.0.0.7"`) in
/// 127.0.0.0/8. Parsed while the manifest is read, so that a wrong key is an
/// error located at its line and naming it (style rule 1).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReturnCodeRange {
    pub(super) text: String,
    pub(super) first: u32,
    pub(super) last: u32,
}

impl<'de> Deserialize<'de> for ReturnCodeRange {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let text = String::deserialize(de)?;
        let (first, last) = parse_code_range(&text).map_err(serde::de::Error::custom)?;
        Ok(ReturnCodeRange { text, first, last })
    }
}

/// Parses `"127.0.0.2"` or `"127.0.0.4-127.0.0.7"`.
pub(super) fn parse_code_range(key: &str) -> Result<(u32, u32), String> {
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
    pub(super) fn parse(
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
    pub(super) fn lookup(&self, code: Ipv4Addr) -> Option<&Meaning> {
        let n = u32::from(code);
        self.0
            .iter()
            .filter(|e| e.first <= n && n <= e.last)
            .min_by_key(|e| e.last - e.first)
            .map(|e| &e.meaning)
    }

    pub(super) fn intersects(&self, other: &CodeTable) -> bool {
        self.0.iter().any(|a| {
            other
                .0
                .iter()
                .any(|b| a.first <= b.last && b.first <= a.last)
        })
    }
}

pub(super) fn zone_name(what: &str, zone: &str) -> Result<String, String> {
    let name = DomainName::parse(zone.trim_end_matches('.')).map_err(|e| format!("{what}: {e}"))?;
    Ok(name.bare().to_owned())
}

pub(super) fn ip_test_point(what: &str, text: &str) -> Result<TestPoint, String> {
    let ip: IpAddr = text
        .parse()
        .map_err(|_| format!("{what}: `{}` is not an IP address", text.escape_debug()))?;
    Ok(TestPoint {
        labels: reverse_labels(ip),
        shown: ip.to_string(),
    })
}

pub(super) fn domain_test_point(what: &str, text: &str) -> Result<TestPoint, String> {
    let name = DomainName::parse(text).map_err(|e| format!("{what}: {e}"))?;
    Ok(TestPoint {
        labels: name.bare().to_owned(),
        shown: name.bare().to_owned(),
    })
}
