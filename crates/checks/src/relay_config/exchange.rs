//! The Exchange review (2013 and later): Receive connectors
//! (`Get-ReceiveConnector`), the extended rights on them (`Get-ADPermission`,
//! `ms-Exch-SMTP-Accept-Any-Recipient` is the relay right: KB895853, "Receive
//! connector permissions"), and the recipient filter
//! (`Get-RecipientFilterConfig`), with the PowerShell line that fixes each
//! finding.

use mxaudit_core::Observation;

use super::exchange_syntax::{self, ExchangeFiles, Raw, Record, Unreadable};
use super::networks::{AddrRange, covers_public_internet};
use super::postfix_syntax::Loc;
use super::{Note, Relay, ServiceReview, Sink};

const SYSTEM: &str = "exchange";

/// `AuthMechanisms` of a Receive connector ([Flags], values as
/// ConvertTo-Json prints them; Microsoft.Exchange.Data.Directory).
const AUTH: &[(u64, &str)] = &[
    (1, "Tls"),
    (2, "Integrated"),
    (4, "BasicAuth"),
    (8, "BasicAuthRequireTLS"),
    (16, "ExchangeServer"),
    (32, "ExternalAuthoritative"),
];

/// `PermissionGroups` ([Flags], Microsoft.Exchange.Data).
const GROUPS: &[(u64, &str)] = &[
    (1, "AnonymousUsers"),
    (2, "ExchangeUsers"),
    (4, "ExchangeServers"),
    (8, "ExchangeLegacyServers"),
    (16, "Partners"),
    (32, "Custom"),
];

/// The relay right.
const ACCEPT_ANY_RECIPIENT: &str = "ms-Exch-SMTP-Accept-Any-Recipient";

/// Extended rights of Receive connectors, to resolve names Format-Table cut short.
const RIGHTS: &[&str] = &[
    "ms-Exch-SMTP-Submit",
    "ms-Exch-SMTP-Accept-Any-Recipient",
    "ms-Exch-SMTP-Accept-Any-Sender",
    "ms-Exch-SMTP-Accept-Authoritative-Domain-Sender",
    "ms-Exch-SMTP-Accept-Authentication-Flag",
    "ms-Exch-SMTP-Accept-Exch50",
    "ms-Exch-SMTP-Accept-XShadow",
    "ms-Exch-SMTP-Accept-XAttr",
    "ms-Exch-SMTP-Accept-XSysProbe",
    "ms-Exch-SMTP-Accept-XProxyFrom",
    "ms-Exch-SMTP-Accept-XSessionParams",
    "ms-Exch-SMTP-Accept-XMessageContext-ADRecipientCache",
    "ms-Exch-SMTP-Accept-XMessageContext-ExtendedProperties",
    "ms-Exch-SMTP-Accept-XMessageContext-FastIndex",
    "ms-Exch-SMTP-Send-Exch50",
    "ms-Exch-Accept-Headers-Routing",
    "ms-Exch-Accept-Headers-Organization",
    "ms-Exch-Accept-Headers-Forest",
    "ms-Exch-Bypass-Anti-Spam",
    "ms-Exch-Bypass-Message-Size-Limit",
    "ms-Exch-Send-Headers-Routing",
    "ms-Exch-Send-Headers-Organization",
    "ms-Exch-Send-Headers-Forest",
];

/// Names of the anonymous principal (S-1-5-7), English and German Windows.
const ANONYMOUS: &[&str] = &[
    "NT AUTHORITY\\ANONYMOUS LOGON",
    "ANONYMOUS LOGON",
    "S-1-5-7",
    "NT-AUTORITÄT\\ANONYMOUS-ANMELDUNG",
];
/// Other principals that appear on Receive connectors, to tell a truncated
/// `NT AUTHORITY\ANON...` from `NT AUTHORITY\Authenticated Users`.
const OTHERS: &[&str] = &[
    "NT AUTHORITY\\Authenticated Users",
    "NT AUTHORITY\\SYSTEM",
    "NT AUTHORITY\\NETWORK SERVICE",
    "NT AUTHORITY\\NETWORK",
    "NT AUTHORITY\\SELF",
    "MS Exchange\\Externally Secured Servers",
    "MS Exchange\\Partner Servers",
    "MS Exchange\\Hub Transport Servers",
    "MS Exchange\\Edge Transport Servers",
    "MS Exchange\\Legacy Exchange Servers",
];
const AUTHENTICATED: &str = "NT AUTHORITY\\Authenticated Users";

/// Resolves a possibly truncated name against `known`: `Ok(Some(i))` when it
/// is (a unique prefix of) `known[i]`, `Ok(None)` when it is none of them,
/// `Err` when a truncated prefix fits several.
fn resolve(raw: &Raw, known: &[&str]) -> Result<Option<usize>, Unreadable> {
    let (name, cut) = match exchange_syntax::text(raw) {
        Ok(t) => (t, false),
        Err(Unreadable::Truncated) => {
            let Raw::Text(s) = raw else {
                return Err(Unreadable::Truncated);
            };
            let t = s.trim().trim_end_matches("...").trim_end_matches('…');
            (t.to_owned(), true)
        }
        Err(e) => return Err(e),
    };
    let name = name
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim();
    if !cut {
        return Ok(known.iter().position(|k| k.eq_ignore_ascii_case(name)));
    }
    let hits: Vec<usize> = known
        .iter()
        .enumerate()
        .filter(|(_, k)| {
            k.to_ascii_lowercase()
                .starts_with(&name.to_ascii_lowercase())
        })
        .map(|(i, _)| i)
        .collect();
    match hits.len() {
        0 => Ok(None),
        1 => Ok(Some(hits[0])),
        _ => Err(Unreadable::Truncated),
    }
}

/// A Receive connector as read.
#[derive(Debug, Clone)]
struct Connector {
    identity: String,
    loc: Loc,
    enabled: bool,
    ranges: Option<(Vec<(AddrRange, String)>, Loc)>,
    auth: Option<(Vec<String>, Loc)>,
    groups: Option<(Vec<String>, Loc)>,
}

/// One access control entry.
#[derive(Debug, Clone)]
struct Permission {
    identity: Option<String>,
    loc: Loc,
    who: Who,
    relay: bool,
    deny: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Who {
    Anonymous,
    Authenticated,
    Other,
}

/// The connector's identity `SERVER\Name`, from `Identity` or from a
/// distinguished name `CN=Name,CN=SMTP Receive Connectors,CN=Protocols,CN=SERVER,…`.
fn identity(r: &Record) -> Option<String> {
    let raw = r.get("Identity").map(|(v, _)| v);
    let text = raw.and_then(|v| exchange_syntax::text(v).ok());
    if let Some(t) = &text
        && !t.to_ascii_uppercase().starts_with("CN=")
    {
        return Some(t.clone());
    }
    if let Some(dn) = text.or_else(|| {
        r.get("DistinguishedName")
            .and_then(|(v, _)| exchange_syntax::text(v).ok())
    }) {
        let cns: Vec<&str> = dn
            .split(',')
            .filter_map(|p| {
                p.trim()
                    .strip_prefix("CN=")
                    .or_else(|| p.trim().strip_prefix("cn="))
            })
            .collect();
        if let (Some(name), Some(pos)) = (
            cns.first(),
            cns.iter().position(|c| c.eq_ignore_ascii_case("Protocols")),
        ) && let Some(server) = cns.get(pos + 1)
        {
            return Some(format!("{server}\\{name}"));
        }
    }
    let name = r
        .get("Name")
        .and_then(|(v, _)| exchange_syntax::text(v).ok())?;
    match r
        .get("Server")
        .and_then(|(v, _)| exchange_syntax::text(v).ok())
    {
        Some(server) => Some(format!("{server}\\{name}")),
        None => Some(name),
    }
}

fn unreadable(out: &mut Sink, at: &Loc, item: &str, e: &Unreadable) {
    let reason = match e {
        Unreadable::Truncated => "truncated",
        Unreadable::Shape => "value",
    };
    out.unparsed(SYSTEM, &at.to_string(), item, reason);
}

fn connector(r: &Record, out: &mut Sink) -> Option<Connector> {
    let Some(identity) = identity(r) else {
        out.unparsed(SYSTEM, &r.loc.to_string(), "Identity", "missing");
        return None;
    };
    let enabled = match r.get("Enabled") {
        Some((v, at)) => exchange_syntax::boolean(v).unwrap_or_else(|e| {
            unreadable(out, at, &format!("{identity} Enabled"), &e);
            true
        }),
        None => true,
    };
    let ranges = match r.get("RemoteIPRanges") {
        None => None,
        Some((v, at)) => match exchange_syntax::list(v) {
            Ok(items) => {
                let mut ranges = Vec::new();
                for item in items {
                    // Format-List wraps long lists mid-address.
                    let compact: String = item.chars().filter(|c| !c.is_whitespace()).collect();
                    match AddrRange::parse_exchange(&compact) {
                        Some(range) => ranges.push((range, compact)),
                        None => out.unparsed(SYSTEM, &at.to_string(), &compact, "value"),
                    }
                }
                Some((ranges, at.clone()))
            }
            Err(e) => {
                unreadable(out, at, &format!("{identity} RemoteIPRanges"), &e);
                None
            }
        },
    };
    let mut flag_field = |name: &str, table: &[(u64, &str)]| match r.get(name) {
        None => None,
        Some((v, at)) => match exchange_syntax::flags(v, table) {
            Ok(f) => Some((f, at.clone())),
            Err(e) => {
                unreadable(out, at, &format!("{identity} {name}"), &e);
                None
            }
        },
    };
    let auth = flag_field("AuthMechanism", AUTH);
    let groups = flag_field("PermissionGroups", GROUPS);
    Some(Connector {
        identity,
        loc: r.loc.clone(),
        enabled,
        ranges,
        auth,
        groups,
    })
}

fn permission(r: &Record, out: &mut Sink) -> Option<Permission> {
    let identity = r
        .get("Identity")
        .and_then(|(v, _)| match v {
            Raw::Text(s) => Some(s.trim().to_owned()),
            Raw::Json(_) => exchange_syntax::text(v).ok(),
        })
        .map(|t| {
            if t.to_ascii_uppercase().starts_with("CN=") {
                identity(r).unwrap_or(t)
            } else {
                t
            }
        });
    let (user_raw, user_loc) = r.get("User")?;
    let rights_field = r.get("ExtendedRights").or_else(|| r.get("Rights"))?;
    let deny = r
        .get("Deny")
        .and_then(|(v, _)| exchange_syntax::boolean(v).ok())
        .unwrap_or(false);
    let who = {
        let mut known: Vec<&str> = ANONYMOUS.to_vec();
        known.extend_from_slice(OTHERS);
        match resolve(user_raw, &known) {
            Ok(Some(i)) if i < ANONYMOUS.len() => Who::Anonymous,
            Ok(Some(i)) if known[i] == AUTHENTICATED => Who::Authenticated,
            Ok(_) => Who::Other,
            Err(e) => {
                unreadable(out, user_loc, "User", &e);
                return None;
            }
        }
    };
    let (rights_raw, rights_loc) = rights_field;
    // `Rights` of the default table may also hold access rights (GenericAll…),
    // several comma-separated, each possibly cut short.
    let items: Vec<Raw> = match rights_raw {
        Raw::Text(s) => {
            let t = s.trim().trim_start_matches('{').trim_end_matches('}');
            t.split(',')
                .map(|p| Raw::Text(p.trim().to_owned()))
                .collect()
        }
        Raw::Json(_) => match exchange_syntax::list(rights_raw) {
            Ok(l) => l.into_iter().map(Raw::Text).collect(),
            Err(e) => {
                unreadable(out, rights_loc, "ExtendedRights", &e);
                return None;
            }
        },
    };
    let mut relay = false;
    for item in &items {
        match resolve(item, RIGHTS) {
            Ok(Some(i)) => relay |= RIGHTS[i] == ACCEPT_ANY_RECIPIENT,
            Ok(None) => {}
            Err(e) => {
                if who != Who::Other {
                    unreadable(out, rights_loc, "ExtendedRights", &e);
                    return None;
                }
            }
        }
    }
    Some(Permission {
        identity,
        loc: r.loc.clone(),
        who,
        relay,
        deny,
    })
}

/// Does a permission row's (possibly truncated) identity name this connector?
fn names(p: &Permission, c: &Connector, only_one: bool) -> bool {
    let Some(id) = &p.identity else {
        return only_one;
    };
    let id = id.trim();
    if let Some(prefix) = id.strip_suffix("...").or_else(|| id.strip_suffix('…')) {
        return c
            .identity
            .to_ascii_lowercase()
            .starts_with(&prefix.to_ascii_lowercase());
    }
    c.identity.eq_ignore_ascii_case(id)
        || c.identity
            .rsplit('\\')
            .next()
            .is_some_and(|n| n.eq_ignore_ascii_case(id))
}

/// PowerShell single-quoted string: no expansion; quote characters doubled
/// (PowerShell also treats ‘ ’ ‚ ‛ as single quotes).
fn ps_quote(s: &str) -> String {
    let mut out = String::from("'");
    for c in s.chars() {
        if matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201a}' | '\u{201b}') {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// Reviews Exchange exports.
pub fn review(files: &ExchangeFiles, out: &mut Sink) {
    for g in &files.garbled {
        out.push(
            Observation::new("relay_config.unparsed", g.loc.to_string())
                .evidence(format!("{}: {}", g.loc, g.text))
                .var("system", SYSTEM)
                .var("location", g.loc.to_string())
                .var("item", g.text.clone())
                .var("reason", g.why),
        );
    }
    let mut connectors = Vec::new();
    let mut permissions = Vec::new();
    for r in &files.records {
        if r.has("RemoteIPRanges") || r.has("Bindings") || r.has("AuthMechanism") {
            if let Some(c) = connector(r, out) {
                connectors.push(c);
            }
        } else if r.has("User") && (r.has("ExtendedRights") || r.has("Rights")) {
            if let Some(p) = permission(r, out) {
                permissions.push(p);
            }
        } else if r.has("RecipientValidationEnabled") {
            recipient_filter(r, out);
        }
        // Other objects (a RunspaceId-only record, other cmdlets) are not settings
        // of the relay review.
    }
    let only_one = connectors.len() == 1;
    for p in &permissions {
        if (p.who == Who::Anonymous && p.relay) && !connectors.iter().any(|c| names(p, c, only_one))
        {
            // A relay grant on a connector the export does not describe.
            out.unparsed(
                SYSTEM,
                &p.loc.to_string(),
                p.identity.as_deref().unwrap_or("(no Identity)"),
                "connector_missing",
            );
        }
    }
    for c in &connectors {
        if !c.enabled {
            out.note(Note::new("connector_disabled", &c.identity, ""));
            continue;
        }
        review_connector(c, &permissions, only_one, out);
    }
}

fn grants(perms: &[Permission], c: &Connector, only_one: bool, who: &Who) -> Option<Loc> {
    let mine: Vec<&Permission> = perms
        .iter()
        .filter(|p| p.relay && p.who == *who && names(p, c, only_one))
        .collect();
    // An explicit Deny wins over Allow.
    if mine.iter().any(|p| p.deny) {
        return None;
    }
    mine.first().map(|p| p.loc.clone())
}

fn review_connector(c: &Connector, perms: &[Permission], only_one: bool, out: &mut Sink) {
    let id = c.identity.clone();
    let auth: Vec<String> = c.auth.as_ref().map(|(a, _)| a.clone()).unwrap_or_default();
    let groups: Vec<String> = c
        .groups
        .as_ref()
        .map(|(g, _)| g.clone())
        .unwrap_or_default();
    let has = |list: &[String], f: &str| list.iter().any(|x| x == f);
    let anonymous = grants(perms, c, only_one, &Who::Anonymous);
    // ExternalAuthoritative treats every client in RemoteIPRanges as an
    // Exchange server, with the relay right (Externally Secured Servers).
    let external = has(&auth, "ExternalAuthoritative");
    let relay_anyone = anonymous.is_some() || external;
    let mut relay = Relay::Closed;
    if relay_anyone {
        match &c.ranges {
            None => {
                relay = Relay::Undecided;
                out.unparsed(
                    SYSTEM,
                    &c.loc.to_string(),
                    &format!("{id} RemoteIPRanges"),
                    "ranges_missing",
                );
            }
            Some((ranges, ranges_loc)) => {
                let all: Vec<AddrRange> = ranges.iter().map(|(r, _)| *r).collect();
                let kept: Vec<&str> = ranges
                    .iter()
                    .filter(|(r, _)| !r.too_wide())
                    .map(|(_, s)| s.as_str())
                    .collect();
                let set_ranges = format!(
                    "Set-ReceiveConnector {} -RemoteIPRanges {}",
                    ps_quote(&id),
                    if kept.is_empty() {
                        "<address of each host that relays>".to_owned()
                    } else {
                        kept.join(",")
                    }
                );
                let shown: Vec<&str> = ranges.iter().map(|(_, s)| s.as_str()).collect();
                if covers_public_internet(&all) {
                    relay = Relay::Open;
                    let (list, restriction, loc, fix) = match &anonymous {
                        Some(at) => (
                            ACCEPT_ANY_RECIPIENT.to_owned(),
                            "NT AUTHORITY\\ANONYMOUS LOGON".to_owned(),
                            at.clone(),
                            format!(
                                "Get-ReceiveConnector {} | Remove-ADPermission -User 'NT AUTHORITY\\ANONYMOUS LOGON' -ExtendedRights '{ACCEPT_ANY_RECIPIENT}'",
                                ps_quote(&id)
                            ),
                        ),
                        None => (
                            "AuthMechanism".to_owned(),
                            "ExternalAuthoritative".to_owned(),
                            c.auth.as_ref().map_or(c.loc.clone(), |(_, l)| l.clone()),
                            set_ranges.clone(),
                        ),
                    };
                    out.push(
                        Observation::new("relay_config.open_relay", id.clone())
                            .evidence(format!("{loc}: {restriction} has {list} on {id}"))
                            .evidence(format!("{ranges_loc}: RemoteIPRanges {}", shown.join(", ")))
                            .var("system", SYSTEM)
                            .var("service", id.clone())
                            .var("list", list)
                            .var("restriction", restriction)
                            .var("location", loc.to_string())
                            .var("fix", fix),
                    );
                }
                let wide: Vec<&(AddrRange, String)> =
                    ranges.iter().filter(|(r, _)| r.too_wide()).collect();
                if !wide.is_empty() {
                    let mut evidence =
                        vec![format!("{ranges_loc}: RemoteIPRanges {}", shown.join(", "))];
                    for (r, s) in &wide {
                        evidence.push(format!("{s}: public space of a /{}", r.public_prefix_len()));
                    }
                    evidence.push(match &anonymous {
                        Some(at) => format!(
                            "{at}: NT AUTHORITY\\ANONYMOUS LOGON has {ACCEPT_ANY_RECIPIENT}"
                        ),
                        None => "AuthMechanism ExternalAuthoritative".to_owned(),
                    });
                    out.push(
                        Observation::new(
                            "relay_config.mynetworks_too_wide",
                            format!("{id} RemoteIPRanges"),
                        )
                        .evidence_lines(evidence)
                        .var("system", SYSTEM)
                        .var("service", id.clone())
                        .var("setting", "RemoteIPRanges")
                        .var(
                            "ranges",
                            wide.iter()
                                .map(|(_, s)| s.as_str())
                                .collect::<Vec<_>>()
                                .join(", "),
                        )
                        .var("location", ranges_loc.to_string())
                        .var("fix", set_ranges),
                    );
                }
            }
        }
    }
    out.service(ServiceReview {
        system: SYSTEM.to_owned(),
        name: id.clone(),
        relay,
    });

    // Basic authentication (AUTH LOGIN/PLAIN) offered without TLS, where
    // authenticated users may relay (RFC 4954 §4).
    let basic = has(&auth, "BasicAuth");
    let tls_only = has(&auth, "BasicAuthRequireTLS") && has(&auth, "Tls");
    let user_relay =
        has(&groups, "ExchangeUsers") || grants(perms, c, only_one, &Who::Authenticated).is_some();
    if basic && !tls_only && user_relay {
        let mut fixed = auth.clone();
        for f in ["Tls", "BasicAuthRequireTLS"] {
            if !has(&fixed, f) {
                fixed.push(f.to_owned());
            }
        }
        let (_, auth_loc) = c
            .auth
            .as_ref()
            .map_or((Vec::new(), c.loc.clone()), |(a, l)| (a.clone(), l.clone()));
        out.push(
            Observation::new("relay_config.auth_relay_plaintext", id.clone())
                .evidence(format!("{auth_loc}: AuthMechanism {}", auth.join(", ")))
                .evidence(match &c.groups {
                    Some((g, l)) => format!("{l}: PermissionGroups {}", g.join(", ")),
                    None => "PermissionGroups not in the export".to_owned(),
                })
                .var("system", SYSTEM)
                .var("service", id.clone())
                .var("location", auth_loc.to_string())
                .var(
                    "fix",
                    format!(
                        "Set-ReceiveConnector {} -AuthMechanism {}",
                        ps_quote(&id),
                        fixed.join(",")
                    ),
                ),
        );
    }
}

fn recipient_filter(r: &Record, out: &mut Sink) {
    let mut off = Vec::new();
    for name in ["Enabled", "RecipientValidationEnabled"] {
        if let Some((v, at)) = r.get(name) {
            match exchange_syntax::boolean(v) {
                Ok(false) => off.push((name, at.clone())),
                Ok(true) => {}
                Err(e) => unreadable(out, at, name, &e),
            }
        }
    }
    let Some((_, first)) = off.first() else {
        return;
    };
    let cause = if off.iter().any(|(n, _)| *n == "Enabled") {
        "recipient_filter_disabled"
    } else {
        "recipient_validation_disabled"
    };
    out.push(
        Observation::new(
            "relay_config.recipient_not_validated",
            "RecipientFilterConfig",
        )
        .evidence_lines(off.iter().map(|(n, at)| format!("{at}: {n} : False")))
        .var("system", SYSTEM)
        .var("service", "RecipientFilterConfig")
        .var("cause", cause)
        .var("location", first.to_string())
        .var(
            "fix",
            "Set-RecipientFilterConfig -Enabled $true -RecipientValidationEnabled $true",
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn powershell_quoting() {
        assert_eq!(ps_quote("EX01\\Relay"), "'EX01\\Relay'");
        assert_eq!(ps_quote("a'b\u{2019}c"), "'a''b\u{2019}\u{2019}c'");
    }

    #[test]
    fn truncated_names() {
        let mut known: Vec<&str> = ANONYMOUS.to_vec();
        known.extend_from_slice(OTHERS);
        let r = |s: &str| resolve(&Raw::Text(s.to_owned()), &known);
        assert_eq!(r("NT AUTHORITY\\ANON..."), Ok(Some(0)));
        assert_eq!(r("NT AUTHORITY\\A..."), Err(Unreadable::Truncated));
        assert_eq!(r("CONTOSO\\relay-ac..."), Ok(None));
        assert_eq!(r("nt authority\\anonymous logon"), Ok(Some(0)));
        let r = |s: &str| resolve(&Raw::Text(s.to_owned()), RIGHTS);
        assert_eq!(r("ms-Exch-SMTP-Accept-Any-R..."), Ok(Some(1)));
        assert_eq!(r("ms-Exch-SMTP-Accept-Any-..."), Err(Unreadable::Truncated));
    }
}
