//! [`BundleReader`]: lists a bundle from its `.index` alone and reads single tensors from the
//! data shards on demand.

use super::entry::{decode_entry, decode_header, TfEntry};
use super::{data_path, index_path, strings, table};
use crate::error::{CheckpointError, Result};
use crate::raw::{checked_byte_len, checked_elements, RawTensor, StoredDtype, TensorInfo};
use crate::read_limited::{read_limited, Limited};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// A parsed, validated `PREFIX.index`. Tensor data stays on disk until [`BundleReader::read`].
#[derive(Clone, Debug)]
pub struct BundleReader {
    prefix: PathBuf,
    index: PathBuf,
    num_shards: u32,
    /// Every key but the header's `""`.
    entries: BTreeMap<String, TfEntry>,
    /// Keys set aside because of their dtype, with the dtype's name.
    skipped: Vec<(String, String)>,
}

/// Largest `.index` file accepted: TensorFlow's own are a few hundred bytes per variable.
pub const MAX_INDEX_LEN: u64 = 1 << 30;

impl BundleReader {
    /// Reads and validates `PREFIX.index` only (never the data).
    /// [`CheckpointError::NotFound`] if `PREFIX.index` does not exist.
    pub fn open(prefix: &Path) -> Result<BundleReader> {
        let index = index_path(prefix);
        // The index holds names and small records only; refuse absurd sizes before reading.
        let bytes = match read_limited(&index, MAX_INDEX_LEN) {
            Ok(Limited::Bytes(bytes)) => bytes,
            Ok(Limited::TooLarge(len)) => {
                return Err(CheckpointError::corrupt(
                    &index,
                    format!("{len} bytes is too large for a checkpoint index (at most {MAX_INDEX_LEN})"),
                ))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(CheckpointError::NotFound {
                    path: prefix.to_path_buf(),
                    why: format!("no TensorFlow index file {}", index.display()),
                })
            }
            Err(e) => return Err(CheckpointError::io(&index, e)),
        };
        BundleReader::parse_index(prefix, &bytes)
    }

    /// Parses the bytes of an index file (for fuzzing and tests); `prefix` only labels errors
    /// and locates the data files later.
    pub fn parse_index(prefix: &Path, index: &[u8]) -> Result<BundleReader> {
        let index_file = index_path(prefix);
        let table = table::read_table(index).map_err(|why| CheckpointError::corrupt(&index_file, why))?;
        let mut rows = table.entries.into_iter();
        // Keys are strictly increasing and "" sorts first, so the header is first if present.
        let num_shards = match rows.next() {
            Some((key, value)) if key.is_empty() => decode_header(&index_file, value)?,
            _ => {
                return Err(CheckpointError::corrupt(
                    &index_file,
                    "no bundle header (the table has no entry with the empty key)",
                ))
            }
        };
        let mut entries = BTreeMap::new();
        let mut skipped = Vec::new();
        for (key, value) in rows {
            let key = String::from_utf8(key).map_err(|e| {
                CheckpointError::corrupt(
                    &index_file,
                    format!("key {:?} is not UTF-8", String::from_utf8_lossy(e.as_bytes())),
                )
            })?;
            match decode_entry(&index_file, &key, value, num_shards) {
                Ok(entry) => {
                    entries.insert(key, entry);
                }
                // A value of a type we cannot represent (complex, variant, resource, ...) does
                // not make the rest of the checkpoint unreadable: it is set aside and listed.
                Err(CheckpointError::UnsupportedDtype { dtype, .. }) => skipped.push((key, dtype)),
                Err(e) => return Err(e),
            }
        }
        Ok(BundleReader {
            prefix: prefix.to_path_buf(),
            index: index_file,
            num_shards,
            entries,
            skipped,
        })
    }

    /// Keys whose dtype has no ferroflow type, with the dtype's name; they are not among
    /// [`BundleReader::entries`].
    pub fn skipped(&self) -> &[(String, String)] {
        &self.skipped
    }

    /// Number of data files (`PREFIX.data-*-of-<num_shards>`).
    pub fn num_shards(&self) -> u32 {
        self.num_shards
    }

    /// Every stored key with its entry, in key order (includes the object graph key).
    pub fn entries(&self) -> impl Iterator<Item = (&str, &TfEntry)> + '_ {
        self.entries.iter().map(|(k, e)| (k.as_str(), e))
    }

    /// The entry of `key`, if stored.
    pub fn entry(&self, key: &str) -> Option<&TfEntry> {
        self.entries.get(key)
    }

    /// Name (the raw TF key), dtype and shape of every stored tensor, in key order.
    pub fn infos(&self) -> Vec<TensorInfo> {
        self.entries
            .iter()
            .map(|(name, e)| TensorInfo {
                name: name.clone(),
                dtype: e.dtype,
                shape: e.shape.clone(),
            })
            .collect()
    }

    /// Reads one numeric tensor from its data file: the range is checked against the file's
    /// length before anything is allocated, then exactly that range is read and its CRC and
    /// size (elements × width) checked. A DT_STRING key gives
    /// [`CheckpointError::UnsupportedDtype`]; use [`BundleReader::read_strings`].
    pub fn read(&self, key: &str) -> Result<RawTensor> {
        let entry = self.lookup(key)?;
        self.check_numeric_size(key, entry)?;
        let file = self.shard_file(entry);
        let bytes = read_range(&file, key, entry)?;
        check_crc(&file, key, entry, &bytes)?;
        Ok(numeric(entry, bytes))
    }

    /// Decodes a DT_STRING tensor (such as the object graph), checking its length CRC and its
    /// entry CRC. A numeric key gives [`CheckpointError::UnsupportedDtype`].
    pub fn read_strings(&self, key: &str) -> Result<Vec<Vec<u8>>> {
        let entry = self.lookup(key)?;
        let count = self.string_count(key, entry)?;
        let file = self.shard_file(entry);
        let bytes = read_range(&file, key, entry)?;
        strings::decode_strings(&bytes, count, entry.crc32c)
            .map_err(|why| CheckpointError::corrupt(&file, format!("tensor '{key}': {why}")))
    }

    /// Like [`BundleReader::read`], from in-memory bytes: `data` is the whole content of the
    /// entry's shard file (for fuzzing and tests).
    pub fn read_from_bytes(&self, key: &str, data: &[u8]) -> Result<RawTensor> {
        let entry = self.lookup(key)?;
        self.check_numeric_size(key, entry)?;
        let file = self.shard_file(entry);
        let bytes = slice_range(&file, key, entry, data)?;
        check_crc(&file, key, entry, bytes)?;
        Ok(numeric(entry, bytes.to_vec()))
    }

    /// Like [`BundleReader::read_strings`], from the in-memory content of the shard file (for
    /// the fuzz target).
    pub fn read_strings_from_bytes(&self, key: &str, data: &[u8]) -> Result<Vec<Vec<u8>>> {
        let entry = self.lookup(key)?;
        let count = self.string_count(key, entry)?;
        let file = self.shard_file(entry);
        let bytes = slice_range(&file, key, entry, data)?;
        strings::decode_strings(bytes, count, entry.crc32c)
            .map_err(|why| CheckpointError::corrupt(&file, format!("tensor '{key}': {why}")))
    }

    fn lookup(&self, key: &str) -> Result<&TfEntry> {
        self.entries.get(key).ok_or_else(|| CheckpointError::MissingKey {
            path: self.index.clone(),
            name: key.to_string(),
        })
    }

    fn shard_file(&self, entry: &TfEntry) -> PathBuf {
        data_path(&self.prefix, entry.shard_id, self.num_shards)
    }

    fn unsupported(&self, key: &str, dtype: StoredDtype) -> CheckpointError {
        CheckpointError::UnsupportedDtype {
            path: self.index.clone(),
            name: key.to_string(),
            dtype: dtype.name().to_string(),
        }
    }

    /// Numeric dtypes only, and the stored size must be exactly elements × width (checked
    /// before reading, so a lying size never reaches an allocation).
    fn check_numeric_size(&self, key: &str, entry: &TfEntry) -> Result<()> {
        if entry.dtype == StoredDtype::String {
            return Err(self.unsupported(key, entry.dtype));
        }
        match checked_byte_len(entry.dtype, &entry.shape) {
            Some(n) if n as u64 == entry.size => Ok(()),
            expected => Err(CheckpointError::corrupt(
                &self.index,
                format!(
                    "tensor '{key}': stored size {} bytes, but a {} tensor of shape {:?} needs {}",
                    entry.size,
                    entry.dtype,
                    entry.shape,
                    expected.map_or("more than fit in memory".to_string(), |n| n.to_string())
                ),
            )),
        }
    }

    fn string_count(&self, key: &str, entry: &TfEntry) -> Result<usize> {
        if entry.dtype != StoredDtype::String {
            return Err(self.unsupported(key, entry.dtype));
        }
        // Validated when the index was parsed; re-checked rather than unwrapped.
        checked_elements(&entry.shape).ok_or_else(|| {
            CheckpointError::corrupt(
                &self.index,
                format!("tensor '{key}': shape {:?} overflows", entry.shape),
            )
        })
    }
}

/// The error for a range that lies outside the data file.
fn out_of_range(file: &Path, key: &str, entry: &TfEntry, len: u64) -> CheckpointError {
    CheckpointError::corrupt(
        file,
        format!(
            "tensor '{key}' at offset {} with size {} runs past the end of the file ({len} bytes)",
            entry.offset, entry.size
        ),
    )
}

/// Reads exactly the entry's byte range of `file`, after checking it against the file length.
fn read_range(file: &Path, key: &str, entry: &TfEntry) -> Result<Vec<u8>> {
    let mut f = File::open(file).map_err(|e| CheckpointError::io(file, e))?;
    let len = f.metadata().map_err(|e| CheckpointError::io(file, e))?.len();
    let fits = entry.offset.checked_add(entry.size).is_some_and(|end| end <= len);
    let size = usize::try_from(entry.size).ok().filter(|_| fits);
    let Some(size) = size else {
        return Err(out_of_range(file, key, entry, len));
    };
    let mut bytes = vec![0u8; size];
    f.seek(SeekFrom::Start(entry.offset))
        .and_then(|_| f.read_exact(&mut bytes))
        .map_err(|e| CheckpointError::io(file, e))?;
    Ok(bytes)
}

/// The entry's byte range of the in-memory shard `data`.
fn slice_range<'d>(file: &Path, key: &str, entry: &TfEntry, data: &'d [u8]) -> Result<&'d [u8]> {
    let range = usize::try_from(entry.offset)
        .ok()
        .zip(usize::try_from(entry.size).ok())
        .and_then(|(start, size)| Some(start..start.checked_add(size)?));
    range
        .and_then(|r| data.get(r))
        .ok_or_else(|| out_of_range(file, key, entry, data.len() as u64))
}

/// Checks a numeric tensor's bytes against the entry's masked CRC32C.
fn check_crc(file: &Path, key: &str, entry: &TfEntry, bytes: &[u8]) -> Result<()> {
    let crc = ferroflow_wire::masked_crc32c(bytes);
    if crc != entry.crc32c {
        return Err(CheckpointError::corrupt(
            file,
            format!(
                "tensor '{key}': checksum mismatch (stored {:08x}, computed {crc:08x})",
                entry.crc32c
            ),
        ));
    }
    Ok(())
}

fn numeric(entry: &TfEntry, data: Vec<u8>) -> RawTensor {
    RawTensor {
        dtype: entry.dtype,
        shape: entry.shape.clone(),
        data,
    }
}
