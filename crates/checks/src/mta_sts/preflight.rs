//! The MTA-STS line of the `preflight` checklist. When MX moves to a
//! provider, a policy the domain already publishes must allow the provider's
//! host before the switch: senders that enforce it refuse an MX that matches
//! no `mx:` pattern (RFC 8461 §4.1, §5), and senders keep a fetched policy
//! until its `max_age` runs out unless the record's `id` changes (§3.3, §5.1).

use std::time::Duration;

use mxaudit_core::{CheckCx, CheckReport, Observation, Profile};
use mxaudit_dns::DomainName;

use super::fetch::{FetchOptions, fetch_policy};
use super::policy::{Mode, MxPattern, parse};
use super::{RecordLookup, lookup_record, with_run_ca_files};

/// Adds the MTA-STS line (`preflight.mta_sts_*`, declared by the engine)
/// for moving `domain`'s MX to `profile`, whose host
/// for the domain is `provider_host` when known. Nothing when the domain
/// publishes no valid `_mta-sts` record: senders then have no policy to
/// enforce against the new MX.
pub async fn provider_line(
    domain: &DomainName,
    profile: &Profile,
    provider_host: Option<&str>,
    options: &FetchOptions,
    cx: &CheckCx,
    report: &mut CheckReport,
) {
    let record_evidence = match lookup_record(domain, cx).await {
        RecordLookup::Failed(why) => {
            report.error(why);
            return;
        }
        RecordLookup::Absent { .. } | RecordLookup::Invalid { .. } => return,
        RecordLookup::Valid { evidence, .. } => evidence,
    };
    let host = match domain.prepend("mta-sts") {
        Ok(h) => h,
        Err(e) => {
            report.error(format!("mta-sts.{domain}: {e}"));
            return;
        }
    };
    let subject = host.to_string();
    // The provider's host, or its patterns when the profile cannot name it.
    let provider = provider_host
        .map(str::to_owned)
        .unwrap_or_else(|| profile.mx_patterns.join(", "));
    let suggested = suggestion(profile, provider_host);
    if cx.run.dns_only {
        // The policy decides whether the move breaks delivery: not fetching
        // it leaves that line undecided, never OK.
        report.error(format!(
            "{subject}: the MTA-STS policy was not fetched (DNS only)"
        ));
        return;
    }
    let fetched = fetch_policy(&host, &with_run_ca_files(options, cx), cx).await;
    let url = fetched.url.clone();
    let line = |code: &str| {
        Observation::new(code, &subject)
            .evidence(record_evidence.clone())
            .var("url", url.clone())
            .var("provider", provider.clone())
            .var("suggested", suggested.clone())
    };
    let unreadable = |why: String| {
        line("preflight.mta_sts_unreadable")
            .evidence(format!("GET {url}: {why}"))
            .var("reason", why)
    };
    let body = match &fetched.outcome {
        Ok(body) => body,
        Err(f) if f.undecided() => {
            report.error(format!("{url}: {f}"));
            return;
        }
        Err(f) => {
            report.push(unreadable(f.to_string()));
            return;
        }
    };
    let policy = match parse(&body.bytes) {
        Ok(p) => p,
        Err(e) => {
            report.push(unreadable(format!("not a valid policy: {e}")));
            return;
        }
    };
    let covered = match provider_host {
        Some(h) => policy.covering(h).is_some(),
        None => profile.mx_patterns.iter().any(|p| {
            policy
                .mx
                .iter()
                .any(|m| m.to_string().eq_ignore_ascii_case(p))
        }),
    };
    let code = match (policy.mode, covered) {
        (Mode::None, _) | (_, true) => "preflight.mta_sts_ready",
        (Mode::Enforce, false) => "preflight.mta_sts_blocks_move",
        (Mode::Testing, false) => "preflight.mta_sts_update",
    };
    let patterns = policy.patterns();
    report.push(
        line(code)
            .evidence(format!(
                "{url}: mode {}, max_age {} ({}), mx {}",
                policy.mode.as_str(),
                policy.max_age,
                humantime::format_duration(Duration::from_secs(policy.max_age)),
                if patterns.is_empty() {
                    "(none)"
                } else {
                    &patterns
                }
            ))
            .var("mode", policy.mode.as_str())
            .var("patterns", patterns),
    );
}

/// The `mx:` line to add: the profile's pattern that covers the provider's
/// host under MTA-STS rules (one wildcard label), else the host itself.
fn suggestion(profile: &Profile, provider_host: Option<&str>) -> String {
    let covering = profile
        .mx_patterns
        .iter()
        .find(|p| MxPattern::parse(p).is_ok_and(|m| provider_host.is_none_or(|h| m.covers(h))));
    match (covering, provider_host) {
        (Some(p), _) => p.clone(),
        (None, Some(h)) => h.to_owned(),
        (None, None) => profile.mx_patterns.first().cloned().unwrap_or_default(),
    }
}
