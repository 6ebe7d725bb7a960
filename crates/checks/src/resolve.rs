//! Resolution shared by engines: a host's addresses, and a domain's MX hosts with
//! their addresses. Every question goes through the run's DNS cache, so engines
//! that need the same MX addresses (mx, ptr, dnsbl, smtp) ask DNS once.

use std::net::IpAddr;

use mxaudit_core::CheckCx;
use mxaudit_dns::{Answer, DomainName, RType};

/// The addresses of one host, and how the lookups went.
#[derive(Debug, Clone, Default)]
pub struct HostAddresses {
    /// A and AAAA addresses.
    pub addresses: Vec<IpAddr>,
    /// CNAME records met: (owner, target).
    pub cnames: Vec<(String, String)>,
    /// Lookups that could not be decided (`A: SERVFAIL`).
    pub failures: Vec<String>,
    /// True when the name does not exist.
    pub nxdomain: bool,
    /// The negative answers, for evidence.
    pub evidence: Vec<String>,
}

/// Looks up A and AAAA of `name`.
pub async fn resolve_host(name: &DomainName, cx: &CheckCx) -> HostAddresses {
    let (a, aaaa) = tokio::join!(
        cx.dns.query(name, RType::A),
        cx.dns.query(name, RType::Aaaa)
    );
    let mut out = HostAddresses::default();
    for (rtype, answer) in [(RType::A, a), (RType::Aaaa, aaaa)] {
        match answer.as_ref() {
            Answer::Records(set) => {
                for ip in set.addresses() {
                    if !out.addresses.contains(&ip) {
                        out.addresses.push(ip);
                    }
                }
                for (owner, target) in set.cnames() {
                    let pair = (owner.to_owned(), target.to_owned());
                    if !out.cnames.contains(&pair) {
                        out.cnames.push(pair);
                    }
                }
            }
            Answer::NxDomain { .. } => {
                out.nxdomain = true;
                out.evidence
                    .push(format!("{} {rtype}: NXDOMAIN", name.as_str()));
            }
            Answer::NoData { .. } => out
                .evidence
                .push(format!("{} {rtype}: NODATA", name.as_str())),
            Answer::Failed(why) => out
                .failures
                .push(format!("{} {rtype}: {why}", name.as_str())),
        }
    }
    out
}

/// One MX host of a domain with its addresses.
#[derive(Debug, Clone)]
pub struct MxHost {
    /// Preference.
    pub preference: u16,
    /// Host name without the trailing dot.
    pub host: String,
    /// Its addresses.
    pub addresses: HostAddresses,
}

/// The MX hosts of a domain and their addresses, most preferred first; at most
/// `max_hosts`. `Err` carries the reason when the MX set could not be learned
/// (NXDOMAIN, failure); a domain with no MX or a null MX gives an empty list.
pub async fn mx_hosts(
    domain: &DomainName,
    cx: &CheckCx,
    max_hosts: usize,
) -> Result<Vec<MxHost>, String> {
    // Once per run and domain: the mx, ptr and each blocklist plugin ask it.
    let key = format!("{max_hosts} {}", domain.as_str());
    let hosts = cx
        .dns
        .derived(&key, || mx_hosts_of(domain, cx, max_hosts))
        .await;
    (*hosts).clone()
}

async fn mx_hosts_of(
    domain: &DomainName,
    cx: &CheckCx,
    max_hosts: usize,
) -> Result<Vec<MxHost>, String> {
    let answer = cx.dns.query(domain, RType::Mx).await;
    let mut mx: Vec<(u16, String)> = match answer.as_ref() {
        Answer::Records(set) => set
            .mx()
            .into_iter()
            .map(|(p, h, _)| (p, h.to_owned()))
            .collect(),
        Answer::NxDomain { .. } => return Err(format!("{domain} MX: NXDOMAIN")),
        Answer::NoData { .. } => Vec::new(),
        Answer::Failed(why) => return Err(format!("{domain} MX: {why}")),
    };
    mx.retain(|(_, h)| h != ".");
    mx.sort();
    mx.truncate(max_hosts);
    let hosts = futures::future::join_all(mx.into_iter().map(|(preference, host)| async move {
        let bare = host.trim_end_matches('.').to_owned();
        let addresses = match DomainName::parse_relaxed(&host) {
            Ok(name) if bare.parse::<IpAddr>().is_err() => resolve_host(&name, cx).await,
            _ => HostAddresses::default(),
        };
        MxHost {
            preference,
            host: bare,
            addresses,
        }
    }))
    .await;
    Ok(hosts)
}
