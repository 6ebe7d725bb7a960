//! Engine `dane`: the TLSA records of each MX host (`_25._tcp.<host>`), as a
//! DANE-aware sender (Postfix, Exim, and the large providers that deliver with
//! DANE) applies them, RFC 7672:
//!
//! - TLSA from an unsigned zone is ignored by senders (§2.2):
//!   `dane.tlsa_unsigned`;
//! - a TLSA RRset that fails validation makes senders defer mail to the host
//!   (§2.2): `dane.tlsa_bogus`;
//! - PKIX-TA(0), PKIX-EE(1) and unknown parameters are unusable (§3.1.3):
//!   `dane.tlsa_unusable`;
//! - DANE-EE(3) and DANE-TA(2) records are matched against the certificate
//!   chain each MX address presents after STARTTLS (`matching.rs`); when no
//!   usable record matches, DANE senders defer mail: `dane.tlsa_mismatch`.
//!
//! MX hosts from an unsigned MX set are checked too (§2.2.1: a sender MAY
//! use the provider's signed TLSA records for them). The chain comes from its
//! own short session (`smtp::chain::peer_chain`); when none can be had, the
//! records could not be checked: an `error` status, not a finding.

pub mod matching;
pub mod preflight;

use std::net::IpAddr;
use std::time::Duration;

use rustls::pki_types::UnixTime;
use serde::Deserialize;
use tokio::time::Instant;

use mxaudit_core::{CheckCx, CheckReport, CodeSpec, Engine, Observation, PluginMeta, Target};
use mxaudit_dns::{Answer, DomainName, RType, Rdata, Security};

use crate::resolve::{mx_hosts, resolve_host};
use crate::smtp::chain::{ChainProbe, peer_chain};
use crate::smtp::observe::subject as address_subject;
use crate::smtp::starttls::TlsClient;
use crate::smtp::{AddressFamily, SmtpOptions};
use mxaudit_core::pacer::SessionPacer;

use self::matching::{Tlsa, Verdict, association, match_chain, unusable};

/// `[params]` of the `dane` engine. Durations are humantime strings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaneParams {
    /// TCP port of the MX hosts (the TLSA name is always `_25._tcp`).
    #[serde(default = "default_port")]
    pub port: u16,
    /// EHLO argument; default: the address literal of the local end.
    #[serde(default)]
    pub helo_name: Option<String>,
    /// TCP connect timeout.
    #[serde(default = "d_connect", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Longest wait for the greeting.
    #[serde(default = "d_greeting", with = "humantime_serde")]
    pub greeting_timeout: Duration,
    /// Longest wait for each later reply.
    #[serde(default = "d_command", with = "humantime_serde")]
    pub command_timeout: Duration,
    /// Longest TLS handshake.
    #[serde(default = "d_tls", with = "humantime_serde")]
    pub tls_timeout: Duration,
    /// Pause between two sessions to the same address.
    #[serde(default = "d_delay", with = "humantime_serde")]
    pub session_delay: Duration,
    /// MX hosts checked at most.
    #[serde(default = "default_max_hosts")]
    pub max_hosts: usize,
    /// Addresses connected to at most per domain.
    #[serde(default = "default_max_addresses")]
    pub max_addresses: usize,
    /// `any`, `ipv4` or `ipv6`.
    #[serde(default)]
    pub address_family: AddressFamily,
}

fn default_port() -> u16 {
    25
}
fn d_connect() -> Duration {
    SmtpOptions::default().connect_timeout
}
fn d_greeting() -> Duration {
    SmtpOptions::default().greeting_timeout
}
fn d_command() -> Duration {
    SmtpOptions::default().command_timeout
}
fn d_tls() -> Duration {
    SmtpOptions::default().tls_timeout
}
fn d_delay() -> Duration {
    SmtpOptions::default().session_delay
}
fn default_max_hosts() -> usize {
    10
}
fn default_max_addresses() -> usize {
    20
}

/// The `dane` engine.
#[derive(Debug)]
pub struct Dane {
    probe: ChainProbe,
    max_hosts: usize,
    max_addresses: usize,
    family: AddressFamily,
}

impl Engine for Dane {
    const NAME: &'static str = "dane";
    const CODES: &'static [CodeSpec] = &[
        CodeSpec {
            code: "dane.tlsa_mismatch",
            vars: &[
                "host",
                "address",
                "port",
                "owner",
                "records",
                "reasons",
                "presented",
            ],
        },
        CodeSpec {
            code: "dane.tlsa_unsigned",
            vars: &["host", "owner", "records"],
        },
        CodeSpec {
            code: "dane.tlsa_unusable",
            vars: &["host", "owner", "records", "reasons", "usable"],
        },
        CodeSpec {
            code: "dane.tlsa_bogus",
            vars: &["host", "owner", "reason"],
        },
    ];
    const CONNECTS: bool = true;
    type Params = DaneParams;

    fn build(params: DaneParams, _plugin: &PluginMeta) -> Result<Self, String> {
        if params.port == 0 {
            return Err("port: must be 1-65535".to_owned());
        }
        for (key, n) in [
            ("max_hosts", params.max_hosts),
            ("max_addresses", params.max_addresses),
        ] {
            if n == 0 {
                return Err(format!("{key}: must be at least 1"));
            }
        }
        for (key, d) in [
            ("connect_timeout", params.connect_timeout),
            ("greeting_timeout", params.greeting_timeout),
            ("command_timeout", params.command_timeout),
            ("tls_timeout", params.tls_timeout),
        ] {
            if d.is_zero() {
                return Err(format!("{key}: must be longer than 0s"));
            }
        }
        // The EHLO argument follows the smtp engine's rules.
        SmtpOptions {
            helo_name: params.helo_name.clone(),
            ..SmtpOptions::default()
        }
        .validate()?;
        Ok(Dane {
            probe: ChainProbe {
                port: params.port,
                helo_name: params.helo_name,
                connect_timeout: params.connect_timeout,
                greeting_timeout: params.greeting_timeout,
                command_timeout: params.command_timeout,
                tls_timeout: params.tls_timeout,
                session_delay: params.session_delay,
            },
            max_hosts: params.max_hosts,
            max_addresses: params.max_addresses,
            family: params.address_family,
        })
    }

    async fn run(&self, target: &Target, cx: &CheckCx) -> CheckReport {
        let mut report = CheckReport::default();
        let Some(hosts) = self.hosts(&target.domain, cx, &mut report).await else {
            return report;
        };
        let deadline = task_deadline(cx.deadline);
        let mut connected = 0usize;
        for (host, addresses) in hosts {
            let owner = match DomainName::parse(&format!("_25._tcp.{host}")) {
                Ok(o) => o,
                Err(e) => {
                    report.error(format!("{host}: no TLSA name can be built: {e}"));
                    continue;
                }
            };
            let v = match cx.dns.query_validated(&owner, RType::Tlsa).await {
                Ok(v) => v,
                Err(unavailable) => {
                    report.error(format!("DANE not checked: {unavailable}"));
                    return report;
                }
            };
            let shown_owner = owner.bare().to_owned();
            let set = match (&v.answer, &v.security) {
                (_, Security::Bogus(reason)) => {
                    report.push(
                        Observation::new("dane.tlsa_bogus", &shown_owner)
                            .evidence(format!("{} TLSA: {}", owner.as_str(), v.answer.describe()))
                            .evidence(format!("DNSSEC: {reason}"))
                            .var("host", host.clone())
                            .var("owner", shown_owner.clone())
                            .var("reason", reason.clone()),
                    );
                    continue;
                }
                (Answer::NxDomain { .. } | Answer::NoData { .. }, _) => continue,
                (Answer::Failed(why), _) => {
                    report.error(format!("{} TLSA: {why}", owner.as_str()));
                    continue;
                }
                (_, Security::Indeterminate(why)) => {
                    report.error(format!(
                        "{} TLSA: DNSSEC status unknown: {why}",
                        owner.as_str()
                    ));
                    continue;
                }
                (Answer::Records(set), Security::Secure | Security::Insecure) => set,
            };
            let records: Vec<Tlsa> = set
                .iter()
                .filter_map(|r| match &r.data {
                    Rdata::Tlsa {
                        usage,
                        selector,
                        matching,
                        data,
                    } => Some(Tlsa {
                        usage: *usage,
                        selector: *selector,
                        matching: *matching,
                        data: data.clone(),
                    }),
                    _ => None,
                })
                .collect();
            if records.is_empty() {
                continue;
            }
            let shown: Vec<String> = records
                .iter()
                .map(|t| format!("{} TLSA {t}", owner.as_str()))
                .collect();
            if v.security == Security::Insecure {
                report.push(
                    Observation::new("dane.tlsa_unsigned", &shown_owner)
                        .evidence_lines(shown.clone())
                        .evidence("DNSSEC: insecure (the zone is not signed)")
                        .var("host", host.clone())
                        .var("owner", shown_owner.clone())
                        .var("records", shown.len()),
                );
                continue;
            }
            let (usable, unusable_records): (Vec<&Tlsa>, Vec<&Tlsa>) =
                records.iter().partition(|t| unusable(t).is_none());
            if !unusable_records.is_empty() {
                let reasons: Vec<String> = unusable_records
                    .iter()
                    .map(|t| format!("{t}: {}", unusable(t).unwrap_or_default()))
                    .collect();
                report.push(
                    Observation::new("dane.tlsa_unusable", &shown_owner)
                        .evidence_lines(reasons.clone())
                        .var("host", host.clone())
                        .var("owner", shown_owner.clone())
                        .var("records", unusable_records.len())
                        .var("reasons", reasons.join("; "))
                        .var("usable", usable.len()),
                );
            }
            if usable.is_empty() {
                continue;
            }
            let usable: Vec<Tlsa> = usable.into_iter().cloned().collect();
            for ip in addresses {
                if !admits(self.family, ip) {
                    continue;
                }
                if let Some(reason) = cx.addresses.non_public_reason(ip) {
                    report.error(format!(
                        "{host} ({ip}): TLSA records not checked, the address policy refuses it ({reason}); allow with --allow-target"
                    ));
                    continue;
                }
                if connected >= self.max_addresses {
                    report.error(format!(
                        "{host} ({ip}): TLSA records not checked, past max_addresses ({})",
                        self.max_addresses
                    ));
                    continue;
                }
                connected += 1;
                match self
                    .check_address(&host, ip, &owner, &usable, &cx.run.pacer, deadline)
                    .await
                {
                    Ok(None) => {}
                    Ok(Some(o)) => report.push(o),
                    Err(why) => report.error(format!(
                        "{host} ({ip}): the TLSA records at {} could not be checked: {why}",
                        owner.bare()
                    )),
                }
            }
        }
        report
    }
}

impl Dane {
    /// The MX hosts and their addresses; for a domain without MX, the domain
    /// itself (RFC 5321 §5.1, RFC 7672 §2.2.1). `None` when there is nothing to check.
    async fn hosts(
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
        if hosts.is_empty() {
            if matches!(
                cx.dns.query(domain, RType::Mx).await.as_ref(),
                Answer::NoData { .. }
            ) {
                let a = resolve_host(domain, cx).await;
                for f in a.failures {
                    report.error(f);
                }
                return Some(vec![(domain.bare().to_owned(), a.addresses)]);
            }
            return None;
        }
        Some(
            hosts
                .into_iter()
                .filter(|h| h.host.parse::<IpAddr>().is_err())
                .map(|h| {
                    for f in &h.addresses.failures {
                        report.error(f.clone());
                    }
                    (h.host, h.addresses.addresses)
                })
                .collect(),
        )
    }

    /// One address: the chain it presents against the usable records.
    async fn check_address(
        &self,
        host: &str,
        ip: IpAddr,
        owner: &DomainName,
        usable: &[Tlsa],
        pacer: &SessionPacer,
        deadline: Instant,
    ) -> Result<Option<Observation>, String> {
        // DANE does not use the Web PKI: no CA file matters here.
        let tls = TlsClient::new(&[]).map_err(|e| e.to_string())?;
        let chain = peer_chain(ip, host, &self.probe, &tls, pacer, deadline)
            .await
            .map_err(|e| e.to_string())?;
        let verdicts = match_chain(usable, &chain, host, UnixTime::now());
        if verdicts.iter().any(|v| matches!(v, Verdict::Matches(_))) {
            return Ok(None);
        }
        let mut evidence = Vec::new();
        let mut reasons = Vec::new();
        for (t, v) in usable.iter().zip(&verdicts) {
            let why = match v {
                Verdict::NoMatch if t.usage == 2 => {
                    "no certificate the server sent matches; the trust anchor must be in the chain it sends (RFC 7671 §5.2.2)".to_owned()
                }
                Verdict::NoMatch => "the server's certificate does not match".to_owned(),
                Verdict::ChainInvalid { anchor, reason } => format!(
                    "certificate {anchor} of the chain matches, but the chain to it does not verify: {reason}"
                ),
                Verdict::Unusable(why) => why.clone(),
                Verdict::Matches(_) => continue,
            };
            evidence.push(format!("{} TLSA {t}: {why}", owner.as_str()));
            reasons.push(why);
        }
        let ee = chain[0].as_ref();
        let presented = association(ee, 1, 1)
            .map(|spki| {
                let hex: String = spki.iter().map(|b| format!("{b:02x}")).collect();
                format!("3 1 1 {hex}")
            })
            .unwrap_or_else(|| "the certificate cannot be parsed".to_owned());
        for (i, cert) in chain.iter().enumerate() {
            evidence.push(format!("certificate {i}: {}", describe(cert.as_ref())));
        }
        let subject = address_subject(host, ip, self.probe.port);
        Ok(Some(
            Observation::new("dane.tlsa_mismatch", &subject)
                .evidence_lines(evidence)
                .var("host", host.to_owned())
                .var("address", ip.to_string())
                .var("port", self.probe.port)
                .var("owner", owner.bare().to_owned())
                .var("records", usable.len())
                .var("reasons", reasons.join("; "))
                .var("presented", presented),
        ))
    }
}

/// Subject and SPKI SHA-256 of a certificate, for evidence.
fn describe(der: &[u8]) -> String {
    let spki = association(der, 1, 1)
        .map(|d| d.iter().map(|b| format!("{b:02x}")).collect::<String>())
        .unwrap_or_default();
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, c)) => format!(
            "subject={} issuer={} SPKI SHA-256={spki}",
            c.subject(),
            c.issuer()
        ),
        Err(e) => format!("unparsable ({e})"),
    }
}

fn admits(family: AddressFamily, ip: IpAddr) -> bool {
    match family {
        AddressFamily::Any => true,
        AddressFamily::Ipv4 => ip.is_ipv4(),
        AddressFamily::Ipv6 => ip.is_ipv6(),
    }
}

/// The check's deadline with a margin, so the engine reports before the
/// runner stops it.
fn task_deadline(deadline: std::time::Instant) -> Instant {
    let remaining = deadline.saturating_duration_since(std::time::Instant::now());
    let margin = (remaining / 20).min(Duration::from_secs(2));
    Instant::now() + remaining.saturating_sub(margin)
}
