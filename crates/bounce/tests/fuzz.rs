//! No crash on any input: the reader on mutated corpus messages (bytes flipped,
//! cut, repeated, lines shuffled), a bounded number of cases so that CI stays
//! fast; plus pathological inputs that are not mutations.

use std::path::Path;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use mxaudit_bounce::Rules;
use mxaudit_bounce::view::Explanation;

fn corpus() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/bounces");
    let mut out = Vec::new();
    for dir in std::fs::read_dir(&root).expect("corpus").flatten() {
        if !dir.path().is_dir() {
            continue;
        }
        for f in std::fs::read_dir(dir.path()).expect("folder").flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            if name.ends_with(".eml") || (name.ends_with(".txt") && !name.contains("LICENSE")) {
                out.push(std::fs::read(f.path()).expect("read"));
            }
        }
    }
    out.sort();
    assert!(out.len() > 200, "corpus found");
    out
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Cut(usize),
    Insert(usize, Vec<u8>),
    Repeat(usize, usize, usize),
    DropLine(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        any::<usize>().prop_map(Mutation::Cut),
        (
            any::<usize>(),
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..40),
                Just(b"\r\n--".to_vec()),
                Just(b"\nContent-Type: multipart/report; boundary=x\n\n--x\n".to_vec()),
                Just(b"\nFinal-Recipient: rfc822; <\nStatus: 5.".to_vec()),
                Just(b"=\r\n".to_vec()),
                Just(b"\x1b$B".to_vec()),
                Just("550 5.1.1 <ä@例え.jp>".as_bytes().to_vec()),
            ]
        )
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        (any::<usize>(), 1usize..200, 1usize..50).prop_map(|(i, l, n)| Mutation::Repeat(i, l, n)),
        any::<usize>().prop_map(Mutation::DropLine),
    ]
}

fn apply(mut m: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for x in muts {
        let len = m.len().max(1);
        match x {
            Mutation::Flip(i, b) => {
                if !m.is_empty() {
                    let i = i % m.len();
                    m[i] ^= b;
                }
            }
            Mutation::Cut(i) => m.truncate(i % len),
            Mutation::Insert(i, v) => {
                let i = i % len;
                let i = i.min(m.len());
                m.splice(i..i, v.iter().copied());
            }
            Mutation::Repeat(i, l, n) => {
                let start = (i % len).min(m.len());
                let end = (start + l).min(m.len());
                let piece: Vec<u8> = m[start..end].to_vec();
                for _ in 0..*n {
                    m.splice(end..end, piece.iter().copied());
                }
            }
            Mutation::DropLine(i) => {
                let lines: Vec<&[u8]> = m.split(|b| *b == b'\n').collect();
                if lines.len() > 1 {
                    let k = i % lines.len();
                    m = lines
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != k)
                        .map(|(_, l)| *l)
                        .collect::<Vec<_>>()
                        .join(&b'\n');
                }
            }
        }
    }
    m
}

fn read_and_render(input: &[u8], rules: &Rules) {
    if let Ok(reading) = mxaudit_bounce::read(input, rules) {
        let e = Explanation::new(reading, rules, mxaudit_core::Lang::Ja);
        let _ = e.render(false, mxaudit_core::text::escape_terminal, None);
        let _ = e.render(true, mxaudit_core::text::escape_markdown, None);
        let _ = e.json(None);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_corpus_messages_never_crash(pick in any::<usize>(), muts in proptest::collection::vec(mutation(), 1..6)) {
        thread_local! {
            static CORPUS: Vec<Vec<u8>> = corpus();
            static RULES: Rules = Rules::builtin().expect("rules");
        }
        let input = CORPUS.with(|c| apply(c[pick % c.len()].clone(), &muts));
        RULES.with(|r| read_and_render(&input, r));
    }
}

#[test]
fn pathological_inputs_are_bounded() {
    let rules = Rules::builtin().expect("rules");
    let cases: Vec<Vec<u8>> = vec![
        // A very long line of addresses and codes.
        "550 5.1.1 <a@b.example> ".repeat(100_000).into_bytes(),
        // Many lines naming recipients.
        (0..50_000)
            .map(|i| format!("<u{i}@example.org>: 550 5.1.1 unknown\n"))
            .collect::<String>()
            .into_bytes(),
        // Deeply nested multiparts.
        {
            let mut s =
                String::from("From: MAILER-DAEMON@x.example\nSubject: x\nMIME-Version: 1.0\n");
            for i in 0..200 {
                s.push_str(&format!(
                    "Content-Type: multipart/mixed; boundary=b{i}\n\n--b{i}\n"
                ));
            }
            s.into_bytes()
        },
        // Thousands of delivery-status groups.
        {
            let mut s = String::from(
                "From: MAILER-DAEMON@x.example\nSubject: x\nMIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=B\n\n--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; x\n\n",
            );
            for i in 0..20_000 {
                s.push_str(&format!(
                    "Final-Recipient: rfc822; u{i}@x.example\nAction: failed\nStatus: 5.1.1\n\n"
                ));
            }
            s.push_str("--B--\n");
            s.into_bytes()
        },
        vec![0xff; 100_000],
        Vec::new(),
    ];
    for c in cases {
        let started = Instant::now();
        read_and_render(&c, &rules);
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "took {:?} on a {} byte input",
            started.elapsed(),
            c.len()
        );
    }
}
