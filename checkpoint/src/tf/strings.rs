//! DT_STRING tensors in the data file (spec §2):
//! `varint64 len_0 … len_{N-1} ‖ u32le masked_crc(lengths) ‖ bytes_0 … bytes_{N-1}`.
//!
//! The length checksum is a CRC32C over each length as a fixed-width integer (u32 LE, or u64 LE
//! above `u32::MAX`), not over the varints. The entry's CRC continues that same running CRC over
//! the 4 stored checksum bytes and then all string bytes.

use ferroflow_wire::{mask_crc, put_varint, read_varint64, WireResult};

/// Extends a CRC with one length as TF's `WriteStringTensor` checksums it.
fn crc_length(crc: u32, len: u64) -> u32 {
    match u32::try_from(len) {
        Ok(small) => crc32c::crc32c_append(crc, &small.to_le_bytes()),
        Err(_) => crc32c::crc32c_append(crc, &len.to_le_bytes()),
    }
}

/// The encoded tensor and its masked entry CRC.
pub(crate) fn encode_strings(strings: &[&[u8]]) -> (Vec<u8>, u32) {
    let mut out = Vec::new();
    let mut crc = 0;
    for s in strings {
        put_varint(&mut out, s.len() as u64);
        crc = crc_length(crc, s.len() as u64);
    }
    let length_crc = mask_crc(crc).to_le_bytes();
    out.extend_from_slice(&length_crc);
    crc = crc32c::crc32c_append(crc, &length_crc);
    for s in strings {
        out.extend_from_slice(s);
        crc = crc32c::crc32c_append(crc, s);
    }
    (out, mask_crc(crc))
}

/// Decodes `count` strings from exactly `bytes`, checking both CRCs against the stored ones.
///
/// Allocation is bounded by `bytes`: every string needs at least one length byte, so a `count`
/// above `bytes.len()` is refused before anything is reserved.
pub(crate) fn decode_strings(bytes: &[u8], count: usize, entry_crc: u32) -> WireResult<Vec<Vec<u8>>> {
    if count > bytes.len() {
        return Err(format!("{count} strings cannot fit in {} bytes", bytes.len()));
    }
    let mut lengths = Vec::with_capacity(count);
    let mut pos = 0;
    let mut crc = 0;
    let mut total = 0u64;
    for i in 0..count {
        let len = read_varint64(bytes, &mut pos).map_err(|e| format!("length of string {i}: {e}"))?;
        crc = crc_length(crc, len);
        total = total.saturating_add(len);
        lengths.push(len);
    }
    let stored = bytes.get(pos..pos + 4).ok_or("truncated before the length checksum")?;
    let stored_crc = u32::from_le_bytes([stored[0], stored[1], stored[2], stored[3]]);
    if mask_crc(crc) != stored_crc {
        return Err("string length checksum mismatch".into());
    }
    crc = crc32c::crc32c_append(crc, stored);
    pos += 4;
    let body = &bytes[pos..];
    if total != body.len() as u64 {
        return Err(format!(
            "the lengths add up to {total} bytes but {} bytes of strings are stored",
            body.len()
        ));
    }
    crc = crc32c::crc32c_append(crc, body);
    if mask_crc(crc) != entry_crc {
        return Err(format!(
            "checksum mismatch (stored {entry_crc:08x}, computed {:08x})",
            mask_crc(crc)
        ));
    }
    // Every length fits in the body now, so the slicing below stays in bounds.
    let mut strings = Vec::with_capacity(count);
    let mut at = 0usize;
    for len in lengths {
        let len = len as usize;
        strings.push(body[at..at + len].to_vec());
        at += len;
    }
    Ok(strings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip() {
        let long = vec![b'x'; 300];
        let cases: [&[&[u8]]; 4] = [&[], &[b""], &[b"abc", b"", "ü".as_bytes()], &[&long, b"y"]];
        for strings in cases {
            let (bytes, crc) = encode_strings(strings);
            assert_eq!(decode_strings(&bytes, strings.len(), crc).unwrap(), strings);
            assert!(decode_strings(&bytes, strings.len(), crc ^ 1).is_err());
            assert!(decode_strings(&bytes, strings.len() + 1, crc).is_err());
            for n in 0..bytes.len() {
                assert!(decode_strings(&bytes[..n], strings.len(), crc).is_err());
            }
        }
    }

    #[test]
    fn hostile_counts_and_lengths_are_refused() {
        assert!(decode_strings(&[1, 2, 3], usize::MAX, 0).is_err());
        // A length of 2^62 with a matching length checksum still cannot fit.
        let mut bytes = Vec::new();
        put_varint(&mut bytes, 1 << 62);
        bytes.extend_from_slice(&mask_crc(crc_length(0, 1 << 62)).to_le_bytes());
        bytes.extend_from_slice(b"abc");
        let e = decode_strings(&bytes, 1, 0).unwrap_err();
        assert!(e.contains("add up"), "{e}");
    }
}
