//! The foundation checks (mx, address, ptr, dmarc) end to end against the demo
//! world served by the testbed DNS server: each code with its subject, healthy
//! controls clean, DNS failures reported as failures.

use std::collections::BTreeSet;

use mxaudit_core::{CheckStatus, Severity};
use mxaudit_testbed::DnsServer;

use crate::support::demo_server;
use crate::support::{codes_for, dns_client, plugins, run, target};

const FOUNDATION: &[&str] = &["mx", "address", "ptr", "dmarc"];

/// A domain, its profile, and the findings expected as (code, subject).
type Case = (
    &'static str,
    Option<&'static str>,
    &'static [(&'static str, &'static str)],
);

const EXPECTED: &[Case] = &[
    ("healthy.example", None, &[]),
    ("sub.healthy.example", None, &[]),
    ("m365ok.example", Some("microsoft365"), &[]),
    (
        "contoso.example",
        Some("microsoft365"),
        &[("mx.provider_not_preferred", "backup.contoso.example")],
    ),
    (
        "onprem.example",
        Some("microsoft365"),
        &[("mx.provider_missing", "onprem.example")],
    ),
    (
        "nomx.example",
        None,
        &[
            ("dmarc.missing", "nomx.example"),
            ("mx.none", "nomx.example"),
        ],
    ),
    (
        "nullmx.example",
        None,
        &[
            ("a.missing", "nullmx.example"),
            ("mx.null", "nullmx.example"),
        ],
    ),
    (
        "nullmixed.example",
        None,
        &[("mx.null_mixed", "nullmixed.example")],
    ),
    (
        "cname.example",
        None,
        &[("mx.target_cname", "alias.cname.example")],
    ),
    (
        "literal.example",
        None,
        &[("mx.target_ip_literal", "198.51.100.10")],
    ),
    (
        "dangling.example",
        None,
        &[
            ("dmarc.policy_none", "_dmarc.dangling.example"),
            ("mx.target_unresolvable", "mail.dangling.example"),
        ],
    ),
    (
        "private.example",
        None,
        &[
            ("mx.target_private", "mx.private.example 10.0.0.25"),
            ("mx.target_private", "mx.private.example 127.0.0.1"),
        ],
    ),
    (
        "slowttl.example",
        None,
        &[("mx.ttl_high", "slowttl.example")],
    ),
    ("noaddr.example", None, &[("a.missing", "noaddr.example")]),
    ("noptr.example", None, &[("ptr.missing", "198.51.100.20")]),
    ("badptr.example", None, &[("ptr.mismatch", "198.51.100.21")]),
    (
        "twodmarc.example",
        None,
        &[("dmarc.multiple", "_dmarc.twodmarc.example")],
    ),
    (
        "baddmarc.example",
        None,
        &[("dmarc.syntax", "_dmarc.baddmarc.example")],
    ),
    ("gone.example", None, &[("domain.nxdomain", "gone.example")]),
    (
        "servfail.example",
        None,
        &[("mx.lookup_failed", "servfail.example")],
    ),
    (
        "slow.example",
        None,
        &[("mx.lookup_failed", "slow.example")],
    ),
];

#[tokio::test]
async fn every_foundation_code_with_its_subject() {
    let server = demo_server().await;
    let dns = dns_client(server.addr());
    let targets: Vec<_> = EXPECTED.iter().map(|(d, p, _)| target(d, *p)).collect();
    let out = run(&plugins(FOUNDATION), &targets, &dns).await;
    let mut seen_codes = BTreeSet::new();
    for (domain, _, expected) in EXPECTED {
        let got = codes_for(&out, domain);
        let want: Vec<(String, String)> = expected
            .iter()
            .map(|(c, s)| (c.to_string(), s.to_string()))
            .collect();
        assert_eq!(got, want, "findings of {domain}");
        seen_codes.extend(got.into_iter().map(|(c, _)| c));
    }
    // Every code of the four engines is produced by this world.
    for plugin in plugins(FOUNDATION) {
        for code in plugin.meta.findings.keys() {
            assert!(seen_codes.contains(code), "no test produces {code}");
        }
    }
    // TTLs are reported as published (hickory would clamp them to one day).
    let ttl = out
        .findings
        .iter()
        .find(|f| f.code == "mx.ttl_high")
        .expect("ttl finding");
    assert!(
        ttl.evidence[0].contains(" 172800 MX "),
        "{:?}",
        ttl.evidence
    );
    // Findings carry rendered text, evidence and a stable fingerprint.
    for f in &out.findings {
        assert!(
            !f.title.is_empty() && !f.remediation.is_empty() && !f.detail.is_empty(),
            "{f:?}"
        );
        assert!(
            !f.evidence.is_empty(),
            "evidence for {} {}",
            f.code,
            f.subject
        );
        assert!(!f.title.contains("[text error"), "{}", f.title);
        assert_eq!(f.fingerprint.len(), 32);
    }
}

#[tokio::test]
async fn healthy_domains_pass_every_check() {
    let server = demo_server().await;
    let dns = dns_client(server.addr());
    let targets = vec![
        target("healthy.example", None),
        target("sub.healthy.example", None),
        target("m365ok.example", Some("microsoft365")),
    ];
    let out = run(&plugins(FOUNDATION), &targets, &dns).await;
    assert!(
        out.findings.iter().all(|f| f.severity < Severity::Low),
        "{:#?}",
        out.findings
    );
    assert_eq!(out.checks.len(), 12);
    for c in &out.checks {
        assert_eq!(c.status, CheckStatus::Pass, "{c:?}");
    }
}

#[tokio::test]
async fn dns_failures_are_errors_never_missing_records() {
    let server = demo_server().await;
    let dns = dns_client(server.addr());
    let targets = vec![
        target("servfail.example", None),
        target("slow.example", None),
    ];
    let out = run(&plugins(FOUNDATION), &targets, &dns).await;
    for f in &out.findings {
        assert_eq!(
            f.code, "mx.lookup_failed",
            "a failure must not become a missing record: {f:?}"
        );
    }
    for c in &out.checks {
        assert_eq!(c.status, CheckStatus::Error, "{c:?}");
        assert!(
            c.detail
                .as_deref()
                .is_some_and(|d| d.contains("SERVFAIL") || d.contains("timeout")),
            "{c:?}"
        );
    }
    let lookup_failed: Vec<_> = out
        .findings
        .iter()
        .filter(|f| f.code == "mx.lookup_failed")
        .collect();
    assert_eq!(lookup_failed.len(), 2);
    assert!(
        lookup_failed
            .iter()
            .any(|f| f.evidence.iter().any(|e| e.contains("timeout")))
    );
}

#[tokio::test]
async fn shared_questions_are_asked_once_per_run() {
    let server = demo_server().await;
    let dns = dns_client(server.addr());
    // Many domains whose MX is the same host: its addresses and PTR are asked once.
    let targets: Vec<_> = [
        "healthy.example",
        "onprem.example",
        "noaddr.example",
        "twodmarc.example",
        "baddmarc.example",
    ]
    .iter()
    .map(|d| target(d, None))
    .collect();
    run(&plugins(FOUNDATION), &targets, &dns).await;
    assert_eq!(server.count_of("mx1.healthy.example.", "A"), 1);
    assert_eq!(server.count_of("mx1.healthy.example.", "AAAA"), 1);
    assert_eq!(server.count_of("10.100.51.198.in-addr.arpa.", "PTR"), 1);
    for (q, n) in server.questions() {
        assert_eq!(n, 1, "{q:?} asked {n} times");
    }
}

#[tokio::test]
async fn japanese_text_is_rendered() {
    let server = demo_server().await;
    let dns = dns_client(server.addr());
    let opts = mxaudit_core::runner::RunOptions {
        lang: mxaudit_core::Lang::Ja,
        ..Default::default()
    };
    let out = mxaudit_core::runner::run(
        &plugins(FOUNDATION),
        &[target("dangling.example", None)],
        &dns,
        crate::support::test_policy(),
        &opts,
    )
    .await;
    let f = out
        .findings
        .iter()
        .find(|f| f.code == "mx.target_unresolvable")
        .expect("finding");
    assert!(
        f.title
            .chars()
            .any(|c| ('\u{3040}'..='\u{30ff}').contains(&c)
                || ('\u{4e00}'..='\u{9fff}').contains(&c)),
        "{}",
        f.title
    );
    assert!(
        f.title.contains("mail.dangling.example") || f.detail.contains("mail.dangling.example")
    );
}

#[tokio::test]
async fn hostile_mx_sets_are_bounded() {
    let mut body = String::from(
        "$ORIGIN hostile.test.\n$TTL 300\n@ IN SOA ns1 h 1 3600 600 86400 60\n@ IN NS ns1\nns1 IN A 127.0.0.1\n",
    );
    body.push_str("loop IN MX 10 a.loop\na.loop IN CNAME b.loop\nb.loop IN CNAME a.loop\n");
    for i in 0..500 {
        body.push_str(&format!(
            "many IN MX {i} mx{i}.many\nmx{i}.many IN A 198.51.100.{}\n",
            i % 250 + 1
        ));
    }
    let zone = mxaudit_testbed::ZoneText {
        origin: "hostile.test.".to_owned(),
        text: body,
    };
    let server = DnsServer::start(&[zone]).await.expect("starts");
    let dns = dns_client(server.addr());
    let started = std::time::Instant::now();
    let out = run(
        &plugins(&["mx"]),
        &[
            target("many.hostile.test", None),
            target("loop.hostile.test", None),
        ],
        &dns,
    )
    .await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // 500 MX: only the 20 most preferred hosts are resolved, and the report says so.
    assert!(
        server.count_of("mx19.many.hostile.test.", "A") == 1
            && server.count_of("mx20.many.hostile.test.", "A") == 0
    );
    let many = out
        .checks
        .iter()
        .find(|c| c.domain == "many.hostile.test")
        .expect("status");
    assert_eq!(many.status, CheckStatus::Error);
    assert!(
        many.detail.as_deref().is_some_and(|d| d.contains("500 MX")),
        "{many:?}"
    );
    // A CNAME loop at the MX host is a decided failure or an unresolvable host, never a hang.
    let looped = out
        .checks
        .iter()
        .find(|c| c.domain == "loop.hostile.test")
        .expect("status");
    assert_ne!(looped.status, CheckStatus::Pass, "{looped:?}");
}
