//! Crash-safe file replacement: write a temporary file in the destination's directory,
//! fsync it, rename it over the final name, then fsync the directory. A reader therefore sees
//! either the old file or the complete new one, never a torn write.

use crate::error::{CheckpointError, Result};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes `bytes` to `path` atomically (see the module docs).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |f| f.write_all(bytes))
}

/// Like [`write_atomic`], with the content produced by `fill` writing into the temporary file.
pub fn write_atomic_with(path: &Path, fill: impl FnOnce(&mut File) -> std::io::Result<()>) -> Result<()> {
    stage_with(path, fill)?.commit()
}

/// A complete, fsynced temporary file waiting to be renamed over its final name; dropped
/// without [`Staged::commit`], it is deleted. Staging several files first and committing them
/// in a chosen order lets a multi-file checkpoint be replaced safely.
#[derive(Debug)]
pub struct Staged {
    tmp: PathBuf,
    target: PathBuf,
    committed: bool,
}

/// Writes `bytes` to a temporary file beside `path` and fsyncs it; nothing visible changes
/// until [`Staged::commit`].
pub fn stage(path: &Path, bytes: &[u8]) -> Result<Staged> {
    stage_with(path, |f| f.write_all(bytes))
}

/// Like [`stage`], with the content produced by `fill` writing into the temporary file. On
/// an error the temporary file is removed (the `Staged` is dropped uncommitted).
pub fn stage_with(path: &Path, fill: impl FnOnce(&mut File) -> std::io::Result<()>) -> Result<Staged> {
    let dir = parent_dir(path);
    fs::create_dir_all(&dir).map_err(|e| CheckpointError::io(&dir, e))?;
    let tmp = temp_name(path);
    let staged = Staged {
        tmp: tmp.clone(),
        target: path.to_path_buf(),
        committed: false,
    };
    let result = (|| {
        let mut f = File::create(&tmp)?;
        fill(&mut f)?;
        f.sync_all()
    })();
    result.map_err(|e| CheckpointError::io(path, e))?;
    Ok(staged)
}

impl Staged {
    /// Renames the temporary file over the final name and makes the rename durable.
    pub fn commit(mut self) -> Result<()> {
        fs::rename(&self.tmp, &self.target).map_err(|e| CheckpointError::io(&self.target, e))?;
        self.committed = true;
        sync_dir(&parent_dir(&self.target));
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Deletes `path` if it exists and makes the deletion durable before returning.
pub fn remove_durable(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => {
            sync_dir(&parent_dir(path));
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(CheckpointError::io(path, e)),
    }
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A temporary name beside `path`, unique per process and call, ignored by readers (it starts
/// with a dot and ends in `.tmp`).
fn temp_name(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let base = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    parent_dir(path).join(format!(".{base}.{}-{n}.tmp", std::process::id()))
}

/// Makes the rename durable. Best effort: not every platform can open a directory.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.bin");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two!").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two!");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn staged_files_appear_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.bin");
        let s = stage(&p, b"new").unwrap();
        assert!(!p.exists());
        s.commit().unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new");
        drop(stage(&p, b"abandoned").unwrap());
        assert_eq!(fs::read(&p).unwrap(), b"new");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        remove_durable(&p).unwrap();
        remove_durable(&p).unwrap();
        assert!(!p.exists());
    }

    #[test]
    fn a_failed_fill_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.bin");
        write_atomic(&p, b"old").unwrap();
        let e = write_atomic_with(&p, |f| {
            f.write_all(b"partial")?;
            Err(std::io::Error::other("crash in the middle"))
        });
        assert!(e.is_err());
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
