//! `mxaudit plugins list|check|doc` and `mxaudit config check`.

use mxaudit_agent::catalog;
use mxaudit_agent::{AgentError, Result};

use crate::args::{ConfigCommand, PluginsCommand};

/// Runs `mxaudit plugins …`.
pub fn plugins(cmd: PluginsCommand) -> Result<u8> {
    match cmd {
        PluginsCommand::List {
            plugin_dirs,
            config,
        } => {
            for p in catalog::list(config.as_deref(), &plugin_dirs)? {
                let codes: Vec<&str> = p.meta.findings.keys().map(String::as_str).collect();
                println!(
                    "{:<30} engine={:<10} {} source={}\n    {}\n    codes: {}",
                    p.meta.id,
                    p.meta.engine,
                    if p.enabled { "enabled " } else { "disabled" },
                    p.meta.source,
                    p.meta.description,
                    codes.join(", ")
                );
            }
            Ok(0)
        }
        PluginsCommand::Check { dir } => {
            let checks = catalog::check_manifests(&dir)?;
            let bad = checks.iter().filter(|c| c.result.is_err()).count();
            for c in &checks {
                match &c.result {
                    Ok((id, engine)) => println!("ok    {} ({id} on engine {engine})", c.path),
                    Err(e) => eprintln!("error {e}"),
                }
            }
            if bad > 0 {
                return Err(AgentError::Usage(format!(
                    "{bad} of {} manifest(s) invalid",
                    checks.len()
                )));
            }
            Ok(0)
        }
        PluginsCommand::Doc { out } => {
            let written = catalog::write_docs(&out)?;
            let names: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
            println!("wrote {}", names.join(" and "));
            Ok(0)
        }
    }
}

/// Runs `mxaudit config …`.
pub fn config(cmd: ConfigCommand) -> Result<u8> {
    match cmd {
        ConfigCommand::Check { file } => {
            let s = catalog::check_config(&file)?;
            println!(
                "{}: ok ({} domain(s), {} plugin(s) selected, {} sink(s))",
                file.display(),
                s.domains,
                s.plugins,
                s.sinks
            );
            Ok(0)
        }
    }
}
