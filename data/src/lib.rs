//! # ferroflow-data
//!
//! Input pipelines in the manner of `tf.data`, for training with ferroflow:
//!
//! * [`Dataset`] — [`from_tensor_slices`](Dataset::from_tensor_slices),
//!   [`shuffle`](Dataset::shuffle), [`batch`](Dataset::batch), [`repeat`](Dataset::repeat),
//!   [`map`](Dataset::map), [`filter`](Dataset::filter), [`take`](Dataset::take),
//!   [`skip`](Dataset::skip), [`shard`](Dataset::shard) (one worker's part), [`prefetch`](Dataset::prefetch) on a background thread,
//!   [`prefetch_to_device`](Dataset::prefetch_to_device) (host-to-device copies ahead of the step), and
//!   [`cardinality`](Dataset::cardinality). Iterating copies at most a batch at a time.
//! * Combining and reshaping: [`range`](Dataset::range), [`zip`](Dataset::zip),
//!   [`concatenate`](Dataset::concatenate), [`enumerate`](Dataset::enumerate),
//!   [`flat_map`](Dataset::flat_map), [`interleave`](Dataset::interleave),
//!   [`map_parallel`](Dataset::map_parallel) (`num_parallel_calls`),
//!   [`window`](Dataset::window), [`unbatch`](Dataset::unbatch),
//!   [`padded_batch`](Dataset::padded_batch) and [`cache`](Dataset::cache).
//! * Loaders: numeric CSV ([`read_csv`]), NumPy `.npy` / `.npz` ([`read_npy`], [`read_npz`]),
//!   each checking every length it reads against the bytes present.
//! * [`datasets`]: handwritten digits and iris, shipped inside the crate, with a seeded,
//!   stratified [`Split`].
//!
//! ```
//! use ferroflow_data::{datasets, Dataset, Split};
//!
//! let iris = datasets::iris()?;
//! let (train, _test) = iris.split(Split::test_fraction(0.2).seed(0))?;
//! let ds = Dataset::from_tensor_slices((&train.x, &train.y))?.shuffle(120, 1).batch(32);
//! let sizes: Vec<usize> = ds.iter().map(|b| Ok(b?[0].dims()[0])).collect::<ferroflow_tensor_core::Result<_>>()?;
//! assert_eq!(sizes, vec![32, 32, 32, 24]);
//! # Ok::<(), ferroflow_tensor_core::Error>(())
//! ```
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod cache;
mod combine;
mod components;
pub mod csv;
mod dataset;
pub mod datasets;
pub mod npy;
mod padded_batch;
mod parallel_map;
mod range;
mod rng;
pub mod rows;
mod run_ahead;
mod stages;
mod windows;

pub use combine::Interleave;
pub use components::{Component, Element, IntoComponents};
pub use csv::{parse_csv, read_csv, CsvOptions, Table};
pub use dataset::{Batch, Cardinality, Dataset, DatasetIter};
pub use datasets::{Labeled, Split};
pub use npy::{read_npy, read_npz, write_npy, write_npz};
pub use padded_batch::PaddedBatch;
pub use rng::{derive_seed, permutation, SplitMix64};
pub use run_ahead::{run_ahead, MAX_AHEAD};
pub use windows::Window;
