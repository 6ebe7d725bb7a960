//! What a testbed DNS server serves: its zone handlers in a catalog, with DS
//! questions sent to the parent side of each zone cut, and the view of a
//! resolver that strips DNSSEC (`Fault::StripDnssec`).

use std::collections::HashMap;
use std::sync::Arc;

use hickory_proto::rr::{LowerName, Name};
use hickory_proto::serialize::txt::Parser;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};

use crate::TestbedError;
use crate::dns::{ZoneText, fqdn};

/// A zone's origin and the handler that answers for it.
pub(crate) type ZoneEntry = (LowerName, Arc<dyn ZoneHandler>);

/// The zones served, and for each zone with a parent in the same world, a
/// catalog of the parent alone: a DS question is answered by the parent side
/// of the zone cut (RFC 4035 §3.1.4.1), while hickory's catalog picks the
/// most specific zone, the child.
pub(crate) struct Zones {
    catalog: Catalog,
    ds_parents: HashMap<LowerName, Catalog>,
}

impl Zones {
    pub(crate) fn new(handlers: Vec<ZoneEntry>) -> Zones {
        let mut catalog = Catalog::new();
        let mut ds_parents = HashMap::new();
        for (origin, handler) in &handlers {
            let parent = handlers
                .iter()
                .filter(|(p, _)| p != origin && p.zone_of(origin))
                .max_by_key(|(p, _)| p.num_labels());
            if let Some((p, h)) = parent {
                let mut only_parent = Catalog::new();
                only_parent.upsert(p.clone(), vec![h.clone()]);
                ds_parents.insert(origin.clone(), only_parent);
            }
            catalog.upsert(origin.clone(), vec![handler.clone()]);
        }
        Zones {
            catalog,
            ds_parents,
        }
    }
}

/// The blocklists' zones, unless the world brings that part itself (see
/// `zone_handlers`).
pub(crate) fn blocklists_for(world: &[String]) -> Vec<ZoneText> {
    crate::blocklists::zones()
        .into_iter()
        .filter(|l| {
            let list = fqdn(&l.origin);
            !world.iter().any(|z| {
                let world = fqdn(z);
                world == "." || list == world || list.ends_with(&format!(".{world}"))
            })
        })
        .collect()
}

/// An unsigned zone's handler from its text.
pub(crate) fn unsigned_handler(zone: &ZoneText) -> Result<ZoneEntry, TestbedError> {
    let origin = Name::from_ascii(&zone.origin).map_err(|e| TestbedError::Zone {
        origin: zone.origin.clone(),
        message: e.to_string(),
    })?;
    let (origin, records) = Parser::new(&zone.text, None, Some(origin))
        .parse()
        .map_err(|e| TestbedError::Zone {
            origin: zone.origin.clone(),
            message: e.to_string(),
        })?;
    let handler = InMemoryZoneHandler::<hickory_server::net::runtime::TokioRuntimeProvider>::new(
        origin.clone(),
        records,
        ZoneType::Primary,
        AxfrPolicy::Deny,
        None,
    )
    .map_err(|e| TestbedError::Zone {
        origin: zone.origin.clone(),
        message: e.to_string(),
    })?;
    Ok((LowerName::from(origin), Arc::new(handler)))
}

impl Zones {
    /// Answers from the catalog; a DS question at a zone's apex from its parent.
    pub(crate) async fn answer<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        qname: &str,
        qtype: &str,
        response_handle: R,
    ) -> ResponseInfo {
        if qtype == "DS"
            && let Ok(name) = Name::from_ascii(qname)
            && let Some(parent) = self.ds_parents.get(&LowerName::from(name))
        {
            return parent
                .handle_request::<R, T>(request, response_handle)
                .await;
        }
        self.catalog
            .handle_request::<R, T>(request, response_handle)
            .await
    }
}

/// The request with the DO bit cleared, as a DNSSEC-unaware resolver would
/// pass it on; `None` if it cannot be re-encoded (then it is answered as sent).
pub(crate) fn without_dnssec_ok(request: &Request) -> Option<Request> {
    let mut message = hickory_proto::op::Message::from_vec(request.as_slice()).ok()?;
    if let Some(edns) = message.edns.as_mut() {
        edns.set_dnssec_ok(false);
    }
    Request::from_bytes(message.to_vec().ok()?, request.src(), request.protocol()).ok()
}
