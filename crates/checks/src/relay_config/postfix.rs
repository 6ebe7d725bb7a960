//! The Postfix review: per smtpd service reachable from other hosts, the
//! effective settings (master.cf `-o` overrides over main.cf over Postfix's
//! defaults), the restriction lists evaluated as smtpd does (`restrictions`),
//! and the findings with the `postconf` line that fixes each.

use mxaudit_core::Observation;

use super::networks::{AddrRange, covers_public_internet};
use super::postfix_findings::{auth_plaintext, open_relay, recipients, subject};
use super::postfix_syntax::{self, Loc, MASTER_TYPES, PostfixFiles, Service, split_list};
use super::restrictions::{self, Ctx, Rcpt};
use super::tables;
use super::{Note, Relay, ReviewOptions, ServiceReview, Sink};

/// Postfix's defaults (`postconf -d` of Postfix 3.7) for the parameters the
/// review reads. Parameters not listed here and not set are empty.
const DEFAULTS: &[(&str, &str)] = &[
    ("compatibility_level", "0"),
    (
        "smtpd_relay_restrictions",
        "${{$compatibility_level} <level {1} ? {} : {permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination}}",
    ),
    ("smtpd_recipient_restrictions", ""),
    (
        "mynetworks_style",
        "${{$compatibility_level} <level {2} ? {subnet} : {host}}",
    ),
    (
        "relay_domains",
        "${{$compatibility_level} <level {2} ? {$mydestination} : {}}",
    ),
    (
        "mydestination",
        "$myhostname, localhost.$mydomain, localhost",
    ),
    (
        "local_recipient_maps",
        "proxy:unix:passwd.byname $alias_maps",
    ),
    ("alias_maps", "hash:/etc/aliases"),
    ("relay_recipient_maps", ""),
    ("smtpd_reject_unlisted_recipient", "yes"),
    ("smtpd_sasl_auth_enable", "no"),
    ("smtpd_tls_auth_only", "no"),
    ("smtpd_tls_security_level", ""),
    ("smtpd_enforce_tls", "no"),
    ("smtpd_tls_wrappermode", "no"),
    ("smtpd_tls_ask_ccert", "no"),
    ("tls_append_default_CA", "no"),
    ("inet_interfaces", "all"),
    ("smtpd_restriction_classes", ""),
];

/// What `mydestination` holds when `myhostname`/`mydomain` are not set: the
/// machine's own names, which the export does not tell.
const HOST_NAMES: &[(&str, &str)] = &[("myhostname", "this-host.invalid"), ("mydomain", "invalid")];

/// Restrictions smtpd requires in the relay or recipient list; without one it
/// refuses to start ("specify at least one working instance of", smtpd_check.c).
const REQUIRED: &[&str] = &[
    "reject_unauth_destination",
    "defer_unauth_destination",
    "reject",
    "defer",
    "defer_if_permit",
    "check_relay_domains",
];

pub(super) const SYSTEM: &str = "postfix";

/// Where a parameter's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Origin {
    Override(Loc),
    Main(Loc),
    Default,
}

/// The settings as one smtpd service sees them.
pub(super) struct View<'a> {
    pub(super) files: &'a PostfixFiles,
    pub(super) service: &'a Service,
}

impl View<'_> {
    pub(super) fn raw(&self, name: &str) -> Option<String> {
        if let Some(p) = self.service.overrides.get(name) {
            return Some(p.value.clone());
        }
        if let Some(p) = self.files.main.get(name) {
            return Some(p.value.clone());
        }
        DEFAULTS
            .iter()
            .chain(HOST_NAMES)
            .find(|(n, _)| *n == name)
            .map(|(_, v)| (*v).to_owned())
    }

    pub(super) fn origin(&self, name: &str) -> Origin {
        if let Some(p) = self.service.overrides.get(name) {
            return Origin::Override(p.loc.clone());
        }
        if let Some(p) = self.files.main.get(name) {
            return Origin::Main(p.loc.clone());
        }
        Origin::Default
    }

    pub(super) fn value(&self, name: &str) -> Result<String, String> {
        postfix_syntax::expand(&format!("${{{name}}}"), &|n| self.raw(n))
    }

    pub(super) fn yes(&self, name: &str) -> bool {
        self.value(name)
            .is_ok_and(|v| v.trim().eq_ignore_ascii_case("yes"))
    }

    /// `file:line` of a parameter, or "default".
    pub(super) fn location(&self, name: &str) -> String {
        match self.origin(name) {
            Origin::Override(l) | Origin::Main(l) => l.to_string(),
            Origin::Default => "default".to_owned(),
        }
    }

    /// The evidence line of a parameter: where, and its value as written.
    pub(super) fn evidence(&self, name: &str) -> String {
        match self.origin(name) {
            Origin::Override(l) => format!(
                "{l}: {} -o {name}={}",
                self.service.id(),
                self.raw(name).unwrap_or_default()
            ),
            Origin::Main(l) => format!("{l}: {name} = {}", self.raw(name).unwrap_or_default()),
            Origin::Default => format!(
                "{name} not set; Postfix's default is \"{}\"",
                self.value(name).unwrap_or_default()
            ),
        }
    }

    /// The command that sets `name` to `value` where it is set now: the
    /// service's `-o` override, else main.cf.
    pub(super) fn fix(&self, name: &str, value: &str) -> String {
        match self.origin(name) {
            Origin::Override(_) => override_fix(&self.service.id(), name, value),
            _ => format!("postconf -e {}", shell_quote(&format!("{name} = {value}"))),
        }
    }
}

/// `postconf -P` takes no whitespace in the value ("-Pe does not accept
/// whitespace in parameter value"): list items are joined with commas, which
/// every list parameter accepts; a value that still has whitespace (a
/// `{ … }` group) is written as the master.cf option to put in place.
pub(super) fn override_fix(service: &str, name: &str, value: &str) -> String {
    let joined = split_list(value).join(",");
    if joined.contains(char::is_whitespace) {
        format!("master.cf, service {service}: -o {{ {name} = {value} }}")
    } else {
        format!(
            "postconf -P {}",
            shell_quote(&format!("{service}/{name}={joined}"))
        )
    }
}

/// Quotes for a POSIX shell: the values come from the reviewed files.
pub(super) fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The listen address of a service: `None` when it listens only on loopback.
fn exposed(view: &View<'_>) -> bool {
    let name = &view.service.name;
    if view.service.kind == "inet"
        && let Some((host, _)) = name.rsplit_once(':')
    {
        return !is_loopback(host);
    }
    let interfaces = view.value("inet_interfaces").unwrap_or_default();
    let list = split_list(&interfaces);
    list.is_empty() || !list.iter().all(|h| is_loopback(h))
}

fn is_loopback(host: &str) -> bool {
    let h = host.trim().trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.eq_ignore_ascii_case("loopback-only")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The smtpd services to review, and the notes about the others.
fn services(files: &PostfixFiles, opts: &ReviewOptions, out: &mut Sink) -> Vec<Service> {
    let is_smtpd = |s: &Service| match s.kind.as_str() {
        "inet" | "pass" => match &s.command {
            Some(c) => c.rsplit('/').next() == Some("smtpd"),
            // Known only from `postconf -P`: an inet service with smtpd settings.
            None => s.overrides.keys().any(|k| k.starts_with("smtpd_")),
        },
        _ => false,
    };
    if !opts.services.is_empty() {
        // The services the user named, reviewed wherever they listen.
        let mut out_services = Vec::new();
        for want in &opts.services {
            let (name, kind) = match want.rsplit_once('/') {
                Some((n, k)) if MASTER_TYPES.contains(&k) => (n, k),
                _ => (want.as_str(), "inet"),
            };
            let found = files
                .services
                .iter()
                .find(|s| s.name == name && s.kind == kind);
            match found {
                Some(s) if files.has_master && !is_smtpd(s) => {
                    out.note(Note::new("service_not_found", want, ""));
                }
                Some(s) => out_services.push(Service {
                    command: s.command.clone().or_else(|| Some("smtpd".to_owned())),
                    ..s.clone()
                }),
                // Without master.cf in the files, a named service is assumed
                // to run smtpd with only the overrides `postconf -P` shows.
                None if !files.has_master => {
                    out.note(Note::new(
                        "assumed_named_service",
                        &format!("{name}/{kind}"),
                        "",
                    ));
                    out_services.push(Service {
                        name: name.to_owned(),
                        kind: kind.to_owned(),
                        command: Some("smtpd".to_owned()),
                        ..Service::default()
                    });
                }
                None => out.note(Note::new("service_not_found", want, "")),
            }
        }
        return out_services;
    }
    let mut smtpd: Vec<Service> = files
        .services
        .iter()
        .filter(|s| is_smtpd(s))
        .cloned()
        .collect();
    let has_smtp = smtpd.iter().any(|s| s.kind == "inet");
    if !files.has_master && !has_smtp {
        // Without master.cf, the stock entry `smtp inet … smtpd` is assumed.
        let stock = files
            .services
            .iter()
            .find(|s| s.name == "smtp" && s.kind == "inet")
            .cloned()
            .unwrap_or_else(|| Service {
                name: "smtp".to_owned(),
                kind: "inet".to_owned(),
                command: Some("smtpd".to_owned()),
                ..Service::default()
            });
        out.note(Note::new("assumed_stock_service", "smtp inet", ""));
        smtpd.insert(0, stock);
    }
    // postscreen hands connections to the `smtpd pass` service; the pass
    // service is reachable when a postscreen inet service is.
    let postscreen = files.services.iter().any(|s| {
        s.kind == "inet"
            && s.command
                .as_deref()
                .is_some_and(|c| c.rsplit('/').next() == Some("postscreen"))
    });
    smtpd.retain(|s| s.kind == "inet" || postscreen);
    smtpd
}

/// Reviews Postfix settings.
pub fn review(files: &PostfixFiles, opts: &ReviewOptions, out: &mut Sink) {
    for u in &files.unreadable {
        out.push(
            Observation::new("relay_config.unparsed", u.loc.to_string())
                .evidence(format!("{}: {}", u.loc, u.text))
                .var("system", SYSTEM)
                .var("location", u.loc.to_string())
                .var("item", u.text.clone())
                .var("reason", "syntax"),
        );
    }
    if files.main.is_empty() && files.services.is_empty() {
        return;
    }
    for service in services(files, opts, out) {
        let view = View {
            files,
            service: &service,
        };
        if opts.services.is_empty() && !exposed(&view) {
            out.note(Note::new("skipped_loopback", &service.id(), ""));
            continue;
        }
        review_service(&view, opts, out);
    }
}

/// Trusted networks of a service.
pub(super) struct Trust {
    pub(super) ranges: Vec<(AddrRange, String)>,
    pub(super) everyone: bool,
}

fn trust(view: &View<'_>, opts: &ReviewOptions, out: &mut Sink) -> Trust {
    let mut ranges = Vec::new();
    let set = view.raw("mynetworks").is_some();
    if !set {
        let style = view.value("mynetworks_style").unwrap_or_default();
        out.note(Note::new(
            "mynetworks_from_style",
            "mynetworks",
            style.trim(),
        ));
        return Trust {
            ranges,
            everyone: false,
        };
    }
    let value = expanded(view, "mynetworks", out);
    let loc = view.location("mynetworks");
    let mut pending: Vec<String> = split_list(&value);
    let mut reads = 0;
    while let Some(entry) = pending.pop() {
        if entry.starts_with('!') {
            // Exclusions (Postfix 3.2) only narrow the list.
            continue;
        }
        if entry.starts_with('/')
            || entry.contains(':')
                && !entry.starts_with('[')
                && AddrRange::parse_cidr(&entry).is_none()
        {
            // `/file/name` or `type:table`.
            let file = if entry.starts_with('/') {
                Some(entry.as_str())
            } else {
                tables::file_of(&entry)
            };
            if let Some(text) = file.and_then(|f| opts.tables.get(f))
                && reads < 16
            {
                reads += 1;
                for line in text.lines() {
                    let t = line.trim();
                    if t.is_empty() || t.starts_with('#') {
                        continue;
                    }
                    // cidr tables: "network action"; pattern files: one per line.
                    if let Some(first) = t.split_whitespace().next() {
                        pending.push(first.to_owned());
                    }
                }
                continue;
            }
            out.unparsed(SYSTEM, &loc, &entry, "table_unread");
            continue;
        }
        match AddrRange::parse_cidr(&entry) {
            Some(r) => ranges.push((r, entry)),
            None => out.unparsed(SYSTEM, &loc, &entry, "host_name"),
        }
    }
    ranges.reverse();
    let all: Vec<AddrRange> = ranges.iter().map(|(r, _)| *r).collect();
    Trust {
        everyone: covers_public_internet(&all),
        ranges,
    }
}

fn expanded(view: &View<'_>, name: &str, out: &mut Sink) -> String {
    match view.value(name) {
        Ok(v) => v,
        Err(e) => {
            out.unparsed_because(SYSTEM, &view.location(name), name, "expansion", &e);
            String::new()
        }
    }
}

fn review_service(view: &View<'_>, opts: &ReviewOptions, out: &mut Sink) {
    let id = view.service.id();
    let trust = trust(view, opts, out);
    // Expansion errors of the lists are reported once, here.
    for list in restrictions::RCPT_LISTS {
        expanded(view, list, out);
    }
    let classes = split_list(&view.value("smtpd_restriction_classes").unwrap_or_default());
    let param = |n: &str| view.value(n).unwrap_or_default();
    let table = |spec: &str| {
        let text = tables::file_of(spec).and_then(|f| opts.tables.get(f));
        tables::parse_spec(spec, text.map(String::as_str))
    };
    let public_ca = view.yes("smtpd_tls_ask_ccert")
        && (view.yes("tls_append_default_CA")
            || ["smtpd_tls_CAfile", "smtpd_tls_CApath"].iter().any(|p| {
                let v = view.value(p).unwrap_or_default();
                v.contains("/etc/ssl/certs")
                    || v.contains("ca-certificates")
                    || v.contains("ca-bundle")
            }));
    let ctx_for = |rcpt: Rcpt, sasl: bool, everyone: bool| Ctx {
        param: &param,
        trusts_everyone: everyone,
        classes: classes.clone(),
        table: &table,
        rcpt,
        sasl,
        public_ca_clientcerts: public_ca,
    };

    // smtpd refuses to run without a working relay-blocking restriction.
    let has_required = ["smtpd_relay_restrictions", "smtpd_recipient_restrictions"]
        .iter()
        .any(|l| has_required(&restrictions::items(&param(l)), &param, &classes, 0));
    if !has_required {
        out.note(Note::new("smtpd_refuses_mail", &id, ""));
        out.service(ServiceReview {
            system: SYSTEM.to_owned(),
            name: id,
            relay: Relay::Closed,
        });
        return;
    }

    let anonymous = restrictions::evaluate(&ctx_for(Rcpt::Foreign, false, trust.everyone));
    for d in &anonymous.doubts {
        out.unparsed(SYSTEM, &view.location(&d.list), &d.restriction, d.kind);
    }
    let relay = if anonymous.accepted() {
        open_relay(view, &anonymous, &trust, out);
        Relay::Open
    } else if anonymous.rejected() {
        Relay::Closed
    } else {
        Relay::Undecided
    };
    out.service(ServiceReview {
        system: SYSTEM.to_owned(),
        name: id.clone(),
        relay,
    });

    // Trusted networks wider than one organisation, where they grant relay.
    let wide: Vec<&(AddrRange, String)> =
        trust.ranges.iter().filter(|(r, _)| r.too_wide()).collect();
    if !wide.is_empty() && restrictions::evaluate(&ctx_for(Rcpt::Foreign, false, true)).accepted() {
        let kept: Vec<&str> = trust
            .ranges
            .iter()
            .filter(|(r, _)| !r.too_wide())
            .map(|(_, s)| s.as_str())
            .collect();
        let value = if kept.is_empty() {
            // mynetworks_style = host on a typical machine.
            "127.0.0.0/8 [::1]/128".to_owned()
        } else {
            kept.join(" ")
        };
        let mut evidence = vec![view.evidence("mynetworks")];
        for (r, s) in &wide {
            evidence.push(format!("{s}: public space of a /{}", r.public_prefix_len()));
        }
        out.push(
            Observation::new(
                "relay_config.mynetworks_too_wide",
                subject(view, "mynetworks"),
            )
            .evidence_lines(evidence)
            .var("system", SYSTEM)
            .var("service", id.clone())
            .var("setting", "mynetworks")
            .var(
                "ranges",
                wide.iter()
                    .map(|(_, s)| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            )
            .var("location", view.location("mynetworks"))
            .var("fix", view.fix("mynetworks", &value)),
        );
    }

    auth_plaintext(view, &ctx_for(Rcpt::Foreign, true, trust.everyone), out);
    recipients(view, &ctx_for, trust.everyone, out);
}

/// Whether a list holds a "working instance" of a relay-blocking
/// restriction, as smtpd checks at start (smtpd_check.c, has_required): the
/// scan stops at `permit` (what follows it is ignored), skips the restriction
/// after `warn_if_reject`, and looks into restriction classes. Without one in
/// either list, smtpd exits with a fatal error and no mail is received.
fn has_required(
    items: &[String],
    param: &dyn Fn(&str) -> String,
    classes: &[String],
    depth: usize,
) -> bool {
    let mut i = 0;
    while i < items.len() {
        let name = items[i]
            .split(' ')
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        if name == "warn_if_reject" && i + 1 < items.len() {
            i += 2;
            continue;
        }
        if name == "permit" {
            return false;
        }
        if REQUIRED.contains(&name.as_str()) {
            return true;
        }
        if depth < 10
            && classes.iter().any(|c| c.eq_ignore_ascii_case(&name))
            && has_required(
                &restrictions::items(&param(&name)),
                param,
                classes,
                depth + 1,
            )
        {
            return true;
        }
        i += 1;
    }
    false
}

/// Table files the settings name, for the caller to read (`--tables DIR`).
pub fn table_files(files: &PostfixFiles) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let params = files
        .main
        .values()
        .chain(files.services.iter().flat_map(|s| s.overrides.values()));
    for p in params {
        for word in split_list(&p.value) {
            let file = if word.starts_with('/') {
                Some(word.as_str())
            } else {
                tables::file_of(&word)
            };
            if let Some(f) = file
                && !out.iter().any(|o| o == f)
            {
                out.push(f.to_owned());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::postfix_findings::closed_list;
    use super::*;

    fn list(s: &str) -> Vec<String> {
        restrictions::items(s)
    }

    #[test]
    fn closed_lists_put_the_reject_first() {
        let items = list(
            "permit_mynetworks, check_sender_access hash:/x, defer_unauth_destination, check_policy_service unix:private/p",
        );
        assert_eq!(
            closed_list(&items, &[1]).join(", "),
            "permit_mynetworks, defer_unauth_destination, check_sender_access hash:/x, check_policy_service unix:private/p"
        );
        assert_eq!(
            closed_list(&list("permit_mynetworks, permit_sasl_authenticated"), &[]).join(", "),
            "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination"
        );
        assert_eq!(
            closed_list(&[], &[]).join(", "),
            "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination"
        );
    }

    #[test]
    fn working_instances_as_smtpd_checks_them() {
        let classes = vec!["relaying".to_owned(), "strict".to_owned()];
        let param = |n: &str| match n {
            "relaying" => "permit".to_owned(),
            "strict" => "reject_unauth_destination".to_owned(),
            _ => String::new(),
        };
        let req = |s: &str| has_required(&list(s), &param, &classes, 0);
        assert!(req("permit_mynetworks, reject_unauth_destination"));
        // Everything after `permit` is ignored.
        assert!(!req("permit_mynetworks, permit, reject_unauth_destination"));
        // The restriction after warn_if_reject does not count.
        assert!(!req("warn_if_reject reject_unauth_destination"));
        assert!(req("warn_if_reject reject_unknown_client_hostname, defer"));
        // Classes are looked into; a class that permits does not stop the scan.
        assert!(req("strict"));
        assert!(req("relaying, reject_unauth_destination"));
        assert!(!req(""));
    }

    #[test]
    fn shell_quoting_of_file_values() {
        assert_eq!(shell_quote("a'b"), r"'a'\''b'");
    }

    #[test]
    fn loopback_names() {
        for h in [
            "127.0.0.1",
            "[::1]",
            "localhost",
            "loopback-only",
            "127.0.0.2",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["all", "192.0.2.1", "mx.example.com", "[2001:db8::1]"] {
            assert!(!is_loopback(h), "{h}");
        }
    }
}
