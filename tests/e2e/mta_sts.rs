//! MTA-STS (RFC 8461) and TLS-RPT (RFC 8460) end to end: the testbed DNS world
//! `sts.test` points each `mta-sts.<domain>` at one HTTPS policy server on
//! 127.78.0.1 whose sites behave well or not (certificates from the test CA,
//! chosen by SNI); the built-in `mta-sts` and `tlsrpt` manifests run as the
//! runner runs them, with short limits. Every code has a test here, each
//! hostile server ends within its time bound (asserted), and the policy is
//! fetched only behind a valid TXT record, once per run.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mxaudit_core::check::{CheckCx, CheckReport};
use mxaudit_core::manifest::Plugin;
use mxaudit_core::text::TextRenderer;
use mxaudit_core::{AddressPolicy, Lang};
use mxaudit_dns::Dns;
use mxaudit_testbed::certs::{TestCa, Validity};
use mxaudit_testbed::policy::{Behaviour, PolicyServer, PolicySite};
use mxaudit_testbed::{DnsServer, Fault, ZoneText};

use crate::support::{dns_client, target};

const POLICY_IP: Ipv4Addr = Ipv4Addr::new(127, 78, 0, 1);
/// Nothing listens here: connections are refused.
const CLOSED_IP: Ipv4Addr = Ipv4Addr::new(127, 78, 0, 2);

/// Short limits, so that hostile servers cost seconds.
const TIMEOUT: Duration = Duration::from_secs(2);

const GOOD: &str =
    "version: STSv1\nmode: enforce\nmx: mx1.good.sts.test\nmx: *.good.sts.test\nmax_age: 604800\n";

/// One domain of the world: its MX hosts, `_mta-sts` TXT records, the address
/// of its policy host, its `_smtp._tls` records, and what its site serves.
struct Domain {
    label: &'static str,
    mx: &'static [&'static str],
    sts: &'static [&'static str],
    policy_host: Option<Ipv4Addr>,
    tlsrpt: &'static [&'static str],
    site: Option<Site>,
}

enum Site {
    Serves(Behaviour),
    /// A certificate for another name.
    WrongName(Behaviour),
    /// A certificate from a CA nobody trusts.
    Untrusted(Behaviour),
}

fn policy(body: &str) -> Option<Site> {
    Some(Site::Serves(Behaviour::Policy(body.to_owned())))
}

const ID: &[&str] = &["v=STSv1; id=20260101T000000"];
const RPT: &[&str] = &["v=TLSRPTv1; rua=mailto:tls@sts.test"];

fn domains() -> Vec<Domain> {
    let d = |label, mx, site| Domain {
        label,
        mx,
        sts: ID,
        policy_host: Some(POLICY_IP),
        tlsrpt: RPT,
        site,
    };
    vec![
        d(
            "good",
            &["mx1.good.sts.test", "mx2.good.sts.test"],
            policy(GOOD),
        ),
        d(
            "crlf",
            &["mx.crlf.sts.test"],
            policy("version: STSv1\r\nmode: enforce\r\nmx: MX.CRLF.sts.test\r\nmax_age: 86400\r\n"),
        ),
        d(
            "testing",
            &["mx.testing.sts.test", "backup.elsewhere.test"],
            policy("version: STSv1\nmode: testing\nmx: mx.testing.sts.test\nmax_age: 604800\n"),
        ),
        d(
            "short",
            &["mx.short.sts.test"],
            policy("version: STSv1\nmode: enforce\nmx: mx.short.sts.test\nmax_age: 3600\n"),
        ),
        d(
            "mismatch",
            &[
                "mx.mismatch.sts.test",
                "a.b.mismatch.sts.test",
                "mail.elsewhere.test",
            ],
            policy("version: STSv1\nmode: enforce\nmx: *.mismatch.sts.test\nmax_age: 604800\n"),
        ),
        d(
            "malformed",
            &["mx.malformed.sts.test"],
            policy("version: STSv1\nmode: enforce\nmax_age: 604800\n"),
        ),
        d(
            "redirect",
            &["mx.redirect.sts.test"],
            Some(Site::Serves(Behaviour::Redirect(
                "https://www.redirect.sts.test/mta-sts.txt".to_owned(),
            ))),
        ),
        d(
            "notfound",
            &["mx.notfound.sts.test"],
            Some(Site::Serves(Behaviour::Answer {
                status: 404,
                reason: "Not Found".to_owned(),
                headers: vec![("Content-Type".to_owned(), "text/html".to_owned())],
                body: b"<html>not here</html>".to_vec(),
            })),
        ),
        d(
            "wrongtype",
            &["mx.wrongtype.sts.test"],
            Some(Site::Serves(Behaviour::Answer {
                status: 200,
                reason: "OK".to_owned(),
                headers: vec![(
                    "Content-Type".to_owned(),
                    "text/html; charset=utf-8".to_owned(),
                )],
                body:
                    b"version: STSv1\nmode: enforce\nmx: mx.wrongtype.sts.test\nmax_age: 604800\n"
                        .to_vec(),
            })),
        ),
        d(
            "huge",
            &["mx.huge.sts.test"],
            Some(Site::Serves(Behaviour::Huge(8 * 1024 * 1024))),
        ),
        d(
            "drip",
            &["mx.drip.sts.test"],
            Some(Site::Serves(Behaviour::Drip(Duration::from_millis(200)))),
        ),
        d(
            "stall",
            &["mx.stall.sts.test"],
            Some(Site::Serves(Behaviour::Stall)),
        ),
        d(
            "wrongname",
            &["mx.wrongname.sts.test"],
            Some(Site::WrongName(Behaviour::Policy(GOOD.to_owned()))),
        ),
        d(
            "untrusted",
            &["mx.untrusted.sts.test"],
            Some(Site::Untrusted(Behaviour::Policy(GOOD.to_owned()))),
        ),
        Domain {
            policy_host: None,
            ..d("nohost", &["mx.nohost.sts.test"], None)
        },
        Domain {
            policy_host: Some(CLOSED_IP),
            ..d("refused", &["mx.refused.sts.test"], None)
        },
        Domain {
            policy_host: Some(Ipv4Addr::new(10, 1, 2, 3)),
            ..d("private", &["mx.private.sts.test"], None)
        },
        d("servfail", &["mx.servfail.sts.test"], None),
        // A policy host that answers, but no (valid) record in front of it.
        Domain {
            sts: &[],
            tlsrpt: &[],
            ..d("notxt", &["mx.notxt.sts.test"], policy(GOOD))
        },
        Domain {
            sts: &["v=STSv1 id=20260101"],
            tlsrpt: &["v=TLSRPTv1; rua=http://reports.sts.test/tlsrpt"],
            ..d("badtxt", &["mx.badtxt.sts.test"], policy(GOOD))
        },
        Domain {
            sts: &["v=STSv1; id=1", "v=STSv1; id=2"],
            tlsrpt: &[
                "v=TLSRPTv1; rua=mailto:a@sts.test",
                "v=TLSRPTv1; rua=mailto:b@sts.test",
            ],
            ..d("twotxt", &["mx.twotxt.sts.test"], policy(GOOD))
        },
    ]
}

fn zone(domains: &[Domain]) -> ZoneText {
    let mut text = "$ORIGIN sts.test.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 60\n@ IN NS ns1\nns1 IN A 127.0.0.1\n".to_owned();
    for d in domains {
        let l = d.label;
        for (i, mx) in d.mx.iter().enumerate() {
            text.push_str(&format!("{l} IN MX {} {mx}.\n", 10 * (i + 1)));
        }
        for t in d.sts {
            text.push_str(&format!("_mta-sts.{l} IN TXT \"{t}\"\n"));
        }
        for t in d.tlsrpt {
            text.push_str(&format!("_smtp._tls.{l} IN TXT \"{t}\"\n"));
        }
        if let Some(ip) = d.policy_host {
            text.push_str(&format!("mta-sts.{l} IN A {ip}\n"));
        }
    }
    ZoneText {
        origin: "sts.test.".to_owned(),
        text,
    }
}

/// The world: DNS, the policy server, the test CA's file.
struct World {
    dns_server: DnsServer,
    policy: PolicyServer,
    ca_file: PathBuf,
    dir: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir(name: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("mxaudit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    TempDir(dir)
}

async fn world(name: &str) -> World {
    let ca = TestCa::new("mxaudit MTA-STS test CA").expect("CA");
    let stranger = TestCa::new("a CA nobody trusts").expect("CA");
    let mut sites = Vec::new();
    for d in domains() {
        let host = format!("mta-sts.{}.sts.test", d.label);
        let site = match d.site {
            None => continue,
            Some(Site::Serves(b)) => PolicySite::new(
                &host,
                ca.issue(&[&host], Validity::Current).expect("cert"),
                b,
            ),
            Some(Site::WrongName(b)) => PolicySite::new(
                &host,
                ca.issue(&["www.other.test"], Validity::Current)
                    .expect("cert"),
                b,
            ),
            Some(Site::Untrusted(b)) => PolicySite::new(
                &host,
                stranger.issue(&[&host], Validity::Current).expect("cert"),
                b,
            ),
        };
        sites.push(site);
    }
    let policy = PolicyServer::start(SocketAddr::from((POLICY_IP, 0)), sites)
        .await
        .expect("policy server starts");
    let dns_server = DnsServer::start(&[zone(&domains())])
        .await
        .expect("testbed DNS starts");
    dns_server.set_fault("mta-sts.servfail.sts.test", Fault::ServFail);
    let dir = tempdir(name);
    let ca_file = dir.0.join("ca.pem");
    ca.write_pem(&ca_file).expect("CA file");
    World {
        dns_server,
        policy,
        ca_file,
        dir,
    }
}

/// A built-in manifest with `[params]` replaced.
fn builtin(stem: &str, params: &str) -> Plugin {
    let (_, source) = mxaudit_checks::BUILTIN_MANIFESTS
        .iter()
        .find(|(path, _)| path.ends_with(&format!("/{stem}.toml")))
        .expect("built-in manifest");
    let mut doc: toml::Table = toml::from_str(source).expect("manifest parses");
    let params: toml::Table = toml::from_str(params).expect("params");
    doc.insert("params".into(), toml::Value::Table(params));
    let text = toml::to_string(&doc).expect("serializes");
    mxaudit_core::manifest::load(
        &format!("test:plugins/{stem}.toml"),
        Some(stem),
        &text,
        mxaudit_checks::ENGINES,
    )
    .unwrap_or_else(|e| panic!("test manifest: {e}"))
}

impl World {
    fn mta_sts(&self) -> Plugin {
        builtin(
            "mta-sts",
            &format!(
                "port = {}\nconnect_timeout = \"1s\"\ntimeout = \"{}s\"\nca_files = [{:?}]\n",
                self.policy.port(),
                TIMEOUT.as_secs(),
                self.ca_file.display().to_string()
            ),
        )
    }

    fn dns(&self) -> Dns {
        dns_client(self.dns_server.addr())
    }
}

/// Loopback may be connected to (the policy server); private ranges may not.
fn policy_cx(dns: &Dns) -> CheckCx {
    CheckCx::new(
        dns.clone(),
        Arc::new(AddressPolicy::new(vec![
            "127.0.0.0/8".parse().expect("net"),
        ])),
        Instant::now() + Duration::from_secs(30),
    )
}

/// Runs `plugin` on `label.sts.test` and renders every observation in English
/// and Japanese (a template error fails the test).
async fn check(plugin: &Plugin, label: &str, cx: &CheckCx) -> (CheckReport, Duration) {
    let started = Instant::now();
    let report = plugin
        .check
        .run(&target(&format!("{label}.sts.test"), None), cx)
        .await;
    let elapsed = started.elapsed();
    for lang in [Lang::En, Lang::Ja] {
        let r = TextRenderer::new(lang);
        for o in &report.observations {
            let f = r.finding(&plugin.meta, &format!("{label}.sts.test"), o, None);
            for text in [&f.title, &f.detail, &f.remediation] {
                assert!(!text.contains("[text error"), "{}: {text}", o.code);
            }
        }
    }
    (report, elapsed)
}

fn codes(report: &CheckReport) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = report
        .observations
        .iter()
        .map(|o| (o.code.clone(), o.subject.clone()))
        .collect();
    v.sort();
    v
}

fn pair(code: &str, subject: &str) -> (String, String) {
    (code.to_owned(), subject.to_owned())
}

fn evidence(report: &CheckReport) -> String {
    report
        .observations
        .iter()
        .flat_map(|o| o.evidence.iter().cloned())
        .collect::<Vec<_>>()
        .join("\n")
}

fn var(report: &CheckReport, code: &str, name: &str) -> String {
    report
        .observations
        .iter()
        .find(|o| o.code == code)
        .and_then(|o| o.vars.get(name))
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| v.to_string())
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn valid_policies_and_what_they_say() {
    let w = world("mta-sts-valid").await;
    let plugin = w.mta_sts();
    let dns = w.dns();
    let cx = policy_cx(&dns);

    // Enforced, every MX covered (one by name, one by a wildcard): nothing to say.
    let (r, _) = check(&plugin, "good", &cx).await;
    assert_eq!(codes(&r), vec![], "{r:?}");
    assert!(r.errors.is_empty(), "{r:?}");
    // CRLF line endings, a pattern in capitals.
    let (r, _) = check(&plugin, "crlf", &cx).await;
    assert_eq!(codes(&r), vec![], "{r:?}");

    // Testing mode: said once, and an uncovered MX is a warning, not critical.
    let (r, _) = check(&plugin, "testing", &cx).await;
    assert_eq!(
        codes(&r),
        vec![
            pair("mta_sts.mx_not_covered_testing", "backup.elsewhere.test"),
            pair("mta_sts.testing_mode", "mta-sts.testing.sts.test"),
        ]
    );

    let (r, _) = check(&plugin, "short", &cx).await;
    assert_eq!(
        codes(&r),
        vec![pair("mta_sts.max_age_short", "mta-sts.short.sts.test")]
    );
    assert_eq!(var(&r, "mta_sts.max_age_short", "max_age_human"), "1h");

    // RFC 8461 §4.1: `*.mismatch.sts.test` covers one label only.
    let (r, _) = check(&plugin, "mismatch", &cx).await;
    assert_eq!(
        codes(&r),
        vec![
            pair("mta_sts.mx_not_covered", "a.b.mismatch.sts.test"),
            pair("mta_sts.mx_not_covered", "mail.elsewhere.test"),
        ]
    );
    assert_eq!(
        var(&r, "mta_sts.mx_not_covered", "patterns"),
        "*.mismatch.sts.test"
    );
    assert!(
        evidence(&r).contains("mode enforce, max_age 604800, mx *.mismatch.sts.test"),
        "{}",
        evidence(&r)
    );
    // The server saw ordinary requests: the path, the Host header, SNI.
    let seen = w.policy.requests();
    let good = seen
        .iter()
        .find(|r| r.sni.as_deref() == Some("mta-sts.good.sts.test"))
        .expect("a request for the good policy");
    assert_eq!(good.request_line, "GET /.well-known/mta-sts.txt HTTP/1.1");
    assert_eq!(
        good.host.as_deref(),
        Some(format!("mta-sts.good.sts.test:{}", w.policy.port()).as_str())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_policy_hosts() {
    let w = world("mta-sts-broken").await;
    let plugin = w.mta_sts();
    let dns = w.dns();
    let cx = policy_cx(&dns);

    for (label, code, needle) in [
        ("malformed", "mta_sts.policy_syntax", "no mx field"),
        ("wrongtype", "mta_sts.policy_syntax", "text/html"),
        (
            "redirect",
            "mta_sts.policy_unreachable",
            "HTTP 301 redirect to https://www.redirect.sts.test/mta-sts.txt",
        ),
        (
            "notfound",
            "mta_sts.policy_unreachable",
            "HTTP 404 Not Found",
        ),
        ("nohost", "mta_sts.policy_unreachable", "has no address"),
        (
            "refused",
            "mta_sts.policy_unreachable",
            "connection refused",
        ),
        (
            "wrongname",
            "mta_sts.policy_cert_invalid",
            "not valid for name \"mta-sts.wrongname.sts.test\"",
        ),
        ("untrusted", "mta_sts.policy_cert_invalid", "UnknownIssuer"),
    ] {
        let (r, elapsed) = check(&plugin, label, &cx).await;
        let host = format!("mta-sts.{label}.sts.test");
        assert_eq!(codes(&r), vec![pair(code, &host)], "{label}: {r:?}");
        let said = format!(
            "{}\n{}\n{}",
            var(&r, code, "reason"),
            var(&r, code, "problem"),
            evidence(&r)
        );
        assert!(said.contains(needle), "{label}: {said}");
        assert!(r.errors.is_empty(), "{label}: {r:?}");
        assert!(elapsed < TIMEOUT, "{label} took {elapsed:?}");
    }
    // The certificate shown is the one presented.
    let (r, _) = check(&plugin, "wrongname", &cx).await;
    assert!(
        evidence(&r).contains("names www.other.test"),
        "{}",
        evidence(&r)
    );
    // The malformed body is shown, escaped and clipped.
    let (r, _) = check(&plugin, "malformed", &cx).await;
    assert!(
        evidence(&r).contains("  | mode: enforce"),
        "{}",
        evidence(&r)
    );
}

/// Each hostile server ends within its time bound: the body cap stops a huge
/// answer at once, the total timeout stops a dripping or silent one.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_policy_hosts_end_within_their_bounds() {
    let w = world("mta-sts-hostile").await;
    let plugin = w.mta_sts();
    let dns = w.dns();
    let cx = policy_cx(&dns);
    for (label, code, needle, bound) in [
        (
            "huge",
            "mta_sts.policy_syntax",
            "larger than 64 KiB",
            TIMEOUT,
        ),
        (
            "drip",
            "mta_sts.policy_unreachable",
            "no complete",
            TIMEOUT + Duration::from_millis(1500),
        ),
        (
            "stall",
            "mta_sts.policy_unreachable",
            "no ",
            TIMEOUT + Duration::from_millis(1500),
        ),
    ] {
        let (r, elapsed) = check(&plugin, label, &cx).await;
        assert_eq!(
            codes(&r),
            vec![pair(code, &format!("mta-sts.{label}.sts.test"))],
            "{label}: {r:?}"
        );
        let said = format!("{}{}", var(&r, code, "reason"), var(&r, code, "problem"));
        assert!(said.contains(needle), "{label}: {said}");
        assert!(elapsed < bound, "{label} took {elapsed:?}, bound {bound:?}");
        if label != "huge" {
            assert!(
                elapsed >= TIMEOUT - Duration::from_millis(600),
                "{label} gave up early: {elapsed:?}"
            );
        }
    }
    assert_eq!(w.policy.requests_for("mta-sts.huge.sts.test"), 1);
}

/// No valid TXT record, no fetch: the policy host is not even looked up.
#[tokio::test(flavor = "multi_thread")]
async fn never_fetched_without_a_valid_txt_record() {
    let w = world("mta-sts-notxt").await;
    let plugin = w.mta_sts();
    let dns = w.dns();
    let cx = policy_cx(&dns);
    let (r, _) = check(&plugin, "notxt", &cx).await;
    assert_eq!(
        codes(&r),
        vec![pair("mta_sts.missing", "_mta-sts.notxt.sts.test")]
    );
    let (r, _) = check(&plugin, "badtxt", &cx).await;
    assert_eq!(
        codes(&r),
        vec![pair("mta_sts.syntax", "_mta-sts.badtxt.sts.test")]
    );
    assert!(
        var(&r, "mta_sts.syntax", "problem").contains("followed by `;`"),
        "{r:?}"
    );
    let (r, _) = check(&plugin, "twotxt", &cx).await;
    assert_eq!(
        codes(&r),
        vec![pair("mta_sts.syntax", "_mta-sts.twotxt.sts.test")]
    );
    assert_eq!(var(&r, "mta_sts.syntax", "count"), "2");
    for label in ["notxt", "badtxt", "twotxt"] {
        let host = format!("mta-sts.{label}.sts.test");
        assert_eq!(w.policy.requests_for(&host), 0, "{host} was fetched");
        assert_eq!(w.dns_server.count_of(&host, "A"), 0, "{host} was looked up");
    }
    assert_eq!(w.policy.handshakes(), 0);
}

/// A DNS-only run keeps the record check and fetches nothing.
#[tokio::test(flavor = "multi_thread")]
async fn dns_only_checks_the_record_and_fetches_nothing() {
    let w = world("mta-sts-dnsonly").await;
    let plugin = w.mta_sts();
    let dns = w.dns();
    let cx = CheckCx {
        run: Arc::new(mxaudit_core::RunScope {
            dns_only: true,
            ..Default::default()
        }),
        ..policy_cx(&dns)
    };
    let (r, _) = check(&plugin, "mismatch", &cx).await;
    assert_eq!(codes(&r), vec![], "{r:?}");
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let (r, _) = check(&plugin, "notxt", &cx).await;
    assert_eq!(
        codes(&r),
        vec![pair("mta_sts.missing", "_mta-sts.notxt.sts.test")]
    );
    assert_eq!(w.policy.handshakes(), 0);
    assert_eq!(w.dns_server.count_of("mta-sts.mismatch.sts.test", "A"), 0);
}

/// One fetch per domain and run, however many checks ask; a new run fetches again.
#[tokio::test(flavor = "multi_thread")]
async fn fetched_once_per_run() {
    let w = world("mta-sts-once").await;
    let plugin = w.mta_sts();
    let dns = w.dns();
    let cx = policy_cx(&dns);
    let (a, b, c) = tokio::join!(
        check(&plugin, "good", &cx),
        check(&plugin, "good", &cx),
        check(&plugin, "mismatch", &cx)
    );
    let (d, _) = check(&plugin, "good", &cx).await;
    for r in [&a.0, &b.0, &d] {
        assert_eq!(codes(r), vec![]);
    }
    assert_eq!(codes(&c.0).len(), 2);
    assert_eq!(w.policy.requests_for("mta-sts.good.sts.test"), 1);
    assert_eq!(w.policy.requests_for("mta-sts.mismatch.sts.test"), 1);
    // A new run (a new DNS client, as every run gets) fetches again.
    let next_run = w.dns();
    let (r, _) = check(&plugin, "good", &policy_cx(&next_run)).await;
    assert_eq!(codes(&r), vec![]);
    assert_eq!(w.policy.requests_for("mta-sts.good.sts.test"), 2);
}

/// Failures that say nothing about the domain are `error`, never a finding:
/// a policy host on a private address mxaudit may not connect to, a lookup
/// that fails, a CA file that cannot be read.
#[tokio::test(flavor = "multi_thread")]
async fn undecided_fetches_are_errors_not_findings() {
    let w = world("mta-sts-undecided").await;
    let plugin = w.mta_sts();
    let dns = w.dns();
    let cx = policy_cx(&dns);
    for (label, needle) in [
        (
            "private",
            "address policy refuses mta-sts.private.sts.test: 10.1.2.3",
        ),
        ("servfail", "SERVFAIL"),
    ] {
        let (r, _) = check(&plugin, label, &cx).await;
        assert_eq!(codes(&r), vec![], "{label}: {r:?}");
        assert!(
            r.errors.iter().any(|e| e.contains(needle)),
            "{label}: {:?}",
            r.errors
        );
    }
    let missing_ca = builtin(
        "mta-sts",
        &format!(
            "port = {}\ntimeout = \"2s\"\nca_files = [\"/nonexistent/ca.pem\"]\n",
            w.policy.port()
        ),
    );
    let (r, _) = check(&missing_ca, "good", &cx).await;
    assert_eq!(codes(&r), vec![]);
    assert!(
        r.errors.iter().any(|e| e.contains("/nonexistent/ca.pem")),
        "{:?}",
        r.errors
    );
    assert_eq!(w.policy.handshakes(), 0, "nothing fetched without its CA");
}

#[tokio::test(flavor = "multi_thread")]
async fn tlsrpt_records_are_parsed() {
    let w = world("tlsrpt").await;
    let dns = w.dns();
    let cx = policy_cx(&dns);
    let plugin = builtin("tlsrpt", "");
    let (r, _) = check(&plugin, "good", &cx).await;
    assert_eq!(codes(&r), vec![]);
    let (r, _) = check(&plugin, "notxt", &cx).await;
    assert_eq!(
        codes(&r),
        vec![pair("tlsrpt.missing", "_smtp._tls.notxt.sts.test")]
    );
    let (r, _) = check(&plugin, "badtxt", &cx).await;
    assert_eq!(
        codes(&r),
        vec![pair("tlsrpt.syntax", "_smtp._tls.badtxt.sts.test")]
    );
    assert!(
        var(&r, "tlsrpt.syntax", "problem").contains("only mailto: and https:"),
        "{r:?}"
    );
    let (r, _) = check(&plugin, "twotxt", &cx).await;
    assert_eq!(
        codes(&r),
        vec![pair("tlsrpt.syntax", "_smtp._tls.twotxt.sts.test")]
    );
    assert_eq!(var(&r, "tlsrpt.syntax", "count"), "2");
    // A lookup failure is undecided.
    w.dns_server
        .set_fault("_smtp._tls.good.sts.test", Fault::ServFail);
    let fresh = w.dns();
    let (r, _) = check(&plugin, "good", &policy_cx(&fresh)).await;
    assert_eq!(codes(&r), vec![]);
    assert!(!r.errors.is_empty());
}

/// `mxaudit audit --ca-file` reaches the policy fetch: without it the test
/// CA is unknown (policy_cert_invalid), with it the policy is accepted. The
/// port comes from a user manifest that overrides the built-in one.
#[tokio::test(flavor = "multi_thread")]
async fn the_ca_file_option_is_honoured_by_the_binary() {
    let w = world("mta-sts-cli").await;
    let plugins = w.dir.0.join("plugins");
    std::fs::create_dir_all(&plugins).expect("dir");
    let (_, source) = mxaudit_checks::BUILTIN_MANIFESTS
        .iter()
        .find(|(path, _)| path.ends_with("/mta-sts.toml"))
        .expect("built-in manifest");
    let mut doc: toml::Table = toml::from_str(source).expect("parses");
    doc.insert("override".into(), toml::Value::Boolean(true));
    doc.insert(
        "params".into(),
        toml::Value::Table(
            toml::from_str(&format!("port = {}\ntimeout = \"2s\"", w.policy.port()))
                .expect("params"),
        ),
    );
    std::fs::write(
        plugins.join("mta-sts.toml"),
        toml::to_string(&doc).expect("toml"),
    )
    .expect("write");
    let run = |ca: bool| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_mxaudit"));
        cmd.args(["audit", "good.sts.test", "--plugins", "mta-sts"])
            .args(["--format", "json", "--plugins-dir"])
            .arg(&plugins)
            .args(["--nameserver", &w.dns_server.addr().to_string()])
            .args(["--timeout", "500ms", "--attempts", "0"])
            .args(["--allow-target", "127.0.0.0/8"]);
        if ca {
            cmd.arg("--ca-file").arg(&w.ca_file);
        }
        cmd.output()
    };
    let without = run(false).await.expect("runs");
    let v: serde_json::Value = serde_json::from_slice(&without.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&without.stderr)));
    let found: Vec<&str> = v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["code"].as_str())
        .collect();
    assert_eq!(found, vec!["mta_sts.policy_cert_invalid"], "{v:#}");
    assert_eq!(without.status.code(), Some(1));
    let with = run(true).await.expect("runs");
    let v: serde_json::Value = serde_json::from_slice(&with.stdout).expect("json");
    assert_eq!(v["findings"].as_array().map(Vec::len), Some(0), "{v:#}");
    assert_eq!(with.status.code(), Some(0));
    assert_eq!(w.policy.requests_for("mta-sts.good.sts.test"), 1);
    assert_eq!(
        w.policy.handshakes(),
        1,
        "the handshake without the CA fails"
    );
}
