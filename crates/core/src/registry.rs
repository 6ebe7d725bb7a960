//! The set of loaded plugins: the built-in manifests (compiled in) plus the
//! manifests of the user's plugin directories.

use std::path::Path;

use crate::check::EngineEntry;
use crate::manifest::{self, Plugin};
use crate::tomldoc::Located;

/// Loaded plugins, in load order (built-in first, in registry order).
#[derive(Debug, Clone, Default)]
pub struct PluginSet {
    /// Every plugin, enabled or not.
    pub plugins: Vec<Plugin>,
}

fn stem_of(path: &str) -> Option<&str> {
    Path::new(path).file_stem().and_then(|s| s.to_str())
}

impl PluginSet {
    /// Loads the built-in manifests and every `*.toml` in `user_dirs`. A user
    /// manifest with the id of a built-in one is an error unless it says
    /// `override = true`.
    pub fn load(
        engines: &[EngineEntry],
        builtins: &[(&str, &str)],
        user_dirs: &[&Path],
    ) -> Result<PluginSet, Located> {
        let mut set = PluginSet::default();
        for (path, source) in builtins {
            let plugin = manifest::load(path, stem_of(path), source, engines)?;
            set.plugins.push(plugin);
        }
        for dir in user_dirs {
            for (path, source) in read_manifest_dir(dir)? {
                let plugin = manifest::load(&path, stem_of(&path), &source, engines)?;
                set.add_user(plugin, &path)?;
            }
        }
        Ok(set)
    }

    fn add_user(&mut self, plugin: Plugin, path: &str) -> Result<(), Located> {
        let err = |message: String| Located {
            path: path.to_owned(),
            line: 0,
            column: 0,
            message,
        };
        let existing = self
            .plugins
            .iter()
            .position(|p| p.meta.id == plugin.meta.id);
        let replaces = match existing {
            Some(i)
                if plugin.override_builtin
                    && self.plugins[i].meta.source.starts_with("builtin:") =>
            {
                Some(i)
            }
            Some(i) => {
                let builtin = self.plugins[i].meta.source.starts_with("builtin:");
                return Err(err(format!(
                    "id: `{}` is already defined by {}{}",
                    plugin.meta.id,
                    self.plugins[i].meta.source,
                    if builtin {
                        " (add `override = true` to replace it)"
                    } else {
                        ""
                    }
                )));
            }
            None => None,
        };
        // findings.md: a user code must not reuse the family of a built-in plugin
        // unless the manifest replaces that plugin; dashboards key on the families.
        for code in plugin.meta.findings.keys() {
            let family = code.split('.').next().unwrap_or_default();
            let owner = self.plugins.iter().enumerate().find(|(_, p)| {
                p.meta.source.starts_with("builtin:")
                    && p.meta
                        .findings
                        .keys()
                        .any(|c| c.split('.').next() == Some(family))
            });
            if let Some((i, owner)) = owner
                && replaces != Some(i)
            {
                return Err(err(format!(
                    "finding.\"{code}\": the family `{family}.` belongs to built-in plugin `{}`; use a family of your own (e.g. `acme.{}`)",
                    owner.meta.id,
                    code.split('.').nth(1).unwrap_or("name")
                )));
            }
        }
        match replaces {
            Some(i) => self.plugins[i] = plugin,
            None => self.plugins.push(plugin),
        }
        Ok(())
    }

    /// Adds the plugins the configuration defines inline (`[[dnsbl]]`): their
    /// parameters from the configuration, their text from `text` (the engine's
    /// generic text manifest, `(path, source)`). Errors name the configuration
    /// file and line; an id already taken is an error.
    pub fn add_inline(
        &mut self,
        config: &crate::config::Config,
        key: &str,
        engines: &[EngineEntry],
        text: (&str, &str),
    ) -> Result<(), Located> {
        for (section, params) in crate::config::inline_tables(&config.path, &config.source, key)? {
            if let Some(existing) = self.plugins.iter().find(|p| p.meta.id == section.id) {
                return Err(Located::at(
                    &config.path,
                    &config.source,
                    Some(params.span()),
                    format!(
                        "{key}: id `{}` is already defined by {}",
                        section.id.escape_debug(),
                        existing.meta.source
                    ),
                ));
            }
            let plugin = manifest::load_inline(
                text.0,
                text.1,
                engines,
                manifest::InlinePlugin {
                    id: section.id,
                    enabled: section.enabled,
                    params,
                    path: &config.path,
                    source: &config.source,
                },
            )?;
            self.plugins.push(plugin);
        }
        Ok(())
    }

    /// The plugins to run: `only` (when given) or every enabled plugin, minus
    /// `disable`. Unknown ids are an error naming the known ones.
    pub fn select(
        &self,
        only: Option<&[String]>,
        disable: &[String],
    ) -> Result<Vec<Plugin>, String> {
        for id in only.unwrap_or_default().iter().chain(disable) {
            if !self.plugins.iter().any(|p| &p.meta.id == id) {
                let known: Vec<&str> = self.plugins.iter().map(|p| p.meta.id.as_str()).collect();
                return Err(format!(
                    "unknown plugin `{}` (known: {})",
                    id.escape_debug(),
                    known.join(", ")
                ));
            }
        }
        Ok(self
            .plugins
            .iter()
            .filter(|p| match only {
                Some(ids) => ids.contains(&p.meta.id),
                None => p.enabled,
            })
            .filter(|p| !disable.contains(&p.meta.id))
            .cloned()
            .collect())
    }
}

/// Reads every `*.toml` of a directory, sorted by name.
pub fn read_manifest_dir(dir: &Path) -> Result<Vec<(String, String)>, Located> {
    let io = |e: std::io::Error| Located {
        path: dir.display().to_string(),
        line: 0,
        column: 0,
        message: format!("cannot read plugin directory: {e}"),
    };
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(&p).map_err(|e| Located {
            path: p.display().to_string(),
            line: 0,
            column: 0,
            message: format!("cannot read: {e}"),
        })?;
        out.push((p.display().to_string(), text));
    }
    Ok(out)
}
