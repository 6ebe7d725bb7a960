//! `run` and the daemon: the pipeline with history. The configured domains
//! are audited once, compared with the previous complete run in the history
//! (new / ongoing / resolved), each sink's batch is spooled (write-ahead), the
//! run is recorded, then each sink gets its batch through the shared delivery
//! loop (retries, spool, dead letters).

use std::path::Path;

use mxaudit_core::config::Config;
use mxaudit_core::history::{RunHistory, RunMeta};
use mxaudit_core::runner;
use mxaudit_core::sink::{Batch, Change, Sink, SinkFilter, TrendPoint};
use mxaudit_core::{Severity, config::SinkSection};
use mxaudit_sinks::{DeliveryReport, RetryPolicy, Spool};
use mxaudit_store::Store;

use crate::audit::now;
use crate::error::{AgentError, Result};
use crate::plan::{Plan, Selection, base_dir};
use crate::targets::TargetSource;

/// The sinks of a configuration, built once (no I/O), with the shared spool.
pub struct Delivery {
    sinks: Vec<(SinkSection, std::sync::Arc<dyn Sink>)>,
    spool: Spool,
    policy: RetryPolicy,
}

impl Delivery {
    /// Builds every `[sinks.<id>]` of the configuration (secrets from env/files).
    pub fn from_config(config: &Config, config_path: Option<&Path>) -> Result<Delivery> {
        let base = base_dir(config_path);
        let built = mxaudit_sinks::build_sinks(config, &base)?;
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

/// Opens the history store the configuration names: a SQLite file (relative
/// to the configuration) or the database URL in the variable `[store] url_env`.
pub async fn open_store(config: &Config, config_path: Option<&Path>) -> Result<Store> {
    let url = match &config.store.url_env {
        Some(var) => std::env::var(var).map_err(|_| {
            AgentError::Usage(format!(
                "store.url_env: environment variable `{var}` is not set"
            ))
        })?,
        None => {
            let path =
                base_dir(config_path).join(config.store.path.as_deref().unwrap_or("mxaudit.db"));
            Store::sqlite_url(&path)
        }
    };
    Store::open(&url).await.map_err(AgentError::failed)
}

/// A new run id: sortable by time, unique across agents.
pub fn run_id(now: chrono::DateTime<chrono::Utc>) -> String {
    // The nanoseconds and the process id keep two agents apart.
    format!(
        "{}-{:08x}{:05x}",
        now.format("%Y%m%dT%H%M%SZ"),
        now.timestamp_subsec_nanos(),
        std::process::id() & 0xfffff
    )
}

/// What starts a run, and where its results go.
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    /// The run id ([`run_id`]).
    pub id: String,
    /// Which configured domains.
    pub selection: Selection,
    /// The schedule, for the daemon.
    pub schedule: Option<String>,
    /// Sink ids (empty: every sink).
    pub sinks: Vec<String>,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// Every event of the run (unfiltered), its checks and trend.
    pub batch: Batch,
    /// DNS questions sent.
    pub dns_queries: u64,
    /// One report per sink.
    pub deliveries: Vec<DeliveryReport>,
}

impl RunOutcome {
    /// True when a sink lost or dead-lettered a batch.
    pub fn delivery_failed(&self) -> bool {
        self.deliveries
            .iter()
            .any(|d| d.dead_lettered > 0 || d.lost > 0)
    }

    /// 3 when a delivery failed for good (style rule 10), 1 when a current
    /// finding is at or above `fail_on`, else 0.
    pub fn exit_code(&self, fail_on: Severity) -> u8 {
        if self.delivery_failed() {
            3
        } else {
            u8::from(self.batch.worst().is_some_and(|w| w >= fail_on))
        }
    }
}

/// Runs once: audit, compare with history, spool, record, deliver.
pub async fn run_once(
    plan: &Plan,
    history: &dyn RunHistory,
    delivery: &Delivery,
    req: RunRequest,
) -> Result<RunOutcome> {
    let targets = TargetSource::for_run(plan, &req.selection)?.read_all()?;
    if targets.is_empty() {
        return Err(AgentError::usage("no domain selected"));
    }
    let dns = plan.dns_client()?;
    plan.warn_public_resolver(&dns);
    let domains: Vec<String> = targets.iter().map(|t| t.domain.to_string()).collect();
    let meta = RunMeta {
        id: req.id,
        started_at: now(),
        schedule: req.schedule,
        domains: domains.clone(),
    };
    tracing::info!(run = %meta.id, domains = domains.len(), "Run started.");
    history.begin_run(&meta).await.map_err(AgentError::failed)?;
    let out = runner::run(
        &plan.plugins,
        &targets,
        &dns,
        plan.addresses.clone(),
        &plan.options,
    )
    .await;
    Plan::warn_dnssec_unavailable(&dns);
    let events = history
        .diff(&domains, &out.findings, &out.checks)
        .await
        .map_err(AgentError::failed)?;
    let finished = now();
    // The trend of earlier runs, then this one (not recorded yet: see below).
    let keep = plan.config.store.trend_runs.unwrap_or(10).max(1);
    let mut trend = history
        .trend(&domains, keep - 1)
        .await
        .map_err(AgentError::failed)?;
    let mut counts = [0u64; 5];
    for e in events.iter().filter(|e| e.change != Some(Change::Resolved)) {
        if let Some(i) = Severity::ALL.iter().position(|s| *s == e.finding.severity) {
            counts[i] += 1;
        }
    }
    trend.push(TrendPoint {
        run_id: meta.id.clone(),
        started_at: meta.started_at.clone(),
        counts,
    });
    let whole = Batch {
        history: true,
        key: meta.id.clone(),
        run_id: meta.id.clone(),
        schedule: meta.schedule.clone(),
        started_at: meta.started_at.clone(),
        finished_at: finished.clone(),
        domains,
        events,
        checks: out.checks,
        trend,
    };
    let mut batches = Vec::new();
    for (section, sink) in &delivery.sinks {
        if !req.sinks.is_empty() && !req.sinks.contains(&section.id) {
            continue;
        }
        let filter = SinkFilter {
            min_severity: section.min_severity,
            only: section.only,
        };
        let batch = Batch {
            key: format!("{}/{}", meta.id, section.id),
            events: filter.apply(&whole.events),
            ..whole.clone()
        };
        // Write-ahead: the batch is on disk before the run is recorded, so a
        // process killed from here on loses nothing: the next run delivers it
        // first. (Killed before the run is recorded, the next run computes the
        // same changes again: at least once, never lost.)
        if let Err(e) = delivery
            .spool
            .push(&section.id, &batch, "awaiting delivery")
        {
            tracing::error!(sink = %section.id, error = %e, "Cannot spool the batch ahead of delivery.");
        }
        batches.push((sink.clone(), batch));
    }
    history
        .finish_run(&meta.id, &finished, &whole.events, &whole.checks, true)
        .await
        .map_err(AgentError::failed)?;
    // Sinks one after another: a sink never has two deliveries at once (the
    // spool's order depends on it).
    let mut deliveries = Vec::new();
    for (sink, batch) in &batches {
        let report =
            mxaudit_sinks::deliver(sink.as_ref(), batch, &delivery.spool, &delivery.policy).await;
        if !report.is_clean() {
            tracing::warn!(
                sink = %report.sink,
                delivered = report.delivered,
                spooled = report.spooled,
                pending = report.pending,
                dead_lettered = report.dead_lettered,
                lost = report.lost,
                "Sink delivery incomplete."
            );
        }
        deliveries.push(report);
    }
    let dns_queries = dns.stats().queries;
    tracing::info!(run = %meta.id, events = whole.events.len(), dns_queries, "Run finished.");
    Ok(RunOutcome {
        batch: whole,
        dns_queries,
        deliveries,
    })
}
