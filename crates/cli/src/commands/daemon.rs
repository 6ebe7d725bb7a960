//! `mxaudit daemon`: runs the configured schedules (cron, UTC), never two runs
//! of one schedule at once, survives a failing run, reloads the configuration
//! on SIGHUP (an invalid one is refused and the old one kept), stops cleanly on
//! SIGTERM/SIGINT (a run still going after the grace period is marked
//! incomplete), and serves `/healthz` and Prometheus `/metrics`.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use axum::Router;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use mxaudit_core::Severity;
use mxaudit_core::config::{Config, ScheduleSection};
use mxaudit_core::sink::Change;
use mxaudit_store::Store;

use crate::args::DaemonArgs;
use crate::commands::run::{Delivery, Selection, Trigger, execute, open_store, run_id};
use crate::{Failure, failed, setup, usage};

/// How long a running run may take to finish after SIGTERM.
const GRACE: Duration = Duration::from_secs(20);

#[derive(Debug, Default)]
struct Health {
    last_run: Option<String>,
    last_error: Option<String>,
    runs: u64,
}

/// Runs `mxaudit daemon`.
pub async fn run(args: DaemonArgs) -> Result<u8, Failure> {
    let mut config = setup::load_config(&args.config)?;
    if config.schedules.is_empty() {
        return Err(usage(anyhow!(
            "{}: no [[schedules]] to run",
            args.config.display()
        )));
    }
    let mut delivery = Arc::new(Delivery::from_config(&config, &args.config)?);
    let store = open_store(&config, &args.config).await?;
    let abandoned = store.mark_abandoned_runs().await.map_err(failed)?;
    if abandoned > 0 {
        eprintln!(
            "mxaudit daemon: {abandoned} earlier run(s) had not finished; marked incomplete."
        );
    }
    let metrics = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| failed(anyhow!("cannot set up metrics: {e}")))?;
    let health = Arc::new(Mutex::new(Health::default()));
    let stop = CancellationToken::new();
    let server = match &config.daemon.listen {
        Some(addr) => Some(serve(addr, metrics.clone(), health.clone(), stop.clone()).await?),
        None => None,
    };
    let mut hup = signal(SignalKind::hangup()).map_err(failed)?;
    let mut term = signal(SignalKind::terminate()).map_err(failed)?;
    let mut int = signal(SignalKind::interrupt()).map_err(failed)?;
    eprintln!(
        "mxaudit daemon: started with {} schedule(s).",
        config.schedules.len()
    );
    loop {
        let generation = CancellationToken::new();
        let mut tasks = JoinSet::new();
        for schedule in config.schedules.clone() {
            tasks.spawn(schedule_loop(
                schedule,
                config.clone(),
                args.config.clone(),
                store.clone(),
                delivery.clone(),
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
                eprintln!("mxaudit daemon: stopping.");
                break false;
            }
            let reloaded = setup::load_config(&args.config)
                .and_then(|c| Delivery::from_config(&c, &args.config).map(|d| (c, d)));
            match reloaded {
                Ok((new, new_delivery)) if !new.schedules.is_empty() => {
                    eprintln!(
                        "mxaudit daemon: SIGHUP: configuration reloaded ({} schedule(s)).",
                        new.schedules.len()
                    );
                    config = new;
                    delivery = Arc::new(new_delivery);
                    break true;
                }
                Ok(_) => eprintln!(
                    "mxaudit daemon: SIGHUP: the new configuration has no schedule; keeping the old one."
                ),
                Err(e) => {
                    let (Failure::Usage(e) | Failure::Audit(e)) = e;
                    // The running schedules go on with the configuration they have.
                    eprintln!(
                        "mxaudit daemon: SIGHUP: invalid configuration, keeping the old one: {e:#}"
                    );
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
                eprintln!("mxaudit daemon: {n} run(s) did not finish in time; marked incomplete.");
                break;
            }
        }
        if !reload {
            stop.cancel();
            if let Some(s) = server {
                let _ = s.await;
            }
            return Ok(0);
        }
    }
}

async fn schedule_loop(
    schedule: ScheduleSection,
    config: Config,
    config_path: PathBuf,
    store: Store,
    delivery: Arc<Delivery>,
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
            eprintln!(
                "mxaudit daemon: schedule {}: no next occurrence; stopping it.",
                schedule.name
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
        let id = run_id(chrono::Utc::now());
        let result = execute(
            &config,
            &config_path,
            &selection,
            Trigger {
                schedule: Some(&schedule.name),
                sinks: &schedule.sinks,
            },
            &store,
            id,
            &delivery,
        )
        .await;
        let elapsed = started.elapsed().as_secs_f64();
        let labels = [("schedule", schedule.name.clone())];
        metrics::histogram!("mxaudit_run_duration_seconds", &labels).record(elapsed);
        match result {
            Ok(summary) => {
                metrics::counter!("mxaudit_runs_total", "schedule" => schedule.name.clone(), "status" => "complete").increment(1);
                metrics::counter!("mxaudit_dns_queries_total").increment(summary.dns_queries);
                metrics::gauge!("mxaudit_checks_undecided", &labels).set(summary.errors as f64);
                for sev in Severity::ALL {
                    let n = summary
                        .events
                        .iter()
                        .filter(|e| e.change != Change::Resolved && e.finding.severity == sev)
                        .count();
                    metrics::gauge!("mxaudit_findings", "schedule" => schedule.name.clone(), "severity" => sev.as_str()).set(n as f64);
                }
                let mut by_code: std::collections::BTreeMap<&str, usize> = Default::default();
                for e in summary
                    .events
                    .iter()
                    .filter(|e| e.change != Change::Resolved)
                {
                    *by_code.entry(e.finding.code.as_str()).or_default() += 1;
                }
                for (code, n) in by_code {
                    metrics::gauge!("mxaudit_findings_by_code", "schedule" => schedule.name.clone(), "code" => code.to_owned()).set(n as f64);
                }
                for c in [Change::New, Change::Resolved] {
                    let n = summary.events.iter().filter(|e| e.change == c).count();
                    let change = if c == Change::New { "new" } else { "resolved" };
                    metrics::counter!("mxaudit_changes_total", "schedule" => schedule.name.clone(), "change" => change).increment(n as u64);
                }
                for d in &summary.deliveries {
                    for (outcome, n) in [
                        ("delivered", d.delivered),
                        ("spooled", d.spooled),
                        ("dead_lettered", d.dead_lettered),
                        ("lost", d.lost),
                    ] {
                        metrics::counter!("mxaudit_sink_batches_total", "sink" => d.sink.clone(), "outcome" => outcome).increment(n as u64);
                    }
                    metrics::gauge!("mxaudit_sink_pending", "sink" => d.sink.clone())
                        .set(d.pending as f64);
                    if !d.is_clean() {
                        eprintln!(
                            "mxaudit daemon: sink {}: {} delivered, {} spooled (pending {}), {} dead-lettered, {} lost.",
                            d.sink, d.delivered, d.spooled, d.pending, d.dead_lettered, d.lost
                        );
                    }
                }
                if let Ok(mut h) = health.lock() {
                    h.runs += 1;
                    h.last_run = Some(summary.finished_at.clone());
                    h.last_error = None;
                }
                eprintln!(
                    "mxaudit daemon: schedule {}: run {} done: {} domain(s), {} event(s).",
                    schedule.name,
                    summary.run_id,
                    summary.domains.len(),
                    summary.events.len()
                );
            }
            Err(e) => {
                let (Failure::Usage(e) | Failure::Audit(e)) = e;
                metrics::counter!("mxaudit_runs_total", "schedule" => schedule.name.clone(), "status" => "failed").increment(1);
                if let Ok(mut h) = health.lock() {
                    h.last_error = Some(format!("{e:#}"));
                }
                // A failing run does not stop the daemon.
                eprintln!(
                    "mxaudit daemon: schedule {}: run failed: {e:#}",
                    schedule.name
                );
            }
        }
    }
}

async fn serve(
    addr: &str,
    metrics: PrometheusHandle,
    health: Arc<Mutex<Health>>,
    stop: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, Failure> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| usage(anyhow!("daemon.listen: cannot listen on {addr}: {e}")))?;
    eprintln!(
        "mxaudit daemon: serving /healthz and /metrics on {}.",
        listener.local_addr().map_err(failed)?
    );
    let app = Router::new()
        .route("/metrics", get(move || {
            let m = metrics.clone();
            async move { m.render() }
        }))
        .route("/healthz", get(move || {
            let h = health.clone();
            async move {
                let (runs, last_run, last_error) = match h.lock() {
                    Ok(h) => (h.runs, h.last_run.clone(), h.last_error.clone()),
                    Err(_) => (0, None, None),
                };
                let body = serde_json::json!({"status": "ok", "runs": runs, "last_run": last_run, "last_error": last_error});
                ([(axum::http::header::CONTENT_TYPE, "application/json")], body.to_string())
            }
        }));
    Ok(tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
    }))
}
