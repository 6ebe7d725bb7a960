//! `mxaudit plugins list|check|doc`.

use anyhow::{Context, anyhow};

use mxaudit_core::config::Config;
use mxaudit_core::manifest;
use mxaudit_core::registry::read_manifest_dir;

use crate::args::PluginsCommand;
use crate::commands::audit::write_atomic;
use crate::{Failure, failed, setup, usage};

/// Runs `mxaudit plugins …`.
pub fn run(cmd: PluginsCommand) -> Result<u8, Failure> {
    match cmd {
        PluginsCommand::List {
            plugin_dirs,
            config,
        } => {
            let cfg = match &config {
                Some(path) => setup::load_config(path)?,
                None => Config::default(),
            };
            let set = setup::plugin_set(&cfg, config.as_deref(), &plugin_dirs)?;
            for p in &set.plugins {
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
        PluginsCommand::Doc { out } => {
            let set = setup::plugin_set(&Config::default(), None, &[])?;
            std::fs::create_dir_all(&out)
                .with_context(|| format!("cannot create {}", out.display()))
                .map_err(failed)?;
            let plugins =
                mxaudit_core::docs::plugins_markdown(&set.plugins, mxaudit_checks::ENGINES);
            let findings = mxaudit_core::docs::findings_markdown(&set.plugins);
            write_atomic(&out.join("plugins.md"), plugins.as_bytes()).map_err(failed)?;
            write_atomic(&out.join("findings.md"), findings.as_bytes()).map_err(failed)?;
            println!(
                "wrote {} and {}",
                out.join("plugins.md").display(),
                out.join("findings.md").display()
            );
            Ok(0)
        }
    }
}
