//! The offline commands: `plugins list|check|doc` and `config check`. They
//! load exactly what a run loads, so a file they accept also runs.

use std::path::{Path, PathBuf};

use mxaudit_core::config::Config;
use mxaudit_core::manifest::{self, Plugin};
use mxaudit_core::registry::read_manifest_dir;

use crate::error::{AgentError, Result};
use crate::plan::{Overrides, Plan, plugin_set};
use crate::run::Delivery;

/// Every loaded plugin: built-in, the configuration's directories and
/// `extra_dirs`, inline tables.
pub fn list(config_path: Option<&Path>, extra_dirs: &[PathBuf]) -> Result<Vec<Plugin>> {
    let config = match config_path {
        Some(path) => crate::plan::load_config(path)?,
        None => Config::default(),
    };
    Ok(plugin_set(&config, config_path, extra_dirs)?.plugins)
}

/// One manifest checked by `plugins check`.
#[derive(Debug)]
pub struct ManifestCheck {
    /// The file.
    pub path: String,
    /// The plugin id and engine, or the located error.
    pub result: std::result::Result<(String, String), String>,
}

/// Validates every manifest of a directory offline.
pub fn check_manifests(dir: &Path) -> Result<Vec<ManifestCheck>> {
    let files = read_manifest_dir(dir)?;
    if files.is_empty() {
        return Err(AgentError::Usage(format!(
            "{}: no *.toml manifest",
            dir.display()
        )));
    }
    Ok(files
        .iter()
        .map(|(path, source)| {
            let stem = Path::new(path).file_stem().and_then(|s| s.to_str());
            ManifestCheck {
                path: path.clone(),
                result: manifest::load(path, stem, source, mxaudit_checks::ENGINES)
                    .map(|p| (p.meta.id, p.meta.engine))
                    .map_err(|e| e.to_string()),
            }
        })
        .collect())
}

/// Writes `plugins.md` and `findings.md` of the built-in manifests into `out`;
/// returns the paths written.
pub fn write_docs(out: &Path) -> Result<Vec<PathBuf>> {
    let set = plugin_set(&Config::default(), None, &[])?;
    let plugins = mxaudit_core::docs::plugins_markdown(&set.plugins, mxaudit_checks::ENGINES);
    let findings = mxaudit_core::docs::findings_markdown(&set.plugins);
    let mut written = Vec::new();
    for (name, text) in [("plugins.md", plugins), ("findings.md", findings)] {
        let path = out.join(name);
        mxaudit_core::atomic::write(&path, text.as_bytes())
            .map_err(|e| AgentError::Failed(format!("cannot write {}: {e}", path.display())))?;
        written.push(path);
    }
    Ok(written)
}

/// What `config check` found valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSummary {
    /// `[[domains]]` entries.
    pub domains: usize,
    /// Plugins a run would select.
    pub plugins: usize,
    /// Sinks built (secrets resolved, no network).
    pub sinks: usize,
}

/// Validates a configuration offline: the file, its plugins and its sinks
/// (secrets resolved, no network), as a run loads them.
pub fn check_config(path: &Path) -> Result<ConfigSummary> {
    let plan = Plan::load(Some(path), Overrides::default())?;
    let delivery = Delivery::from_config(&plan.config, Some(path))?;
    Ok(ConfigSummary {
        domains: plan.config.domains.len(),
        plugins: plan.plugins.len(),
        sinks: delivery.ids().len(),
    })
}
