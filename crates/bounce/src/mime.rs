//! Layer 1: the message, decoded. mail-parser gives the MIME tree with
//! quoted-printable (soft breaks included) and base64 undone and text converted
//! from its charset (ISO-2022-JP, Shift_JIS and EUC-JP through its
//! `full_encoding` feature); this module sorts the parts into what the later
//! layers read: the human-readable report text, RFC 3464 delivery-status fields,
//! an RFC 5965 feedback report, and the headers of the returned message, which
//! are never read for codes or recipients.
//!
//! Input that is not a message (pasted NDR text) becomes one text part.

use mail_parser::{HeaderValue, MessageParser, MessagePart, MimeHeaders, PartType};

use crate::Warning;

/// Report text kept per part: enough for any real bounce, bounded for hostile input.
const MAX_LINES_PER_PART: usize = 5_000;
/// Characters kept per line.
const MAX_LINE_CHARS: usize = 2_000;
/// MIME parts visited.
const MAX_PARTS: usize = 500;
/// Depth of nested multiparts followed.
const MAX_DEPTH: usize = 16;

/// A human-readable part of the report, as decoded lines.
#[derive(Debug, Clone)]
pub(crate) struct TextPart {
    /// The MIME part number (mail-parser's index; 0 for pasted text).
    pub part: usize,
    /// Decoded lines.
    pub lines: Vec<String>,
    /// After a machine-readable or returned-message part: an attachment rather
    /// than the report (read only when the report has no earlier text).
    pub late: bool,
}

/// A machine-readable part (delivery-status or feedback-report), as text.
#[derive(Debug, Clone)]
pub(crate) struct FieldsPart {
    pub text: String,
}

/// The decoded message.
#[derive(Debug, Clone, Default)]
pub(crate) struct Document {
    /// Top-level headers: lowercased name, unfolded value (RFC 2047 words decoded
    /// for the headers people read).
    pub headers: Vec<(String, String)>,
    /// False when the input had no header block (pasted text).
    pub is_message: bool,
    /// `report-type` of a top-level or nested multipart/report.
    pub report_type: Option<String>,
    /// Human-readable parts of the report (not of the returned message).
    pub texts: Vec<TextPart>,
    /// `message/delivery-status` and `message/global-delivery-status` parts.
    pub delivery_status: Vec<FieldsPart>,
    /// `message/feedback-report` parts (RFC 5965).
    pub feedback: Vec<FieldsPart>,
    /// Header block of the returned message (`message/rfc822`, `text/rfc822-headers`).
    pub original_headers: Option<String>,
    /// What could not be read.
    pub warnings: Vec<Warning>,
}

impl Document {
    /// The first value of a top-level header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// All values of a top-level header.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Reads bytes: a MIME message, or pasted text.
    pub fn parse(input: &[u8]) -> Document {
        Document::parse_at(input, 0)
    }

    fn parse_at(input: &[u8], depth: usize) -> Document {
        if !looks_like_message(input) {
            return Document {
                texts: vec![TextPart {
                    part: 0,
                    lines: split_lines(&decode_pasted(input)),
                    late: false,
                }],
                ..Document::default()
            };
        }
        let Some(message) = MessageParser::default().parse(input) else {
            return Document {
                texts: vec![TextPart {
                    part: 0,
                    lines: split_lines(&decode_pasted(input)),
                    late: false,
                }],
                ..Document::default()
            };
        };
        let mut doc = Document {
            is_message: true,
            ..Document::default()
        };
        for h in message.headers() {
            let name = h.name().to_ascii_lowercase();
            let value = match h.value() {
                HeaderValue::Text(t) => t.to_string(),
                HeaderValue::TextList(l) => l.join(", "),
                HeaderValue::Address(a) => a
                    .iter()
                    .map(|addr| match (addr.name(), addr.address()) {
                        (Some(n), Some(a)) => format!("{n} <{a}>"),
                        (None, Some(a)) => a.to_owned(),
                        (Some(n), None) => n.to_owned(),
                        (None, None) => String::new(),
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                _ => raw_header(input, h.offset_start() as usize, h.offset_end() as usize),
            };
            if doc.headers.len() < 500 {
                doc.headers.push((name, value));
            }
        }
        let lossy = String::from_utf8_lossy(input);
        let mut walk = Walk {
            doc: &mut doc,
            message: &message,
            raw: &lossy,
            visited: 0,
            past_report: false,
            embedded: None,
        };
        walk.part(0, 0, false);
        let embedded = walk.embedded;
        // A gateway that wraps the whole report in a message/rfc822 part: with no
        // report of its own, the wrapped message is the report.
        if let Some(inner) = embedded
            && depth < 3
            && doc.delivery_status.is_empty()
            && doc.feedback.is_empty()
            && doc.texts.iter().all(|t| t.late)
        {
            let inner_doc = Document::parse_at(inner, depth + 1);
            if !inner_doc.delivery_status.is_empty()
                || !inner_doc.feedback.is_empty()
                || inner_doc.report_type.is_some()
            {
                doc.delivery_status = inner_doc.delivery_status;
                doc.feedback = inner_doc.feedback;
                doc.report_type = inner_doc.report_type;
                doc.texts = inner_doc.texts;
                doc.original_headers = inner_doc.original_headers;
                doc.warnings.extend(inner_doc.warnings);
                doc.headers.extend(inner_doc.headers);
            }
        }
        doc
    }
}

struct Walk<'d, 'a, 'm> {
    doc: &'d mut Document,
    message: &'a mail_parser::Message<'m>,
    raw: &'d str,
    visited: usize,
    /// A delivery-status, feedback or returned-message part has been seen.
    past_report: bool,
    /// The first message/rfc822 part, raw.
    embedded: Option<&'a [u8]>,
}

impl<'a, 'm> Walk<'_, 'a, 'm> {
    fn part(&mut self, index: usize, depth: usize, in_alternative: bool) {
        self.visited += 1;
        if self.visited > MAX_PARTS || depth > MAX_DEPTH {
            return;
        }
        let message: &'a mail_parser::Message<'m> = self.message;
        let Some(part) = message.parts.get(index) else {
            return;
        };
        let (ctype, subtype) = content_type(part);
        match &part.body {
            PartType::Multipart(children) => {
                if let Some(boundary) = part.content_type().and_then(|c| c.attribute("boundary")) {
                    // RFC 2046 §5.1.1: a multipart ends with its close delimiter;
                    // without it, the part was cut.
                    let close = format!("--{boundary}--");
                    if !self.raw.contains(&close) {
                        self.doc
                            .warnings
                            .push(Warning::new("mime_truncated", Some(close)));
                    }
                }
                if subtype == "report"
                    && self.doc.report_type.is_none()
                    && let Some(rt) = part.content_type().and_then(|c| c.attribute("report-type"))
                {
                    self.doc.report_type = Some(rt.to_ascii_lowercase());
                }
                let alternative = subtype == "alternative";
                // In multipart/alternative, read the plain part and skip HTML when both exist.
                let has_plain = alternative
                    && children.iter().any(|c| {
                        self.message
                            .parts
                            .get(*c as usize)
                            .is_some_and(|p| content_type(p) == ("text".into(), "plain".into()))
                    });
                for child in children.iter().take(MAX_PARTS) {
                    let c = *child as usize;
                    if has_plain
                        && self
                            .message
                            .parts
                            .get(c)
                            .is_some_and(|p| content_type(p) == ("text".into(), "html".into()))
                    {
                        continue;
                    }
                    self.part(c, depth + 1, alternative || in_alternative);
                }
            }
            PartType::Message(inner) => {
                self.past_report = true;
                if self.embedded.is_none() {
                    self.embedded = Some(inner.raw_message());
                }
                // The returned message: its headers only (who sent it, Received-SPF).
                if self.doc.original_headers.is_none() {
                    let head = header_block(inner.raw_message());
                    if !head.trim().is_empty() {
                        self.doc.original_headers = Some(head);
                    }
                }
            }
            body => {
                let contents: &[u8] = match body {
                    PartType::Text(t) | PartType::Html(t) => t.as_bytes(),
                    PartType::Binary(b) | PartType::InlineBinary(b) => b,
                    _ => &[],
                };
                if ctype == "message" {
                    self.past_report = true;
                }
                match (ctype.as_str(), subtype.as_str()) {
                    ("message", "delivery-status") | ("message", "global-delivery-status") => {
                        self.doc.delivery_status.push(FieldsPart {
                            text: bounded_text(contents),
                        });
                    }
                    ("message", "feedback-report") => {
                        self.doc.feedback.push(FieldsPart {
                            text: bounded_text(contents),
                        });
                    }
                    ("text", "rfc822-headers") => {
                        self.past_report = true;
                        if self.doc.original_headers.is_none() {
                            self.doc.original_headers = Some(header_block(contents));
                        }
                    }
                    ("message", "rfc822-headers")
                    | ("message", "global-headers")
                    | ("message", "rfc822")
                    | ("message", "global")
                        if self.doc.original_headers.is_none() =>
                    {
                        self.doc.original_headers = Some(header_block(contents));
                    }
                    ("text", "plain") | ("text", "html") => {
                        if is_attachment(part) && index != 0 {
                            return;
                        }
                        let text = match &part.body {
                            PartType::Html(h) => mail_parser::decoders::html::html_to_text(h),
                            PartType::Text(t) => t.to_string(),
                            _ => String::from_utf8_lossy(contents).into_owned(),
                        };
                        let lines = split_lines(&text);
                        if lines.iter().any(|l| !l.trim().is_empty()) {
                            self.doc.texts.push(TextPart {
                                part: index,
                                lines,
                                late: self.past_report,
                            });
                        }
                        let _ = in_alternative;
                    }
                    _ => {}
                }
            }
        }
    }
}

fn is_attachment(part: &MessagePart<'_>) -> bool {
    part.content_disposition()
        .is_some_and(|d| d.ctype().eq_ignore_ascii_case("attachment"))
        && part.attachment_name().is_some()
}

fn content_type(part: &MessagePart<'_>) -> (String, String) {
    match part.content_type() {
        Some(ct) => (
            ct.ctype().to_ascii_lowercase(),
            ct.subtype().unwrap_or("").to_ascii_lowercase(),
        ),
        None => ("text".to_owned(), "plain".to_owned()),
    }
}

fn raw_header(input: &[u8], start: usize, end: usize) -> String {
    let bytes = input.get(start..end.min(input.len())).unwrap_or_default();
    unfold(&String::from_utf8_lossy(bytes))
}

/// RFC 5322 §2.2.3: a folded header is one line.
pub(crate) fn unfold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, line) in s.split('\n').enumerate() {
        let line = line.trim_end_matches('\r');
        if i > 0 && !line.is_empty() {
            out.push(' ');
        }
        out.push_str(if i > 0 { line.trim_start() } else { line });
    }
    out.trim().to_owned()
}

fn bounded_text(contents: &[u8]) -> String {
    let end = contents.len().min(1 << 20);
    String::from_utf8_lossy(&contents[..end]).replace("\r\n", "\n")
}

/// The header section of a message (up to the first empty line).
fn header_block(contents: &[u8]) -> String {
    let text = bounded_text(contents);
    match text.find("\n\n") {
        Some(p) => text[..p].to_owned(),
        None => text,
    }
}

/// Lines, bounded in count and length.
pub(crate) fn split_lines(text: &str) -> Vec<String> {
    text.replace("\r\n", "\n")
        .split(['\n', '\r'])
        .take(MAX_LINES_PER_PART)
        .map(|l| {
            if l.len() > MAX_LINE_CHARS {
                l.chars().take(MAX_LINE_CHARS).collect()
            } else {
                l.to_owned()
            }
        })
        .collect()
}

/// Pasted text: UTF-8, or ISO-2022-JP (seen as 7-bit with escape sequences,
/// the usual encoding of Japanese mail), or Shift_JIS; anything else lossily.
fn decode_pasted(input: &[u8]) -> String {
    use mail_parser::decoders::charsets::map::charset_decoder;
    let end = input.len().min(8 << 20);
    let input = &input[..end];
    if input.windows(3).any(|w| w == b"\x1b$B" || w == b"\x1b$@")
        && let Some(decode) = charset_decoder(b"iso-2022-jp")
    {
        return decode(input);
    }
    match std::str::from_utf8(input) {
        Ok(s) => s.to_owned(),
        Err(_) => match charset_decoder(b"shift_jis") {
            Some(decode) if input.iter().any(|b| (0x81..=0x9f).contains(b)) => decode(input),
            _ => String::from_utf8_lossy(input).into_owned(),
        },
    }
}

/// A message starts with a header field (RFC 5322 §2.2) or an mbox `From ` line,
/// and its header block names at least one of the fields every mail has.
fn looks_like_message(input: &[u8]) -> bool {
    let head = &input[..input.len().min(64 * 1024)];
    let text = String::from_utf8_lossy(head);
    let mut lines = text.lines().peekable();
    if lines.peek().is_some_and(|l| l.starts_with("From ")) {
        lines.next();
    }
    let mut known = false;
    for (i, line) in lines.enumerate() {
        if line.trim().is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let Some((name, _)) = line.split_once(':') else {
            return false;
        };
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return false;
        }
        if matches!(
            name.to_ascii_lowercase().as_str(),
            "from"
                | "to"
                | "subject"
                | "date"
                | "received"
                | "return-path"
                | "content-type"
                | "mime-version"
                | "message-id"
        ) {
            known = true;
        }
        if i > 1000 {
            break;
        }
    }
    known
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_printable_soft_break_is_joined() {
        let msg = b"From: MAILER-DAEMON@example.org\r\nSubject: x\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n550 5.1.=\r\n1 user unknown\r\n";
        let doc = Document::parse(msg);
        assert!(doc.is_message);
        assert_eq!(doc.texts[0].lines[0], "550 5.1.1 user unknown");
    }

    #[test]
    fn iso_2022_jp_body_is_decoded() {
        // "宛先不明" in ISO-2022-JP.
        let mut msg = b"From: MAILER-DAEMON@example.jp\r\nSubject: x\r\nContent-Type: text/plain; charset=ISO-2022-JP\r\n\r\n".to_vec();
        msg.extend_from_slice(b"\x1b$B08@hITL@\x1b(B\r\n");
        let doc = Document::parse(&msg);
        assert_eq!(doc.texts[0].lines[0], "宛先不明");
    }

    #[test]
    fn pasted_text_is_one_part() {
        let doc = Document::parse(b"Delivery has failed\n550 5.1.1 unknown\n");
        assert!(!doc.is_message);
        assert_eq!(doc.texts.len(), 1);
        assert_eq!(doc.texts[0].lines[1], "550 5.1.1 unknown");
    }

    #[test]
    fn unfolds() {
        assert_eq!(unfold("a\r\n b\n\tc"), "a b c");
    }
}
