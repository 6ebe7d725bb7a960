//! The one place mxaudit talks DNS.
//!
//! [`Dns`] wraps one hickory-resolver for a whole run. It asks each question
//! `(name, type)` at most once per run, even when a thousand tasks ask it at the
//! same moment (the first asker's query is shared with the others), bounds the
//! queries in flight, and returns typed [`Answer`]s. No other crate imports hickory.

#![deny(missing_docs)]

mod answer;
mod cache;
mod derived;
mod dnssec;
mod multiplex;
mod name;
mod transport;

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hickory_resolver::Resolver;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};
use tokio::sync::Semaphore;

pub use answer::{Answer, LookupFailure, Rdata, Record, RecordSet};
pub use dnssec::{DnssecUnavailable, Security, TrustAnchor, TrustAnchorError, ValidatedAnswer};
pub use name::{DomainName, NameError, reverse_labels, reverse_name};

use cache::QuestionCache;
use derived::DerivedCache;
use multiplex::{MultiplexedUdp, Reply};
use transport::PooledUdpProvider;

/// Record types mxaudit asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RType {
    /// IPv4 address.
    A,
    /// IPv6 address.
    Aaaa,
    /// Mail exchanger.
    Mx,
    /// Text.
    Txt,
    /// Pointer.
    Ptr,
    /// Canonical name.
    Cname,
    /// Name server.
    Ns,
    /// Start of authority.
    Soa,
    /// Certification authority authorization.
    Caa,
    /// TLS association (DANE).
    Tlsa,
    /// Service locator.
    Srv,
    /// A type mxaudit does not ask for (only seen in answers).
    Other,
}

impl RType {
    fn to_hickory(self) -> RecordType {
        match self {
            RType::A => RecordType::A,
            RType::Aaaa => RecordType::AAAA,
            RType::Mx => RecordType::MX,
            RType::Txt => RecordType::TXT,
            RType::Ptr => RecordType::PTR,
            RType::Cname => RecordType::CNAME,
            RType::Ns => RecordType::NS,
            RType::Soa => RecordType::SOA,
            RType::Caa => RecordType::CAA,
            RType::Tlsa => RecordType::TLSA,
            RType::Srv => RecordType::SRV,
            // Never asked: `Dns::query` refuses it before this point.
            RType::Other => RecordType::Unknown(0),
        }
    }
}

impl std::fmt::Display for RType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RType::A => "A",
            RType::Aaaa => "AAAA",
            RType::Mx => "MX",
            RType::Txt => "TXT",
            RType::Ptr => "PTR",
            RType::Cname => "CNAME",
            RType::Ns => "NS",
            RType::Soa => "SOA",
            RType::Caa => "CAA",
            RType::Tlsa => "TLSA",
            RType::Srv => "SRV",
            RType::Other => "OTHER",
        })
    }
}

impl FromStr for RType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "A" => RType::A,
            "AAAA" => RType::Aaaa,
            "MX" => RType::Mx,
            "TXT" => RType::Txt,
            "PTR" => RType::Ptr,
            "CNAME" => RType::Cname,
            "NS" => RType::Ns,
            "SOA" => RType::Soa,
            "CAA" => RType::Caa,
            "TLSA" => RType::Tlsa,
            "SRV" => RType::Srv,
            other => {
                return Err(format!(
                    "unsupported record type `{other}` (A, AAAA, MX, TXT, PTR, CNAME, NS, SOA, CAA, TLSA, SRV)"
                ));
            }
        })
    }
}

/// How to reach DNS.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// Servers to ask (UDP, TCP when a UDP answer is truncated). Empty: the system
    /// resolver configuration (`/etc/resolv.conf`).
    pub nameservers: Vec<SocketAddr>,
    /// Time to wait for one try.
    pub timeout: Duration,
    /// Retries after the first try.
    pub attempts: usize,
    /// Questions in flight at once, across the whole run.
    pub concurrency: usize,
    /// Names remembered at most, with the answers of every type asked about
    /// them (shared names stay; see `cache.rs`).
    pub cache_capacity: usize,
    /// The DNSSEC trust anchor of [`Dns::query_validated`].
    pub trust_anchor: TrustAnchor,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            nameservers: Vec::new(),
            timeout: Duration::from_secs(3),
            attempts: 1,
            concurrency: 256,
            cache_capacity: 100_000,
            trust_anchor: TrustAnchor::IanaRoot,
        }
    }
}

/// Errors building the resolver.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DnsSetupError {
    /// The system resolver configuration could not be read.
    #[error("cannot read the system resolver configuration: {0}")]
    SystemConfig(String),
    /// The resolver could not be built.
    #[error("cannot build the DNS resolver: {0}")]
    Build(String),
    /// No nameserver is configured.
    #[error("no nameserver configured (give --nameserver IP[:PORT])")]
    NoNameserver,
    /// The DNSSEC trust anchor file cannot be used.
    #[error(transparent)]
    TrustAnchor(#[from] TrustAnchorError),
}

/// Counters of one run, for tests, benchmarks and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DnsStats {
    /// Questions sent to the resolver (cache misses).
    pub queries: u64,
    /// Questions answered from the per-run cache or joined to one in flight.
    pub shared: u64,
}

/// A DNS client for one run. Cheap to clone; clones share the cache and limits.
#[derive(Clone)]
pub struct Dns {
    inner: Arc<Inner>,
}

struct Inner {
    resolver: Resolver<PooledUdpProvider>,
    /// The fast path for one name server on loopback (multiplex.rs).
    multiplexed: Option<MultiplexedUdp>,
    nameservers: Vec<IpAddr>,
    limit: Semaphore,
    cache: QuestionCache,
    derived: DerivedCache,
    /// The validating path, built on the first validated question (dnssec/).
    validation: dnssec::Validation,
    queries: AtomicU64,
    shared: AtomicU64,
}

impl std::fmt::Debug for Dns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dns")
            .field("nameservers", &self.inner.nameservers)
            .finish_non_exhaustive()
    }
}

impl Dns {
    /// Builds the resolver. Does no I/O beyond reading the system configuration
    /// when no nameserver is given.
    pub fn new(config: &DnsConfig) -> Result<Dns, DnsSetupError> {
        let anchors = dnssec::Anchors::load(&config.trust_anchor)?;
        let mut opts = ResolverOpts::default();
        opts.timeout = config.timeout;
        opts.attempts = config.attempts;
        // The per-run cache below replaces hickory's: it keeps the rcode and shares
        // in-flight questions, and a run must not reuse answers of an earlier run.
        opts.cache_size = 0;
        // An audit asks the DNS, never /etc/hosts.
        opts.use_hosts_file = ResolveHosts::Never;
        // Keep the CNAME records of a chain: `mx.target_cname` needs them.
        opts.preserve_intermediates = true;
        opts.num_concurrent_reqs = 1;
        // Report TTLs as published: hickory clamps them to one day by default,
        // which would hide `mx.ttl_high` of 2 days. RFC 2181 §8: at most 2^31 - 1.
        opts.positive_max_ttl = Some(Duration::from_secs(i32::MAX as u64));
        opts.negative_max_ttl = Some(Duration::from_secs(i32::MAX as u64));
        opts.ndots = 0;
        let (resolver_config, nameservers) = if config.nameservers.is_empty() {
            let (system, _opts) = hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| DnsSetupError::SystemConfig(e.to_string()))?;
            // Audited names are absolute: no search list.
            let cfg = ResolverConfig::from_parts(None, vec![], system.name_servers().to_vec());
            let ips: Vec<IpAddr> = cfg.name_servers().iter().map(|ns| ns.ip).collect();
            (cfg, ips)
        } else {
            let servers: Vec<NameServerConfig> = config
                .nameservers
                .iter()
                .map(|addr| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = addr.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = addr.port();
                    NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
                })
                .collect();
            let ips = config.nameservers.iter().map(|a| a.ip()).collect();
            (ResolverConfig::from_parts(None, vec![], servers), ips)
        };
        if resolver_config.name_servers().is_empty() {
            return Err(DnsSetupError::NoNameserver);
        }
        // Reuse UDP sockets only where no off-path spoofing is possible
        // (transport.rs): every name server on loopback.
        let reuse = nameservers.iter().all(IpAddr::is_loopback);
        // The pooled sockets keep their first port anyway: let the kernel pick
        // it rather than hickory's random tries (which may collide).
        opts.os_port_selection = reuse;
        let provider = PooledUdpProvider::new(reuse);
        let validation = dnssec::Validation::new(
            resolver_config.name_servers().to_vec(),
            opts.clone(),
            provider.clone(),
            anchors,
            config.cache_capacity,
        );
        let resolver = Resolver::builder_with_config(resolver_config, provider)
            .with_options(opts)
            .build()
            .map_err(|e| DnsSetupError::Build(e.to_string()))?;
        let multiplexed = match config.nameservers.as_slice() {
            [one] if one.ip().is_loopback() => {
                Some(MultiplexedUdp::new(*one, config.timeout, config.attempts))
            }
            _ => None,
        };
        Ok(Dns {
            inner: Arc::new(Inner {
                resolver,
                multiplexed,
                nameservers,
                limit: Semaphore::new(config.concurrency.max(1)),
                cache: QuestionCache::with_capacity(config.cache_capacity),
                derived: DerivedCache::with_capacity(config.cache_capacity),
                validation,
                queries: AtomicU64::new(0),
                shared: AtomicU64::new(0),
            }),
        })
    }

    /// The addresses of the servers asked.
    pub fn nameservers(&self) -> &[IpAddr] {
        &self.inner.nameservers
    }

    /// Counters so far.
    pub fn stats(&self) -> DnsStats {
        DnsStats {
            queries: self.inner.queries.load(Ordering::Relaxed),
            shared: self.inner.shared.load(Ordering::Relaxed),
        }
    }

    /// Asks `(name, rtype)`, once per run: later and concurrent askers share the
    /// first answer.
    pub async fn query(&self, name: &DomainName, rtype: RType) -> Arc<Answer> {
        if rtype == RType::Other {
            return Arc::new(Answer::Failed(LookupFailure::Malformed(
                "record type OTHER cannot be asked".to_owned(),
            )));
        }
        let cell = self.inner.cache.cell(name.as_str(), rtype);
        let mut asked = false;
        let answer = cell
            .get_or_init(|| async {
                asked = true;
                Arc::new(self.ask(name, rtype).await)
            })
            .await
            .clone();
        if !asked {
            self.inner.shared.fetch_add(1, Ordering::Relaxed);
        }
        answer
    }

    /// Asks `(name, rtype)` with DNSSEC validation from the configured trust
    /// anchor, once per run, and says whether the answer is secure, insecure,
    /// bogus (with the broken link) or indeterminate. The validating client is
    /// built, and the resolver probed for DNSSEC support, on the first call;
    /// when the resolver cannot carry DNSSEC, every call returns that one
    /// run-level problem (also kept in [`Dns::dnssec_unavailable`]).
    pub async fn query_validated(
        &self,
        name: &DomainName,
        rtype: RType,
    ) -> Result<Arc<ValidatedAnswer>, Arc<DnssecUnavailable>> {
        let Ok(_permit) = self.inner.limit.acquire().await else {
            return Err(Arc::new(DnssecUnavailable::Build(
                "DNS client shut down".to_owned(),
            )));
        };
        self.inner.validation.query(name, rtype).await
    }

    /// Why this run cannot validate DNSSEC, once a validated question has
    /// found out; for the pipeline to report once.
    pub fn dnssec_unavailable(&self) -> Option<Arc<DnssecUnavailable>> {
        self.inner.validation.unavailable()
    }

    /// A result derived from answers (e.g. a domain's MX hosts with their
    /// addresses), computed once per run for `key` and type `T`, however many
    /// checks ask for it; concurrent askers wait for the first one. `compute`
    /// must depend only on the run's inputs: DNS answers (through this
    /// client), `key`, and what the run fetches once for all its checks (a
    /// domain's MTA-STS policy: the key then names the fetch options).
    pub async fn derived<T, F, Fut>(&self, key: &str, compute: F) -> Arc<T>
    where
        T: Send + Sync + 'static,
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        let cell = self.inner.derived.cell::<T>(key);
        let value = cell
            .get_or_init(|| async {
                let v: Arc<dyn std::any::Any + Send + Sync> = Arc::new(compute().await);
                v
            })
            .await
            .clone();
        match value.downcast::<T>() {
            Ok(v) => v,
            // Cannot happen (the key includes T's TypeId); compute it afresh
            // rather than fail.
            Err(_) => Arc::new(compute().await),
        }
    }

    async fn ask(&self, name: &DomainName, rtype: RType) -> Answer {
        // The semaphore is never closed, so acquire cannot fail; treat it as a
        // failure of the question rather than panic if that ever changes.
        let Ok(_permit) = self.inner.limit.acquire().await else {
            return Answer::Failed(LookupFailure::Unreachable(
                "DNS client shut down".to_owned(),
            ));
        };
        self.inner.queries.fetch_add(1, Ordering::Relaxed);
        if let Some(fast) = &self.inner.multiplexed
            && let Some(reply) = fast.ask(name.as_str(), rtype.to_hickory()).await
        {
            return from_reply(reply, rtype);
        }
        match self
            .inner
            .resolver
            .lookup(name.as_str(), rtype.to_hickory())
            .await
        {
            Ok(lookup) => from_records(lookup.answers(), rtype, None),
            Err(e) => classify(e),
        }
    }
}

/// An answer section as an answer, for both paths: NODATA when it holds
/// nothing of the type asked (nor a CNAME toward it), with `empty_ttl` as the
/// negative TTL when it holds nothing at all.
fn from_records(
    answers: &[hickory_resolver::proto::rr::Record],
    rtype: RType,
    empty_ttl: Option<u32>,
) -> Answer {
    let records: Vec<Record> = answers.iter().filter_map(convert).collect();
    if records.is_empty() {
        return Answer::NoData {
            negative_ttl: empty_ttl,
        };
    }
    let has_asked = records.iter().any(|r| r.data.rtype() == rtype)
        || records.iter().any(|r| matches!(r.data, Rdata::Cname(_)));
    if has_asked {
        Answer::Records(RecordSet(records))
    } else {
        Answer::NoData { negative_ttl: None }
    }
}

/// The fast path's reply as an answer, the same as hickory's path gives for
/// the same reply (see `classify` and `Dns::ask`).
fn from_reply(reply: Reply, rtype: RType) -> Answer {
    match reply {
        Reply::Message(m) => {
            let negative_ttl = negative_ttl(&m.authorities);
            if m.metadata.response_code == ResponseCode::NXDomain {
                return Answer::NxDomain { negative_ttl };
            }
            from_records(&m.answers, rtype, negative_ttl)
        }
        Reply::Rcode(ResponseCode::ServFail) => Answer::Failed(LookupFailure::ServFail),
        Reply::Rcode(ResponseCode::Refused) => Answer::Failed(LookupFailure::Refused),
        Reply::Rcode(rc) => Answer::Failed(LookupFailure::OtherRcode(rc.to_string())),
        Reply::Timeout => Answer::Failed(LookupFailure::Timeout),
        Reply::Io(e) => Answer::Failed(LookupFailure::Unreachable(e)),
    }
}

/// RFC 2308 §5: a negative answer lives min(SOA TTL, SOA MINIMUM).
fn negative_ttl(authorities: &[hickory_resolver::proto::rr::Record]) -> Option<u32> {
    authorities.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
        _ => None,
    })
}

fn classify(e: NetError) -> Answer {
    match e {
        NetError::Dns(DnsError::NoRecordsFound(nr)) => {
            if nr.response_code == ResponseCode::NXDomain {
                Answer::NxDomain {
                    negative_ttl: nr.negative_ttl,
                }
            } else {
                Answer::NoData {
                    negative_ttl: nr.negative_ttl,
                }
            }
        }
        NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail)) => {
            Answer::Failed(LookupFailure::ServFail)
        }
        NetError::Dns(DnsError::ResponseCode(ResponseCode::Refused)) => {
            Answer::Failed(LookupFailure::Refused)
        }
        NetError::Dns(DnsError::ResponseCode(rc)) => {
            Answer::Failed(LookupFailure::OtherRcode(rc.to_string()))
        }
        NetError::Timeout => Answer::Failed(LookupFailure::Timeout),
        NetError::Io(io) => Answer::Failed(LookupFailure::Unreachable(io.to_string())),
        NetError::NoConnections => {
            Answer::Failed(LookupFailure::Unreachable("no connections".to_owned()))
        }
        NetError::Busy => Answer::Failed(LookupFailure::Unreachable("busy".to_owned())),
        NetError::Proto(p) => Answer::Failed(LookupFailure::Malformed(p.to_string())),
        other => Answer::Failed(LookupFailure::Malformed(other.to_string())),
    }
}

fn lower_fqdn(name: &hickory_resolver::proto::rr::Name) -> String {
    let mut s = name.to_ascii().to_ascii_lowercase();
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}

fn convert(r: &hickory_resolver::proto::rr::Record) -> Option<Record> {
    let data = match &r.data {
        RData::A(a) => Rdata::A(a.0),
        RData::AAAA(a) => Rdata::Aaaa(a.0),
        RData::MX(mx) => Rdata::Mx {
            preference: mx.preference,
            exchange: lower_fqdn(&mx.exchange),
        },
        RData::TXT(t) => Rdata::Txt(t.txt_data.iter().map(|s| s.to_vec()).collect()),
        RData::PTR(p) => Rdata::Ptr(lower_fqdn(&p.0)),
        RData::CNAME(c) => Rdata::Cname(lower_fqdn(&c.0)),
        RData::NS(n) => Rdata::Ns(lower_fqdn(&n.0)),
        RData::SOA(soa) => Rdata::Soa {
            mname: lower_fqdn(&soa.mname),
            minimum: soa.minimum,
        },
        RData::TLSA(t) => Rdata::Tlsa {
            usage: u8::from(t.cert_usage),
            selector: u8::from(t.selector),
            matching: u8::from(t.matching),
            data: t.cert_data.clone(),
        },
        other => Rdata::Other {
            rtype: other.record_type().to_string(),
            text: other.to_string(),
        },
    };
    Some(Record {
        name: lower_fqdn(&r.name),
        ttl: r.ttl,
        data,
    })
}
