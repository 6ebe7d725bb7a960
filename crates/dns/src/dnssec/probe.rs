//! Before the first validated question of a run: does the resolver pass
//! DNSSEC records at all?
//!
//! The DNSKEY set of the trust anchor's zone (the root, normally) is asked
//! with DO=1 and CD=1. A security-aware resolver returns it with its RRSIGs
//! (RFC 4035 §3.2.1) and copies the DO bit into its reply (RFC 3225 §3). A
//! resolver or middlebox that does not know DNSSEC returns the keys (they are
//! ordinary records when asked for by type) but no RRSIG, or drops EDNS. Any
//! validation through it fails, so every signed domain would look bogus: the
//! run reports this once instead ([`DnssecUnavailable`]).

use hickory_resolver::proto::dnssec::rdata::{DNSKEY, DNSSECRData};
use hickory_resolver::proto::rr::{LowerName, RData, RecordType};

use super::diagnose::{Fetched, fetch};
use super::{DnssecUnavailable, Validator};

/// Runs the probe on the first zone of the trust anchor.
pub(crate) async fn probe(v: &Validator, servers: &str) -> Result<(), DnssecUnavailable> {
    let Some(zone) = v.anchors.zones.first() else {
        return Ok(());
    };
    let shown = zone.to_string();
    let (answers, edns_do) = match fetch(v, zone, RecordType::DNSKEY).await {
        Fetched::Message {
            answers, edns_do, ..
        } => (answers, edns_do),
        Fetched::Failed(why) => {
            return Err(DnssecUnavailable::AnchorUnreachable {
                zone: shown,
                servers: servers.to_owned(),
                failure: why.to_string(),
            });
        }
    };
    let keys: Vec<&DNSKEY> = answers
        .iter()
        .filter(|r| r.name == *zone)
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::DNSKEY(k)) => Some(k),
            _ => None,
        })
        .collect();
    if keys.is_empty() {
        return Err(DnssecUnavailable::AnchorUnreachable {
            zone: shown.clone(),
            servers: servers.to_owned(),
            failure: format!("the reply holds no DNSKEY record for {shown}"),
        });
    }
    let signed = answers.iter().any(|r| {
        r.record_type() == RecordType::RRSIG
            && matches!(&r.data, RData::DNSSEC(DNSSECRData::RRSIG(sig)) if sig.input().type_covered == RecordType::DNSKEY)
    });
    if !signed {
        let edns = match edns_do {
            None => "and no EDNS (OPT record) in the reply",
            Some(false) => "and the DO bit cleared in the reply (RFC 3225 §3)",
            Some(true) => "though the reply keeps the DO bit",
        };
        return Err(DnssecUnavailable::StripsDnssec {
            servers: servers.to_owned(),
            evidence: format!(
                "{shown} DNSKEY asked with DO=1 came back with {} key(s) and no RRSIG, {edns}",
                keys.len()
            ),
        });
    }
    let lower = LowerName::from(zone);
    if !keys
        .iter()
        .any(|k| v.anchors.keys.contains_with_name(k.public_key(), &lower))
    {
        let seen = keys
            .iter()
            .map(|k| match k.calculate_key_tag() {
                Ok(tag) => tag.to_string(),
                Err(_) => "?".to_owned(),
            })
            .collect::<Vec<_>>()
            .join(", ");
        return Err(DnssecUnavailable::AnchorMismatch {
            zone: shown,
            servers: servers.to_owned(),
            anchor: v.anchors.source.clone(),
            seen,
        });
    }
    Ok(())
}
