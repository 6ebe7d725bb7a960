//! RFC 3464 delivery status notifications: the MIME tree from mail-parser, the
//! `message/delivery-status` fields read here (§2.1: groups of header-style
//! fields separated by blank lines, the first per message, then one per recipient).

use mail_parser::{MessageParser, MimeHeaders, PartType};

use crate::{Bounce, BounceKind, OriginalHeaders, RecipientStatus, reply_code};

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
}

/// `rfc822; user@example.org` → `user@example.org` (RFC 3464 §2.3.2 address-type).
fn typed_value(v: &str) -> String {
    match v.split_once(';') {
        Some((_, rest)) => rest.trim().to_owned(),
        None => v.trim().to_owned(),
    }
}

/// The header section of a message or of `text/rfc822-headers`.
pub(crate) fn original_headers(raw: &str) -> OriginalHeaders {
    let normalized = raw.replace("\r\n", "\n");
    let head = normalized.split("\n\n").next().unwrap_or_default();
    let f = fields(head);
    OriginalHeaders {
        from: get(&f, "from").map(str::to_owned),
        to: get(&f, "to").map(str::to_owned),
        subject: get(&f, "subject").map(str::to_owned),
        return_path: get(&f, "return-path").map(str::to_owned),
        received_spf: f
            .iter()
            .filter(|(n, _)| n == "received-spf")
            .map(|(_, v)| v.clone())
            .collect(),
    }
}

pub(crate) fn read(input: &[u8]) -> Option<Bounce> {
    let message = MessageParser::default().parse(input)?;
    let mut bounce = Bounce {
        kind: BounceKind::Dsn,
        reporting_mta: None,
        summary: None,
        recipients: Vec::new(),
        original: OriginalHeaders::default(),
        warnings: Vec::new(),
    };
    let mut found_report = false;
    for part in message.parts.iter().take(200) {
        let (ctype, subtype) = match part.content_type() {
            Some(ct) => (
                ct.ctype().to_ascii_lowercase(),
                ct.subtype().unwrap_or("").to_ascii_lowercase(),
            ),
            None => ("text".to_owned(), "plain".to_owned()),
        };
        match (ctype.as_str(), subtype.as_str()) {
            ("message", "delivery-status") | ("message", "global-delivery-status") => {
                found_report = true;
                let body = String::from_utf8_lossy(part.contents()).replace("\r\n", "\n");
                let mut groups = body.split("\n\n").filter(|g| !g.trim().is_empty());
                if let Some(first) = groups.next() {
                    let f = fields(first);
                    bounce.reporting_mta = get(&f, "reporting-mta").map(typed_value);
                    // Some generators omit the per-message group.
                    if get(&f, "final-recipient").is_some() {
                        bounce.recipients.push(recipient(&f));
                    }
                }
                for g in groups.take(1000) {
                    let f = fields(g);
                    if get(&f, "final-recipient").is_some() || get(&f, "status").is_some() {
                        bounce.recipients.push(recipient(&f));
                    }
                }
            }
            ("text", "rfc822-headers")
            | ("message", "rfc822")
            | ("message", "global-headers")
            | ("message", "global") => {
                bounce.original = original_headers(&String::from_utf8_lossy(part.contents()));
            }
            ("text", "plain")
                if bounce.summary.is_none() && !matches!(part.body, PartType::Multipart(_)) =>
            {
                if let Some(text) = part.text_contents() {
                    let para: String = text
                        .replace("\r\n", "\n")
                        .split("\n\n")
                        .map(str::trim)
                        .find(|p| !p.is_empty())
                        .unwrap_or_default()
                        .chars()
                        .take(600)
                        .collect();
                    if !para.is_empty() {
                        bounce.summary = Some(para);
                    }
                }
            }
            _ => {}
        }
    }
    if !found_report {
        return None;
    }
    if bounce.recipients.is_empty() {
        bounce
            .warnings
            .push("the delivery-status part names no recipient".to_owned());
    }
    Some(bounce)
}

fn recipient(f: &[(String, String)]) -> RecipientStatus {
    let diagnostic = get(f, "diagnostic-code").map(typed_value);
    RecipientStatus {
        recipient: get(f, "final-recipient").map(typed_value),
        original_recipient: get(f, "original-recipient").map(typed_value),
        action: get(f, "action").map(|a| a.to_ascii_lowercase()),
        status: get(f, "status").and_then(crate::enhanced_code),
        remote_mta: get(f, "remote-mta").map(typed_value),
        reply_code: diagnostic.as_deref().and_then(reply_code),
        diagnostic,
    }
}
