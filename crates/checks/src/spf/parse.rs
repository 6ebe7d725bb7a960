//! The SPF record grammar (RFC 7208 §4.5, §4.6, §5, §6, §7), strict: anything the
//! ABNF does not produce is a syntax error, which makes check_host() a permerror
//! (§4.6). Work is linear in the record's length, and nothing here panics on
//! any input (see the property tests).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{
    Directive, DomainSpec, DualCidr, Macro, MacroLetter, MacroPiece, MacroString, Mechanism,
    Qualifier, Record, UnknownModifier,
};

/// Longest term shown in an error message.
const SHOWN: usize = 80;

/// Why a record is not a valid SPF record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SyntaxError {
    /// The record does not start with the version `v=spf1` followed by a space or
    /// its end (§4.5).
    #[error("the record does not start with `v=spf1`")]
    NotSpf,
    /// A term is invalid.
    #[error("term `{}`: {problem}", shown(term))]
    Term {
        /// The term as written.
        term: String,
        /// What is wrong with it.
        problem: TermProblem,
    },
    /// `redirect=` or `exp=` appears more than once (§6).
    #[error("modifier `{0}=` appears more than once (RFC 7208 §6)")]
    DuplicateModifier(&'static str),
    /// An explanation string (the TXT record named by `exp=`) is invalid (§6.2).
    #[error("explanation text: {0}")]
    Explanation(TermProblem),
}

impl SyntaxError {
    /// The offending term, when the error is about one.
    pub fn term(&self) -> Option<&str> {
        match self {
            SyntaxError::Term { term, .. } => Some(term),
            _ => None,
        }
    }
}

/// What is wrong with one term.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TermProblem {
    /// Terms are separated by spaces only; other characters must be visible
    /// 7-bit ASCII (§3.1, §4.6.1).
    #[error(
        "character {0:?} is not allowed (only visible 7-bit ASCII; terms are separated by spaces)"
    )]
    Character(char),
    /// Not one of all, include, a, mx, ptr, ip4, ip6, exists (§5).
    #[error("unknown mechanism `{}`", shown(.0))]
    UnknownMechanism(String),
    /// A modifier name must start with a letter (§6: `name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." )`).
    #[error("invalid modifier name `{}` (a name starts with a letter, then letters, digits, -, _ or .)", shown(.0))]
    ModifierName(String),
    /// A mechanism that takes no argument was given one (`all`, §5.1).
    #[error("`{0}` takes no argument")]
    UnexpectedArgument(&'static str),
    /// A mechanism that needs `:domain` was given none, or an empty one.
    #[error("`{0}` needs a domain after `:`")]
    MissingDomain(&'static str),
    /// `ip4:`/`ip6:` without an address.
    #[error("`{0}` needs an address after `:`")]
    MissingAddress(&'static str),
    /// Not an IPv4 address in dotted-quad form (§5.6: no leading zeros, four parts).
    #[error("`{}` is not an IPv4 address", shown(.0))]
    Ip4(String),
    /// Not an IPv6 address.
    #[error("`{}` is not an IPv6 address", shown(.0))]
    Ip6(String),
    /// An IPv4 prefix length that is not 0 to 32 without leading zeros.
    #[error("`/{}` is not an IPv4 prefix length (0 to 32)", shown(.0))]
    Cidr4(String),
    /// An IPv6 prefix length that is not 0 to 128 without leading zeros.
    #[error("`/{}` is not an IPv6 prefix length (0 to 128)", shown(.0))]
    Cidr6(String),
    /// An `a`/`mx` argument that is neither `:domain` nor prefix lengths.
    #[error("`{mechanism}` argument `{}` is not `:domain`, `/ip4-prefix` or `//ip6-prefix`", shown(.1), mechanism = .0)]
    Argument(&'static str, String),
    /// A prefix length where the mechanism takes none (`ptr`, `include`, `exists`).
    #[error("`{0}` takes no prefix length")]
    UnexpectedCidr(&'static str),
    /// The domain-spec does not end in `.toplabel` or a macro (§7.1).
    #[error("`{}` does not end in a top-level label (letters, digits and hyphens, not all digits, not starting or ending with a hyphen) or a macro", shown(.0))]
    TopLabel(String),
    /// A literal domain that DNS cannot hold: an empty label, a label over 63 or a
    /// name over 253 characters (RFC 1035 §2.3.4).
    #[error("`{}` is not a valid domain name (empty label, label over 63 or name over 253 characters)", shown(.0))]
    DomainName(String),
    /// `%` not followed by `{`, `%`, `_` or `-` (§7.1).
    #[error("`%` must be followed by {{, %, _ or -")]
    BarePercent,
    /// An unknown or misplaced macro letter (§7.2).
    #[error("macro letter `{0}` is not allowed here (s l o d i p v h; c r t only in explanations)")]
    MacroLetter(char),
    /// A `%{…}` that is not `letter *DIGIT [r] *delimiter` (§7.1).
    #[error("malformed macro `%{{{}`", shown(.0))]
    MacroSyntax(String),
    /// `%{d0}`: the digit transformer must be nonzero (§7.3).
    #[error("macro transformer 0: the number of parts must be nonzero")]
    ZeroParts,
}

/// A string for messages: control characters escaped, at most [`SHOWN`] characters.
fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(SHOWN).flat_map(char::escape_debug).collect();
    if s.chars().count() > SHOWN {
        out.push('…');
    }
    out
}

/// §4.5: a TXT record (its strings joined, §3.3) is an SPF record when it starts
/// with `v=spf1` (ASCII case-insensitive) followed by a space or its end.
pub fn is_spf_record(txt: &[u8]) -> bool {
    txt.len() >= 6 && txt[..6].eq_ignore_ascii_case(b"v=spf1") && (txt.len() == 6 || txt[6] == b' ')
}

/// Parses an SPF record (§4.6): the whole record, so that an error anywhere is
/// found before any term is evaluated (§4.6: "detect-errors-anywhere").
pub fn parse_record(text: &str) -> Result<Record, SyntaxError> {
    if !is_spf_record(text.as_bytes()) {
        return Err(SyntaxError::NotSpf);
    }
    let mut record = Record::default();
    // §4.6.1: terms are separated by one or more spaces, and spaces may trail.
    for term in text[6..].split(' ').filter(|t| !t.is_empty()) {
        parse_term(term, &mut record).map_err(|e| match e {
            Problem::Term(problem) => SyntaxError::Term {
                term: term.to_owned(),
                problem,
            },
            Problem::Duplicate(name) => SyntaxError::DuplicateModifier(name),
        })?;
    }
    Ok(record)
}

/// Parses the text of an explanation TXT record (§6.2): a macro-string in which
/// spaces are literal and the `c`, `r` and `t` macros are allowed.
pub fn parse_explanation(text: &str) -> Result<MacroString, SyntaxError> {
    parse_macro_string(text, MacroContext::Explanation).map_err(SyntaxError::Explanation)
}

enum Problem {
    Term(TermProblem),
    Duplicate(&'static str),
}

impl From<TermProblem> for Problem {
    fn from(p: TermProblem) -> Self {
        Problem::Term(p)
    }
}

fn parse_term(term: &str, record: &mut Record) -> Result<(), Problem> {
    if let Some(c) = term.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(TermProblem::Character(c).into());
    }
    // §4.6.1: a modifier is `name "=" …` with the `=` before any `:` or `/`;
    // anything else is a directive (so `moo.cow/x=y` is an unknown mechanism).
    let first_delim = term.find([':', '/', '=']);
    if let Some(eq) = first_delim.filter(|&i| term.as_bytes()[i] == b'=') {
        return parse_modifier(term, &term[..eq], &term[eq + 1..], record);
    }
    let (qualifier, body) = match term.as_bytes()[0] {
        b'+' => (Qualifier::Pass, &term[1..]),
        b'-' => (Qualifier::Fail, &term[1..]),
        b'~' => (Qualifier::SoftFail, &term[1..]),
        b'?' => (Qualifier::Neutral, &term[1..]),
        _ => (Qualifier::Pass, term),
    };
    let split = body.find([':', '/']).unwrap_or(body.len());
    let (name, rest) = body.split_at(split);
    let mechanism = match name.to_ascii_lowercase().as_str() {
        "all" => {
            if !rest.is_empty() {
                return Err(TermProblem::UnexpectedArgument("all").into());
            }
            Mechanism::All
        }
        "include" => Mechanism::Include(required_domain("include", rest)?),
        "exists" => Mechanism::Exists(required_domain("exists", rest)?),
        "a" => {
            let (domain, cidr) = domain_and_cidr("a", rest)?;
            Mechanism::A { domain, cidr }
        }
        "mx" => {
            let (domain, cidr) = domain_and_cidr("mx", rest)?;
            Mechanism::Mx { domain, cidr }
        }
        "ptr" => match rest.strip_prefix(':') {
            None if rest.is_empty() => Mechanism::Ptr(None),
            None => return Err(TermProblem::UnexpectedCidr("ptr").into()),
            Some("") => return Err(TermProblem::MissingDomain("ptr").into()),
            Some(spec) => Mechanism::Ptr(Some(parse_domain_spec(spec)?)),
        },
        "ip4" => {
            let value = address_value("ip4", rest)?;
            let (addr, prefix) = split_prefix(value);
            let network = parse_ip4(addr).ok_or_else(|| TermProblem::Ip4(addr.to_owned()))?;
            let prefix = match prefix {
                None => 32,
                Some(p) => cidr_value(p, 32).ok_or_else(|| TermProblem::Cidr4(p.to_owned()))?,
            };
            Mechanism::Ip4 { network, prefix }
        }
        "ip6" => {
            let value = address_value("ip6", rest)?;
            let (addr, prefix) = split_prefix(value);
            let network: Ipv6Addr = addr
                .parse()
                .map_err(|_| TermProblem::Ip6(addr.to_owned()))?;
            let prefix = match prefix {
                None => 128,
                Some(p) => cidr_value(p, 128).ok_or_else(|| TermProblem::Cidr6(p.to_owned()))?,
            };
            Mechanism::Ip6 { network, prefix }
        }
        _ => return Err(TermProblem::UnknownMechanism(name.to_owned()).into()),
    };
    record.directives.push(Directive {
        qualifier,
        mechanism,
        text: term.to_owned(),
    });
    Ok(())
}

fn parse_modifier(term: &str, name: &str, value: &str, record: &mut Record) -> Result<(), Problem> {
    let mut chars = name.chars();
    let valid_name = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid_name {
        return Err(TermProblem::ModifierName(name.to_owned()).into());
    }
    // The known modifiers are not "greedy" unknown-modifiers: their value must
    // be a domain-spec (suite: redirect-syntax-error, exp-syntax-error).
    match name.to_ascii_lowercase().as_str() {
        "redirect" => {
            if record.redirect.is_some() {
                return Err(Problem::Duplicate("redirect"));
            }
            if value.is_empty() {
                return Err(TermProblem::MissingDomain("redirect").into());
            }
            record.redirect = Some((parse_domain_spec(value)?, term.to_owned()));
        }
        "exp" => {
            if record.explanation.is_some() {
                return Err(Problem::Duplicate("exp"));
            }
            // Erratum to §6.2: an explicitly empty `exp=` is a permerror.
            if value.is_empty() {
                return Err(TermProblem::MissingDomain("exp").into());
            }
            record.explanation = Some((parse_domain_spec(value)?, term.to_owned()));
        }
        _ => {
            // §6: unknown modifiers are ignored, but must be valid macro-strings.
            let value = parse_macro_string(value, MacroContext::UnknownModifier)?;
            record.unknown_modifiers.push(UnknownModifier {
                name: name.to_owned(),
                value,
                text: term.to_owned(),
            });
        }
    }
    Ok(())
}

/// `":" domain-spec`, required (include, exists).
fn required_domain(mechanism: &'static str, rest: &str) -> Result<DomainSpec, TermProblem> {
    if rest.starts_with('/') {
        return Err(TermProblem::UnexpectedCidr(mechanism));
    }
    match rest.strip_prefix(':') {
        // A `/` inside is part of the domain-spec, whose top label then fails
        // (suite: include-cidr, exists-cidr).
        Some(spec) if !spec.is_empty() => parse_domain_spec(spec),
        _ => Err(TermProblem::MissingDomain(mechanism)),
    }
}

/// `[ ":" domain-spec ] [ dual-cidr-length ]` (a, mx). The prefix lengths are
/// taken from the end, so a `/` inside the domain stays part of it (suite:
/// a-colon-domain).
fn domain_and_cidr(
    mechanism: &'static str,
    rest: &str,
) -> Result<(Option<DomainSpec>, DualCidr), TermProblem> {
    let mut rest = rest;
    let mut cidr = DualCidr::default();
    if let Some(i) = rest.rfind("//") {
        let digits = &rest[i + 2..];
        if is_digits(digits) {
            cidr.v6 =
                cidr_value(digits, 128).ok_or_else(|| TermProblem::Cidr6(digits.to_owned()))?;
            rest = &rest[..i];
        }
    }
    if let Some(i) = rest.rfind('/') {
        let digits = &rest[i + 1..];
        if is_digits(digits) {
            cidr.v4 =
                cidr_value(digits, 32).ok_or_else(|| TermProblem::Cidr4(digits.to_owned()))?;
            rest = &rest[..i];
        }
    }
    if rest.is_empty() {
        return Ok((None, cidr));
    }
    match rest.strip_prefix(':') {
        Some("") => Err(TermProblem::MissingDomain(mechanism)),
        Some(spec) => Ok((Some(parse_domain_spec(spec)?), cidr)),
        // Something between the name and the prefix that is not `:domain`,
        // e.g. `a/24/64`: its `/24` is not `//`.
        None => Err(TermProblem::Argument(mechanism, rest.to_owned())),
    }
}

fn address_value<'a>(mechanism: &'static str, rest: &'a str) -> Result<&'a str, TermProblem> {
    match rest.strip_prefix(':') {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(TermProblem::MissingAddress(mechanism)),
    }
}

/// Splits `addr/prefix` at the first `/`.
fn split_prefix(value: &str) -> (&str, Option<&str>) {
    match value.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (value, None),
    }
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// A prefix length: `"0" / %x31-39 *DIGIT` within `0..=max` (§5.6: no leading
/// zeros, suite: cidr4-032).
fn cidr_value(s: &str, max: u8) -> Option<u8> {
    if !is_digits(s) || s.len() > 3 || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse::<u8>().ok().filter(|v| *v <= max)
}

/// `ip4-network = qnum "." qnum "." qnum "." qnum` (§5.6): four decimal parts
/// without leading zeros (the standard library parser agrees).
fn parse_ip4(s: &str) -> Option<Ipv4Addr> {
    s.parse().ok()
}

/// Parses a domain-spec (§7.1) and checks its domain-end. A spec without macros
/// must also be a name DNS can hold (empty labels and over-long labels are
/// errors of the record's author, reported as syntax).
fn parse_domain_spec(spec: &str) -> Result<DomainSpec, TermProblem> {
    let macros = parse_macro_string(spec, MacroContext::DomainSpec)?;
    match macros.pieces.last() {
        Some(MacroPiece::Macro(_)) | Some(MacroPiece::Escape(_)) => {}
        Some(MacroPiece::Literal(tail)) => {
            let tail = tail.strip_suffix('.').unwrap_or(tail);
            match tail.rsplit_once('.') {
                Some((_, top)) if is_toplabel(top) => {}
                _ => return Err(TermProblem::TopLabel(spec.to_owned())),
            }
        }
        None => return Err(TermProblem::TopLabel(spec.to_owned())),
    }
    let domain = DomainSpec {
        text: spec.to_owned(),
        macros,
    };
    if let Some(name) = domain.literal()
        && !valid_dns_name(name)
    {
        return Err(TermProblem::DomainName(spec.to_owned()));
    }
    Ok(domain)
}

/// `toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum )`
fn is_toplabel(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || !b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-') {
        return false;
    }
    let all_alnum = b.iter().all(u8::is_ascii_alphanumeric);
    let has_alpha = b.iter().any(u8::is_ascii_alphabetic);
    let first = b[0];
    let last = b[b.len() - 1];
    (all_alnum && has_alpha)
        || (first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric() && b.contains(&b'-'))
}

/// RFC 1035 §2.3.4 lengths: labels 1 to 63, the name at most 253 characters.
pub(crate) fn valid_dns_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 253 && name.split('.').all(|l| !l.is_empty() && l.len() <= 63)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MacroContext {
    /// A domain-spec: no spaces, no `c`/`r`/`t`.
    DomainSpec,
    /// An unknown modifier's value: no spaces, any letter (never expanded).
    UnknownModifier,
    /// An explanation string: spaces allowed, any letter.
    Explanation,
}

fn parse_macro_string(s: &str, context: MacroContext) -> Result<MacroString, TermProblem> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut chars = s.char_indices();
    while let Some((_, c)) = chars.next() {
        match c {
            '%' => {
                let piece = match chars.next() {
                    Some((_, '%')) => MacroPiece::Escape("%"),
                    Some((_, '_')) => MacroPiece::Escape(" "),
                    Some((_, '-')) => MacroPiece::Escape("%20"),
                    Some((start, '{')) => {
                        let body_start = start + 1;
                        let mut end = None;
                        for (j, d) in chars.by_ref() {
                            if d == '}' {
                                end = Some(j);
                                break;
                            }
                        }
                        let Some(end) = end else {
                            return Err(TermProblem::MacroSyntax(s[body_start..].to_owned()));
                        };
                        MacroPiece::Macro(parse_macro(&s[body_start..end], context)?)
                    }
                    _ => return Err(TermProblem::BarePercent),
                };
                if !literal.is_empty() {
                    pieces.push(MacroPiece::Literal(std::mem::take(&mut literal)));
                }
                pieces.push(piece);
            }
            ' ' if context == MacroContext::Explanation => literal.push(' '),
            c if c.is_ascii_graphic() => literal.push(c),
            c => return Err(TermProblem::Character(c)),
        }
    }
    if !literal.is_empty() {
        pieces.push(MacroPiece::Literal(literal));
    }
    Ok(MacroString { pieces })
}

/// `macro-letter transformers *delimiter` (the text between `%{` and `}`).
fn parse_macro(body: &str, context: MacroContext) -> Result<Macro, TermProblem> {
    let mut chars = body.chars();
    let Some(letter_char) = chars.next() else {
        return Err(TermProblem::MacroSyntax(format!("{body}}}")));
    };
    let letter =
        MacroLetter::from_char(letter_char).ok_or(TermProblem::MacroLetter(letter_char))?;
    if context == MacroContext::DomainSpec && letter.explanation_only() {
        return Err(TermProblem::MacroLetter(letter_char));
    }
    let rest = chars.as_str();
    let digits_len = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (digits, rest) = rest.split_at(digits_len);
    let keep = if digits.is_empty() {
        None
    } else {
        // Any number of digits is grammatical; more parts than exist means all.
        let n = digits.bytes().fold(0u32, |n, d| {
            n.saturating_mul(10).saturating_add(u32::from(d - b'0'))
        });
        if n == 0 {
            return Err(TermProblem::ZeroParts);
        }
        Some(n)
    };
    let (reverse, rest) = match rest.strip_prefix(['r', 'R']) {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let mut delimiters = Vec::new();
    for d in rest.chars() {
        if matches!(d, '.' | '-' | '+' | ',' | '/' | '_' | '=') {
            if !delimiters.contains(&d) {
                delimiters.push(d);
            }
        } else {
            return Err(TermProblem::MacroSyntax(format!("{body}}}")));
        }
    }
    Ok(Macro {
        letter,
        url_escape: letter_char.is_ascii_uppercase(),
        keep,
        reverse,
        delimiters,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Record {
        parse_record(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn err(text: &str) -> SyntaxError {
        match parse_record(text) {
            Ok(r) => panic!("{text} must be rejected, got {r:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn rfc7208_4_5_selection() {
        assert!(is_spf_record(b"v=spf1"));
        assert!(is_spf_record(b"V=SpF1 -all"));
        assert!(!is_spf_record(b"v=spf10"));
        assert!(!is_spf_record(b"v=spf1mx"));
        assert!(!is_spf_record(b" v=spf1"));
    }

    #[test]
    fn rfc7208_4_6_terms() {
        let r = ok(
            "v=spf1 a  mx:mail.example.com/24//64 ip4:192.0.2.0/24 ip6:2001:db8::/32 -include:_spf.example.net ~exists:%{ir}.x.example.com ?ptr all ",
        );
        assert_eq!(r.directives.len(), 8);
        assert_eq!(
            r.directives[1].mechanism,
            Mechanism::Mx {
                domain: Some(DomainSpec {
                    text: "mail.example.com".into(),
                    macros: MacroString {
                        pieces: vec![MacroPiece::Literal("mail.example.com".into())]
                    }
                }),
                cidr: DualCidr { v4: 24, v6: 64 }
            }
        );
        assert_eq!(r.directives[4].qualifier, Qualifier::Fail);
        assert!(r.has_all());
        assert!(ok("v=spf1").directives.is_empty());
        assert!(
            ok("v=spf1 moo.cow-far_out=man:dog/cat")
                .unknown_modifiers
                .len()
                == 1
        );
    }

    #[test]
    fn rfc7208_5_syntax_errors() {
        for bad in [
            "v=spf1 -all.",
            "v=spf1 -all:foobar",
            "v=spf1 -all/8",
            "v=spf1 ptr/0",
            "v=spf1 ptr:",
            "v=spf1 a/33",
            "v=spf1 a//129",
            "v=spf1 a/24/64",
            "v=spf1 a:example.com:8080",
            "v=spf1 a:foo-bar",
            "v=spf1 a:111.222.33.44",
            "v=spf1 a:abc.123",
            "v=spf1 a:museum",
            "v=spf1 a:museum.",
            "v=spf1 a:example.-com",
            "v=spf1 a:",
            "v=spf1 a:foo.example.com\0",
            "v=spf1 include",
            "v=spf1 include:",
            "v=spf1 include:ip5.example.com/24",
            "v=spf1 exists",
            "v=spf1 exists:mail.example.com/24",
            "v=spf1 ip4",
            "v=spf1 ip4:1.2.3.4/33",
            "v=spf1 ip4:1.2.3.4/032",
            "v=spf1 ip4:1.2.3.4//32",
            "v=spf1 ip4:1.2.3.4:8080",
            "v=spf1 ip4:1.2.3",
            "v=spf1 ip6",
            "v=spf1 ip6:::1.1.1.1/129",
            "v=spf1 ip6:::1.1.1.1//33",
            "v=spf1 ip6::CAFE::BABE",
            "v=spf1 redirect:t2.example.com",
            "v=spf1 moo.cow/far_out=man:dog/cat",
            "v=spf1 1up=foo",
            "v=spf1 =all",
            "v=spf1 foo=%abc",
            "v=spf1 exp=",
            "v=spf1 exp=-all",
            "v=spf1 redirect=",
            "v=spf1 redirect=-all",
            "v=spf1 exp=a.example.com exp=b.example.com",
            "v=spf1 -all exp=%{r}.example.com",
            "v=spf1 -exists:%(ir).sbl.example.com",
            "v=spf1 exists:foo%.sbl.example.com",
            "v=spf1 a:%{a}.example.com",
            "v=spf1 a:%{d0}.example.com",
            "v=spf1 a:mail.example...com",
            "v=spf1 a:ctrl.example.com\rptr",
            "v=spf1 ip4:192.0.2.5\n",
            "v=spf1 \u{80}a:example.net",
        ] {
            err(bad);
        }
    }

    #[test]
    fn rfc7208_7_1_macros() {
        let r = ok("v=spf1 exists:%{l2r+-}.user.%{D2}");
        let Mechanism::Exists(spec) = &r.directives[0].mechanism else {
            panic!("exists");
        };
        let MacroPiece::Macro(m) = &spec.macros.pieces[0] else {
            panic!("macro");
        };
        assert_eq!(
            (
                m.letter,
                m.keep,
                m.reverse,
                m.delimiters.clone(),
                m.url_escape
            ),
            (MacroLetter::LocalPart, Some(2), true, vec!['+', '-'], false)
        );
        assert!(
            ok("v=spf1 a:macro%%percent%_%_space%-url-space.example.com")
                .directives
                .len()
                == 1
        );
        assert!(ok("v=spf1 a:foo:bar/baz.example.com").directives.len() == 1);
        assert!(ok("v=spf1 a:foo.example.xn--zckzah").directives.len() == 1);
        assert!(parse_explanation("The %{x}-files.").is_err());
        assert!(parse_explanation("%{c} is queried as %{ir}.%{v}.arpa").is_ok());
    }

    #[test]
    fn errors_name_the_term_escaped() {
        let e = err("v=spf1 ip4:1.2.3.4 a:\u{1b}[31m.example.com -all");
        let msg = e.to_string();
        assert!(!msg.contains('\u{1b}'), "{msg}");
        assert_eq!(e.term(), Some("a:\u{1b}[31m.example.com"));
    }
}
