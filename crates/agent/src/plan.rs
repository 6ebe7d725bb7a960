//! The plan of a command: the configuration file and the options given on the
//! command line, merged once, here. A command-line value is an explicit
//! override ([`Overrides`]: `Option`s and lists kept apart from the file's
//! types, lychee #1959); the configuration fills the rest; built-in defaults
//! fill what neither says.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;

use mxaudit_core::config::{Config, parse_nameserver};
use mxaudit_core::manifest::Plugin;
use mxaudit_core::pacer::SessionPacer;
use mxaudit_core::registry::PluginSet;
use mxaudit_core::runner::{self, RunOptions};
use mxaudit_core::{AddressPolicy, Lang, Peer, Profile, RunScope, Severity};
use mxaudit_dns::{Dns, DnsConfig};

use crate::error::{AgentError, Result};

/// What the command line says, each value overriding the configuration's.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Domains named on the command line: they replace the configuration's.
    pub domains: Vec<String>,
    /// A file of domains, one per line (`-`: standard input).
    pub domains_file: Option<PathBuf>,
    /// Run only these plugins.
    pub plugins: Option<Vec<String>>,
    /// More plugin directories.
    pub plugin_dirs: Vec<PathBuf>,
    /// Name servers (`IP` or `IP:PORT`).
    pub nameservers: Vec<String>,
    /// Time to wait for one DNS try.
    pub timeout: Option<Duration>,
    /// DNS retries after the first try.
    pub attempts: Option<usize>,
    /// Output language.
    pub lang: Option<Lang>,
    /// Exit 1 at or above this severity.
    pub fail_on: Option<Severity>,
    /// Address ranges treated as public.
    pub allow_targets: Vec<IpNet>,
    /// Provider profile for every domain.
    pub profile: Option<String>,
    /// Outbound addresses added to every domain.
    pub outbound_ips: Vec<IpAddr>,
    /// (plugin, domain) checks at once.
    pub concurrency: Option<usize>,
    /// Leave out plugins that connect to anything but DNS.
    pub dns_only: bool,
    /// Ignore third-party rate limits.
    pub no_rate_limits: bool,
    /// Extra trusted CA certificates (PEM) for TLS probes.
    pub ca_files: Vec<PathBuf>,
}

/// Which configured domains a `run` covers.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// By name (names from `[[domains]]`).
    pub domains: Vec<String>,
    /// By tag.
    pub tags: Vec<String>,
}

impl Selection {
    /// True when it selects every domain.
    pub fn is_all(&self) -> bool {
        self.domains.is_empty() && self.tags.is_empty()
    }
}

/// Everything a command needs to run checks, merged from the configuration
/// and the overrides.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The configuration (the default one when no file was given).
    pub config: Config,
    /// The configuration file, when one was given.
    pub config_path: Option<PathBuf>,
    /// Every loaded plugin (built-in, plugin directories, inline tables).
    pub set: PluginSet,
    /// The plugins that run.
    pub plugins: Vec<Plugin>,
    /// Output language.
    pub lang: Lang,
    /// Exit 1 at or above this severity.
    pub fail_on: Severity,
    /// Which addresses count as public, and may be connected to.
    pub addresses: Arc<AddressPolicy>,
    /// How to reach DNS.
    pub dns: DnsConfig,
    /// How the runner behaves (no progress hook: the caller adds one).
    pub options: RunOptions,
    /// The command line's values, for the targets.
    pub overrides: Overrides,
}

/// Reads and validates a configuration file.
pub fn load_config(path: &Path) -> Result<Config> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        AgentError::Usage(format!("cannot read configuration {}: {e}", path.display()))
    })?;
    Ok(Config::parse(&path.display().to_string(), &text)?)
}

/// The directory relative paths of a configuration are taken from.
pub fn base_dir(config_path: Option<&Path>) -> PathBuf {
    config_path
        .and_then(Path::parent)
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The built-in plugins plus those of the configuration's `plugin_dirs`
/// (relative to the configuration file), of `extra_dirs`, and the inline
/// plugin tables of the configuration (`[[dnsbl]]`).
pub fn plugin_set(
    config: &Config,
    config_path: Option<&Path>,
    extra_dirs: &[PathBuf],
) -> Result<PluginSet> {
    let base = config_path.and_then(Path::parent).unwrap_or(Path::new(""));
    let mut dirs: Vec<PathBuf> = config.plugin_dirs.iter().map(|d| base.join(d)).collect();
    dirs.extend(extra_dirs.iter().cloned());
    let dirs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
    let mut set = PluginSet::load(
        mxaudit_checks::ENGINES,
        mxaudit_checks::BUILTIN_MANIFESTS,
        &dirs,
    )?;
    for inline in mxaudit_checks::INLINE_TABLES {
        set.add_inline(config, inline.key, mxaudit_checks::ENGINES, inline.text)?;
    }
    Ok(set)
}

/// The profile `id` among the built-in and configured ones.
pub fn find_profile(config: &Config, id: &str) -> Result<Arc<Profile>> {
    let profiles = config.all_profiles();
    profiles
        .iter()
        .find(|p| p.id == id)
        .cloned()
        .map(Arc::new)
        .ok_or_else(|| {
            let ids: Vec<&str> = profiles.iter().map(|p| p.id.as_str()).collect();
            AgentError::Usage(format!(
                "unknown profile `{}` (known: {})",
                id.escape_debug(),
                ids.join(", ")
            ))
        })
}

/// The default budget of one (plugin, domain) task: a minute for DNS checks
/// (and the MTA-STS fetch, bounded by its own 30 s); fifteen when a selected
/// engine has long tasks, such as the SMTP probe, whose greeting alone may take
/// five minutes (RFC 5321 §4.5.3.2) on every MX address.
pub fn default_task_timeout(plugins: &[Plugin]) -> Duration {
    let long = plugins.iter().any(|p| p.check.long_tasks());
    Duration::from_secs(if long { 15 * 60 } else { 60 })
}

impl Plan {
    /// Reads the configuration file (when given) and merges the overrides.
    pub fn load(config_path: Option<&Path>, overrides: Overrides) -> Result<Plan> {
        let config = match config_path {
            Some(path) => load_config(path)?,
            None => Config::default(),
        };
        Plan::new(config, config_path.map(Path::to_path_buf), overrides)
    }

    /// Merges the overrides into a configuration already read.
    pub fn new(config: Config, config_path: Option<PathBuf>, overrides: Overrides) -> Result<Plan> {
        let set = plugin_set(&config, config_path.as_deref(), &overrides.plugin_dirs)?;
        let only = overrides
            .plugins
            .as_deref()
            .or(config.plugins.only.as_deref());
        let mut plugins = set
            .select(only, &config.plugins.disable)
            .map_err(AgentError::Usage)?;
        if plugins.is_empty() {
            return Err(AgentError::usage("no plugin selected"));
        }
        if overrides.dns_only {
            plugins.retain(|p| !p.check.connects());
            if plugins.is_empty() {
                return Err(AgentError::usage(
                    "--dns-only: none of the selected plugins needs only DNS",
                ));
            }
        }
        if let Some(id) = &overrides.profile {
            find_profile(&config, id)?;
        }
        let mut allowed = config.allow_targets.clone();
        allowed.extend(overrides.allow_targets.iter().copied());
        let dns = dns_config(&overrides, &config)?;
        let options = RunOptions {
            concurrency: overrides
                .concurrency
                .or(config.checks.concurrency)
                .unwrap_or(runner::DEFAULT_CONCURRENCY),
            task_timeout: config
                .checks
                .timeout
                .unwrap_or_else(|| default_task_timeout(&plugins)),
            lang: overrides.lang.or(config.language).unwrap_or_default(),
            severity: config.plugins.severity.clone(),
            progress: None,
            scope: Arc::new(RunScope::default()),
        };
        let mut plan = Plan {
            lang: options.lang,
            fail_on: overrides
                .fail_on
                .or(config.fail_on)
                .unwrap_or(Severity::High),
            addresses: Arc::new(AddressPolicy::new(allowed)),
            dns,
            options,
            set,
            plugins,
            config,
            config_path,
            overrides,
        };
        plan.share_pacer(Arc::new(SessionPacer::default()));
        Ok(plan)
    }

    /// Makes the runs of this plan share `pacer` with other plans (the daemon
    /// keeps one pacer across configuration reloads), and builds the run scope:
    /// the options every check sees and the plugins engines may ask.
    pub fn share_pacer(&mut self, pacer: Arc<SessionPacer>) {
        let config = &self.config;
        // The configuration's own selection: which peers an engine may ask
        // (preflight asks the enabled blocklists, whatever the command runs).
        let enabled: Vec<String> = self
            .set
            .select(config.plugins.only.as_deref(), &config.plugins.disable)
            .unwrap_or_default()
            .into_iter()
            .map(|p| p.meta.id)
            .collect();
        let peers: Vec<Peer> = self
            .set
            .plugins
            .iter()
            .map(|p| Peer {
                enabled: enabled.contains(&p.meta.id),
                selected: self.plugins.iter().any(|q| q.meta.id == p.meta.id),
                plugin: p.clone(),
            })
            .collect();
        self.options.scope = Arc::new(RunScope {
            rate_limits: !self.overrides.no_rate_limits
                && config.checks.rate_limits.unwrap_or(true),
            dns_only: self.overrides.dns_only,
            ca_files: self.overrides.ca_files.clone(),
            peers: Arc::from(peers),
            pacer,
        });
    }

    /// The DNS client of one run (its question cache lives as long as it does).
    pub fn dns_client(&self) -> Result<Dns> {
        Dns::new(&self.dns).map_err(|e| match e {
            mxaudit_dns::DnsSetupError::TrustAnchor(e) => AgentError::Usage(format!(
                "{}: resolver.trust_anchor: {e}",
                self.config_path
                    .as_deref()
                    .unwrap_or(Path::new("audit.toml"))
                    .display()
            )),
            e => AgentError::failed(e),
        })
    }

    /// Says once, after a run, why DNSSEC could not be validated (a resolver
    /// that strips DNSSEC, a trust anchor that matches nothing): a problem of
    /// the run, not of each domain, whose `dnssec`/`dane` checks show `error`.
    pub fn warn_dnssec_unavailable(dns: &Dns) {
        if let Some(problem) = dns.dnssec_unavailable() {
            tracing::warn!("DNSSEC not validated in this run: {problem}");
        }
    }

    /// The directory relative paths of the configuration are taken from.
    pub fn base_dir(&self) -> PathBuf {
        base_dir(self.config_path.as_deref())
    }

    /// Warns when blocklist plugins will ask through a well-known public
    /// resolver: Spamhaus answers those with an error code
    /// (127.255.255.254) and others may refuse them, so the lists come out
    /// unusable (dnsbl.query_refused) rather than answered.
    pub fn warn_public_resolver(&self, dns: &Dns) {
        warn_public_resolver(&self.plugins, dns);
    }
}

/// See [`Plan::warn_public_resolver`].
pub fn warn_public_resolver(plugins: &[Plugin], dns: &Dns) {
    if !plugins.iter().any(|p| p.check.blocklist().is_some()) {
        return;
    }
    for (ip, operator) in mxaudit_checks::dnsbl::public_resolvers(dns.nameservers()) {
        tracing::warn!(
            "the resolver {ip} is {operator}'s public service; blocklists such as Spamhaus refuse queries from it (use your own recursive resolver, or SPAMHAUS_DQS_KEY)."
        );
    }
}

/// The DNS configuration: command line over configuration over the system resolver.
pub fn dns_config(overrides: &Overrides, config: &Config) -> Result<DnsConfig> {
    let names = if overrides.nameservers.is_empty() {
        &config.resolver.nameservers
    } else {
        &overrides.nameservers
    };
    let nameservers: Vec<SocketAddr> = names
        .iter()
        .map(|n| parse_nameserver(n).map_err(|e| AgentError::Usage(format!("--nameserver: {e}"))))
        .collect::<Result<_>>()?;
    let defaults = DnsConfig::default();
    Ok(DnsConfig {
        nameservers,
        timeout: overrides
            .timeout
            .or(config.resolver.timeout)
            .unwrap_or(defaults.timeout),
        attempts: overrides
            .attempts
            .or(config.resolver.attempts)
            .unwrap_or(defaults.attempts),
        concurrency: config.resolver.concurrency.unwrap_or(defaults.concurrency),
        // Relative to the configuration file, like its other paths.
        trust_anchor: match &config.resolver.trust_anchor {
            Some(file) => mxaudit_dns::TrustAnchor::File(
                Path::new(&config.path)
                    .parent()
                    .unwrap_or(Path::new(""))
                    .join(file),
            ),
            None => mxaudit_dns::TrustAnchor::IanaRoot,
        },
        ..defaults
    })
}
