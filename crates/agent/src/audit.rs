//! `audit`: the pipeline without history. Targets are read in chunks (a long
//! domains file streams), run through the runner, and gathered into one batch
//! rendered to standard output or a file; JSON Lines is written chunk by chunk.

use std::path::PathBuf;

use futures::StreamExt;

use mxaudit_core::render::{self, Format};
use mxaudit_core::runner::{self, ProgressHook};
use mxaudit_core::sink::Batch;
use mxaudit_core::{Severity, Target};

use crate::error::{AgentError, Result};
use crate::output::Output;
use crate::plan::Plan;
use crate::targets::{Shard, TargetSource};

/// Domains per chunk of a streamed list: the run's DNS cache is shared across
/// chunks, so shared questions are still asked once.
const CHUNK: usize = 1000;

/// What `audit` writes, and where.
#[derive(Clone, Default)]
pub struct AuditRequest {
    /// The output format (default text).
    pub format: Option<Format>,
    /// A file instead of standard output.
    pub output: Option<PathBuf>,
    /// Only this shard of the domains.
    pub shard: Option<Shard>,
    /// Progress (a progress bar on terminals).
    pub progress: Option<ProgressHook>,
}

/// What an audit found, for the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditOutcome {
    /// Domains audited.
    pub domains: usize,
    /// The most severe finding.
    pub worst: Option<Severity>,
    /// Checks that could not decide.
    pub undecided: usize,
}

impl AuditOutcome {
    /// 1 when a finding is at or above `fail_on`, else 0.
    pub fn exit_code(&self, fail_on: Severity) -> u8 {
        u8::from(self.worst.is_some_and(|w| w >= fail_on))
    }
}

/// Runs the plan's plugins on its targets and writes the report.
pub async fn audit(plan: &Plan, req: AuditRequest) -> Result<AuditOutcome> {
    let format = req.format.unwrap_or(Format::Text);
    let dns = plan.dns_client()?;
    plan.warn_public_resolver(&dns);
    let mut opts = plan.options.clone();
    opts.progress = req.progress.clone();
    let mut source = TargetSource::for_audit(plan, req.shard)?;
    // JSON Lines streams: each chunk's findings are written as soon as they
    // are known, so memory stays flat and an interrupted audit keeps them.
    let streaming = format == Format::Jsonl;
    let mut out = Output::open(req.output.as_deref(), streaming)?;
    let started = now();
    let mut report =
        Batch::without_history(started, String::new(), Vec::new(), Vec::new(), Vec::new());
    let mut outcome = AuditOutcome {
        domains: 0,
        worst: None,
        undecided: 0,
    };
    let mut failure = None;
    {
        let chunks = futures::stream::iter(std::iter::from_fn(|| match source.next_chunk(CHUNK) {
            Ok(next) => next,
            Err(e) => {
                failure = Some(e);
                None
            }
        }));
        // Two chunks in flight: the next one starts while the tail of the
        // current one (its slowest domains) finishes, so the name server never
        // idles between chunks. Results still come in list order.
        let mut results = std::pin::pin!(
            chunks
                .map(|targets: Vec<Target>| {
                    let (plugins, dns, opts) = (&plan.plugins, &dns, &opts);
                    let addresses = plan.addresses.clone();
                    async move {
                        let out = runner::run(plugins, &targets, dns, addresses, opts).await;
                        (targets, out)
                    }
                })
                .buffered(2)
        );
        while let Some((targets, run)) = results.next().await {
            outcome.domains += targets.len();
            let domains: Vec<String> = targets.iter().map(|t| t.domain.to_string()).collect();
            let part = Batch::without_history(
                String::new(),
                String::new(),
                domains,
                run.findings,
                run.checks,
            );
            outcome.worst = outcome.worst.max(part.worst());
            outcome.undecided += part.undecided();
            if streaming {
                out.write(render::render(&part, Format::Jsonl).as_bytes())?;
            } else {
                report.domains.extend(part.domains);
                report.events.extend(part.events);
                report.checks.extend(part.checks);
            }
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    Plan::warn_dnssec_unavailable(&dns);
    if outcome.domains == 0 {
        return Err(AgentError::Usage(format!(
            "no domain to audit{}",
            if req.shard.is_some() {
                " in this shard"
            } else {
                ""
            }
        )));
    }
    report.finished_at = now();
    if !streaming {
        out.write(render::render(&report, format).as_bytes())?;
    }
    out.finish()?;
    Ok(outcome)
}

/// The time now, RFC 3339 with milliseconds.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
