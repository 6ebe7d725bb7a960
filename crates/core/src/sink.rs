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
    /// New, ongoing or resolved.
    pub change: Change,
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

/// What one sink receives for one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
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
            .filter(|e| self.only == Only::All || e.change != Change::Ongoing)
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
