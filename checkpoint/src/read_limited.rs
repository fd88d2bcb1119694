//! Reading a whole small file (an index, a state file) without trusting its size.
//!
//! Why not `fs::metadata` then `fs::read`: the length checked is not the length read. A
//! symlink to `/dev/zero` reports 0 bytes and then never ends, a FIFO blocks, and a file can
//! grow between the two calls. Here the size is taken from the open handle, only regular
//! files are read, and never more than the limit plus one byte.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// What [`read_limited`] found.
#[derive(Debug)]
pub(crate) enum Limited {
    /// The whole file, at most the limit.
    Bytes(Vec<u8>),
    /// The file is larger than the limit: at least this many bytes.
    TooLarge(u64),
}

/// Reads all of the regular file at `path` if it holds at most `max` bytes.
///
/// Errors as [`File::open`] does (`NotFound` included), and with `InvalidInput` when `path`
/// is not a regular file (a directory, a device, a FIFO).
pub(crate) fn read_limited(path: &Path, max: u64) -> io::Result<Limited> {
    // Before opening: opening a FIFO blocks until a writer appears.
    if !std::fs::metadata(path)?.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    let file = File::open(path)?;
    // And on the handle: the path may have been swapped since.
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    if meta.len() > max {
        return Ok(Limited::TooLarge(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Ok(Limited::TooLarge(bytes.len() as u64));
    }
    Ok(Limited::Bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_small_files_and_refuses_the_rest() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let file = dir.join("f");
        std::fs::write(&file, b"12345").unwrap();
        assert!(matches!(read_limited(&file, 5).unwrap(), Limited::Bytes(b) if b == b"12345"));
        assert!(matches!(read_limited(&file, 4).unwrap(), Limited::TooLarge(5)));
        assert_eq!(
            read_limited(&dir.join("missing"), 5).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        // A directory, and a device that reports 0 bytes but never ends.
        assert_eq!(read_limited(&dir, 5).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        #[cfg(unix)]
        {
            // A FIFO with no writer: opening it would block forever.
            let fifo = dir.join("fifo");
            let made = std::process::Command::new("mkfifo").arg(&fifo).status();
            if made.is_ok_and(|s| s.success()) {
                assert_eq!(read_limited(&fifo, 5).unwrap_err().kind(), io::ErrorKind::InvalidInput);
            }
            let link = dir.join("zero");
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
            assert_eq!(read_limited(&link, 5).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        }
    }
}
