//! Secrets (style rule 11): webhook URLs, signing keys and SMTP passwords are
//! read only from `*_env` or `*_file` keys, held in [`Secret`], and never
//! printed — not in logs, errors, reports or `Debug` output.

use std::collections::BTreeMap;
use std::fmt;

/// A value that must not be shown: `Debug` and `Display` print `***`, and it
/// has no `Serialize`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that must use it (a request, a login).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the secret replaced by `***`: for
    /// messages built from third-party errors that might quote it.
    pub fn redact(&self, text: &str) -> String {
        if self.0.is_empty() {
            text.to_owned()
        } else {
            text.replace(&self.0, "***")
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where `*_env` keys are looked up: the process environment, or a fixed map
/// (tests, and embedders that keep secrets elsewhere).
#[derive(Clone, Default)]
pub struct SecretSource {
    vars: Option<BTreeMap<String, String>>,
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.vars {
            None => f.write_str("SecretSource(process environment)"),
            Some(vars) => f
                .debug_tuple("SecretSource")
                .field(&vars.keys().collect::<Vec<_>>())
                .finish(),
        }
    }
}

impl SecretSource {
    /// The process environment.
    pub fn process() -> SecretSource {
        SecretSource { vars: None }
    }

    /// No variables at all (every `*_env` key is unset).
    pub fn empty() -> SecretSource {
        SecretSource {
            vars: Some(BTreeMap::new()),
        }
    }

    /// Only these variables.
    pub fn from_vars<I, K, V>(vars: I) -> SecretSource
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        SecretSource {
            vars: Some(
                vars.into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            ),
        }
    }

    /// The value of a variable, if set (and valid Unicode).
    pub fn var(&self, name: &str) -> Option<String> {
        match &self.vars {
            None => std::env::var(name).ok(),
            Some(vars) => vars.get(name).cloned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let s = Secret::new("https://hooks.example/T000/B000/XXXX");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(
            s.redact("POST https://hooks.example/T000/B000/XXXX failed"),
            "POST *** failed"
        );
        let src = SecretSource::from_vars([("HOOK", "https://hooks.example/secret")]);
        assert!(!format!("{src:?}").contains("secret"));
    }
}
