//! One file per group of subcommands: each turns its arguments into the
//! agent's requests, calls the agent, and prints.

pub mod audit;
pub mod catalog;
pub mod demo;
pub mod explain;
pub mod preflight;
pub mod relay_config;
pub mod run;
pub mod tools;

use std::io::Write;

use mxaudit_agent::plan::Overrides;
use mxaudit_agent::{AgentError, Result};
use mxaudit_core::{Lang, Severity};

use crate::args::{AuditArgs, DnsArgs};

/// `--lang`.
pub fn lang(s: Option<&str>) -> Result<Option<Lang>> {
    s.map(|l| {
        l.parse()
            .map_err(|e: String| AgentError::Usage(format!("--lang: {e}")))
    })
    .transpose()
}

/// `--fail-on`.
pub fn fail_on(s: Option<&str>) -> Result<Option<Severity>> {
    s.map(|l| {
        l.parse()
            .map_err(|e: String| AgentError::Usage(format!("--fail-on: {e}")))
    })
    .transpose()
}

/// The DNS options as overrides.
pub fn dns_overrides(dns: &DnsArgs) -> Overrides {
    Overrides {
        nameservers: dns.nameservers.clone(),
        timeout: dns.timeout,
        attempts: dns.attempts,
        ..Overrides::default()
    }
}

/// `audit`'s options as overrides of the configuration.
pub fn audit_overrides(a: &AuditArgs) -> Result<Overrides> {
    Ok(Overrides {
        domains: a.domains.clone(),
        domains_file: a
            .domains_file
            .as_deref()
            .map(mxaudit_agent::targets::from_command_line),
        plugins: a.plugins.clone(),
        plugin_dirs: a.plugin_dirs.clone(),
        lang: lang(a.lang.as_deref())?,
        fail_on: fail_on(a.fail_on.as_deref())?,
        allow_targets: a.allow_targets.clone(),
        profile: a.profile.clone(),
        outbound_ips: a.outbound_ips.clone(),
        concurrency: a.concurrency,
        dns_only: a.dns_only,
        no_rate_limits: a.no_rate_limits,
        ca_files: a.ca_files.clone(),
        ..dns_overrides(&a.dns)
    })
}

/// Prints to standard output; a closed pipe (`| head`) is not an error.
pub fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// JSON for standard output, pretty, with a final newline.
pub fn json(value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string_pretty(value)
        .map(|s| s + "\n")
        .map_err(|e| AgentError::Failed(format!("cannot encode: {e}")))
}

/// An unknown `--format` value.
pub fn unknown_format(other: &str, known: &str) -> AgentError {
    AgentError::Usage(format!("--format: unknown format `{other}` ({known})"))
}
