//! `mxaudit dnsbl` as text: one line per (input, list).

use std::fmt::Write as _;

use mxaudit_core::Lang;
use mxaudit_core::peer::{BlocklistLine, LineStatus};
use mxaudit_core::text::escape_terminal as esc;

fn label(status: LineStatus) -> &'static str {
    match status {
        LineStatus::Listed => "LISTED",
        LineStatus::NotListed => "not listed",
        LineStatus::Refused => "REFUSED",
        LineStatus::Unusable => "UNUSABLE",
        LineStatus::Failed => "FAILED",
        LineStatus::Skipped => "skipped",
    }
}

/// One line: `INPUT  LIST (ZONE)  STATUS  CODES MEANING  "REASON"  (DETAIL)`.
pub fn line(l: &BlocklistLine, lang: Lang) -> String {
    let mut s = String::new();
    let who = if l.input == l.queried {
        l.input.clone()
    } else {
        format!("{} ({})", l.input, l.queried)
    };
    let _ = write!(s, "{who}  {} ({})  {}", l.list, l.zone, label(l.status));
    if !l.return_codes.is_empty() {
        let _ = write!(s, "  {}", l.return_codes.join(" "));
    }
    if let Some(m) = &l.meaning {
        let _ = write!(s, " {}", m.get(lang));
    }
    if let Some(r) = &l.reason {
        let _ = write!(s, "  {r:?}");
    }
    if let Some(d) = &l.detail {
        let _ = write!(s, "  ({d})");
    }
    esc(&s)
}

/// Every line.
pub fn text(lines: &[BlocklistLine], lang: Lang) -> String {
    let mut out = String::new();
    for l in lines {
        out.push_str(&line(l, lang));
        out.push('\n');
    }
    out
}
