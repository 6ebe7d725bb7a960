//! Long domain lists: `--domains-file` streamed in chunks that share one DNS
//! cache, `--shard K/N`, `--dns-only`.

use std::collections::BTreeSet;

use mxaudit_testbed::{DnsServer, ZoneText};

/// `n` domains `dN.bulk.test`, all with MX on one shared host; every tenth has
/// no DMARC record.
fn bulk_zone(n: usize) -> ZoneText {
    let mut text = String::from(
        "$ORIGIN bulk.test.\n$TTL 300\n@ IN SOA ns1 h 1 3600 600 86400 60\n@ IN NS ns1\nns1 IN A 127.0.0.1\nmx IN A 198.51.100.1\n",
    );
    for i in 0..n {
        text.push_str(&format!(
            "d{i} IN MX 10 mx.bulk.test.\nd{i} IN A 198.51.100.1\n"
        ));
        if i % 10 != 0 {
            text.push_str(&format!("_dmarc.d{i} IN TXT \"v=DMARC1; p=reject\"\n"));
        }
    }
    ZoneText {
        origin: "bulk.test.".to_owned(),
        text,
    }
}

async fn audit(server: &DnsServer, args: &[&str], stdin: Option<String>) -> std::process::Output {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mxaudit"))
        .arg("audit")
        .args(args)
        .args([
            "--nameserver",
            &server.addr().to_string(),
            "--timeout",
            "2s",
            "--allow-target",
            "198.51.100.0/24",
        ])
        .args(["--plugins", "mx,dmarc", "--format", "jsonl"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.expect("write");
    }
    drop(input);
    child.wait_with_output().await.expect("output")
}

fn subjects(out: &std::process::Output) -> BTreeSet<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON line"))
        .map(|v| v["domain"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_streamed_list_asks_shared_questions_once() {
    let server = DnsServer::start(&[bulk_zone(2500)]).await.expect("starts");
    let dir = std::env::temp_dir().join(format!("mxaudit-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let list = dir.join("domains.txt");
    let mut text = String::from("# customers\n\n");
    for i in 0..2500 {
        text.push_str(&format!("d{i}.bulk.test   # row {i}\n"));
    }
    text.push_str("not a domain\n");
    std::fs::write(&list, text).expect("write");
    let out = audit(
        &server,
        &["--domains-file", list.to_str().expect("utf8")],
        None,
    )
    .await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("domains.txt:2503: invalid domain name"),
        "{err}"
    );
    // 250 domains lack DMARC: one JSON line each, streamed.
    assert_eq!(subjects(&out).len(), 250);
    // Three chunks, one shared MX host: its addresses were asked once.
    assert_eq!(server.count_of("mx.bulk.test.", "A"), 1);
    assert_eq!(server.count_of("mx.bulk.test.", "AAAA"), 1);
    assert_eq!(server.count_of("d2499.bulk.test.", "MX"), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn shards_split_a_list_without_overlap() {
    let server = DnsServer::start(&[bulk_zone(300)]).await.expect("starts");
    let list: String = (0..300).map(|i| format!("d{i}.bulk.test\n")).collect();
    let mut union = BTreeSet::new();
    let mut total = 0;
    for k in 1..=3 {
        let shard = format!("{k}/3");
        let out = audit(
            &server,
            &["--domains-file", "-", "--shard", &shard],
            Some(list.clone()),
        )
        .await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let s = subjects(&out);
        assert!(!s.is_empty(), "shard {shard} is not empty");
        total += s.len();
        union.extend(s);
    }
    assert_eq!(
        total, 30,
        "the 30 domains without DMARC, each in exactly one shard"
    );
    assert_eq!(union.len(), 30);
    let bad = audit(&server, &["d1.bulk.test", "--shard", "4/3"], None).await;
    assert_eq!(bad.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn dns_only_leaves_out_checks_that_connect() {
    let server = DnsServer::start(&[bulk_zone(1)]).await.expect("starts");
    let examples = crate::support::repo().join("docs/examples/plugins");
    let run = |dns_only: bool| {
        let mut args = vec![
            "audit",
            "d0.bulk.test",
            "--plugins-dir",
            examples.to_str().expect("utf8"),
        ];
        args.extend([
            "--plugins",
            "mx,mx-redundancy",
            "--format",
            "json",
            "--nameserver",
        ]);
        let addr = server.addr().to_string();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mxaudit"));
        cmd.args(&args).arg(&addr);
        if dns_only {
            cmd.arg("--dns-only");
        }
        cmd
    };
    for (dns_only, expected) in [(false, vec!["mx", "mx-redundancy"]), (true, vec!["mx"])] {
        let out = tokio::task::spawn_blocking({
            let mut cmd = run(dns_only);
            move || cmd.output().expect("runs")
        })
        .await
        .expect("join");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let plugins: Vec<&str> = v["checks"]
            .as_array()
            .expect("a")
            .iter()
            .filter_map(|c| c["plugin"].as_str())
            .collect();
        assert_eq!(plugins, expected, "--dns-only={dns_only}");
    }
}
