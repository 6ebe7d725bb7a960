//! Typed outcomes of one DNS question.
//!
//! Every check matches [`Answer`] exhaustively: "no such name", "no records of
//! that type" and "could not find out" are different facts, and only the first
//! two may ever become a "record missing" finding (design.md, style rule 4).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use crate::RType;

/// The outcome of one question `(name, type)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// The server answered with at least one record. CNAME records met on the way
    /// are kept, in order, before the records of the asked type.
    Records(RecordSet),
    /// NXDOMAIN: the name does not exist (RFC 1035 §4.1.1 RCODE 3).
    NxDomain {
        /// The negative-caching TTL from the SOA in the authority section (RFC 2308 §5).
        negative_ttl: Option<u32>,
    },
    /// NOERROR with an empty answer: the name exists, but has no record of this type
    /// (RFC 2308 §2.2, "NODATA").
    NoData {
        /// The negative-caching TTL from the SOA in the authority section.
        negative_ttl: Option<u32>,
    },
    /// No usable answer: the question could not be decided.
    Failed(LookupFailure),
}

/// Why a question could not be decided. Never the same as "no record".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LookupFailure {
    /// SERVFAIL (RCODE 2): the server could not answer (broken delegation, DNSSEC failure).
    ServFail,
    /// REFUSED (RCODE 5): the server will not answer this question.
    Refused,
    /// No answer within the configured timeout and attempts.
    Timeout,
    /// No server could be reached (I/O error, no connection).
    Unreachable(String),
    /// The name could not be asked (invalid label) or the reply could not be decoded.
    Malformed(String),
    /// Any other response code (FORMERR, NOTIMP, …).
    OtherRcode(String),
}

impl fmt::Display for LookupFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LookupFailure::ServFail => f.write_str("SERVFAIL"),
            LookupFailure::Refused => f.write_str("REFUSED"),
            LookupFailure::Timeout => f.write_str("timeout"),
            LookupFailure::Unreachable(why) => write!(f, "unreachable ({why})"),
            LookupFailure::Malformed(why) => write!(f, "malformed ({why})"),
            LookupFailure::OtherRcode(rc) => write!(f, "response code {rc}"),
        }
    }
}

impl Answer {
    /// A short, stable description for evidence lines: `NXDOMAIN`, `NODATA`, `SERVFAIL`, …
    pub fn describe(&self) -> String {
        match self {
            Answer::Records(set) => format!("{} record(s)", set.len()),
            Answer::NxDomain { .. } => "NXDOMAIN".to_owned(),
            Answer::NoData { .. } => "NODATA".to_owned(),
            Answer::Failed(why) => why.to_string(),
        }
    }
}

/// The data of one resource record, in the types mxaudit reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rdata {
    /// IPv4 address.
    A(Ipv4Addr),
    /// IPv6 address.
    Aaaa(Ipv6Addr),
    /// Mail exchanger (RFC 1035 §3.3.9). `exchange` is a lowercase FQDN with the
    /// trailing dot; the null MX of RFC 7505 is `"."`.
    Mx {
        /// Lower is preferred.
        preference: u16,
        /// The host name.
        exchange: String,
    },
    /// The character-strings of a TXT record, as sent (not joined).
    Txt(Vec<Vec<u8>>),
    /// Pointer to a name (reverse DNS).
    Ptr(String),
    /// Alias to a canonical name.
    Cname(String),
    /// Name server.
    Ns(String),
    /// Start of authority.
    Soa {
        /// Primary name server.
        mname: String,
        /// Negative-caching TTL (RFC 2308 §4).
        minimum: u32,
    },
    /// TLS association (RFC 6698 §2.1), the fields as published.
    Tlsa {
        /// Certificate usage (0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE).
        usage: u8,
        /// Selector (0 full certificate, 1 SubjectPublicKeyInfo).
        selector: u8,
        /// Matching type (0 exact, 1 SHA-256, 2 SHA-512).
        matching: u8,
        /// Certificate association data.
        data: Vec<u8>,
    },
    /// Any other type, in presentation format.
    Other {
        /// The record type.
        rtype: String,
        /// The data in presentation format.
        text: String,
    },
}

impl Rdata {
    /// The type of this record.
    pub fn rtype(&self) -> RType {
        match self {
            Rdata::A(_) => RType::A,
            Rdata::Aaaa(_) => RType::Aaaa,
            Rdata::Mx { .. } => RType::Mx,
            Rdata::Txt(_) => RType::Txt,
            Rdata::Ptr(_) => RType::Ptr,
            Rdata::Cname(_) => RType::Cname,
            Rdata::Ns(_) => RType::Ns,
            Rdata::Soa { .. } => RType::Soa,
            Rdata::Tlsa { .. } => RType::Tlsa,
            Rdata::Other { rtype, .. } => rtype.parse().unwrap_or(RType::Other),
        }
    }
}

impl fmt::Display for Rdata {
    /// Presentation format, with TXT strings quoted and escaped so that a record
    /// cannot smuggle control characters into evidence.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rdata::A(ip) => write!(f, "{ip}"),
            Rdata::Aaaa(ip) => write!(f, "{ip}"),
            Rdata::Mx {
                preference,
                exchange,
            } => write!(f, "{preference} {exchange}"),
            Rdata::Txt(strings) => {
                let mut first = true;
                for s in strings {
                    if !first {
                        f.write_str(" ")?;
                    }
                    first = false;
                    f.write_str("\"")?;
                    for &b in s {
                        match b {
                            b'"' => f.write_str("\\\"")?,
                            b'\\' => f.write_str("\\\\")?,
                            0x20..=0x7e => write!(f, "{}", b as char)?,
                            _ => write!(f, "\\{b:03}")?,
                        }
                    }
                    f.write_str("\"")?;
                }
                Ok(())
            }
            Rdata::Ptr(n) | Rdata::Cname(n) | Rdata::Ns(n) => f.write_str(n),
            Rdata::Soa { mname, minimum } => write!(f, "{mname} (minimum {minimum})"),
            Rdata::Tlsa {
                usage,
                selector,
                matching,
                data,
            } => {
                // RFC 6698 §2.2: the data as hexadecimal (upper case, as hickory writes it).
                write!(f, "{usage} {selector} {matching} ")?;
                data.iter().try_for_each(|b| write!(f, "{b:02X}"))
            }
            Rdata::Other { text, .. } => f.write_str(text),
        }
    }
}

/// One resource record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    /// Owner name, lowercase FQDN with the trailing dot.
    pub name: String,
    /// Time to live in seconds.
    pub ttl: u32,
    /// The data.
    pub data: Rdata,
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            self.name,
            self.ttl,
            self.data.rtype(),
            self.data
        )
    }
}

/// The records of a positive answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(transparent)]
pub struct RecordSet(pub Vec<Record>);

impl RecordSet {
    /// Number of records, CNAMEs included.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// True when there is no record at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// All records.
    pub fn iter(&self) -> std::slice::Iter<'_, Record> {
        self.0.iter()
    }
    /// The CNAME records met on the way (owner, target), in chain order.
    pub fn cnames(&self) -> Vec<(&str, &str)> {
        self.0
            .iter()
            .filter_map(|r| match &r.data {
                Rdata::Cname(t) => Some((r.name.as_str(), t.as_str())),
                _ => None,
            })
            .collect()
    }
    /// MX records as (preference, exchange, ttl).
    pub fn mx(&self) -> Vec<(u16, &str, u32)> {
        self.0
            .iter()
            .filter_map(|r| match &r.data {
                Rdata::Mx {
                    preference,
                    exchange,
                } => Some((*preference, exchange.as_str(), r.ttl)),
                _ => None,
            })
            .collect()
    }
    /// IPv4 and IPv6 addresses, in answer order.
    pub fn addresses(&self) -> Vec<std::net::IpAddr> {
        self.0
            .iter()
            .filter_map(|r| match &r.data {
                Rdata::A(ip) => Some(std::net::IpAddr::V4(*ip)),
                Rdata::Aaaa(ip) => Some(std::net::IpAddr::V6(*ip)),
                _ => None,
            })
            .collect()
    }
    /// Each TXT record's strings joined with no separator (RFC 7208 §3.3,
    /// RFC 7489 §6.4), as bytes: TXT data need not be UTF-8.
    pub fn txt_joined(&self) -> Vec<Vec<u8>> {
        self.0
            .iter()
            .filter_map(|r| match &r.data {
                Rdata::Txt(strings) => Some(strings.concat()),
                _ => None,
            })
            .collect()
    }
    /// PTR targets.
    pub fn ptr_names(&self) -> Vec<&str> {
        self.0
            .iter()
            .filter_map(|r| match &r.data {
                Rdata::Ptr(n) => Some(n.as_str()),
                _ => None,
            })
            .collect()
    }
    /// The records whose type is `rtype` (CNAMEs excluded unless asked for).
    pub fn of_type(&self, rtype: RType) -> Vec<&Record> {
        self.0.iter().filter(|r| r.data.rtype() == rtype).collect()
    }
    /// The smallest TTL among the records of `rtype`, if any.
    pub fn min_ttl(&self, rtype: RType) -> Option<u32> {
        self.of_type(rtype).iter().map(|r| r.ttl).min()
    }
}
