//! DNSSEC and DANE end to end: a signed world served by the testbed (a test
//! root whose key is the trust anchor, `test.` under it, and below it a good
//! domain, one with expired signatures, one whose DS names another key and
//! one unsigned), over UDP and over TCP; a resolver that strips DNSSEC; the
//! `dnssec` and `dane` engines as the runner runs them, with scripted SMTP
//! servers presenting certificates that do and do not match the TLSA records.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mxaudit_core::manifest::Plugin;
use mxaudit_core::runner::{self, RunOptions, RunOutput};
use mxaudit_core::{AddressPolicy, CheckStatus, Lang};
use mxaudit_dns::{Answer, Dns, DnsConfig, DomainName, RType, Security, TrustAnchor};
use mxaudit_testbed::certs::{self, TestCa, TestCert, Validity};
use mxaudit_testbed::signed::{SignedWorld, SignedZone, Signing};
use mxaudit_testbed::smtp::{SmtpScript, SmtpServer};
use mxaudit_testbed::{DnsServer, Fault};

use crate::support::target;

/// A unique scratch folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "mxaudit-dnssec-{name}-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}

const SOA: &str = "@ 3600 IN SOA ns.test. hostmaster.test. 1 3600 600 86400 300\n";

/// A zone `name.test.` with MX `mx.name.test.` at `mx`, an SPF TXT record,
/// and `extra` lines (TLSA records, more hosts).
fn domain_zone(name: &str, mx: Ipv4Addr, extra: &str, signing: Signing) -> SignedZone {
    let origin = format!("{name}.test.");
    let text = format!(
        "$ORIGIN {origin}\n$TTL 300\n{SOA}@ IN NS ns.test.\n@ IN MX 10 mx\n@ IN TXT \"v=spf1 mx -all\"\nmx IN A {mx}\n{extra}"
    );
    SignedZone::new(&origin, &text, signing)
}

/// The root, `test.`, and the given domains.
fn world(domains: Vec<SignedZone>) -> SignedWorld {
    let mut zones = vec![
        SignedZone::new(
            ".",
            &format!("$ORIGIN .\n$TTL 3600\n{SOA}@ IN NS ns.test.\n"),
            Signing::Secure,
        ),
        SignedZone::new(
            "test.",
            &format!("$ORIGIN test.\n$TTL 3600\n{SOA}@ IN NS ns\nns IN A 127.0.0.1\n"),
            Signing::Secure,
        ),
    ];
    zones.extend(domains);
    SignedWorld::build(&zones).expect("signed world builds")
}

/// The four kinds of domain of this file.
fn standard_domains(extra_good: &str, extra_plain: &str) -> Vec<SignedZone> {
    vec![
        domain_zone(
            "good",
            Ipv4Addr::new(127, 78, 0, 1),
            extra_good,
            Signing::Secure,
        ),
        domain_zone(
            "expired",
            Ipv4Addr::new(127, 78, 0, 2),
            "",
            Signing::ExpiredSignatures,
        ),
        domain_zone(
            "wrongds",
            Ipv4Addr::new(127, 78, 0, 3),
            "",
            Signing::WrongDs,
        ),
        domain_zone(
            "plain",
            Ipv4Addr::new(127, 78, 0, 4),
            extra_plain,
            Signing::Unsigned,
        ),
    ]
}

/// A served world and a client whose trust anchor is the world's root key.
struct Served {
    server: DnsServer,
    dns: Dns,
    _dir: PathBuf,
}

async fn serve(world: SignedWorld, faults: &[(&str, Fault)]) -> Served {
    let dir = scratch("anchor");
    let anchor = dir.join("root.key");
    std::fs::write(&anchor, world.trust_anchor()).expect("anchor written");
    let server = world.serve().await.expect("signed world serves");
    for (name, fault) in faults {
        server.set_fault(name, *fault);
    }
    let dns = client(server.addr(), TrustAnchor::File(anchor));
    Served {
        server,
        dns,
        _dir: dir,
    }
}

fn client(addr: SocketAddr, anchor: TrustAnchor) -> Dns {
    Dns::new(&DnsConfig {
        nameservers: vec![addr],
        timeout: Duration::from_millis(800),
        attempts: 1,
        trust_anchor: anchor,
        ..DnsConfig::default()
    })
    .expect("resolver builds")
}

fn name(s: &str) -> DomainName {
    DomainName::parse(s).expect("name")
}

async fn security(dns: &Dns, q: &str, rtype: RType) -> (Answer, Security) {
    let v = dns
        .query_validated(&name(q), rtype)
        .await
        .unwrap_or_else(|e| panic!("{q} {rtype}: validation unavailable: {e}"));
    (v.answer.clone(), v.security.clone())
}

/// Every kind of answer of the signed world, through whatever transport the
/// faults leave (UDP, or TCP after truncation).
async fn assert_standard_world(dns: &Dns) {
    let (answer, sec) = security(dns, "good.test", RType::Mx).await;
    assert_eq!(sec, Security::Secure, "good MX");
    assert!(
        matches!(answer, Answer::Records(ref s) if s.mx().len() == 1),
        "{answer:?}"
    );
    let (_, sec) = security(dns, "good.test", RType::Txt).await;
    assert_eq!(sec, Security::Secure, "good TXT");
    // Signed denials: NODATA and NXDOMAIN proven by NSEC.
    let (answer, sec) = security(dns, "good.test", RType::Aaaa).await;
    assert!(matches!(answer, Answer::NoData { .. }), "{answer:?}");
    assert_eq!(sec, Security::Secure, "good AAAA NODATA");
    let (answer, sec) = security(dns, "nosuch.good.test", RType::Mx).await;
    assert!(matches!(answer, Answer::NxDomain { .. }), "{answer:?}");
    assert_eq!(sec, Security::Secure, "NXDOMAIN under good");

    let (answer, sec) = security(dns, "expired.test", RType::Mx).await;
    assert!(
        matches!(answer, Answer::Records(_)),
        "records kept: {answer:?}"
    );
    match sec {
        Security::Bogus(why) => assert!(
            why.contains("expired on") && why.contains("expired.test."),
            "{why}"
        ),
        other => panic!("expired: {other:?}"),
    }
    match security(dns, "wrongds.test", RType::Txt).await.1 {
        Security::Bogus(why) => assert!(
            why.contains("DS records of wrongds.test.") && why.contains("match none"),
            "{why}"
        ),
        other => panic!("wrong DS: {other:?}"),
    }
    let (answer, sec) = security(dns, "plain.test", RType::Mx).await;
    assert!(matches!(answer, Answer::Records(_)), "{answer:?}");
    assert_eq!(sec, Security::Insecure, "unsigned delegation");
    let (answer, sec) = security(dns, "plain.test", RType::Aaaa).await;
    assert!(matches!(answer, Answer::NoData { .. }), "{answer:?}");
    assert_eq!(sec, Security::Insecure, "unsigned NODATA");
    assert!(dns.dnssec_unavailable().is_none());
}

#[tokio::test]
async fn validation_over_udp() {
    let s = serve(world(standard_domains("", "")), &[]).await;
    assert_standard_world(&s.dns).await;
    assert_eq!(s.server.tcp_query_count(), 0, "all over UDP");
}

#[tokio::test]
async fn validation_over_tcp() {
    // Every UDP answer truncated: the whole chain is fetched over TCP.
    let s = serve(world(standard_domains("", "")), &[(".", Fault::Truncate)]).await;
    assert_standard_world(&s.dns).await;
    // Each UDP question was answered with TC and asked again over TCP.
    assert!(s.server.tcp_query_count() > 10, "TCP used");
    assert_eq!(
        s.server.query_count(),
        2 * s.server.tcp_query_count(),
        "every answer came over TCP"
    );
}

#[tokio::test]
async fn a_resolver_that_strips_dnssec_is_a_run_problem() {
    let s = serve(
        world(standard_domains("", "")),
        &[(".", Fault::StripDnssec)],
    )
    .await;
    let err = s
        .dns
        .query_validated(&name("good.test"), RType::Mx)
        .await
        .expect_err("stripping resolver detected");
    let text = err.to_string();
    assert!(
        text.contains("strips DNSSEC") && text.contains("no RRSIG"),
        "{text}"
    );
    assert_eq!(
        s.dns.dnssec_unavailable().map(|e| e.to_string()),
        Some(text),
        "kept for the run"
    );
    // The ordinary path still works through it.
    assert!(matches!(
        s.dns.query(&name("good.test"), RType::Mx).await.as_ref(),
        Answer::Records(_)
    ));
}

#[tokio::test]
async fn a_wrong_trust_anchor_is_a_run_problem() {
    let world = world(standard_domains("", ""));
    let server = world.serve().await.expect("serves");
    // The IANA root keys do not sign this world's root.
    let dns = client(server.addr(), TrustAnchor::IanaRoot);
    let err = dns
        .query_validated(&name("good.test"), RType::Mx)
        .await
        .expect_err("anchor mismatch");
    assert!(
        err.to_string()
            .contains("matches the trust anchor (IANA root KSKs"),
        "{err}"
    );
}

#[tokio::test]
async fn a_trust_anchor_at_a_delegation() {
    // No root: `test.` is the top of the world and its key the anchor.
    let zones = vec![
        SignedZone::new(
            "test.",
            &format!("$ORIGIN test.\n$TTL 3600\n{SOA}@ IN NS ns\nns IN A 127.0.0.1\n"),
            Signing::Secure,
        ),
        domain_zone("good", Ipv4Addr::new(127, 78, 0, 1), "", Signing::Secure),
        domain_zone(
            "wrongds",
            Ipv4Addr::new(127, 78, 0, 3),
            "",
            Signing::WrongDs,
        ),
    ];
    let world = SignedWorld::build(&zones).expect("builds");
    assert!(
        world.trust_anchor().starts_with("test. "),
        "{}",
        world.trust_anchor()
    );
    let s = serve(world, &[]).await;
    assert_eq!(
        security(&s.dns, "good.test", RType::Mx).await.1,
        Security::Secure
    );
    assert!(matches!(
        security(&s.dns, "wrongds.test", RType::Mx).await.1,
        Security::Bogus(_)
    ));
}

#[tokio::test]
async fn each_validated_question_is_asked_once_per_run() {
    let s = serve(world(standard_domains("", "")), &[]).await;
    let first = security(&s.dns, "good.test", RType::Mx).await;
    let asked = s.server.query_count();
    let again = security(&s.dns, "good.test", RType::Mx).await;
    assert_eq!(first, again);
    assert_eq!(
        s.server.query_count(),
        asked,
        "answered from the run's cache"
    );
}

// ---------------------------------------------------------------------------
// The engines.

/// A built-in manifest (`dnssec` or `dane`), enabled, with these params.
fn plugin(id: &str, params: &str) -> Plugin {
    let (_, source) = mxaudit_checks::BUILTIN_MANIFESTS
        .iter()
        .find(|(path, _)| path.ends_with(&format!("/{id}.toml")))
        .expect("built-in manifest");
    let mut doc: toml::Table = toml::from_str(source).expect("manifest parses");
    let params: toml::Table = toml::from_str(params).expect("params");
    doc.insert("params".into(), toml::Value::Table(params));
    doc.insert("enabled".into(), toml::Value::Boolean(true));
    let text = toml::to_string(&doc).expect("serializes");
    mxaudit_core::manifest::load(
        &format!("test:plugins/{id}.toml"),
        Some(id),
        &text,
        mxaudit_checks::ENGINES,
    )
    .unwrap_or_else(|e| panic!("test manifest: {e}"))
}

/// Short limits for loopback servers.
fn dane_plugin(port: u16) -> Plugin {
    plugin(
        "dane",
        &format!(
            "port = {port}\nconnect_timeout = \"1s\"\ngreeting_timeout = \"2s\"\ncommand_timeout = \"1s\"\ntls_timeout = \"2s\"\nsession_delay = \"0s\"\n"
        ),
    )
}

/// Runs plugins over domains through the library runner, with loopback
/// allowed as a target, and checks that every finding renders in English and
/// Japanese without a template error.
async fn run(plugins: &[Plugin], domains: &[&str], dns: &Dns) -> RunOutput {
    let targets: Vec<_> = domains.iter().map(|d| target(d, None)).collect();
    let policy = Arc::new(AddressPolicy::new(vec![
        "127.0.0.0/8".parse().expect("net"),
    ]));
    let mut out = RunOutput::default();
    for lang in [Lang::Ja, Lang::En] {
        let opts = RunOptions {
            lang,
            ..RunOptions::default()
        };
        out = runner::run(plugins, &targets, dns, policy.clone(), &opts).await;
        for f in &out.findings {
            for text in [&f.title, &f.detail, &f.remediation] {
                assert!(!text.contains("[text error"), "{}: {text}", f.code);
                assert!(!text.trim().is_empty(), "{}: empty text", f.code);
            }
        }
    }
    out
}

fn findings<'a>(out: &'a RunOutput, domain: &str) -> Vec<&'a mxaudit_core::Finding> {
    out.findings.iter().filter(|f| f.domain == domain).collect()
}

fn codes(out: &RunOutput, domain: &str) -> Vec<String> {
    let mut c: Vec<String> = findings(out, domain)
        .iter()
        .map(|f| f.code.clone())
        .collect();
    c.sort();
    c
}

fn status(out: &RunOutput, domain: &str, plugin: &str) -> (CheckStatus, String) {
    let r = out
        .checks
        .iter()
        .find(|c| c.domain == domain && c.plugin == plugin)
        .unwrap_or_else(|| panic!("no status for {plugin} on {domain}"));
    (r.status, r.detail.clone().unwrap_or_default())
}

#[tokio::test]
async fn dnssec_engine_reports_bogus_and_unsigned_domains() {
    let s = serve(world(standard_domains("", "")), &[]).await;
    let p = plugin("dnssec", "");
    let out = run(
        &[p],
        &["good.test", "expired.test", "wrongds.test", "plain.test"],
        &s.dns,
    )
    .await;
    assert!(codes(&out, "good.test").is_empty(), "{:?}", out.findings);
    assert_eq!(status(&out, "good.test", "dnssec").0, CheckStatus::Pass);
    assert_eq!(codes(&out, "expired.test"), vec!["dnssec.bogus"]);
    let f = findings(&out, "expired.test")[0];
    assert_eq!(f.severity, mxaudit_core::Severity::Critical);
    assert!(f.detail.contains("expired on"), "{}", f.detail);
    assert!(
        f.evidence.iter().any(|e| e.contains("expired.test. MX")),
        "{:?}",
        f.evidence
    );
    assert_eq!(codes(&out, "wrongds.test"), vec!["dnssec.bogus"]);
    assert!(
        findings(&out, "wrongds.test")[0]
            .detail
            .contains("match none")
    );
    assert_eq!(codes(&out, "plain.test"), vec!["dnssec.unsigned"]);
    assert_eq!(
        findings(&out, "plain.test")[0].severity,
        mxaudit_core::Severity::Info
    );
}

#[tokio::test]
async fn dnssec_engine_over_tcp() {
    let s = serve(world(standard_domains("", "")), &[(".", Fault::Truncate)]).await;
    let out = run(
        &[plugin("dnssec", "")],
        &["good.test", "expired.test", "plain.test"],
        &s.dns,
    )
    .await;
    assert!(codes(&out, "good.test").is_empty());
    assert_eq!(codes(&out, "expired.test"), vec!["dnssec.bogus"]);
    assert_eq!(codes(&out, "plain.test"), vec!["dnssec.unsigned"]);
    assert!(s.server.tcp_query_count() > 0);
}

#[tokio::test]
async fn dnssec_engine_through_a_stripping_resolver_decides_nothing() {
    let s = serve(
        world(standard_domains("", "")),
        &[(".", Fault::StripDnssec)],
    )
    .await;
    let out = run(
        &[plugin("dnssec", "")],
        &["good.test", "expired.test"],
        &s.dns,
    )
    .await;
    // Not one domain is called bogus: the resolver is the problem, said once.
    assert!(out.findings.is_empty(), "{:?}", out.findings);
    for d in ["good.test", "expired.test"] {
        let (st, detail) = status(&out, d, "dnssec");
        assert_eq!(st, CheckStatus::Error);
        assert!(detail.contains("strips DNSSEC"), "{detail}");
    }
    assert!(s.dns.dnssec_unavailable().is_some());
}

#[tokio::test]
async fn dnssec_engine_when_the_resolver_hides_bogus_answers() {
    // A validating resolver answers SERVFAIL for bogus data unless asked
    // with CD=1; the engine still names the broken link.
    let s = serve(
        world(standard_domains("", "")),
        &[("expired.test", Fault::ServFailUnlessCd)],
    )
    .await;
    let out = run(
        &[plugin("dnssec", "")],
        &["expired.test", "good.test"],
        &s.dns,
    )
    .await;
    assert_eq!(codes(&out, "expired.test"), vec!["dnssec.bogus"]);
    let f = findings(&out, "expired.test")[0];
    assert!(
        f.detail.contains("expired on") && f.detail.contains("SERVFAIL"),
        "{}",
        f.detail
    );
    assert!(codes(&out, "good.test").is_empty());
}

/// A scripted MX with STARTTLS presenting `cert`, on `ip:port`.
async fn mx_server(ip: Ipv4Addr, port: u16, name: &str, cert: Option<&TestCert>) -> SmtpServer {
    let mut script = SmtpScript::new(name);
    if let Some(cert) = cert {
        script = script.starttls(cert.server_config().expect("server config"));
    }
    SmtpServer::start(SocketAddr::from((ip, port)), script)
        .await
        .expect("scripted SMTP server starts")
}

fn tlsa(owner_host: &str, usage: u8, selector: u8, matching: u8, cert_der: &[u8]) -> String {
    let data = mxaudit_checks::dane::matching::association(cert_der, selector, matching)
        .expect("association");
    let hex: String = data.iter().map(|b| format!("{b:02X}")).collect();
    format!("_25._tcp.{owner_host} IN TLSA {usage} {selector} {matching} {hex}\n")
}

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 78, 1, last)
}

/// A free port on every address of `ips` (the dane plugin has one port).
async fn servers_on_one_port(
    specs: Vec<(Ipv4Addr, String, Option<&TestCert>)>,
) -> (u16, Vec<SmtpServer>) {
    'retry: for _ in 0..20 {
        let mut servers = Vec::new();
        let mut port = 0;
        for (ip, name, cert) in &specs {
            let mut script = SmtpScript::new(name);
            if let Some(cert) = cert {
                script = script.starttls(cert.server_config().expect("server config"));
            }
            match SmtpServer::start(SocketAddr::from((*ip, port)), script).await {
                Ok(s) => {
                    port = s.port();
                    servers.push(s);
                }
                Err(_) => continue 'retry,
            }
        }
        return (port, servers);
    }
    panic!("no common port for the scripted servers");
}

#[tokio::test]
async fn dane_engine_matches_tlsa_records_against_the_certificates_the_servers_present() {
    let ee = certs::self_signed(&["mx.good.test"], Validity::Current).expect("cert");
    let ca = TestCa::new("DANE test CA").expect("ca");
    let ta_chain = ca.issue(&["mx.ta.test"], Validity::Current).expect("cert");
    let other_ca = TestCa::new("Another CA").expect("ca");
    let wrong_ta_chain = other_ca
        .issue(&["mx.wrongta.test"], Validity::Current)
        .expect("cert");
    let rolled = certs::self_signed(&["mx.rolled.test"], Validity::Current).expect("cert");
    let old_key = certs::self_signed(&["mx.rolled.test"], Validity::Current).expect("cert");
    let pkix = certs::self_signed(&["mx.pkix.test"], Validity::Current).expect("cert");
    let plain = certs::self_signed(&["mx.plain.test"], Validity::Current).expect("cert");

    let d =
        |name: &str, last: u8, extra: String, signing| domain_zone(name, ip(last), &extra, signing);
    let zones = vec![
        // DANE-EE, SPKI SHA-256: the usual record; plus an SHA-512 full-cert one.
        d(
            "good",
            1,
            tlsa("mx", 3, 1, 1, ee.chain[0].as_ref()) + &tlsa("mx", 3, 0, 2, ee.chain[0].as_ref()),
            Signing::Secure,
        ),
        // DANE-TA: the issuing CA, full certificate SHA-256.
        d(
            "ta",
            2,
            tlsa("mx", 2, 0, 1, ca.der().as_ref()),
            Signing::Secure,
        ),
        // DANE-TA naming a CA that did not issue the server's certificate.
        d(
            "wrongta",
            3,
            tlsa("mx", 2, 1, 1, ca.der().as_ref()),
            Signing::Secure,
        ),
        // The key was rolled without updating TLSA.
        d(
            "rolled",
            4,
            tlsa("mx", 3, 1, 1, old_key.chain[0].as_ref()),
            Signing::Secure,
        ),
        // PKIX-EE only: unusable for SMTP, nothing to connect for.
        d(
            "pkix",
            5,
            tlsa("mx", 1, 1, 1, pkix.chain[0].as_ref()),
            Signing::Secure,
        ),
        // TLSA in an unsigned zone: ignored by senders.
        d(
            "plain",
            6,
            tlsa("mx", 3, 1, 1, plain.chain[0].as_ref()),
            Signing::Unsigned,
        ),
        // TLSA whose signatures expired: bogus.
        d(
            "expired",
            7,
            tlsa("mx", 3, 1, 1, ee.chain[0].as_ref()),
            Signing::ExpiredSignatures,
        ),
        // No STARTTLS at all: the records cannot be checked.
        d(
            "notls",
            8,
            tlsa("mx", 3, 1, 1, ee.chain[0].as_ref()),
            Signing::Secure,
        ),
        // No TLSA: DANE does not apply.
        d("nodane", 9, String::new(), Signing::Secure),
    ];
    let world = world(zones);
    let (port, servers) = servers_on_one_port(vec![
        (ip(1), "mx.good.test".into(), Some(&ee)),
        (ip(2), "mx.ta.test".into(), Some(&ta_chain)),
        (ip(3), "mx.wrongta.test".into(), Some(&wrong_ta_chain)),
        (ip(4), "mx.rolled.test".into(), Some(&rolled)),
        (ip(5), "mx.pkix.test".into(), Some(&pkix)),
        (ip(6), "mx.plain.test".into(), Some(&plain)),
        (ip(7), "mx.expired.test".into(), Some(&ee)),
        (ip(8), "mx.notls.test".into(), None),
        (ip(9), "mx.nodane.test".into(), Some(&ee)),
    ])
    .await;
    let s = serve(world, &[]).await;
    let domains = [
        "good.test",
        "ta.test",
        "wrongta.test",
        "rolled.test",
        "pkix.test",
        "plain.test",
        "expired.test",
        "notls.test",
        "nodane.test",
    ];
    let out = run(&[dane_plugin(port)], &domains, &s.dns).await;

    assert!(
        codes(&out, "good.test").is_empty(),
        "{:?}",
        findings(&out, "good.test")
    );
    assert_eq!(status(&out, "good.test", "dane").0, CheckStatus::Pass);
    assert!(
        codes(&out, "ta.test").is_empty(),
        "{:?}",
        findings(&out, "ta.test")
    );

    assert_eq!(codes(&out, "wrongta.test"), vec!["dane.tlsa_mismatch"]);
    let f = findings(&out, "wrongta.test")[0];
    assert_eq!(f.subject, format!("mx.wrongta.test {}:{port}", ip(3)));
    assert!(
        f.detail.contains("trust anchor must be in the chain"),
        "{}",
        f.detail
    );

    assert_eq!(codes(&out, "rolled.test"), vec!["dane.tlsa_mismatch"]);
    let f = findings(&out, "rolled.test")[0];
    assert_eq!(f.severity, mxaudit_core::Severity::Critical);
    // The remediation gives the record for the key the server presents.
    let presented = tlsa("mx", 3, 1, 1, rolled.chain[0].as_ref());
    let hex = presented
        .split_whitespace()
        .last()
        .expect("hex")
        .to_ascii_lowercase();
    assert!(
        f.remediation.contains(&format!("TLSA 3 1 1 {hex}")),
        "{}",
        f.remediation
    );

    assert_eq!(codes(&out, "pkix.test"), vec!["dane.tlsa_unusable"]);
    assert!(findings(&out, "pkix.test")[0].detail.contains("PKIX-EE"));
    assert_eq!(codes(&out, "plain.test"), vec!["dane.tlsa_unsigned"]);
    assert_eq!(codes(&out, "expired.test"), vec!["dane.tlsa_bogus"]);
    assert!(
        findings(&out, "expired.test")[0]
            .detail
            .contains("expired on")
    );

    assert!(codes(&out, "notls.test").is_empty());
    let (st, detail) = status(&out, "notls.test", "dane");
    assert_eq!(st, CheckStatus::Error);
    assert!(
        detail.contains("could not be checked") && detail.contains("STARTTLS"),
        "{detail}"
    );
    assert!(codes(&out, "nodane.test").is_empty());

    // Only the hosts whose usable, secure TLSA records need a chain were
    // connected to; each session said STARTTLS (when offered) and QUIT, never MAIL.
    let connected: Vec<bool> = servers.iter().map(|s| !s.sessions().is_empty()).collect();
    assert_eq!(
        connected,
        vec![true, true, true, true, false, false, false, true, false],
        "connections per server"
    );
    for server in &servers {
        for log in server.sessions() {
            let verbs = log.verbs();
            assert!(
                !verbs
                    .iter()
                    .any(|v| v == "MAIL" || v == "RCPT" || v == "DATA"),
                "{verbs:?}"
            );
            assert_eq!(verbs.last().map(String::as_str), Some("QUIT"), "{verbs:?}");
        }
    }
}

#[tokio::test]
async fn dane_engine_mixed_records_and_a_usage_1_record() {
    // A usable DANE-EE record next to a PKIX-EE one: the PKIX record is
    // reported unusable, and the DANE-EE record matches.
    let ee = certs::self_signed(&["mx.mixed.test"], Validity::Current).expect("cert");
    let extra =
        tlsa("mx", 1, 1, 1, ee.chain[0].as_ref()) + &tlsa("mx", 3, 1, 1, ee.chain[0].as_ref());
    let world = world(vec![domain_zone("mixed", ip(20), &extra, Signing::Secure)]);
    let server = mx_server(ip(20), 0, "mx.mixed.test", Some(&ee)).await;
    let s = serve(world, &[]).await;
    let out = run(&[dane_plugin(server.port())], &["mixed.test"], &s.dns).await;
    assert_eq!(codes(&out, "mixed.test"), vec!["dane.tlsa_unusable"]);
    let f = findings(&out, "mixed.test")[0];
    assert!(f.detail.contains("1 usable record"), "{}", f.detail);
    // One session per run (`run` runs twice: Japanese, then English).
    assert_eq!(server.sessions().len(), 2, "the usable record was checked");
    assert_eq!(status(&out, "mixed.test", "dane").0, CheckStatus::Fail);
}

// ---------------------------------------------------------------------------
// The binary: `[resolver] trust_anchor`, and the run-level warning said once.

/// A configuration in `dir` whose trust anchor is the world's root key.
fn config_with_anchor(dir: &std::path::Path, anchor: &str) -> PathBuf {
    std::fs::write(dir.join("root.key"), anchor).expect("anchor");
    let config = dir.join("audit.toml");
    std::fs::write(
        &config,
        "[resolver]\ntimeout = \"800ms\"\ntrust_anchor = \"root.key\"\n",
    )
    .expect("config");
    config
}

async fn mxaudit(args: Vec<String>) -> std::process::Output {
    // The testbed answers on this runtime: run the binary off it.
    tokio::task::spawn_blocking(move || {
        crate::support::mxaudit()
            .args(&args)
            .output()
            .expect("mxaudit runs")
    })
    .await
    .expect("joined")
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn cli_reads_the_trust_anchor_from_the_configuration() {
    let world = world(standard_domains("", ""));
    let dir = scratch("cli");
    let config = config_with_anchor(&dir, world.trust_anchor());
    let server = world.serve().await.expect("serves");
    let ns = server.addr().to_string();
    let out = mxaudit(args(&[
        "audit",
        "good.test",
        "expired.test",
        "plain.test",
        "--nameserver",
        &ns,
        "--plugins",
        "dnssec",
        "--config",
        config.to_str().expect("utf8"),
        "--format",
        "json",
    ]))
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "critical finding: {stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("json report");
    let found: Vec<(String, String)> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["domain"].as_str().unwrap_or_default().to_owned(),
                f["code"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        found,
        vec![
            ("expired.test".to_owned(), "dnssec.bogus".to_owned()),
            ("plain.test".to_owned(), "dnssec.unsigned".to_owned())
        ]
    );
    assert!(!stderr.contains("DNSSEC not validated"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn cli_says_once_that_the_resolver_strips_dnssec() {
    let world = world(standard_domains("", ""));
    let dir = scratch("cli-strip");
    let config = config_with_anchor(&dir, world.trust_anchor());
    let server = world.serve().await.expect("serves");
    server.set_fault(".", Fault::StripDnssec);
    let ns = server.addr().to_string();
    let out = mxaudit(args(&[
        "audit",
        "good.test",
        "expired.test",
        "plain.test",
        "--nameserver",
        &ns,
        "--plugins",
        "dnssec",
        "--config",
        config.to_str().expect("utf8"),
        "--format",
        "json",
    ]))
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "no finding: {stderr}");
    assert_eq!(
        stderr.matches("DNSSEC not validated in this run").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("strips DNSSEC"), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&String::from_utf8_lossy(&out.stdout)).expect("json");
    assert_eq!(report["findings"].as_array().map(Vec::len), Some(0));
    let statuses: Vec<&str> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| c["status"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(statuses, vec!["error", "error", "error"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn cli_rejects_an_unusable_trust_anchor_file() {
    let dir = scratch("cli-bad-anchor");
    let config = dir.join("audit.toml");
    std::fs::write(&config, "[resolver]\ntrust_anchor = \"missing.key\"\n").expect("config");
    let out = mxaudit(args(&[
        "audit",
        "example.test",
        "--nameserver",
        "127.0.0.1:9",
        "--config",
        config.to_str().expect("utf8"),
    ]))
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("resolver.trust_anchor") && stderr.contains("missing.key"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
