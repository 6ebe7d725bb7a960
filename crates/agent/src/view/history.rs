//! `mxaudit history DOMAIN` as text: the runs that covered it, and when each
//! finding appeared and was resolved.

use std::fmt::Write as _;

use mxaudit_core::text::escape_terminal as esc;
use mxaudit_store::History;

/// The history for a terminal.
pub fn text(h: &History) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "History of {} ({} run(s) shown)",
        esc(&h.domain),
        h.runs.len()
    );
    for r in &h.runs {
        let _ = writeln!(
            s,
            "  {}  {:<10} {}{}",
            r.started_at,
            r.status,
            r.id,
            r.schedule
                .as_deref()
                .map(|x| format!("  schedule {}", esc(x)))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(s, "Findings:");
    if h.findings.is_empty() {
        let _ = writeln!(s, "  none recorded");
    }
    for f in &h.findings {
        let _ = writeln!(
            s,
            "  [{}] {} {}  first seen {}, {}",
            f.finding.severity,
            f.finding.code,
            esc(&f.finding.subject),
            f.first_seen,
            match &f.resolved_at {
                Some(at) => format!("resolved {at}"),
                None => format!("open (last seen {})", f.last_seen),
            }
        );
    }
    s
}
