//! `mxaudit run` as text or JSON: the run's changes.

use std::fmt::Write as _;

use serde::Serialize;

use mxaudit_core::Severity;
use mxaudit_core::sink::{Change, Event};
use mxaudit_core::text::escape_terminal as esc;
use mxaudit_sinks::DeliveryReport;

use crate::run::RunOutcome;

/// What a run did, as `run --format json` prints it.
#[derive(Debug, Serialize)]
pub struct RunSummary<'a> {
    /// Run id.
    pub run_id: &'a str,
    /// Schedule, if any.
    pub schedule: Option<&'a str>,
    /// RFC 3339.
    pub started_at: &'a str,
    /// RFC 3339.
    pub finished_at: &'a str,
    /// The domains.
    pub domains: &'a [String],
    /// Every event.
    pub events: &'a [Event],
    /// Checks that could not decide.
    pub errors: usize,
    /// DNS questions sent.
    pub dns_queries: u64,
    /// Worst current severity.
    pub worst: Option<Severity>,
    /// One report per sink.
    pub deliveries: &'a [DeliveryReport],
}

/// The summary of a run.
pub fn summary(o: &RunOutcome) -> RunSummary<'_> {
    let b = &o.batch;
    RunSummary {
        run_id: &b.run_id,
        schedule: b.schedule.as_deref(),
        started_at: &b.started_at,
        finished_at: &b.finished_at,
        domains: &b.domains,
        events: &b.events,
        errors: b.undecided(),
        dns_queries: o.dns_queries,
        worst: b.worst(),
        deliveries: &o.deliveries,
    }
}

/// The run for a terminal: counts, then each new and resolved finding.
pub fn text(o: &RunOutcome) -> String {
    let b = &o.batch;
    let count = |c: Change| b.events.iter().filter(|e| e.change == Some(c)).count();
    let mut out = format!(
        "Run {}: {} domain(s), {} new, {} ongoing, {} resolved, {} check(s) undecided.\n",
        b.run_id,
        b.domains.len(),
        count(Change::New),
        count(Change::Ongoing),
        count(Change::Resolved),
        b.undecided()
    );
    for e in b
        .events
        .iter()
        .filter(|e| e.change != Some(Change::Ongoing))
    {
        let f = &e.finding;
        let _ = writeln!(
            out,
            "  {:<8} [{}] {} {} {}",
            match e.change {
                Some(Change::New) => "NEW",
                Some(Change::Resolved) => "RESOLVED",
                Some(Change::Ongoing) | None => "ONGOING",
            },
            f.severity,
            esc(&f.domain),
            f.code,
            esc(&f.subject)
        );
    }
    out
}
