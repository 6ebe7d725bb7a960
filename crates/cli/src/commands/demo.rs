//! `mxaudit demo`: the offline world. Starts the testbed DNS server on
//! loopback with a handful of sample domains and audits them, so that a new user
//! sees real output without internet.

use anyhow::anyhow;

use mxaudit_testbed::{DnsServer, demo};

use crate::args::{AuditArgs, DemoArgs, DnsArgs};
use crate::commands::audit;
use crate::{Failure, failed, usage};

/// Runs `mxaudit demo`.
pub async fn run(args: DemoArgs) -> Result<u8, Failure> {
    let config =
        mxaudit_core::config::Config::parse("builtin:worlds/demo/audit.toml", demo::CONFIG)
            .map_err(usage)?;
    let faults = demo::faults().map_err(failed)?;
    let server = DnsServer::start_with_faults(&demo::zones(), &faults)
        .await
        .map_err(|e| failed(anyhow!("cannot start the demo DNS server: {e}")))?;
    eprintln!(
        "mxaudit demo: serving the offline world on {} (UDP and TCP); auditing {} domains.\n",
        server.addr(),
        config.domains.len()
    );
    let audit_args = AuditArgs {
        format: args.format,
        lang: args.lang,
        dns: DnsArgs {
            nameservers: vec![server.addr().to_string()],
            ..DnsArgs::default()
        },
        ..AuditArgs::default()
    };
    // The demo shows findings on purpose: its exit status says whether it ran.
    audit::execute(&audit_args, &config).await.map(|_| 0)
}
