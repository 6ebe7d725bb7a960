//! One check_host() evaluation of a request with its trace and the domain's
//! record tree: the data of `mxaudit spf DOMAIN [--ip IP --sender S --helo H]`
//! ([`SpfEvaluation`] is `Serialize`; the agent's view renders it as text).
//! check_host() itself is `check_host.rs`.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use serde::Serialize;

use mxaudit_dns::Dns;

use super::SpfResult;
use super::check_host::{CheckHost, EvalNode, Limits, StepOutcome, check_host, initial_domain};
use super::tree::{RecordTree, walk};

/// The address evaluated when the request names none: TEST-NET-1 (RFC 5737),
/// which no real record lists, so the result is what a stranger (a forger) gets.
pub const UNLISTED_ADDRESS: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

/// What to evaluate.
#[derive(Debug, Clone)]
pub struct SpfRequest {
    /// The domain whose policy is evaluated (for the MAIL FROM identity).
    pub domain: String,
    /// The client address; `None` evaluates [`UNLISTED_ADDRESS`].
    pub ip: Option<IpAddr>,
    /// MAIL FROM. `None`: `postmaster@<domain>`. `Some("")` (or `"<>"`): the null
    /// reverse-path, so the HELO identity is checked (RFC 7208 §2.3).
    pub sender: Option<String>,
    /// HELO/EHLO name; `None`: the domain.
    pub helo: Option<String>,
    /// Limits of the evaluation (RFC 7208 §4.6.4 defaults).
    pub limits: Limits,
    /// Also walk the domain's whole record tree (more DNS questions).
    pub with_tree: bool,
}

impl SpfRequest {
    /// A request for `domain`, with the tree, an unlisted address, sender
    /// `postmaster@domain` and HELO `domain`.
    pub fn new(domain: impl Into<String>) -> SpfRequest {
        SpfRequest {
            domain: domain.into(),
            ip: None,
            sender: None,
            helo: None,
            limits: Limits::default(),
            with_tree: true,
        }
    }

    /// A request as an MTA makes it for a message: the domain is MAIL FROM's, or
    /// HELO's when MAIL FROM is empty (RFC 7208 §2.3, §2.4). No tree.
    pub fn mail(ip: IpAddr, mail_from: &str, helo: &str) -> SpfRequest {
        let args = CheckHost::for_mail(ip, mail_from, helo);
        SpfRequest {
            domain: args.domain,
            ip: Some(ip),
            sender: Some(mail_from.to_owned()),
            helo: Some(helo.to_owned()),
            limits: Limits::default(),
            with_tree: false,
        }
    }
}

/// Which identity was checked (RFC 7208 §2.3, §2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Identity {
    /// The MAIL FROM identity.
    MailFrom,
    /// The HELO identity (MAIL FROM was empty).
    Helo,
}

/// One evaluation, for `mxaudit spf`.
#[derive(Debug, Clone, Serialize)]
pub struct SpfEvaluation {
    /// The domain evaluated.
    pub domain: String,
    /// The identity checked.
    pub identity: Identity,
    /// The client address evaluated.
    pub ip: IpAddr,
    /// False when the request named no address ([`UNLISTED_ADDRESS`] was used).
    pub ip_given: bool,
    /// The `<sender>` of check_host().
    pub sender: String,
    /// The HELO name.
    pub helo: String,
    /// `pass`, `fail`, `softfail`, `neutral`, `none`, `permerror` or `temperror`.
    pub result: SpfResult,
    /// The `exp=` explanation of a fail, or null.
    pub explanation: Option<String>,
    /// Why the result is none, permerror or temperror, or null.
    pub reason: Option<String>,
    /// DNS-querying terms counted by this evaluation (limit 10).
    pub lookups: usize,
    /// Void lookups counted by this evaluation (limit 2).
    pub void_lookups: usize,
    /// The records read and terms evaluated.
    pub evaluation: EvalNode,
    /// The domain's whole record tree with lookup counts, when asked for.
    pub tree: Option<RecordTree>,
}

/// Evaluates a request: check_host() and, when asked, the record tree.
///
/// The CLI calls it for `mxaudit spf DOMAIN [--ip IP --sender S --helo H]` as
/// `evaluate(&dns, &SpfRequest { ip, sender, helo, ..SpfRequest::new(domain) }).await`,
/// with `dns` built from `--nameserver`/`--timeout` as for `audit`. It prints
/// `serde_json::to_string(&evaluation)` for `--format json` (keys `result`,
/// `explanation`, `lookups`, …) and `evaluation.to_text()` otherwise (control
/// characters in records already escaped). Pass `sender: Some(String::new())`
/// for an empty `--sender ''`: the HELO identity is then checked (RFC 7208
/// §2.3). It never fails: DNS problems are the `temperror` result.
pub async fn evaluate(dns: &Dns, req: &SpfRequest) -> SpfEvaluation {
    let ip = req.ip.unwrap_or(UNLISTED_ADDRESS);
    let helo = req.helo.clone().unwrap_or_else(|| req.domain.clone());
    let (identity, args) = match req.sender.as_deref().map(str::trim) {
        Some("") | Some("<>") => (Identity::Helo, CheckHost::for_mail(ip, "", &helo)),
        Some(sender) => {
            let mut args = CheckHost::for_mail(ip, sender, &helo);
            // The domain asked for is evaluated, whatever the sender's domain.
            args.domain = req.domain.clone();
            (Identity::MailFrom, args)
        }
        None => (
            Identity::MailFrom,
            CheckHost {
                ip,
                domain: req.domain.clone(),
                sender: format!("postmaster@{}", req.domain),
                helo: helo.clone(),
            },
        ),
    };
    let outcome = check_host(dns, &args, &req.limits).await;
    let tree = match initial_domain(&args.domain) {
        Some(name) if req.with_tree => Some(walk(dns, &name).await),
        Some(_) | None => None,
    };
    SpfEvaluation {
        domain: args.domain,
        identity,
        ip,
        ip_given: req.ip.is_some(),
        sender: args.sender,
        helo: args.helo,
        result: outcome.result,
        explanation: outcome.explanation,
        reason: outcome.reason,
        lookups: outcome.lookups,
        void_lookups: outcome.void_lookups,
        evaluation: outcome.trace,
        tree,
    }
}

/// The evaluation trace flattened: one line per record and term.
pub fn trace_lines(node: &EvalNode) -> Vec<String> {
    let mut out = Vec::new();
    push_node(&mut out, node, 0);
    out
}

fn push_node(out: &mut Vec<String>, node: &EvalNode, depth: usize) {
    let indent = "  ".repeat(depth);
    let record = match &node.record {
        Some(r) => format!("\"{r}\""),
        None => "(no record)".to_owned(),
    };
    let mut line = format!("{indent}{} {record} → {}", node.domain, node.result);
    if let Some(reason) = &node.reason {
        let _ = write!(line, " ({reason})");
    }
    out.push(line);
    for step in &node.steps {
        if out.len() > 300 {
            out.push(format!("{indent}  …"));
            return;
        }
        let mut line = format!("{indent}  ");
        if let Some(n) = step.lookup {
            let _ = write!(line, "#{n} ");
        }
        line.push_str(&step.term);
        line.push_str(match step.outcome {
            StepOutcome::Match => " — match",
            StepOutcome::NoMatch => " — no match",
            StepOutcome::Error => " — error",
        });
        if let Some(detail) = &step.detail {
            let _ = write!(line, " ({detail})");
        }
        out.push(line);
        if let Some(child) = &step.child {
            push_node(out, child, depth + 2);
        }
    }
}
