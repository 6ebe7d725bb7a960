//! Signed test worlds (DNSSEC, RFC 4033-4035): zones signed with keys made at
//! test time, a test root whose key is the trust anchor, and the failures a
//! validator must tell apart — a good chain, expired signatures, a DS at the
//! parent that matches no key of the child, and an unsigned (insecure)
//! delegation.
//!
//! The zones are given as unsigned master-file text; the world adds the
//! delegations itself: each zone's apex NS records are copied into the
//! nearest enclosing zone of the world, with a DS per [`Signing`]. Every
//! signed zone has one ECDSA P-256 key (algorithm 13, flags 257: a combined
//! key- and zone-signing key) and NSEC denial of existence.
//!
//! Signing uses hickory-server 0.26.3 (`dnssec-aws-lc-rs`):
//! `InMemoryZoneHandler::new(origin, records, ZoneType::Primary,
//! AxfrPolicy::Deny, Some(NxProofKind::Nsec))`, then
//! `add_zone_signing_key_mut(DnssecSigner)` and `secure_zone_mut()`, which
//! generates the NSEC chain and signs every RRset with inception "now". Expired
//! signatures are made by re-signing each RRset through `records_get_mut()`
//! with `RRSIG::from_rrset` and an inception in the past.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::dnssec::crypto::EcdsaSigningKey;
use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, DS, RRSIG};
use hickory_proto::dnssec::{Algorithm, DigestType, DnssecSigner, PublicKey, SigningKey};
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordSet, RecordType, RrKey};
use hickory_proto::serialize::txt::Parser;
use hickory_server::dnssec::NxProofKind;
use hickory_server::net::runtime::TokioRuntimeProvider;
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, ZoneType};
use rustls::pki_types::PrivatePkcs8KeyDer;
use time::OffsetDateTime;

use crate::TestbedError;
use crate::dns::{DnsServer, ZoneText, fqdn};
use crate::zones::{ZoneEntry, blocklists_for, unsigned_handler};

/// Signatures made by the world are valid this long from now.
const VALIDITY: Duration = Duration::from_secs(30 * 86_400);
/// Expired signatures: made 30 days ago, valid for 7, so they ended 23 days ago.
const EXPIRED_INCEPTION_DAYS_AGO: i64 = 30;
const EXPIRED_VALIDITY: Duration = Duration::from_secs(7 * 86_400);

/// How a zone is signed, and what its parent in the world publishes about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    /// Signed; the parent's DS names its key: a chain of trust.
    Secure,
    /// Signed, DS correct, but every signature expired 23 days ago (a signer
    /// that stopped re-signing): bogus (RFC 4035 §5.3.1).
    ExpiredSignatures,
    /// Signed, but the parent's DS names another key (a key rolled without
    /// updating the registrar): bogus (RFC 4035 §5.2).
    WrongDs,
    /// Not signed, no DS at the parent; the parent's NSEC proves the
    /// delegation insecure (RFC 4035 §5.2).
    Unsigned,
}

impl Signing {
    fn signed(self) -> bool {
        !matches!(self, Signing::Unsigned)
    }
}

/// One zone of a signed world.
#[derive(Debug, Clone)]
pub struct SignedZone {
    /// The zone, unsigned (SOA and apex NS required).
    pub zone: ZoneText,
    /// How it is signed.
    pub signing: Signing,
}

impl SignedZone {
    /// A zone with this origin and text.
    pub fn new(origin: &str, text: &str, signing: Signing) -> SignedZone {
        SignedZone {
            zone: ZoneText {
                origin: fqdn(origin),
                text: text.to_owned(),
            },
            signing,
        }
    }
}

/// A signed world, ready to serve.
pub struct SignedWorld {
    handlers: Vec<ZoneEntry>,
    trust_anchor: String,
    ds: BTreeMap<String, Vec<String>>,
}

impl std::fmt::Debug for SignedWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedWorld")
            .field("trust_anchor", &self.trust_anchor)
            .finish_non_exhaustive()
    }
}

struct Parsed {
    origin: Name,
    records: BTreeMap<RrKey, RecordSet>,
    signing: Signing,
    key: Option<PrivatePkcs8KeyDer<'static>>,
}

impl SignedWorld {
    /// Signs the zones and adds the delegations between them. The zones
    /// without a parent in the world (normally the root, `.`) are the trust
    /// anchors; the blocklists' zones are added unsigned unless the world
    /// serves the root.
    pub fn build(zones: &[SignedZone]) -> Result<SignedWorld, TestbedError> {
        let mut parsed = Vec::new();
        for z in zones {
            let err = |message: String| TestbedError::Zone {
                origin: z.zone.origin.clone(),
                message,
            };
            let origin = Name::from_ascii(&z.zone.origin).map_err(|e| err(e.to_string()))?;
            let (origin, records) = Parser::new(&z.zone.text, None, Some(origin))
                .parse()
                .map_err(|e| err(e.to_string()))?;
            let key = if z.signing.signed() {
                Some(new_key().map_err(err)?)
            } else {
                None
            };
            parsed.push(Parsed {
                origin,
                records,
                signing: z.signing,
                key,
            });
        }

        // Delegations: NS and DS of each zone into its nearest enclosing zone.
        let mut ds_text = BTreeMap::new();
        for child in 0..parsed.len() {
            let child_origin = parsed[child].origin.clone();
            let Some(parent) = (0..parsed.len())
                .filter(|&p| p != child && parsed[p].origin.zone_of(&child_origin))
                .max_by_key(|&p| parsed[p].origin.num_labels())
            else {
                continue;
            };
            let err = |message: String| TestbedError::Zone {
                origin: child_origin.to_string(),
                message,
            };
            let ns: Vec<Record> = parsed[child]
                .records
                .get(&RrKey::new(LowerName::from(&child_origin), RecordType::NS))
                .map(|set| set.records_without_rrsigs().cloned().collect())
                .unwrap_or_default();
            if ns.is_empty() {
                return Err(err("a delegated zone needs NS records at its apex".into()));
            }
            let ds = match parsed[child].signing {
                Signing::Secure | Signing::ExpiredSignatures => {
                    let key = parsed[child]
                        .key
                        .as_ref()
                        .ok_or_else(|| err("signed zone without a key".into()))?;
                    Some(ds_of(key, &child_origin).map_err(err)?)
                }
                // A DS for a key the child does not have.
                Signing::WrongDs => {
                    Some(ds_of(&new_key().map_err(err)?, &child_origin).map_err(err)?)
                }
                Signing::Unsigned => None,
            };
            let serial = serial_of(&parsed[parent]);
            let records = &mut parsed[parent].records;
            for r in ns {
                insert(records, r, serial);
            }
            if let Some(ds) = ds {
                ds_text
                    .entry(child_origin.to_string())
                    .or_insert_with(Vec::new)
                    .push(ds.to_string());
                let record = Record::from_rdata(
                    child_origin.clone(),
                    3600,
                    RData::DNSSEC(DNSSECRData::DS(ds)),
                );
                insert(records, record, serial);
            }
        }

        let mut anchors = Vec::new();
        let mut handlers: Vec<ZoneEntry> = Vec::new();
        for p in &parsed {
            let is_apex = !parsed
                .iter()
                .any(|q| q.origin != p.origin && q.origin.zone_of(&p.origin));
            let err = |message: String| TestbedError::Zone {
                origin: p.origin.to_string(),
                message,
            };
            let mut handler = InMemoryZoneHandler::<TokioRuntimeProvider>::new(
                p.origin.clone(),
                p.records.clone(),
                ZoneType::Primary,
                AxfrPolicy::Deny,
                p.key.as_ref().map(|_| NxProofKind::Nsec),
            )
            .map_err(err)?;
            if let Some(key) = &p.key {
                handler
                    .add_zone_signing_key_mut(signer(key, &p.origin, VALIDITY).map_err(err)?)
                    .map_err(|e| err(e.to_string()))?;
                handler.secure_zone_mut().map_err(|e| err(e.to_string()))?;
                if p.signing == Signing::ExpiredSignatures {
                    resign_expired(&mut handler, key, &p.origin).map_err(err)?;
                }
                if is_apex {
                    let public = signing_key(key)
                        .and_then(|k| k.to_public_key().map_err(|e| e.to_string()))
                        .map_err(err)?;
                    anchors.push(format!(
                        "{} 3600 IN DNSKEY {}",
                        p.origin,
                        DNSKEY::from_key(&public)
                    ));
                }
            }
            handlers.push((LowerName::from(&p.origin), Arc::new(handler)));
        }
        let origins: Vec<String> = parsed.iter().map(|p| p.origin.to_string()).collect();
        for list in blocklists_for(&origins) {
            handlers.push(unsigned_handler(&list)?);
        }
        Ok(SignedWorld {
            handlers,
            trust_anchor: anchors.join("\n") + "\n",
            ds: ds_text,
        })
    }

    /// The trust anchor of the world: the DNSKEY records of its topmost
    /// signed zones, one per line in master-file format (the format of
    /// `[resolver] trust_anchor`).
    pub fn trust_anchor(&self) -> &str {
        &self.trust_anchor
    }

    /// The DS records the world published for `zone` at its parent, in
    /// presentation format (for tests' evidence checks).
    pub fn ds_of(&self, zone: &str) -> &[String] {
        self.ds.get(&fqdn(zone)).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Serves the world on 127.0.0.1 (UDP and TCP on one port).
    pub async fn serve(self) -> Result<DnsServer, TestbedError> {
        let addr: SocketAddr = ([127, 0, 0, 1], 0).into();
        self.serve_on(addr).await
    }

    /// Serves the world on `addr`.
    pub async fn serve_on(self, addr: SocketAddr) -> Result<DnsServer, TestbedError> {
        DnsServer::start_handlers(self.handlers, addr).await
    }
}

fn new_key() -> Result<PrivatePkcs8KeyDer<'static>, String> {
    EcdsaSigningKey::generate_pkcs8(Algorithm::ECDSAP256SHA256).map_err(|e| e.to_string())
}

fn signing_key(key: &PrivatePkcs8KeyDer<'static>) -> Result<EcdsaSigningKey, String> {
    EcdsaSigningKey::from_pkcs8(key, Algorithm::ECDSAP256SHA256).map_err(|e| e.to_string())
}

fn signer(
    key: &PrivatePkcs8KeyDer<'static>,
    origin: &Name,
    validity: Duration,
) -> Result<DnssecSigner, String> {
    let k = signing_key(key)?;
    let public = k.to_public_key().map_err(|e| e.to_string())?;
    Ok(DnssecSigner::new(
        DNSKEY::from_key(&public),
        Box::new(k),
        origin.clone(),
        validity,
    ))
}

fn ds_of(key: &PrivatePkcs8KeyDer<'static>, zone: &Name) -> Result<DS, String> {
    let public = signing_key(key)?
        .to_public_key()
        .map_err(|e| e.to_string())?;
    // SHA-256 (RFC 4509), the digest every validator supports.
    DS::from_key(&public as &dyn PublicKey, zone, DigestType::SHA256).map_err(|e| e.to_string())
}

fn serial_of(p: &Parsed) -> u32 {
    p.records
        .get(&RrKey::new(LowerName::from(&p.origin), RecordType::SOA))
        .and_then(|set| match &set.records_without_rrsigs().next()?.data {
            RData::SOA(soa) => Some(soa.serial),
            _ => None,
        })
        .unwrap_or(1)
}

fn insert(records: &mut BTreeMap<RrKey, RecordSet>, record: Record, serial: u32) {
    let key = RrKey::new(LowerName::from(&record.name), record.record_type());
    records
        .entry(key)
        .or_insert_with(|| RecordSet::new(record.name.clone(), record.record_type(), serial))
        .insert(record, serial);
}

/// Replaces every signature of the zone by one made 30 days ago and valid
/// for 7: all expired.
fn resign_expired(
    handler: &mut InMemoryZoneHandler<TokioRuntimeProvider>,
    key: &PrivatePkcs8KeyDer<'static>,
    origin: &Name,
) -> Result<(), String> {
    let signer = signer(key, origin, EXPIRED_VALIDITY)?;
    let inception = OffsetDateTime::now_utc() - time::Duration::days(EXPIRED_INCEPTION_DAYS_AGO);
    for set in handler.records_get_mut().values_mut() {
        let set = Arc::make_mut(set);
        set.clear_rrsigs();
        let rrsig =
            RRSIG::from_rrset(set, DNSClass::IN, inception, &signer).map_err(|e| e.to_string())?;
        let record = Record::from_rdata(
            set.name().clone(),
            set.ttl(),
            RData::DNSSEC(DNSSECRData::RRSIG(rrsig)),
        );
        set.insert_rrsig(record);
    }
    Ok(())
}
