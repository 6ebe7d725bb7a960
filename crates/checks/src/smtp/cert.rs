//! The server certificate, examined after the handshake one question at a
//! time, because webpki answers only the first: validity dates of every
//! certificate sent, the chain to a trusted root (checked at a moment inside
//! the validity window, so that an expired certificate does not hide an unknown
//! issuer), and the names against each MX host name (RFC 6125 via webpki;
//! RFC 7672 §3.2.2 and RFC 8461 §4.1 take the MX host as the reference name).

use std::time::Duration;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use x509_parser::extensions::GeneralName;

use super::reply::escape_text;

/// Facts of one certificate, for evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Subject DN, escaped.
    pub subject: String,
    /// Issuer DN, escaped.
    pub issuer: String,
    /// DNS names and addresses of the subjectAltName extension.
    pub sans: Vec<String>,
    /// notBefore, Unix seconds.
    pub not_before: i64,
    /// notAfter, Unix seconds.
    pub not_after: i64,
}

impl CertInfo {
    /// Reads the facts of a DER certificate.
    pub fn parse(der: &[u8]) -> Result<CertInfo, String> {
        let (_, x) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
        let sans = match x.subject_alternative_name() {
            Ok(Some(ext)) => ext
                .value
                .general_names
                .iter()
                .filter_map(|g| match g {
                    GeneralName::DNSName(d) => Some(escape_text(d)),
                    GeneralName::IPAddress(b) => ip_from_bytes(b).map(|ip| ip.to_string()),
                    _ => None,
                })
                .collect(),
            Ok(None) => Vec::new(),
            Err(e) => vec![format!("(unreadable subjectAltName: {e})")],
        };
        Ok(CertInfo {
            subject: escape_text(&x.subject().to_string()),
            issuer: escape_text(&x.issuer().to_string()),
            sans,
            not_before: x.validity().not_before.timestamp(),
            not_after: x.validity().not_after.timestamp(),
        })
    }

    /// True when subject and issuer are the same name (a self-issued certificate).
    pub fn self_issued(&self) -> bool {
        self.subject == self.issuer
    }

    /// One evidence line.
    pub fn evidence(&self) -> String {
        format!(
            "subject: {}; SAN: {}; issuer: {}; valid {} to {}",
            self.subject,
            if self.sans.is_empty() {
                "(none)".to_owned()
            } else {
                self.sans.join(", ")
            },
            self.issuer,
            date(self.not_before),
            date(self.not_after)
        )
    }
}

fn ip_from_bytes(b: &[u8]) -> Option<std::net::IpAddr> {
    match b.len() {
        4 => <[u8; 4]>::try_from(b).ok().map(std::net::IpAddr::from),
        16 => <[u8; 16]>::try_from(b).ok().map(std::net::IpAddr::from),
        _ => None,
    }
}

/// RFC 3339 UTC date of Unix seconds.
pub fn date(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| format!("@{secs}"))
}

/// A certificate outside its validity period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateProblem {
    /// 0 for the server's own certificate, then the intermediates in sent order.
    pub position: usize,
    /// The certificate.
    pub cert: CertInfo,
    /// True for "not yet valid", false for "expired".
    pub not_yet_valid: bool,
}

/// Why the chain does not lead to a trusted root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainProblem {
    /// True when the server's certificate is self-issued (subject = issuer).
    pub self_signed: bool,
    /// The verifier's reason, or ours.
    pub reason: String,
}

/// Everything found about the chain a server sent.
#[derive(Debug, Clone, Default)]
pub struct CertVerdict {
    /// The certificates as sent, end entity first (unparsable ones left out).
    pub chain: Vec<CertInfo>,
    /// Certificates outside their validity period.
    pub dates: Vec<DateProblem>,
    /// Days until the end-entity certificate expires, when within the warning window.
    pub expiring_in_days: Option<i64>,
    /// The chain problem, if any.
    pub untrusted: Option<ChainProblem>,
    /// MX names the certificate does not cover.
    pub names_not_covered: Vec<String>,
    /// True when no certificate at all was sent or the first could not be parsed.
    pub unreadable: Option<String>,
}

/// Examines a chain against the trust anchors, the clock and the names.
pub fn examine(
    chain: &[CertificateDer<'_>],
    names: &[String],
    roots: &RootCertStore,
    provider: &CryptoProvider,
    now: i64,
    warn_before: Duration,
) -> CertVerdict {
    let mut verdict = CertVerdict::default();
    let Some(leaf_der) = chain.first() else {
        verdict.unreadable = Some("the server sent no certificate".to_owned());
        return verdict;
    };
    let infos: Vec<Option<CertInfo>> = chain.iter().map(|d| CertInfo::parse(d).ok()).collect();
    let Some(Some(leaf)) = infos.first().cloned() else {
        verdict.unreadable = Some("the server's certificate cannot be parsed as X.509".to_owned());
        return verdict;
    };
    verdict.chain = infos.iter().flatten().cloned().collect();

    // Dates of every certificate sent (RFC 5280 §4.1.2.5).
    for (position, info) in infos.iter().enumerate() {
        let Some(info) = info else { continue };
        if now > info.not_after || now < info.not_before {
            verdict.dates.push(DateProblem {
                position,
                cert: info.clone(),
                not_yet_valid: now < info.not_before,
            });
        }
    }
    let warn = i64::try_from(warn_before.as_secs()).unwrap_or(i64::MAX);
    if now <= leaf.not_after && leaf.not_after - now <= warn {
        verdict.expiring_in_days = Some((leaf.not_after - now) / 86_400);
    }

    let parsed = match ParsedCertificate::try_from(leaf_der) {
        Ok(p) => p,
        Err(e) => {
            verdict.unreadable = Some(format!("webpki cannot use the certificate: {e}"));
            return verdict;
        }
    };

    // The chain, at a moment when every certificate sent is valid if there is
    // one (else when the end entity is): dates are judged above, not here.
    let lo = infos
        .iter()
        .flatten()
        .map(|c| c.not_before)
        .max()
        .unwrap_or(leaf.not_before);
    let hi = infos
        .iter()
        .flatten()
        .map(|c| c.not_after)
        .min()
        .unwrap_or(leaf.not_after);
    let (lo, hi) = if lo <= hi {
        (lo, hi)
    } else {
        (leaf.not_before, leaf.not_after)
    };
    let at = now.clamp(lo, hi.max(lo));
    let at = UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(at).unwrap_or(0)));
    let intermediates = chain.get(1..).unwrap_or_default();
    if let Err(e) = rustls::client::verify_server_cert_signed_by_trust_anchor(
        &parsed,
        roots,
        intermediates,
        at,
        provider.signature_verification_algorithms.all,
    ) {
        use rustls::CertificateError as C;
        let date_only = matches!(
            &e,
            rustls::Error::InvalidCertificate(
                C::Expired
                    | C::ExpiredContext { .. }
                    | C::NotValidYet
                    | C::NotValidYetContext { .. }
            )
        );
        if !date_only {
            let self_signed = leaf.self_issued();
            let reason = match &e {
                rustls::Error::InvalidCertificate(C::UnknownIssuer) if self_signed => {
                    "self-signed: the certificate is its own issuer and no trusted root vouches for it".to_owned()
                }
                rustls::Error::InvalidCertificate(C::UnknownIssuer) => format!(
                    "unknown issuer: the chain sent ({} certificate{}) does not lead to a trusted root",
                    chain.len(),
                    if chain.len() == 1 { "" } else { "s" }
                ),
                other => other.to_string(),
            };
            verdict.untrusted = Some(ChainProblem {
                self_signed,
                reason,
            });
        }
    }

    // Names: each MX host name the server is known by (RFC 6125 §6 via webpki).
    for name in names {
        let covered = match ServerName::try_from(name.as_str()) {
            Ok(sn) => rustls::client::verify_server_name(&parsed, &sn).is_ok(),
            Err(_) => false,
        };
        if !covered {
            verdict.names_not_covered.push(name.clone());
        }
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc3339() {
        assert_eq!(date(0), "1970-01-01T00:00:00Z");
        assert_eq!(date(1_609_459_200), "2021-01-01T00:00:00Z");
    }

    #[test]
    fn no_certificate_is_unreadable() {
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let v = examine(
            &[],
            &[],
            &RootCertStore::empty(),
            &provider,
            0,
            Duration::ZERO,
        );
        assert!(v.unreadable.is_some());
        let junk = CertificateDer::from(vec![0u8, 1, 2]);
        let v = examine(
            &[junk],
            &[],
            &RootCertStore::empty(),
            &provider,
            0,
            Duration::ZERO,
        );
        assert!(v.unreadable.is_some());
    }
}
