//! `mxaudit explain FILE|-`: what a bounce says, what it means, who must act,
//! and (with `--audit`) the checks that confirm the cause.

use std::io::Read;

use mxaudit_agent::explain;
use mxaudit_agent::plan::{Overrides, Plan};
use mxaudit_agent::{AgentError, Result};
use mxaudit_bounce::Rules;
use mxaudit_bounce::view::Explanation;
use mxaudit_core::sink::Batch;
use mxaudit_core::text::{escape_markdown, escape_terminal};

use crate::args::ExplainArgs;

/// Runs `mxaudit explain`: reads the input, asks the library what it is and
/// means, prints it. `--audit` runs the checks that confirm each cause.
pub async fn run(args: ExplainArgs) -> Result<u8> {
    let lang = super::lang(Some(&args.lang))?.unwrap_or_default();
    let mut input = Vec::new();
    let limit = mxaudit_bounce::MAX_INPUT as u64 + 1;
    let read = if args.file.as_os_str() == "-" {
        std::io::stdin().take(limit).read_to_end(&mut input)
    } else {
        std::fs::File::open(&args.file).and_then(|f| f.take(limit).read_to_end(&mut input))
    };
    read.map_err(|e| AgentError::Usage(format!("cannot read {}: {e}", args.file.display())))?;
    let mut rules = Rules::builtin().map_err(AgentError::failed)?;
    if let Some(path) = &args.codes {
        let text = std::fs::read_to_string(path)
            .map_err(|e| AgentError::Usage(format!("cannot read {}: {e}", path.display())))?;
        rules.extend_front(
            Rules::parse(&path.display().to_string(), &text).map_err(AgentError::usage)?,
        );
    }
    let reading = mxaudit_bounce::read(&input, &rules).map_err(AgentError::usage)?;
    let explanation = Explanation::new(reading, &rules, lang);
    let audit = if args.audit {
        Some(audit_causes(&args, &explanation).await?)
    } else {
        None
    };
    let text = match args.format.as_str() {
        "json" => super::json(&explanation.json(audit.as_ref()))?,
        "text" => explanation.render(false, escape_terminal, audit.as_ref()),
        "markdown" | "md" => explanation.render(true, escape_markdown, audit.as_ref()),
        other => return Err(super::unknown_format(other, "text, json, markdown")),
    };
    super::print(&text);
    Ok(0)
}

/// The domains each cause points at, with the plugins that confirm it, run
/// as an audit.
async fn audit_causes(args: &ExplainArgs, explanation: &Explanation) -> Result<Batch> {
    let overrides = Overrides {
        allow_targets: args.allow_targets.clone(),
        lang: Some(explanation.lang),
        ..super::dns_overrides(&args.dns)
    };
    let plan = Plan::load(None, overrides)?;
    let mut wanted: Vec<(String, Vec<String>)> = Vec::new();
    for e in &explanation.explained {
        let Some(domain) = explanation.audit_domain(e) else {
            continue;
        };
        let plugins = explain::known_plugins(&plan, &e.explanation.checks);
        if plugins.is_empty() {
            continue;
        }
        match wanted.iter_mut().find(|(d, _)| *d == domain) {
            Some((_, ps)) => {
                for p in plugins {
                    if !ps.contains(&p) {
                        ps.push(p);
                    }
                }
            }
            None => wanted.push((domain, plugins)),
        }
    }
    explain::audit_causes(&plan, &wanted).await
}
