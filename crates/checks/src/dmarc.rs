//! Engine `dmarc`: the DMARC policy record (RFC 7489) at `_dmarc.<domain>`, or
//! at the organizational domain's (§6.6.3 step 3, organizational domain from the
//! Public Suffix List, §3.2).

use serde::Deserialize;

use mxaudit_core::{CheckCx, CheckReport, CodeSpec, Engine, Observation, PluginMeta, Target};
use mxaudit_dns::{Answer, DomainName, RType};

/// `[params]` of the `dmarc` engine (none yet).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DmarcParams {}

/// The `dmarc` engine.
#[derive(Debug)]
pub struct Dmarc;

/// A parsed DMARC record: the tags we judge.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DmarcRecord {
    /// `p=`.
    pub policy: Option<String>,
    /// `rua=`.
    pub rua: Option<String>,
}

/// Parses a DMARC record (RFC 7489 §6.4 ABNF):
/// `dmarc-record = dmarc-version dmarc-sep [dmarc-request] …`, tags separated by
/// `;`, `v=DMARC1` first. Returns the first problem found.
pub fn parse_record(text: &str) -> Result<DmarcRecord, String> {
    let mut rec = DmarcRecord::default();
    let mut seen: Vec<String> = Vec::new();
    for (i, raw) in text.split(';').enumerate() {
        let part = raw.trim_matches(|c| c == ' ' || c == '\t');
        if part.is_empty() {
            // A trailing `;` is allowed (§6.4 `[dmarc-sep]`); an empty middle term is not.
            if i == 0 {
                return Err("the record is empty".into());
            }
            continue;
        }
        let Some((tag, value)) = part.split_once('=') else {
            return Err(format!("`{}` is not tag=value", clip(part)));
        };
        let tag = tag.trim_matches(|c| c == ' ' || c == '\t');
        let value = value.trim_matches(|c| c == ' ' || c == '\t');
        if i == 0 {
            if tag != "v" || value != "DMARC1" {
                return Err("v=DMARC1 is not the first tag".into());
            }
            seen.push("v".into());
            continue;
        }
        if seen.iter().any(|s| s == tag) {
            return Err(format!("tag `{}` appears twice", clip(tag)));
        }
        seen.push(tag.to_owned());
        match tag {
            "v" => return Err("v= appears twice".into()),
            "p" | "sp" => {
                if !matches!(value, "none" | "quarantine" | "reject") {
                    return Err(format!(
                        "{tag}=`{}` is not none, quarantine or reject",
                        clip(value)
                    ));
                }
                if tag == "p" {
                    rec.policy = Some(value.to_owned());
                }
            }
            "adkim" | "aspf" if !matches!(value, "r" | "s") => {
                return Err(format!("{tag}=`{}` is not r or s", clip(value)));
            }
            "pct" if !value.parse::<u8>().is_ok_and(|n| n <= 100) => {
                return Err(format!(
                    "pct=`{}` is not a whole number from 0 to 100",
                    clip(value)
                ));
            }
            "ri" if value.parse::<u32>().is_err() => {
                return Err(format!("ri=`{}` is not a number of seconds", clip(value)));
            }
            "fo" if value
                .split(':')
                .any(|o| !matches!(o.trim(), "0" | "1" | "d" | "s")) =>
            {
                return Err(format!("fo=`{}` is not a list of 0, 1, d, s", clip(value)));
            }
            "rf" if value.split(':').any(|f| f.trim().is_empty()) => {
                return Err(format!(
                    "rf=`{}` is not a list of report formats",
                    clip(value)
                ));
            }
            "rua" | "ruf" => {
                for uri in value.split(',') {
                    let uri = uri.trim();
                    // §6.2: a URI with an optional `!size` suffix; mailto is the only
                    // scheme receivers implement.
                    let addr = uri.split('!').next().unwrap_or_default();
                    let ok = addr
                        .get(..7)
                        .is_some_and(|s| s.eq_ignore_ascii_case("mailto:"))
                        && addr[7..].contains('@');
                    if !ok {
                        return Err(format!("{tag} entry `{}` is not a mailto: URI", clip(uri)));
                    }
                }
                if tag == "rua" {
                    rec.rua = Some(value.to_owned());
                }
            }
            // §6.3: unknown tags MUST be ignored.
            _ => {}
        }
    }
    if rec.policy.is_none() {
        return Err("the required p= tag is missing".into());
    }
    Ok(rec)
}

fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if s.chars().count() > 60 {
        out.push('…');
    }
    out
}

/// A TXT record that looks meant as DMARC: it starts with `v=DMARC1`, or names
/// DMARC1 somewhere (a misordered record receivers silently discard).
fn looks_like_dmarc(text: &str) -> bool {
    let t = text.trim_start().to_ascii_lowercase();
    t.starts_with("v=dmarc") || t.replace(' ', "").contains("v=dmarc1")
}

enum Lookup {
    Found(Vec<String>),
    None,
    Failed(String),
}

async fn dmarc_records(name: &DomainName, cx: &CheckCx) -> Lookup {
    let answer = cx.dns.query(name, RType::Txt).await;
    match answer.as_ref() {
        Answer::Records(set) => {
            let texts: Vec<String> = set
                .txt_joined()
                .into_iter()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .filter(|t| looks_like_dmarc(t))
                .collect();
            if texts.is_empty() {
                Lookup::None
            } else {
                Lookup::Found(texts)
            }
        }
        Answer::NxDomain { .. } | Answer::NoData { .. } => Lookup::None,
        Answer::Failed(why) => Lookup::Failed(format!("{} TXT: {why}", name.as_str())),
    }
}

impl Engine for Dmarc {
    const NAME: &'static str = "dmarc";
    const CODES: &'static [CodeSpec] = &[
        CodeSpec {
            code: "dmarc.missing",
            vars: &["checked"],
        },
        CodeSpec {
            code: "dmarc.multiple",
            vars: &["record_name", "count"],
        },
        CodeSpec {
            code: "dmarc.syntax",
            vars: &["record_name", "problem"],
        },
        CodeSpec {
            code: "dmarc.policy_none",
            vars: &["record_name"],
        },
    ];
    type Params = DmarcParams;

    fn build(_params: DmarcParams, _plugin: &PluginMeta) -> Result<Self, String> {
        Ok(Dmarc)
    }

    async fn run(&self, target: &Target, cx: &CheckCx) -> CheckReport {
        let mut report = CheckReport::default();
        let domain = &target.domain;
        let mut candidates = Vec::new();
        if let Ok(name) = domain.prepend("_dmarc") {
            candidates.push(name);
        }
        // RFC 7489 §6.6.3: no record at the domain → ask the organizational domain.
        if let Some(org) = psl::domain_str(domain.bare())
            && org != domain.bare()
            && let Ok(org) = DomainName::parse(org)
            && let Ok(name) = org.prepend("_dmarc")
        {
            candidates.push(name);
        }
        let mut checked = Vec::new();
        for name in &candidates {
            checked.push(name.to_string());
            match dmarc_records(name, cx).await {
                Lookup::None => continue,
                Lookup::Failed(why) => {
                    report.error(why);
                    return report;
                }
                Lookup::Found(texts) => {
                    let record_name = name.to_string();
                    let evidence: Vec<String> = texts
                        .iter()
                        .map(|t| format!("{} TXT \"{t}\"", name.as_str()))
                        .collect();
                    if texts.len() > 1 {
                        report.push(
                            Observation::new("dmarc.multiple", &record_name)
                                .evidence_lines(evidence)
                                .var("record_name", record_name.clone())
                                .var("count", texts.len()),
                        );
                        return report;
                    }
                    match parse_record(&texts[0]) {
                        Err(problem) => report.push(
                            Observation::new("dmarc.syntax", &record_name)
                                .evidence_lines(evidence)
                                .var("record_name", record_name.clone())
                                .var("problem", problem),
                        ),
                        Ok(rec) if rec.policy.as_deref() == Some("none") => report.push(
                            Observation::new("dmarc.policy_none", &record_name)
                                .evidence_lines(evidence)
                                .var("record_name", record_name.clone()),
                        ),
                        Ok(_) => {}
                    }
                    return report;
                }
            }
        }
        // A domain that does not exist is `domain.nxdomain` (engine mx), not a
        // domain without DMARC.
        if matches!(
            cx.dns.query(domain, RType::Mx).await.as_ref(),
            Answer::NxDomain { .. }
        ) {
            return report;
        }
        report.push(
            Observation::new("dmarc.missing", domain.to_string())
                .evidence_lines(
                    checked
                        .iter()
                        .map(|c| format!("{c}. TXT: no v=DMARC1 record")),
                )
                .var("checked", checked.join(", ")),
        );
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7489_6_4_records() {
        let ok =
            parse_record("v=DMARC1; p=reject; rua=mailto:d@example.com!10m; pct=100; adkim=s;")
                .expect("valid");
        assert_eq!(ok.policy.as_deref(), Some("reject"));
        assert!(parse_record("v=DMARC1;p=none").is_ok());
        assert!(
            parse_record("v=DMARC1; p=none; future=tag").is_ok(),
            "§6.3 unknown tags ignored"
        );
        for bad in [
            "p=reject; v=DMARC1",
            "v=DMARC1; p=block",
            "v=DMARC1; rua=mailto:x@example.com",
            "v=DMARC1; p=none; pct=150",
            "v=DMARC1; p=none; rua=https://example.com/r",
            "v=DMARC1; p=none; p=reject",
            "v=DMARC1; p=none; adkim=x",
            "v=DMARC1 p=none",
        ] {
            assert!(parse_record(bad).is_err(), "{bad} must be rejected");
        }
    }
}
