//! `check_host()` (RFC 7208 §4): evaluates a domain's SPF record for a client IP,
//! MAIL FROM and HELO, through the run's shared [`Dns`] (each question asked
//! once per run), with the processing limits of §4.6.4 and the explanation of
//! §6.2. Every evaluation also returns a trace: the records read and, for each
//! term evaluated, whether it matched and the running lookup count.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::time::Duration;

use serde::Serialize;

use mxaudit_dns::{Answer, Dns, DomainName, LookupFailure, RType, reverse_name};

use super::parse::valid_dns_name;
use super::{
    Directive, DomainSpec, Macro, MacroLetter, MacroPiece, MacroString, Mechanism, SpfResult,
    parse_explanation, parse_record,
};

/// Longest macro expansion kept (bounded work on hostile records; a domain name
/// is cut to 253 characters anyway, §7.3).
const MAX_EXPANSION: usize = 16 * 1024;

/// The limits of one evaluation (RFC 7208 §4.6.4).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Terms that query DNS (include, a, mx, ptr, exists, redirect): at most 10.
    pub dns_terms: usize,
    /// Lookups answered NXDOMAIN or with no records ("void"): at most 2.
    pub void_lookups: usize,
    /// MX names looked up for one `mx`: more than 10 is a permerror.
    pub mx_names: usize,
    /// PTR names examined for one `ptr` or `%{p}`: the first 10.
    pub ptr_names: usize,
    /// Time allowed for the whole evaluation (the RFC asks for at least 20 s);
    /// beyond it the result is temperror.
    pub time: Duration,
    /// The value of the `%{r}` macro: the host performing the check.
    pub receiver: String,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            dns_terms: 10,
            void_lookups: 2,
            mx_names: 10,
            ptr_names: 10,
            time: Duration::from_secs(20),
            receiver: "unknown".to_owned(),
        }
    }
}

/// The arguments of `check_host(<ip>, <domain>, <sender>)` (§4.1), plus the HELO
/// domain for the `%{h}` macro.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckHost {
    /// The client's address.
    pub ip: IpAddr,
    /// The domain whose record is evaluated.
    pub domain: String,
    /// MAIL FROM, or `postmaster@<helo>` for the HELO identity (§2.3).
    pub sender: String,
    /// The HELO/EHLO domain.
    pub helo: String,
}

impl CheckHost {
    /// The arguments an MTA uses for a message: the MAIL FROM identity, or the
    /// HELO identity when MAIL FROM is the null reverse-path (§2.3, §2.4). A
    /// sender without a local-part becomes `postmaster@domain` (§4.3).
    pub fn for_mail(ip: IpAddr, mail_from: &str, helo: &str) -> CheckHost {
        let mail_from = mail_from.trim();
        let mail_from = mail_from
            .strip_prefix('<')
            .and_then(|m| m.strip_suffix('>'))
            .unwrap_or(mail_from);
        if mail_from.is_empty() {
            return CheckHost {
                ip,
                domain: helo.to_owned(),
                sender: format!("postmaster@{helo}"),
                helo: helo.to_owned(),
            };
        }
        let (local, domain) = match mail_from.rsplit_once('@') {
            Some((local, domain)) => (local, domain),
            None => ("", mail_from),
        };
        let local = if local.is_empty() {
            "postmaster"
        } else {
            local
        };
        CheckHost {
            ip,
            domain: domain.to_owned(),
            sender: format!("{local}@{domain}"),
            helo: helo.to_owned(),
        }
    }
}

/// What `check_host()` concluded.
#[derive(Debug, Clone, Serialize)]
pub struct CheckHostOutcome {
    /// The result.
    pub result: SpfResult,
    /// The expanded `exp=` text, for a fail whose record has a usable one (§6.2).
    pub explanation: Option<String>,
    /// Why the result is none, permerror or temperror.
    pub reason: Option<String>,
    /// DNS-querying terms counted (§4.6.4).
    pub lookups: usize,
    /// Void lookups counted (§4.6.4).
    pub void_lookups: usize,
    /// The records read and the terms evaluated.
    pub trace: EvalNode,
}

/// One record evaluated: the top domain, an include target or a redirect target.
#[derive(Debug, Clone, Serialize)]
pub struct EvalNode {
    /// The domain whose record this is.
    pub domain: String,
    /// The SPF record, when one was found.
    pub record: Option<String>,
    /// This record's result (for an include: before the include maps it).
    pub result: SpfResult,
    /// Why the result is none, permerror or temperror.
    pub reason: Option<String>,
    /// The terms evaluated, in order; evaluation stops at the first match.
    pub steps: Vec<EvalStep>,
}

/// One term evaluated.
#[derive(Debug, Clone, Serialize)]
pub struct EvalStep {
    /// The term as written.
    pub term: String,
    /// Match, no match, or an error that ended the evaluation.
    pub outcome: StepOutcome,
    /// The lookup count after this term, when the term counts against the limit.
    pub lookup: Option<usize>,
    /// What DNS said, for the reader: addresses, NXDOMAIN, the expanded target.
    pub detail: Option<String>,
    /// The record evaluated for an include or redirect.
    pub child: Option<EvalNode>,
}

/// How a term's evaluation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    /// The term matched: its qualifier is the result.
    Match,
    /// The term did not match: evaluation continues.
    NoMatch,
    /// The term ended the evaluation with permerror or temperror.
    Error,
}

/// Runs `check_host()` (§4) for `input`.
pub async fn check_host(dns: &Dns, input: &CheckHost, limits: &Limits) -> CheckHostOutcome {
    let mut ev = Evaluator::new(dns, input, limits);
    let finished = tokio::time::timeout(limits.time, ev.check_host(input.domain.clone())).await;
    match finished {
        Ok(done) => CheckHostOutcome {
            result: done.result,
            explanation: done.explanation,
            reason: done.node.reason.clone(),
            lookups: ev.lookups,
            void_lookups: ev.voids,
            trace: done.node,
        },
        Err(_) => {
            let reason = format!(
                "check_host() took longer than {} (RFC 7208 §4.6.4)",
                humantime::format_duration(limits.time)
            );
            CheckHostOutcome {
                result: SpfResult::TempError,
                explanation: None,
                reason: Some(reason.clone()),
                lookups: ev.lookups,
                void_lookups: ev.voids,
                trace: EvalNode {
                    domain: input.domain.clone(),
                    record: None,
                    result: SpfResult::TempError,
                    reason: Some(reason),
                    steps: Vec::new(),
                },
            }
        }
    }
}

/// Why a domain has no SPF record to evaluate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NoRecord {
    /// NXDOMAIN.
    NxDomain,
    /// No TXT record.
    NoData,
    /// TXT records, none starting with `v=spf1`.
    NoSpf(usize),
    /// The name cannot be asked (the DNS layer refuses its characters).
    Unaskable,
}

impl NoRecord {
    pub(crate) fn describe(&self) -> String {
        match self {
            NoRecord::NxDomain => "NXDOMAIN".to_owned(),
            NoRecord::NoData => "no TXT record".to_owned(),
            NoRecord::NoSpf(n) => format!("{n} TXT record(s), none starting with v=spf1"),
            NoRecord::Unaskable => "name cannot be asked".to_owned(),
        }
    }
}

/// The outcome of looking up a domain's SPF record (§4.4, §4.5).
#[derive(Debug, Clone)]
pub(crate) enum Fetched {
    /// Exactly one SPF record (its strings joined, §3.3; non-UTF-8 bytes replaced,
    /// which the parser then rejects as non-ASCII).
    Record(String),
    /// No SPF record.
    NoRecord(NoRecord),
    /// More than one SPF record: permerror (§4.5).
    Multiple(Vec<String>),
    /// The lookup failed: temperror (§4.4).
    Failed(LookupFailure),
}

/// Looks up the SPF record of `name` (TXT only: type SPF is obsolete, §3.1).
pub(crate) async fn fetch_record(dns: &Dns, name: &DomainName) -> Fetched {
    let answer = dns.query(name, RType::Txt).await;
    match answer.as_ref() {
        Answer::Records(set) => {
            let all = set.txt_joined();
            let spf: Vec<String> = all
                .iter()
                .filter(|t| super::is_spf_record(t))
                .map(|t| String::from_utf8_lossy(t).into_owned())
                .collect();
            match spf.len() {
                0 => Fetched::NoRecord(NoRecord::NoSpf(all.len())),
                1 => Fetched::Record(spf.into_iter().next().unwrap_or_default()),
                _ => Fetched::Multiple(spf),
            }
        }
        Answer::NxDomain { .. } => Fetched::NoRecord(NoRecord::NxDomain),
        Answer::NoData { .. } => Fetched::NoRecord(NoRecord::NoData),
        Answer::Failed(LookupFailure::Malformed(_)) if !is_ldh(name.as_str()) => {
            Fetched::NoRecord(NoRecord::Unaskable)
        }
        Answer::Failed(why) => Fetched::Failed(why.clone()),
    }
}

/// True when a name has only letters, digits, `-`, `_` and dots: the names the
/// DNS layer can put on the wire. It builds hickory names from text, which
/// refuses other characters (`:`, `/`, `%`) before any query is sent, and
/// reports that as a malformed lookup. Such a failure is not a DNS error of the
/// domain: the name is treated as one that does not exist (§4.3, §4.8).
pub(crate) fn is_ldh(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// §4.3: the domain check_host() starts from must be a multi-label domain name
/// within the length limits; an address literal is not one.
pub(crate) fn initial_domain(domain: &str) -> Option<DomainName> {
    let bare = domain.strip_suffix('.').unwrap_or(domain);
    if bare.starts_with('[') || !bare.contains('.') || !valid_dns_name(bare) {
        return None;
    }
    DomainName::parse_relaxed(bare).ok()
}

/// §7.3: a domain name from macro expansion, without its trailing dot, its left
/// labels removed until it fits in 253 characters. `Err` carries the text when it
/// is still not a usable name.
pub(crate) fn finish_domain(expanded: &str) -> Result<DomainName, String> {
    let mut name = expanded.strip_suffix('.').unwrap_or(expanded);
    while name.len() > 253 {
        match name.find('.') {
            Some(i) => name = &name[i + 1..],
            None => break,
        }
    }
    if !valid_dns_name(name) {
        return Err(name.to_owned());
    }
    DomainName::parse_relaxed(name).map_err(|_| name.to_owned())
}

/// The result of one lookup made for a mechanism.
enum Lookup<T> {
    Found(T),
    /// NXDOMAIN or no records of the type: a "void lookup" (§4.6.4).
    Void(&'static str),
    Failed(String),
    /// The DNS layer cannot ask this name (see [`is_ldh`]).
    Unaskable,
}

async fn lookup_addresses(dns: &Dns, name: &DomainName, v6: bool) -> Lookup<Vec<IpAddr>> {
    let rtype = if v6 { RType::Aaaa } else { RType::A };
    let answer = dns.query(name, rtype).await;
    match answer.as_ref() {
        Answer::Records(set) => {
            let found: Vec<IpAddr> = set
                .addresses()
                .into_iter()
                .filter(|a| a.is_ipv6() == v6)
                .collect();
            if found.is_empty() {
                // Only CNAMEs: the chain ends without data.
                Lookup::Void("NODATA")
            } else {
                Lookup::Found(found)
            }
        }
        Answer::NxDomain { .. } => Lookup::Void("NXDOMAIN"),
        Answer::NoData { .. } => Lookup::Void("NODATA"),
        Answer::Failed(LookupFailure::Malformed(_)) if !is_ldh(name.as_str()) => Lookup::Unaskable,
        Answer::Failed(why) => Lookup::Failed(why.to_string()),
    }
}

/// Why an evaluation stopped early.
enum Abort {
    Perm(String),
    Temp(String),
}

impl Abort {
    fn result(&self) -> SpfResult {
        match self {
            Abort::Perm(_) => SpfResult::PermError,
            Abort::Temp(_) => SpfResult::TempError,
        }
    }
    fn into_reason(self) -> String {
        match self {
            Abort::Perm(r) | Abort::Temp(r) => r,
        }
    }
}

/// One finished record evaluation.
struct Evaluated {
    result: SpfResult,
    explanation: Option<String>,
    node: EvalNode,
}

/// What evaluating one directive gave.
struct Step {
    matched: Result<bool, Abort>,
    detail: Option<String>,
    child: Option<EvalNode>,
}

impl Step {
    fn matched(matched: bool, detail: impl Into<Option<String>>) -> Step {
        Step {
            matched: Ok(matched),
            detail: detail.into(),
            child: None,
        }
    }
    fn abort(abort: Abort) -> Step {
        Step {
            matched: Err(abort),
            detail: None,
            child: None,
        }
    }
}

/// A target name after macro expansion.
enum Target {
    Name(DomainName),
    /// Not a usable domain name: the mechanism does not match (§4.8, by analogy
    /// with §4.3), an include or redirect is a permerror.
    Unusable(String),
}

struct Evaluator<'a> {
    dns: &'a Dns,
    limits: &'a Limits,
    /// §5: an IPv4-mapped IPv6 client is evaluated as the IPv4 address.
    ip: IpAddr,
    sender: String,
    local_part: String,
    sender_domain: String,
    helo: String,
    lookups: usize,
    voids: usize,
}

type Boxed<'s, T> = Pin<Box<dyn Future<Output = T> + Send + 's>>;

impl<'a> Evaluator<'a> {
    fn new(dns: &'a Dns, input: &CheckHost, limits: &'a Limits) -> Evaluator<'a> {
        let ip = match input.ip {
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        let (local, domain) = input
            .sender
            .rsplit_once('@')
            .unwrap_or(("", input.sender.as_str()));
        let local_part = if local.is_empty() {
            "postmaster".to_owned()
        } else {
            local.to_owned()
        };
        Evaluator {
            dns,
            limits,
            ip,
            sender: format!("{local_part}@{domain}"),
            local_part,
            sender_domain: domain.to_owned(),
            helo: input.helo.clone(),
            lookups: 0,
            voids: 0,
        }
    }

    fn check_host(&mut self, domain: String) -> Boxed<'_, Evaluated> {
        Box::pin(async move { self.evaluate_domain(domain).await })
    }

    async fn evaluate_domain(&mut self, domain: String) -> Evaluated {
        let domain = domain.strip_suffix('.').unwrap_or(&domain).to_owned();
        let mut node = EvalNode {
            domain: domain.clone(),
            record: None,
            result: SpfResult::None,
            reason: None,
            steps: Vec::new(),
        };
        // §4.3: a malformed domain gives none.
        let Some(name) = initial_domain(&domain) else {
            return finish(
                node,
                SpfResult::None,
                Some("not a multi-label domain name (RFC 7208 §4.3)".to_owned()),
            );
        };
        // §4.4, §4.5.
        let text = match fetch_record(self.dns, &name).await {
            Fetched::Record(text) => text,
            Fetched::NoRecord(why) => {
                return finish(
                    node,
                    SpfResult::None,
                    Some(format!("no SPF record: {}", why.describe())),
                );
            }
            Fetched::Multiple(records) => {
                return finish(
                    node,
                    SpfResult::PermError,
                    Some(format!(
                        "{} SPF records at {} (RFC 7208 §4.5)",
                        records.len(),
                        name
                    )),
                );
            }
            Fetched::Failed(why) => {
                return finish(
                    node,
                    SpfResult::TempError,
                    Some(format!(
                        "TXT lookup of {name} failed: {why} (RFC 7208 §4.4)"
                    )),
                );
            }
        };
        node.record = Some(text.clone());
        // §4.6: the whole record is parsed before any term is evaluated.
        let record = match parse_record(&text) {
            Ok(r) => r,
            Err(e) => return finish(node, SpfResult::PermError, Some(e.to_string())),
        };
        // §4.6.2: the first matching directive decides.
        for directive in &record.directives {
            // §4.6.4: the term counts when it is evaluated, before its lookups.
            let lookup = if directive.mechanism.queries_dns() {
                if let Err(abort) = self.count_term(&directive.text) {
                    node.steps
                        .push(error_step(&directive.text, self.lookups, None));
                    let result = abort.result();
                    return finish(node, result, Some(abort.into_reason()));
                }
                Some(self.lookups)
            } else {
                None
            };
            let step = self.directive(directive, &domain).await;
            let (outcome, abort) = match step.matched {
                Ok(true) => (StepOutcome::Match, None),
                Ok(false) => (StepOutcome::NoMatch, None),
                Err(a) => (StepOutcome::Error, Some(a)),
            };
            node.steps.push(EvalStep {
                term: directive.text.clone(),
                outcome,
                lookup,
                detail: step.detail,
                child: step.child,
            });
            if let Some(abort) = abort {
                let result = abort.result();
                return finish(node, result, Some(abort.into_reason()));
            }
            if outcome == StepOutcome::Match {
                let result = directive.qualifier.result();
                // §6.2: the explanation of the record that produced the fail.
                let explanation = match (&record.explanation, result) {
                    (Some((spec, _)), SpfResult::Fail) => self.explain(spec, &domain).await,
                    _ => None,
                };
                let mut done = finish(node, result, None);
                done.explanation = explanation;
                return done;
            }
        }
        // §6.1: redirect, unless an `all` is present (then it was never reached).
        if let Some((spec, text)) = record.effective_redirect() {
            if let Err(abort) = self.count_term(text) {
                node.steps.push(error_step(text, self.lookups, None));
                let result = abort.result();
                return finish(node, result, Some(abort.into_reason()));
            }
            let lookup = Some(self.lookups);
            let target = match self.target(spec, &domain).await {
                Target::Name(n) => n,
                Target::Unusable(t) => {
                    let reason = format!("{text}: `{}` is not a valid domain name", clip(&t));
                    node.steps
                        .push(error_step(text, self.lookups, Some(reason.clone())));
                    return finish(node, SpfResult::PermError, Some(reason));
                }
            };
            let child = self.check_host(target.bare().to_owned()).await;
            // §6.1: a redirect target without a record is a permerror, not none.
            let (result, reason) = match child.result {
                SpfResult::None => (
                    SpfResult::PermError,
                    Some(format!("{text}: {} has no SPF record", target.bare())),
                ),
                r => (
                    r,
                    child
                        .node
                        .reason
                        .as_ref()
                        .map(|why| format!("{text}: {why}")),
                ),
            };
            node.steps.push(EvalStep {
                term: text.clone(),
                outcome: if matches!(result, SpfResult::PermError | SpfResult::TempError) {
                    StepOutcome::Error
                } else {
                    StepOutcome::Match
                },
                lookup,
                detail: Some(format!("→ {}", child.result)),
                child: Some(child.node),
            });
            let mut done = finish(node, result, reason);
            // The target's own exp= applies, not this record's (§6.2).
            done.explanation = child.explanation;
            return done;
        }
        // §4.7: no match and no redirect.
        finish(node, SpfResult::Neutral, None)
    }

    /// §4.6.4: counts one DNS-querying term; the 11th is a permerror.
    fn count_term(&mut self, term: &str) -> Result<(), Abort> {
        self.lookups += 1;
        if self.lookups > self.limits.dns_terms {
            Err(Abort::Perm(format!(
                "`{}` is DNS-querying term number {}: more than {} (RFC 7208 §4.6.4)",
                clip(term),
                self.lookups,
                self.limits.dns_terms
            )))
        } else {
            Ok(())
        }
    }

    /// §4.6.4: counts one void lookup; the third is a permerror.
    fn count_void(&mut self, term: &str, what: &str) -> Result<(), Abort> {
        self.voids += 1;
        if self.voids > self.limits.void_lookups {
            Err(Abort::Perm(format!(
                "`{}` is void lookup number {} ({what}): more than {} (RFC 7208 §4.6.4)",
                clip(term),
                self.voids,
                self.limits.void_lookups
            )))
        } else {
            Ok(())
        }
    }

    /// Evaluates one directive's mechanism (already counted by the caller).
    async fn directive(&mut self, d: &Directive, domain: &str) -> Step {
        match &d.mechanism {
            Mechanism::All => Step::matched(true, None),
            Mechanism::Ip4 { network, prefix } => {
                Step::matched(in_network(self.ip, IpAddr::V4(*network), *prefix), None)
            }
            Mechanism::Ip6 { network, prefix } => {
                Step::matched(in_network(self.ip, IpAddr::V6(*network), *prefix), None)
            }
            Mechanism::A { domain: spec, cidr } => {
                let name = match self.optional_target(spec.as_ref(), domain).await {
                    Target::Name(n) => n,
                    Target::Unusable(t) => return unusable(&t),
                };
                let v6 = self.ip.is_ipv6();
                match lookup_addresses(self.dns, &name, v6).await {
                    Lookup::Found(addrs) => {
                        let prefix = if v6 { cidr.v6 } else { cidr.v4 };
                        let hit = addrs.iter().any(|a| in_network(self.ip, *a, prefix));
                        Step::matched(hit, Some(format!("{name}: {}", list(&addrs))))
                    }
                    Lookup::Void(what) => self.void_step(&d.text, &name, what),
                    Lookup::Failed(why) => temp(&name, if v6 { "AAAA" } else { "A" }, &why),
                    Lookup::Unaskable => unusable(name.bare()),
                }
            }
            Mechanism::Mx { domain: spec, cidr } => {
                let name = match self.optional_target(spec.as_ref(), domain).await {
                    Target::Name(n) => n,
                    Target::Unusable(t) => return unusable(&t),
                };
                self.mx(&d.text, &name, *cidr).await
            }
            Mechanism::Ptr(spec) => {
                let target = match self.optional_target(spec.as_ref(), domain).await {
                    Target::Name(n) => n,
                    Target::Unusable(t) => return unusable(&t),
                };
                self.ptr(&d.text, &target).await
            }
            Mechanism::Exists(spec) => {
                let name = match self.target(spec, domain).await {
                    Target::Name(n) => n,
                    Target::Unusable(t) => return unusable(&t),
                };
                // §5.7: always an A query, whatever the client's family.
                match lookup_addresses(self.dns, &name, false).await {
                    Lookup::Found(addrs) => {
                        Step::matched(true, Some(format!("{name}: {}", list(&addrs))))
                    }
                    Lookup::Void(what) => self.void_step(&d.text, &name, what),
                    Lookup::Failed(why) => temp(&name, "A", &why),
                    Lookup::Unaskable => unusable(name.bare()),
                }
            }
            Mechanism::Include(spec) => {
                let name = match self.target(spec, domain).await {
                    Target::Name(n) => n,
                    Target::Unusable(t) => {
                        return Step::abort(Abort::Perm(format!(
                            "{}: `{}` is not a valid domain name",
                            d.text,
                            clip(&t)
                        )));
                    }
                };
                let child = self.check_host(name.bare().to_owned()).await;
                // §5.2: how the included result maps.
                let matched = match child.result {
                    SpfResult::Pass => Ok(true),
                    SpfResult::Fail | SpfResult::SoftFail | SpfResult::Neutral => Ok(false),
                    SpfResult::TempError => Err(Abort::Temp(format!(
                        "{}: {}",
                        d.text,
                        child.node.reason.clone().unwrap_or_default()
                    ))),
                    SpfResult::PermError => Err(Abort::Perm(format!(
                        "{}: {}",
                        d.text,
                        child.node.reason.clone().unwrap_or_default()
                    ))),
                    SpfResult::None => Err(Abort::Perm(format!(
                        "{}: {} has no SPF record (RFC 7208 §5.2)",
                        d.text,
                        name.bare()
                    ))),
                };
                Step {
                    matched,
                    detail: Some(format!("→ {}", child.result)),
                    child: Some(child.node),
                }
            }
        }
    }

    fn void_step(&mut self, term: &str, name: &DomainName, what: &'static str) -> Step {
        match self.count_void(term, what) {
            Ok(()) => Step::matched(
                false,
                Some(format!(
                    "{name}: {what} (void lookup {}/{})",
                    self.voids, self.limits.void_lookups
                )),
            ),
            Err(abort) => Step::abort(abort),
        }
    }

    /// §5.4: the MX names of `name` (more than 10 is a permerror), then their
    /// addresses of the client's family.
    async fn mx(&mut self, term: &str, name: &DomainName, cidr: super::DualCidr) -> Step {
        let answer = self.dns.query(name, RType::Mx).await;
        let exchanges: Vec<String> = match answer.as_ref() {
            Answer::Records(set) => set.mx().into_iter().map(|(_, e, _)| e.to_owned()).collect(),
            Answer::NxDomain { .. } => return self.void_step(term, name, "NXDOMAIN"),
            Answer::NoData { .. } => return self.void_step(term, name, "NODATA"),
            Answer::Failed(LookupFailure::Malformed(_)) if !is_ldh(name.as_str()) => {
                return unusable(name.bare());
            }
            Answer::Failed(why) => return temp(name, "MX", &why.to_string()),
        };
        if exchanges.is_empty() {
            return self.void_step(term, name, "NODATA");
        }
        if exchanges.len() > self.limits.mx_names {
            return Step::abort(Abort::Perm(format!(
                "`{}`: {name} has {} MX names, more than {} (RFC 7208 §4.6.4)",
                clip(term),
                exchanges.len(),
                self.limits.mx_names
            )));
        }
        let v6 = self.ip.is_ipv6();
        let prefix = if v6 { cidr.v6 } else { cidr.v4 };
        let mut seen = Vec::new();
        for exchange in &exchanges {
            // RFC 7505: the null MX "." names no host.
            if exchange == "." {
                seen.push(". (null MX)".to_owned());
                continue;
            }
            let Ok(host) = DomainName::parse_relaxed(exchange) else {
                continue;
            };
            match lookup_addresses(self.dns, &host, v6).await {
                Lookup::Found(addrs) => {
                    if addrs.iter().any(|a| in_network(self.ip, *a, prefix)) {
                        return Step::matched(true, Some(format!("{host}: {}", list(&addrs))));
                    }
                    seen.push(format!("{host}: {}", list(&addrs)));
                }
                Lookup::Void(what) => seen.push(format!("{host}: {what}")),
                Lookup::Unaskable => seen.push(format!("{host}: cannot be asked")),
                Lookup::Failed(why) => {
                    return temp(&host, if v6 { "AAAA" } else { "A" }, &why);
                }
            }
        }
        Step::matched(false, Some(format!("MX {}", seen.join("; "))))
    }

    /// §5.5: the validated reverse names of the client, matched against `target`.
    async fn ptr(&mut self, term: &str, target: &DomainName) -> Step {
        let names = match self.ptr_names().await {
            Lookup::Found(n) => n,
            Lookup::Void(what) => {
                let reverse = reverse_name(self.ip);
                return self.void_step(term, &reverse, what);
            }
            // §5.5: a DNS error during the PTR lookup: no match.
            Lookup::Failed(why) => return Step::matched(false, Some(format!("PTR: {why}"))),
            Lookup::Unaskable => return Step::matched(false, None),
        };
        let validated = self.validate(&names).await;
        let t = target.bare();
        let hit = validated
            .iter()
            .find(|v| v.eq_ignore_ascii_case(t) || ends_with_label(v, t));
        let detail = if validated.is_empty() {
            "no validated name".to_owned()
        } else {
            format!("validated: {}", validated.join(", "))
        };
        Step::matched(hit.is_some(), Some(detail))
    }

    /// The client's PTR names (at most the configured number, in answer order).
    async fn ptr_names(&self) -> Lookup<Vec<String>> {
        let reverse = reverse_name(self.ip);
        let answer = self.dns.query(&reverse, RType::Ptr).await;
        match answer.as_ref() {
            Answer::Records(set) => {
                let names: Vec<String> = set
                    .ptr_names()
                    .into_iter()
                    .take(self.limits.ptr_names)
                    .map(|n| n.strip_suffix('.').unwrap_or(n).to_owned())
                    .collect();
                if names.is_empty() {
                    Lookup::Void("NODATA")
                } else {
                    Lookup::Found(names)
                }
            }
            Answer::NxDomain { .. } => Lookup::Void("NXDOMAIN"),
            Answer::NoData { .. } => Lookup::Void("NODATA"),
            Answer::Failed(why) => Lookup::Failed(why.to_string()),
        }
    }

    /// §5.5: the names whose addresses (of the client's family) include the client.
    /// A failed address lookup skips the name.
    async fn validate(&self, names: &[String]) -> Vec<String> {
        let mut validated = Vec::new();
        for n in names {
            let Ok(name) = DomainName::parse_relaxed(n) else {
                continue;
            };
            if let Lookup::Found(addrs) = lookup_addresses(self.dns, &name, self.ip.is_ipv6()).await
                && addrs.contains(&self.ip)
            {
                validated.push(n.clone());
            }
        }
        validated
    }

    /// `%{p}` (§7.3): a validated name, preferring the domain or a subdomain of it;
    /// `unknown` when there is none.
    async fn validated_name(&self, domain: &str) -> String {
        let Lookup::Found(names) = self.ptr_names().await else {
            return "unknown".to_owned();
        };
        let validated = self.validate(&names).await;
        validated
            .iter()
            .find(|v| v.eq_ignore_ascii_case(domain) || ends_with_label(v, domain))
            .or(validated.first())
            .cloned()
            .unwrap_or_else(|| "unknown".to_owned())
    }

    async fn optional_target(&self, spec: Option<&DomainSpec>, domain: &str) -> Target {
        match spec {
            Some(spec) => self.target(spec, domain).await,
            None => match DomainName::parse_relaxed(domain) {
                Ok(n) => Target::Name(n),
                Err(_) => Target::Unusable(domain.to_owned()),
            },
        }
    }

    /// Expands a domain-spec into a name (§7.3).
    async fn target(&self, spec: &DomainSpec, domain: &str) -> Target {
        let Some(expanded) = self.expand(&spec.macros, domain).await else {
            return Target::Unusable(spec.text.clone());
        };
        match finish_domain(&expanded) {
            Ok(n) => Target::Name(n),
            Err(t) => Target::Unusable(t),
        }
    }

    /// §6.2: the explanation for a fail. Any problem (no name, a DNS failure, not
    /// exactly one TXT record, non-ASCII or invalid text) means no explanation.
    /// Its lookup does not count against the limits.
    async fn explain(&self, spec: &DomainSpec, domain: &str) -> Option<String> {
        let expanded = self.expand(&spec.macros, domain).await?;
        let name = finish_domain(&expanded).ok()?;
        let answer = self.dns.query(&name, RType::Txt).await;
        let texts = match answer.as_ref() {
            Answer::Records(set) => set.txt_joined(),
            Answer::NxDomain { .. } | Answer::NoData { .. } | Answer::Failed(_) => return None,
        };
        let [text] = texts.as_slice() else {
            return None;
        };
        if !text.is_ascii() {
            return None;
        }
        let text = std::str::from_utf8(text).ok()?;
        let macros = parse_explanation(text).ok()?;
        self.expand(&macros, domain).await
    }

    /// Expands a macro-string (§7.3) for the current `domain`. `None` when the
    /// result would exceed [`MAX_EXPANSION`].
    async fn expand(&self, macros: &MacroString, domain: &str) -> Option<String> {
        let validated = if macros.uses(MacroLetter::ValidatedName) {
            self.validated_name(domain).await
        } else {
            String::new()
        };
        let mut out = String::new();
        for piece in &macros.pieces {
            match piece {
                MacroPiece::Literal(s) => out.push_str(s),
                MacroPiece::Escape(s) => out.push_str(s),
                MacroPiece::Macro(m) => {
                    let value = self.macro_value(m.letter, domain, &validated);
                    out.push_str(&transform(&value, m));
                }
            }
            if out.len() > MAX_EXPANSION {
                return None;
            }
        }
        Some(out)
    }

    fn macro_value(&self, letter: MacroLetter, domain: &str, validated: &str) -> String {
        match letter {
            MacroLetter::Sender => self.sender.clone(),
            MacroLetter::LocalPart => self.local_part.clone(),
            MacroLetter::SenderDomain => self.sender_domain.clone(),
            MacroLetter::Domain => domain.to_owned(),
            MacroLetter::Ip => dotted(self.ip),
            MacroLetter::ValidatedName => validated.to_owned(),
            MacroLetter::IpVersion => match self.ip {
                IpAddr::V4(_) => "in-addr".to_owned(),
                IpAddr::V6(_) => "ip6".to_owned(),
            },
            MacroLetter::Helo => self.helo.clone(),
            MacroLetter::ClientIp => self.ip.to_string(),
            MacroLetter::Receiver => self.limits.receiver.clone(),
            MacroLetter::Timestamp => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
                .to_string(),
        }
    }
}

fn finish(mut node: EvalNode, result: SpfResult, reason: Option<String>) -> Evaluated {
    node.result = result;
    node.reason = reason;
    Evaluated {
        result,
        explanation: None,
        node,
    }
}

fn error_step(term: &str, lookups: usize, detail: Option<String>) -> EvalStep {
    EvalStep {
        term: term.to_owned(),
        outcome: StepOutcome::Error,
        lookup: Some(lookups),
        detail,
        child: None,
    }
}

fn unusable(text: &str) -> Step {
    Step::matched(
        false,
        Some(format!("`{}` is not a usable domain name", clip(text))),
    )
}

fn temp(name: &DomainName, rtype: &str, why: &str) -> Step {
    Step::abort(Abort::Temp(format!(
        "{rtype} lookup of {name} failed: {why}"
    )))
}

fn list(addrs: &[IpAddr]) -> String {
    addrs
        .iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// True when `name` lies strictly below `parent` (label boundary, any case).
fn ends_with_label(name: &str, parent: &str) -> bool {
    let (name, parent) = (name.as_bytes(), parent.as_bytes());
    name.len() > parent.len()
        && name[name.len() - parent.len() - 1] == b'.'
        && name[name.len() - parent.len()..].eq_ignore_ascii_case(parent)
}

/// True when `ip` lies in `network/prefix` of the same family (an IPv4 client
/// never matches an IPv6 network, §5.6).
fn in_network(ip: IpAddr, network: IpAddr, prefix: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// `%{i}` (§7.3): the dotted quad, or 32 dot-separated lowercase nibbles.
fn dotted(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let mut out = String::with_capacity(63);
            for byte in v6.octets() {
                for nibble in [byte >> 4, byte & 0x0f] {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
                }
            }
            out
        }
    }
}

/// §7.3: split on the delimiters, optionally reverse, keep the right-hand parts,
/// join with dots, and URL-escape for an uppercase letter.
fn transform(value: &str, m: &Macro) -> String {
    let delimiters: &[char] = if m.delimiters.is_empty() {
        &['.']
    } else {
        &m.delimiters
    };
    let mut parts: Vec<&str> = value.split(delimiters).collect();
    if m.reverse {
        parts.reverse();
    }
    if let Some(keep) = m.keep {
        let keep = usize::try_from(keep).unwrap_or(usize::MAX);
        if keep < parts.len() {
            parts.drain(..parts.len() - keep);
        }
    }
    let joined = parts.join(".");
    if m.url_escape {
        url_escape(&joined)
    } else {
        joined
    }
}

/// §7.3: escape every character outside `unreserved` (RFC 3986 §2.3).
fn url_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(80).flat_map(char::escape_debug).collect();
    if s.chars().count() > 80 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(letter: MacroLetter, keep: Option<u32>, reverse: bool, delims: &str, up: bool) -> Macro {
        Macro {
            letter,
            url_escape: up,
            keep,
            reverse,
            delimiters: delims.chars().collect(),
        }
    }

    #[test]
    fn rfc7208_7_4_transformers() {
        let d = MacroLetter::Domain;
        assert_eq!(
            transform("email.example.com", &m(d, None, false, "", false)),
            "email.example.com"
        );
        assert_eq!(
            transform("email.example.com", &m(d, Some(2), false, "", false)),
            "example.com"
        );
        assert_eq!(
            transform("email.example.com", &m(d, None, true, "", false)),
            "com.example.email"
        );
        assert_eq!(
            transform("email.example.com", &m(d, Some(1), true, "", false)),
            "email"
        );
        assert_eq!(
            transform("strong-bad", &m(d, None, false, "-", false)),
            "strong.bad"
        );
        assert_eq!(
            transform("strong-bad", &m(d, None, true, "-", false)),
            "bad.strong"
        );
        assert_eq!(
            transform("foo-bar+zip+quux", &m(d, Some(2), true, "+-", false)),
            "bar.foo"
        );
        assert_eq!(
            transform("~jack&jill=up-a_b3.c", &m(d, None, false, "", true)),
            "~jack%26jill%3Dup-a_b3.c"
        );
        assert_eq!(
            transform("a.b", &m(d, Some(u32::MAX), false, "", false)),
            "a.b"
        );
    }

    #[test]
    fn rfc7208_7_3_ip_forms() {
        assert_eq!(dotted("192.0.2.3".parse().expect("ip")), "192.0.2.3");
        let v6 = dotted("2001:db8::cb01".parse().expect("ip"));
        assert_eq!(
            v6,
            "2.0.0.1.0.d.b.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.c.b.0.1"
        );
    }

    #[test]
    fn rfc7208_7_3_truncation() {
        let long = format!("{}example.com", "abcdefghij.".repeat(30));
        let n = finish_domain(&long).expect("truncated");
        assert!(n.bare().len() <= 253, "{}", n.bare());
        assert!(n.bare().ends_with(".example.com"));
        assert!(finish_domain("a..b").is_err());
        assert_eq!(
            finish_domain("example.com.").expect("dot").bare(),
            "example.com"
        );
    }

    #[test]
    fn rfc7208_5_6_networks() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert!(in_network(ip("192.0.2.200"), ip("192.0.2.1"), 24));
        assert!(!in_network(ip("192.0.3.1"), ip("192.0.2.1"), 24));
        assert!(in_network(ip("203.0.113.9"), ip("1.1.1.1"), 0));
        assert!(!in_network(ip("1.2.3.4"), ip("::"), 0));
        assert!(in_network(
            ip("cafe:babe:8000::"),
            ip("cafe:babe:8000::"),
            33
        ));
        assert!(in_network(ip("2001:db8::1"), ip("::"), 0));
    }

    #[test]
    fn rfc7208_4_1_identities() {
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let c = CheckHost::for_mail(ip, "@example.net", "mx.example.org");
        assert_eq!(
            (c.domain.as_str(), c.sender.as_str()),
            ("example.net", "postmaster@example.net")
        );
        let h = CheckHost::for_mail(ip, "", "mx.example.org");
        assert_eq!(
            (h.domain.as_str(), h.sender.as_str()),
            ("mx.example.org", "postmaster@mx.example.org")
        );
        let s = CheckHost::for_mail(ip, "Macro Error@e8.example.com", "h");
        assert_eq!(s.domain, "e8.example.com");
        assert!(initial_domain("[1.2.3.5]").is_none());
        assert!(initial_domain("A2345678").is_none());
        assert!(initial_domain("a...example.com").is_none());
        assert!(initial_domain("example.com.").is_some());
    }
}
