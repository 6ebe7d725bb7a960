//! `mxaudit plugins list|check`.

use anyhow::anyhow;

use mxaudit_core::manifest;
use mxaudit_core::registry::read_manifest_dir;

use crate::args::PluginsCommand;
use crate::{Failure, setup, usage};

/// Runs `mxaudit plugins …`.
pub fn run(cmd: PluginsCommand) -> Result<u8, Failure> {
    match cmd {
        PluginsCommand::List => {
            let set = setup::plugin_set()?;
            for p in &set.plugins {
                let codes: Vec<&str> = p.meta.findings.keys().map(String::as_str).collect();
                println!(
                    "{:<24} engine={:<10} {} source={}\n    {}\n    codes: {}",
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
            let files = read_manifest_dir(&dir).map_err(usage)?;
            if files.is_empty() {
                return Err(usage(anyhow!("{}: no *.toml manifest", dir.display())));
            }
            let mut bad = 0;
            for (path, source) in &files {
                let stem = std::path::Path::new(path)
                    .file_stem()
                    .and_then(|s| s.to_str());
                match manifest::load(path, stem, source, mxaudit_checks::ENGINES) {
                    Ok(p) => println!("ok    {path} ({} on engine {})", p.meta.id, p.meta.engine),
                    Err(e) => {
                        bad += 1;
                        eprintln!("error {e}");
                    }
                }
            }
            if bad > 0 {
                return Err(usage(anyhow!(
                    "{bad} of {} manifest(s) invalid",
                    files.len()
                )));
            }
            Ok(0)
        }
    }
}
