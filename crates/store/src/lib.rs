//! Run history: each run, the domains it covered, the status of each check and
//! the findings, so that a run can tell new, ongoing and resolved findings
//! apart and `mxaudit history` can say when each finding appeared and went.
//!
//! SQLite by default (one file, WAL journal: a killed run leaves a readable
//! store, and the run stays marked `running` until the next start marks it
//! `incomplete`), PostgreSQL when several agents share one store. One API for
//! both through sqlx's `AnyPool`; the schema is portable SQL.

#![deny(missing_docs)]

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::{AnyPool, SqlSafeStr};

pub use mxaudit_core::history::RunMeta;
use mxaudit_core::history::{HistoryError, RunHistory};
use mxaudit_core::model::{CheckResult, CheckStatus, Finding, Severity};
use mxaudit_core::sink::{Change, Event, TrendPoint};

/// Store errors. Messages never contain the database URL (it may hold a password).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database could not be opened or migrated.
    #[error("cannot open the history store: {0}")]
    Open(String),
    /// A query failed.
    #[error("history store query failed: {0}")]
    Query(String),
    /// A stored finding could not be read back.
    #[error("history store holds an unreadable finding: {0}")]
    Corrupt(String),
}

fn q(e: sqlx::Error) -> StoreError {
    StoreError::Query(e.to_string())
}

/// The migrations, compiled in (the binary needs no migrations folder).
const MIGRATIONS: &[(i64, &str, &str)] =
    &[(1, "init", include_str!("../migrations/0001_init.sql"))];

#[derive(Debug)]
struct Embedded;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> BoxFuture<Result<Vec<Migration>, sqlx::error::BoxDynError>> {
        Box::pin(async {
            Ok(MIGRATIONS
                .iter()
                .map(|(v, d, sql)| {
                    Migration::new(
                        *v,
                        Cow::Borrowed(*d),
                        MigrationType::Simple,
                        sql.into_sql_str(),
                        false,
                    )
                })
                .collect())
        })
    }
}

/// One past run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunRow {
    /// Id.
    pub id: String,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339, when finished.
    pub finished_at: Option<String>,
    /// running, complete or incomplete.
    pub status: String,
    /// Schedule.
    pub schedule: Option<String>,
}

/// A finding's life across runs, for `history`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FindingLife {
    /// The finding as last seen.
    pub finding: Finding,
    /// When it first appeared (run start, RFC 3339).
    pub first_seen: String,
    /// When it was last seen.
    pub last_seen: String,
    /// When it was found resolved (the first complete run without it), if it was.
    pub resolved_at: Option<String>,
}

/// The history of one domain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct History {
    /// The domain.
    pub domain: String,
    /// Runs that covered it, newest first.
    pub runs: Vec<RunRow>,
    /// Every finding ever seen, open ones first.
    pub findings: Vec<FindingLife>,
}

/// The history store.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
}

impl Store {
    /// Opens (creating if needed) and migrates the store. `url` is
    /// `sqlite://PATH?mode=rwc`, `sqlite::memory:` or `postgres://…`.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let sqlite = url.starts_with("sqlite:");
        // One connection for SQLite: a single writer, no lock contention.
        let pool = AnyPoolOptions::new()
            .max_connections(if sqlite { 1 } else { 4 })
            .connect(url)
            .await
            .map_err(|e| StoreError::Open(redact(&e.to_string(), url)))?;
        if sqlite {
            // WAL: readers never block the writer, and a killed writer leaves the
            // database consistent (the last transaction is either in or out).
            for pragma in [
                "PRAGMA journal_mode=WAL",
                "PRAGMA synchronous=NORMAL",
                "PRAGMA busy_timeout=5000",
            ] {
                sqlx::query(pragma)
                    .execute(&pool)
                    .await
                    .map_err(|e| StoreError::Open(e.to_string()))?;
            }
        }
        let migrator = Migrator::new(Embedded)
            .await
            .map_err(|e| StoreError::Open(e.to_string()))?;
        migrator
            .run(&pool)
            .await
            .map_err(|e| StoreError::Open(e.to_string()))?;
        Ok(Store { pool })
    }

    /// The URL of an SQLite file.
    pub fn sqlite_url(path: &std::path::Path) -> String {
        format!("sqlite://{}?mode=rwc", path.display())
    }

    /// Marks runs left `running` by a killed process as `incomplete`; returns how many.
    pub async fn mark_abandoned_runs(&self) -> Result<u64, StoreError> {
        let r = sqlx::query("UPDATE runs SET status = 'incomplete' WHERE status = 'running'")
            .execute(&self.pool)
            .await
            .map_err(q)?;
        Ok(r.rows_affected())
    }

    /// Records the start of a run.
    pub async fn begin_run(&self, run: &RunMeta) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(q)?;
        sqlx::query("INSERT INTO runs (id, started_at, finished_at, status, schedule) VALUES ($1, $2, NULL, 'running', $3)")
            .bind(run.id.as_str())
            .bind(run.started_at.as_str())
            .bind(run.schedule.as_deref())
            .execute(&mut *tx)
            .await
            .map_err(q)?;
        for d in &run.domains {
            sqlx::query("INSERT INTO run_domains (run_id, domain) VALUES ($1, $2)")
                .bind(run.id.as_str())
                .bind(d.as_str())
                .execute(&mut *tx)
                .await
                .map_err(q)?;
        }
        tx.commit().await.map_err(q)
    }

    /// The findings of the latest complete run that covered each domain, and
    /// that run's check statuses.
    async fn previous(&self, domains: &[String]) -> Result<Vec<(Finding, String)>, StoreError> {
        let mut out = Vec::new();
        for d in domains {
            let last = sqlx::query(
                "SELECT r.id FROM runs r JOIN run_domains rd ON rd.run_id = r.id \
                 WHERE rd.domain = $1 AND r.status = 'complete' ORDER BY r.started_at DESC, r.id DESC LIMIT 1",
            )
            .bind(d.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(q)?;
            let Some(row) = last else { continue };
            let run_id: String = row.try_get("id").map_err(q)?;
            let rows = sqlx::query("SELECT body FROM findings WHERE run_id = $1 AND domain = $2")
                .bind(run_id.as_str())
                .bind(d.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(q)?;
            for r in rows {
                let body: String = r.try_get("body").map_err(q)?;
                let f: Finding =
                    serde_json::from_str(&body).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                out.push((f, run_id.clone()));
            }
        }
        Ok(out)
    }

    /// Compares this run's findings with the previous complete run of the same
    /// domains: new, ongoing, resolved. A previous finding whose check could not
    /// decide this time (status `error`) is kept as ongoing, never "resolved":
    /// a DNS timeout does not fix anything.
    pub async fn diff(
        &self,
        domains: &[String],
        findings: &[Finding],
        checks: &[CheckResult],
    ) -> Result<Vec<Event>, StoreError> {
        let previous = self.previous(domains).await?;
        let before: HashMap<&str, &Finding> = previous
            .iter()
            .map(|(f, _)| (f.fingerprint.as_str(), f))
            .collect();
        let now: HashMap<&str, &Finding> = findings
            .iter()
            .map(|f| (f.fingerprint.as_str(), f))
            .collect();
        let undecided: Vec<(&str, &str)> = checks
            .iter()
            .filter(|c| c.status == CheckStatus::Error)
            .map(|c| (c.domain.as_str(), c.plugin.as_str()))
            .collect();
        let mut events = Vec::new();
        for f in findings {
            let change = if before.contains_key(f.fingerprint.as_str()) {
                Change::Ongoing
            } else {
                Change::New
            };
            events.push(Event {
                change: Some(change),
                finding: f.clone(),
            });
        }
        for (f, _) in &previous {
            if now.contains_key(f.fingerprint.as_str()) {
                continue;
            }
            let change = if undecided.contains(&(f.domain.as_str(), f.plugin.as_str())) {
                Change::Ongoing
            } else {
                Change::Resolved
            };
            events.push(Event {
                change: Some(change),
                finding: f.clone(),
            });
        }
        Ok(events)
    }

    /// Records the findings and check statuses and marks the run finished.
    /// Findings carried over from an undecided check are stored again, so the
    /// next run still knows them.
    pub async fn finish_run(
        &self,
        run_id: &str,
        finished_at: &str,
        events: &[Event],
        checks: &[CheckResult],
        complete: bool,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(q)?;
        for e in events.iter().filter(|e| e.change != Some(Change::Resolved)) {
            let f = &e.finding;
            let body = serde_json::to_string(f).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            sqlx::query(
                "INSERT INTO findings (run_id, fingerprint, domain, plugin, code, severity, subject, body) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (run_id, fingerprint) DO NOTHING",
            )
            .bind(run_id)
            .bind(f.fingerprint.as_str())
            .bind(f.domain.as_str())
            .bind(f.plugin.as_str())
            .bind(f.code.as_str())
            .bind(f.severity.as_str())
            .bind(f.subject.as_str())
            .bind(body)
            .execute(&mut *tx)
            .await
            .map_err(q)?;
        }
        for c in checks {
            let status = match c.status {
                CheckStatus::Pass => "pass",
                CheckStatus::Fail => "fail",
                CheckStatus::Error => "error",
            };
            sqlx::query("INSERT INTO run_checks (run_id, domain, plugin, status) VALUES ($1, $2, $3, $4) ON CONFLICT (run_id, domain, plugin) DO NOTHING")
                .bind(run_id)
                .bind(c.domain.as_str())
                .bind(c.plugin.as_str())
                .bind(status)
                .execute(&mut *tx)
                .await
                .map_err(q)?;
        }
        sqlx::query("UPDATE runs SET finished_at = $1, status = $2 WHERE id = $3")
            .bind(finished_at)
            .bind(if complete { "complete" } else { "incomplete" })
            .bind(run_id)
            .execute(&mut *tx)
            .await
            .map_err(q)?;
        tx.commit().await.map_err(q)
    }

    /// Marks a run incomplete (stopped before the end).
    pub async fn abandon_run(&self, run_id: &str, at: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE runs SET finished_at = $1, status = 'incomplete' WHERE id = $2")
            .bind(at)
            .bind(run_id)
            .execute(&self.pool)
            .await
            .map_err(q)?;
        Ok(())
    }

    /// Findings per severity of the last `n` complete runs that covered any of
    /// `domains`, oldest first.
    pub async fn trend(&self, domains: &[String], n: usize) -> Result<Vec<TrendPoint>, StoreError> {
        let mut runs: BTreeMap<(String, String), [u64; 5]> = BTreeMap::new();
        for d in domains {
            let rows = sqlx::query(
                "SELECT r.id, r.started_at FROM runs r JOIN run_domains rd ON rd.run_id = r.id \
                 WHERE rd.domain = $1 AND r.status = 'complete' ORDER BY r.started_at DESC LIMIT $2",
            )
            .bind(d.as_str())
            .bind(i64::try_from(n).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(q)?;
            for r in rows {
                let id: String = r.try_get("id").map_err(q)?;
                let at: String = r.try_get("started_at").map_err(q)?;
                runs.entry((at, id)).or_insert([0; 5]);
            }
        }
        let mut points = Vec::new();
        for ((at, id), mut counts) in runs.into_iter().rev().take(n) {
            let rows = sqlx::query("SELECT severity, domain FROM findings WHERE run_id = $1")
                .bind(id.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(q)?;
            for r in rows {
                let sev: String = r.try_get("severity").map_err(q)?;
                let domain: String = r.try_get("domain").map_err(q)?;
                if !domains.contains(&domain) {
                    continue;
                }
                if let Ok(s) = sev.parse::<Severity>()
                    && let Some(i) = Severity::ALL.iter().position(|x| *x == s)
                {
                    counts[i] += 1;
                }
            }
            points.push(TrendPoint {
                run_id: id,
                started_at: at,
                counts,
            });
        }
        points.reverse();
        Ok(points)
    }

    /// The runs that covered `domain` and the life of each finding.
    pub async fn history(&self, domain: &str, limit: usize) -> Result<History, StoreError> {
        let rows = sqlx::query(
            "SELECT r.id, r.started_at, r.finished_at, r.status, r.schedule FROM runs r \
             JOIN run_domains rd ON rd.run_id = r.id WHERE rd.domain = $1 ORDER BY r.started_at ASC, r.id ASC",
        )
        .bind(domain)
        .fetch_all(&self.pool)
        .await
        .map_err(q)?;
        let mut runs = Vec::new();
        for r in rows {
            runs.push(RunRow {
                id: r.try_get("id").map_err(q)?,
                started_at: r.try_get("started_at").map_err(q)?,
                finished_at: r.try_get("finished_at").map_err(q)?,
                status: r.try_get("status").map_err(q)?,
                schedule: r.try_get("schedule").map_err(q)?,
            });
        }
        let rows = sqlx::query("SELECT run_id, fingerprint, body FROM findings WHERE domain = $1")
            .bind(domain)
            .fetch_all(&self.pool)
            .await
            .map_err(q)?;
        let mut seen: HashMap<String, Vec<(String, Finding)>> = HashMap::new();
        for r in rows {
            let run_id: String = r.try_get("run_id").map_err(q)?;
            let fp: String = r.try_get("fingerprint").map_err(q)?;
            let body: String = r.try_get("body").map_err(q)?;
            let f: Finding =
                serde_json::from_str(&body).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            seen.entry(fp).or_default().push((run_id, f));
        }
        let order: HashMap<&str, usize> = runs
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.as_str(), i))
            .collect();
        let mut findings = Vec::new();
        for (_, mut occurrences) in seen {
            occurrences.sort_by_key(|(run, _)| order.get(run.as_str()).copied().unwrap_or(0));
            let (Some((first_run, _)), Some((last_run, last))) =
                (occurrences.first(), occurrences.last())
            else {
                continue;
            };
            let first_i = order.get(first_run.as_str()).copied().unwrap_or(0);
            let last_i = order.get(last_run.as_str()).copied().unwrap_or(0);
            let resolved_at = runs
                .iter()
                .skip(last_i + 1)
                .find(|r| r.status == "complete")
                .map(|r| r.started_at.clone());
            findings.push(FindingLife {
                finding: last.clone(),
                first_seen: runs
                    .get(first_i)
                    .map(|r| r.started_at.clone())
                    .unwrap_or_default(),
                last_seen: runs
                    .get(last_i)
                    .map(|r| r.started_at.clone())
                    .unwrap_or_default(),
                resolved_at,
            });
        }
        findings.sort_by(|a, b| {
            a.resolved_at
                .is_some()
                .cmp(&b.resolved_at.is_some())
                .then_with(|| b.finding.severity.cmp(&a.finding.severity))
                .then_with(|| a.first_seen.cmp(&b.first_seen))
        });
        runs.reverse();
        runs.truncate(limit);
        Ok(History {
            domain: domain.to_owned(),
            runs,
            findings,
        })
    }
}

/// Removes the URL (which may hold a password) from an error message.
fn redact(message: &str, url: &str) -> String {
    message.replace(url, "<database url>")
}

fn history_error(e: StoreError) -> HistoryError {
    HistoryError(e.to_string())
}

#[async_trait::async_trait]
impl RunHistory for Store {
    async fn mark_abandoned_runs(&self) -> Result<u64, HistoryError> {
        Store::mark_abandoned_runs(self)
            .await
            .map_err(history_error)
    }
    async fn begin_run(&self, run: &RunMeta) -> Result<(), HistoryError> {
        Store::begin_run(self, run).await.map_err(history_error)
    }
    async fn diff(
        &self,
        domains: &[String],
        findings: &[Finding],
        checks: &[CheckResult],
    ) -> Result<Vec<Event>, HistoryError> {
        Store::diff(self, domains, findings, checks)
            .await
            .map_err(history_error)
    }
    async fn trend(&self, domains: &[String], n: usize) -> Result<Vec<TrendPoint>, HistoryError> {
        Store::trend(self, domains, n).await.map_err(history_error)
    }
    async fn finish_run(
        &self,
        run_id: &str,
        finished_at: &str,
        events: &[Event],
        checks: &[CheckResult],
        complete: bool,
    ) -> Result<(), HistoryError> {
        Store::finish_run(self, run_id, finished_at, events, checks, complete)
            .await
            .map_err(history_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(code: &str, subject: &str) -> Finding {
        Finding {
            code: code.to_owned(),
            severity: Severity::High,
            domain: "a.example".to_owned(),
            subject: subject.to_owned(),
            title: "t".to_owned(),
            detail: "d".to_owned(),
            evidence: vec![],
            remediation: "r".to_owned(),
            references: vec![],
            ndr: vec![],
            plugin: "mx".to_owned(),
            fingerprint: mxaudit_core::model::fingerprint(code, "a.example", subject),
        }
    }

    fn check(status: CheckStatus) -> CheckResult {
        CheckResult {
            domain: "a.example".to_owned(),
            plugin: "mx".to_owned(),
            status,
            detail: None,
            duration_ms: 1,
        }
    }

    async fn run(
        store: &Store,
        id: &str,
        at: &str,
        findings: &[Finding],
        status: CheckStatus,
    ) -> Vec<Event> {
        let domains = vec!["a.example".to_owned()];
        store
            .begin_run(&RunMeta {
                id: id.to_owned(),
                started_at: at.to_owned(),
                schedule: None,
                domains: domains.clone(),
            })
            .await
            .expect("begin");
        let checks = vec![check(status)];
        let events = store.diff(&domains, findings, &checks).await.expect("diff");
        store
            .finish_run(id, at, &events, &checks, true)
            .await
            .expect("finish");
        events
    }

    #[tokio::test]
    async fn new_ongoing_resolved_and_undecided() {
        let store = Store::open("sqlite::memory:").await.expect("open");
        let a = finding("mx.none", "a.example");
        let b = finding("mx.null", "a.example");
        let e1 = run(
            &store,
            "r1",
            "2026-11-25T00:00:00Z",
            std::slice::from_ref(&a),
            CheckStatus::Fail,
        )
        .await;
        assert_eq!(
            e1.iter().map(|e| e.change).collect::<Vec<_>>(),
            vec![Some(Change::New)]
        );
        let e2 = run(
            &store,
            "r2",
            "2026-11-25T01:00:00Z",
            &[a.clone(), b.clone()],
            CheckStatus::Fail,
        )
        .await;
        assert_eq!(
            e2.iter()
                .map(|e| (e.change, e.finding.code.as_str()))
                .collect::<Vec<_>>(),
            vec![
                (Some(Change::Ongoing), "mx.none"),
                (Some(Change::New), "mx.null")
            ]
        );
        // The check errored: its findings are not resolved, they carry over.
        let e3 = run(
            &store,
            "r3",
            "2026-11-25T02:00:00Z",
            &[],
            CheckStatus::Error,
        )
        .await;
        assert!(
            e3.iter().all(|e| e.change == Some(Change::Ongoing)),
            "{e3:?}"
        );
        let e4 = run(
            &store,
            "r4",
            "2026-11-25T03:00:00Z",
            std::slice::from_ref(&b),
            CheckStatus::Fail,
        )
        .await;
        assert_eq!(
            e4.iter()
                .map(|e| (e.change, e.finding.code.as_str()))
                .collect::<Vec<_>>(),
            vec![
                (Some(Change::Ongoing), "mx.null"),
                (Some(Change::Resolved), "mx.none")
            ]
        );
        let h = store.history("a.example", 10).await.expect("history");
        assert_eq!(h.runs.len(), 4);
        let none = h
            .findings
            .iter()
            .find(|f| f.finding.code == "mx.none")
            .expect("life");
        assert_eq!(none.first_seen, "2026-11-25T00:00:00Z");
        assert_eq!(none.resolved_at.as_deref(), Some("2026-11-25T03:00:00Z"));
        let null = h
            .findings
            .iter()
            .find(|f| f.finding.code == "mx.null")
            .expect("life");
        assert_eq!(null.resolved_at, None);
        let trend = store
            .trend(&["a.example".to_owned()], 3)
            .await
            .expect("trend");
        assert_eq!(
            trend.iter().map(|t| t.counts[1]).collect::<Vec<_>>(),
            vec![2, 2, 1]
        );
    }

    #[tokio::test]
    async fn abandoned_runs_become_incomplete() {
        let store = Store::open("sqlite::memory:").await.expect("open");
        store
            .begin_run(&RunMeta {
                id: "x".into(),
                started_at: "2026-11-25T00:00:00Z".into(),
                schedule: None,
                domains: vec!["a.example".into()],
            })
            .await
            .expect("begin");
        assert_eq!(store.mark_abandoned_runs().await.expect("mark"), 1);
        let h = store.history("a.example", 5).await.expect("history");
        assert_eq!(h.runs[0].status, "incomplete");
    }
}
