//! What engines offer each other (and the commands built on them) through the
//! check context, instead of downcasting: an engine that is a blocklist or an
//! SMTP prober says so ([`crate::Engine::blocklist`],
//! [`crate::Engine::smtp_prober`]); another engine finds it among the run's
//! peers ([`crate::check::RunScope::enabled_peers`]) and asks.
//!
//! Observations made for another plugin carry that plugin's id
//! ([`crate::Observation::plugin`]) so that its manifest renders them.

use std::net::IpAddr;

use serde::Serialize;

use mxaudit_dns::DomainName;

use crate::check::{CheckCx, CheckReport};
use crate::model::Lang;

/// A DNS blocklist (RFC 5782) as other engines and `mxaudit dnsbl` use it.
#[async_trait::async_trait]
pub trait Blocklist: Send + Sync {
    /// The list's display name (e.g. `Spamhaus ZEN`).
    fn list_name(&self) -> &str;

    /// Looks up `addresses`, used by `who` (e.g. `smart host mail.example.com`),
    /// as an audit looks up MX addresses: the self-test first, the same codes,
    /// the same questions through the run's cache. Addresses this list cannot
    /// list (private ones, IPv6 on an IPv4 list) are left out; the bool says
    /// whether any was asked.
    async fn check_ips(&self, addresses: &[IpAddr], who: &str, cx: &CheckCx)
    -> (CheckReport, bool);

    /// The lines of `mxaudit dnsbl` for one input: `addresses` are the input
    /// itself or the addresses of the host it names (`host_failure` says why
    /// there are none).
    async fn lines_for(
        &self,
        input: &BlocklistInput,
        addresses: &[IpAddr],
        host_failure: Option<&str>,
        cx: &CheckCx,
    ) -> Vec<BlocklistLine>;
}

/// An input of `mxaudit dnsbl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlocklistInput {
    /// An IP address.
    Address(IpAddr),
    /// A host name (its addresses, or the name itself on domain lists).
    Host(DomainName),
}

impl BlocklistInput {
    /// The input as the user gave it.
    pub fn as_text(&self) -> String {
        match self {
            BlocklistInput::Address(ip) => ip.to_string(),
            BlocklistInput::Host(name) => name.bare().to_owned(),
        }
    }
}

/// The meaning of a list's return code in both output languages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Meaning {
    /// English.
    pub en: String,
    /// Japanese.
    pub ja: String,
}

impl Meaning {
    /// The text in `lang`.
    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::En => &self.en,
            Lang::Ja => &self.ja,
        }
    }
}

/// What one list said about one address or name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineStatus {
    /// Listed; `return_codes` and `meaning` say how.
    Listed,
    /// Not listed (NXDOMAIN or NODATA).
    NotListed,
    /// The list answered an error code or a non-loopback address for this query.
    Refused,
    /// The list failed its RFC 5782 §5 self-test; its answers are not used.
    Unusable,
    /// The list (or the host name) did not answer.
    Failed,
    /// Not asked: the list does not apply (IPv6 on an IPv4 list, an address on a
    /// domain list, a private address).
    Skipped,
}

/// One line of `mxaudit dnsbl`: one (input address or name, list).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlocklistLine {
    /// The input as given (an address or a host name).
    pub input: String,
    /// What was looked up: the address (of a host name) or the name.
    pub queried: String,
    /// The plugin id of the list.
    pub plugin: String,
    /// The list's name.
    pub list: String,
    /// The list's zone (public name; a DQS key is never shown).
    pub zone: String,
    /// The outcome.
    pub status: LineStatus,
    /// Return codes seen (listed, refused, unusable).
    pub return_codes: Vec<String>,
    /// What they mean, from the list's manifest.
    pub meaning: Option<Meaning>,
    /// The list's TXT reason (untrusted text).
    pub reason: Option<String>,
    /// Why not listed/failed/skipped/refused, in a few words.
    pub detail: Option<String>,
}

/// What the SMTP probe of a domain's MX addresses found.
#[derive(Debug, Clone, Default)]
pub struct DomainProbe {
    /// The smtp engine's observations and what it could not decide.
    pub report: CheckReport,
    /// SMTP sessions held (0: nothing was probed).
    pub sessions: usize,
}

/// An SMTP server prober as other engines use it.
#[async_trait::async_trait]
pub trait SmtpProber: Send + Sync {
    /// The probe of the target's MX addresses, shared by every asker of the
    /// run (the smtp check itself, the relay-config review).
    async fn probe_domain(
        &self,
        target: &crate::check::Target,
        cx: &CheckCx,
    ) -> std::sync::Arc<DomainProbe>;

    /// Probes `host:port` the way the relay review probes an MX address
    /// (greeting, EHLO, STARTTLS and certificate, relay tests; never DATA),
    /// with `recipient_domain` for the local-recipient tests. The
    /// observations are this engine's codes: render them with its plugin.
    async fn probe_host(
        &self,
        host: &DomainName,
        port: u16,
        recipient_domain: Option<&str>,
        cx: &CheckCx,
    ) -> CheckReport;
}
