//! JSON of a batch. A batch with history is the *document* (the `json` file
//! format and the body of the `generic` webhook, docs/sinks.md); a batch
//! without history is the *audit report* (docs/report-format.md): the same
//! envelope, its events' findings under `findings`. Text is raw: JSON is the
//! escaping, and a consumer escapes for its own output.

use crate::model::{CheckResult, Finding};
use crate::sink::{Batch, Event, TrendPoint};
use serde::Serialize;

use super::Summary;

/// The document format version; bumped on incompatible changes.
pub const DOCUMENT_VERSION: u32 = 1;

/// A batch with its format version and counts.
#[derive(Debug, Serialize)]
pub struct Document<'a> {
    /// [`DOCUMENT_VERSION`].
    pub version: u32,
    /// `mxaudit <version>`.
    pub generator: String,
    /// The idempotency key (`<run id>/<sink id>`).
    pub key: &'a str,
    /// The run.
    pub run_id: &'a str,
    /// The schedule that started the run, if any.
    pub schedule: Option<&'a str>,
    /// RFC 3339.
    pub started_at: &'a str,
    /// RFC 3339.
    pub finished_at: &'a str,
    /// The audited domains.
    pub domains: &'a [String],
    /// Events per change.
    pub summary: Summary,
    /// Findings with their change.
    pub events: &'a [Event],
    /// One status per (domain, plugin).
    pub checks: &'a [CheckResult],
    /// Recent runs, oldest first.
    pub trend: &'a [TrendPoint],
}

/// The audit report format version (docs/report-format.md).
pub const REPORT_VERSION: u32 = 1;

/// A batch without history: the report of an audit.
#[derive(Debug, Serialize)]
pub struct AuditReport<'a> {
    /// [`REPORT_VERSION`].
    pub version: u32,
    /// `mxaudit <version>`.
    pub generator: String,
    /// RFC 3339.
    pub started_at: &'a str,
    /// RFC 3339.
    pub finished_at: &'a str,
    /// The audited domains, in the order given.
    pub domains: &'a [String],
    /// Findings, by domain then most severe first.
    pub findings: Vec<&'a Finding>,
    /// One line per (domain, plugin).
    pub checks: &'a [CheckResult],
}

/// The audit report of a batch (its events' findings under `findings`).
pub fn audit_report(batch: &Batch) -> AuditReport<'_> {
    AuditReport {
        version: REPORT_VERSION,
        generator: generator(),
        started_at: &batch.started_at,
        finished_at: &batch.finished_at,
        domains: &batch.domains,
        findings: batch.events.iter().map(|e| &e.finding).collect(),
        checks: &batch.checks,
    }
}

/// The batch as JSON, pretty-printed with a final newline: the document of a
/// run's batch, the report of an audit.
pub fn render(batch: &Batch) -> String {
    let encoded = if batch.history {
        pretty(batch)
    } else {
        serde_json::to_string_pretty(&audit_report(batch)).map(|mut s| {
            s.push('\n');
            s
        })
    };
    // Plain data with string keys always serializes; say so if it ever did not.
    encoded.unwrap_or_else(|e| format!("{{\"error\":\"cannot encode the report: {e}\"}}\n"))
}

fn generator() -> String {
    format!("mxaudit {}", env!("CARGO_PKG_VERSION"))
}

/// The document of a batch.
pub fn document(batch: &Batch) -> Document<'_> {
    Document {
        version: DOCUMENT_VERSION,
        generator: generator(),
        key: &batch.key,
        run_id: &batch.run_id,
        schedule: batch.schedule.as_deref(),
        started_at: &batch.started_at,
        finished_at: &batch.finished_at,
        domains: &batch.domains,
        summary: Summary::of(batch),
        events: &batch.events,
        checks: &batch.checks,
        trend: &batch.trend,
    }
}

/// Pretty-printed, with a final newline (files).
pub fn pretty(batch: &Batch) -> Result<String, serde_json::Error> {
    let mut s = serde_json::to_string_pretty(&document(batch))?;
    s.push('\n');
    Ok(s)
}

/// Compact bytes (request bodies).
pub fn compact(batch: &Batch) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&document(batch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_round_trips_the_events() {
        let b = super::super::fixtures::batch();
        let v: serde_json::Value =
            serde_json::from_slice(&compact(&b).expect("json")).expect("parses");
        assert_eq!(v["version"], 1);
        assert_eq!(v["key"], "run-7/alerts");
        assert_eq!(v["summary"]["new"], 1);
        let events: Vec<Event> = serde_json::from_value(v["events"].clone()).expect("events");
        assert_eq!(events, b.events);
    }
}
