//! Non-delivery reports as text: Exchange / Office 365 NDRs ("Diagnostic
//! information for administrators", "Generating server", "Remote Server
//! returned …", the older `#<host #5.7.1 smtp;530 …> #SMTP#` form), Gmail-style
//! bounces, and the Japanese versions of the Exchange labels (seed 004).

use crate::{Bounce, BounceKind, OriginalHeaders, RecipientStatus, enhanced_code, reply_code};

fn find_value(text: &str, labels: &[&str]) -> Option<String> {
    for line in text.lines() {
        let l = line.trim();
        for label in labels {
            if let Some(rest) = l.strip_prefix(label) {
                let v = rest.trim_start_matches([':', '：', ' ']).trim();
                if !v.is_empty() {
                    return Some(v.chars().take(255).collect());
                }
            }
        }
    }
    None
}

fn address_in(line: &str) -> Option<String> {
    line.split(|c: char| {
        c.is_whitespace() || c == '<' || c == '>' || c == '(' || c == ')' || c == ',' || c == ';'
    })
    .find(|w| {
        w.contains('@') && crate::domain_of(w).is_some() && !w.starts_with('@') && w.len() <= 320
    })
    .map(|w| w.trim_matches(|c| c == '\'' || c == '"').to_owned())
}

pub(crate) fn read(input: &[u8]) -> Option<Bounce> {
    // Pasted text may be in any encoding; only ASCII matters for codes and addresses.
    let raw = String::from_utf8_lossy(input);
    let text: String = raw.replace("\r\n", "\n");
    let mut recipients: Vec<RecipientStatus> = Vec::new();
    let lines: Vec<&str> = text.lines().take(100_000).collect();
    for (i, line) in lines.iter().enumerate() {
        let Some(status) = enhanced_code(line) else {
            continue;
        };
        // The diagnostic line itself; the recipient is on it or on a line just above.
        let diagnostic: String = line.trim().chars().take(1000).collect();
        let recipient = address_in(line).or_else(|| {
            lines[i.saturating_sub(3)..i]
                .iter()
                .rev()
                .find_map(|l| address_in(l))
        });
        // Exchange: "mail.contoso.com #<exchange.contoso.com #5.7.1 smtp;530 5.7.1 …> #SMTP#"
        let remote_mta = line
            .trim()
            .split_once(" #<")
            .map(|(host, _)| host.trim().to_owned())
            .filter(|h| !h.is_empty() && !h.contains(' '));
        // Prefer the reply after "smtp;" when present.
        let reply_text = match diagnostic.find("smtp;") {
            Some(p) => diagnostic[p + 5..]
                .trim_end_matches(['>', '#', ' '])
                .split("> #")
                .next()
                .unwrap_or_default()
                .to_owned(),
            None => {
                // Exchange: "Remote Server returned '550 5.1.1 …'" (also "… returned \"…\"").
                let lower = diagnostic.to_ascii_lowercase();
                match lower.find("returned ") {
                    Some(p) => diagnostic[p + "returned ".len()..]
                        .trim()
                        .trim_matches(|c| c == '\'' || c == '"' || c == '<' || c == '>')
                        .to_owned(),
                    None => diagnostic.clone(),
                }
            }
        };
        let entry = RecipientStatus {
            recipient,
            original_recipient: None,
            action: Some(
                if status.starts_with('4') {
                    "delayed"
                } else {
                    "failed"
                }
                .to_owned(),
            ),
            status: Some(status),
            remote_mta,
            reply_code: reply_code(&reply_text),
            diagnostic: Some(reply_text),
        };
        if !recipients
            .iter()
            .any(|r| r.recipient == entry.recipient && r.status == entry.status)
        {
            recipients.push(entry);
        }
        if recipients.len() >= 100 {
            break;
        }
    }
    if recipients.is_empty() {
        return None;
    }
    let reporting_mta = find_value(
        &text,
        &["Generating server", "生成サーバー", "Reporting-MTA"],
    );
    let summary = lines
        .iter()
        .map(|l| l.trim())
        .find(|l| {
            l.len() > 20
                && !l.ends_with(':')
                && !l.ends_with('：')
                && enhanced_code(l).is_none()
                && !l.starts_with("Received")
        })
        .map(|l| l.chars().take(600).collect());
    // Original headers pasted below the diagnostic block.
    let original = match text
        .find("\nReceived:")
        .or_else(|| text.find("\nReceived-SPF:"))
    {
        Some(start) => crate::dsn::original_headers(&text[start + 1..]),
        None => OriginalHeaders::default(),
    };
    Some(Bounce {
        kind: BounceKind::Text,
        reporting_mta,
        summary,
        recipients,
        original,
        warnings: Vec::new(),
    })
}
