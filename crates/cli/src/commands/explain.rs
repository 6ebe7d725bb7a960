//! `mxaudit explain FILE|-`: what a bounce says, what it means, who must act,
//! and (with `--audit`) the checks that confirm the cause.

use std::io::Read;

use anyhow::{Context, anyhow};

use mxaudit_bounce::Rules;
use mxaudit_bounce::view::Explanation;
use mxaudit_core::config::Config;
use mxaudit_core::model::Report;
use mxaudit_core::text::{escape_markdown, escape_terminal};
use mxaudit_core::{Lang, Target};
use mxaudit_dns::DomainName;

use crate::args::{AuditArgs, ExplainArgs};
use crate::{Failure, failed, setup, usage};

/// Runs `mxaudit explain`: reads the input, asks the library what it is and
/// means, prints it. `--audit` runs the checks that confirm each cause.
pub async fn run(args: ExplainArgs) -> Result<u8, Failure> {
    let lang: Lang = args
        .lang
        .parse()
        .map_err(|e: String| usage(anyhow!("--lang: {e}")))?;
    let mut input = Vec::new();
    let limit = mxaudit_bounce::MAX_INPUT as u64 + 1;
    if args.file.as_os_str() == "-" {
        std::io::stdin()
            .take(limit)
            .read_to_end(&mut input)
            .context("cannot read standard input")
            .map_err(usage)?;
    } else {
        std::fs::File::open(&args.file)
            .and_then(|f| f.take(limit).read_to_end(&mut input))
            .with_context(|| format!("cannot read {}", args.file.display()))
            .map_err(usage)?;
    }
    let mut rules = Rules::builtin().map_err(failed)?;
    if let Some(path) = &args.codes {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))
            .map_err(usage)?;
        rules.extend_front(Rules::parse(&path.display().to_string(), &text).map_err(usage)?);
    }
    let reading = mxaudit_bounce::read(&input, &rules).map_err(usage)?;
    let explanation = Explanation::new(reading, &rules, lang);
    let audit = if args.audit {
        Some(audit_causes(&args, &explanation, lang).await?)
    } else {
        None
    };
    let text = match args.format.as_str() {
        "json" => {
            serde_json::to_string_pretty(&explanation.json(audit.as_ref())).map_err(failed)? + "\n"
        }
        "text" => explanation.render(false, escape_terminal, audit.as_ref()),
        "markdown" | "md" => explanation.render(true, escape_markdown, audit.as_ref()),
        other => {
            return Err(usage(anyhow!(
                "--format: unknown format `{other}` (text, json, markdown)"
            )));
        }
    };
    print!("{text}");
    Ok(0)
}

/// The domains each cause points at, with the plugins that confirm it.
async fn audit_causes(
    args: &ExplainArgs,
    explanation: &Explanation,
    lang: Lang,
) -> Result<Report, Failure> {
    let config = Config::default();
    let set = setup::plugin_set(&config, None, &[])?;
    let mut wanted: Vec<(String, Vec<String>)> = Vec::new();
    for e in &explanation.explained {
        let Some(domain) = explanation.audit_domain(e) else {
            continue;
        };
        let plugins: Vec<String> = e
            .explanation
            .checks
            .iter()
            .filter(|id| set.plugins.iter().any(|p| &p.meta.id == *id))
            .cloned()
            .collect();
        if plugins.is_empty() {
            continue;
        }
        match wanted.iter_mut().find(|(d, _)| *d == domain) {
            Some((_, ps)) => ps.extend(
                plugins
                    .into_iter()
                    .filter(|p| !ps.contains(p))
                    .collect::<Vec<_>>(),
            ),
            None => wanted.push((domain, plugins)),
        }
    }
    let audit_args = AuditArgs {
        dns: args.dns.clone(),
        allow_targets: args.allow_targets.clone(),
        ..AuditArgs::default()
    };
    let dns = setup::dns(&args.dns, &config)?;
    let policy = setup::address_policy(&audit_args, &config);
    let started = chrono::Utc::now();
    let mut report = Report {
        version: mxaudit_core::model::REPORT_VERSION,
        generator: format!("mxaudit {}", env!("CARGO_PKG_VERSION")),
        started_at: started.to_rfc3339(),
        finished_at: String::new(),
        domains: Vec::new(),
        findings: Vec::new(),
        checks: Vec::new(),
    };
    for (domain, ids) in wanted {
        let Ok(name) = DomainName::parse(&domain) else {
            continue;
        };
        let plugins = set.select(Some(&ids), &[]).map_err(|e| usage(anyhow!(e)))?;
        let target = Target {
            domain: name,
            profile: None,
            outbound_ips: Vec::new(),
            smart_host: None,
        };
        let opts = mxaudit_core::runner::RunOptions {
            lang,
            ..Default::default()
        };
        let out = mxaudit_core::runner::run(&plugins, &[target], &dns, policy.clone(), &opts).await;
        report.domains.push(domain);
        report.findings.extend(out.findings);
        report.checks.extend(out.checks);
    }
    report.finished_at = chrono::Utc::now().to_rfc3339();
    Ok(report)
}
