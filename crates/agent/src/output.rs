//! Where a command's report goes: standard output, or a file written
//! atomically (the old report stays until the new one is complete). A
//! streamed format (JSON Lines) is written chunk by chunk instead, each chunk
//! flushed, so an interrupted audit keeps every complete line found so far.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use mxaudit_core::atomic::AtomicFile;

use crate::error::{AgentError, Result};

/// An open output.
#[derive(Debug)]
pub enum Output {
    /// Standard output; a closed pipe (`| head`) is not an error.
    Stdout,
    /// A file replaced at the end.
    Atomic(AtomicFile),
    /// A file that grows chunk by chunk.
    Stream(File, String),
}

impl Output {
    /// Opens `path` (standard output when `None`); `streaming` for formats
    /// written chunk by chunk.
    pub fn open(path: Option<&Path>, streaming: bool) -> Result<Output> {
        let Some(path) = path else {
            return Ok(Output::Stdout);
        };
        let cannot =
            |e: std::io::Error| AgentError::Failed(format!("cannot write {}: {e}", path.display()));
        if streaming {
            return Ok(Output::Stream(
                File::create(path).map_err(cannot)?,
                path.display().to_string(),
            ));
        }
        Ok(Output::Atomic(AtomicFile::create(path).map_err(cannot)?))
    }

    /// Writes (and, when streaming, flushes) `data`.
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        match self {
            Output::Stdout => {
                let mut stdout = std::io::stdout().lock();
                let _ = stdout.write_all(data);
                let _ = stdout.flush();
                Ok(())
            }
            Output::Atomic(f) => f.write_all(data).map_err(|e| {
                AgentError::Failed(format!("cannot write {}: {e}", f.path().display()))
            }),
            Output::Stream(f, name) => f
                .write_all(data)
                .and_then(|()| f.sync_data())
                .map_err(|e| AgentError::Failed(format!("cannot write {name}: {e}"))),
        }
    }

    /// Completes the output: the atomic file replaces its target.
    pub fn finish(self) -> Result<()> {
        match self {
            Output::Stdout | Output::Stream(..) => Ok(()),
            Output::Atomic(f) => {
                let path = f.path().display().to_string();
                f.commit()
                    .map_err(|e| AgentError::Failed(format!("cannot write {path}: {e}")))
            }
        }
    }
}
