//! Provider profiles: what a domain hosted on a mail service (Microsoft 365 …)
//! must publish. Built-in profiles live in `profiles/*.toml`; users add their own
//! under `[profiles.<id>]` in the configuration.

use serde::Deserialize;

use crate::tomldoc::{self, Located};

/// The built-in profiles, compiled in.
pub const BUILTIN_PROFILES: &[(&str, &str)] = &[(
    "builtin:profiles/microsoft365.toml",
    include_str!("../../../profiles/microsoft365.toml"),
)];

/// A provider's expectations.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Short name, used with `--profile`.
    pub id: String,
    /// Human name of the provider.
    pub description: String,
    /// MX host patterns; `*` stands for one or more labels.
    #[serde(default)]
    pub mx_patterns: Vec<String>,
    /// Template (minijinja, variable `domain`) of the MX host the provider assigns.
    #[serde(default)]
    pub mx_host: Option<String>,
    /// The SPF include the provider's senders need.
    #[serde(default)]
    pub spf_include: Option<String>,
    /// The customer's tenant at the provider (Microsoft 365: `contoso` of
    /// `contoso.onmicrosoft.com`), for checks such as the DKIM selector CNAMEs.
    #[serde(default)]
    pub tenant: Option<String>,
    /// The provider's outbound address ranges, when the user supplies them: the
    /// on-premises firewall must let them reach port 25 (seed 000).
    #[serde(default)]
    pub outbound_ranges: Vec<ipnet::IpNet>,
}

impl Profile {
    /// Parses one profile file.
    pub fn parse(path: &str, source: &str) -> Result<Profile, Located> {
        let doc = tomldoc::parse(path, source)?;
        tomldoc::deserialize(path, source, doc)
    }

    /// True when `host` (with or without the trailing dot) matches a pattern.
    pub fn matches_mx(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.mx_patterns
            .iter()
            .any(|p| pattern_matches(&p.trim_end_matches('.').to_ascii_lowercase(), &host))
    }

    /// The MX host the provider assigns to `domain`, when the profile says how.
    pub fn expected_mx_host(&self, domain: &str) -> Option<String> {
        let template = self.mx_host.as_ref()?;
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.render_str(
            template,
            minijinja::context! { domain => domain.trim_end_matches('.') },
        )
        .ok()
    }

    /// The built-in profiles.
    pub fn builtin() -> Vec<Profile> {
        BUILTIN_PROFILES
            .iter()
            .filter_map(|(path, src)| Profile::parse(path, src).ok())
            .collect()
    }
}

/// `*.a.b` matches `x.a.b` and `x.y.a.b`, not `a.b`; other patterns match exactly.
fn pattern_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => host.len() > suffix.len() + 1 && host.ends_with(&format!(".{suffix}")),
        None => pattern == host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_profiles_parse() {
        for (path, src) in BUILTIN_PROFILES {
            let p = Profile::parse(path, src).expect("builtin profile parses");
            assert!(path.ends_with(&format!("{}.toml", p.id)));
        }
    }

    #[test]
    fn microsoft365() {
        let p = Profile::builtin()
            .into_iter()
            .find(|p| p.id == "microsoft365")
            .expect("m365");
        assert!(p.matches_mx("contoso-com.mail.protection.outlook.com."));
        assert!(p.matches_mx("contoso-com.o-v1.mx.microsoft"));
        assert!(!p.matches_mx("mail.protection.outlook.com"));
        assert!(!p.matches_mx("evil-mail.protection.outlook.com.example"));
        assert_eq!(
            p.expected_mx_host("contoso.com").as_deref(),
            Some("contoso-com.mail.protection.outlook.com")
        );
    }
}
