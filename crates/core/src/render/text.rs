//! Text of a batch, for terminals and the text part of the email sink. An
//! audit (no history) reads per domain with its counts and a closing total; a
//! run's batch leads with its changes and marks each finding NEW, RESOLVED or
//! ONGOING, then shows the trend. Control characters from DNS or SMTP are shown
//! escaped, never interpreted by a terminal or mail reader.

use std::fmt::Write;

use crate::model::Finding;
use crate::sink::Batch;
use crate::text::escape_terminal as esc;

use super::{
    Summary, change_label, check_errors, date_of, domain_events, domains, severity_counts,
};

/// Renders a batch as plain text.
pub fn render(batch: &Batch) -> String {
    let mut out = String::new();
    if batch.history {
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
    }
    for domain in domains(batch) {
        let events = domain_events(batch, domain);
        let errors = check_errors(batch, domain);
        if batch.history {
            let _ = writeln!(out, "\n== {}", esc(domain));
            if events.is_empty() && errors.is_empty() {
                let _ = writeln!(out, "No changes.");
            }
        } else {
            let counts: Vec<String> = severity_counts(events.iter().map(|e| &e.finding))
                .iter()
                .map(|(s, n)| format!("{n} {s}"))
                .collect();
            let _ = writeln!(
                out,
                "== {} — {}",
                esc(domain),
                if counts.is_empty() {
                    "no findings".to_owned()
                } else {
                    counts.join(", ")
                }
            );
        }
        for e in events {
            let f = &e.finding;
            let change = change_label(e.change).to_uppercase();
            let _ = writeln!(
                out,
                "\n{}[{}] {}  {}",
                if change.is_empty() {
                    String::new()
                } else {
                    format!("[{change}] ")
                },
                f.severity.as_str().to_uppercase(),
                esc(&f.code),
                esc(&f.subject)
            );
            finding_body(&mut out, f);
        }
        for c in errors {
            let _ = writeln!(
                out,
                "\n[ERROR] check {} could not decide: {}",
                esc(&c.plugin),
                esc(c.detail.as_deref().unwrap_or(""))
            );
        }
        if !batch.history {
            out.push('\n');
        }
    }
    if batch.history {
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
    } else {
        let _ = writeln!(
            out,
            "{} domain(s), {} finding(s), {} check(s) with errors.",
            batch.domains.len(),
            batch.events.len(),
            batch.undecided()
        );
    }
    out
}

/// The body of one finding (title, detail, evidence, what senders see,
/// remediation, references), indented under its heading line.
pub fn finding_body(out: &mut String, f: &Finding) {
    let _ = writeln!(out, "  {}", esc(&f.title));
    if !f.detail.is_empty() {
        let _ = writeln!(out, "  {}", esc(&f.detail));
    }
    if !f.evidence.is_empty() {
        let _ = writeln!(out, "  Evidence:");
        for e in &f.evidence {
            let _ = writeln!(out, "    {}", esc(e));
        }
    }
    if !f.ndr.is_empty() {
        let _ = writeln!(out, "  Senders see: {}", esc(&f.ndr.join("; ")));
    }
    if !f.remediation.is_empty() {
        let _ = writeln!(out, "  Remediation:");
        for line in f.remediation.lines() {
            let _ = writeln!(out, "    {}", esc(line));
        }
    }
    if !f.references.is_empty() {
        let _ = writeln!(out, "  References: {}", esc(&f.references.join(", ")));
    }
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
