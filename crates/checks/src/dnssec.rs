//! Engine `dnssec`: are the domain's mail records (MX and TXT by default: the
//! MX set, SPF, and whatever else sits at the apex) secure, insecure or bogus
//! under DNSSEC validation (RFC 4033-4035)?
//!
//! - bogus: validating resolvers (most large mail providers use one) answer
//!   SERVFAIL, so senders cannot find the MX and queue or bounce mail
//!   (4.4.312, `451 4.1.8`): `dnssec.bogus`, with the broken link;
//! - insecure: the domain is not signed, so DANE cannot protect its mail:
//!   `dnssec.unsigned` (info);
//! - indeterminate: a question of the chain failed; an `error` status, never
//!   a finding.
//!
//! A resolver that strips DNSSEC makes every question unanswerable; that is
//! the run's problem (`Dns::dnssec_unavailable`), reported once by the
//! pipeline and here as an `error` status.

use serde::Deserialize;

use mxaudit_core::{CheckCx, CheckReport, CodeSpec, Engine, Observation, PluginMeta, Target};
use mxaudit_dns::{Answer, RType, Security};

/// `[params]` of the `dnssec` engine.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnssecParams {
    /// Record types validated at the domain's name.
    #[serde(default = "default_types")]
    pub types: Vec<String>,
}

fn default_types() -> Vec<String> {
    vec!["MX".to_owned(), "TXT".to_owned()]
}

/// The `dnssec` engine.
#[derive(Debug)]
pub struct Dnssec {
    types: Vec<RType>,
}

impl Engine for Dnssec {
    const NAME: &'static str = "dnssec";
    const CODES: &'static [CodeSpec] = &[
        CodeSpec {
            code: "dnssec.bogus",
            vars: &["reason", "questions"],
        },
        CodeSpec {
            code: "dnssec.unsigned",
            vars: &["questions"],
        },
    ];
    type Params = DnssecParams;

    fn build(params: DnssecParams, _plugin: &PluginMeta) -> Result<Self, String> {
        if params.types.is_empty() {
            return Err("types: name at least one record type".to_owned());
        }
        let mut types = Vec::new();
        for t in &params.types {
            let rtype: RType = t.parse().map_err(|e| format!("types: {e}"))?;
            if !types.contains(&rtype) {
                types.push(rtype);
            }
        }
        Ok(Dnssec { types })
    }

    async fn run(&self, target: &Target, cx: &CheckCx) -> CheckReport {
        let mut report = CheckReport::default();
        let domain = &target.domain;
        let answers = futures::future::join_all(
            self.types
                .iter()
                .map(|&t| async move { (t, cx.dns.query_validated(domain, t).await) }),
        )
        .await;
        let mut bogus: Vec<(RType, String)> = Vec::new();
        let mut insecure: Vec<RType> = Vec::new();
        let mut evidence = Vec::new();
        for (rtype, result) in answers {
            let v = match result {
                Ok(v) => v,
                Err(unavailable) => {
                    report.error(format!("DNSSEC not validated: {unavailable}"));
                    return report;
                }
            };
            // A name that does not exist is the mx engine's finding (domain.nxdomain).
            if matches!(v.answer, Answer::NxDomain { .. }) {
                return report;
            }
            evidence.push(format!(
                "{} {rtype}: {}, {}",
                domain.as_str(),
                v.answer.describe(),
                v.security
            ));
            match &v.security {
                Security::Secure => {}
                Security::Insecure => insecure.push(rtype),
                Security::Bogus(why) => bogus.push((rtype, why.clone())),
                Security::Indeterminate(why) => report.error(format!(
                    "{} {rtype}: DNSSEC status unknown: {why}",
                    domain.as_str()
                )),
            }
        }
        let subject = domain.to_string();
        if let Some((_, reason)) = bogus.first() {
            let questions: Vec<String> = bogus.iter().map(|(t, _)| t.to_string()).collect();
            report.push(
                Observation::new("dnssec.bogus", &subject)
                    .evidence_lines(evidence)
                    .var("reason", reason.clone())
                    .var("questions", questions.join(", ")),
            );
        } else if !insecure.is_empty() {
            let questions: Vec<String> = insecure.iter().map(|t| t.to_string()).collect();
            report.push(
                Observation::new("dnssec.unsigned", &subject)
                    .evidence_lines(evidence)
                    .var("questions", questions.join(", ")),
            );
        }
        report
    }
}
