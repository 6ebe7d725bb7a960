//! `mxaudit run`: audit the configured domains once, compare with the previous
//! run in the store (new / ongoing / resolved), record the run, and hand each
//! sink the changes it asked for. The daemon runs the same code on schedules.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use serde::Serialize;

use mxaudit_core::config::Config;
use mxaudit_core::config::SinkSection;
use mxaudit_core::model::{CheckStatus, Severity};
use mxaudit_core::runner::{self, RunOptions};
use mxaudit_core::sink::{Batch, Change, Event, Sink, SinkFilter, TrendPoint};
use mxaudit_core::text::escape_terminal;
use mxaudit_sinks::{DeliveryReport, RetryPolicy, Spool};
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

/// The sinks of a configuration, built once (no I/O), with the shared spool.
pub struct Delivery {
    sinks: Vec<(SinkSection, std::sync::Arc<dyn Sink>)>,
    spool: Spool,
    policy: RetryPolicy,
}

impl Delivery {
    /// Builds every `[sinks.<id>]` of the configuration (secrets from env/files).
    pub fn from_config(config: &Config, config_path: &Path) -> Result<Delivery, Failure> {
        let base = base_dir(config_path);
        let built = mxaudit_sinks::build_sinks(config, &base).map_err(usage)?;
        Ok(Delivery {
            sinks: config.sinks.iter().cloned().zip(built).collect(),
            spool: Spool::new(mxaudit_sinks::spool_dir(config, &base)),
            policy: RetryPolicy::from_section(&config.delivery),
        })
    }

    /// The sink ids.
    pub fn ids(&self) -> Vec<String> {
        self.sinks.iter().map(|(s, _)| s.id.clone()).collect()
    }
}

/// What started a run, and where its results go.
#[derive(Debug, Clone, Copy, Default)]
pub struct Trigger<'a> {
    /// The schedule, for the daemon.
    pub schedule: Option<&'a str>,
    /// Sink ids (empty: every sink).
    pub sinks: &'a [String],
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
    /// One report per sink.
    pub deliveries: Vec<DeliveryReport>,
}

impl RunSummary {
    /// True when a sink lost or dead-lettered a batch.
    pub fn delivery_failed(&self) -> bool {
        self.deliveries
            .iter()
            .any(|d| d.dead_lettered > 0 || d.lost > 0)
    }
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
    trigger: Trigger<'_>,
    store: &Store,
    id: String,
    delivery: &Delivery,
) -> Result<RunSummary, Failure> {
    let (schedule, sink_ids) = (trigger.schedule, trigger.sinks);
    // A configuration may list its domains only in `domains_file`.
    let mut targets = if config.domains.is_empty() {
        Vec::new()
    } else {
        setup::targets(&AuditArgs::default(), config)?
    };
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
    // The domains file joins an unfiltered run (names and tags select
    // [[domains]] only). Read whole: a run compares every domain with its
    // history before it records anything (`mxaudit audit --domains-file`
    // streams instead).
    if let Some(file) = &config.domains_file
        && selection.domains.is_empty()
        && selection.tags.is_empty()
    {
        let path = base_dir(config_path).join(file);
        let args = AuditArgs {
            domains_file: Some(path),
            ..AuditArgs::default()
        };
        let mut source = crate::commands::audit::TargetSource::new(&args, config, None)?;
        while let Some(chunk) = source.next_chunk(10_000)? {
            for t in chunk {
                if !targets.iter().any(|k| k.domain == t.domain) {
                    targets.push(t);
                }
            }
        }
        for warning in &source.warnings {
            eprintln!("mxaudit: {warning}");
        }
    }
    if targets.is_empty() {
        return Err(usage(anyhow!("no domain selected")));
    }
    let set = setup::plugin_set(config, Some(config_path), &[])?;
    let plugins = setup::select_plugins(&set, &AuditArgs::default(), config)?;
    let dns = setup::dns(&Default::default(), config)?;
    setup::warn_public_resolver(&plugins, &dns);
    let policy = setup::address_policy(&AuditArgs::default(), config);
    let opts = RunOptions {
        concurrency: config
            .checks
            .concurrency
            .unwrap_or(mxaudit_core::runner::DEFAULT_CONCURRENCY),
        task_timeout: config
            .checks
            .timeout
            .unwrap_or_else(|| setup::default_task_timeout(&plugins)),
        lang: config.language.unwrap_or_default(),
        severity: config.plugins.severity.clone(),
        rate_limits: config.checks.rate_limits.unwrap_or(true),
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
    setup::warn_dnssec_unavailable(&dns);
    let dns_queries = dns.stats().queries;
    let events = store
        .diff(&domains, &out.findings, &out.checks)
        .await
        .map_err(failed)?;
    let finished = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    // The trend of earlier runs, then this one (not recorded yet: see below).
    let keep = config.store.trend_runs.unwrap_or(10).max(1);
    let mut trend = store.trend(&domains, keep - 1).await.map_err(failed)?;
    let mut counts = [0u64; 5];
    for e in events.iter().filter(|e| e.change != Change::Resolved) {
        if let Some(i) = Severity::ALL.iter().position(|s| *s == e.finding.severity) {
            counts[i] += 1;
        }
    }
    trend.push(TrendPoint {
        run_id: meta.id.clone(),
        started_at: meta.started_at.clone(),
        counts,
    });
    let mut batches = Vec::new();
    for (section, sink) in &delivery.sinks {
        if !sink_ids.is_empty() && !sink_ids.contains(&section.id) {
            continue;
        }
        let filter = SinkFilter {
            min_severity: section.min_severity,
            only: section.only,
        };
        let batch = Batch {
            key: format!("{}/{}", meta.id, section.id),
            run_id: meta.id.clone(),
            schedule: meta.schedule.clone(),
            started_at: meta.started_at.clone(),
            finished_at: finished.clone(),
            domains: domains.clone(),
            events: filter.apply(&events),
            checks: out.checks.clone(),
            trend: trend.clone(),
        };
        // Write-ahead: the batch is on disk before the run is recorded, so a
        // process killed from here on loses nothing: the next run delivers it
        // first. (Killed before the run is recorded, the next run computes the
        // same changes again: at least once, never lost.)
        if let Err(e) = delivery
            .spool
            .push(&section.id, &batch, "awaiting delivery")
        {
            eprintln!(
                "mxaudit: sink {}: cannot spool the batch ahead of delivery: {e}",
                section.id
            );
        }
        batches.push((sink.clone(), batch));
    }
    store
        .finish_run(&meta.id, &finished, &events, &out.checks, true)
        .await
        .map_err(failed)?;
    // Sinks one after another in a run's task: a sink never has two deliveries
    // at once (the spool's order depends on it).
    let mut deliveries = Vec::new();
    for (sink, batch) in &batches {
        deliveries.push(
            mxaudit_sinks::deliver(sink.as_ref(), batch, &delivery.spool, &delivery.policy).await,
        );
    }
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
        deliveries,
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
    let mut config = setup::load_config(&args.config)?;
    if let Some(file) = &args.domains_file {
        // Given on the command line: relative to the working directory.
        let absolute = std::env::current_dir()
            .map(|d| d.join(file))
            .unwrap_or_else(|_| file.clone());
        config.domains_file = Some(absolute.display().to_string());
    }
    let fail_on: Severity = match &args.fail_on {
        Some(s) => s
            .parse()
            .map_err(|e: String| usage(anyhow!("--fail-on: {e}")))?,
        None => config.fail_on.unwrap_or(Severity::High),
    };
    let delivery = Delivery::from_config(&config, &args.config)?;
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
    let summary = execute(
        &config,
        &args.config,
        &selection,
        Trigger::default(),
        &store,
        id,
        &delivery,
    )
    .await?;
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
    for d in &summary.deliveries {
        if !d.is_clean() {
            eprintln!(
                "mxaudit: sink {}: {} delivered, {} spooled (pending {}), {} dead-lettered, {} lost.",
                d.sink, d.delivered, d.spooled, d.pending, d.dead_lettered, d.lost
            );
        }
    }
    if summary.delivery_failed() {
        // Permanent delivery failures raise the exit status (style rule 10).
        return Ok(3);
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
