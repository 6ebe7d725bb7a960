//! Turns command-line arguments and the configuration file into what a run
//! needs: plugins, targets, the DNS client, the address policy.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, anyhow};

use mxaudit_core::config::{Config, parse_nameserver};
use mxaudit_core::manifest::Plugin;
use mxaudit_core::registry::PluginSet;
use mxaudit_core::{AddressPolicy, Profile, Target};
use mxaudit_dns::{Dns, DnsConfig, DomainName};

use crate::args::{AuditArgs, DnsArgs};
use crate::{Failure, failed, usage};

/// Reads and validates a configuration file.
pub fn load_config(path: &Path) -> Result<Config, Failure> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read configuration {}", path.display()))
        .map_err(usage)?;
    Config::parse(&path.display().to_string(), &text).map_err(usage)
}

/// The built-in plugins plus those of the user's directories: the
/// configuration's `plugin_dirs` (relative to the configuration file) and
/// `--plugins-dir`.
pub fn plugin_set(
    config: &Config,
    config_path: Option<&Path>,
    extra_dirs: &[PathBuf],
) -> Result<PluginSet, Failure> {
    let base = config_path.and_then(Path::parent).unwrap_or(Path::new(""));
    let mut dirs: Vec<PathBuf> = config.plugin_dirs.iter().map(|d| base.join(d)).collect();
    dirs.extend(extra_dirs.iter().cloned());
    let dirs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
    let mut set = PluginSet::load(
        mxaudit_checks::ENGINES,
        mxaudit_checks::BUILTIN_MANIFESTS,
        &dirs,
    )
    .map_err(usage)?;
    set.add_inline(
        config,
        "dnsbl",
        mxaudit_checks::ENGINES,
        mxaudit_checks::dnsbl::INLINE_TEXT,
    )
    .map_err(usage)?;
    Ok(set)
}

/// The plugins to run.
pub fn select_plugins(
    set: &PluginSet,
    args: &AuditArgs,
    config: &Config,
) -> Result<Vec<Plugin>, Failure> {
    let only = args.plugins.as_deref().or(config.plugins.only.as_deref());
    let selected = set
        .select(only, &config.plugins.disable)
        .map_err(|e| usage(anyhow!(e)))?;
    if selected.is_empty() {
        return Err(usage(anyhow!("no plugin selected")));
    }
    Ok(selected)
}

fn find_profile(profiles: &[Profile], id: &str) -> Result<Arc<Profile>, Failure> {
    profiles
        .iter()
        .find(|p| p.id == id)
        .cloned()
        .map(Arc::new)
        .ok_or_else(|| {
            let ids: Vec<&str> = profiles.iter().map(|p| p.id.as_str()).collect();
            usage(anyhow!(
                "unknown profile `{}` (known: {})",
                id.escape_debug(),
                ids.join(", ")
            ))
        })
}

/// The domains to audit: those on the command line, else the configuration's.
pub fn targets(args: &AuditArgs, config: &Config) -> Result<Vec<Target>, Failure> {
    let profiles = config.all_profiles();
    let cli_profile = args
        .profile
        .as_deref()
        .map(|id| find_profile(&profiles, id))
        .transpose()?;
    let mut out = Vec::new();
    if !args.domains.is_empty() {
        for d in &args.domains {
            let domain = DomainName::parse(d).map_err(usage)?;
            out.push(Target {
                domain,
                profile: cli_profile.clone(),
                outbound_ips: args.outbound_ips.clone(),
                smart_host: None,
            });
        }
    } else {
        for d in &config.domains {
            let domain = DomainName::parse(d.name.get_ref()).map_err(usage)?;
            let mut profile = match (&cli_profile, &d.profile) {
                (Some(p), _) => Some(p.clone()),
                (None, Some(id)) => Some(find_profile(&profiles, id.get_ref())?),
                (None, None) => None,
            };
            if let (Some(p), Some(tenant)) = (&profile, &d.tenant) {
                let mut with_tenant = (**p).clone();
                with_tenant.tenant = Some(tenant.clone());
                profile = Some(Arc::new(with_tenant));
            }
            let mut outbound_ips = d.outbound_ips.clone();
            outbound_ips.extend(args.outbound_ips.iter().copied());
            out.push(Target {
                domain,
                profile,
                outbound_ips,
                smart_host: d
                    .smart_host
                    .as_deref()
                    .map(DomainName::parse)
                    .transpose()
                    .map_err(usage)?,
            });
        }
    }
    if out.is_empty() {
        return Err(usage(anyhow!(
            "no domain to audit: name one, or give --config with [[domains]]"
        )));
    }
    Ok(out)
}

/// The DNS client: command line over configuration over the system resolver.
pub fn dns(args: &DnsArgs, config: &Config) -> Result<Dns, Failure> {
    let names = if args.nameservers.is_empty() {
        &config.resolver.nameservers
    } else {
        &args.nameservers
    };
    let mut nameservers = Vec::new();
    for n in names {
        nameservers.push(parse_nameserver(n).map_err(|e| usage(anyhow!("--nameserver: {e}")))?);
    }
    let defaults = DnsConfig::default();
    let cfg = DnsConfig {
        nameservers,
        timeout: args
            .timeout
            .or(config.resolver.timeout)
            .unwrap_or(defaults.timeout),
        attempts: args
            .attempts
            .or(config.resolver.attempts)
            .unwrap_or(defaults.attempts),
        concurrency: config.resolver.concurrency.unwrap_or(defaults.concurrency),
        // Relative to the configuration file, like its other paths.
        trust_anchor: match &config.resolver.trust_anchor {
            Some(file) => mxaudit_dns::TrustAnchor::File(
                std::path::Path::new(&config.path)
                    .parent()
                    .unwrap_or(std::path::Path::new(""))
                    .join(file),
            ),
            None => mxaudit_dns::TrustAnchor::IanaRoot,
        },
        ..defaults
    };
    Dns::new(&cfg).map_err(|e| match e {
        mxaudit_dns::DnsSetupError::TrustAnchor(e) => {
            usage(anyhow!("{}: resolver.trust_anchor: {e}", config.path))
        }
        e => failed(e),
    })
}

/// Says once, after a run, why DNSSEC could not be validated (a resolver
/// that strips DNSSEC, a trust anchor that matches nothing): a problem of the
/// run, not of each domain, whose `dnssec`/`dane` checks show `error`.
pub fn warn_dnssec_unavailable(dns: &mxaudit_dns::Dns) {
    if let Some(problem) = dns.dnssec_unavailable() {
        eprintln!("mxaudit: warning: DNSSEC not validated in this run: {problem}");
    }
}

/// The address policy: `--allow-target` plus the configuration's `allow_targets`.
pub fn address_policy(args: &AuditArgs, config: &Config) -> Arc<AddressPolicy> {
    let mut allowed = config.allow_targets.clone();
    allowed.extend(args.allow_targets.iter().copied());
    Arc::new(AddressPolicy::new(allowed))
}

/// The default budget of one (plugin, domain) task: a minute for DNS checks;
/// fifteen when a selected engine connects to mail servers, whose greeting alone
/// may take five minutes (RFC 5321 §4.5.3.2) on every MX address.
pub fn default_task_timeout(plugins: &[Plugin]) -> std::time::Duration {
    let connects = plugins.iter().any(|p| {
        mxaudit_checks::ENGINES
            .iter()
            .any(|e| e.name == p.meta.engine && e.connects)
    });
    std::time::Duration::from_secs(if connects { 15 * 60 } else { 60 })
}

/// Warns on standard error when blocklist plugins will ask through a
/// well-known public resolver: Spamhaus answers those with an error code
/// (127.255.255.254) and others may refuse them, so the lists come out
/// unusable (dnsbl.query_refused) rather than answered.
pub fn warn_public_resolver(plugins: &[Plugin], dns: &mxaudit_dns::Dns) {
    if !plugins.iter().any(|p| p.meta.engine == "dnsbl") {
        return;
    }
    for (ip, operator) in mxaudit_checks::dnsbl::public_resolvers(dns.nameservers()) {
        eprintln!(
            "mxaudit: warning: the resolver {ip} is {operator}'s public service; blocklists such as Spamhaus refuse queries from it (use your own recursive resolver, or SPAMHAUS_DQS_KEY)."
        );
    }
}
