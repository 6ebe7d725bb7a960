//! Postfix SMTP access restriction lists, evaluated as smtpd does for one kind
//! of client and recipient (SMTPD_ACCESS_README, postconf(5), and
//! `src/smtpd/smtpd_check.c`).
//!
//! At RCPT TO, smtpd evaluates `smtpd_client_restrictions`,
//! `smtpd_helo_restrictions` and `smtpd_sender_restrictions` (delayed there by
//! `smtpd_delay_reject = yes`), then `smtpd_relay_restrictions` and
//! `smtpd_recipient_restrictions`. Each list stops at its first PERMIT or
//! REJECT; a PERMIT ends only that list, a REJECT ends the request, and the
//! end of a list is DUNNO. So a recipient is accepted when no list rejects.
//! The question asked here is what happens for a client that the Internet
//! controls: any address outside the trusted networks, any HELO name, any
//! sender address, no SASL login (or a SASL login, for the authenticated-relay
//! check), no client certificate.

use super::postfix_syntax::split_list;
use super::tables::{Action, Table, TableKeys};

/// The lists evaluated at RCPT TO, in smtpd's order.
pub const RCPT_LISTS: &[&str] = &[
    "smtpd_client_restrictions",
    "smtpd_helo_restrictions",
    "smtpd_sender_restrictions",
    "smtpd_relay_restrictions",
    "smtpd_recipient_restrictions",
];

/// Restrictions that take the next word as their argument.
const WITH_ARGUMENT: &[&str] = &[
    "check_policy_service",
    "sleep",
    "reject_rbl_client",
    "reject_rbl",
    "permit_dnswl_client",
    "reject_rhsbl_client",
    "permit_rhswl_client",
    "reject_rhsbl_reverse_client",
    "reject_rhsbl_helo",
    "reject_rhsbl_sender",
    "reject_rhsbl_recipient",
];

/// Restrictions that never permit or reject a client who chooses its HELO
/// name, sender and address (outside the trusted networks) to pass them.
const PASSABLE: &[&str] = &[
    "reject_unauth_pipelining",
    "reject_plaintext_session",
    "defer_if_reject",
    "sleep",
    "reject_unknown_client_hostname",
    "reject_unknown_client",
    "reject_unknown_reverse_client_hostname",
    "reject_unknown_forward_client_hostname",
    "permit_inet_interfaces",
    "reject_maps_rbl",
    "reject_rbl_client",
    "reject_rbl",
    "permit_dnswl_client",
    "reject_rhsbl_client",
    "permit_rhswl_client",
    "reject_rhsbl_reverse_client",
    "reject_invalid_helo_hostname",
    "reject_invalid_hostname",
    "reject_unknown_helo_hostname",
    "reject_unknown_hostname",
    "reject_non_fqdn_helo_hostname",
    "reject_non_fqdn_hostname",
    "reject_rhsbl_helo",
    "reject_unknown_address",
    "reject_unknown_sender_domain",
    "reject_unverified_sender",
    "reject_non_fqdn_sender",
    "reject_authenticated_sender_login_mismatch",
    "reject_known_sender_login_mismatch",
    "reject_sender_login_mismatch",
    "reject_unauthenticated_sender_login_mismatch",
    "reject_rhsbl_sender",
    "reject_unlisted_sender",
    "permit_mx_backup",
    "permit_tls_clientcerts",
    "reject_unknown_recipient_domain",
    "reject_non_fqdn_recipient",
    "reject_rhsbl_recipient",
    "reject_multi_recipient_bounce",
    "reject_unverified_recipient",
];

/// `check_*_access` restrictions and whose word their key is.
fn access_key(name: &str) -> Option<KeyOwner> {
    Some(match name {
        // The client's HELO name and sender address are whatever it says.
        "check_helo_access" | "check_sender_access" => KeyOwner::Client,
        // Answers from DNS the client may control: smtpd refuses OK from these
        // ("this is not allowed for security reasons"), so they cannot permit.
        "check_client_ns_access"
        | "check_client_mx_access"
        | "check_client_a_access"
        | "check_reverse_client_hostname_access"
        | "check_reverse_client_hostname_ns_access"
        | "check_reverse_client_hostname_mx_access"
        | "check_reverse_client_hostname_a_access"
        | "check_helo_ns_access"
        | "check_helo_mx_access"
        | "check_helo_a_access"
        | "check_sender_ns_access"
        | "check_sender_mx_access"
        | "check_sender_a_access"
        | "check_recipient_ns_access"
        | "check_recipient_mx_access"
        | "check_recipient_a_access" => KeyOwner::NoPermit,
        "check_client_access" => KeyOwner::Address,
        "check_recipient_access" => KeyOwner::Recipient,
        // No certificate, no login (anonymous), no ETRN: never looked up.
        "check_ccert_access" | "check_etrn_access" => KeyOwner::Unused,
        "check_sasl_access" => KeyOwner::Login,
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyOwner {
    Client,
    NoPermit,
    Address,
    Recipient,
    Unused,
    Login,
}

/// The default table restriction of a list, for a bare `type:table` in it.
fn default_access(list: &str) -> &'static str {
    match list {
        "smtpd_client_restrictions" => "check_client_access",
        "smtpd_helo_restrictions" => "check_helo_access",
        "smtpd_sender_restrictions" => "check_sender_access",
        _ => "check_recipient_access",
    }
}

/// The recipient of the evaluated RCPT TO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rcpt {
    /// A domain this server has no business with (relaying).
    Foreign,
    /// A nonexistent user at a domain this server receives for; `validated`:
    /// the domain's recipient table is set, so `reject_unlisted_recipient`
    /// rejects it.
    UnknownLocal {
        /// The address class has a recipient table.
        validated: bool,
    },
}

/// What the evaluation needs besides the lists.
pub struct Ctx<'a> {
    /// An expanded parameter value of the service.
    pub param: &'a dyn Fn(&str) -> String,
    /// `mynetworks` holds every address of a family.
    pub trusts_everyone: bool,
    /// Names of `smtpd_restriction_classes`.
    pub classes: Vec<String>,
    /// Readable lookup tables by their name in the settings.
    pub table: &'a dyn Fn(&str) -> Table,
    /// The recipient.
    pub rcpt: Rcpt,
    /// The client logged in with SASL.
    pub sasl: bool,
    /// `permit_tls_all_clientcerts` would accept a certificate from a public CA.
    pub public_ca_clientcerts: bool,
}

/// Why a list let the request through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// The list ended without a decision (DUNNO is the default).
    EndOfList,
    /// `permit`, or a table answer of OK.
    Restriction,
    /// `permit_mynetworks` with trusted networks covering everyone.
    TrustedNetworks,
    /// A table whose key the client chooses answers OK for some key.
    ClientChosenKey {
        /// The table.
        table: String,
        /// A key that permits.
        key: String,
    },
}

/// A restriction the review cannot evaluate, met before the decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doubt {
    /// The list (parameter) it is in.
    pub list: String,
    /// The restriction as written.
    pub restriction: String,
    /// What is unknown: `table_unread`, `policy_service`, `unknown_restriction`, `regexp_table`.
    pub kind: &'static str,
    /// Whether it could let the client through (and so decides the verdict).
    pub may_permit: bool,
}

/// How one list ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListEnd {
    /// Permitted, by this restriction (index into the list's items).
    Permit {
        /// Item index in the list (None: end of list).
        at: Option<usize>,
        /// Why.
        cause: Cause,
    },
    /// Rejected or deferred, by the item at this index.
    Reject {
        /// The restriction.
        at: usize,
    },
    /// Rejected unless something the review cannot see permits first.
    Undecided,
}

/// One list's evaluation.
#[derive(Debug, Clone)]
pub struct ListEval {
    /// The parameter.
    pub list: String,
    /// The items (restriction and its argument, joined by a space).
    pub items: Vec<String>,
    /// How it ended.
    pub end: ListEnd,
    /// Items that permit this client (for the fix: move them after the reject).
    pub permitting: Vec<usize>,
}

/// The result of all the RCPT TO lists.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// Per list, in order; lists after a rejecting one are not evaluated.
    pub lists: Vec<ListEval>,
    /// Restrictions met that the review cannot evaluate.
    pub doubts: Vec<Doubt>,
    /// A `defer_if_permit` turned the permission into a deferral.
    pub deferred_if_permit: bool,
}

impl Evaluation {
    /// The request is accepted (no list rejects).
    pub fn accepted(&self) -> bool {
        !self.deferred_if_permit
            && self
                .lists
                .iter()
                .all(|l| matches!(l.end, ListEnd::Permit { .. }))
    }
    /// Some list rejects for certain.
    pub fn rejected(&self) -> bool {
        self.deferred_if_permit
            || self
                .lists
                .iter()
                .any(|l| matches!(l.end, ListEnd::Reject { .. }))
    }
}

/// Splits a list into items: a restriction with its argument (`check_*_access
/// hash:/x`, `reject_rbl_client zen.example`) is one item.
pub fn items(value: &str) -> Vec<String> {
    let words = split_list(value);
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        let lower = w.to_ascii_lowercase();
        if (access_key(&lower).is_some() || WITH_ARGUMENT.contains(&lower.as_str()))
            && let Some(arg) = words.get(i + 1)
        {
            out.push(format!("{w} {arg}"));
            i += 2;
            continue;
        }
        out.push(w.clone());
        i += 1;
    }
    out
}

/// Evaluates the RCPT TO lists for the client and recipient of `ctx`.
pub fn evaluate(ctx: &Ctx<'_>) -> Evaluation {
    let mut eval = Evaluation {
        lists: Vec::new(),
        doubts: Vec::new(),
        deferred_if_permit: false,
    };
    let mut state = State::default();
    for list in RCPT_LISTS {
        let value = (ctx.param)(list);
        let items = items(&value);
        let (end, permitting) = eval_list(ctx, list, &items, &mut state, &mut eval.doubts, 0);
        let stop = !matches!(end, ListEnd::Permit { .. });
        eval.lists.push(ListEval {
            list: (*list).to_owned(),
            items,
            end,
            permitting,
        });
        if stop {
            break;
        }
    }
    eval.deferred_if_permit = state.defer_if_permit;
    eval
}

#[derive(Default)]
struct State {
    warn_next: bool,
    defer_if_permit: bool,
}

enum Step {
    Continue,
    Permit(Cause),
    Reject,
    MaybePermit,
}

/// Restriction classes nest at most this deep (smtpd itself has a limit).
const MAX_NESTING: usize = 10;

fn eval_list(
    ctx: &Ctx<'_>,
    list: &str,
    items: &[String],
    state: &mut State,
    doubts: &mut Vec<Doubt>,
    depth: usize,
) -> (ListEnd, Vec<usize>) {
    let mut maybe = false;
    let mut permitting = Vec::new();
    for (at, item) in items.iter().enumerate() {
        let (name, arg) = match item.split_once(' ') {
            Some((n, a)) => (n.to_ascii_lowercase(), Some(a)),
            None => (item.to_ascii_lowercase(), None),
        };
        if name == "warn_if_reject" {
            state.warn_next = true;
            continue;
        }
        let mut step = step(ctx, list, &name, arg, item, state, doubts, depth);
        if std::mem::take(&mut state.warn_next) && matches!(step, Step::Reject) {
            // warn_if_reject: the next restriction only logs its rejection.
            step = Step::Continue;
        }
        match step {
            Step::Continue => {}
            Step::Permit(cause) => {
                permitting.push(at);
                return (
                    ListEnd::Permit {
                        at: Some(at),
                        cause,
                    },
                    permitting,
                );
            }
            Step::Reject if maybe => return (ListEnd::Undecided, permitting),
            Step::Reject => return (ListEnd::Reject { at }, permitting),
            Step::MaybePermit => {
                maybe = true;
                permitting.push(at);
            }
        }
    }
    (
        ListEnd::Permit {
            at: None,
            cause: Cause::EndOfList,
        },
        permitting,
    )
}

#[allow(clippy::too_many_arguments)]
fn step(
    ctx: &Ctx<'_>,
    list: &str,
    name: &str,
    arg: Option<&str>,
    item: &str,
    state: &mut State,
    doubts: &mut Vec<Doubt>,
    depth: usize,
) -> Step {
    let doubt = |doubts: &mut Vec<Doubt>, kind: &'static str, may_permit: bool| {
        doubts.push(Doubt {
            list: list.to_owned(),
            restriction: item.to_owned(),
            kind,
            may_permit,
        });
    };
    // A bare `type:table` is the list's default table restriction.
    if name.contains(':') && arg.is_none() {
        return access(ctx, list, default_access(list), item, item, doubts, depth);
    }
    match name {
        "permit" => Step::Permit(Cause::Restriction),
        "reject" | "defer" => Step::Reject,
        "defer_if_permit" => {
            state.defer_if_permit = true;
            Step::Continue
        }
        "reject_unauth_destination" | "defer_unauth_destination" | "check_relay_domains" => {
            match ctx.rcpt {
                Rcpt::Foreign => Step::Reject,
                Rcpt::UnknownLocal { .. } => Step::Continue,
            }
        }
        "permit_auth_destination" => match ctx.rcpt {
            Rcpt::Foreign => Step::Continue,
            Rcpt::UnknownLocal { .. } => Step::Permit(Cause::Restriction),
        },
        "reject_unlisted_recipient" | "check_recipient_maps" => match ctx.rcpt {
            Rcpt::UnknownLocal { validated: true } => Step::Reject,
            _ => Step::Continue,
        },
        "permit_mynetworks" if ctx.trusts_everyone => Step::Permit(Cause::TrustedNetworks),
        "permit_mynetworks" => Step::Continue,
        "permit_sasl_authenticated" if ctx.sasl => Step::Permit(Cause::Restriction),
        "permit_sasl_authenticated" => Step::Continue,
        // Any certificate a trusted CA signed: with a public CA bundle, anyone
        // can get one (postconf(5) permit_tls_all_clientcerts).
        "permit_tls_all_clientcerts" if ctx.public_ca_clientcerts => {
            Step::Permit(Cause::Restriction)
        }
        "permit_tls_all_clientcerts" => Step::Continue,
        // The HELO argument is the client's choice (removed in Postfix 3.9,
        // where it is a server configuration error instead).
        "permit_naked_ip_address" => Step::Permit(Cause::ClientChosenKey {
            table: "HELO".to_owned(),
            key: "[192.0.2.1]".to_owned(),
        }),
        "check_policy_service" => {
            // The policy server may answer OK; the review cannot ask it.
            doubt(doubts, "policy_service", true);
            Step::MaybePermit
        }
        n if access_key(n).is_some() => match arg {
            Some(table) => access(ctx, list, n, table, item, doubts, depth),
            None => {
                doubt(doubts, "unknown_restriction", false);
                Step::Reject
            }
        },
        n if PASSABLE.contains(&n) => Step::Continue,
        n if ctx.classes.iter().any(|c| c.eq_ignore_ascii_case(n)) && depth < MAX_NESTING => {
            let value = (ctx.param)(n);
            let inner = items(&value);
            let (end, _) = eval_list(ctx, list, &inner, state, doubts, depth + 1);
            match end {
                ListEnd::Permit { at: None, .. } => Step::Continue,
                ListEnd::Permit { cause, .. } => Step::Permit(cause),
                ListEnd::Reject { .. } => Step::Reject,
                ListEnd::Undecided => Step::MaybePermit,
            }
        }
        // An unknown name: smtpd answers 451 4.3.5 "Server configuration
        // error" (smtpd_check.c, reject_server_error).
        _ => {
            doubt(doubts, "unknown_restriction", false);
            Step::Reject
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn access(
    ctx: &Ctx<'_>,
    list: &str,
    restriction: &str,
    table_name: &str,
    item: &str,
    doubts: &mut Vec<Doubt>,
    depth: usize,
) -> Step {
    let owner = access_key(restriction).unwrap_or(KeyOwner::Recipient);
    match owner {
        KeyOwner::Unused => return Step::Continue,
        KeyOwner::Login if !ctx.sasl => return Step::Continue,
        KeyOwner::NoPermit => return Step::Continue,
        _ => {}
    }
    let table = (ctx.table)(table_name);
    let mut doubt = |kind: &'static str, may_permit: bool| {
        doubts.push(Doubt {
            list: list.to_owned(),
            restriction: item.to_owned(),
            kind,
            may_permit,
        });
    };
    let Some(entries) = &table.entries else {
        // Not readable. A table keyed by what the client says may permit any
        // client; one keyed by address or recipient lists particular ones.
        let client_chosen = matches!(owner, KeyOwner::Client | KeyOwner::Login);
        doubt("table_unread", client_chosen);
        return if client_chosen {
            Step::MaybePermit
        } else {
            Step::Continue
        };
    };
    let mut permits = Vec::new();
    for (key, action) in entries {
        let permits_here = match Action::of(action) {
            Action::Permit => true,
            Action::Reject | Action::Other => false,
            Action::Restrictions(list_text) if depth < MAX_NESTING => {
                let inner = items(&list_text);
                matches!(
                    eval_list(
                        ctx,
                        list,
                        &inner,
                        &mut State::default(),
                        &mut Vec::new(),
                        depth + 1
                    )
                    .0,
                    ListEnd::Permit { at: Some(_), .. }
                )
            }
            Action::Restrictions(_) => false,
        };
        if permits_here {
            permits.push(key.clone());
        }
    }
    if permits.is_empty() {
        return Step::Continue;
    }
    match (owner, table.keys) {
        (KeyOwner::Client | KeyOwner::Login, _) => Step::Permit(Cause::ClientChosenKey {
            table: table_name.to_owned(),
            key: permits[0].clone(),
        }),
        (_, TableKeys::Everything) => Step::Permit(Cause::ClientChosenKey {
            table: table_name.to_owned(),
            key: permits[0].clone(),
        }),
        (KeyOwner::Address, TableKeys::Cidr) => {
            let all = permits.iter().any(|k| {
                let k = k.trim();
                k == "0.0.0.0/0" || k == "::/0" || k == "[::]/0"
            });
            if all && ctx.rcpt == Rcpt::Foreign {
                Step::Permit(Cause::TrustedNetworks)
            } else {
                Step::Continue
            }
        }
        (_, TableKeys::Regex) => {
            doubt("regexp_table", ctx.rcpt == Rcpt::Foreign);
            if ctx.rcpt == Rcpt::Foreign {
                Step::MaybePermit
            } else {
                Step::Continue
            }
        }
        _ => Step::Continue,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn ctx_eval(params: &[(&str, &str)], rcpt: Rcpt, trusts_everyone: bool) -> Evaluation {
        let map: BTreeMap<&str, &str> = params.iter().copied().collect();
        let param = |n: &str| map.get(n).map(|v| (*v).to_owned()).unwrap_or_default();
        let table = |n: &str| super::super::tables::parse_spec(n, None);
        let ctx = Ctx {
            param: &param,
            trusts_everyone,
            classes: map
                .get("smtpd_restriction_classes")
                .map(|v| split_list(v))
                .unwrap_or_default(),
            table: &table,
            rcpt,
            sasl: false,
            public_ca_clientcerts: false,
        };
        evaluate(&ctx)
    }

    #[test]
    fn default_relay_restrictions_reject_foreign() {
        let e = ctx_eval(
            &[(
                "smtpd_relay_restrictions",
                "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination",
            )],
            Rcpt::Foreign,
            false,
        );
        assert!(e.rejected() && !e.accepted());
        assert_eq!(e.lists[3].end, ListEnd::Reject { at: 2 });
    }

    #[test]
    fn permit_before_reject_decides_first() {
        let e = ctx_eval(
            &[(
                "smtpd_relay_restrictions",
                "permit_mynetworks permit reject_unauth_destination",
            )],
            Rcpt::Foreign,
            false,
        );
        assert!(e.accepted());
        assert_eq!(e.lists[3].permitting, vec![1]);
    }

    #[test]
    fn both_lists_apply() {
        // The relay list passes, the recipient list rejects: closed.
        let e = ctx_eval(
            &[
                ("smtpd_relay_restrictions", ""),
                (
                    "smtpd_recipient_restrictions",
                    "permit_mynetworks, reject_unauth_destination",
                ),
            ],
            Rcpt::Foreign,
            false,
        );
        assert!(e.rejected());
        // A permit in the client list ends only that list.
        let e = ctx_eval(
            &[
                ("smtpd_client_restrictions", "permit"),
                ("smtpd_relay_restrictions", "reject_unauth_destination"),
            ],
            Rcpt::Foreign,
            false,
        );
        assert!(e.rejected());
        // A reject in the client list ends the request.
        let e = ctx_eval(
            &[("smtpd_client_restrictions", "permit_mynetworks, reject")],
            Rcpt::Foreign,
            false,
        );
        assert!(e.rejected());
        assert_eq!(e.lists.len(), 1);
    }

    #[test]
    fn trusted_everyone_and_warn_if_reject() {
        let e = ctx_eval(
            &[(
                "smtpd_relay_restrictions",
                "permit_mynetworks, reject_unauth_destination",
            )],
            Rcpt::Foreign,
            true,
        );
        assert!(e.accepted());
        assert!(matches!(
            e.lists[3].end,
            ListEnd::Permit {
                cause: Cause::TrustedNetworks,
                ..
            }
        ));
        let e = ctx_eval(
            &[(
                "smtpd_relay_restrictions",
                "warn_if_reject reject_unauth_destination",
            )],
            Rcpt::Foreign,
            false,
        );
        assert!(e.accepted());
    }

    #[test]
    fn client_chosen_tables() {
        let e = ctx_eval(
            &[(
                "smtpd_recipient_restrictions",
                "check_sender_access inline:{ example.com=OK }, reject_unauth_destination",
            )],
            Rcpt::Foreign,
            false,
        );
        assert!(e.accepted(), "a forged sender from example.com relays");
        let e = ctx_eval(
            &[(
                "smtpd_recipient_restrictions",
                "check_sender_access hash:/etc/postfix/sender_access, reject_unauth_destination",
            )],
            Rcpt::Foreign,
            false,
        );
        assert!(!e.accepted() && !e.rejected());
        assert_eq!(e.doubts.len(), 1);
        assert!(e.doubts[0].may_permit);
        // OK from a DNS-derived key is refused by smtpd itself.
        let e = ctx_eval(
            &[(
                "smtpd_recipient_restrictions",
                "check_sender_mx_access inline:{ example.com=OK }, reject_unauth_destination",
            )],
            Rcpt::Foreign,
            false,
        );
        assert!(e.rejected());
        // A client address table lists particular clients.
        let e = ctx_eval(
            &[(
                "smtpd_relay_restrictions",
                "check_client_access cidr:/etc/postfix/clients, reject_unauth_destination",
            )],
            Rcpt::Foreign,
            false,
        );
        assert!(e.rejected());
        assert!(!e.doubts[0].may_permit);
    }

    #[test]
    fn classes_and_unknown_names() {
        let e = ctx_eval(
            &[
                ("smtpd_restriction_classes", "relaying"),
                ("relaying", "permit"),
                (
                    "smtpd_relay_restrictions",
                    "relaying, reject_unauth_destination",
                ),
            ],
            Rcpt::Foreign,
            false,
        );
        assert!(e.accepted());
        let e = ctx_eval(
            &[(
                "smtpd_relay_restrictions",
                "permit_mynetwork, reject_unauth_destination",
            )],
            Rcpt::Foreign,
            false,
        );
        assert!(e.rejected());
        assert_eq!(e.doubts[0].kind, "unknown_restriction");
    }

    #[test]
    fn unknown_local_recipients() {
        let params = [
            (
                "smtpd_relay_restrictions",
                "permit_mynetworks, reject_unauth_destination",
            ),
            ("smtpd_recipient_restrictions", "reject_unlisted_recipient"),
        ];
        assert!(ctx_eval(&params, Rcpt::UnknownLocal { validated: false }, false).accepted());
        assert!(ctx_eval(&params, Rcpt::UnknownLocal { validated: true }, false).rejected());
        assert!(
            ctx_eval(
                &[(
                    "smtpd_relay_restrictions",
                    "permit_sasl_authenticated, reject"
                )],
                Rcpt::UnknownLocal { validated: false },
                false
            )
            .rejected()
        );
    }

    #[test]
    fn defer_if_permit_turns_permits_into_deferrals() {
        let e = ctx_eval(
            &[("smtpd_relay_restrictions", "defer_if_permit, permit")],
            Rcpt::Foreign,
            false,
        );
        assert!(e.rejected() && !e.accepted());
    }
}
