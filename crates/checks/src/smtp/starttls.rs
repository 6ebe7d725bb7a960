//! STARTTLS (RFC 3207): the rustls client configuration and the upgrade of a
//! session's TCP stream.
//!
//! The certificate verifier lets every chain through the handshake, so that
//! the probe can finish it and look at the certificates; it still verifies the
//! handshake signatures, so the server must hold the key of the certificate it
//! shows. The chain, the validity dates and the names are then examined one by
//! one in `cert.rs`: webpki stops at its first problem (an expired certificate
//! hides an unknown issuer and a wrong name), and an administrator needs all
//! three.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::time::Instant;

use super::session::{Session, SessionError, Stage, Stream};

/// A CA file larger than this is refused (a bundle of every public root is ~250 KiB).
const MAX_CA_FILE: u64 = 16 * 1024 * 1024;

/// Why the TLS client could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// A CA file could not be read.
    #[error("CA file {path}: {error}")]
    Read {
        /// The file.
        path: String,
        /// The error.
        error: std::io::Error,
    },
    /// A CA file holds no usable certificate.
    #[error("CA file {path}: {reason}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The trust anchors and client configuration of one run.
#[derive(Debug, Clone)]
pub struct TlsClient {
    /// The rustls configuration (aws-lc-rs, TLS 1.2 and 1.3).
    pub config: Arc<ClientConfig>,
    /// Mozilla's roots (webpki-roots) plus the extra CA files.
    pub roots: Arc<RootCertStore>,
    /// The crypto provider, named explicitly (dependencies.md §1).
    pub provider: Arc<CryptoProvider>,
}

impl TlsClient {
    /// Builds the client with webpki-roots and the PEM certificates of `ca_files`.
    /// A file that cannot be read or holds no certificate is an error: a private
    /// PKI the user named must not silently fall back to "unknown issuer".
    pub fn new(ca_files: &[PathBuf]) -> Result<TlsClient, TlsSetupError> {
        // Named explicitly: if another crate ever turns on rustls's `ring`
        // feature, `ClientConfig::builder()` could no longer pick one and panics.
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for path in ca_files {
            add_ca_file(&mut roots, path)?;
        }
        let verifier = Arc::new(ExamineLater {
            algorithms: provider.signature_verification_algorithms,
        });
        let config = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(TlsClient {
            config: Arc::new(config),
            roots: Arc::new(roots),
            provider,
        })
    }
}

fn add_ca_file(roots: &mut RootCertStore, path: &Path) -> Result<(), TlsSetupError> {
    let shown = path.display().to_string();
    let read = |error| TlsSetupError::Read {
        path: shown.clone(),
        error,
    };
    let len = std::fs::metadata(path).map_err(read)?.len();
    if len > MAX_CA_FILE {
        return Err(TlsSetupError::Parse {
            path: shown,
            reason: format!("larger than {} MiB", MAX_CA_FILE / (1024 * 1024)),
        });
    }
    let pem = std::fs::read(path).map_err(read)?;
    let mut added = 0usize;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| TlsSetupError::Parse {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        roots.add(cert).map_err(|e| TlsSetupError::Parse {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        added += 1;
    }
    if added == 0 {
        return Err(TlsSetupError::Parse {
            path: shown,
            reason: "no PEM certificate (-----BEGIN CERTIFICATE-----) in the file".to_owned(),
        });
    }
    Ok(())
}

/// Accepts any chain during the handshake (it is examined afterwards, each
/// problem separately) but verifies the handshake signatures with the
/// certificate's key.
#[derive(Debug)]
struct ExamineLater {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ExamineLater {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// What the handshake settled.
#[derive(Debug, Clone)]
pub struct Negotiated {
    /// `TLSv1.3`, `TLSv1.2`.
    pub version: String,
    /// e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher: String,
    /// The certificates the server sent, end entity first.
    pub chain: Vec<CertificateDer<'static>>,
}

/// The name sent in SNI and checked against the certificate: the MX host name,
/// or the address when the name is not a valid DNS name for rustls.
pub fn server_name(host: &str, ip: IpAddr) -> ServerName<'static> {
    ServerName::try_from(host.to_owned()).unwrap_or(ServerName::IpAddress(ip.into()))
}

/// Upgrades the session's stream after `220 Ready to start TLS`. On failure
/// the stream is gone: a half-done handshake leaves nothing to say SMTP over.
pub async fn upgrade(
    session: &mut Session,
    client: &TlsClient,
    name: ServerName<'static>,
    timeout: Duration,
) -> Result<Negotiated, SessionError> {
    let stage = Stage::TlsHandshake;
    let Stream::Plain(tcp) = std::mem::replace(&mut session.stream, Stream::Gone) else {
        return Err(SessionError::Tls {
            stage,
            reason: "the connection is not a plain TCP stream any more".to_owned(),
        });
    };
    let connector = tokio_rustls::TlsConnector::from(client.config.clone());
    let (deadline, limit) = session.deadlines.for_step(timeout);
    let started = Instant::now();
    match tokio::time::timeout_at(deadline, connector.connect(name, tcp)).await {
        Ok(Ok(tls)) => {
            let (_, conn) = tls.get_ref();
            let version = match conn.protocol_version() {
                Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
                Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
                Some(other) => format!("{other:?}"),
                None => "unknown".to_owned(),
            };
            let cipher = conn
                .negotiated_cipher_suite()
                .map(|s| format!("{:?}", s.suite()))
                .unwrap_or_else(|| "unknown".to_owned());
            let chain = conn
                .peer_certificates()
                .map(|c| c.iter().map(|d| d.clone().into_owned()).collect())
                .unwrap_or_default();
            session.stream = Stream::Tls(Box::new(tls));
            Ok(Negotiated {
                version,
                cipher,
                chain,
            })
        }
        Ok(Err(error)) => Err(SessionError::Tls {
            stage,
            reason: error.to_string(),
        }),
        Err(_) => Err(SessionError::Timeout {
            stage,
            waited: started.elapsed(),
            limit,
        }),
    }
}
