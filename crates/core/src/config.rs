//! `audit.toml`: the user's configuration. Unknown keys are errors that name
//! the file, line and key (style rule 1); the commented example at the repository
//! root shows every key, and a test fails when the two drift apart.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
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
    /// More domains for `mxaudit run` and the daemon, one per line (`#`
    /// comments), relative to the configuration file: a customer list kept
    /// elsewhere. They have no profile, tags or outbound addresses.
    #[serde(default)]
    pub domains_file: Option<String>,
    /// User-defined provider profiles, by id.
    #[serde(default)]
    pub profiles: BTreeMap<String, ProfileSection>,
    /// Run history.
    #[serde(default)]
    pub store: StoreSection,
    /// Delivery to sinks: retries and the spool.
    #[serde(default)]
    pub delivery: DeliverySection,
    /// The daemon's HTTP endpoint.
    #[serde(default)]
    pub daemon: DaemonSection,
    /// Cron schedules of the daemon.
    #[serde(default)]
    pub schedules: Vec<ScheduleSection>,
    /// Sinks, parsed in two stages: the common keys here, the type's own keys
    /// by the sink type (`crates/sinks`), both with located errors.
    #[serde(skip)]
    pub sinks: Vec<SinkSection>,
    /// Blocklists defined here rather than in a manifest (`[[dnsbl]]`), parsed
    /// in two stages: `id` and `enabled` here, the list's parameters (the
    /// `[params]` keys of a dnsbl manifest) by the dnsbl engine when the plugin
    /// set is built ([`crate::registry::PluginSet::add_inline`]).
    #[serde(skip)]
    pub dnsbl: Vec<InlineSection>,
    /// The file's path, for errors found later (sink keys).
    #[serde(skip)]
    pub path: String,
    /// The file's text, for the second stage of the sink parse.
    #[serde(skip)]
    pub source: String,
}

/// `[store]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// SQLite file (relative to the configuration file). Default `mxaudit.db`.
    #[serde(default)]
    pub path: Option<String>,
    /// Environment variable holding a database URL (`postgres://…`), for a
    /// store shared by several agents; overrides `path`.
    #[serde(default)]
    pub url_env: Option<String>,
    /// Runs kept per domain set in the trend of reports.
    #[serde(default)]
    pub trend_runs: Option<usize>,
}

/// `[delivery]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DeliverySection {
    /// Undelivered batches wait here (relative to the configuration file). Default `spool`.
    #[serde(default)]
    pub spool_dir: Option<String>,
    /// Attempts per batch in one run before it is spooled.
    #[serde(default)]
    pub attempts: Option<u32>,
    /// First backoff; doubled per attempt, with full jitter.
    #[serde(default, with = "humantime_serde")]
    pub backoff: Option<Duration>,
    /// Longest backoff (and longest `Retry-After` honoured).
    #[serde(default, with = "humantime_serde")]
    pub max_backoff: Option<Duration>,
}

/// `[daemon]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DaemonSection {
    /// Address of `/healthz` and `/metrics`, e.g. `127.0.0.1:9109`. Default: off.
    #[serde(default)]
    pub listen: Option<String>,
}

/// One `[[schedules]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSection {
    /// Name, shown in history and alerts.
    pub name: String,
    /// Cron expression (5 or 6 fields, croner syntax), UTC.
    pub cron: Spanned<String>,
    /// Domains by name (empty with empty `tags`: every domain).
    #[serde(default)]
    pub domains: Vec<String>,
    /// Domains by tag.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Sink ids (default: every sink).
    #[serde(default)]
    pub sinks: Vec<String>,
}

/// The common part of one `[sinks.<id>]` table.
#[derive(Debug, Clone)]
pub struct SinkSection {
    /// The id.
    pub id: String,
    /// `type = "file" | "webhook" | "email"`.
    pub kind: String,
    /// Findings below this are not sent.
    pub min_severity: Severity,
    /// `changes` or `all`.
    pub only: crate::sink::Only,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SinkCommon {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    min_severity: Option<Severity>,
    #[serde(default)]
    only: Option<crate::sink::Only>,
}

/// Keys every sink has; the rest belong to the sink type.
pub const SINK_COMMON_KEYS: &[&str] = &["type", "min_severity", "only"];

/// The common part of one inline plugin table (`[[dnsbl]]`).
#[derive(Debug, Clone)]
pub struct InlineSection {
    /// The plugin id (`[plugins] only`/`disable` name it).
    pub id: String,
    /// Whether it runs by default (default true).
    pub enabled: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InlineCommon {
    id: String,
    #[serde(default = "crate::manifest::yes")]
    enabled: bool,
}

/// Keys every inline plugin table has; the rest are the engine's parameters.
pub const INLINE_COMMON_KEYS: &[&str] = &["id", "enabled"];

/// The first stage of a two-stage table: takes `keys` out of `table` and
/// deserializes them into `T`; the rest stays for the second stage. Errors
/// are located (at the table when a key is missing) and prefixed with `what`.
fn take_common<T: serde::de::DeserializeOwned>(
    path: &str,
    source: &str,
    what: &str,
    table: &mut Spanned<toml::de::DeTable<'_>>,
    keys: &[&'static str],
) -> Result<T, Located> {
    let span = table.span();
    let mut common = toml::de::DeTable::new();
    for key in keys {
        if let Some(v) = tomldoc::take(table, key) {
            common.insert(Spanned::new(v.span(), std::borrow::Cow::Borrowed(*key)), v);
        }
    }
    tomldoc::deserialize(path, source, Spanned::new(span.clone(), common)).map_err(|mut e| {
        if e.line == 0 {
            let (line, column) = tomldoc::line_col(source, span.start);
            e.line = line;
            e.column = column;
        }
        e.message = format!("{what}: {}", e.message);
        e
    })
}

/// The tables of the array `key` (`[[dnsbl]]`) of a configuration text, each
/// split into its common keys and the engine's parameters (still spanned, for
/// located errors in the second stage).
pub fn inline_tables<'a>(
    path: &str,
    source: &'a str,
    key: &str,
) -> Result<Vec<(InlineSection, Spanned<toml::de::DeTable<'a>>)>, Located> {
    let mut doc = tomldoc::parse(path, source)?;
    let Some(value) = tomldoc::take(&mut doc, key) else {
        return Ok(Vec::new());
    };
    let span = value.span();
    let toml::de::DeValue::Array(items) = value.into_inner() else {
        return Err(Located::at(
            path,
            source,
            Some(span),
            format!("`{key}` must be an array of tables: write [[{key}]]"),
        ));
    };
    let mut out = Vec::new();
    for item in items {
        let mut table = tomldoc::as_table(path, source, key, item)?;
        let c: InlineCommon = take_common(path, source, key, &mut table, INLINE_COMMON_KEYS)?;
        out.push((
            InlineSection {
                id: c.id,
                enabled: c.enabled,
            },
            table,
        ));
    }
    Ok(out)
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
    /// DNSSEC trust anchor for the `dnssec` and `dane` checks: a file of
    /// DNSKEY records (relative to the configuration file). Default: the IANA
    /// root keys.
    #[serde(default)]
    pub trust_anchor: Option<String>,
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
    /// Honour the rate limits plugins declare for third-party services
    /// (blocklists' `queries_per_second`). Default true; false only when
    /// those services are your own (a local mirror of the lists).
    #[serde(default)]
    pub rate_limits: Option<bool>,
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
    /// Exported relay settings of the domain's mail server (`postconf -n` and
    /// `postconf -P` output, or Exchange cmdlet output), relative to the
    /// configuration file; reviewed by the `relay-config` plugin.
    #[serde(default)]
    pub relay_config: Vec<String>,
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
        let mut doc = tomldoc::parse(path, source)?;
        let sinks_table = tomldoc::take(&mut doc, "sinks");
        tomldoc::take(&mut doc, "dnsbl");
        let mut config: Config = tomldoc::deserialize(path, source, doc)?;
        config.path = path.to_owned();
        config.source = source.to_owned();
        config.dnsbl = inline_tables(path, source, "dnsbl")?
            .into_iter()
            .map(|(section, _)| section)
            .collect();
        if let Some(sinks) = sinks_table {
            let sinks = tomldoc::as_table(path, source, "sinks", sinks)?;
            for (id, value) in sinks.into_inner() {
                let id_text = id.get_ref().to_string();
                let mut table =
                    tomldoc::as_table(path, source, &format!("sinks.{id_text}"), value)?;
                let c: SinkCommon = take_common(
                    path,
                    source,
                    &format!("sinks.{id_text}"),
                    &mut table,
                    SINK_COMMON_KEYS,
                )?;
                if !id_text
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(Located::at(
                        path,
                        source,
                        Some(id.span()),
                        format!(
                            "sinks: id `{}` must be letters, digits, - and _",
                            id_text.escape_debug()
                        ),
                    ));
                }
                config.sinks.push(SinkSection {
                    id: id_text,
                    kind: c.kind,
                    min_severity: c.min_severity.unwrap_or(Severity::Low),
                    only: c.only.unwrap_or_default(),
                });
            }
        }
        for s in &config.schedules {
            if let Err(e) = croner::Cron::from_str(s.cron.get_ref()) {
                return Err(Located::at(
                    path,
                    source,
                    Some(s.cron.span()),
                    format!("schedules.cron: `{}`: {e}", s.cron.get_ref().escape_debug()),
                ));
            }
            for sink in &s.sinks {
                if !config.sinks.iter().any(|k| &k.id == sink) {
                    return Err(Located::at(
                        path,
                        source,
                        Some(s.cron.span()),
                        format!(
                            "schedules.sinks: schedule `{}` names unknown sink `{}`",
                            s.name,
                            sink.escape_debug()
                        ),
                    ));
                }
            }
            for d in &s.domains {
                if !config
                    .domains
                    .iter()
                    .any(|k| k.name.get_ref().eq_ignore_ascii_case(d))
                {
                    return Err(Located::at(
                        path,
                        source,
                        Some(s.cron.span()),
                        format!(
                            "schedules.domains: schedule `{}` names `{}`, which is not in [[domains]]",
                            s.name,
                            d.escape_debug()
                        ),
                    ));
                }
            }
        }
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
                && let Err(e) = crate::check::SmartHost::parse(h)
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
