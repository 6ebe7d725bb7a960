//! The preflight checklist as text or Markdown.

use std::fmt::Write as _;

use mxaudit_core::CheckStatus;
use mxaudit_core::text::{escape_markdown, escape_terminal};

use crate::preflight::{Checklist, LineStatus};

/// The checklist for a terminal.
pub fn text(c: &Checklist) -> String {
    render(c, escape_terminal, false)
}

/// The checklist in Markdown.
pub fn markdown(c: &Checklist) -> String {
    render(c, escape_markdown, true)
}

fn render(c: &Checklist, esc: fn(&str) -> String, markdown: bool) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}Preflight: {} → {}{}",
        if markdown { "# " } else { "" },
        esc(&c.domain),
        esc(&c.provider),
        c.smart_host
            .as_deref()
            .map(|h| format!(" (smart host {})", esc(h)))
            .unwrap_or_default()
    );
    if markdown {
        let _ = writeln!(
            s,
            "\n| status | check | subject | connector code |\n|---|---|---|---|"
        );
        for l in &c.lines {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                l.status.label(),
                esc(&l.finding.title),
                esc(&l.finding.subject),
                esc(&l.finding.ndr.join("; "))
            );
        }
        s.push('\n');
    }
    for l in &c.lines {
        let tag = format!("{:<7}", l.status.label());
        let f = &l.finding;
        let _ = writeln!(
            s,
            "\n{}{tag}  {}",
            if markdown { "- " } else { "" },
            esc(&f.title)
        );
        let _ = writeln!(s, "         {}", esc(&f.detail));
        if l.status != LineStatus::Ok {
            for line in f.remediation.lines().filter(|l| !l.trim().is_empty()) {
                let _ = writeln!(s, "         → {}", esc(line));
            }
            if !f.ndr.is_empty() {
                let _ = writeln!(
                    s,
                    "         Otherwise senders see: {}",
                    esc(&f.ndr.join("; "))
                );
            }
        }
    }
    for check in c.checks.iter().filter(|c| c.status == CheckStatus::Error) {
        let _ = writeln!(
            s,
            "\nUNDECIDED  {}: {}",
            esc(&check.plugin),
            esc(check.detail.as_deref().unwrap_or(""))
        );
    }
    let _ = writeln!(
        s,
        "\nVerdict: {} ({} blocker(s), {} warning(s))",
        c.verdict, c.blockers, c.warnings
    );
    s
}
