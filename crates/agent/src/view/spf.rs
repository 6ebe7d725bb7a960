//! `mxaudit spf` as text: the check_host() result, the trace and the record tree.

use std::fmt::Write as _;

use mxaudit_checks::spf::{Identity, SpfEvaluation, trace_lines};
use mxaudit_core::text::escape_terminal;

/// The evaluation for a terminal: result, explanation, counts, the trace and
/// the record tree; control characters in DNS text are escaped.
pub fn text(evaluation: &SpfEvaluation) -> String {
    let mut s = String::new();
    let identity = match evaluation.identity {
        Identity::MailFrom => format!("MAIL FROM {}", evaluation.sender),
        Identity::Helo => format!("HELO {} (empty MAIL FROM)", evaluation.helo),
    };
    let address = if evaluation.ip_given {
        evaluation.ip.to_string()
    } else {
        format!("{} (no --ip: an address no record lists)", evaluation.ip)
    };
    let _ = writeln!(s, "SPF {} for {address}, {identity}", evaluation.domain);
    let _ = writeln!(s, "result: {}", evaluation.result);
    if let Some(e) = &evaluation.explanation {
        let _ = writeln!(s, "explanation: {e}");
    }
    if let Some(r) = &evaluation.reason {
        let _ = writeln!(s, "reason: {r}");
    }
    let _ = writeln!(
        s,
        "lookups: {} of 10, void lookups: {} of 2",
        evaluation.lookups, evaluation.void_lookups
    );
    let _ = writeln!(s, "\nevaluation:");
    for line in trace_lines(&evaluation.evaluation) {
        let _ = writeln!(s, "  {line}");
    }
    if let Some(tree) = &evaluation.tree {
        let _ = writeln!(
            s,
            "\nrecord tree: {} DNS-querying terms, {} void lookups; an address no record lists gets {}",
            tree.lookups,
            tree.void_lookups,
            tree.effective_stranger()
        );
        for line in tree.lines(10) {
            let _ = writeln!(s, "  {line}");
        }
    }
    escape_terminal(&s)
}
