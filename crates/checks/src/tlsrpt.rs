//! Engine `tlsrpt`: the SMTP TLS Reporting record at `_smtp._tls.<domain>`
//! (RFC 8460 §3), parsed rather than only found.
//!
//! ```abnf
//! tlsrpt-record     = tlsrpt-version 1*(field-delim tlsrpt-field) [field-delim]
//! field-delim       = *WSP ";" *WSP
//! tlsrpt-field      = tlsrpt-rua / tlsrpt-extension
//! tlsrpt-version    = %s"v=TLSRPTv1"
//! tlsrpt-rua        = %s"rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)
//! tlsrpt-uri        = URI   ; RFC 3986; "," and "!" must be percent-encoded
//! tlsrpt-extension  = tlsrpt-ext-name "=" tlsrpt-ext-value
//! tlsrpt-ext-name   = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
//! tlsrpt-ext-value  = 1*(%x21-3A / %x3C / %x3E-7E)
//! ```
//!
//! `rua` is required and its URIs use `mailto:` or `https:` only (§3). A
//! record that is not exactly one valid record means no reports at all:
//! senders "MUST assume the recipient domain does not implement TLSRPT".
//!
//! Why not `dns_assert`: a regex can say "matches", not which URI is wrong,
//! and cannot require `rua` among fields in any order without look-ahead.
//! URIs are checked by hand against the RFC 3986 subset a report address
//! needs: the `url` crate follows the WHATWG rules, which repair what RFC
//! 3986 rejects (`https:/host` becomes `https://host/`).

use serde::Deserialize;

use mxaudit_core::{CheckCx, CheckReport, CodeSpec, Engine, Observation, PluginMeta, Target};
use mxaudit_dns::{Answer, RType, Rdata};

use crate::mta_sts::record::{clip, is_ext_name};

/// `[params]` of the `tlsrpt` engine (none yet).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsRptParams {}

/// The `tlsrpt` engine.
#[derive(Debug)]
pub struct TlsRpt;

/// A valid record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsRptRecord {
    /// The report URIs of `rua=`.
    pub rua: Vec<String>,
}

fn is_wsp(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// True when a TXT record is meant as a TLS-RPT record (starts with
/// `v=TLSRPTv1` in any case); senders keep only exact `v=TLSRPTv1;` ones.
pub fn looks_like_tlsrpt(text: &str) -> bool {
    text.get(..10)
        .is_some_and(|v| v.eq_ignore_ascii_case("v=TLSRPTv1"))
}

/// Parses a record (strings joined without spaces, §3). Returns the first
/// problem, in words.
pub fn parse_record(text: &str) -> Result<TlsRptRecord, String> {
    let Some(rest) = text.strip_prefix("v=TLSRPTv1") else {
        return Err("the record must start with v=TLSRPTv1 (exactly so, case included)".to_owned());
    };
    let mut parts = rest.split(';');
    if parts.next().is_some_and(|p| !p.chars().all(is_wsp)) {
        return Err("v=TLSRPTv1 must be followed by `;` before the next field".to_owned());
    }
    let parts: Vec<&str> = parts.collect();
    let mut rua: Option<Vec<String>> = None;
    for (i, raw) in parts.iter().enumerate() {
        let field = raw.trim_matches(is_wsp);
        if field.is_empty() {
            if i + 1 == parts.len() {
                continue;
            }
            return Err("empty field between `;` separators".to_owned());
        }
        let Some((name, value)) = field.split_once('=') else {
            return Err(format!("field `{}` is not name=value", clip(field)));
        };
        if name == "rua" {
            let mut uris = Vec::new();
            for uri in value.split(',') {
                let uri = uri.trim_matches(is_wsp);
                check_uri(uri)?;
                uris.push(uri.to_owned());
            }
            // The first rua is the one senders read.
            rua.get_or_insert(uris);
            continue;
        }
        if !is_ext_name(name) {
            return Err(format!("field name `{}` is not valid", clip(name)));
        }
        let ok = !value.is_empty()
            && value
                .bytes()
                .all(|b| matches!(b, 0x21..=0x3a | 0x3c | 0x3e..=0x7e));
        if !ok {
            return Err(format!(
                "field {}=`{}` has a value with spaces, `=` or control characters",
                clip(name),
                clip(value)
            ));
        }
    }
    match rua {
        Some(rua) => Ok(TlsRptRecord { rua }),
        None => Err("the required rua= field is missing".to_owned()),
    }
}

/// Characters RFC 3986 allows in a URI outside `%XX` escapes, minus `,` and
/// `!`, which RFC 8460 §3 requires encoded.
fn uri_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~:/?#[]@$&'()*+;=".contains(c)
}

fn percent_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let hex = |k: usize| b.get(k).is_some_and(u8::is_ascii_hexdigit);
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
        } else {
            if !uri_char(char::from(b[i])) {
                return false;
            }
            i += 1;
        }
    }
    true
}

/// A host name of letters, digits, inner hyphens and dots, or an address literal.
fn is_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<std::net::Ipv6Addr>().is_ok();
    }
    if host.parse::<std::net::Ipv4Addr>().is_ok() {
        return true;
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// One report URI: `mailto:local@domain[?hfields]` (RFC 6068) or
/// `https://host[:port][/path][?query]` (RFC 9110 §4.2.2).
fn check_uri(uri: &str) -> Result<(), String> {
    let shown = clip(uri);
    if uri.is_empty() {
        return Err("rua has an empty URI".to_owned());
    }
    if uri.contains('!') {
        return Err(format!(
            "rua URI `{shown}` contains `!`, which must be written %21 (RFC 8460 §3)"
        ));
    }
    if !percent_ok(uri) {
        return Err(format!(
            "rua URI `{shown}` has characters a URI may not contain (spaces, quotes, bad %-escapes)"
        ));
    }
    let lower = uri.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("mailto:") {
        let to = rest.split('?').next().unwrap_or_default();
        let ok = to
            .rsplit_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && is_host(domain));
        return if ok {
            Ok(())
        } else {
            Err(format!("rua URI `{shown}` is not mailto:address@domain"))
        };
    }
    if let Some(rest) = lower.strip_prefix("https://") {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        // No user information in a report endpoint.
        let hostport = authority.rsplit('@').next().unwrap_or_default();
        let (host, port) = if hostport.starts_with('[') {
            match hostport.split_once(']') {
                Some((h, p)) => (format!("{h}]"), p.strip_prefix(':')),
                None => (hostport.to_owned(), None),
            }
        } else {
            match hostport.split_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (hostport.to_owned(), None),
            }
        };
        let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
        return if is_host(&host) && port_ok {
            Ok(())
        } else {
            Err(format!("rua URI `{shown}` is not https://host/path"))
        };
    }
    let scheme = uri.split(':').next().unwrap_or_default();
    Err(format!(
        "rua URI `{shown}` uses `{}:`; only mailto: and https: are defined (RFC 8460 §3)",
        clip(scheme)
    ))
}

impl Engine for TlsRpt {
    const NAME: &'static str = "tlsrpt";
    const CODES: &'static [CodeSpec] = &[
        CodeSpec {
            code: "tlsrpt.missing",
            vars: &["query"],
        },
        CodeSpec {
            code: "tlsrpt.syntax",
            vars: &["query", "count", "values", "problem"],
        },
    ];
    type Params = TlsRptParams;

    fn build(_params: TlsRptParams, _plugin: &PluginMeta) -> Result<Self, String> {
        Ok(TlsRpt)
    }

    async fn run(&self, target: &Target, cx: &CheckCx) -> CheckReport {
        let mut report = CheckReport::default();
        let domain = &target.domain;
        // A domain that does not exist is `domain.nxdomain` (engine mx), nothing more.
        if matches!(
            cx.dns.query(domain, RType::Mx).await.as_ref(),
            Answer::NxDomain { .. }
        ) {
            return report;
        }
        let name = match domain.prepend("_smtp._tls") {
            Ok(n) => n,
            Err(e) => {
                report.error(e.to_string());
                return report;
            }
        };
        let query = name.to_string();
        let answer = cx.dns.query(&name, RType::Txt).await;
        let records: Vec<(String, String)> = match answer.as_ref() {
            Answer::Records(set) => set
                .iter()
                .filter_map(|r| match &r.data {
                    Rdata::Txt(strings) => Some((
                        String::from_utf8_lossy(&strings.concat()).into_owned(),
                        format!("{} {} TXT {}", name.as_str(), r.ttl, r.data),
                    )),
                    _ => None,
                })
                .collect(),
            Answer::NxDomain { .. } | Answer::NoData { .. } => Vec::new(),
            Answer::Failed(why) => {
                report.error(format!("{} TXT: {why}", name.as_str()));
                return report;
            }
        };
        let (rpt, other): (Vec<_>, Vec<_>) =
            records.into_iter().partition(|(t, _)| looks_like_tlsrpt(t));
        if rpt.is_empty() {
            let evidence = if other.is_empty() {
                vec![format!("{} TXT: {}", name.as_str(), answer.describe())]
            } else {
                other.into_iter().map(|(_, e)| e).collect()
            };
            report.push(
                Observation::new("tlsrpt.missing", &query)
                    .evidence_lines(evidence)
                    .var("query", query.clone()),
            );
            return report;
        }
        let problem = if rpt.len() > 1 {
            Some(format!(
                "{} records; senders send no reports unless there is exactly one",
                rpt.len()
            ))
        } else {
            parse_record(&rpt[0].0).err()
        };
        if let Some(problem) = problem {
            let values: Vec<String> = rpt.iter().map(|(t, _)| clip(t)).collect();
            report.push(
                Observation::new("tlsrpt.syntax", &query)
                    .evidence_lines(rpt.iter().map(|(_, e)| e.clone()))
                    .var("query", query.clone())
                    .var("count", values.len())
                    .var("values", values.join(" | "))
                    .var("problem", problem),
            );
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8460_3_valid_records() {
        for (text, rua) in [
            (
                "v=TLSRPTv1; rua=mailto:tlsrpt@example.com",
                vec!["mailto:tlsrpt@example.com"],
            ),
            (
                "v=TLSRPTv1;rua=https://reporting.example.com/v1/tlsrpt",
                vec!["https://reporting.example.com/v1/tlsrpt"],
            ),
            (
                "v=TLSRPTv1; rua=mailto:a@example.com , https://r.example.com:8443/x?y=1;",
                vec!["mailto:a@example.com", "https://r.example.com:8443/x?y=1"],
            ),
            (
                "v=TLSRPTv1 ; ext=1; rua=mailto:reports%2Btls@example.com?subject=tls",
                vec!["mailto:reports%2Btls@example.com?subject=tls"],
            ),
            (
                "v=TLSRPTv1; rua=https://[2001:db8::1]/r",
                vec!["https://[2001:db8::1]/r"],
            ),
        ] {
            assert_eq!(
                parse_record(text).map(|r| r.rua),
                Ok(rua.into_iter().map(str::to_owned).collect()),
                "{text}"
            );
        }
    }

    #[test]
    fn rfc8460_3_invalid_records() {
        for (bad, needle) in [
            ("v=TLSRPTv1", "rua= field is missing"),
            ("v=TLSRPTv1;", "rua= field is missing"),
            ("v=TLSRPTv1; ext=1", "rua= field is missing"),
            ("v=TLSRPTv1 rua=mailto:a@example.com", "followed by `;`"),
            (
                "v=TLSRPTv1; rua=http://example.com/r",
                "only mailto: and https:",
            ),
            ("v=TLSRPTv1; rua=tls@example.com", "only mailto: and https:"),
            ("v=TLSRPTv1; rua=mailto:tls", "mailto:address@domain"),
            (
                "v=TLSRPTv1; rua=mailto:@example.com",
                "mailto:address@domain",
            ),
            ("v=TLSRPTv1; rua=mailto:a@exa mple.com", "characters"),
            ("v=TLSRPTv1; rua=https://", "https://host"),
            (
                "v=TLSRPTv1; rua=https:/example.com/r",
                "only mailto: and https:",
            ),
            ("v=TLSRPTv1; rua=https://example.com:99999/", "https://host"),
            ("v=TLSRPTv1; rua=mailto:a@example.com!10m", "%21"),
            ("v=TLSRPTv1; rua=mailto:a@example.com%2", "characters"),
            ("v=TLSRPTv1; rua=", "empty URI"),
            ("v=TLSRPTv1; rua=mailto:a@example.com,", "empty URI"),
            ("v=TLSRPTv1;; rua=mailto:a@example.com", "empty field"),
            (
                "v=TLSRPTv1; rua=mailto:a@example.com; bad name=x",
                "not valid",
            ),
            ("V=TLSRPTV1; rua=mailto:a@example.com", "exactly so"),
        ] {
            let err = parse_record(bad).expect_err(bad);
            assert!(err.contains(needle), "{bad}: {err}");
        }
        assert!(looks_like_tlsrpt("V=TLSRPTV1; rua=x"));
        assert!(!looks_like_tlsrpt("v=spf1"));
    }
}
