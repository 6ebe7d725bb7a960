//! The history store on a real PostgreSQL server (Debian's postgresql, started
//! by the test in a temporary directory on loopback): the same schema and the
//! same new / ongoing / resolved semantics as on SQLite.

use std::path::PathBuf;
use std::process::Command;

use mxaudit_core::model::{CheckResult, CheckStatus, Finding, Severity, fingerprint};
use mxaudit_core::sink::Change;
use mxaudit_store::{RunMeta, Store};

struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl Postgres {
    fn command(&self, tool: &str) -> Command {
        let program = self.bin.join(tool);
        if self.as_postgres {
            // PostgreSQL refuses to run as root.
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    fn start() -> Postgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|d| d.flatten().map(|e| e.path().join("bin")).find(|p| p.join("initdb").exists()))
            .unwrap_or_else(|| panic!("PostgreSQL server binaries not found under /usr/lib/postgresql: apt-get install postgresql (.ci/run does)"));
        let dir = std::env::temp_dir().join(format!("mxaudit-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let as_postgres = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        if as_postgres {
            assert!(
                Command::new("chown")
                    .args(["-R", "postgres"])
                    .arg(&dir)
                    .status()
                    .expect("chown")
                    .success()
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("port");
        let pg = Postgres {
            bin,
            data: dir.join("data"),
            port,
            as_postgres,
        };
        let init = pg
            .command("initdb")
            .args(["-A", "trust", "-U", "postgres", "-D"])
            .arg(&pg.data)
            .output()
            .expect("initdb runs");
        assert!(
            init.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            dir.display()
        );
        let start = pg
            .command("pg_ctl")
            .args(["-w", "-D"])
            .arg(&pg.data)
            .args(["-o", &opts, "-l"])
            .arg(dir.join("log"))
            .arg("start")
            .output()
            .expect("pg_ctl runs");
        assert!(
            start.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&start.stderr)
        );
        pg
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["-D"])
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .output();
        if let Some(dir) = self.data.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn finding(code: &str) -> Finding {
    Finding {
        code: code.to_owned(),
        severity: Severity::High,
        domain: "pg.example".to_owned(),
        subject: "pg.example".to_owned(),
        title: "t".to_owned(),
        detail: "d".to_owned(),
        evidence: vec!["ev 'quoted' \"text\"".to_owned()],
        remediation: "r".to_owned(),
        references: vec![],
        ndr: vec![],
        plugin: "mx".to_owned(),
        fingerprint: fingerprint(code, "pg.example", "pg.example"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_store_keeps_the_same_history() {
    let pg = tokio::task::spawn_blocking(Postgres::start)
        .await
        .expect("started");
    let store = Store::open(&pg.url())
        .await
        .expect("open and migrate on PostgreSQL");
    // Opening again runs no migration twice.
    Store::open(&pg.url()).await.expect("reopen");
    let domains = vec!["pg.example".to_owned()];
    let checks = vec![CheckResult {
        domain: "pg.example".into(),
        plugin: "mx".into(),
        status: CheckStatus::Fail,
        detail: None,
        duration_ms: 1,
    }];
    let mut changes = Vec::new();
    for (i, findings) in [vec![finding("mx.none")], vec![finding("mx.null")]]
        .into_iter()
        .enumerate()
    {
        let id = format!("run-{i}");
        let at = format!("2026-11-25T0{i}:00:00Z");
        store
            .begin_run(&RunMeta {
                id: id.clone(),
                started_at: at.clone(),
                schedule: Some("pg".into()),
                domains: domains.clone(),
            })
            .await
            .expect("begin");
        let events = store
            .diff(&domains, &findings, &checks)
            .await
            .expect("diff");
        changes.push(
            events
                .iter()
                .map(|e| (e.change, e.finding.code.clone()))
                .collect::<Vec<_>>(),
        );
        store
            .finish_run(&id, &at, &events, &checks, true)
            .await
            .expect("finish");
    }
    assert_eq!(changes[0], vec![(Some(Change::New), "mx.none".to_owned())]);
    assert_eq!(
        changes[1],
        vec![
            (Some(Change::New), "mx.null".to_owned()),
            (Some(Change::Resolved), "mx.none".to_owned())
        ]
    );
    let h = store.history("pg.example", 10).await.expect("history");
    assert_eq!(h.runs.len(), 2);
    let none = h
        .findings
        .iter()
        .find(|f| f.finding.code == "mx.none")
        .expect("life");
    assert_eq!(none.resolved_at.as_deref(), Some("2026-11-25T01:00:00Z"));
    assert_eq!(
        none.finding.evidence,
        vec!["ev 'quoted' \"text\"".to_owned()]
    );
    assert_eq!(store.trend(&domains, 5).await.expect("trend").len(), 2);
}
