//! Reads bounces, and says what they mean.
//!
//! The reader is layered, each layer in its own module:
//! 1. `mime`: the message decoded (quoted-printable, base64, charsets) by
//!    mail-parser, sorted into report text, RFC 3464 fields, an RFC 5965
//!    feedback report and the returned message's headers;
//! 2. `dsn`: the RFC 3464 delivery-status fields;
//! 3. `text`: the report in words, read with the per-MTA patterns of
//!    `patterns.toml` (which users extend with their own file);
//! 4. here: recipients and their status, code and reason, merged from the
//!    fields and the words, each value with the place it came from ([`Origin`]).
//!
//! Messages that are not bounces are recognised too: ARF feedback reports
//! ([`FeedbackReport`]) and automatic replies ([`AutoReply`], RFC 3834); any
//! other message is refused with [`BounceError::NotBounce`]. Every input is
//! bounded and nothing in it can make this panic.

#![deny(missing_docs)]

mod address;
mod codes;
pub mod corpus;
mod dsn;
mod feedback;
mod mime;
mod reply;
mod rules;
mod text;
pub mod view;

use std::collections::BTreeMap;

use serde::Serialize;

pub use address::domain_of;
pub use codes::{CodeEntry, Explained, Party, Text};
pub use feedback::FeedbackReport;
pub use rules::{Audit, Rules, RulesError};

/// The largest bounce read (a DSN may carry the whole original message).
pub const MAX_INPUT: usize = 32 * 1024 * 1024;

/// Why a message could not be read as a bounce.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BounceError {
    /// Larger than [`MAX_INPUT`].
    #[error("the input is {0} bytes; bounces larger than {MAX_INPUT} bytes are not read")]
    TooLarge(usize),
    /// Not a bounce, a feedback report or an auto-reply.
    #[error(
        "not a delivery status notification: no delivery status found (no RFC 3464 report, no bounce text with an SMTP status code like 550 5.1.1)"
    )]
    NotBounce,
}

/// Where a value came from, so that a wrong value can be traced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum Origin {
    /// A header of the bounce itself (`X-Failed-Recipients`, `Subject`).
    Header {
        /// The header name.
        name: String,
    },
    /// An RFC 3464 field: `group` 0 is the per-message group, then one per recipient.
    Field {
        /// The field name (`Final-Recipient`, `Status`, `Diagnostic-Code`).
        name: String,
        /// The group, counted from 0 across delivery-status parts.
        group: usize,
    },
    /// A line of the decoded report text.
    Line {
        /// The MIME part (0 for pasted text).
        part: usize,
        /// The 1-based line in that part, after decoding.
        line: usize,
        /// The pattern that matched (`patterns.toml` recipient id), if one did.
        #[serde(skip_serializing_if = "Option::is_none")]
        rule: Option<String>,
    },
    /// Derived from another value of the same recipient.
    Derived {
        /// The value it was derived from (`status`, `reply_code`).
        value: String,
    },
}

/// A problem reading the input, shown with the result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// What (`mime_truncated`, `no_recipient`); the text is in the label table.
    pub code: &'static str,
    /// Particulars (untrusted text from the input: escape before showing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Warning {
    pub(crate) fn new(code: &'static str, detail: Option<String>) -> Warning {
        Warning { code, detail }
    }
}

/// Where the facts came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BounceKind {
    /// An RFC 3464 delivery status notification.
    Dsn,
    /// Text of a non-delivery report (qmail, Exim, Exchange, Gmail, pasted).
    Text,
}

/// The status of one recipient.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RecipientStatus {
    /// The failed recipient's address.
    pub recipient: Option<String>,
    /// Original-Recipient, when it differs.
    pub original_recipient: Option<String>,
    /// failed, delayed, delivered, relayed, expanded.
    pub action: Option<String>,
    /// RFC 3463 enhanced status code, e.g. `5.7.1`: the most specific one given.
    pub status: Option<String>,
    /// The `Status:` field when a more specific code of the diagnostic was preferred.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dsn_status: Option<String>,
    /// The server that gave the reply.
    pub remote_mta: Option<String>,
    /// The SMTP reply code, e.g. 550.
    pub reply_code: Option<u16>,
    /// The diagnostic text (the remote server's reply), unfolded.
    pub diagnostic: Option<String>,
    /// The Diagnostic-Code type (`smtp`, `x-unix`, `x-postfix`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnostic_type: Option<String>,
    /// The words after the `Status:` code, when any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_comment: Option<String>,
    /// The reason in words (`user_unknown`, `mailbox_full` …; `reasons.toml`).
    pub reason: Option<String>,
    /// Where each value came from.
    pub origins: BTreeMap<&'static str, Origin>,
}

/// Headers of the original message, when the bounce carries them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OriginalHeaders {
    /// From.
    pub from: Option<String>,
    /// To.
    pub to: Option<String>,
    /// Subject.
    pub subject: Option<String>,
    /// Return-Path (the envelope sender).
    pub return_path: Option<String>,
    /// Received-SPF headers, top first.
    pub received_spf: Vec<String>,
}

/// The MTA that wrote a bounce, recognised by `patterns.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mta {
    /// Rule id (`postfix`, `exim`, `exchange` …).
    pub id: String,
    /// Its name.
    pub name: String,
}

/// What a bounce says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bounce {
    /// DSN or text.
    pub kind: BounceKind,
    /// The MTA that wrote it, when recognised.
    pub mta: Option<Mta>,
    /// The server that generated the bounce (Reporting-MTA, "Generating server").
    pub reporting_mta: Option<String>,
    /// The human-readable summary, when there is one.
    pub summary: Option<String>,
    /// One entry per recipient.
    pub recipients: Vec<RecipientStatus>,
    /// The original message's headers.
    pub original: OriginalHeaders,
    /// What could not be read (truncated MIME …).
    pub warnings: Vec<Warning>,
    /// Where the bounce-level values came from (`bounce`: why this is a bounce).
    pub origins: BTreeMap<&'static str, Origin>,
}

/// An automatic reply (RFC 3834): the message was delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AutoReply {
    /// Who replied.
    pub from: Option<String>,
    /// The reply's subject.
    pub subject: Option<String>,
    /// The first paragraph of the reply.
    pub summary: Option<String>,
    /// What shows it is an automatic reply.
    pub signal: Origin,
}

/// What a message is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    /// A bounce (non-delivery or delay report).
    Bounce(Bounce),
    /// An RFC 5965 feedback report.
    Feedback(FeedbackReport),
    /// An automatic reply.
    AutoReply(AutoReply),
}

pub(crate) fn dsn_field_name(name: &str) -> String {
    name.split('-')
        .map(|w| {
            // RFC 3464 spells these in capitals (Reporting-MTA, Remote-MTA).
            if w.eq_ignore_ascii_case("mta") || w.eq_ignore_ascii_case("spf") {
                return w.to_ascii_uppercase();
            }
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// The header section of a message or of `text/rfc822-headers`.
pub(crate) fn original_headers(raw: &str) -> OriginalHeaders {
    let normalized = raw.replace("\r\n", "\n");
    let head = normalized.split("\n\n").next().unwrap_or_default();
    let f = dsn::fields(head);
    let get = |name: &str| {
        f.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.chars().take(500).collect::<String>())
    };
    OriginalHeaders {
        from: get("from"),
        to: get("to"),
        subject: get("subject"),
        return_path: get("return-path"),
        received_spf: f
            .iter()
            .filter(|(n, _)| n == "received-spf")
            .map(|(_, v)| v.chars().take(1000).collect())
            .take(20)
            .collect(),
    }
}

/// Reads a message or pasted text with the given rules.
pub fn read(input: &[u8], rules: &Rules) -> Result<Reading, BounceError> {
    if input.len() > MAX_INPUT {
        return Err(BounceError::TooLarge(input.len()));
    }
    let doc = mime::Document::parse(input);
    if doc.report_type.as_deref() == Some("feedback-report") || !doc.feedback.is_empty() {
        return Ok(Reading::Feedback(feedback::read(&doc)));
    }
    let words = text::read(&doc, rules);
    let fields = dsn::read(&doc);
    let mut origins = BTreeMap::new();
    let mut recipients: Vec<RecipientStatus> = Vec::new();
    let mut kind = BounceKind::Text;
    let mut warnings = doc.warnings.clone();
    if let Some(d) = &fields
        && !d.recipients.is_empty()
    {
        kind = BounceKind::Dsn;
        let only = d.recipients.len() == 1;
        for r in &d.recipients {
            recipients.push(complete_from_text(r.clone(), &words, rules, only));
        }
    } else {
        let decided_by_text = words.bounce.is_some();
        let mut found: Vec<RecipientStatus> = Vec::new();
        let only = words.recipients.len() <= 1;
        for f in &words.recipients {
            found.push(from_text(Some(f), &words, rules, only));
        }
        if found.is_empty() {
            let anonymous = from_text(None, &words, rules, true);
            if anonymous.status.is_some()
                || anonymous.reply_code.is_some()
                || anonymous.reason.is_some()
            {
                found.push(anonymous);
            }
        }
        // Pasted text has no headers to say it is a bounce: a failure reply
        // with an enhanced code (`550 5.1.1`) or bounce wording must.
        let pasted_with_code = !doc.is_message && found.iter().any(|r| r.status.is_some());
        if !decided_by_text && !pasted_with_code {
            if let Some(signal) = words.auto_reply.clone() {
                return Ok(Reading::AutoReply(AutoReply {
                    from: doc.header("from").map(str::to_owned),
                    subject: doc.header("subject").map(str::to_owned),
                    summary: words.summary.as_ref().map(|(s, _)| s.clone()),
                    signal,
                }));
            }
            return Err(BounceError::NotBounce);
        }
        if found.is_empty() {
            warnings.push(Warning::new("no_recipient", None));
        }
        recipients = found;
    }
    if let Some(o) = &words.bounce {
        origins.insert("bounce", o.clone());
    } else if kind == BounceKind::Dsn {
        origins.insert(
            "bounce",
            Origin::Field {
                name: "Final-Recipient".into(),
                group: 1,
            },
        );
    }
    let reporting_mta = match fields.as_ref().and_then(|d| d.reporting_mta.clone()) {
        Some((m, o)) => {
            origins.insert("reporting_mta", o);
            Some(m)
        }
        None => words.reporting_mta.clone().map(|(m, o)| {
            origins.insert("reporting_mta", o);
            m
        }),
    };
    let mta = words.mta.clone().map(|(id, name, o)| {
        origins.insert("mta", o);
        Mta { id, name }
    });
    let summary = words.summary.clone().map(|(s, o)| {
        origins.insert("summary", o);
        s
    });
    let original = doc
        .original_headers
        .as_deref()
        .or(words.original_headers.as_deref())
        .map(original_headers)
        .unwrap_or_default();
    Ok(Reading::Bounce(Bounce {
        kind,
        mta,
        reporting_mta,
        summary,
        recipients,
        original,
        warnings,
        origins,
    }))
}

/// A recipient from text alone.
fn from_text(
    found: Option<&text::Found>,
    words: &text::TextReading,
    rules: &Rules,
    only: bool,
) -> RecipientStatus {
    let mut r = RecipientStatus::default();
    if let Some(f) = found {
        r.recipient = Some(f.address.clone());
        r.origins.insert("recipient", f.origin.clone());
    }
    let ev = text::evidence(words, rules, found.map(|f| f.address.as_str()), only);
    apply(&mut r, ev);
    // No Action field: a warning says delayed; anything else reports a failure.
    let (action, origin) = match &words.delayed {
        Some(o) => ("delayed", o.clone()),
        None => (
            "failed",
            words.bounce.clone().unwrap_or(Origin::Derived {
                value: "text".into(),
            }),
        ),
    };
    r.action = Some(action.to_owned());
    r.origins.insert("action", origin);
    finish_reason(&mut r, rules);
    expired_overrides(&mut r, words, rules, only);
    r
}

fn apply(r: &mut RecipientStatus, ev: text::Evidence) {
    if let Some((c, o)) = ev.reply
        && r.reply_code.is_none()
    {
        r.reply_code = Some(c);
        r.origins.insert("reply_code", o);
    }
    if let Some((s, o)) = ev.status {
        match &r.status {
            None => {
                r.status = Some(s);
                r.origins.insert("status", o);
            }
            // The text's specific code for a generic field (`Status: 5.0.0`).
            Some(cur)
                if cur.ends_with(".0.0")
                    && cur.len() == 5
                    && s.starts_with(&cur[..2])
                    && *cur != s =>
            {
                r.dsn_status = Some(cur.clone());
                r.status = Some(s);
                r.origins.insert("status", o);
            }
            Some(_) => {}
        }
    }
    if let Some((d, o)) = ev.diagnostic
        && r.diagnostic.is_none()
    {
        r.diagnostic = Some(d);
        r.origins.insert("diagnostic", o);
    }
    if let Some((m, o)) = ev.remote_mta
        && r.remote_mta.is_none()
    {
        r.remote_mta = Some(m);
        r.origins.insert("remote_mta", o);
    }
    if let Some((id, o)) = ev.reason
        && r.reason.is_none()
    {
        r.reason = Some(id);
        r.origins.insert("reason", o);
    }
}

/// A DSN recipient, completed from the words of the report.
fn complete_from_text(
    mut r: RecipientStatus,
    words: &text::TextReading,
    rules: &Rules,
    only: bool,
) -> RecipientStatus {
    // The reason in the diagnostic comes first; then the Status comment.
    if let Some(d) = &r.diagnostic
        && let Some((id, _)) = text::reason_in(rules, d)
    {
        r.reason = Some(id);
        if let Some(o) = r.origins.get("diagnostic").cloned() {
            r.origins.insert("reason", o);
        }
    }
    // A specific status code the reason table names exactly (5.1.1) says more
    // than the report's words about other attempts.
    if r.reason.is_none()
        && let Some(st) = r.status.clone()
        && let Some(id) = rules.reason_for_exact_status(&st)
    {
        r.reason = Some(id.to_owned());
        r.origins.insert(
            "reason",
            Origin::Derived {
                value: "status".into(),
            },
        );
    }
    if r.reason.is_none()
        && let Some(c) = &r.status_comment
        && let Some((id, _)) = text::reason_in(rules, c)
    {
        r.reason = Some(id);
        if let Some(o) = r
            .origins
            .get("status")
            .or(r.origins.get("reply_code"))
            .cloned()
        {
            r.origins.insert("reason", o);
        }
    }
    let address = r.recipient.clone();
    let mut ev = text::evidence(words, rules, address.as_deref(), only);
    if ev.reply.is_none() && ev.status.is_none() && ev.diagnostic.is_none() {
        // The text may name the address the sender used.
        if let Some(o) = r.original_recipient.clone() {
            ev = text::evidence(words, rules, Some(&o), only);
        }
    }
    // A reply read from the report's words is used only when it agrees with the
    // fields' class (a DSN's text may describe other attempts).
    let class_of = |s: &str| s.chars().next();
    let field_class = r.status.as_deref().and_then(class_of).or_else(|| {
        r.reply_code
            .and_then(|c| char::from_digit(u32::from(c / 100), 10))
    });
    if let Some(fc) = field_class {
        if ev
            .reply
            .as_ref()
            .is_some_and(|(c, _)| char::from_digit(u32::from(c / 100), 10) != Some(fc))
        {
            ev.reply = None;
        }
        if ev
            .status
            .as_ref()
            .is_some_and(|(s, _)| class_of(s) != Some(fc))
        {
            ev.status = None;
        }
    }
    apply(&mut r, ev);
    finish_reason(&mut r, rules);
    expired_overrides(&mut r, words, rules, only);
    r
}

/// A final failure that was given up after a time is `expired`, whatever the
/// last attempt's error was (a refused connection, a busy or throttling server
/// is why it kept failing, not why it was returned): when the text says so, or
/// when the Action is `failed` with a transient 4.x.x status (RFC 3464 §2.3.3:
/// retries ran out).
fn expired_overrides(
    r: &mut RecipientStatus,
    words: &text::TextReading,
    rules: &Rules,
    only: bool,
) {
    if r.action.as_deref() != Some("failed")
        || !matches!(
            r.reason.as_deref(),
            None | Some("network" | "system" | "rate_limited")
        )
    {
        return;
    }
    if let Some(o) = text::says(words, rules, "expired", r.recipient.as_deref(), only) {
        r.reason = Some("expired".into());
        r.origins.insert("reason", o);
    } else if r.status.as_deref().is_some_and(|s| s.starts_with('4')) {
        r.reason = Some("expired".into());
        r.origins.insert(
            "reason",
            Origin::Derived {
                value: "action".into(),
            },
        );
    }
}

/// Without words for it, the reason a status code implies.
fn finish_reason(r: &mut RecipientStatus, rules: &Rules) {
    if r.reason.is_some() {
        return;
    }
    if let Some(s) = r.status.clone()
        && let Some(id) = rules.reason_for_status(&s)
    {
        r.reason = Some(id.to_owned());
        r.origins.insert(
            "reason",
            Origin::Derived {
                value: "status".into(),
            },
        );
    }
}

/// The sender's domain, from the original Return-Path or From, or the
/// envelope-from of a Received-SPF header.
pub fn sender_domain(b: &Bounce) -> Option<String> {
    let candidates = [
        b.original.return_path.as_deref(),
        b.original.from.as_deref(),
    ];
    for c in candidates.into_iter().flatten() {
        if let Some(d) = domain_of(c) {
            return Some(d);
        }
    }
    b.original.received_spf.iter().find_map(|h| {
        let i = h.find("envelope-from=")?;
        domain_of(
            h[i + "envelope-from=".len()..]
                .split(|c: char| c == ';' || c.is_whitespace())
                .next()?,
        )
    })
}
