//! Property tests of the SPF record parser (RFC 7208 §4.6, §7.1): it never panics,
//! its output and messages stay bounded, and records built from the grammar
//! parse. Inputs that once broke it live in `spf_parser_regressions.txt` (one
//! record per line, `\xNN` escapes) and run on every test.

use mxaudit_checks::spf::{parse_explanation, parse_record};
use proptest::prelude::*;

/// Longest error message accepted: terms are clipped to 80 characters in messages.
const MAX_MESSAGE: usize = 600;

fn check(record: &str) {
    match parse_record(record) {
        Ok(parsed) => {
            let terms = record.split(' ').filter(|t| !t.is_empty()).count();
            let produced = parsed.directives.len()
                + parsed.unknown_modifiers.len()
                + usize::from(parsed.redirect.is_some())
                + usize::from(parsed.explanation.is_some());
            // `v=spf1` itself is the first space-separated word.
            assert_eq!(produced + 1, terms, "{record:?}");
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.len() <= MAX_MESSAGE, "{} bytes: {msg}", msg.len());
            assert!(!msg.chars().any(|c| c.is_control()), "{msg:?}");
        }
    }
}

fn term() -> impl Strategy<Value = String> {
    let qualifier = prop::sample::select(vec!["", "+", "-", "~", "?"]);
    let domain = prop::sample::select(vec![
        "example.com",
        "%{d}",
        "%{ir}.%{v}._spf.%{d2}",
        "%{l1r-}.example.org",
        "_spf.example.net.",
        "mail.%{o}",
        "a.b.c.d.e.f.example",
    ]);
    (qualifier, domain, 0u8..=40, 0u8..=140).prop_flat_map(|(q, d, c4, c6)| {
        prop::sample::select(vec![
            format!("{q}all"),
            format!("{q}include:{d}"),
            format!("{q}a"),
            format!("{q}a:{d}/{}", c4.min(32)),
            format!("{q}mx:{d}//{}", c6.min(128)),
            format!("{q}mx/{}//{}", c4.min(32), c6.min(128)),
            format!("{q}ptr:{d}"),
            format!("{q}ip4:192.0.2.{}/{}", c4, c4.min(32)),
            format!("{q}ip6:2001:db8::{c6:x}/{}", c6.min(128)),
            format!("{q}exists:{d}"),
            format!("x-{c4}=%{{s}}"),
        ])
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Any text at all: no panic, bounded messages.
    #[test]
    fn never_panics_on_any_text(s in "(?s).{0,300}") {
        check(&s);
        check(&format!("v=spf1 {s}"));
        let _ = parse_explanation(&s);
    }

    /// Text made of the record's own alphabet, where the parser goes deepest.
    #[test]
    fn never_panics_on_spf_alphabet(s in "[a-zA-Z0-9:/%{}._=+~?\\-! ]{0,200}") {
        check(&format!("v=spf1 {s}"));
        let _ = parse_explanation(&s);
    }

    /// Records built from the grammar parse, term for term.
    #[test]
    fn grammatical_records_parse(terms in prop::collection::vec(term(), 0..40)) {
        let mut record = String::from("v=spf1");
        for t in &terms {
            record.push(' ');
            record.push_str(t);
        }
        prop_assert!(parse_record(&record).is_ok(), "{record}: {:?}", parse_record(&record));
        check(&record);
    }
}

/// Hundreds of terms, a 10 kB record (TXT strings joined, RFC 7208 §3.3): parsed
/// quickly and completely.
#[test]
fn large_records_are_bounded_work() {
    let mut record = String::from("v=spf1");
    for i in 0..700 {
        record.push_str(&format!(" ip4:10.{}.{}.0/24", i / 256, i % 256));
    }
    assert!(record.len() > 10_000);
    let started = std::time::Instant::now();
    let parsed = parse_record(&record).expect("valid");
    assert_eq!(parsed.directives.len(), 700);
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    // The same with an error at the very end: found, named, clipped.
    record.push_str(&format!(" a:{}", "x".repeat(5000)));
    let err = parse_record(&record).expect_err("no top label");
    assert!(err.to_string().len() < MAX_MESSAGE, "{err}");
}

fn unescape(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find("\\x") {
        out.push_str(&rest[..i]);
        let hex = rest.get(i + 2..i + 4).unwrap_or("");
        match u8::from_str_radix(hex, 16) {
            Ok(b) => {
                out.push(char::from(b));
                rest = &rest[i + 4..];
            }
            Err(_) => {
                out.push_str("\\x");
                rest = &rest[i + 2..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The kept regression inputs: each must parse or fail cleanly, as recorded.
#[test]
fn regression_inputs() {
    let corpus = include_str!("spf_parser_regressions.txt");
    let mut n = 0;
    for line in corpus.lines() {
        let Some((expect, record)) = line.split_once(' ') else {
            continue;
        };
        let record = unescape(record);
        check(&record);
        match expect {
            "ok" => assert!(
                parse_record(&record).is_ok(),
                "{record:?}: {:?}",
                parse_record(&record)
            ),
            "err" => assert!(
                parse_record(&record).is_err(),
                "{record:?} must be rejected"
            ),
            _ => continue,
        }
        n += 1;
    }
    assert!(n >= 20, "corpus has {n} entries");
}
