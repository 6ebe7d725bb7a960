//! The real `mxaudit` binary: output formats, exit codes, bad input, plugins
//! and config commands, escaping of hostile record text.

use std::process::Output;

use mxaudit_testbed::{DnsServer, ZoneText};

use crate::support::demo_server;
use crate::support::mxaudit_run;

async fn mxaudit_async(args: Vec<String>) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_mxaudit"))
        .args(&args)
        .output()
        .await
        .expect("mxaudit runs")
}

fn audit_args(server: &DnsServer, rest: &[&str]) -> Vec<String> {
    let mut v = vec![
        "audit".to_owned(),
        "--nameserver".to_owned(),
        server.addr().to_string(),
        "--timeout".to_owned(),
        "500ms".to_owned(),
        "--attempts".to_owned(),
        "0".to_owned(),
        "--allow-target".to_owned(),
        "198.51.100.0/24".to_owned(),
        "--allow-target".to_owned(),
        "203.0.113.0/24".to_owned(),
        "--allow-target".to_owned(),
        "2001:db8::/32".to_owned(),
    ];
    v.extend(rest.iter().map(|s| s.to_string()));
    v
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn json_report_shape_and_exit_codes() {
    let server = demo_server().await;
    let out = mxaudit_async(audit_args(
        &server,
        &[
            "contoso.example",
            "healthy.example",
            "--profile",
            "microsoft365",
            "--format",
            "json",
        ],
    ))
    .await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "a high finding exits 1: {}",
        stderr(&out)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    for key in [
        "version",
        "started_at",
        "finished_at",
        "domains",
        "findings",
        "checks",
    ] {
        assert!(report.get(key).is_some(), "report has {key}");
    }
    assert_eq!(
        report["domains"],
        serde_json::json!(["contoso.example", "healthy.example"])
    );
    let findings = report["findings"].as_array().expect("array");
    let f = findings
        .iter()
        .find(|f| f["code"] == "mx.provider_not_preferred")
        .expect("finding");
    for key in [
        "code",
        "severity",
        "domain",
        "subject",
        "title",
        "detail",
        "evidence",
        "remediation",
        "references",
        "ndr",
        "plugin",
        "fingerprint",
    ] {
        assert!(f.get(key).is_some(), "finding has {key}");
    }
    assert_eq!(f["subject"], "backup.contoso.example");
    let checks = report["checks"].as_array().expect("array");
    assert!(
        checks
            .iter()
            .all(|c| ["pass", "fail", "error"].contains(&c["status"].as_str().unwrap_or("")))
    );
    assert!(
        checks
            .iter()
            .all(|c| c.get("duration_ms").is_some() && c.get("plugin").is_some())
    );

    let healthy = mxaudit_async(audit_args(
        &server,
        &["healthy.example", "--format", "jsonl"],
    ))
    .await;
    assert_eq!(healthy.status.code(), Some(0), "{}", stderr(&healthy));
    // One line per finding: healthy.example's only one is mta_sts.missing (the
    // offline world publishes no MTA-STS record).
    let out = String::from_utf8_lossy(&healthy.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(lines[0].contains("\"mta_sts.missing\""), "{out}");

    let medium = mxaudit_async(audit_args(
        &server,
        &["dangling.example", "--fail-on", "critical"],
    ))
    .await;
    assert_eq!(medium.status.code(), Some(0), "nothing critical");
}

#[tokio::test(flavor = "multi_thread")]
async fn jsonl_markdown_text_and_output_file() {
    let server = demo_server().await;
    let out = mxaudit_async(audit_args(
        &server,
        &[
            "dangling.example",
            "private.example",
            "--plugins",
            "mx,address,ptr,dmarc",
            "--format",
            "jsonl",
        ],
    ))
    .await;
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 4, "{lines:#?}");

    let md = mxaudit_async(audit_args(
        &server,
        &["dangling.example", "--format", "markdown"],
    ))
    .await;
    let md = String::from_utf8_lossy(&md.stdout);
    assert!(md.contains("## dangling\\.example"), "{md}");
    assert!(md.contains("`mx.target_unresolvable`"), "{md}");

    let dir = std::env::temp_dir().join(format!("mxaudit-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("report.txt");
    let out = mxaudit_async(audit_args(
        &server,
        &[
            "dangling.example",
            "--output",
            file.to_str().expect("utf8"),
            "--lang",
            "ja",
        ],
    ))
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let text = std::fs::read_to_string(&file).expect("report written");
    assert!(
        text.contains("== dangling.example") && text.contains("mx.target_unresolvable"),
        "{text}"
    );
    assert!(
        text.contains("Evidence:") && text.contains("mail.dangling.example"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_record_text_is_escaped() {
    let zone = ZoneText {
        origin: "evil.test.".to_owned(),
        text: "$ORIGIN evil.test.\n$TTL 300\n@ IN SOA ns1 h 1 3600 600 86400 60\n@ IN NS ns1\nns1 IN A 127.0.0.1\n@ IN A 198.51.100.10\n@ IN MX 10 mx1\nmx1 IN A 198.51.100.10\n_dmarc IN TXT \"v=DMARC1; p=\\027[2J\\027]0;pwned\\007<!channel> [x](http://evil)\"\n".to_owned(),
    };
    let server = DnsServer::start(&[zone]).await.expect("starts");
    for format in ["text", "markdown", "json"] {
        let out = mxaudit_async(audit_args(
            &server,
            &["evil.test", "--plugins", "dmarc", "--format", format],
        ))
        .await;
        assert!(!out.stdout.contains(&0x1b), "{format}: raw ESC in output");
        assert!(!out.stdout.contains(&0x07), "{format}: raw BEL in output");
        let s = String::from_utf8_lossy(&out.stdout);
        assert!(s.contains("dmarc.syntax"), "{format}: {s}");
        if format == "markdown" {
            assert!(!s.contains("<!channel>") && !s.contains("[x](http"), "{s}");
        }
    }
}

#[test]
fn bad_input_is_a_one_line_error_with_exit_2() {
    for (args, needle) in [
        (vec!["audit", "bad domain.example"], "invalid domain name"),
        (
            vec!["audit", "example.com", "--plugins", "nope"],
            "unknown plugin `nope`",
        ),
        (
            vec!["audit", "example.com", "--profile", "nope"],
            "unknown profile `nope`",
        ),
        (
            vec!["audit", "example.com", "--format", "xml"],
            "unknown format",
        ),
        (
            vec!["audit", "example.com", "--fail-on", "urgent"],
            "unknown severity",
        ),
        (
            vec!["audit", "example.com", "--lang", "fr"],
            "unknown language",
        ),
        (vec!["audit"], "no domain to audit"),
        (vec!["audit", &"a".repeat(64)], "1 to 63"),
    ] {
        let out = mxaudit_run(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn config_errors_name_file_line_and_key() {
    let dir = std::env::temp_dir().join(format!("mxaudit-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let cfg = dir.join("audit.toml");
    std::fs::write(
        &cfg,
        "language = \"en\"\n\n[resolver]\nnameservers = [\"127.0.0.1\"]\ntimeot = \"2s\"\n",
    )
    .expect("write");
    let out = mxaudit_run(&["config", "check", cfg.to_str().expect("utf8")]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("audit.toml:5:1:") && err.contains("timeot"),
        "{err}"
    );
    let out = mxaudit_run(&["audit", "--config", cfg.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(2));

    std::fs::write(&cfg, "[[domains]]\nname = \"ok.example\"\n").expect("write");
    let out = mxaudit_run(&["config", "check", cfg.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn plugins_list_and_check() {
    let out = mxaudit_run(&["plugins", "list"]);
    assert_eq!(out.status.code(), Some(0));
    let s = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "mx ",
        "engine=mx",
        "mx.provider_not_preferred",
        "dmarc.policy_none",
        "ptr.mismatch",
        "a.missing",
    ] {
        assert!(s.contains(needle), "{needle} in {s}");
    }

    let dir = std::env::temp_dir().join(format!("mxaudit-plugins-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let good =
        std::fs::read_to_string(crate::support::repo().join("plugins/address.toml")).expect("read");
    std::fs::write(
        dir.join("my-address.toml"),
        good.replacen("id = \"address\"", "id = \"my-address\"", 1),
    )
    .expect("write");
    let out = mxaudit_run(&["plugins", "check", dir.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // A complete manifest with one typo in [params].
    let mx = std::fs::read_to_string(crate::support::repo().join("plugins/mx.toml")).expect("read");
    let typo = mx.replacen("id = \"mx\"", "id = \"typo\"", 1).replacen(
        "# ttl_threshold = \"1h\"",
        "ttl_treshold = \"1h\"",
        1,
    );
    let typo_line = typo
        .lines()
        .position(|l| l.starts_with("ttl_treshold"))
        .expect("typo line")
        + 1;
    std::fs::write(dir.join("typo.toml"), &typo).expect("write");
    std::fs::write(
        dir.join("unknown-engine.toml"),
        "id = \"unknown-engine\"\nengine = \"nope\"\ndescription = \"x\"\n",
    )
    .expect("write");
    let out = mxaudit_run(&["plugins", "check", dir.to_str().expect("utf8")]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("typo.toml:{typo_line}:1:")) && err.contains("ttl_treshold"),
        "{err}"
    );
    assert!(
        err.contains("unknown-engine.toml:2:10:") && err.contains("unknown engine `nope`"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn demo_runs_offline() {
    let out = mxaudit_run(&["demo"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "mx.provider_not_preferred",
        "mx.target_unresolvable",
        "domain.nxdomain",
        "mx.lookup_failed",
        "== healthy.example — 1 info",
    ] {
        assert!(s.contains(needle), "demo shows {needle}:\n{s}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn spf_command_prints_the_result_and_the_tree() {
    let server = demo_server().await;
    let ns = server.addr().to_string();
    let json = mxaudit_async(vec![
        "spf".into(),
        "healthy.example".into(),
        "--ip".into(),
        "198.51.100.10".into(),
        "--nameserver".into(),
        ns.clone(),
        "--format".into(),
        "json".into(),
    ])
    .await;
    assert_eq!(json.status.code(), Some(0), "{}", stderr(&json));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(v["result"], "pass", "{v:#}");
    assert!(v["lookups"].as_u64().is_some_and(|n| n >= 1), "{v:#}");
    assert!(v.get("explanation").is_some());
    let fail = mxaudit_async(vec![
        "spf".into(),
        "healthy.example".into(),
        "--nameserver".into(),
        ns.clone(),
        "--format".into(),
        "json".into(),
    ])
    .await;
    let v: serde_json::Value = serde_json::from_slice(&fail.stdout).expect("json");
    assert_eq!(v["result"], "fail", "an unlisted address: {v:#}");
    let text = mxaudit_async(vec![
        "spf".into(),
        "sub.healthy.example".into(),
        "--nameserver".into(),
        ns,
    ])
    .await;
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("redirect=healthy.example") && text.contains("v=spf1 mx -all"),
        "{text}"
    );
}
