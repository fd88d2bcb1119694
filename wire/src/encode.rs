//! Writing protobuf fields.

/// Wire type of varint fields (int32/int64/uint/bool/enum).
pub const WIRE_VARINT: u64 = 0;
/// Wire type of 64-bit fields (fixed64, double).
pub const WIRE_FIXED64: u64 = 1;
/// Wire type of length-delimited fields (bytes, string, embedded message).
pub const WIRE_BYTES: u64 = 2;
/// Wire type of 32-bit fields (fixed32, float).
pub const WIRE_FIXED32: u64 = 5;

/// Appends `v` as a varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a field tag.
pub fn put_tag(out: &mut Vec<u8>, field: u32, wire_type: u64) {
    put_varint(out, (u64::from(field) << 3) | wire_type);
}

/// Appends a varint field (negative int32/int64 values are passed sign-extended, taking ten
/// bytes, as protobuf does).
pub fn put_varint_field(out: &mut Vec<u8>, field: u32, value: u64) {
    put_tag(out, field, WIRE_VARINT);
    put_varint(out, value);
}

/// Appends a length-delimited field (bytes, string or embedded message).
pub fn put_bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_tag(out, field, WIRE_BYTES);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Appends a `fixed32` (or, with `to_bits`, `float`) field.
pub fn put_fixed32_field(out: &mut Vec<u8>, field: u32, value: u32) {
    put_tag(out, field, WIRE_FIXED32);
    out.extend_from_slice(&value.to_le_bytes());
}

/// Appends a `fixed64` (or, with `to_bits`, `double`) field.
pub fn put_fixed64_field(out: &mut Vec<u8>, field: u32, value: u64) {
    put_tag(out, field, WIRE_FIXED64);
    out.extend_from_slice(&value.to_le_bytes());
}
