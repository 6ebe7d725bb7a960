//! Many questions over a few long-lived UDP sockets, for one name server on
//! loopback.
//!
//! hickory's resolver spends most of the CPU of a large audit on its own
//! machinery per query (a request future, a retry stream, a socket per query,
//! its shared-lookup bookkeeping): ~37 µs of CPU per question against ~6 µs
//! that dnsperf needs (docs/performance.md). For the common case, a name
//! server on loopback (a local recursive resolver, a benchmark world, the
//! testbed), this module asks directly: each question is a hickory-proto
//! message with a fresh id on one of a few connected sockets, a reader task
//! per socket hands each reply to the waiting asker by id, and the asker
//! checks the question section (RFC 5452 §9.1: id, addresses and question
//! must all match). No off-path attacker can inject packets on loopback, so
//! the fixed source ports give up nothing there (transport.rs says the same
//! for the pooled sockets).
//!
//! Only the plain outcomes are decided here: an answer, NXDOMAIN or NODATA
//! with the SOA's negative TTL (RFC 2308 §5), SERVFAIL, REFUSED, other
//! rcodes, and no reply within the timeout after every attempt. A truncated
//! reply (TCP needed), a CNAME chain that stops short of the type asked (the
//! target must be chased), or a reply that cannot be decoded returns `None`,
//! and the caller asks hickory, which handles those.
//!
//! Written by hand: hickory's UDP client binds a socket per request, and its
//! `DnsMultiplexer` would need a stream wrapper around `UdpStream` and then
//! matches replies by id alone (not the source or the question); here the
//! socket is connected (the kernel drops other sources) and the question is
//! checked.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_resolver::proto::op::{Edns, Message, Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use tokio::net::UdpSocket;
use tokio::sync::{OnceCell, oneshot};
use tokio::task::JoinHandle;

use crate::cache::lock;

/// Sockets per name server: enough to spread the receive work and keep each
/// socket's id space far from full.
const SOCKETS: usize = 4;
/// RFC 6891 §6.2.5 / DNS Flag Day 2020: the EDNS UDP size that avoids
/// fragmentation; hickory uses the same.
const EDNS_PAYLOAD: u16 = 1232;
/// CNAMEs followed within one reply before giving up the fast path.
const MAX_CHAIN: usize = 16;
/// Questions waiting on one socket at most (of 65,536 ids).
const MAX_IN_FLIGHT_PER_SOCKET: usize = 32_768;

type Waiters = Mutex<HashMap<u16, oneshot::Sender<Vec<u8>>>>;

struct Lane {
    socket: Arc<UdpSocket>,
    waiters: Arc<Waiters>,
    next_id: AtomicU16,
    reader: JoinHandle<()>,
}

impl Drop for Lane {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// What the fast path decided.
pub(crate) enum Reply {
    /// A reply with records, or NOERROR/NXDOMAIN without (the message, for
    /// the caller's conversion).
    Message(Box<Message>),
    /// An rcode other than NOERROR and NXDOMAIN.
    Rcode(ResponseCode),
    /// No reply after every attempt.
    Timeout,
    /// The socket failed (e.g. ICMP port unreachable: nothing listens).
    Io(String),
}

/// A multiplexed UDP client for one name server on loopback.
pub(crate) struct MultiplexedUdp {
    server: SocketAddr,
    timeout: Duration,
    attempts: usize,
    lanes: OnceCell<Vec<Lane>>,
    next_lane: AtomicUsize,
}

impl MultiplexedUdp {
    pub(crate) fn new(server: SocketAddr, timeout: Duration, attempts: usize) -> MultiplexedUdp {
        MultiplexedUdp {
            server,
            timeout,
            attempts,
            lanes: OnceCell::new(),
            next_lane: AtomicUsize::new(0),
        }
    }

    /// The sockets, opened on first use (inside the runtime).
    async fn lanes(&self) -> std::io::Result<&[Lane]> {
        let lanes = self
            .lanes
            .get_or_try_init(|| async {
                let mut lanes = Vec::with_capacity(SOCKETS);
                for _ in 0..SOCKETS {
                    let local: SocketAddr = if self.server.is_ipv4() {
                        ([127, 0, 0, 1], 0).into()
                    } else {
                        (std::net::Ipv6Addr::LOCALHOST, 0).into()
                    };
                    let socket = UdpSocket::bind(local).await?;
                    // Connected: the kernel drops datagrams from any other source.
                    socket.connect(self.server).await?;
                    let socket = Arc::new(socket);
                    let waiters: Arc<Waiters> = Arc::default();
                    let reader = tokio::spawn(read_replies(socket.clone(), waiters.clone()));
                    lanes.push(Lane {
                        socket,
                        waiters,
                        // Ids start at a random point; on loopback they only need
                        // to be distinct among the questions in flight.
                        next_id: AtomicU16::new(seed_id()),
                        reader,
                    });
                }
                Ok::<_, std::io::Error>(lanes)
            })
            .await?;
        Ok(lanes)
    }

    /// Asks `name` `rtype`. `None`: leave it to hickory (see the module comment).
    pub(crate) async fn ask(&self, name: &str, rtype: RecordType) -> Option<Reply> {
        let qname = Name::from_ascii(name).ok()?;
        let lanes = match self.lanes().await {
            Ok(l) => l,
            Err(e) => return Some(Reply::Io(e.to_string())),
        };
        let lane = &lanes[self.next_lane.fetch_add(1, Ordering::Relaxed) % lanes.len()];
        let query = Query::query(qname.clone(), rtype);
        for _ in 0..=self.attempts {
            let (tx, mut rx) = oneshot::channel();
            let id = {
                let mut waiters = lock(&lane.waiters);
                // A socket's id space is nearly used up only with an absurd
                // `[resolver] concurrency`; hickory takes the question then.
                if waiters.len() >= MAX_IN_FLIGHT_PER_SOCKET {
                    return None;
                }
                let mut id = lane.next_id.fetch_add(1, Ordering::Relaxed);
                while waiters.contains_key(&id) {
                    id = lane.next_id.fetch_add(1, Ordering::Relaxed);
                }
                waiters.insert(id, tx);
                id
            };
            let mut message = Message::query();
            message.metadata.id = id;
            message.metadata.recursion_desired = true;
            message.add_query(query.clone());
            let mut edns = Edns::new();
            edns.set_max_payload(EDNS_PAYLOAD);
            message.set_edns(edns);
            let Ok(bytes) = message.to_vec() else {
                forget(lane, id);
                return None;
            };
            if let Err(e) = lane.socket.send(&bytes).await {
                forget(lane, id);
                return Some(Reply::Io(e.to_string()));
            }
            let deadline = tokio::time::Instant::now() + self.timeout;
            loop {
                match tokio::time::timeout_at(deadline, &mut rx).await {
                    Ok(Ok(reply)) => match Message::from_vec(&reply) {
                        // RFC 5452 §9.1: the question must be the one asked;
                        // a reply that is not is ignored (as hickory does).
                        Ok(m) if m.queries.len() == 1 && m.queries[0] == query => {
                            return decide(m, &qname, rtype);
                        }
                        Ok(_) | Err(_) => {
                            let (tx, new_rx) = oneshot::channel();
                            rx = new_rx;
                            lock(&lane.waiters).insert(id, tx);
                        }
                    },
                    // The reader stopped: the socket failed.
                    Ok(Err(_)) => return Some(Reply::Io("the UDP socket closed".to_owned())),
                    Err(_) => {
                        forget(lane, id);
                        break;
                    }
                }
            }
        }
        Some(Reply::Timeout)
    }
}

fn forget(lane: &Lane, id: u16) {
    lock(&lane.waiters).remove(&id);
}

fn seed_id() -> u16 {
    // Distinct starting points per socket and per run; not a secret (loopback).
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (nanos ^ (nanos >> 16)) as u16
}

/// Hands each reply to the asker waiting for its id; replies nobody waits for
/// (late, duplicated, forged) are dropped.
async fn read_replies(socket: Arc<UdpSocket>, waiters: Arc<Waiters>) {
    let mut buf = vec![0u8; 65_535];
    loop {
        let n = match socket.recv(&mut buf).await {
            Ok(n) => n,
            // ICMP errors (port unreachable) surface here on a connected
            // socket; the askers time out or see the send fail. A pause, so
            // that an error that repeats cannot spin this task.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        let Some(id) = buf.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])) else {
            continue;
        };
        let waiter = lock(&waiters).remove(&id);
        if let Some(tx) = waiter {
            let _ = tx.send(buf[..n].to_vec());
        }
    }
}

/// The plain outcomes; `None` for what hickory must handle.
fn decide(m: Message, qname: &Name, rtype: RecordType) -> Option<Reply> {
    if m.metadata.truncation {
        return None;
    }
    match m.metadata.response_code {
        ResponseCode::NoError => {}
        // NXDOMAIN at the end of a CNAME chain: hickory reports it its way.
        ResponseCode::NXDomain if m.answers.is_empty() => {}
        ResponseCode::NXDomain => return None,
        // FORMERR: perhaps a server that does not take EDNS; hickory asks it
        // its own way.
        ResponseCode::FormErr => return None,
        rcode => return Some(Reply::Rcode(rcode)),
    }
    if !m.answers.is_empty() && rtype != RecordType::CNAME && !chain_complete(&m, qname, rtype) {
        return None;
    }
    Some(Reply::Message(Box::new(m)))
}

/// True when the answer section leads from `qname` through CNAMEs to a record
/// of `rtype`, or has no CNAME at `qname` at all (then it is what it is).
fn chain_complete(m: &Message, qname: &Name, rtype: RecordType) -> bool {
    let mut current = qname.clone();
    for _ in 0..MAX_CHAIN {
        if m.answers
            .iter()
            .any(|r| r.name == current && r.record_type() == rtype)
        {
            return true;
        }
        match m.answers.iter().find_map(|r| match &r.data {
            RData::CNAME(target) if r.name == current => Some(target.0.clone()),
            _ => None,
        }) {
            Some(next) => current = next,
            // No CNAME here: complete only if we never followed one.
            None => return current == *qname,
        }
    }
    false
}
