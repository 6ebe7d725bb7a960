//! `preflight DOMAIN --to PROFILE [--smart-host HOST[:PORT]]`: the go/no-go
//! checklist for moving MX, from the `preflight` engine (which asks the smtp
//! and blocklist plugins about the smart host through the check context).
//! Each line is OK, WARN or BLOCKER.

use serde::Serialize;

use mxaudit_core::{CheckResult, CheckStatus, Finding, Severity, SmartHost, Target};
use mxaudit_dns::DomainName;

use crate::error::{AgentError, Result};
use crate::plan::{Plan, find_profile};

/// OK, WARN or BLOCKER, from a finding's severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LineStatus {
    /// Fine.
    Ok,
    /// Needs attention; does not stop the move.
    Warn,
    /// Stops the move.
    Blocker,
}

impl LineStatus {
    /// The label shown.
    pub fn label(self) -> &'static str {
        match self {
            LineStatus::Ok => "OK",
            LineStatus::Warn => "WARN",
            LineStatus::Blocker => "BLOCKER",
        }
    }

    fn of(severity: Severity) -> LineStatus {
        match severity {
            Severity::Info => LineStatus::Ok,
            Severity::Low | Severity::Medium => LineStatus::Warn,
            Severity::High | Severity::Critical => LineStatus::Blocker,
        }
    }
}

/// One line of the checklist.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    /// OK, WARN or BLOCKER.
    pub status: LineStatus,
    /// The finding behind it.
    #[serde(flatten)]
    pub finding: Finding,
}

/// The checklist.
#[derive(Debug, Clone, Serialize)]
pub struct Checklist {
    /// The domain whose MX moves.
    pub domain: String,
    /// The provider it moves to.
    pub provider: String,
    /// The smart host, when given.
    pub smart_host: Option<String>,
    /// GO, NO-GO or UNDECIDED.
    pub verdict: &'static str,
    /// BLOCKER lines.
    pub blockers: usize,
    /// WARN lines.
    pub warnings: usize,
    /// The lines: today, the target, the path back.
    pub lines: Vec<Line>,
    /// The check statuses.
    pub checks: Vec<CheckResult>,
}

impl Checklist {
    /// 1 while a BLOCKER remains or a check could not decide, else 0.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.verdict != "GO")
    }
}

/// What to check.
#[derive(Debug, Clone)]
pub struct PreflightRequest {
    /// The domain.
    pub domain: String,
    /// The provider profile id.
    pub to: String,
    /// `host` or `host:port`.
    pub smart_host: Option<String>,
}

/// Runs the checklist. The plan should select the `preflight` plugin.
pub async fn preflight(plan: &Plan, req: &PreflightRequest) -> Result<Checklist> {
    let domain = DomainName::parse(&req.domain).map_err(AgentError::usage)?;
    let smart_host = req
        .smart_host
        .as_deref()
        .map(SmartHost::parse)
        .transpose()
        .map_err(|e| AgentError::Usage(format!("--smart-host: {e}")))?;
    let profile =
        find_profile(&plan.config, &req.to).map_err(|e| AgentError::Usage(format!("--to: {e}")))?;
    let target = Target {
        domain: domain.clone(),
        profile: Some(profile.clone()),
        outbound_ips: Vec::new(),
        smart_host: smart_host.clone(),
        relay_config: Vec::new(),
    };
    let dns = plan.dns_client()?;
    let out = mxaudit_core::runner::run(
        &plan.plugins,
        &[target],
        &dns,
        plan.addresses.clone(),
        &plan.options,
    )
    .await;
    // The checklist in the order of the engine's codes: today, the target,
    // the path back; the smart host's SMTP and blocklist lines come last.
    let order: Vec<&str> = plan
        .plugins
        .iter()
        .filter_map(|p| {
            mxaudit_checks::ENGINES
                .iter()
                .find(|e| e.name == p.meta.engine)
        })
        .flat_map(|e| e.codes.iter().map(|c| c.code))
        .collect();
    let mut lines: Vec<Line> = out
        .findings
        .into_iter()
        .map(|f| Line {
            status: LineStatus::of(f.severity),
            finding: f,
        })
        .collect();
    lines.sort_by_key(|l| {
        order
            .iter()
            .position(|c| *c == l.finding.code)
            .unwrap_or(usize::MAX)
    });
    let count = |s: LineStatus| lines.iter().filter(|l| l.status == s).count();
    let (blockers, warnings) = (count(LineStatus::Blocker), count(LineStatus::Warn));
    let undecided = out.checks.iter().any(|c| c.status == CheckStatus::Error);
    Ok(Checklist {
        domain: domain.to_string(),
        provider: profile.description.clone(),
        smart_host: smart_host.map(|h| h.host.to_string()),
        verdict: if blockers > 0 {
            "NO-GO"
        } else if undecided {
            "UNDECIDED"
        } else {
            "GO"
        },
        blockers,
        warnings,
        lines,
        checks: out.checks,
    })
}
