//! Scores the reader on a corpus of messages with expected readings: one
//! folder per source, each with an `expected.toml` that names every message
//! file and what a person reads in it (see tests/fixtures/bounces/README.md).
//! The figures of docs/explain.md come from here, and a test holds them to the
//! targets of issue 17.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Deserialize;

use crate::{Reading, Rules};

/// What a person reads in a message.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    /// `bounce`, `feedback`, `auto_reply` or `not_bounce`.
    pub kind: ExpectedKind,
    /// Who wrote it (`postfix`, `qmail`, `exim`, `exchange`, …; free text, the table's rows).
    pub mta: String,
    /// The failed recipients (bounces only).
    #[serde(default)]
    pub recipients: Vec<ExpectedRecipient>,
    /// Why the expectation is what it is, when not obvious.
    #[serde(default)]
    pub note: Option<String>,
}

/// The kinds of message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpectedKind {
    /// A non-delivery or delay report.
    Bounce,
    /// An RFC 5965 feedback report.
    Feedback,
    /// An automatic reply.
    AutoReply,
    /// Anything else.
    NotBounce,
}

/// One failed recipient as a person reads it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedRecipient {
    /// The address (absent when the bounce names none).
    #[serde(default)]
    pub address: Option<String>,
    /// The RFC 3463 status the message gives (the most specific one).
    #[serde(default)]
    pub status: Option<String>,
    /// The SMTP reply code the message gives.
    #[serde(default)]
    pub reply: Option<u16>,
    /// The reason (`reasons.toml` id); absent when the message gives none.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Counts for one row of the table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Messages.
    pub messages: usize,
    /// Bounces.
    pub bounces: usize,
    /// Bounces that carry a status code.
    pub with_status: usize,
    /// … of which the reader gave a status.
    pub decided: usize,
    /// … of which the statuses are the expected ones.
    pub status_match: usize,
    /// Bounces whose recipients are the expected ones.
    pub recipients_match: usize,
    /// Bounces that carry a reply code.
    pub with_reply: usize,
    /// … of which the reply codes match.
    pub reply_match: usize,
    /// Bounces without a status code.
    pub codeless: usize,
    /// … of which the reader gave a reason.
    pub codeless_reason_given: usize,
    /// … of which the reasons are the expected ones.
    pub codeless_reason_match: usize,
    /// Bounces (with or without a code) whose reasons are the expected ones.
    pub reason_match: usize,
    /// Messages that are not bounces.
    pub non_bounces: usize,
    /// … given a status (must stay 0).
    pub non_bounces_with_status: usize,
    /// … recognised as what they are.
    pub non_bounces_kind_match: usize,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.messages += o.messages;
        self.bounces += o.bounces;
        self.with_status += o.with_status;
        self.decided += o.decided;
        self.status_match += o.status_match;
        self.recipients_match += o.recipients_match;
        self.with_reply += o.with_reply;
        self.reply_match += o.reply_match;
        self.codeless += o.codeless;
        self.codeless_reason_given += o.codeless_reason_given;
        self.codeless_reason_match += o.codeless_reason_match;
        self.reason_match += o.reason_match;
        self.non_bounces += o.non_bounces;
        self.non_bounces_with_status += o.non_bounces_with_status;
        self.non_bounces_kind_match += o.non_bounces_kind_match;
    }
}

/// The score of a corpus.
#[derive(Debug, Clone, Default)]
pub struct Score {
    /// All messages.
    pub total: Counts,
    /// Per source folder.
    pub by_source: BTreeMap<String, Counts>,
    /// Per MTA (the `mta` of the expectations).
    pub by_mta: BTreeMap<String, Counts>,
    /// One line per message whose reading differs from the expectation.
    pub mismatches: Vec<String>,
}

/// A percentage, 100 when there is nothing to count.
pub fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        100.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// Errors reading a corpus.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CorpusError {
    /// A file could not be read.
    #[error("{path}: {message}")]
    Io {
        /// The path.
        path: String,
        /// Why.
        message: String,
    },
    /// An expected.toml is not valid.
    #[error("{0}")]
    Expected(String),
    /// A message file is not listed in its folder's expected.toml, or the reverse.
    #[error("{0}")]
    Unlisted(String),
}

/// Files in a source folder that are not messages.
fn is_message_file(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !(lower == "expected.toml"
        || lower.starts_with("license")
        || lower.starts_with("copying")
        || lower.ends_with(".md")
        || lower.ends_with(".sh")
        || lower.ends_with(".py")
        || lower.ends_with(".cf")
        || lower.ends_with(".conf")
        || lower.starts_with('.'))
}

fn lower_set<'a>(it: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut v: Vec<String> = it.map(|s| s.to_ascii_lowercase()).collect();
    v.sort();
    v.dedup();
    v
}

/// Scores one message; returns its counts and, when it differs, why.
pub fn score_message(
    name: &str,
    input: &[u8],
    expected: &Expected,
    rules: &Rules,
) -> (Counts, Option<String>) {
    let mut c = Counts {
        messages: 1,
        ..Counts::default()
    };
    let reading = crate::read(input, rules);
    let mut why: Vec<String> = Vec::new();
    if expected.kind != ExpectedKind::Bounce {
        c.non_bounces = 1;
        let given_status = matches!(&reading, Ok(Reading::Bounce(b)) if b.recipients.iter().any(|r| r.status.is_some() || r.reply_code.is_some()));
        if given_status {
            c.non_bounces_with_status = 1;
            why.push("a non-bounce was given a status".into());
        }
        let kind_ok = matches!(
            (&reading, expected.kind),
            (Ok(Reading::Feedback(_)), ExpectedKind::Feedback)
                | (Ok(Reading::AutoReply(_)), ExpectedKind::AutoReply)
                | (Err(crate::BounceError::NotBounce), ExpectedKind::NotBounce)
        );
        if kind_ok {
            c.non_bounces_kind_match = 1;
        } else {
            why.push(format!(
                "expected {:?}, read {}",
                expected.kind,
                match &reading {
                    Ok(Reading::Bounce(_)) => "a bounce",
                    Ok(Reading::Feedback(_)) => "a feedback report",
                    Ok(Reading::AutoReply(_)) => "an auto-reply",
                    Err(_) => "not a bounce",
                }
            ));
        }
        return (
            c,
            (!why.is_empty()).then(|| format!("{name}: {}", why.join("; "))),
        );
    }
    c.bounces = 1;
    let got: Vec<crate::RecipientStatus> = match &reading {
        Ok(Reading::Bounce(b)) => b.recipients.clone(),
        Ok(_) => {
            why.push("read as a non-bounce".into());
            Vec::new()
        }
        Err(e) => {
            why.push(format!("error: {e}"));
            Vec::new()
        }
    };
    let exp_status = lower_set(
        expected
            .recipients
            .iter()
            .filter_map(|r| r.status.as_deref()),
    );
    let got_status = lower_set(got.iter().filter_map(|r| r.status.as_deref()));
    if !exp_status.is_empty() {
        c.with_status = 1;
        if !got_status.is_empty() {
            c.decided = 1;
        } else {
            why.push(format!("undecided (expected status {exp_status:?})"));
        }
        if got_status == exp_status {
            c.status_match = 1;
        } else if !got_status.is_empty() {
            why.push(format!("status {got_status:?}, expected {exp_status:?}"));
        }
    } else {
        c.codeless = 1;
    }
    // Recipients: each expected address is the reader's recipient or original recipient.
    let exp_addr = lower_set(
        expected
            .recipients
            .iter()
            .filter_map(|r| r.address.as_deref()),
    );
    let got_addr = lower_set(got.iter().filter_map(|r| r.recipient.as_deref()));
    let got_any: Vec<String> = lower_set(
        got.iter()
            .flat_map(|r| [r.recipient.as_deref(), r.original_recipient.as_deref()])
            .flatten(),
    );
    let recipients_ok =
        exp_addr.iter().all(|a| got_any.contains(a)) && got_addr.len() == exp_addr.len();
    if recipients_ok {
        c.recipients_match = 1;
    } else {
        why.push(format!("recipients {got_addr:?}, expected {exp_addr:?}"));
    }
    let exp_reply: Vec<u16> = {
        let mut v: Vec<u16> = expected.recipients.iter().filter_map(|r| r.reply).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    if !exp_reply.is_empty() {
        c.with_reply = 1;
        let mut g: Vec<u16> = got.iter().filter_map(|r| r.reply_code).collect();
        g.sort_unstable();
        g.dedup();
        if g == exp_reply {
            c.reply_match = 1;
        } else {
            why.push(format!("reply {g:?}, expected {exp_reply:?}"));
        }
    }
    let exp_reason = lower_set(
        expected
            .recipients
            .iter()
            .filter_map(|r| r.reason.as_deref()),
    );
    let got_reason = lower_set(got.iter().filter_map(|r| r.reason.as_deref()));
    let reason_ok = got_reason == exp_reason;
    if reason_ok {
        c.reason_match = 1;
    }
    if c.codeless == 1 {
        if !got_reason.is_empty() {
            c.codeless_reason_given = 1;
        }
        if reason_ok {
            c.codeless_reason_match = 1;
        } else {
            why.push(format!("reason {got_reason:?}, expected {exp_reason:?}"));
        }
    } else if !reason_ok {
        why.push(format!(
            "(coded) reason {got_reason:?}, expected {exp_reason:?}"
        ));
    }
    (
        c,
        (!why.is_empty()).then(|| format!("{name}: {}", why.join("; "))),
    )
}

/// Scores every source folder under `root` (folders with an `expected.toml`).
pub fn score_dir(root: &Path, rules: &Rules) -> Result<Score, CorpusError> {
    let io = |p: &Path, e: std::io::Error| CorpusError::Io {
        path: p.display().to_string(),
        message: e.to_string(),
    };
    let mut score = Score::default();
    let mut dirs: Vec<_> = std::fs::read_dir(root)
        .map_err(|e| io(root, e))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("expected.toml").is_file())
        .collect();
    dirs.sort();
    for dir in dirs {
        let source = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let exp_path = dir.join("expected.toml");
        let text = std::fs::read_to_string(&exp_path).map_err(|e| io(&exp_path, e))?;
        let expected: BTreeMap<String, Expected> = toml::from_str(&text)
            .map_err(|e| CorpusError::Expected(format!("{}: {e}", exp_path.display())))?;
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .map_err(|e| io(&dir, e))?
            .filter_map(Result::ok)
            .filter(|e| e.path().is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| is_message_file(n))
            .collect();
        files.sort();
        for f in &files {
            if !expected.contains_key(f) {
                return Err(CorpusError::Unlisted(format!(
                    "{}: {f} has no entry in expected.toml",
                    dir.display()
                )));
            }
        }
        for name in expected.keys() {
            if !files.contains(name) {
                return Err(CorpusError::Unlisted(format!(
                    "{}: expected.toml names {name}, which is not there",
                    dir.display()
                )));
            }
        }
        for (name, exp) in &expected {
            let path = dir.join(name);
            let input = std::fs::read(&path).map_err(|e| io(&path, e))?;
            let (c, why) = score_message(&format!("{source}/{name}"), &input, exp, rules);
            score.total.add(&c);
            score.by_source.entry(source.clone()).or_default().add(&c);
            score.by_mta.entry(exp.mta.clone()).or_default().add(&c);
            if let Some(w) = why {
                score.mismatches.push(w);
            }
        }
    }
    Ok(score)
}

fn pct(part: usize, whole: usize) -> String {
    if whole == 0 {
        "—".to_owned()
    } else {
        format!("{:.1} % ({part}/{whole})", percent(part, whole))
    }
}

/// The figures as Markdown: the headline list, then a table per source and per MTA.
pub fn markdown(score: &Score) -> String {
    let t = &score.total;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Corpus: {} messages ({} bounces, {} non-bounces) from {} sources.\n",
        t.messages,
        t.bounces,
        t.non_bounces,
        score.by_source.len()
    );
    let _ = writeln!(s, "| figure | result | target |\n|---|---|---|");
    let _ = writeln!(
        s,
        "| bounces carrying a status: decided | {} | ≥ 99 % |",
        pct(t.decided, t.with_status)
    );
    let _ = writeln!(
        s,
        "| … status code matches | {} | ≥ 97 % |",
        pct(t.status_match, t.with_status)
    );
    let _ = writeln!(
        s,
        "| bounces: recipients found | {} | ≥ 95 % |",
        pct(t.recipients_match, t.bounces)
    );
    let _ = writeln!(
        s,
        "| bounces carrying a reply code: reply matches | {} | — |",
        pct(t.reply_match, t.with_reply)
    );
    let _ = writeln!(
        s,
        "| bounces without a code: a reason given | {} | — |",
        pct(t.codeless_reason_given, t.codeless)
    );
    let _ = writeln!(
        s,
        "| … the expected reason | {} | ≥ 90 % |",
        pct(t.codeless_reason_match, t.codeless)
    );
    let _ = writeln!(
        s,
        "| all bounces: the expected reason | {} | — |",
        pct(t.reason_match, t.bounces)
    );
    let _ = writeln!(
        s,
        "| non-bounces given a status | {} | 0 |",
        t.non_bounces_with_status
    );
    let _ = writeln!(
        s,
        "| non-bounces recognised (feedback, auto-reply, refused) | {} | — |",
        pct(t.non_bounces_kind_match, t.non_bounces)
    );
    for (title, rows) in [("source", &score.by_source), ("MTA", &score.by_mta)] {
        let _ = writeln!(
            s,
            "\n| {title} | messages | with status: decided | status match | recipients | without code: reason | non-bounces given a status |\n|---|---|---|---|---|---|---|"
        );
        for (k, c) in rows.iter() {
            let _ = writeln!(
                s,
                "| {k} | {} | {} | {} | {} | {} | {} |",
                c.messages,
                frac(c.decided, c.with_status),
                frac(c.status_match, c.with_status),
                frac(c.recipients_match, c.bounces),
                frac(c.codeless_reason_match, c.codeless),
                if c.non_bounces == 0 {
                    "—".to_owned()
                } else {
                    format!("{}/{}", c.non_bounces_with_status, c.non_bounces)
                },
            );
        }
    }
    s
}

fn frac(part: usize, whole: usize) -> String {
    if whole == 0 {
        "—".to_owned()
    } else {
        format!("{part}/{whole}")
    }
}
