//! The DNS layer against the testbed server over UDP and TCP: typed outcomes,
//! per-run de-duplication, truncation fallback, hostile answers.

use std::time::{Duration, Instant};

use mxaudit_dns::{Answer, DomainName, LookupFailure, RType};
use mxaudit_testbed::{DnsServer, Fault, ZoneText};

use crate::support::demo_server;
use crate::support::dns_client;

fn name(s: &str) -> DomainName {
    DomainName::parse(s).expect("valid name")
}

#[tokio::test]
async fn outcomes_are_typed() {
    let server = demo_server().await;
    let dns = dns_client(server.addr());
    match dns
        .query(&name("healthy.example"), RType::Mx)
        .await
        .as_ref()
    {
        Answer::Records(set) => {
            let mx = set.mx();
            assert_eq!(mx.len(), 2);
            assert!(
                mx.iter()
                    .any(|(p, h, ttl)| *p == 10 && *h == "mx1.healthy.example." && *ttl == 3600)
            );
        }
        other => panic!("expected MX records, got {other:?}"),
    }
    assert!(matches!(
        dns.query(&name("gone.example"), RType::Mx).await.as_ref(),
        Answer::NxDomain {
            negative_ttl: Some(300)
        }
    ));
    assert!(matches!(
        dns.query(&name("nomx.example"), RType::Mx).await.as_ref(),
        Answer::NoData { .. }
    ));
    assert_eq!(
        dns.query(&name("servfail.example"), RType::Mx)
            .await
            .as_ref(),
        &Answer::Failed(LookupFailure::ServFail)
    );
    // A zone the server does not serve.
    assert_eq!(
        dns.query(&name("elsewhere.test"), RType::A).await.as_ref(),
        &Answer::Failed(LookupFailure::Refused)
    );
    let t = Instant::now();
    assert_eq!(
        dns.query(&name("slow.example"), RType::Mx).await.as_ref(),
        &Answer::Failed(LookupFailure::Timeout)
    );
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "timeout bounded: {:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn each_question_is_asked_once_even_when_asked_concurrently() {
    let server = demo_server().await;
    let dns = dns_client(server.addr());
    let q = name("healthy.example");
    let answers = futures::future::join_all((0..500).map(|_| dns.query(&q, RType::Mx))).await;
    assert!(
        answers
            .iter()
            .all(|a| matches!(a.as_ref(), Answer::Records(_)))
    );
    // Negative answers are shared too.
    for _ in 0..50 {
        dns.query(&name("gone.example"), RType::Txt).await;
    }
    assert_eq!(server.count_of("healthy.example.", "MX"), 1);
    assert_eq!(server.count_of("gone.example.", "TXT"), 1);
    let stats = dns.stats();
    assert_eq!(stats.queries, 2);
    assert_eq!(stats.shared, 548);
}

#[tokio::test]
async fn truncated_udp_answers_are_retried_over_tcp() {
    let server = demo_server().await;
    server.set_fault("truncated.healthy.example", Fault::Truncate);
    server.set_fault("healthy.example", Fault::Truncate);
    let dns = dns_client(server.addr());
    let a = dns.query(&name("healthy.example"), RType::Mx).await;
    assert!(
        matches!(a.as_ref(), Answer::Records(set) if set.mx().len() == 2),
        "{a:?}"
    );
    assert!(server.tcp_query_count() >= 1, "the answer came over TCP");
}

fn zone(origin: &str, body: &str) -> ZoneText {
    ZoneText {
        origin: origin.to_owned(),
        text: format!(
            "$ORIGIN {origin}\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 60\n@ IN NS ns1\nns1 IN A 127.0.0.1\n{body}"
        ),
    }
}

#[tokio::test]
async fn hostile_answers_are_bounded() {
    let mut body =
        String::from("loop IN MX 10 a.loop\na.loop IN CNAME b.loop\nb.loop IN CNAME a.loop\n");
    for i in 0..500 {
        body.push_str(&format!("many IN MX {i} mx{i}.many\n"));
    }
    body.push_str(&format!(
        "bigtxt IN TXT {}\n",
        (0..40)
            .map(|_| format!("\"{}\"", "x".repeat(250)))
            .collect::<Vec<_>>()
            .join(" ")
    ));
    let server = DnsServer::start(&[zone("hostile.test.", &body)])
        .await
        .expect("starts");
    let dns = dns_client(server.addr());
    let t = Instant::now();
    let a = dns.query(&name("a.loop.hostile.test"), RType::A).await;
    assert!(
        !matches!(a.as_ref(), Answer::Records(set) if !set.addresses().is_empty()),
        "{a:?}"
    );
    let many = dns.query(&name("many.hostile.test"), RType::Mx).await;
    assert!(
        matches!(many.as_ref(), Answer::Records(set) if set.mx().len() == 500),
        "500 MX over TCP"
    );
    let big = dns.query(&name("bigtxt.hostile.test"), RType::Txt).await;
    assert!(matches!(big.as_ref(), Answer::Records(set) if set.txt_joined()[0].len() == 10_000));
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

/// On loopback the UDP sockets are reused across queries (crates/dns
/// transport.rs): 300 questions, 20 at a time, come from at most a few dozen
/// source ports, every answer is the one asked for, and a late answer to a
/// query that timed out is ignored by the queries that reuse its socket.
#[tokio::test(flavor = "multi_thread")]
async fn loopback_sockets_are_reused_without_crosstalk() {
    use futures::StreamExt;
    let mut body = String::new();
    for i in 0..300 {
        body.push_str(&format!("n{i} IN A 10.1.{}.{}\n", i / 256, i % 256));
    }
    body.push_str("slow IN A 10.2.0.1\n");
    let server = DnsServer::start_with_faults(
        &[zone("reuse.test.", &body)],
        &[("slow.reuse.test".to_owned(), Fault::Late)],
    )
    .await
    .expect("server");
    let dns = mxaudit_dns::Dns::new(&mxaudit_dns::DnsConfig {
        nameservers: vec![server.addr()],
        timeout: Duration::from_millis(300),
        attempts: 0,
        concurrency: 20,
        ..mxaudit_dns::DnsConfig::default()
    })
    .expect("resolver");
    // A query that times out: its answer arrives 1.5 s later, on a socket that
    // is back in the pool by then.
    assert!(matches!(
        dns.query(&name("slow.reuse.test"), RType::A).await.as_ref(),
        Answer::Failed(LookupFailure::Timeout)
    ));
    let started = Instant::now();
    let answers: Vec<(usize, Answer)> = futures::stream::iter(0..300)
        .map(|i| {
            let dns = dns.clone();
            async move {
                // Spread over ~2 s so that the late answer lands mid-run.
                tokio::time::sleep_until((started + Duration::from_millis(i as u64 * 7)).into())
                    .await;
                let a = dns
                    .query(&name(&format!("n{i}.reuse.test")), RType::A)
                    .await;
                (i, a.as_ref().clone())
            }
        })
        .buffer_unordered(20)
        .collect()
        .await;
    assert!(started.elapsed() > Duration::from_millis(1500));
    for (i, answer) in answers {
        let Answer::Records(set) = &answer else {
            panic!("n{i}: {answer:?}");
        };
        let want: std::net::IpAddr = format!("10.1.{}.{}", i / 256, i % 256).parse().expect("ip");
        assert_eq!(set.addresses(), vec![want], "n{i}");
    }
    let ports = server.udp_source_count();
    assert!(ports <= 40, "{ports} source ports for 301 queries");
}

/// The loopback fast path (crates/dns multiplex.rs, one name server on
/// loopback) and hickory's resolver (any other configuration; here the same
/// server named twice) give the same typed answer to every kind of question:
/// records, a CNAME chain answered in one reply and one that must be chased
/// out of zone, NXDOMAIN and NODATA with their negative TTL, SERVFAIL,
/// REFUSED, a timeout, and a truncated reply retried over TCP.
#[tokio::test(flavor = "multi_thread")]
async fn fast_path_and_hickory_agree() {
    let server = demo_server().await;
    server.set_fault("refused.example", Fault::Refused);
    server.set_fault("tc.healthy.example", Fault::Truncate);
    let fast = dns_client(server.addr());
    let hickory = mxaudit_dns::Dns::new(&mxaudit_dns::DnsConfig {
        nameservers: vec![server.addr(), server.addr()],
        timeout: Duration::from_millis(500),
        attempts: 0,
        ..mxaudit_dns::DnsConfig::default()
    })
    .expect("resolver");
    let questions = [
        ("healthy.example", RType::Mx),
        ("mx1.healthy.example", RType::Aaaa),
        ("healthy.example", RType::Txt),
        ("alias.cname.example", RType::A),
        ("alias.cname.example", RType::Cname),
        ("selector1._domainkey.m365ok.example", RType::Txt),
        ("gone.example", RType::Mx),
        ("healthy.example", RType::Ptr),
        ("servfail.example", RType::Mx),
        ("refused.example", RType::A),
        ("slow.example", RType::Mx),
        ("tc.healthy.example", RType::Txt),
        ("listed.example", RType::Mx),
    ];
    for (q, rtype) in questions {
        let n = name(q);
        let (a, b) = tokio::join!(fast.query(&n, rtype), hickory.query(&n, rtype));
        assert_eq!(a, b, "{q} {rtype}");
    }
    // The fast path really answered (the hickory client counts its own).
    assert_eq!(fast.stats().queries, questions.len() as u64);
}

/// Derived results (a domain's MX hosts with addresses) are computed once per
/// run and key however many checks ask at once; another type under the same
/// key is another entry.
#[tokio::test(flavor = "multi_thread")]
async fn derived_results_are_computed_once() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let server = demo_server().await;
    let dns = dns_client(server.addr());
    let computed = AtomicUsize::new(0);
    let asks = (0..200).map(|_| {
        dns.derived("healthy.example", || async {
            computed.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            let mx = dns.query(&name("healthy.example"), RType::Mx).await;
            match mx.as_ref() {
                Answer::Records(set) => set.mx().len(),
                _ => 0,
            }
        })
    });
    let results = futures::future::join_all(asks).await;
    assert!(results.iter().all(|n| **n == 2), "{results:?}");
    assert_eq!(computed.load(Ordering::SeqCst), 1);
    let other: std::sync::Arc<String> = dns
        .derived("healthy.example", || async { "a string".to_owned() })
        .await;
    assert_eq!(other.as_str(), "a string");
    assert_eq!(server.count_of("healthy.example", "MX"), 1);
}
