//! `mxaudit preflight`: each checklist line against testbed worlds where it
//! occurs, the verdict and the exit status.

use serde_json::Value;

use mxaudit_testbed::DnsServer;

use crate::support::{dns_server, fixture};

async fn preflight(server: &DnsServer, args: &[&str]) -> (i32, Value) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_mxaudit"))
        .arg("preflight")
        .args(args)
        .args([
            "--to",
            "microsoft365",
            "--format",
            "json",
            "--nameserver",
            &server.addr().to_string(),
        ])
        .args(["--timeout", "500ms", "--attempts", "0"])
        .args([
            "--allow-target",
            "198.51.100.0/24",
            "--allow-target",
            "203.0.113.0/24",
        ])
        // These worlds' smart hosts are documentation addresses: never probe them
        // (only the loopback test allows 127.0.0.0/8 and probes).
        .args(if args.contains(&"127.0.0.0/8") {
            &[][..]
        } else {
            &["--dns-only"][..]
        })
        .output()
        .await
        .expect("runs");
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap_or(-1), v)
}

fn lines(v: &Value) -> Vec<(String, String)> {
    v["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| {
            (
                l["status"].as_str().unwrap_or("").to_owned(),
                l["code"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn has(v: &Value, status: &str, code: &str) -> bool {
    lines(v).contains(&(status.to_owned(), code.to_owned()))
}

#[tokio::test(flavor = "multi_thread")]
async fn checklist_lines_and_verdicts() {
    let server = dns_server(&fixture("zones/preflight")).await;

    let (code, v) = preflight(&server, &["ready.test", "--smart-host", "mail.ready.test"]).await;
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["verdict"], "GO");
    for (status, line) in [
        ("OK", "preflight.mx_current"),
        ("OK", "preflight.propagation"),
        ("OK", "preflight.target_ready"),
        ("OK", "preflight.mx_change"),
        ("WARN", "preflight.spf_change"),
        ("OK", "preflight.dmarc_ok"),
        ("OK", "preflight.a_ok"),
        ("OK", "preflight.smarthost_ok"),
        ("OK", "preflight.smarthost_not_listed"),
    ] {
        assert!(has(&v, status, line), "{status} {line} in {:?}", lines(&v));
    }
    // The blocklist line counts the lists asked: the six enabled built-in IP
    // lists (the DBL lists domains, Barracuda is off by default).
    let clean = v["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .find(|l| l["code"] == "preflight.smarthost_not_listed")
        .expect("blocklist line");
    assert!(
        clean["title"]
            .as_str()
            .is_some_and(|t| t.contains("none of 6 blocklists")),
        "{clean:#}"
    );
    let spf = v["lines"]
        .as_array()
        .expect("a")
        .iter()
        .find(|l| l["code"] == "preflight.spf_change")
        .expect("spf");
    assert!(
        spf["detail"]
            .as_str()
            .expect("d")
            .contains("v=spf1 ip4:198.51.100.5 include:spf.protection.outlook.com -all"),
        "{spf:#}"
    );
    let change = v["lines"]
        .as_array()
        .expect("a")
        .iter()
        .find(|l| l["code"] == "preflight.mx_change")
        .expect("mx");
    assert!(
        change["title"]
            .as_str()
            .expect("t")
            .contains("ready-test.mail.protection.outlook.com"),
        "{change:#}"
    );
    assert!(
        change["title"]
            .as_str()
            .expect("t")
            .contains("mail.ready.test"),
        "{change:#}"
    );

    let (code, v) = preflight(&server, &["done.test"]).await;
    assert_eq!(code, 0);
    assert!(
        has(&v, "OK", "preflight.spf_ready") && v["warnings"] == 0,
        "{:?}",
        lines(&v)
    );

    let (code, v) = preflight(&server, &["notprovisioned.test"]).await;
    assert_eq!(code, 1);
    assert_eq!(v["verdict"], "NO-GO");
    assert!(
        has(&v, "BLOCKER", "preflight.target_unresolvable"),
        "{:?}",
        lines(&v)
    );
    assert!(has(&v, "WARN", "preflight.dmarc_missing") && has(&v, "WARN", "preflight.spf_change"));

    let (code, v) = preflight(&server, &["bypass.test"]).await;
    assert_eq!(code, 1);
    let bypass: Vec<_> = v["lines"]
        .as_array()
        .expect("a")
        .iter()
        .filter(|l| l["code"] == "preflight.bypass_host")
        .collect();
    assert_eq!(bypass.len(), 1);
    assert_eq!(bypass[0]["subject"], "backup.bypass.test");

    let (_, v) = preflight(&server, &["slow.test"]).await;
    assert!(
        has(&v, "WARN", "preflight.propagation_slow") && has(&v, "WARN", "preflight.a_missing"),
        "{:?}",
        lines(&v)
    );
    let slow = v["lines"]
        .as_array()
        .expect("a")
        .iter()
        .find(|l| l["code"] == "preflight.propagation_slow")
        .expect("slow");
    assert!(
        slow["title"].as_str().expect("t").contains("2days"),
        "{slow:#}"
    );

    let (code, v) = preflight(
        &server,
        &["ready.test", "--smart-host", "nowhere.ready.test"],
    )
    .await;
    assert_eq!(code, 1);
    let line = v["lines"]
        .as_array()
        .expect("a")
        .iter()
        .find(|l| l["code"] == "preflight.smarthost_unresolvable")
        .expect("line");
    assert_eq!(line["status"], "BLOCKER");
    assert_eq!(
        line["ndr"],
        serde_json::json!(["450 4.4.312 DNS query failed"])
    );

    let (code, v) = preflight(
        &server,
        &["ready.test", "--smart-host", "private-smarthost.test"],
    )
    .await;
    assert_eq!(code, 1);
    assert!(
        has(&v, "BLOCKER", "preflight.smarthost_private"),
        "{:?}",
        lines(&v)
    );

    // The path back: a smart host on a blocklist (Spamhaus PBL) is a BLOCKER
    // with the list's own text and meaning; DNS only, so also with --dns-only.
    let (code, v) = preflight(
        &server,
        &["ready.test", "--smart-host", "listed-smarthost.test"],
    )
    .await;
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(v["verdict"], "NO-GO");
    let listed: Vec<&Value> = v["lines"]
        .as_array()
        .expect("a")
        .iter()
        .filter(|l| l["code"] == "dnsbl.listed")
        .collect();
    assert_eq!(listed.len(), 1, "{:?}", lines(&v));
    assert_eq!(listed[0]["status"], "BLOCKER");
    assert_eq!(listed[0]["subject"], "203.0.113.68 (zen.spamhaus.org)");
    assert!(
        listed[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("smart host listed-smarthost.test") && d.contains("PBL")),
        "{:#}",
        listed[0]
    );
    assert!(
        !has(&v, "OK", "preflight.smarthost_not_listed"),
        "{:?}",
        lines(&v)
    );
    // Turned off in the configuration: no blocklist line at all.
    let dir = std::env::temp_dir().join(format!("mxaudit-preflight-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("audit.toml");
    std::fs::write(
        &config,
        "[plugins]\ndisable = [\"dnsbl-spamhaus-zen\", \"dnsbl-spamhaus-dbl\", \"dnsbl-spamcop\", \"backscatterer\", \"dnsbl-uceprotect-1\", \"dnsbl-psbl\", \"dnsbl-mailspike\"]\n",
    )
    .expect("config");
    let (code, v) = preflight(
        &server,
        &[
            "ready.test",
            "--smart-host",
            "listed-smarthost.test",
            "--config",
            config.to_str().expect("utf-8"),
        ],
    )
    .await;
    assert_eq!(code, 0, "{v:#}");
    assert!(
        !lines(&v)
            .iter()
            .any(|(_, c)| c.starts_with("dnsbl.") || c == "preflight.smarthost_not_listed"),
        "{:?}",
        lines(&v)
    );

    let (code, v) = preflight(&server, &["broken.test"]).await;
    assert_eq!(code, 1);
    assert!(
        has(&v, "BLOCKER", "preflight.lookup_failed"),
        "{:?}",
        lines(&v)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn text_and_markdown_checklists() {
    let server = dns_server(&fixture("zones/preflight")).await;
    for (format, needle) in [("text", "BLOCKER  "), ("markdown", "| BLOCKER |")] {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_mxaudit"))
            .args([
                "preflight",
                "bypass.test",
                "--to",
                "microsoft365",
                "--format",
                format,
                "--lang",
                "ja",
            ])
            .args([
                "--nameserver",
                &server.addr().to_string(),
                "--allow-target",
                "198.51.100.0/24",
                "--allow-target",
                "203.0.113.0/24",
            ])
            .output()
            .await
            .expect("runs");
        let s = String::from_utf8_lossy(&out.stdout);
        assert!(
            s.contains(needle) && s.contains("Verdict: NO-GO"),
            "{format}: {s}"
        );
        assert!(s.contains("迂回"), "{format}: Japanese text: {s}");
    }
    let out = crate::support::mxaudit_run(&["preflight", "x.test", "--to", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown profile `nope`"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_path_back_is_probed_like_the_connector_will() {
    use mxaudit_testbed::smtp::{SmtpScript, SmtpServer};
    let server = dns_server(&fixture("zones/preflight")).await;
    // A closed relay without STARTTLS: WARN (a connector that requires TLS fails with 4.4.317).
    let smtp = SmtpServer::start(
        std::net::SocketAddr::from(([127, 77, 0, 71], 0)),
        SmtpScript::new("closed-smarthost.test")
            .rcpt("postmaster@ready.test", "250 2.1.5 Ok")
            .rcpt_default("550 5.7.1 Relaying denied"),
    )
    .await
    .expect("smtp server");
    let host = format!("closed-smarthost.test:{}", smtp.port());
    let (code, v) = preflight(
        &server,
        &[
            "ready.test",
            "--smart-host",
            &host,
            "--allow-target",
            "127.0.0.0/8",
        ],
    )
    .await;
    assert!(has(&v, "OK", "preflight.smarthost_ok"), "{:?}", lines(&v));
    assert!(has(&v, "WARN", "smtp.starttls_missing"), "{:?}", lines(&v));
    assert!(
        !lines(&v).iter().any(|(_, c)| c == "smtp.open_relay"),
        "{:?}",
        lines(&v)
    );
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(smtp.data_attempts(), 0);
    // Nothing listens: the connector would fail with 4.4.316, a BLOCKER.
    let (code, v) = preflight(
        &server,
        &[
            "ready.test",
            "--smart-host",
            &format!("down-smarthost.test:{}", smtp.port()),
            "--allow-target",
            "127.0.0.0/8",
        ],
    )
    .await;
    assert_eq!(code, 1);
    let refused = v["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .find(|l| l["code"] == "smtp.connection_refused")
        .expect("line");
    assert_eq!(refused["status"], "BLOCKER");
    assert!(
        refused["ndr"]
            .as_array()
            .expect("ndr")
            .iter()
            .any(|n| n.as_str().is_some_and(|s| s.contains("4.4.316"))),
        "{refused:#}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn spf_lookup_count_after_the_change() {
    let server = dns_server(&fixture("zones/preflight")).await;
    let (_, v) = preflight(&server, &["ready.test"]).await;
    let line = v["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .find(|l| l["code"] == "preflight.spf_change")
        .expect("line");
    assert!(
        line["detail"]
            .as_str()
            .expect("detail")
            .contains("DNS lookups; the limit is 10"),
        "{line:#}"
    );
    let (code, v) = preflight(&server, &["heavy.test"]).await;
    assert_eq!(code, 1);
    let line = v["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .find(|l| l["code"] == "preflight.spf_over_limit")
        .expect("line");
    assert_eq!(line["status"], "BLOCKER");
    assert!(
        line["title"]
            .as_str()
            .expect("title")
            .contains("takes SPF to 11 DNS lookups"),
        "{line:#}"
    );
}

/// An MTA-STS policy the domain already publishes must allow the provider's
/// host before the switch: in enforce mode it is a BLOCKER (senders would
/// refuse the new MX), in testing mode a WARN, already listed an OK line; a
/// policy that cannot be read is a WARN (senders may hold a cached one).
/// The policies come from the testbed's HTTPS server; the preflight manifest
/// is overridden to give its port and the test CA.
#[tokio::test(flavor = "multi_thread")]
async fn mta_sts_policy_must_allow_the_provider_before_the_switch() {
    use mxaudit_testbed::certs::{TestCa, Validity};
    use mxaudit_testbed::policy::{Behaviour, PolicyServer, PolicySite};

    let server = dns_server(&fixture("zones/preflight")).await;
    let ca = TestCa::new("mxaudit preflight test CA").expect("CA");
    let site = |label: &str, body: &str| {
        let host = format!("mta-sts.{label}.test");
        PolicySite::new(
            &host,
            ca.issue(&[&host], Validity::Current).expect("cert"),
            Behaviour::Policy(body.to_owned()),
        )
    };
    let policies = PolicyServer::start(
        "127.78.0.31:0".parse().expect("addr"),
        vec![
            site(
                "stsblock",
                "version: STSv1\nmode: enforce\nmx: mail.ready.test\nmax_age: 1209600\n",
            ),
            site(
                "ststesting",
                "version: STSv1\nmode: testing\nmx: mail.ready.test\nmax_age: 86400\n",
            ),
            site(
                "stsready",
                "version: STSv1\nmode: enforce\nmx: mail.ready.test\nmx: *.mail.protection.outlook.com\nmax_age: 1209600\n",
            ),
        ],
    )
    .await
    .expect("policy server starts");
    let dir = std::env::temp_dir().join(format!("mxaudit-preflight-sts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("plugins")).expect("dir");
    ca.write_pem(&dir.join("ca.pem")).expect("CA file");
    let (_, source) = mxaudit_checks::BUILTIN_MANIFESTS
        .iter()
        .find(|(path, _)| path.ends_with("/preflight.toml"))
        .expect("built-in manifest");
    let mut doc: toml::Table = toml::from_str(source).expect("parses");
    doc.insert("override".into(), toml::Value::Boolean(true));
    doc.insert(
        "params".into(),
        toml::Value::Table(
            toml::from_str(&format!(
                "[mta_sts]\nport = {}\ntimeout = \"2s\"\nca_files = [\"../ca.pem\"]\n",
                policies.port()
            ))
            .expect("params"),
        ),
    );
    std::fs::write(
        dir.join("plugins/preflight.toml"),
        toml::to_string(&doc).expect("toml"),
    )
    .expect("manifest");
    std::fs::write(dir.join("audit.toml"), "plugin_dirs = [\"plugins\"]\n").expect("config");
    let config = dir.join("audit.toml");
    let config = config.to_str().expect("utf-8");
    let run = |domain: &'static str| {
        let server = &server;
        async move {
            preflight(
                server,
                &[domain, "--config", config, "--allow-target", "127.0.0.0/8"],
            )
            .await
        }
    };
    let line = |v: &Value, code: &str| -> Value {
        v["lines"]
            .as_array()
            .expect("lines")
            .iter()
            .find(|l| l["code"] == code)
            .cloned()
            .unwrap_or_else(|| panic!("{code} in {:?}", lines(v)))
    };

    let (code, v) = run("stsblock.test").await;
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(v["verdict"], "NO-GO");
    assert_eq!(
        v["blockers"],
        1,
        "the policy is the only blocker: {:?}",
        lines(&v)
    );
    let blocker = line(&v, "preflight.mta_sts_blocks_move");
    assert_eq!(blocker["status"], "BLOCKER");
    assert_eq!(blocker["subject"], "mta-sts.stsblock.test");
    assert!(
        blocker["title"]
            .as_str()
            .expect("title")
            .contains("stsblock-test.mail.protection.outlook.com"),
        "{blocker:#}"
    );
    assert!(
        blocker["remediation"]
            .as_str()
            .expect("remediation")
            .contains("mx: *.mail.protection.outlook.com"),
        "{blocker:#}"
    );

    let (code, v) = run("ststesting.test").await;
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(line(&v, "preflight.mta_sts_update")["status"], "WARN");

    let (code, v) = run("stsready.test").await;
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(line(&v, "preflight.mta_sts_ready")["status"], "OK");

    let (_, v) = run("stsdown.test").await;
    let down = line(&v, "preflight.mta_sts_unreadable");
    assert_eq!(down["status"], "WARN");
    assert!(
        down["detail"]
            .as_str()
            .expect("detail")
            .contains("connection refused"),
        "{down:#}"
    );

    // A domain without an MTA-STS record gets no MTA-STS line and no fetch.
    let (_, v) = run("ready.test").await;
    assert!(
        !lines(&v)
            .iter()
            .any(|(_, c)| c.starts_with("preflight.mta_sts")),
        "{:?}",
        lines(&v)
    );
    assert_eq!(policies.requests().len(), 3, "{:?}", policies.requests());
    let _ = std::fs::remove_dir_all(&dir);
}

/// RFC 7672 §2.2: TLSA records belong to MX hosts; the records of a host the
/// move retires stop applying, and the checklist says so (a warning, not a
/// blocker). A domain without TLSA records gets no such line.
#[tokio::test(flavor = "multi_thread")]
async fn tlsa_records_of_the_replaced_mx_are_named() {
    let server = dns_server(&fixture("zones/preflight")).await;
    let (code, v) = preflight(&server, &["dane.test"]).await;
    assert_eq!(code, 0, "{v:#}");
    assert!(
        has(&v, "WARN", "preflight.dane_tlsa_present"),
        "{:?}",
        lines(&v)
    );
    let line = v["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .find(|l| l["code"] == "preflight.dane_tlsa_present")
        .expect("dane line");
    assert!(
        line["title"]
            .as_str()
            .is_some_and(|t| t.contains("mx.dane.test")
                && t.contains("dane-test.mail.protection.outlook.com")),
        "{line:#}"
    );
    assert!(
        line["evidence"]
            .to_string()
            .contains("_25._tcp.mx.dane.test"),
        "{line:#}"
    );

    let (_, v) = preflight(&server, &["ready.test"]).await;
    assert!(
        !lines(&v)
            .iter()
            .any(|(_, c)| c == "preflight.dane_tlsa_present"),
        "{:?}",
        lines(&v)
    );
}
