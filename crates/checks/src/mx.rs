//! Engine `mx`: the domain's MX set (RFC 5321 §5.1, RFC 7505) and each MX host's
//! addresses, against the provider profile when the domain has one.

use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;

use mxaudit_core::{CheckCx, CheckReport, CodeSpec, Engine, Observation, PluginMeta, Target};
use mxaudit_dns::{Answer, DomainName, RType};

use crate::resolve::{HostAddresses, resolve_host};

/// `[params]` of the `mx` engine.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MxParams {
    /// `mx.ttl_high` above this TTL.
    #[serde(default = "default_ttl_threshold", with = "humantime_serde")]
    pub ttl_threshold: Duration,
    /// MX hosts examined at most (hostile zones may publish hundreds).
    #[serde(default = "default_max_hosts")]
    pub max_hosts: usize,
}

fn default_ttl_threshold() -> Duration {
    Duration::from_secs(3600)
}
fn default_max_hosts() -> usize {
    20
}

/// The `mx` engine.
#[derive(Debug)]
pub struct Mx {
    params: MxParams,
}

impl Engine for Mx {
    const NAME: &'static str = "mx";
    const CODES: &'static [CodeSpec] = &[
        CodeSpec {
            code: "domain.nxdomain",
            vars: &[],
        },
        CodeSpec {
            code: "mx.lookup_failed",
            vars: &["failure"],
        },
        CodeSpec {
            code: "mx.none",
            vars: &["has_address"],
        },
        CodeSpec {
            code: "mx.null",
            vars: &[],
        },
        CodeSpec {
            code: "mx.null_mixed",
            vars: &["others"],
        },
        CodeSpec {
            code: "mx.target_cname",
            vars: &["host", "target"],
        },
        CodeSpec {
            code: "mx.target_ip_literal",
            vars: &["host"],
        },
        CodeSpec {
            code: "mx.target_unresolvable",
            vars: &["host", "preference", "reason"],
        },
        CodeSpec {
            code: "mx.target_private",
            vars: &["host", "address", "range"],
        },
        CodeSpec {
            code: "mx.provider_missing",
            vars: &["provider", "patterns", "expected_host"],
        },
        CodeSpec {
            code: "mx.provider_not_preferred",
            vars: &["host", "preference", "provider_host", "provider_preference"],
        },
        CodeSpec {
            code: "mx.ttl_high",
            vars: &["ttl", "ttl_human", "threshold_human"],
        },
    ];
    type Params = MxParams;

    fn build(params: MxParams, _plugin: &PluginMeta) -> Result<Self, String> {
        if params.max_hosts == 0 {
            return Err("max_hosts must be at least 1".to_owned());
        }
        Ok(Mx { params })
    }

    async fn run(&self, target: &Target, cx: &CheckCx) -> CheckReport {
        let mut report = CheckReport::default();
        let domain = &target.domain;
        let subject = domain.to_string();
        let answer = cx.dns.query(domain, RType::Mx).await;
        let set = match answer.as_ref() {
            Answer::Records(set) => set.clone(),
            Answer::NxDomain { .. } => {
                report.push(
                    Observation::new("domain.nxdomain", &subject)
                        .evidence(format!("{} MX: NXDOMAIN", domain.as_str())),
                );
                return report;
            }
            Answer::NoData { .. } => {
                let has_address = domain_has_address(domain, cx).await;
                report.push(
                    Observation::new("mx.none", &subject)
                        .evidence(format!("{} MX: NODATA", domain.as_str()))
                        .var("has_address", has_address),
                );
                return report;
            }
            Answer::Failed(why) => {
                report.push(
                    Observation::new("mx.lookup_failed", &subject)
                        .evidence(format!("{} MX: {why}", domain.as_str()))
                        .var("failure", why.to_string()),
                );
                report.error(format!("MX lookup of {domain} failed: {why}"));
                return report;
            }
        };
        let mut mx = set.mx();
        mx.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
        let evidence: Vec<String> = set
            .iter()
            .filter(|r| r.data.rtype() == RType::Mx)
            .take(self.params.max_hosts + 1)
            .map(|r| r.to_string())
            .collect();
        if mx.is_empty() {
            report.push(
                Observation::new("mx.none", &subject)
                    .evidence(format!("{} MX: no MX in the answer", domain.as_str()))
                    .var("has_address", domain_has_address(domain, cx).await),
            );
            return report;
        }

        // RFC 7505 §3: a null MX must be the only MX record.
        if mx.iter().any(|(_, host, _)| *host == ".") {
            if mx.len() == 1 {
                report.push(Observation::new("mx.null", &subject).evidence_lines(evidence));
            } else {
                let others: Vec<&str> = mx
                    .iter()
                    .map(|m| m.1)
                    .filter(|h| *h != ".")
                    .map(|h| h.trim_end_matches('.'))
                    .collect();
                report.push(
                    Observation::new("mx.null_mixed", &subject)
                        .evidence_lines(evidence)
                        .var("others", others.join(", ")),
                );
            }
            return report;
        }

        if let Some(ttl) = set.min_ttl(RType::Mx)
            && u64::from(ttl) > self.params.ttl_threshold.as_secs()
        {
            report.push(
                Observation::new("mx.ttl_high", &subject)
                    .evidence_lines(evidence.iter().take(3).cloned())
                    .var("ttl", ttl)
                    .var(
                        "ttl_human",
                        humantime::format_duration(Duration::from_secs(ttl.into())).to_string(),
                    )
                    .var(
                        "threshold_human",
                        humantime::format_duration(self.params.ttl_threshold).to_string(),
                    ),
            );
        }

        let total = mx.len();
        let examined: Vec<(u16, String)> = mx
            .iter()
            .take(self.params.max_hosts)
            .map(|(p, h, _)| (*p, (*h).to_owned()))
            .collect();
        if total > examined.len() {
            report.error(format!(
                "{domain} publishes {total} MX records; only the {} most preferred were examined",
                examined.len()
            ));
        }
        let resolved = futures::future::join_all(
            examined
                .iter()
                .map(|(_, host)| async move { (host.clone(), examine_host(host, cx).await) }),
        )
        .await;
        for ((preference, host), (_, outcome)) in examined.iter().zip(resolved) {
            let bare = host.trim_end_matches('.').to_owned();
            match outcome {
                HostOutcome::IpLiteral => report.push(
                    Observation::new("mx.target_ip_literal", &bare)
                        .evidence(format!("{} MX {preference} {host}", domain.as_str()))
                        .var("host", bare.clone()),
                ),
                HostOutcome::BadName(why) => report.error(format!("MX host {bare}: {why}")),
                HostOutcome::Resolved(addrs) => {
                    self.judge_host(&mut report, domain, *preference, &bare, &addrs, cx);
                }
            }
        }

        if let Some(profile) = &target.profile {
            let provider: Vec<&(u16, &str, u32)> = mx
                .iter()
                .filter(|(_, h, _)| profile.matches_mx(h))
                .collect();
            match provider.iter().map(|m| m.0).min() {
                None => report.push(
                    Observation::new("mx.provider_missing", &subject)
                        .evidence_lines(evidence.clone())
                        .var("provider", profile.description.clone())
                        .var("patterns", profile.mx_patterns.join(", "))
                        .var(
                            "expected_host",
                            profile.expected_mx_host(domain.bare()).unwrap_or_default(),
                        ),
                ),
                Some(best) => {
                    let best_host = provider
                        .iter()
                        .find(|m| m.0 == best)
                        .map(|m| m.1.trim_end_matches('.').to_owned())
                        .unwrap_or_default();
                    // Equal preference also bypasses: senders pick among equals at random
                    // (RFC 5321 §5.1), so part of the mail skips the service.
                    for (pref, host, _) in mx
                        .iter()
                        .filter(|(p, h, _)| *p <= best && !profile.matches_mx(h))
                    {
                        let bare = host.trim_end_matches('.').to_owned();
                        report.push(
                            Observation::new("mx.provider_not_preferred", &bare)
                                .evidence_lines(evidence.clone())
                                .var("host", bare.clone())
                                .var("preference", *pref)
                                .var("provider_host", best_host.clone())
                                .var("provider_preference", best),
                        );
                    }
                }
            }
        }
        report
    }
}

enum HostOutcome {
    IpLiteral,
    BadName(String),
    Resolved(HostAddresses),
}

async fn examine_host(host: &str, cx: &CheckCx) -> HostOutcome {
    let bare = host.trim_end_matches('.');
    if bare.parse::<IpAddr>().is_ok() || bare.starts_with('[') {
        return HostOutcome::IpLiteral;
    }
    match DomainName::parse_relaxed(host) {
        Ok(name) => HostOutcome::Resolved(resolve_host(&name, cx).await),
        Err(e) => HostOutcome::BadName(e.to_string()),
    }
}

impl Mx {
    fn judge_host(
        &self,
        report: &mut CheckReport,
        domain: &DomainName,
        preference: u16,
        host: &str,
        addrs: &HostAddresses,
        cx: &CheckCx,
    ) {
        if let Some((owner, target)) = addrs.cnames.first() {
            report.push(
                Observation::new("mx.target_cname", host)
                    .evidence(format!("{} MX {preference} {host}.", domain.as_str()))
                    .evidence(format!("{owner} CNAME {target}"))
                    .var("host", host.to_owned())
                    .var("target", target.trim_end_matches('.').to_owned()),
            );
        }
        if addrs.addresses.is_empty() {
            if !addrs.failures.is_empty() {
                report.error(format!(
                    "addresses of MX host {host}: {}",
                    addrs.failures.join(", ")
                ));
            } else {
                let reason = if addrs.nxdomain { "NXDOMAIN" } else { "NODATA" };
                report.push(
                    Observation::new("mx.target_unresolvable", host)
                        .evidence(format!("{} MX {preference} {host}.", domain.as_str()))
                        .evidence_lines(addrs.evidence.clone())
                        .var("host", host.to_owned())
                        .var("preference", preference)
                        .var("reason", reason),
                );
            }
            return;
        }
        for ip in &addrs.addresses {
            if let Some(range) = cx.addresses.non_public_reason(*ip) {
                report.push(
                    Observation::new("mx.target_private", format!("{host} {ip}"))
                        .evidence(format!("{} MX {preference} {host}.", domain.as_str()))
                        .evidence(format!(
                            "{host}. {} {ip}",
                            if ip.is_ipv4() { "A" } else { "AAAA" }
                        ))
                        .var("host", host.to_owned())
                        .var("address", ip.to_string())
                        .var("range", range),
                );
            }
        }
        if !addrs.failures.is_empty() {
            report.error(format!(
                "addresses of MX host {host}: {}",
                addrs.failures.join(", ")
            ));
        }
    }
}

async fn domain_has_address(domain: &DomainName, cx: &CheckCx) -> &'static str {
    let addrs = resolve_host(domain, cx).await;
    if !addrs.addresses.is_empty() {
        "yes"
    } else if addrs.failures.is_empty() {
        "no"
    } else {
        "unknown"
    }
}
