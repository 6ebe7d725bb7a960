//! Atomic file writes, the one helper every writer uses (reports, the spool,
//! the file sink, generated docs): write a temporary file in the same folder
//! (tempfile), fsync it, rename it over the target, fsync the folder. A reader
//! (or a restart after a crash or SIGKILL) sees the old file or the new one,
//! never half of one; a writer that fails or is dropped leaves no temporary file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Temporary files start with this, so folder listings can skip them.
pub const TMP_PREFIX: &str = ".tmp-";

/// A file being written; it replaces its target on [`AtomicFile::commit`] and
/// disappears if dropped before.
#[derive(Debug)]
pub struct AtomicFile {
    path: PathBuf,
    tmp: tempfile::NamedTempFile,
}

impl AtomicFile {
    /// Starts writing `path` (its folder is created if needed).
    pub fn create(path: &Path) -> io::Result<AtomicFile> {
        let dir = parent(path);
        fs::create_dir_all(dir)?;
        let tmp = tempfile::Builder::new()
            .prefix(TMP_PREFIX)
            .tempfile_in(dir)?;
        Ok(AtomicFile {
            path: path.to_path_buf(),
            tmp,
        })
    }

    /// The target path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the target with what was written.
    pub fn commit(mut self) -> io::Result<()> {
        self.tmp.as_file_mut().sync_all()?;
        self.tmp.persist(&self.path).map_err(|e| e.error)?;
        sync_dir(parent(&self.path));
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tmp.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.tmp.flush()
    }
}

/// Replaces `path` with `bytes` atomically, creating its folder if needed.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = AtomicFile::create(path)?;
    f.write_all(bytes)?;
    f.commit()
}

/// Renames `from` to `to` (same file system) and makes the rename durable.
pub fn rename(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(parent(to))?;
    fs::rename(from, to)?;
    sync_dir(parent(to));
    if parent(from) != parent(to) {
        sync_dir(parent(from));
    }
    Ok(())
}

/// Appends `bytes` in one write and fsyncs: complete lines for JSON Lines
/// readers that follow the file.
pub fn append(path: &Path, bytes: &[u8]) -> io::Result<()> {
    fs::create_dir_all(parent(path))?;
    let mut f = OpenOptions::new().append(true).create(true).open(path)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    sync_dir(parent(path));
    Ok(())
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Makes a rename or a new file in `dir` durable. Best effort: some file
/// systems cannot fsync a folder, and the data itself is already synced.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<std::ffi::OsString> {
        fs::read_dir(dir)
            .expect("list")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect()
    }

    #[test]
    fn write_replaces_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/report.json");
        write(&path, b"one").expect("first write");
        write(&path, b"two").expect("second write");
        assert_eq!(fs::read(&path).expect("read"), b"two");
        assert_eq!(names(path.parent().expect("parent")).len(), 1);
    }

    #[test]
    fn a_dropped_writer_leaves_the_old_file_and_no_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.json");
        write(&path, b"old").expect("write");
        let mut f = AtomicFile::create(&path).expect("create");
        f.write_all(b"half").expect("write");
        drop(f);
        assert_eq!(fs::read(&path).expect("read"), b"old");
        assert_eq!(names(dir.path()).len(), 1);
    }
}
