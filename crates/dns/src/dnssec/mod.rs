//! Questions answered with DNSSEC validation (RFC 4033-4035), for the checks
//! that need to know whether an answer can be trusted (`dnssec`, `dane`).
//!
//! The ordinary path (`Dns::query`: the question cache, the loopback fast
//! path, hickory's resolver without validation) is untouched. The validating
//! path is built on first use, once per run:
//!
//! - hickory-net's `DnssecDnsHandle` (0.26.3, feature `dnssec-aws-lc-rs`)
//!   over a `RetryDnsHandle<NameServerPool>` of the same name servers. It
//!   sends every question with DO=1 and CD=0, fetches the DNSKEY and DS
//!   records of each zone up to the trust anchor, and marks each record with
//!   a `Proof` (Secure, Insecure, Bogus, Indeterminate). The resolver-level
//!   API (`ResolverOpts::validate`, `ResolverBuilder::with_trust_anchor`)
//!   collapses a bogus answer into `DnsError::DnssecBogus` and drops the
//!   records; the handle keeps both, so it is used directly.
//! - Before the first validated question, a probe (`probe.rs`): the DNSKEY
//!   set of the trust anchor's zone, asked with DO=1. A resolver that returns
//!   it without RRSIG strips DNSSEC, and validating through it would call
//!   every signed domain bogus; that is a problem of the run
//!   ([`DnssecUnavailable`]), said once, not a finding of every domain.
//! - hickory's proofs carry no reason. When an answer is bogus, or the
//!   resolver answers SERVFAIL (a validating resolver hides bogus data that
//!   way, RFC 4035 §5.5), `diagnose.rs` asks again with CD=1 and walks the
//!   chain itself to say what is broken: an expired signature, a DS that
//!   matches no key, a missing signature. A question that cannot be fetched
//!   even then makes the status indeterminate, never bogus.
//!
//! Trust anchors: hickory's `TrustAnchors::default()` holds the IANA root
//! KSKs 20326 (2017) and 38696 (2024); `[resolver] trust_anchor = "FILE"`
//! replaces them with the DNSKEY records of a file (`TrustAnchors::from_str`:
//! master-file lines such as `. 172800 IN DNSKEY 257 3 8 AwEAA…`; DS lines
//! are not accepted by hickory 0.26.3).

mod diagnose;
mod probe;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use hickory_resolver::config::{NameServerConfig, ResolverOpts};
use hickory_resolver::net::dnssec::DnssecDnsHandle;
use hickory_resolver::net::xfer::FirstAnswer;
use hickory_resolver::net::{DnsError, DnsHandle, NetError, RetryDnsHandle};
use hickory_resolver::proto::dnssec::{Proof, TrustAnchors};
use hickory_resolver::proto::op::{DnsRequestOptions, Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, Record as HickoryRecord, RecordType};
use hickory_resolver::proto::serialize::txt::trust_anchor::{Entry, Parser};
use hickory_resolver::{NameServerPool, PoolContext, TlsConfig};
use serde::Serialize;
use tokio::sync::OnceCell;

use crate::cache::{Generations, lock};
use crate::transport::PooledUdpProvider;
use crate::{Answer, DomainName, LookupFailure, RType, classify, from_records};

/// Where the trust anchor of validation comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TrustAnchor {
    /// The IANA root zone KSKs compiled into hickory (key tags 20326, 38696).
    #[default]
    IanaRoot,
    /// DNSKEY records in master-file format, one per line; keys of the root
    /// (`.`) or of any other zone (a trust anchor at a delegation).
    File(PathBuf),
}

/// The DNSSEC status of an answer (RFC 4035 §4.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "reason")]
pub enum Security {
    /// A chain of signed DNSKEY and DS records leads from the trust anchor to
    /// the answer, and its signatures verify.
    Secure,
    /// The answer comes from an unsigned zone, and the parent proves it
    /// unsigned (no DS at the delegation, with a signed denial).
    Insecure,
    /// The chain should exist but fails: validating resolvers answer
    /// SERVFAIL, and mail to the domain stops. The reason names the broken link.
    Bogus(String),
    /// The status could not be decided (a question of the chain failed).
    Indeterminate(String),
}

impl std::fmt::Display for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Security::Secure => f.write_str("secure"),
            Security::Insecure => f.write_str("insecure"),
            Security::Bogus(why) => write!(f, "bogus ({why})"),
            Security::Indeterminate(why) => write!(f, "indeterminate ({why})"),
        }
    }
}

/// An answer with its DNSSEC status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidatedAnswer {
    /// The answer. For a bogus answer that the resolver withheld (SERVFAIL),
    /// the records fetched with checking disabled (CD=1), when there are any.
    pub answer: Answer,
    /// Its DNSSEC status.
    pub security: Security,
}

/// Why no question of this run can be validated: a problem of the resolver
/// or of the configuration, said once for the run, never a finding of a domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DnssecUnavailable {
    /// The resolver answers without the DNSSEC records a validator needs
    /// (RFC 4035 §3.2.1: a security-aware resolver returns RRSIGs when DO=1).
    #[error(
        "the resolver {servers} strips DNSSEC: {evidence}; DNSSEC cannot be validated through it (use a resolver that passes DNSSEC records, e.g. unbound, BIND or a public validating resolver)"
    )]
    StripsDnssec {
        /// The name servers asked.
        servers: String,
        /// What the probe saw.
        evidence: String,
    },
    /// The trust anchor's zone has no key that matches the trust anchor.
    #[error(
        "no DNSKEY of {zone} from the resolver {servers} matches the trust anchor ({anchor}); keys seen: {seen}"
    )]
    AnchorMismatch {
        /// The anchor's zone.
        zone: String,
        /// The name servers asked.
        servers: String,
        /// Where the anchor came from.
        anchor: String,
        /// The key tags the resolver returned.
        seen: String,
    },
    /// The DNSKEY records of the trust anchor's zone could not be fetched.
    #[error("the DNSKEY records of {zone} could not be fetched from {servers}: {failure}")]
    AnchorUnreachable {
        /// The anchor's zone.
        zone: String,
        /// The name servers asked.
        servers: String,
        /// What happened.
        failure: String,
    },
    /// The validating client could not be built.
    #[error("the DNSSEC validating client cannot be built: {0}")]
    Build(String),
}

/// A trust anchor file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("trust anchor {path}: {reason}")]
pub struct TrustAnchorError {
    /// The file.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

/// Trust anchor files larger than this are refused (the root's is < 1 KiB).
const MAX_ANCHOR_FILE: u64 = 1024 * 1024;

/// The trust anchor, parsed: hickory's set and the zones it covers.
#[derive(Clone)]
pub(crate) struct Anchors {
    pub(crate) keys: Arc<TrustAnchors>,
    pub(crate) zones: Vec<Name>,
    pub(crate) source: String,
}

impl Anchors {
    /// Reads the anchor (no network).
    pub(crate) fn load(anchor: &TrustAnchor) -> Result<Anchors, TrustAnchorError> {
        match anchor {
            TrustAnchor::IanaRoot => Ok(Anchors {
                keys: Arc::new(TrustAnchors::default()),
                zones: vec![Name::root()],
                source: "IANA root KSKs 20326 and 38696".to_owned(),
            }),
            TrustAnchor::File(path) => Self::from_file(path),
        }
    }

    fn from_file(path: &Path) -> Result<Anchors, TrustAnchorError> {
        let shown = path.display().to_string();
        let err = |reason: String| TrustAnchorError {
            path: shown.clone(),
            reason,
        };
        let len = std::fs::metadata(path)
            .map_err(|e| err(e.to_string()))?
            .len();
        if len > MAX_ANCHOR_FILE {
            return Err(err("larger than 1 MiB".to_owned()));
        }
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        // Parsed twice: hickory's set does not say which zones it covers.
        let entries = Parser::new(text.as_str())
            .parse()
            .map_err(|e| err(e.to_string()))?;
        let mut zones = BTreeSet::new();
        for entry in &entries {
            if let Entry::DNSKEY(record) = entry {
                zones.insert(record.name().clone());
            }
        }
        if zones.is_empty() {
            return Err(err(
                "no DNSKEY record (expected lines like `. 172800 IN DNSKEY 257 3 8 AwEAA…`)"
                    .to_owned(),
            ));
        }
        let keys = TrustAnchors::from_str(&text).map_err(|e| err(e.to_string()))?;
        Ok(Anchors {
            keys: Arc::new(keys),
            zones: zones.into_iter().collect(),
            source: shown,
        })
    }
}

type Pool = RetryDnsHandle<NameServerPool<PooledUdpProvider>>;
type Cell = Arc<OnceCell<Arc<ValidatedAnswer>>>;

/// What the validating path needs to be built on first use.
pub(crate) struct Validation {
    servers: Vec<NameServerConfig>,
    opts: ResolverOpts,
    provider: PooledUdpProvider,
    anchors: Anchors,
    shown_servers: String,
    built: OnceCell<Result<Arc<Validator>, Arc<DnssecUnavailable>>>,
    cache: Mutex<Generations<(Box<str>, RType), Cell>>,
}

pub(crate) struct Validator {
    secure: DnssecDnsHandle<Pool>,
    raw: Pool,
    anchors: Anchors,
}

impl Validation {
    pub(crate) fn new(
        servers: Vec<NameServerConfig>,
        opts: ResolverOpts,
        provider: PooledUdpProvider,
        anchors: Anchors,
        cache_capacity: usize,
    ) -> Validation {
        let shown_servers = servers
            .iter()
            .map(|s| s.ip.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        Validation {
            servers,
            opts,
            provider,
            anchors,
            shown_servers,
            built: OnceCell::new(),
            cache: Mutex::new(Generations::with_capacity(cache_capacity)),
        }
    }

    /// The run-level problem, once the validating path has been tried.
    pub(crate) fn unavailable(&self) -> Option<Arc<DnssecUnavailable>> {
        match self.built.get() {
            Some(Err(e)) => Some(e.clone()),
            _ => None,
        }
    }

    async fn validator(&self) -> Result<Arc<Validator>, Arc<DnssecUnavailable>> {
        self.built
            .get_or_init(|| async {
                let validator = self.build().map_err(Arc::new)?;
                probe::probe(&validator, &self.shown_servers)
                    .await
                    .map_err(Arc::new)?;
                Ok(Arc::new(validator))
            })
            .await
            .clone()
    }

    fn build(&self) -> Result<Validator, DnssecUnavailable> {
        let tls = TlsConfig::new().map_err(|e| DnssecUnavailable::Build(e.to_string()))?;
        let cx = Arc::new(PoolContext::new(self.opts.clone(), tls));
        let pool = NameServerPool::from_config(self.servers.clone(), cx, self.provider.clone());
        let raw = RetryDnsHandle::new(pool, self.opts.attempts);
        let secure = DnssecDnsHandle::with_trust_anchor(raw.clone(), self.anchors.keys.clone());
        Ok(Validator {
            secure,
            raw,
            anchors: self.anchors.clone(),
        })
    }

    /// Asks `(name, rtype)` with validation, once per run.
    pub(crate) async fn query(
        &self,
        name: &DomainName,
        rtype: RType,
    ) -> Result<Arc<ValidatedAnswer>, Arc<DnssecUnavailable>> {
        let validator = self.validator().await?;
        let key: (Box<str>, RType) = (name.as_str().into(), rtype);
        let cell = lock(&self.cache).with(&key, || key.clone(), |c: &mut Cell| c.clone());
        Ok(cell
            .get_or_init(|| async { Arc::new(validator.ask(name, rtype).await) })
            .await
            .clone())
    }
}

/// Request options of both paths: EDNS with the payload size of DNS Flag Day
/// 2020 (1232), DO=1 (RFC 3225).
pub(crate) fn request_options() -> DnsRequestOptions {
    let mut opts = DnsRequestOptions::default();
    opts.use_edns = true;
    opts.edns_payload_len = 1232;
    opts.edns_set_dnssec_ok = true;
    opts.recursion_desired = true;
    opts
}

/// Seconds since 1970 as DNSSEC counts them (RFC 4034 §3.1.5, serial arithmetic).
pub(crate) fn now_u32() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0)
}

impl Validator {
    async fn ask(&self, name: &DomainName, rtype: RType) -> ValidatedAnswer {
        let qname = match Name::from_ascii(name.as_str()) {
            Ok(n) => n,
            Err(e) => {
                return ValidatedAnswer {
                    answer: Answer::Failed(LookupFailure::Malformed(e.to_string())),
                    security: Security::Indeterminate("the name cannot be asked".to_owned()),
                };
            }
        };
        let qtype = rtype.to_hickory();
        let result = self
            .secure
            .lookup(Query::query(qname.clone(), qtype), request_options())
            .first_answer()
            .await;
        let (answer, proof) = match result {
            Ok(response) => {
                let negative_ttl = crate::negative_ttl(&response.authorities);
                if response.metadata.response_code == ResponseCode::NXDomain {
                    (
                        Answer::NxDomain { negative_ttl },
                        summarize(&response.authorities),
                    )
                } else {
                    let data = without_dnssec_records(&response.answers);
                    let answer = from_records(&data, rtype, negative_ttl);
                    let proof = match &answer {
                        Answer::Records(_) => summarize(&response.answers),
                        _ => summarize(&response.authorities),
                    };
                    (answer, proof)
                }
            }
            Err(NetError::Dns(DnsError::Nsec {
                response, proof, ..
            })) => {
                let negative_ttl = crate::negative_ttl(&response.authorities);
                let answer = if response.metadata.response_code == ResponseCode::NXDomain {
                    Answer::NxDomain { negative_ttl }
                } else {
                    Answer::NoData { negative_ttl }
                };
                (answer, Some(proof))
            }
            Err(NetError::Dns(DnsError::NoRecordsFound(nr))) => {
                let proof = nr.authorities.as_deref().and_then(summarize);
                (classify(NetError::Dns(DnsError::NoRecordsFound(nr))), proof)
            }
            Err(e) => (classify(e), None),
        };
        let security = match (proof, &answer) {
            (Some(Proof::Secure), _) => Security::Secure,
            (Some(Proof::Insecure), _) => Security::Insecure,
            (Some(Proof::Bogus), _) | (None, Answer::Failed(LookupFailure::ServFail)) => {
                return self.explain(&qname, rtype, answer).await;
            }
            (Some(Proof::Indeterminate), _) => Security::Indeterminate(
                "the validator could not find the records it needed".to_owned(),
            ),
            (None, Answer::Failed(why)) => Security::Indeterminate(why.to_string()),
            (None, _) => Security::Indeterminate(
                "the answer carries nothing to validate (no records, no SOA)".to_owned(),
            ),
        };
        ValidatedAnswer { answer, security }
    }

    /// A bogus answer, or a SERVFAIL that may hide one: the reason, from a
    /// walk of the chain with checking disabled.
    async fn explain(&self, qname: &Name, rtype: RType, answer: Answer) -> ValidatedAnswer {
        let servfail = matches!(answer, Answer::Failed(LookupFailure::ServFail));
        let found = diagnose::diagnose(self, qname, rtype, now_u32()).await;
        let security = match (found.verdict, servfail) {
            (diagnose::Verdict::Bogus(why), false) => Security::Bogus(why),
            (diagnose::Verdict::Bogus(why), true) => Security::Bogus(format!(
                "{why}; the resolver answers SERVFAIL, as validating resolvers do"
            )),
            (diagnose::Verdict::Indeterminate(why), _) => Security::Indeterminate(why),
            (diagnose::Verdict::NoFault, false) => Security::Bogus(
                "the validator rejects the chain of trust, though no expired signature, missing key or mismatching DS was found on it".to_owned(),
            ),
            (diagnose::Verdict::NoFault, true) => Security::Indeterminate(
                "SERVFAIL, and the records fetched with checking disabled validate".to_owned(),
            ),
        };
        // The records as published, when the resolver withheld them.
        let answer = match (servfail, found.published) {
            (true, Some(published)) if matches!(security, Security::Bogus(_)) => published,
            _ => answer,
        };
        ValidatedAnswer { answer, security }
    }
}

/// The records of an answer section without RRSIG, NSEC and NSEC3.
fn without_dnssec_records(records: &[HickoryRecord]) -> Vec<HickoryRecord> {
    records
        .iter()
        .filter(|r| !is_dnssec_type(r.record_type()))
        .cloned()
        .collect()
}

pub(crate) fn is_dnssec_type(t: RecordType) -> bool {
    matches!(
        t,
        RecordType::RRSIG | RecordType::NSEC | RecordType::NSEC3 | RecordType::NSEC3PARAM
    )
}

/// The weakest proof of the records (RRSIGs carry none of their own): any
/// bogus makes the whole bogus, then indeterminate, then insecure (a chain is
/// as strong as its weakest link, e.g. a CNAME into an unsigned zone).
fn summarize(records: &[HickoryRecord]) -> Option<Proof> {
    records
        .iter()
        .filter(|r| r.record_type() != RecordType::RRSIG)
        .map(|r| r.proof)
        .min_by_key(|p| match p {
            Proof::Bogus => 0,
            Proof::Indeterminate => 1,
            Proof::Insecure => 2,
            Proof::Secure => 3,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weakest_proof_wins() {
        let mut a = HickoryRecord::from_rdata(
            Name::root(),
            60,
            hickory_resolver::proto::rr::RData::A(std::net::Ipv4Addr::new(198, 51, 100, 1).into()),
        );
        a.proof = Proof::Secure;
        let mut b = a.clone();
        b.proof = Proof::Insecure;
        assert_eq!(summarize(&[a.clone()]), Some(Proof::Secure));
        assert_eq!(summarize(&[a.clone(), b.clone()]), Some(Proof::Insecure));
        let mut c = a.clone();
        c.proof = Proof::Bogus;
        assert_eq!(summarize(&[b, c, a]), Some(Proof::Bogus));
        assert_eq!(summarize(&[]), None);
    }

    #[test]
    fn anchor_file_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("mxaudit-anchor-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let empty = dir.join("empty.key");
        std::fs::write(&empty, "; nothing\n").expect("write");
        let e = Anchors::load(&TrustAnchor::File(empty.clone()))
            .err()
            .expect("error");
        assert!(e.to_string().contains("empty.key"), "{e}");
        assert!(e.reason.contains("no DNSKEY"), "{e}");
        let missing = dir.join("missing.key");
        assert!(Anchors::load(&TrustAnchor::File(missing)).is_err());
        let garbage = dir.join("garbage.key");
        std::fs::write(&garbage, ". IN DNSKEY not a key\n").expect("write");
        assert!(Anchors::load(&TrustAnchor::File(garbage)).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
