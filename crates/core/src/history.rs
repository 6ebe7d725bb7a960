//! The run history a pipeline consults and records: which findings are new,
//! ongoing or resolved against the previous complete run of the same domains.
//! The SQL store (`crates/store`, SQLite or PostgreSQL) implements it; an audit
//! runs without one.

use crate::model::{CheckResult, Finding};
use crate::sink::{Event, TrendPoint};

/// A run's identity, as recorded when it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMeta {
    /// Unique id, sortable by time.
    pub id: String,
    /// RFC 3339.
    pub started_at: String,
    /// The schedule that started it.
    pub schedule: Option<String>,
    /// The domains it covers.
    pub domains: Vec<String>,
}

/// Why the history could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HistoryError(pub String);

/// Where runs and their findings are kept between runs.
#[async_trait::async_trait]
pub trait RunHistory: Send + Sync {
    /// Marks runs left `running` by a process that died as incomplete; their
    /// findings are then never the base of a comparison. Returns how many.
    async fn mark_abandoned_runs(&self) -> Result<u64, HistoryError>;
    /// Records that a run started.
    async fn begin_run(&self, run: &RunMeta) -> Result<(), HistoryError>;
    /// This run's findings against the previous complete run of the same
    /// domains: new, ongoing, resolved. A previous finding whose check could
    /// not decide this time is ongoing, never resolved.
    async fn diff(
        &self,
        domains: &[String],
        findings: &[Finding],
        checks: &[CheckResult],
    ) -> Result<Vec<Event>, HistoryError>;
    /// Counts per severity of the last `n` complete runs of these domains, oldest first.
    async fn trend(&self, domains: &[String], n: usize) -> Result<Vec<TrendPoint>, HistoryError>;
    /// Records the findings and check statuses and marks the run finished
    /// (`complete`) or incomplete.
    async fn finish_run(
        &self,
        run_id: &str,
        finished_at: &str,
        events: &[Event],
        checks: &[CheckResult],
        complete: bool,
    ) -> Result<(), HistoryError>;
}
