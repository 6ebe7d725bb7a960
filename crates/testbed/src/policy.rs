//! An HTTPS server on loopback for the MTA-STS tests: one listener serving
//! several policy hosts (`mta-sts.<domain>`), each with its own certificate
//! (chosen by SNI) and its own behaviour — a policy, any status, a redirect,
//! a huge body, a body that drips, a server that stalls. Every request is
//! recorded, so a test can prove that a policy was fetched once, or never.
//!
//! HTTP/1.1 is written by hand here, not served by a framework: the hostile
//! cases need byte-level control (no Content-Length, a byte every second, no
//! answer at all) that an HTTP server library exists to prevent.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::TestbedError;
use crate::certs::{CertError, TestCert};

/// Longest request head read (request line and headers).
const MAX_HEAD: usize = 16 * 1024;

/// Longest a hostile answer goes on, whatever the client does.
const HOSTILE_LIMIT: Duration = Duration::from_secs(120);

/// What a policy host answers to every request.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// `200 OK`, `Content-Type: text/plain`, this body.
    Policy(String),
    /// Any answer: status, reason, headers, body (`Content-Length` added).
    Answer {
        /// Status code.
        status: u16,
        /// Reason phrase.
        reason: String,
        /// Headers besides `Content-Length` and `Connection`.
        headers: Vec<(String, String)>,
        /// The body.
        body: Vec<u8>,
    },
    /// `301 Moved Permanently` to this location, with a valid policy as body
    /// (a client that follows or reads it is wrong either way).
    Redirect(String),
    /// `200 text/plain` without `Content-Length`: this many bytes of
    /// policy-looking lines, then the connection closes.
    Huge(usize),
    /// `200 text/plain` headers with a `Content-Length` of 4 KiB, then one
    /// byte of the body every `interval`.
    Drip(Duration),
    /// The TLS handshake completes, the request is read, and nothing is ever
    /// sent back.
    Stall,
}

/// One policy host of the server.
#[derive(Debug)]
pub struct PolicySite {
    /// The host name, e.g. `mta-sts.good.test` (matched against SNI).
    pub host: String,
    /// The certificate presented when a client asks for `host`.
    pub cert: TestCert,
    /// What it answers.
    pub behaviour: Behaviour,
}

impl PolicySite {
    /// A site.
    pub fn new(host: &str, cert: TestCert, behaviour: Behaviour) -> PolicySite {
        PolicySite {
            host: host.to_ascii_lowercase(),
            cert,
            behaviour,
        }
    }
}

/// One request received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLog {
    /// The SNI name of the TLS handshake.
    pub sni: Option<String>,
    /// The request line, e.g. `GET /.well-known/mta-sts.txt HTTP/1.1`.
    pub request_line: String,
    /// The `Host` header.
    pub host: Option<String>,
}

#[derive(Debug)]
struct BySni {
    keys: HashMap<String, Arc<CertifiedKey>>,
    default: Option<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        hello
            .server_name()
            .and_then(|n| self.keys.get(&n.to_ascii_lowercase()).cloned())
            .or_else(|| self.default.clone())
    }
}

#[derive(Default)]
struct Log {
    handshakes: usize,
    requests: Vec<RequestLog>,
}

type Shared = Arc<Mutex<Log>>;

fn with_log<T>(log: &Shared, f: impl FnOnce(&mut Log) -> T) -> T {
    f(&mut log.lock().unwrap_or_else(PoisonError::into_inner))
}

/// A running policy server; stops (with its connections) when dropped.
pub struct PolicyServer {
    addr: SocketAddr,
    log: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for PolicyServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for PolicyServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PolicyServer {
    /// Binds `addr` (e.g. `127.78.0.1:0`) and serves `sites`; a client that
    /// names no known host gets the first site's certificate.
    pub async fn start(
        addr: SocketAddr,
        sites: Vec<PolicySite>,
    ) -> Result<PolicyServer, TestbedError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut keys = HashMap::new();
        let mut default = None;
        let mut behaviours = HashMap::new();
        for site in sites {
            let key = CertifiedKey::from_der(site.cert.chain.clone(), site.cert.key(), &provider)
                .map_err(|e| cert_error(CertError::from(e)))?;
            let key = Arc::new(key);
            default.get_or_insert_with(|| key.clone());
            keys.insert(site.host.clone(), key);
            behaviours.insert(site.host, site.behaviour);
        }
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| cert_error(CertError::from(e)))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(BySni { keys, default }));
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let log: Shared = Arc::default();
        let behaviours = Arc::new(behaviours);
        let task_log = log.clone();
        let task = tokio::spawn(async move {
            // Connection tasks live in this set: aborting the accept loop drops them.
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((tcp, _)) = accepted else { continue };
                        let acceptor = acceptor.clone();
                        let behaviours = behaviours.clone();
                        let log = task_log.clone();
                        connections.spawn(async move {
                            let _ = tokio::time::timeout(
                                HOSTILE_LIMIT,
                                serve(tcp, acceptor, &behaviours, &log),
                            )
                            .await;
                        });
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        Ok(PolicyServer { addr, log, task })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<RequestLog> {
        with_log(&self.log, |l| l.requests.clone())
    }

    /// Requests so far whose SNI was `host`.
    pub fn requests_for(&self, host: &str) -> usize {
        with_log(&self.log, |l| {
            l.requests
                .iter()
                .filter(|r| r.sni.as_deref() == Some(host))
                .count()
        })
    }

    /// TLS handshakes completed so far.
    pub fn handshakes(&self) -> usize {
        with_log(&self.log, |l| l.handshakes)
    }
}

fn cert_error(e: CertError) -> TestbedError {
    TestbedError::Io(std::io::Error::other(e.to_string()))
}

async fn serve(
    tcp: tokio::net::TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    behaviours: &HashMap<String, Behaviour>,
    log: &Shared,
) -> std::io::Result<()> {
    let mut tls = acceptor.accept(tcp).await?;
    with_log(log, |l| l.handshakes += 1);
    let sni = tls.get_ref().1.server_name().map(str::to_ascii_lowercase);
    // Read the request head, bounded.
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tls.read(&mut buf).await?;
        if n == 0 || head.len() > MAX_HEAD {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let request_line = text.lines().next().unwrap_or_default().to_owned();
    let host = text.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("host").then(|| v.trim().to_owned())
    });
    with_log(log, |l| {
        l.requests.push(RequestLog {
            sni: sni.clone(),
            request_line,
            host,
        })
    });
    let behaviour = sni
        .as_deref()
        .and_then(|s| behaviours.get(s))
        .cloned()
        .unwrap_or(Behaviour::Answer {
            status: 421,
            reason: "Misdirected Request".to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
        });
    match behaviour {
        Behaviour::Policy(body) => {
            answer(
                &mut tls,
                200,
                "OK",
                &[("Content-Type", "text/plain")],
                body.as_bytes(),
            )
            .await?;
        }
        Behaviour::Answer {
            status,
            reason,
            headers,
            body,
        } => {
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            answer(&mut tls, status, &reason, &headers, &body).await?;
        }
        Behaviour::Redirect(location) => {
            answer(
                &mut tls,
                301,
                "Moved Permanently",
                &[("Location", &location), ("Content-Type", "text/plain")],
                b"version: STSv1\nmode: enforce\nmx: *.test\nmax_age: 86400\n",
            )
            .await?;
        }
        Behaviour::Huge(bytes) => {
            tls.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n",
            )
            .await?;
            let line = b"mx: mail.example.test\n";
            let mut sent = 0;
            while sent < bytes {
                tls.write_all(line).await?;
                sent += line.len();
            }
            tls.shutdown().await?;
        }
        Behaviour::Drip(interval) => {
            tls.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 4096\r\n\r\nv",
            )
            .await?;
            tls.flush().await?;
            loop {
                tokio::time::sleep(interval).await;
                tls.write_all(b"e").await?;
                tls.flush().await?;
            }
        }
        Behaviour::Stall => {
            // Keep the connection open, say nothing.
            std::future::pending::<()>().await;
        }
    }
    Ok(())
}

async fn answer<S: tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
    status: u16,
    reason: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {reason}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await?;
    stream.shutdown().await
}
