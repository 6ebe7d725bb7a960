//! The daemon: runs the configured schedules (cron, UTC), never two runs of
//! one schedule at once, survives a failing run, reloads the configuration on
//! SIGHUP (an invalid one is refused and the old one kept), stops cleanly on
//! SIGTERM/SIGINT (a run still going after the grace period is marked
//! incomplete), and serves `/healthz` and Prometheus `/metrics`.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use mxaudit_core::Severity;
use mxaudit_core::config::ScheduleSection;
use mxaudit_core::history::RunHistory;
use mxaudit_core::pacer::SessionPacer;
use mxaudit_core::sink::Change;
use mxaudit_store::Store;

use crate::error::{AgentError, Result};
use crate::plan::{Overrides, Plan, Selection};
use crate::run::{Delivery, RunOutcome, RunRequest, open_store, run_id, run_once};

/// How long a running run may take to finish after SIGTERM.
const GRACE: Duration = Duration::from_secs(20);

#[derive(Debug, Default)]
struct Health {
    last_run: Option<String>,
    last_error: Option<String>,
    runs: u64,
}

/// One generation of the configuration: the plan and the sinks built from it.
struct Generation {
    plan: Arc<Plan>,
    delivery: Arc<Delivery>,
}

fn load(path: &Path, pacer: &Arc<SessionPacer>) -> Result<Generation> {
    let mut plan = Plan::load(Some(path), Overrides::default())?;
    plan.share_pacer(pacer.clone());
    let delivery = Delivery::from_config(&plan.config, Some(path))?;
    Ok(Generation {
        plan: Arc::new(plan),
        delivery: Arc::new(delivery),
    })
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn daemon(config_path: &Path) -> Result<()> {
    // One pacer for the life of the process: runs of old and new
    // configurations never hold two sessions to one server at once.
    let pacer = Arc::new(SessionPacer::default());
    let mut current = load(config_path, &pacer)?;
    if current.plan.config.schedules.is_empty() {
        return Err(AgentError::Usage(format!(
            "{}: no [[schedules]] to run",
            config_path.display()
        )));
    }
    let store = open_store(&current.plan.config, Some(config_path)).await?;
    let abandoned = store
        .mark_abandoned_runs()
        .await
        .map_err(AgentError::failed)?;
    if abandoned > 0 {
        tracing::warn!("{abandoned} earlier run(s) had not finished; marked incomplete.");
    }
    let metrics = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| AgentError::Failed(format!("cannot set up metrics: {e}")))?;
    let health = Arc::new(Mutex::new(Health::default()));
    let stop = CancellationToken::new();
    let server = match &current.plan.config.daemon.listen {
        Some(addr) => Some(serve(addr, metrics.clone(), health.clone(), stop.clone()).await?),
        None => None,
    };
    let mut hup = signal(SignalKind::hangup()).map_err(AgentError::failed)?;
    let mut term = signal(SignalKind::terminate()).map_err(AgentError::failed)?;
    let mut int = signal(SignalKind::interrupt()).map_err(AgentError::failed)?;
    tracing::info!(
        "Started with {} schedule(s).",
        current.plan.config.schedules.len()
    );
    loop {
        let generation = CancellationToken::new();
        let mut tasks = JoinSet::new();
        for schedule in current.plan.config.schedules.clone() {
            tasks.spawn(schedule_loop(
                schedule,
                current.plan.clone(),
                current.delivery.clone(),
                store.clone(),
                health.clone(),
                generation.clone(),
            ));
        }
        let reload = loop {
            let hangup = tokio::select! {
                _ = hup.recv() => true,
                _ = term.recv() => false,
                _ = int.recv() => false,
            };
            if !hangup {
                tracing::info!("Stopping.");
                break false;
            }
            match load(config_path, &pacer) {
                Ok(next) if !next.plan.config.schedules.is_empty() => {
                    tracing::info!(
                        "SIGHUP: configuration reloaded ({} schedule(s)).",
                        next.plan.config.schedules.len()
                    );
                    current = next;
                    break true;
                }
                Ok(_) => tracing::warn!(
                    "SIGHUP: the new configuration has no schedule; keeping the old one."
                ),
                // The running schedules go on with the configuration they have.
                Err(e) => {
                    tracing::error!("SIGHUP: invalid configuration, keeping the old one: {e}")
                }
            }
        };
        // Let running runs finish (within the grace period), then end the loops.
        generation.cancel();
        let deadline = Instant::now() + GRACE;
        while !tasks.is_empty() {
            if tokio::time::timeout(
                deadline.saturating_duration_since(Instant::now()),
                tasks.join_next(),
            )
            .await
            .is_err()
            {
                tasks.abort_all();
                let n = store.mark_abandoned_runs().await.unwrap_or(0);
                tracing::warn!("{n} run(s) did not finish in time; marked incomplete.");
                break;
            }
        }
        if !reload {
            stop.cancel();
            if let Some(s) = server {
                let _ = s.await;
            }
            return Ok(());
        }
    }
}

async fn schedule_loop(
    schedule: ScheduleSection,
    plan: Arc<Plan>,
    delivery: Arc<Delivery>,
    store: Store,
    health: Arc<Mutex<Health>>,
    stop: CancellationToken,
) {
    let Ok(cron) = croner::Cron::from_str(schedule.cron.get_ref()) else {
        return; // validated when the configuration was loaded
    };
    let selection = Selection {
        domains: schedule.domains.clone(),
        tags: schedule.tags.clone(),
    };
    loop {
        let now = chrono::Utc::now();
        let Ok(next) = cron.find_next_occurrence(&now, false) else {
            tracing::warn!(
                schedule = %schedule.name,
                "No next occurrence; stopping the schedule."
            );
            return;
        };
        let wait = (next - now).to_std().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.cancelled() => return,
        }
        // The run is awaited here, so one schedule never overlaps itself; ticks
        // missed meanwhile are skipped (the next one is computed from now).
        let started = Instant::now();
        let req = RunRequest {
            id: run_id(chrono::Utc::now()),
            selection: selection.clone(),
            schedule: Some(schedule.name.clone()),
            sinks: schedule.sinks.clone(),
        };
        let result = run_once(&plan, &store as &dyn RunHistory, &delivery, req).await;
        let labels = [("schedule", schedule.name.clone())];
        metrics::histogram!("mxaudit_run_duration_seconds", &labels)
            .record(started.elapsed().as_secs_f64());
        match result {
            Ok(outcome) => {
                record_metrics(&schedule.name, &outcome);
                if let Ok(mut h) = health.lock() {
                    h.runs += 1;
                    h.last_run = Some(outcome.batch.finished_at.clone());
                    h.last_error = None;
                }
                tracing::info!(
                    schedule = %schedule.name,
                    "Run {} done: {} domain(s), {} event(s).",
                    outcome.batch.run_id,
                    outcome.batch.domains.len(),
                    outcome.batch.events.len()
                );
            }
            Err(e) => {
                metrics::counter!("mxaudit_runs_total", "schedule" => schedule.name.clone(), "status" => "failed").increment(1);
                if let Ok(mut h) = health.lock() {
                    h.last_error = Some(e.to_string());
                }
                // A failing run does not stop the daemon.
                tracing::error!(schedule = %schedule.name, "Run failed: {e}");
            }
        }
    }
}

fn record_metrics(schedule: &str, outcome: &RunOutcome) {
    let batch = &outcome.batch;
    let labels = [("schedule", schedule.to_owned())];
    metrics::counter!("mxaudit_runs_total", "schedule" => schedule.to_owned(), "status" => "complete").increment(1);
    metrics::counter!("mxaudit_dns_queries_total").increment(outcome.dns_queries);
    metrics::gauge!("mxaudit_checks_undecided", &labels).set(batch.undecided() as f64);
    for sev in Severity::ALL {
        let n = batch.current().filter(|f| f.severity == sev).count();
        metrics::gauge!("mxaudit_findings", "schedule" => schedule.to_owned(), "severity" => sev.as_str()).set(n as f64);
    }
    let mut by_code: std::collections::BTreeMap<&str, usize> = Default::default();
    for f in batch.current() {
        *by_code.entry(f.code.as_str()).or_default() += 1;
    }
    for (code, n) in by_code {
        metrics::gauge!("mxaudit_findings_by_code", "schedule" => schedule.to_owned(), "code" => code.to_owned()).set(n as f64);
    }
    for (c, change) in [(Change::New, "new"), (Change::Resolved, "resolved")] {
        let n = batch.events.iter().filter(|e| e.change == Some(c)).count();
        metrics::counter!("mxaudit_changes_total", "schedule" => schedule.to_owned(), "change" => change).increment(n as u64);
    }
    for d in &outcome.deliveries {
        for (state, n) in [
            ("delivered", d.delivered),
            ("spooled", d.spooled),
            ("dead_lettered", d.dead_lettered),
            ("lost", d.lost),
        ] {
            metrics::counter!("mxaudit_sink_batches_total", "sink" => d.sink.clone(), "outcome" => state).increment(n as u64);
        }
        metrics::gauge!("mxaudit_sink_pending", "sink" => d.sink.clone()).set(d.pending as f64);
    }
}

async fn serve(
    addr: &str,
    metrics: PrometheusHandle,
    health: Arc<Mutex<Health>>,
    stop: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| AgentError::Usage(format!("daemon.listen: cannot listen on {addr}: {e}")))?;
    tracing::info!(
        "Daemon serving /healthz and /metrics on {}.",
        listener.local_addr().map_err(AgentError::failed)?
    );
    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let m = metrics.clone();
                async move { m.render() }
            }),
        )
        .route(
            "/healthz",
            get(move || {
                let h = health.clone();
                async move {
                    let (runs, last_run, last_error) = match h.lock() {
                        Ok(h) => (h.runs, h.last_run.clone(), h.last_error.clone()),
                        Err(_) => (0, None, None),
                    };
                    let body = serde_json::json!({"status": "ok", "runs": runs, "last_run": last_run, "last_error": last_error});
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        body.to_string(),
                    )
                }
            }),
        );
    Ok(tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
    }))
}

/// The configuration path of the daemon, resolved against the working
/// directory so relative paths in it stay right after a reload.
pub fn config_path(path: &Path) -> PathBuf {
    crate::targets::from_command_line(path)
}
