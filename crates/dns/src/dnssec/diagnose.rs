//! Why an answer is bogus: the chain of trust walked with checking disabled
//! (CD=1, RFC 4035 §3.2.2), so that a validating resolver hands over the
//! data it would otherwise hide behind SERVFAIL.
//!
//! hickory's validator decides Secure/Insecure/Bogus but keeps its reasons
//! in debug logs; an administrator needs the broken link named. This walk
//! checks, from the answer up to the trust anchor, the faults that make
//! real zones bogus, and stops at the first one:
//!
//! - an RRset of a signed zone without RRSIG (RFC 4035 §5.3);
//! - an RRSIG outside its validity period, expired or not yet valid
//!   (RFC 4034 §3.1.5, RFC 4035 §5.3.1; serial-number arithmetic);
//! - an RRSIG by a key the signer's DNSKEY set does not hold, or one that does
//!   not verify (RFC 4035 §5.3.3);
//! - DS records at the parent that match no DNSKEY of the child
//!   (RFC 4035 §5.2), or a DNSKEY set not signed by a key the DS names;
//! - a trust anchor zone whose keys do not include the anchor.
//!
//! A question that cannot be fetched makes the verdict indeterminate: a
//! timeout is never evidence of a broken chain. Hand-written because no
//! crate reports *why* a chain fails; the cryptography is hickory-proto's
//! (`Verifier::verify_rrsig`, `DS::covers`, `DNSKEY::calculate_key_tag`).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, UNIX_EPOCH};

use hickory_resolver::net::xfer::FirstAnswer;
use hickory_resolver::net::{DnsError, DnsHandle, NetError};
use hickory_resolver::proto::dnssec::Verifier;
use hickory_resolver::proto::dnssec::rdata::{DNSKEY, DNSSECRData, DS, RRSIG};
use hickory_resolver::proto::op::{DnsRequest, Edns, Message, Query, ResponseCode};
use hickory_resolver::proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};

use super::{Validator, is_dnssec_type, request_options};
use crate::{Answer, LookupFailure, RType, classify, from_records};

/// Questions one walk may ask: a chain of ten zones with a DNSKEY and a DS
/// question each, the answer, and the zone-finding questions.
const MAX_QUESTIONS: usize = 40;

/// What the walk found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The first broken link.
    Bogus(String),
    /// A question of the chain could not be answered.
    Indeterminate(String),
    /// Nothing broken was found.
    NoFault,
}

/// The verdict, and the answer as published (fetched with CD=1).
#[derive(Debug)]
pub(crate) struct Diagnosis {
    pub(crate) verdict: Verdict,
    pub(crate) published: Option<Answer>,
}

/// One reply, or why there is none.
pub(crate) enum Fetched {
    /// A reply (a negative one has no answers).
    Message {
        answers: Vec<Record>,
        authorities: Vec<Record>,
        rcode: ResponseCode,
        /// The DO bit of the reply's OPT record; `None` without EDNS (or
        /// when hickory turned a negative reply into an error).
        edns_do: Option<bool>,
    },
    /// No usable reply.
    Failed(LookupFailure),
}

/// Asks `(name, rtype)` with DO=1 and CD=1, without validation.
pub(crate) async fn fetch(v: &Validator, name: &Name, rtype: RecordType) -> Fetched {
    let mut message = Message::query();
    message.add_query(Query::query(name.clone(), rtype));
    message.metadata.recursion_desired = true;
    message.metadata.checking_disabled = true;
    let mut edns = Edns::new();
    edns.set_max_payload(1232).set_dnssec_ok(true);
    message.edns = Some(edns);
    let request = DnsRequest::new(message, request_options());
    match v.raw.send(request).first_answer().await {
        Ok(response) => Fetched::Message {
            edns_do: response.edns.as_ref().map(|e| e.flags().dnssec_ok),
            rcode: response.metadata.response_code,
            answers: response.answers.clone(),
            authorities: response.authorities.clone(),
        },
        Err(NetError::Dns(DnsError::NoRecordsFound(nr))) => Fetched::Message {
            answers: Vec::new(),
            authorities: nr
                .authorities
                .as_deref()
                .map(<[_]>::to_vec)
                .unwrap_or_default(),
            rcode: nr.response_code,
            edns_do: None,
        },
        Err(e) => Fetched::Failed(match classify(e) {
            Answer::Failed(why) => why,
            other => LookupFailure::Malformed(other.describe()),
        }),
    }
}

/// Walks the chain of `(qname, rtype)`; `now` in DNSSEC seconds.
pub(crate) async fn diagnose(v: &Validator, qname: &Name, rtype: RType, now: u32) -> Diagnosis {
    let mut walk = Walk {
        v,
        now,
        asked: 0,
        cache: HashMap::new(),
    };
    let (answers, authorities, rcode) = match walk.ask(qname, rtype.to_hickory()).await {
        Ok(reply) => reply,
        Err(verdict) => {
            return Diagnosis {
                verdict,
                published: None,
            };
        }
    };
    let negative_ttl = crate::negative_ttl(&authorities);
    let published = if rcode == ResponseCode::NXDomain {
        Answer::NxDomain { negative_ttl }
    } else {
        let data: Vec<Record> = answers
            .iter()
            .filter(|r| !is_dnssec_type(r.record_type()))
            .cloned()
            .collect();
        from_records(&data, rtype, negative_ttl)
    };
    let verdict = match walk.answer(&answers, &authorities).await {
        Ok(()) => Verdict::NoFault,
        Err(v) => v,
    };
    Diagnosis {
        verdict,
        published: Some(published),
    }
}

type Step<T> = Result<T, Verdict>;
type Reply = (Vec<Record>, Vec<Record>, ResponseCode);

struct Walk<'a> {
    v: &'a Validator,
    now: u32,
    asked: usize,
    cache: HashMap<(Name, RecordType), Reply>,
}

impl Walk<'_> {
    /// One question, remembered for the walk.
    async fn ask(&mut self, name: &Name, rtype: RecordType) -> Step<Reply> {
        let key = (name.clone(), rtype);
        if let Some(reply) = self.cache.get(&key) {
            return Ok(reply.clone());
        }
        self.asked += 1;
        if self.asked > MAX_QUESTIONS {
            return Err(Verdict::Indeterminate(format!(
                "the chain of trust needs more than {MAX_QUESTIONS} questions"
            )));
        }
        match fetch(self.v, name, rtype).await {
            Fetched::Message {
                answers,
                authorities,
                rcode,
                ..
            } => {
                let reply = (answers, authorities, rcode);
                self.cache.insert(key, reply.clone());
                Ok(reply)
            }
            Fetched::Failed(why) => Err(Verdict::Indeterminate(format!(
                "{name} {rtype}: {why}, even with checking disabled (CD=1)"
            ))),
        }
    }

    /// The answer's RRsets (or, for a negative answer, its SOA and NSEC
    /// records), then the chain of each signer.
    async fn answer(&mut self, answers: &[Record], authorities: &[Record]) -> Step<()> {
        let (section, sets) = match rrsets(answers) {
            sets if !sets.is_empty() => (answers, sets),
            _ => (authorities, rrsets(authorities)),
        };
        for (owner, rtype, records) in sets {
            if let Some(signer) = self.signed(&owner, rtype, &records, section, None).await? {
                self.chain(signer).await?;
            }
        }
        Ok(())
    }

    /// Checks the signatures over one RRset; the signer zone when one
    /// verifies, `None` when the RRset is unsigned in an unsigned zone.
    /// `keys`: only these keys may sign (a DNSKEY set: the anchored keys or
    /// the keys a DS names); otherwise the signer's DNSKEY set.
    async fn signed(
        &mut self,
        owner: &Name,
        rtype: RecordType,
        records: &[Record],
        section: &[Record],
        keys: Option<&[DNSKEY]>,
    ) -> Step<Option<Name>> {
        let sigs: Vec<&RRSIG> = section
            .iter()
            .filter(|r| r.name == *owner)
            .filter_map(|r| match &r.data {
                RData::DNSSEC(DNSSECRData::RRSIG(sig)) if sig.input().type_covered == rtype => {
                    Some(sig)
                }
                _ => None,
            })
            .collect();
        if sigs.is_empty() {
            if keys.is_some() {
                return Err(Verdict::Bogus(format!(
                    "the DNSKEY set of {owner} carries no signature (RRSIG)"
                )));
            }
            let zone = self.zone_of(owner).await?;
            return match self.ds_of(&zone).await? {
                Some(_) => Err(Verdict::Bogus(format!(
                    "{owner} {rtype} carries no signature (RRSIG), though {zone} is signed (its parent publishes DS records for it)"
                ))),
                None => Ok(None),
            };
        }
        let in_time: Vec<&RRSIG> = sigs
            .iter()
            .copied()
            .filter(|s| {
                let i = s.input();
                !after(self.now, i.sig_expiration.get()) && !after(i.sig_inception.get(), self.now)
            })
            .collect();
        let Some(first) = sigs.first() else {
            return Ok(None);
        };
        if in_time.is_empty() {
            let i = first.input();
            return Err(Verdict::Bogus(if after(self.now, i.sig_expiration.get()) {
                format!(
                    "the signature (RRSIG) over {owner} {rtype} by {} (key tag {}) expired on {}",
                    i.signer_name,
                    i.key_tag,
                    date(i.sig_expiration.get())
                )
            } else {
                format!(
                    "the signature (RRSIG) over {owner} {rtype} by {} (key tag {}) is not valid before {}",
                    i.signer_name,
                    i.key_tag,
                    date(i.sig_inception.get())
                )
            }));
        }
        let mut known_key = false;
        for sig in &in_time {
            let i = sig.input();
            let zone_keys: Vec<DNSKEY> = match keys {
                Some(k) => k.to_vec(),
                None => self.dnskeys(&i.signer_name).await?,
            };
            for key in zone_keys.iter().filter(|k| {
                k.algorithm() == i.algorithm && k.calculate_key_tag().ok() == Some(i.key_tag)
            }) {
                known_key = true;
                if !key.zone_key() || key.revoke() {
                    continue;
                }
                let data = records.iter().filter(|r| r.record_type() == rtype);
                if key.verify_rrsig(owner, DNSClass::IN, sig, data).is_ok() {
                    return Ok(Some(i.signer_name.clone()));
                }
            }
        }
        let i = in_time.first().unwrap_or(first).input();
        Err(Verdict::Bogus(if known_key {
            format!(
                "the signature (RRSIG) over {owner} {rtype} by {} key tag {} does not verify: the records or the signature changed after signing",
                i.signer_name, i.key_tag
            )
        } else if keys.is_some() {
            format!(
                "the DNSKEY set of {owner} is signed by key tag {}, not by a key its trust anchor or DS names",
                i.key_tag
            )
        } else {
            let tags = self
                .dnskeys(&i.signer_name)
                .await
                .map(|k| key_tags(&k))
                .unwrap_or_else(|_| "unknown".to_owned());
            format!(
                "{owner} {rtype} is signed by key tag {} of {}, which is not among its DNSKEY records (key tags {tags})",
                i.key_tag, i.signer_name
            )
        }))
    }

    /// From a signer zone up to the trust anchor: each zone's DNSKEY set must
    /// be signed by a key that the anchor or the parent's DS names, and each
    /// DS set signed by the parent.
    async fn chain(&mut self, start: Name) -> Step<()> {
        let mut zone = start;
        let mut seen = HashSet::new();
        while seen.insert(zone.clone()) {
            let (dnskey_answers, _, _) = self.ask(&zone, RecordType::DNSKEY).await?;
            let key_records: Vec<Record> = dnskey_answers
                .iter()
                .filter(|r| r.name == zone && r.record_type() == RecordType::DNSKEY)
                .cloned()
                .collect();
            let keys = dnskeys_in(&key_records);
            if self.v.anchors.zones.contains(&zone) {
                let lower = LowerName::from(&zone);
                let anchored: Vec<DNSKEY> = keys
                    .iter()
                    .filter(|k| {
                        self.v
                            .anchors
                            .keys
                            .contains_with_name(k.public_key(), &lower)
                    })
                    .cloned()
                    .collect();
                if anchored.is_empty() {
                    return Err(Verdict::Bogus(format!(
                        "no DNSKEY of {zone} matches the trust anchor ({}); key tags seen: {}",
                        self.v.anchors.source,
                        key_tags(&keys)
                    )));
                }
                self.signed(
                    &zone,
                    RecordType::DNSKEY,
                    &key_records,
                    &dnskey_answers,
                    Some(&anchored),
                )
                .await?;
                return Ok(());
            }
            let (ds_answers, ds_authorities, _) = self.ask(&zone, RecordType::DS).await?;
            let ds_records: Vec<Record> = ds_answers
                .iter()
                .filter(|r| r.name == zone && r.record_type() == RecordType::DS)
                .cloned()
                .collect();
            let ds: Vec<&DS> = ds_records
                .iter()
                .filter_map(|r| match &r.data {
                    RData::DNSSEC(DNSSECRData::DS(ds)) => Some(ds),
                    _ => None,
                })
                .collect();
            if ds.is_empty() {
                // The parent says the delegation is unsigned; its denial must
                // still verify, up to the anchor.
                let mut parent = None;
                for (owner, rtype, records) in rrsets(&ds_authorities) {
                    if let Some(signer) = self
                        .signed(&owner, rtype, &records, &ds_authorities, None)
                        .await?
                    {
                        parent = Some(signer);
                    }
                }
                match parent {
                    Some(p) if p != zone => {
                        zone = p;
                        continue;
                    }
                    _ => return Ok(()),
                }
            }
            if keys.is_empty() {
                return Err(Verdict::Bogus(format!(
                    "the parent of {zone} publishes DS records ({}) but {zone} has no DNSKEY records",
                    ds_list(&ds)
                )));
            }
            let usable: Vec<&&DS> = ds
                .iter()
                .filter(|d| d.digest_type().is_supported() && d.algorithm().is_supported())
                .collect();
            if usable.is_empty() {
                // RFC 4035 §5.2: only unsupported algorithms: insecure, not bogus.
                return Ok(());
            }
            let named: Vec<DNSKEY> = keys
                .iter()
                .filter(|k| usable.iter().any(|d| d.covers(&zone, k).unwrap_or(false)))
                .cloned()
                .collect();
            if named.is_empty() {
                return Err(Verdict::Bogus(format!(
                    "the DS records of {zone} at its parent ({}) match none of its DNSKEY records (key tags {}): the parent names a key the zone does not publish",
                    ds_list(&ds),
                    key_tags(&keys)
                )));
            }
            self.signed(
                &zone,
                RecordType::DNSKEY,
                &key_records,
                &dnskey_answers,
                Some(&named),
            )
            .await?;
            match self
                .signed(&zone, RecordType::DS, &ds_records, &ds_answers, None)
                .await?
            {
                Some(parent) if parent != zone => zone = parent,
                _ => return Ok(()),
            }
        }
        Ok(())
    }

    /// The zone holding `owner`: the owner of the SOA in the reply to
    /// `owner SOA` (answer at an apex, authority below it).
    async fn zone_of(&mut self, owner: &Name) -> Step<Name> {
        let (answers, authorities, _) = self.ask(owner, RecordType::SOA).await?;
        answers
            .iter()
            .chain(authorities.iter())
            .find(|r| r.record_type() == RecordType::SOA)
            .map(|r| r.name.clone())
            .ok_or_else(|| {
                Verdict::Indeterminate(format!("the zone of {owner} cannot be found (no SOA)"))
            })
    }

    /// The DS records of `zone` (an anchor zone counts as having them).
    async fn ds_of(&mut self, zone: &Name) -> Step<Option<Vec<DS>>> {
        if self.v.anchors.zones.contains(zone) {
            return Ok(Some(Vec::new()));
        }
        let (answers, _, _) = self.ask(zone, RecordType::DS).await?;
        let ds: Vec<DS> = answers
            .iter()
            .filter(|r| r.name == *zone)
            .filter_map(|r| match &r.data {
                RData::DNSSEC(DNSSECRData::DS(ds)) => Some(ds.clone()),
                _ => None,
            })
            .collect();
        Ok((!ds.is_empty()).then_some(ds))
    }

    async fn dnskeys(&mut self, zone: &Name) -> Step<Vec<DNSKEY>> {
        let (answers, _, _) = self.ask(zone, RecordType::DNSKEY).await?;
        let at_zone: Vec<Record> = answers.into_iter().filter(|r| r.name == *zone).collect();
        Ok(dnskeys_in(&at_zone))
    }
}

/// The RRsets of a section (RRSIGs left out), in order of first appearance.
fn rrsets(section: &[Record]) -> Vec<(Name, RecordType, Vec<Record>)> {
    let mut sets: Vec<(Name, RecordType, Vec<Record>)> = Vec::new();
    for r in section
        .iter()
        .filter(|r| r.record_type() != RecordType::RRSIG)
    {
        match sets
            .iter_mut()
            .find(|(n, t, _)| *n == r.name && *t == r.record_type())
        {
            Some((_, _, records)) => records.push(r.clone()),
            None => sets.push((r.name.clone(), r.record_type(), vec![r.clone()])),
        }
    }
    sets
}

fn dnskeys_in(records: &[Record]) -> Vec<DNSKEY> {
    records
        .iter()
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::DNSKEY(k)) => Some(k.clone()),
            _ => None,
        })
        .collect()
}

fn key_tags(keys: &[DNSKEY]) -> String {
    if keys.is_empty() {
        return "none".to_owned();
    }
    keys.iter()
        .map(|k| match k.calculate_key_tag() {
            Ok(t) => t.to_string(),
            Err(_) => "?".to_owned(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn ds_list(ds: &[&DS]) -> String {
    ds.iter()
        .map(|d| {
            format!(
                "key tag {} algorithm {} digest type {}",
                d.key_tag(),
                u8::from(d.algorithm()),
                u8::from(d.digest_type())
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// `a` is later than `b` in serial-number arithmetic (RFC 1982, RFC 4034 §3.1.5).
fn after(a: u32, b: u32) -> bool {
    a != b && (a.wrapping_sub(b) as i32) > 0
}

fn date(t: u32) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(u64::from(t))).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_arithmetic_compares_across_the_wrap() {
        assert!(after(10, 5));
        assert!(!after(5, 10));
        assert!(!after(5, 5));
        // 2106: the counter wraps, and a time just after the wrap is later.
        assert!(after(3, u32::MAX - 3));
    }

    #[test]
    fn dates_are_rfc3339() {
        assert_eq!(date(0), "1970-01-01T00:00:00Z");
        assert_eq!(date(1_767_225_600), "2026-01-01T00:00:00Z");
    }
}
