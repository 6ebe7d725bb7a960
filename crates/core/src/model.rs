//! The finding model: what a check observed, and the finding users read.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How bad a finding is. Ordered: `Info < Low < Medium < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; nothing is broken.
    Info,
    /// A weakness some receivers act on.
    Low,
    /// Mail is at risk at some receivers.
    Medium,
    /// Mail fails or is refused at many receivers.
    High,
    /// Mail is broken or the server is abusable now.
    Critical,
}

impl Severity {
    /// All severities, most severe first.
    pub const ALL: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "info" => Ok(Severity::Info),
            "low" => Ok(Severity::Low),
            "medium" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            other => Err(format!(
                "unknown severity `{other}` (critical, high, medium, low, info)"
            )),
        }
    }
}

/// The output language of titles, details and remediation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// English.
    #[default]
    En,
    /// Japanese.
    Ja,
}

impl FromStr for Lang {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "en" => Ok(Lang::En),
            "ja" => Ok(Lang::Ja),
            other => Err(format!("unknown language `{other}` (en, ja)")),
        }
    }
}

/// What an engine saw: a code and facts, no prose (style rule 5). The text layer
/// turns it into a [`Finding`] with the manifest's templates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Observation {
    /// The finding code, e.g. `mx.target_unresolvable`.
    pub code: String,
    /// What the finding is about: a host, an address, a record name.
    pub subject: String,
    /// The records or replies seen, one line each (untrusted text; escaped on output).
    pub evidence: Vec<String>,
    /// Template variables for the title, detail and remediation.
    pub vars: serde_json::Map<String, serde_json::Value>,
    /// The plugin whose manifest renders it, when an engine observed it on
    /// another plugin's behalf (preflight probing the smart host with the
    /// `smtp` plugin); `None`: the reporting plugin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
}

impl Observation {
    /// A new observation with no evidence and no variables.
    pub fn new(code: &str, subject: impl Into<String>) -> Observation {
        Observation {
            code: code.to_owned(),
            subject: subject.into(),
            evidence: Vec::new(),
            vars: serde_json::Map::new(),
            plugin: None,
        }
    }
    /// Marks it as observed for plugin `id`, whose manifest renders it.
    pub fn for_plugin(mut self, id: &str) -> Observation {
        self.plugin = Some(id.to_owned());
        self
    }
    /// Adds one evidence line.
    pub fn evidence(mut self, line: impl Into<String>) -> Observation {
        self.evidence.push(line.into());
        self
    }
    /// Adds evidence lines.
    pub fn evidence_lines<I, S>(mut self, lines: I) -> Observation
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.evidence.extend(lines.into_iter().map(Into::into));
        self
    }
    /// Sets a template variable.
    pub fn var(mut self, name: &str, value: impl Into<serde_json::Value>) -> Observation {
        self.vars.insert(name.to_owned(), value.into());
        self
    }
}

/// A finding as users and sinks see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable code, e.g. `mx.provider_not_preferred`.
    pub code: String,
    /// Severity after manifest and configuration overrides.
    pub severity: Severity,
    /// The audited domain.
    pub domain: String,
    /// Host, address or record the finding is about.
    pub subject: String,
    /// One-line title.
    pub title: String,
    /// What was seen, in a sentence.
    pub detail: String,
    /// The records or replies seen.
    pub evidence: Vec<String>,
    /// What to do.
    pub remediation: String,
    /// RFCs and support articles.
    pub references: Vec<String>,
    /// The bounce or connector codes this problem causes for senders.
    pub ndr: Vec<String>,
    /// The plugin that reported it.
    pub plugin: String,
    /// `sha256(code, domain, subject)`: the same problem keeps its fingerprint between runs.
    pub fingerprint: String,
}

/// The fingerprint of a finding: stable across runs and languages.
pub fn fingerprint(code: &str, domain: &str, subject: &str) -> String {
    let mut h = Sha256::new();
    for part in [code, domain, subject] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    let digest = h.finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// How one (plugin, domain) task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// Ran and found nothing.
    Pass,
    /// Ran and reported findings.
    Fail,
    /// Could not decide (DNS failure, timeout, crash); `detail` says why.
    Error,
}

/// The status line of one (plugin, domain) task in a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The audited domain.
    pub domain: String,
    /// The plugin id.
    pub plugin: String,
    /// Pass, fail or error.
    pub status: CheckStatus,
    /// Why, for errors; the codes found, for failures.
    pub detail: Option<String>,
    /// Wall time of the task.
    pub duration_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_order_and_parse() {
        assert!(Severity::Critical > Severity::High && Severity::Low > Severity::Info);
        assert_eq!("HIGH".parse::<Severity>(), Ok(Severity::High));
        assert!("urgent".parse::<Severity>().is_err());
    }

    #[test]
    fn fingerprint_is_stable_and_separated() {
        let a = fingerprint("mx.none", "example.com", "example.com");
        assert_eq!(a, fingerprint("mx.none", "example.com", "example.com"));
        assert_eq!(a.len(), 32);
        // The separator keeps ("ab","c") and ("a","bc") apart.
        assert_ne!(fingerprint("x", "ab", "c"), fingerprint("x", "a", "bc"));
    }
}
