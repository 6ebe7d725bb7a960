//! `mxaudit explain`: DSNs and NDR texts from tests/fixtures/dsn, malformed
//! input, the user code table, and `--audit` against the testbed.

use serde_json::Value;

use crate::support::{demo_server, fixture, mxaudit_run};

fn explain_json(file: &str) -> Value {
    let path = fixture(&format!("dsn/{file}"));
    let out = mxaudit_run(&["explain", path.to_str().expect("utf8"), "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{file}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn recipient<'a>(v: &'a Value, address: &str) -> &'a Value {
    v["explained"]
        .as_array()
        .expect("array")
        .iter()
        .find(|r| r["recipient"] == address)
        .expect("recipient")
}

#[test]
fn postfix_dsn_with_a_blocklist_rejection_and_a_delay() {
    let v = explain_json("postfix-blocklist.eml");
    assert_eq!(v["kind"], "dsn");
    assert_eq!(v["reporting_mta"], "mx.example.net");
    assert_eq!(v["sender_domain"], "sender.example");
    let bob = recipient(&v, "bob@recipient.example");
    assert_eq!(bob["status"], "5.7.1");
    assert_eq!(bob["action"], "failed");
    assert_eq!(bob["remote_mta"], "mail.recipient.example");
    assert_eq!(bob["reply_code"], 550);
    assert!(
        bob["diagnostic"]
            .as_str()
            .expect("text")
            .contains("blocked using zen.spamhaus.org"),
        "folded line unfolded"
    );
    assert_eq!(bob["explanation"]["kind"], "permanent");
    assert_eq!(bob["explanation"]["acts"], "sender_admin");
    assert_eq!(bob["explanation"]["audit"], "sender");
    assert!(
        bob["explanation"]["checks"]
            .as_array()
            .expect("a")
            .iter()
            .any(|c| c == "dnsbl-spamhaus-zen")
    );
    let carol = recipient(&v, "carol@recipient.example");
    assert_eq!(carol["status"], "4.4.7");
    assert_eq!(carol["explanation"]["kind"], "transient");
    assert!(
        v["original"]["received_spf"][0]
            .as_str()
            .expect("spf")
            .starts_with("pass")
    );
}

#[test]
fn exchange_online_dsn_spf_fail() {
    let v = explain_json("exchange-spf-fail.eml");
    assert_eq!(
        v["reporting_mta"],
        "AM0PR01MB1234.eurprd01.prod.outlook.com"
    );
    let joe = recipient(&v, "joe@partner.example");
    assert_eq!(joe["status"], "5.7.23");
    assert_eq!(joe["explanation"]["checks"], serde_json::json!(["spf"]));
    assert_eq!(v["sender_domain"], "sender.example");
    assert!(
        v["original"]["received_spf"][0]
            .as_str()
            .expect("spf")
            .starts_with("Fail")
    );
}

#[test]
fn pasted_exchange_ndr_from_seed_004() {
    let v = explain_json("seed004-exchange-ndr.txt");
    assert_eq!(v["kind"], "text");
    assert_eq!(v["reporting_mta"], "bigfish.com");
    let joe = recipient(&v, "joepremise@contoso.com");
    assert_eq!(joe["status"], "5.7.1");
    assert_eq!(joe["reply_code"], 530);
    assert_eq!(joe["remote_mta"], "mail.contoso.com");
    assert_eq!(joe["diagnostic"], "530 5.7.1 Client was not authenticated");
    assert_eq!(joe["explanation"]["acts"], "recipient_admin");
    assert_eq!(v["sender_domain"], "contoso.onmicrosoft.com");
}

#[test]
fn japanese_ndr_and_japanese_explanation() {
    let v = explain_json("japanese-ndr.txt");
    assert_eq!(
        v["reporting_mta"],
        "TYAPR01MB0001.jpnprd01.prod.outlook.com"
    );
    let h = recipient(&v, "hanako@customer.example");
    assert_eq!(h["status"], "5.0.0");
    assert_eq!(
        h["diagnostic"],
        "550 5.0.0 SPF MAIL FROM check failed (PermError)"
    );
    assert_eq!(h["explanation"]["checks"], serde_json::json!(["spf"]));
    let path = fixture("dsn/japanese-ndr.txt");
    let out = mxaudit_run(&["explain", path.to_str().expect("utf8"), "--lang", "ja"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("永続的なエラー") && text.contains("送信元ドメインの管理者"),
        "{text}"
    );
    assert!(
        text.contains("mxaudit audit shop.example --plugins spf"),
        "{text}"
    );
}

#[test]
fn plain_text_bounce() {
    let v = explain_json("gmail-unknown-user.txt");
    let n = recipient(&v, "nobody@gmail-style.example");
    assert_eq!(n["status"], "5.1.1");
    assert_eq!(n["explanation"]["acts"], "sender");
}

#[test]
fn malformed_bounces_give_partial_results_or_clear_errors() {
    // Truncated MIME and an unknown charset still give what can be read.
    for file in ["truncated-report.eml", "wrong-charset.eml", "truncated.eml"] {
        let v = explain_json(file);
        assert!(!v["explained"].as_array().expect("a").is_empty(), "{file}");
        assert_eq!(v["explained"][0]["status"], "5.7.1", "{file}");
    }
    let dir = std::env::temp_dir().join(format!("mxaudit-explain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    // A 10 MB attachment.
    let base = std::fs::read_to_string(fixture("dsn/postfix-blocklist.eml")).expect("read");
    let attachment: String = std::iter::repeat_n(
        "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=\r\n",
        10 * 1024 * 1024 / 38,
    )
    .collect();
    let big = base.replace(
        "--4C3F21E2F.1763892005/mx.example.net--",
        &format!("--4C3F21E2F.1763892005/mx.example.net\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n{attachment}--4C3F21E2F.1763892005/mx.example.net--"),
    );
    let big_path = dir.join("big.eml");
    std::fs::write(&big_path, &big).expect("write");
    assert!(big.len() > 10_000_000);
    let started = std::time::Instant::now();
    let out = mxaudit_run(&[
        "explain",
        big_path.to_str().expect("utf8"),
        "--format",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["explained"].as_array().expect("a").len(), 2);

    for (name, content) in [
        ("garbage.bin", vec![0u8, 159, 146, 150, 255, 0, 1, 2]),
        ("empty.txt", Vec::new()),
        (
            "no-status.txt",
            b"Hello, this is not a bounce at all.\n".to_vec(),
        ),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, content).expect("write");
        let out = mxaudit_run(&["explain", path.to_str().expect("utf8")]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(
            err.contains("not a delivery status notification") && !err.contains("panicked"),
            "{name}: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn user_code_table_extends_the_builtin_one() {
    let dir = std::env::temp_dir().join(format!("mxaudit-codes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let codes = dir.join("codes.toml");
    std::fs::write(
        &codes,
        "[[code]]\nstatus = \"5.7.1\"\ntext = \"zen\\\\.spamhaus\"\nmeaning.en = \"Our own words for ZEN.\"\nmeaning.ja = \"独自の説明\"\nacts = \"sender_admin\"\n",
    )
    .expect("write");
    let bounce = fixture("dsn/postfix-blocklist.eml");
    let out = mxaudit_run(&[
        "explain",
        bounce.to_str().expect("utf8"),
        "--codes",
        codes.to_str().expect("utf8"),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Our own words for ZEN."), "{text}");
    std::fs::write(
        &codes,
        "[[code]]\nstatus = \"5.7.1\"\nmeening.en = \"typo\"\n",
    )
    .expect("write");
    let out = mxaudit_run(&[
        "explain",
        bounce.to_str().expect("utf8"),
        "--codes",
        codes.to_str().expect("utf8"),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains("codes.toml:3:1:") && err.contains("meening"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_runs_the_checks_that_confirm_the_cause() {
    let server = demo_server().await;
    let path = fixture("dsn/sender-domain-unresolvable.eml");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_mxaudit"))
        .args([
            "explain",
            path.to_str().expect("utf8"),
            "--audit",
            "--format",
            "json",
        ])
        .args([
            "--nameserver",
            &server.addr().to_string(),
            "--timeout",
            "500ms",
            "--allow-target",
            "198.51.100.0/24",
        ])
        .output()
        .await
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["sender_domain"], "noaddr.example");
    let audit = &v["audit"];
    assert_eq!(audit["domains"], serde_json::json!(["noaddr.example"]));
    let codes: Vec<&str> = audit["findings"]
        .as_array()
        .expect("a")
        .iter()
        .filter_map(|f| f["code"].as_str())
        .collect();
    assert!(
        codes.contains(&"a.missing"),
        "the cause is confirmed: {codes:?}"
    );
    let plugins: Vec<&str> = audit["checks"]
        .as_array()
        .expect("a")
        .iter()
        .filter_map(|c| c["plugin"].as_str())
        .collect();
    assert_eq!(plugins, vec!["mx", "address"]);
}

#[test]
fn issue17_feedback_report_and_auto_reply_are_described_not_given_a_status() {
    let arf = fixture("bounces/written/arf-abuse.eml");
    let out = mxaudit_run(&["explain", arf.to_str().expect("utf8"), "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["kind"], "feedback_report");
    assert_eq!(v["feedback_type"], "abuse");
    assert_eq!(v["source_ip"], "198.51.100.23");
    assert_eq!(v["reported_domain"], serde_json::json!(["sender.example"]));
    assert!(v["explained"].as_array().expect("a").is_empty());
    let out = mxaudit_run(&["explain", arf.to_str().expect("utf8"), "--lang", "ja"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("フィードバック レポート") && text.contains("送信元 IP: 198.51.100.23"),
        "{text}"
    );

    let ooo = fixture("bounces/written/out-of-office-exchange.eml");
    let out = mxaudit_run(&["explain", ooo.to_str().expect("utf8"), "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["kind"], "auto_reply");
    assert!(
        v.get("recipients").is_none(),
        "no status, no recipients: {v}"
    );

    let talk = fixture("bounces/written/discussion-mentions-codes.eml");
    let out = mxaudit_run(&["explain", talk.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a delivery status notification"));
}

#[test]
fn issue16_truncated_dsn_is_flagged_and_exchange_ndr_names_the_recipient() {
    let cut = fixture("bounces/written/truncated-dsn-failed.eml");
    let out = mxaudit_run(&["explain", cut.to_str().expect("utf8")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(text.contains("Note: the message was cut"), "{text}");
    assert!(
        text.contains("(permanent: resending will not help)") && !text.contains("transient"),
        "{text}"
    );
    let ndr = fixture("bounces/written/o365-ndr-pasted.txt");
    let out = mxaudit_run(&["explain", ndr.to_str().expect("utf8")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("mallory@receiver.example — failed, 5.1.10"),
        "{text}"
    );
    assert!(!text.contains("\nSummary —"), "{text}");
}

#[test]
fn explanation_in_japanese_has_no_english_labels_and_shows_sources() {
    let path = fixture("bounces/written/docomo-user-unknown.eml");
    let out = mxaudit_run(&["explain", path.to_str().expect("utf8"), "--lang", "ja"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for english in [
        "Bounce:",
        "Meaning:",
        "Who acts:",
        "Reason:",
        "Found in:",
        "permanent:",
    ] {
        assert!(!text.contains(english), "{english} in {text}");
    }
    assert!(
        text.contains("理由: 宛先不明") && text.contains("取得元:"),
        "{text}"
    );
    let out = mxaudit_run(&["explain", path.to_str().expect("utf8")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Found in: action ← header From"), "{text}");
    assert!(text.contains("recipient ← line 3 of part 0"), "{text}");
}
