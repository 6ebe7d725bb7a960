//! Report output formats, one per file. Every value that came from DNS or SMTP
//! is escaped for the format (terminal control characters, Markdown, HTML).

pub mod json;
pub mod markdown;
pub mod text;

use std::str::FromStr;

use crate::model::{CheckStatus, Finding, Report, Severity};

/// An output format of `audit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Human-readable, for terminals.
    Text,
    /// One JSON report object.
    Json,
    /// One finding per line.
    Jsonl,
    /// Markdown, for tickets and chat.
    Markdown,
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            "jsonl" => Ok(Format::Jsonl),
            "markdown" | "md" => Ok(Format::Markdown),
            other => Err(format!(
                "unknown format `{other}` (text, json, jsonl, markdown)"
            )),
        }
    }
}

/// Renders a report.
pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Text => text::render(report),
        Format::Json => json::render(report),
        Format::Jsonl => json::render_lines(report),
        Format::Markdown => markdown::render(report),
    }
}

/// Counts of findings per severity, most severe first.
pub fn severity_counts(findings: &[&Finding]) -> Vec<(Severity, usize)> {
    Severity::ALL
        .iter()
        .map(|s| (*s, findings.iter().filter(|f| f.severity == *s).count()))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// The findings and check errors of one domain.
pub(crate) fn domain_view<'a>(
    report: &'a Report,
    domain: &str,
) -> (Vec<&'a Finding>, Vec<(&'a str, &'a str)>) {
    let findings = report
        .findings
        .iter()
        .filter(|f| f.domain == domain)
        .collect();
    let errors = report
        .checks
        .iter()
        .filter(|c| c.domain == domain && c.status == CheckStatus::Error)
        .map(|c| (c.plugin.as_str(), c.detail.as_deref().unwrap_or("")))
        .collect();
    (findings, errors)
}
