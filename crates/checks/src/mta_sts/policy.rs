//! The MTA-STS policy body (RFC 8461 §3.2) and how senders match MX hosts
//! against it (§4.1).
//!
//! ```abnf
//! sts-policy-record        = sts-policy-field *WSP
//!                            *(sts-policy-term sts-policy-field *WSP)
//!                            [sts-policy-term]
//! sts-policy-field         = sts-policy-version      ; required once
//!                          / sts-policy-mode         ; required once
//!                          / sts-policy-max-age      ; required once
//!                          / sts-policy-mx           ; at least once, except with mode "none"
//!                          / sts-policy-extension    ; other fields
//! field-delim              = ":" *WSP
//! sts-policy-version       = %s"version" field-delim %s"STSv1"
//! sts-policy-mode          = %s"mode" field-delim (%s"testing" / %s"enforce" / %s"none")
//! sts-policy-mx            = %s"mx" field-delim ["*."] Domain    ; Domain: RFC 5321 §4.1.2
//! sts-policy-max-age       = %s"max_age" field-delim 1*10(DIGIT) ; at most 31557600
//! sts-policy-extension     = sts-policy-ext-name field-delim sts-policy-ext-value
//! sts-policy-ext-name      = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
//! sts-policy-term          = LF / CRLF
//! sts-policy-ext-value     = sts-policy-vchar *(*WSP sts-policy-vchar)
//! sts-policy-vchar         = VCHAR / UTF8-2 / UTF8-3 / UTF8-4
//! ```
//!
//! Parsed strictly, with three readings that follow what senders do rather
//! than a stricter letter: unknown fields are ignored and a repeated field
//! other than `mx` keeps its first value (§3.2 says both); the fields may come
//! in any order (the ABNF gives none); blank lines are skipped (the ABNF has
//! none, but senders such as postfix-mta-sts-resolver skip them, so flagging
//! one would be a false alarm).

use std::fmt;

use super::record::{clip, is_ext_name};

/// Bodies larger than this are refused. §3.3 leaves the limit to senders; a
/// real policy is a few hundred bytes, and 64 KiB leaves room for thousands of
/// `mx` lines.
pub const MAX_POLICY_BYTES: usize = 64 * 1024;

/// §3.2: `max_age` is at most 31557600 seconds (one year).
pub const MAX_AGE_LIMIT: u64 = 31_557_600;

/// `mode` (§5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Senders refuse MX hosts that fail the policy.
    Enforce,
    /// Senders deliver anyway and report failures (TLS-RPT).
    Testing,
    /// The domain withdrew its policy.
    None,
}

impl Mode {
    /// The policy word.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Testing => "testing",
            Mode::None => "none",
        }
    }
}

/// One `mx:` pattern: a host name, or `*.` and a domain (§3.2, §4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxPattern {
    /// `*.` prefix: exactly one more label on the left.
    pub wildcard: bool,
    /// The name after `*.`, lowercase, without a trailing dot.
    pub name: String,
}

impl MxPattern {
    /// Parses one `mx:` value (§3.2): a host name, or `*.` and a domain.
    pub fn parse(value: &str) -> Result<MxPattern, String> {
        mx_pattern(value)
    }

    /// §4.1: does this pattern cover MX host `host`? Case-insensitive; a
    /// trailing dot of the host is ignored; a wildcard stands for exactly one
    /// whole leftmost label (`*.example.com` covers `mx.example.com`, not
    /// `example.com` nor `a.b.example.com`).
    pub fn covers(&self, host: &str) -> bool {
        let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        if !self.wildcard {
            return host == self.name;
        }
        match host.split_once('.') {
            Some((label, rest)) => !label.is_empty() && rest == self.name,
            None => false,
        }
    }
}

impl fmt::Display for MxPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard {
            f.write_str("*.")?;
        }
        f.write_str(&self.name)
    }
}

/// A valid policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `mode`.
    pub mode: Mode,
    /// `max_age`, seconds.
    pub max_age: u64,
    /// The `mx` patterns, in order.
    pub mx: Vec<MxPattern>,
}

impl Policy {
    /// The first pattern that covers `host`, if any (§4.1).
    pub fn covering(&self, host: &str) -> Option<&MxPattern> {
        self.mx.iter().find(|p| p.covers(host))
    }

    /// The patterns as written, comma-separated.
    pub fn patterns(&self) -> String {
        self.mx
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Why a body is not a valid policy: the first problem, with its line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{problem}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct PolicySyntaxError {
    /// 1-based line, when the problem is on one line.
    pub line: Option<usize>,
    /// What is wrong.
    pub problem: String,
}

fn at(line: usize, problem: impl Into<String>) -> PolicySyntaxError {
    PolicySyntaxError {
        line: Some(line),
        problem: problem.into(),
    }
}

fn whole(problem: impl Into<String>) -> PolicySyntaxError {
    PolicySyntaxError {
        line: None,
        problem: problem.into(),
    }
}

fn is_wsp(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// `Domain` of RFC 5321 §4.1.2: dot-separated labels of letters, digits and
/// inner hyphens; IDNs only as A-labels (§3.2).
fn is_domain(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn mx_pattern(value: &str) -> Result<MxPattern, String> {
    let (wildcard, name) = match value.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    if is_domain(name) {
        return Ok(MxPattern {
            wildcard,
            name: name.to_ascii_lowercase(),
        });
    }
    let why = if name.ends_with('.') {
        "a trailing dot is not allowed"
    } else if name.contains('*') {
        "a wildcard may only be a whole leftmost label, as in *.example.com"
    } else if !name.is_ascii() {
        "internationalised names must be written as A-labels (xn--…)"
    } else {
        "not a host name"
    };
    Err(format!("mx `{}`: {why}", clip(value)))
}

/// Parses a policy body strictly (see the module comment).
pub fn parse(body: &[u8]) -> Result<Policy, PolicySyntaxError> {
    if body.len() > MAX_POLICY_BYTES {
        return Err(whole(format!(
            "the policy is larger than {} KiB",
            MAX_POLICY_BYTES / 1024
        )));
    }
    let text = std::str::from_utf8(body).map_err(|e| {
        whole(format!(
            "the policy is not UTF-8 text (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    let mut version: Option<&str> = None;
    let mut mode: Option<(usize, &str)> = None;
    let mut max_age: Option<(usize, &str)> = None;
    let mut mx: Vec<MxPattern> = Vec::new();
    // sts-policy-term is LF or CRLF: split on LF, then drop one CR before it.
    let body_text = text.strip_suffix('\n').unwrap_or(text);
    for (i, raw) in body_text.split('\n').enumerate() {
        let n = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.contains('\r') {
            return Err(at(n, "a carriage return not followed by a line feed"));
        }
        if line.chars().all(is_wsp) {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(at(n, format!("`{}` is not key: value", clip(line))));
        };
        if !is_ext_name(key) {
            return Err(at(
                n,
                format!(
                    "`{}` is not a field name (letters, digits, `_`, `-`, `.`, no space before `:`)",
                    clip(key)
                ),
            ));
        }
        let value = value.trim_matches(is_wsp);
        if value.is_empty() {
            return Err(at(n, format!("{key} has no value")));
        }
        if value.chars().any(char::is_control) {
            return Err(at(n, format!("{key} has a control character in its value")));
        }
        match key {
            // §3.2: a repeated field other than mx keeps its first value.
            "version" => {
                version.get_or_insert(value);
            }
            "mode" => {
                mode.get_or_insert((n, value));
            }
            "max_age" => {
                max_age.get_or_insert((n, value));
            }
            "mx" => mx.push(mx_pattern(value).map_err(|e| at(n, e))?),
            // §3.2: unknown fields are ignored.
            _ => {}
        }
    }
    match version {
        Some("STSv1") => {}
        Some(other) => {
            return Err(whole(format!("version is `{}`, not STSv1", clip(other))));
        }
        None => return Err(whole("the required field version: STSv1 is missing")),
    }
    let mode = match mode {
        Some((_, "enforce")) => Mode::Enforce,
        Some((_, "testing")) => Mode::Testing,
        Some((_, "none")) => Mode::None,
        Some((n, other)) => {
            return Err(at(
                n,
                format!("mode `{}` is not enforce, testing or none", clip(other)),
            ));
        }
        None => return Err(whole("the required field mode is missing")),
    };
    let max_age = match max_age {
        Some((n, v)) => {
            let digits = !v.is_empty() && v.len() <= 10 && v.bytes().all(|b| b.is_ascii_digit());
            match v.parse::<u64>() {
                Ok(secs) if digits && secs <= MAX_AGE_LIMIT => secs,
                _ => {
                    return Err(at(
                        n,
                        format!(
                            "max_age `{}` is not a number of seconds from 0 to {MAX_AGE_LIMIT}",
                            clip(v)
                        ),
                    ));
                }
            }
        }
        None => return Err(whole("the required field max_age is missing")),
    };
    if mx.is_empty() && mode != Mode::None {
        return Err(whole(format!(
            "no mx field: mode {} needs at least one",
            mode.as_str()
        )));
    }
    Ok(Policy { mode, max_age, mx })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(p: &str) -> MxPattern {
        mx_pattern(p).expect("pattern")
    }

    #[test]
    fn rfc8461_3_2_example_policy() {
        let p = parse(
            b"version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmx: backupmx.example.com\nmax_age: 604800\n",
        )
        .expect("valid");
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(p.max_age, 604_800);
        assert_eq!(
            p.patterns(),
            "mail.example.com, *.example.net, backupmx.example.com"
        );
    }

    #[test]
    fn rfc8461_3_2_line_endings_order_unknown_and_repeated_fields() {
        let crlf =
            parse(b"version: STSv1\r\nmode: testing\r\nmx: MX.Example.com\r\nmax_age: 86400\r\n")
                .expect("CRLF");
        assert_eq!(crlf.mode, Mode::Testing);
        assert_eq!(crlf.mx[0].name, "mx.example.com");
        let any_order = parse(b"max_age:1\nmx:a.example\nmode:\tenforce\nversion: STSv1")
            .expect("any order, no final newline, tab after the colon");
        assert_eq!(any_order.max_age, 1);
        let extra = parse(
            b"version: STSv1\nfuture_field: some value with spaces\nmode: enforce\nmode: none\nmx: a.example\nmax_age: 0\n\n",
        )
        .expect("unknown field ignored, first mode kept, blank line skipped");
        assert_eq!(extra.mode, Mode::Enforce);
        let none =
            parse(b"version: STSv1\nmode: none\nmax_age: 86400\n").expect("none needs no mx");
        assert!(none.mx.is_empty());
    }

    #[test]
    fn rfc8461_3_2_invalid_policies() {
        for (body, needle) in [
            (
                &b"mode: enforce\nmx: a.example\nmax_age: 1\n"[..],
                "version",
            ),
            (
                b"version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n",
                "STSv1",
            ),
            (
                b"version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 1\n",
                "mode",
            ),
            (
                b"version: STSv1\nMode: enforce\nmx: a.example\nmax_age: 1\n",
                "mode",
            ),
            (b"version: STSv1\nmode: enforce\nmax_age: 1\n", "no mx"),
            (b"version: STSv1\nmode: enforce\nmx: a.example\n", "max_age"),
            (
                b"version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 31557601\n",
                "max_age",
            ),
            (
                b"version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n",
                "max_age",
            ),
            (
                b"version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 12345678901\n",
                "max_age",
            ),
            (
                b"version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1 day\n",
                "max_age",
            ),
            (
                b"version: STSv1\nmode: enforce\nmx: mail.*.example\nmax_age: 1\n",
                "wildcard",
            ),
            (
                b"version: STSv1\nmode: enforce\nmx: *example.com\nmax_age: 1\n",
                "wildcard",
            ),
            (
                b"version: STSv1\nmode: enforce\nmx: *\nmax_age: 1\n",
                "wildcard",
            ),
            (
                b"version: STSv1\nmode: enforce\nmx: mail.example.com.\nmax_age: 1\n",
                "trailing dot",
            ),
            (
                b"version: STSv1\nmode: enforce\nmx: -bad.example\nmax_age: 1\n",
                "host name",
            ),
            (
                "version: STSv1\nmode: enforce\nmx: mäil.example\nmax_age: 1\n".as_bytes(),
                "A-labels",
            ),
            (
                b"version: STSv1\nmode : enforce\nmx: a.example\nmax_age: 1\n",
                "field name",
            ),
            (
                b"version: STSv1\nmode enforce\nmx: a.example\nmax_age: 1\n",
                "key: value",
            ),
            (
                b"version: STSv1\rmode: enforce\nmx: a.example\nmax_age: 1\n",
                "carriage return",
            ),
            (
                b"version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\nx: \x00\n",
                "control",
            ),
            (
                b"version: STSv1\nmode: enforce\nmx:\nmax_age: 1\n",
                "no value",
            ),
            (b"version: STSv1\nmode: enforce\n\xff\xfe\n", "UTF-8"),
            (b"<html><body>Not found</body></html>", "key: value"),
        ] {
            let err = parse(body).expect_err(&String::from_utf8_lossy(body));
            assert!(
                err.to_string().contains(needle),
                "{:?}: {err}",
                String::from_utf8_lossy(body)
            );
        }
        let huge = vec![b'a'; MAX_POLICY_BYTES + 1];
        assert!(parse(&huge).expect_err("huge").problem.contains("larger"));
        let err =
            parse(b"version: STSv1\nmode: enforce\nmx: a.example\nmx: b..example\nmax_age: 1\n")
                .expect_err("bad mx");
        assert_eq!(err.line, Some(4));
    }

    #[test]
    fn rfc8461_4_1_wildcards_match_one_leftmost_label() {
        let w = pattern("*.example.com");
        assert!(w.covers("mx.example.com"));
        assert!(w.covers("MX.Example.COM."));
        assert!(!w.covers("example.com"));
        assert!(!w.covers("a.b.example.com"));
        assert!(!w.covers("mxexample.com"));
        assert!(!w.covers(".example.com"));
        let exact = pattern("Mail.Example.com");
        assert!(exact.covers("mail.example.com."));
        assert!(!exact.covers("mail.example.com.evil.test"));
        assert!(!exact.covers("x.mail.example.com"));
        let m365 = pattern("*.mail.protection.outlook.com");
        assert!(m365.covers("contoso-com.mail.protection.outlook.com."));
        assert!(!m365.covers("mail.protection.outlook.com"));
    }
}
