//! `mxaudit run`: audit the configured domains once, compare with the previous
//! run in the store (new / ongoing / resolved), record the run, and hand each
//! sink the changes it asked for. The daemon runs the same code on schedules.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow};
use serde::Serialize;

use mxaudit_core::config::Config;
use mxaudit_core::model::{CheckStatus, Severity};
use mxaudit_core::runner::{self, RunOptions};
use mxaudit_core::sink::{Change, Event};
use mxaudit_core::text::escape_terminal;
use mxaudit_store::{RunMeta, Store};

use crate::args::{AuditArgs, RunArgs};
use crate::{Failure, failed, setup, usage};

/// Which domains a run covers.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// By name (empty with empty tags: all).
    pub domains: Vec<String>,
    /// By tag.
    pub tags: Vec<String>,
}

/// What a run did.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// Run id.
    pub run_id: String,
    /// Schedule, if any.
    pub schedule: Option<String>,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub finished_at: String,
    /// The domains.
    pub domains: Vec<String>,
    /// Every event.
    pub events: Vec<Event>,
    /// Checks that could not decide.
    pub errors: usize,
    /// DNS questions sent.
    pub dns_queries: u64,
    /// Worst current severity.
    pub worst: Option<Severity>,
}

/// The directory relative paths of the configuration are taken from.
pub fn base_dir(config_path: &Path) -> PathBuf {
    config_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Opens the history store the configuration names.
pub async fn open_store(config: &Config, config_path: &Path) -> Result<Store, Failure> {
    let url = match &config.store.url_env {
        Some(var) => std::env::var(var).map_err(|_| {
            usage(anyhow!(
                "store.url_env: environment variable `{var}` is not set"
            ))
        })?,
        None => {
            let path =
                base_dir(config_path).join(config.store.path.as_deref().unwrap_or("mxaudit.db"));
            Store::sqlite_url(&path)
        }
    };
    Store::open(&url).await.map_err(failed)
}

/// A new run id: sortable by time, unique across agents.
pub fn run_id(now: chrono::DateTime<chrono::Utc>) -> String {
    // Sortable by time; the nanoseconds and the process id keep two agents apart.
    format!(
        "{}-{:08x}{:05x}",
        now.format("%Y%m%dT%H%M%SZ"),
        now.timestamp_subsec_nanos(),
        std::process::id() & 0xfffff
    )
}

/// Runs once. `config_path` anchors relative paths.
pub async fn execute(
    config: &Config,
    config_path: &Path,
    selection: &Selection,
    schedule: Option<&str>,
    store: &Store,
    id: String,
) -> Result<RunSummary, Failure> {
    let mut targets = setup::targets(&AuditArgs::default(), config)?;
    let selected: Vec<String> = config
        .domains
        .iter()
        .filter(|d| {
            let by_name = selection
                .domains
                .iter()
                .any(|n| n.eq_ignore_ascii_case(d.name.get_ref()));
            let by_tag = d.tags.iter().any(|t| selection.tags.contains(t));
            (selection.domains.is_empty() && selection.tags.is_empty()) || by_name || by_tag
        })
        .filter_map(|d| {
            mxaudit_dns::DomainName::parse(d.name.get_ref())
                .ok()
                .map(|n| n.to_string())
        })
        .collect();
    for name in &selection.domains {
        if !config
            .domains
            .iter()
            .any(|d| d.name.get_ref().eq_ignore_ascii_case(name))
        {
            return Err(usage(anyhow!(
                "--domain: `{}` is not in [[domains]] of the configuration",
                name.escape_debug()
            )));
        }
    }
    targets.retain(|t| selected.contains(&t.domain.to_string()));
    if targets.is_empty() {
        return Err(usage(anyhow!("no domain selected")));
    }
    let set = setup::plugin_set(config, Some(config_path), &[])?;
    let plugins = setup::select_plugins(&set, &AuditArgs::default(), config)?;
    let dns = setup::dns(&Default::default(), config)?;
    let policy = setup::address_policy(&AuditArgs::default(), config);
    let opts = RunOptions {
        concurrency: config.checks.concurrency.unwrap_or(32),
        task_timeout: config.checks.timeout.unwrap_or(Duration::from_secs(60)),
        lang: config.language.unwrap_or_default(),
        severity: config.plugins.severity.clone(),
        progress: progress_bar(),
    };
    let started = chrono::Utc::now();
    let domains: Vec<String> = targets.iter().map(|t| t.domain.to_string()).collect();
    let meta = RunMeta {
        id,
        started_at: started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        schedule: schedule.map(str::to_owned),
        domains: domains.clone(),
    };
    store.begin_run(&meta).await.map_err(failed)?;
    let out = runner::run(&plugins, &targets, &dns, policy, &opts).await;
    let dns_queries = dns.stats().queries;
    let events = store
        .diff(&domains, &out.findings, &out.checks)
        .await
        .map_err(failed)?;
    let finished = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    store
        .finish_run(&meta.id, &finished, &events, &out.checks, true)
        .await
        .map_err(failed)?;
    let worst = events
        .iter()
        .filter(|e| e.change != Change::Resolved)
        .map(|e| e.finding.severity)
        .max();
    Ok(RunSummary {
        run_id: meta.id,
        schedule: meta.schedule,
        started_at: meta.started_at,
        finished_at: finished,
        domains,
        errors: out
            .checks
            .iter()
            .filter(|c| c.status == CheckStatus::Error)
            .count(),
        dns_queries,
        events,
        worst,
    })
}

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
pub async fn run(args: RunArgs) -> Result<u8, Failure> {
    let config = setup::load_config(&args.config)?;
    let fail_on: Severity = match &args.fail_on {
        Some(s) => s
            .parse()
            .map_err(|e: String| usage(anyhow!("--fail-on: {e}")))?,
        None => config.fail_on.unwrap_or(Severity::High),
    };
    let store = open_store(&config, &args.config).await?;
    let abandoned = store.mark_abandoned_runs().await.map_err(failed)?;
    if abandoned > 0 {
        eprintln!("mxaudit: {abandoned} earlier run(s) had not finished; marked incomplete.");
    }
    let selection = Selection {
        domains: args.domains.clone(),
        tags: args.tags.clone(),
    };
    let id = run_id(chrono::Utc::now());
    let summary = execute(&config, &args.config, &selection, None, &store, id).await?;
    match args.format.as_str() {
        "json" => println!(
            "{}",
            serde_json::to_string_pretty(&summary)
                .context("cannot encode")
                .map_err(failed)?
        ),
        "text" => print!("{}", render(&summary)),
        other => {
            return Err(usage(anyhow!(
                "--format: unknown format `{other}` (text, json)"
            )));
        }
    }
    Ok(if summary.worst.is_some_and(|w| w >= fail_on) {
        1
    } else {
        0
    })
}

fn render(s: &RunSummary) -> String {
    let count = |c: Change| s.events.iter().filter(|e| e.change == c).count();
    let mut out = format!(
        "Run {}: {} domain(s), {} new, {} ongoing, {} resolved, {} check(s) undecided.\n",
        s.run_id,
        s.domains.len(),
        count(Change::New),
        count(Change::Ongoing),
        count(Change::Resolved),
        s.errors
    );
    for e in s.events.iter().filter(|e| e.change != Change::Ongoing) {
        let f = &e.finding;
        out.push_str(&format!(
            "  {:<8} [{}] {} {} {}\n",
            match e.change {
                Change::New => "NEW",
                Change::Resolved => "RESOLVED",
                Change::Ongoing => "ONGOING",
            },
            f.severity,
            escape_terminal(&f.domain),
            f.code,
            escape_terminal(&f.subject)
        ));
    }
    out
}
