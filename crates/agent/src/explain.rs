//! `explain --audit`: the checks that would confirm each cause of a bounce, run
//! on the domains involved (the sender's or the recipient's), as an audit.

use mxaudit_core::Target;
use mxaudit_core::runner;
use mxaudit_core::sink::Batch;
use mxaudit_dns::DomainName;

use crate::audit::now;
use crate::error::{AgentError, Result};
use crate::plan::Plan;

/// Runs, for each `(domain, plugin ids)`, those plugins of the plan's set on
/// that domain; a domain that is not a valid name is left out.
pub async fn audit_causes(plan: &Plan, wanted: &[(String, Vec<String>)]) -> Result<Batch> {
    let dns = plan.dns_client()?;
    let mut report =
        Batch::without_history(now(), String::new(), Vec::new(), Vec::new(), Vec::new());
    for (domain, ids) in wanted {
        let Ok(name) = DomainName::parse(domain) else {
            continue;
        };
        let plugins = plan.set.select(Some(ids), &[]).map_err(AgentError::Usage)?;
        let out = runner::run(
            &plugins,
            &[Target::new(name)],
            &dns,
            plan.addresses.clone(),
            &plan.options,
        )
        .await;
        let part = Batch::without_history(
            String::new(),
            String::new(),
            vec![domain.clone()],
            out.findings,
            out.checks,
        );
        report.domains.extend(part.domains);
        report.events.extend(part.events);
        report.checks.extend(part.checks);
    }
    report.finished_at = now();
    Ok(report)
}

/// The ids among `ids` that are loaded plugins.
pub fn known_plugins(plan: &Plan, ids: &[String]) -> Vec<String> {
    ids.iter()
        .filter(|id| plan.set.plugins.iter().any(|p| &p.meta.id == *id))
        .cloned()
        .collect()
}
