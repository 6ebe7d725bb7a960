//! Markdown of a batch (audit reports, files, tickets): a summary table per
//! domain, then findings with their change (NEW, RESOLVED, ONGOING; none in an
//! audit), evidence and remediation, then the trend. Every value from DNS or
//! SMTP goes through `escape_markdown`, so a record cannot inject links, HTML
//! or mentions.

use std::fmt::Write;

use crate::model::{Finding, Severity};
use crate::sink::{Batch, Change};
use crate::text::escape_markdown as esc;

use super::{
    Summary, change_label, check_errors, date_of, domain_events, domains, open_counts,
    severity_counts,
};

/// Renders a batch as Markdown.
pub fn render(batch: &Batch) -> String {
    let mut out = String::new();
    if batch.history {
        let _ = writeln!(out, "# mxaudit: {}\n", Summary::of(batch).line());
        let _ = write!(out, "Run `{}`", esc(&batch.run_id));
        if let Some(s) = &batch.schedule {
            let _ = write!(out, " (schedule {})", esc(s));
        }
        let _ = writeln!(
            out,
            ", started {}, finished {}.\n",
            esc(&batch.started_at),
            esc(&batch.finished_at)
        );
        let _ = writeln!(
            out,
            "| domain | new | resolved | open findings |\n|---|---|---|---|"
        );
    } else {
        let _ = writeln!(out, "# mxaudit report\n");
        let _ = writeln!(
            out,
            "Started {}, finished {}.\n",
            esc(&batch.started_at),
            esc(&batch.finished_at)
        );
        let _ = writeln!(out, "| domain | findings |\n|---|---|");
    }
    for domain in domains(batch) {
        let events = domain_events(batch, domain);
        if batch.history {
            let count = |c| events.iter().filter(|e| e.change == Some(c)).count();
            let open: Vec<String> = open_counts(events.iter().copied())
                .iter()
                .zip(Severity::ALL)
                .filter(|(n, _)| **n > 0)
                .map(|(n, s)| format!("{n} {s}"))
                .collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                esc(domain),
                count(Change::New),
                count(Change::Resolved),
                if open.is_empty() {
                    "none".to_owned()
                } else {
                    open.join(", ")
                }
            );
        } else {
            let counts: Vec<String> = severity_counts(events.iter().map(|e| &e.finding))
                .iter()
                .map(|(s, n)| format!("{n} {s}"))
                .collect();
            let _ = writeln!(
                out,
                "| {} | {} |",
                esc(domain),
                if counts.is_empty() {
                    "none".into()
                } else {
                    counts.join(", ")
                }
            );
        }
    }

    for domain in domains(batch) {
        let events = domain_events(batch, domain);
        let errors = check_errors(batch, domain);
        let _ = writeln!(out, "\n## {}\n", esc(domain));
        if events.is_empty() && errors.is_empty() {
            let _ = writeln!(
                out,
                "{}",
                if batch.history {
                    "No changes."
                } else {
                    "No findings."
                }
            );
        }
        for e in events {
            let f = &e.finding;
            let code = f.code.replace('`', "'");
            if batch.history {
                let _ = writeln!(
                    out,
                    "### {} · {} · `{code}` {}\n",
                    change_label(e.change).to_uppercase(),
                    f.severity.as_str().to_uppercase(),
                    esc(&f.subject)
                );
            } else {
                let _ = writeln!(
                    out,
                    "### {} `{code}` {}\n",
                    f.severity.as_str().to_uppercase(),
                    esc(&f.subject)
                );
            }
            finding_body(&mut out, f);
        }
        for c in errors {
            let _ = writeln!(
                out,
                "- **Error** in check `{}`: {}",
                c.plugin.replace('`', "'"),
                esc(c.detail.as_deref().unwrap_or("could not decide"))
            );
        }
    }

    if !batch.trend.is_empty() {
        let _ = writeln!(
            out,
            "\n## Trend\n\n| run | date | critical | high | medium | low | info |\n|---|---|---|---|---|---|---|"
        );
        for p in &batch.trend {
            let c = p.counts;
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                esc(&p.run_id),
                date_of(&p.started_at),
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

/// The body of one finding in Markdown (title, detail, evidence, what senders
/// see, remediation, references), every value escaped.
pub fn finding_body(out: &mut String, f: &Finding) {
    let _ = writeln!(out, "**{}**\n", esc(&f.title));
    if !f.detail.is_empty() {
        let _ = writeln!(out, "{}\n", esc(&f.detail));
    }
    if !f.evidence.is_empty() {
        let _ = writeln!(out, "Evidence:\n");
        for e in &f.evidence {
            let _ = writeln!(out, "- {}", esc(e));
        }
        out.push('\n');
    }
    if !f.ndr.is_empty() {
        let _ = writeln!(out, "Senders see: {}\n", esc(&f.ndr.join("; ")));
    }
    if !f.remediation.is_empty() {
        let _ = writeln!(out, "Remediation:\n");
        for line in f.remediation.lines().filter(|l| !l.trim().is_empty()) {
            let _ = writeln!(out, "> {}", esc(line));
        }
        out.push('\n');
    }
    if !f.references.is_empty() {
        let _ = writeln!(out, "References: {}\n", esc(&f.references.join(", ")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::fixtures::{HOSTILE, batch};

    #[test]
    fn changes_marked_and_hostile_text_inert() {
        let md = render(&batch());
        assert!(md.contains("### NEW · HIGH · `spf.hostile`"), "{md}");
        assert!(
            md.contains("### RESOLVED · CRITICAL · `dnsbl.listed`"),
            "{md}"
        );
        assert!(!md.contains(HOSTILE));
        for bad in ["<!channel>", "](http", "\u{1b}", "\u{202e}"] {
            assert!(!md.contains(bad), "{bad} in {md}");
        }
        // Every `<`, `[` and `@` from data is backslash-escaped: literal text in CommonMark.
        for (i, c) in md
            .char_indices()
            .filter(|(_, c)| matches!(c, '<' | '[' | '@'))
        {
            assert!(
                md[..i].ends_with('\\'),
                "unescaped {c} at {i}: {}",
                &md[i.saturating_sub(20)..]
            );
        }
        assert!(
            md.contains("| run\\-6 | 2026-11-23 | 1 | 0 | 0 | 1 | 0 |"),
            "{md}"
        );
        assert!(md.contains("DNS timeout"));
    }
}
