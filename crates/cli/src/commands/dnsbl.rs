//! `mxaudit dnsbl IP|HOST…`: each address against each blocklist, one line per
//! (address, list): listed (with the code's meaning), not listed, or an error.

use anyhow::anyhow;

use mxaudit_checks::dnsbl::{self, LineStatus};
use mxaudit_core::config::Config;
use mxaudit_core::registry::read_manifest_dir;

use crate::args::{AuditArgs, DnsblArgs};
use crate::{Failure, failed, setup, usage};

/// Runs `mxaudit dnsbl`.
pub async fn run(args: DnsblArgs) -> Result<u8, Failure> {
    let lang: mxaudit_core::Lang = args
        .lang
        .parse()
        .map_err(|e: String| usage(anyhow!("--lang: {e}")))?;
    let config = Config::default();
    // Validates every manifest (built-in and the user's) first, with located errors.
    setup::plugin_set(&config, None, &args.plugin_dirs)?;
    let mut manifests: Vec<(String, String)> = mxaudit_checks::BUILTIN_MANIFESTS
        .iter()
        .map(|(p, s)| ((*p).to_owned(), (*s).to_owned()))
        .collect();
    for dir in &args.plugin_dirs {
        manifests.extend(read_manifest_dir(dir).map_err(usage)?);
    }
    let lists = dnsbl::lists_from_manifests(&manifests, args.plugins.as_deref()).map_err(usage)?;
    if lists.is_empty() {
        return Err(usage(anyhow!("no blocklist selected")));
    }
    let dns = setup::dns(&args.dns, &config)?;
    for (ip, operator) in dnsbl::public_resolvers(dns.nameservers()) {
        eprintln!(
            "mxaudit: warning: the resolver {ip} is {operator}'s public service; lists such as Spamhaus refuse queries from it."
        );
    }
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
