//! Command-line arguments (clap). Kept apart from the file configuration
//! (lychee #1959): command-line values override the file as explicit `Option`s.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;

/// Audits the mail side of domains: MX, A/AAAA, PTR, SPF, DMARC, blocklists and
/// SMTP relay policy.
#[derive(Debug, Parser)]
#[command(name = "mxaudit", version, about, long_about = None)]
pub struct Cli {
    /// Log lines on standard error as `text` or `json` (JSON lines, for the
    /// daemon's log shippers); `RUST_LOG` sets the levels.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Audit one or more domains now.
    Audit(Box<AuditArgs>),
    /// Start the built-in offline world (a DNS server on loopback) and audit it.
    Demo(DemoArgs),
    /// List or validate plugins.
    #[command(subcommand)]
    Plugins(PluginsCommand),
    /// Validate a configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Explain a bounce: an RFC 3464 DSN (.eml) or the pasted text of an NDR.
    Explain(ExplainArgs),
    /// Go/no-go checklist before moving a domain's MX to a provider.
    Preflight(Box<PreflightArgs>),
    /// Audit the configured domains once: history, new/resolved findings, sinks.
    Run(RunArgs),
    /// Past runs of a domain, and when each finding appeared and was resolved.
    History(HistoryArgs),
    /// Run the configured schedules; serve /healthz and /metrics.
    Daemon(DaemonArgs),
    /// Evaluate a domain's SPF policy (RFC 7208 check_host) and show its record tree.
    Spf(SpfArgs),
    /// Probe one SMTP server like the relay review does, and print the transcript.
    Smtp(SmtpArgs),
    /// Check addresses or host names against the blocklists, like a blacklist-check page.
    Dnsbl(DnsblArgs),
    /// Review a mail server's exported relay settings (Postfix postconf output
    /// or main.cf/master.cf, Exchange receive connectors and permissions).
    RelayConfig(RelayConfigArgs),
}

/// `mxaudit relay-config`.
#[derive(Debug, Args, Clone)]
pub struct RelayConfigArgs {
    /// The exported files (`postconf -n`, `postconf -P`, main.cf, master.cf;
    /// Get-ReceiveConnector, Get-ADPermission output as text or JSON).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// postfix or exchange (default: guessed from the files).
    #[arg(long, value_name = "KIND")]
    pub kind: Option<String>,
    /// Output format: text, json, markdown.
    #[arg(long, short = 'f', default_value = "text")]
    pub format: String,
    /// Language: en or ja.
    #[arg(long, default_value = "en")]
    pub lang: String,
    /// Review only this Postfix service (repeatable): `smtp`, `submission/inet`,
    /// `127.0.0.1:10025`; named services are reviewed even on loopback.
    #[arg(long = "service", value_name = "NAME")]
    pub services: Vec<String>,
    /// Read the Postfix lookup tables the settings name from under this
    /// directory (DIR/etc/postfix/access for hash:/etc/postfix/access; `/` on
    /// the server itself).
    #[arg(long, value_name = "DIR")]
    pub tables: Option<PathBuf>,
}

/// `mxaudit dnsbl`.
#[derive(Debug, Args, Clone)]
pub struct DnsblArgs {
    /// IP addresses or host names.
    #[arg(required = true, value_name = "IP|HOST")]
    pub inputs: Vec<String>,
    /// Only these list plugins (comma-separated ids; default: every list).
    #[arg(long, value_delimiter = ',', value_name = "ID,…")]
    pub plugins: Option<Vec<String>>,
    /// A directory of your own list manifests (repeatable).
    #[arg(long = "plugins-dir", value_name = "DIR")]
    pub plugin_dirs: Vec<PathBuf>,
    /// A configuration file: its `[[dnsbl]]` lists, `plugin_dirs`, resolver
    /// and `allow_targets`.
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// Treat addresses in this range as public (repeatable).
    #[arg(long = "allow-target", value_name = "CIDR")]
    pub allow_targets: Vec<IpNet>,
    /// Output format: text or json.
    #[arg(long, short = 'f', default_value = "text")]
    pub format: String,
    /// Language: en or ja.
    #[arg(long, default_value = "en")]
    pub lang: String,
    /// DNS options.
    #[command(flatten)]
    pub dns: DnsArgs,
}

/// `mxaudit smtp`.
#[derive(Debug, Args, Clone)]
pub struct SmtpArgs {
    /// The host: a name or an address, with an optional `:port` (default 25).
    pub host: String,
    /// The domain the server receives mail for (enables the postmaster,
    /// null-sender and unknown-recipient tests).
    #[arg(long, value_name = "DOMAIN")]
    pub domain: Option<String>,
    /// Extra trusted CA certificates (PEM), for private PKIs (repeatable).
    #[arg(long = "ca-file", value_name = "FILE")]
    pub ca_files: Vec<PathBuf>,
    /// Treat addresses in this range as public (repeatable); loopback and
    /// private addresses are refused without it.
    #[arg(long = "allow-target", value_name = "CIDR")]
    pub allow_targets: Vec<IpNet>,
    /// Output format: text or json.
    #[arg(long, short = 'f', default_value = "text")]
    pub format: String,
    /// DNS options.
    #[command(flatten)]
    pub dns: DnsArgs,
}

/// `mxaudit spf`.
#[derive(Debug, Args, Clone)]
pub struct SpfArgs {
    /// The domain.
    pub domain: String,
    /// The client address (default: 192.0.2.1, an address no real record lists:
    /// the result a forger gets).
    #[arg(long, value_name = "IP")]
    pub ip: Option<std::net::IpAddr>,
    /// MAIL FROM (default postmaster@DOMAIN; `''` checks the HELO identity, RFC 7208 §2.3).
    #[arg(long, value_name = "ADDRESS")]
    pub sender: Option<String>,
    /// HELO/EHLO name (default: the domain).
    #[arg(long, value_name = "NAME")]
    pub helo: Option<String>,
    /// Output format: text or json.
    #[arg(long, short = 'f', default_value = "text")]
    pub format: String,
    /// DNS options.
    #[command(flatten)]
    pub dns: DnsArgs,
}

/// `mxaudit run`.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// Configuration file.
    #[arg(long, short = 'c', value_name = "FILE", default_value = "audit.toml")]
    pub config: PathBuf,
    /// Only these domains (repeatable; names from [[domains]]).
    #[arg(long = "domain", value_name = "NAME")]
    pub domains: Vec<String>,
    /// Only domains with this tag (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Exit with status 1 when a current finding at or above this severity exists.
    #[arg(long, value_name = "SEVERITY")]
    pub fail_on: Option<String>,
    /// Print the run's events (new, ongoing, resolved) as: text or json.
    #[arg(long, short = 'f', default_value = "text")]
    pub format: String,
    /// Also audit the domains of this file, one per line (`#` comments);
    /// replaces the configuration's `domains_file`.
    #[arg(long = "domains-file", value_name = "FILE")]
    pub domains_file: Option<PathBuf>,
}

/// `mxaudit history`.
#[derive(Debug, Args, Clone)]
pub struct HistoryArgs {
    /// The domain.
    pub domain: String,
    /// Configuration file (for the store).
    #[arg(long, short = 'c', value_name = "FILE", default_value = "audit.toml")]
    pub config: PathBuf,
    /// Runs shown at most.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Output format: text or json.
    #[arg(long, short = 'f', default_value = "text")]
    pub format: String,
}

/// `mxaudit daemon`.
#[derive(Debug, Args, Clone)]
pub struct DaemonArgs {
    /// Configuration file (reloaded on SIGHUP).
    #[arg(long, short = 'c', value_name = "FILE", default_value = "audit.toml")]
    pub config: PathBuf,
}

/// `mxaudit preflight`.
#[derive(Debug, Args, Clone)]
pub struct PreflightArgs {
    /// The domain whose MX will move.
    pub domain: String,
    /// The provider profile the MX moves to, e.g. microsoft365.
    #[arg(long = "to", value_name = "PROFILE")]
    pub to: String,
    /// The on-premises host the provider's connector will deliver to
    /// (`host` or `host:port`); it is probed over SMTP unless `--dns-only`.
    #[arg(long = "smart-host", value_name = "HOST[:PORT]")]
    pub smart_host: Option<String>,
    /// Check only DNS: do not connect to the smart host.
    #[arg(long = "dns-only")]
    pub dns_only: bool,
    /// Output format: text, json, markdown.
    #[arg(long, short = 'f', default_value = "text")]
    pub format: String,
    /// Language: en or ja.
    #[arg(long, value_name = "LANG")]
    pub lang: Option<String>,
    /// Configuration file (profiles, resolver, allow_targets).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// DNS options.
    #[command(flatten)]
    pub dns: DnsArgs,
    /// Treat addresses in this range as public (repeatable).
    #[arg(long = "allow-target", value_name = "CIDR")]
    pub allow_targets: Vec<IpNet>,
}

/// `mxaudit explain`.
#[derive(Debug, Args, Clone)]
pub struct ExplainArgs {
    /// The bounce file, or `-` for standard input.
    pub file: PathBuf,
    /// Output format: text, json, markdown.
    #[arg(long, short = 'f', default_value = "text")]
    pub format: String,
    /// Language of the explanation: en or ja.
    #[arg(long, default_value = "en")]
    pub lang: String,
    /// A table of your own status codes (same format as crates/bounce/codes.toml),
    /// tried before the built-in one.
    #[arg(long, value_name = "FILE")]
    pub codes: Option<PathBuf>,
    /// Also run the checks that would confirm each cause, on the domains involved.
    #[arg(long)]
    pub audit: bool,
    /// DNS options for --audit.
    #[command(flatten)]
    pub dns: DnsArgs,
    /// Treat addresses in this range as public (for --audit; repeatable).
    #[arg(long = "allow-target", value_name = "CIDR")]
    pub allow_targets: Vec<IpNet>,
}

/// Options shared by commands that ask DNS.
#[derive(Debug, Args, Clone, Default)]
pub struct DnsArgs {
    /// DNS server to ask, `IP` or `IP:PORT` (repeatable; default: the system resolver).
    #[arg(long = "nameserver", value_name = "IP[:PORT]")]
    pub nameservers: Vec<String>,
    /// Time to wait for one DNS try, e.g. `2s`, `500ms`.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub timeout: Option<Duration>,
    /// DNS retries after the first try.
    #[arg(long, value_name = "N")]
    pub attempts: Option<usize>,
}

/// `mxaudit audit`.
#[derive(Debug, Args, Clone, Default)]
pub struct AuditArgs {
    /// Domains to audit (default: the `[[domains]]` of `--config`).
    #[arg(value_name = "DOMAIN")]
    pub domains: Vec<String>,
    /// Output format: text, json, jsonl, markdown.
    #[arg(long, short = 'f', default_value = "text")]
    pub format: String,
    /// Write the report to this file (atomically) instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Exit with status 1 when a finding at or above this severity exists
    /// (critical, high, medium, low, info; default high).
    #[arg(long, value_name = "SEVERITY")]
    pub fail_on: Option<String>,
    /// DNS options.
    #[command(flatten)]
    pub dns: DnsArgs,
    /// Run only these plugins (comma-separated ids; see `mxaudit plugins list`).
    #[arg(long, value_delimiter = ',', value_name = "ID,…")]
    pub plugins: Option<Vec<String>>,
    /// Language of titles and remediation: en or ja.
    #[arg(long, value_name = "LANG")]
    pub lang: Option<String>,
    /// Configuration file (audit.toml).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A directory of your own plugin manifests (repeatable).
    #[arg(long = "plugins-dir", value_name = "DIR")]
    pub plugin_dirs: Vec<PathBuf>,
    /// Extra trusted CA certificates (PEM) for the SMTP probe and the MTA-STS
    /// policy fetch, for private PKIs (repeatable).
    #[arg(long = "ca-file", value_name = "FILE")]
    pub ca_files: Vec<PathBuf>,
    /// Treat addresses in this range as ordinary public addresses (repeatable).
    #[arg(long = "allow-target", value_name = "CIDR")]
    pub allow_targets: Vec<IpNet>,
    /// Provider profile the domains must match, e.g. microsoft365.
    #[arg(long, value_name = "ID")]
    pub profile: Option<String>,
    /// An address the domains send mail from (repeatable).
    #[arg(long = "outbound-ip", value_name = "IP")]
    pub outbound_ips: Vec<IpAddr>,
    /// (plugin, domain) checks at once.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Read the domains from a file, one per line (`#` comments), or `-` for
    /// standard input; streamed, so the list may be long.
    #[arg(long = "domains-file", value_name = "FILE")]
    pub domains_file: Option<PathBuf>,
    /// Only the checks that need nothing but DNS: no connection to any mail
    /// server, no external program.
    #[arg(long = "dns-only")]
    pub dns_only: bool,
    /// Ignore the rate limits that plugins declare for third-party services
    /// (blocklists' `queries_per_second`): only when those services are your
    /// own (a local mirror of the lists, a benchmark world).
    #[arg(long = "no-rate-limits")]
    pub no_rate_limits: bool,
    /// Audit only shard K of N (1-based), chosen by a hash of the domain name,
    /// to split one list across agents.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
}

/// `mxaudit demo`.
#[derive(Debug, Args, Clone)]
pub struct DemoArgs {
    /// Output format: text, json, jsonl, markdown.
    #[arg(long, short = 'f', default_value = "text")]
    pub format: String,
    /// Language of titles and remediation: en or ja.
    #[arg(long, value_name = "LANG")]
    pub lang: Option<String>,
    /// Keep the offline world's DNS server running on this address (e.g.
    /// 127.0.0.1:5353) after the audit, to try `audit`, `preflight`, `run`
    /// against it with `--nameserver`; stop with Ctrl-C.
    #[arg(long, value_name = "ADDR")]
    pub serve: Option<std::net::SocketAddr>,
}

/// `mxaudit plugins …`.
#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// List the loaded plugins with their engine, source and the codes they can emit.
    List {
        /// A directory of your own plugin manifests (repeatable).
        #[arg(long = "plugins-dir", value_name = "DIR")]
        plugin_dirs: Vec<PathBuf>,
        /// Configuration file whose `plugin_dirs` to load.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Write docs/plugins.md and docs/findings.md from the built-in manifests.
    Doc {
        /// The output directory.
        #[arg(long, default_value = "docs")]
        out: PathBuf,
    },
    /// Validate the manifests (*.toml) of a directory, offline.
    Check {
        /// The directory.
        dir: PathBuf,
    },
}

/// `mxaudit config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration file, offline.
    Check {
        /// The file.
        file: PathBuf,
    },
}
