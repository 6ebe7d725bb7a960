//! Layer 2: RFC 3464 delivery-status fields. mail-parser has no RFC 3464
//! support (dependencies.md §5), so the `message/delivery-status` part is read
//! here: groups of header-style fields separated by blank lines (§2.1), the
//! first per message, then one per recipient. Some generators paste the same
//! fields into a text part; those groups are read too.

use crate::mime::{Document, unfold};
use crate::reply::{SmtpReply, enhanced_code_in_field, enhanced_code_strict, reply_in_text};
use crate::{Origin, RecipientStatus, address};

/// Per-recipient groups read at most (a DSN names one group per recipient).
const MAX_GROUPS: usize = 1_000;

/// What the delivery-status fields say.
#[derive(Debug, Clone, Default)]
pub(crate) struct DsnReport {
    pub reporting_mta: Option<(String, Origin)>,
    pub recipients: Vec<RecipientStatus>,
}

/// Fields of one group, names lowercased, folded lines joined (RFC 5322 §2.2.3).
pub(crate) fn fields(block: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in block.lines().take(1000) {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = out.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            let name = name.trim().to_ascii_lowercase();
            if !name.is_empty() && !name.contains(' ') {
                out.push((name, value.trim().to_owned()));
            }
        }
    }
    out
}

fn get<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.trim().is_empty())
}

/// `rfc822; user@example.org` → (`rfc822`, `user@example.org`) (RFC 3464 §2.3.2).
fn typed(v: &str) -> (String, String) {
    match v.split_once(';') {
        Some((t, rest)) => (t.trim().to_ascii_lowercase(), rest.trim().to_owned()),
        None => (String::new(), v.trim().to_owned()),
    }
}

/// Reads the delivery-status fields of a document, if it has any.
pub(crate) fn read(doc: &Document) -> Option<DsnReport> {
    let mut sources: Vec<String> = doc.delivery_status.iter().map(|p| p.text.clone()).collect();
    // Fields pasted as text: a paragraph with Final-Recipient and Action or Status.
    for t in &doc.texts {
        let text = t.lines.join("\n");
        let lower = text.to_ascii_lowercase();
        if lower.contains("\nfinal-recipient:") || lower.starts_with("final-recipient:") {
            sources.push(text);
        }
    }
    if sources.is_empty() {
        return None;
    }
    let mut report = DsnReport::default();
    let mut group_no = 0usize;
    for source in sources {
        let body = source.replace("\r\n", "\n");
        for group in body
            .split("\n\n")
            .filter(|g| !g.trim().is_empty())
            .take(MAX_GROUPS)
        {
            let f = fields(group);
            if report.reporting_mta.is_none()
                && let Some(v) = get(&f, "reporting-mta")
            {
                let (_, mta) = typed(v);
                if !mta.is_empty() {
                    report.reporting_mta = Some((
                        mta.chars().take(255).collect(),
                        Origin::Field {
                            name: "Reporting-MTA".into(),
                            group: group_no,
                        },
                    ));
                }
            }
            let is_recipient = ["final-recipient", "original-recipient", "action", "status"]
                .iter()
                .any(|n| get(&f, n).is_some())
                && (get(&f, "final-recipient").is_some()
                    || get(&f, "original-recipient").is_some()
                    || get(&f, "status").is_some());
            if is_recipient {
                let r = recipient(&f, group_no);
                if !report.recipients.iter().any(|x| same(x, &r)) {
                    report.recipients.push(r);
                }
            }
            group_no += 1;
        }
    }
    Some(report)
}

fn same(a: &RecipientStatus, b: &RecipientStatus) -> bool {
    a.recipient.as_deref().map(str::to_ascii_lowercase)
        == b.recipient.as_deref().map(str::to_ascii_lowercase)
        && a.status == b.status
        && a.action == b.action
        && a.reply_code == b.reply_code
}

/// RFC 3464 §2.3.3 action-value, normalised: some generators write `failure`
/// or `error`, or add a comment after the word.
fn action(v: &str) -> String {
    let word = v
        .split(|c: char| c.is_whitespace() || c == '(' || c == ';')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    match word.as_str() {
        "failure" | "fail" | "error" | "failed" => "failed".into(),
        "delay" | "delayed" => "delayed".into(),
        other => other.chars().take(32).collect(),
    }
}

fn recipient(f: &[(String, String)], group: usize) -> RecipientStatus {
    let origin = |name: &str| Origin::Field {
        name: crate::dsn_field_name(name),
        group,
    };
    let mut r = RecipientStatus::default();
    // The recipient: Final-Recipient when it is a mail address; otherwise
    // (x400, a pipe to procmail, `system;<>`, a local name without a domain) the
    // address the sender used, Original-Recipient, or sendmail's X-Actual-Recipient.
    let candidates = [
        "final-recipient",
        "original-recipient",
        "x-actual-recipient",
    ];
    let mut chosen = None;
    for name in candidates {
        if let Some(v) = get(f, name) {
            let (kind, value) = typed(v);
            if (kind.is_empty() || kind == "rfc822" || kind == "local" || kind == "utf-8")
                && let Some(a) = address::clean(&value, true)
            {
                chosen = Some((a, name));
                break;
            }
        }
    }
    if chosen.is_none() {
        // Last resort: a Final-Recipient without a dotted domain (a local mailbox).
        if let Some(v) = get(f, "final-recipient") {
            let (_, value) = typed(v);
            if let Some(a) = address::clean(&value, false) {
                chosen = Some((a, "final-recipient"));
            }
        }
    }
    if let Some((a, name)) = chosen {
        r.recipient = Some(a);
        r.origins.insert("recipient", origin(name));
    }
    if let Some(v) = get(f, "original-recipient") {
        let (_, value) = typed(v);
        if let Some(a) = address::clean(&value, false)
            && Some(&a) != r.recipient.as_ref()
        {
            r.original_recipient = Some(a);
        }
    }
    if let Some(v) = get(f, "action") {
        r.action = Some(action(v));
        r.origins.insert("action", origin("action"));
    }
    if let Some(v) = get(f, "remote-mta") {
        let (_, m) = typed(v);
        if !m.is_empty() {
            r.remote_mta = Some(m.chars().take(255).collect());
            r.origins.insert("remote_mta", origin("remote-mta"));
        }
    }
    // Status: an enhanced code, sometimes followed by a comment in words.
    let field_status = get(f, "status").and_then(enhanced_code_in_field);
    if let Some(v) = get(f, "status") {
        let comment = v
            .split_once('(')
            .map(|(_, c)| c.trim_end_matches(')').trim())
            .filter(|c| !c.is_empty());
        if field_status.is_none() {
            // A reply code where a status belongs: `Status: 553 Exceeded maximum …`.
            if let Some(SmtpReply { code, .. }) = reply_in_text(v, true) {
                r.reply_code = Some(code);
                r.origins.insert("reply_code", origin("status"));
                r.status_comment = Some(unfold(v));
            }
        } else if let Some(c) = comment {
            r.status_comment = Some(c.chars().take(300).collect());
        }
    }
    // Diagnostic-Code (§2.3.6): only an `smtp` diagnostic is an SMTP reply.
    // Others (`X-Unix; 255` is a program's exit status, `X-Notes`, `X-Postfix`)
    // carry a reply only when one is quoted in words: `… said: 550 5.1.1 …`.
    let mut diag_status = None;
    if let Some(v) = get(f, "diagnostic-code") {
        let (kind, text) = typed(v);
        let text: String = unfold(&text).chars().take(2000).collect();
        let smtp = kind == "smtp";
        if r.reply_code.is_none()
            && let Some(reply) = reply_in_text(&text, smtp)
        {
            r.reply_code = Some(reply.code);
            r.origins.insert("reply_code", origin("diagnostic-code"));
            if let Some(e) = reply.enhanced {
                diag_status = Some(e);
            }
        }
        if diag_status.is_none() {
            diag_status = enhanced_code_strict(&text);
        }
        if !kind.is_empty() {
            r.diagnostic_type = Some(kind.chars().take(32).collect());
        }
        if !text.is_empty() {
            r.diagnostic = Some(text);
            r.origins.insert("diagnostic", origin("diagnostic-code"));
        }
    }
    // Prefer the specific code: `Status: 5.0.0` with `Diagnostic-Code: smtp; 550
    // 5.7.1 …` is 5.7.1; both are shown (RFC 3463 §3.1: X.0.0 is "other undefined").
    match (field_status, diag_status) {
        (Some(s), Some(d)) if s != d && is_generic(&s) && d.starts_with(&s[..2]) => {
            r.status = Some(d);
            r.dsn_status = Some(s);
            r.origins.insert("status", origin("diagnostic-code"));
        }
        (Some(s), _) => {
            r.status = Some(s);
            r.origins.insert("status", origin("status"));
        }
        (None, Some(d)) => {
            r.status = Some(d);
            r.origins.insert("status", origin("diagnostic-code"));
        }
        (None, None) => {}
    }
    r
}

/// `X.0.0`: the class only.
fn is_generic(status: &str) -> bool {
    status.len() == 5 && status.ends_with(".0.0")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(group: &str) -> RecipientStatus {
        recipient(&fields(group), 1)
    }

    #[test]
    fn specific_diagnostic_status_wins_over_generic_status() {
        let r = one(
            "Final-Recipient: rfc822; a@example.org\nAction: failed\nStatus: 5.0.0\nDiagnostic-Code: smtp; 550 5.7.1 blocked\n",
        );
        assert_eq!(r.status.as_deref(), Some("5.7.1"));
        assert_eq!(r.dsn_status.as_deref(), Some("5.0.0"));
        assert_eq!(r.reply_code, Some(550));
    }

    #[test]
    fn program_exit_status_is_not_a_reply() {
        let r = one(
            "Final-Recipient: rfc822; a@example.org\nAction: failed\nStatus: 5.3.0\nDiagnostic-Code: X-Unix; 255\n",
        );
        assert_eq!(r.reply_code, None);
        assert_eq!(r.status.as_deref(), Some("5.3.0"));
    }

    #[test]
    fn x400_final_recipient_gives_the_original() {
        let r = one(
            "Original-Recipient: rfc822; zz@example.uk\nFinal-Recipient: x400; /S=zz/OU=example/\nAction: failed\nStatus: 4.4.7\n",
        );
        assert_eq!(r.recipient.as_deref(), Some("zz@example.uk"));
    }

    #[test]
    fn procmail_pipe_is_not_a_recipient() {
        let r = one(
            "Final-Recipient: rfc822; \"|IFS=' ' && exec /usr/bin/procmail -f- || exit 75 #kaz\"\nOriginal-Recipient: rfc822; kaz@example.jp\nAction: failed\nStatus: 5.3.0\n",
        );
        assert_eq!(r.recipient.as_deref(), Some("kaz@example.jp"));
    }

    #[test]
    fn reply_code_in_status_field() {
        let r = one(
            "Final-Recipient: rfc822;u@example.be\nAction: failure\nStatus: 553 Exceeded maximum inbound message size\n",
        );
        assert_eq!(r.reply_code, Some(553));
        assert_eq!(r.status, None);
        assert_eq!(r.action.as_deref(), Some("failed"));
    }
}
