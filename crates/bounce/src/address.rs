//! Mail addresses in bounce text: found in a line, cleaned of the wrappings
//! generators put around them (`<…>`, quotes, `SMTP=` of X.400 gateways,
//! `mailto:`, a procmail `#` comment marker), and checked to be an address
//! (RFC 5321 §4.1.2 Mailbox, simplified) rather than a pipe command or a name.

use std::sync::OnceLock;

use regex::Regex;

fn address_re() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-]+@(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*)",
        )
        .ok()
    })
    .as_ref()
}

fn url_re() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"(?i)\b(?:https?|ftp)://\S+").ok())
        .as_ref()
}

/// Prefixes that wrap an address without being part of it.
const WRAPPERS: &[&str] = &["smtp=", "smtp:", "mailto:", "rfc822;", "rfc822:"];

/// Cleans one address value. `need_dot`: the domain must have a dot (a bare
/// local host name like `userx@sims-ms-daemon` is an internal mailbox).
pub(crate) fn clean(value: &str, need_dot: bool) -> Option<String> {
    let mut v = value.trim();
    // `Name <user@example.org>`: the angle part.
    if let Some(open) = v.rfind('<')
        && let Some(close) = v[open..].find('>')
    {
        v = &v[open + 1..open + close];
    }
    let mut v = v
        .trim()
        .trim_matches(|c: char| {
            matches!(
                c,
                '<' | '>' | '"' | '\'' | '[' | ']' | '(' | ')' | ',' | ';' | '*'
            )
        })
        .trim_end_matches(['.', ':']);
    loop {
        let lower = v.to_ascii_lowercase();
        match WRAPPERS.iter().find(|w| lower.starts_with(*w)) {
            Some(w) => v = v[w.len()..].trim_start(),
            None => break,
        }
    }
    // A procmail recipe line ends with `#user` as a comment; `#user@example.org`
    // is the address after that marker.
    let v = v.trim_start_matches('#');
    if v.is_empty() || v.len() > 320 || v.starts_with('|') || v.starts_with('/') {
        return None;
    }
    if v.chars().any(|c| {
        c.is_whitespace()
            || c.is_control()
            || matches!(c, '<' | '>' | '"' | '(' | ')' | ',' | ';' | '\\' | '|')
    }) {
        return None;
    }
    let (local, domain) = v.rsplit_once('@')?;
    if local.is_empty() || local.len() > 64 || local.contains('@') || local.starts_with('.') {
        return None;
    }
    let domain_ok = if domain.starts_with('[') && domain.ends_with(']') {
        domain.len() > 2
    } else {
        !domain.is_empty()
            && domain.len() <= 253
            && domain.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || !c.is_ascii())
            })
            && (!need_dot || domain.contains('.'))
            && domain
                .chars()
                .any(|c| c.is_ascii_alphabetic() || !c.is_ascii())
    };
    domain_ok.then(|| v.to_owned())
}

/// Addresses in a line with their byte ranges; addresses inside URLs are skipped.
pub(crate) fn find_all(line: &str) -> Vec<(usize, usize, String)> {
    let Some(re) = address_re() else {
        return Vec::new();
    };
    let urls: Vec<(usize, usize)> = url_re()
        .map(|u| u.find_iter(line).map(|m| (m.start(), m.end())).collect())
        .unwrap_or_default();
    re.find_iter(line)
        .take(100)
        .filter(|m| !urls.iter().any(|(s, e)| m.start() >= *s && m.end() <= *e))
        .filter_map(|m| clean(m.as_str(), true).map(|a| (m.start(), m.end(), a)))
        .collect()
}

/// The domain of an address in `user@domain`, `<user@domain>` or `Name <user@domain>` form.
pub fn domain_of(address: &str) -> Option<String> {
    let a = address.rsplit('<').next()?.split('>').next()?.trim();
    let (_, d) = a.rsplit_once('@')?;
    let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = !d.is_empty()
        && d.len() <= 253
        && d.contains('.')
        && d.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    ok.then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_wrappers() {
        assert_eq!(
            clean("<a@example.org>", true).as_deref(),
            Some("a@example.org")
        );
        assert_eq!(
            clean("SMTP=userx@example.COM", true).as_deref(),
            Some("userx@example.COM")
        );
        assert_eq!(
            clean("[SMTP:userx@example.com]", true).as_deref(),
            Some("userx@example.com")
        );
        assert_eq!(
            clean("#kaz@example.jp", true).as_deref(),
            Some("kaz@example.jp")
        );
        assert_eq!(
            clean("mango-=#43@panda.com", true).as_deref(),
            Some("mango-=#43@panda.com")
        );
        assert_eq!(clean("\"|/usr/bin/procmail #kaz\"", true), None);
        assert_eq!(clean("userx@sims-ms-daemon", true), None);
        assert_eq!(
            clean("userx@sims-ms-daemon", false).as_deref(),
            Some("userx@sims-ms-daemon")
        );
        assert_eq!(clean("Summary", false), None);
        assert_eq!(clean("x@evil\u{1b}.com", true), None);
    }

    #[test]
    fn finds_addresses_but_not_in_urls() {
        let found =
            find_all("<a@example.org>: see https://x.example/?a=b@example.net now c@example.com.");
        let list: Vec<&str> = found.iter().map(|(_, _, a)| a.as_str()).collect();
        assert_eq!(list, ["a@example.org", "c@example.com"]);
    }

    #[test]
    fn domains() {
        assert_eq!(
            domain_of("Scott <Scott@contoso.onmicrosoft.com>").as_deref(),
            Some("contoso.onmicrosoft.com")
        );
        assert_eq!(
            domain_of("user@Example.COM.").as_deref(),
            Some("example.com")
        );
        assert_eq!(domain_of("no-at-sign"), None);
        assert_eq!(domain_of("x@evil\u{1b}.com"), None);
    }
}
