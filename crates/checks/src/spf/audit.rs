//! The `spf` engine: the domain's record tree audited once, and check_host()
//! run for every outbound address the configuration lists. Codes and facts
//! only; the text is in `plugins/spf.toml`.

use std::time::{Duration, Instant};

use serde::Deserialize;

use mxaudit_core::{CheckCx, CheckReport, CodeSpec, Engine, Observation, PluginMeta, Target};

use super::check_host::{CheckHost, Limits, check_host};
use super::evaluation::trace_lines;
use super::tree::{NodeStatus, RecordTree, TreeNode, TreeProblem, walk};
use super::{SpfResult, parse_record};

/// `[params]` of the `spf` engine (none: the limits are RFC 7208's).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpfParams {}

/// The `spf` engine.
#[derive(Debug)]
pub struct Spf;

/// §4.6.4: at most 10 DNS-querying terms.
const LOOKUP_LIMIT: usize = 10;
/// §4.6.4: at most 2 void lookups.
const VOID_LIMIT: usize = 2;
/// Lookup paths listed in evidence at most.
const MAX_PATH_LINES: usize = 100;

impl Engine for Spf {
    const NAME: &'static str = "spf";
    const CODES: &'static [CodeSpec] = &[
        CodeSpec {
            code: "spf.lookup_failed",
            vars: &["name", "failure"],
        },
        CodeSpec {
            code: "spf.missing",
            vars: &["answer"],
        },
        CodeSpec {
            code: "spf.multiple",
            vars: &["name", "count"],
        },
        CodeSpec {
            code: "spf.syntax",
            vars: &["name", "problem", "path"],
        },
        CodeSpec {
            code: "spf.too_many_lookups",
            vars: &["count", "limit", "crossed_at", "pushed_by", "mx_over"],
        },
        CodeSpec {
            code: "spf.void_lookups",
            vars: &["count", "limit", "terms"],
        },
        CodeSpec {
            code: "spf.include_missing",
            vars: &["target", "path", "answer"],
        },
        CodeSpec {
            code: "spf.redirect_loop",
            vars: &["target", "path"],
        },
        CodeSpec {
            code: "spf.all_pass",
            vars: &["term", "path", "result"],
        },
        CodeSpec {
            code: "spf.no_all",
            vars: &["name"],
        },
        CodeSpec {
            code: "spf.ptr_mechanism",
            vars: &["name", "path"],
        },
        CodeSpec {
            code: "spf.provider_missing",
            vars: &["include", "provider"],
        },
        CodeSpec {
            code: "spf.ip_not_authorized",
            vars: &["ip", "result", "reason", "explanation"],
        },
    ];
    type Params = SpfParams;

    fn build(_params: SpfParams, _plugin: &PluginMeta) -> Result<Self, String> {
        Ok(Spf)
    }

    async fn run(&self, target: &Target, cx: &CheckCx) -> CheckReport {
        let mut report = CheckReport::default();
        let domain = &target.domain;
        let tree = walk(&cx.dns, domain).await;
        let root = &tree.root;
        let record_line = |node: &TreeNode| match &node.record {
            Some(r) => format!("{}. TXT \"{r}\"", node.name),
            None => format!("{}. TXT: {}", node.name, describe_status(&node.status)),
        };
        let root_line = record_line(root);
        match &root.status {
            NodeStatus::Ok | NodeStatus::Syntax(_) => {}
            NodeStatus::NoRecord(answer) => {
                let nxdomain = tree
                    .problems
                    .iter()
                    .any(|p| matches!(p, TreeProblem::NoRecord { nxdomain: true, path, .. } if path.is_empty()));
                // A domain that does not exist is `domain.nxdomain` (engine mx),
                // not a domain without SPF.
                if !nxdomain {
                    report.push(
                        Observation::new("spf.missing", domain.to_string())
                            .evidence(root_line)
                            .var("answer", answer.clone()),
                    );
                }
                return report;
            }
            NodeStatus::LookupFailed(failure) => {
                report.error(format!("{} TXT: {failure}", domain.as_str()));
                report.push(
                    Observation::new("spf.lookup_failed", domain.to_string())
                        .evidence(root_line)
                        .var("name", domain.to_string())
                        .var("failure", failure.clone()),
                );
                return report;
            }
            NodeStatus::Multiple(count) => {
                let records = tree.problems.iter().find_map(|p| match p {
                    TreeProblem::Multiple { records, path, .. } if path.is_empty() => {
                        Some(records.clone())
                    }
                    _ => None,
                });
                report.push(
                    Observation::new("spf.multiple", domain.to_string())
                        .evidence_lines(
                            records
                                .unwrap_or_default()
                                .iter()
                                .map(|r| format!("{}. TXT \"{r}\"", domain.bare())),
                        )
                        .var("name", domain.to_string())
                        .var("count", *count),
                );
                return report;
            }
            NodeStatus::Loop | NodeStatus::NotFollowed => {}
        }
        let tree_lines = tree.lines(LOOKUP_LIMIT);
        let with_tree = |o: Observation| -> Observation {
            o.evidence(root_line.clone())
                .evidence_lines(tree_lines.iter().cloned())
        };

        for problem in &tree.problems {
            match problem {
                TreeProblem::Syntax {
                    name,
                    problem,
                    path,
                } => report.push(with_tree(
                    Observation::new("spf.syntax", name.clone())
                        .var("name", name.clone())
                        .var("problem", problem.clone())
                        .var("path", path.join(" → ")),
                )),
                // The domain's own record was handled above.
                TreeProblem::Multiple { path, .. }
                | TreeProblem::LookupFailed { path, .. }
                | TreeProblem::NoRecord { path, .. }
                    if path.is_empty() => {}
                TreeProblem::Multiple { name, records, .. } => report.push(
                    with_tree(Observation::new("spf.multiple", name.clone()))
                        .evidence_lines(records.iter().map(|r| format!("{name}. TXT \"{r}\"")))
                        .var("name", name.clone())
                        .var("count", records.len()),
                ),
                TreeProblem::LookupFailed {
                    name,
                    failure,
                    path,
                } => {
                    report.error(format!("{name}. TXT (via {}): {failure}", path.join(" → ")));
                    report.push(with_tree(
                        Observation::new("spf.lookup_failed", name.clone())
                            .var("name", name.clone())
                            .var("failure", failure.clone()),
                    ));
                }
                TreeProblem::NoRecord {
                    name, answer, path, ..
                } => report.push(with_tree(
                    Observation::new("spf.include_missing", name.clone())
                        .var("target", name.clone())
                        .var("path", path.join(" → "))
                        .var("answer", answer.clone()),
                )),
                TreeProblem::Loop { target, path } => report.push(with_tree(
                    Observation::new("spf.redirect_loop", target.clone())
                        .var("target", target.clone())
                        .var("path", path.join(" → ")),
                )),
                TreeProblem::Ptr { name, path } => report.push(with_tree(
                    Observation::new("spf.ptr_mechanism", name.clone())
                        .var("name", name.clone())
                        .var("path", path.join(" → ")),
                )),
            }
        }

        // §4.6.4: more than 10 DNS-querying terms, or an mx over 10 names.
        if tree.lookups > LOOKUP_LIMIT || !tree.mx_over_limit.is_empty() {
            let crossing = tree.crossing(LOOKUP_LIMIT);
            let mut paths: Vec<String> = tree
                .querying
                .iter()
                .take(MAX_PATH_LINES)
                .map(|q| {
                    let mark = if q.ordinal == LOOKUP_LIMIT + 1 {
                        " ← over the limit"
                    } else {
                        ""
                    };
                    format!("lookup #{}: {}{mark}", q.ordinal, q.path_text())
                })
                .collect();
            if tree.lookups > paths.len() {
                paths.push(format!("… {} more lookups", tree.lookups - paths.len()));
            }
            report.push(
                with_tree(Observation::new("spf.too_many_lookups", domain.to_string()))
                    .evidence_lines(paths)
                    .var("count", tree.lookups)
                    .var("limit", LOOKUP_LIMIT)
                    .var(
                        "crossed_at",
                        crossing.map(|q| q.path_text()).unwrap_or_default(),
                    )
                    .var(
                        "pushed_by",
                        crossing
                            .and_then(|q| q.path.first().cloned())
                            .unwrap_or_default(),
                    )
                    .var("mx_over", tree.mx_over_limit.join(", ")),
            );
        }

        // §4.6.4: more than 2 void lookups.
        if tree.void_lookups > VOID_LIMIT {
            let voids = void_paths(&tree.root, &mut Vec::new());
            report.push(
                with_tree(Observation::new("spf.void_lookups", domain.to_string()))
                    .var("count", tree.void_lookups)
                    .var("limit", VOID_LIMIT)
                    .var("terms", voids.join(", ")),
            );
        }

        // What a stranger (a forger) gets, before the limits hide it.
        let stranger = &tree.stranger;
        let sends = !target.outbound_ips.is_empty() || authorizes_senders(&tree);
        let all_pass = match stranger.result {
            SpfResult::Pass => true,
            // `?all` (or another explicit neutral) on a domain that sends mail:
            // forged mail is as welcome as real mail. A domain that sends nothing
            // is better served by `-all`, but `?all` there harms no one's mail.
            SpfResult::Neutral => stranger.decided_by.is_some() && sends,
            SpfResult::None
            | SpfResult::Fail
            | SpfResult::SoftFail
            | SpfResult::TempError
            | SpfResult::PermError => false,
        };
        if all_pass && let Some(path) = &stranger.decided_by {
            report.push(
                with_tree(Observation::new("spf.all_pass", domain.to_string()))
                    .var("term", path.last().cloned().unwrap_or_default())
                    .var("path", path.join(" → "))
                    .var("result", stranger.result.as_str()),
            );
        }
        if let Some(end) = chain_end_without_all(&tree.root) {
            report.push(
                with_tree(Observation::new("spf.no_all", end.name.clone()))
                    .var("name", end.name.clone()),
            );
        }

        // A record that does not parse was not walked: its syntax finding comes
        // first, and its includes are unknown.
        if let Some(profile) = &target.profile
            && let Some(include) = &profile.spf_include
            && root.status == NodeStatus::Ok
            && !tree.reaches(include)
        {
            report.push(
                with_tree(Observation::new("spf.provider_missing", domain.to_string()))
                    .var("include", include.clone())
                    .var("provider", profile.description.clone()),
            );
        }

        for ip in &target.outbound_ips {
            let remaining = cx.deadline.saturating_duration_since(Instant::now());
            let limits = Limits {
                time: remaining.min(Duration::from_secs(20)),
                ..Limits::default()
            };
            let args = CheckHost {
                ip: *ip,
                domain: domain.bare().to_owned(),
                sender: format!("postmaster@{}", domain.bare()),
                helo: domain.bare().to_owned(),
            };
            let outcome = check_host(&cx.dns, &args, &limits).await;
            match outcome.result {
                SpfResult::Pass => {}
                // Undecided is not "not authorized" (style rule 4).
                SpfResult::TempError => report.error(format!(
                    "check_host({ip}, {}) temperror: {}",
                    domain.bare(),
                    outcome.reason.clone().unwrap_or_default()
                )),
                SpfResult::None
                | SpfResult::Neutral
                | SpfResult::Fail
                | SpfResult::SoftFail
                | SpfResult::PermError => report.push(
                    Observation::new("spf.ip_not_authorized", ip.to_string())
                        .evidence(root_line.clone())
                        .evidence_lines(trace_lines(&outcome.trace))
                        .var("ip", ip.to_string())
                        .var("result", outcome.result.as_str())
                        .var("reason", outcome.reason.clone().unwrap_or_default())
                        .var(
                            "explanation",
                            outcome.explanation.clone().unwrap_or_default(),
                        ),
                ),
            }
        }
        report
    }
}

fn describe_status(status: &NodeStatus) -> String {
    match status {
        NodeStatus::Ok => "ok".to_owned(),
        NodeStatus::NoRecord(why) => format!("no v=spf1 record ({why})"),
        NodeStatus::Multiple(n) => format!("{n} v=spf1 records"),
        NodeStatus::Syntax(p) => format!("syntax error: {p}"),
        NodeStatus::LookupFailed(f) => format!("lookup failed: {f}"),
        NodeStatus::Loop => "loop".to_owned(),
        NodeStatus::NotFollowed => "not followed".to_owned(),
    }
}

/// True when the domain's own record (or its redirect chain) lists senders:
/// any mechanism but `all`.
fn authorizes_senders(tree: &RecordTree) -> bool {
    let mut node = &tree.root;
    for _ in 0..16 {
        let Some(record) = node.record.as_deref().and_then(|r| parse_record(r).ok()) else {
            return false;
        };
        if record
            .directives
            .iter()
            .any(|d| d.mechanism != super::Mechanism::All)
        {
            return true;
        }
        match redirect_child(node) {
            Some(child) => node = child,
            None => return false,
        }
    }
    false
}

/// The record followed by the domain's (non-ignored) redirect, if read.
fn redirect_child(node: &TreeNode) -> Option<&TreeNode> {
    node.terms
        .iter()
        .find(|t| t.ordinal.is_some() && t.term.to_ascii_lowercase().starts_with("redirect="))
        .and_then(|t| t.child.as_ref())
}

/// §4.7: the record ending the domain's redirect chain, when it has neither
/// `all` nor `redirect`: its result is the default, neutral.
fn chain_end_without_all(root: &TreeNode) -> Option<&TreeNode> {
    let mut node = root;
    for _ in 0..16 {
        if node.status != NodeStatus::Ok {
            return None;
        }
        let record = parse_record(node.record.as_deref()?).ok()?;
        if record.has_all() {
            return None;
        }
        if record.redirect.is_some() {
            node = redirect_child(node)?;
            continue;
        }
        return Some(node);
    }
    None
}

/// The paths of the void terms of the tree.
fn void_paths(node: &TreeNode, path: &mut Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    for t in &node.terms {
        path.push(t.term.clone());
        if t.void {
            out.push(path.join(" → "));
        }
        if let Some(child) = &t.child {
            out.extend(void_paths(child, path));
        }
        path.pop();
    }
    out
}
