//! The protobuf values of the index table (spec §4): `BundleHeaderProto` under the empty key and
//! one `BundleEntryProto` per tensor, plus TensorFlow's `DataType` numbers.
//!
//! Decoding validates what later reads rely on (dtype, shape, shard, non-negative offsets) so
//! that a [`TfEntry`] is always self-consistent; encoding omits zero scalars like proto3 does,
//! which is what makes the written index byte-identical to TensorFlow's.

use crate::error::{CheckpointError, Result};
use crate::raw::{checked_elements, StoredDtype};
use ferroflow_wire::{for_each_field, put_bytes_field, put_fixed32_field, put_varint_field, Wire, WireResult};
use std::path::Path;

/// Most shards a header may declare. TF has no limit, but a corrupt count must not make a
/// reader believe in millions of data files.
const MAX_SHARDS: i32 = 100_000;
/// The bundle format version this reader implements (TF's `kTensorBundleVersion`).
const BUNDLE_VERSION: i32 = 1;

/// `DT_STRING`, the dtype of the object graph.
pub(crate) const DT_STRING: i32 = 7;

/// One tensor's record in the index: where its bytes are and how to check them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TfEntry {
    /// Element type.
    pub dtype: StoredDtype,
    /// Dimensions (`[]` for a scalar).
    pub shape: Vec<usize>,
    /// Which data file (`PREFIX.data-<shard_id>-of-<num_shards>`) holds the bytes.
    pub shard_id: u32,
    /// Byte offset in that file.
    pub offset: u64,
    /// Byte count (for numeric dtypes, elements × width).
    pub size: u64,
    /// Masked CRC32C of the bytes (for strings, see the spec §2).
    pub crc32c: u32,
}

/// TF's `DataType` number to the stored dtype; `None` for types this crate does not store.
pub(crate) fn dtype_from_tf(n: i32) -> Option<StoredDtype> {
    use StoredDtype::*;
    Some(match n {
        1 => F32,
        2 => F64,
        3 => I32,
        4 => U8,
        5 => I16,
        6 => I8,
        DT_STRING => String,
        9 => I64,
        10 => Bool,
        14 => BF16,
        17 => U16,
        19 => F16,
        22 => U32,
        23 => U64,
        _ => return None,
    })
}

/// The stored dtype's TF `DataType` number.
pub(crate) fn dtype_to_tf(d: StoredDtype) -> i32 {
    use StoredDtype::*;
    match d {
        F32 => 1,
        F64 => 2,
        I32 => 3,
        U8 => 4,
        I16 => 5,
        I8 => 6,
        String => DT_STRING,
        I64 => 9,
        Bool => 10,
        BF16 => 14,
        U16 => 17,
        F16 => 19,
        U32 => 22,
        U64 => 23,
    }
}

/// A readable name for a TF dtype this crate cannot hold, for error messages.
fn unsupported_dtype_name(n: i32) -> String {
    let name = match n {
        8 => "complex64",
        11 => "qint8",
        12 => "quint8",
        13 => "qint32",
        15 => "qint16",
        16 => "quint16",
        18 => "complex128",
        20 => "resource",
        21 => "variant",
        _ => "",
    };
    if name.is_empty() {
        format!("TF DataType {n}")
    } else {
        format!("{name} (TF DataType {n})")
    }
}

/// Decodes and checks the header; returns the number of shards.
pub(crate) fn decode_header(index: &Path, value: &[u8]) -> Result<u32> {
    let corrupt = |why: String| CheckpointError::corrupt(index, format!("bundle header: {why}"));
    let mut num_shards = 0i32;
    let mut endianness = 0i32;
    let mut version = Version::default();
    for_each_field(value, |field, v| {
        match field {
            1 => num_shards = v.int32("num_shards")?,
            2 => endianness = v.int32("endianness")?,
            // Embedded messages that occur twice merge, as protobuf does.
            3 => version.merge(v.bytes("version")?)?,
            _ => {}
        }
        Ok(())
    })
    .map_err(corrupt)?;
    if !(1..=MAX_SHARDS).contains(&num_shards) {
        return Err(corrupt(format!("num_shards {num_shards} is not in 1..={MAX_SHARDS}")));
    }
    if endianness != 0 {
        return Err(corrupt(format!(
            "endianness {endianness} (big-endian) is not supported; only little-endian bundles are"
        )));
    }
    version.check().map_err(corrupt)?;
    Ok(num_shards as u32)
}

/// `VersionDef` of the header.
#[derive(Default)]
struct Version {
    producer: i32,
    min_consumer: i32,
    bad_consumers: Vec<i32>,
}

impl Version {
    fn merge(&mut self, message: &[u8]) -> WireResult<()> {
        for_each_field(message, |field, v| {
            match (field, v) {
                (1, v) => self.producer = v.int32("version.producer")?,
                (2, v) => self.min_consumer = v.int32("version.min_consumer")?,
                // Repeated int32: packed (one length-delimited run) or one varint per value.
                (3, Wire::Bytes(packed)) => {
                    let mut pos = 0;
                    while pos < packed.len() {
                        let n = ferroflow_wire::read_varint64(packed, &mut pos)?;
                        self.bad_consumers.push(n as u32 as i32);
                    }
                }
                (3, v) => self.bad_consumers.push(v.int32("version.bad_consumers")?),
                _ => {}
            }
            Ok(())
        })
    }

    /// TF's `CheckVersions` for consumer version 1 (spec §4.1).
    fn check(&self) -> WireResult<()> {
        if self.producer < 0 {
            return Err(format!("producer version {} is negative", self.producer));
        }
        if self.min_consumer > BUNDLE_VERSION {
            return Err(format!(
                "written for readers of version >= {}, this reader is version {BUNDLE_VERSION}",
                self.min_consumer
            ));
        }
        if self.bad_consumers.contains(&BUNDLE_VERSION) {
            return Err(format!("the writer disallows reader version {BUNDLE_VERSION}"));
        }
        Ok(())
    }
}

/// The header TF writes: `{num_shards: 1, version: {producer: 1}}`.
pub(crate) fn encode_header() -> Vec<u8> {
    let mut version = Vec::new();
    put_varint_field(&mut version, 1, BUNDLE_VERSION as u64);
    let mut out = Vec::new();
    put_varint_field(&mut out, 1, 1);
    put_bytes_field(&mut out, 3, &version);
    out
}

/// Decodes and checks the entry of `key`; `num_shards` comes from the header.
pub(crate) fn decode_entry(index: &Path, key: &str, value: &[u8], num_shards: u32) -> Result<TfEntry> {
    let corrupt = |why: String| CheckpointError::corrupt(index, format!("entry '{key}': {why}"));
    let mut dtype = 0i32;
    let mut shape = Shape::default();
    let (mut shard_id, mut offset, mut size, mut crc) = (0i32, 0i64, 0i64, 0u32);
    let mut has_slices = false;
    for_each_field(value, |field, v| {
        match field {
            1 => dtype = v.int32("dtype")?,
            2 => shape.merge(v.bytes("shape")?)?,
            3 => shard_id = v.int32("shard_id")?,
            4 => offset = v.int64("offset")?,
            5 => size = v.int64("size")?,
            6 => crc = v.fixed32("crc32c")?,
            7 => has_slices = true,
            _ => {}
        }
        Ok(())
    })
    .map_err(corrupt)?;

    if has_slices {
        return Err(corrupt(
            "partitioned variables (slices) are not supported; save the variable unpartitioned".into(),
        ));
    }
    let dtype = match dtype_from_tf(dtype) {
        Some(d) => d,
        None if dtype == 0 => return Err(corrupt("no dtype".into())),
        None => {
            return Err(CheckpointError::UnsupportedDtype {
                path: index.to_path_buf(),
                name: key.to_string(),
                dtype: unsupported_dtype_name(dtype),
            })
        }
    };
    if shape.unknown_rank {
        return Err(corrupt("shape has unknown rank".into()));
    }
    if checked_elements(&shape.dims).is_none() {
        return Err(corrupt(format!(
            "shape {:?} has more elements than fit in memory",
            shape.dims
        )));
    }
    if shard_id < 0 || shard_id as u32 >= num_shards {
        return Err(corrupt(format!(
            "shard_id {shard_id} is not below num_shards {num_shards}"
        )));
    }
    if offset < 0 || size < 0 {
        return Err(corrupt(format!("negative offset {offset} or size {size}")));
    }
    Ok(TfEntry {
        dtype,
        shape: shape.dims,
        shard_id: shard_id as u32,
        offset: offset as u64,
        size: size as u64,
        crc32c: crc,
    })
}

/// `TensorShapeProto`, merged over occurrences.
#[derive(Default)]
struct Shape {
    dims: Vec<usize>,
    unknown_rank: bool,
}

impl Shape {
    fn merge(&mut self, message: &[u8]) -> WireResult<()> {
        for_each_field(message, |field, v| {
            match field {
                2 => {
                    let mut size = 0i64;
                    for_each_field(v.bytes("shape.dim")?, |f, v| {
                        if f == 1 {
                            size = v.int64("shape.dim.size")?;
                        }
                        Ok(())
                    })?;
                    // -1 means unknown: only fully defined shapes can be stored.
                    let dim = usize::try_from(size).map_err(|_| format!("shape dimension {size} is negative"))?;
                    // Each dim costs at least two input bytes, so this growth is bounded.
                    self.dims.push(dim);
                }
                3 => self.unknown_rank = v.varint("shape.unknown_rank")? != 0,
                _ => {}
            }
            Ok(())
        })
    }
}

/// Encodes an entry the way TF's proto3 serializer does: fields in number order, zero scalars
/// omitted, the shape always present (an empty message for scalars).
pub(crate) fn encode_entry(dtype: i32, shape: &[usize], offset: u64, size: u64, crc: u32) -> Vec<u8> {
    let mut shape_msg = Vec::new();
    for &d in shape {
        let mut dim = Vec::new();
        if d != 0 {
            put_varint_field(&mut dim, 1, d as u64);
        }
        put_bytes_field(&mut shape_msg, 2, &dim);
    }
    let mut out = Vec::new();
    put_varint_field(&mut out, 1, dtype as u64);
    put_bytes_field(&mut out, 2, &shape_msg);
    // shard_id (field 3) is always 0: one shard.
    if offset != 0 {
        put_varint_field(&mut out, 4, offset);
    }
    if size != 0 {
        put_varint_field(&mut out, 5, size);
    }
    if crc != 0 {
        put_fixed32_field(&mut out, 6, crc);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "x.index";

    fn header(fields: &[(u32, u64)], version: &[u8]) -> Vec<u8> {
        let mut h = Vec::new();
        for &(f, v) in fields {
            put_varint_field(&mut h, f, v);
        }
        put_bytes_field(&mut h, 3, version);
        h
    }

    #[test]
    fn header_round_trips_and_versions_are_checked() {
        assert_eq!(encode_header(), [0x08, 0x01, 0x1a, 0x02, 0x08, 0x01]);
        assert_eq!(decode_header(Path::new(P), &encode_header()).unwrap(), 1);
        assert_eq!(decode_header(Path::new(P), &header(&[(1, 7)], &[])).unwrap(), 7);
        for (fields, version) in [
            (vec![(1, 0)], vec![]),
            (vec![], vec![]),
            (vec![(1, 1_000_000)], vec![]),
            (vec![(1, u64::MAX)], vec![]),  // -1
            (vec![(1, 1), (2, 1)], vec![]), // big-endian
            (vec![(1, 1)], vec![0x10, 0x02]),
            (
                vec![(1, 1)],
                vec![0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ), // producer -1
            (vec![(1, 1)], vec![0x18, 0x01]),             // bad_consumers [1]
            (vec![(1, 1)], vec![0x1a, 0x02, 0x00, 0x01]), // packed bad_consumers [0, 1]
        ] {
            let r = decode_header(Path::new(P), &header(&fields, &version));
            let e = r.unwrap_err().to_string();
            assert!(e.contains(P) && e.contains("header"), "{e}");
        }
    }

    #[test]
    fn entries_round_trip_and_bad_ones_are_refused() {
        let p = Path::new(P);
        let bytes = encode_entry(1, &[3, 0, 2], 36, 12, 0xb055_1df2);
        let e = decode_entry(p, "k", &bytes, 1).unwrap();
        assert_eq!(
            e,
            TfEntry {
                dtype: StoredDtype::F32,
                shape: vec![3, 0, 2],
                shard_id: 0,
                offset: 36,
                size: 12,
                crc32c: 0xb055_1df2
            }
        );
        let mut with_slices = bytes.clone();
        put_bytes_field(&mut with_slices, 7, &[]);
        let msg = decode_entry(p, "k", &with_slices, 1).unwrap_err().to_string();
        assert!(msg.contains("partitioned"), "{msg}");
        let mut shard_2 = bytes.clone();
        put_varint_field(&mut shard_2, 3, 2);
        assert!(decode_entry(p, "k", &shard_2, 2).is_err());
        assert!(decode_entry(p, "k", &shard_2, 3).is_ok());
        assert!(matches!(
            decode_entry(p, "k", &encode_entry(8, &[], 0, 8, 1), 1),
            Err(CheckpointError::UnsupportedDtype { .. })
        ));
        assert!(decode_entry(p, "k", &encode_entry(0, &[], 0, 8, 1), 1).is_err());
        assert!(decode_entry(p, "k", &encode_entry(1, &[usize::MAX >> 1, 4], 0, 8, 1), 1).is_err());
        let mut negative = Vec::new();
        put_varint_field(&mut negative, 1, 1);
        put_varint_field(&mut negative, 5, u64::MAX);
        assert!(decode_entry(p, "k", &negative, 1).is_err());
        let mut unknown_dim = Vec::new();
        put_varint_field(&mut unknown_dim, 1, u64::MAX);
        let mut shape = Vec::new();
        put_bytes_field(&mut shape, 2, &unknown_dim);
        let mut e = Vec::new();
        put_varint_field(&mut e, 1, 1);
        put_bytes_field(&mut e, 2, &shape);
        assert!(decode_entry(p, "k", &e, 1).is_err());
    }

    #[test]
    fn dtype_numbers_round_trip() {
        for n in 0..40 {
            if let Some(d) = dtype_from_tf(n) {
                assert_eq!(dtype_to_tf(d), n);
            }
        }
    }
}
