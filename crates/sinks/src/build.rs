//! The second stage of the sink configuration parse (style rules 1 and 2). The
//! core has read the common keys of every `[sinks.<id>]` (`type`,
//! `min_severity`, `only`); here the table is taken again from the file's text,
//! the common keys are removed, and the rest is deserialized into the sink
//! type's own `deny_unknown_fields` config, so a typo is an error naming
//! `file:line:column` and the key. Building is pure: secrets are read from the
//! environment or from files, nothing touches the network.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mxaudit_core::config::{Config, SINK_COMMON_KEYS, SinkSection};
use mxaudit_core::sink::Sink;
use mxaudit_core::tomldoc::{self, Located};
use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::DeTable;

use crate::SINKS;
use crate::secret::{Secret, SecretSource};

/// A sink type's builder: its own keys (the common keys removed) into a sink.
pub type BuildFn =
    fn(&SinkSection, Spanned<DeTable<'_>>, &BuildContext<'_>) -> Result<Arc<dyn Sink>, Located>;

/// One sink type in the registry ([`crate::SINKS`]).
#[derive(Debug, Clone, Copy)]
pub struct SinkEntry {
    /// `type = "…"` in `[sinks.<id>]`.
    pub kind: &'static str,
    /// One line, for docs and error messages.
    pub summary: &'static str,
    /// The type's own keys (besides `type`, `min_severity` and `only`), in
    /// documentation order; a unit test ties this list to the config struct.
    pub keys: &'static [&'static str],
    /// Builds one sink from its own keys (the common keys already removed).
    pub build: BuildFn,
}

/// What a sink type's `build` needs besides its own table: where errors point,
/// where relative paths start, and where secrets come from.
#[derive(Debug, Clone, Copy)]
pub struct BuildContext<'a> {
    /// The configuration file's path, for errors.
    pub path: &'a str,
    /// The configuration file's text, for line and column of errors.
    pub source: &'a str,
    /// Relative paths (`path`, `*_file`) start here: the configuration file's folder.
    pub base_dir: &'a Path,
    /// Environment variables for `*_env` keys.
    pub secrets: &'a SecretSource,
}

impl BuildContext<'_> {
    /// An error at a span of the configuration file, prefixed `sinks.<id>.<key>: `.
    pub fn error(
        &self,
        id: &str,
        key: &str,
        span: Option<Range<usize>>,
        message: impl AsRef<str>,
    ) -> Located {
        let at = if key.is_empty() {
            format!("sinks.{id}")
        } else {
            format!("sinks.{id}.{key}")
        };
        Located::at(
            self.path,
            self.source,
            span,
            format!("{at}: {}", message.as_ref()),
        )
    }

    /// Deserializes a sink's own keys into its config type. An error without a
    /// position (a missing key) points at the table's header.
    pub fn deserialize<T: DeserializeOwned>(
        &self,
        id: &str,
        table: Spanned<DeTable<'_>>,
    ) -> Result<T, Located> {
        let span = table.span();
        tomldoc::deserialize(self.path, self.source, table).map_err(|mut e| {
            if e.line == 0 {
                let (line, column) = tomldoc::line_col(self.source, span.start);
                e.line = line;
                e.column = column;
            }
            e.message = format!("sinks.{id}: {}", e.message);
            e
        })
    }

    /// A path from the configuration, relative to [`BuildContext::base_dir`].
    pub fn resolve_path(&self, path: &str) -> PathBuf {
        self.base_dir.join(path)
    }

    /// Reads a secret from `<name>_env` or `<name>_file` (exactly one of them,
    /// when `required`). Errors name the key and the variable or file, never
    /// the value.
    pub fn secret(
        &self,
        id: &str,
        table_span: Range<usize>,
        (env_key, env): (&str, Option<&Spanned<String>>),
        (file_key, file): (&str, Option<&Spanned<String>>),
        required: bool,
    ) -> Result<Option<Secret>, Located> {
        match (env, file) {
            (Some(_), Some(file)) => Err(self.error(
                id,
                file_key,
                Some(file.span()),
                format!("set `{env_key}` or `{file_key}`, not both"),
            )),
            (None, None) if required => Err(self.error(
                id,
                "",
                Some(table_span),
                format!("`{env_key}` or `{file_key}` is required"),
            )),
            (None, None) => Ok(None),
            (Some(var), None) => match self.secrets.var(var.get_ref()) {
                Some(value) if !value.trim().is_empty() => {
                    Ok(Some(Secret::new(value.trim().to_owned())))
                }
                Some(_) => Err(self.error(
                    id,
                    env_key,
                    Some(var.span()),
                    format!(
                        "environment variable `{}` is empty",
                        var.get_ref().escape_debug()
                    ),
                )),
                None => Err(self.error(
                    id,
                    env_key,
                    Some(var.span()),
                    format!(
                        "environment variable `{}` is not set",
                        var.get_ref().escape_debug()
                    ),
                )),
            },
            (None, Some(file)) => {
                let path = self.resolve_path(file.get_ref());
                match std::fs::read_to_string(&path) {
                    // A trailing newline is how editors save files; it is never part of a URL or password.
                    Ok(text) if !text.trim().is_empty() => {
                        Ok(Some(Secret::new(text.trim().to_owned())))
                    }
                    Ok(_) => Err(self.error(
                        id,
                        file_key,
                        Some(file.span()),
                        format!("`{}` is empty", path.display()),
                    )),
                    Err(e) => Err(self.error(
                        id,
                        file_key,
                        Some(file.span()),
                        format!("cannot read `{}`: {e}", path.display()),
                    )),
                }
            }
        }
    }
}

/// Builds every configured sink, reading `*_env` secrets from the process
/// environment. See [`build_sinks_with`].
pub fn build_sinks(config: &Config, base_dir: &Path) -> Result<Vec<Arc<dyn Sink>>, Located> {
    build_sinks_with(config, base_dir, &SecretSource::process())
}

/// Builds every configured sink, in the order of `config.sinks`, with secrets
/// from `secrets`. Pure: it reads secret files but opens no connection and
/// writes nothing. `base_dir` is the configuration file's folder (relative
/// `path` and `*_file` keys start there).
pub fn build_sinks_with(
    config: &Config,
    base_dir: &Path,
    secrets: &SecretSource,
) -> Result<Vec<Arc<dyn Sink>>, Located> {
    if config.sinks.is_empty() {
        return Ok(Vec::new());
    }
    let cx = BuildContext {
        path: &config.path,
        source: &config.source,
        base_dir,
        secrets,
    };
    let mut doc = tomldoc::parse(cx.path, cx.source)?;
    let Some(sinks_value) = tomldoc::take(&mut doc, "sinks") else {
        return Err(Located::at(
            cx.path,
            cx.source,
            None,
            "sinks: the configuration text has no [sinks] table",
        ));
    };
    let mut tables = tomldoc::as_table(cx.path, cx.source, "sinks", sinks_value)?.into_inner();
    let mut built: Vec<Arc<dyn Sink>> = Vec::with_capacity(config.sinks.len());
    for section in &config.sinks {
        let Some(key) = tables
            .keys()
            .find(|k| k.get_ref().as_ref() == section.id)
            .cloned()
        else {
            return Err(Located::at(
                cx.path,
                cx.source,
                None,
                format!("sinks.{}: not found in the configuration text", section.id),
            ));
        };
        let Some(value) = tables.remove(&key) else {
            return Err(Located::at(
                cx.path,
                cx.source,
                Some(key.span()),
                format!("sinks.{}: not found in the configuration text", section.id),
            ));
        };
        let mut table =
            tomldoc::as_table(cx.path, cx.source, &format!("sinks.{}", section.id), value)?;
        let mut type_span = None;
        for common in SINK_COMMON_KEYS {
            if let Some(v) = tomldoc::take(&mut table, common)
                && *common == "type"
            {
                type_span = Some(v.span());
            }
        }
        let Some(entry) = SINKS.iter().find(|e| e.kind == section.kind) else {
            let known: Vec<&str> = SINKS.iter().map(|e| e.kind).collect();
            return Err(cx.error(
                &section.id,
                "type",
                type_span,
                format!(
                    "unknown sink type `{}` (known: {})",
                    section.kind.escape_debug(),
                    known.join(", ")
                ),
            ));
        };
        built.push((entry.build)(section, table, &cx)?);
    }
    Ok(built)
}

/// The spool folder of `[delivery] spool_dir` (default `spool`), relative to
/// `base_dir`. Each sink has its own subfolder in it.
pub fn spool_dir(config: &Config, base_dir: &Path) -> PathBuf {
    base_dir.join(config.delivery.spool_dir.as_deref().unwrap_or("spool"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::parse("audit.toml", text).expect("stage 1 parses")
    }

    #[test]
    fn unknown_type_is_located_at_type() {
        let c = config("[sinks.x]\ntype = \"pager\"\n");
        let err = build_sinks_with(&c, Path::new("."), &SecretSource::empty())
            .err()
            .expect("unknown type");
        assert_eq!(err.line, 2, "{err}");
        assert!(
            err.message.contains("sinks.x.type") && err.message.contains("file, webhook, email"),
            "{err}"
        );
    }

    #[test]
    fn registry_kinds_are_unique_and_keys_exclude_common_ones() {
        for (i, e) in SINKS.iter().enumerate() {
            assert!(
                SINKS.iter().skip(i + 1).all(|o| o.kind != e.kind),
                "{}",
                e.kind
            );
            assert!(
                e.keys.iter().all(|k| !SINK_COMMON_KEYS.contains(k)),
                "{}",
                e.kind
            );
        }
    }

    /// Each entry's `keys` is exactly what its config type accepts: serde lists
    /// the accepted fields when it meets an unknown one.
    #[test]
    fn registry_keys_match_the_config_types() {
        for e in SINKS {
            let text = format!("[sinks.x]\ntype = \"{}\"\nzz_unknown = 1\n", e.kind);
            let c = config(&text);
            let err = build_sinks_with(&c, Path::new("."), &SecretSource::empty())
                .err()
                .expect("unknown key");
            assert_eq!((err.line, err.column), (3, 1), "{err}");
            let expected = err.message.split("expected").nth(1).unwrap_or_default();
            let mut accepted: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
            let mut keys = e.keys.to_vec();
            accepted.sort_unstable();
            keys.sort_unstable();
            assert_eq!(accepted, keys, "{}: {err}", e.kind);
        }
    }
}
