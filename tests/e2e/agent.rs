//! The agent: `mxaudit run` twice against the testbed with a change in between
//! (new / ongoing / resolved, recorded in the store), `mxaudit history`, a
//! killed run marked incomplete, and the daemon.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use mxaudit_testbed::{DnsServer, ZoneText, demo};

use crate::support::demo_server;

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mxaudit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A configuration for the demo world served by `server`, with extra TOML appended.
pub fn write_config(dir: &Path, server: &DnsServer, domains: &[&str], extra: &str) -> PathBuf {
    let mut cfg = format!(
        "allow_targets = [\"198.51.100.0/24\", \"203.0.113.0/24\", \"2001:db8::/32\"]\n\n[resolver]\nnameservers = [\"{}\"]\ntimeout = \"500ms\"\nattempts = 0\n\n[plugins]\nonly = [\"mx\", \"address\", \"ptr\", \"dmarc\"]\n\n[store]\npath = \"history.db\"\n\n",
        server.addr()
    );
    for d in domains {
        cfg.push_str(&format!(
            "[[domains]]\nname = \"{d}\"\ntags = [\"t-{}\"]\n\n",
            d.split('.').next().unwrap_or(d)
        ));
    }
    cfg.push_str(extra);
    let path = dir.join("audit.toml");
    std::fs::write(&path, cfg).expect("write config");
    path
}

async fn mxaudit(args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_mxaudit"))
        .args(args)
        .output()
        .await
        .expect("runs")
}

fn events(out: &Output) -> Vec<(String, String, String)> {
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let mut e: Vec<(String, String, String)> = v["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e["change"].as_str().unwrap_or("").to_owned(),
                e["finding"]["code"].as_str().unwrap_or("").to_owned(),
                e["finding"]["domain"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    e.sort();
    e
}

/// The demo world with one problem fixed and one introduced.
fn changed_zones() -> Vec<ZoneText> {
    demo::zones()
        .into_iter()
        .map(|mut z| {
            // Fixed: dangling's MX host now resolves. Broken: healthy loses its DMARC record.
            z.text = z
                .text
                .replace("dangling           IN MX    10 mail.dangling.example.", "dangling           IN MX    10 mail.dangling.example.\nmail.dangling      IN A     198.51.100.10")
                .replace("_dmarc.healthy     IN TXT   \"v=DMARC1; p=reject; rua=mailto:dmarc@healthy.example\"", "");
            z
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_runs_with_a_change_in_between() {
    let server = demo_server().await;
    let dir = temp_dir("agent-runs");
    let cfg = write_config(
        &dir,
        &server,
        &["healthy.example", "dangling.example", "noptr.example"],
        "",
    );
    let cfg_s = cfg.to_str().expect("utf8");

    let first = mxaudit(&["run", "--config", cfg_s, "--format", "json"]).await;
    assert_eq!(
        first.status.code(),
        Some(1),
        "high findings: {}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(
        events(&first),
        vec![
            (
                "new".into(),
                "dmarc.policy_none".into(),
                "dangling.example".into()
            ),
            (
                "new".into(),
                "mx.target_unresolvable".into(),
                "dangling.example".into()
            ),
            ("new".into(), "ptr.missing".into(), "noptr.example".into()),
        ]
    );

    server
        .replace_zones(&changed_zones())
        .await
        .expect("zones replaced");
    let second = mxaudit(&["run", "--config", cfg_s, "--format", "json"]).await;
    assert_eq!(
        events(&second),
        vec![
            (
                "new".into(),
                "dmarc.missing".into(),
                "healthy.example".into()
            ),
            (
                "ongoing".into(),
                "dmarc.policy_none".into(),
                "dangling.example".into()
            ),
            (
                "ongoing".into(),
                "ptr.missing".into(),
                "noptr.example".into()
            ),
            (
                "resolved".into(),
                "mx.target_unresolvable".into(),
                "dangling.example".into()
            ),
        ]
    );

    // Selection by name and by tag; a run of one domain does not resolve the others'.
    let third = mxaudit(&[
        "run", "--config", cfg_s, "--format", "json", "--tag", "t-noptr",
    ])
    .await;
    assert_eq!(
        events(&third),
        vec![(
            "ongoing".into(),
            "ptr.missing".into(),
            "noptr.example".into()
        )]
    );

    let history = mxaudit(&[
        "history",
        "dangling.example",
        "--config",
        cfg_s,
        "--format",
        "json",
    ])
    .await;
    let h: Value = serde_json::from_slice(&history.stdout).expect("json");
    assert_eq!(h["runs"].as_array().expect("runs").len(), 2);
    let lives = h["findings"].as_array().expect("findings");
    let unresolvable = lives
        .iter()
        .find(|f| f["finding"]["code"] == "mx.target_unresolvable")
        .expect("life");
    assert_eq!(
        unresolvable["resolved_at"], h["runs"][0]["started_at"],
        "resolved by the newest run"
    );
    let policy = lives
        .iter()
        .find(|f| f["finding"]["code"] == "dmarc.policy_none")
        .expect("life");
    assert!(policy["resolved_at"].is_null());
    let text = mxaudit(&["history", "dangling.example", "--config", cfg_s]).await;
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("resolved 20") && text.contains("open (last seen"),
        "{text}"
    );

    let bad = mxaudit(&["run", "--config", cfg_s, "--domain", "nope.example"]).await;
    assert_eq!(bad.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dns_failure_does_not_resolve_findings() {
    let server = demo_server().await;
    let dir = temp_dir("agent-undecided");
    let cfg = write_config(&dir, &server, &["dangling.example"], "");
    let cfg_s = cfg.to_str().expect("utf8");
    mxaudit(&["run", "--config", cfg_s, "--format", "json"]).await;
    server.set_fault("dangling.example", mxaudit_testbed::Fault::ServFail);
    let second = mxaudit(&["run", "--config", cfg_s, "--format", "json"]).await;
    let e = events(&second);
    assert!(
        !e.iter().any(|(c, _, _)| c == "resolved"),
        "a SERVFAIL must not resolve anything: {e:?}"
    );
    assert!(
        e.contains(&(
            "new".into(),
            "mx.lookup_failed".into(),
            "dangling.example".into()
        )),
        "{e:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// GET over plain HTTP/1.1 on loopback; returns the body.
async fn http_get(addr: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf).into_owned();
    text.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

fn metric(body: &str, name: &str, label: &str) -> f64 {
    body.lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn daemon_schedules_reloads_survives_and_stops() {
    use tokio::io::AsyncBufReadExt;
    let server = demo_server().await;
    let dir = temp_dir("daemon");
    let schedules = "[daemon]\nlisten = \"127.0.0.1:0\"\n\n[[schedules]]\nname = \"fast\"\ncron = \"*/1 * * * * *\"\ndomains = [\"dangling.example\"]\n\n[[schedules]]\nname = \"broken\"\ncron = \"*/1 * * * * *\"\ntags = [\"no-such-tag\"]\n\n[delivery]\nattempts = 1\nbackoff = \"10ms\"\n\n[sinks.down]\ntype = \"webhook\"\nformat = \"generic\"\nurl_env = \"MXAUDIT_DOWN_HOOK\"\nonly = \"all\"\n";
    let cfg = write_config(
        &dir,
        &server,
        &["dangling.example", "noptr.example"],
        schedules,
    );
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mxaudit"))
        // A sink whose receiver refuses connections: the daemon goes on.
        .env("MXAUDIT_DOWN_HOOK", "http://127.0.0.1:9/hook")
        .args(["daemon", "--config", cfg.to_str().expect("utf8")])
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("daemon starts");
    let pid = child.id().expect("pid").to_string();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = tx.send(line);
        }
    });
    let mut seen: Vec<String> = Vec::new();
    let mut wait_for = async |needle: &str, seen: &mut Vec<String>| -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            if let Some(l) = seen.iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match tokio::time::timeout(left, rx.recv()).await {
                Ok(Some(l)) => seen.push(l),
                _ => panic!("daemon never said {needle:?}; it said: {seen:#?}"),
            }
        }
    };
    let serving = wait_for("serving /healthz and /metrics on ", &mut seen).await;
    let addr = serving
        .rsplit(' ')
        .next()
        .expect("addr")
        .trim_end_matches('.')
        .to_owned();

    // Runs happen every second; the failing schedule does not stop the daemon.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let body = http_get(&addr, "/metrics").await;
        let complete = metric(&body, "mxaudit_runs_total", "status=\"complete\"");
        let failed = metric(&body, "mxaudit_runs_total", "status=\"failed\"");
        if complete >= 2.0 && failed >= 1.0 {
            assert!(
                metric(&body, "mxaudit_findings", "severity=\"high\"") >= 1.0,
                "{body}"
            );
            assert!(body.contains("mxaudit_run_duration_seconds"), "{body}");
            assert!(
                metric(&body, "mxaudit_dns_queries_total", "") >= 1.0,
                "{body}"
            );
            assert!(
                metric(&body, "mxaudit_sink_pending", "sink=\"down\"") >= 1.0,
                "{body}"
            );
            assert!(
                metric(&body, "mxaudit_sink_batches_total", "outcome=\"delivered\"") == 0.0,
                "{body}"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no runs: {body}");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    let health: Value = serde_json::from_str(&http_get(&addr, "/healthz").await).expect("json");
    assert_eq!(health["status"], "ok");

    // SIGHUP with an invalid configuration: refused, old one kept.
    let good = std::fs::read_to_string(&cfg).expect("read");
    std::fs::write(&cfg, format!("{good}\nnot_a_key = 1\n")).expect("write");
    assert!(
        std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .expect("kill")
            .success()
    );
    wait_for("invalid configuration, keeping the old one", &mut seen).await;

    // SIGHUP with a valid one: the new schedule runs noptr.example too.
    std::fs::write(
        &cfg,
        good.replace(
            "domains = [\"dangling.example\"]",
            "domains = [\"dangling.example\", \"noptr.example\"]",
        ),
    )
    .expect("write");
    assert!(
        std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .expect("kill")
            .success()
    );
    wait_for("configuration reloaded", &mut seen).await;
    wait_for("2 domain(s)", &mut seen).await;

    // SIGTERM: clean exit; no run left `running`.
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let status = tokio::time::timeout(std::time::Duration::from_secs(25), child.wait())
        .await
        .expect("exits")
        .expect("status");
    assert_eq!(status.code(), Some(0));
    let history = mxaudit(&[
        "history",
        "dangling.example",
        "--config",
        cfg.to_str().expect("utf8"),
        "--format",
        "json",
    ])
    .await;
    let h: Value = serde_json::from_slice(&history.stdout).expect("json");
    let runs = h["runs"].as_array().expect("runs");
    assert!(runs.len() >= 3, "{h:#}");
    assert!(runs.iter().all(|r| r["status"] != "running"), "{h:#}");
    assert!(runs.iter().all(|r| r["schedule"] == "fast"), "{h:#}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A webhook receiver on loopback: records each JSON body and Idempotency-Key;
/// answers 503 while "down".
struct Hook {
    addr: std::net::SocketAddr,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    got: std::sync::Arc<std::sync::Mutex<Vec<(String, Value)>>>,
}

async fn hook() -> Hook {
    use axum::http::{HeaderMap, StatusCode};
    let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (u, g) = (up.clone(), got.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let (u, g) = (u.clone(), g.clone());
            async move {
                if !u.load(std::sync::atomic::Ordering::SeqCst) {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                let key = headers
                    .get("idempotency-key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                g.lock().expect("lock").push((key, v));
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Hook { addr, up, got }
}

impl Hook {
    /// (change, code, domain) of every event received, in order, with the batch key.
    fn events(&self) -> Vec<(String, String, String, String)> {
        let got = self.got.lock().expect("lock");
        let mut out = Vec::new();
        for (key, v) in got.iter() {
            for e in v["events"].as_array().into_iter().flatten() {
                out.push((
                    key.clone(),
                    e["change"].as_str().unwrap_or("").to_owned(),
                    e["finding"]["code"].as_str().unwrap_or("").to_owned(),
                    e["finding"]["domain"].as_str().unwrap_or("").to_owned(),
                ));
            }
        }
        out
    }
}

fn sinks_toml(hook: &Hook, smtp_port: u16) -> String {
    format!(
        "[delivery]\nspool_dir = \"spool\"\nattempts = 2\nbackoff = \"50ms\"\nmax_backoff = \"200ms\"\n\n\
         [sinks.hook]\ntype = \"webhook\"\nformat = \"generic\"\nurl_env = \"MXAUDIT_TEST_HOOK\"\nmin_severity = \"low\"\nonly = \"changes\"\n\n\
         [sinks.mail]\ntype = \"email\"\nhost = \"127.0.0.1\"\nport = {smtp_port}\ntls = \"none\"\nfrom = \"mxaudit@test.example\"\nto = [\"admin@test.example\"]\nonly = \"changes\"\n\n\
         [sinks.report]\ntype = \"file\"\nformat = \"json\"\npath = \"reports/{{run}}.json\"\nonly = \"all\"\n",
    )
    .replace("{{run}}", "{run}")
    + &format!("# hook at {}\n", hook.addr)
}

async fn run_with_hook(cfg: &Path, hook: &Hook) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_mxaudit"))
        .args([
            "run",
            "--config",
            cfg.to_str().expect("utf8"),
            "--format",
            "json",
        ])
        .env("MXAUDIT_TEST_HOOK", format!("http://{}/hook", hook.addr))
        .output()
        .await
        .expect("runs")
}

fn mails(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(rd) = std::fs::read_dir(dir.join(sub)) {
            for e in rd.flatten() {
                out.push(std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_reach_a_webhook_and_an_inbox_and_nothing_is_lost() {
    let server = demo_server().await;
    let hook = hook().await;
    let smtp = crate::sinks::smtp_server("agent-mail").await;
    let dir = temp_dir("agent-sinks");
    let cfg = write_config(
        &dir,
        &server,
        &["healthy.example", "dangling.example", "noptr.example"],
        &sinks_toml(&hook, smtp.port),
    );

    // Run 1: everything is new.
    let first = run_with_hook(&cfg, &hook).await;
    assert_eq!(
        first.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let got = hook.events();
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got.iter().all(|(_, c, _, _)| c == "new"));

    // Run 2 after a change: exactly the new and the resolved findings, nothing ongoing.
    server
        .replace_zones(&changed_zones())
        .await
        .expect("replace");
    let second = run_with_hook(&cfg, &hook).await;
    // The high finding is resolved; what remains is medium: below --fail-on high.
    assert_eq!(
        second.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let got: Vec<_> = hook
        .events()
        .into_iter()
        .skip(3)
        .map(|(_, c, code, d)| (c, code, d))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "new".to_owned(),
                "dmarc.missing".to_owned(),
                "healthy.example".to_owned()
            ),
            (
                "resolved".to_owned(),
                "mx.target_unresolvable".to_owned(),
                "dangling.example".to_owned()
            ),
        ]
    );
    let inbox = mails(&smtp.maildir);
    assert_eq!(inbox.len(), 2, "one mail per run with changes");
    assert!(
        inbox
            .iter()
            .any(|m| m.contains("dmarc.missing") && m.contains("mx.target_unresolvable")),
        "{inbox:?}"
    );
    let reports: Vec<_> = std::fs::read_dir(dir.join("reports"))
        .expect("reports")
        .collect();
    assert_eq!(reports.len(), 2);

    // The receiver goes down; the problem comes back and is fixed again while it is
    // down; one run is killed with SIGKILL during delivery. Nothing is lost.
    hook.up.store(false, std::sync::atomic::Ordering::SeqCst);
    server
        .replace_zones(&mxaudit_testbed::demo::zones())
        .await
        .expect("replace");
    let third = run_with_hook(&cfg, &hook).await;
    assert_ne!(
        third.status.code(),
        Some(3),
        "a receiver that is down is not a permanent failure"
    );
    server
        .replace_zones(&changed_zones())
        .await
        .expect("replace");
    let mut killed = tokio::process::Command::new(env!("CARGO_BIN_EXE_mxaudit"))
        .args(["run", "--config", cfg.to_str().expect("utf8")])
        .env("MXAUDIT_TEST_HOOK", format!("http://{}/hook", hook.addr))
        .spawn()
        .expect("runs");
    // Wait until the run is recorded (its batch was spooled ahead of that), then
    // kill it: from then on nothing may be lost. (Killed earlier, the run is not
    // recorded and the next one computes the same changes again: at least once.)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let h = mxaudit(&[
            "history",
            "dangling.example",
            "--config",
            cfg.to_str().expect("utf8"),
            "--format",
            "json",
        ])
        .await;
        let v: Value = serde_json::from_slice(&h.stdout).unwrap_or(Value::Null);
        let complete = v["runs"]
            .as_array()
            .map(|r| r.iter().filter(|r| r["status"] == "complete").count())
            .unwrap_or(0);
        if complete >= 4 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the fourth run was never recorded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &killed.id().expect("pid").to_string()])
        .status();
    let _ = killed.wait().await;

    // Back up: the next run delivers what was pending first, in order, once each.
    hook.up.store(true, std::sync::atomic::Ordering::SeqCst);
    let fifth = run_with_hook(&cfg, &hook).await;
    assert!(
        matches!(fifth.status.code(), Some(0) | Some(1)),
        "{}",
        String::from_utf8_lossy(&fifth.stderr)
    );
    let all = hook.events();
    let after: Vec<(String, String)> = all
        .iter()
        .skip(5)
        .map(|(_, c, code, _)| (c.clone(), code.clone()))
        .collect();
    assert_eq!(
        after,
        vec![
            ("new".to_owned(), "mx.target_unresolvable".to_owned()),
            ("resolved".to_owned(), "dmarc.missing".to_owned()),
            ("new".to_owned(), "dmarc.missing".to_owned()),
            ("resolved".to_owned(), "mx.target_unresolvable".to_owned()),
        ],
        "the events of the runs made while the receiver was down, in order; the fifth run itself has no change"
    );
    let mut keys: Vec<String> = all.iter().map(|(k, ..)| k.clone()).collect();
    keys.dedup();
    let unique: std::collections::BTreeSet<_> = keys.iter().collect();
    assert_eq!(
        unique.len(),
        keys.len(),
        "each batch delivered once: {keys:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `domains_file` (and `run --domains-file`): the run audits the listed
/// domains besides [[domains]], once each, keeps their history, and reports a
/// bad line with file:line.
#[tokio::test(flavor = "multi_thread")]
async fn run_reads_a_domains_file() {
    let server = demo_server().await;
    let dir = temp_dir("agent-domains-file");
    std::fs::write(
        dir.join("customers.txt"),
        "# customers\nnoptr.example\nhealthy.example  # also in [[domains]]\nnot a domain!\ndangling.example\n",
    )
    .expect("list");
    let cfg = write_config(&dir, &server, &["healthy.example"], "");
    // The key is a root key: put it before the first table.
    let text = std::fs::read_to_string(&cfg).expect("config");
    std::fs::write(&cfg, format!("domains_file = \"customers.txt\"\n{text}")).expect("config");
    let cfg_s = cfg.to_str().expect("utf8");
    let out = mxaudit(&["run", "--config", cfg_s, "--format", "json"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("customers.txt:4:") && stderr.contains("(skipped)"),
        "{stderr}"
    );
    let got = events(&out);
    assert!(
        got.contains(&("new".into(), "ptr.missing".into(), "noptr.example".into())),
        "{got:?}"
    );
    assert!(
        got.contains(&(
            "new".into(),
            "mx.target_unresolvable".into(),
            "dangling.example".into()
        )),
        "{got:?}"
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        run_domains(&v),
        ["dangling.example", "healthy.example", "noptr.example"],
        "{v:#}"
    );
    // `--domains-file` replaces the configuration's file.
    std::fs::write(dir.join("other.txt"), "noptr.example\n").expect("list");
    let other = dir.join("other.txt");
    let out = mxaudit(&[
        "run",
        "--config",
        cfg_s,
        "--format",
        "json",
        "--domains-file",
        other.to_str().expect("utf8"),
    ])
    .await;
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(
        run_domains(&v),
        ["healthy.example", "noptr.example"],
        "{v:#}"
    );
    // dangling.example is no longer audited: its findings are not "resolved".
    assert!(
        !events(&out)
            .iter()
            .any(|(change, _, d)| change == "resolved" && d == "dangling.example"),
        "{:?}",
        events(&out)
    );
}

/// The domains of a run printed with `--format json`, sorted.
fn run_domains(v: &Value) -> Vec<String> {
    let mut domains: Vec<String> = v["domains"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|d| d.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    domains.sort();
    domains
}
