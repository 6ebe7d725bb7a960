//! Engine `smtp`: the relay policy of every MX address, probed from outside the
//! way a sending server and an attacker see it (RFC 5321, RFC 3207).
//!
//! For each address of each MX host (port 25 by default), one bounded SMTP
//! dialogue: greeting (tarpits waited out up to a limit), EHLO with HELO
//! fallback, STARTTLS with the certificate examined problem by problem, then
//! MAIL FROM / RCPT TO probes — postmaster, the null sender, a nonexistent
//! recipient, and the sixteen relay forms of nmap's smtp-open-relay — with RSET
//! between them and RSET, QUIT at the end. DATA is never sent.
//!
//! Files: `reply.rs` reads replies (RFC 5321 §4.2, bounded), `session.rs` holds
//! a connection and its transcript, `probe.rs` is the dialogue, `relay.rs` the
//! relay forms, `starttls.rs` and `cert.rs` TLS, `observe.rs` turns facts into
//! codes. Politeness: one session at a time per address, across all plugins
//! and domains of the process, with a pause between sessions.

pub mod cert;
pub mod chain;
pub mod observe;
pub mod probe;
pub mod relay;
pub mod reply;
pub mod session;
pub mod starttls;

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use mxaudit_core::{
    AddressPolicy, CheckCx, CheckReport, CodeSpec, Engine, Observation, PluginMeta, Target,
};
use mxaudit_dns::{Answer, Dns, DomainName, RType};

use crate::resolve::{mx_hosts, resolve_host};

use self::probe::{AddressProbe, AddressTarget, ProbeConfig, probe_address};
use self::session::Transcript;
use self::starttls::TlsClient;

/// Which address families are probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AddressFamily {
    /// IPv4 and IPv6.
    #[default]
    Any,
    /// IPv4 only (e.g. the probing machine has no IPv6 route).
    Ipv4,
    /// IPv6 only.
    Ipv6,
}

impl AddressFamily {
    fn admits(self, ip: IpAddr) -> bool {
        match self {
            AddressFamily::Any => true,
            AddressFamily::Ipv4 => ip.is_ipv4(),
            AddressFamily::Ipv6 => ip.is_ipv6(),
        }
    }
}

/// How one probe behaves; shared by the engine and by [`probe_host`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpProbeOptions {
    /// EHLO argument; `None`: the address literal of the local end (RFC 5321 §4.1.4).
    pub helo_name: Option<String>,
    /// Third-party domain of the relay tests.
    pub foreign_domain: String,
    /// Local part of the foreign sender (nmap: `antispam`).
    pub relay_from: String,
    /// Local part of the foreign recipient (nmap: `relaytest`).
    pub relay_to: String,
    /// TCP connect.
    pub connect_timeout: Duration,
    /// The greeting (RFC 5321 §4.5.3.2.1: 5 minutes).
    pub greeting_timeout: Duration,
    /// A greeting later than this is a tarpit (`smtp.slow_greeting`).
    pub slow_greeting: Duration,
    /// Each reply after the greeting (RFC 5321 §4.5.3.2).
    pub command_timeout: Duration,
    /// The TLS handshake.
    pub tls_timeout: Duration,
    /// All sessions to one address together.
    pub session_budget: Duration,
    /// Pause between sessions to the same address.
    pub session_delay: Duration,
    /// `smtp.cert_expiring` when the certificate ends within this.
    pub expiry_warning: Duration,
    /// PEM files of extra trusted CAs (private PKIs), besides Mozilla's roots.
    pub ca_files: Vec<PathBuf>,
    /// The domain of the postmaster, null-sender and unknown-recipient tests;
    /// the engine sets the audited domain. `None`: those tests are skipped.
    pub recipient_domain: Option<String>,
}

impl Default for SmtpProbeOptions {
    fn default() -> Self {
        SmtpProbeOptions {
            helo_name: None,
            foreign_domain: "example.net".to_owned(),
            relay_from: "antispam".to_owned(),
            relay_to: "relaytest".to_owned(),
            connect_timeout: Duration::from_secs(30),
            greeting_timeout: Duration::from_secs(300),
            slow_greeting: Duration::from_secs(10),
            command_timeout: Duration::from_secs(120),
            tls_timeout: Duration::from_secs(30),
            session_budget: Duration::from_secs(600),
            session_delay: Duration::from_secs(2),
            expiry_warning: Duration::from_secs(14 * 86_400),
            ca_files: Vec::new(),
            recipient_domain: None,
        }
    }
}

impl SmtpProbeOptions {
    /// Checks the options without I/O: names, local parts, durations.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(helo) = &self.helo_name {
            let literal = helo.starts_with('[') && helo.ends_with(']');
            if !literal && DomainName::parse(helo).is_err() {
                return Err(format!(
                    "helo_name: `{}` is neither a domain nor an address literal like [192.0.2.1]",
                    helo.escape_debug()
                ));
            }
        }
        DomainName::parse(&self.foreign_domain).map_err(|e| format!("foreign_domain: {e}"))?;
        if let Some(d) = &self.recipient_domain {
            DomainName::parse(d).map_err(|e| format!("recipient domain: {e}"))?;
        }
        for (key, local) in [
            ("relay_from", &self.relay_from),
            ("relay_to", &self.relay_to),
        ] {
            // RFC 5321 §4.1.2 atext (dot-atom), kept simple: no quoting needed.
            let ok = !local.is_empty()
                && local.len() <= 64
                && local
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "!#$&'*+-/=?^_`{|}~.".contains(c));
            if !ok {
                return Err(format!(
                    "{key}: `{}` must be 1-64 characters of letters, digits and !#$&'*+-/=?^_`{{|}}~.",
                    local.escape_debug()
                ));
            }
        }
        for (key, d) in [
            ("connect_timeout", self.connect_timeout),
            ("greeting_timeout", self.greeting_timeout),
            ("command_timeout", self.command_timeout),
            ("tls_timeout", self.tls_timeout),
            ("session_budget", self.session_budget),
        ] {
            if d.is_zero() {
                return Err(format!("{key}: must be longer than 0s"));
            }
        }
        if self.slow_greeting >= self.greeting_timeout {
            return Err("slow_greeting: must be shorter than greeting_timeout".to_owned());
        }
        Ok(())
    }

    fn probe_config(&self, port: u16) -> ProbeConfig {
        ProbeConfig {
            port,
            helo_name: self.helo_name.clone(),
            foreign_domain: self.foreign_domain.clone(),
            relay_from: self.relay_from.clone(),
            relay_to: self.relay_to.clone(),
            connect_timeout: self.connect_timeout,
            greeting_timeout: self.greeting_timeout,
            slow_greeting: self.slow_greeting,
            command_timeout: self.command_timeout,
            tls_timeout: self.tls_timeout,
            session_budget: self.session_budget,
            session_delay: self.session_delay,
            expiry_warning: self.expiry_warning,
        }
    }
}

/// CA files added by the command line (`--ca-file`) to every smtp plugin of
/// the process.
static EXTRA_CA_FILES: RwLock<Vec<PathBuf>> = RwLock::new(Vec::new());

/// Adds CA files (PEM) that every `smtp` plugin of this process trusts besides
/// its own `ca_files`: the CLI calls this once with its `--ca-file` arguments
/// before running checks. The files are read when a check runs, not here.
pub fn set_extra_ca_files(files: Vec<PathBuf>) {
    *EXTRA_CA_FILES
        .write()
        .unwrap_or_else(PoisonError::into_inner) = files;
}

fn extra_ca_files() -> Vec<PathBuf> {
    EXTRA_CA_FILES
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// `[params]` of the `smtp` engine. Durations are humantime strings (`"5m"`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpParams {
    /// TCP port of the MX hosts.
    #[serde(default = "default_port")]
    pub port: u16,
    /// EHLO argument; default: the address literal of the local end.
    #[serde(default)]
    pub helo_name: Option<String>,
    /// Third-party domain of the relay tests.
    #[serde(default = "default_foreign")]
    pub foreign_domain: String,
    /// Local part of the foreign sender.
    #[serde(default = "default_from")]
    pub relay_from: String,
    /// Local part of the foreign recipient.
    #[serde(default = "default_to")]
    pub relay_to: String,
    /// TCP connect timeout.
    #[serde(default = "d_connect", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Longest wait for the greeting.
    #[serde(default = "d_greeting", with = "humantime_serde")]
    pub greeting_timeout: Duration,
    /// A greeting later than this is reported as a tarpit.
    #[serde(default = "d_slow", with = "humantime_serde")]
    pub slow_greeting: Duration,
    /// Longest wait for each later reply.
    #[serde(default = "d_command", with = "humantime_serde")]
    pub command_timeout: Duration,
    /// Longest TLS handshake.
    #[serde(default = "d_tls", with = "humantime_serde")]
    pub tls_timeout: Duration,
    /// All sessions to one address together.
    #[serde(default = "d_budget", with = "humantime_serde")]
    pub session_budget: Duration,
    /// Pause between two sessions to the same address.
    #[serde(default = "d_delay", with = "humantime_serde")]
    pub session_delay: Duration,
    /// Warn this long before the certificate expires.
    #[serde(default = "d_expiry", with = "humantime_serde")]
    pub expiry_warning: Duration,
    /// PEM files of extra trusted CAs; relative paths are relative to the manifest.
    #[serde(default)]
    pub ca_files: Vec<String>,
    /// MX hosts probed at most.
    #[serde(default = "default_max_hosts")]
    pub max_hosts: usize,
    /// Addresses probed at most per domain.
    #[serde(default = "default_max_addresses")]
    pub max_addresses: usize,
    /// Different addresses probed at once (one session per address at a time).
    #[serde(default = "default_parallel")]
    pub parallel: usize,
    /// `any`, `ipv4` or `ipv6`.
    #[serde(default)]
    pub address_family: AddressFamily,
}

fn default_port() -> u16 {
    25
}
fn default_foreign() -> String {
    SmtpProbeOptions::default().foreign_domain
}
fn default_from() -> String {
    SmtpProbeOptions::default().relay_from
}
fn default_to() -> String {
    SmtpProbeOptions::default().relay_to
}
fn d_connect() -> Duration {
    SmtpProbeOptions::default().connect_timeout
}
fn d_greeting() -> Duration {
    SmtpProbeOptions::default().greeting_timeout
}
fn d_slow() -> Duration {
    SmtpProbeOptions::default().slow_greeting
}
fn d_command() -> Duration {
    SmtpProbeOptions::default().command_timeout
}
fn d_tls() -> Duration {
    SmtpProbeOptions::default().tls_timeout
}
fn d_budget() -> Duration {
    SmtpProbeOptions::default().session_budget
}
fn d_delay() -> Duration {
    SmtpProbeOptions::default().session_delay
}
fn d_expiry() -> Duration {
    SmtpProbeOptions::default().expiry_warning
}
fn default_max_hosts() -> usize {
    10
}
fn default_max_addresses() -> usize {
    20
}
fn default_parallel() -> usize {
    4
}

/// The `smtp` engine.
#[derive(Debug)]
pub struct Smtp {
    port: u16,
    options: SmtpProbeOptions,
    max_hosts: usize,
    max_addresses: usize,
    parallel: usize,
    family: AddressFamily,
}

/// Variables every smtp code provides.
macro_rules! vars {
    ($($v:literal),*) => { &["host", "address", "port" $(, $v)*] };
}

impl Engine for Smtp {
    const NAME: &'static str = "smtp";
    const CODES: &'static [CodeSpec] = &[
        CodeSpec {
            code: "smtp.connection_refused",
            vars: vars!(),
        },
        CodeSpec {
            code: "smtp.timeout",
            vars: vars!("stage", "waited"),
        },
        CodeSpec {
            code: "smtp.unreachable",
            vars: vars!("reason"),
        },
        CodeSpec {
            code: "smtp.greeting_error",
            vars: vars!("stage", "reply"),
        },
        CodeSpec {
            code: "smtp.dropped",
            vars: vars!("stage", "reason"),
        },
        CodeSpec {
            code: "smtp.slow_greeting",
            vars: vars!("waited", "threshold"),
        },
        CodeSpec {
            code: "smtp.open_relay",
            vars: vars!(
                "forms",
                "accepted",
                "tried",
                "foreign_domain",
                "catch_all",
                "confidence"
            ),
        },
        CodeSpec {
            code: "smtp.starttls_missing",
            vars: vars!(),
        },
        CodeSpec {
            code: "smtp.starttls_failed",
            vars: vars!("reason"),
        },
        CodeSpec {
            code: "smtp.starttls_injection",
            vars: vars!("bytes"),
        },
        CodeSpec {
            code: "smtp.cert_expired",
            vars: vars!("which", "subject", "state", "not_before", "not_after"),
        },
        CodeSpec {
            code: "smtp.cert_expiring",
            vars: vars!("subject", "not_after", "days_left"),
        },
        CodeSpec {
            code: "smtp.cert_self_signed",
            vars: vars!("subject", "issuer", "reason", "self_signed"),
        },
        CodeSpec {
            code: "smtp.cert_name_mismatch",
            vars: vars!("names", "cert_names", "subject"),
        },
        CodeSpec {
            code: "smtp.auth_plaintext",
            vars: vars!("mechanisms"),
        },
        CodeSpec {
            code: "smtp.postmaster_rejected",
            vars: vars!("recipient", "stage", "reply"),
        },
        CodeSpec {
            code: "smtp.null_sender_rejected",
            vars: vars!("stage", "reply"),
        },
        CodeSpec {
            code: "smtp.recipient_not_validated",
            vars: vars!("recipient", "reply"),
        },
    ];
    const CONNECTS: bool = true;
    type Params = SmtpParams;

    fn build(params: SmtpParams, plugin: &PluginMeta) -> Result<Self, String> {
        if params.port == 0 {
            return Err("port: must be 1-65535".to_owned());
        }
        for (key, n) in [
            ("max_hosts", params.max_hosts),
            ("max_addresses", params.max_addresses),
            ("parallel", params.parallel),
        ] {
            if n == 0 {
                return Err(format!("{key}: must be at least 1"));
            }
        }
        // Relative CA paths belong to the manifest's folder (pure path joining, no I/O).
        let base = Path::new(&plugin.source)
            .parent()
            .filter(|_| !plugin.source.starts_with("builtin:"));
        let ca_files = params
            .ca_files
            .iter()
            .map(|f| match base {
                Some(dir) if Path::new(f).is_relative() => dir.join(f),
                _ => PathBuf::from(f),
            })
            .collect();
        let options = SmtpProbeOptions {
            helo_name: params.helo_name,
            foreign_domain: params.foreign_domain,
            relay_from: params.relay_from,
            relay_to: params.relay_to,
            connect_timeout: params.connect_timeout,
            greeting_timeout: params.greeting_timeout,
            slow_greeting: params.slow_greeting,
            command_timeout: params.command_timeout,
            tls_timeout: params.tls_timeout,
            session_budget: params.session_budget,
            session_delay: params.session_delay,
            expiry_warning: params.expiry_warning,
            ca_files,
            recipient_domain: None,
        };
        options.validate()?;
        Ok(Smtp {
            port: params.port,
            options,
            max_hosts: params.max_hosts,
            max_addresses: params.max_addresses,
            parallel: params.parallel,
            family: params.address_family,
        })
    }

    async fn run(&self, target: &Target, cx: &CheckCx) -> CheckReport {
        let mut report = CheckReport::default();
        let domain = &target.domain;
        let Some(hosts) = self.mx_addresses(domain, cx, &mut report).await else {
            return report;
        };

        // Addresses, each once, with every MX name that points at it.
        let mut targets: Vec<AddressTarget> = Vec::new();
        let mut refused = Vec::new();
        for (host, addresses) in hosts {
            for ip in addresses {
                if !self.family.admits(ip) {
                    continue;
                }
                if let Some(reason) = cx.addresses.non_public_reason(ip) {
                    refused.push(format!("{ip} ({host}, {reason})"));
                    continue;
                }
                match targets.iter_mut().find(|t| t.ip == ip) {
                    Some(t) if !t.names.contains(&host) => t.names.push(host.clone()),
                    Some(_) => {}
                    None => targets.push(AddressTarget {
                        ip,
                        names: vec![host.clone()],
                        local_domain: Some(domain.bare().to_owned()),
                    }),
                }
            }
        }
        refused.dedup();
        if !refused.is_empty() {
            report.error(format!(
                "not probed, the address policy refuses them: {}; allow with --allow-target",
                refused.join(", ")
            ));
        }
        if targets.len() > self.max_addresses {
            report.error(format!(
                "only the first {} of {} MX addresses probed (max_addresses)",
                self.max_addresses,
                targets.len()
            ));
            targets.truncate(self.max_addresses);
        }
        if targets.is_empty() {
            return report;
        }

        let mut extra = self.options.ca_files.clone();
        extra.extend(extra_ca_files());
        let tls = match TlsClient::new(&extra) {
            Ok(t) => Some(t),
            Err(e) => {
                report.error(format!("{e}; STARTTLS and certificates not examined"));
                None
            }
        };
        let task_deadline = task_deadline(cx.deadline);
        let cfg = self.options.probe_config(self.port);
        // Owned inputs per task: borrowed ones trip the higher-ranked lifetime
        // check of `buffer_unordered` inside an `async fn` that must be `Send`.
        let probes: Vec<(usize, Option<AddressProbe>)> =
            futures::stream::iter(targets.clone().into_iter().enumerate())
                .map(|(i, t)| {
                    let cfg = cfg.clone();
                    let tls = tls.clone();
                    async move {
                        let peer = SocketAddr::new(t.ip, cfg.port);
                        let probe = paced(peer, cfg.session_delay, task_deadline, || {
                            probe_address(&t, &cfg, tls.as_ref(), task_deadline)
                        })
                        .await;
                        (i, probe)
                    }
                })
                .buffer_unordered(self.parallel)
                .collect()
                .await;
        let mut probes = probes;
        probes.sort_by_key(|(i, _)| *i);
        for (i, probe) in probes {
            let Some(probe) = probe else {
                if let Some(t) = targets.get(i) {
                    report.error(format!(
                        "{}: not probed, the check's time ran out waiting for another session to the same address",
                        t.ip
                    ));
                }
                continue;
            };
            let (observations, undecided) = observe::observe(
                &probe,
                self.options.slow_greeting,
                &self.options.foreign_domain,
            );
            for o in observations {
                report.push(o);
            }
            for u in undecided {
                report.error(u);
            }
        }
        report
    }
}

impl Smtp {
    /// The MX hosts and their addresses; for a domain without MX, the domain
    /// itself (RFC 5321 §5.1 implicit MX). `None` when there is nothing to probe.
    async fn mx_addresses(
        &self,
        domain: &DomainName,
        cx: &CheckCx,
        report: &mut CheckReport,
    ) -> Option<Vec<(String, Vec<IpAddr>)>> {
        let hosts = match mx_hosts(domain, cx, self.max_hosts).await {
            Ok(h) => h,
            // NXDOMAIN is the mx engine's finding (domain.nxdomain).
            Err(why) if why.ends_with("NXDOMAIN") => return None,
            Err(why) => {
                report.error(why);
                return None;
            }
        };
        let mut out = Vec::new();
        if hosts.is_empty() {
            // Null MX (RFC 7505) leaves nothing to probe; no MX at all means senders
            // use the domain's own address records.
            if matches!(
                cx.dns.query(domain, RType::Mx).await.as_ref(),
                Answer::NoData { .. }
            ) {
                let a = resolve_host(domain, cx).await;
                for f in a.failures {
                    report.error(f);
                }
                if !a.addresses.is_empty() {
                    out.push((domain.bare().to_owned(), a.addresses));
                }
            }
            return Some(out);
        }
        for h in hosts {
            // Unresolvable hosts are the mx engine's findings; failures are ours to say.
            for f in h.addresses.failures {
                report.error(f);
            }
            if !h.addresses.addresses.is_empty() {
                out.push((h.host, h.addresses.addresses));
            }
        }
        Some(out)
    }
}

/// The check's deadline with a margin, so the engine reports before the runner
/// stops it.
fn task_deadline(deadline: std::time::Instant) -> Instant {
    let remaining = deadline.saturating_duration_since(std::time::Instant::now());
    let margin = (remaining / 20).min(Duration::from_secs(2));
    Instant::now() + remaining.saturating_sub(margin)
}

type PaceSlot = Arc<tokio::sync::Mutex<Option<Instant>>>;

/// The end of the last session to each address, process-wide: one session at a
/// time per address, whichever plugin or domain asks.
static LAST_SESSION: OnceLock<Mutex<HashMap<SocketAddr, PaceSlot>>> = OnceLock::new();

/// Runs `f` when no other session to `peer` runs and `delay` has passed since
/// the last one ended; `None` when `deadline` came first.
pub(crate) async fn paced<F, Fut, T>(
    peer: SocketAddr,
    delay: Duration,
    deadline: Instant,
    f: F,
) -> Option<T>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let slot = {
        let mut map = LAST_SESSION
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if map.len() > 4096 {
            map.retain(|_, s| Arc::strong_count(s) > 1);
        }
        map.entry(peer).or_default().clone()
    };
    let mut last = tokio::time::timeout_at(deadline, slot.lock_owned())
        .await
        .ok()?;
    if let Some(ended) = *last {
        let resume = ended + delay;
        if resume >= deadline {
            return None;
        }
        tokio::time::sleep_until(resume).await;
    }
    let out = f().await;
    *last = Some(Instant::now());
    Some(out)
}

/// The result of `mxaudit smtp HOST[:PORT]`: every session's transcript and
/// what was found.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeTranscript {
    /// The host as given.
    pub host: String,
    /// The port.
    pub port: u16,
    /// The addresses probed.
    pub addresses: Vec<IpAddr>,
    /// One transcript per session, in order.
    pub sessions: Vec<Transcript>,
    /// Codes and facts (render them with the `smtp` plugin's manifest).
    pub observations: Vec<Observation>,
    /// What could not be probed or decided.
    pub errors: Vec<String>,
}

impl fmt::Display for ProbeTranscript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "SMTP probe of {} port {}", self.host, self.port)?;
        for s in &self.sessions {
            writeln!(f, "\n== {}", s.peer)?;
            write!(f, "{s}")?;
        }
        if !self.observations.is_empty() {
            writeln!(f, "\nfindings:")?;
            for o in &self.observations {
                writeln!(f, "  {}  {}", o.code, o.subject)?;
                for e in &o.evidence {
                    writeln!(f, "      {e}")?;
                }
            }
        }
        if !self.errors.is_empty() {
            writeln!(f, "\nundecided:")?;
            for e in &self.errors {
                writeln!(f, "  {e}")?;
            }
        }
        Ok(())
    }
}

/// Probes one host the way the engine probes an MX address, and returns the
/// transcript (control characters escaped, nothing redacted) with the
/// observations.
///
/// How the CLI calls it, for `mxaudit smtp mx.example.com[:port] [--domain D]
/// [--ca-file F]… [--allow-target CIDR]… [--format text|json]`:
///
/// ```text
/// let opts = SmtpProbeOptions {
///     recipient_domain: args.domain.clone(),   // enables postmaster / null sender / unknown-recipient tests
///     ca_files: args.ca_files.clone(),         // --ca-file, PEM
///     ..SmtpProbeOptions::default()            // production timeouts (greeting 5 min)
/// };
/// opts.validate().map_err(usage)?;            // exit 2 on bad options
/// let dns = setup::dns(&args.dns, config)?;    // the same resolver as audits
/// let policy = setup::address_policy(args, config); // --allow-target / allow_targets
/// let out = mxaudit_checks::smtp::probe_host(&host, port /* 25 unless :port */, &opts, &dns, &policy).await;
/// print!("{out}");                              // text form; or serde_json::to_string_pretty(&out)
/// ```
///
/// `host` is a name (its A and AAAA addresses are probed one after another) or
/// an address (`192.0.2.1`, `[2001:db8::1]`). Addresses the policy refuses are
/// listed in `errors`, not probed. Render `observations` with the `smtp`
/// plugin's manifest text (`TextRenderer::finding`) for titles and remediation.
pub async fn probe_host(
    host: &str,
    port: u16,
    opts: &SmtpProbeOptions,
    dns: &Dns,
    policy: &AddressPolicy,
) -> ProbeTranscript {
    let mut out = ProbeTranscript {
        host: host.to_owned(),
        port,
        addresses: Vec::new(),
        sessions: Vec::new(),
        observations: Vec::new(),
        errors: Vec::new(),
    };
    if let Err(e) = opts.validate() {
        out.errors.push(e);
        return out;
    }
    let bare = host.trim().trim_start_matches('[').trim_end_matches(']');
    let bare = bare.strip_prefix("IPv6:").unwrap_or(bare);
    let (names, addresses) = match bare.parse::<IpAddr>() {
        Ok(ip) => (vec![ip.to_string()], vec![ip]),
        Err(_) => match DomainName::parse(host) {
            Ok(name) => {
                let cx = CheckCx {
                    dns: dns.clone(),
                    addresses: Arc::new(policy.clone()),
                    deadline: std::time::Instant::now() + Duration::from_secs(60),
                    rate_limits: true,
                };
                let a = resolve_host(&name, &cx).await;
                out.errors.extend(a.failures);
                if a.addresses.is_empty() && a.evidence.is_empty() {
                    out.errors.push(format!("{}: no address", name.bare()));
                }
                out.errors.extend(
                    a.evidence
                        .iter()
                        .filter(|_| a.addresses.is_empty())
                        .cloned(),
                );
                (vec![name.bare().to_owned()], a.addresses)
            }
            Err(e) => {
                out.errors.push(e.to_string());
                return out;
            }
        },
    };
    let tls = match TlsClient::new(&opts.ca_files) {
        Ok(t) => Some(t),
        Err(e) => {
            out.errors
                .push(format!("{e}; STARTTLS and certificates not examined"));
            None
        }
    };
    let cfg = opts.probe_config(port);
    for ip in addresses {
        if let Some(reason) = policy.non_public_reason(ip) {
            out.errors.push(format!(
                "{ip}: not probed, {reason}; allow with --allow-target"
            ));
            continue;
        }
        out.addresses.push(ip);
        let target = AddressTarget {
            ip,
            names: names.clone(),
            local_domain: opts.recipient_domain.clone(),
        };
        // No task deadline here: the session budget is the limit.
        let deadline = Instant::now() + opts.session_budget * 2 + opts.session_delay;
        let peer = SocketAddr::new(ip, port);
        let Some(probe) = paced(peer, opts.session_delay, deadline, || {
            probe_address(&target, &cfg, tls.as_ref(), deadline)
        })
        .await
        else {
            out.errors
                .push(format!("{ip}: another session to it did not end in time"));
            continue;
        };
        let (observations, undecided) =
            observe::observe(&probe, opts.slow_greeting, &opts.foreign_domain);
        out.observations.extend(observations);
        out.errors.extend(undecided);
        out.sessions.extend(probe.transcripts);
    }
    out
}
