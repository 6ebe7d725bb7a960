//! A scripted DNS server: answers from an in-memory table that a test replaces
//! while the server runs, with the conventions of the openspf test suite
//! (`rfc7208-tests.yml`) as its reference driver, pyspf, applies them:
//!
//! - a name's `SPF` entries double as `TXT` records, unless the name has any
//!   `TXT` entry (including `TXT: NONE`);
//! - `TXT: NONE` means the name has no TXT record at all;
//! - `TIMEOUT` makes the server stay silent, but only for questions of a type the
//!   name has no record of;
//! - a `CNAME` entry is answered with the alias and the records of its target
//!   (followed at most 8 times, so a CNAME loop ends);
//! - a name the table does not hold is NXDOMAIN; a name it holds without records
//!   of the asked type is NODATA (questions of type SPF too: RFC 7208 §3.1
//!   retired it, and mxaudit never asks it).
//!
//! Names are compared label by label on their raw bytes (ASCII case folded), so
//! the suite's names with `:`, `/`, `%` or spaces in labels are served as they
//! are written. One port serves UDP and TCP, and the server counts questions.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use hickory_proto::op::{Metadata, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, PTR, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

use crate::TestbedError;

/// CNAME records followed at most, so that a CNAME loop ends.
const MAX_CNAME_CHAIN: usize = 8;
/// How long a `TIMEOUT` question is held: longer than any test client waits.
const SILENCE: Duration = Duration::from_secs(60);

/// One entry of a scripted name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptedRecord {
    /// IPv4 address.
    A(Ipv4Addr),
    /// IPv6 address.
    Aaaa(Ipv6Addr),
    /// Mail exchanger; `exchange` empty or `"."` is the root (a null MX, RFC 7505).
    Mx {
        /// Lower is preferred.
        preference: u16,
        /// Host name.
        exchange: String,
    },
    /// A TXT record: its character-strings, as bytes.
    Txt(Vec<Vec<u8>>),
    /// An SPF-type record (RR type 99): served as TXT unless the name has TXT entries.
    Spf(Vec<Vec<u8>>),
    /// Pointer.
    Ptr(String),
    /// Alias.
    Cname(String),
    /// `TXT: NONE`: no TXT record, and SPF entries do not double as TXT.
    TxtNone,
    /// `TIMEOUT`: questions with no answer of the asked type go unanswered.
    Timeout,
}

/// The table a [`ScriptedDns`] answers from.
#[derive(Debug, Clone, Default)]
pub struct ScriptedZone {
    names: HashMap<String, Vec<ScriptedRecord>>,
}

impl ScriptedZone {
    /// An empty table: every name is NXDOMAIN.
    pub fn new() -> ScriptedZone {
        ScriptedZone::default()
    }

    /// Adds an entry to `name` (case-insensitive, trailing dot optional).
    pub fn add(&mut self, name: &str, record: ScriptedRecord) {
        self.names.entry(key(name)).or_default().push(record);
    }

    /// Makes `name` exist with no records (NODATA for every type).
    pub fn touch(&mut self, name: &str) {
        self.names.entry(key(name)).or_default();
    }

    /// Number of names held.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when no name is held.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// The lookup key of a name written as text: ASCII-lowercase, no trailing dot.
fn key(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// The lookup key of a name on the wire: raw label bytes, ASCII-lowercase.
fn wire_key(name: &Name) -> String {
    let labels: Vec<String> = name
        .iter()
        .map(|label| String::from_utf8_lossy(&label.to_ascii_lowercase()).into_owned())
        .collect();
    labels.join(".")
}

/// A name written as text, labels taken byte for byte (no IDNA, no escapes), so
/// that `foo:bar/baz.example.com` stays what it says. `None` when a label is
/// empty or too long.
fn wire_name(text: &str) -> Option<Name> {
    let bare = text.strip_suffix('.').unwrap_or(text);
    if bare.is_empty() {
        return Some(Name::root());
    }
    let mut name = Name::from_labels(bare.split('.').map(str::as_bytes)).ok()?;
    name.set_fqdn(true);
    Some(name)
}

#[derive(Default)]
struct Counters {
    total: AtomicU64,
    silenced: AtomicU64,
    by_question: Mutex<HashMap<(String, String), u64>>,
}

struct Script {
    zone: RwLock<ScriptedZone>,
    counters: Counters,
}

struct ScriptHandler(Arc<Script>);

/// A running scripted DNS server on 127.0.0.1. Dropping it stops the server.
pub struct ScriptedDns {
    addr: SocketAddr,
    script: Arc<Script>,
    _server: Server<ScriptHandler>,
}

impl std::fmt::Debug for ScriptedDns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedDns")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The counters stay consistent even if a holder panicked.
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl ScriptedDns {
    /// Starts the server on 127.0.0.1, one port for UDP and TCP, answering from `zone`.
    pub async fn start(zone: ScriptedZone) -> Result<ScriptedDns, TestbedError> {
        let script = Arc::new(Script {
            zone: RwLock::new(zone),
            counters: Counters::default(),
        });
        let any: SocketAddr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let (udp, tcp) = crate::dns::bind_udp_tcp(any).await?;
        let addr = udp.local_addr()?;
        let mut server = Server::new(ScriptHandler(script.clone()));
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(10), 64);
        Ok(ScriptedDns {
            addr,
            script,
            _server: server,
        })
    }

    /// The address to query (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answers from `zone` from now on.
    pub fn replace(&self, zone: ScriptedZone) {
        let mut current = match self.script.zone.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        *current = zone;
    }

    /// Questions received so far.
    pub fn query_count(&self) -> u64 {
        self.script.counters.total.load(Ordering::Relaxed)
    }

    /// Questions left unanswered so far (`TIMEOUT`).
    pub fn silenced_count(&self) -> u64 {
        self.script.counters.silenced.load(Ordering::Relaxed)
    }

    /// How many times `(name, type)` was asked; `rtype` as `"TXT"`, `"A"`, …
    pub fn count_of(&self, name: &str, rtype: &str) -> u64 {
        lock(&self.script.counters.by_question)
            .get(&(key(name), rtype.to_ascii_uppercase()))
            .copied()
            .unwrap_or(0)
    }

    /// Sets every counter back to zero.
    pub fn reset_counts(&self) {
        self.script.counters.total.store(0, Ordering::Relaxed);
        self.script.counters.silenced.store(0, Ordering::Relaxed);
        lock(&self.script.counters.by_question).clear();
    }
}

/// What the table says about one question.
enum Reply {
    NxDomain,
    Records(Vec<Record>),
    Silence,
}

fn rdata(entry: &ScriptedRecord, qtype: RecordType, name_has_txt: bool) -> Option<RData> {
    let txt = |strings: &Vec<Vec<u8>>| {
        RData::TXT(TXT::from_bytes(strings.iter().map(Vec::as_slice).collect()))
    };
    match (entry, qtype) {
        (ScriptedRecord::A(ip), RecordType::A) => Some(RData::A(A(*ip))),
        (ScriptedRecord::Aaaa(ip), RecordType::AAAA) => Some(RData::AAAA(AAAA(*ip))),
        (
            ScriptedRecord::Mx {
                preference,
                exchange,
            },
            RecordType::MX,
        ) => wire_name(exchange).map(|n| RData::MX(MX::new(*preference, n))),
        (ScriptedRecord::Txt(strings), RecordType::TXT) => Some(txt(strings)),
        (ScriptedRecord::Spf(strings), RecordType::TXT) if !name_has_txt => Some(txt(strings)),
        (ScriptedRecord::Ptr(target), RecordType::PTR) => {
            wire_name(target).map(|n| RData::PTR(PTR(n)))
        }
        _ => None,
    }
}

fn answer(zone: &ScriptedZone, qname: &Name, qtype: RecordType) -> Reply {
    let mut records = Vec::new();
    let mut owner = qname.clone();
    let mut first = true;
    for _ in 0..=MAX_CNAME_CHAIN {
        let Some(entries) = zone.names.get(&wire_key(&owner)) else {
            // The asked name itself is missing: NXDOMAIN. A CNAME target that is
            // missing leaves the aliases already collected.
            return if first {
                Reply::NxDomain
            } else {
                Reply::Records(records)
            };
        };
        let name_has_txt = entries
            .iter()
            .any(|e| matches!(e, ScriptedRecord::Txt(_) | ScriptedRecord::TxtNone));
        let mut alias = None;
        let mut of_type = 0usize;
        for entry in entries {
            if let ScriptedRecord::Cname(target) = entry {
                if let Some(target) = wire_name(target) {
                    records.push(Record::from_rdata(
                        owner.clone(),
                        300,
                        RData::CNAME(CNAME(target.clone())),
                    ));
                    alias = Some(target);
                }
            } else if let Some(data) = rdata(entry, qtype, name_has_txt) {
                records.push(Record::from_rdata(owner.clone(), 300, data));
                of_type += 1;
            }
        }
        // pyspf's driver: TIMEOUT only when nothing of the asked type is served.
        if first && of_type == 0 && alias.is_none() && entries.contains(&ScriptedRecord::Timeout) {
            return Reply::Silence;
        }
        first = false;
        match alias {
            Some(target) => owner = target,
            None => break,
        }
    }
    Reply::Records(records)
}

fn failed_info(request_md: &Metadata) -> ResponseInfo {
    let mut md = Metadata::response_from_request(request_md);
    md.response_code = ResponseCode::ServFail;
    ResponseInfo::from(hickory_proto::op::Header {
        metadata: md,
        counts: hickory_proto::op::HeaderCounts::default(),
    })
}

#[async_trait::async_trait]
impl RequestHandler for ScriptHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let script = &self.0;
        let builder = MessageResponseBuilder::from_message_request(request);
        let Ok(info) = request.request_info() else {
            return match response_handle
                .send_response(builder.error_msg(&request.metadata, ResponseCode::FormErr))
                .await
            {
                Ok(i) => i,
                Err(_) => failed_info(&request.metadata),
            };
        };
        let qname: Name = info.query.name().into();
        let qtype = info.query.query_type();
        script.counters.total.fetch_add(1, Ordering::Relaxed);
        *lock(&script.counters.by_question)
            .entry((wire_key(&qname), qtype.to_string()))
            .or_insert(0) += 1;

        let reply = {
            let zone = match script.zone.read() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            answer(&zone, &qname, qtype)
        };
        let mut md = Metadata::response_from_request(&request.metadata);
        md.authoritative = true;
        let sent = match reply {
            Reply::Silence => {
                script.counters.silenced.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(SILENCE).await;
                return failed_info(&request.metadata);
            }
            Reply::NxDomain => {
                md.response_code = ResponseCode::NXDomain;
                response_handle
                    .send_response(builder.build_no_records(md))
                    .await
            }
            Reply::Records(records) => {
                response_handle
                    .send_response(builder.build(md, records.iter(), [], [], []))
                    .await
            }
        };
        match sent {
            Ok(i) => i,
            // The answer cannot be encoded (e.g. a TXT string over 255 bytes):
            // say SERVFAIL rather than leave the client waiting.
            Err(_) => {
                let builder = MessageResponseBuilder::from_message_request(request);
                match response_handle
                    .send_response(builder.error_msg(&request.metadata, ResponseCode::ServFail))
                    .await
                {
                    Ok(i) => i,
                    Err(_) => failed_info(&request.metadata),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_fold_case_and_dots() {
        assert_eq!(key("Foo.Example.COM."), "foo.example.com");
        let n = wire_name("foo:bar/baz.Example.com").expect("raw labels");
        assert_eq!(wire_key(&n), "foo:bar/baz.example.com");
        assert_eq!(wire_name("").expect("root"), Name::root());
        assert!(wire_name(&"a".repeat(64)).is_none());
    }

    #[test]
    fn spf_doubles_as_txt_unless_txt_exists() {
        let mut z = ScriptedZone::new();
        z.add("a.test", ScriptedRecord::Spf(vec![b"v=spf1 -all".to_vec()]));
        z.add("b.test", ScriptedRecord::Spf(vec![b"v=spf1 -all".to_vec()]));
        z.add("b.test", ScriptedRecord::TxtNone);
        z.add("b.test", ScriptedRecord::Timeout);
        let q = |n: &str| wire_name(n).expect("name");
        assert!(
            matches!(answer(&z, &q("a.test"), RecordType::TXT), Reply::Records(r) if r.len() == 1)
        );
        assert!(matches!(
            answer(&z, &q("b.test"), RecordType::TXT),
            Reply::Silence
        ));
        assert!(matches!(
            answer(&z, &q("c.test"), RecordType::TXT),
            Reply::NxDomain
        ));
        assert!(
            matches!(answer(&z, &q("a.test"), RecordType::A), Reply::Records(r) if r.is_empty())
        );
    }

    #[test]
    fn cname_loops_end() {
        let mut z = ScriptedZone::new();
        z.add("loop.test", ScriptedRecord::Cname("loop.test".into()));
        let Reply::Records(r) = answer(&z, &wire_name("loop.test").expect("name"), RecordType::A)
        else {
            panic!("records expected");
        };
        assert_eq!(r.len(), MAX_CNAME_CHAIN + 1);
    }
}
