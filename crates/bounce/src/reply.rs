//! SMTP reply codes (RFC 5321 §4.2) and enhanced status codes (RFC 3463) in
//! text, read only where they can be: a three-digit reply code standing alone
//! as a word, an enhanced code whose class is 2, 4 or 5 and whose subject is one
//! of the eight RFC 3463 defines (0–7). That rules out version strings
//! ("Apple Mail (2.753.1)", "Haraka/2.8.21", "Exim 4.92.3"), IP addresses,
//! dates and ports, which are the usual false readings of bounce text.

use std::sync::OnceLock;

use regex::Regex;

/// A reply found in text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SmtpReply {
    /// The three-digit reply code.
    pub code: u16,
    /// The enhanced status code written right after it (`550 5.1.1`), same class.
    pub enhanced: Option<String>,
    /// Byte offset of the reply code in the text.
    pub start: usize,
}

fn enhanced_re() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"([245])\.([0-7])\.([0-9]{1,3})").ok())
        .as_ref()
}

fn reply_re() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"([245][0-5][0-9])").ok())
        .as_ref()
}

fn char_before(text: &str, at: usize) -> Option<char> {
    text.get(..at).and_then(|s| s.chars().next_back())
}

fn char_after(text: &str, at: usize) -> Option<char> {
    text.get(at..).and_then(|s| s.chars().next())
}

/// Whether the enhanced code at `start..end` stands alone: not part of a dotted
/// number or a word (`v2.1.1`, `1.5.1.2`, `Haraka/2.8.21`).
fn enhanced_stands_alone(text: &str, start: usize, end: usize) -> bool {
    let before_ok = match char_before(text, start) {
        None => true,
        Some(c) if c.is_whitespace() => true,
        Some('(' | '[' | '#' | ':' | ';' | '\'' | '"' | '=' | '<' | ',' | '>' | '{') => true,
        // `550-5.1.1` (a multi-line reply) and `550 5.1.1`: a dash after a reply code.
        Some('-') => {
            let head = &text[..start - 1];
            head.len() >= 3
                && head.as_bytes()[head.len() - 3..]
                    .iter()
                    .all(u8::is_ascii_digit)
                && !head
                    .as_bytes()
                    .get(head.len().wrapping_sub(4))
                    .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'.')
        }
        Some(_) => false,
    };
    let after_ok = match char_after(text, end) {
        None => true,
        Some(c) if c.is_ascii_digit() || c.is_alphabetic() || c == '_' || c == '/' => false,
        // `5.1.1.2` is a dotted number, `5.1.1.` ends a sentence.
        Some('.') => !text
            .get(end + 1..)
            .and_then(|s| s.chars().next())
            .is_some_and(|c| c.is_ascii_alphanumeric()),
        Some('-') => !text
            .get(end + 1..)
            .and_then(|s| s.chars().next())
            .is_some_and(|c| c.is_ascii_digit()),
        Some(_) => true,
    };
    before_ok && after_ok
}

/// The first RFC 3463 enhanced status code in text whose class is 4 or 5
/// (a failure), standing alone.
pub(crate) fn enhanced_code_strict(text: &str) -> Option<String> {
    enhanced_codes(text)
        .into_iter()
        .find(|(c, _)| !c.starts_with('2'))
        .map(|(c, _)| c)
}

/// All enhanced status codes standing alone in text, with their byte offsets.
pub(crate) fn enhanced_codes(text: &str) -> Vec<(String, usize)> {
    let Some(re) = enhanced_re() else {
        return Vec::new();
    };
    re.captures_iter(text)
        .filter_map(|c| {
            let m = c.get(0)?;
            enhanced_stands_alone(text, m.start(), m.end())
                .then(|| (format!("{}.{}.{}", &c[1], &c[2], &c[3]), m.start()))
        })
        .take(1000)
        .collect()
}

/// The enhanced code at the start of a `Status:` field (RFC 3464 §2.3.4): the
/// field is authoritative, so any subject of up to three digits is accepted.
pub(crate) fn enhanced_code_in_field(value: &str) -> Option<String> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    let re = RE
        .get_or_init(|| Regex::new(r"^\s*([245])\.([0-9]{1,3})\.([0-9]{1,3})(?:[^0-9.]|$)").ok())
        .as_ref()?;
    re.captures(value)
        .map(|c| format!("{}.{}.{}", &c[1], &c[2], &c[3]))
}

/// Words after which a number is a reply from a server.
const REPLY_CUES: &[&str] = &[
    "said:",
    "said",
    "says:",
    "returned",
    "returned:",
    "replied:",
    "reply:",
    "response:",
    "error:",
    "code",
    "<<<",
    "smtp;",
    "reports:",
];

/// How a three-digit number at `start..end` reads: `None` not a reply code,
/// `Some(false)` a reply code only when something else says so (a cue word or
/// an enhanced code after it), `Some(true)` a reply code by its shape.
fn reply_shape(text: &str, start: usize, end: usize) -> Option<bool> {
    let before_ok = match char_before(text, start) {
        None => true,
        Some(c) if c.is_whitespace() => true,
        Some('(' | '[' | '\'' | '"' | ';' | ':' | '<' | '>' | '#' | '*' | '=') => true,
        Some(_) => false,
    };
    if !before_ok {
        return None;
    }
    // A reply code is followed by a space, a dash (multi-line), a colon, the end,
    // or a closing bracket (`[SMTP Error Code 550]`).
    match char_after(text, end) {
        None => Some(true),
        Some('-') => {
            // `550-5.1.1` is a reply; `400-8899` may be a telephone number, and
            // `521-71.84.17.139 blocked` a reply whose text starts with an address.
            let next_digit = text
                .get(end + 1..)
                .and_then(|s| s.chars().next())
                .is_some_and(|c| c.is_ascii_digit());
            Some(!next_digit)
        }
        Some(' ' | '\t' | ':' | ']' | ',' | '\'' | '"' | '>' | '\n' | '\r') => Some(true),
        Some(_) => None,
    }
}

fn enhanced_after(text: &str, end: usize, class: u16) -> Option<String> {
    let rest = text.get(end..)?;
    let skipped = rest.len()
        - rest
            .trim_start_matches([' ', '-', ':', '\t', '\n', '\r'])
            .len();
    if skipped > 6 {
        return None;
    }
    let at = end + skipped;
    let re = enhanced_re()?;
    let m = re.find(text.get(at..)?)?;
    if m.start() != 0 {
        return None;
    }
    let code = m.as_str();
    (code.starts_with(&(class / 100).to_string()) && enhanced_stands_alone(text, at, at + m.end()))
        .then(|| code.to_owned())
}

/// The first failure reply (4xx or 5xx) in text. When `is_reply` the text is an
/// SMTP reply (an `smtp` Diagnostic-Code), and its leading code is taken; else
/// a code counts when an enhanced code follows it (`550 5.1.1`), when a word
/// says a server replied (`said: 550`, `returned '550`), or when it starts a line.
pub(crate) fn reply_in_text(text: &str, is_reply: bool) -> Option<SmtpReply> {
    let re = reply_re()?;
    for m in re.find_iter(text).take(2000) {
        let (start, end) = (m.start(), m.end());
        let Some(by_shape) = reply_shape(text, start, end) else {
            continue;
        };
        let Ok(code) = m.as_str().parse::<u16>() else {
            continue;
        };
        let enhanced = enhanced_after(text, end, code);
        let head = text[..start].trim_end();
        let line_start = head.is_empty() || text[..start].ends_with('\n');
        let cued = {
            let lower = head.to_ascii_lowercase();
            REPLY_CUES.iter().any(|c| lower.ends_with(c))
                || lower.ends_with('\'')
                || lower.ends_with('"')
                || lower.ends_with(':')
                || lower.ends_with("smtp error code")
        };
        let leading = is_reply && text[..start].trim().is_empty();
        let shaped = by_shape && (line_start || leading);
        if code >= 400 && (enhanced.is_some() || cued || shaped) {
            return Some(SmtpReply {
                code,
                enhanced,
                start,
            });
        }
        if is_reply && leading && code < 400 {
            // A success reply in a diagnostic: keep looking for a failure.
            continue;
        }
    }
    None
}

/// All failure replies in text, in order (a transcript has several).
pub(crate) fn replies_in_text(text: &str) -> Vec<SmtpReply> {
    let mut out = Vec::new();
    let mut from = 0;
    while from < text.len() {
        let Some(rest) = text.get(from..) else { break };
        let Some(mut r) = reply_in_text(rest, false) else {
            break;
        };
        r.start += from;
        from = r.start + 3;
        out.push(r);
        if out.len() > 200 {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enhanced_codes_only_where_they_can_be() {
        assert_eq!(
            enhanced_code_strict("550 5.7.1 Client host rejected").as_deref(),
            Some("5.7.1")
        );
        assert_eq!(
            enhanced_code_strict("no mailbox (#5.1.1)").as_deref(),
            Some("5.1.1")
        );
        assert_eq!(
            enhanced_code_strict("550-5.1.1 The email account").as_deref(),
            Some("5.1.1")
        );
        assert_eq!(
            enhanced_code_strict("451 4.4.312 DNS query failed").as_deref(),
            Some("4.4.312")
        );
        assert_eq!(enhanced_code_strict("X-Mailer: Apple Mail (2.753.1)"), None);
        assert_eq!(enhanced_code_strict("(Haraka/2.8.21)"), None);
        assert_eq!(enhanced_code_strict("version 10.5.1.2"), None);
        assert_eq!(enhanced_code_strict("Exim 4.92.3 #2"), None);
        assert_eq!(enhanced_code_strict("host 192.168.5.1.1"), None);
        assert_eq!(
            enhanced_code_strict("5.1.1 at the start").as_deref(),
            Some("5.1.1")
        );
    }

    #[test]
    fn reply_codes_only_where_they_can_be() {
        let r = |t: &str| reply_in_text(t, false).map(|r| (r.code, r.enhanced));
        assert_eq!(
            r("said: 550 5.1.1 unknown"),
            Some((550, Some("5.1.1".into())))
        );
        assert_eq!(
            r("host x[1.2.3.4] said: 550\n    5.7.1 blocked"),
            Some((550, Some("5.7.1".into())))
        );
        assert_eq!(
            r("Remote Server returned '550 5.1.1 x'"),
            Some((550, Some("5.1.1".into())))
        );
        assert_eq!(
            r("550: 5.1.1 <x@y>: rejected"),
            Some((550, Some("5.1.1".into())))
        );
        assert_eq!(r("[SMTP Error Code 550]"), Some((550, None)));
        assert_eq!(r("call (480) 624-2500"), None);
        assert_eq!(r("host [194.25.134.9]:25"), None);
        assert_eq!(r("Sat, 31 Mar 2001 14:33:06"), None);
        assert_eq!(r("totalled 423 Kbytes"), None);
        assert_eq!(r("tel 400-8899"), None);
        // A transcript: the accepted RCPT is not the failure.
        assert_eq!(
            r("<<< 250 2.1.5 Ok\n>>> DATA\n<<< 451 4.3.0 Error"),
            Some((451, Some("4.3.0".into())))
        );
        assert_eq!(reply_in_text("255", true), None);
        assert_eq!(
            reply_in_text("550 unknown user", true).map(|r| r.code),
            Some(550)
        );
    }
}
