//! `mxaudit audit`: audit domains now and print or write the report.

use mxaudit_agent::audit::{AuditRequest, audit};
use mxaudit_agent::plan::Plan;
use mxaudit_agent::{AgentError, Result};

use crate::args::AuditArgs;

/// Runs `mxaudit audit`.
pub async fn run(args: AuditArgs) -> Result<u8> {
    let plan = Plan::load(args.config.as_deref(), super::audit_overrides(&args)?)?;
    execute(&plan, &args).await
}

/// Audits with a plan already made (also used by `demo`).
pub async fn execute(plan: &Plan, args: &AuditArgs) -> Result<u8> {
    let req = AuditRequest {
        format: Some(
            args.format
                .parse()
                .map_err(|e: String| AgentError::Usage(format!("--format: {e}")))?,
        ),
        output: args.output.clone(),
        shard: args
            .shard
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e: String| AgentError::Usage(format!("--shard: {e}")))?,
        // A streamed list has no known length: no bar.
        progress: if args.domains_file.is_some() {
            None
        } else {
            crate::commands::run::progress_bar()
        },
    };
    let outcome = audit(plan, req).await?;
    Ok(outcome.exit_code(plan.fail_on))
}
