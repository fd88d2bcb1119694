//! Writing single-shard bundles that TensorFlow restores (spec §8).

use super::entry::{dtype_to_tf, encode_entry, encode_header, DT_STRING};
use super::object_graph::encode_object_graph;
use super::table::TableBuilder;
use super::{checkpoint_key, data_path, index_path, strings, OBJECT_GRAPH_KEY};
use crate::atomic::{remove_durable, stage};
use crate::error::{CheckpointError, Result};
use crate::raw::{checked_byte_len, RawTensor, StoredDtype};
use ferroflow_wire::mask_crc;
use std::collections::BTreeMap;
use std::path::Path;

/// One variable to write.
#[derive(Clone, Debug)]
pub struct BundleVariable<'a> {
    /// Object path segments from the root, e.g. `["model", "dense_1", "w"]` (unescaped).
    pub path: Vec<String>,
    /// The variable's own name, stored as `SerializedTensor.full_name` (e.g. `"w"`).
    pub full_name: String,
    /// The value (any numeric dtype).
    pub tensor: &'a RawTensor,
}

/// Encodes one shard: `(index bytes, data bytes)`.
///
/// Tensors are appended to the data in the order given and the object graph last; the
/// object graph's children keep the order of first appearance in `variables` (TF sorts the
/// root's children by name, so callers pass the root-level names sorted). Fails with
/// [`CheckpointError::Invalid`] for an empty path or segment, two variables with one path, a
/// variable whose path is a prefix of another's, a string tensor, or bytes that do not match
/// the tensor's dtype and shape.
pub fn encode_bundle(variables: &[BundleVariable]) -> Result<(Vec<u8>, Vec<u8>)> {
    let graph = encode_object_graph(variables)?;
    let mut data = Vec::new();
    // Distinct paths give distinct keys (the escaping is injective), so no key is overwritten.
    let mut entries: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for var in variables {
        let segments: Vec<&str> = var.path.iter().map(String::as_str).collect();
        let key = checkpoint_key(&segments);
        let t = var.tensor;
        check_tensor(&key, t)?;
        let crc = mask_crc(crc32c::crc32c(&t.data));
        let entry = encode_entry(
            dtype_to_tf(t.dtype),
            &t.shape,
            data.len() as u64,
            t.data.len() as u64,
            crc,
        );
        entries.insert(key, entry);
        data.extend_from_slice(&t.data);
    }
    let (graph_bytes, graph_crc) = strings::encode_strings(&[&graph]);
    let graph_entry = encode_entry(DT_STRING, &[], data.len() as u64, graph_bytes.len() as u64, graph_crc);
    entries.insert(OBJECT_GRAPH_KEY.to_string(), graph_entry);
    data.extend_from_slice(&graph_bytes);

    let mut table = TableBuilder::new();
    let invalid = |why: String| CheckpointError::Invalid(format!("cannot build the index: {why}"));
    table.add(b"", &encode_header()).map_err(invalid)?;
    for (key, entry) in &entries {
        table.add(key.as_bytes(), entry).map_err(invalid)?;
    }
    Ok((table.finish().map_err(invalid)?, data))
}

/// A tensor TF can read back: numeric, bytes matching dtype and shape, dims that fit `int64`.
fn check_tensor(key: &str, t: &RawTensor) -> Result<()> {
    if t.dtype == StoredDtype::String {
        return Err(CheckpointError::Invalid(format!(
            "'{key}': string tensors cannot be written as variables"
        )));
    }
    if t.shape.iter().any(|&d| i64::try_from(d).is_err()) {
        return Err(CheckpointError::Invalid(format!(
            "'{key}': shape {:?} has a dimension beyond int64",
            t.shape
        )));
    }
    if checked_byte_len(t.dtype, &t.shape) != Some(t.data.len()) {
        return Err(CheckpointError::Invalid(format!(
            "'{key}': {} bytes do not hold a {} tensor of shape {:?}",
            t.data.len(),
            t.dtype,
            t.shape
        )));
    }
    Ok(())
}

/// [`encode_bundle`], then writes `PREFIX.data-00000-of-00001` and `PREFIX.index` so that a
/// crash at any point never pairs an index with data it does not describe: both files are
/// written and fsynced under temporary names first, then an older index is removed, the data
/// renamed into place, and the index renamed last. A present index therefore always describes
/// the data beside it. Creates the parent directories.
pub fn write_bundle(prefix: &Path, variables: &[BundleVariable]) -> Result<()> {
    let (index, data) = encode_bundle(variables)?;
    let index_file = index_path(prefix);
    let data = stage(&data_path(prefix, 0, 1), &data)?;
    let index = stage(&index_file, &index)?;
    remove_durable(&index_file)?;
    data.commit()?;
    index.commit()
}
