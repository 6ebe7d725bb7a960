//! Engine `spf`: Sender Policy Framework (RFC 7208).
//!
//! - [`parse`]: the record grammar (§4.5, §4.6, §5, §6, §7) into the typed terms
//!   below, strict where the RFC says a record is a permerror.
//! - [`eval`]: `check_host()` (§4) through the run's [`mxaudit_dns::Dns`], with the
//!   processing limits of §4.6.4 and the explanation of §6.2.
//! - [`tree`]: the audit of the whole include/redirect tree, with the lookup count
//!   at every node and the path of every term that queries DNS.
//! - `audit`: the engine ([`Spf`]) turning the tree and `check_host()` results
//!   into findings; `evaluate`: [`evaluate`] for `mxaudit spf`.
//!
//! The types carry the ABNF of RFC 7208 they implement.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde::Serialize;

mod audit;
pub mod check_host;
mod evaluation;
pub mod parse;
pub mod tree;

pub use audit::{Spf, SpfParams};
pub use check_host::{CheckHost, CheckHostOutcome, EvalNode, EvalStep, Limits, StepOutcome};
pub use evaluation::{Identity, SpfEvaluation, SpfRequest, evaluate, trace_lines};
pub use parse::{SyntaxError, TermProblem, is_spf_record, parse_explanation, parse_record};
pub use tree::{RecordTree, TreeNode, TreeTerm};

/// The result of `check_host()` (RFC 7208 §2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SpfResult {
    /// §2.6.1: no syntactically valid domain, or no SPF record.
    None,
    /// §2.6.2: the domain owner asserts nothing about the client.
    Neutral,
    /// §2.6.3: the client is authorized.
    Pass,
    /// §2.6.4: the client is not authorized.
    Fail,
    /// §2.6.5: weak statement that the client is probably not authorized.
    SoftFail,
    /// §2.6.6: a transient (generally DNS) error.
    TempError,
    /// §2.6.7: the domain's published records could not be correctly interpreted.
    PermError,
}

impl SpfResult {
    /// The result as RFC 7208 and `Received-SPF` spell it, lowercase.
    pub fn as_str(self) -> &'static str {
        match self {
            SpfResult::None => "none",
            SpfResult::Neutral => "neutral",
            SpfResult::Pass => "pass",
            SpfResult::Fail => "fail",
            SpfResult::SoftFail => "softfail",
            SpfResult::TempError => "temperror",
            SpfResult::PermError => "permerror",
        }
    }
}

impl std::fmt::Display for SpfResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// ```text
/// qualifier        = "+" / "-" / "?" / "~"
/// ```
/// (§4.6.2; absent means `+`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Qualifier {
    /// `+`: pass.
    Pass,
    /// `-`: fail.
    Fail,
    /// `~`: softfail.
    SoftFail,
    /// `?`: neutral.
    Neutral,
}

impl Qualifier {
    /// The result a matching directive with this qualifier produces (§4.6.2).
    pub fn result(self) -> SpfResult {
        match self {
            Qualifier::Pass => SpfResult::Pass,
            Qualifier::Fail => SpfResult::Fail,
            Qualifier::SoftFail => SpfResult::SoftFail,
            Qualifier::Neutral => SpfResult::Neutral,
        }
    }

    /// The qualifier character.
    pub fn symbol(self) -> char {
        match self {
            Qualifier::Pass => '+',
            Qualifier::Fail => '-',
            Qualifier::SoftFail => '~',
            Qualifier::Neutral => '?',
        }
    }
}

/// ```text
/// dual-cidr-length = [ ip4-cidr-length ] [ "/" ip6-cidr-length ]
/// ip4-cidr-length  = "/" ("0" / %x31-39 0*1DIGIT) ; value range 0-32
/// ip6-cidr-length  = "/" ("0" / %x31-39 0*2DIGIT) ; value range 0-128
/// ```
/// (§5.6; absent lengths mean the whole address: /32 and /128.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DualCidr {
    /// Prefix length applied to IPv4 addresses.
    pub v4: u8,
    /// Prefix length applied to IPv6 addresses.
    pub v6: u8,
}

impl Default for DualCidr {
    fn default() -> Self {
        DualCidr { v4: 32, v6: 128 }
    }
}

/// ```text
/// mechanism        = ( all / include / a / mx / ptr / ip4 / ip6 / exists )
/// all              = "all"
/// include          = "include"  ":" domain-spec
/// a                = "a"      [ ":" domain-spec ] [ dual-cidr-length ]
/// mx               = "mx"     [ ":" domain-spec ] [ dual-cidr-length ]
/// ptr              = "ptr"    [ ":" domain-spec ]
/// ip4              = "ip4"      ":" ip4-network   [ ip4-cidr-length ]
/// ip6              = "ip6"      ":" ip6-network   [ ip6-cidr-length ]
/// exists           = "exists"   ":" domain-spec
/// ```
/// (§5.1–§5.7; names are case-insensitive.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    /// §5.1: always matches.
    All,
    /// §5.2: matches when check_host() of the target passes.
    Include(DomainSpec),
    /// §5.3: the target's (or the current domain's) addresses.
    A {
        /// Target; `None` is the current domain.
        domain: Option<DomainSpec>,
        /// Prefix lengths.
        cidr: DualCidr,
    },
    /// §5.4: the addresses of the target's MX hosts.
    Mx {
        /// Target; `None` is the current domain.
        domain: Option<DomainSpec>,
        /// Prefix lengths.
        cidr: DualCidr,
    },
    /// §5.5: validated reverse names under the target. Do not use.
    Ptr(Option<DomainSpec>),
    /// §5.6: an IPv4 network.
    Ip4 {
        /// The network as written (host bits are allowed and ignored).
        network: Ipv4Addr,
        /// Prefix length, 0 to 32.
        prefix: u8,
    },
    /// §5.6: an IPv6 network.
    Ip6 {
        /// The network as written (host bits are allowed and ignored).
        network: Ipv6Addr,
        /// Prefix length, 0 to 128.
        prefix: u8,
    },
    /// §5.7: matches when the target has an A record.
    Exists(DomainSpec),
}

impl Mechanism {
    /// The mechanism's name, lowercase.
    pub fn name(&self) -> &'static str {
        match self {
            Mechanism::All => "all",
            Mechanism::Include(_) => "include",
            Mechanism::A { .. } => "a",
            Mechanism::Mx { .. } => "mx",
            Mechanism::Ptr(_) => "ptr",
            Mechanism::Ip4 { .. } => "ip4",
            Mechanism::Ip6 { .. } => "ip6",
            Mechanism::Exists(_) => "exists",
        }
    }

    /// True for the mechanisms that count against the limit of 10 DNS-querying
    /// terms (§4.6.4): include, a, mx, ptr, exists (and the redirect modifier).
    pub fn queries_dns(&self) -> bool {
        matches!(
            self,
            Mechanism::Include(_)
                | Mechanism::A { .. }
                | Mechanism::Mx { .. }
                | Mechanism::Ptr(_)
                | Mechanism::Exists(_)
        )
    }
}

/// ```text
/// directive        = [ qualifier ] mechanism
/// ```
/// (§4.6.1.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// The qualifier (`+` when absent).
    pub qualifier: Qualifier,
    /// The mechanism.
    pub mechanism: Mechanism,
    /// The term as written in the record.
    pub text: String,
}

/// ```text
/// unknown-modifier = name "=" macro-string
/// name             = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." )
/// ```
/// (§6: unknown modifiers MUST be ignored, but their macro syntax is checked.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownModifier {
    /// The name as written.
    pub name: String,
    /// The value.
    pub value: MacroString,
    /// The term as written.
    pub text: String,
}

/// A parsed SPF record.
///
/// ```text
/// record           = version terms *SP
/// version          = "v=spf1"
/// terms            = *( 1*SP ( directive / modifier ) )
/// modifier         = redirect / explanation / unknown-modifier
/// redirect         = "redirect" "=" domain-spec
/// explanation      = "exp" "=" domain-spec
/// ```
/// (§4.5, §4.6.1, §6.1, §6.2; `redirect` and `exp` at most once each.)
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// The directives, in record order (evaluation order, §4.6.2).
    pub directives: Vec<Directive>,
    /// `redirect=`, with the term as written.
    pub redirect: Option<(DomainSpec, String)>,
    /// `exp=`, with the term as written.
    pub explanation: Option<(DomainSpec, String)>,
    /// Other modifiers (ignored, §6).
    pub unknown_modifiers: Vec<UnknownModifier>,
}

impl Record {
    /// True when the record has an `all` mechanism: then `redirect` is ignored (§6.1).
    pub fn has_all(&self) -> bool {
        self.directives
            .iter()
            .any(|d| d.mechanism == Mechanism::All)
    }

    /// The `redirect=` that evaluation would follow: none when `all` is present.
    pub fn effective_redirect(&self) -> Option<&(DomainSpec, String)> {
        if self.has_all() {
            None
        } else {
            self.redirect.as_ref()
        }
    }
}

/// ```text
/// domain-spec      = macro-string domain-end
/// domain-end       = ( "." toplabel [ "." ] ) / macro-expand
/// toplabel         = ( *alphanum ALPHA *alphanum ) /
///                    ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
/// alphanum         = ALPHA / DIGIT
/// ```
/// (§7.1; `c`, `r` and `t` macros are not allowed here, only in explanations.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainSpec {
    /// The text as written.
    pub text: String,
    /// The parsed macro-string.
    pub macros: MacroString,
}

impl DomainSpec {
    /// The name when the spec has no macro: the text without its trailing dot.
    pub fn literal(&self) -> Option<&str> {
        if self.macros.has_macros() {
            None
        } else {
            Some(self.text.strip_suffix('.').unwrap_or(&self.text))
        }
    }
}

/// ```text
/// macro-string     = *( macro-expand / macro-literal )
/// macro-expand     = ( "%{" macro-letter transformers *delimiter "}" )
///                    / "%%" / "%_" / "%-"
/// macro-literal    = %x21-24 / %x26-7E ; visible characters except "%"
/// explain-string   = *( macro-string / SP )
/// ```
/// (§7.1, §6.2.)
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MacroString {
    /// The pieces, in order.
    pub pieces: Vec<MacroPiece>,
}

impl MacroString {
    /// True when some piece is a `%{…}` expansion.
    pub fn has_macros(&self) -> bool {
        self.pieces
            .iter()
            .any(|p| matches!(p, MacroPiece::Macro(_)))
    }

    /// True when some piece is the given macro letter.
    pub fn uses(&self, letter: MacroLetter) -> bool {
        self.pieces
            .iter()
            .any(|p| matches!(p, MacroPiece::Macro(m) if m.letter == letter))
    }
}

/// One piece of a macro-string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MacroPiece {
    /// Literal text (visible ASCII except `%`; spaces too in explanations).
    Literal(String),
    /// `%%` (a `%`), `%_` (a space) or `%-` (`%20`) (§7.1).
    Escape(&'static str),
    /// `%{…}`.
    Macro(Macro),
}

/// ```text
/// macro-expand     = "%{" macro-letter transformers *delimiter "}"
/// transformers     = *DIGIT [ "r" ]
/// delimiter        = "." / "-" / "+" / "," / "/" / "_" / "="
/// ```
/// (§7.1, §7.3.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Macro {
    /// Which value.
    pub letter: MacroLetter,
    /// Uppercase letter: URL-escape the result (§7.3).
    pub url_escape: bool,
    /// Keep this many right-hand parts (nonzero).
    pub keep: Option<u32>,
    /// Reverse the parts before keeping.
    pub reverse: bool,
    /// Split on these characters (empty: `.`).
    pub delimiters: Vec<char>,
}

/// ```text
/// macro-letter     = "s" / "l" / "o" / "d" / "i" / "p" / "h" /
///                    "c" / "r" / "t" / "v"
/// ```
/// (§7.2.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacroLetter {
    /// `s`: the sender (`local-part@domain`).
    Sender,
    /// `l`: the sender's local-part.
    LocalPart,
    /// `o`: the sender's domain.
    SenderDomain,
    /// `d`: the current domain.
    Domain,
    /// `i`: the client IP, dotted quad or dotted nibbles.
    Ip,
    /// `p`: the validated domain name of the client IP (do not use).
    ValidatedName,
    /// `v`: `in-addr` or `ip6`.
    IpVersion,
    /// `h`: the HELO/EHLO domain.
    Helo,
    /// `c`: the client IP in its usual text form (explanations only).
    ClientIp,
    /// `r`: the receiving host (explanations only).
    Receiver,
    /// `t`: the current time in seconds since the epoch (explanations only).
    Timestamp,
}

impl MacroLetter {
    /// The letter for a character (either case).
    pub fn from_char(c: char) -> Option<MacroLetter> {
        Some(match c.to_ascii_lowercase() {
            's' => MacroLetter::Sender,
            'l' => MacroLetter::LocalPart,
            'o' => MacroLetter::SenderDomain,
            'd' => MacroLetter::Domain,
            'i' => MacroLetter::Ip,
            'p' => MacroLetter::ValidatedName,
            'v' => MacroLetter::IpVersion,
            'h' => MacroLetter::Helo,
            'c' => MacroLetter::ClientIp,
            'r' => MacroLetter::Receiver,
            't' => MacroLetter::Timestamp,
            _ => return None,
        })
    }

    /// §7.2: `c`, `r` and `t` are allowed only in explanation strings.
    pub fn explanation_only(self) -> bool {
        matches!(
            self,
            MacroLetter::ClientIp | MacroLetter::Receiver | MacroLetter::Timestamp
        )
    }
}
