//! What a recipient's status means: the code table (`codes.toml`: RFC 3463
//! structure, practice from Exchange Online, Postfix and Gmail) and the reasons
//! in words (`reasons.toml`), which also explain bounces that carry no code.

use serde::{Deserialize, Serialize};

use mxaudit_core::Lang;

use crate::RecipientStatus;
use crate::rules::{Audit, Rules, status_matches};

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

impl Text {
    /// The text in a language.
    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::En => &self.en,
            Lang::Ja => &self.ja,
        }
    }
}

/// One entry of the code table.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CodeEntry {
    /// `5.1.1`, or with `*` for a part: `5.7.*`, `*.1.1`.
    pub status: String,
    /// A regex on the diagnostic text; entries with one are tried first.
    pub text: Option<String>,
    /// What it means.
    pub meaning: Text,
    /// Who must act.
    pub acts: Party,
    /// mxaudit plugins that confirm the cause.
    pub checks: Vec<String>,
    /// Which domain `--audit` examines.
    pub audit: Option<Audit>,
}

/// A recipient's status explained.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Explained {
    /// The status code explained (enhanced, or derived from the reply code's class).
    pub status: Option<String>,
    /// `permanent`, `transient`, `success` or `unknown`: from the Action when
    /// there is one (RFC 3464 §2.3.3: `failed` is final whatever the code), else
    /// from the code's class.
    pub kind: &'static str,
    /// The reason in words, when one is known (id from `reasons.toml`).
    pub reason: Option<String>,
    /// The reason's name in the chosen language.
    pub reason_name: Option<String>,
    /// What it means, in the chosen language.
    pub meaning: String,
    /// Who must act.
    pub acts: Party,
    /// Checks that confirm the cause.
    pub checks: Vec<String>,
    /// Which domain to audit.
    pub audit: Option<Audit>,
    /// The table entry that matched (`code 5.7.* /text/` or `reason user_unknown`).
    pub matched: String,
}

/// `permanent`, `transient`, `success` or `unknown` for a recipient.
pub(crate) fn kind_of(r: &RecipientStatus) -> &'static str {
    match r.action.as_deref() {
        Some("failed") => return "permanent",
        Some("delayed") => return "transient",
        Some("delivered" | "relayed" | "expanded") => return "success",
        _ => {}
    }
    let class = r
        .status
        .as_deref()
        .and_then(|s| s.chars().next())
        .or_else(|| {
            r.reply_code
                .and_then(|c| char::from_digit(u32::from(c / 100), 10))
        });
    match class {
        Some('2') => "success",
        Some('4') => "transient",
        Some('5') => "permanent",
        _ => "unknown",
    }
}

impl Rules {
    /// Explains one recipient's status.
    pub fn explain(&self, r: &RecipientStatus, lang: Lang) -> Explained {
        // Without an enhanced code, the reply code's class still says permanent or not.
        let status = r
            .status
            .clone()
            .or_else(|| r.reply_code.map(|c| format!("{}.0.0", c / 100)));
        let kind = kind_of(r);
        let diagnostic = r.diagnostic.as_deref().unwrap_or("");
        let reason = r.reason.as_deref().and_then(|id| self.reason(id));
        let code_entry = status.as_deref().and_then(|code| {
            let by_text = self.codes.iter().find(|c| {
                c.text.as_ref().is_some_and(|re| re.is_match(diagnostic))
                    && status_matches(&c.entry.status, code)
            });
            let by_exact = || {
                self.codes
                    .iter()
                    .find(|c| c.text.is_none() && c.entry.status == code)
            };
            by_text.or_else(by_exact).map(|c| &c.entry)
        });
        let by_pattern = || {
            status.as_deref().and_then(|code| {
                self.codes
                    .iter()
                    .find(|c| c.text.is_none() && status_matches(&c.entry.status, code))
                    .map(|c| &c.entry)
            })
        };
        let wait = |acts: Party| {
            if kind == "transient" && acts == Party::Sender {
                Party::Wait
            } else {
                acts
            }
        };
        let reason_name = reason.map(|x| x.name.get(lang).to_owned());
        // A specific code entry, then the reason, then the code's class.
        if let Some(e) = code_entry {
            return Explained {
                status,
                kind,
                reason: r.reason.clone(),
                reason_name,
                meaning: e.meaning.get(lang).to_owned(),
                acts: wait(e.acts),
                checks: e.checks.clone(),
                audit: e.audit,
                matched: matched(e),
            };
        }
        if let Some(x) = reason {
            return Explained {
                status,
                kind,
                reason: r.reason.clone(),
                reason_name,
                meaning: x.meaning.get(lang).to_owned(),
                acts: wait(x.acts),
                checks: x.checks.clone(),
                audit: x.audit,
                matched: format!("reason {}", x.id),
            };
        }
        if let Some(e) = by_pattern() {
            return Explained {
                status,
                kind,
                reason: None,
                reason_name: None,
                meaning: e.meaning.get(lang).to_owned(),
                acts: wait(e.acts),
                checks: e.checks.clone(),
                audit: e.audit,
                matched: matched(e),
            };
        }
        Explained {
            status,
            kind,
            reason: None,
            reason_name: None,
            meaning: crate::view::label("unknown_status", lang).to_owned(),
            acts: Party::RecipientAdmin,
            checks: Vec::new(),
            audit: None,
            matched: String::new(),
        }
    }

    /// The reason a status code names exactly (no `*` pattern).
    pub(crate) fn reason_for_exact_status(&self, status: &str) -> Option<&str> {
        self.reasons
            .iter()
            .find(|r| r.status.iter().any(|s| !s.contains('*') && s == status))
            .map(|r| r.id.as_str())
    }

    /// The reason a status code implies (`reasons.toml` `status` lists).
    pub(crate) fn reason_for_status(&self, status: &str) -> Option<&str> {
        // Exact codes first across all reasons, then patterns.
        self.reasons
            .iter()
            .find(|r| r.status.iter().any(|s| !s.contains('*') && s == status))
            .or_else(|| {
                self.reasons.iter().find(|r| {
                    r.status
                        .iter()
                        .any(|s| s.contains('*') && status_matches(s, status))
                })
            })
            .map(|r| r.id.as_str())
    }
}

fn matched(e: &CodeEntry) -> String {
    match &e.text {
        Some(t) => format!("code {} /{t}/", e.status),
        None => format!("code {}", e.status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(status: &str, diag: &str) -> RecipientStatus {
        RecipientStatus {
            status: Some(status.to_owned()),
            diagnostic: Some(diag.to_owned()),
            ..Default::default()
        }
    }

    #[test]
    fn builtin_table_matches() {
        let t = Rules::builtin().expect("builtin rules");
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
    }

    #[test]
    fn failed_action_is_never_transient() {
        let t = Rules::builtin().expect("builtin rules");
        let mut x = r("4.4.7", "delivery time expired");
        x.action = Some("failed".into());
        assert_eq!(t.explain(&x, Lang::En).kind, "permanent");
        x.action = Some("delayed".into());
        assert_eq!(t.explain(&x, Lang::En).kind, "transient");
    }

    #[test]
    fn a_reason_explains_a_bounce_without_code() {
        let t = Rules::builtin().expect("builtin rules");
        let x = RecipientStatus {
            reason: Some("mailbox_full".into()),
            action: Some("failed".into()),
            ..Default::default()
        };
        let e = t.explain(&x, Lang::Ja);
        assert_eq!(e.reason.as_deref(), Some("mailbox_full"));
        assert!(
            !e.meaning.is_empty() && e.meaning != crate::view::label("unknown_status", Lang::Ja)
        );
    }
}
