//! # ferroflow-checkpoint
//!
//! Save, list and restore variables by object path (`model/dense_1/w`), in formats other
//! tools read — the Rust side of `tf.train.Checkpoint`, `tf.train.list_variables`,
//! `tf.train.CheckpointManager` and Keras' `save_weights`.
//!
//! * [`Checkpoint`] tracks named [`Trackable`] objects (modules, optimizers, variables):
//!   [`write`](Checkpoint::write) to exactly a path, [`save`](Checkpoint::save) numbered
//!   checkpoints, [`read`](Checkpoint::read) / [`restore`](Checkpoint::restore) them back with
//!   a [`LoadStatus`] (`assert_consumed`, `assert_existing_objects_matched`, `expect_partial`).
//!   Dtype and shape are checked per variable and every mismatch is reported at once, before
//!   anything is assigned.
//! * [`list_variables`] and [`load_variable`] inspect a checkpoint without a model.
//! * [`CheckpointManager`] keeps the last `max_to_keep` checkpoints of a directory and the
//!   `checkpoint` state file TensorFlow also reads ([`latest_checkpoint`]).
//! * [`Weights`] adds `save_weights` / `load_weights` to every trackable object.
//!
//! ## Formats
//!
//! The format follows the path, in the API and in the `ferroflow` command-line tool: a path
//! ending in `.safetensors` is a [safetensors] file (the default of the
//! examples; Python's `safetensors`, numpy and Hugging Face tools read it, and its metadata
//! carries `format_version` and `save_counter`); any other path is a TensorFlow checkpoint
//! prefix (`PATH.index` + `PATH.data-00000-of-00001`, see [`tf`]) that
//! `tf.train.Checkpoint.restore` accepts. TensorFlow keys such as
//! `model/dense_1/w/.ATTRIBUTES/VARIABLE_VALUE` appear as object paths (`model/dense_1/w`).
//! Files written by other tools load too: float16 and bfloat16 values load as float32,
//! 8- and 16-bit integers as int32, uint32 as int64 (see [`StoredDtype::load_dtype`]).
//!
//! ## Safety
//!
//! Every write goes to a temporary file in the same directory, is fsynced, then renamed
//! ([`atomic`]); a crash never leaves a damaged checkpoint under the final name. Readers check
//! every length and offset against the file size before allocating, bound header sizes, check
//! dtype × shape against byte ranges and verify CRCs where the format has them; a corrupt or
//! hostile file is an [`CheckpointError`] naming the file and the problem, never a panic.
//!
//! ```
//! # fn main() -> ferroflow_checkpoint::Result<()> {
//! use ferroflow_checkpoint::{list_variables, Checkpoint};
//! use ferroflow_tensor_core::{Tensor, Variable};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let w = Variable::new("w", Tensor::new([[1.0f32, 2.0], [3.0, 4.0]]))?;
//! let b = Variable::new("b", Tensor::new([0.5f32, 0.5]))?;
//! let model = vec![w, b];
//!
//! // TensorFlow format (a prefix) and safetensors (by extension), same API.
//! for path in [dir.path().join("model"), dir.path().join("model.safetensors")] {
//!     let written = Checkpoint::new().track("model", &model)?.write(&path)?;
//!     let names: Vec<String> = list_variables(&written)?.into_iter().map(|i| i.name).collect();
//!     assert_eq!(names, ["model/0", "model/1"]);
//!
//!     let fresh = vec![
//!         Variable::new("w", Tensor::zeros(&[2, 2], ferroflow_tensor_core::DType::F32)?)?,
//!         Variable::new("b", Tensor::zeros(&[2], ferroflow_tensor_core::DType::F32)?)?,
//!     ];
//!     Checkpoint::new().track("model", &fresh)?.read(&written)?.assert_consumed()?;
//!     assert_eq!(fresh[0].value().to_vec::<f32>()?, vec![1.0, 2.0, 3.0, 4.0]);
//! }
//! # Ok(()) }
//! ```
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

pub mod atomic;
mod checkpoint;
pub mod error;
pub mod format;
mod manager;
pub mod raw;
mod read_limited;
pub mod safetensors;
pub mod state;
mod status;
pub mod tf;
mod weights;

pub use checkpoint::Checkpoint;
pub use error::{CheckpointError, Result};
pub use ferroflow_tensor_core::Trackable;
pub use format::{list_variables, load_variable, CheckpointReader, Format};
pub use manager::CheckpointManager;
pub use raw::{RawTensor, StoredDtype, TensorInfo};
pub use state::latest_checkpoint;
pub use status::LoadStatus;
pub use weights::Weights;
