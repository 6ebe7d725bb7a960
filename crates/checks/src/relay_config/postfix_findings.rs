//! The Postfix findings of one smtpd service, each with the `postconf` line
//! that fixes it: open relay, authenticated relay without TLS, recipients not
//! validated (the trusted-network check is in `postfix.rs`, where the networks
//! are read).

use mxaudit_core::Observation;

use super::Sink;
use super::postfix::{Origin, SYSTEM, Trust, View, override_fix, shell_quote};
use super::postfix_syntax::split_list;
use super::restrictions::{self, Cause, Ctx, Evaluation, ListEnd, Rcpt};

/// The subject of a finding about a parameter: the parameter, prefixed with
/// the service when a master.cf override sets it.
pub(super) fn subject(view: &View<'_>, name: &str) -> String {
    match view.origin(name) {
        Origin::Override(_) => format!("{} {name}", view.service.id()),
        _ => name.to_owned(),
    }
}

pub(super) fn open_relay(view: &View<'_>, eval: &Evaluation, trust: &Trust, out: &mut Sink) {
    let id = view.service.id();
    let mut evidence = Vec::new();
    let mut fix = None;
    let mut culprit = ("smtpd_relay_restrictions".to_owned(), String::new());
    for l in &eval.lists {
        if l.items.is_empty() && l.list != "smtpd_relay_restrictions" {
            continue;
        }
        evidence.push(view.evidence(&l.list));
        if let ListEnd::Permit { at, cause } = &l.end {
            // Empty: the list ended without a decision.
            let what = match at {
                Some(i) => l.items.get(*i).cloned().unwrap_or_default(),
                None => String::new(),
            };
            let why = match cause {
                Cause::TrustedNetworks => "mynetworks covers every address".to_owned(),
                Cause::ClientChosenKey { table, key } => {
                    format!("the client chooses the key: {table} answers OK for {key}")
                }
                Cause::EndOfList => "no reject_unauth_destination before the end".to_owned(),
                Cause::Restriction => "permits before reject_unauth_destination".to_owned(),
            };
            if matches!(
                l.list.as_str(),
                "smtpd_relay_restrictions" | "smtpd_recipient_restrictions"
            ) {
                let shown = if what.is_empty() {
                    "(end of list)"
                } else {
                    what.as_str()
                };
                evidence.push(format!("{}: {shown}: {why}", l.list));
                if l.list == "smtpd_relay_restrictions" || culprit.1.is_empty() {
                    culprit = (l.list.clone(), what.clone());
                }
            }
            if *cause == Cause::TrustedNetworks && fix.is_none() {
                evidence.push(view.evidence("mynetworks"));
                let kept: Vec<&str> = trust
                    .ranges
                    .iter()
                    .filter(|(r, _)| !r.too_wide())
                    .map(|(_, s)| s.as_str())
                    .collect();
                let value = if kept.is_empty() {
                    "127.0.0.0/8 [::1]/128".to_owned()
                } else {
                    kept.join(" ")
                };
                fix = Some(view.fix("mynetworks", &value));
            }
        }
    }
    let fix = fix.unwrap_or_else(|| {
        let relay = eval
            .lists
            .iter()
            .find(|l| l.list == "smtpd_relay_restrictions");
        let (items, permitting) = match relay {
            Some(l) => (l.items.clone(), l.permitting.clone()),
            None => (Vec::new(), Vec::new()),
        };
        view.fix(
            "smtpd_relay_restrictions",
            &closed_list(&items, &permitting).join(", "),
        )
    });
    out.push(
        Observation::new("relay_config.open_relay", id.clone())
            .evidence_lines(evidence)
            .var("system", SYSTEM)
            .var("service", id)
            .var("list", culprit.0.clone())
            .var("restriction", culprit.1)
            // Where to change: mynetworks when it is what lets everyone in.
            .var(
                "location",
                if trust.everyone {
                    view.location("mynetworks")
                } else {
                    view.location(&culprit.0)
                },
            )
            .var("fix", fix),
    );
}

/// The list with the permitting items moved after the first
/// `reject_unauth_destination` (or `defer_unauth_destination`), which is
/// added when missing: what decides first then refuses relaying.
pub fn closed_list(items: &[String], permitting: &[usize]) -> Vec<String> {
    let is_reject = |s: &String| {
        let n = s.to_ascii_lowercase();
        n == "reject_unauth_destination" || n == "defer_unauth_destination"
    };
    let reject_at = items.iter().position(is_reject);
    let mut before = Vec::new();
    let mut moved = Vec::new();
    let mut after = Vec::new();
    let mut reject = "reject_unauth_destination".to_owned();
    for (i, item) in items.iter().enumerate() {
        if Some(i) == reject_at {
            reject = item.clone();
            continue;
        }
        let past = reject_at.is_some_and(|r| i > r);
        if item.eq_ignore_ascii_case("permit") {
            // The end of a list permits anyway: a bare `permit` adds nothing
            // after the reject and is what opened the relay before it.
            continue;
        }
        if past {
            after.push(item.clone());
        } else if permitting.contains(&i) {
            moved.push(item.clone());
        } else {
            before.push(item.clone());
        }
    }
    if items.is_empty() {
        return vec![
            "permit_mynetworks".to_owned(),
            "permit_sasl_authenticated".to_owned(),
            "reject_unauth_destination".to_owned(),
        ];
    }
    before.push(reject);
    before.extend(moved);
    before.extend(after);
    before
}

pub(super) fn auth_plaintext(view: &View<'_>, ctx: &Ctx<'_>, out: &mut Sink) {
    if !view.yes("smtpd_sasl_auth_enable") {
        return;
    }
    let level = view.value("smtpd_tls_security_level").unwrap_or_default();
    let level = level.trim().to_ascii_lowercase();
    let tls_required = level == "encrypt"
        || level.is_empty() && view.yes("smtpd_enforce_tls")
        || view.yes("smtpd_tls_wrappermode");
    if view.yes("smtpd_tls_auth_only") || tls_required {
        return;
    }
    if !restrictions::evaluate(ctx).accepted() {
        return;
    }
    let id = view.service.id();
    // Where to fix: where TLS-only is turned off on this service, else main.cf.
    let fix = match view.origin("smtpd_tls_auth_only") {
        Origin::Override(_) => view.fix("smtpd_tls_auth_only", "yes"),
        _ => match view.origin("smtpd_sasl_auth_enable") {
            Origin::Override(_) => override_fix(&id, "smtpd_tls_auth_only", "yes"),
            _ => format!("postconf -e {}", shell_quote("smtpd_tls_auth_only = yes")),
        },
    };
    out.push(
        Observation::new("relay_config.auth_relay_plaintext", id.clone())
            .evidence(view.evidence("smtpd_sasl_auth_enable"))
            .evidence(view.evidence("smtpd_tls_auth_only"))
            .evidence(view.evidence("smtpd_tls_security_level"))
            .var("system", SYSTEM)
            .var("service", id)
            .var("location", view.location("smtpd_sasl_auth_enable"))
            .var("fix", fix),
    );
}

fn words(v: &str) -> Vec<String> {
    split_list(v)
        .into_iter()
        .map(|w| w.trim_end_matches('.').to_ascii_lowercase())
        .collect()
}

pub(super) fn recipients<'c>(
    view: &View<'_>,
    ctx_for: &dyn Fn(Rcpt, bool, bool) -> Ctx<'c>,
    everyone: bool,
    out: &mut Sink,
) {
    let id = view.service.id();
    let implicit = view.yes("smtpd_reject_unlisted_recipient");
    let mydestination = words(&view.value("mydestination").unwrap_or_default());
    let local_maps = !view
        .value("local_recipient_maps")
        .unwrap_or_default()
        .trim()
        .is_empty();
    let relay_domains: Vec<String> = words(&view.value("relay_domains").unwrap_or_default())
        .into_iter()
        .filter(|d| !mydestination.contains(d))
        .collect();
    let relay_maps = !view
        .value("relay_recipient_maps")
        .unwrap_or_default()
        .trim()
        .is_empty();
    let mut classes = Vec::new();
    if !mydestination.is_empty() {
        classes.push((
            "local_recipient_maps",
            local_maps,
            "proxy:unix:passwd.byname $alias_maps",
        ));
    }
    if !relay_domains.is_empty() {
        classes.push((
            "relay_recipient_maps",
            relay_maps,
            "hash:/etc/postfix/relay_recipients",
        ));
    }
    for (maps, set, default) in classes {
        let eval = restrictions::evaluate(&ctx_for(
            Rcpt::UnknownLocal { validated: set },
            false,
            everyone,
        ));
        if !eval.accepted() || (implicit && set) {
            continue;
        }
        let (cause, setting, fix) = if !set {
            (format!("{maps}_empty"), maps, view.fix(maps, default))
        } else {
            (
                "reject_unlisted_recipient_off".to_owned(),
                "smtpd_reject_unlisted_recipient",
                view.fix("smtpd_reject_unlisted_recipient", "yes"),
            )
        };
        let mut evidence = vec![view.evidence(setting)];
        if maps == "local_recipient_maps" {
            evidence.push(view.evidence("mydestination"));
        } else {
            evidence.push(view.evidence("relay_domains"));
        }
        out.push(
            Observation::new(
                "relay_config.recipient_not_validated",
                format!("{id} {maps}"),
            )
            .evidence_lines(evidence)
            .var("system", SYSTEM)
            .var("service", id.clone())
            .var("cause", cause)
            .var("location", view.location(setting))
            .var("fix", fix),
        );
    }
}
