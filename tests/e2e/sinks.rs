//! The sinks against real receivers on loopback: an HTTP server (axum) that
//! records every request and answers scripted statuses, a real SMTP server
//! (Python aiosmtpd), the file system, and headless
//! Chromium for the HTML report (both installed by .ci/run; missing, the tests
//! fail, never skip). Covered: retries, Retry-After, the spool across
//! "processes", dead letters, exactly-once per idempotency key, escaping of
//! hostile DNS text in every format, and located configuration errors.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use hmac::{Hmac, Mac};
use mxaudit_core::config::Config;
use mxaudit_core::model::{CheckResult, CheckStatus, Finding, Severity};
use mxaudit_core::sink::{Batch, Change, Event, Sink, TrendPoint};
use mxaudit_sinks::{Outcome, RetryPolicy, SecretSource, Spool, build_sinks_with, deliver};
use sha2::Sha256;

use crate::support::repo;

// ---------------------------------------------------------------- fixtures

/// What a hostile DNS record or SMTP reply could carry against each format.
const HOSTILE: &str = "<!channel> <@U123> @here <!subteam^S1> <http://evil|click> [x](http://evil) \u{1b}[31mred\u{1b}[0m </script><script>alert(1)</script>";

/// The secret part of the webhook URL; it must never appear in a report.
const URL_TOKEN: &str = "T000-SECRET-TOKEN";

fn finding(code: &str, severity: Severity, subject: &str) -> Finding {
    Finding {
        code: code.into(),
        severity,
        domain: "example.com".into(),
        subject: subject.into(),
        title: format!("Title of {code}"),
        detail: format!("Detail of {code}."),
        evidence: vec![format!("evidence of {code}")],
        remediation: format!("Remediation of {code}."),
        references: vec!["RFC 7208".into()],
        ndr: vec!["550 5.7.1".into()],
        plugin: "test".into(),
        fingerprint: format!("fp-{code}-{subject}"),
    }
}

fn hostile() -> Finding {
    let mut f = finding("spf.hostile_record", Severity::High, "example.com");
    f.title = format!("SPF record says {HOSTILE}");
    f.evidence = vec![format!("v=spf1 {HOSTILE} -all")];
    f
}

fn batch(run: &str, sink: &str, events: Vec<Event>) -> Batch {
    Batch {
        history: true,
        key: format!("{run}/{sink}"),
        run_id: run.into(),
        schedule: Some("nightly".into()),
        started_at: "2026-11-24T10:00:00Z".into(),
        finished_at: "2026-11-24T10:00:04Z".into(),
        domains: vec!["example.com".into()],
        events,
        checks: vec![CheckResult {
            domain: "example.com".into(),
            plugin: "dmarc".into(),
            status: CheckStatus::Error,
            detail: Some("DNS timeout".into()),
            duration_ms: 2000,
        }],
        trend: vec![
            TrendPoint {
                run_id: "run-1".into(),
                started_at: "2026-11-22T10:00:00Z".into(),
                counts: [0, 2, 1, 0, 0],
            },
            TrendPoint {
                run_id: "run-2".into(),
                started_at: "2026-11-23T10:00:00Z".into(),
                counts: [0, 1, 1, 0, 0],
            },
        ],
    }
}

fn event(change: Change, f: Finding) -> Event {
    Event {
        change: Some(change),
        finding: f,
    }
}

fn hostile_batch(run: &str, sink: &str) -> Batch {
    batch(
        run,
        sink,
        vec![
            event(Change::New, hostile()),
            event(
                Change::Resolved,
                finding("dnsbl.listed", Severity::Critical, "198.51.100.25"),
            ),
        ],
    )
}

/// A fresh, empty folder for one test.
fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mxaudit-e2e-sinks-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Builds the sinks of a configuration text, with these environment variables.
fn build(text: &str, base: &Path, vars: &[(&str, &str)]) -> Vec<Arc<dyn Sink>> {
    let config = Config::parse("audit.toml", text).expect("stage 1 parses");
    build_sinks_with(
        &config,
        base,
        &SecretSource::from_vars(vars.iter().copied()),
    )
    .expect("sinks build")
}

fn build_err(text: &str, vars: &[(&str, &str)]) -> mxaudit_core::tomldoc::Located {
    let config = Config::parse("audit.toml", text).expect("stage 1 parses");
    build_sinks_with(
        &config,
        Path::new("."),
        &SecretSource::from_vars(vars.iter().copied()),
    )
    .err()
    .expect("build fails")
}

/// Retries in milliseconds, so the tests stay fast.
fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
    }
}

/// Every string in a JSON value, joined.
fn all_strings(v: &serde_json::Value) -> String {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::String(s) => out.push(s.clone()),
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            serde_json::Value::Object(o) => o.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, &mut out);
    out.join("\n")
}

// ---------------------------------------------------------------- HTTP receiver

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
    status: u16,
    at: Instant,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

/// A scripted answer: status and optional `Retry-After`.
#[derive(Debug, Clone, Copy)]
struct Reply(u16, Option<&'static str>);

#[derive(Default)]
struct ReceiverState {
    received: Mutex<Vec<Received>>,
    /// Answers to give, in order; 200 once empty.
    script: Mutex<VecDeque<Reply>>,
}

/// A real HTTP server on 127.0.0.1 that records requests.
struct Receiver {
    addr: SocketAddr,
    state: Arc<ReceiverState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

async fn record(
    State(state): State<Arc<ReceiverState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, HeaderMap, &'static str) {
    let Reply(status, retry_after) = state
        .script
        .lock()
        .expect("lock")
        .pop_front()
        .unwrap_or(Reply(200, None));
    state.received.lock().expect("lock").push(Received {
        path: uri.path().to_owned(),
        headers,
        body: body.to_vec(),
        status,
        at: Instant::now(),
    });
    let mut reply_headers = HeaderMap::new();
    // No keep-alive: a stopped receiver must look down to the next request.
    reply_headers.insert("connection", "close".parse().expect("header"));
    if let Some(after) = retry_after {
        reply_headers.insert("retry-after", after.parse().expect("header"));
    }
    (
        StatusCode::from_u16(status).expect("status"),
        reply_headers,
        if status == 400 {
            "invalid_payload"
        } else {
            "ok"
        },
    )
}

impl Receiver {
    async fn start() -> Receiver {
        Receiver::start_on("127.0.0.1:0".parse().expect("addr"), Arc::default()).await
    }

    /// Starts on `addr` (a fixed port, to come back after a stop), keeping `state`.
    async fn start_on(addr: SocketAddr, state: Arc<ReceiverState>) -> Receiver {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("receiver binds");
        let addr = listener.local_addr().expect("addr");
        let app = Router::new().fallback(record).with_state(state.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Receiver {
            addr,
            state,
            stop: Some(stop),
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/hook/{URL_TOKEN}", self.addr)
    }

    fn script(&self, replies: &[Reply]) {
        self.state
            .script
            .lock()
            .expect("lock")
            .extend(replies.iter().copied());
    }

    fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("lock").clone()
    }

    /// Stops listening; returns what a restart needs.
    async fn stop(mut self) -> (SocketAddr, Arc<ReceiverState>) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
        (self.addr, self.state.clone())
    }
}

fn webhook_config(format: &str, extra: &str) -> String {
    format!(
        "[sinks.hook]\ntype = \"webhook\"\nformat = \"{format}\"\nurl_env = \"HOOK_URL\"\ntimeout = \"2s\"\n{extra}"
    )
}

// ---------------------------------------------------------------- webhook payloads

#[tokio::test(flavor = "multi_thread")]
async fn slack_payload_is_block_kit_and_hostile_text_cannot_ping_or_link() {
    let rx = Receiver::start().await;
    let sinks = build(
        &webhook_config("slack", ""),
        Path::new("."),
        &[("HOOK_URL", &rx.url())],
    );
    let spool = Spool::new(temp_dir("slack"));
    let b = hostile_batch("run-1", "hook");
    let report = deliver(sinks[0].as_ref(), &b, &spool, &fast_policy()).await;
    assert_eq!((report.delivered, report.pending), (1, 0), "{report:?}");

    let got = rx.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, format!("/hook/{URL_TOKEN}"));
    assert_eq!(got[0].header("idempotency-key"), "run-1/hook");
    assert_eq!(got[0].header("content-type"), "application/json");
    let v = got[0].json();
    assert_eq!(v["blocks"][0]["type"], "header");
    assert_eq!(v["blocks"][0]["text"]["text"], "mxaudit: 1 new, 1 resolved");
    assert!(v["text"].as_str().is_some_and(|t| t.contains("1 new")));
    let first = v["blocks"][3]["text"]["text"]
        .as_str()
        .expect("a finding section");
    assert!(
        first.starts_with("*NEW* · *HIGH*") && first.contains("`spf.hostile_record`"),
        "{first}"
    );
    let text = all_strings(&v);
    for bad in [
        "<!channel>",
        "<@U123>",
        "@here",
        "<!subteam",
        "<http://evil|click>",
        "</script>",
        "\u{1b}",
    ] {
        assert!(!text.contains(bad), "{bad:?} reached Slack: {text}");
    }
    assert!(
        text.contains("&lt;http://evil|click&gt;"),
        "shown as text: {text}"
    );
    let _ = rx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn teams_payload_is_an_adaptive_card_and_hostile_text_is_inert() {
    let rx = Receiver::start().await;
    let sinks = build(
        &webhook_config("teams", "max_findings = 1\n"),
        Path::new("."),
        &[("HOOK_URL", &rx.url())],
    );
    let spool = Spool::new(temp_dir("teams"));
    let report = deliver(
        sinks[0].as_ref(),
        &hostile_batch("run-1", "hook"),
        &spool,
        &fast_policy(),
    )
    .await;
    assert_eq!(report.delivered, 1, "{report:?}");
    let v = rx.received()[0].json();
    assert_eq!(v["type"], "message");
    let card = &v["attachments"][0];
    assert_eq!(
        card["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(card["content"]["type"], "AdaptiveCard");
    let body = card["content"]["body"].as_array().expect("card body");
    assert_eq!(body[0]["text"], "mxaudit: 1 new, 1 resolved");
    assert!(
        body.iter().any(|b| b["text"]
            .as_str()
            .is_some_and(|t| t.contains("1 more finding"))),
        "max_findings = 1"
    );
    let text = all_strings(&v);
    for bad in [
        "[x](http://evil)",
        "<http://evil|click>",
        "</script>",
        "<!channel>",
        "\u{1b}",
    ] {
        assert!(!text.contains(bad), "{bad:?} reached Teams: {text}");
    }
    // Finding text only in TextRuns (rendered literally), never in Markdown TextBlocks.
    for b in body.iter().filter(|b| b["type"] == "TextBlock") {
        assert!(
            !b["text"].as_str().unwrap_or_default().contains("evil"),
            "{b}"
        );
    }
    let _ = rx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn generic_payload_is_the_batch_signed_with_hmac_sha256() {
    let rx = Receiver::start().await;
    let sinks = build(
        &webhook_config("generic", "secret_env = \"HOOK_SECRET\"\n"),
        Path::new("."),
        &[
            ("HOOK_URL", &rx.url()),
            ("HOOK_SECRET", "s3cr3t-signing-key"),
        ],
    );
    let spool = Spool::new(temp_dir("generic"));
    let b = hostile_batch("run-1", "hook");
    let report = deliver(sinks[0].as_ref(), &b, &spool, &fast_policy()).await;
    assert_eq!(report.delivered, 1, "{report:?}");
    let got = &rx.received()[0];
    // Recompute the signature over the exact body bytes.
    let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cr3t-signing-key").expect("hmac key");
    mac.update(&got.body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        got.header("x-mxaudit-signature"),
        format!("sha256={expected}")
    );
    assert_eq!(got.header("idempotency-key"), "run-1/hook");
    let v = got.json();
    assert_eq!(
        (v["version"].as_u64(), v["key"].as_str()),
        (Some(1), Some("run-1/hook"))
    );
    assert_eq!(v["summary"]["new"], 1);
    let events: Vec<Event> = serde_json::from_value(v["events"].clone()).expect("events");
    assert_eq!(
        events, b.events,
        "the generic format carries the findings unchanged"
    );
    let _ = rx.stop().await;
}

// ---------------------------------------------------------------- retries, spool, dead letters

#[tokio::test(flavor = "multi_thread")]
async fn status_429_waits_for_retry_after() {
    let rx = Receiver::start().await;
    rx.script(&[Reply(429, Some("1"))]);
    let sinks = build(
        &webhook_config("generic", ""),
        Path::new("."),
        &[("HOOK_URL", &rx.url())],
    );
    let spool = Spool::new(temp_dir("429"));
    let policy = RetryPolicy {
        attempts: 3,
        backoff: Duration::from_millis(10),
        max_backoff: Duration::from_secs(5),
    };
    let report = deliver(
        sinks[0].as_ref(),
        &batch("run-1", "hook", vec![]),
        &spool,
        &policy,
    )
    .await;
    assert_eq!((report.delivered, report.attempts), (1, 2), "{report:?}");
    let got = rx.received();
    let waited = got[1].at - got[0].at;
    // The backoff alone would be ≤ 10 ms; Retry-After said one second.
    assert!(
        waited >= Duration::from_millis(950) && waited < Duration::from_secs(3),
        "waited {waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn status_500_then_200_is_retried_without_spooling() {
    let rx = Receiver::start().await;
    rx.script(&[Reply(500, None), Reply(503, None)]);
    let sinks = build(
        &webhook_config("slack", ""),
        Path::new("."),
        &[("HOOK_URL", &rx.url())],
    );
    let dir = temp_dir("500");
    let spool = Spool::new(&dir);
    let report = deliver(
        sinks[0].as_ref(),
        &batch("run-1", "hook", vec![]),
        &spool,
        &fast_policy(),
    )
    .await;
    assert_eq!(
        (
            report.delivered,
            report.attempts,
            report.pending,
            report.spooled
        ),
        (1, 3, 0, 0),
        "{report:?}"
    );
    let statuses: Vec<u16> = rx.received().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 503, 200]);
    assert!(report.is_clean());
}

#[tokio::test(flavor = "multi_thread")]
async fn status_400_goes_to_the_dead_letter_folder_and_is_counted() {
    let rx = Receiver::start().await;
    rx.script(&[Reply(400, None)]);
    let sinks = build(
        &webhook_config("slack", ""),
        Path::new("."),
        &[("HOOK_URL", &rx.url())],
    );
    let spool = Spool::new(temp_dir("400"));
    let report = deliver(
        sinks[0].as_ref(),
        &hostile_batch("run-1", "hook"),
        &spool,
        &fast_policy(),
    )
    .await;
    assert_eq!(
        (
            report.delivered,
            report.dead_lettered,
            report.attempts,
            report.pending
        ),
        (0, 1, 1, 0),
        "{report:?}"
    );
    assert!(!report.is_clean());
    let Some(Outcome::DeadLettered { reason, path }) = report.current().map(|b| b.outcome.clone())
    else {
        panic!("dead-lettered: {report:?}")
    };
    assert!(
        reason.contains("400") && reason.contains("invalid_payload"),
        "{reason}"
    );
    assert!(
        !reason.contains(URL_TOKEN),
        "no secret in reasons: {reason}"
    );
    let dead: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("dead letter file")).expect("json");
    assert_eq!(dead["key"], "run-1/hook");
    assert_eq!(
        dead["batch"]["events"][0]["finding"]["code"],
        "spf.hostile_record"
    );
    assert_eq!(spool.dead_letters("hook").expect("list").len(), 1);
    let _ = rx.stop().await;
}

/// The receiver goes down mid-run and comes back: every batch arrives, in
/// order, exactly once per idempotency key — including a finding that
/// appeared and was resolved while it was down (both events, in order).
#[tokio::test(flavor = "multi_thread")]
async fn receiver_down_then_back_gets_spooled_batches_in_order_exactly_once() {
    let rx = Receiver::start().await;
    let url = rx.url();
    let sinks = build(
        &webhook_config("generic", ""),
        Path::new("."),
        &[("HOOK_URL", &url)],
    );
    let sink = sinks[0].as_ref();
    let spool = Spool::new(temp_dir("down"));
    let policy = fast_policy();
    let flapping = || finding("mx.target_unresolvable", Severity::High, "mx2.example.com");

    // Run 1 reaches the receiver.
    let r1 = deliver(
        sink,
        &batch(
            "run-1",
            "hook",
            vec![event(
                Change::New,
                finding("spf.none", Severity::Medium, "example.com"),
            )],
        ),
        &spool,
        &policy,
    )
    .await;
    assert_eq!(r1.delivered, 1, "{r1:?}");
    let (addr, state) = rx.stop().await;

    // Runs 2 and 3 while it is down: a finding appears, then is resolved.
    let r2 = deliver(
        sink,
        &batch("run-2", "hook", vec![event(Change::New, flapping())]),
        &spool,
        &policy,
    )
    .await;
    assert_eq!(
        (r2.delivered, r2.spooled, r2.pending, r2.attempts),
        (0, 1, 1, 3),
        "{r2:?}"
    );
    let reason = match &r2.current().expect("current").outcome {
        Outcome::Spooled { reason } => reason.clone(),
        other => panic!("spooled: {other:?}"),
    };
    assert!(
        reason.contains("connection") && !reason.contains(URL_TOKEN),
        "{reason}"
    );
    // Run 2 again (a retried run): not spooled twice.
    let again = deliver(
        sink,
        &batch("run-2", "hook", vec![event(Change::New, flapping())]),
        &spool,
        &policy,
    )
    .await;
    assert_eq!((again.spooled, again.pending), (0, 1), "{again:?}");
    let r3 = deliver(
        sink,
        &batch("run-3", "hook", vec![event(Change::Resolved, flapping())]),
        &spool,
        &policy,
    )
    .await;
    // Run 2 was tried (3 attempts) and is stuck, so run 3 waits behind it untried.
    assert_eq!(
        (r3.delivered, r3.spooled, r3.pending, r3.attempts),
        (0, 1, 2, 3),
        "{r3:?}"
    );

    // Back up: run 4 delivers 2, 3, then 4.
    let rx = Receiver::start_on(addr, state).await;
    let r4 = deliver(sink, &batch("run-4", "hook", vec![]), &spool, &policy).await;
    assert_eq!((r4.delivered, r4.pending, r4.spooled), (3, 0, 0), "{r4:?}");
    assert!(r4.is_clean());

    let accepted: Vec<Received> = rx
        .received()
        .into_iter()
        .filter(|r| r.status == 200)
        .collect();
    let keys: Vec<&str> = accepted
        .iter()
        .map(|r| r.header("idempotency-key"))
        .collect();
    assert_eq!(
        keys,
        ["run-1/hook", "run-2/hook", "run-3/hook", "run-4/hook"],
        "in order, exactly once each"
    );
    let changes: Vec<String> = accepted[1..3]
        .iter()
        .map(|r| {
            r.json()["events"][0]["change"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(
        changes,
        ["new", "resolved"],
        "both events of the flapping finding, in order"
    );
    let mut per_key: BTreeMap<String, usize> = BTreeMap::new();
    for r in rx.received() {
        *per_key
            .entry(r.header("idempotency-key").to_owned())
            .or_default() += 1;
    }
    assert!(per_key.values().all(|n| *n == 1), "{per_key:?}");
    let _ = rx.stop().await;
}

/// The spool is files: a batch spooled by one "process" (sink and spool built,
/// used and dropped) is delivered first by the next one.
#[tokio::test(flavor = "multi_thread")]
async fn spooled_batch_survives_the_process() {
    let dir = temp_dir("survives");
    let rx = Receiver::start().await;
    let (addr, state) = rx.stop().await;
    let url = format!("http://{addr}/hook/{URL_TOKEN}");
    {
        let sinks = build(
            &webhook_config("generic", ""),
            Path::new("."),
            &[("HOOK_URL", &url)],
        );
        let spool = Spool::new(&dir);
        let report = deliver(
            sinks[0].as_ref(),
            &hostile_batch("run-1", "hook"),
            &spool,
            &fast_policy(),
        )
        .await;
        assert_eq!(report.spooled, 1, "{report:?}");
    }
    let files: Vec<_> = std::fs::read_dir(dir.join("hook"))
        .expect("spool folder")
        .filter_map(|e| e.ok())
        .collect();
    assert_eq!(
        files.len(),
        1,
        "one JSON file per batch, no temporary file left"
    );

    let rx = Receiver::start_on(addr, state).await;
    let sinks = build(
        &webhook_config("generic", ""),
        Path::new("."),
        &[("HOOK_URL", &url)],
    );
    let spool = Spool::new(&dir);
    let report = deliver(
        sinks[0].as_ref(),
        &batch("run-2", "hook", vec![]),
        &spool,
        &fast_policy(),
    )
    .await;
    assert_eq!((report.delivered, report.pending), (2, 0), "{report:?}");
    assert!(report.batches[0].from_spool);
    let keys: Vec<String> = rx
        .received()
        .iter()
        .map(|r| r.header("idempotency-key").to_owned())
        .collect();
    assert_eq!(keys, ["run-1/hook", "run-2/hook"]);
    let _ = rx.stop().await;
}

// ---------------------------------------------------------------- email

/// A real SMTP server: aiosmtpd's Mailbox handler writing a Maildir. Killed on drop.
pub(crate) struct SmtpServer {
    child: Child,
    pub(crate) port: u16,
    pub(crate) maildir: PathBuf,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub(crate) async fn smtp_server(name: &str) -> SmtpServer {
    let maildir = temp_dir(name).join("Maildir");
    let port = free_port();
    let child = Command::new("python3")
        .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
        .arg(&maildir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start python3 for the SMTP test server ({e}); install python3 and `pip install aiosmtpd==1.4.6` (.ci/run does)"));
    let mut server = SmtpServer {
        child,
        port,
        maildir,
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = server.child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            panic!(
                "the SMTP test server exited ({status}): {err}\nInstall it with `pip install aiosmtpd==1.4.6` (.ci/run does)."
            );
        }
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return server;
        }
        assert!(
            Instant::now() < deadline,
            "aiosmtpd did not listen on 127.0.0.1:{port} within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn email_arrives_with_text_and_html_parts() {
    let smtp = smtp_server("email").await;
    let text = format!(
        "[sinks.mail]\ntype = \"email\"\nmin_severity = \"info\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
         from = \"mxaudit <mxaudit@example.com>\"\nto = [\"ops@example.com\", \"noc@example.org\"]\n\
         subject = \"[mxaudit] {{new}} new, {{resolved}} resolved, worst {{worst}}: {{domains}}\"\ntimeout = \"5s\"\n",
        smtp.port
    );
    let sinks = build(&text, Path::new("."), &[]);
    let spool = Spool::new(temp_dir("email-spool"));
    let report = deliver(
        sinks[0].as_ref(),
        &hostile_batch("run-1", "mail"),
        &spool,
        &fast_policy(),
    )
    .await;
    assert_eq!(report.delivered, 1, "{report:?}");

    let new_dir = smtp.maildir.join("new");
    let mut files = Vec::new();
    for _ in 0..100 {
        files = std::fs::read_dir(&new_dir)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        if !files.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(files.len(), 1, "one message in {}", new_dir.display());
    let raw = std::fs::read(&files[0]).expect("message");
    let msg = mail_parser::MessageParser::default()
        .parse(&raw)
        .expect("a MIME message");
    assert_eq!(
        msg.subject(),
        Some("[mxaudit] 1 new, 1 resolved, worst high: example.com")
    );
    assert!(
        msg.message_id()
            .is_some_and(|id| id.ends_with(".mxaudit@example.com")),
        "{:?}",
        msg.message_id()
    );
    let to: Vec<String> = msg
        .to()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.address())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(to, ["ops@example.com", "noc@example.org"]);
    let plain = msg.body_text(0).expect("a text/plain part");
    let html = msg.body_html(0).expect("a text/html part");
    assert!(
        plain.contains("[NEW] [HIGH] spf.hostile_record")
            && plain.contains("[RESOLVED] [CRITICAL] dnsbl.listed"),
        "{plain}"
    );
    assert!(
        !plain.contains('\u{1b}'),
        "no terminal escapes in the text part"
    );
    assert!(html.contains("Content-Security-Policy") && html.contains("spf.hostile_record"));
    assert!(
        html.contains("&lt;/script&gt;&lt;script&gt;")
            && !html.to_ascii_lowercase().contains("<script"),
        "{html}"
    );

    // The relay is down: the message is spooled, not lost.
    drop(smtp);
    let report = deliver(
        sinks[0].as_ref(),
        &batch("run-2", "mail", vec![]),
        &spool,
        &fast_policy(),
    )
    .await;
    assert_eq!(
        (report.delivered, report.spooled, report.pending),
        (0, 1, 1),
        "{report:?}"
    );
}

// ---------------------------------------------------------------- files

#[tokio::test(flavor = "multi_thread")]
async fn file_sink_writes_every_format_atomically() {
    let dir = temp_dir("files");
    let text = "[sinks.json]\ntype = \"file\"\nformat = \"json\"\npath = \"out/{date}-{run}.json\"\n\
                [sinks.lines]\ntype = \"file\"\nformat = \"jsonl\"\npath = \"out/events.jsonl\"\nmode = \"append\"\n\
                [sinks.md]\ntype = \"file\"\nformat = \"markdown\"\npath = \"out/report.md\"\n\
                [sinks.html]\ntype = \"file\"\nformat = \"html\"\npath = \"out/report-{date}.html\"\n";
    let sinks = build(text, &dir, &[]);
    let by_id = |id: &str| sinks.iter().find(|s| s.id() == id).expect("sink").clone();
    let spool = Spool::new(dir.join("spool"));
    let b1 = hostile_batch("run-1", "x");
    for s in &sinks {
        let report = deliver(s.as_ref(), &b1, &spool, &fast_policy()).await;
        assert_eq!(report.delivered, 1, "{report:?}");
    }
    let out = dir.join("out");
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .expect("out")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "2026-11-24-run-1.json",
            "events.jsonl",
            "report-2026-11-24.html",
            "report.md"
        ],
        "no temporary files left"
    );

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("2026-11-24-run-1.json")).expect("json"))
            .expect("valid JSON");
    assert_eq!(json["events"][0]["finding"]["code"], "spf.hostile_record");

    let md = std::fs::read_to_string(out.join("report.md")).expect("md");
    assert!(
        md.contains("### NEW · HIGH · `spf.hostile_record`")
            && !md.contains("<!channel>")
            && !md.contains("](http"),
        "{md}"
    );

    let html = std::fs::read_to_string(out.join("report-2026-11-24.html")).expect("html");
    assert!(html.contains("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"));
    assert!(
        !html.to_ascii_lowercase().contains("<script"),
        "no script element from data"
    );
    assert!(
        html.contains("&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;")
            && !html.contains('\u{1b}')
    );
    assert!(
        html.contains("id=\"trend\"")
            && html.contains("<svg")
            && html.contains("<td><code>run-2</code></td>"),
        "trend"
    );
    assert!(
        html.contains("badge new")
            && html.contains("badge resolved")
            && html.contains("Remediation of spf.hostile_record.")
    );

    // JSON Lines append: a redelivered batch is not appended twice; a new one is.
    let lines = by_id("lines");
    assert!(lines.send(&b1).await.is_ok());
    assert!(
        lines
            .send(&batch(
                "run-2",
                "x",
                vec![event(
                    Change::New,
                    finding("mx.none", Severity::High, "example.com")
                )]
            ))
            .await
            .is_ok()
    );
    let jsonl = std::fs::read_to_string(out.join("events.jsonl")).expect("jsonl");
    let batches: Vec<String> = jsonl
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("line")["batch"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(batches, ["run-1/x", "run-1/x", "run-2/x"]);
}

/// Runs headless Chromium (Debian's package, installed by .ci/run) with `args`.
async fn chromium(args: &[String]) -> std::process::Output {
    let run = tokio::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .args(args)
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(60), run).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => {
            panic!("cannot run chromium ({e}): install Debian's `chromium` package (.ci/run does)")
        }
        Err(_) => panic!("chromium did not finish within 60 s"),
    }
}

/// The text a reader sees: the DOM without styles and tags, entities decoded.
fn visible_text(dom: &str) -> String {
    let mut html = dom.to_owned();
    while let (Some(a), Some(b)) = (html.find("<style"), html.find("</style>")) {
        html.replace_range(a..b + "</style>".len(), "");
    }
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The HTML report in a real browser: the hostile record is text on the page,
/// not markup; no script element exists; the trend and the findings show.
#[tokio::test(flavor = "multi_thread")]
async fn html_report_renders_in_chromium() {
    let dir = temp_dir("chromium");
    let sinks = build(
        "[sinks.page]\ntype = \"file\"\nonly = \"all\"\nformat = \"html\"\npath = \"report.html\"\n",
        &dir,
        &[],
    );
    let spool = Spool::new(dir.join("spool"));
    let mut b = hostile_batch("run-3", "page");
    b.events.push(event(
        Change::Ongoing,
        finding("mx.ttl_high", Severity::Low, "example.com"),
    ));
    let report = deliver(sinks[0].as_ref(), &b, &spool, &fast_policy()).await;
    assert_eq!(report.delivered, 1, "{report:?}");
    let page = format!("file://{}", dir.join("report.html").display());
    let profile = format!("--user-data-dir={}", dir.join("profile").display());

    let out = chromium(&[profile.clone(), "--dump-dom".into(), page.clone()]).await;
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("Content-Security-Policy"), "{dom}");
    assert!(
        !dom.to_ascii_lowercase().contains("<script"),
        "the browser built no script element"
    );
    let text = visible_text(&dom);
    for shown in [
        "mxaudit report",
        "1 new 1 resolved 1 ongoing",
        "high 1 open finding(s)",
        "resolved 1 finding(s) gone since the previous run",
        "spf.hostile_record",
        "SPF record says <!channel> <@U123> @here",
        "</script><script>alert(1)</script>",
        "Remediation of spf.hostile_record.",
        "Trend",
        "run-2",
        "Check dmarc could not decide: DNS timeout",
    ] {
        assert!(text.contains(shown), "{shown:?} is not on the page: {text}");
    }

    let png = dir.join("report.png");
    let out = chromium(&[
        profile,
        "--window-size=1200,1800".into(),
        format!("--screenshot={}", png.display()),
        page,
    ])
    .await;
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&png).expect("a screenshot");
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
        "{} bytes",
        bytes.len()
    );
}

// ---------------------------------------------------------------- configuration

#[test]
fn unknown_key_in_a_sink_is_located() {
    let text = "language = \"en\"\n\n[sinks.alerts]\ntype = \"webhook\"\nformat = \"slack\"\nurl_env = \"HOOK_URL\"\ntimeot = \"5s\"\n";
    let err = build_err(text, &[("HOOK_URL", "https://hooks.example/x")]);
    assert_eq!(
        (err.path.as_str(), err.line, err.column),
        ("audit.toml", 7, 1),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("audit.toml:7:1: sinks.alerts: unknown field `timeot`"),
        "{err}"
    );
    let err = build_err(
        "[sinks.r]\ntype = \"file\"\nformat = \"pdf\"\npath = \"r.pdf\"\n",
        &[],
    );
    assert_eq!(err.line, 3, "{err}");
    let err = build_err(
        "[sinks.r]\ntype = \"file\"\nformat = \"html\"\npath = \"r-{dat}.html\"\n",
        &[],
    );
    assert!(
        err.to_string()
            .starts_with("audit.toml:4:8: sinks.r.path: unknown placeholder `{dat}`"),
        "{err}"
    );
}

#[test]
fn secrets_missing_or_bad_are_clear_errors_without_the_value() {
    let text = webhook_config("slack", "");
    let err = build_err(&text, &[]);
    assert_eq!(err.line, 4, "{err}");
    assert!(
        err.message.contains("sinks.hook.url_env") && err.message.contains("`HOOK_URL` is not set"),
        "{err}"
    );

    let secret_value = format!("not a url {URL_TOKEN}");
    let err = build_err(&text, &[("HOOK_URL", &secret_value)]);
    assert!(
        err.message.contains("url_env") && !err.message.contains(URL_TOKEN),
        "{err}"
    );

    let err = build_err(
        &webhook_config("slack", "secret_env = \"S\"\n"),
        &[("HOOK_URL", "https://h.example/x"), ("S", "k")],
    );
    assert!(
        err.message.contains("secret_env") && err.message.contains("generic"),
        "{err}"
    );

    let err = build_err(
        "[sinks.m]\ntype = \"email\"\nhost = \"h\"\ntls = \"none\"\nusername_env = \"U\"\npassword_env = \"P\"\nfrom = \"a@example.com\"\nto = [\"b@example.com\"]\n",
        &[("U", "user"), ("P", "hunter2")],
    );
    assert!(
        err.message.contains("in clear") && !err.message.contains("hunter2"),
        "{err}"
    );
}

/// audit.toml shows every sink key (commented out with a single `#`, because
/// the second stage is not part of the core's own drift test): the blocks
/// build when uncommented, name every key of every type, and an unknown key in
/// any of them is a located error.
#[test]
fn audit_toml_sink_blocks_build_and_show_every_key() {
    let example = std::fs::read_to_string(repo().join("audit.toml")).expect("audit.toml");
    let dir = temp_dir("audit-toml");
    // Only the sink blocks: `#[sinks.…]` up to the next blank line.
    let mut blocks = Vec::new();
    let mut inside = false;
    for line in example.lines() {
        if line.starts_with("#[sinks.") {
            inside = true;
        } else if line.trim().is_empty() {
            inside = false;
        }
        if inside && line.starts_with('#') && !line.starts_with("##") {
            blocks.push(line[1..].to_owned());
        }
    }
    assert!(
        !blocks.is_empty(),
        "audit.toml has commented [sinks.*] blocks"
    );
    let text = blocks.join("\n");
    // Secrets the examples name, from "files" and "variables".
    let mut vars = Vec::new();
    for line in &blocks {
        let Some((key, value)) = line.split_once(" = ") else {
            continue;
        };
        let value = value.trim_matches('"');
        if key.ends_with("_file") {
            let path = dir.join(value);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(
                &path,
                if key.starts_with("url") {
                    "https://hooks.example/from-file\n"
                } else {
                    "from-file\n"
                },
            )
            .expect("secret file");
        } else if key.ends_with("_env") {
            vars.push((
                value.to_owned(),
                if key.starts_with("url") {
                    "https://hooks.example/x".to_owned()
                } else {
                    "value".to_owned()
                },
            ));
        }
    }
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let sinks = build(&text, &dir, &vars);
    let config = Config::parse("audit.toml", &text).expect("parses");
    assert_eq!(sinks.len(), config.sinks.len());
    for entry in mxaudit_sinks::SINKS {
        assert!(
            config.sinks.iter().any(|s| s.kind == entry.kind),
            "no example of type `{}`",
            entry.kind
        );
        for key in entry
            .keys
            .iter()
            .chain(mxaudit_core::config::SINK_COMMON_KEYS)
        {
            let shown = config
                .sinks
                .iter()
                .filter(|s| s.kind == entry.kind)
                .any(|s| {
                    sink_block(&text, &s.id)
                        .lines()
                        .any(|l| l.starts_with(&format!("{key} = ")))
                });
            assert!(
                shown,
                "key `{key}` of sink type `{}` is not shown in audit.toml",
                entry.kind
            );
        }
    }
    // An unknown key after each header is an error at that line.
    let lines: Vec<&str> = text.lines().collect();
    for (i, _) in lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("[sinks."))
    {
        let mut mutated = lines.clone();
        mutated.insert(i + 1, "zz_unknown_key = 1");
        let config =
            Config::parse("audit.toml", &mutated.join("\n")).expect("stage 1 ignores type keys");
        let err = build_sinks_with(
            &config,
            &dir,
            &SecretSource::from_vars(vars.iter().copied()),
        )
        .err()
        .expect("unknown key rejected");
        assert!(
            err.message.contains("zz_unknown_key") && err.line == i + 2,
            "{err}"
        );
    }
}

/// The lines of one `[sinks.<id>]` table of a text.
fn sink_block(text: &str, id: &str) -> String {
    let header = format!("[sinks.{id}]");
    text.lines()
        .skip_while(|l| *l != header)
        .skip(1)
        .take_while(|l| !l.starts_with('['))
        .collect::<Vec<_>>()
        .join("\n")
}
