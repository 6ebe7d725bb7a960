//! `mxaudit preflight DOMAIN --to PROFILE [--smart-host HOST]`: the go/no-go
//! checklist before moving MX; exit status 1 while any BLOCKER remains or a
//! check could not decide.

use mxaudit_agent::Result;
use mxaudit_agent::plan::{Overrides, Plan};
use mxaudit_agent::preflight::{PreflightRequest, preflight};
use mxaudit_agent::view;

use crate::args::PreflightArgs;

/// Runs `mxaudit preflight`.
pub async fn run(args: PreflightArgs) -> Result<u8> {
    let overrides = Overrides {
        plugins: Some(vec!["preflight".to_owned()]),
        lang: super::lang(args.lang.as_deref())?,
        allow_targets: args.allow_targets.clone(),
        dns_only: args.dns_only,
        ..super::dns_overrides(&args.dns)
    };
    let plan = Plan::load(args.config.as_deref(), overrides)?;
    let req = PreflightRequest {
        domain: args.domain.clone(),
        to: args.to.clone(),
        smart_host: args.smart_host.clone(),
    };
    let checklist = preflight(&plan, &req).await?;
    let text = match args.format.as_str() {
        "json" => super::json(&checklist)?,
        "text" => view::preflight::text(&checklist),
        "markdown" | "md" => view::preflight::markdown(&checklist),
        other => return Err(super::unknown_format(other, "text, json, markdown")),
    };
    super::print(&text);
    Ok(checklist.exit_code())
}
