//! # ferroflow-wire
//!
//! The framing of TensorFlow's files, shared by ferroflow's writers and readers of them (the
//! TensorBoard event files of `ferroflow-graph`, the tensor bundles of
//! `ferroflow-checkpoint`): the protobuf wire format, written ([`put_varint_field`], ...) and
//! read without trusting a length ([`for_each_field`], [`read_varint64`], ...), and the
//! masked CRC32C of TFRecord and LevelDB files ([`masked_crc32c`]).
//!
//! ```
//! use ferroflow_wire::{for_each_field, put_bytes_field, put_varint_field, Wire};
//! let mut m = Vec::new();
//! put_varint_field(&mut m, 1, 150);
//! put_bytes_field(&mut m, 2, b"hi");
//! assert_eq!(m, [0x08, 0x96, 0x01, 0x12, 0x02, b'h', b'i']);
//! let mut fields = Vec::new();
//! for_each_field(&m, |f, v| Ok(fields.push((f, v))))?;
//! assert_eq!(fields, [(1, Wire::Varint(150)), (2, Wire::Bytes(b"hi"))]);
//! # Ok::<(), String>(())
//! ```
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod crc;
mod decode;
mod encode;

pub use crc::{crc32c, mask_crc, masked_crc32c};
pub use decode::{for_each_field, read_varint32, read_varint64, Wire, WireResult};
pub use encode::{
    put_bytes_field, put_fixed32_field, put_fixed64_field, put_tag, put_varint, put_varint_field, WIRE_BYTES,
    WIRE_FIXED32, WIRE_FIXED64, WIRE_VARINT,
};
