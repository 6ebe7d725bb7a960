//! Sink `file`: a report on disk per run — JSON, JSON Lines, Markdown or a
//! self-contained HTML page.
//!
//! ```toml
//! [sinks.report]
//! type = "file"
//! format = "html"                      # json | jsonl | markdown | html
//! path = "reports/{date}-{run}.html"   # relative to the configuration file
//! mode = "replace"                     # replace | append (jsonl only)
//! ```
//!
//! `{date}` is the run's start date (UTC, `YYYY-MM-DD`) and `{run}` its id, so
//! a path can keep one file per day or per run. Writes are atomic (temporary
//! file, fsync, rename): a reader never sees half a report. With `mode =
//! "append"`, JSON Lines grow by one line per event; a batch that is already
//! the last one in the file is not appended twice (a redelivery after a crash).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mxaudit_core::config::SinkSection;
use mxaudit_core::sink::{Batch, SendError, Sink};
use mxaudit_core::tomldoc::Located;
use serde::Deserialize;
use toml::Spanned;
use toml::de::DeTable;

use crate::build::BuildContext;
use mxaudit_core::atomic;
use mxaudit_core::render;

/// The keys of `[sinks.<id>]` with `type = "file"`, in documentation order.
pub const KEYS: &[&str] = &["format", "path", "mode"];

/// `format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    /// The batch document (docs/sinks.md), pretty-printed.
    Json,
    /// One event per line.
    Jsonl,
    /// Markdown, for tickets and wikis.
    Markdown,
    /// A self-contained HTML page.
    Html,
}

/// `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteMode {
    /// Each delivery replaces the file (atomically).
    #[default]
    Replace,
    /// Each delivery appends its lines (JSON Lines only).
    Append,
}

/// The type's own keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Output format.
    pub format: FileFormat,
    /// Output path; `{date}` and `{run}` are replaced.
    pub path: Spanned<String>,
    /// Replace (default) or append.
    #[serde(default)]
    pub mode: Option<Spanned<WriteMode>>,
}

/// One piece of a path template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Date,
    Run,
}

/// A path with `{date}` and `{run}` placeholders, checked at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate(Vec<Piece>);

impl PathTemplate {
    /// Parses a template; any other `{…}` is an error naming it.
    pub fn parse(s: &str) -> Result<PathTemplate, String> {
        let mut pieces = Vec::new();
        let mut rest = s;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else {
                return Err(format!("unclosed `{{` in `{}`", s.escape_debug()));
            };
            match &after[..close] {
                "date" => pieces.push(Piece::Date),
                "run" => pieces.push(Piece::Run),
                other => {
                    return Err(format!(
                        "unknown placeholder `{{{}}}` (known: {{date}}, {{run}})",
                        other.escape_debug()
                    ));
                }
            }
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        if pieces.is_empty() {
            return Err("the path is empty".into());
        }
        Ok(PathTemplate(pieces))
    }

    /// The path of a batch. The run id is reduced to characters safe in a file
    /// name, so it cannot climb out of the folder.
    pub fn render(&self, batch: &Batch) -> String {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Date => out.push_str(&render::date_of(&batch.started_at)),
                Piece::Run => out.extend(batch.run_id.chars().map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                        c
                    } else {
                        '_'
                    }
                })),
            }
        }
        out
    }
}

/// A configured file sink.
#[derive(Debug)]
pub struct FileSink {
    id: String,
    format: FileFormat,
    mode: WriteMode,
    path: PathTemplate,
    base_dir: PathBuf,
}

/// Builds a file sink from its keys (registry entry in [`crate::SINKS`]).
pub fn build(
    section: &SinkSection,
    table: Spanned<DeTable<'_>>,
    cx: &BuildContext<'_>,
) -> Result<Arc<dyn Sink>, Located> {
    let id = &section.id;
    let config: FileConfig = cx.deserialize(id, table)?;
    let path = PathTemplate::parse(config.path.get_ref())
        .map_err(|e| cx.error(id, "path", Some(config.path.span()), e))?;
    let mode = match &config.mode {
        Some(m) if *m.get_ref() == WriteMode::Append && config.format != FileFormat::Jsonl => {
            return Err(cx.error(
                id,
                "mode",
                Some(m.span()),
                "`append` needs format = \"jsonl\" (other formats are whole documents)",
            ));
        }
        Some(m) => *m.get_ref(),
        None => WriteMode::Replace,
    };
    Ok(Arc::new(FileSink {
        id: id.clone(),
        format: config.format,
        mode,
        path,
        base_dir: cx.base_dir.to_owned(),
    }))
}

impl FileSink {
    /// Where a batch is written.
    pub fn path_of(&self, batch: &Batch) -> PathBuf {
        self.base_dir.join(self.path.render(batch))
    }

    fn render(&self, batch: &Batch) -> Result<String, SendError> {
        let text = match self.format {
            FileFormat::Json => render::json::pretty(batch),
            FileFormat::Jsonl => render::jsonl::lines(batch),
            FileFormat::Markdown => Ok(render::markdown::render(batch)),
            FileFormat::Html => Ok(render::html::render(batch)),
        };
        text.map_err(|e| SendError::Permanent {
            reason: format!("rendering the batch: {e}"),
        })
    }
}

#[async_trait::async_trait]
impl Sink for FileSink {
    fn id(&self) -> &str {
        &self.id
    }

    async fn send(&self, batch: &Batch) -> Result<(), SendError> {
        let text = self.render(batch)?;
        let path = self.path_of(batch);
        let mode = self.mode;
        let key = batch.key.clone();
        // File I/O and fsync block; keep them off the async workers.
        let written = tokio::task::spawn_blocking(move || match mode {
            WriteMode::Replace => atomic::write(&path, text.as_bytes()).map_err(|e| (path, e)),
            WriteMode::Append => append_once(&path, &key, &text).map_err(|e| (path, e)),
        })
        .await
        .map_err(|e| SendError::Retryable {
            reason: format!("file writer task failed: {e}"),
            retry_after: None,
        })?;
        written.map_err(|(path, e)| classify(&path, &e))
    }
}

/// Appends a batch's lines unless its key is already the file's last batch.
fn append_once(path: &Path, key: &str, text: &str) -> io::Result<()> {
    if text.is_empty() || render::jsonl::last_batch_key(&tail(path)?).as_deref() == Some(key) {
        return Ok(());
    }
    atomic::append(path, text.as_bytes())
}

/// The last 64 KiB of a file (empty when it does not exist): enough for the
/// last line of any batch.
fn tail(path: &Path) -> io::Result<String> {
    const TAIL: u64 = 64 * 1024;
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(TAIL)))?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// A path that can never be written is permanent; anything else (full disk,
/// permissions an operator may fix) is retried and spooled.
fn classify(path: &Path, e: &io::Error) -> SendError {
    let reason = format!("writing `{}`: {e}", path.display());
    match e.kind() {
        io::ErrorKind::InvalidInput
        | io::ErrorKind::InvalidFilename
        | io::ErrorKind::IsADirectory
        | io::ErrorKind::NotADirectory => SendError::Permanent { reason },
        _ => SendError::Retryable {
            reason,
            retry_after: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxaudit_core::render::fixtures::batch;

    #[test]
    fn path_template() {
        let t = PathTemplate::parse("reports/{date}/{run}.html").expect("valid");
        let mut b = batch();
        b.run_id = "../../etc/passwd".into();
        assert_eq!(t.render(&b), "reports/2026-11-24/.._.._etc_passwd.html");
        assert!(
            PathTemplate::parse("r/{dat}.html")
                .expect_err("typo")
                .contains("{dat}")
        );
        assert!(PathTemplate::parse("r/{date.html").is_err());
    }
}
