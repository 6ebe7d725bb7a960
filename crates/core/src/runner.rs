//! Runs (plugin × target) tasks concurrently, each within a deadline; a task
//! that panics or overruns becomes an `error` status, never a lost run.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;

use mxaudit_dns::Dns;

use crate::address::AddressPolicy;
use crate::check::{Check, CheckCx, RunScope, Target};
use crate::manifest::Plugin;
use crate::model::{CheckResult, CheckStatus, Finding, Lang, Severity};
use crate::text::TextRenderer;

/// Called once per finished (plugin, target) task with (done, total).
pub type ProgressHook = Arc<dyn Fn(usize, usize) + Send + Sync>;

/// (plugin, domain) tasks at once by default. Measured with bench/run.sh
/// (docs/performance.md): 256 tasks and 256 questions in flight keep a local
/// name server busy without a dropped datagram; 32 left it idle half the time.
pub const DEFAULT_CONCURRENCY: usize = 256;

/// How a run behaves.
#[derive(Clone)]
pub struct RunOptions {
    /// Tasks at once.
    pub concurrency: usize,
    /// Budget of one task.
    pub task_timeout: Duration,
    /// Output language.
    pub lang: Lang,
    /// Severity overrides by code.
    pub severity: BTreeMap<String, Severity>,
    /// Progress reporting (a progress bar on terminals).
    pub progress: Option<ProgressHook>,
    /// What every check of the run shares (options, peers, the session pacer).
    pub scope: Arc<RunScope>,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("concurrency", &self.concurrency)
            .field("task_timeout", &self.task_timeout)
            .field("lang", &self.lang)
            .finish_non_exhaustive()
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            concurrency: DEFAULT_CONCURRENCY,
            task_timeout: Duration::from_secs(60),
            lang: Lang::En,
            severity: BTreeMap::new(),
            progress: None,
            scope: Arc::new(RunScope::default()),
        }
    }
}

/// What a run produced.
#[derive(Debug, Clone, Default)]
pub struct RunOutput {
    /// Findings, by target order, then most severe first.
    pub findings: Vec<Finding>,
    /// One status per (target, plugin), in target then plugin order.
    pub checks: Vec<CheckResult>,
}

/// One (plugin, target) task. A named struct rather than a tuple: the trait
/// object's `'static` bound is then explicit, which the task's future needs.
struct Job {
    ti: usize,
    pi: usize,
    target: Target,
    check: Arc<dyn Check>,
}

/// Runs every plugin on every target.
pub async fn run(
    plugins: &[Plugin],
    targets: &[Target],
    dns: &Dns,
    addresses: Arc<AddressPolicy>,
    opts: &RunOptions,
) -> RunOutput {
    let renderer = Arc::new(TextRenderer::new(opts.lang));
    let mut jobs = Vec::new();
    for (ti, target) in targets.iter().enumerate() {
        for (pi, plugin) in plugins.iter().enumerate() {
            // Only the check is shared with the task: cloning a whole plugin (its
            // manifest text) per (plugin, target) costs more than the DNS work.
            jobs.push(Job {
                ti,
                pi,
                target: target.clone(),
                check: plugin.check.clone(),
            });
        }
    }
    let total = jobs.len();
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let results: Vec<_> = futures::stream::iter(jobs)
        .map(
            |Job {
                 ti,
                 pi,
                 target,
                 check,
             }| {
                let cx = CheckCx {
                    dns: dns.clone(),
                    addresses: addresses.clone(),
                    deadline: Instant::now() + opts.task_timeout,
                    run: opts.scope.clone(),
                };
                let timeout = opts.task_timeout;
                let progress = opts.progress.clone();
                let done = done.clone();
                async move {
                    let started = Instant::now();
                    let t = target.clone();
                    // A task of its own, so that a panic in an engine is caught as a JoinError.
                    let handle = tokio::spawn(async move { check.run(&t, &cx).await });
                    let abort = handle.abort_handle();
                    let outcome = match tokio::time::timeout(timeout, handle).await {
                        Ok(Ok(report)) => Ok(report),
                        Ok(Err(join)) => Err(if join.is_panic() {
                            "the check crashed (panic); this is a bug in mxaudit".to_owned()
                        } else {
                            "the check was cancelled".to_owned()
                        }),
                        Err(_) => {
                            abort.abort();
                            Err(format!(
                                "the check did not finish within {}",
                                humanize(timeout)
                            ))
                        }
                    };
                    if let Some(hook) = &progress {
                        hook(
                            done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1,
                            total,
                        );
                    }
                    (ti, pi, target, outcome, started.elapsed())
                }
            },
        )
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;

    let mut results = results;
    results.sort_by_key(|(ti, pi, ..)| (*ti, *pi));
    let mut out = RunOutput::default();
    let mut per_target: BTreeMap<usize, Vec<Finding>> = BTreeMap::new();
    for (ti, pi, target, outcome, elapsed) in results {
        let plugin = &plugins[pi];
        let domain = target.domain.to_string();
        let (status, detail) = match outcome {
            Ok(report) => {
                let findings = per_target.entry(ti).or_default();
                let mut codes = Vec::new();
                for obs in &report.observations {
                    // An observation made on another plugin's behalf speaks
                    // with that plugin's text.
                    let meta = obs
                        .plugin
                        .as_deref()
                        .and_then(|id| opts.scope.peer(id))
                        .map_or(&plugin.meta, |p| &p.meta);
                    let f =
                        renderer.finding(meta, &domain, obs, opts.severity.get(&obs.code).copied());
                    if !codes.contains(&f.code) {
                        codes.push(f.code.clone());
                    }
                    if !findings.iter().any(|g| g.fingerprint == f.fingerprint) {
                        findings.push(f);
                    }
                }
                if !report.errors.is_empty() {
                    (CheckStatus::Error, Some(report.errors.join("; ")))
                } else if !codes.is_empty() {
                    (CheckStatus::Fail, Some(codes.join(", ")))
                } else {
                    (CheckStatus::Pass, None)
                }
            }
            Err(why) => (CheckStatus::Error, Some(why)),
        };
        out.checks.push(CheckResult {
            domain,
            plugin: plugin.meta.id.clone(),
            status,
            detail,
            duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        });
    }
    for (_, mut findings) in per_target {
        findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.code.cmp(&b.code))
                .then_with(|| a.subject.cmp(&b.subject))
        });
        out.findings.extend(findings);
    }
    out
}

fn humanize(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}
