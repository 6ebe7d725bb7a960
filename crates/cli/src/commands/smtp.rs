//! `mxaudit smtp HOST[:PORT]`: the relay-policy probe of one server, with the
//! transcript (control characters escaped, nothing the server said redacted).

use anyhow::anyhow;

use mxaudit_checks::smtp::{SmtpProbeOptions, probe_host};
use mxaudit_core::config::Config;

use crate::args::{AuditArgs, SmtpArgs};
use crate::{Failure, failed, setup, usage};

/// `host`, `host:port`, `[v6]:port` or a bare IPv6 address → (host, port).
pub(crate) fn split_host(s: &str) -> Result<(String, u16), String> {
    if let Some(rest) = s.strip_prefix('[') {
        let (addr, tail) = rest
            .split_once(']')
            .ok_or_else(|| format!("`{s}`: missing `]`"))?;
        let port = match tail.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| format!("`{s}`: bad port"))?,
            None if tail.is_empty() => 25,
            None => return Err(format!("`{s}`: unexpected `{tail}`")),
        };
        return Ok((addr.to_owned(), port));
    }
    if s.parse::<std::net::Ipv6Addr>().is_ok() {
        return Ok((s.to_owned(), 25));
    }
    match s.rsplit_once(':') {
        Some((h, p)) => Ok((
            h.to_owned(),
            p.parse().map_err(|_| format!("`{s}`: bad port"))?,
        )),
        None => Ok((s.to_owned(), 25)),
    }
}

/// Runs `mxaudit smtp`.
pub async fn run(args: SmtpArgs) -> Result<u8, Failure> {
    let (host, port) = split_host(&args.host).map_err(|e| usage(anyhow!("{e}")))?;
    let opts = SmtpProbeOptions {
        recipient_domain: args.domain.clone(),
        ca_files: args.ca_files.clone(),
        ..SmtpProbeOptions::default()
    };
    opts.validate().map_err(|e| usage(anyhow!(e)))?;
    let config = Config::default();
    let dns = setup::dns(&args.dns, &config)?;
    let audit_args = AuditArgs {
        allow_targets: args.allow_targets.clone(),
        ..AuditArgs::default()
    };
    let policy = setup::address_policy(&audit_args, &config);
    let out = probe_host(&host, port, &opts, &dns, &policy).await;
    match args.format.as_str() {
        "json" => println!("{}", serde_json::to_string_pretty(&out).map_err(failed)?),
        "text" => print!("{out}"),
        other => {
            return Err(usage(anyhow!(
                "--format: unknown format `{other}` (text, json)"
            )));
        }
    }
    // Findings exit 1 (any of them is a problem a sender sees); nothing probed exits 3.
    Ok(if out.sessions.is_empty() && !out.errors.is_empty() {
        3
    } else if out.observations.is_empty() {
        0
    } else {
        1
    })
}

#[cfg(test)]
mod tests {
    use super::split_host;

    #[test]
    fn hosts_and_ports() {
        assert_eq!(
            split_host("mx.example.com"),
            Ok(("mx.example.com".into(), 25))
        );
        assert_eq!(
            split_host("mx.example.com:2525"),
            Ok(("mx.example.com".into(), 2525))
        );
        assert_eq!(split_host("[::1]:2525"), Ok(("::1".into(), 2525)));
        assert_eq!(split_host("::1"), Ok(("::1".into(), 25)));
        assert!(split_host("mx:port").is_err());
    }
}
