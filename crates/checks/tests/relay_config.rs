//! The relay configuration review on the fixtures of
//! `tests/fixtures/relay-config/` (one folder per setup: the exported files
//! and `expected.txt`, the relay verdict and the `code subject` lines), every
//! finding rendered through the built-in manifest in both languages, and
//! mutated exports (truncated, garbled) that must give `relay_config.unparsed`
//! lines, never a panic.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use mxaudit_checks::relay_config::{
    self, Input, Kind, Relay, Review, ReviewOptions, render::builtin_plugin,
};
use mxaudit_core::{Lang, manifest::Plugin};
use proptest::prelude::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/relay-config")
}

fn cases(system: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures().join(system))
        .expect("fixture folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no {system} fixtures");
    dirs
}

fn input(case: &Path, file: &Path) -> Input {
    let name = format!(
        "{}/{}",
        case.file_name().expect("name").to_string_lossy(),
        file.file_name().expect("name").to_string_lossy()
    );
    let bytes = std::fs::read(file).expect("fixture file");
    Input {
        name,
        text: relay_config::decode(&bytes),
    }
}

fn files(case: &Path, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(case)
        .expect("case")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file())
        .filter(|p| {
            let n = p.file_name().expect("name").to_string_lossy().into_owned();
            !n.starts_with("expected") && keep(&n)
        })
        .collect();
    out.sort();
    out
}

/// `tables/<path>` of a case: the source texts of lookup tables, by path.
fn tables(case: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let root = case.join("tables");
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(&root).expect("under root");
                out.insert(
                    format!("/{}", rel.to_string_lossy()),
                    std::fs::read_to_string(&p).expect("table"),
                );
            }
        }
    }
    out
}

/// `relay: …` and the sorted `code subject` lines.
fn summary(review: &Review) -> (String, BTreeSet<String>) {
    let relay = review.relay().map_or("none", Relay::as_str).to_owned();
    let lines = review
        .observations
        .iter()
        .map(|o| format!("{} {}", o.code, o.subject))
        .collect();
    (relay, lines)
}

fn expected(path: &Path) -> (String, BTreeSet<String>) {
    let text = std::fs::read_to_string(path).expect("expected.txt");
    let mut lines = text.lines();
    let relay = lines
        .next()
        .and_then(|l| l.strip_prefix("relay: "))
        .expect("first line: relay: …")
        .to_owned();
    (relay, lines.map(str::to_owned).collect())
}

/// Every observation renders without a template error, in both languages,
/// and names a location.
fn renders(review: &Review, plugin: &Plugin) {
    for lang in [Lang::En, Lang::Ja] {
        for f in relay_config::render::findings(review, plugin, lang, "") {
            for text in [&f.title, &f.detail, &f.remediation] {
                assert!(
                    !text.contains("[text error"),
                    "{} ({lang:?}): {text}",
                    f.code
                );
            }
            assert!(!f.title.is_empty() && !f.remediation.is_empty(), "{f:?}");
        }
    }
    for o in &review.observations {
        let loc = o
            .vars
            .get("location")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        if o.code != "relay_config.probe_mismatch" {
            assert!(
                loc == "default"
                    || loc
                        .rsplit(':')
                        .next()
                        .is_some_and(|l| l.parse::<usize>().is_ok()),
                "{} {}: location `{loc}` is not file:line",
                o.code,
                o.subject
            );
        }
    }
}

#[test]
fn postfix_fixtures() {
    let plugin = builtin_plugin().expect("manifest");
    for case in cases("postfix") {
        let inputs: Vec<Input> = files(&case, |_| true)
            .iter()
            .map(|f| input(&case, f))
            .collect();
        assert_eq!(
            Kind::guess_all(&inputs),
            Ok(Kind::Postfix),
            "{}",
            case.display()
        );
        let opts = ReviewOptions {
            tables: tables(&case),
            ..ReviewOptions::default()
        };
        let review = relay_config::review(&inputs, Kind::Postfix, &opts);
        let got = summary(&review);
        let want = expected(&case.join("expected.txt"));
        assert_eq!(got, want, "{}: {:#?}", case.display(), review);
        renders(&review, &plugin);
    }
}

#[test]
fn exchange_fixtures_in_both_forms() {
    let plugin = builtin_plugin().expect("manifest");
    let mut forms_seen = 0;
    for case in cases("exchange") {
        for (form, suffix) in [("text", ".txt"), ("json", ".json")] {
            let inputs: Vec<Input> = files(&case, |n| n.ends_with(suffix))
                .iter()
                .map(|f| input(&case, f))
                .collect();
            assert!(!inputs.is_empty(), "{}: no {form} export", case.display());
            forms_seen += 1;
            assert_eq!(
                Kind::guess_all(&inputs),
                Ok(Kind::Exchange),
                "{}",
                case.display()
            );
            let review = relay_config::review(&inputs, Kind::Exchange, &ReviewOptions::default());
            let special = case.join(format!("expected-{form}.txt"));
            let want = expected(&if special.exists() {
                special
            } else {
                case.join("expected.txt")
            });
            assert_eq!(
                summary(&review),
                want,
                "{} ({form}): {:#?}",
                case.display(),
                review
            );
            renders(&review, &plugin);
        }
    }
    // At least five connector setups in both forms (issue 19).
    assert!(forms_seen >= 10, "{forms_seen}");
}

/// The default Format-Table view of Get-ADPermission cuts the user to
/// `NT AUTHORITY\ANON...`: still the anonymous principal, and only it.
#[test]
fn exchange_permissions_as_a_table() {
    let case = fixtures().join("exchange/anonymous-relay-internet");
    let inputs = vec![
        input(&case, &case.join("connectors.txt")),
        input(&case, &case.join("permissions-table.txt")),
    ];
    let review = relay_config::review(&inputs, Kind::Exchange, &ReviewOptions::default());
    assert_eq!(review.relay(), Some(Relay::Open), "{review:#?}");
    let open = review
        .observations
        .iter()
        .find(|o| o.code == "relay_config.open_relay")
        .expect("open relay");
    assert_eq!(
        open.vars["location"],
        "anonymous-relay-internet/permissions-table.txt:4"
    );
    assert!(
        open.vars["fix"]
            .as_str()
            .is_some_and(|f| f
                .starts_with("Get-ReceiveConnector 'EX01\\Anonymous Relay' | Remove-ADPermission")),
        "{open:?}"
    );
}

/// The exact lines to run, for the main cases.
#[test]
fn fixes_are_the_lines_to_run() {
    let review_of = |case: &str| {
        let dir = fixtures().join("postfix").join(case);
        let inputs: Vec<Input> = files(&dir, |_| true)
            .iter()
            .map(|f| input(&dir, f))
            .collect();
        relay_config::review(
            &inputs,
            Kind::Postfix,
            &ReviewOptions {
                tables: tables(&dir),
                ..ReviewOptions::default()
            },
        )
    };
    let fix = |review: &Review, code: &str| -> String {
        review
            .observations
            .iter()
            .find(|o| o.code == code)
            .and_then(|o| o.vars["fix"].as_str().map(str::to_owned))
            .unwrap_or_else(|| panic!("{code} in {review:#?}"))
    };
    // A bare `permit` before the reject: smtpd refuses to start, no relay.
    let bare = review_of("permit-before-reject");
    assert!(
        bare.notes.iter().any(|n| n.code == "smtpd_refuses_mail"),
        "{bare:#?}"
    );
    // A restriction class that permits passes smtpd's start-up check and relays.
    assert_eq!(
        fix(&review_of("class-permit"), "relay_config.open_relay"),
        "postconf -e 'smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination, relay_ok'"
    );
    assert_eq!(
        fix(
            &review_of("sender-access-forged"),
            "relay_config.open_relay"
        ),
        "postconf -e 'smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination'"
    );
    let over = review_of("master-override-open");
    assert_eq!(
        fix(&over, "relay_config.mynetworks_too_wide"),
        "postconf -P 'smtp/inet/mynetworks=127.0.0.0/8,[::1]/128'"
    );
    assert_eq!(
        fix(
            &review_of("mynetworks-public-slash8"),
            "relay_config.mynetworks_too_wide"
        ),
        "postconf -e 'mynetworks = 127.0.0.0/8 10.0.0.0/8 192.168.0.0/16 [2001:db8:1::]/48'"
    );
    assert_eq!(
        fix(
            &review_of("sasl-submission-plaintext"),
            "relay_config.auth_relay_plaintext"
        ),
        "postconf -P 'submission/inet/smtpd_tls_auth_only=yes'"
    );
    assert_eq!(
        fix(
            &review_of("backup-mx"),
            "relay_config.recipient_not_validated"
        ),
        "postconf -e 'relay_recipient_maps = hash:/etc/postfix/relay_recipients'"
    );
}

/// All fixture texts, for mutation.
fn all_texts() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for system in ["postfix", "exchange"] {
        for case in cases(system) {
            for f in files(&case, |_| true) {
                let i = input(&case, &f);
                out.push((i.name, i.text));
            }
        }
    }
    out
}

/// A JSON export cut anywhere inside an object is a located unparsed line;
/// the objects before the cut are still reviewed.
#[test]
fn truncated_json_exports_are_unparsed() {
    for (name, text) in all_texts()
        .into_iter()
        .filter(|(n, _)| n.ends_with(".json"))
    {
        let first_brace = text.find('{').expect("object");
        let mut cut = first_brace + 1;
        while cut < text.len() - 3 {
            if text.is_char_boundary(cut) {
                let inputs = vec![Input {
                    name: name.clone(),
                    text: text[..cut].to_owned(),
                }];
                let review =
                    relay_config::review(&inputs, Kind::Exchange, &ReviewOptions::default());
                assert!(
                    review
                        .observations
                        .iter()
                        .any(|o| o.code == "relay_config.unparsed"),
                    "{name} cut at {cut}: {review:#?}"
                );
            }
            cut += 97;
        }
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Delete(usize, usize),
    Insert(usize, String),
    DuplicateLine(usize),
}

fn apply(text: &str, m: &Mutation) -> String {
    let clamp = |i: usize| {
        let mut i = i % (text.len() + 1);
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    match m {
        Mutation::Truncate(at) => text[..clamp(*at)].to_owned(),
        Mutation::Delete(at, len) => {
            let a = clamp(*at);
            let b = clamp(a.saturating_add(*len).min(text.len()));
            let (a, b) = (a.min(b), a.max(b));
            format!("{}{}", &text[..a], &text[b..])
        }
        Mutation::Insert(at, s) => {
            let a = clamp(*at);
            format!("{}{s}{}", &text[..a], &text[a..])
        }
        Mutation::DuplicateLine(n) => {
            let lines: Vec<&str> = text.lines().collect();
            if lines.is_empty() {
                return text.to_owned();
            }
            let i = n % lines.len();
            let mut out: Vec<&str> = lines[..=i].to_vec();
            out.extend_from_slice(&lines[i..]);
            out.join("\n")
        }
    }
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 0usize..400).prop_map(|(a, l)| Mutation::Delete(a, l)),
        (
            any::<usize>(),
            prop::string::string_regex("[\\x00-\\x7f{}\\[\\]\"$:,=./\\\\ \n…]{0,40}")
                .expect("regex")
        )
            .prop_map(|(a, s)| Mutation::Insert(a, s)),
        any::<usize>().prop_map(Mutation::DuplicateLine),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Mutated exports never panic, stay bounded, and whatever they yield
    /// renders through the manifest with every variable set.
    #[test]
    fn mutated_exports_never_panic(
        which in any::<usize>(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let texts = all_texts();
        let (name, text) = &texts[which % texts.len()];
        let mut t = text.clone();
        for m in &mutations {
            t = apply(&t, m);
        }
        let inputs = vec![Input { name: name.clone(), text: t }];
        let plugin = builtin_plugin().expect("manifest");
        for kind in [Kind::Postfix, Kind::Exchange] {
            let started = std::time::Instant::now();
            let review = relay_config::review(&inputs, kind, &ReviewOptions::default());
            prop_assert!(started.elapsed() < std::time::Duration::from_secs(5));
            renders(&review, &plugin);
        }
    }
}
