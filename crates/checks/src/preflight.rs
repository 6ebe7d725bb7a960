//! Engine `preflight`: the go/no-go checklist before moving a domain's MX to a
//! provider (KB2598485, "Mail flow intelligence in EOP"). Every line of the
//! checklist is an observation: `info` codes are the lines that are fine (OK),
//! `low`/`medium` ones need attention (WARN), `high`/`critical` ones stop the
//! move (BLOCKER).
//!
//! The path back — the on-premises smart host the provider's connector will
//! deliver to — is also asked of the other engines of the run, through the
//! check context: the `smtp` plugin probes it as the connector will see it
//! (port 25, greeting, STARTTLS, certificate, relay; not with `--dns-only`),
//! and every enabled blocklist looks its addresses up. Their observations keep
//! their own plugin's text.

use std::time::Duration;

use serde::Deserialize;

use std::net::IpAddr;

use mxaudit_core::{
    CheckCx, CheckReport, CodeSpec, Engine, Observation, PluginMeta, SmartHost, Target,
};
use mxaudit_dns::{Answer, DomainName, RType};

use crate::resolve::resolve_host;

/// `[params]` of the `preflight` engine.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreflightParams {
    /// Above this TTL, advise lowering it before the change.
    #[serde(default = "default_ttl_advice", with = "humantime_serde")]
    pub ttl_advice: Duration,
    /// How the domain's MTA-STS policy is fetched (`[params.mta_sts]`).
    #[serde(default)]
    pub mta_sts: crate::mta_sts::PolicyFetchParams,
}

fn default_ttl_advice() -> Duration {
    Duration::from_secs(3600)
}

/// The `preflight` engine.
#[derive(Debug)]
pub struct Preflight {
    params: PreflightParams,
    mta_sts: crate::mta_sts::fetch::FetchOptions,
}

fn human(secs: u32) -> String {
    humantime::format_duration(Duration::from_secs(secs.into())).to_string()
}

impl Engine for Preflight {
    const NAME: &'static str = "preflight";
    const CODES: &'static [CodeSpec] = &[
        CodeSpec {
            code: "preflight.no_profile",
            vars: &[],
        },
        CodeSpec {
            code: "preflight.lookup_failed",
            vars: &["failure"],
        },
        CodeSpec {
            code: "preflight.mx_current",
            vars: &["hosts", "ttl_human"],
        },
        CodeSpec {
            code: "preflight.propagation",
            vars: &["ttl_human", "advice_human"],
        },
        CodeSpec {
            code: "preflight.propagation_slow",
            vars: &["ttl_human", "advice_human"],
        },
        CodeSpec {
            code: "preflight.target_ready",
            vars: &["host", "addresses"],
        },
        CodeSpec {
            code: "preflight.target_unresolvable",
            vars: &["host", "reason"],
        },
        CodeSpec {
            code: "preflight.mx_change",
            vars: &["host", "remove"],
        },
        CodeSpec {
            code: "preflight.bypass_host",
            vars: &["host", "preference", "provider_host", "provider_preference"],
        },
        // RFC 8461: an existing MTA-STS policy must allow the provider's host.
        CodeSpec {
            code: "preflight.mta_sts_ready",
            vars: &["url", "mode", "patterns", "provider", "suggested"],
        },
        CodeSpec {
            code: "preflight.mta_sts_blocks_move",
            vars: &["url", "mode", "patterns", "provider", "suggested"],
        },
        CodeSpec {
            code: "preflight.mta_sts_update",
            vars: &["url", "mode", "patterns", "provider", "suggested"],
        },
        CodeSpec {
            code: "preflight.mta_sts_unreadable",
            vars: &["url", "reason", "provider", "suggested"],
        },
        // RFC 7672 §2.2: TLSA records belong to MX hosts, not to the domain.
        CodeSpec {
            code: "preflight.dane_tlsa_present",
            vars: &["hosts", "provider"],
        },
        CodeSpec {
            code: "preflight.spf_ready",
            vars: &["include", "record", "lookups"],
        },
        CodeSpec {
            code: "preflight.spf_change",
            vars: &["include", "record", "suggested", "lookups_after"],
        },
        CodeSpec {
            code: "preflight.spf_over_limit",
            vars: &["include", "suggested", "lookups_after"],
        },
        CodeSpec {
            code: "preflight.dmarc_ok",
            vars: &[],
        },
        CodeSpec {
            code: "preflight.dmarc_missing",
            vars: &[],
        },
        CodeSpec {
            code: "preflight.a_ok",
            vars: &[],
        },
        CodeSpec {
            code: "preflight.a_missing",
            vars: &[],
        },
        CodeSpec {
            code: "preflight.smarthost_ok",
            vars: &["host", "addresses", "ranges"],
        },
        CodeSpec {
            code: "preflight.smarthost_unresolvable",
            vars: &["host", "reason"],
        },
        CodeSpec {
            code: "preflight.smarthost_private",
            vars: &["host", "address", "range"],
        },
        // When every enabled blocklist was asked and none lists the smart host.
        CodeSpec {
            code: "preflight.smarthost_not_listed",
            vars: &["host", "addresses", "lists", "count"],
        },
    ];
    type Params = PreflightParams;

    fn build(params: PreflightParams, plugin: &PluginMeta) -> Result<Self, String> {
        let mta_sts = params.mta_sts.options(plugin)?;
        Ok(Preflight { params, mta_sts })
    }

    async fn run(&self, target: &Target, cx: &CheckCx) -> CheckReport {
        let mut report = CheckReport::default();
        let domain = &target.domain;
        let subject = domain.to_string();
        let Some(profile) = &target.profile else {
            report.push(Observation::new("preflight.no_profile", &subject));
            return report;
        };

        // Today: the MX set and how long a change takes to reach every sender.
        let mx_answer = cx.dns.query(domain, RType::Mx).await;
        let ns_answer = cx.dns.query(domain, RType::Ns).await;
        let mut mx: Vec<(u16, String, u32)> = Vec::new();
        match mx_answer.as_ref() {
            Answer::Records(set) => {
                mx = set
                    .mx()
                    .into_iter()
                    .map(|(p, h, t)| (p, h.trim_end_matches('.').to_owned(), t))
                    .collect();
                mx.sort();
            }
            Answer::NoData { .. } => {}
            Answer::NxDomain { .. } => {
                report.push(
                    Observation::new("preflight.lookup_failed", &subject)
                        .evidence(format!("{} MX: NXDOMAIN", domain.as_str()))
                        .var("failure", "NXDOMAIN"),
                );
                return report;
            }
            Answer::Failed(why) => {
                report.push(
                    Observation::new("preflight.lookup_failed", &subject)
                        .evidence(format!("{} MX: {why}", domain.as_str()))
                        .var("failure", why.to_string()),
                );
                report.error(format!("MX lookup of {domain}: {why}"));
                return report;
            }
        }
        let mx_ttl = mx.iter().map(|m| m.2).max().unwrap_or(0);
        let ns_ttl = match ns_answer.as_ref() {
            Answer::Records(set) => set.min_ttl(RType::Ns).unwrap_or(0),
            Answer::NxDomain { .. } | Answer::NoData { .. } | Answer::Failed(_) => 0,
        };
        let hosts: Vec<String> = mx.iter().map(|(p, h, _)| format!("{p} {h}")).collect();
        report.push(
            Observation::new("preflight.mx_current", &subject)
                .evidence_lines(
                    mx.iter()
                        .map(|(p, h, t)| format!("{} {t} MX {p} {h}.", domain.as_str())),
                )
                .var(
                    "hosts",
                    if hosts.is_empty() {
                        "none".to_owned()
                    } else {
                        hosts.join(", ")
                    },
                )
                .var("ttl_human", human(mx_ttl)),
        );
        // The slowest record on the path decides how long old answers live in caches.
        let ttl = mx_ttl.max(ns_ttl);
        let code = if u64::from(ttl) > self.params.ttl_advice.as_secs() {
            "preflight.propagation_slow"
        } else {
            "preflight.propagation"
        };
        report.push(
            Observation::new(code, &subject)
                .evidence(format!("MX TTL {mx_ttl} s, NS TTL {ns_ttl} s"))
                .var("ttl_human", human(ttl))
                .var(
                    "advice_human",
                    humantime::format_duration(self.params.ttl_advice).to_string(),
                ),
        );

        // The target: the provider's host for this domain, and the future MX set.
        let expected = profile.expected_mx_host(domain.bare());
        let provider_now: Vec<&(u16, String, u32)> = mx
            .iter()
            .filter(|(_, h, _)| profile.matches_mx(h))
            .collect();
        let target_host = expected
            .clone()
            .or_else(|| provider_now.first().map(|m| m.1.clone()));
        if let Some(host) = &target_host {
            match mxaudit_dns::DomainName::parse_relaxed(host) {
                Ok(name) => {
                    let addrs = resolve_host(&name, cx).await;
                    if !addrs.addresses.is_empty() {
                        let list: Vec<String> =
                            addrs.addresses.iter().map(ToString::to_string).collect();
                        report.push(
                            Observation::new("preflight.target_ready", host)
                                .evidence(format!("{host} A/AAAA {}", list.join(" ")))
                                .var("host", host.clone())
                                .var("addresses", list.join(", ")),
                        );
                    } else if addrs.failures.is_empty() {
                        let reason = if addrs.nxdomain { "NXDOMAIN" } else { "NODATA" };
                        report.push(
                            Observation::new("preflight.target_unresolvable", host)
                                .evidence_lines(addrs.evidence.clone())
                                .var("host", host.clone())
                                .var("reason", reason),
                        );
                    } else {
                        report.error(addrs.failures.join(", "));
                    }
                }
                Err(e) => report.error(format!("provider host {host}: {e}")),
            }
        }
        match provider_now.iter().map(|m| m.0).min() {
            Some(best) => {
                let best_host = provider_now
                    .iter()
                    .find(|m| m.0 == best)
                    .map(|m| m.1.clone())
                    .unwrap_or_default();
                // RFC 5321 §5.1: equal preference is tried in random order, so an equal
                // non-provider host still receives part of the mail.
                for (pref, host, _) in mx
                    .iter()
                    .filter(|(p, h, _)| *p <= best && !profile.matches_mx(h))
                {
                    report.push(
                        Observation::new("preflight.bypass_host", host)
                            .evidence_lines(mx.iter().map(|(p, h, _)| format!("MX {p} {h}")))
                            .var("host", host.clone())
                            .var("preference", *pref)
                            .var("provider_host", best_host.clone())
                            .var("provider_preference", best),
                    );
                }
                let others: Vec<String> = mx
                    .iter()
                    .filter(|(_, h, _)| !profile.matches_mx(h))
                    .map(|m| m.1.clone())
                    .collect();
                if !others.is_empty()
                    && mx
                        .iter()
                        .all(|(p, h, _)| profile.matches_mx(h) || *p > best)
                {
                    report.push(
                        Observation::new("preflight.mx_change", &subject)
                            .var("host", best_host)
                            .var("remove", others.join(", ")),
                    );
                }
            }
            None => {
                let others: Vec<String> = mx.iter().map(|m| m.1.clone()).collect();
                report.push(
                    Observation::new("preflight.mx_change", &subject)
                        .evidence_lines(mx.iter().map(|(p, h, _)| format!("MX {p} {h}")))
                        .var(
                            "host",
                            target_host
                                .clone()
                                .unwrap_or_else(|| profile.mx_patterns.join(" or ")),
                        )
                        .var(
                            "remove",
                            if others.is_empty() {
                                "none".to_owned()
                            } else {
                                others.join(", ")
                            },
                        ),
                );
            }
        }

        // MTA-STS: senders that enforce a policy refuse an MX it does not list.
        crate::mta_sts::preflight::provider_line(
            domain,
            profile,
            target_host.as_deref(),
            &self.mta_sts,
            cx,
            &mut report,
        )
        .await;

        // DANE: TLSA records of the hosts the move retires stop applying.
        let replaced: Vec<String> = mx
            .iter()
            .filter(|(_, h, _)| !profile.matches_mx(h))
            .map(|m| m.1.clone())
            .collect();
        crate::dane::preflight::provider_line(
            domain,
            &replaced,
            &target_host
                .clone()
                .unwrap_or_else(|| profile.mx_patterns.join(" or ")),
            cx,
            &mut report,
        )
        .await;

        // SPF: the provider's include in the record (seed 004), and the DNS
        // lookups the record will need (RFC 7208 §4.6.4: more than 10 is a permerror).
        if let Some(include) = &profile.spf_include {
            let tree_lookups = |name: String| async move {
                crate::spf::evaluate(&cx.dns, &crate::spf::SpfRequest::new(name))
                    .await
                    .tree
                    .map(|t| t.lookups)
                    .unwrap_or(0)
            };
            let spf = spf_record(domain, cx).await;
            match spf {
                Ok(Some(record)) => {
                    let has = record.split_whitespace().any(|t| {
                        t.trim_start_matches(['+', '-', '~', '?'])
                            .eq_ignore_ascii_case(&format!("include:{include}"))
                    });
                    let now = tree_lookups(domain.bare().to_owned()).await;
                    if has {
                        report.push(
                            Observation::new("preflight.spf_ready", &subject)
                                .evidence(format!("{} TXT \"{record}\"", domain.as_str()))
                                .var("include", include.clone())
                                .var("record", record)
                                .var("lookups", now),
                        );
                    } else {
                        let suggested = with_include(&record, include);
                        // The include itself counts one, plus what it includes.
                        let after = now + 1 + tree_lookups(include.clone()).await;
                        let code = if after > 10 {
                            "preflight.spf_over_limit"
                        } else {
                            "preflight.spf_change"
                        };
                        report.push(
                            Observation::new(code, &subject)
                                .evidence(format!("{} TXT \"{record}\"", domain.as_str()))
                                .var("include", include.clone())
                                .var("record", record)
                                .var("suggested", suggested)
                                .var("lookups_after", after),
                        );
                    }
                }
                Ok(None) => {
                    let after = 1 + tree_lookups(include.clone()).await;
                    report.push(
                        Observation::new("preflight.spf_change", &subject)
                            .evidence(format!("{} TXT: no v=spf1 record", domain.as_str()))
                            .var("include", include.clone())
                            .var("record", "none")
                            .var("suggested", format!("v=spf1 include:{include} -all"))
                            .var("lookups_after", after),
                    )
                }
                Err(why) => report.error(why),
            }
        }

        // DMARC and the domain's own address (4.1.8 at strict receivers).
        let dmarc = match domain.prepend("_dmarc") {
            Ok(name) => cx.dns.query(&name, RType::Txt).await,
            Err(e) => {
                report.error(e.to_string());
                return report;
            }
        };
        match dmarc.as_ref() {
            Answer::Records(set) => {
                let found = set.txt_joined().iter().any(|t| t.starts_with(b"v=DMARC1"));
                let code = if found {
                    "preflight.dmarc_ok"
                } else {
                    "preflight.dmarc_missing"
                };
                report.push(Observation::new(code, &subject));
            }
            Answer::NxDomain { .. } | Answer::NoData { .. } => {
                report.push(Observation::new("preflight.dmarc_missing", &subject));
            }
            Answer::Failed(why) => report.error(format!("_dmarc.{domain} TXT: {why}")),
        }
        let own = resolve_host(domain, cx).await;
        if !own.addresses.is_empty() {
            report.push(Observation::new("preflight.a_ok", &subject));
        } else if own.failures.is_empty() {
            report.push(
                Observation::new("preflight.a_missing", &subject).evidence_lines(own.evidence),
            );
        } else {
            report.error(own.failures.join(", "));
        }

        // The path back: the on-premises smart host the provider's connector uses.
        if let Some(smart) = &target.smart_host {
            let host = smart.host.to_string();
            let addrs = resolve_host(&smart.host, cx).await;
            if addrs.addresses.is_empty() {
                if addrs.failures.is_empty() {
                    let reason = if addrs.nxdomain { "NXDOMAIN" } else { "NODATA" };
                    report.push(
                        Observation::new("preflight.smarthost_unresolvable", &host)
                            .evidence_lines(addrs.evidence)
                            .var("host", host.clone())
                            .var("reason", reason),
                    );
                } else {
                    report.push(
                        Observation::new("preflight.smarthost_unresolvable", &host)
                            .evidence_lines(addrs.failures.clone())
                            .var("host", host.clone())
                            .var("reason", addrs.failures.join(", ")),
                    );
                }
            } else {
                let mut private = false;
                for ip in &addrs.addresses {
                    if let Some(range) = cx.addresses.non_public_reason(*ip) {
                        private = true;
                        report.push(
                            Observation::new("preflight.smarthost_private", format!("{host} {ip}"))
                                .evidence(format!("{host} A/AAAA {ip}"))
                                .var("host", host.clone())
                                .var("address", ip.to_string())
                                .var("range", range),
                        );
                    }
                }
                if !private {
                    self.path_back(smart, &target.domain, &addrs.addresses, cx, &mut report)
                        .await;
                    let list: Vec<String> =
                        addrs.addresses.iter().map(ToString::to_string).collect();
                    let ranges: Vec<String> = profile
                        .outbound_ranges
                        .iter()
                        .map(ToString::to_string)
                        .collect();
                    report.push(
                        Observation::new("preflight.smarthost_ok", &host)
                            .evidence(format!("{host} A/AAAA {}", list.join(" ")))
                            .var("host", host.clone())
                            .var("addresses", list.join(", "))
                            .var("ranges", ranges.join(", ")),
                    );
                }
            }
        }
        report
    }
}

impl Preflight {
    /// The smart host as the provider's connector will see it, asked of the
    /// run's other engines: the SMTP probe (4.4.315/316/317/318, 4.7.320, open
    /// relay) and every enabled blocklist (a listed smart host has its mail
    /// refused: KB895853, KB2590562).
    async fn path_back(
        &self,
        smart: &SmartHost,
        domain: &DomainName,
        addresses: &[IpAddr],
        cx: &CheckCx,
        report: &mut CheckReport,
    ) {
        if !cx.run.dns_only
            && let Some(smtp) = cx.run.peer("smtp")
            && let Some(prober) = smtp.check.smtp_prober()
        {
            let probe = prober
                .probe_host(&smart.host, smart.port, Some(domain.bare()), cx)
                .await;
            for o in probe.observations {
                report.push(o.for_plugin(&smtp.meta.id));
            }
            for e in probe.errors {
                report.error(format!("smart host SMTP: {e}"));
            }
        }
        let who = format!("smart host {}", smart.host);
        let mut asked = Vec::new();
        let mut listed = false;
        let mut failed = false;
        for plugin in cx.run.enabled_peers() {
            let Some(list) = plugin.check.blocklist() else {
                continue;
            };
            let (answer, applies) = list.check_ips(addresses, &who, cx).await;
            if applies {
                asked.push(list.list_name().to_owned());
            }
            failed |= !answer.errors.is_empty();
            listed |= !answer.observations.is_empty();
            for e in answer.errors {
                report.error(e);
            }
            for o in answer.observations {
                report.push(o.for_plugin(&plugin.meta.id));
            }
        }
        if !asked.is_empty() && !listed && !failed {
            let shown: Vec<String> = addresses.iter().map(ToString::to_string).collect();
            let host = smart.host.to_string();
            report.push(
                Observation::new("preflight.smarthost_not_listed", &host)
                    .evidence(format!("{}: {}", shown.join(" "), asked.join(", ")))
                    .var("host", host)
                    .var("addresses", shown.join(", "))
                    .var("lists", asked.join(", "))
                    .var("count", asked.len()),
            );
        }
    }
}

/// The domain's SPF record (`v=spf1`, RFC 7208 §4.5), `None` when there is none.
async fn spf_record(
    domain: &mxaudit_dns::DomainName,
    cx: &CheckCx,
) -> Result<Option<String>, String> {
    let answer = cx.dns.query(domain, RType::Txt).await;
    match answer.as_ref() {
        Answer::Records(set) => Ok(set
            .txt_joined()
            .into_iter()
            .find(|b| crate::spf::is_spf_record(b))
            .map(|b| String::from_utf8_lossy(&b).into_owned())),
        Answer::NxDomain { .. } | Answer::NoData { .. } => Ok(None),
        Answer::Failed(why) => Err(format!("{} TXT: {why}", domain.as_str())),
    }
}

/// The record with `include:<include>` added before the `all` term (or a
/// `redirect=`), so that the provider's senders pass and the policy stays.
pub fn with_include(record: &str, include: &str) -> String {
    let terms: Vec<&str> = record.split_whitespace().collect();
    let at = terms
        .iter()
        .position(|t| {
            let bare = t
                .trim_start_matches(['+', '-', '~', '?'])
                .to_ascii_lowercase();
            bare == "all" || bare.starts_with("redirect=")
        })
        .unwrap_or(terms.len());
    let mut out: Vec<String> = terms.iter().map(|t| (*t).to_owned()).collect();
    out.insert(at.max(1), format!("include:{include}"));
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::with_include;

    #[test]
    fn include_goes_before_all() {
        assert_eq!(
            with_include(
                "v=spf1 ip4:198.51.100.0/24 -all",
                "spf.protection.outlook.com"
            ),
            "v=spf1 ip4:198.51.100.0/24 include:spf.protection.outlook.com -all"
        );
        assert_eq!(
            with_include("v=spf1 redirect=_spf.example", "x.example"),
            "v=spf1 include:x.example redirect=_spf.example"
        );
        assert_eq!(
            with_include("v=spf1", "x.example"),
            "v=spf1 include:x.example"
        );
    }
}
