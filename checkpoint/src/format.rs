//! One reader and one writer over both formats. The format follows the path everywhere: a
//! path ending in `.safetensors` is a safetensors file; any other path is a TensorFlow
//! checkpoint prefix (`PATH.index` + `PATH.data-…`). Names are object paths
//! (`model/dense_1/w`) in both: TensorFlow keys such as
//! `model/dense_1/w/.ATTRIBUTES/VARIABLE_VALUE` are mapped to and from them here.

use crate::error::{CheckpointError, Result};
use crate::raw::{RawTensor, StoredDtype, TensorInfo};
use crate::safetensors::{self, SafetensorsReader};
use crate::state::latest_checkpoint;
use crate::tf::{self, BundleReader, BundleVariable};
use ferroflow_tensor_core::{Tensor, Variable};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Object path under which a checkpoint stores how many times `save` was called.
pub const SAVE_COUNTER: &str = "save_counter";

/// Version of the ferroflow layout, recorded in safetensors metadata.
pub const FORMAT_VERSION: &str = "1";

/// The two on-disk formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One `.safetensors` file.
    Safetensors,
    /// A TensorFlow V2 checkpoint: `PREFIX.index` and `PREFIX.data-00000-of-00001`.
    TensorFlow,
}

impl Format {
    /// The format a path names: `.safetensors` files are safetensors, anything else a
    /// TensorFlow prefix.
    pub fn for_path(path: &Path) -> Format {
        match path.extension() {
            Some(e) if e == "safetensors" => Format::Safetensors,
            _ => Format::TensorFlow,
        }
    }
}

enum Inner {
    Safetensors(SafetensorsReader),
    Tf {
        reader: BundleReader,
        keys: BTreeMap<String, String>,
    },
}

/// An open checkpoint of either format. Opening reads only the header or index; values are
/// read one at a time, on demand.
pub struct CheckpointReader {
    path: PathBuf,
    inner: Inner,
}

impl CheckpointReader {
    /// Opens the checkpoint at `path`: a `.safetensors` file, a TensorFlow prefix, or a
    /// directory whose `checkpoint` state file names the newest checkpoint.
    pub fn open(path: impl AsRef<Path>) -> Result<CheckpointReader> {
        let mut path = path.as_ref().to_path_buf();
        if path.is_dir() {
            path = latest_checkpoint(&path)?.ok_or_else(|| CheckpointError::NotFound {
                path: path.clone(),
                why: "a directory without a 'checkpoint' state file".into(),
            })?;
        }
        let inner = match Format::for_path(&path) {
            Format::Safetensors => Inner::Safetensors(SafetensorsReader::open(&path)?),
            Format::TensorFlow => {
                let reader = BundleReader::open(&path)?;
                // Object path -> table key, for every value stored as a variable.
                let keys = reader
                    .entries()
                    .filter(|(k, _)| *k != tf::OBJECT_GRAPH_KEY)
                    .map(|(k, _)| {
                        (
                            tf::object_path(k).map(|s| s.join("/")).unwrap_or_else(|| k.to_string()),
                            k.to_string(),
                        )
                    })
                    .collect();
                Inner::Tf { reader, keys }
            }
        };
        Ok(CheckpointReader { path, inner })
    }

    /// The checkpoint's path (the file or prefix, after resolving a directory).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Which format it is in.
    pub fn format(&self) -> Format {
        match self.inner {
            Inner::Safetensors(_) => Format::Safetensors,
            Inner::Tf { .. } => Format::TensorFlow,
        }
    }

    /// Every stored variable value, sorted by object path. Unlike `tf.train.list_variables`,
    /// the bookkeeping entries are left out: the save counter (see
    /// [`CheckpointReader::save_counter`]), TensorFlow's object graph and other string entries.
    pub fn list(&self) -> Vec<TensorInfo> {
        match &self.inner {
            Inner::Safetensors(r) => r.infos(),
            Inner::Tf { reader, keys } => keys
                .iter()
                .filter(|(name, _)| name.as_str() != SAVE_COUNTER)
                .filter_map(|(name, key)| {
                    let e = reader.entry(key)?;
                    // String entries are metadata (Keras object configs), not variable values.
                    (e.dtype != StoredDtype::String).then(|| TensorInfo {
                        name: name.clone(),
                        dtype: e.dtype,
                        shape: e.shape.clone(),
                    })
                })
                .collect(),
        }
    }

    /// Stored keys left out because their dtype has no ferroflow type (TensorFlow complex or
    /// variant values), with the dtype's name.
    pub fn skipped(&self) -> &[(String, String)] {
        match &self.inner {
            Inner::Safetensors(_) => &[],
            Inner::Tf { reader, .. } => reader.skipped(),
        }
    }

    /// How many times `save` had been called when this checkpoint was written; `None` for a
    /// checkpoint made by `write`.
    pub fn save_counter(&self) -> Result<Option<i64>> {
        let counter = match &self.inner {
            Inner::Safetensors(r) => match r.metadata().get(SAVE_COUNTER) {
                None => None,
                Some(s) => Some(s.parse().map_err(|_| {
                    CheckpointError::corrupt(&self.path, format!("metadata save_counter '{s}' is not an integer"))
                })?),
            },
            Inner::Tf { keys, .. } if !keys.contains_key(SAVE_COUNTER) => None,
            Inner::Tf { .. } => Some(
                self.load(SAVE_COUNTER)?
                    .cast(ferroflow_tensor_core::DType::I64)?
                    .to_scalar()?,
            ),
        };
        // `save` only ever counts up from 0.
        match counter {
            Some(n) if n < 0 => Err(CheckpointError::corrupt(
                &self.path,
                format!("save_counter {n} is negative"),
            )),
            _ => Ok(counter),
        }
    }

    /// The stored bytes of `name`: an object path, or for TensorFlow checkpoints also the raw
    /// table key.
    pub fn read_raw(&self, name: &str) -> Result<RawTensor> {
        match &self.inner {
            Inner::Safetensors(r) => r.read(name),
            Inner::Tf { reader, keys } => reader.read(keys.get(name).map(String::as_str).unwrap_or(name)),
        }
    }

    /// The value stored under `name` as a tensor (narrow dtypes widened, see
    /// [`StoredDtype::load_dtype`]).
    pub fn load(&self, name: &str) -> Result<Tensor> {
        self.read_raw(name)?.to_tensor(&self.path, name)
    }
}

/// Name, shape and dtype of every value stored at `path` (`tf.train.list_variables`), sorted
/// by object path, without reading the values.
///
/// ```
/// # fn main() -> ferroflow_checkpoint::Result<()> {
/// use ferroflow_checkpoint::{list_variables, Checkpoint};
/// use ferroflow_tensor_core::{Tensor, Variable};
/// let dir = tempfile::tempdir().unwrap();
/// let v = Variable::new("v", Tensor::new([1.0f32, 2.0]))?;
/// let path = Checkpoint::new().track("v", &v)?.write(dir.path().join("w.safetensors"))?;
/// let listed = list_variables(&path)?;
/// assert_eq!((listed[0].name.as_str(), listed[0].shape.as_slice()), ("v", &[2][..]));
/// # Ok(()) }
/// ```
pub fn list_variables(path: impl AsRef<Path>) -> Result<Vec<TensorInfo>> {
    Ok(CheckpointReader::open(path)?.list())
}

/// The value stored under `name` at `path` (`tf.train.load_variable`).
pub fn load_variable(path: impl AsRef<Path>, name: &str) -> Result<Tensor> {
    CheckpointReader::open(path)?.load(name)
}

/// Writes `values` (object path → value) to `path` in the format the path names, with the
/// save counter when there is one. Atomic: the final name only ever holds a whole checkpoint.
pub fn write_values(path: &Path, values: &[(String, RawTensor, String)], save_counter: Option<i64>) -> Result<()> {
    let counter = save_counter.map(|n| RawTensor {
        dtype: StoredDtype::I64,
        shape: vec![],
        data: n.to_le_bytes().to_vec(),
    });
    match Format::for_path(path) {
        Format::Safetensors => {
            let mut meta = BTreeMap::from([
                ("framework".to_string(), "ferroflow".to_string()),
                ("format_version".to_string(), FORMAT_VERSION.to_string()),
            ]);
            if let Some(n) = save_counter {
                meta.insert(SAVE_COUNTER.to_string(), n.to_string());
            }
            let tensors: Vec<(&str, &RawTensor)> = values.iter().map(|(n, t, _)| (n.as_str(), t)).collect();
            safetensors::write(path, &tensors, &meta)
        }
        Format::TensorFlow => {
            // TensorFlow adds the counter first; the order only affects the data file layout.
            let mut vars = Vec::with_capacity(values.len() + 1);
            if let Some(c) = &counter {
                vars.push(BundleVariable {
                    path: vec![SAVE_COUNTER.into()],
                    full_name: SAVE_COUNTER.into(),
                    tensor: c,
                });
            }
            for (name, t, full_name) in values {
                vars.push(BundleVariable {
                    path: name.split('/').map(str::to_string).collect(),
                    full_name: full_name.clone(),
                    tensor: t,
                });
            }
            tf::write_bundle(path, &vars)
        }
    }
}

/// The current values of `vars` as `(path, bytes, variable name)`, ready for [`write_values`]
/// (read without recording: a save under a tape or a trace is not part of the computation).
pub fn snapshot(vars: &[(String, Variable)]) -> Result<Vec<(String, RawTensor, String)>> {
    vars.iter()
        .map(|(p, v)| Ok((p.clone(), RawTensor::from_tensor(&v.value())?, v.name().to_string())))
        .collect()
}

/// Deletes the files of the checkpoint at `path` (the file, or the prefix's index and data
/// shards). Missing files are not an error.
pub fn remove_checkpoint(path: &Path) -> Result<()> {
    let rm = |p: PathBuf| match std::fs::remove_file(&p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(CheckpointError::io(&p, e)),
        _ => Ok(()),
    };
    match Format::for_path(path) {
        Format::Safetensors => rm(path.to_path_buf()),
        Format::TensorFlow => {
            let shards = BundleReader::open(path).map(|r| r.num_shards()).unwrap_or(1);
            // The index goes first: without it the remains are not a checkpoint any more.
            rm(tf::index_path(path))?;
            for s in 0..shards {
                rm(tf::data_path(path, s, shards))?;
            }
            Ok(())
        }
    }
}
