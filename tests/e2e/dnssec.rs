//! DNSSEC and DANE end to end: a signed world served by the testbed (a test
//! root whose key is the trust anchor, `test.` under it, and below it a good
//! domain, one with expired signatures, one whose DS names another key and
//! one unsigned), over UDP and over TCP; a resolver that strips DNSSEC; the
//! `dnssec` and `dane` engines as the runner runs them, with scripted SMTP
//! servers presenting certificates that do and do not match the TLSA records.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use mxaudit_dns::{Answer, Dns, DnsConfig, DomainName, RType, Security, TrustAnchor};
use mxaudit_testbed::signed::{SignedWorld, SignedZone, Signing};
use mxaudit_testbed::{DnsServer, Fault};

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
    let s = serve(
        world(standard_domains("", "")),
        &[(".", Fault::Truncate), ("test", Fault::Truncate)],
    )
    .await;
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
        &[(".", Fault::StripDnssec), ("test", Fault::StripDnssec)],
    )
    .await;
    let err = s
        .dns
        .query_validated(&name("good.test"), RType::Mx)
        .await
        .err()
        .expect("stripping resolver detected");
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
        .err()
        .expect("anchor mismatch");
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
