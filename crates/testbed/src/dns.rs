//! An authoritative DNS server on loopback (hickory-server), serving zone files,
//! with failures on demand: SERVFAIL, REFUSED, silence (a timeout) and
//! truncation (forcing TCP). It counts the questions it receives, so tests can
//! prove that a run asks each question once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Metadata, ResponseCode};
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::RwLock;

use crate::TestbedError;
use crate::zones::{ZoneEntry, Zones, blocklists_for, unsigned_handler, without_dnssec_ok};

/// A failure the server produces for every name at or below a given name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer SERVFAIL.
    ServFail,
    /// Answer REFUSED.
    Refused,
    /// Never answer (the client times out).
    Timeout,
    /// Over UDP, answer with the TC bit and no records, so the client retries over TCP.
    Truncate,
    /// Answer correctly, but only after 1.5 s: past a short client timeout, so
    /// the answer arrives late on the client's socket.
    Late,
    /// Answer as a resolver or middlebox that does not know DNSSEC: the DO bit
    /// of the query is ignored, so no RRSIG, NSEC or NSEC3 comes back (RFC 3225
    /// §3); DNSKEY and DS still answer when asked for by type.
    StripDnssec,
    /// Answer SERVFAIL unless the query sets CD (checking disabled), as a
    /// validating resolver does for data that fails validation (RFC 4035 §3.2.2).
    ServFailUnlessCd,
}

impl Fault {
    fn parse(word: &str) -> Option<Fault> {
        match word {
            "servfail" => Some(Fault::ServFail),
            "refused" => Some(Fault::Refused),
            "timeout" => Some(Fault::Timeout),
            "truncate" => Some(Fault::Truncate),
            "late" => Some(Fault::Late),
            "strip-dnssec" => Some(Fault::StripDnssec),
            "servfail-unless-cd" => Some(Fault::ServFailUnlessCd),
            _ => None,
        }
    }
}

/// One zone: its origin and its text in master-file format (RFC 1035 §5).
#[derive(Debug, Clone)]
pub struct ZoneText {
    /// The origin, e.g. `example.test.`.
    pub origin: String,
    /// The master-file text.
    pub text: String,
}

#[derive(Default)]
struct QueryLog {
    total: AtomicU64,
    udp: AtomicU64,
    tcp: AtomicU64,
    by_question: Mutex<HashMap<(String, String), u64>>,
    udp_sources: Mutex<std::collections::HashSet<SocketAddr>>,
}

struct Lab {
    catalog: RwLock<Arc<Zones>>,
    faults: Mutex<Vec<(String, Fault)>>,
    log: QueryLog,
}

/// A running DNS server. Dropping it stops the server.
pub struct DnsServer {
    addr: SocketAddr,
    lab: Arc<Lab>,
    _server: Server<LabHandler>,
}

struct LabHandler(Arc<Lab>);

impl DnsServer {
    /// Starts a server on 127.0.0.1 (one port for UDP and TCP) serving every
    /// `*.zone` file in `dir`; the origin is the `$ORIGIN` line, or the file stem.
    /// A file `faults.txt` in `dir` adds faults, one `servfail|refused|timeout|truncate NAME`
    /// per line.
    pub async fn start_dir(dir: &Path) -> Result<DnsServer, TestbedError> {
        let (zones, faults) = read_dir(dir)?;
        Self::start_with_faults(&zones, &faults).await
    }

    /// Starts a server serving `zones`, with `faults` set.
    pub async fn start_with_faults(
        zones: &[ZoneText],
        faults: &[(String, Fault)],
    ) -> Result<DnsServer, TestbedError> {
        let server = Self::start(zones).await?;
        for (name, fault) in faults {
            server.set_fault(name, *fault);
        }
        Ok(server)
    }

    /// Starts a server on `addr` serving `zones`, with `faults` set.
    pub async fn start_with_faults_on(
        zones: &[ZoneText],
        faults: &[(String, Fault)],
        addr: SocketAddr,
    ) -> Result<DnsServer, TestbedError> {
        let server = Self::start_on(zones, addr).await?;
        for (name, fault) in faults {
            server.set_fault(name, *fault);
        }
        Ok(server)
    }

    /// Starts a server on 127.0.0.1 serving the given zones.
    pub async fn start(zones: &[ZoneText]) -> Result<DnsServer, TestbedError> {
        Self::start_on(
            zones,
            "127.0.0.1:0"
                .parse()
                .map_err(|_| std::io::Error::other("address"))?,
        )
        .await
    }

    /// Starts a server on `addr` (UDP and TCP on the same port; port 0 picks one).
    pub async fn start_on(zones: &[ZoneText], addr: SocketAddr) -> Result<DnsServer, TestbedError> {
        Self::start_handlers(zone_handlers(zones)?, addr).await
    }

    /// Starts a server on `addr` serving zone handlers built elsewhere (the
    /// signed worlds of `signed.rs`).
    pub(crate) async fn start_handlers(
        handlers: Vec<ZoneEntry>,
        addr: SocketAddr,
    ) -> Result<DnsServer, TestbedError> {
        let catalog = Zones::new(handlers);
        let lab = Arc::new(Lab {
            catalog: RwLock::new(Arc::new(catalog)),
            faults: Mutex::new(Vec::new()),
            log: QueryLog::default(),
        });
        let (udp, tcp) = bind_udp_tcp(addr).await?;
        let addr = udp.local_addr()?;
        let mut server = Server::new(LabHandler(lab.clone()));
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(10), 64);
        Ok(DnsServer {
            addr,
            lab,
            _server: server,
        })
    }

    /// The address to query (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Makes every name at or below `name` fail with `fault`.
    pub fn set_fault(&self, name: &str, fault: Fault) {
        let mut faults = lock(&self.lab.faults);
        faults.push((fqdn(name), fault));
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        lock(&self.lab.faults).clear();
    }

    /// Serves these zones from now on, in place of the previous ones.
    pub async fn replace_zones(&self, zones: &[ZoneText]) -> Result<(), TestbedError> {
        let catalog = Zones::new(zone_handlers(zones)?);
        *self.lab.catalog.write().await = Arc::new(catalog);
        Ok(())
    }

    /// Questions received so far, over UDP and TCP.
    pub fn query_count(&self) -> u64 {
        self.lab.log.total.load(Ordering::Relaxed)
    }

    /// Questions received over TCP so far.
    pub fn tcp_query_count(&self) -> u64 {
        self.lab.log.tcp.load(Ordering::Relaxed)
    }

    /// How many times `(name, type)` was asked; `rtype` as `"A"`, `"MX"`, …
    pub fn count_of(&self, name: &str, rtype: &str) -> u64 {
        lock(&self.lab.log.by_question)
            .get(&(fqdn(name), rtype.to_ascii_uppercase()))
            .copied()
            .unwrap_or(0)
    }

    /// How many distinct source addresses (IP and port) sent UDP queries.
    pub fn udp_source_count(&self) -> usize {
        lock(&self.lab.log.udp_sources).len()
    }

    /// Every question received so far with its count, sorted.
    pub fn questions(&self) -> Vec<((String, String), u64)> {
        let mut all: Vec<_> = lock(&self.lab.log.by_question)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        all.sort();
        all
    }
}

/// A UDP socket and a TCP listener on the same port, so that one `ip:port`
/// names a DNS server. With port 0 the TCP bind can lose a race for the port UDP
/// got, so a few ports are tried.
pub(crate) async fn bind_udp_tcp(
    addr: SocketAddr,
) -> Result<(UdpSocket, TcpListener), TestbedError> {
    let mut last_err = None;
    for _ in 0..20 {
        let udp = UdpSocket::bind(addr).await?;
        match TcpListener::bind(udp.local_addr()?).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last_err = Some(e),
        }
        if addr.port() != 0 {
            break;
        }
    }
    Err(TestbedError::Io(last_err.unwrap_or_else(|| {
        std::io::Error::other("no free port for UDP and TCP")
    })))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The data behind these locks stays consistent even if a holder panicked.
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

pub(crate) fn fqdn(name: &str) -> String {
    let mut s = name.to_ascii_lowercase();
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}

fn zone_handlers(zones: &[ZoneText]) -> Result<Vec<ZoneEntry>, TestbedError> {
    // The public blocklists are part of every world, as they are part of the
    // Internet, unless the world brings that part itself: a zone of the same
    // name or of a parent (a world serving `spamhaus.org.` owns its subtree).
    let origins: Vec<String> = zones.iter().map(|z| z.origin.clone()).collect();
    let lists = blocklists_for(&origins);
    zones.iter().chain(&lists).map(unsigned_handler).collect()
}

/// Zones and faults of a test world.
pub type World = (Vec<ZoneText>, Vec<(String, Fault)>);

/// Reads `*.zone` files and `faults.txt` from a folder.
pub fn read_dir(dir: &Path) -> Result<World, TestbedError> {
    let mut zones = Vec::new();
    let mut faults = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        if file_name == "faults.txt" {
            let text = std::fs::read_to_string(&path)?;
            faults.extend(parse_faults(&path.display().to_string(), &text)?);
        } else if let Some(stem) = file_name.strip_suffix(".zone") {
            let text = std::fs::read_to_string(&path)?;
            zones.push(zone_from_text(stem, text));
        }
    }
    Ok((zones, faults))
}

/// Parses `faults.txt`: one `servfail|refused|timeout|truncate NAME` per line.
pub fn parse_faults(path: &str, text: &str) -> Result<Vec<(String, Fault)>, TestbedError> {
    let mut faults = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(kind), Some(name)) = (words.next(), words.next()) else {
            return Err(TestbedError::Faults(format!(
                "{path}:{}: expected `FAULT NAME`",
                i + 1
            )));
        };
        let fault = Fault::parse(kind).ok_or_else(|| {
            TestbedError::Faults(format!(
                "{path}:{}: unknown fault `{kind}` (servfail, refused, timeout, truncate)",
                i + 1
            ))
        })?;
        faults.push((name.to_owned(), fault));
    }
    Ok(faults)
}

/// Zones compiled into the testbed (`(default origin, text)` pairs).
pub(crate) fn builtin_zones(zones: &[(&str, &str)]) -> Vec<ZoneText> {
    zones
        .iter()
        .map(|(origin, text)| zone_from_text(origin, (*text).to_owned()))
        .collect()
}

/// A zone whose origin is its `$ORIGIN` line if it has one, else `default_origin`.
pub fn zone_from_text(default_origin: &str, text: String) -> ZoneText {
    let origin = text
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("$ORIGIN")
                .map(|rest| rest.trim().to_owned())
        })
        .unwrap_or_else(|| fqdn(default_origin));
    ZoneText { origin, text }
}

/// Sends a response; a send failure (client gone) is reported as SERVFAIL info.
macro_rules! send {
    ($rh:expr, $msg:expr, $md:expr) => {
        match $rh.send_response($msg).await {
            Ok(info) => info,
            Err(_) => failed_info($md),
        }
    };
}

#[async_trait::async_trait]
impl RequestHandler for LabHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let lab = &self.0;
        let Ok(info) = request.request_info() else {
            let builder = MessageResponseBuilder::from_message_request(request);
            return send!(
                response_handle,
                builder.error_msg(&request.metadata, ResponseCode::FormErr),
                &request.metadata
            );
        };
        let qname = info.query.name().to_string().to_ascii_lowercase();
        let qtype = info.query.query_type().to_string();
        lab.log.total.fetch_add(1, Ordering::Relaxed);
        let tcp = request.protocol().to_string().eq_ignore_ascii_case("tcp");
        if tcp {
            lab.log.tcp.fetch_add(1, Ordering::Relaxed);
        } else {
            lab.log.udp.fetch_add(1, Ordering::Relaxed);
            lock(&lab.log.udp_sources).insert(request.src());
        }
        *lock(&lab.log.by_question)
            .entry((fqdn(&qname), qtype.clone()))
            .or_insert(0) += 1;

        let fault = lock(&lab.faults)
            .iter()
            .find(|(suffix, _)| {
                let q = fqdn(&qname);
                suffix == "." || q == *suffix || q.ends_with(&format!(".{suffix}"))
            })
            .map(|(_, f)| *f);
        // A validating resolver's view: SERVFAIL, unless CD asks for the data.
        let fault = match fault {
            Some(Fault::ServFailUnlessCd) if request.metadata.checking_disabled => None,
            Some(Fault::ServFailUnlessCd) => Some(Fault::ServFail),
            other => other,
        };
        match fault {
            Some(Fault::ServFail) | Some(Fault::Refused) => {
                let code = if fault == Some(Fault::ServFail) {
                    ResponseCode::ServFail
                } else {
                    ResponseCode::Refused
                };
                let builder = MessageResponseBuilder::from_message_request(request);
                return send!(
                    response_handle,
                    builder.error_msg(&request.metadata, code),
                    &request.metadata
                );
            }
            Some(Fault::Timeout) => {
                // Hold the request far longer than any client waits.
                tokio::time::sleep(Duration::from_secs(120)).await;
                let builder = MessageResponseBuilder::from_message_request(request);
                return send!(
                    response_handle,
                    builder.error_msg(&request.metadata, ResponseCode::ServFail),
                    &request.metadata
                );
            }
            Some(Fault::Truncate) if !tcp => {
                let builder = MessageResponseBuilder::from_message_request(request);
                let mut md = Metadata::response_from_request(&request.metadata);
                md.truncation = true;
                md.authoritative = true;
                return send!(
                    response_handle,
                    builder.build_no_records(md),
                    &request.metadata
                );
            }
            Some(Fault::Late) => tokio::time::sleep(Duration::from_millis(1500)).await,
            Some(Fault::StripDnssec) => {
                if let Some(stripped) = without_dnssec_ok(request) {
                    let zones = lab.catalog.read().await.clone();
                    return zones
                        .answer::<R, T>(&stripped, &qname, &qtype, response_handle)
                        .await;
                }
            }
            Some(Fault::Truncate) | Some(Fault::ServFailUnlessCd) | None => {}
        }
        let zones = lab.catalog.read().await.clone();
        zones
            .answer::<R, T>(request, &qname, &qtype, response_handle)
            .await
    }
}

fn failed_info(request_md: &Metadata) -> ResponseInfo {
    let mut md = Metadata::response_from_request(request_md);
    md.response_code = ResponseCode::ServFail;
    ResponseInfo::from(hickory_proto::op::Header {
        metadata: md,
        counts: hickory_proto::op::HeaderCounts::default(),
    })
}
