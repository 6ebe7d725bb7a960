//! Output formats of a [`Batch`] — the report of an audit (a batch without
//! history) and what a sink receives for a run — one per file (style rule 3),
//! the only renderers of findings in the project. Every value that came from
//! DNS or SMTP (subjects, evidence, and titles or details that quote them) is
//! escaped for its format: terminal control characters, HTML entities,
//! Markdown backslashes, Slack entities and zero-width breaks, inert Teams text
//! runs. JSON formats carry the raw text; JSON itself is the escaping, and
//! consumers must escape for their own output.

#[doc(hidden)]
pub mod fixtures;
pub mod html;
pub mod json;
pub mod jsonl;
pub mod markdown;
pub mod slack;
pub mod teams;
pub mod text;

use std::str::FromStr;

use crate::model::{CheckResult, CheckStatus, Finding, Severity};
use crate::sink::{Batch, Change, Event};

/// An output format of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Human-readable, for terminals.
    Text,
    /// One JSON document.
    Json,
    /// One finding (or event) per line.
    Jsonl,
    /// Markdown, for tickets and chat.
    Markdown,
    /// One self-contained HTML page.
    Html,
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            "jsonl" => Ok(Format::Jsonl),
            "markdown" | "md" => Ok(Format::Markdown),
            "html" => Ok(Format::Html),
            other => Err(format!(
                "unknown format `{other}` (text, json, jsonl, markdown, html)"
            )),
        }
    }
}

/// Renders a batch in `format`.
pub fn render(batch: &Batch, format: Format) -> String {
    match format {
        Format::Text => text::render(batch),
        Format::Json => json::render(batch),
        Format::Jsonl => jsonl::render(batch),
        Format::Markdown => markdown::render(batch),
        Format::Html => html::render(batch),
    }
}

/// Counts of findings per severity, most severe first, without zeros.
pub fn severity_counts<'a>(
    findings: impl IntoIterator<Item = &'a Finding>,
) -> Vec<(Severity, usize)> {
    let mut counts = [0usize; 5];
    for f in findings {
        if let Some(i) = Severity::ALL.iter().position(|s| *s == f.severity) {
            counts[i] += 1;
        }
    }
    Severity::ALL
        .iter()
        .zip(counts)
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| (*s, n))
        .collect()
}

/// How many events of each change a batch holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Summary {
    /// New findings.
    pub new: usize,
    /// Findings seen before and now.
    pub ongoing: usize,
    /// Findings gone since the previous run.
    pub resolved: usize,
}

impl Summary {
    /// Counts the events of a batch.
    pub fn of(batch: &Batch) -> Summary {
        let count = |c: Change| batch.events.iter().filter(|e| e.change == Some(c)).count();
        Summary {
            new: count(Change::New),
            ongoing: count(Change::Ongoing),
            resolved: count(Change::Resolved),
        }
    }

    /// One line: `2 new, 1 resolved` (ongoing only when there are some).
    pub fn line(&self) -> String {
        let mut parts = vec![
            format!("{} new", self.new),
            format!("{} resolved", self.resolved),
        ];
        if self.ongoing > 0 {
            parts.push(format!("{} ongoing", self.ongoing));
        }
        parts.join(", ")
    }
}

/// The badge word of a change; empty without history.
pub fn change_label(change: Option<Change>) -> &'static str {
    match change {
        Some(Change::New) => "new",
        Some(Change::Ongoing) => "ongoing",
        Some(Change::Resolved) => "resolved",
        None => "",
    }
}

/// New first (act on it), then resolved (good news), then ongoing (known).
fn change_rank(change: Option<Change>) -> u8 {
    match change {
        Some(Change::New) | None => 0,
        Some(Change::Resolved) => 1,
        Some(Change::Ongoing) => 2,
    }
}

/// Events in reading order: by change (new, resolved, ongoing), most severe
/// first, then by domain, code and subject, so output is stable.
pub fn ordered<'a>(events: impl IntoIterator<Item = &'a Event>) -> Vec<&'a Event> {
    let mut v: Vec<&Event> = events.into_iter().collect();
    v.sort_by(|a, b| {
        change_rank(a.change)
            .cmp(&change_rank(b.change))
            .then(b.finding.severity.cmp(&a.finding.severity))
            .then_with(|| a.finding.domain.cmp(&b.finding.domain))
            .then_with(|| a.finding.code.cmp(&b.finding.code))
            .then_with(|| a.finding.subject.cmp(&b.finding.subject))
    });
    v
}

/// The events of one domain, in reading order.
pub fn domain_events<'a>(batch: &'a Batch, domain: &str) -> Vec<&'a Event> {
    ordered(batch.events.iter().filter(|e| e.finding.domain == domain))
}

/// The domains of a batch: those audited, then any that only events name.
pub fn domains(batch: &Batch) -> Vec<&str> {
    let mut v: Vec<&str> = batch.domains.iter().map(String::as_str).collect();
    for e in &batch.events {
        if !v.contains(&e.finding.domain.as_str()) {
            v.push(&e.finding.domain);
        }
    }
    v
}

/// Checks of a domain that could not decide (their findings may be missing).
pub fn check_errors<'a>(batch: &'a Batch, domain: &str) -> Vec<&'a CheckResult> {
    batch
        .checks
        .iter()
        .filter(|c| c.domain == domain && c.status == CheckStatus::Error)
        .collect()
}

/// Counts per severity of the findings present now (new and ongoing), most
/// severe first: `[critical, high, medium, low, info]`.
pub fn open_counts<'a>(events: impl IntoIterator<Item = &'a Event>) -> [usize; 5] {
    let mut counts = [0; 5];
    for e in events {
        if e.change != Some(Change::Resolved)
            && let Some(i) = Severity::ALL.iter().position(|s| *s == e.finding.severity)
        {
            counts[i] += 1;
        }
    }
    counts
}

/// The most severe finding present now, if any.
pub fn worst(batch: &Batch) -> Option<Severity> {
    batch.worst()
}

/// `YYYY-MM-DD` of an RFC 3339 time, in UTC; when it does not parse, the
/// digits and dashes of its first ten characters (safe in any format and path).
pub fn date_of(rfc3339: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(rfc3339) {
        Ok(t) => t.with_timezone(&chrono::Utc).format("%Y-%m-%d").to_string(),
        Err(_) => rfc3339
            .chars()
            .take(10)
            .filter(|c| c.is_ascii_digit() || *c == '-')
            .collect(),
    }
}

/// "domain" or "domain subject" when the subject is something else (a host,
/// an address): what a finding is about, in one phrase.
pub fn about(f: &Finding) -> String {
    if f.subject == f.domain || f.subject.is_empty() {
        f.domain.clone()
    } else {
        format!("{} {}", f.domain, f.subject)
    }
}

/// Cuts `s` to at most `max` characters, marking the cut with `…`.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_summary_and_counts() {
        let b = fixtures::batch();
        let order: Vec<&str> = ordered(&b.events)
            .iter()
            .map(|e| e.finding.code.as_str())
            .collect();
        assert_eq!(order, ["spf.hostile", "dnsbl.listed", "mx.ttl_high"]);
        assert_eq!(Summary::of(&b).line(), "1 new, 1 resolved, 1 ongoing");
        assert_eq!(open_counts(&b.events), [0, 1, 0, 1, 0]);
        assert_eq!(worst(&b), Some(Severity::High));
        assert_eq!(date_of("2026-11-24T23:30:00-02:00"), "2026-11-25");
        assert_eq!(truncate("abcdef", 4), "abc…");
    }
}
