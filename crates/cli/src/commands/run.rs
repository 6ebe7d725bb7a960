//! `mxaudit run`, `mxaudit history` and `mxaudit daemon`: the agent with
//! history and sinks.

use mxaudit_agent::plan::{Overrides, Plan, Selection};
use mxaudit_agent::run::{Delivery, RunRequest, open_store, run_id, run_once};
use mxaudit_agent::{AgentError, Result, view};
use mxaudit_core::history::RunHistory;

use crate::args::{DaemonArgs, HistoryArgs, RunArgs};

/// A progress bar on stderr when it is a terminal and not in CI; nothing otherwise.
pub fn progress_bar() -> Option<mxaudit_core::runner::ProgressHook> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() || std::env::var_os("CI").is_some() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} checks {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(std::sync::Arc::new(move |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        if done == total {
            bar.finish_and_clear();
        }
    }))
}

/// Runs `mxaudit run`.
pub async fn run(args: RunArgs) -> Result<u8> {
    let overrides = Overrides {
        domains_file: args
            .domains_file
            .as_deref()
            .map(mxaudit_agent::targets::from_command_line),
        fail_on: super::fail_on(args.fail_on.as_deref())?,
        ..Overrides::default()
    };
    let mut plan = Plan::load(Some(&args.config), overrides)?;
    plan.options.progress = progress_bar();
    let delivery = Delivery::from_config(&plan.config, Some(&args.config))?;
    let store = open_store(&plan.config, Some(&args.config)).await?;
    let abandoned = store
        .mark_abandoned_runs()
        .await
        .map_err(AgentError::failed)?;
    if abandoned > 0 {
        tracing::warn!("{abandoned} earlier run(s) had not finished; marked incomplete.");
    }
    let req = RunRequest {
        id: run_id(chrono::Utc::now()),
        selection: Selection {
            domains: args.domains.clone(),
            tags: args.tags.clone(),
        },
        ..RunRequest::default()
    };
    let outcome = run_once(&plan, &store as &dyn RunHistory, &delivery, req).await?;
    let text = match args.format.as_str() {
        "json" => super::json(&view::run::summary(&outcome))?,
        "text" => view::run::text(&outcome),
        other => return Err(super::unknown_format(other, "text, json")),
    };
    super::print(&text);
    Ok(outcome.exit_code(plan.fail_on))
}

/// Runs `mxaudit history`.
pub async fn history(args: HistoryArgs) -> Result<u8> {
    let config = mxaudit_agent::plan::load_config(&args.config)?;
    let domain = mxaudit_dns::DomainName::parse(&args.domain)
        .map_err(AgentError::usage)?
        .to_string();
    let store = open_store(&config, Some(&args.config)).await?;
    let h = store
        .history(&domain, args.limit)
        .await
        .map_err(AgentError::failed)?;
    let text = match args.format.as_str() {
        "json" => super::json(&h)?,
        "text" => view::history::text(&h),
        other => return Err(super::unknown_format(other, "text, json")),
    };
    super::print(&text);
    Ok(0)
}

/// Runs `mxaudit daemon`.
pub async fn daemon(args: DaemonArgs) -> Result<u8> {
    let path = mxaudit_agent::daemon::config_path(&args.config);
    mxaudit_agent::daemon::daemon(&path).await?;
    Ok(0)
}
