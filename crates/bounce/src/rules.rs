//! The reader's knowledge, declared in TOML and compiled in: status codes
//! (`codes.toml`), reasons in words (`reasons.toml`) and per-MTA text patterns
//! (`patterns.toml`). A user's file of the same format (any of the tables) is
//! put in front of the built-in one, so their entries win. Every error names
//! the file, line and column, and the key (a bad regex included).

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use mxaudit_core::tomldoc::{self, Located};

use crate::codes::{CodeEntry, Party, Text};

/// Which domain `--audit` examines for a cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audit {
    /// The original sender's domain.
    Sender,
    /// The failed recipient's domain.
    Recipient,
}

/// Errors reading a rules file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RulesError {
    /// Unreadable TOML, an unknown key, a bad regex or value; located.
    #[error("{0}")]
    Located(#[from] Located),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    code: Vec<CodeEntryFile>,
    #[serde(default)]
    reason: Vec<ReasonFile>,
    #[serde(default)]
    mta: Vec<MtaFile>,
    #[serde(default)]
    signal: Vec<SignalFile>,
    #[serde(default)]
    recipient: Vec<RecipientFile>,
    #[serde(default)]
    value: Vec<ValueFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ValueFile {
    name: ValueName,
    pattern: Spanned<String>,
}

/// A value read from report text by a `[[value]]` pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ValueName {
    /// The server that wrote the bounce.
    ReportingMta,
    /// The server that refused the message.
    RemoteMta,
}

/// A `[[value]]` pattern with its named group `value`.
#[derive(Debug, Clone)]
pub(crate) struct ValueRule {
    pub name: ValueName,
    pub pattern: Regex,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeEntryFile {
    status: Spanned<String>,
    #[serde(default)]
    text: Option<Spanned<String>>,
    meaning: Text,
    acts: Party,
    #[serde(default)]
    checks: Vec<String>,
    #[serde(default)]
    audit: Option<Audit>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonFile {
    id: String,
    name: Text,
    meaning: Text,
    acts: Party,
    #[serde(default)]
    checks: Vec<String>,
    #[serde(default)]
    audit: Option<Audit>,
    #[serde(default)]
    status: Vec<Spanned<String>>,
    #[serde(default)]
    text: Vec<Spanned<String>>,
}

/// Patterns on the parts of a message; a matcher matches when any pattern does.
struct MatcherFile<'a> {
    from: &'a [Spanned<String>],
    subject: &'a [Spanned<String>],
    headers: &'a [Spanned<String>],
    body: &'a [Spanned<String>],
}

// No `#[serde(flatten)]` of the matcher: with it serde stops denying unknown
// keys (style.md), so the matcher's four keys are spelled out here.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MtaFile {
    id: String,
    name: String,
    #[serde(default)]
    from: Vec<Spanned<String>>,
    #[serde(default)]
    subject: Vec<Spanned<String>>,
    #[serde(default)]
    headers: Vec<Spanned<String>>,
    #[serde(default)]
    body: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignalFile {
    kind: SignalKind,
    #[serde(default)]
    from: Vec<Spanned<String>>,
    #[serde(default)]
    subject: Vec<Spanned<String>>,
    #[serde(default)]
    headers: Vec<Spanned<String>>,
    #[serde(default)]
    body: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecipientFile {
    id: String,
    #[serde(default)]
    mta: Option<String>,
    #[serde(default)]
    pattern: Option<Spanned<String>>,
    #[serde(default)]
    follows: Option<Spanned<String>>,
}

/// What a signal says about a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SignalKind {
    /// The message is a bounce (a non-delivery or delay report).
    Bounce,
    /// The message is an automatic reply (RFC 3834), not a bounce.
    AutoReply,
    /// The report is a warning: delivery is delayed and still being tried.
    Delayed,
    /// This body line starts the returned message; the report ends above it.
    End,
    /// Addresses on a body line matching this are not failed recipients
    /// (senders, contacts); a named group `address` narrows it to one address.
    NotRecipient,
}

/// Compiled patterns on a message's parts.
#[derive(Debug, Clone, Default)]
pub(crate) struct Matcher {
    pub from: Vec<Regex>,
    pub subject: Vec<Regex>,
    pub headers: Vec<Regex>,
    pub body: Vec<Regex>,
}

/// A code table entry with its compiled text pattern.
#[derive(Debug, Clone)]
pub(crate) struct CodeRule {
    pub entry: CodeEntry,
    pub text: Option<Regex>,
}

/// A reason in words.
#[derive(Debug, Clone)]
pub(crate) struct ReasonRule {
    pub id: String,
    pub name: Text,
    pub meaning: Text,
    pub acts: Party,
    pub checks: Vec<String>,
    pub audit: Option<Audit>,
    pub status: Vec<String>,
    pub text: Vec<Regex>,
}

/// An MTA recognised by its bounce text.
#[derive(Debug, Clone)]
pub(crate) struct MtaRule {
    pub id: String,
    pub name: String,
    pub matcher: Matcher,
}

/// A signal.
#[derive(Debug, Clone)]
pub(crate) struct SignalRule {
    pub kind: SignalKind,
    pub matcher: Matcher,
}

/// A recipient line: `pattern` captures `recipient` on the line; `follows`
/// matches a line after which address-led lines name recipients.
#[derive(Debug, Clone)]
pub(crate) struct RecipientRule {
    pub id: String,
    pub mta: Option<String>,
    pub pattern: Option<Regex>,
    pub follows: Option<Regex>,
}

/// All rules, a user's in front of the built-in ones.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub(crate) codes: Vec<CodeRule>,
    pub(crate) reasons: Vec<ReasonRule>,
    pub(crate) mtas: Vec<MtaRule>,
    pub(crate) signals: Vec<SignalRule>,
    pub(crate) recipients: Vec<RecipientRule>,
    pub(crate) values: Vec<ValueRule>,
}

const BUILTIN: &[(&str, &str)] = &[
    (
        "builtin:crates/bounce/patterns.toml",
        include_str!("../patterns.toml"),
    ),
    (
        "builtin:crates/bounce/reasons.toml",
        include_str!("../reasons.toml"),
    ),
    (
        "builtin:crates/bounce/codes.toml",
        include_str!("../codes.toml"),
    ),
];

struct Compiler<'a> {
    path: &'a str,
    source: &'a str,
}

impl Compiler<'_> {
    fn regex(&self, key: &str, s: &Spanned<String>) -> Result<Regex, Located> {
        RegexBuilder::new(s.get_ref())
            .size_limit(1 << 20)
            .dfa_size_limit(4 << 20)
            .build()
            .map_err(|e| {
                Located::at(
                    self.path,
                    self.source,
                    Some(s.span()),
                    format!("{key}: invalid regular expression: {e}"),
                )
            })
    }

    fn regexes(&self, key: &str, list: &[Spanned<String>]) -> Result<Vec<Regex>, Located> {
        list.iter()
            .enumerate()
            .map(|(i, s)| self.regex(&format!("{key}[{i}]"), s))
            .collect()
    }

    fn matcher(&self, key: &str, m: &MatcherFile<'_>) -> Result<Matcher, Located> {
        Ok(Matcher {
            from: self.regexes(&format!("{key}.from"), m.from)?,
            subject: self.regexes(&format!("{key}.subject"), m.subject)?,
            headers: self.regexes(&format!("{key}.headers"), m.headers)?,
            body: self.regexes(&format!("{key}.body"), m.body)?,
        })
    }

    fn status_pattern(&self, key: &str, s: &Spanned<String>) -> Result<String, Located> {
        let v = s.get_ref();
        let parts: Vec<&str> = v.split('.').collect();
        let ok = parts.len() == 3
            && matches!(parts[0], "2" | "4" | "5" | "*")
            && parts[1..].iter().all(|p| {
                *p == "*"
                    || (!p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
            });
        if ok {
            Ok(v.clone())
        } else {
            Err(Located::at(
                self.path,
                self.source,
                Some(s.span()),
                format!(
                    "{key}: `{v}` is not a status code like 5.1.1 or a pattern like 5.7.* (RFC 3463)"
                ),
            ))
        }
    }
}

impl Rules {
    /// The built-in rules.
    pub fn builtin() -> Result<Rules, RulesError> {
        let mut all = Rules::default();
        for (path, source) in BUILTIN {
            let r = Rules::parse(path, source)?;
            all.append(r);
        }
        Ok(all)
    }

    /// Parses a rules file (any of `[[code]]`, `[[reason]]`, `[[mta]]`,
    /// `[[signal]]`, `[[recipient]]`).
    pub fn parse(path: &str, source: &str) -> Result<Rules, RulesError> {
        let doc = tomldoc::parse(path, source)?;
        let file: RulesFile = tomldoc::deserialize(path, source, doc)?;
        let c = Compiler { path, source };
        let mut rules = Rules::default();
        for (i, e) in file.code.iter().enumerate() {
            let key = format!("code[{i}]");
            let status = c.status_pattern(&format!("{key}.status"), &e.status)?;
            let text = match &e.text {
                Some(t) => Some(c.regex(&format!("{key}.text"), t)?),
                None => None,
            };
            rules.codes.push(CodeRule {
                entry: CodeEntry {
                    status,
                    text: e.text.as_ref().map(|t| t.get_ref().clone()),
                    meaning: e.meaning.clone(),
                    acts: e.acts,
                    checks: e.checks.clone(),
                    audit: e.audit,
                },
                text,
            });
        }
        for (i, r) in file.reason.iter().enumerate() {
            let key = format!("reason[{i}] ({})", r.id);
            rules.reasons.push(ReasonRule {
                id: r.id.clone(),
                name: r.name.clone(),
                meaning: r.meaning.clone(),
                acts: r.acts,
                checks: r.checks.clone(),
                audit: r.audit,
                status: r
                    .status
                    .iter()
                    .enumerate()
                    .map(|(j, s)| c.status_pattern(&format!("{key}.status[{j}]"), s))
                    .collect::<Result<_, _>>()?,
                text: c.regexes(&format!("{key}.text"), &r.text)?,
            });
        }
        for (i, m) in file.mta.iter().enumerate() {
            rules.mtas.push(MtaRule {
                id: m.id.clone(),
                name: m.name.clone(),
                matcher: c.matcher(
                    &format!("mta[{i}] ({})", m.id),
                    &MatcherFile {
                        from: &m.from,
                        subject: &m.subject,
                        headers: &m.headers,
                        body: &m.body,
                    },
                )?,
            });
        }
        for (i, s) in file.signal.iter().enumerate() {
            rules.signals.push(SignalRule {
                kind: s.kind,
                matcher: c.matcher(
                    &format!("signal[{i}]"),
                    &MatcherFile {
                        from: &s.from,
                        subject: &s.subject,
                        headers: &s.headers,
                        body: &s.body,
                    },
                )?,
            });
        }
        for (i, r) in file.recipient.iter().enumerate() {
            let key = format!("recipient[{i}] ({})", r.id);
            let pattern = match &r.pattern {
                Some(p) => {
                    let re = c.regex(&format!("{key}.pattern"), p)?;
                    if !re.capture_names().any(|n| n == Some("recipient")) {
                        return Err(Located::at(
                            path,
                            source,
                            Some(p.span()),
                            format!("{key}.pattern: needs a named group `(?P<recipient>…)`"),
                        )
                        .into());
                    }
                    Some(re)
                }
                None => None,
            };
            let follows = match &r.follows {
                Some(p) => Some(c.regex(&format!("{key}.follows"), p)?),
                None => None,
            };
            if pattern.is_none() && follows.is_none() {
                return Err(Located::at(
                    path,
                    source,
                    None,
                    format!("{key}: needs `pattern` or `follows`"),
                )
                .into());
            }
            rules.recipients.push(RecipientRule {
                id: r.id.clone(),
                mta: r.mta.clone(),
                pattern,
                follows,
            });
        }
        for (i, v) in file.value.iter().enumerate() {
            let key = format!("value[{i}]");
            let re = c.regex(&format!("{key}.pattern"), &v.pattern)?;
            if !re.capture_names().any(|n| n == Some("value")) {
                return Err(Located::at(
                    path,
                    source,
                    Some(v.pattern.span()),
                    format!("{key}.pattern: needs a named group `(?P<value>…)`"),
                )
                .into());
            }
            rules.values.push(ValueRule {
                name: v.name,
                pattern: re,
            });
        }
        Ok(rules)
    }

    fn append(&mut self, other: Rules) {
        self.codes.extend(other.codes);
        self.reasons.extend(other.reasons);
        self.mtas.extend(other.mtas);
        self.signals.extend(other.signals);
        self.recipients.extend(other.recipients);
        self.values.extend(other.values);
    }

    /// Puts `other`'s entries before these (a user's rules extend the built-in ones).
    pub fn extend_front(&mut self, mut other: Rules) {
        other.append(std::mem::take(self));
        *self = other;
    }

    /// The reason with this id.
    pub(crate) fn reason(&self, id: &str) -> Option<&ReasonRule> {
        self.reasons.iter().find(|r| r.id == id)
    }

    /// Ids and names of all reasons, for documentation and tests.
    pub fn reason_ids(&self) -> Vec<&str> {
        self.reasons.iter().map(|r| r.id.as_str()).collect()
    }

    /// Plugin ids named by codes and reasons (a test ties them to plugins/).
    pub fn named_checks(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self
            .codes
            .iter()
            .flat_map(|c| c.entry.checks.iter())
            .chain(self.reasons.iter().flat_map(|r| r.checks.iter()))
            .map(String::as_str)
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// `5.7.*` matches `5.7.1`; `*.1.1` matches `5.1.1` and `4.1.1`.
pub(crate) fn status_matches(pattern: &str, code: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let c: Vec<&str> = code.split('.').collect();
    p.len() == 3 && c.len() == 3 && p.iter().zip(&c).all(|(p, c)| *p == "*" || p == c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_rules_compile() {
        let r = Rules::builtin().expect("builtin rules");
        assert!(!r.codes.is_empty() && !r.reasons.is_empty() && !r.recipients.is_empty());
        assert!(status_matches("5.7.*", "5.7.1") && !status_matches("5.7.*", "4.7.1"));
    }

    #[test]
    fn bad_regex_is_located() {
        let src = "[[reason]]\nid = \"x\"\nname.en = \"x\"\nname.ja = \"x\"\nmeaning.en = \"x\"\nmeaning.ja = \"x\"\nacts = \"sender\"\ntext = [\"ok\", \"(unclosed\"]\n";
        let e = Rules::parse("my.toml", src).expect_err("bad regex");
        let s = e.to_string();
        assert!(s.starts_with("my.toml:8:"), "{s}");
        assert!(s.contains("reason[0] (x).text[1]"), "{s}");
    }

    #[test]
    fn recipient_pattern_needs_the_named_group() {
        let src = "[[recipient]]\nid = \"x\"\npattern = \"<(.+)>\"\n";
        let e = Rules::parse("r.toml", src).expect_err("no group");
        assert!(e.to_string().contains("(?P<recipient>"), "{e}");
    }

    #[test]
    fn bad_status_is_located() {
        let src = "[[code]]\nstatus = \"5.x.1\"\nmeaning.en = \"a\"\nmeaning.ja = \"b\"\nacts = \"sender\"\n";
        let e = Rules::parse("c.toml", src).expect_err("bad status");
        assert!(e.to_string().starts_with("c.toml:2:"), "{e}");
    }
}
