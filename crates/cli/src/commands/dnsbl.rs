//! `mxaudit dnsbl IP|HOST…`: each address against each blocklist, one line per
//! (address, list): listed (with the code's meaning), not listed, or an error.

use anyhow::anyhow;

use mxaudit_checks::dnsbl::{self, Dnsbl, LineStatus};
use mxaudit_core::config::Config;

use crate::args::{AuditArgs, DnsblArgs};
use crate::{Failure, failed, setup, usage};

/// Runs `mxaudit dnsbl`.
pub async fn run(args: DnsblArgs) -> Result<u8, Failure> {
    let lang: mxaudit_core::Lang = args
        .lang
        .parse()
        .map_err(|e: String| usage(anyhow!("--lang: {e}")))?;
    let config = match &args.config {
        Some(path) => setup::load_config(path)?,
        None => Config::default(),
    };
    // Every list the plugin set knows (built-in, plugin directories, inline
    // [[dnsbl]] tables), enabled or not: `enabled` decides what an audit runs,
    // while `mxaudit dnsbl` is an explicit request to ask the lists (a list
    // that needs a registered resolver then shows as unusable or failed,
    // which is the answer the user needs).
    let set = setup::plugin_set(&config, args.config.as_deref(), &args.plugin_dirs)?;
    let chosen = match &args.plugins {
        Some(ids) => set.select(Some(ids), &[]).map_err(|e| usage(anyhow!(e)))?,
        None => set.plugins,
    };
    let lists: Vec<&Dnsbl> = chosen
        .iter()
        .filter_map(|p| p.check.engine().downcast_ref::<Dnsbl>())
        .collect();
    if lists.is_empty() {
        return Err(usage(anyhow!("no blocklist selected")));
    }
    let dns = setup::dns(&args.dns, &config)?;
    setup::warn_public_resolver(&chosen, &dns);
    let audit_args = AuditArgs {
        allow_targets: args.allow_targets.clone(),
        ..AuditArgs::default()
    };
    let policy = setup::address_policy(&audit_args, &config);
    let lines = dnsbl::check_addresses(&dns, &lists, &args.inputs, &policy)
        .await
        .map_err(usage)?;
    match args.format.as_str() {
        "json" => println!("{}", serde_json::to_string_pretty(&lines).map_err(failed)?),
        "text" => print!("{}", dnsbl::lines_to_text(&lines, lang)),
        other => {
            return Err(usage(anyhow!(
                "--format: unknown format `{other}` (text, json)"
            )));
        }
    }
    let listed = lines.iter().any(|l| l.status == LineStatus::Listed);
    let undecided = !lines.is_empty()
        && lines.iter().all(|l| {
            matches!(
                l.status,
                LineStatus::Failed | LineStatus::Unusable | LineStatus::Refused
            )
        });
    Ok(if listed {
        1
    } else if undecided {
        3
    } else {
        0
    })
}
