//! Engine `address`: the domain itself has an A or AAAA record. Some receivers
//! refuse senders whose domain does not resolve ("451 4.1.8 Cannot resolve your
//! domain", seed 004).

use serde::Deserialize;

use mxaudit_core::{CheckCx, CheckReport, CodeSpec, Engine, Observation, PluginMeta, Target};

use crate::resolve::resolve_host;

/// `[params]` of the `address` engine (none yet).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressParams {}

/// The `address` engine.
#[derive(Debug)]
pub struct Address;

impl Engine for Address {
    const NAME: &'static str = "address";
    const CODES: &'static [CodeSpec] = &[CodeSpec {
        code: "a.missing",
        vars: &[],
    }];
    type Params = AddressParams;

    fn build(_params: AddressParams, _plugin: &PluginMeta) -> Result<Self, String> {
        Ok(Address)
    }

    async fn run(&self, target: &Target, cx: &CheckCx) -> CheckReport {
        let mut report = CheckReport::default();
        let addrs = resolve_host(&target.domain, cx).await;
        if !addrs.addresses.is_empty() {
            return report;
        }
        if !addrs.failures.is_empty() {
            report.error(addrs.failures.join(", "));
        } else if !addrs.nxdomain {
            // A domain that does not exist at all is `domain.nxdomain` (engine mx).
            report.push(
                Observation::new("a.missing", target.domain.to_string())
                    .evidence_lines(addrs.evidence),
            );
        }
        report
    }
}
