//! Engine `relay_config`: reviews the relay settings of a mail server from
//! files the administrator exports (KB895853: the settings that make a server
//! an open relay), before and besides any probe from outside.
//!
//! - Postfix: `postconf -n`, `postconf -M`/`-P`/`-F` output, or `main.cf` and
//!   `master.cf` themselves (`postfix_syntax.rs`); the restriction lists
//!   evaluated as smtpd does (`restrictions.rs`, `tables.rs`), per smtpd
//!   service (`postfix.rs`), the findings and their fixes
//!   (`postfix_findings.rs`).
//! - Exchange 2013 and later: `Get-ReceiveConnector`, `Get-ADPermission` and
//!   `Get-RecipientFilterConfig` as Format-List, Format-Table or
//!   ConvertTo-Json (`exchange_syntax.rs`, `exchange.rs`).
//! - `probe.rs` compares the verdict with the SMTP probe's.
//!
//! Parsing and evaluation are pure: text in, [`Review`] out. Anything the
//! review could not read or evaluate is a `relay_config.unparsed` observation
//! naming `file:line`.

pub mod exchange;
pub mod exchange_syntax;
pub mod networks;
pub mod postfix;
pub mod postfix_findings;
pub mod postfix_syntax;
pub mod probe;
pub mod render;
pub mod restrictions;
pub mod tables;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use mxaudit_core::{CheckCx, CheckReport, CodeSpec, Engine, Observation, PluginMeta, Target};

/// One exported file: its name as the user gave it, and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// The name shown in locations (`file:line`).
    pub name: String,
    /// The text.
    pub text: String,
}

/// Which system the files describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Postfix.
    Postfix,
    /// Microsoft Exchange Server 2013 or later.
    Exchange,
}

impl std::str::FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Kind, String> {
        match s.to_ascii_lowercase().as_str() {
            "postfix" => Ok(Kind::Postfix),
            "exchange" => Ok(Kind::Exchange),
            other => Err(format!("unknown kind `{other}` (postfix, exchange)")),
        }
    }
}

/// Property names only Exchange output has.
const EXCHANGE_MARKERS: &[&str] = &[
    "remoteipranges",
    "authmechanism",
    "permissiongroups",
    "extendedrights",
    "recipientvalidationenabled",
    "runspaceid",
];

impl Kind {
    /// Guesses the kind of one file from its content.
    pub fn guess(text: &str) -> Kind {
        let t = text.trim_start_matches('\u{feff}').trim_start();
        if t.starts_with('[') || t.starts_with('{') {
            return Kind::Exchange;
        }
        let exchange = t.lines().take(2000).any(|l| {
            let lower = l.trim_start().to_ascii_lowercase();
            let key = lower
                .split([':', ' '])
                .next()
                .unwrap_or("")
                .trim_matches('"');
            EXCHANGE_MARKERS.contains(&key)
                || (lower.starts_with("identity")
                    && lower.contains(" user ")
                    && lower.contains(" deny"))
        });
        if exchange {
            Kind::Exchange
        } else {
            Kind::Postfix
        }
    }

    /// The kind of a set of files; an error names two files that disagree.
    pub fn guess_all(inputs: &[Input]) -> Result<Kind, String> {
        let mut seen: Option<(Kind, &str)> = None;
        for i in inputs {
            let k = Kind::guess(&i.text);
            match seen {
                Some((prev, name)) if prev != k => {
                    return Err(format!(
                        "{name} looks like {} output and {} like {}; review them separately or name the kind",
                        prev.as_str(),
                        i.name,
                        k.as_str()
                    ));
                }
                None => seen = Some((k, &i.name)),
                _ => {}
            }
        }
        Ok(seen.map_or(Kind::Postfix, |(k, _)| k))
    }

    /// `postfix` or `exchange`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Postfix => "postfix",
            Kind::Exchange => "exchange",
        }
    }
}

/// What the caller adds to the files.
#[derive(Debug, Clone, Default)]
pub struct ReviewOptions {
    /// Review only these Postfix services (`smtp`, `smtp/inet`,
    /// `127.0.0.1:2525`), even when they listen on loopback only.
    pub services: Vec<String>,
    /// The source text of Postfix lookup tables, by the path the settings
    /// name (`/etc/postfix/access` for `hash:/etc/postfix/access`).
    pub tables: BTreeMap<String, String>,
}

/// The relay verdict of a service, a connector, or the whole review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Relay {
    /// An anonymous client outside the trusted networks can relay.
    Open,
    /// It cannot.
    Closed,
    /// Something the review cannot see decides (a table, a policy server).
    Undecided,
}

impl Relay {
    /// `open`, `closed`, `undecided`.
    pub fn as_str(self) -> &'static str {
        match self {
            Relay::Open => "open",
            Relay::Closed => "closed",
            Relay::Undecided => "undecided",
        }
    }
}

/// The verdict for one reviewed Postfix service or Exchange connector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceReview {
    /// `postfix` or `exchange`.
    pub system: String,
    /// `smtp/inet`, `EX01\Default Frontend EX01`.
    pub name: String,
    /// Whether it relays for anyone.
    pub relay: Relay,
}

/// Something the review assumed or skipped (not a problem): a code for the
/// text layer of the review (`render.rs`), the thing it is about, a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    /// `assumed_stock_service`, `assumed_named_service`, `skipped_loopback`,
    /// `mynetworks_from_style`, `smtpd_refuses_mail`, `connector_disabled`,
    /// `service_not_found`.
    pub code: &'static str,
    /// The service, connector or parameter.
    pub subject: String,
    /// A value (e.g. the `mynetworks_style`).
    pub value: String,
}

impl Note {
    /// A note.
    pub fn new(code: &'static str, subject: &str, value: &str) -> Note {
        Note {
            code,
            subject: subject.to_owned(),
            value: value.to_owned(),
        }
    }
}

/// The result of a review.
#[derive(Debug, Clone, Serialize)]
pub struct Review {
    /// The system.
    pub kind: Kind,
    /// The files reviewed, by name.
    pub inputs: Vec<String>,
    /// One verdict per reviewed service or connector.
    pub services: Vec<ServiceReview>,
    /// Assumptions and skipped parts.
    pub notes: Vec<Note>,
    /// Codes and facts (render them with the `relay-config` plugin's manifest).
    pub observations: Vec<Observation>,
}

impl Review {
    /// The verdict over all services: open when one is open, undecided when
    /// one is undecided, closed when all are closed; `None` when nothing was
    /// reviewed.
    pub fn relay(&self) -> Option<Relay> {
        if self.services.is_empty() {
            return None;
        }
        let any = |r: Relay| self.services.iter().any(|s| s.relay == r);
        Some(if any(Relay::Open) {
            Relay::Open
        } else if any(Relay::Undecided) {
            Relay::Undecided
        } else {
            Relay::Closed
        })
    }
}

/// Collects what a review finds; one observation per (code, subject).
#[derive(Debug, Default)]
pub struct Sink {
    observations: Vec<Observation>,
    notes: Vec<Note>,
    services: Vec<ServiceReview>,
}

impl Sink {
    fn push(&mut self, o: Observation) {
        if !self
            .observations
            .iter()
            .any(|x| x.code == o.code && x.subject == o.subject)
        {
            self.observations.push(o);
        }
    }
    fn note(&mut self, n: Note) {
        if !self.notes.contains(&n) {
            self.notes.push(n);
        }
    }
    fn service(&mut self, s: ServiceReview) {
        self.services.push(s);
    }
    /// A setting the review could not read or evaluate: `reason` is one of
    /// `syntax`, `truncated`, `value`, `missing`, `expansion`, `table_unread`,
    /// `host_name`, `policy_service`, `unknown_restriction`, `regexp_table`,
    /// `ranges_missing`, `connector_missing`.
    fn unparsed(&mut self, system: &str, location: &str, item: &str, reason: &str) {
        self.push(
            Observation::new("relay_config.unparsed", item)
                .evidence(format!("{location}: {item}"))
                .var("system", system)
                .var("location", location)
                .var("item", item)
                .var("reason", reason),
        );
    }
    fn unparsed_because(
        &mut self,
        system: &str,
        location: &str,
        item: &str,
        reason: &str,
        why: &str,
    ) {
        self.push(
            Observation::new("relay_config.unparsed", item)
                .evidence(format!("{location}: {item}: {why}"))
                .var("system", system)
                .var("location", location)
                .var("item", item)
                .var("reason", reason),
        );
    }
}

/// Reviews exported settings of `kind`.
pub fn review(inputs: &[Input], kind: Kind, opts: &ReviewOptions) -> Review {
    let mut sink = Sink::default();
    match kind {
        Kind::Postfix => postfix::review(&postfix_syntax::parse(inputs), opts, &mut sink),
        Kind::Exchange => exchange::review(&exchange_syntax::parse(inputs), &mut sink),
    }
    Review {
        kind,
        inputs: inputs.iter().map(|i| i.name.clone()).collect(),
        services: sink.services,
        notes: sink.notes,
        observations: sink.observations,
    }
}

/// The lookup-table files Postfix settings name (for `--tables DIR`): paths
/// as written in the settings.
pub fn table_files(inputs: &[Input]) -> Vec<String> {
    postfix::table_files(&postfix_syntax::parse(inputs))
}

/// Largest file read; exports are a few kilobytes.
pub const MAX_FILE_BYTES: u64 = 4 << 20;

/// Reads files for a review: UTF-8 (with or without BOM) or UTF-16 LE with
/// BOM (what Windows PowerShell 5.1's `>` writes). Bounded by [`MAX_FILE_BYTES`].
pub fn read_input(path: &std::path::Path, name: &str) -> Result<Input, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("{name}: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{name}: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!("{name}: larger than {MAX_FILE_BYTES} bytes"));
    }
    Ok(Input {
        name: name.to_owned(),
        text: decode(&bytes),
    })
}

/// UTF-16 LE with BOM becomes text; anything else is read as UTF-8, with
/// invalid bytes replaced.
pub fn decode(bytes: &[u8]) -> String {
    if let Some(rest) = bytes.strip_prefix(&[0xff, 0xfe]) {
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        return String::from_utf16_lossy(&units);
    }
    let bytes = bytes.strip_prefix(&[0xef, 0xbb, 0xbf]).unwrap_or(bytes);
    String::from_utf8_lossy(bytes).into_owned()
}

// ---------------------------------------------------------------------------
// The engine

/// `[params]` of the `relay_config` engine.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfigParams {
    /// `postfix` or `exchange`; default: guessed from the files.
    #[serde(default)]
    pub kind: Option<Kind>,
}

/// The `relay_config` engine: reviews the files a domain's configuration
/// names (`[[domains]] relay_config = [...]`).
#[derive(Debug)]
pub struct RelayConfig {
    kind: Option<Kind>,
}

/// Variables of the findings about one service or connector.
macro_rules! vars {
    ($($v:literal),*) => { &["system", "service", "location", "fix" $(, $v)*] };
}

impl Engine for RelayConfig {
    const NAME: &'static str = "relay_config";
    const CODES: &'static [CodeSpec] = &[
        CodeSpec {
            code: "relay_config.open_relay",
            vars: vars!("list", "restriction"),
        },
        CodeSpec {
            code: "relay_config.mynetworks_too_wide",
            vars: vars!("setting", "ranges"),
        },
        CodeSpec {
            code: "relay_config.auth_relay_plaintext",
            vars: vars!(),
        },
        CodeSpec {
            code: "relay_config.recipient_not_validated",
            vars: vars!("cause"),
        },
        CodeSpec {
            code: "relay_config.unparsed",
            vars: &["system", "location", "item", "reason"],
        },
        CodeSpec {
            code: "relay_config.probe_mismatch",
            vars: &["direction", "host", "config_verdict", "probe_verdict"],
        },
    ];
    type Params = RelayConfigParams;

    fn build(params: RelayConfigParams, _plugin: &PluginMeta) -> Result<Self, String> {
        Ok(RelayConfig { kind: params.kind })
    }

    async fn run(&self, target: &Target, cx: &CheckCx) -> CheckReport {
        let mut report = CheckReport::default();
        if target.relay_config.is_empty() {
            return report;
        }
        let files: Vec<PathBuf> = target.relay_config.clone();
        let read = tokio::task::spawn_blocking(move || {
            files
                .iter()
                .map(|p| read_input(p, &p.display().to_string()))
                .collect::<Vec<_>>()
        })
        .await;
        let mut inputs = Vec::new();
        match read {
            Ok(results) => {
                for r in results {
                    match r {
                        Ok(i) => inputs.push(i),
                        Err(e) => report.error(e),
                    }
                }
            }
            Err(e) => report.error(format!("reading the relay_config files: {e}")),
        }
        // The files describe one server together: a review of some of them
        // would judge settings it cannot see.
        if !report.errors.is_empty() || inputs.is_empty() {
            return report;
        }
        let kind = match self.kind {
            Some(k) => k,
            None => match Kind::guess_all(&inputs) {
                Ok(k) => k,
                Err(e) => {
                    report.error(e);
                    return report;
                }
            },
        };
        let review = review(&inputs, kind, &ReviewOptions::default());
        if review.services.is_empty() && review.observations.is_empty() {
            report.error(format!(
                "{}: no {} relay settings found",
                review.inputs.join(", "),
                kind.as_str()
            ));
        }
        let config_verdict = review.relay();
        for o in review.observations {
            report.push(o);
        }
        // Tie to the probe: when this run also probes the domain's MX over
        // SMTP, say whether the two verdicts disagree (the probe is shared
        // with the smtp check, not repeated).
        if let Some(config_verdict) = config_verdict
            && let Some(prober) = cx.run.selected_peers().find_map(|p| p.check.smtp_prober())
        {
            let probe = prober.probe_domain(target, cx).await;
            let verdict = probe::ProbeRelay::from_observations(
                &probe.report.observations,
                &probe.report.errors,
                probe.sessions > 0,
            );
            if let Some(o) = probe::mismatch(config_verdict, verdict, target.domain.bare()) {
                report.push(o);
            }
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(name: &str, text: &str) -> Input {
        Input {
            name: name.to_owned(),
            text: text.to_owned(),
        }
    }

    #[test]
    fn kinds_are_guessed_from_content() {
        assert_eq!(Kind::guess("mynetworks = 10.0.0.0/8\n"), Kind::Postfix);
        assert_eq!(
            Kind::guess("\n\nRunspaceId : x\nAuthMechanism : Tls\n"),
            Kind::Exchange
        );
        assert_eq!(Kind::guess("[\n {\"Name\": \"x\"}\n]"), Kind::Exchange);
        assert_eq!(
            Kind::guess(
                "\nIdentity   User   Deny  Inherited Rights\n--------   ----   ----  --------- ------\n"
            ),
            Kind::Exchange
        );
        let err = Kind::guess_all(&[
            input("main.cf", "mynetworks = 10.0.0.0/8"),
            input("rc.txt", "RemoteIPRanges : {}"),
        ])
        .expect_err("mixed");
        assert!(err.contains("main.cf") && err.contains("rc.txt"), "{err}");
    }

    #[test]
    fn utf16_exports_are_decoded() {
        // Windows PowerShell 5.1 `>` writes UTF-16 LE with a BOM.
        let mut bytes = vec![0xff, 0xfe];
        for u in "Name : A\r\n".encode_utf16() {
            bytes.extend_from_slice(&u.to_le_bytes());
        }
        assert_eq!(decode(&bytes), "Name : A\r\n");
        assert_eq!(decode(b"\xef\xbb\xbfx = 1"), "x = 1");
    }

    #[test]
    fn the_verdict_over_services() {
        let mut r = review(&[], Kind::Postfix, &ReviewOptions::default());
        assert_eq!(r.relay(), None);
        for (relay, want) in [
            (Relay::Closed, Relay::Closed),
            (Relay::Undecided, Relay::Undecided),
            (Relay::Open, Relay::Open),
            (Relay::Closed, Relay::Open),
        ] {
            r.services.push(ServiceReview {
                system: "postfix".into(),
                name: "x".into(),
                relay,
            });
            assert_eq!(r.relay(), Some(want));
        }
    }
}
