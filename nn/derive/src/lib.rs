//! # ferroflow-nn-derive
//!
//! `#[derive(Module)]` for ferroflow-nn: writes the variable tracking of a struct from its
//! field names, the way `tf.Module` tracks attributes. The derive lands with the nn crate's
//! module system; this crate reserves its place in the workspace.
#![warn(missing_docs)]
