//! `audit.toml`: the user's configuration. Unknown keys are errors that name
//! the file, line and key (style rule 1); the commented example at the repository
//! root shows every key, and a test fails when the two drift apart.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

use crate::model::{Lang, Severity};
use crate::profile::Profile;
use crate::tomldoc::{self, Located};

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Output language of titles and remediation.
    #[serde(default)]
    pub language: Option<Lang>,
    /// Exit with status 1 when a finding at or above this severity exists.
    #[serde(default)]
    pub fail_on: Option<Severity>,
    /// Address ranges treated as ordinary public addresses (labs, internal networks).
    #[serde(default)]
    pub allow_targets: Vec<IpNet>,
    /// Directories of user plugin manifests (relative to the configuration file).
    #[serde(default)]
    pub plugin_dirs: Vec<String>,
    /// How to reach DNS.
    #[serde(default)]
    pub resolver: ResolverSection,
    /// How checks run.
    #[serde(default)]
    pub checks: ChecksSection,
    /// Which plugins run, and severity overrides.
    #[serde(default)]
    pub plugins: PluginsSection,
    /// The domains to audit.
    #[serde(default)]
    pub domains: Vec<DomainSection>,
    /// User-defined provider profiles, by id.
    #[serde(default)]
    pub profiles: BTreeMap<String, ProfileSection>,
}

/// `[resolver]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ResolverSection {
    /// `ip` or `ip:port`; empty: the system resolver.
    #[serde(default)]
    pub nameservers: Vec<String>,
    /// Time to wait for one try.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// Retries after the first try.
    #[serde(default)]
    pub attempts: Option<usize>,
    /// Questions in flight at once.
    #[serde(default)]
    pub concurrency: Option<usize>,
}

/// `[checks]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ChecksSection {
    /// (plugin, domain) tasks at once.
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// Time budget of one (plugin, domain) task.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
}

/// `[plugins]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PluginsSection {
    /// Run only these plugin ids (default: every enabled plugin).
    #[serde(default)]
    pub only: Option<Vec<String>>,
    /// Never run these.
    #[serde(default)]
    pub disable: Vec<String>,
    /// Severity overrides by finding code.
    #[serde(default)]
    pub severity: BTreeMap<String, Severity>,
}

/// One `[[domains]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainSection {
    /// The domain.
    pub name: Spanned<String>,
    /// Provider profile id.
    #[serde(default)]
    pub profile: Option<Spanned<String>>,
    /// Addresses this domain sends from.
    #[serde(default)]
    pub outbound_ips: Vec<IpAddr>,
    /// Free-form tags for selection.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The domain's tenant at its profile's provider (overrides the profile's).
    #[serde(default)]
    pub tenant: Option<String>,
    /// The on-premises host the provider's connector delivers to (preflight).
    #[serde(default)]
    pub smart_host: Option<String>,
}

/// `[profiles.<id>]`: a user-defined profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileSection {
    /// Human name of the provider.
    pub description: String,
    /// MX host patterns.
    #[serde(default)]
    pub mx_patterns: Vec<String>,
    /// Template of the MX host the provider assigns.
    #[serde(default)]
    pub mx_host: Option<String>,
    /// SPF include.
    #[serde(default)]
    pub spf_include: Option<String>,
    /// The customer's tenant at the provider.
    #[serde(default)]
    pub tenant: Option<String>,
    /// The provider's outbound address ranges (for the firewall advice of preflight).
    #[serde(default)]
    pub outbound_ranges: Vec<IpNet>,
}

impl Config {
    /// Parses and validates a configuration file.
    pub fn parse(path: &str, source: &str) -> Result<Config, Located> {
        let doc = tomldoc::parse(path, source)?;
        let config: Config = tomldoc::deserialize(path, source, doc)?;
        let profiles = config.all_profiles();
        for d in &config.domains {
            if let Err(e) = mxaudit_dns::DomainName::parse(d.name.get_ref()) {
                return Err(Located::at(
                    path,
                    source,
                    Some(d.name.span()),
                    format!("domains.name: {e}"),
                ));
            }
            if let Some(h) = &d.smart_host
                && let Err(e) = mxaudit_dns::DomainName::parse(h)
            {
                return Err(Located::at(
                    path,
                    source,
                    None,
                    format!("domains.smart_host: {e}"),
                ));
            }
            if let Some(p) = &d.profile
                && !profiles.iter().any(|known| &known.id == p.get_ref())
            {
                let ids: Vec<&str> = profiles.iter().map(|p| p.id.as_str()).collect();
                return Err(Located::at(
                    path,
                    source,
                    Some(p.span()),
                    format!(
                        "domains.profile: unknown profile `{}` (known: {})",
                        p.get_ref().escape_debug(),
                        ids.join(", ")
                    ),
                ));
            }
        }
        for ns in &config.resolver.nameservers {
            if parse_nameserver(ns).is_err() {
                return Err(Located::at(
                    path,
                    source,
                    None,
                    format!(
                        "resolver.nameservers: `{}` is not IP or IP:PORT",
                        ns.escape_debug()
                    ),
                ));
            }
        }
        Ok(config)
    }

    /// Built-in profiles plus the user's (a user profile replaces a built-in one of the same id).
    pub fn all_profiles(&self) -> Vec<Profile> {
        let mut all: Vec<Profile> = Profile::builtin()
            .into_iter()
            .filter(|p| !self.profiles.contains_key(&p.id))
            .collect();
        for (id, p) in &self.profiles {
            all.push(Profile {
                id: id.clone(),
                description: p.description.clone(),
                mx_patterns: p.mx_patterns.clone(),
                mx_host: p.mx_host.clone(),
                spf_include: p.spf_include.clone(),
                tenant: p.tenant.clone(),
                outbound_ranges: p.outbound_ranges.clone(),
            });
        }
        all
    }
}

/// Parses `IP`, `IP:PORT` or `[IPv6]:PORT`; the port defaults to 53.
pub fn parse_nameserver(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = s.trim_matches(|c| c == '[' || c == ']').parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    Err(format!("`{}` is not IP or IP:PORT", s.escape_debug()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_located() {
        let src = "language = \"en\"\n[resolver]\ntimeot = \"2s\"\n";
        let err = Config::parse("audit.toml", src).expect_err("typo");
        assert_eq!(err.line, 3, "{err}");
        assert!(err.message.contains("timeot"), "{err}");
    }

    #[test]
    fn bad_domain_and_profile_are_located() {
        let err = Config::parse("a.toml", "[[domains]]\nname = \"bad name\"\n").expect_err("bad");
        assert_eq!(err.line, 2, "{err}");
        let err = Config::parse(
            "a.toml",
            "[[domains]]\nname = \"ok.example\"\nprofile = \"nope\"\n",
        )
        .expect_err("bad");
        assert!(err.message.contains("unknown profile"), "{err}");
    }

    #[test]
    fn nameservers() {
        assert_eq!(parse_nameserver("127.0.0.1").map(|a| a.port()), Ok(53));
        assert_eq!(
            parse_nameserver("127.0.0.1:5353").map(|a| a.port()),
            Ok(5353)
        );
        assert_eq!(parse_nameserver("::1").map(|a| a.port()), Ok(53));
        assert_eq!(parse_nameserver("[::1]:5353").map(|a| a.port()), Ok(5353));
        assert!(parse_nameserver("dns.example").is_err());
    }
}
