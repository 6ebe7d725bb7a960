//! A batch with a hostile finding, for the format tests of this crate and
//! of the sinks.

use crate::model::{CheckResult, CheckStatus, Finding, Severity};
use crate::sink::{Batch, Change, Event, TrendPoint};

/// Text a DNS record or SMTP reply could carry to attack each format.
pub const HOSTILE: &str = "<!channel> <@U123> @here <!subteam^S1> <http://evil|click> [x](http://evil) \u{1b}[31mred</script><script>alert(1)</script> *bold* _it_ ~s~ `c` & \u{202e}";

/// A finding with every field set.
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

/// A history batch: an ongoing, a new hostile and a resolved finding, an undecided check, a trend.
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
        history: true,
        key: "run-7/alerts".into(),
        run_id: "run-7".into(),
        schedule: Some("nightly".into()),
        started_at: "2026-11-24T10:00:00Z".into(),
        finished_at: "2026-11-24T10:00:05Z".into(),
        domains: vec!["example.com".into(), "example.org".into()],
        events: vec![
            Event {
                change: Some(Change::Ongoing),
                finding: finding("mx.ttl_high", Severity::Low, "example.com"),
            },
            Event {
                change: Some(Change::New),
                finding: hostile,
            },
            Event {
                change: Some(Change::Resolved),
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
