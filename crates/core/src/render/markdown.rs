//! Markdown report: every value from DNS or SMTP is escaped so that a record
//! cannot inject links, HTML or mentions.

use std::fmt::Write;

use super::{domain_view, severity_counts};
use crate::model::Report;
use crate::text::escape_markdown as esc;

/// Renders the report as Markdown.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# mxaudit report\n");
    let _ = writeln!(
        out,
        "Started {}, finished {}.\n",
        esc(&report.started_at),
        esc(&report.finished_at)
    );
    let _ = writeln!(out, "| domain | findings |\n|---|---|");
    for domain in &report.domains {
        let (findings, _) = domain_view(report, domain);
        let counts: Vec<String> = severity_counts(&findings)
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
    for domain in &report.domains {
        let (findings, errors) = domain_view(report, domain);
        let _ = writeln!(out, "\n## {}\n", esc(domain));
        if findings.is_empty() && errors.is_empty() {
            let _ = writeln!(out, "No findings.");
        }
        for f in &findings {
            let _ = writeln!(
                out,
                "### {} `{}` {}\n",
                f.severity.as_str().to_uppercase(),
                f.code,
                esc(&f.subject)
            );
            finding_body(&mut out, f);
        }
        for (plugin, why) in errors {
            let _ = writeln!(out, "- **Error** in check `{}`: {}", esc(plugin), esc(why));
        }
    }
    out
}

/// The body of one finding in Markdown (title, detail, evidence, what senders
/// see, remediation, references), every value escaped. Shared with the sinks'
/// Markdown renderer.
pub fn finding_body(out: &mut String, f: &crate::model::Finding) {
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
