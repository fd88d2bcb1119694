//! The safetensors format (`checkpoint/spec/safetensors-format.md` in the repository): an 8-byte little-endian header
//! length, a JSON header naming each tensor's dtype, shape and byte range, then the data.
//!
//! The writer follows the reference writer byte for byte (tensor order, compact JSON, space
//! padding to 8 bytes), so files without metadata are identical to
//! `safetensors.numpy.save_file`'s. The reader applies the reference reader's rules and, before
//! reading or allocating anything, checks the header length against a bound and the file size,
//! and every byte range against the data buffer.

use crate::atomic::write_atomic_with;
use crate::error::{CheckpointError, Result};
use crate::raw::{checked_byte_len, RawTensor, StoredDtype, TensorInfo};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Largest header the reader accepts, as in the reference implementation.
pub const MAX_HEADER_LEN: u64 = 100_000_000;

/// The reference name of a stored dtype (`F32`, `BOOL`, ...), or `None` for strings.
pub fn dtype_name(d: StoredDtype) -> Option<&'static str> {
    use StoredDtype::*;
    Some(match d {
        Bool => "BOOL",
        U8 => "U8",
        I8 => "I8",
        I16 => "I16",
        U16 => "U16",
        F16 => "F16",
        BF16 => "BF16",
        I32 => "I32",
        U32 => "U32",
        F32 => "F32",
        F64 => "F64",
        I64 => "I64",
        U64 => "U64",
        String => return None,
    })
}

fn parse_dtype(name: &str) -> Option<StoredDtype> {
    use StoredDtype::*;
    Some(match name {
        "BOOL" => Bool,
        "U8" => U8,
        "I8" => I8,
        "I16" => I16,
        "U16" => U16,
        "F16" => F16,
        "BF16" => BF16,
        "I32" => I32,
        "U32" => U32,
        "F32" => F32,
        "F64" => F64,
        "I64" => I64,
        "U64" => U64,
        _ => return None,
    })
}

/// Position in the reference implementation's dtype enum; the writer stores larger ranks
/// first so every tensor lands aligned to its element size.
fn enum_rank(d: StoredDtype) -> u8 {
    use StoredDtype::*;
    match d {
        Bool => 0,
        U8 => 4,
        I8 => 5,
        I16 => 11,
        U16 => 12,
        F16 => 13,
        BF16 => 14,
        I32 => 15,
        U32 => 16,
        F32 => 17,
        F64 => 19,
        I64 => 20,
        U64 => 21,
        String => 0,
    }
}

/// One tensor's place in the data buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Slot {
    info: TensorInfo,
    begin: u64,
    end: u64,
}

/// A validated safetensors header; tensor data is read on demand from the file opened by
/// [`SafetensorsReader::open`] (kept open, so a file replaced meanwhile cannot mix the old
/// header with new data).
#[derive(Debug)]
pub struct SafetensorsReader {
    path: PathBuf,
    file: Option<Mutex<File>>,
    data_start: u64,
    slots: BTreeMap<String, Slot>,
    metadata: BTreeMap<String, String>,
}

impl SafetensorsReader {
    /// Reads and validates the header of the file at `path` (not the tensor data).
    pub fn open(path: &Path) -> Result<SafetensorsReader> {
        let mut f = File::open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => CheckpointError::NotFound {
                path: path.to_path_buf(),
                why: "no such file".into(),
            },
            _ => CheckpointError::io(path, e),
        })?;
        let file_len = f.metadata().map_err(|e| CheckpointError::io(path, e))?.len();
        if file_len < 8 {
            return Err(CheckpointError::corrupt(
                path,
                format!("header too small: the file has {file_len} bytes"),
            ));
        }
        let mut len = [0u8; 8];
        f.read_exact(&mut len).map_err(|e| CheckpointError::io(path, e))?;
        let n = header_len(path, u64::from_le_bytes(len), file_len)?;
        let mut header = vec![0u8; n as usize];
        f.read_exact(&mut header).map_err(|e| CheckpointError::io(path, e))?;
        let mut reader = Self::from_header(path, &header, file_len - 8 - n)?;
        reader.file = Some(Mutex::new(f));
        Ok(reader)
    }

    /// Validates a whole file held in memory (used by the fuzz target and tests).
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<SafetensorsReader> {
        let len: [u8; 8] = bytes.get(..8).and_then(|b| b.try_into().ok()).ok_or_else(|| {
            CheckpointError::corrupt(path, format!("header too small: the file has {} bytes", bytes.len()))
        })?;
        let n = header_len(path, u64::from_le_bytes(len), bytes.len() as u64)?;
        Self::from_header(path, &bytes[8..8 + n as usize], bytes.len() as u64 - 8 - n)
    }

    fn from_header(path: &Path, header: &[u8], data_len: u64) -> Result<SafetensorsReader> {
        let bad = |why: String| CheckpointError::corrupt(path, why);
        let text = std::str::from_utf8(header).map_err(|e| bad(format!("header is not UTF-8: {e}")))?;
        let json: serde_json::Value =
            serde_json::from_str(text).map_err(|e| bad(format!("header is not valid JSON: {e}")))?;
        let obj = json
            .as_object()
            .ok_or_else(|| bad("header is not a JSON object".into()))?;
        let mut metadata = BTreeMap::new();
        let mut slots = BTreeMap::new();
        for (name, entry) in obj {
            if name == "__metadata__" {
                let m = entry
                    .as_object()
                    .ok_or_else(|| bad("__metadata__ is not an object".into()))?;
                for (k, v) in m {
                    let v = v
                        .as_str()
                        .ok_or_else(|| bad(format!("__metadata__ value of '{k}' is not a string")))?;
                    metadata.insert(k.clone(), v.to_string());
                }
                continue;
            }
            let slot = parse_entry(name, entry).map_err(|why| bad(format!("tensor '{name}': {why}")))?;
            slots.insert(name.clone(), slot);
        }
        // The byte ranges must tile the data buffer exactly: no gaps, overlaps or trailing bytes.
        let mut ranges: Vec<&Slot> = slots.values().collect();
        ranges.sort_by_key(|s| (s.begin, s.end));
        let mut at = 0u64;
        for s in ranges {
            if s.begin != at {
                return Err(bad(format!(
                    "invalid offset for tensor '{}': begins at {} but {at} was expected",
                    s.info.name, s.begin
                )));
            }
            at = s.end;
        }
        if at != data_len {
            return Err(bad(format!(
                "tensors cover {at} of the {data_len} data bytes (file not fully covered)"
            )));
        }
        Ok(SafetensorsReader {
            path: path.to_path_buf(),
            file: None,
            data_start: 8 + header.len() as u64,
            slots,
            metadata,
        })
    }

    /// The file this reader reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `__metadata__` map (empty when the file has none).
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// Name, dtype and shape of every tensor, sorted by name.
    pub fn infos(&self) -> Vec<TensorInfo> {
        self.slots.values().map(|s| s.info.clone()).collect()
    }

    /// Whether a tensor named `name` is stored.
    pub fn contains(&self, name: &str) -> bool {
        self.slots.contains_key(name)
    }

    /// Reads one tensor from the file.
    pub fn read(&self, name: &str) -> Result<RawTensor> {
        let slot = self.slot(name)?;
        let file = self.file.as_ref().ok_or_else(|| {
            CheckpointError::Invalid(format!(
                "{}: parsed from memory; use read_from_bytes",
                self.path.display()
            ))
        })?;
        let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
        let file_len = f.metadata().map_err(|e| CheckpointError::io(&self.path, e))?.len();
        let begin = self.data_start + slot.begin;
        let end = self.data_start + slot.end;
        if end > file_len {
            // The file shrank since its header was read.
            return Err(CheckpointError::corrupt(
                &self.path,
                format!("tensor '{name}' ends at byte {end}, past the end of the file ({file_len})"),
            ));
        }
        let mut data = vec![0u8; (end - begin) as usize];
        f.seek(SeekFrom::Start(begin))
            .map_err(|e| CheckpointError::io(&self.path, e))?;
        f.read_exact(&mut data)
            .map_err(|e| CheckpointError::io(&self.path, e))?;
        Ok(RawTensor {
            dtype: slot.info.dtype,
            shape: slot.info.shape.clone(),
            data,
        })
    }

    /// Reads one tensor out of the whole file held in memory (as given to [`Self::parse`]).
    pub fn read_from_bytes(&self, name: &str, bytes: &[u8]) -> Result<RawTensor> {
        let slot = self.slot(name)?;
        let range = (self.data_start + slot.begin) as usize..(self.data_start + slot.end) as usize;
        let data = bytes.get(range).ok_or_else(|| {
            CheckpointError::corrupt(&self.path, format!("tensor '{name}' lies past the end of the file"))
        })?;
        Ok(RawTensor {
            dtype: slot.info.dtype,
            shape: slot.info.shape.clone(),
            data: data.to_vec(),
        })
    }

    fn slot(&self, name: &str) -> Result<&Slot> {
        self.slots.get(name).ok_or_else(|| CheckpointError::MissingKey {
            path: self.path.clone(),
            name: name.to_string(),
        })
    }
}

/// Checks the declared header length against the bound and the file size.
fn header_len(path: &Path, n: u64, file_len: u64) -> Result<u64> {
    if n > MAX_HEADER_LEN {
        return Err(CheckpointError::corrupt(
            path,
            format!("header too large: {n} bytes (at most {MAX_HEADER_LEN})"),
        ));
    }
    if n > file_len - 8 {
        return Err(CheckpointError::corrupt(
            path,
            format!(
                "invalid header length {n}: the file has only {} bytes after the length",
                file_len - 8
            ),
        ));
    }
    Ok(n)
}

fn parse_entry(name: &str, entry: &serde_json::Value) -> std::result::Result<Slot, String> {
    let obj = entry.as_object().ok_or("entry is not an object")?;
    let dtype_str = obj
        .get("dtype")
        .and_then(|d| d.as_str())
        .ok_or("missing string field 'dtype'")?;
    let dtype = parse_dtype(dtype_str).ok_or_else(|| format!("unknown or unsupported dtype '{dtype_str}'"))?;
    let shape = obj
        .get("shape")
        .and_then(|s| s.as_array())
        .ok_or("missing array field 'shape'")?
        .iter()
        .map(|d| {
            d.as_u64()
                .and_then(|d| usize::try_from(d).ok())
                .ok_or("shape holds a value that is not a size")
        })
        .collect::<std::result::Result<Vec<usize>, _>>()?;
    let offsets = obj
        .get("data_offsets")
        .and_then(|o| o.as_array())
        .ok_or("missing array field 'data_offsets'")?;
    let (begin, end) = match offsets.as_slice() {
        [b, e] => (
            b.as_u64().ok_or("bad data_offsets")?,
            e.as_u64().ok_or("bad data_offsets")?,
        ),
        _ => return Err("data_offsets must hold two offsets".into()),
    };
    let want = checked_byte_len(dtype, &shape).ok_or("the shape's byte size overflows")?;
    if end < begin || (end - begin) as u128 != want as u128 {
        return Err(format!(
            "invalid shape, data type, or offset: {dtype_str} {shape:?} needs {want} bytes, data_offsets are [{begin}, {end}]"
        ));
    }
    Ok(Slot {
        info: TensorInfo {
            name: name.to_string(),
            dtype,
            shape,
        },
        begin,
        end,
    })
}

/// The header bytes (including the length prefix and padding) and the tensors in data order.
fn layout<'t>(
    tensors: &[(&'t str, &'t RawTensor)],
    metadata: &BTreeMap<String, String>,
) -> Result<(Vec<u8>, Vec<&'t RawTensor>)> {
    let mut order: Vec<(&str, &RawTensor)> = tensors.to_vec();
    order.sort_by(|a, b| enum_rank(b.1.dtype).cmp(&enum_rank(a.1.dtype)).then(a.0.cmp(b.0)));
    for w in order.windows(2) {
        if w[0].0 == w[1].0 {
            return Err(CheckpointError::Invalid(format!("two tensors named '{}'", w[0].0)));
        }
    }
    let json_str = |s: &str| serde_json::to_string(s).expect("strings always serialise");
    let mut header = String::from("{");
    if !metadata.is_empty() {
        header.push_str("\"__metadata__\":{");
        let items: Vec<String> = metadata
            .iter()
            .map(|(k, v)| format!("{}:{}", json_str(k), json_str(v)))
            .collect();
        header.push_str(&items.join(","));
        header.push('}');
    }
    let mut at = 0usize;
    for (i, (name, t)) in order.iter().enumerate() {
        if name.as_bytes() == b"__metadata__" {
            return Err(CheckpointError::Invalid(
                "a tensor may not be named '__metadata__'".into(),
            ));
        }
        let dt = dtype_name(t.dtype).ok_or_else(|| {
            CheckpointError::Invalid(format!("'{name}': safetensors cannot store {} tensors", t.dtype))
        })?;
        if checked_byte_len(t.dtype, &t.shape) != Some(t.data.len()) {
            return Err(CheckpointError::Invalid(format!(
                "'{name}': {} bytes for shape {:?}",
                t.data.len(),
                t.shape
            )));
        }
        if i > 0 || !metadata.is_empty() {
            header.push(',');
        }
        let shape: Vec<String> = t.shape.iter().map(|d| d.to_string()).collect();
        let end = at + t.data.len();
        header.push_str(&format!(
            "{}:{{\"dtype\":\"{dt}\",\"shape\":[{}],\"data_offsets\":[{at},{end}]}}",
            json_str(name),
            shape.join(",")
        ));
        at = end;
    }
    header.push('}');
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    Ok((bytes, order.into_iter().map(|(_, t)| t).collect()))
}

/// The whole file for `tensors` (name, value) and `metadata`, as the reference writer lays it
/// out.
pub fn encode(tensors: &[(&str, &RawTensor)], metadata: &BTreeMap<String, String>) -> Result<Vec<u8>> {
    let (mut bytes, order) = layout(tensors, metadata)?;
    for t in order {
        bytes.extend_from_slice(&t.data);
    }
    Ok(bytes)
}

/// Writes a safetensors file atomically (temporary file, fsync, rename).
pub fn write(path: &Path, tensors: &[(&str, &RawTensor)], metadata: &BTreeMap<String, String>) -> Result<()> {
    let (header, order) = layout(tensors, metadata)?;
    write_atomic_with(path, |f| {
        let mut w = std::io::BufWriter::new(f);
        w.write_all(&header)?;
        for t in order {
            w.write_all(&t.data)?;
        }
        w.flush()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(dtype: StoredDtype, shape: &[usize], data: &[u8]) -> RawTensor {
        RawTensor {
            dtype,
            shape: shape.to_vec(),
            data: data.to_vec(),
        }
    }

    fn sample() -> Vec<(String, RawTensor)> {
        vec![
            (
                "dense_1/w".into(),
                raw(StoredDtype::F32, &[2], &[0, 0, 128, 63, 0, 0, 0, 64]),
            ),
            ("step".into(), raw(StoredDtype::I64, &[], &7i64.to_le_bytes())),
            ("mask".into(), raw(StoredDtype::Bool, &[2], &[1, 0])),
            ("empty".into(), raw(StoredDtype::F32, &[0, 4], &[])),
        ]
    }

    fn refs(v: &[(String, RawTensor)]) -> Vec<(&str, &RawTensor)> {
        v.iter().map(|(n, t)| (n.as_str(), t)).collect()
    }

    #[test]
    fn layout_follows_the_reference_writer() {
        let t = sample();
        let bytes = encode(&refs(&t), &BTreeMap::new()).unwrap();
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert_eq!(n % 8, 0);
        let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap().trim_end();
        assert_eq!(
            header,
            "{\"step\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]},\
             \"dense_1/w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]},\
             \"empty\":{\"dtype\":\"F32\",\"shape\":[0,4],\"data_offsets\":[16,16]},\
             \"mask\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[16,18]}}"
        );
        assert_eq!(bytes.len(), 8 + n + 18);
    }

    #[test]
    fn round_trips_through_a_file_with_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.safetensors");
        let t = sample();
        let meta = BTreeMap::from([("save_counter".to_string(), "3".to_string())]);
        write(&p, &refs(&t), &meta).unwrap();
        let r = SafetensorsReader::open(&p).unwrap();
        assert_eq!(r.metadata(), &meta);
        let names: Vec<String> = r.infos().into_iter().map(|i| i.name).collect();
        assert_eq!(names, ["dense_1/w", "empty", "mask", "step"]);
        for (name, value) in &t {
            assert_eq!(&r.read(name).unwrap(), value);
        }
        let bytes = std::fs::read(&p).unwrap();
        let m = SafetensorsReader::parse(&p, &bytes).unwrap();
        assert_eq!(&m.read_from_bytes("step", &bytes).unwrap(), &t[1].1);
        assert!(matches!(r.read("nope"), Err(CheckpointError::MissingKey { .. })));
    }

    fn file(header: &str, data: &[u8]) -> Vec<u8> {
        let mut b = (header.len() as u64).to_le_bytes().to_vec();
        b.extend_from_slice(header.as_bytes());
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn rejects_what_the_reference_reader_rejects() {
        let p = Path::new("bad.safetensors");
        let e = |b: &[u8]| SafetensorsReader::parse(p, b).unwrap_err().to_string();
        assert!(e(&[1, 2, 3]).contains("header too small"));
        assert!(e(&u64::MAX.to_le_bytes()).contains("header too large"));
        assert!(e(&file("{}", &[])[..9]).contains("invalid header length"));
        let one = r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
        assert!(e(&file(one, &[0; 5])).contains("not fully covered"));
        let gap = r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#;
        assert!(e(&file(gap, &[0; 8])).contains("invalid offset"));
        let size = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#;
        assert!(e(&file(size, &[0; 4])).contains("invalid shape"));
        let lower = r#"{"a":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}}"#;
        assert!(e(&file(lower, &[0; 4])).contains("unknown"));
        assert!(e(&file(r#"{"__metadata__":{"k":1}}"#, &[])).contains("not a string"));
        let huge = r#"{"a":{"dtype":"F64","shape":[4611686018427387904,4],"data_offsets":[0,0]}}"#;
        assert!(e(&file(huge, &[])).contains("overflows"));
        assert!(e(&file("{}\0\0\0\0\0\0", &[])).contains("JSON"));
        assert!(e(&file(gap, &[0; 8])).starts_with("bad.safetensors: corrupt checkpoint"));
        // Accepted: any key order, no padding, an empty header.
        assert!(SafetensorsReader::parse(p, &file("{}", &[])).is_ok());
        let two = r#"{"b":{"dtype":"U8","shape":[1],"data_offsets":[4,5]},"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}"#;
        assert_eq!(
            SafetensorsReader::parse(p, &file(two, &[0; 5])).unwrap().infos().len(),
            2
        );
    }

    #[test]
    fn truncated_and_flipped_files_never_panic() {
        let t = sample();
        let bytes = encode(&refs(&t), &BTreeMap::from([("a".into(), "b".into())])).unwrap();
        let p = Path::new("x.safetensors");
        for len in 0..bytes.len() {
            assert!(
                SafetensorsReader::parse(p, &bytes[..len]).is_err(),
                "truncated at {len}"
            );
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0xFF;
            if let Ok(r) = SafetensorsReader::parse(p, &b) {
                for info in r.infos() {
                    let _ = r
                        .read_from_bytes(&info.name, &b)
                        .and_then(|raw| raw.to_tensor(p, &info.name));
                }
            }
        }
    }
}
