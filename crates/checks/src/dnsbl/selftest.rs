//! The RFC 5782 §5 self-test: each list is asked for its test points before
//! any of its answers is used.

use super::*;

/// One RFC 5782 §5 test point: the labels asked and how it is shown.
#[derive(Debug, Clone)]
pub(super) struct TestPoint {
    pub(super) labels: String,
    pub(super) shown: String,
}

#[derive(Debug, Clone)]
pub(super) struct SelfTest {
    pub(super) listed: TestPoint,
    pub(super) not_listed: TestPoint,
}

/// Which test points apply to a question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Family {
    V4,
    V6,
    Domain,
}

impl Family {
    pub(super) fn of(ip: IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

/// A list's RFC 5782 §5 self-test result for one family.
#[derive(Debug, Clone)]
pub(super) enum Health {
    Usable {
        evidence: String,
    },
    /// The list answered, but not as a list must.
    Unusable {
        test_point: String,
        return_code: String,
        meaning: Option<Meaning>,
        cause: RefusalCause,
        evidence: Vec<String>,
    },
    /// The list did not answer.
    Unanswered {
        test_point: String,
        failure: String,
        evidence: Vec<String>,
    },
}

impl Dnsbl {
    /// The RFC 5782 §5 self-test for `family`, asked once per run (cached).
    pub(super) async fn health(&self, family: Family, cx: &CheckCx) -> Health {
        let points = self.test_points(family);
        let (listed, not_listed) = tokio::join!(
            self.lookup(&points.listed.labels, cx),
            self.lookup(&points.not_listed.labels, cx)
        );
        let evidence = vec![
            format!("{} A: {}", listed.shown_name, describe(&listed.verdict)),
            format!(
                "{} A: {}",
                not_listed.shown_name,
                describe(&not_listed.verdict)
            ),
        ];
        let unusable = |tp: &TestPoint, codes: String, meaning, cause| Health::Unusable {
            test_point: tp.shown.clone(),
            return_code: codes,
            meaning,
            cause,
            evidence: evidence.clone(),
        };
        match (&listed.verdict, &not_listed.verdict) {
            (Verdict::Failed(f), _) => Health::Unanswered {
                test_point: points.listed.shown.clone(),
                failure: f.clone(),
                evidence: evidence.clone(),
            },
            (Verdict::Refused { codes, cause }, _) => unusable(
                &points.listed,
                join_codes(codes.iter().map(|(c, _)| *c)),
                join_meanings(codes.iter().map(|(_, m)| m.as_ref())),
                *cause,
            ),
            (Verdict::NotListed(answer), _) => unusable(
                &points.listed,
                (*answer).to_owned(),
                None,
                RefusalCause::TestPointMissing,
            ),
            (Verdict::Listed(_), Verdict::Failed(f)) => Health::Unanswered {
                test_point: points.not_listed.shown.clone(),
                failure: f.clone(),
                evidence: evidence.clone(),
            },
            (Verdict::Listed(_), Verdict::Refused { codes, cause }) => unusable(
                &points.not_listed,
                join_codes(codes.iter().map(|(c, _)| *c)),
                join_meanings(codes.iter().map(|(_, m)| m.as_ref())),
                *cause,
            ),
            (Verdict::Listed(_), Verdict::Listed(codes)) => unusable(
                &points.not_listed,
                join_codes(codes.iter().map(|(c, _)| IpAddr::V4(*c))),
                join_meanings(codes.iter().map(|(_, m)| m.as_ref())),
                RefusalCause::AnswersEverything,
            ),
            (Verdict::Listed(_), Verdict::NotListed(_)) => Health::Usable {
                evidence: format!(
                    "{} self-test (RFC 5782 §5): {} listed, {} not listed",
                    self.zone, points.listed.shown, points.not_listed.shown
                ),
            },
        }
    }

    /// The observation for an unusable or silent list.
    pub(super) fn health_observation(
        &self,
        family: Family,
        health: &Health,
        note: Option<&String>,
    ) -> Option<Observation> {
        let subject = match family {
            Family::V6 => format!("{} (IPv6)", self.zone),
            Family::V4 | Family::Domain => self.zone.clone(),
        };
        let obs = match health {
            Health::Usable { .. } => return None,
            Health::Unusable {
                test_point,
                return_code,
                meaning,
                cause,
                evidence,
            } => Observation::new(QUERY_REFUSED, subject)
                .evidence_lines(evidence.iter().cloned())
                .var("queried", test_point.clone())
                .var("list", self.list.clone())
                .var("zone", self.zone.clone())
                .var("return_code", return_code.clone())
                .var(
                    "meaning",
                    meaning.as_ref().map(|m| m.en.clone()).unwrap_or_default(),
                )
                .var(
                    "meaning_ja",
                    meaning.as_ref().map(|m| m.ja.clone()).unwrap_or_default(),
                )
                .var("cause", cause.as_str()),
            Health::Unanswered {
                test_point,
                failure,
                evidence,
            } => Observation::new(LOOKUP_FAILED, subject)
                .evidence_lines(evidence.iter().cloned())
                .var("queried", test_point.clone())
                .var("list", self.list.clone())
                .var("zone", self.zone.clone())
                .var("failure", failure.clone()),
        };
        Some(match note {
            Some(n) => obs.evidence(n.clone()),
            None => obs,
        })
    }
}
