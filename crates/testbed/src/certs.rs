//! Certificates generated at test time (rcgen, aws-lc-rs): a private CA and
//! server certificates that are valid, expired, not yet valid, about to expire,
//! self-signed or for the wrong name. Nothing is stored in the repository.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;

/// A certificate could not be made or used.
#[derive(Debug, thiserror::Error)]
#[error("test certificate: {0}")]
pub struct CertError(pub String);

impl From<rcgen::Error> for CertError {
    fn from(e: rcgen::Error) -> Self {
        CertError(e.to_string())
    }
}

impl From<rustls::Error> for CertError {
    fn from(e: rustls::Error) -> Self {
        CertError(e.to_string())
    }
}

/// When a certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// From a day ago to a year from now.
    Current,
    /// 2020-01-01 to 2021-01-01.
    Expired,
    /// From a year from now.
    NotYetValid,
    /// From a day ago until this long from now.
    ExpiresIn(Duration),
}

impl Validity {
    fn window(self) -> (OffsetDateTime, OffsetDateTime) {
        let now = OffsetDateTime::now_utc();
        let day = time::Duration::days(1);
        match self {
            Validity::Current => (now - day, now + time::Duration::days(365)),
            Validity::Expired => (
                rcgen::date_time_ymd(2020, 1, 1),
                rcgen::date_time_ymd(2021, 1, 1),
            ),
            Validity::NotYetValid => (
                now + time::Duration::days(365),
                now + time::Duration::days(730),
            ),
            Validity::ExpiresIn(d) => (
                now - day,
                now + time::Duration::seconds(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
            ),
        }
    }
}

/// A server certificate chain and its key.
#[derive(Debug)]
pub struct TestCert {
    /// The server certificate, then the issuing CA when there is one.
    pub chain: Vec<CertificateDer<'static>>,
    /// PKCS#8 DER of the private key.
    pub key_pkcs8: Vec<u8>,
    /// The chain in PEM (server certificate first), for servers reading files.
    pub chain_pem: String,
    /// The key in PEM.
    pub key_pem: String,
}

impl TestCert {
    /// The private key for rustls.
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8.clone()))
    }

    /// A rustls server configuration presenting this chain (aws-lc-rs, TLS 1.2 and 1.3).
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, CertError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key())?;
        Ok(Arc::new(config))
    }

    /// Writes `cert.pem` (the chain) and `key.pem` into `dir`.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::write(dir.join("cert.pem"), &self.chain_pem)?;
        std::fs::write(dir.join("key.pem"), &self.key_pem)
    }
}

/// A private certificate authority.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
    pem: String,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl TestCa {
    /// A new CA with this common name, valid from a day ago for ten years.
    pub fn new(common_name: &str) -> Result<TestCa, CertError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(3650);
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(TestCa {
            der: cert.der().clone(),
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA certificate in PEM, to trust it (`ca_files`, `--ca-file`).
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// The CA certificate in DER.
    pub fn der(&self) -> &CertificateDer<'static> {
        &self.der
    }

    /// Writes the CA certificate to `path`.
    pub fn write_pem(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, &self.pem)
    }

    /// A server certificate for `names` (DNS names or addresses), issued by this CA.
    pub fn issue(&self, names: &[&str], validity: Validity) -> Result<TestCert, CertError> {
        let params = server_params(names, validity)?;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(TestCert {
            chain: vec![cert.der().clone(), self.der.clone()],
            chain_pem: format!("{}{}", cert.pem(), self.pem),
            key_pkcs8: key.serialize_der(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// A self-signed server certificate for `names`.
pub fn self_signed(names: &[&str], validity: Validity) -> Result<TestCert, CertError> {
    let params = server_params(names, validity)?;
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok(TestCert {
        chain: vec![cert.der().clone()],
        chain_pem: cert.pem(),
        key_pkcs8: key.serialize_der(),
        key_pem: key.serialize_pem(),
    })
}

fn server_params(names: &[&str], validity: Validity) -> Result<CertificateParams, CertError> {
    let mut params =
        CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())?;
    if let Some(first) = names.first() {
        params.distinguished_name.push(DnType::CommonName, *first);
    }
    let (not_before, not_after) = validity.window();
    params.not_before = not_before;
    params.not_after = not_after;
    Ok(params)
}
