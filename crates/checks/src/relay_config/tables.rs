//! Postfix lookup tables named in the settings (`type:name`, postconf(5)
//! "lookup tables", DATABASE_README): the ones whose contents are in the
//! settings themselves (`inline:{…}`, `static:…`), and the file-based ones
//! whose source text the user supplied (`--tables DIR`). Database-backed
//! tables (ldap, mysql, …) and files not supplied cannot be read.

use super::postfix_syntax::split_list;

/// How keys of a table match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKeys {
    /// Exact strings (and their parent domains / address prefixes).
    Exact,
    /// Network blocks (`cidr:`).
    Cidr,
    /// Regular expressions (`regexp:`, `pcre:`): not evaluated here.
    Regex,
    /// Every key matches (`static:`).
    Everything,
}

/// A table as the review sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// `type:name` as written.
    pub spec: String,
    /// `(key, action)` pairs, or `None` when the contents are unknown.
    pub entries: Option<Vec<(String, String)>>,
    /// How keys match.
    pub keys: TableKeys,
}

/// A table's answer, as smtpd reads it (smtpd_check.c, check_table_result).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `OK`, `RELAY` or all digits.
    Permit,
    /// `REJECT`, `DEFER`, `DEFER_IF_PERMIT`, a 4xx/5xx reply.
    Reject,
    /// DUNNO, WARN, HOLD, DISCARD, … (nothing that relays).
    Other,
    /// A restriction list (or class name) evaluated in place.
    Restrictions(String),
}

impl Action {
    /// Classifies an action text.
    pub fn of(text: &str) -> Action {
        let t = text.trim();
        let word = t.split_whitespace().next().unwrap_or("");
        let upper = word.to_ascii_uppercase();
        if upper == "OK"
            || upper == "RELAY"
            || (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        {
            return Action::Permit;
        }
        if matches!(upper.as_str(), "REJECT" | "DEFER" | "DEFER_IF_PERMIT")
            || (word.len() == 3 && matches!(word.as_bytes()[0], b'4' | b'5'))
        {
            return Action::Reject;
        }
        if matches!(
            upper.as_str(),
            "DUNNO"
                | "WARN"
                | "INFO"
                | "HOLD"
                | "DISCARD"
                | "DELAY"
                | "HANGUP"
                | "FILTER"
                | "PREPEND"
                | "REDIRECT"
                | "BCC"
                | "DEFER_IF_REJECT"
                | ""
        ) {
            return Action::Other;
        }
        Action::Restrictions(t.to_owned())
    }
}

/// File-backed types whose source is a text file of `key value` lines
/// (postmap(1) input format).
const KEY_VALUE_TYPES: &[&str] = &[
    "hash", "btree", "lmdb", "cdb", "dbm", "sdbm", "texthash", "fail",
];

/// The type and name of `type:name`, with `proxy:` removed.
pub fn split_spec(spec: &str) -> Option<(&str, &str)> {
    let (kind, name) = spec.split_once(':')?;
    if kind.eq_ignore_ascii_case("proxy") {
        return split_spec(name);
    }
    Some((kind, name))
}

/// The path of a file-backed table whose text the user could supply.
pub fn file_of(spec: &str) -> Option<&str> {
    let (kind, name) = split_spec(spec)?;
    let kind = kind.to_ascii_lowercase();
    (KEY_VALUE_TYPES.contains(&kind.as_str())
        || matches!(kind.as_str(), "cidr" | "regexp" | "pcre"))
    .then_some(name)
    .filter(|n| n.starts_with('/'))
}

/// The table named `spec`, with `text` the contents of its source file when
/// the user supplied it.
pub fn parse_spec(spec: &str, text: Option<&str>) -> Table {
    let unknown = |keys| Table {
        spec: spec.to_owned(),
        entries: None,
        keys,
    };
    let Some((kind, name)) = split_spec(spec) else {
        return unknown(TableKeys::Exact);
    };
    let kind = kind.to_ascii_lowercase();
    match kind.as_str() {
        "inline" => {
            let inner = name
                .trim()
                .strip_prefix('{')
                .and_then(|s| s.strip_suffix('}'))
                .unwrap_or(name);
            let entries = split_list(inner)
                .into_iter()
                .filter_map(|e| {
                    let e = e
                        .strip_prefix('{')
                        .and_then(|s| s.strip_suffix('}'))
                        .unwrap_or(&e)
                        .to_owned();
                    e.split_once('=')
                        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                })
                .collect();
            Table {
                spec: spec.to_owned(),
                entries: Some(entries),
                keys: TableKeys::Exact,
            }
        }
        "static" => {
            let value = name
                .trim()
                .strip_prefix('{')
                .and_then(|s| s.strip_suffix('}'))
                .unwrap_or(name)
                .trim()
                .to_owned();
            Table {
                spec: spec.to_owned(),
                entries: Some(vec![("*".to_owned(), value)]),
                keys: TableKeys::Everything,
            }
        }
        "cidr" => match text {
            Some(t) => Table {
                spec: spec.to_owned(),
                entries: Some(key_value_lines(t)),
                keys: TableKeys::Cidr,
            },
            None => unknown(TableKeys::Cidr),
        },
        "regexp" | "pcre" => match text {
            Some(t) => Table {
                spec: spec.to_owned(),
                entries: Some(regex_lines(t)),
                keys: TableKeys::Regex,
            },
            None => unknown(TableKeys::Regex),
        },
        k if KEY_VALUE_TYPES.contains(&k) => match text {
            Some(t) => Table {
                spec: spec.to_owned(),
                entries: Some(key_value_lines(t)),
                keys: TableKeys::Exact,
            },
            None => unknown(TableKeys::Exact),
        },
        _ => unknown(TableKeys::Exact),
    }
}

/// `key value` lines with `#` comments and whitespace continuation (postmap(1)).
fn key_value_lines(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = out.last_mut() {
                v.push(' ');
                v.push_str(trimmed);
            }
            continue;
        }
        let (k, v) = trimmed
            .split_once(char::is_whitespace)
            .unwrap_or((trimmed, ""));
        out.push((k.to_owned(), v.trim().to_owned()));
    }
    out
}

/// `/pattern/flags action` lines; `if`/`endif` lines are skipped.
fn regex_lines(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with("if ") || t == "endif" {
            continue;
        }
        let Some(rest) = t.strip_prefix('/').or_else(|| t.strip_prefix("!/")) else {
            continue;
        };
        if let Some(end) = rest.rfind('/') {
            let pattern = &rest[..end];
            let after = &rest[end + 1..];
            let action = after
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .trim();
            out.push((format!("/{pattern}/"), action.to_owned()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions() {
        assert_eq!(Action::of("OK"), Action::Permit);
        assert_eq!(Action::of("relay"), Action::Permit);
        assert_eq!(Action::of("200"), Action::Permit);
        assert_eq!(Action::of("REJECT go away"), Action::Reject);
        assert_eq!(Action::of("554 5.7.1 no"), Action::Reject);
        assert_eq!(Action::of("DUNNO"), Action::Other);
        assert_eq!(
            Action::of("permit_mynetworks, reject"),
            Action::Restrictions("permit_mynetworks, reject".to_owned())
        );
    }

    #[test]
    fn specs() {
        let t = parse_spec("inline:{ a.example=OK, { b.example = REJECT no } }", None);
        assert_eq!(
            t.entries,
            Some(vec![
                ("a.example".to_owned(), "OK".to_owned()),
                ("b.example".to_owned(), "REJECT no".to_owned())
            ])
        );
        assert_eq!(parse_spec("static:OK", None).keys, TableKeys::Everything);
        assert_eq!(parse_spec("hash:/etc/postfix/access", None).entries, None);
        let t = parse_spec(
            "proxy:hash:/etc/postfix/access",
            Some("# c\nexample.com   OK\n10.1  REJECT\n  continued\n"),
        );
        assert_eq!(
            t.entries,
            Some(vec![
                ("example.com".to_owned(), "OK".to_owned()),
                ("10.1".to_owned(), "REJECT continued".to_owned())
            ])
        );
        assert_eq!(
            file_of("proxy:hash:/etc/postfix/access"),
            Some("/etc/postfix/access")
        );
        assert_eq!(file_of("ldap:/etc/postfix/ldap.cf"), None);
        let t = parse_spec(
            "pcre:/etc/postfix/helo.pcre",
            Some("/^\\[/ REJECT\n/./i OK\n"),
        );
        assert_eq!(t.entries.map(|e| e.len()), Some(2));
    }
}
