//! Fetching the policy: `GET https://mta-sts.<domain>/.well-known/mta-sts.txt`
//! the way RFC 8461 §3.3 tells senders to.
//!
//! - reqwest over rustls with aws-lc-rs named explicitly, Mozilla's roots plus
//!   the extra CA files; the certificate must be valid for `mta-sts.<domain>`
//!   (RFC 6125 DNS-ID), chain to a trusted root and be current (§3.3);
//! - the host name is resolved by the run's DNS client (`crates/dns`, through
//!   reqwest's resolver hook), and the address policy refuses private targets
//!   unless the user allowed them;
//! - no redirects (§3.3: "HTTP 3xx redirects MUST NOT be followed"), no proxy,
//!   no cache; HTTP/1.1;
//! - bounded: connect and total timeouts, at most [`MAX_POLICY_BYTES`] of body;
//! - `200` with media type `text/plain` only (§3.2).
//!
//! Each failure is told apart (no address, refused, timeout, certificate,
//! status, redirect, size, content type), and each (domain, options) is
//! fetched at most once per run: the result is kept in the run's derived cache.

use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

use mxaudit_core::CheckCx;
use mxaudit_dns::DomainName;

use super::policy::MAX_POLICY_BYTES;
use crate::resolve::resolve_host;
use crate::smtp::cert::CertInfo;
use crate::smtp::starttls::TlsClient;

/// The well-known path (§3.3).
pub const POLICY_PATH: &str = "/.well-known/mta-sts.txt";

/// How the policy is fetched.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FetchOptions {
    /// HTTPS port: 443 (§3.3); another only for labs and tests.
    pub port: u16,
    /// TCP connect, per address.
    pub connect_timeout: Duration,
    /// The whole fetch: DNS, connect, TLS, request and body.
    pub timeout: Duration,
    /// PEM files of extra trusted CAs, besides Mozilla's roots.
    pub ca_files: Vec<PathBuf>,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            port: 443,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            ca_files: Vec::new(),
        }
    }
}

impl FetchOptions {
    /// Checks the options without I/O.
    pub fn validate(&self) -> Result<(), String> {
        if self.port == 0 {
            return Err("port: must be 1-65535".to_owned());
        }
        for (key, d) in [
            ("connect_timeout", self.connect_timeout),
            ("timeout", self.timeout),
        ] {
            if d.is_zero() {
                return Err(format!("{key}: must be longer than 0s"));
            }
        }
        Ok(())
    }

    /// The policy URL of a policy host.
    pub fn url(&self, host: &DomainName) -> String {
        if self.port == 443 {
            format!("https://{}{POLICY_PATH}", host.bare())
        } else {
            format!("https://{}:{}{POLICY_PATH}", host.bare(), self.port)
        }
    }
}

/// The body of a `200 text/plain` answer within the size limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyBody {
    /// The bytes (at most [`MAX_POLICY_BYTES`]).
    pub bytes: Vec<u8>,
    /// The `Content-Type` header as sent.
    pub content_type: String,
    /// The address that answered.
    pub peer: Option<SocketAddr>,
}

/// Why no policy body came back. Each variant maps to one finding code (or,
/// for the undecided ones, to an `error` status).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchFailure {
    /// The policy host does not resolve (NXDOMAIN or NODATA for A and AAAA).
    #[error("{host} has no address ({evidence})")]
    NoAddress {
        /// The policy host.
        host: String,
        /// The negative answers.
        evidence: String,
    },
    /// The address lookup failed (SERVFAIL, timeout): undecided.
    #[error("{0}")]
    LookupFailed(String),
    /// Every address is private or reserved and not allowed: undecided.
    #[error("not fetched, the address policy refuses {0}; allow with --allow-target")]
    NotAllowed(String),
    /// TCP connection refused, no route, reset.
    #[error("connection failed: {0}")]
    Connect(String),
    /// A step took too long.
    #[error("no {stage} within {}", humantime::format_duration(*after))]
    Timeout {
        /// `connection`, `response`, `complete body`.
        stage: &'static str,
        /// The limit that ran out.
        after: Duration,
    },
    /// The certificate is not valid for the policy host (§3.3).
    #[error("certificate rejected: {reason}")]
    Certificate {
        /// rustls/webpki's reason.
        reason: String,
        /// Facts of the certificate presented (subject, names, dates).
        presented: Vec<String>,
    },
    /// The TLS handshake failed for another reason (alert, protocol version).
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    /// A status other than 200 and 3xx.
    #[error("HTTP {status} {reason}")]
    Status {
        /// The status code.
        status: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// A redirect, which senders do not follow (§3.3).
    #[error("HTTP {status} redirect to {location}")]
    Redirect {
        /// The status code.
        status: u16,
        /// The `Location` header, escaped and clipped.
        location: String,
    },
    /// The body is larger than the limit.
    #[error("the body is larger than {} KiB{}", MAX_POLICY_BYTES / 1024, declared.map(|d| format!(" (Content-Length {d})")).unwrap_or_default())]
    TooLarge {
        /// The declared `Content-Length`, if any.
        declared: Option<u64>,
    },
    /// The media type is not `text/plain` (§3.2).
    #[error("Content-Type is {0}, not text/plain")]
    ContentType(String),
    /// The HTTP exchange broke (malformed response, connection closed).
    #[error("HTTP exchange failed: {0}")]
    Http(String),
    /// The TLS client could not be set up (an unreadable CA file): undecided.
    #[error("{0}")]
    Setup(String),
}

impl FetchFailure {
    /// True when the failure says nothing about the domain (our lookup or
    /// setup failed, or the address policy forbade the connection).
    pub fn undecided(&self) -> bool {
        matches!(
            self,
            FetchFailure::LookupFailed(_) | FetchFailure::NotAllowed(_) | FetchFailure::Setup(_)
        )
    }
}

/// One fetch of one policy host.
#[derive(Debug, Clone)]
pub struct PolicyFetch {
    /// The URL asked.
    pub url: String,
    /// The outcome.
    pub outcome: Result<PolicyBody, FetchFailure>,
    /// How long it took.
    pub elapsed: Duration,
}

/// Fetches the policy of the host `mta-sts.<domain>`, once per run for the
/// same options: later and concurrent callers share the first result.
pub async fn fetch_policy(
    policy_host: &DomainName,
    options: &FetchOptions,
    cx: &CheckCx,
) -> Arc<PolicyFetch> {
    // The run's derived cache lives as long as the run's DNS client: one
    // fetch per run, none carried into the next run of the daemon.
    let key = format!(
        "mta-sts policy {} {:?} {:?} {:?} {}",
        options.port,
        options.connect_timeout,
        options.timeout,
        options.ca_files,
        policy_host.as_str()
    );
    cx.dns
        .derived(&key, || fetch_uncached(policy_host, options, cx))
        .await
}

async fn fetch_uncached(
    policy_host: &DomainName,
    options: &FetchOptions,
    cx: &CheckCx,
) -> PolicyFetch {
    let url = options.url(policy_host);
    let started = Instant::now();
    // Never past the check's own deadline (with a margin to report).
    let left = cx
        .deadline
        .saturating_duration_since(Instant::now())
        .saturating_sub(Duration::from_millis(500));
    let budget = options.timeout.min(left.max(Duration::from_millis(100)));
    let outcome = match tokio::time::timeout(budget, get(&url, options, budget, cx)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(FetchFailure::Timeout {
            stage: "complete answer",
            after: budget,
        }),
    };
    PolicyFetch {
        url,
        outcome,
        elapsed: started.elapsed(),
    }
}

async fn get(
    url: &str,
    options: &FetchOptions,
    budget: Duration,
    cx: &CheckCx,
) -> Result<PolicyBody, FetchFailure> {
    let tls = TlsClient::new(&options.ca_files).map_err(|e| FetchFailure::Setup(e.to_string()))?;
    let webpki =
        WebPkiServerVerifier::builder_with_provider(tls.roots.clone(), tls.provider.clone())
            .build()
            .map_err(|e| FetchFailure::Setup(format!("TLS verifier: {e}")))?;
    let verifier = Arc::new(RecordingVerifier {
        inner: webpki,
        rejected: Mutex::new(None),
    });
    let mut config = ClientConfig::builder_with_provider(tls.provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| FetchFailure::Setup(format!("TLS configuration: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let resolved: Arc<Mutex<Option<FetchFailure>>> = Arc::default();
    let resolver = PolicyHostResolver {
        cx: cx.clone(),
        failure: resolved.clone(),
    };
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .dns_resolver(resolver)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .http1_only()
        .connect_timeout(options.connect_timeout)
        .timeout(budget)
        .pool_max_idle_per_host(0)
        .user_agent(concat!(
            "mxaudit/",
            env!("CARGO_PKG_VERSION"),
            " (MTA-STS policy check)"
        ))
        .build()
        .map_err(|e| FetchFailure::Setup(format!("HTTP client: {}", chain_text(&e))))?;
    let failure_of = |e: reqwest::Error, stage: &'static str| {
        if let Some(f) = take(&resolved) {
            return f;
        }
        if let Some(f) = take(&verifier.rejected) {
            return f;
        }
        classify(&e, stage, options)
    };
    let mut response = client
        .get(url)
        .header(reqwest::header::ACCEPT, "text/plain")
        .send()
        .await
        .map_err(|e| failure_of(e, "response"))?;
    let status = response.status();
    if status.is_redirection() {
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .map(|v| super::record::clip(&String::from_utf8_lossy(v.as_bytes())))
            .unwrap_or_else(|| "(no Location header)".to_owned());
        return Err(FetchFailure::Redirect {
            status: status.as_u16(),
            location,
        });
    }
    if status != reqwest::StatusCode::OK {
        return Err(FetchFailure::Status {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("").to_owned(),
        });
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let media_type = content_type
        .as_deref()
        .and_then(|c| c.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    if media_type.as_deref() != Some("text/plain") {
        return Err(FetchFailure::ContentType(match &content_type {
            Some(c) => format!("`{}`", super::record::clip(c)),
            None => "missing".to_owned(),
        }));
    }
    let declared = response
        .headers()
        .get(reqwest::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|d| d > MAX_POLICY_BYTES as u64) {
        return Err(FetchFailure::TooLarge { declared });
    }
    let peer = response.remote_addr();
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| failure_of(e, "complete body"))?
    {
        if bytes.len() + chunk.len() > MAX_POLICY_BYTES {
            return Err(FetchFailure::TooLarge { declared });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(PolicyBody {
        bytes,
        content_type: content_type.unwrap_or_default(),
        peer,
    })
}

fn take(slot: &Mutex<Option<FetchFailure>>) -> Option<FetchFailure> {
    slot.lock().unwrap_or_else(PoisonError::into_inner).take()
}

/// Every message of an error chain, joined, clipped; `io::Error`s that wrap
/// another error show it (their `source()` skips it).
fn chain_text(e: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    super::record::clip_long(&parts.join(": "))
}

/// Turns a reqwest error into the failure it stands for, walking the chain.
fn classify(e: &reqwest::Error, stage: &'static str, options: &FetchOptions) -> FetchFailure {
    let mut next: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            // tokio-rustls reports TLS errors as io::Error(InvalidData, rustls::Error).
            if let Some(tls) = io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                return FetchFailure::Tls(tls.to_string());
            }
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    return FetchFailure::Connect("connection refused".to_owned());
                }
                std::io::ErrorKind::TimedOut => {
                    return FetchFailure::Timeout {
                        stage: "connection",
                        after: options.connect_timeout,
                    };
                }
                _ => {}
            }
        }
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return FetchFailure::Tls(tls.to_string());
        }
        next = err.source();
    }
    if e.is_timeout() {
        return if e.is_connect() {
            FetchFailure::Timeout {
                stage: "connection",
                after: options.connect_timeout,
            }
        } else {
            FetchFailure::Timeout {
                stage,
                after: options.timeout,
            }
        };
    }
    if e.is_connect() {
        return FetchFailure::Connect(chain_text(e));
    }
    FetchFailure::Http(chain_text(e))
}

/// reqwest's resolver hook: the policy host's addresses from the run's DNS
/// client (so the testbed world answers in tests, and a run asks each
/// question once), minus the addresses the policy forbids. Why it failed is
/// kept in `failure`, typed, for the classification above.
struct PolicyHostResolver {
    cx: CheckCx,
    failure: Arc<Mutex<Option<FetchFailure>>>,
}

impl reqwest::dns::Resolve for PolicyHostResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let name = name.as_str().to_owned();
        let cx = self.cx.clone();
        let slot = self.failure.clone();
        Box::pin(async move {
            match addresses(&name, &cx).await {
                Ok(addrs) => Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs),
                Err(f) => {
                    let text = f.to_string();
                    *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(f);
                    Err(text.into())
                }
            }
        })
    }
}

/// The addresses mxaudit may connect to for `name`.
async fn addresses(name: &str, cx: &CheckCx) -> Result<Vec<SocketAddr>, FetchFailure> {
    let host =
        DomainName::parse(name).map_err(|e| FetchFailure::LookupFailed(format!("{name}: {e}")))?;
    let found = resolve_host(&host, cx).await;
    if found.addresses.is_empty() {
        return Err(if found.failures.is_empty() {
            FetchFailure::NoAddress {
                host: host.to_string(),
                evidence: found.evidence.join(", "),
            }
        } else {
            FetchFailure::LookupFailed(found.failures.join(", "))
        });
    }
    let (allowed, refused): (Vec<IpAddr>, Vec<IpAddr>) = found
        .addresses
        .iter()
        .partition(|ip| cx.addresses.may_connect(**ip));
    if allowed.is_empty() {
        let shown: Vec<String> = refused
            .iter()
            .map(|ip| {
                format!(
                    "{ip} ({})",
                    cx.addresses.non_public_reason(*ip).unwrap_or("not public")
                )
            })
            .collect();
        return Err(FetchFailure::NotAllowed(format!(
            "{host}: {}",
            shown.join(", ")
        )));
    }
    // Port 0: reqwest puts the URL's port (443 when none) in its place.
    Ok(allowed
        .into_iter()
        .map(|ip| SocketAddr::new(ip, 0))
        .collect())
}

/// The standard WebPKI verification (roots plus extra CA files, the name of
/// the policy host, the validity dates), recording why it rejected a
/// certificate and what the certificate said, so that the finding can show
/// both; the handshake still fails, as it does for a sender.
#[derive(Debug)]
struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    rejected: Mutex<Option<FetchFailure>>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        if let Err(e) = &verdict {
            let presented = match CertInfo::parse(end_entity) {
                Ok(info) => vec![
                    format!("subject {}", info.subject),
                    format!("issuer {}", info.issuer),
                    format!("names {}", info.sans.join(" ")),
                    format!(
                        "valid {} to {}",
                        date(info.not_before),
                        date(info.not_after)
                    ),
                ],
                Err(why) => vec![format!("unreadable certificate: {why}")],
            };
            *self.rejected.lock().unwrap_or_else(PoisonError::into_inner) =
                Some(FetchFailure::Certificate {
                    reason: e.to_string(),
                    presented,
                });
        }
        verdict
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn date(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| unix.to_string())
}
