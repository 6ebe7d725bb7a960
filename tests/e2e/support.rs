//! Shared helpers of the end-to-end tests: a testbed DNS server, a DNS client on
//! it, the library runner with the built-in plugins, and the real binary.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use mxaudit_core::check::{CheckCx, Target};
use mxaudit_core::manifest::Plugin;
use mxaudit_core::registry::PluginSet;
use mxaudit_core::runner::{self, RunOptions, RunOutput};
use mxaudit_core::{AddressPolicy, Profile};
use mxaudit_dns::{Dns, DnsConfig, DomainName};
use mxaudit_testbed::DnsServer;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `tests/fixtures/<rel>`.
pub fn fixture(rel: &str) -> PathBuf {
    repo().join("tests/fixtures").join(rel)
}

/// Starts the testbed DNS server on a zone folder.
pub async fn dns_server(dir: &Path) -> DnsServer {
    DnsServer::start_dir(dir)
        .await
        .expect("testbed DNS server starts")
}

/// A DNS client that asks only `addr`, with a short timeout.
pub fn dns_client(addr: SocketAddr) -> Dns {
    Dns::new(&DnsConfig {
        nameservers: vec![addr],
        timeout: Duration::from_millis(500),
        attempts: 0,
        concurrency: 64,
        ..DnsConfig::default()
    })
    .expect("resolver builds")
}

/// The address policy of the tests: documentation ranges (used by healthy
/// fixture hosts) and loopback count as public.
pub fn test_policy() -> Arc<AddressPolicy> {
    Arc::new(AddressPolicy::new(
        ["198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32"]
            .iter()
            .map(|n| n.parse().expect("net"))
            .collect(),
    ))
}

/// A check context on `dns`.
pub fn cx(dns: &Dns) -> CheckCx {
    CheckCx::new(
        dns.clone(),
        test_policy(),
        std::time::Instant::now() + Duration::from_secs(30),
    )
}

/// Every built-in plugin.
pub fn builtin_plugins() -> PluginSet {
    PluginSet::load(
        mxaudit_checks::ENGINES,
        mxaudit_checks::BUILTIN_MANIFESTS,
        &[],
    )
    .expect("built-in manifests load")
}

/// The built-in plugins with these ids.
pub fn plugins(ids: &[&str]) -> Vec<Plugin> {
    let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    builtin_plugins()
        .select(Some(&ids), &[])
        .expect("known plugins")
}

/// A target with an optional profile id.
pub fn target(domain: &str, profile: Option<&str>) -> Target {
    Target {
        domain: DomainName::parse(domain).expect("valid domain"),
        profile: profile.map(|id| {
            Arc::new(
                Profile::builtin()
                    .into_iter()
                    .find(|p| p.id == id)
                    .expect("known profile"),
            )
        }),
        outbound_ips: Vec::new(),
        smart_host: None,
        relay_config: Vec::new(),
    }
}

/// Runs plugins over targets through the library runner.
pub async fn run(plugins: &[Plugin], targets: &[Target], dns: &Dns) -> RunOutput {
    runner::run(plugins, targets, dns, test_policy(), &RunOptions::default()).await
}

/// The real `mxaudit` binary.
pub fn mxaudit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mxaudit"))
}

/// Runs the binary with `args`, returning its output.
pub fn mxaudit_run(args: &[&str]) -> Output {
    mxaudit().args(args).output().expect("mxaudit runs")
}

/// The codes and subjects of a run's findings for one domain, sorted.
pub fn codes_for(out: &RunOutput, domain: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = out
        .findings
        .iter()
        .filter(|f| f.domain == domain)
        .map(|f| (f.code.clone(), f.subject.clone()))
        .collect();
    v.sort();
    v
}

/// The demo world (crates/testbed/worlds/demo) served with its faults.
pub async fn demo_server() -> DnsServer {
    let faults = mxaudit_testbed::demo::faults().expect("faults parse");
    DnsServer::start_with_faults(&mxaudit_testbed::demo::zones(), &faults)
        .await
        .expect("testbed DNS server starts")
}
