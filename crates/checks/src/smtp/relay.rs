//! The open-relay probe: the sixteen MAIL FROM / RCPT TO pairs of nmap's
//! `smtp-open-relay` script (nmap 7.x, `tests` table of `go()`), in its order,
//! so that verdicts can be compared form by form (docs/smtp.md).
//!
//! A relay test sends a foreign sender and a foreign recipient; the recipient
//! forms are the address tricks old MTAs mis-parsed into relaying: the `%`
//! hack, quoted local parts, source routes (RFC 5321 §3.6.1 and Appendix C,
//! which servers SHOULD strip and MUST NOT relay for by default), and UUCP
//! bang paths. RCPT is the verdict (RFC 5321 §4.1.1.3): 250 or 251 means the
//! server took responsibility for a foreign recipient; DATA is never sent.

use std::net::IpAddr;

use super::reply::Reply;

/// One address form of the relay probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayForm {
    /// The form in the and nmap's notation, e.g. `user%foreign@[IP]`.
    pub pattern: &'static str,
    /// The reverse-path, without angle brackets (empty for the null sender).
    pub from: String,
    /// The forward-path, without angle brackets.
    pub to: String,
}

/// What the forms are built from.
#[derive(Debug, Clone)]
pub struct FormInputs<'a> {
    /// The foreign (third-party) domain.
    pub foreign: &'a str,
    /// Local part of the foreign sender (`antispam` in nmap).
    pub from_local: &'a str,
    /// Local part of the foreign recipient (`relaytest` in nmap).
    pub to_local: &'a str,
    /// The server's own name (from its greeting, as nmap takes it).
    pub server_name: &'a str,
    /// The address connected to, for `[IP]` forms.
    pub ip: IpAddr,
}

/// An address literal (RFC 5321 §4.1.3): `[192.0.2.1]` or `[IPv6:2001:db8::1]`.
pub fn address_literal(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("[{v4}]"),
        IpAddr::V6(v6) => format!("[IPv6:{v6}]"),
    }
}

/// The sixteen forms, in nmap's order.
pub fn forms(i: &FormInputs<'_>) -> Vec<RelayForm> {
    let FormInputs {
        foreign,
        from_local: from,
        to_local: to,
        server_name: host,
        ..
    } = *i;
    let ip = address_literal(i.ip);
    let foreign_sender = format!("{from}@{foreign}");
    let at_host = format!("{from}@{host}");
    let at_ip = format!("{from}@{ip}");
    let plain = format!("{to}@{foreign}");
    let form = |pattern, from: &str, to: String| RelayForm {
        pattern,
        from: from.to_owned(),
        to,
    };
    vec![
        form("<> → user@foreign", "", plain.clone()),
        form("foreign → user@foreign", &foreign_sender, plain.clone()),
        form("user@host → user@foreign", &at_host, plain.clone()),
        form("user@[IP] → user@foreign", &at_ip, plain.clone()),
        form("user%foreign@[IP]", &at_ip, format!("{to}%{foreign}@{ip}")),
        form(
            "user%foreign@host",
            &at_ip,
            format!("{to}%{foreign}@{host}"),
        ),
        form("\"user@foreign\"", &at_ip, format!("\"{to}@{foreign}\"")),
        form("\"user%foreign\"", &at_ip, format!("\"{to}%{foreign}\"")),
        form("user@foreign@[IP]", &at_ip, format!("{to}@{foreign}@{ip}")),
        form(
            "\"user@foreign\"@[IP]",
            &at_ip,
            format!("\"{to}@{foreign}\"@{ip}"),
        ),
        form(
            "user@foreign@host",
            &at_ip,
            format!("{to}@{foreign}@{host}"),
        ),
        form(
            "@[IP]:user@foreign",
            &at_ip,
            format!("@{ip}:{to}@{foreign}"),
        ),
        form(
            "@host:user@foreign",
            &at_ip,
            format!("@{host}:{to}@{foreign}"),
        ),
        form("foreign!user", &at_ip, format!("{foreign}!{to}")),
        form("foreign!user@[IP]", &at_ip, format!("{foreign}!{to}@{ip}")),
        form(
            "foreign!user@host",
            &at_ip,
            format!("{foreign}!{to}@{host}"),
        ),
    ]
}

/// What the server said to one form.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The form.
    pub form: RelayForm,
    /// The reply to MAIL FROM.
    pub mail: Reply,
    /// The reply to RCPT TO (absent when MAIL FROM was refused).
    pub rcpt: Option<Reply>,
}

impl Attempt {
    /// RCPT accepted: 250 or 251 (RFC 5321 §4.1.1.3, §3.4).
    pub fn accepted(&self) -> bool {
        self.mail.is_positive()
            && self
                .rcpt
                .as_ref()
                .is_some_and(|r| matches!(r.code, 250 | 251))
    }

    /// 530 at MAIL or RCPT: the server wants authentication first (RFC 4954 §6).
    pub fn auth_required(&self) -> bool {
        self.mail.code == 530 || self.rcpt.as_ref().is_some_and(|r| r.code == 530)
    }

    /// One evidence line: both commands and replies.
    pub fn evidence(&self) -> String {
        let mut line = format!(
            "{}: MAIL FROM:<{}> → {}",
            self.form.pattern,
            self.form.from,
            self.mail.summary()
        );
        if let Some(rcpt) = &self.rcpt {
            line.push_str(&format!(
                "; RCPT TO:<{}> → {}",
                self.form.to,
                rcpt.summary()
            ));
        }
        line
    }
}

/// How the relay probe went.
#[derive(Debug, Clone, Default)]
pub struct RelayOutcome {
    /// The forms tried, in order.
    pub attempts: Vec<Attempt>,
    /// Set when the server answered 530 and the probe stopped there.
    pub auth_required: bool,
}

impl RelayOutcome {
    /// The accepted attempts.
    pub fn accepted(&self) -> Vec<&Attempt> {
        self.attempts.iter().filter(|a| a.accepted()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pairs exactly as nmap 7.93's smtp-open-relay.nse builds them with
    /// domain = example.net, from = antispam, to = relaytest, srvname = mx.test,
    /// ip = 192.0.2.1.
    #[test]
    fn sixteen_forms_match_nmap() {
        let f = forms(&FormInputs {
            foreign: "example.net",
            from_local: "antispam",
            to_local: "relaytest",
            server_name: "mx.test",
            ip: "192.0.2.1".parse().expect("ip"),
        });
        let pairs: Vec<(&str, &str)> = f.iter().map(|f| (f.from.as_str(), f.to.as_str())).collect();
        assert_eq!(
            pairs,
            [
                ("", "relaytest@example.net"),
                ("antispam@example.net", "relaytest@example.net"),
                ("antispam@mx.test", "relaytest@example.net"),
                ("antispam@[192.0.2.1]", "relaytest@example.net"),
                ("antispam@[192.0.2.1]", "relaytest%example.net@[192.0.2.1]"),
                ("antispam@[192.0.2.1]", "relaytest%example.net@mx.test"),
                ("antispam@[192.0.2.1]", "\"relaytest@example.net\""),
                ("antispam@[192.0.2.1]", "\"relaytest%example.net\""),
                ("antispam@[192.0.2.1]", "relaytest@example.net@[192.0.2.1]"),
                (
                    "antispam@[192.0.2.1]",
                    "\"relaytest@example.net\"@[192.0.2.1]"
                ),
                ("antispam@[192.0.2.1]", "relaytest@example.net@mx.test"),
                ("antispam@[192.0.2.1]", "@[192.0.2.1]:relaytest@example.net"),
                ("antispam@[192.0.2.1]", "@mx.test:relaytest@example.net"),
                ("antispam@[192.0.2.1]", "example.net!relaytest"),
                ("antispam@[192.0.2.1]", "example.net!relaytest@[192.0.2.1]"),
                ("antispam@[192.0.2.1]", "example.net!relaytest@mx.test"),
            ]
        );
    }

    #[test]
    fn rfc5321_4_1_3_ipv6_literal() {
        assert_eq!(
            address_literal("2001:db8::1".parse().expect("ip")),
            "[IPv6:2001:db8::1]"
        );
    }
}
