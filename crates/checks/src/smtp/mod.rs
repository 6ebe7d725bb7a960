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

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use mxaudit_core::peer::{DomainProbe, SmtpProber};
use mxaudit_core::{CheckCx, CheckReport, CodeSpec, Engine, Observation, PluginMeta, Target};
use mxaudit_dns::{Answer, DomainName, RType};

use crate::resolve::{mx_hosts, resolve_host};

use self::probe::{AddressProbe, AddressTarget, probe_address};
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

/// The options of the `smtp` engine: its `[params]` in a manifest, the options
/// of `mxaudit smtp`, and what the probe itself reads — one type. Durations are
/// humantime strings in TOML (`"5m"`); every key has a default.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpOptions {
    /// TCP port of the MX hosts.
    pub port: u16,
    /// EHLO argument; `None`: the address literal of the local end (RFC 5321 §4.1.4).
    pub helo_name: Option<String>,
    /// Third-party domain of the relay tests.
    pub foreign_domain: String,
    /// Local part of the foreign sender (nmap: `antispam`).
    pub relay_from: String,
    /// Local part of the foreign recipient (nmap: `relaytest`).
    pub relay_to: String,
    /// TCP connect.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// The greeting (RFC 5321 §4.5.3.2.1: 5 minutes).
    #[serde(with = "humantime_serde")]
    pub greeting_timeout: Duration,
    /// A greeting later than this is a tarpit (`smtp.slow_greeting`).
    #[serde(with = "humantime_serde")]
    pub slow_greeting: Duration,
    /// Each reply after the greeting (RFC 5321 §4.5.3.2).
    #[serde(with = "humantime_serde")]
    pub command_timeout: Duration,
    /// The TLS handshake.
    #[serde(with = "humantime_serde")]
    pub tls_timeout: Duration,
    /// All sessions to one address together.
    #[serde(with = "humantime_serde")]
    pub session_budget: Duration,
    /// Pause between sessions to the same address.
    #[serde(with = "humantime_serde")]
    pub session_delay: Duration,
    /// `smtp.cert_expiring` when the certificate ends within this.
    #[serde(with = "humantime_serde")]
    pub expiry_warning: Duration,
    /// PEM files of extra trusted CAs (private PKIs), besides Mozilla's roots
    /// and the run's (`--ca-file`); relative paths are relative to the manifest.
    pub ca_files: Vec<PathBuf>,
    /// MX hosts probed at most.
    pub max_hosts: usize,
    /// Addresses probed at most per domain.
    pub max_addresses: usize,
    /// Different addresses probed at once (one session per address at a time).
    pub parallel: usize,
    /// `any`, `ipv4` or `ipv6`.
    pub address_family: AddressFamily,
}

impl Default for SmtpOptions {
    fn default() -> Self {
        SmtpOptions {
            port: 25,
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
            max_hosts: 10,
            max_addresses: 20,
            parallel: 4,
            address_family: AddressFamily::Any,
        }
    }
}

impl SmtpOptions {
    /// Checks the options without I/O: names, local parts, durations, counts.
    pub fn validate(&self) -> Result<(), String> {
        if self.port == 0 {
            return Err("port: must be 1-65535".to_owned());
        }
        for (key, n) in [
            ("max_hosts", self.max_hosts),
            ("max_addresses", self.max_addresses),
            ("parallel", self.parallel),
        ] {
            if n == 0 {
                return Err(format!("{key}: must be at least 1"));
            }
        }
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

    /// The TLS client: Mozilla's roots plus these options' CA files and the
    /// run's (`--ca-file`, `ca_files` of the configuration).
    fn tls_client(&self, cx: &CheckCx) -> Result<TlsClient, String> {
        let mut files = self.ca_files.clone();
        files.extend(cx.run.ca_files.iter().cloned());
        TlsClient::new(&files).map_err(|e| e.to_string())
    }
}

/// The `smtp` engine.
#[derive(Debug)]
pub struct Smtp {
    id: String,
    options: SmtpOptions,
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
    const LONG_TASKS: bool = true;
    type Params = SmtpOptions;

    fn build(mut options: SmtpOptions, plugin: &PluginMeta) -> Result<Self, String> {
        // Relative CA paths belong to the manifest's folder (pure path joining, no I/O).
        let base = Path::new(&plugin.source)
            .parent()
            .filter(|_| !plugin.source.starts_with("builtin:"));
        if let Some(dir) = base {
            for f in &mut options.ca_files {
                if f.is_relative() {
                    *f = dir.join(&*f);
                }
            }
        }
        options.validate()?;
        Ok(Smtp {
            id: plugin.id.clone(),
            options,
        })
    }

    fn smtp_prober(&self) -> Option<&dyn SmtpProber> {
        Some(self)
    }

    async fn run(&self, target: &Target, cx: &CheckCx) -> CheckReport {
        self.probe_domain(target, cx).await.report.clone()
    }
}

impl Smtp {
    /// Probes every MX address of the domain (uncached; see [`SmtpProber::probe_domain`]).
    async fn probe_mx(&self, target: &Target, cx: &CheckCx) -> DomainProbe {
        let mut report = CheckReport::default();
        let mut sessions = 0;
        let domain = &target.domain;
        let Some(hosts) = self.mx_addresses(domain, cx, &mut report).await else {
            return DomainProbe { report, sessions };
        };

        // Addresses, each once, with every MX name that points at it.
        let mut targets: Vec<AddressTarget> = Vec::new();
        let mut refused = Vec::new();
        for (host, addresses) in hosts {
            for ip in addresses {
                if !self.options.address_family.admits(ip) {
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
        if targets.len() > self.options.max_addresses {
            report.error(format!(
                "only the first {} of {} MX addresses probed (max_addresses)",
                self.options.max_addresses,
                targets.len()
            ));
            targets.truncate(self.options.max_addresses);
        }
        if targets.is_empty() {
            return DomainProbe { report, sessions };
        }

        let tls = match self.options.tls_client(cx) {
            Ok(t) => Some(t),
            Err(e) => {
                report.error(format!("{e}; STARTTLS and certificates not examined"));
                None
            }
        };
        let task_deadline = task_deadline(cx.deadline);
        let cfg = self.options.clone();
        // Owned inputs per task: borrowed ones trip the higher-ranked lifetime
        // check of `buffer_unordered` inside an `async fn` that must be `Send`.
        let probes: Vec<(usize, Option<AddressProbe>)> =
            futures::stream::iter(targets.clone().into_iter().enumerate())
                .map(|(i, t)| {
                    let cfg = cfg.clone();
                    let tls = tls.clone();
                    let pacer = cx.run.pacer.clone();
                    async move {
                        let peer = SocketAddr::new(t.ip, cfg.port);
                        let probe = pacer
                            .paced(peer, cfg.session_delay, task_deadline, || {
                                probe_address(&t, &cfg, tls.as_ref(), task_deadline)
                            })
                            .await;
                        (i, probe)
                    }
                })
                .buffer_unordered(self.options.parallel)
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
            sessions += probe.transcripts.len();
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
        DomainProbe { report, sessions }
    }

    /// The MX hosts and their addresses; for a domain without MX, the domain
    /// itself (RFC 5321 §5.1 implicit MX). `None` when there is nothing to probe.
    async fn mx_addresses(
        &self,
        domain: &DomainName,
        cx: &CheckCx,
        report: &mut CheckReport,
    ) -> Option<Vec<(String, Vec<IpAddr>)>> {
        let hosts = match mx_hosts(domain, cx, self.options.max_hosts).await {
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

/// Probes one host the way the engine probes an MX address, and returns every
/// session's transcript (control characters escaped on output, nothing
/// redacted) with the observations: `mxaudit smtp HOST[:PORT]`, and the smart
/// host of preflight through [`SmtpProber`].
///
/// `host` is a name (its A and AAAA addresses are probed one after another) or
/// an address (`192.0.2.1`, `[2001:db8::1]`). Addresses the check context's
/// policy refuses are listed in `errors`, not probed. `recipient_domain`
/// enables the postmaster, null-sender and unknown-recipient tests. Render
/// `observations` with the `smtp` plugin's manifest text.
pub async fn probe_host(
    host: &str,
    port: u16,
    recipient_domain: Option<&str>,
    opts: &SmtpOptions,
    cx: &CheckCx,
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
    if let Some(d) = recipient_domain
        && let Err(e) = DomainName::parse(d)
    {
        out.errors.push(format!("recipient domain: {e}"));
        return out;
    }
    let bare = host.trim().trim_start_matches('[').trim_end_matches(']');
    let bare = bare.strip_prefix("IPv6:").unwrap_or(bare);
    let (names, addresses) = match bare.parse::<IpAddr>() {
        Ok(ip) => (vec![ip.to_string()], vec![ip]),
        Err(_) => match DomainName::parse(host) {
            Ok(name) => {
                let a = resolve_host(&name, cx).await;
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
    let tls = match opts.tls_client(cx) {
        Ok(t) => Some(t),
        Err(e) => {
            out.errors
                .push(format!("{e}; STARTTLS and certificates not examined"));
            None
        }
    };
    let cfg = SmtpOptions {
        port,
        ..opts.clone()
    };
    for ip in addresses {
        if let Some(reason) = cx.addresses.non_public_reason(ip) {
            out.errors.push(format!(
                "{ip}: not probed, {reason}; allow with --allow-target"
            ));
            continue;
        }
        out.addresses.push(ip);
        let target = AddressTarget {
            ip,
            names: names.clone(),
            local_domain: recipient_domain.map(str::to_owned),
        };
        // The session budget is the limit, within the context's deadline.
        let deadline = Instant::now() + opts.session_budget * 2 + opts.session_delay;
        let deadline = deadline.min(task_deadline(cx.deadline));
        let peer = SocketAddr::new(ip, port);
        let Some(probe) = cx
            .run
            .pacer
            .paced(peer, opts.session_delay, deadline, || {
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

#[async_trait::async_trait]
impl SmtpProber for Smtp {
    /// Once per run and domain for this plugin, whoever asks first (this
    /// engine's own check, or the relay-config review comparing its verdict):
    /// a mail server is probed once, not once per asker.
    async fn probe_domain(&self, target: &Target, cx: &CheckCx) -> Arc<DomainProbe> {
        let key = format!("smtp:{}:{}", self.id, target.domain);
        cx.dns.derived(&key, || self.probe_mx(target, cx)).await
    }

    async fn probe_host(
        &self,
        host: &DomainName,
        port: u16,
        recipient_domain: Option<&str>,
        cx: &CheckCx,
    ) -> CheckReport {
        let out = probe_host(host.bare(), port, recipient_domain, &self.options, cx).await;
        CheckReport {
            observations: out.observations,
            errors: out.errors,
        }
    }
}
