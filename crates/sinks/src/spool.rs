//! The disk spool (style rule 10): one JSON file per undelivered batch, written
//! atomically, so a batch survives a crash, SIGKILL or a restart and is
//! delivered — in order, before newer batches — by the next run or daemon tick.
//!
//! ```text
//! <spool dir>/<sink id>/000000000007-3f2a9c0d1e4b5a69.json   pending, oldest first
//! <spool dir>/<sink id>/dead/000000000003-…json               dead letters: refused for good
//! ```
//!
//! The name is `<sequence>-<hash of the batch key>`: the sequence keeps the
//! order (one more than the highest number in use, pending or dead); the key
//! hash lets a batch that is already spooled be recognised and not spooled
//! twice. Each file holds the batch and why it is there. Nothing is ever
//! deleted except a batch that was delivered: a permanent failure, or a file
//! the spool cannot read, moves to `dead/`, where an operator can inspect it
//! and move it back to retry.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use mxaudit_core::sink::Batch;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use mxaudit_core::atomic;

/// The spool file format version.
const RECORD_VERSION: u32 = 1;

/// The dead-letter subfolder of a sink's spool folder.
pub const DEAD_DIR: &str = "dead";

/// A spool or dead-letter I/O failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpoolError {
    /// A folder or file could not be read, written, renamed or removed.
    #[error("spool `{path}`: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The system error.
        source: io::Error,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What one spool or dead-letter file holds.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    version: u32,
    sink: String,
    key: String,
    /// RFC 3339, when the file was written.
    written_at: String,
    /// Why the batch is here (the last failure); never a secret.
    reason: String,
    batch: Batch,
}

/// A spooled batch, read back.
#[derive(Debug)]
pub struct PendingBatch {
    /// The spool file.
    pub path: PathBuf,
    /// The batch, or why the file could not be read (it is then moved to the
    /// dead-letter folder rather than dropped).
    pub batch: Result<Batch, String>,
    /// The reason recorded when it was spooled.
    pub reason: String,
}

impl PendingBatch {
    /// The batch key, if the file could be read.
    pub fn key(&self) -> Option<&str> {
        self.batch.as_ref().ok().map(|b| b.key.as_str())
    }
}

/// What [`Spool::push`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// Written as a new spool file.
    Added(PathBuf),
    /// A batch with the same key was already waiting; nothing was written.
    AlreadySpooled(PathBuf),
}

/// The spool folder. Cheap to create (no I/O until used); share one per
/// process. Each sink has its own subfolder.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    /// Serializes sequence allocation within the process.
    lock: Mutex<()>,
}

impl Spool {
    /// A spool in `dir` (created when the first batch is spooled).
    pub fn new(dir: impl Into<PathBuf>) -> Spool {
        Spool {
            dir: dir.into(),
            lock: Mutex::new(()),
        }
    }

    /// The spool folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The folder of one sink's pending batches.
    pub fn sink_dir(&self, sink: &str) -> PathBuf {
        self.dir.join(sink)
    }

    /// The folder of one sink's dead letters.
    pub fn dead_dir(&self, sink: &str) -> PathBuf {
        self.sink_dir(sink).join(DEAD_DIR)
    }

    /// The sink's pending batches, oldest first.
    pub fn pending(&self, sink: &str) -> Result<Vec<PendingBatch>, SpoolError> {
        let mut out = Vec::new();
        for (_, _, path) in list(&self.sink_dir(sink))? {
            let read = fs::read(&path).map_err(io_error(&path))?;
            let pending = match serde_json::from_slice::<Record>(&read) {
                Ok(r) if r.version == RECORD_VERSION => PendingBatch {
                    path,
                    batch: Ok(r.batch),
                    reason: r.reason,
                },
                Ok(r) => PendingBatch {
                    path,
                    batch: Err(format!("unknown spool file version {}", r.version)),
                    reason: r.reason,
                },
                Err(e) => PendingBatch {
                    path,
                    batch: Err(format!("unreadable spool file: {e}")),
                    reason: String::new(),
                },
            };
            out.push(pending);
        }
        Ok(out)
    }

    /// How many batches wait for `sink`.
    pub fn pending_count(&self, sink: &str) -> Result<usize, SpoolError> {
        Ok(list(&self.sink_dir(sink))?.len())
    }

    /// The sink's dead letters, oldest first.
    pub fn dead_letters(&self, sink: &str) -> Result<Vec<PathBuf>, SpoolError> {
        Ok(list(&self.dead_dir(sink))?
            .into_iter()
            .map(|(_, _, p)| p)
            .collect())
    }

    /// Spools a batch behind the ones already waiting, unless a batch with the
    /// same key is already waiting.
    pub fn push(&self, sink: &str, batch: &Batch, reason: &str) -> Result<Pushed, SpoolError> {
        let _guard = self
            .lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let dir = self.sink_dir(sink);
        let hash = key_hash(&batch.key);
        if let Some((_, _, path)) = list(&dir)?.into_iter().find(|(_, h, _)| *h == hash) {
            return Ok(Pushed::AlreadySpooled(path));
        }
        let path = dir.join(file_name(self.next_seq(sink)?, &hash));
        write_record(&path, sink, batch, reason)?;
        Ok(Pushed::Added(path))
    }

    /// Removes a delivered batch.
    pub fn remove(&self, pending: &PendingBatch) -> Result<(), SpoolError> {
        match fs::remove_file(&pending.path) {
            Ok(()) => Ok(()),
            // Another process delivered it meanwhile: the goal is reached.
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(&pending.path)(e)),
        }
    }

    /// Writes a batch that was refused for good to the dead-letter folder.
    pub fn dead_letter(
        &self,
        sink: &str,
        batch: &Batch,
        reason: &str,
    ) -> Result<PathBuf, SpoolError> {
        let _guard = self
            .lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let path = self
            .dead_dir(sink)
            .join(file_name(self.next_seq(sink)?, &key_hash(&batch.key)));
        write_record(&path, sink, batch, reason)?;
        Ok(path)
    }

    /// Moves a pending batch to the dead-letter folder: rewritten with the
    /// reason when it could be read, moved as it is otherwise.
    pub fn bury(
        &self,
        sink: &str,
        pending: &PendingBatch,
        reason: &str,
    ) -> Result<PathBuf, SpoolError> {
        let path = match &pending.batch {
            Ok(batch) => self.dead_letter(sink, batch, reason)?,
            Err(_) => {
                let name = pending
                    .path
                    .file_name()
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from("unreadable.json"));
                let to = self.dead_dir(sink).join(name);
                atomic::rename(&pending.path, &to).map_err(io_error(&to))?;
                return Ok(to);
            }
        };
        self.remove(pending)?;
        Ok(path)
    }

    /// One more than the highest sequence number in use for `sink`.
    fn next_seq(&self, sink: &str) -> Result<u64, SpoolError> {
        let pending = list(&self.sink_dir(sink))?;
        let dead = list(&self.dead_dir(sink))?;
        let max = pending
            .iter()
            .chain(dead.iter())
            .map(|(seq, _, _)| *seq)
            .max()
            .unwrap_or(0);
        Ok(max + 1)
    }
}

fn write_record(path: &Path, sink: &str, batch: &Batch, reason: &str) -> Result<(), SpoolError> {
    let record = Record {
        version: RECORD_VERSION,
        sink: sink.to_owned(),
        key: batch.key.clone(),
        written_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        reason: reason.to_owned(),
        batch: batch.clone(),
    };
    let bytes = serde_json::to_vec_pretty(&record).map_err(|e| SpoolError::Io {
        path: path.to_owned(),
        source: io::Error::other(e),
    })?;
    atomic::write(path, &bytes).map_err(io_error(path))
}

/// 16 hex digits of SHA-256 of the batch key: enough to tell batches apart,
/// and safe in a file name whatever the key contains.
fn key_hash(key: &str) -> String {
    Sha256::digest(key.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn file_name(seq: u64, hash: &str) -> String {
    format!("{seq:012}-{hash}.json")
}

/// The spool files of a folder, sorted by sequence: `(seq, key hash, path)`.
/// A missing folder is an empty spool; other names (temporary files, `dead/`)
/// are skipped.
fn list(dir: &Path) -> Result<Vec<(u64, String, PathBuf)>, SpoolError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_error(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(atomic::TMP_PREFIX) {
            continue;
        }
        let Some(stem) = name.strip_suffix(".json") else {
            continue;
        };
        let Some((seq, hash)) = stem.split_once('-') else {
            continue;
        };
        let Ok(seq) = seq.parse::<u64>() else {
            continue;
        };
        out.push((seq, hash.to_owned(), entry.path()));
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(key: &str) -> Batch {
        Batch {
            history: true,
            key: key.into(),
            run_id: key.into(),
            schedule: None,
            started_at: "2026-11-24T10:00:00Z".into(),
            finished_at: "2026-11-24T10:00:05Z".into(),
            domains: vec!["example.com".into()],
            events: Vec::new(),
            checks: Vec::new(),
            trend: Vec::new(),
        }
    }

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("mxaudit-spool-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn order_kept_duplicates_refused_dead_letters_numbered_after() {
        let dir = temp("order");
        let spool = Spool::new(&dir);
        for k in ["run-10/s", "run-9/s", "run-11/s"] {
            assert!(matches!(
                spool.push("s", &batch(k), "down").expect("push"),
                Pushed::Added(_)
            ));
        }
        assert!(matches!(
            spool.push("s", &batch("run-9/s"), "down").expect("push"),
            Pushed::AlreadySpooled(_)
        ));
        let keys: Vec<String> = spool
            .pending("s")
            .expect("list")
            .iter()
            .filter_map(|p| p.key().map(String::from))
            .collect();
        assert_eq!(keys, ["run-10/s", "run-9/s", "run-11/s"]);
        let first = spool.pending("s").expect("list").remove(0);
        let dead = spool.bury("s", &first, "HTTP 400").expect("bury");
        assert!(dead.starts_with(spool.dead_dir("s")));
        assert_eq!(spool.pending_count("s").expect("count"), 2);
        // The next number is past the dead letter's too.
        let Pushed::Added(p) = spool.push("s", &batch("run-12/s"), "down").expect("push") else {
            panic!("added")
        };
        assert!(
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("000000000005-")),
            "{p:?}"
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn unreadable_file_is_buried_not_dropped() {
        let dir = temp("corrupt");
        let spool = Spool::new(&dir);
        fs::create_dir_all(spool.sink_dir("s")).expect("mkdir");
        fs::write(
            spool.sink_dir("s").join("000000000001-00.json"),
            b"{not json",
        )
        .expect("write");
        let pending = spool.pending("s").expect("list");
        assert!(pending[0].batch.is_err());
        let to = spool.bury("s", &pending[0], "unreadable").expect("bury");
        assert!(to.exists());
        assert_eq!(spool.pending_count("s").expect("count"), 0);
        let _ = fs::remove_dir_all(&dir);
    }
}
