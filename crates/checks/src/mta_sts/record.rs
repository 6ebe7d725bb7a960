//! The MTA-STS TXT record at `_mta-sts.<domain>` (RFC 8461 §3.1).
//!
//! ```abnf
//! sts-text-record = sts-version 1*(sts-sep sts-field) [sts-sep]
//! sts-field       = sts-id / sts-extension
//! sts-version     = %s"v=STSv1"
//! sts-id          = %s"id=" 1*32(ALPHA / DIGIT)
//! sts-sep         = *WSP %x3B *WSP          ; ";"
//! sts-extension   = sts-ext-name "=" sts-ext-value
//! sts-ext-name    = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
//! sts-ext-value   = 1*(%x21-3A / %x3C / %x3E-7E)   ; VCHAR except ";" and "="
//! ```

/// A valid record: what senders read from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsRecord {
    /// `id=`: senders fetch the policy again when it changes (§3.1, §5.1).
    pub id: String,
}

/// True when a TXT record is meant as an MTA-STS record: it starts with
/// `v=STSv1` in any case. Senders keep only records that start exactly with
/// `v=STSv1;` (§3.1); a near miss is still the domain's attempt at one, and
/// saying why it is discarded helps more than calling it absent.
pub fn looks_like_sts(text: &str) -> bool {
    text.get(..7)
        .is_some_and(|v| v.eq_ignore_ascii_case("v=STSv1"))
}

fn is_wsp(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// `sts-ext-name` (§3.1), the same grammar as the policy's extension keys (§3.2).
pub(crate) fn is_ext_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() <= 32
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Parses a record (its strings joined, RFC 8461 §3.1 / RFC 7208 §3.3).
/// Returns the first problem, in words, when it is not valid.
pub fn parse_record(text: &str) -> Result<StsRecord, String> {
    let Some(rest) = text.strip_prefix("v=STSv1") else {
        return Err("the record must start with v=STSv1 (exactly so, case included)".to_owned());
    };
    let mut parts = rest.split(';');
    // Between the version and the first `;` only white space (sts-sep).
    if parts.next().is_some_and(|p| !p.chars().all(is_wsp)) {
        return Err("v=STSv1 must be followed by `;` before the next field".to_owned());
    }
    let parts: Vec<&str> = parts.collect();
    let mut id: Option<String> = None;
    for (i, raw) in parts.iter().enumerate() {
        let field = raw.trim_matches(is_wsp);
        if field.is_empty() {
            // Only the final separator may be followed by nothing ([sts-sep]).
            if i + 1 == parts.len() {
                continue;
            }
            return Err("empty field between `;` separators".to_owned());
        }
        let Some((name, value)) = field.split_once('=') else {
            return Err(format!("field `{}` is not name=value", clip(field)));
        };
        if name == "id" {
            let ok =
                (1..=32).contains(&value.len()) && value.chars().all(|c| c.is_ascii_alphanumeric());
            if !ok {
                return Err(format!(
                    "id=`{}` must be 1 to 32 letters or digits",
                    clip(value)
                ));
            }
            // The ABNF allows the field more than once; the first is the one
            // a sender compares.
            id.get_or_insert_with(|| value.to_owned());
            continue;
        }
        if !is_ext_name(name) {
            return Err(format!("field name `{}` is not valid", clip(name)));
        }
        let value_ok = !value.is_empty()
            && value
                .bytes()
                .all(|b| matches!(b, 0x21..=0x3a | 0x3c | 0x3e..=0x7e));
        if !value_ok {
            return Err(format!(
                "field {}=`{}` has a value with spaces, `=` or control characters",
                clip(name),
                clip(value)
            ));
        }
    }
    match id {
        Some(id) => Ok(StsRecord { id }),
        None => Err("the required id= field is missing".to_owned()),
    }
}

/// At most 60 characters of untrusted text, control characters escaped
/// (each output format escapes the rest).
pub(crate) fn clip(s: &str) -> String {
    clip_to(s, 60)
}

/// At most 300 characters of untrusted text (error chains), escaped.
pub(crate) fn clip_long(s: &str) -> String {
    clip_to(s, 300)
}

fn clip_to(s: &str, n: usize) -> String {
    let mut out = String::new();
    for c in s.chars().take(n) {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    if s.chars().count() > n {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8461_3_1_valid_records() {
        for (text, id) in [
            ("v=STSv1; id=20160831085700Z;", "20160831085700Z"),
            ("v=STSv1;id=1", "1"),
            ("v=STSv1 ; id=abc ; ", "abc"),
            ("v=STSv1; ext=x; id=ABC123", "ABC123"),
            ("v=STSv1;\tid=a;\tfuture.ext-1=val:ue", "a"),
        ] {
            assert_eq!(
                parse_record(text).map(|r| r.id),
                Ok(id.to_owned()),
                "{text}"
            );
        }
    }

    #[test]
    fn rfc8461_3_1_invalid_records() {
        for bad in [
            "v=STSv1 id=20260101",
            "v=STSv1",
            "v=STSv1;",
            "v=STSv1; id=",
            "v=STSv1; id=has-dash",
            "v=STSv1; id=123456789012345678901234567890123",
            "v=STSv1;; id=1",
            "v=STSv1; id=1; ext",
            "v=STSv1; id=1; ext=a b",
            "v=STSv1; id=1; _ext=x",
            "V=STSV1; id=1",
            "v=STSv2; id=1",
        ] {
            assert!(parse_record(bad).is_err(), "{bad} must be rejected");
        }
        assert!(looks_like_sts("V=STSV1; id=1"));
        assert!(!looks_like_sts("v=spf1 -all"));
    }
}
