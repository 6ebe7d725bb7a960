//! What a list's answer means (listed, not listed, refused, failed) and the
//! observation it becomes.

use super::*;

/// Why a list's answer cannot be used (the `cause` template variable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCause {
    /// The list answered one of its documented error codes.
    ErrorCode,
    /// The answer is outside 127.0.0.0/8: not a DNSBL answer (a resolver or a
    /// parked domain answered instead).
    NotLoopback,
    /// The self-test: the test point that must be listed is not (zone gone, or
    /// queries are blocked silently).
    TestPointMissing,
    /// The self-test: the test point that must not be listed is (the zone
    /// answers every name).
    AnswersEverything,
}

impl RefusalCause {
    /// The stable name used in templates and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalCause::ErrorCode => "error_code",
            RefusalCause::NotLoopback => "not_loopback",
            RefusalCause::TestPointMissing => "test_point_missing",
            RefusalCause::AnswersEverything => "answers_everything",
        }
    }
}

/// What one answer of a list means.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Verdict {
    /// NXDOMAIN or NODATA.
    NotListed(&'static str),
    /// Return codes in 127.0.0.0/8 that are not errors.
    Listed(Vec<(Ipv4Addr, Option<Meaning>)>),
    /// Error codes or non-loopback answers.
    Refused {
        codes: Vec<(IpAddr, Option<Meaning>)>,
        cause: RefusalCause,
    },
    /// No usable answer (timeout, SERVFAIL, …).
    Failed(String),
}

/// One question asked of a list and what came back.
#[derive(Debug, Clone)]
pub(super) struct Lookup {
    /// The name asked, with any key hidden.
    pub(super) shown_name: String,
    pub(super) verdict: Verdict,
}

impl Dnsbl {
    /// What an A answer means (RFC 5782 §2.1: listed entries have A records in
    /// 127.0.0.0/8; a name without one is not listed).
    pub(super) fn classify(&self, answer: &Answer) -> Verdict {
        match answer {
            Answer::NxDomain { .. } => Verdict::NotListed("NXDOMAIN"),
            Answer::NoData { .. } => Verdict::NotListed("NODATA"),
            Answer::Failed(why) => Verdict::Failed(self.redact(&why.to_string())),
            Answer::Records(set) => {
                let mut listed = Vec::new();
                let mut errors = Vec::new();
                let mut foreign = Vec::new();
                for ip in set.addresses() {
                    match ip {
                        IpAddr::V4(v4) if v4.octets()[0] == 127 => match self.errors.lookup(v4) {
                            Some(m) => errors.push((ip, Some(m.clone()))),
                            None => listed.push((v4, self.codes.lookup(v4).cloned())),
                        },
                        other => foreign.push((other, None)),
                    }
                }
                if !foreign.is_empty() {
                    Verdict::Refused {
                        codes: foreign,
                        cause: RefusalCause::NotLoopback,
                    }
                } else if !errors.is_empty() {
                    Verdict::Refused {
                        codes: errors,
                        cause: RefusalCause::ErrorCode,
                    }
                } else if listed.is_empty() {
                    // Only CNAMEs on the way, no address: nothing is listed.
                    Verdict::NotListed("NODATA")
                } else {
                    Verdict::Listed(listed)
                }
            }
        }
    }

    /// Turns one lookup of `queried` into an observation (or nothing when not listed).
    pub(super) fn lookup_observation(
        &self,
        queried: &str,
        hosts: &str,
        lookup: &Lookup,
        reason: Option<String>,
        health_line: &str,
    ) -> Option<Observation> {
        let subject = self.subject_for(queried);
        let obs = match &lookup.verdict {
            Verdict::NotListed(_) => return None,
            Verdict::Listed(codes) => {
                let meaning = join_meanings(codes.iter().map(|(_, m)| m.as_ref()));
                let mut obs = Observation::new(self.listed_code, subject).evidence(format!(
                    "{} A {}",
                    lookup.shown_name,
                    join_codes(codes.iter().map(|(c, _)| IpAddr::V4(*c))).replace(", ", " ")
                ));
                for (code, m) in codes {
                    if let Some(m) = m {
                        obs = obs.evidence(format!("{code}: {}", m.en));
                    }
                }
                if let Some(r) = &reason {
                    obs = obs.evidence(format!("{} TXT {r:?}", lookup.shown_name));
                }
                obs = obs.evidence(health_line.to_owned());
                let obs = obs
                    .var("list", self.list.clone())
                    .var("zone", self.zone.clone())
                    .var(
                        "return_code",
                        join_codes(codes.iter().map(|(c, _)| IpAddr::V4(*c))),
                    )
                    .var(
                        "meaning",
                        meaning.as_ref().map(|m| m.en.clone()).unwrap_or_default(),
                    )
                    .var(
                        "meaning_ja",
                        meaning.as_ref().map(|m| m.ja.clone()).unwrap_or_default(),
                    )
                    .var("reason", reason.unwrap_or_default());
                match self.kind {
                    ListKind::Ip => obs
                        .evidence(format!("used by: {hosts}"))
                        .var("address", queried.to_owned())
                        .var("hosts", hosts.to_owned()),
                    ListKind::Domain => obs.var("name", queried.to_owned()),
                }
            }
            Verdict::Refused { codes, cause } => {
                let meaning = join_meanings(codes.iter().map(|(_, m)| m.as_ref()));
                Observation::new(QUERY_REFUSED, subject)
                    .evidence(format!(
                        "{} A {}",
                        lookup.shown_name,
                        join_codes(codes.iter().map(|(c, _)| *c)).replace(", ", " ")
                    ))
                    .var("queried", queried.to_owned())
                    .var("list", self.list.clone())
                    .var("zone", self.zone.clone())
                    .var("return_code", join_codes(codes.iter().map(|(c, _)| *c)))
                    .var(
                        "meaning",
                        meaning.as_ref().map(|m| m.en.clone()).unwrap_or_default(),
                    )
                    .var(
                        "meaning_ja",
                        meaning.as_ref().map(|m| m.ja.clone()).unwrap_or_default(),
                    )
                    .var("cause", cause.as_str())
            }
            Verdict::Failed(failure) => Observation::new(LOOKUP_FAILED, subject)
                .evidence(format!("{} A: {failure}", lookup.shown_name))
                .var("queried", queried.to_owned())
                .var("list", self.list.clone())
                .var("zone", self.zone.clone())
                .var("failure", failure.clone()),
        };
        Some(obs)
    }
}

pub(super) fn describe(v: &Verdict) -> String {
    match v {
        Verdict::NotListed(a) => (*a).to_owned(),
        Verdict::Listed(codes) => join_codes(codes.iter().map(|(c, _)| IpAddr::V4(*c))),
        Verdict::Refused { codes, .. } => join_codes(codes.iter().map(|(c, _)| *c)),
        Verdict::Failed(f) => f.clone(),
    }
}

pub(super) fn join_codes(codes: impl Iterator<Item = IpAddr>) -> String {
    let mut v: Vec<String> = Vec::new();
    for c in codes {
        let s = c.to_string();
        if !v.contains(&s) {
            v.push(s);
        }
    }
    v.join(", ")
}

/// The known meanings, de-duplicated, joined with "; ".
pub(super) fn join_meanings<'a>(
    meanings: impl Iterator<Item = Option<&'a Meaning>>,
) -> Option<Meaning> {
    let mut en: Vec<&str> = Vec::new();
    let mut ja: Vec<&str> = Vec::new();
    for m in meanings.flatten() {
        if !en.contains(&m.en.as_str()) {
            en.push(&m.en);
            ja.push(&m.ja);
        }
    }
    if en.is_empty() {
        None
    } else {
        Some(Meaning {
            en: en.join("; "),
            ja: ja.join("; "),
        })
    }
}

/// Untrusted list text on one line: control characters become spaces.
pub(super) fn clean_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        out.push(if c.is_control() { ' ' } else { c });
    }
    out.trim().to_owned()
}

pub(super) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}
