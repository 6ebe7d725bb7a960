//! Atomic file writes, shared by the spool and the file sink: write a
//! temporary file in the same folder, fsync it, rename it over the target,
//! fsync the folder. A reader (or a restart after a crash or SIGKILL) sees the
//! old file or the new one, never half of one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Distinguishes temporary files of concurrent writers in one process.
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Temporary files start with this, so folder listings can skip them.
pub(crate) const TMP_PREFIX: &str = ".tmp-";

/// Replaces `path` with `bytes` atomically, creating its folder if needed.
pub(crate) fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = parent(path);
    fs::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(
        "{TMP_PREFIX}{}-{}-{name}",
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
        // Leave no half-written temporary file behind.
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir);
    Ok(())
}

/// Renames `from` to `to` (same file system) and makes the rename durable.
pub(crate) fn rename(from: &Path, to: &Path) -> io::Result<()> {
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
pub(crate) fn append(path: &Path, bytes: &[u8]) -> io::Result<()> {
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

    #[test]
    fn write_replaces_and_leaves_no_temporary_file() {
        let dir = std::env::temp_dir().join(format!("mxaudit-atomic-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let path = dir.join("sub/report.json");
        write(&path, b"one").expect("first write");
        write(&path, b"two").expect("second write");
        assert_eq!(fs::read(&path).expect("read"), b"two");
        let names: Vec<_> = fs::read_dir(path.parent().expect("parent"))
            .expect("list")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        let _ = fs::remove_dir_all(&dir);
    }
}
