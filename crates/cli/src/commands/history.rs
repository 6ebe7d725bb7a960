//! `mxaudit history DOMAIN`: past runs, and when each finding appeared and was resolved.

use anyhow::{Context, anyhow};

use mxaudit_core::text::escape_terminal as esc;

use crate::args::HistoryArgs;
use crate::commands::run::open_store;
use crate::{Failure, failed, setup, usage};

/// Runs `mxaudit history`.
pub async fn run(args: HistoryArgs) -> Result<u8, Failure> {
    let config = setup::load_config(&args.config)?;
    let domain = mxaudit_dns::DomainName::parse(&args.domain)
        .map_err(usage)?
        .to_string();
    let store = open_store(&config, &args.config).await?;
    let h = store.history(&domain, args.limit).await.map_err(failed)?;
    match args.format.as_str() {
        "json" => println!(
            "{}",
            serde_json::to_string_pretty(&h)
                .context("cannot encode")
                .map_err(failed)?
        ),
        "text" => {
            println!(
                "History of {} ({} run(s) shown)",
                esc(&h.domain),
                h.runs.len()
            );
            for r in &h.runs {
                println!(
                    "  {}  {:<10} {}{}",
                    r.started_at,
                    r.status,
                    r.id,
                    r.schedule
                        .as_deref()
                        .map(|s| format!("  schedule {}", esc(s)))
                        .unwrap_or_default()
                );
            }
            println!("Findings:");
            if h.findings.is_empty() {
                println!("  none recorded");
            }
            for f in &h.findings {
                println!(
                    "  [{}] {} {}  first seen {}, {}",
                    f.finding.severity,
                    f.finding.code,
                    esc(&f.finding.subject),
                    f.first_seen,
                    match &f.resolved_at {
                        Some(at) => format!("resolved {at}"),
                        None => format!("open (last seen {})", f.last_seen),
                    }
                );
            }
        }
        other => {
            return Err(usage(anyhow!(
                "--format: unknown format `{other}` (text, json)"
            )));
        }
    }
    Ok(0)
}
