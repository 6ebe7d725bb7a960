//! `mxaudit demo`: the offline world. Starts the testbed DNS server on
//! loopback with sample domains and audits them, so that a new user sees real
//! output without internet.

use mxaudit_agent::plan::Plan;
use mxaudit_agent::{AgentError, Result};
use mxaudit_testbed::{DnsServer, demo};

use crate::args::{AuditArgs, DemoArgs, DnsArgs};

/// Runs `mxaudit demo`.
pub async fn run(args: DemoArgs) -> Result<u8> {
    let config =
        mxaudit_core::config::Config::parse("builtin:worlds/demo/audit.toml", demo::CONFIG)?;
    let faults = demo::faults().map_err(AgentError::failed)?;
    let addr = args
        .serve
        .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    if !addr.ip().is_loopback() {
        return Err(AgentError::usage(
            "--serve: the demo world is served on loopback only (127.0.0.0/8 or ::1)",
        ));
    }
    let server = DnsServer::start_with_faults_on(&demo::zones(), &faults, addr)
        .await
        .map_err(|e| AgentError::Failed(format!("cannot start the demo DNS server: {e}")))?;
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
    let plan = Plan::new(config, None, super::audit_overrides(&audit_args)?)?;
    // The demo shows findings on purpose: its exit status says whether it ran.
    super::audit::execute(&plan, &audit_args).await?;
    if args.serve.is_some() {
        eprintln!(
            "mxaudit demo: the offline world stays up on {addr} (UDP and TCP). Try:\n  mxaudit audit contoso.example --profile microsoft365 --nameserver {addr} --allow-target 198.51.100.0/24 --allow-target 203.0.113.0/24 --allow-target 2001:db8::/32\n  mxaudit preflight onprem.example --to microsoft365 --smart-host mx1.healthy.example --dns-only --nameserver {addr} --allow-target 198.51.100.0/24 --allow-target 203.0.113.0/24 --allow-target 2001:db8::/32\nCtrl-C stops it.",
            addr = server.addr()
        );
        let _ = tokio::signal::ctrl_c().await;
    }
    Ok(0)
}
