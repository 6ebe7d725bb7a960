//! The `dnsbl` engine against the testbed DNS server (`tests/fixtures/zones/dnsbl`):
//! the built-in list manifests with their zone moved under `dnsbl.test`, one test
//! per finding code, the RFC 5782 §5 self-test (a list answering everything, a
//! dead list, NXDOMAIN rewriting), IPv6 nibbles, the DQS-free error codes, rate
//! limits, `mxaudit dnsbl`'s library function, and the cost of a 1,000-domain
//! run: one query per (address, list).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mxaudit_agent::{tools, view};
use mxaudit_core::manifest::{self, Plugin};
use mxaudit_core::peer::LineStatus;
use mxaudit_core::runner::{self, RunOptions, RunOutput};
use mxaudit_core::{CheckStatus, Finding, Lang, Severity, Target};
use mxaudit_dns::DomainName;
use mxaudit_testbed::{DnsServer, ZoneText};

use crate::support::{dns_client, dns_server, fixture, target, test_policy};

/// The real zone of each built-in list and the `dnsbl.test` zone standing for it.
const LISTS: &[(&str, &str, &str)] = &[
    ("dnsbl-spamhaus-zen", "zen.spamhaus.org", "zen.dnsbl.test"),
    ("dnsbl-spamhaus-dbl", "dbl.spamhaus.org", "dbl.dnsbl.test"),
    ("dnsbl-spamcop", "bl.spamcop.net", "spamcop.dnsbl.test"),
    (
        "dnsbl-barracuda",
        "b.barracudacentral.org",
        "barracuda.dnsbl.test",
    ),
    (
        "backscatterer",
        "ips.backscatterer.org",
        "backscatterer.dnsbl.test",
    ),
    (
        "dnsbl-uceprotect-1",
        "dnsbl-1.uceprotect.net",
        "uceprotect.dnsbl.test",
    ),
    ("dnsbl-psbl", "psbl.surriel.com", "psbl.dnsbl.test"),
    (
        "dnsbl-mailspike",
        "bl.mailspike.net",
        "mailspike.dnsbl.test",
    ),
];

fn builtin_text(id: &str) -> &'static str {
    let path = format!("builtin:plugins/{id}.toml");
    mxaudit_checks::BUILTIN_MANIFESTS
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, text)| *text)
        .unwrap_or_else(|| panic!("no built-in manifest {id}"))
}

/// The built-in manifest `id` with its zone replaced by `zone` and `edits`
/// applied (`(from, to)` text replacements). The DQS key variable is renamed to
/// one that is never set, so a developer's real key cannot change the zone.
fn list_manifest(id: &str, zone: &str, edits: &[(&str, &str)]) -> String {
    let (_, real, _) = LISTS
        .iter()
        .find(|(i, ..)| *i == id)
        .unwrap_or_else(|| panic!("unknown list {id}"));
    let mut text =
        builtin_text(id).replace(&format!("zone = \"{real}\""), &format!("zone = \"{zone}\""));
    assert!(
        text.contains(&format!("zone = \"{zone}\"")),
        "{id}: zone line"
    );
    text = text.replace(
        "key_env = \"SPAMHAUS_DQS_KEY\"",
        "key_env = \"MXAUDIT_TEST_NEVER_SET_DQS_KEY\"",
    );
    for (from, to) in edits {
        assert!(text.contains(from), "{id}: `{from}` not in the manifest");
        text = text.replace(from, to);
    }
    text
}

/// A plugin from a built-in manifest moved to `zone`.
fn list_plugin_at(id: &str, zone: &str, edits: &[(&str, &str)]) -> Plugin {
    let text = list_manifest(id, zone, edits);
    manifest::load(
        &format!("test:{id}.toml"),
        Some(id),
        &text,
        mxaudit_checks::ENGINES,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// A built-in list moved to its `dnsbl.test` zone.
fn list_plugin(id: &str) -> Plugin {
    let (_, _, zone) = LISTS
        .iter()
        .find(|(i, ..)| *i == id)
        .unwrap_or_else(|| panic!("unknown list {id}"));
    list_plugin_at(id, zone, &[])
}

/// Every built-in list, moved.
fn all_lists() -> Vec<Plugin> {
    LISTS.iter().map(|(id, ..)| list_plugin(id)).collect()
}

async fn lists_server() -> DnsServer {
    dns_server(&fixture("zones/dnsbl")).await
}

async fn run_lists(
    plugins: &[Plugin],
    targets: &[Target],
    server: &DnsServer,
    lang: Lang,
) -> RunOutput {
    let dns = dns_client(server.addr());
    let opts = RunOptions {
        lang,
        ..RunOptions::default()
    };
    runner::run(plugins, targets, &dns, test_policy(), &opts).await
}

fn findings<'a>(out: &'a RunOutput, code: &str) -> Vec<&'a Finding> {
    out.findings.iter().filter(|f| f.code == code).collect()
}

fn status_of(out: &RunOutput, domain: &str, plugin: &str) -> CheckStatus {
    out.checks
        .iter()
        .find(|c| c.domain == domain && c.plugin == plugin)
        .map(|c| c.status)
        .unwrap_or_else(|| panic!("no status for {plugin} on {domain}"))
}

fn no_text_errors(out: &RunOutput) {
    for f in &out.findings {
        for text in [&f.title, &f.detail, &f.remediation] {
            assert!(
                !text.contains("[text error") && !text.contains("{{") && !text.contains("{%"),
                "{}: {text}",
                f.code
            );
        }
    }
}

/// Issue 5, "done when": an MX address listed on three lists gives three
/// findings, each with its list's meaning of the return code; the other lists
/// pass.
#[tokio::test]
async fn listed_on_three_lists_gives_three_findings_with_their_meanings() {
    let server = lists_server().await;
    let out = run_lists(
        &all_lists(),
        &[target("three.mail.test", None)],
        &server,
        Lang::En,
    )
    .await;
    no_text_errors(&out);
    let listed = findings(&out, "dnsbl.listed");
    let by_subject: BTreeMap<&str, &Finding> =
        listed.iter().map(|f| (f.subject.as_str(), *f)).collect();
    assert_eq!(
        by_subject.keys().copied().collect::<Vec<_>>(),
        [
            "203.0.113.10 (barracuda.dnsbl.test)",
            "203.0.113.10 (spamcop.dnsbl.test)",
            "203.0.113.10 (zen.dnsbl.test)",
        ],
        "{:#?}",
        out.findings
    );
    let zen = by_subject["203.0.113.10 (zen.dnsbl.test)"];
    assert_eq!(zen.severity, Severity::High);
    assert!(zen.title.contains("XBL"), "{}", zen.title);
    assert!(zen.detail.contains("127.0.0.4"), "{}", zen.detail);
    assert!(
        zen.evidence
            .iter()
            .any(|e| e == "10.113.0.203.zen.dnsbl.test A 127.0.0.4"),
        "{:?}",
        zen.evidence
    );
    assert!(
        zen.evidence
            .iter()
            .any(|e| e.contains("TXT")
                && e.contains("https://check.spamhaus.org/query/ip/203.0.113.10")),
        "the list's TXT reason is in the evidence: {:?}",
        zen.evidence
    );
    assert!(
        zen.evidence
            .iter()
            .any(|e| e.contains("self-test (RFC 5782 §5)")),
        "{:?}",
        zen.evidence
    );
    assert!(
        zen.evidence
            .iter()
            .any(|e| e == "used by: MX mx.three.mail.test")
    );
    let spamcop = by_subject["203.0.113.10 (spamcop.dnsbl.test)"];
    assert!(
        spamcop.title.contains("reported as a spam source"),
        "{}",
        spamcop.title
    );
    assert!(
        spamcop
            .detail
            .contains("Blocked - see https://www.spamcop.net")
    );
    let barracuda = by_subject["203.0.113.10 (barracuda.dnsbl.test)"];
    assert!(
        barracuda.title.contains("poor sending reputation"),
        "{}",
        barracuda.title
    );
    for id in [
        "backscatterer",
        "dnsbl-uceprotect-1",
        "dnsbl-psbl",
        "dnsbl-mailspike",
        "dnsbl-spamhaus-dbl",
    ] {
        assert_eq!(
            status_of(&out, "three.mail.test", id),
            CheckStatus::Pass,
            "{id}"
        );
    }
    for id in ["dnsbl-spamhaus-zen", "dnsbl-spamcop", "dnsbl-barracuda"] {
        assert_eq!(
            status_of(&out, "three.mail.test", id),
            CheckStatus::Fail,
            "{id}"
        );
    }
}

/// Seed 002 (KB2590562): a Backscatterer listing is `dnsbl.backscatterer_listed`,
/// medium, with the remediation of the article, in English and Japanese.
#[tokio::test]
async fn backscatterer_listing_has_the_kb2590562_remediation() {
    let server = lists_server().await;
    let plugins = [
        list_plugin("backscatterer"),
        list_plugin("dnsbl-spamhaus-zen"),
    ];
    let targets = [target("bounce.mail.test", None)];
    let out = run_lists(&plugins, &targets, &server, Lang::En).await;
    no_text_errors(&out);
    let found = findings(&out, "dnsbl.backscatterer_listed");
    assert_eq!(found.len(), 1, "{:#?}", out.findings);
    let f = found[0];
    assert_eq!(f.subject, "203.0.113.20 (backscatterer.dnsbl.test)");
    assert_eq!(f.severity, Severity::Medium);
    assert!(f.references.contains(&"KB2590562".to_owned()));
    assert!(f.remediation.contains("safe mode"), "{}", f.remediation);
    assert!(f.remediation.contains("nonexistent recipients"));
    assert!(
        f.detail.contains("sent backscatter to our traps"),
        "{}",
        f.detail
    );
    assert!(
        findings(&out, "dnsbl.listed").is_empty(),
        "ZEN does not list it"
    );

    let out = run_lists(&plugins, &targets, &server, Lang::Ja).await;
    no_text_errors(&out);
    let f = findings(&out, "dnsbl.backscatterer_listed")[0];
    assert!(f.remediation.contains("セーフ モード"), "{}", f.remediation);
    assert!(
        f.title.contains("Backscatterer.org に登録されています"),
        "{}",
        f.title
    );
}

/// A domain list (Spamhaus DBL) asks the domain itself: `dnsbl.domain_listed`.
#[tokio::test]
async fn domain_list_lists_the_domain() {
    let server = lists_server().await;
    let out = run_lists(
        &[list_plugin("dnsbl-spamhaus-dbl")],
        &[
            target("spammy.mail.test", None),
            target("clean.mail.test", None),
        ],
        &server,
        Lang::Ja,
    )
    .await;
    no_text_errors(&out);
    let found = findings(&out, "dnsbl.domain_listed");
    assert_eq!(found.len(), 1, "{:#?}", out.findings);
    assert_eq!(found[0].subject, "spammy.mail.test (dbl.dnsbl.test)");
    assert!(
        found[0].title.contains("低評価のドメイン"),
        "{}",
        found[0].title
    );
    assert_eq!(
        status_of(&out, "clean.mail.test", "dnsbl-spamhaus-dbl"),
        CheckStatus::Pass
    );
    // Its self-test uses the DBL's documented test entry, once per run.
    assert_eq!(server.count_of("dbltest.com.dbl.dnsbl.test", "A"), 1);
    assert_eq!(server.count_of("invalid.dbl.dnsbl.test", "A"), 1);
}

/// Spamhaus answering 127.255.255.254 to everything (a public resolver): the
/// self-test fails on an error code, one `dnsbl.query_refused` per domain, and
/// never a listing.
#[tokio::test]
async fn error_code_answers_are_query_refused_never_listed() {
    let server = lists_server().await;
    let refusing = list_plugin_at("dnsbl-spamhaus-zen", "refusing.dnsbl.test", &[]);
    let out = run_lists(
        &[refusing],
        &[target("three.mail.test", None)],
        &server,
        Lang::En,
    )
    .await;
    no_text_errors(&out);
    assert!(
        findings(&out, "dnsbl.listed").is_empty(),
        "{:#?}",
        out.findings
    );
    let refused = findings(&out, "dnsbl.query_refused");
    assert_eq!(refused.len(), 1, "{:#?}", out.findings);
    let f = refused[0];
    assert_eq!(f.subject, "refusing.dnsbl.test");
    assert_eq!(f.severity, Severity::Medium);
    assert!(f.title.contains("127.255.255.254"), "{}", f.title);
    assert!(f.detail.contains("public or open resolver"), "{}", f.detail);
    assert!(
        f.remediation.contains("SPAMHAUS_DQS_KEY"),
        "{}",
        f.remediation
    );
    assert_eq!(
        status_of(&out, "three.mail.test", "dnsbl-spamhaus-zen"),
        CheckStatus::Error,
        "the check could not decide"
    );
    // The address itself was never asked: the list was unusable.
    assert_eq!(server.count_of("10.113.0.203.refusing.dnsbl.test", "A"), 0);
}

/// A healthy list that answers one address with an error code (over the
/// query limit): `dnsbl.query_refused` for that address.
#[tokio::test]
async fn error_code_for_one_address_is_query_refused() {
    let server = lists_server().await;
    let overlimit = list_plugin_at("dnsbl-spamhaus-zen", "overlimit.dnsbl.test", &[]);
    let out = run_lists(
        &[overlimit],
        &[target("three.mail.test", None)],
        &server,
        Lang::En,
    )
    .await;
    no_text_errors(&out);
    assert!(
        findings(&out, "dnsbl.listed").is_empty(),
        "{:#?}",
        out.findings
    );
    let refused = findings(&out, "dnsbl.query_refused");
    assert_eq!(refused.len(), 1, "{:#?}", out.findings);
    assert_eq!(refused[0].subject, "203.0.113.10 (overlimit.dnsbl.test)");
    assert!(refused[0].detail.contains("excessive number of queries"));
}

/// RFC 5782 §5: a list that lists 127.0.0.1 answers everything (an expired
/// list domain parked under a wildcard). None of its answers becomes a listing.
#[tokio::test]
async fn list_answering_everything_is_unusable() {
    let server = lists_server().await;
    let broken = list_plugin_at("dnsbl-spamcop", "broken.dnsbl.test", &[]);
    let out = run_lists(
        &[broken],
        &[
            target("three.mail.test", None),
            target("clean.mail.test", None),
        ],
        &server,
        Lang::En,
    )
    .await;
    no_text_errors(&out);
    assert!(
        findings(&out, "dnsbl.listed").is_empty(),
        "{:#?}",
        out.findings
    );
    let refused = findings(&out, "dnsbl.query_refused");
    assert_eq!(refused.len(), 2, "one per domain: {:#?}", out.findings);
    for f in refused {
        assert_eq!(f.subject, "broken.dnsbl.test");
        assert!(f.detail.contains("answers every name"), "{}", f.detail);
        assert!(f.detail.contains("127.0.0.1"), "{}", f.detail);
    }
    // The self-test was asked once for the whole run.
    assert_eq!(server.count_of("1.0.0.127.broken.dnsbl.test", "A"), 1);
    assert_eq!(server.count_of("2.0.0.127.broken.dnsbl.test", "A"), 1);
}

/// RFC 5782 §5: a list that does not list 127.0.0.2 is gone or refuses silently.
#[tokio::test]
async fn dead_list_is_unusable() {
    let server = lists_server().await;
    let dead = list_plugin_at("dnsbl-psbl", "dead.dnsbl.test", &[]);
    let out = run_lists(
        &[dead],
        &[target("three.mail.test", None)],
        &server,
        Lang::En,
    )
    .await;
    no_text_errors(&out);
    let refused = findings(&out, "dnsbl.query_refused");
    assert_eq!(refused.len(), 1, "{:#?}", out.findings);
    assert!(
        refused[0].title.contains("NXDOMAIN"),
        "{}",
        refused[0].title
    );
    assert!(
        refused[0].detail.contains("test point 127.0.0.2"),
        "{}",
        refused[0].detail
    );
}

/// RFC 5782 §2.1: an answer outside 127.0.0.0/8 (a resolver rewriting NXDOMAIN)
/// is not a list answer.
#[tokio::test]
async fn answers_outside_loopback_are_refused() {
    let server = lists_server().await;
    let hijacked = list_plugin_at("dnsbl-mailspike", "hijacked.dnsbl.test", &[]);
    let out = run_lists(
        &[hijacked],
        &[target("three.mail.test", None)],
        &server,
        Lang::En,
    )
    .await;
    no_text_errors(&out);
    assert!(findings(&out, "dnsbl.listed").is_empty());
    let refused = findings(&out, "dnsbl.query_refused");
    assert_eq!(refused.len(), 1, "{:#?}", out.findings);
    assert!(
        refused[0].detail.contains("outside 127.0.0.0/8"),
        "{}",
        refused[0].detail
    );
    assert!(refused[0].remediation.contains("NXDOMAIN rewriting"));
}

/// A list that never answers is `dnsbl.lookup_failed` (low), never "not
/// listed", and the check ends within the DNS timeout.
#[tokio::test]
async fn silent_list_is_lookup_failed() {
    let server = lists_server().await;
    let slow = list_plugin_at("dnsbl-uceprotect-1", "slow.dnsbl.test", &[]);
    let started = Instant::now();
    let out = run_lists(
        &[slow],
        &[target("three.mail.test", None)],
        &server,
        Lang::En,
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    no_text_errors(&out);
    let failed = findings(&out, "dnsbl.lookup_failed");
    assert_eq!(failed.len(), 1, "{:#?}", out.findings);
    assert_eq!(failed[0].severity, Severity::Low);
    assert_eq!(failed[0].subject, "slow.dnsbl.test");
    assert!(failed[0].title.contains("timeout"), "{}", failed[0].title);
    assert_eq!(
        status_of(&out, "three.mail.test", "dnsbl-uceprotect-1"),
        CheckStatus::Error
    );
}

/// RFC 5782 §2.4: IPv6 addresses are asked in nibble form of lists with IPv6
/// data, after the ::FFFF:7F00:2 self-test; lists without it are not asked.
#[tokio::test]
async fn ipv6_addresses_are_asked_as_nibbles() {
    let server = lists_server().await;
    let out = run_lists(
        &[
            list_plugin("dnsbl-spamhaus-zen"),
            list_plugin("dnsbl-spamcop"),
        ],
        &[target("v6.mail.test", None)],
        &server,
        Lang::En,
    )
    .await;
    no_text_errors(&out);
    let listed = findings(&out, "dnsbl.listed");
    assert_eq!(listed.len(), 1, "{:#?}", out.findings);
    assert_eq!(listed[0].subject, "2001:db8::25 (zen.dnsbl.test)");
    assert!(listed[0].title.contains("CSS"), "{}", listed[0].title);
    let nibbles = "5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2";
    assert_eq!(
        server.count_of(&format!("{nibbles}.zen.dnsbl.test"), "A"),
        1
    );
    assert_eq!(
        server.count_of(
            "2.0.0.0.0.0.f.7.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.zen.dnsbl.test",
            "A"
        ),
        1,
        "the IPv6 self-test point"
    );
    // SpamCop has no IPv6 data: asked about the IPv4 address only.
    assert_eq!(
        server.count_of(&format!("{nibbles}.spamcop.dnsbl.test"), "A"),
        0
    );
    assert_eq!(server.count_of("11.113.0.203.spamcop.dnsbl.test", "A"), 1);
}

/// Private MX addresses cannot be listed: they are never asked.
#[tokio::test]
async fn private_addresses_are_not_asked() {
    let server = lists_server().await;
    let out = run_lists(
        &[list_plugin("dnsbl-spamhaus-zen")],
        &[target("private.mail.test", None)],
        &server,
        Lang::En,
    )
    .await;
    assert!(out.findings.is_empty(), "{:#?}", out.findings);
    assert_eq!(server.count_of("5.0.0.10.zen.dnsbl.test", "A"), 0);
    assert_eq!(
        server.count_of("2.0.0.127.zen.dnsbl.test", "A"),
        0,
        "no address to ask, no self-test"
    );
}

/// Outbound addresses of a target are asked like MX addresses.
#[tokio::test]
async fn outbound_addresses_are_asked() {
    let server = lists_server().await;
    let mut t = target("clean.mail.test", None);
    t.outbound_ips = vec!["203.0.113.20".parse().expect("ip")];
    let out = run_lists(&[list_plugin("backscatterer")], &[t], &server, Lang::En).await;
    let found = findings(&out, "dnsbl.backscatterer_listed");
    assert_eq!(found.len(), 1, "{:#?}", out.findings);
    assert!(found[0].evidence.iter().any(|e| e == "used by: outbound"));
}

fn shared_zone(domains: usize) -> ZoneText {
    let mut text = String::from(
        "$ORIGIN shared.test.\n$TTL 300\n\
         @ IN SOA ns1.shared.test. hostmaster.shared.test. 1 3600 600 86400 300\n\
         @ IN NS ns1.shared.test.\nns1 IN A 127.0.0.1\n\
         mx.provider IN A 203.0.113.50\n",
    );
    for i in 0..domains {
        text.push_str(&format!("d{i} IN MX 10 mx.provider.shared.test.\n"));
    }
    ZoneText {
        origin: "shared.test.".to_owned(),
        text,
    }
}

/// Design.md, "DNS": a thousand domains hosted on one provider make one DNSBL
/// query per (address, list), one self-test per list and one TXT reason per
/// listing, counted at the server; the lists' rate limits do not slow the
/// answers that come from the run's cache.
#[tokio::test]
async fn a_thousand_domains_on_one_address_make_one_query_per_list() {
    let (mut zones, faults) =
        mxaudit_testbed::dns::read_dir(&fixture("zones/dnsbl")).expect("fixture zones");
    zones.push(shared_zone(1000));
    let server = DnsServer::start_with_faults(&zones, &faults)
        .await
        .expect("server");
    let targets: Vec<Target> = (0..1000)
        .map(|i| target(&format!("d{i}.shared.test"), None))
        .collect();
    // The DBL asks each of the thousand domains: unpaced here, or 25 per second
    // would take 40 s (the IP lists keep their built-in pacing).
    let plugins: Vec<Plugin> = LISTS
        .iter()
        .map(|(id, _, zone)| match *id {
            "dnsbl-spamhaus-dbl" => list_plugin_at(
                id,
                zone,
                &[("queries_per_second = 25", "queries_per_second = 100000")],
            ),
            _ => list_plugin(id),
        })
        .collect();
    let started = Instant::now();
    let out = run_lists(&plugins, &targets, &server, Lang::En).await;
    let elapsed = started.elapsed();
    let listed = findings(&out, "dnsbl.listed");
    assert_eq!(
        listed.len(),
        1000,
        "ZEN lists the shared address for every domain"
    );
    assert!(listed.iter().all(|f| f.title.contains("PBL")));
    assert!(
        out.checks
            .iter()
            .filter(|c| c.plugin != "dnsbl-spamhaus-zen")
            .all(|c| c.status == CheckStatus::Pass),
        "{:?}",
        out.checks.iter().find(|c| c.status != CheckStatus::Pass)
    );
    for (id, _, zone) in LISTS {
        if *id == "dnsbl-spamhaus-dbl" {
            // A domain list asks each domain once instead.
            assert_eq!(server.count_of(&format!("d7.shared.test.{zone}"), "A"), 1);
            continue;
        }
        assert_eq!(
            server.count_of(&format!("50.113.0.203.{zone}"), "A"),
            1,
            "{id}: one query for the shared address"
        );
        assert_eq!(
            server.count_of(&format!("2.0.0.127.{zone}"), "A"),
            1,
            "{id}"
        );
        assert_eq!(
            server.count_of(&format!("1.0.0.127.{zone}"), "A"),
            1,
            "{id}"
        );
    }
    assert_eq!(
        server.count_of("50.113.0.203.zen.dnsbl.test", "TXT"),
        1,
        "one TXT reason for a thousand findings"
    );
    assert_eq!(server.count_of("mx.provider.shared.test", "A"), 1);
    // 25 queries per second per list would take 40 s if every domain waited.
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
}

/// `queries_per_second` is honoured across the run: eleven distinct questions
/// to a list limited to 10 per second take at least one second.
#[tokio::test]
async fn rate_limit_is_honoured() {
    let server = lists_server().await;
    let slow_paced = list_plugin_at(
        "dnsbl-psbl",
        "psbl.dnsbl.test",
        &[("queries_per_second = 25", "queries_per_second = 10")],
    );
    let mut targets = Vec::new();
    for chunk in 0..3u8 {
        let mut t = target("clean.mail.test", None);
        t.domain = DomainName::parse(&format!("clean{chunk}.mail.test")).expect("name");
        t.outbound_ips = (0..3u8)
            .map(|i| {
                format!("198.51.100.{}", 10 + chunk * 3 + i)
                    .parse()
                    .expect("ip")
            })
            .collect();
        targets.push(t);
    }
    let started = Instant::now();
    let out = run_lists(&[slow_paced], &targets, &server, Lang::En).await;
    let elapsed = started.elapsed();
    assert!(out.findings.is_empty(), "{:#?}", out.findings);
    // 2 self-test points + 9 addresses = 11 questions: 10 intervals of 100 ms.
    assert!(elapsed >= Duration::from_millis(950), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");

    // `[checks] rate_limits = false` / `--no-rate-limits` (a local mirror):
    // the same questions at one per second would take 10 s; unpaced, none waits.
    let crawling = list_plugin_at(
        "dnsbl-psbl",
        "psbl.dnsbl.test",
        &[("queries_per_second = 25", "queries_per_second = 1")],
    );
    let dns = dns_client(server.addr());
    let opts = RunOptions {
        scope: std::sync::Arc::new(mxaudit_core::RunScope {
            rate_limits: false,
            ..Default::default()
        }),
        ..RunOptions::default()
    };
    let started = Instant::now();
    let out = runner::run(&[crawling], &targets, &dns, test_policy(), &opts).await;
    assert!(out.findings.is_empty(), "{:#?}", out.findings);
    assert!(
        out.checks.iter().all(|c| c.status == CheckStatus::Pass),
        "{:#?}",
        out.checks
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

/// `mxaudit dnsbl ADDRESS|HOST …`: one line per (address, list), listed with
/// the code's meaning, not listed, skipped, unusable or failed.
#[tokio::test]
async fn direct_check_gives_one_line_per_list() {
    let server = lists_server().await;
    let dns = dns_client(server.addr());
    let mut manifests: Vec<(String, String)> = LISTS
        .iter()
        .map(|(id, _, zone)| (format!("test:{id}.toml"), list_manifest(id, zone, &[])))
        .collect();
    manifests.push((
        "test:broken.toml".to_owned(),
        list_manifest("dnsbl-psbl", "broken.dnsbl.test", &[])
            .replace("id = \"dnsbl-psbl\"", "id = \"broken\""),
    ));
    // Every list, enabled in audits or not, plus the broken one.
    let plugins: Vec<mxaudit_core::manifest::Plugin> = manifests
        .iter()
        .map(|(path, source)| {
            mxaudit_core::manifest::load(path, None, source, mxaudit_checks::ENGINES)
                .expect("manifest loads")
        })
        .collect();
    let ids: Vec<&str> = plugins
        .iter()
        .filter(|p| p.check.blocklist().is_some())
        .map(|p| p.meta.id.as_str())
        .collect();
    assert_eq!(ids.len(), LISTS.len() + 1, "{ids:?}");
    assert!(ids.contains(&"broken"), "{ids:?}");
    let inputs: Vec<String> = ["203.0.113.10", "mx.v6.mail.test", "10.0.0.5"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let parsed = tools::blocklist_inputs(&inputs).expect("valid inputs");
    let lines = tools::blocklist_lines(&plugins, &parsed, &crate::support::cx(&dns)).await;
    let text = view::dnsbl::text(&lines, Lang::En);
    let line = |input: &str, queried: &str, plugin: &str| {
        lines
            .iter()
            .find(|l| l.input == input && l.queried == queried && l.plugin == plugin)
            .unwrap_or_else(|| panic!("no line {input} {queried} {plugin} in\n{text}"))
    };
    let zen = line("203.0.113.10", "203.0.113.10", "dnsbl-spamhaus-zen");
    assert_eq!(zen.status, LineStatus::Listed);
    assert_eq!(zen.return_codes, ["127.0.0.4"]);
    assert!(
        zen.meaning
            .as_ref()
            .is_some_and(|m| m.en.starts_with("XBL")),
        "{zen:?}"
    );
    assert!(
        text.contains("203.0.113.10  Spamhaus ZEN (zen.dnsbl.test)  LISTED  127.0.0.4 XBL"),
        "{text}"
    );
    assert_eq!(
        line("203.0.113.10", "203.0.113.10", "dnsbl-psbl").status,
        LineStatus::NotListed
    );
    assert_eq!(
        line("203.0.113.10", "203.0.113.10", "broken").status,
        LineStatus::Unusable
    );
    assert_eq!(
        line("203.0.113.10", "203.0.113.10", "dnsbl-spamhaus-dbl").status,
        LineStatus::Skipped,
        "an address is not asked of a domain list"
    );
    // A host name: its addresses on IP lists, the name itself on domain lists.
    assert_eq!(
        line("mx.v6.mail.test", "2001:db8::25", "dnsbl-spamhaus-zen").status,
        LineStatus::Listed
    );
    assert_eq!(
        line("mx.v6.mail.test", "2001:db8::25", "dnsbl-spamcop").status,
        LineStatus::Skipped
    );
    assert_eq!(
        line("mx.v6.mail.test", "203.0.113.11", "dnsbl-spamcop").status,
        LineStatus::NotListed
    );
    assert_eq!(
        line("mx.v6.mail.test", "mx.v6.mail.test", "dnsbl-spamhaus-dbl").status,
        LineStatus::NotListed
    );
    assert_eq!(
        line("10.0.0.5", "10.0.0.5", "dnsbl-spamhaus-zen").status,
        LineStatus::Skipped
    );
    let json = serde_json::to_value(&lines).expect("json");
    assert_eq!(json[0]["status"], "listed", "{json}");
    let ja = view::dnsbl::text(&lines, Lang::Ja);
    assert!(ja.contains("XBL: 感染したホスト"), "{ja}");
    // Bad input is refused before any query.
    let before = server.query_count();
    let err = tools::blocklist_inputs(&["no such thing!".to_owned()]).expect_err("invalid");
    assert!(err.to_string().contains("neither an IP address"), "{err}");
    assert_eq!(server.query_count(), before);
}

/// `mxaudit dnsbl IP`, the real binary, with a user manifest overriding ZEN's zone.
#[tokio::test(flavor = "multi_thread")]
async fn dnsbl_command_checks_an_address() {
    let server = lists_server().await;
    let dir = std::env::temp_dir().join(format!("mxaudit-dnsbl-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let text = format!(
        "override = true\n{}",
        list_manifest("dnsbl-spamhaus-zen", "zen.dnsbl.test", &[])
    );
    std::fs::write(dir.join("dnsbl-spamhaus-zen.toml"), text).expect("write");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_mxaudit"))
        .args([
            "dnsbl",
            "203.0.113.10",
            "--plugins",
            "dnsbl-spamhaus-zen",
            "--format",
            "json",
        ])
        .arg("--plugins-dir")
        .arg(&dir)
        .args([
            "--nameserver",
            &server.addr().to_string(),
            "--timeout",
            "500ms",
        ])
        .args(["--allow-target", "203.0.113.0/24"])
        .output()
        .await
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(1),
        "listed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let lines = v.as_array().expect("lines");
    assert_eq!(lines.len(), 1, "{v:#}");
    assert_eq!(lines[0]["status"], "listed", "{v:#}");
    assert!(
        lines[0]["return_codes"].to_string().contains("127.0.0.4"),
        "{v:#}"
    );
    let bad = crate::support::mxaudit_run(&["dnsbl", "not an address!"]);
    assert_eq!(bad.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The built-in lists are on by default, under their real zone names, which
/// every testbed world serves (crates/testbed/worlds/blocklists): a plain
/// `mxaudit audit` of the demo world's listed domains reports each listing
/// with its list's meaning, and every other domain's lists pass their
/// self-test (no query_refused, no lookup_failed).
#[tokio::test(flavor = "multi_thread")]
async fn default_lists_report_the_demo_world_listings() {
    let server = crate::support::demo_server().await;
    let dir = std::env::temp_dir().join(format!("mxaudit-dnsbl-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("audit.toml");
    std::fs::write(&config, mxaudit_testbed::demo::CONFIG).expect("config");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_mxaudit"))
        .args(["audit", "--format", "json", "--config"])
        .arg(&config)
        .args(["--nameserver", &server.addr().to_string()])
        .output()
        .await
        .expect("runs");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let findings = v["findings"].as_array().expect("findings");
    let of = |domain: &str, prefix: &str| -> Vec<&serde_json::Value> {
        findings
            .iter()
            .filter(|f| {
                f["domain"] == domain && f["code"].as_str().is_some_and(|c| c.starts_with(prefix))
            })
            .collect()
    };
    let listed = of("listed.example", "dnsbl.");
    let mut got: Vec<(String, String)> = listed
        .iter()
        .map(|f| {
            (
                f["subject"].as_str().unwrap_or("").to_owned(),
                f["title"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(got.len(), 3, "{got:#?}");
    for ((subject, title), (zone, meaning)) in got.iter().zip([
        ("bl.spamcop.net", "reported as a spam source"),
        ("dnsbl-1.uceprotect.net", "spam traps"),
        ("zen.spamhaus.org", "XBL"),
    ]) {
        assert_eq!(subject, &format!("203.0.113.66 ({zone})"));
        assert!(title.contains(meaning), "{zone}: {title}");
    }
    assert!(
        listed
            .iter()
            .all(|f| f["code"] == "dnsbl.listed" && f["severity"] == "high")
    );
    let bounced = of("bouncer.example", "dnsbl.");
    assert_eq!(bounced.len(), 1, "{bounced:#?}");
    assert_eq!(bounced[0]["code"], "dnsbl.backscatterer_listed");
    // No other dnsbl finding anywhere: every list answered and passed its self-test.
    let others: Vec<&serde_json::Value> = findings
        .iter()
        .filter(|f| {
            f["code"].as_str().is_some_and(|c| c.starts_with("dnsbl."))
                && f["domain"] != "listed.example"
                && f["domain"] != "bouncer.example"
        })
        .collect();
    assert!(others.is_empty(), "{others:#?}");
    // The lists are asked once per (address, list) for the whole run, however
    // many demo domains share an MX address.
    assert_eq!(server.count_of("10.100.51.198.zen.spamhaus.org", "A"), 1);
    assert_eq!(server.count_of("2.0.0.127.zen.spamhaus.org", "A"), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A list defined in audit.toml (`[[dnsbl]]`): runs like a manifest list with
/// the generic text, `mxaudit dnsbl --config` asks it, and its errors name the
/// configuration file and line.
#[tokio::test(flavor = "multi_thread")]
async fn inline_lists_from_the_configuration() {
    let server = lists_server().await;
    let dir = std::env::temp_dir().join(format!("mxaudit-dnsbl-inline-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("audit.toml");
    let text = r#"allow_targets = ["203.0.113.0/24"]

[plugins]
only = ["acme-rbl"]

[[domains]]
name = "three.mail.test"

[[dnsbl]]
id = "acme-rbl"
zone = "spamcop.dnsbl.test"
name = "ACME RBL"
[dnsbl.codes]
"127.0.0.2" = "on the ACME list"
[dnsbl.codes_ja]
"127.0.0.2" = "ACME リストに登録"
"#;
    std::fs::write(&config, text).expect("config");
    let run = |args: Vec<String>| {
        let server = server.addr().to_string();
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_mxaudit"))
                .args(&args)
                .args(["--nameserver", &server, "--timeout", "500ms"])
                .output()
                .await
                .expect("runs")
        }
    };
    let cfg = config.to_str().expect("utf-8").to_owned();
    let out = run(vec![
        "audit".into(),
        "--format".into(),
        "json".into(),
        "--config".into(),
        cfg.clone(),
    ])
    .await;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let findings = v["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), 1, "{v:#}");
    let f = &findings[0];
    assert_eq!(f["code"], "dnsbl.listed");
    assert_eq!(f["plugin"], "acme-rbl");
    assert_eq!(f["subject"], "203.0.113.10 (spamcop.dnsbl.test)");
    let title = f["title"].as_str().expect("title");
    assert!(
        title.contains("ACME RBL") && title.contains("on the ACME list"),
        "{title}"
    );
    let remediation = f["remediation"].as_str().expect("remediation");
    assert!(remediation.contains("seed 001"), "{remediation}");
    assert!(
        !remediation.contains("spamcop.net"),
        "generic text: {remediation}"
    );

    // `mxaudit dnsbl --config` knows the inline list.
    let out = run(vec![
        "dnsbl".into(),
        "203.0.113.10".into(),
        "--plugins".into(),
        "acme-rbl".into(),
        "--allow-target".into(),
        "203.0.113.0/24".into(),
        "--config".into(),
        cfg.clone(),
    ])
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("ACME RBL (spamcop.dnsbl.test)  LISTED  127.0.0.2 on the ACME list"),
        "{stdout}"
    );

    // Errors in an inline list name the file, the line and the key.
    for (bad, line, needle) in [
        (
            text.replace("name = \"ACME RBL\"", "name = \"ACME RBL\"\nzz_unknown = 1"),
            13,
            "zz_unknown",
        ),
        (
            text.replace(
                "\"127.0.0.2\" = \"on the ACME list\"",
                "\"10.0.0.2\" = \"x\"",
            ),
            14,
            "outside 127.0.0.0/8",
        ),
        (
            text.replace("id = \"acme-rbl\"", "id = \"dnsbl-spamcop\""),
            9,
            "already defined by builtin:plugins/dnsbl-spamcop.toml",
        ),
        (
            text.replace("id = \"acme-rbl\"\n", ""),
            9,
            "missing field `id`",
        ),
    ] {
        std::fs::write(&config, &bad).expect("config");
        let out = crate::support::mxaudit_run(&["config", "check", &cfg]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}\n{stderr}");
        assert!(
            stderr.contains(&format!("audit.toml:{line}:")),
            "line {line}: {stderr}"
        );
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// audit.toml shows an inline list (commented out with a single `#`): the
/// block loads when uncommented, shows every key the engine accepts, and an
/// unknown key in it is located at its line.
#[test]
fn audit_toml_inline_list_block_loads_and_shows_every_key() {
    let example =
        std::fs::read_to_string(crate::support::repo().join("audit.toml")).expect("audit.toml");
    let mut block = Vec::new();
    let mut inside = false;
    for line in example.lines() {
        if line.starts_with("#[[dnsbl]]") {
            inside = true;
        } else if line.trim().is_empty() {
            inside = false;
        }
        if inside && line.starts_with('#') && !line.starts_with("##") {
            block.push(line[1..].to_owned());
        }
    }
    assert!(
        !block.is_empty(),
        "audit.toml has a commented [[dnsbl]] block"
    );
    let load = |text: &str| {
        let config = mxaudit_core::config::Config::parse("audit.toml", text)?;
        let mut set = crate::support::builtin_plugins();
        set.add_inline(
            &config,
            "dnsbl",
            mxaudit_checks::ENGINES,
            mxaudit_checks::dnsbl::INLINE_TEXT,
        )?;
        Ok::<_, mxaudit_core::tomldoc::Located>(set)
    };
    let text = block.join("\n");
    let set = load(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(
        set.plugins
            .iter()
            .any(|p| p.meta.source.starts_with("audit.toml:"))
    );
    // An unknown key after each header: located, and serde's list of the keys
    // it accepts must all be shown in the block.
    let headers: Vec<usize> = block
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with('['))
        .map(|(i, _)| i + 1)
        .collect();
    for at in headers {
        let mut mutated = block.clone();
        mutated.insert(at, "zz_unknown_key = 1".to_owned());
        let err = load(&mutated.join(
            "
",
        ))
        .expect_err("unknown key rejected");
        assert!(err.message.contains("zz_unknown_key"), "{err}");
        assert_eq!(err.line, at + 1, "{err}");
        if at == 1 {
            let expected = err.message.split("expected").nth(1).unwrap_or_default();
            let keys: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
            assert!(keys.len() > 10, "{err}");
            for key in keys.iter().chain(mxaudit_core::config::INLINE_COMMON_KEYS) {
                assert!(
                    block.iter().any(|l| l.starts_with(&format!("{key} ="))
                        || l.starts_with(&format!("[dnsbl.{key}]"))),
                    "key `{key}` of [[dnsbl]] is not shown in audit.toml"
                );
            }
        }
    }
}

/// An audit with blocklist plugins through a well-known public resolver warns
/// on standard error (Spamhaus refuses such queries). Checked with an empty
/// domain list, so that nothing is sent to the public resolver.
#[test]
fn audit_warns_about_a_public_resolver() {
    let empty = std::env::temp_dir().join(format!("mxaudit-empty-{}.txt", std::process::id()));
    std::fs::write(&empty, "# no domains\n").expect("list");
    let list = empty.to_str().expect("utf-8");
    for (plugins, warned) in [("dnsbl-spamhaus-zen", true), ("mx", false)] {
        let out = crate::support::mxaudit_run(&[
            "audit",
            "--dns-only",
            "--nameserver",
            "8.8.8.8",
            "--plugins",
            plugins,
            "--domains-file",
            list,
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("no domain to audit"), "{stderr}");
        assert_eq!(
            stderr.contains("8.8.8.8 is Google Public DNS's public service"),
            warned,
            "{plugins}: {stderr}"
        );
    }
    let _ = std::fs::remove_file(&empty);
}
