//! Engine `ptr`: every public address of the domain's MX hosts, and every
//! configured outbound address, has a PTR record whose name resolves back to the
//! address (forward-confirmed reverse DNS).

use std::net::IpAddr;

use serde::Deserialize;

use mxaudit_core::{CheckCx, CheckReport, CodeSpec, Engine, Observation, PluginMeta, Target};
use mxaudit_dns::{Answer, DomainName, RType, reverse_name};

use crate::resolve::{mx_hosts, resolve_host};

/// `[params]` of the `ptr` engine.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PtrParams {
    /// MX hosts examined at most.
    #[serde(default = "default_max_hosts")]
    pub max_hosts: usize,
    /// PTR names per address followed at most.
    #[serde(default = "default_max_names")]
    pub max_names: usize,
}

fn default_max_hosts() -> usize {
    20
}
fn default_max_names() -> usize {
    5
}

/// The `ptr` engine.
#[derive(Debug)]
pub struct Ptr {
    params: PtrParams,
}

impl Engine for Ptr {
    const NAME: &'static str = "ptr";
    const CODES: &'static [CodeSpec] = &[
        CodeSpec {
            code: "ptr.missing",
            vars: &["address", "host"],
        },
        CodeSpec {
            code: "ptr.mismatch",
            vars: &["address", "ptr_names"],
        },
    ];
    type Params = PtrParams;

    fn build(params: PtrParams, _plugin: &PluginMeta) -> Result<Self, String> {
        Ok(Ptr { params })
    }

    async fn run(&self, target: &Target, cx: &CheckCx) -> CheckReport {
        let mut report = CheckReport::default();
        let mut subjects: Vec<(IpAddr, String)> = Vec::new();
        match mx_hosts(&target.domain, cx, self.params.max_hosts).await {
            Ok(hosts) => {
                for h in hosts {
                    for ip in h.addresses.addresses {
                        // Private and reserved MX addresses are `mx.target_private`;
                        // their reverse zones are nobody's business outside.
                        if cx.addresses.non_public_reason(ip).is_none()
                            && !subjects.iter().any(|(s, _)| *s == ip)
                        {
                            subjects.push((ip, h.host.clone()));
                        }
                    }
                }
            }
            // NXDOMAIN and MX failures are the mx engine's findings.
            Err(why) if why.ends_with("NXDOMAIN") => {}
            Err(why) => report.error(why),
        }
        for ip in &target.outbound_ips {
            if !subjects.iter().any(|(s, _)| s == ip) {
                subjects.push((*ip, "outbound".to_owned()));
            }
        }
        let checks = futures::future::join_all(
            subjects
                .iter()
                .map(|(ip, host)| self.check_address(*ip, host, cx)),
        )
        .await;
        for c in checks {
            match c {
                Ok(Some(obs)) => report.push(obs),
                Ok(None) => {}
                Err(why) => report.error(why),
            }
        }
        report
    }
}

impl Ptr {
    async fn check_address(
        &self,
        ip: IpAddr,
        host: &str,
        cx: &CheckCx,
    ) -> Result<Option<Observation>, String> {
        let rname = reverse_name(ip);
        let answer = cx.dns.query(&rname, RType::Ptr).await;
        let names: Vec<String> = match answer.as_ref() {
            Answer::Records(set) => set.ptr_names().into_iter().map(str::to_owned).collect(),
            Answer::NxDomain { .. } | Answer::NoData { .. } => Vec::new(),
            Answer::Failed(why) => return Err(format!("{} PTR: {why}", rname.as_str())),
        };
        if names.is_empty() {
            return Ok(Some(
                Observation::new("ptr.missing", ip.to_string())
                    .evidence(format!("{} PTR: {}", rname.as_str(), answer.describe()))
                    .var("address", ip.to_string())
                    .var("host", host.to_owned()),
            ));
        }
        let mut evidence = vec![format!("{} PTR {}", rname.as_str(), names.join(" "))];
        let mut failures = Vec::new();
        for name in names.iter().take(self.params.max_names) {
            let Ok(dn) = DomainName::parse_relaxed(name) else {
                evidence.push(format!("{name}: not a valid host name"));
                continue;
            };
            let addrs = resolve_host(&dn, cx).await;
            if addrs.addresses.contains(&ip) {
                return Ok(None);
            }
            if addrs.addresses.is_empty() {
                evidence.extend(addrs.evidence.iter().cloned());
            } else {
                let list: Vec<String> = addrs.addresses.iter().map(ToString::to_string).collect();
                evidence.push(format!("{name} A/AAAA {}", list.join(" ")));
            }
            failures.extend(addrs.failures);
        }
        if !failures.is_empty() {
            return Err(failures.join(", "));
        }
        let bare: Vec<&str> = names.iter().map(|n| n.trim_end_matches('.')).collect();
        Ok(Some(
            Observation::new("ptr.mismatch", ip.to_string())
                .evidence_lines(evidence)
                .var("address", ip.to_string())
                .var("ptr_names", bare.join(", ")),
        ))
    }
}
