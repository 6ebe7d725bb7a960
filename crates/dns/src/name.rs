//! Domain names as mxaudit handles them: lowercase ASCII (IDNA-encoded), absolute,
//! within the limits of RFC 1035 §2.3.4.

use std::fmt;
use std::net::IpAddr;

use hickory_resolver::proto::rr::Name;

/// A validated, lowercase, absolute domain name (`example.com.`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct DomainName(String);

/// Why a string is not a usable domain name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// Empty input.
    #[error("empty domain name")]
    Empty,
    /// A label is empty or longer than 63 octets (RFC 1035 §2.3.4).
    #[error("invalid domain name `{name}`: label `{label}` must be 1 to 63 characters")]
    Label {
        /// The input, escaped.
        name: String,
        /// The label, escaped.
        label: String,
    },
    /// The whole name is longer than 253 characters (255 octets on the wire).
    #[error("invalid domain name `{0}`: longer than 253 characters")]
    TooLong(String),
    /// A character that host names may not contain.
    #[error("invalid domain name `{name}`: character {ch:?} is not allowed")]
    Character {
        /// The input, escaped.
        name: String,
        /// The character.
        ch: char,
    },
    /// IDNA conversion failed.
    #[error("invalid domain name `{0}`: not a valid internationalised name")]
    Idna(String),
}

fn escaped(s: &str) -> String {
    s.chars().flat_map(char::escape_debug).take(300).collect()
}

impl DomainName {
    /// Parses a host or domain name typed by a user or found in configuration:
    /// letters, digits, `-` and `_` (for `_dmarc`-style labels); internationalised
    /// names are converted to their ASCII form (IDNA).
    pub fn parse(input: &str) -> Result<DomainName, NameError> {
        let trimmed = input.trim();
        if trimmed.is_empty() || trimmed == "." {
            return Err(NameError::Empty);
        }
        let ascii = if trimmed.is_ascii() {
            trimmed.to_ascii_lowercase()
        } else {
            Name::from_utf8(trimmed)
                .map_err(|_| NameError::Idna(escaped(trimmed)))?
                .to_ascii()
                .to_ascii_lowercase()
        };
        for ch in ascii.chars() {
            if !(ch.is_ascii_alphanumeric() || ch == '-' || ch == '_' || ch == '.') {
                return Err(NameError::Character {
                    name: escaped(trimmed),
                    ch,
                });
            }
        }
        Self::checked(&ascii, trimmed)
    }

    /// Parses a name built by a protocol rule (SPF macro expansion, DNSBL query
    /// names): any printable ASCII except space is allowed in labels, as DNS itself
    /// allows (RFC 2181 §11); only the length limits apply.
    pub fn parse_relaxed(input: &str) -> Result<DomainName, NameError> {
        if input.is_empty() || input == "." {
            return Err(NameError::Empty);
        }
        for ch in input.chars() {
            if !ch.is_ascii_graphic() {
                return Err(NameError::Character {
                    name: escaped(input),
                    ch,
                });
            }
        }
        Self::checked(&input.to_ascii_lowercase(), input)
    }

    fn checked(ascii: &str, original: &str) -> Result<DomainName, NameError> {
        let bare = ascii.strip_suffix('.').unwrap_or(ascii);
        if bare.len() > 253 {
            return Err(NameError::TooLong(escaped(original)));
        }
        for label in bare.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(NameError::Label {
                    name: escaped(original),
                    label: escaped(label),
                });
            }
        }
        Ok(DomainName(format!("{bare}.")))
    }

    /// The name with its trailing dot: `example.com.`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name without the trailing dot, as users write it: `example.com`.
    pub fn bare(&self) -> &str {
        self.0.strip_suffix('.').unwrap_or(&self.0)
    }

    /// The labels, left to right.
    pub fn labels(&self) -> impl DoubleEndedIterator<Item = &str> {
        self.bare().split('.')
    }

    /// Number of labels.
    pub fn label_count(&self) -> usize {
        self.labels().count()
    }

    /// `prefix` + `.` + this name, e.g. `_dmarc` + `example.com.`.
    pub fn prepend(&self, prefix: &str) -> Result<DomainName, NameError> {
        Self::parse_relaxed(&format!("{prefix}.{}", self.0))
    }

    /// The parent name (one label less), or `None` for a single label.
    pub fn parent(&self) -> Option<DomainName> {
        let bare = self.bare();
        bare.split_once('.')
            .map(|(_, rest)| DomainName(format!("{rest}.")))
    }

    /// True when this name equals `other` or lies below it.
    pub fn is_subdomain_of(&self, other: &DomainName) -> bool {
        self.0 == other.0 || self.0.ends_with(&format!(".{}", other.0))
    }
}

impl fmt::Display for DomainName {
    /// Shown without the trailing dot, as users write names.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.bare())
    }
}

/// The reverse-lookup labels of an address, without a zone: `4.3.2.1` for
/// 1.2.3.4, or 32 nibbles for IPv6 (RFC 3596 §2.5, RFC 5782 §2.4).
pub fn reverse_labels(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut out = String::with_capacity(64);
            for byte in v6.octets().iter().rev() {
                for nibble in [byte & 0x0f, byte >> 4] {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
                }
            }
            out
        }
    }
}

/// The PTR name of an address: `4.3.2.1.in-addr.arpa.` or `….ip6.arpa.`.
pub fn reverse_name(ip: IpAddr) -> DomainName {
    let zone = match ip {
        IpAddr::V4(_) => "in-addr.arpa",
        IpAddr::V6(_) => "ip6.arpa",
    };
    DomainName(format!("{}.{zone}.", reverse_labels(ip)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let n = DomainName::parse("Example.COM").expect("valid");
        assert_eq!(n.as_str(), "example.com.");
        assert_eq!(n.to_string(), "example.com");
        assert_eq!(
            n.prepend("_dmarc").expect("valid").as_str(),
            "_dmarc.example.com."
        );
        assert_eq!(n.parent().expect("parent").as_str(), "com.");
    }

    #[test]
    fn rejects_bad_names() {
        assert!(DomainName::parse("").is_err());
        assert!(DomainName::parse("a..b").is_err());
        assert!(DomainName::parse("exa mple.com").is_err());
        assert!(DomainName::parse(&format!("{}.com", "a".repeat(64))).is_err());
        assert!(DomainName::parse(&"a.".repeat(130)).is_err());
        assert!(DomainName::parse("evil\u{1b}[31m.com").is_err());
    }

    #[test]
    fn idna() {
        let n = DomainName::parse("bücher.example").expect("valid");
        assert_eq!(n.as_str(), "xn--bcher-kva.example.");
    }

    #[test]
    fn reverse() {
        assert_eq!(
            reverse_name("192.0.2.10".parse().expect("ip")).as_str(),
            "10.2.0.192.in-addr.arpa."
        );
        let v6 = reverse_labels("2001:db8::1".parse().expect("ip"));
        assert!(
            v6.starts_with("1.0.0.0.") && v6.ends_with(".8.b.d.0.1.0.0.2"),
            "{v6}"
        );
        assert_eq!(v6.split('.').count(), 32);
    }
}
