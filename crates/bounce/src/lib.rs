//! Reads bounces, and says what they mean.
//!
//! Two shapes come in (seed 004):
//! - an RFC 3464 `multipart/report; report-type=delivery-status` message (a DSN),
//!   whose machine-readable part gives the reporting MTA and, per recipient, the
//!   action, the RFC 3463 status, the remote MTA and its SMTP reply;
//! - the pasted text of an Exchange / Office 365 NDR, whose "Diagnostic information
//!   for administrators" block names the generating server and the remote reply.
//!
//! mail-parser gives the MIME tree; it has no RFC 3464 support, so the
//! delivery-status fields are read here (dependencies.md §5). Every input is
//! bounded and nothing in it can make this panic: a malformed message gives a
//! partial result with warnings, or an error saying why.

#![deny(missing_docs)]

mod codes;
mod dsn;
mod text;

use serde::Serialize;

pub use codes::{CodeEntry, CodeTable, CodeTableError, Explained, Party};

/// The largest bounce read (a DSN may carry the whole original message).
pub const MAX_INPUT: usize = 32 * 1024 * 1024;

/// Why a bounce could not be read at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BounceError {
    /// Larger than [`MAX_INPUT`].
    #[error("the input is {0} bytes; bounces larger than {MAX_INPUT} bytes are not read")]
    TooLarge(usize),
    /// No status code or recipient could be found anywhere.
    #[error(
        "no delivery status found: not an RFC 3464 report, and no SMTP status code (like 550 5.1.1) in the text"
    )]
    NoStatus,
}

/// Where the facts came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BounceKind {
    /// An RFC 3464 delivery status notification.
    Dsn,
    /// Text of a non-delivery report (Exchange, Gmail, pasted).
    Text,
}

/// The status of one recipient.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RecipientStatus {
    /// Final-Recipient address.
    pub recipient: Option<String>,
    /// Original-Recipient address, when given.
    pub original_recipient: Option<String>,
    /// failed, delayed, delivered, relayed, expanded.
    pub action: Option<String>,
    /// RFC 3463 enhanced status code, e.g. `5.7.1`.
    pub status: Option<String>,
    /// The server that gave the reply.
    pub remote_mta: Option<String>,
    /// The SMTP reply code, e.g. 550.
    pub reply_code: Option<u16>,
    /// The diagnostic text (the remote server's reply), unfolded.
    pub diagnostic: Option<String>,
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

/// What a bounce says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bounce {
    /// DSN or text.
    pub kind: BounceKind,
    /// The server that generated the bounce (Reporting-MTA, "Generating server").
    pub reporting_mta: Option<String>,
    /// The human-readable summary, when there is one.
    pub summary: Option<String>,
    /// One entry per recipient.
    pub recipients: Vec<RecipientStatus>,
    /// The original message's headers.
    pub original: OriginalHeaders,
    /// What could not be read (truncated MIME, undecodable parts …).
    pub warnings: Vec<String>,
}

/// Reads a bounce from bytes: a MIME message or pasted text.
pub fn read(input: &[u8]) -> Result<Bounce, BounceError> {
    if input.len() > MAX_INPUT {
        return Err(BounceError::TooLarge(input.len()));
    }
    if let Some(b) = dsn::read(input)
        && !b.recipients.is_empty()
    {
        return Ok(b);
    }
    text::read(input).ok_or(BounceError::NoStatus)
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

/// The domain of an address in `user@domain`, `<user@domain>` or `Name <user@domain>` form.
pub fn domain_of(address: &str) -> Option<String> {
    let a = address.rsplit('<').next()?.split('>').next()?.trim();
    let (_, d) = a.rsplit_once('@')?;
    let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = !d.is_empty()
        && d.len() <= 253
        && d.contains('.')
        && d.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    ok.then_some(d)
}

/// Extracts the first RFC 3463 enhanced status code (`class.subject.detail`).
pub fn enhanced_code(text: &str) -> Option<String> {
    static RE: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"(?:^|[^0-9.])([245])\.(\d{1,3})\.(\d{1,3})(?:[^0-9.]|$)").ok()
    })
    .as_ref()?
    .captures(text)
    .map(|c| format!("{}.{}.{}", &c[1], &c[2], &c[3]))
}

/// Extracts the first three-digit SMTP reply code (RFC 5321 §4.2).
pub fn reply_code(text: &str) -> Option<u16> {
    static RE: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(r"(?:^|[^0-9.#])([245][0-5][0-9])(?:[ -]|$)").ok())
        .as_ref()?
        .captures(text)
        .and_then(|c| c[1].parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_in_text() {
        assert_eq!(
            enhanced_code("550 5.7.1 Client host rejected").as_deref(),
            Some("5.7.1")
        );
        assert_eq!(enhanced_code("#5.1.1 smtp;550").as_deref(), Some("5.1.1"));
        assert_eq!(enhanced_code("version 10.5.1.2"), None);
        assert_eq!(
            enhanced_code("451 4.4.312 DNS query failed").as_deref(),
            Some("4.4.312")
        );
        assert_eq!(
            reply_code("smtp;530 5.7.1 Client was not authenticated"),
            Some(530)
        );
        assert_eq!(reply_code("550-5.1.1 The email account"), Some(550));
        assert_eq!(reply_code("id 14.1.225.22"), None);
    }

    #[test]
    fn domains() {
        assert_eq!(
            domain_of("Scott <Scott@contoso.onmicrosoft.com>").as_deref(),
            Some("contoso.onmicrosoft.com")
        );
        assert_eq!(
            domain_of("user@Example.COM.").as_deref(),
            Some("example.com")
        );
        assert_eq!(domain_of("no-at-sign"), None);
        assert_eq!(domain_of("x@evil\u{1b}.com"), None);
    }
}
