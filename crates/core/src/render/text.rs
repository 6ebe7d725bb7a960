//! Text for terminals: findings grouped by domain, most severe first, with
//! evidence and remediation. Control characters from DNS or SMTP are shown
//! escaped, never interpreted.

use std::fmt::Write;

use super::{domain_view, severity_counts};
use crate::model::Report;
use crate::text::escape_terminal as esc;

/// Renders the report for a terminal.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    for domain in &report.domains {
        let (findings, errors) = domain_view(report, domain);
        let counts: Vec<String> = severity_counts(&findings)
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
        for f in &findings {
            let _ = writeln!(
                out,
                "\n[{}] {}  {}",
                f.severity.as_str().to_uppercase(),
                f.code,
                esc(&f.subject)
            );
            finding_body(&mut out, f);
        }
        for (plugin, why) in &errors {
            let _ = writeln!(
                out,
                "\n[ERROR] check {plugin} could not decide: {}",
                esc(why)
            );
        }
        out.push('\n');
    }
    let total = report.findings.len();
    let errors = report
        .checks
        .iter()
        .filter(|c| c.status == crate::model::CheckStatus::Error)
        .count();
    let _ = writeln!(
        out,
        "{} domain(s), {} finding(s), {} check(s) with errors.",
        report.domains.len(),
        total,
        errors
    );
    out
}

/// The body of one finding for a terminal (title, detail, evidence, what
/// senders see, remediation, references), indented under its heading line.
/// Shared with the sinks' text renderer.
pub fn finding_body(out: &mut String, f: &crate::model::Finding) {
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
