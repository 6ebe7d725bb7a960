//! The sink contract: what a run hands to a sink, and how a sink says that a
//! delivery failed. Sinks make ONE attempt per call; retries, backoff, the
//! spool and ordering live in one shared delivery loop (`crates/sinks`), so that
//! no sink can lose a finding on its own (style rule 10).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{CheckResult, Finding, Severity};

/// A finding's status against the previous run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// Not present in the previous run of these domains.
    New,
    /// Present before and now.
    Ongoing,
    /// Present before, gone now.
    Resolved,
}

/// One finding with its change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// New, ongoing or resolved; `None` when no history was consulted (an
    /// audit).
    pub change: Option<Change>,
    /// The finding (for a resolved one: as last seen).
    pub finding: Finding,
}

/// Findings per severity in one past run, for trends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendPoint {
    /// Run id.
    pub run_id: String,
    /// RFC 3339.
    pub started_at: String,
    /// Counts, most severe first: `[critical, high, medium, low, info]`.
    pub counts: [u64; 5],
}

/// The one envelope of a run's results, whatever reads them: the report of
/// `mxaudit audit` (a batch without history), what each sink receives for a
/// run of `mxaudit run` or the daemon (a batch with history, filtered for the
/// sink), and what the spool keeps. Every output format renders a batch
/// (`crate::render`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// Whether the events carry a change against history (new, ongoing,
    /// resolved). False for an audit, whose events are simply the findings.
    #[serde(default = "crate::manifest::yes")]
    pub history: bool,
    /// Idempotency key: the same batch delivered twice has the same key
    /// (`<run id>/<sink id>`). Webhooks send it as `Idempotency-Key`.
    pub key: String,
    /// The run.
    pub run_id: String,
    /// The schedule that started the run, if any.
    pub schedule: Option<String>,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub finished_at: String,
    /// The audited domains.
    pub domains: Vec<String>,
    /// Findings with their change, after this sink's filters.
    pub events: Vec<Event>,
    /// One status per (domain, plugin).
    pub checks: Vec<CheckResult>,
    /// Recent runs, oldest first, for trend charts.
    pub trend: Vec<TrendPoint>,
}

/// Which changes a sink wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Only {
    /// New and resolved findings only (alerts).
    #[default]
    Changes,
    /// Every finding (reports).
    All,
}

/// The filters every sink has (`min_severity`, `only`), applied by the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinkFilter {
    /// Findings below this severity are not sent.
    pub min_severity: Severity,
    /// Changes or all.
    pub only: Only,
}

impl SinkFilter {
    /// The events this sink wants, in order.
    pub fn apply(&self, events: &[Event]) -> Vec<Event> {
        events
            .iter()
            .filter(|e| e.finding.severity >= self.min_severity)
            .filter(|e| self.only == Only::All || e.change != Some(Change::Ongoing))
            .cloned()
            .collect()
    }
}

/// Why one delivery attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// Worth trying again (timeouts, 5xx, 429), after `retry_after` if the
    /// receiver said so.
    #[error("retryable: {reason}")]
    Retryable {
        /// What happened (no secret in it).
        reason: String,
        /// The receiver's `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
    /// Will not succeed by retrying (4xx other than 408/429, bad address):
    /// the batch goes to the dead-letter folder and the failure is counted.
    #[error("permanent: {reason}")]
    Permanent {
        /// What happened (no secret in it).
        reason: String,
    },
}

/// A configured sink.
#[async_trait::async_trait]
pub trait Sink: Send + Sync {
    /// The sink's id (`[sinks.<id>]`).
    fn id(&self) -> &str;
    /// One delivery attempt.
    async fn send(&self, batch: &Batch) -> Result<(), SendError>;
}

impl Batch {
    /// A batch without history: the findings of an audit, each an event with
    /// no change.
    pub fn without_history(
        started_at: String,
        finished_at: String,
        domains: Vec<String>,
        findings: Vec<Finding>,
        checks: Vec<CheckResult>,
    ) -> Batch {
        Batch {
            history: false,
            key: String::new(),
            run_id: String::new(),
            schedule: None,
            started_at,
            finished_at,
            domains,
            events: findings
                .into_iter()
                .map(|finding| Event {
                    change: None,
                    finding,
                })
                .collect(),
            checks,
            trend: Vec::new(),
        }
    }

    /// The findings present now: every event but the resolved ones.
    pub fn current(&self) -> impl Iterator<Item = &Finding> {
        self.events
            .iter()
            .filter(|e| e.change != Some(Change::Resolved))
            .map(|e| &e.finding)
    }

    /// The most severe finding present now, if any.
    pub fn worst(&self) -> Option<Severity> {
        self.current().map(|f| f.severity).max()
    }

    /// Checks that could not decide.
    pub fn undecided(&self) -> usize {
        self.checks
            .iter()
            .filter(|c| c.status == crate::model::CheckStatus::Error)
            .count()
    }
}
