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
