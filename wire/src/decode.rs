//! Reading protobuf fields. Decoding never trusts a length: every varint is bounded (10
//! bytes, 5 for 32-bit ones) and every length-delimited field is checked against the bytes
//! that remain. Errors are plain strings that the caller prefixes with the file name.

use crate::{WIRE_BYTES, WIRE_FIXED32, WIRE_FIXED64, WIRE_VARINT};

/// A decoding error: a message for the caller to attach to a file.
pub type WireResult<T> = std::result::Result<T, String>;

/// Reads a varint of at most `max_bytes` bytes at `*pos` and advances `*pos` past it.
fn read_varint(buf: &[u8], pos: &mut usize, max_bytes: usize) -> WireResult<u64> {
    let mut value = 0u64;
    for i in 0..max_bytes {
        let Some(&byte) = buf.get(*pos) else {
            return Err("truncated varint".into());
        };
        *pos += 1;
        let bits = u64::from(byte & 0x7f);
        // The tenth byte of a 64-bit varint has room for the top bit only.
        if i == 9 && bits > 1 {
            return Err("varint overflows 64 bits".into());
        }
        value |= bits << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(format!("varint longer than {max_bytes} bytes"))
}

/// A 64-bit varint (protobuf integers, block handles).
pub fn read_varint64(buf: &[u8], pos: &mut usize) -> WireResult<u64> {
    read_varint(buf, pos, 10)
}

/// A 32-bit varint (table entry lengths); values above `u32::MAX` are rejected.
pub fn read_varint32(buf: &[u8], pos: &mut usize) -> WireResult<u32> {
    let v = read_varint(buf, pos, 5)?;
    u32::try_from(v).map_err(|_| format!("varint32 value {v} overflows 32 bits"))
}

/// One decoded field value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2: bytes, string or embedded message.
    Bytes(&'a [u8]),
    /// Wire type 5.
    Fixed32(u32),
}

impl<'a> Wire<'a> {
    /// The value of a varint field (`what` names it in the error).
    pub fn varint(self, what: &str) -> WireResult<u64> {
        match self {
            Wire::Varint(v) => Ok(v),
            _ => Err(format!("{what}: expected a varint, found {}", self.kind())),
        }
    }

    /// A protobuf `int32`/enum: the low 32 bits of the varint, as protobuf itself truncates.
    pub fn int32(self, what: &str) -> WireResult<i32> {
        Ok(self.varint(what)? as u32 as i32)
    }

    /// A protobuf `int64` (two's complement in the varint).
    pub fn int64(self, what: &str) -> WireResult<i64> {
        Ok(self.varint(what)? as i64)
    }

    /// The payload of a length-delimited field.
    pub fn bytes(self, what: &str) -> WireResult<&'a [u8]> {
        match self {
            Wire::Bytes(b) => Ok(b),
            _ => Err(format!(
                "{what}: expected a length-delimited field, found {}",
                self.kind()
            )),
        }
    }

    /// The value of a `fixed32` field.
    pub fn fixed32(self, what: &str) -> WireResult<u32> {
        match self {
            Wire::Fixed32(v) => Ok(v),
            _ => Err(format!("{what}: expected a fixed32, found {}", self.kind())),
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Wire::Varint(_) => "a varint",
            Wire::Fixed64(_) => "a fixed64",
            Wire::Bytes(_) => "a length-delimited field",
            Wire::Fixed32(_) => "a fixed32",
        }
    }
}

/// Calls `f(field_number, value)` for every field of the message `buf`, in order.
///
/// Unknown fields of wire types 0, 1, 2 and 5 reach `f`, which ignores them; groups (3, 4) and
/// the undefined types 6 and 7 are errors, as are field number 0 and any truncation.
pub fn for_each_field<'a>(buf: &'a [u8], mut f: impl FnMut(u32, Wire<'a>) -> WireResult<()>) -> WireResult<()> {
    let mut pos = 0;
    while pos < buf.len() {
        let tag = read_varint(buf, &mut pos, 5)?;
        let field = tag >> 3;
        if field == 0 || field > u64::from(u32::MAX >> 3) {
            return Err(format!("invalid protobuf field number {field}"));
        }
        let value = match tag & 7 {
            WIRE_VARINT => Wire::Varint(read_varint64(buf, &mut pos)?),
            WIRE_FIXED64 => Wire::Fixed64(u64::from_le_bytes(take_array(buf, &mut pos)?)),
            WIRE_FIXED32 => Wire::Fixed32(u32::from_le_bytes(take_array(buf, &mut pos)?)),
            WIRE_BYTES => {
                let len = read_varint64(buf, &mut pos)?;
                let remaining = buf.len() - pos;
                let len = usize::try_from(len)
                    .ok()
                    .filter(|&n| n <= remaining)
                    .ok_or_else(|| format!("field {field} claims {len} bytes, only {remaining} remain"))?;
                let bytes = &buf[pos..pos + len];
                pos += len;
                Wire::Bytes(bytes)
            }
            other => return Err(format!("field {field} has unsupported wire type {other}")),
        };
        f(field as u32, value)?;
    }
    Ok(())
}

/// The next `N` bytes of `buf` at `*pos` (a fixed-width field).
fn take_array<const N: usize>(buf: &[u8], pos: &mut usize) -> WireResult<[u8; N]> {
    let bytes = buf
        .get(*pos..)
        .and_then(|rest| rest.get(..N))
        .ok_or_else(|| format!("truncated {}-byte fixed field", N))?;
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    *pos += N;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{mask_crc, put_bytes_field, put_fixed32_field, put_varint, put_varint_field};

    #[test]
    fn varints_round_trip_and_reject_overlong_input() {
        for v in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            let mut pos = 0;
            assert_eq!(read_varint64(&buf, &mut pos), Ok(v));
            assert_eq!(pos, buf.len());
        }
        let mut pos = 0;
        assert!(read_varint64(&[0xff; 10], &mut pos).is_err()); // eleven bytes or 70 bits
        let mut pos = 0;
        assert!(read_varint64(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], &mut pos).is_err());
        let mut pos = 0;
        assert!(read_varint32(&[0xff, 0xff, 0xff, 0xff, 0x1f], &mut pos).is_err()); // > u32::MAX
        let mut pos = 0;
        assert!(read_varint32(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01], &mut pos).is_err()); // 6 bytes
        let mut pos = 0;
        assert!(read_varint64(&[0x80], &mut pos).is_err());
    }

    #[test]
    fn fields_are_decoded_and_unknown_ones_skipped() {
        let mut msg = Vec::new();
        put_varint_field(&mut msg, 1, 7);
        put_bytes_field(&mut msg, 2, b"abc");
        put_fixed32_field(&mut msg, 6, 0xdead_beef);
        msg.extend_from_slice(&[0x39, 1, 2, 3, 4, 5, 6, 7, 8]); // field 7, fixed64
        let mut seen = Vec::new();
        for_each_field(&msg, |f, v| {
            seen.push((f, v));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            [
                (1, Wire::Varint(7)),
                (2, Wire::Bytes(b"abc")),
                (6, Wire::Fixed32(0xdead_beef)),
                (7, Wire::Fixed64(0x0807_0605_0403_0201))
            ]
        );
        for bad in [
            &[0x0b][..],
            &[0x0e, 0],
            &[0x12, 4, 1, 2],
            &[0x35, 1, 2],
            &[0x00, 0],
            &[0x08],
        ] {
            assert!(for_each_field(bad, |_, _| Ok(())).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn crc_mask_matches_leveldb() {
        // Values from the fixture: the empty metaindex block "00000000 01000000" + type 0.
        let c = crate::crc32c(&[0, 0, 0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(mask_crc(c).to_le_bytes(), [0xc0, 0xf2, 0xa1, 0xb0]);
    }
}
