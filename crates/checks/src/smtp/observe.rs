//! Facts of one address probe → finding codes with their variables and
//! evidence, and the questions the probe could not decide. No prose for users
//! here: titles and remediation live in plugins/smtp.toml.

use std::time::Duration;

use mxaudit_core::Observation;

use super::probe::{AddressProbe, Ending, Exchange, TlsOutcome, round_ms};
use super::reply::escape_text;
use super::session::{Limit, SessionError, Speaker, Stage};

/// How many transcript lines end a connection finding's evidence.
const TAIL_LINES: usize = 6;

/// The subject of findings about one address: `host ip`, with the port when it is not 25.
pub fn subject(host: &str, ip: std::net::IpAddr, port: u16) -> String {
    match (port, ip) {
        (25, _) => format!("{host} {ip}"),
        (_, std::net::IpAddr::V4(v4)) => format!("{host} {v4}:{port}"),
        (_, std::net::IpAddr::V6(v6)) => format!("{host} [{v6}]:{port}"),
    }
}

fn human(d: Duration) -> String {
    humantime::format_duration(round_ms(d)).to_string()
}

/// The observations of one probe, and what it could not decide.
pub fn observe(
    probe: &AddressProbe,
    slow_greeting: Duration,
    foreign_domain: &str,
) -> (Vec<Observation>, Vec<String>) {
    let host = probe.host();
    let subj = subject(&host, probe.ip, probe.port);
    let base = |code: &str| {
        Observation::new(code, &subj)
            .var("host", host.clone())
            .var("address", probe.ip.to_string())
            .var("port", probe.port)
    };
    let mut out = Vec::new();
    let mut undecided = Vec::new();

    let sessions = [Some(&probe.ending), probe.fallback.as_ref()];
    for (i, ending) in sessions.into_iter().flatten().enumerate() {
        let tail = probe
            .transcripts
            .get(i)
            .map(|t| {
                let skip = t.lines.len().saturating_sub(TAIL_LINES);
                t.lines
                    .iter()
                    .skip(skip)
                    .map(|l| format!("{}: {}", speaker_tag(l.speaker), l.text))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        match connection_observation(ending, &base, &subj) {
            Ok(Some(obs)) => out.push(obs.evidence_lines(tail)),
            Ok(None) => {}
            Err(why) => undecided.push(why),
        }
    }

    if let Some((greeting, waited)) = &probe.greeting
        && greeting.code == 220
        && *waited >= slow_greeting
    {
        out.push(
            base("smtp.slow_greeting")
                .var("waited", human(*waited))
                .var("threshold", human(slow_greeting))
                .evidence(format!(
                    "greeting after {}: {}",
                    human(*waited),
                    greeting.summary()
                )),
        );
    }

    if let Some(hello) = &probe.hello
        && let Some(mechanisms) = hello.auth()
    {
        out.push(
            base("smtp.auth_plaintext")
                .var("mechanisms", mechanisms.clone())
                .evidence(format!(
                    "{} before STARTTLS: {}",
                    hello.verb,
                    hello.reply.full()
                )),
        );
    }

    tls_observations(probe, &base, &subj, &mut out, &mut undecided);
    local_observations(probe, &base, &subj, &mut out, &mut undecided);
    relay_observation(
        probe,
        &base,
        &subj,
        foreign_domain,
        &mut out,
        &mut undecided,
    );
    (out, undecided)
}

/// Transcript speakers in evidence lines.
fn speaker_tag(speaker: Speaker) -> &'static str {
    match speaker {
        Speaker::Client => "C",
        Speaker::Server => "S",
        Speaker::Note => "--",
    }
}

fn connection_observation(
    ending: &Ending,
    base: &dyn Fn(&str) -> Observation,
    subj: &str,
) -> Result<Option<Observation>, String> {
    Ok(Some(match ending {
        Ending::Completed | Ending::TlsBroken => return Ok(None),
        Ending::Refused(error) => {
            base("smtp.connection_refused").evidence(format!("connect: {error}"))
        }
        Ending::Unreachable(error) => base("smtp.unreachable")
            .var("reason", error.to_string())
            .evidence(format!("connect: {error}")),
        Ending::GreetingRefused(reply) => base("smtp.greeting_error")
            .var("stage", Stage::Greeting.as_str())
            .var("reply", reply.summary())
            .evidence(format!("greeting: {}", reply.full())),
        Ending::HelloRefused { stage, reply } => base("smtp.greeting_error")
            .var("stage", stage.as_str())
            .var("reply", reply.summary())
            .evidence(format!("{stage}: {}", reply.full())),
        Ending::Failed(error) => match error {
            SessionError::Timeout {
                stage,
                waited,
                limit: Limit::Task,
            } => {
                return Err(format!(
                    "{subj}: {stage}: the check's time budget ran out after {} before the server answered; undecided (give the smtp plugin more time: [checks] timeout)",
                    human(*waited)
                ));
            }
            SessionError::Timeout { stage, waited, .. } => base("smtp.timeout")
                .var("stage", stage.as_str())
                .var("waited", human(*waited))
                .evidence(format!(
                    "{stage}: nothing complete within {}",
                    human(*waited)
                )),
            SessionError::Closed { stage } => base("smtp.dropped")
                .var("stage", stage.as_str())
                .var("reason", "the server closed the connection")
                .evidence(format!("{stage}: the server closed the connection")),
            other => base("smtp.dropped")
                .var("stage", other.stage().as_str())
                .var("reason", drop_reason(other))
                .evidence(other.to_string()),
        },
    }))
}

fn drop_reason(error: &SessionError) -> String {
    match error {
        SessionError::Protocol { error, .. } => {
            format!("protocol error, mxaudit hung up: {error}")
        }
        SessionError::ServiceClosing { reply, .. } => format!("the server closed with {reply}"),
        SessionError::Io { error, .. } => error.to_string(),
        SessionError::Tls { reason, .. } => reason.clone(),
        SessionError::Closed { .. } => "the server closed the connection".to_owned(),
        SessionError::Timeout { waited, .. } => format!("no reply within {}", human(*waited)),
    }
}

fn tls_observations(
    probe: &AddressProbe,
    base: &dyn Fn(&str) -> Observation,
    subj: &str,
    out: &mut Vec<Observation>,
    undecided: &mut Vec<String>,
) {
    match &probe.tls {
        TlsOutcome::NotReached => {}
        TlsOutcome::NotOffered => {
            let ehlo = probe
                .hello
                .as_ref()
                .map(|h| format!("{}: {}", h.verb, h.reply.full()))
                .unwrap_or_default();
            out.push(base("smtp.starttls_missing").evidence(ehlo));
        }
        TlsOutcome::Refused(reply) => out.push(
            base("smtp.starttls_failed")
                .var(
                    "reason",
                    format!("STARTTLS was answered {}", reply.summary()),
                )
                .evidence(format!("STARTTLS: {}", reply.full())),
        ),
        TlsOutcome::Failed {
            reason,
            timeout: Some((Limit::Task, _)),
        } => undecided.push(format!("{subj}: {reason}; undecided")),
        TlsOutcome::Failed {
            reason,
            timeout: Some((_, waited)),
        } => out.push(
            base("smtp.timeout")
                .var("stage", Stage::TlsHandshake.as_str())
                .var("waited", human(*waited))
                .evidence(reason.clone()),
        ),
        TlsOutcome::Failed {
            reason,
            timeout: None,
        } => out.push(
            base("smtp.starttls_failed")
                .var("reason", reason.clone())
                .evidence(reason.clone()),
        ),
        TlsOutcome::Established(est) => {
            let v = &est.verdict;
            let mut evidence = vec![format!(
                "{} {}",
                est.negotiated.version, est.negotiated.cipher
            )];
            evidence.extend(
                v.chain
                    .iter()
                    .enumerate()
                    .map(|(i, c)| format!("certificate {i}: {}", c.evidence())),
            );
            let leaf = v.chain.first();
            let leaf_subject = leaf.map(|c| c.subject.clone()).unwrap_or_default();

            if let Some(bytes) = &est.leftover {
                out.push(
                    base("smtp.starttls_injection")
                        .var("bytes", bytes.clone())
                        .evidence(format!(
                            "after 220 to STARTTLS, before the handshake: {bytes}"
                        )),
                );
            }
            if let Some(why) = &v.unreadable {
                out.push(
                    base("smtp.cert_self_signed")
                        .var("subject", leaf_subject.clone())
                        .var("issuer", "")
                        .var("reason", why.clone())
                        .var("self_signed", false)
                        .evidence_lines(evidence.clone()),
                );
                return;
            }
            if let Some(first) = v.dates.first() {
                let which = |p: usize| {
                    if p == 0 {
                        "the server certificate".to_owned()
                    } else {
                        format!("intermediate certificate {p}")
                    }
                };
                let mut obs = base("smtp.cert_expired")
                    .var("which", which(first.position))
                    .var("subject", first.cert.subject.clone())
                    .var(
                        "state",
                        if first.not_yet_valid {
                            "not yet valid"
                        } else {
                            "expired"
                        },
                    )
                    .var("not_before", super::cert::date(first.cert.not_before))
                    .var("not_after", super::cert::date(first.cert.not_after));
                for d in &v.dates {
                    obs = obs.evidence(format!(
                        "{} ({}) {}: valid {} to {}",
                        which(d.position),
                        d.cert.subject,
                        if d.not_yet_valid {
                            "not yet valid"
                        } else {
                            "expired"
                        },
                        super::cert::date(d.cert.not_before),
                        super::cert::date(d.cert.not_after)
                    ));
                }
                out.push(obs.evidence_lines(evidence.clone()));
            } else if let (Some(days), Some(leaf)) = (v.expiring_in_days, leaf) {
                out.push(
                    base("smtp.cert_expiring")
                        .var("subject", leaf.subject.clone())
                        .var("not_after", super::cert::date(leaf.not_after))
                        .var("days_left", days)
                        .evidence_lines(evidence.clone()),
                );
            }
            if let Some(problem) = &v.untrusted {
                out.push(
                    base("smtp.cert_self_signed")
                        .var("subject", leaf_subject.clone())
                        .var("issuer", leaf.map(|c| c.issuer.clone()).unwrap_or_default())
                        .var("reason", problem.reason.clone())
                        .var("self_signed", problem.self_signed)
                        .evidence_lines(evidence.clone()),
                );
            }
            if !v.names_not_covered.is_empty() {
                let cert_names = leaf.map(|c| c.sans.join(", ")).unwrap_or_default();
                out.push(
                    base("smtp.cert_name_mismatch")
                        .var("names", v.names_not_covered.join(", "))
                        .var("cert_names", cert_names)
                        .var("subject", leaf_subject)
                        .evidence_lines(evidence),
                );
            }
        }
    }
}

fn local_observations(
    probe: &AddressProbe,
    base: &dyn Fn(&str) -> Observation,
    subj: &str,
    out: &mut Vec<Observation>,
    undecided: &mut Vec<String>,
) {
    let local = &probe.local;
    let Some(postmaster) = &local.postmaster else {
        return;
    };
    if let Some((stage, reply)) = postmaster.permanently_refused() {
        out.push(
            base("smtp.postmaster_rejected")
                .var("recipient", escape_text(&postmaster.to))
                .var("stage", stage.as_str())
                .var("reply", reply.summary())
                .evidence(postmaster.evidence()),
        );
    } else if postmaster.deferred() {
        undecided.push(format!(
            "{subj}: mail to {} was deferred ({}); recipient validation and the null sender are undecided (greylisting?)",
            postmaster.to,
            postmaster_reply(postmaster)
        ));
        return;
    }
    let postmaster_ok = postmaster.accepted();

    if let Some(null) = &local.null_sender {
        // A refusal at RCPT counts only when the same recipient was accepted
        // from an ordinary sender; a refusal at MAIL is about the sender alone.
        match null.permanently_refused() {
            Some((stage, reply)) if stage == Stage::Mail || postmaster_ok => out.push(
                base("smtp.null_sender_rejected")
                    .var("stage", stage.as_str())
                    .var("reply", reply.summary())
                    .evidence(null.evidence())
                    .evidence(format!("for comparison: {}", postmaster.evidence())),
            ),
            Some(_) => {}
            None if null.deferred() => undecided.push(format!(
                "{subj}: MAIL FROM:<> was deferred ({}); undecided",
                postmaster_reply(null)
            )),
            None => {}
        }
    }
    if let Some(unknown) = &local.unknown_recipient {
        if unknown.accepted() {
            if let Some(reply) = &unknown.rcpt {
                out.push(
                    base("smtp.recipient_not_validated")
                        .var("recipient", escape_text(&unknown.to))
                        .var("reply", reply.summary())
                        .evidence(unknown.evidence()),
                );
            }
        } else if unknown.deferred() && postmaster_ok {
            undecided.push(format!(
                "{subj}: the nonexistent recipient {} was deferred ({}), not refused; recipient validation undecided",
                unknown.to,
                postmaster_reply(unknown)
            ));
        }
    }
}

fn postmaster_reply(x: &Exchange) -> String {
    x.rcpt
        .as_ref()
        .filter(|_| x.mail.is_positive())
        .unwrap_or(&x.mail)
        .summary()
}

fn relay_observation(
    probe: &AddressProbe,
    base: &dyn Fn(&str) -> Observation,
    subj: &str,
    foreign_domain: &str,
    out: &mut Vec<Observation>,
    undecided: &mut Vec<String>,
) {
    let relay = &probe.relay;
    let accepted = relay.accepted();
    let tried = relay.attempts.len();
    if accepted.is_empty() {
        let greeted = probe.greeting.as_ref().is_some_and(|(g, _)| g.code == 220);
        if greeted && !probe.relay_done {
            undecided.push(format!(
                "{subj}: open-relay probe incomplete ({tried} of 16 forms tried before the session ended)"
            ));
        } else if probe.relay_done && !relay.auth_required {
            let all_deferred = relay
                .attempts
                .iter()
                .all(|a| a.mail.class() == 4 || a.rcpt.as_ref().is_some_and(|r| r.class() == 4));
            let domain_ok = probe
                .local
                .postmaster
                .as_ref()
                .is_some_and(Exchange::accepted);
            if tried > 0 && all_deferred && !domain_ok {
                undecided.push(format!(
                    "{subj}: every relay form was deferred (4yz), and no ordinary recipient was accepted to compare; undecided (greylisting?)"
                ));
            }
        }
        return;
    }
    let catch_all = probe
        .local
        .unknown_recipient
        .as_ref()
        .is_some_and(Exchange::accepted);
    let forms: Vec<&str> = accepted.iter().map(|a| a.form.pattern).collect();
    let mut obs = base("smtp.open_relay")
        .var("forms", forms.join(", "))
        .var("accepted", accepted.len())
        .var("tried", tried)
        .var("foreign_domain", foreign_domain.to_owned())
        .var("catch_all", catch_all)
        .var("confidence", if catch_all { "low" } else { "high" })
        .evidence_lines(accepted.iter().map(|a| a.evidence()));
    if catch_all && let Some(unknown) = &probe.local.unknown_recipient {
        obs = obs.evidence(format!(
            "also accepted, a nonexistent local recipient (accepts every RCPT; may refuse at DATA, which mxaudit never sends): {}",
            unknown.evidence()
        ));
    }
    if !probe.relay_done {
        obs = obs.evidence(format!(
            "the probe ended after {tried} of 16 forms; more may be accepted"
        ));
    }
    out.push(obs);
}
