//! Plain text of a batch: the text part of the email sink. Control characters
//! from DNS or SMTP are shown escaped, never interpreted by a terminal or mail
//! reader.

use std::fmt::Write;

use mxaudit_core::sink::Batch;
use mxaudit_core::text::escape_terminal as esc;

use super::{Summary, change_label, check_errors, date_of, domain_events, domains};

/// Renders a batch as plain text.
pub fn render(batch: &Batch) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "mxaudit: {}", Summary::of(batch).line());
    let _ = write!(out, "Run {}", esc(&batch.run_id));
    if let Some(s) = &batch.schedule {
        let _ = write!(out, " (schedule {})", esc(s));
    }
    let _ = writeln!(
        out,
        ", started {}, finished {}.",
        esc(&batch.started_at),
        esc(&batch.finished_at)
    );
    for domain in domains(batch) {
        let events = domain_events(batch, domain);
        let errors = check_errors(batch, domain);
        let _ = writeln!(out, "\n== {}", esc(domain));
        if events.is_empty() && errors.is_empty() {
            let _ = writeln!(out, "No changes.");
        }
        for e in events {
            let f = &e.finding;
            let _ = writeln!(
                out,
                "\n[{}] [{}] {}  {}",
                change_label(e.change).to_uppercase(),
                f.severity.as_str().to_uppercase(),
                esc(&f.code),
                esc(&f.subject)
            );
            mxaudit_core::render::text::finding_body(&mut out, f);
        }
        for c in errors {
            let _ = writeln!(
                out,
                "\n[ERROR] check {} could not decide: {}",
                esc(&c.plugin),
                esc(c.detail.as_deref().unwrap_or(""))
            );
        }
    }
    if !batch.trend.is_empty() {
        let _ = writeln!(out, "\nTrend (critical/high/medium/low/info):");
        for p in &batch.trend {
            let c = p.counts;
            let _ = writeln!(
                out,
                "  {} {}  {}/{}/{}/{}/{}",
                date_of(&p.started_at),
                esc(&p.run_id),
                c[0],
                c[1],
                c[2],
                c[3],
                c[4]
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::fixtures::batch;

    #[test]
    fn no_control_characters_reach_the_reader() {
        let t = render(&batch());
        assert!(t.contains("[NEW] [HIGH] spf.hostile"), "{t}");
        assert!(t.contains("[RESOLVED] [CRITICAL] dnsbl.listed"), "{t}");
        assert!(!t.contains('\u{1b}') && !t.contains('\u{202e}'));
        assert!(t.contains("2026-11-23 run-6  1/0/0/1/0"), "{t}");
    }
}
