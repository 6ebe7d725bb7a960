//! `mxaudit smtp` as text: each session's transcript, then what was found and
//! what could not be decided.

use std::fmt::Write as _;

use mxaudit_checks::smtp::ProbeTranscript;
use mxaudit_core::text::escape_terminal as esc;

/// The probe for a terminal.
pub fn text(p: &ProbeTranscript) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "SMTP probe of {} port {}", esc(&p.host), p.port);
    for session in &p.sessions {
        let _ = writeln!(s, "\n== {}", session.peer);
        let _ = write!(s, "{session}");
    }
    if !p.observations.is_empty() {
        let _ = writeln!(s, "\nfindings:");
        for o in &p.observations {
            let _ = writeln!(s, "  {}  {}", o.code, esc(&o.subject));
            for e in &o.evidence {
                let _ = writeln!(s, "      {}", esc(e));
            }
        }
    }
    if !p.errors.is_empty() {
        let _ = writeln!(s, "\nundecided:");
        for e in &p.errors {
            let _ = writeln!(s, "  {}", esc(e));
        }
    }
    s
}
