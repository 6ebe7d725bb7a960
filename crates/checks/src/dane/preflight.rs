//! The DANE line of the `preflight` checklist. TLSA records are published per
//! MX host (`_25._tcp.<host>`, RFC 7672 §2.2), so when MX moves to a provider
//! the records of the hosts being replaced stop applying: senders that use
//! DANE look up the provider's host instead. Until then they still pin the old
//! hosts' certificates, so the records must stay correct (and the
//! certificates unchanged, or the records updated first) while the old MX
//! receives mail: a mismatch makes DANE senders defer mail (RFC 7672 §2.2).

use mxaudit_core::{CheckCx, CheckReport, Observation};
use mxaudit_dns::{Answer, DomainName, RType, Rdata};

/// Hosts looked at, at most: the MX set of one domain.
const MAX_HOSTS: usize = 20;

/// Adds `preflight.dane_tlsa_present` when any of `replaced` (the MX hosts
/// that the move retires) publishes TLSA records; nothing when none does.
/// A lookup that fails leaves the line undecided (an error of the check).
pub async fn provider_line(
    domain: &DomainName,
    replaced: &[String],
    provider: &str,
    cx: &CheckCx,
    report: &mut CheckReport,
) {
    let mut hosts = Vec::new();
    let mut evidence = Vec::new();
    for host in replaced.iter().take(MAX_HOSTS) {
        let owner = match DomainName::parse_relaxed(host).and_then(|h| h.prepend("_25._tcp")) {
            Ok(owner) => owner,
            Err(e) => {
                report.error(format!("_25._tcp.{host}: {e}"));
                continue;
            }
        };
        match cx.dns.query(&owner, RType::Tlsa).await.as_ref() {
            Answer::Records(set) => {
                let records: Vec<String> = set
                    .iter()
                    .filter(|r| matches!(r.data, Rdata::Tlsa { .. }))
                    .map(ToString::to_string)
                    .collect();
                if !records.is_empty() {
                    hosts.push(host.clone());
                    evidence.extend(records);
                }
            }
            Answer::NoData { .. } | Answer::NxDomain { .. } => {}
            Answer::Failed(why) => report.error(format!("{owner} TLSA: {why}")),
        }
    }
    if hosts.is_empty() {
        return;
    }
    report.push(
        Observation::new("preflight.dane_tlsa_present", domain.to_string())
            .evidence_lines(evidence)
            .var("hosts", hosts.join(", "))
            .var("provider", provider.to_owned()),
    );
}
