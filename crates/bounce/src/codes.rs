//! The table of status codes and what they mean: a TOML data file
//! (`crates/bounce/codes.toml`, compiled in), which users extend with their own
//! file of the same format. RFC 3463 gives the structure (class.subject.detail);
//! the entries add what operators see in practice (Exchange Online, Postfix,
//! Gmail) and which mxaudit check confirms the cause.

use serde::{Deserialize, Serialize};

use mxaudit_core::Lang;
use mxaudit_core::tomldoc::{self, Located};

use crate::RecipientStatus;

/// Who must act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    /// The sender (fix the address, resend).
    Sender,
    /// The sending domain's administrator (DNS, SPF, outbound servers).
    SenderAdmin,
    /// The recipient's administrator (their server, filters, connectors).
    RecipientAdmin,
    /// Nobody yet: a transient problem that may clear by itself.
    Wait,
}

/// Text in both languages.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Text {
    /// English.
    pub en: String,
    /// Japanese.
    pub ja: String,
}

/// One entry of the table.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CodeEntry {
    /// `5.1.1`, or with `*` for a part: `5.7.*`, `*.1.1`.
    pub status: String,
    /// A regex on the diagnostic text; entries with one are tried first.
    #[serde(default)]
    pub text: Option<String>,
    /// What it means.
    pub meaning: Text,
    /// Who must act.
    pub acts: Party,
    /// mxaudit plugins that confirm the cause.
    #[serde(default)]
    pub checks: Vec<String>,
    /// Which domain `--audit` examines: `sender` or `recipient`.
    #[serde(default)]
    pub audit: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TableFile {
    code: Vec<CodeEntry>,
}

/// Errors reading a code table.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodeTableError {
    /// Unreadable TOML or an unknown key; located.
    #[error("{0}")]
    Parse(#[from] Located),
    /// A `text` regex does not compile.
    #[error("{path}: code {status}: invalid text regex: {message}")]
    Regex {
        /// The file.
        path: String,
        /// The entry's status.
        status: String,
        /// Why.
        message: String,
    },
}

/// The table, built-in entries last so that a user's entries win.
#[derive(Debug, Clone)]
pub struct CodeTable {
    entries: Vec<(CodeEntry, Option<regex::Regex>)>,
}

/// A recipient's status explained.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Explained {
    /// The status code explained (enhanced, or derived from the reply code).
    pub status: Option<String>,
    /// `permanent` (5.x.x), `transient` (4.x.x) or `success` (2.x.x).
    pub kind: &'static str,
    /// What it means, in the chosen language.
    pub meaning: String,
    /// Who must act.
    pub acts: Party,
    /// Checks that confirm the cause.
    pub checks: Vec<String>,
    /// Which domain to audit.
    pub audit: Option<String>,
    /// The table entry that matched (`status` and `text` pattern), for the curious.
    pub matched: String,
}

const BUILTIN: &str = include_str!("../codes.toml");

impl CodeTable {
    /// The built-in table.
    pub fn builtin() -> Result<CodeTable, CodeTableError> {
        CodeTable::parse("builtin:crates/bounce/codes.toml", BUILTIN)
    }

    /// Parses a table file.
    pub fn parse(path: &str, source: &str) -> Result<CodeTable, CodeTableError> {
        let doc = tomldoc::parse(path, source)?;
        let file: TableFile = tomldoc::deserialize(path, source, doc)?;
        let mut entries = Vec::new();
        for e in file.code {
            let re = match &e.text {
                Some(t) => Some(
                    regex::RegexBuilder::new(t)
                        .size_limit(1 << 20)
                        .build()
                        .map_err(|err| CodeTableError::Regex {
                            path: path.to_owned(),
                            status: e.status.clone(),
                            message: err.to_string(),
                        })?,
                ),
                None => None,
            };
            entries.push((e, re));
        }
        Ok(CodeTable { entries })
    }

    /// Puts `other`'s entries before these (a user's table extends the built-in one).
    pub fn extend_front(&mut self, other: CodeTable) {
        let mut entries = other.entries;
        entries.append(&mut self.entries);
        self.entries = entries;
    }

    /// Explains one recipient's status.
    pub fn explain(&self, r: &RecipientStatus, lang: Lang) -> Explained {
        // Without an enhanced code, the reply code's class still says permanent or not.
        let status = r
            .status
            .clone()
            .or_else(|| r.reply_code.map(|c| format!("{}.0.0", c / 100)));
        let code = status.clone().unwrap_or_else(|| "5.0.0".to_owned());
        let diagnostic = r.diagnostic.as_deref().unwrap_or("");
        let by_text = self.entries.iter().find(|(e, re)| {
            re.as_ref().is_some_and(|re| re.is_match(diagnostic))
                && status_matches(&e.status, &code)
        });
        let by_exact = || {
            self.entries
                .iter()
                .find(|(e, re)| re.is_none() && e.status == code)
        };
        let by_pattern = || {
            self.entries
                .iter()
                .find(|(e, re)| re.is_none() && status_matches(&e.status, &code))
        };
        let kind = match code.chars().next() {
            Some('2') => "success",
            Some('4') => "transient",
            _ => "permanent",
        };
        match by_text.or_else(by_exact).or_else(by_pattern) {
            Some((e, _)) => Explained {
                status,
                kind,
                meaning: match lang {
                    Lang::En => e.meaning.en.clone(),
                    Lang::Ja => e.meaning.ja.clone(),
                },
                acts: if kind == "transient" && e.acts == Party::Sender {
                    Party::Wait
                } else {
                    e.acts
                },
                checks: e.checks.clone(),
                audit: e.audit.clone(),
                matched: match &e.text {
                    Some(t) => format!("{} /{t}/", e.status),
                    None => e.status.clone(),
                },
            },
            None => Explained {
                status,
                kind,
                meaning: match lang {
                    Lang::En => "Unknown status code; read the diagnostic text.".to_owned(),
                    Lang::Ja => {
                        "不明なステータス コードです。診断テキストを確認してください。".to_owned()
                    }
                },
                acts: Party::RecipientAdmin,
                checks: Vec::new(),
                audit: None,
                matched: String::new(),
            },
        }
    }
}

/// `5.7.*` matches `5.7.1`; `*.1.1` matches `5.1.1` and `4.1.1`.
fn status_matches(pattern: &str, code: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let c: Vec<&str> = code.split('.').collect();
    p.len() == 3 && c.len() == 3 && p.iter().zip(&c).all(|(p, c)| *p == "*" || p == c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_parses_and_matches() {
        let t = CodeTable::builtin().expect("builtin table");
        let r = |status: &str, diag: &str| RecipientStatus {
            status: Some(status.to_owned()),
            diagnostic: Some(diag.to_owned()),
            ..Default::default()
        };
        let e = t.explain(
            &r("5.0.0", "550 5.0.0 SPF MAIL FROM check failed (PermError)"),
            Lang::En,
        );
        assert!(e.checks.contains(&"spf".to_owned()), "{e:?}");
        assert_eq!(e.kind, "permanent");
        let e = t.explain(&r("5.1.1", "550 5.1.1 unknown user"), Lang::En);
        assert_eq!(e.acts, Party::Sender);
        let e = t.explain(
            &r("4.1.8", "451 4.1.8 Cannot resolve your domain"),
            Lang::Ja,
        );
        assert_eq!(e.kind, "transient");
        assert!(e.checks.contains(&"address".to_owned()));
        let e = t.explain(&r("5.9.99", "x"), Lang::En);
        assert!(!e.meaning.is_empty());
        assert!(status_matches("5.7.*", "5.7.1") && !status_matches("5.7.*", "4.7.1"));
    }
}
