//! Output formats of a [`Batch`], one per file (style rule 3). Every value that
//! came from DNS or SMTP (subjects, evidence, and titles or details that quote
//! them) is escaped for its format: HTML entities, Markdown backslashes, Slack
//! entities and zero-width breaks, inert Teams text runs. JSON formats carry the
//! raw text; JSON itself is the escaping, and consumers must escape for their
//! own output.

pub mod html;
pub mod json;
pub mod jsonl;
pub mod markdown;
pub mod slack;
pub mod teams;
pub mod text;

use mxaudit_core::model::{CheckResult, CheckStatus, Finding, Severity};
use mxaudit_core::sink::{Batch, Change, Event};

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
        let count = |c: Change| batch.events.iter().filter(|e| e.change == c).count();
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

/// The badge word of a change.
pub fn change_label(change: Change) -> &'static str {
    match change {
        Change::New => "new",
        Change::Ongoing => "ongoing",
        Change::Resolved => "resolved",
    }
}

/// New first (act on it), then resolved (good news), then ongoing (known).
fn change_rank(change: Change) -> u8 {
    match change {
        Change::New => 0,
        Change::Resolved => 1,
        Change::Ongoing => 2,
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
        if e.change != Change::Resolved
            && let Some(i) = Severity::ALL.iter().position(|s| *s == e.finding.severity)
        {
            counts[i] += 1;
        }
    }
    counts
}

/// The most severe finding present now, if any.
pub fn worst(batch: &Batch) -> Option<Severity> {
    batch
        .events
        .iter()
        .filter(|e| e.change != Change::Resolved)
        .map(|e| e.finding.severity)
        .max()
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
pub(crate) mod fixtures {
    //! A batch with a hostile finding, for the format tests.

    use mxaudit_core::model::{CheckResult, CheckStatus, Finding, Severity};
    use mxaudit_core::sink::{Batch, Change, Event, TrendPoint};

    /// Text a DNS record or SMTP reply could carry to attack each format.
    pub const HOSTILE: &str = "<!channel> <@U123> @here <!subteam^S1> <http://evil|click> [x](http://evil) \u{1b}[31mred</script><script>alert(1)</script> *bold* _it_ ~s~ `c` & \u{202e}";

    pub fn finding(code: &str, severity: Severity, subject: &str) -> Finding {
        Finding {
            code: code.into(),
            severity,
            domain: "example.com".into(),
            subject: subject.into(),
            title: format!("Title of {code}"),
            detail: format!("Detail of {code}"),
            evidence: vec![format!("evidence of {code}")],
            remediation: "Fix it.\nThen check again.".into(),
            references: vec!["RFC 7208".into(), "https://example.org/kb".into()],
            ndr: vec!["550 5.7.1".into()],
            plugin: "mx".into(),
            fingerprint: format!("fp-{code}"),
        }
    }

    pub fn batch() -> Batch {
        let mut hostile = finding("spf.hostile", Severity::High, HOSTILE);
        hostile.title = format!("SPF record {HOSTILE}");
        hostile.detail = HOSTILE.into();
        hostile.evidence = vec![
            HOSTILE.into(),
            "v=spf1 include:_spf.example.net ~all".into(),
        ];
        hostile.remediation = HOSTILE.into();
        Batch {
            key: "run-7/alerts".into(),
            run_id: "run-7".into(),
            schedule: Some("nightly".into()),
            started_at: "2026-11-24T10:00:00Z".into(),
            finished_at: "2026-11-24T10:00:05Z".into(),
            domains: vec!["example.com".into(), "example.org".into()],
            events: vec![
                Event {
                    change: Change::Ongoing,
                    finding: finding("mx.ttl_high", Severity::Low, "example.com"),
                },
                Event {
                    change: Change::New,
                    finding: hostile,
                },
                Event {
                    change: Change::Resolved,
                    finding: finding("dnsbl.listed", Severity::Critical, "198.51.100.25"),
                },
            ],
            checks: vec![CheckResult {
                domain: "example.org".into(),
                plugin: "dmarc".into(),
                status: CheckStatus::Error,
                detail: Some("DNS timeout".into()),
                duration_ms: 3000,
            }],
            trend: vec![
                TrendPoint {
                    run_id: "run-5".into(),
                    started_at: "2026-11-22T10:00:00Z".into(),
                    counts: [1, 2, 0, 1, 0],
                },
                TrendPoint {
                    run_id: "run-6".into(),
                    started_at: "2026-11-23T10:00:00Z".into(),
                    counts: [1, 0, 0, 1, 0],
                },
                TrendPoint {
                    run_id: "run-7".into(),
                    started_at: "2026-11-24T10:00:00Z".into(),
                    counts: [0, 1, 0, 1, 0],
                },
            ],
        }
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
