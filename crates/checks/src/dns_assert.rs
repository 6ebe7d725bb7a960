//! Engine `dns_assert`: a check written in TOML. A manifest names a query built
//! from a template over the target, a record type, and assertions on the answer;
//! each assertion emits a finding code the manifest defines when it does not hold.
//!
//! ```toml
//! [params]
//! scope = "domain"                 # domain | mx_host | mx_address
//! query = "_mta-sts.{domain}"
//! type = "TXT"
//! filter = "^v=STSv1"              # optional: only records matching this regex count
//! [[params.assert]]
//! code = "mta_sts.missing"
//! exists = true
//! ```
//!
//! A failed lookup (SERVFAIL, timeout) is an `error` status, never "absent".

use std::collections::BTreeMap;

use regex::Regex;
use serde::Deserialize;

use mxaudit_core::{CheckCx, CheckReport, CodeSpec, Engine, Observation, PluginMeta, Target};
use mxaudit_dns::{Answer, DomainName, RType, Rdata};

use crate::resolve::mx_hosts;

/// Variables a query or CNAME template may use.
const TEMPLATE_VARS: &[&str] = &[
    "domain",
    "domain_dashed",
    "mx_host",
    "address",
    "reverse",
    "tenant",
];

/// `[params]` of the `dns_assert` engine.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsAssertParams {
    /// What the query is built over: `domain`, `mx_host` (each MX host) or
    /// `mx_address` (each address of each MX host).
    #[serde(default = "default_scope")]
    pub scope: String,
    /// The name to ask, a template: `{domain}`, `{domain_dashed}`, `{mx_host}`,
    /// `{address}`, `{reverse}` (reversed address labels), `{tenant}`.
    pub query: String,
    /// Record type.
    #[serde(rename = "type")]
    pub rtype: String,
    /// Only records whose value matches this regex count (e.g. `^v=STSv1`).
    #[serde(default)]
    pub filter: Option<String>,
    /// Run only for domains with this profile (e.g. `microsoft365`).
    #[serde(default)]
    pub profile: Option<String>,
    /// The assertions, in order.
    #[serde(rename = "assert")]
    pub assertions: Vec<AssertionParams>,
}

fn default_scope() -> String {
    "domain".to_owned()
}

/// One `[[params.assert]]`: a code and exactly one condition.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssertionParams {
    /// The code emitted when the condition does not hold.
    pub code: String,
    /// At least one record.
    #[serde(default)]
    pub exists: Option<bool>,
    /// No record.
    #[serde(default)]
    pub absent: Option<bool>,
    /// At least this many records.
    #[serde(default)]
    pub count_min: Option<usize>,
    /// At most this many records.
    #[serde(default)]
    pub count_max: Option<usize>,
    /// Every record matches this regex.
    #[serde(default)]
    pub all_match: Option<String>,
    /// At least one record matches this regex.
    #[serde(default)]
    pub any_match: Option<String>,
    /// Every record equals one of these values.
    #[serde(default)]
    pub one_of: Option<Vec<String>>,
    /// Every record has a TTL of at most this many seconds.
    #[serde(default)]
    pub ttl_max: Option<u32>,
    /// The name is a CNAME whose target matches this template (`*` = any labels;
    /// a missing optional variable such as `{tenant}` also matches anything).
    #[serde(default)]
    pub cname_target: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Domain,
    MxHost,
    MxAddress,
}

#[derive(Debug)]
enum Condition {
    Exists,
    Absent,
    Count {
        min: Option<usize>,
        max: Option<usize>,
    },
    AllMatch(Regex),
    AnyMatch(Regex),
    OneOf(Vec<String>),
    TtlMax(u32),
    CnameTarget(String),
}

impl Condition {
    fn describe(&self) -> String {
        match self {
            Condition::Exists => "at least one record".to_owned(),
            Condition::Absent => "no record".to_owned(),
            Condition::Count { min, max } => match (min, max) {
                (Some(a), Some(b)) => format!("between {a} and {b} records"),
                (Some(a), None) => format!("at least {a} records"),
                (None, Some(b)) => format!("at most {b} records"),
                (None, None) => "any number of records".to_owned(),
            },
            Condition::AllMatch(r) => format!("every record matches /{}/", r.as_str()),
            Condition::AnyMatch(r) => format!("a record matches /{}/", r.as_str()),
            Condition::OneOf(v) => format!("every record is one of: {}", v.join(", ")),
            Condition::TtlMax(n) => format!("TTL at most {n} seconds"),
            Condition::CnameTarget(t) => format!("a CNAME to {}", t.trim_end_matches('.')),
        }
    }
}

#[derive(Debug)]
struct Assertion {
    code: String,
    condition: Condition,
}

/// The `dns_assert` engine.
#[derive(Debug)]
pub struct DnsAssert {
    scope: Scope,
    query: String,
    rtype: RType,
    filter: Option<Regex>,
    profile: Option<String>,
    assertions: Vec<Assertion>,
}

fn regex(field: &str, code: &str, pattern: &str) -> Result<Regex, String> {
    // Bounded: the regex crate has no backtracking, and the size limit keeps a
    // hostile pattern from eating memory.
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("assert `{code}`: {field}: invalid regex: {e}"))
}

fn check_template(field: &str, template: &str) -> Result<(), String> {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            return Err(format!("{field}: unclosed `{{` in `{template}`"));
        };
        let var = &rest[open + 1..open + close];
        if !TEMPLATE_VARS.contains(&var) {
            return Err(format!(
                "{field}: unknown variable `{{{var}}}` in `{template}` (available: {})",
                TEMPLATE_VARS
                    .iter()
                    .map(|v| format!("{{{v}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        rest = &rest[open + close + 1..];
    }
    Ok(())
}

/// Fills `{var}` placeholders; a variable without a value becomes `missing`.
fn fill(template: &str, vars: &BTreeMap<&str, String>, missing: &str) -> String {
    let mut out = template.to_owned();
    for var in TEMPLATE_VARS {
        let value = vars.get(var).map(String::as_str).unwrap_or(missing);
        out = out.replace(&format!("{{{var}}}"), value);
    }
    out
}

/// Matches a host name against a pattern where `*` stands for one or more labels.
fn glob_matches(pattern: &str, name: &str) -> bool {
    let p: Vec<&str> = pattern.trim_end_matches('.').split('.').collect();
    let n: Vec<&str> = name.trim_end_matches('.').split('.').collect();
    fn go(p: &[&str], n: &[&str]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(&"*"), Some(_)) => (1..=n.len()).any(|k| go(&p[1..], &n[k..])),
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b) && go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(&p, &n)
}

impl Engine for DnsAssert {
    const NAME: &'static str = "dns_assert";
    const CODES: &'static [CodeSpec] = &[];
    const OPEN_CODES: bool = true;
    const OPEN_VARS: &'static [&'static str] = &[
        "query", "rtype", "values", "count", "expected", "mx_host", "address",
    ];
    type Params = DnsAssertParams;

    fn build(params: DnsAssertParams, plugin: &PluginMeta) -> Result<Self, String> {
        let scope = match params.scope.as_str() {
            "domain" => Scope::Domain,
            "mx_host" => Scope::MxHost,
            "mx_address" => Scope::MxAddress,
            other => {
                return Err(format!(
                    "scope: `{other}` is not domain, mx_host or mx_address"
                ));
            }
        };
        check_template("query", &params.query)?;
        if scope == Scope::Domain
            && (params.query.contains("{mx_host}") || params.query.contains("{address}"))
        {
            return Err(
                "query: {mx_host} and {address} need scope = \"mx_host\" or \"mx_address\""
                    .to_owned(),
            );
        }
        let rtype: RType = params.rtype.parse().map_err(|e| format!("type: {e}"))?;
        let filter = params
            .filter
            .as_deref()
            .map(|f| regex("filter", "-", f))
            .transpose()?;
        if params.assertions.is_empty() {
            return Err("assert: at least one [[params.assert]] is needed".to_owned());
        }
        let mut assertions = Vec::new();
        for a in params.assertions {
            if !plugin.findings.contains_key(&a.code) {
                return Err(format!(
                    "assert: code `{}` has no [finding.\"{}\"] text in this manifest",
                    a.code, a.code
                ));
            }
            let mut conditions = Vec::new();
            if a.exists == Some(true) {
                conditions.push(Condition::Exists);
            }
            if a.absent == Some(true) {
                conditions.push(Condition::Absent);
            }
            if a.count_min.is_some() || a.count_max.is_some() {
                conditions.push(Condition::Count {
                    min: a.count_min,
                    max: a.count_max,
                });
            }
            if let Some(p) = &a.all_match {
                conditions.push(Condition::AllMatch(regex("all_match", &a.code, p)?));
            }
            if let Some(p) = &a.any_match {
                conditions.push(Condition::AnyMatch(regex("any_match", &a.code, p)?));
            }
            if let Some(v) = &a.one_of {
                conditions.push(Condition::OneOf(v.clone()));
            }
            if let Some(n) = a.ttl_max {
                conditions.push(Condition::TtlMax(n));
            }
            if let Some(t) = &a.cname_target {
                check_template("cname_target", t)?;
                conditions.push(Condition::CnameTarget(t.clone()));
            }
            if conditions.len() != 1 {
                return Err(format!(
                    "assert `{}`: give exactly one condition (exists, absent, count_min/count_max, all_match, any_match, one_of, ttl_max, cname_target), found {}",
                    a.code,
                    conditions.len()
                ));
            }
            if let Some(condition) = conditions.pop() {
                assertions.push(Assertion {
                    code: a.code,
                    condition,
                });
            }
        }
        Ok(DnsAssert {
            scope,
            query: params.query,
            rtype,
            filter,
            profile: params.profile,
            assertions,
        })
    }

    async fn run(&self, target: &Target, cx: &CheckCx) -> CheckReport {
        let mut report = CheckReport::default();
        if let Some(wanted) = &self.profile
            && target.profile.as_ref().map(|p| &p.id) != Some(wanted)
        {
            return report;
        }
        // A domain that does not exist is `domain.nxdomain` (engine mx), nothing more.
        if matches!(
            cx.dns.query(&target.domain, RType::Mx).await.as_ref(),
            Answer::NxDomain { .. }
        ) {
            return report;
        }
        let domain = target.domain.bare().to_owned();
        let mut base: BTreeMap<&str, String> = BTreeMap::new();
        base.insert("domain", domain.clone());
        base.insert("domain_dashed", domain.replace('.', "-"));
        if let Some(tenant) = target.profile.as_ref().and_then(|p| p.tenant.clone()) {
            base.insert("tenant", tenant);
        }
        let mut subjects: Vec<BTreeMap<&str, String>> = Vec::new();
        match self.scope {
            Scope::Domain => subjects.push(base),
            Scope::MxHost | Scope::MxAddress => match mx_hosts(&target.domain, cx, 20).await {
                Ok(hosts) => {
                    for h in hosts {
                        let mut vars = base.clone();
                        vars.insert("mx_host", h.host.clone());
                        if self.scope == Scope::MxHost {
                            subjects.push(vars);
                            continue;
                        }
                        for ip in &h.addresses.addresses {
                            let mut v = vars.clone();
                            v.insert("address", ip.to_string());
                            v.insert("reverse", mxaudit_dns::reverse_labels(*ip));
                            subjects.push(v);
                        }
                    }
                }
                Err(why) if why.ends_with("NXDOMAIN") => {}
                Err(why) => report.error(why),
            },
        }
        for vars in subjects {
            self.check_one(&vars, cx, &mut report).await;
        }
        report
    }
}

impl DnsAssert {
    async fn check_one(
        &self,
        vars: &BTreeMap<&str, String>,
        cx: &CheckCx,
        report: &mut CheckReport,
    ) {
        let query = fill(&self.query, vars, "");
        let name = match DomainName::parse_relaxed(&query) {
            Ok(n) => n,
            Err(e) => {
                report.error(format!("query {query}: {e}"));
                return;
            }
        };
        let answer = cx.dns.query(&name, self.rtype).await;
        let records: Vec<(String, u32, Option<String>)> = match answer.as_ref() {
            Answer::Records(set) => set
                .iter()
                .filter(|r| r.data.rtype() == self.rtype || self.rtype == RType::Cname)
                .filter(|r| self.rtype == RType::Cname || !matches!(r.data, Rdata::Cname(_)))
                .map(|r| {
                    let value = match &r.data {
                        Rdata::Txt(strings) => {
                            String::from_utf8_lossy(&strings.concat()).into_owned()
                        }
                        Rdata::Cname(n) | Rdata::Ptr(n) | Rdata::Ns(n) => {
                            n.trim_end_matches('.').to_owned()
                        }
                        other => other.to_string(),
                    };
                    let cname = match &r.data {
                        Rdata::Cname(t) => Some(t.clone()),
                        _ => None,
                    };
                    (value, r.ttl, cname)
                })
                .filter(|(v, _, _)| self.filter.as_ref().is_none_or(|f| f.is_match(v)))
                .collect(),
            Answer::NxDomain { .. } | Answer::NoData { .. } => Vec::new(),
            Answer::Failed(why) => {
                report.error(format!("{} {}: {why}", name.as_str(), self.rtype));
                return;
            }
        };
        let values: Vec<&str> = records.iter().map(|(v, _, _)| v.as_str()).collect();
        for a in &self.assertions {
            let holds = match &a.condition {
                Condition::Exists => !values.is_empty(),
                Condition::Absent => values.is_empty(),
                Condition::Count { min, max } => {
                    min.is_none_or(|m| values.len() >= m) && max.is_none_or(|m| values.len() <= m)
                }
                Condition::AllMatch(r) => values.iter().all(|v| r.is_match(v)),
                Condition::AnyMatch(r) => values.iter().any(|v| r.is_match(v)),
                Condition::OneOf(list) => values.iter().all(|v| list.iter().any(|l| l == v)),
                Condition::TtlMax(n) => records.iter().all(|(_, ttl, _)| ttl <= n),
                Condition::CnameTarget(t) => {
                    let want = fill(t, vars, "*");
                    records
                        .iter()
                        .any(|(_, _, c)| c.as_deref().is_some_and(|c| glob_matches(&want, c)))
                }
            };
            if holds {
                continue;
            }
            let evidence = if records.is_empty() {
                vec![format!(
                    "{} {}: {}",
                    name.as_str(),
                    self.rtype,
                    answer.describe()
                )]
            } else {
                records
                    .iter()
                    .map(|(v, ttl, _)| format!("{} {ttl} {} {v}", name.as_str(), self.rtype))
                    .collect()
            };
            let subject = match (vars.get("address"), vars.get("mx_host")) {
                (Some(a), _) => a.clone(),
                (None, Some(h)) => h.clone(),
                (None, None) => name.to_string(),
            };
            report.push(
                Observation::new(&a.code, subject)
                    .evidence_lines(evidence)
                    .var("query", name.to_string())
                    .var("rtype", self.rtype.to_string())
                    .var("values", values.join(" | "))
                    .var("count", values.len())
                    .var(
                        "expected",
                        match &a.condition {
                            Condition::CnameTarget(t) => {
                                Condition::CnameTarget(fill(t, vars, "*")).describe()
                            }
                            other => other.describe(),
                        },
                    )
                    .var("mx_host", vars.get("mx_host").cloned().unwrap_or_default())
                    .var("address", vars.get("address").cloned().unwrap_or_default()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_matches(
            "selector1-a-com._domainkey.*.onmicrosoft.com",
            "selector1-a-com._domainkey.contoso.onmicrosoft.com."
        ));
        assert!(!glob_matches(
            "selector1-a-com._domainkey.*.onmicrosoft.com",
            "selector1-a-com._domainkey.onmicrosoft.com"
        ));
        assert!(glob_matches("a.example", "A.EXAMPLE."));
    }

    #[test]
    fn templates() {
        assert!(check_template("query", "_mta-sts.{domain}").is_ok());
        assert!(check_template("query", "{nope}.x").is_err());
        assert!(check_template("query", "{domain").is_err());
        let mut vars = BTreeMap::new();
        vars.insert("domain", "a.com".to_owned());
        assert_eq!(fill("x.{domain}.{tenant}", &vars, "*"), "x.a.com.*");
    }
}
