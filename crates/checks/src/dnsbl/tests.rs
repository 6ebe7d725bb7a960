use super::*;

use mxaudit_dns::DnsConfig;
use mxaudit_testbed::{DnsServer, ZoneText};

fn params(toml_text: &str) -> DnsblParams {
    toml::from_str(toml_text).expect("params parse")
}

fn zen() -> DnsblParams {
    params(
        r#"
        zone = "zen.bl.test"
        name = "Test ZEN"
        ipv6 = true
        [codes]
        "127.0.0.2" = "SBL"
        "127.0.0.4-127.0.0.7" = "XBL"
        "127.0.0.10" = "PBL"
        [codes_ja]
        "127.0.0.2" = "SBL (ja)"
        [errors]
        "127.255.255.0-127.255.255.255" = "error"
        "127.255.255.254" = "public resolver"
        "#,
    )
}

fn build(p: DnsblParams) -> Dnsbl {
    Dnsbl::from_params(p, "test", |_| None).expect("builds")
}

fn records(ips: &[&str]) -> Answer {
    use mxaudit_dns::{Rdata, Record, RecordSet};
    Answer::Records(RecordSet(
        ips.iter()
            .map(|ip| Record {
                name: "x.zen.bl.test.".to_owned(),
                ttl: 60,
                data: Rdata::A(ip.parse().expect("ip")),
            })
            .collect(),
    ))
}

#[test]
fn code_tables_parse_ranges_and_pick_the_narrowest() {
    let list = build(zen());
    let m = |ip: &str| {
        list.codes
            .lookup(ip.parse().expect("ip"))
            .map(|m| m.en.clone())
    };
    assert_eq!(m("127.0.0.5").as_deref(), Some("XBL"));
    assert_eq!(m("127.0.0.8"), None);
    assert_eq!(
        list.codes
            .lookup("127.0.0.2".parse().expect("ip"))
            .map(|m| m.ja.as_str()),
        Some("SBL (ja)")
    );
    assert_eq!(
        list.codes
            .lookup("127.0.0.10".parse().expect("ip"))
            .map(|m| m.ja.as_str()),
        Some("PBL"),
        "ja falls back to en"
    );
    let e = list.errors.lookup("127.255.255.254".parse().expect("ip"));
    assert_eq!(e.map(|m| m.en.as_str()), Some("public resolver"));
    let e = list.errors.lookup("127.255.255.250".parse().expect("ip"));
    assert_eq!(e.map(|m| m.en.as_str()), Some("error"));
}

#[test]
fn bad_params_are_refused_with_the_key() {
    // Key errors come from reading the manifest, the rest from build().
    let bad = |extra: &str, codes: &str| {
        let text = format!("zone = \"x.test\"\n{extra}\n[codes]\n{codes}\n");
        match toml::from_str::<DnsblParams>(&text) {
            Ok(p) => Dnsbl::from_params(p, "t", |_| None).expect_err("refused"),
            Err(e) => e.to_string(),
        }
    };
    assert!(bad("", "\"10.0.0.2\" = \"x\"").contains("outside 127.0.0.0/8"));
    assert!(bad("", "\"127.0.0.9-127.0.0.2\" = \"x\"").contains("ends before"));
    assert!(
        bad(
            "",
            "\"127.0.0.2-127.0.0.5\" = \"a\"\n\"127.0.0.4-127.0.0.9\" = \"b\""
        )
        .contains("overlaps")
    );
    assert!(bad("", "\"no\" = \"x\"").contains("`no` is not a return code"));
    assert!(
        bad(
            "listed_code = \"dnsbl.domain_listed\"",
            "\"127.0.0.2\" = \"x\""
        )
        .contains("listed_code")
    );
    assert!(
        bad("queries_per_second = 0.0", "\"127.0.0.2\" = \"x\"").contains("queries_per_second")
    );
    assert!(bad("key_env = \"K\"", "\"127.0.0.2\" = \"x\"").contains("go together"));
    let p = params(
        "zone = \"x.test\"\n[codes]\n\"127.0.0.2\" = \"x\"\n[errors]\n\"127.0.0.0-127.0.0.255\" = \"e\"\n",
    );
    assert!(
        Dnsbl::from_params(p, "t", |_| None)
            .expect_err("overlap")
            .contains("overlap")
    );
    let p = params(
        "zone = \"x.test\"\nkind = \"domain\"\nipv6 = true\n[codes]\n\"127.0.1.2\" = \"x\"\n",
    );
    assert!(
        Dnsbl::from_params(p, "t", |_| None)
            .expect_err("v6")
            .contains("ipv6")
    );
}

#[test]
fn unknown_keys_are_refused() {
    let err =
        toml::from_str::<DnsblParams>("zone = \"x\"\nzoen = \"y\"\n[codes]\n").expect_err("typo");
    assert!(err.to_string().contains("zoen"), "{err}");
}

#[test]
fn answers_are_classified() {
    let list = build(zen());
    match list.classify(&records(&["127.0.0.2", "127.0.0.4"])) {
        Verdict::Listed(codes) => assert_eq!(codes.len(), 2),
        other => panic!("{other:?}"),
    }
    // RFC 5782 §2.1: answers outside 127/8 are not list answers.
    assert!(matches!(
        list.classify(&records(&["198.51.100.80"])),
        Verdict::Refused {
            cause: RefusalCause::NotLoopback,
            ..
        }
    ));
    // An error code among listings: nothing is listed.
    assert!(matches!(
        list.classify(&records(&["127.0.0.2", "127.255.255.254"])),
        Verdict::Refused {
            cause: RefusalCause::ErrorCode,
            ..
        }
    ));
    assert_eq!(
        list.classify(&Answer::NxDomain { negative_ttl: None }),
        Verdict::NotListed("NXDOMAIN")
    );
    assert!(matches!(
        list.classify(&Answer::Failed(mxaudit_dns::LookupFailure::Timeout)),
        Verdict::Failed(_)
    ));
    // An undocumented code in 127/8 is a listing without a meaning.
    match list.classify(&records(&["127.0.0.8"])) {
        Verdict::Listed(codes) => assert_eq!(codes[0].1, None),
        other => panic!("{other:?}"),
    }
}

#[test]
fn rfc5782_test_points() {
    let list = build(zen());
    assert_eq!(list.self_test.listed.labels, "2.0.0.127");
    assert_eq!(list.self_test.not_listed.labels, "1.0.0.127");
    // RFC 5782 §5: ::FFFF:7F00:2 in nibble form (§2.4).
    let v6 = &list.self_test_v6.listed.labels;
    assert!(v6.starts_with("2.0.0.0.0.0.f.7.f.f.f.f.0.0.0.0"), "{v6}");
    assert_eq!(v6.split('.').count(), 32);
    let p = params("zone = \"dbl.test\"\nkind = \"domain\"\n[codes]\n\"127.0.1.2\" = \"x\"\n");
    let dbl = build(p);
    assert_eq!(dbl.self_test.listed.labels, "test");
    assert_eq!(dbl.self_test.not_listed.labels, "invalid");
    assert_eq!(dbl.listed_code, DOMAIN_LISTED);
}

#[test]
fn public_resolvers_are_recognised() {
    let found = public_resolvers(&[
        "127.0.0.1".parse().expect("ip"),
        "1.1.1.1".parse().expect("ip"),
        "2001:4860:4860::8888".parse().expect("ip"),
    ]);
    let ops: Vec<&str> = found.iter().map(|(_, o)| *o).collect();
    assert_eq!(ops, ["Cloudflare", "Google Public DNS"]);
}

#[test]
fn the_key_is_used_and_never_shown() {
    let p = params(
        "zone = \"zen.bl.test\"\nkey_env = \"DQS\"\nkey_zone = \"zen.dq.test\"\n[codes]\n\"127.0.0.2\" = \"x\"\n",
    );
    let list = Dnsbl::from_params(p, "t", |v| (v == "DQS").then(|| "AbC123secret".to_owned()))
        .expect("builds");
    assert_eq!(list.query_zone, "abc123secret.zen.dq.test");
    assert!(list.keyed());
    assert_eq!(list.zone(), "zen.bl.test");
    assert!(!format!("{list:?}").contains("abc123secret"));
    assert_eq!(
        list.redact("2.0.0.127.abc123secret.zen.dq.test"),
        "2.0.0.127.***.zen.dq.test"
    );
    // A bad key is refused without echoing it.
    let p = params(
        "zone = \"zen.bl.test\"\nkey_env = \"DQS\"\nkey_zone = \"zen.dq.test\"\n[codes]\n\"127.0.0.2\" = \"x\"\n",
    );
    let err = Dnsbl::from_params(p, "t", |_| Some("bad key!".to_owned())).expect_err("bad");
    assert!(!err.contains("bad key!"), "{err}");
    // No key: the public zone.
    let p = params(
        "zone = \"zen.bl.test\"\nkey_env = \"DQS\"\nkey_zone = \"zen.dq.test\"\n[codes]\n\"127.0.0.2\" = \"x\"\n",
    );
    let list = Dnsbl::from_params(p, "t", |_| None).expect("builds");
    assert_eq!(list.query_zone, "zen.bl.test");
}

#[test]
fn pacer_spaces_new_names_and_not_repeated_ones() {
    let pacer = Pacer::new(10.0);
    let a = pacer.slot_for("a.");
    let b = pacer.slot_for("b.");
    let c = pacer.slot_for("c.");
    assert!(b - a >= Duration::from_millis(99) && c - b >= Duration::from_millis(99));
    // A name already granted waits for its own slot, not a new one.
    assert_eq!(pacer.slot_for("b."), b);
    let d = pacer.slot_for("d.");
    assert!(d - c >= Duration::from_millis(99));
}

const KEYED_ZONE: &str = "$ORIGIN dq.test.
$TTL 60
@ IN SOA ns.dq.test. h.dq.test. 1 3600 600 86400 60
@ IN NS ns.dq.test.
ns IN A 127.0.0.1
2.0.0.127.secretkey1.zen IN A 127.0.0.2
2.0.0.127.secretkey1.zen IN TXT \"test point\"
10.113.0.203.secretkey1.zen IN A 127.0.0.4
10.113.0.203.secretkey1.zen IN TXT \"see https://lists.test/secretkey1/203.0.113.10\"
";

/// DQS: the keyed zone is asked, findings show the public zone and never the key.
#[tokio::test]
async fn keyed_zone_is_asked_and_hidden() {
    let server = DnsServer::start(&[ZoneText {
        origin: "dq.test.".to_owned(),
        text: KEYED_ZONE.to_owned(),
    }])
    .await
    .expect("server");
    let dns = Dns::new(&DnsConfig {
        nameservers: vec![server.addr()],
        timeout: Duration::from_millis(500),
        attempts: 0,
        ..DnsConfig::default()
    })
    .expect("dns");
    let p = params(
        "zone = \"zen.spamhaus.test\"\nkey_env = \"DQS\"\nkey_zone = \"zen.dq.test\"\n[codes]\n\"127.0.0.2\" = \"SBL\"\n\"127.0.0.4\" = \"XBL\"\n",
    );
    let list = Dnsbl::from_params(p, "t", |_| Some("SecretKey1".to_owned())).expect("builds");
    let cx = CheckCx::new(
        dns.clone(),
        std::sync::Arc::new(mxaudit_core::AddressPolicy::new(vec![
            "203.0.113.0/24".parse().expect("net"),
        ])),
        Instant::now() + Duration::from_secs(10),
    );
    let mut target = Target::new(DomainName::parse("nomx.dq.test").expect("name"));
    target.outbound_ips = vec!["203.0.113.10".parse().expect("ip")];
    let report = list.run(&target, &cx).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.observations.len(), 1, "{:?}", report.observations);
    let obs = &report.observations[0];
    assert_eq!(obs.code, LISTED);
    assert_eq!(obs.subject, "203.0.113.10 (zen.spamhaus.test)");
    let all = serde_json::to_string(&report.observations).expect("json");
    assert!(!all.to_ascii_lowercase().contains("secretkey1"), "{all}");
    assert!(all.contains("***.zen.dq.test"), "{all}");
    assert_eq!(
        server.count_of("10.113.0.203.secretkey1.zen.dq.test", "A"),
        1
    );
    // The path of `mxaudit dnsbl` hides it too.
    let ip: IpAddr = "203.0.113.10".parse().expect("ip");
    let lines = list
        .lines_for(&BlocklistInput::Address(ip), &[ip], None, &cx)
        .await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0].status, LineStatus::Listed);
    assert_eq!(lines[0].return_codes, ["127.0.0.4"]);
    assert_eq!(
        lines[0].meaning.as_ref().map(|m| m.en.as_str()),
        Some("XBL")
    );
    let text = serde_json::to_string(&lines).expect("json");
    assert!(!text.to_ascii_lowercase().contains("secretkey1"), "{text}");
    // Asked once per run: the CLI reused the run's answers.
    assert_eq!(
        server.count_of("10.113.0.203.secretkey1.zen.dq.test", "A"),
        1
    );
}

/// Every built-in list manifest loads, and every code renders in both
/// languages for every `cause` with the variables the engine sets.
#[test]
fn builtin_manifests_render_every_code() {
    use mxaudit_core::registry::PluginSet;
    use mxaudit_core::text::TextRenderer;
    let set = PluginSet::load(crate::ENGINES, crate::BUILTIN_MANIFESTS, &[])
        .expect("built-in manifests load");
    let lists: Vec<_> = set
        .plugins
        .iter()
        .filter(|p| p.meta.engine == "dnsbl")
        .collect();
    assert_eq!(lists.len(), 8);
    for plugin in lists {
        for lang in [mxaudit_core::Lang::En, mxaudit_core::Lang::Ja] {
            let renderer = TextRenderer::new(lang);
            for spec in <Dnsbl as Engine>::CODES {
                let causes: &[&str] = if spec.code == QUERY_REFUSED {
                    &[
                        "error_code",
                        "not_loopback",
                        "test_point_missing",
                        "answers_everything",
                    ]
                } else {
                    &["error_code"]
                };
                for (cause, meaning) in causes.iter().flat_map(|c| [(c, "m"), (c, "")]) {
                    let mut obs = Observation::new(spec.code, "x");
                    for var in spec.vars {
                        obs = obs.var(var, format!("<{var}>"));
                    }
                    obs = obs
                        .var("cause", *cause)
                        .var("meaning", meaning)
                        .var("meaning_ja", meaning);
                    let f = renderer.finding(&plugin.meta, "example.com", &obs, None);
                    for text in [&f.title, &f.detail, &f.remediation] {
                        assert!(
                            !text.contains("[text error") && !text.contains("{{"),
                            "{} {}: {text}",
                            plugin.meta.id,
                            spec.code
                        );
                    }
                    if spec.code == QUERY_REFUSED {
                        assert!(f.remediation.lines().count() >= 2, "{}", f.remediation);
                    }
                }
            }
        }
    }
}

#[test]
fn public_resolver_note() {
    let dns = Dns::new(&DnsConfig {
        nameservers: vec!["1.1.1.1:53".parse().expect("addr")],
        ..DnsConfig::default()
    })
    .expect("dns");
    let mut p = zen();
    p.refuses_public_resolvers = true;
    let note = build(p).resolver_note(&dns).expect("a note");
    assert!(
        note.contains("1.1.1.1") && note.contains("refuses"),
        "{note}"
    );
    let note = build(zen()).resolver_note(&dns).expect("a note");
    assert!(!note.contains("refuses"), "{note}");
    let local = Dns::new(&DnsConfig {
        nameservers: vec!["127.0.0.1:53".parse().expect("addr")],
        ..DnsConfig::default()
    })
    .expect("dns");
    assert_eq!(build(zen()).resolver_note(&local), None);
}
