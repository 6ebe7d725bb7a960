//! The audit of a domain's whole SPF record tree: every include and redirect
//! followed once (through the run's cached [`Dns`]), the count of DNS-querying
//! terms at every node (RFC 7208 §4.6.4), the tree path of every such term, the
//! void lookups, and what a client the records do not list would get.
//!
//! The count is the worst case, the one a receiver reaches for a client that no
//! term matches: evaluation stops at the first match (§4.6.2), so a client that
//! matches early costs fewer lookups, but a forged sender costs all of them.

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;

use mxaudit_dns::{Answer, Dns, DomainName, LookupFailure, RType};

use super::check_host::{Fetched, NoRecord, fetch_record, is_ldh};
use super::{Mechanism, Record, SpfResult, parse_record};

/// Records read at most in one tree (a hostile tree could fan out without end).
const MAX_RECORDS: usize = 64;
/// Include/redirect depth followed at most.
const MAX_DEPTH: usize = 12;
/// Evidence lines of a flattened tree at most.
const MAX_LINES: usize = 200;
/// DNS-querying terms whose path is kept (the count goes on beyond).
const MAX_PATHS: usize = 200;
/// Names asked to find void lookups at most (a record may hold thousands of terms).
const MAX_VOID_CHECKS: usize = 100;

/// A domain's record tree, walked once.
#[derive(Debug, Clone, Serialize)]
pub struct RecordTree {
    /// The domain's record and everything below it.
    pub root: TreeNode,
    /// DNS-querying terms a full evaluation counts (§4.6.4: at most 10).
    pub lookups: usize,
    /// Terms whose target has no address or MX record (§4.6.4: at most 2).
    pub void_lookups: usize,
    /// Every DNS-querying term, in evaluation order, with its path (the first
    /// 200; `lookups` counts them all).
    pub querying: Vec<QueryingTerm>,
    /// `mx` terms whose target has more than 10 MX names (a permerror, §4.6.4).
    pub mx_over_limit: Vec<String>,
    /// What was wrong in the tree.
    pub problems: Vec<TreeProblem>,
    /// The result a client that no term lists would get, and the term deciding
    /// it, before the limits are applied (see [`RecordTree::effective_stranger`]).
    pub stranger: Stranger,
    /// Literal include and redirect targets met anywhere, lowercase.
    pub targets: Vec<String>,
    /// True when the walk stopped at its bounds (records, depth, void checks).
    pub truncated: bool,
}

/// One DNS-querying term of the tree.
#[derive(Debug, Clone, Serialize)]
pub struct QueryingTerm {
    /// Its number in evaluation order, from 1.
    pub ordinal: usize,
    /// The terms leading to it, ending with itself: `include:a.example → mx`.
    pub path: Vec<String>,
}

impl QueryingTerm {
    /// The path joined with arrows.
    pub fn path_text(&self) -> String {
        self.path.join(" → ")
    }
}

/// The result for a client that no `ip4`, `ip6`, `a`, `mx`, `ptr` or `exists`
/// term lists: what a forger gets.
#[derive(Debug, Clone, Serialize)]
pub struct Stranger {
    /// The result.
    pub result: SpfResult,
    /// The path of the term that decides it (`-all`, `include:x → +all`), or `None`
    /// for the default result of a record without `all` (§4.7).
    pub decided_by: Option<Vec<String>>,
}

impl Stranger {
    fn default_neutral() -> Stranger {
        Stranger {
            result: SpfResult::Neutral,
            decided_by: None,
        }
    }
    fn error(result: SpfResult) -> Stranger {
        Stranger {
            result,
            decided_by: None,
        }
    }
}

/// One record of the tree.
#[derive(Debug, Clone, Serialize)]
pub struct TreeNode {
    /// The domain the record was read from.
    pub name: String,
    /// The SPF record, when exactly one was found.
    pub record: Option<String>,
    /// Whether the record could be read and parsed.
    pub status: NodeStatus,
    /// DNS-querying terms in this record and below.
    pub lookups: usize,
    /// The record's terms, in evaluation order (directives, then redirect).
    pub terms: Vec<TreeTerm>,
}

/// Whether a node's record could be used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "detail")]
pub enum NodeStatus {
    /// One record, parsed.
    Ok,
    /// No SPF record (the answer is described).
    NoRecord(String),
    /// More than one SPF record.
    Multiple(usize),
    /// The record does not parse.
    Syntax(String),
    /// The TXT lookup failed.
    LookupFailed(String),
    /// The name is already on the path from the root: a loop.
    Loop,
    /// Not read: the walk's bounds were reached.
    NotFollowed,
}

/// One term of a record.
#[derive(Debug, Clone, Serialize)]
pub struct TreeTerm {
    /// The term as written.
    pub term: String,
    /// Its number among the DNS-querying terms, when it is one that counts.
    pub ordinal: Option<usize>,
    /// DNS-querying terms this term stands for: 1 plus its subtree for include
    /// and redirect, 1 for a, mx, ptr, exists, 0 otherwise.
    pub lookups: usize,
    /// True when its lookup finds nothing (a void lookup, §4.6.4).
    pub void: bool,
    /// A fact about the term: the void answer, a redirect ignored, a macro target.
    pub note: Option<String>,
    /// The included or redirected-to record.
    pub child: Option<TreeNode>,
}

/// A problem found in the tree. `path` is the chain of terms leading to the
/// record concerned (empty for the domain's own record).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum TreeProblem {
    /// The record does not parse.
    Syntax {
        /// The record's domain.
        name: String,
        /// The error.
        problem: String,
        /// The path to the record.
        path: Vec<String>,
    },
    /// More than one SPF record.
    Multiple {
        /// The domain.
        name: String,
        /// The records.
        records: Vec<String>,
        /// The path to the domain.
        path: Vec<String>,
    },
    /// A TXT lookup failed: receivers get temperror.
    LookupFailed {
        /// The domain.
        name: String,
        /// The failure.
        failure: String,
        /// The path to the domain.
        path: Vec<String>,
    },
    /// No SPF record at the domain (`path` empty) or at an include/redirect target.
    NoRecord {
        /// The domain.
        name: String,
        /// NXDOMAIN, no TXT, or TXT without v=spf1.
        answer: String,
        /// True for NXDOMAIN.
        nxdomain: bool,
        /// The path to the domain (ends with the include or redirect term).
        path: Vec<String>,
    },
    /// An include or redirect target already on the path.
    Loop {
        /// The repeated domain.
        target: String,
        /// The path, ending with the term that closes the loop.
        path: Vec<String>,
    },
    /// A `ptr` mechanism.
    Ptr {
        /// The record's domain.
        name: String,
        /// The path, ending with the `ptr` term.
        path: Vec<String>,
    },
}

impl RecordTree {
    /// True when `target` is an include or redirect target anywhere in the tree.
    pub fn reaches(&self, target: &str) -> bool {
        let t = target.trim_end_matches('.').to_ascii_lowercase();
        self.targets.contains(&t)
    }

    /// The result a stranger really gets: a full evaluation over the limits of
    /// §4.6.4 is a permerror for every client that reaches the extra terms,
    /// which a stranger does.
    pub fn effective_stranger(&self) -> SpfResult {
        if self.lookups > 10 || self.void_lookups > 2 || !self.mx_over_limit.is_empty() {
            SpfResult::PermError
        } else {
            self.stranger.result
        }
    }

    /// The DNS-querying term that went over the limit of 10, if any.
    pub fn crossing(&self, limit: usize) -> Option<&QueryingTerm> {
        self.querying.iter().find(|q| q.ordinal == limit + 1)
    }

    /// The tree flattened for evidence: one line per record and term, indented by
    /// depth, with `#n` on DNS-querying terms and `[n]` the lookups at a node.
    pub fn lines(&self, limit: usize) -> Vec<String> {
        let mut out = Vec::new();
        let root = &self.root;
        out.push(format!(
            "{} [{} lookups]: {}",
            root.name,
            root.lookups,
            describe_node(root)
        ));
        push_terms(&mut out, root, 1, limit);
        if out.len() > MAX_LINES {
            let more = out.len() - MAX_LINES;
            out.truncate(MAX_LINES);
            out.push(format!("… {more} more lines"));
        }
        if self.truncated {
            out.push(format!(
                "(walk bounded: at most {MAX_RECORDS} records, depth {MAX_DEPTH}, {MAX_VOID_CHECKS} void checks)"
            ));
        }
        out
    }
}

fn describe_node(node: &TreeNode) -> String {
    match (&node.status, &node.record) {
        (NodeStatus::Ok, Some(r)) | (NodeStatus::Syntax(_), Some(r)) => {
            let mut s = format!("\"{r}\"");
            if let NodeStatus::Syntax(p) = &node.status {
                s.push_str(&format!(" — syntax error: {p}"));
            }
            s
        }
        (NodeStatus::NoRecord(why), _) => format!("no SPF record ({why})"),
        (NodeStatus::Multiple(n), _) => format!("{n} SPF records"),
        (NodeStatus::LookupFailed(why), _) => format!("TXT lookup failed ({why})"),
        (NodeStatus::Loop, _) => "loop: already on this path".to_owned(),
        (NodeStatus::NotFollowed, _) => "not followed (walk bounds)".to_owned(),
        (NodeStatus::Ok, None) | (NodeStatus::Syntax(_), None) => String::new(),
    }
}

fn push_terms(out: &mut Vec<String>, node: &TreeNode, depth: usize, limit: usize) {
    let indent = "  ".repeat(depth);
    for t in &node.terms {
        let mut line = indent.clone();
        if let Some(n) = t.ordinal {
            line.push_str(&format!("#{n} "));
        }
        line.push_str(&t.term);
        if let Some(child) = &t.child {
            line.push_str(&format!(" [{}]: {}", t.lookups, describe_node(child)));
        }
        if let Some(note) = &t.note {
            line.push_str(&format!(" — {note}"));
        }
        if t.ordinal == Some(limit + 1) {
            line.push_str(&format!(
                " ← lookup {} exceeds the limit of {limit}",
                limit + 1
            ));
        }
        out.push(line);
        if let Some(child) = &t.child {
            push_terms(out, child, depth + 1, limit);
        }
        if out.len() > MAX_LINES + 1 {
            return;
        }
    }
}

/// Walks the record tree of `domain`.
pub async fn walk(dns: &Dns, domain: &DomainName) -> RecordTree {
    let mut walker = Walker {
        dns,
        ordinal: 0,
        voids: 0,
        void_checks: 0,
        records: 0,
        querying: Vec::new(),
        mx_over_limit: Vec::new(),
        problems: Vec::new(),
        targets: Vec::new(),
        truncated: false,
    };
    let (root, stranger) = walker
        .node(domain.bare().to_owned(), Vec::new(), Vec::new(), 0)
        .await;
    RecordTree {
        root,
        lookups: walker.ordinal,
        void_lookups: walker.voids,
        querying: walker.querying,
        mx_over_limit: walker.mx_over_limit,
        problems: walker.problems,
        stranger,
        targets: walker.targets,
        truncated: walker.truncated,
    }
}

struct Walker<'a> {
    dns: &'a Dns,
    ordinal: usize,
    voids: usize,
    void_checks: usize,
    records: usize,
    querying: Vec<QueryingTerm>,
    mx_over_limit: Vec<String>,
    problems: Vec<TreeProblem>,
    targets: Vec<String>,
    truncated: bool,
}

type Boxed<'s, T> = Pin<Box<dyn Future<Output = T> + Send + 's>>;

fn with(path: &[String], term: &str) -> Vec<String> {
    let mut p = path.to_vec();
    p.push(term.to_owned());
    p
}

impl<'a> Walker<'a> {
    /// Reads and walks one record. `path` leads to it; `stack` holds the names
    /// on that path (loop detection).
    fn node(
        &mut self,
        name: String,
        path: Vec<String>,
        stack: Vec<String>,
        depth: usize,
    ) -> Boxed<'_, (TreeNode, Stranger)> {
        Box::pin(async move { self.read_node(name, path, stack, depth).await })
    }

    async fn read_node(
        &mut self,
        name: String,
        path: Vec<String>,
        mut stack: Vec<String>,
        depth: usize,
    ) -> (TreeNode, Stranger) {
        let mut node = TreeNode {
            name: name.clone(),
            record: None,
            status: NodeStatus::Ok,
            lookups: 0,
            terms: Vec::new(),
        };
        if self.records >= MAX_RECORDS || depth > MAX_DEPTH {
            self.truncated = true;
            node.status = NodeStatus::NotFollowed;
            return (node, Stranger::default_neutral());
        }
        self.records += 1;
        let Ok(dn) = DomainName::parse_relaxed(&name) else {
            let answer = "not a valid domain name".to_owned();
            self.problems.push(TreeProblem::NoRecord {
                name: name.clone(),
                answer: answer.clone(),
                nxdomain: false,
                path: path.clone(),
            });
            node.status = NodeStatus::NoRecord(answer);
            return (node, Stranger::error(SpfResult::None));
        };
        let text = match fetch_record(self.dns, &dn).await {
            Fetched::Record(t) => t,
            Fetched::NoRecord(why) => {
                self.problems.push(TreeProblem::NoRecord {
                    name: name.clone(),
                    answer: why.describe(),
                    nxdomain: why == NoRecord::NxDomain,
                    path: path.clone(),
                });
                node.status = NodeStatus::NoRecord(why.describe());
                return (node, Stranger::error(SpfResult::None));
            }
            Fetched::Multiple(records) => {
                node.status = NodeStatus::Multiple(records.len());
                self.problems.push(TreeProblem::Multiple {
                    name: name.clone(),
                    records,
                    path: path.clone(),
                });
                return (node, Stranger::error(SpfResult::PermError));
            }
            Fetched::Failed(why) => {
                node.status = NodeStatus::LookupFailed(why.to_string());
                self.problems.push(TreeProblem::LookupFailed {
                    name: name.clone(),
                    failure: why.to_string(),
                    path: path.clone(),
                });
                return (node, Stranger::error(SpfResult::TempError));
            }
        };
        node.record = Some(text.clone());
        let record = match parse_record(&text) {
            Ok(r) => r,
            Err(e) => {
                node.status = NodeStatus::Syntax(e.to_string());
                self.problems.push(TreeProblem::Syntax {
                    name: name.clone(),
                    problem: e.to_string(),
                    path: path.clone(),
                });
                return (node, Stranger::error(SpfResult::PermError));
            }
        };
        stack.push(name.to_ascii_lowercase());
        let stranger = self
            .terms(&mut node, &record, &dn, &path, &stack, depth)
            .await;
        node.lookups = node.terms.iter().map(|t| t.lookups).sum();
        (node, stranger)
    }

    async fn terms(
        &mut self,
        node: &mut TreeNode,
        record: &Record,
        domain: &DomainName,
        path: &[String],
        stack: &[String],
        depth: usize,
    ) -> Stranger {
        let mut stranger: Option<Stranger> = None;
        for d in &record.directives {
            let term_path = with(path, &d.text);
            let mut term = TreeTerm {
                term: d.text.clone(),
                ordinal: None,
                lookups: 0,
                void: false,
                note: None,
                child: None,
            };
            if d.mechanism.queries_dns() {
                term.ordinal = Some(self.count(&term_path));
                term.lookups = 1;
            }
            // What this term means for a client that no address term lists.
            let mut decides: Option<Stranger> = None;
            match &d.mechanism {
                Mechanism::All => {
                    decides = Some(Stranger {
                        result: d.qualifier.result(),
                        decided_by: Some(term_path.clone()),
                    });
                }
                Mechanism::Ip4 { prefix: 0, .. } | Mechanism::Ip6 { prefix: 0, .. } => {
                    // A /0 network lists every client of its family.
                    term.note = Some("matches every address of its family".to_owned());
                    decides = Some(Stranger {
                        result: d.qualifier.result(),
                        decided_by: Some(term_path.clone()),
                    });
                }
                Mechanism::Ip4 { .. } | Mechanism::Ip6 { .. } => {}
                Mechanism::A { domain: spec, .. } => {
                    let target = match spec {
                        None => Some(domain.clone()),
                        Some(s) => s.literal().and_then(|l| DomainName::parse_relaxed(l).ok()),
                    };
                    match target {
                        Some(t) => self.void_a(&mut term, &t).await,
                        None => term.note = Some(MACRO_NOTE.to_owned()),
                    }
                }
                Mechanism::Mx { domain: spec, .. } => {
                    let target = match spec {
                        None => Some(domain.clone()),
                        Some(s) => s.literal().and_then(|l| DomainName::parse_relaxed(l).ok()),
                    };
                    match target {
                        Some(t) => self.void_mx(&mut term, &t, &term_path).await,
                        None => term.note = Some(MACRO_NOTE.to_owned()),
                    }
                }
                Mechanism::Exists(spec) => {
                    match spec
                        .literal()
                        .and_then(|l| DomainName::parse_relaxed(l).ok())
                    {
                        Some(t) => self.void_exists(&mut term, &t).await,
                        None => term.note = Some(MACRO_NOTE.to_owned()),
                    }
                }
                Mechanism::Ptr(_) => {
                    self.problems.push(TreeProblem::Ptr {
                        name: node.name.clone(),
                        path: term_path.clone(),
                    });
                }
                Mechanism::Include(spec) => match spec.literal() {
                    None => term.note = Some(MACRO_NOTE.to_owned()),
                    Some(target) => {
                        let child = self
                            .follow(&mut term, target, &term_path, stack, depth)
                            .await;
                        // §5.2: an included pass matches; errors and none end the
                        // evaluation; other results do not match.
                        decides = match child.result {
                            SpfResult::Pass => Some(Stranger {
                                result: d.qualifier.result(),
                                decided_by: Some(
                                    child.decided_by.unwrap_or_else(|| term_path.clone()),
                                ),
                            }),
                            SpfResult::TempError => Some(Stranger::error(SpfResult::TempError)),
                            SpfResult::PermError | SpfResult::None => {
                                Some(Stranger::error(SpfResult::PermError))
                            }
                            SpfResult::Fail | SpfResult::SoftFail | SpfResult::Neutral => None,
                        };
                    }
                },
            }
            node.terms.push(term);
            if stranger.is_none() {
                stranger = decides;
            }
        }
        if let Some((spec, text)) = &record.redirect {
            let term_path = with(path, text);
            let mut term = TreeTerm {
                term: text.clone(),
                ordinal: None,
                lookups: 0,
                void: false,
                note: None,
                child: None,
            };
            if record.has_all() {
                // §6.1: ignored when the record has `all`; never counted.
                term.note = Some("ignored: the record has an all mechanism".to_owned());
            } else {
                term.ordinal = Some(self.count(&term_path));
                term.lookups = 1;
                match spec.literal() {
                    None => term.note = Some(MACRO_NOTE.to_owned()),
                    Some(target) => {
                        let child = self
                            .follow(&mut term, target, &term_path, stack, depth)
                            .await;
                        if stranger.is_none() {
                            // §6.1: a redirect target without a record is a permerror.
                            stranger = Some(match child.result {
                                SpfResult::None => Stranger::error(SpfResult::PermError),
                                _ => child,
                            });
                        }
                    }
                }
            }
            node.terms.push(term);
        }
        stranger.unwrap_or_else(Stranger::default_neutral)
    }

    /// Follows an include or redirect to `target`, unless it closes a loop.
    async fn follow(
        &mut self,
        term: &mut TreeTerm,
        target: &str,
        term_path: &[String],
        stack: &[String],
        depth: usize,
    ) -> Stranger {
        let lower = target.to_ascii_lowercase();
        if !self.targets.contains(&lower) {
            self.targets.push(lower.clone());
        }
        if stack.contains(&lower) {
            self.problems.push(TreeProblem::Loop {
                target: target.to_owned(),
                path: term_path.to_vec(),
            });
            term.child = Some(TreeNode {
                name: target.to_owned(),
                record: None,
                status: NodeStatus::Loop,
                lookups: 0,
                terms: Vec::new(),
            });
            // A loop repeats until the lookup limit: a permerror.
            return Stranger::error(SpfResult::PermError);
        }
        let (child, stranger) = self
            .node(
                target.to_owned(),
                term_path.to_vec(),
                stack.to_vec(),
                depth + 1,
            )
            .await;
        term.lookups += child.lookups;
        term.child = Some(child);
        stranger
    }

    fn count(&mut self, path: &[String]) -> usize {
        self.ordinal += 1;
        if self.querying.len() < MAX_PATHS {
            self.querying.push(QueryingTerm {
                ordinal: self.ordinal,
                path: path.to_vec(),
            });
        }
        self.ordinal
    }

    /// True while void checks are within their budget; counts one.
    fn may_check_void(&mut self) -> bool {
        self.void_checks += 1;
        if self.void_checks > MAX_VOID_CHECKS {
            self.truncated = true;
            false
        } else {
            true
        }
    }

    fn mark_void(&mut self, term: &mut TreeTerm, what: String) {
        self.voids += 1;
        term.void = true;
        term.note = Some(format!("void lookup {}: {what}", self.voids));
    }

    /// `a`: void when the name has neither an A nor an AAAA record.
    async fn void_a(&mut self, term: &mut TreeTerm, name: &DomainName) {
        if !self.may_check_void() {
            return;
        }
        let v4 = void_answer(self.dns, name, RType::A).await;
        let v6 = void_answer(self.dns, name, RType::Aaaa).await;
        if let (Some(a), Some(_)) = (v4, v6) {
            self.mark_void(term, format!("{name} has no A or AAAA ({a})"));
        }
    }

    /// `exists`: void when the name has no A record (§5.7 asks A only).
    async fn void_exists(&mut self, term: &mut TreeTerm, name: &DomainName) {
        if !self.may_check_void() {
            return;
        }
        if let Some(what) = void_answer(self.dns, name, RType::A).await {
            self.mark_void(term, format!("{name} has no A ({what})"));
        }
    }

    /// `mx`: void when the name has no MX record; over the limit with more than 10.
    async fn void_mx(&mut self, term: &mut TreeTerm, name: &DomainName, term_path: &[String]) {
        if !self.may_check_void() {
            return;
        }
        let answer = self.dns.query(name, RType::Mx).await;
        match answer.as_ref() {
            Answer::Records(set) => {
                let n = set.mx().len();
                if n == 0 {
                    self.mark_void(term, format!("{name} has no MX (NODATA)"));
                } else if n > 10 {
                    term.note = Some(format!("{name} has {n} MX names: more than 10"));
                    self.mx_over_limit
                        .push(format!("{} ({n} MX names)", term_path.join(" → ")));
                }
            }
            Answer::NxDomain { .. } => self.mark_void(term, format!("{name} has no MX (NXDOMAIN)")),
            Answer::NoData { .. } => self.mark_void(term, format!("{name} has no MX (NODATA)")),
            Answer::Failed(why) => term.note = Some(format!("MX lookup failed: {why}")),
        }
    }
}

const MACRO_NOTE: &str = "target has macros: depends on the message, not followed";

/// `Some(NXDOMAIN|NODATA)` when `name` has no record of `rtype`.
async fn void_answer(dns: &Dns, name: &DomainName, rtype: RType) -> Option<&'static str> {
    let answer = dns.query(name, rtype).await;
    match answer.as_ref() {
        Answer::Records(set) => {
            if set.of_type(rtype).is_empty() {
                Some("NODATA")
            } else {
                None
            }
        }
        Answer::NxDomain { .. } => Some("NXDOMAIN"),
        Answer::NoData { .. } => Some("NODATA"),
        // A name the DNS layer cannot ask does not exist for SPF either.
        Answer::Failed(LookupFailure::Malformed(_)) if !is_ldh(name.as_str()) => Some("NXDOMAIN"),
        Answer::Failed(_) => None,
    }
}
