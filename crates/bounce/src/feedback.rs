//! RFC 5965 feedback reports (ARF): a receiver reports a message as abuse,
//! fraud, a virus, or (RFC 6591) an authentication failure. Not a bounce: the
//! message was delivered, and someone complained about it.

use serde::Serialize;

use crate::dsn::fields;
use crate::mime::Document;
use crate::{OriginalHeaders, original_headers};

/// What a feedback report says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FeedbackReport {
    /// `abuse`, `fraud`, `virus`, `other`, `not-spam`, `auth-failure` (RFC 5965 §7.3, RFC 6591).
    pub feedback_type: Option<String>,
    /// The software that made the report.
    pub user_agent: Option<String>,
    /// The address the reported message came from (`Source-IP`).
    pub source_ip: Option<String>,
    /// Domains the reporter names (`Reported-Domain`).
    pub reported_domain: Vec<String>,
    /// URIs the reporter names (`Reported-URI`).
    pub reported_uri: Vec<String>,
    /// The envelope sender of the reported message (`Original-Mail-From`).
    pub original_mail_from: Option<String>,
    /// Its envelope recipients (`Original-Rcpt-To`).
    pub original_rcpt_to: Vec<String>,
    /// When it arrived (`Arrival-Date` or `Received-Date`).
    pub arrival_date: Option<String>,
    /// The reporting server (`Reporting-MTA`).
    pub reporting_mta: Option<String>,
    /// How many such messages (`Incidents`).
    pub incidents: Option<String>,
    /// `Authentication-Results` of the reported message.
    pub authentication_results: Option<String>,
    /// For auth-failure reports: `Auth-Failure` (dkim, spf, adsp, dmarc …).
    pub auth_failure: Option<String>,
    /// The reported message's headers.
    pub original: OriginalHeaders,
    /// The human-readable part, first paragraph.
    pub summary: Option<String>,
}

fn one(f: &[(String, String)], name: &str) -> Option<String> {
    f.iter()
        .find(|(n, v)| n == name && !v.trim().is_empty())
        .map(|(_, v)| v.trim().chars().take(500).collect())
}

fn all(f: &[(String, String)], name: &str) -> Vec<String> {
    f.iter()
        .filter(|(n, v)| n == name && !v.trim().is_empty())
        .map(|(_, v)| v.trim().chars().take(500).collect())
        .take(100)
        .collect()
}

/// Reads the feedback report of a document.
pub(crate) fn read(doc: &Document) -> FeedbackReport {
    let text = doc
        .feedback
        .first()
        .map(|p| p.text.clone())
        .unwrap_or_default();
    let f = fields(&text);
    let summary = doc.texts.iter().find(|t| !t.late).and_then(|t| {
        let para: String = t
            .lines
            .iter()
            .map(|l| l.trim())
            .skip_while(|l| l.is_empty())
            .take_while(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(600)
            .collect();
        (!para.is_empty()).then_some(para)
    });
    FeedbackReport {
        feedback_type: one(&f, "feedback-type").map(|t| t.to_ascii_lowercase()),
        user_agent: one(&f, "user-agent"),
        source_ip: one(&f, "source-ip"),
        reported_domain: all(&f, "reported-domain"),
        reported_uri: all(&f, "reported-uri"),
        original_mail_from: one(&f, "original-mail-from"),
        original_rcpt_to: all(&f, "original-rcpt-to"),
        arrival_date: one(&f, "arrival-date").or_else(|| one(&f, "received-date")),
        reporting_mta: one(&f, "reporting-mta").map(|v| match v.split_once(';') {
            Some((_, m)) => m.trim().to_owned(),
            None => v,
        }),
        incidents: one(&f, "incidents"),
        authentication_results: one(&f, "authentication-results"),
        auth_failure: one(&f, "auth-failure"),
        original: doc
            .original_headers
            .as_deref()
            .map(original_headers)
            .unwrap_or_default(),
        summary,
    }
}
