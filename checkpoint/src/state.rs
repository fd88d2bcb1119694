//! The `checkpoint` state file TensorFlow keeps beside numbered checkpoints: a text-format
//! `CheckpointState` proto naming the newest checkpoint and those kept. We read and write the
//! same file, so `tf.train.latest_checkpoint` understands our directories and we understand
//! TensorFlow's.

use crate::atomic::write_atomic;
use crate::error::{CheckpointError, Result};
use crate::read_limited::{read_limited, Limited};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Name of the state file inside a checkpoint directory.
pub const STATE_FILE: &str = "checkpoint";

/// State files are a few lines; anything bigger is not one.
const MAX_STATE_LEN: u64 = 16 << 20;

/// Contents of the state file. Paths are stored as written (relative to the directory when
/// the checkpoint lies inside it).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CheckpointState {
    /// The newest checkpoint.
    pub model_checkpoint_path: String,
    /// Every kept checkpoint, oldest first.
    pub all_model_checkpoint_paths: Vec<String>,
    /// Seconds since the Unix epoch at which each kept checkpoint was written.
    pub all_model_checkpoint_timestamps: Vec<f64>,
    /// Checkpoints older than this were deleted by `max_to_keep`.
    pub last_preserved_timestamp: Option<f64>,
}

impl CheckpointState {
    /// Parses the text format; `path` only labels errors.
    pub fn parse(path: &Path, text: &str) -> Result<CheckpointState> {
        let mut st = CheckpointState::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| CheckpointError::corrupt(path, format!("line {}: {why}", i + 1));
            let (key, value) = line.split_once(':').ok_or_else(|| bad("expected 'field: value'"))?;
            let value = value.trim();
            match key.trim() {
                "model_checkpoint_path" => {
                    st.model_checkpoint_path = unquote(value).ok_or_else(|| bad("bad string"))?
                }
                "all_model_checkpoint_paths" => st
                    .all_model_checkpoint_paths
                    .push(unquote(value).ok_or_else(|| bad("bad string"))?),
                "all_model_checkpoint_timestamps" => st
                    .all_model_checkpoint_timestamps
                    .push(value.parse().map_err(|_| bad("bad number"))?),
                "last_preserved_timestamp" => {
                    st.last_preserved_timestamp = Some(value.parse().map_err(|_| bad("bad number"))?)
                }
                _ => {} // A newer TensorFlow may add fields; they do not concern us.
            }
        }
        Ok(st)
    }

    /// The text format, as TensorFlow writes it.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "model_checkpoint_path: {}", quote(&self.model_checkpoint_path));
        for p in &self.all_model_checkpoint_paths {
            let _ = writeln!(s, "all_model_checkpoint_paths: {}", quote(p));
        }
        for t in &self.all_model_checkpoint_timestamps {
            let _ = writeln!(s, "all_model_checkpoint_timestamps: {t}");
        }
        if let Some(t) = self.last_preserved_timestamp {
            let _ = writeln!(s, "last_preserved_timestamp: {t}");
        }
        s
    }

    /// Reads `dir/checkpoint`; `Ok(None)` when there is none.
    pub fn read(dir: &Path) -> Result<Option<CheckpointState>> {
        let path = dir.join(STATE_FILE);
        let bytes = match read_limited(&path, MAX_STATE_LEN) {
            Ok(Limited::Bytes(bytes)) => bytes,
            Ok(Limited::TooLarge(len)) => {
                return Err(CheckpointError::corrupt(
                    &path,
                    format!("{len} bytes is too large for a state file"),
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(CheckpointError::io(&path, e)),
        };
        let text = String::from_utf8(bytes).map_err(|_| CheckpointError::corrupt(&path, "not UTF-8 text"))?;
        CheckpointState::parse(&path, &text).map(Some)
    }

    /// Writes `dir/checkpoint` atomically.
    pub fn write(&self, dir: &Path) -> Result<()> {
        write_atomic(&dir.join(STATE_FILE), self.to_text().as_bytes())
    }
}

/// `path` resolved against `dir` when it is relative.
pub fn resolve(dir: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}

/// The newest checkpoint recorded in `dir`'s state file (`tf.train.latest_checkpoint`), or
/// `None` when the directory has no state file.
pub fn latest_checkpoint(dir: impl AsRef<Path>) -> Result<Option<PathBuf>> {
    let dir = dir.as_ref();
    Ok(CheckpointState::read(dir)?
        .filter(|s| !s.model_checkpoint_path.is_empty())
        .map(|s| resolve(dir, &s.model_checkpoint_path)))
}

fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A text-format string literal: `"..."` or `'...'` with C escapes, including the octal
/// bytes (`\303\251`) TensorFlow writes for non-ASCII characters.
fn unquote(s: &str) -> Option<String> {
    let quote = s.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let inner = s.strip_prefix(quote)?.strip_suffix(quote)?;
    let mut out: Vec<u8> = Vec::with_capacity(inner.len());
    let bytes = inner.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        i += 1;
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let e = *bytes.get(i)?;
        i += 1;
        match e {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'0'..=b'7' => {
                // Up to three octal digits.
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match bytes.get(i) {
                        Some(d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(u8::try_from(v).ok()?);
            }
            b'x' => {
                let hex = std::str::from_utf8(bytes.get(i..i + 2)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            other => out.push(other),
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_tensorflow_writes() {
        let text = "model_checkpoint_path: \"ckpt-3\"\nall_model_checkpoint_paths: \"ckpt-2\"\n\
                    all_model_checkpoint_paths: \"ckpt-3\"\nall_model_checkpoint_timestamps: 1795685998.8943746\n\
                    all_model_checkpoint_timestamps: 1795685998.910396\nlast_preserved_timestamp: 1795685997.8451614\n";
        let st = CheckpointState::parse(Path::new("checkpoint"), text).unwrap();
        assert_eq!(st.model_checkpoint_path, "ckpt-3");
        assert_eq!(st.all_model_checkpoint_paths, ["ckpt-2", "ckpt-3"]);
        assert_eq!(
            st.all_model_checkpoint_timestamps,
            [1795685998.8943746, 1795685998.910396]
        );
        assert_eq!(st.last_preserved_timestamp, Some(1795685997.8451614));
        assert_eq!(st.to_text(), text);
        assert_eq!(CheckpointState::parse(Path::new("c"), &st.to_text()).unwrap(), st);
    }

    #[test]
    fn decodes_tensorflow_string_escapes() {
        let st =
            CheckpointState::parse(Path::new("c"), "model_checkpoint_path: \"caf\\303\\251\\t\\\"x\\\"\"\n").unwrap();
        assert_eq!(st.model_checkpoint_path, "café\t\"x\"");
        let st = CheckpointState::parse(Path::new("c"), "model_checkpoint_path: 'a\\x41'\n").unwrap();
        assert_eq!(st.model_checkpoint_path, "aA");
        assert!(CheckpointState::parse(Path::new("c"), "model_checkpoint_path: \"\\777\"").is_err());
        assert!(CheckpointState::parse(Path::new("c"), "model_checkpoint_path: \"\\\"").is_err());
    }

    #[test]
    fn rejects_garbage_and_finds_the_latest() {
        assert!(CheckpointState::parse(Path::new("c"), "model_checkpoint_path \"x\"").is_err());
        assert!(CheckpointState::parse(Path::new("c"), "model_checkpoint_path: x").is_err());
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(latest_checkpoint(dir.path()).unwrap(), None);
        let st = CheckpointState {
            model_checkpoint_path: "a \"b\"".into(),
            ..Default::default()
        };
        st.write(dir.path()).unwrap();
        assert_eq!(latest_checkpoint(dir.path()).unwrap(), Some(dir.path().join("a \"b\"")));
    }
}
