//! The single-purpose commands built on one engine: `spf` (check_host() with
//! the record tree), `smtp` (the relay-policy probe of one server) and `dnsbl`
//! (addresses and names against every blocklist).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use mxaudit_checks::relay_config;
use mxaudit_checks::smtp::{ProbeTranscript, SmtpOptions, probe_host};
use mxaudit_checks::spf::{SpfEvaluation, SpfRequest, evaluate};
use mxaudit_core::CheckCx;
use mxaudit_core::manifest::Plugin;
use mxaudit_core::peer::{BlocklistInput, BlocklistLine};
use mxaudit_dns::DomainName;

use crate::error::{AgentError, Result};
use crate::plan::Plan;

/// A check context outside a run's task: the plan's policy and scope, and a
/// long deadline (the command waits for pacing and tarpits).
fn context(plan: &Plan, dns: mxaudit_dns::Dns, budget: Duration) -> CheckCx {
    CheckCx {
        dns,
        addresses: plan.addresses.clone(),
        deadline: Instant::now() + budget,
        run: plan.options.scope.clone(),
    }
}

/// `mxaudit spf`: one check_host() evaluation with its trace and record tree.
pub async fn spf(plan: &Plan, request: &SpfRequest) -> Result<SpfEvaluation> {
    let dns = plan.dns_client()?;
    Ok(evaluate(&dns, request).await)
}

/// `host`, `host:port`, `[v6]:port` or a bare IPv6 address → (host, port).
pub fn split_host(s: &str) -> Result<(String, u16), String> {
    if let Some(rest) = s.strip_prefix('[') {
        let (addr, tail) = rest
            .split_once(']')
            .ok_or_else(|| format!("`{s}`: missing `]`"))?;
        let port = match tail.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| format!("`{s}`: bad port"))?,
            None if tail.is_empty() => 25,
            None => return Err(format!("`{s}`: unexpected `{tail}`")),
        };
        return Ok((addr.to_owned(), port));
    }
    if s.parse::<std::net::Ipv6Addr>().is_ok() {
        return Ok((s.to_owned(), 25));
    }
    match s.rsplit_once(':') {
        Some((h, p)) => Ok((
            h.to_owned(),
            p.parse().map_err(|_| format!("`{s}`: bad port"))?,
        )),
        None => Ok((s.to_owned(), 25)),
    }
}

/// `mxaudit smtp HOST[:PORT] [--domain D]`: every session's transcript and
/// what was found, with the production timeouts.
pub async fn smtp(plan: &Plan, host: &str, domain: Option<&str>) -> Result<ProbeTranscript> {
    let (host, port) = split_host(host).map_err(AgentError::Usage)?;
    let options = SmtpOptions::default();
    options.validate().map_err(AgentError::Usage)?;
    if let Some(d) = domain {
        DomainName::parse(d).map_err(|e| AgentError::Usage(format!("--domain: {e}")))?;
    }
    let cx = context(plan, plan.dns_client()?, Duration::from_secs(3600));
    Ok(probe_host(&host, port, domain, &options, &cx).await)
}

/// `mxaudit dnsbl IP|HOST…`: one line per (address or name, list), in input
/// then list order, for every list of the plan's plugin set — enabled or not,
/// since naming the command is an explicit request to ask them — or those of
/// `ids`. Host names are resolved (A and AAAA); domain lists are asked about
/// the name itself. Each list's RFC 5782 §5 self-test is asked once.
pub async fn dnsbl(
    plan: &Plan,
    inputs: &[String],
    ids: Option<&[String]>,
) -> Result<Vec<BlocklistLine>> {
    let chosen = match ids {
        Some(ids) => plan.set.select(Some(ids), &[]).map_err(AgentError::Usage)?,
        None => plan.set.plugins.clone(),
    };
    let lists: Vec<_> = chosen
        .iter()
        .filter(|p| p.check.blocklist().is_some())
        .collect();
    if lists.is_empty() {
        return Err(AgentError::usage("no blocklist selected"));
    }
    let parsed = blocklist_inputs(inputs)?;
    let dns = plan.dns_client()?;
    let lists: Vec<Plugin> = lists.into_iter().cloned().collect();
    crate::plan::warn_public_resolver(&lists, &dns);
    let cx = context(plan, dns, Duration::from_secs(3600));
    Ok(blocklist_lines(&lists, &parsed, &cx).await)
}

/// The inputs of `mxaudit dnsbl`: addresses or host names; anything else is
/// refused before any query.
pub fn blocklist_inputs(inputs: &[String]) -> Result<Vec<BlocklistInput>> {
    inputs
        .iter()
        .map(|input| {
            let trimmed = input.trim();
            Ok(match trimmed.parse::<IpAddr>() {
                Ok(ip) => BlocklistInput::Address(ip),
                Err(_) => BlocklistInput::Host(DomainName::parse(trimmed).map_err(|e| {
                    AgentError::Usage(format!(
                        "`{}` is neither an IP address nor a host name: {e}",
                        trimmed.escape_debug()
                    ))
                })?),
            })
        })
        .collect()
}

/// Asks each blocklist among `plugins` about each input: one line per
/// (address or name, list), in input then list order.
pub async fn blocklist_lines(
    plugins: &[Plugin],
    inputs: &[BlocklistInput],
    cx: &CheckCx,
) -> Vec<BlocklistLine> {
    let mut out = Vec::new();
    for input in inputs {
        let (addresses, host_failure) = match input {
            BlocklistInput::Address(ip) => (vec![*ip], None),
            BlocklistInput::Host(name) => {
                let h = mxaudit_checks::resolve::resolve_host(name, cx).await;
                let failure = h.addresses.is_empty().then(|| {
                    let mut why = h.failures.clone();
                    why.extend(h.evidence.iter().cloned());
                    if why.is_empty() {
                        "no A/AAAA record".to_owned()
                    } else {
                        why.join(", ")
                    }
                });
                (h.addresses, failure)
            }
        };
        let per_list = futures::future::join_all(plugins.iter().filter_map(|p| {
            p.check
                .blocklist()
                .map(|list| list.lines_for(input, &addresses, host_failure.as_deref(), cx))
        }))
        .await;
        out.extend(per_list.into_iter().flatten());
    }
    out
}

/// What `mxaudit relay-config` reviews.
#[derive(Debug, Clone, Default)]
pub struct RelayConfigRequest {
    /// The exported files.
    pub files: Vec<std::path::PathBuf>,
    /// `postfix` or `exchange` (default: guessed from the files).
    pub kind: Option<String>,
    /// Postfix services to review (default: the public smtpd services).
    pub services: Vec<String>,
    /// Where the lookup tables the settings name are read from.
    pub tables: Option<std::path::PathBuf>,
}

/// `mxaudit relay-config FILE…`: the review of exported relay settings and
/// its findings (rendered in `lang` from the `relay-config` manifest).
pub fn relay_config(
    req: &RelayConfigRequest,
    lang: mxaudit_core::Lang,
) -> Result<(relay_config::Review, Vec<mxaudit_core::Finding>)> {
    let mut inputs = Vec::new();
    for path in &req.files {
        inputs.push(
            relay_config::read_input(path, &path.display().to_string())
                .map_err(AgentError::Usage)?,
        );
    }
    let kind = match &req.kind {
        Some(k) => k
            .parse::<relay_config::Kind>()
            .map_err(|e| AgentError::Usage(format!("--kind: {e}")))?,
        None => relay_config::Kind::guess_all(&inputs).map_err(AgentError::Usage)?,
    };
    let mut opts = relay_config::ReviewOptions {
        services: req.services.clone(),
        ..relay_config::ReviewOptions::default()
    };
    if let Some(root) = &req.tables {
        // Tables that are not there stay unread (relay_config.unparsed).
        for path in relay_config::table_files(&inputs) {
            let file = root.join(path.trim_start_matches('/'));
            if let Ok(t) = relay_config::read_input(&file, &path) {
                opts.tables.insert(path, t.text);
            }
        }
    }
    let review = relay_config::review(&inputs, kind, &opts);
    if review.services.is_empty() && review.observations.is_empty() {
        return Err(AgentError::Usage(format!(
            "no {} relay settings in {}",
            kind.as_str(),
            review.inputs.join(", ")
        )));
    }
    let plugin = relay_config::render::builtin_plugin().map_err(AgentError::Failed)?;
    let findings = relay_config::render::findings(&review, &plugin, lang, "");
    Ok((review, findings))
}

#[cfg(test)]
mod tests {
    use super::split_host;

    #[test]
    fn hosts_and_ports() {
        assert_eq!(
            split_host("mx.example.com"),
            Ok(("mx.example.com".into(), 25))
        );
        assert_eq!(
            split_host("mx.example.com:2525"),
            Ok(("mx.example.com".into(), 2525))
        );
        assert_eq!(split_host("[::1]:2525"), Ok(("::1".into(), 2525)));
        assert_eq!(split_host("::1"), Ok(("::1".into(), 25)));
        assert!(split_host("mx:port").is_err());
    }
}
