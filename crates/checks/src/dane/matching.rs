//! TLSA records against a certificate chain: RFC 6698 §2.1 (fields), RFC 7671
//! (operational rules) and RFC 7672 §3 (what SMTP uses). Pure: no I/O.
//!
//! SMTP senders use only DANE-TA(2) and DANE-EE(3) (RFC 7672 §3.1.3: PKIX-TA(0)
//! and PKIX-EE(1) are unusable, there being no agreed set of public CAs for
//! SMTP), selectors Cert(0) and SPKI(1), and matching types Full(0),
//! SHA2-256(1) and SHA2-512(2).
//!
//! - DANE-EE(3): the end-entity certificate (or its key) matches; no name and
//!   no validity dates are checked (RFC 7672 §3.1.1).
//! - DANE-TA(2): a certificate the server sends (RFC 7671 §5.2.2: it must
//!   send the trust anchor) matches, and the end-entity certificate chains to
//!   it, is in date and names the MX host (RFC 7672 §3.1.2, §3.2.2). The chain
//!   is verified by webpki with that certificate as the only trust anchor.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256, Sha512};

/// One TLSA record (RFC 6698 §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlsa {
    /// Certificate usage.
    pub usage: u8,
    /// Selector.
    pub selector: u8,
    /// Matching type.
    pub matching: u8,
    /// Certificate association data.
    pub data: Vec<u8>,
}

impl std::fmt::Display for Tlsa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {} ", self.usage, self.selector, self.matching)?;
        self.data.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Why a record cannot be used by an SMTP sender; `None` when it can.
pub fn unusable(t: &Tlsa) -> Option<String> {
    let usage = match t.usage {
        0 => Some("usage 0 (PKIX-TA) is not used for SMTP (RFC 7672 §3.1.3)".to_owned()),
        1 => Some("usage 1 (PKIX-EE) is not used for SMTP (RFC 7672 §3.1.3)".to_owned()),
        2 | 3 => None,
        u => Some(format!("usage {u} is not defined (RFC 6698 §2.1.1)")),
    };
    if usage.is_some() {
        return usage;
    }
    if t.selector > 1 {
        return Some(format!(
            "selector {} is not defined (RFC 6698 §2.1.2)",
            t.selector
        ));
    }
    let digest_len = match t.matching {
        0 => None,
        1 => Some(32),
        2 => Some(64),
        m => {
            return Some(format!(
                "matching type {m} is not defined (RFC 6698 §2.1.3)"
            ));
        }
    };
    match digest_len {
        Some(len) if t.data.len() != len => Some(format!(
            "matching type {} needs {len} bytes of digest, the record has {}",
            t.matching,
            t.data.len()
        )),
        _ if t.data.is_empty() => Some("the association data is empty".to_owned()),
        _ => None,
    }
}

/// How one usable record fared against the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The record matches the certificate at this position of the chain
    /// (0: the end entity), and for DANE-TA the chain verifies.
    Matches(usize),
    /// No certificate of the chain matches the record.
    NoMatch,
    /// DANE-TA: a certificate matches, but the end entity does not chain to
    /// it, is out of date, or does not name the host.
    ChainInvalid {
        /// Where the trust anchor is in the chain.
        anchor: usize,
        /// webpki's reason.
        reason: String,
    },
    /// The record is not for SMTP or malformed ([`unusable`]).
    Unusable(String),
}

/// The association data of a certificate under a selector and matching type.
pub fn association(cert: &[u8], selector: u8, matching: u8) -> Option<Vec<u8>> {
    let selected: Vec<u8> = match selector {
        0 => cert.to_vec(),
        1 => spki(cert)?,
        _ => return None,
    };
    match matching {
        0 => Some(selected),
        1 => Some(Sha256::digest(&selected).to_vec()),
        2 => Some(Sha512::digest(&selected).to_vec()),
        _ => None,
    }
}

/// The DER SubjectPublicKeyInfo of a certificate (RFC 5280 §4.1.2.7).
fn spki(cert: &[u8]) -> Option<Vec<u8>> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).ok()?;
    Some(parsed.tbs_certificate.subject_pki.raw.to_vec())
}

/// Each record's verdict against `chain` (end entity first), for an MX `host`.
pub fn match_chain(
    records: &[Tlsa],
    chain: &[CertificateDer<'_>],
    host: &str,
    now: UnixTime,
) -> Vec<Verdict> {
    records
        .iter()
        .map(|t| match unusable(t) {
            Some(why) => Verdict::Unusable(why),
            None => one(t, chain, host, now),
        })
        .collect()
}

fn matches(t: &Tlsa, cert: &CertificateDer<'_>) -> bool {
    association(cert.as_ref(), t.selector, t.matching).is_some_and(|a| a == t.data)
}

fn one(t: &Tlsa, chain: &[CertificateDer<'_>], host: &str, now: UnixTime) -> Verdict {
    let Some(ee) = chain.first() else {
        return Verdict::NoMatch;
    };
    if t.usage == 3 {
        return if matches(t, ee) {
            Verdict::Matches(0)
        } else {
            Verdict::NoMatch
        };
    }
    // DANE-TA: the anchor is one of the issuers the server sent.
    let Some(anchor) = (1..chain.len()).find(|&i| matches(t, &chain[i])) else {
        return Verdict::NoMatch;
    };
    match verify_to_anchor(chain, anchor, host, now) {
        Ok(()) => Verdict::Matches(anchor),
        Err(reason) => Verdict::ChainInvalid { anchor, reason },
    }
}

fn verify_to_anchor(
    chain: &[CertificateDer<'_>],
    anchor: usize,
    host: &str,
    now: UnixTime,
) -> Result<(), String> {
    let mut roots = RootCertStore::empty();
    roots
        .add(chain[anchor].clone().into_owned())
        .map_err(|e| format!("the trust anchor certificate cannot be used: {e}"))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from(host.trim_end_matches('.').to_owned())
        .map_err(|e| format!("{host}: {e}"))?;
    let intermediates: Vec<CertificateDer<'_>> = chain[1..anchor].to_vec();
    verifier
        .verify_server_cert(&chain[0], &intermediates, &name, &[], now)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxaudit_testbed::certs::{TestCa, Validity, self_signed};

    fn now() -> UnixTime {
        UnixTime::now()
    }

    fn rec(usage: u8, selector: u8, matching: u8, data: Vec<u8>) -> Tlsa {
        Tlsa {
            usage,
            selector,
            matching,
            data,
        }
    }

    #[test]
    fn dane_ee_matches_the_key_or_the_certificate_by_every_matching_type() {
        let cert = self_signed(&["mx.example.test"], Validity::Current).expect("cert");
        let ee = cert.chain[0].as_ref();
        let other = self_signed(&["mx.example.test"], Validity::Current).expect("cert");
        for selector in [0, 1] {
            for matching in [0, 1, 2] {
                let data = association(ee, selector, matching).expect("association");
                let good = rec(3, selector, matching, data);
                assert_eq!(
                    match_chain(
                        std::slice::from_ref(&good),
                        &cert.chain,
                        "mx.example.test",
                        now()
                    ),
                    vec![Verdict::Matches(0)],
                    "3 {selector} {matching}"
                );
                assert_eq!(
                    match_chain(&[good], &other.chain, "mx.example.test", now()),
                    vec![Verdict::NoMatch],
                    "another key: 3 {selector} {matching}"
                );
            }
        }
    }

    #[test]
    fn dane_ee_ignores_names_and_dates() {
        // RFC 7672 §3.1.1: an expired certificate for another name still matches.
        let cert = self_signed(&["elsewhere.test"], Validity::Expired).expect("cert");
        let spki = association(cert.chain[0].as_ref(), 1, 1).expect("spki");
        assert_eq!(
            match_chain(&[rec(3, 1, 1, spki)], &cert.chain, "mx.example.test", now()),
            vec![Verdict::Matches(0)]
        );
    }

    #[test]
    fn spki_digest_is_of_the_subject_public_key_info() {
        let cert = self_signed(&["mx.example.test"], Validity::Current).expect("cert");
        let (_, parsed) =
            x509_parser::parse_x509_certificate(cert.chain[0].as_ref()).expect("parses");
        let raw = parsed.tbs_certificate.subject_pki.raw;
        // A DER SEQUENCE, shorter than the certificate, and what is hashed.
        assert_eq!(raw[0], 0x30);
        assert!(raw.len() < cert.chain[0].as_ref().len());
        assert_eq!(
            association(cert.chain[0].as_ref(), 1, 1),
            Some(Sha256::digest(raw).to_vec())
        );
        assert_eq!(
            association(cert.chain[0].as_ref(), 1, 0),
            Some(raw.to_vec())
        );
    }

    #[test]
    fn dane_ta_needs_the_anchor_in_the_chain_a_valid_chain_and_the_host_name() {
        let ca = TestCa::new("Test DANE TA").expect("ca");
        let good = ca
            .issue(&["mx.example.test"], Validity::Current)
            .expect("cert");
        let ta = association(ca.der().as_ref(), 1, 1).expect("ta");
        let record = rec(2, 1, 1, ta.clone());
        assert_eq!(
            match_chain(
                std::slice::from_ref(&record),
                &good.chain,
                "mx.example.test",
                now()
            ),
            vec![Verdict::Matches(1)]
        );
        // Full certificate, SHA-512.
        let full = rec(2, 0, 2, association(ca.der().as_ref(), 0, 2).expect("full"));
        assert_eq!(
            match_chain(&[full], &good.chain, "mx.example.test", now()),
            vec![Verdict::Matches(1)]
        );
        // The anchor matches, but the certificate names another host.
        match &match_chain(
            std::slice::from_ref(&record),
            &good.chain,
            "mx.other.test",
            now(),
        )[..]
        {
            [Verdict::ChainInvalid { anchor: 1, reason }] => {
                assert!(reason.contains("not valid for name"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        // Expired end entity under the anchor.
        let expired = ca
            .issue(&["mx.example.test"], Validity::Expired)
            .expect("cert");
        match &match_chain(
            std::slice::from_ref(&record),
            &expired.chain,
            "mx.example.test",
            now(),
        )[..]
        {
            [Verdict::ChainInvalid { reason, .. }] => {
                assert!(reason.contains("expired"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        // The server omits the anchor: no match (RFC 7671 §5.2.2).
        let alone = vec![good.chain[0].clone()];
        assert_eq!(
            match_chain(
                std::slice::from_ref(&record),
                &alone,
                "mx.example.test",
                now()
            ),
            vec![Verdict::NoMatch]
        );
        // Another CA's chain.
        let other = TestCa::new("Other CA").expect("ca");
        let theirs = other
            .issue(&["mx.example.test"], Validity::Current)
            .expect("cert");
        assert_eq!(
            match_chain(&[record], &theirs.chain, "mx.example.test", now()),
            vec![Verdict::NoMatch]
        );
        // A DANE-TA record does not match the end entity itself.
        let ee_as_ta = rec(
            2,
            1,
            1,
            association(good.chain[0].as_ref(), 1, 1).expect("ee"),
        );
        assert_eq!(
            match_chain(&[ee_as_ta], &good.chain, "mx.example.test", now()),
            vec![Verdict::NoMatch]
        );
    }

    #[test]
    fn unusable_records_are_named() {
        let h = vec![0u8; 32];
        assert!(unusable(&rec(0, 1, 1, h.clone())).is_some_and(|w| w.contains("PKIX-TA")));
        assert!(unusable(&rec(1, 1, 1, h.clone())).is_some_and(|w| w.contains("PKIX-EE")));
        assert!(unusable(&rec(4, 1, 1, h.clone())).is_some_and(|w| w.contains("usage 4")));
        assert!(unusable(&rec(3, 2, 1, h.clone())).is_some_and(|w| w.contains("selector 2")));
        assert!(unusable(&rec(3, 1, 3, h.clone())).is_some_and(|w| w.contains("matching type 3")));
        assert!(unusable(&rec(3, 1, 2, h.clone())).is_some_and(|w| w.contains("64 bytes")));
        assert!(unusable(&rec(3, 0, 0, Vec::new())).is_some());
        assert_eq!(unusable(&rec(3, 1, 1, h.clone())), None);
        assert_eq!(unusable(&rec(2, 0, 1, h)), None);
        let cert = self_signed(&["mx.example.test"], Validity::Current).expect("cert");
        let spki = association(cert.chain[0].as_ref(), 1, 1).expect("spki");
        // A PKIX-EE record with the right digest is still unusable.
        assert!(matches!(
            &match_chain(&[rec(1, 1, 1, spki)], &cert.chain, "mx.example.test", now())[..],
            [Verdict::Unusable(_)]
        ));
    }

    #[test]
    fn records_print_in_presentation_form() {
        assert_eq!(rec(3, 1, 1, vec![0xab, 0x01]).to_string(), "3 1 1 ab01");
    }
}
