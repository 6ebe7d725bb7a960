//! JSON report (docs/report-format.md) and JSON Lines (one finding per line).

use crate::model::Report;

/// The whole report as one pretty-printed JSON object.
pub fn render(report: &Report) -> String {
    // Serializing plain data with string keys cannot fail.
    let mut s =
        serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}

/// One finding per line, each a JSON object.
pub fn render_lines(report: &Report) -> String {
    let mut out = String::new();
    for f in &report.findings {
        if let Ok(line) = serde_json::to_string(f) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}
