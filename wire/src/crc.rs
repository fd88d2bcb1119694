//! The checksums of TFRecord and LevelDB files: CRC32C, stored masked.

/// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), from the `crc32c` crate (hardware
/// instructions where the CPU has them).
///
/// ```
/// assert_eq!(ferroflow_wire::crc32c(b"123456789"), 0xE306_9283);
/// ```
pub fn crc32c(bytes: &[u8]) -> u32 {
    ::crc32c::crc32c(bytes)
}

/// TFRecord/LevelDB CRC masking: storing a CRC of data that itself holds CRCs is
/// error-prone, so the stored value is rotated right by 15 and offset by 0xA282EAD8.
pub fn mask_crc(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(0xA282_EAD8)
}

/// The masked CRC32C of `bytes`, as TFRecord and LevelDB files store it.
pub fn masked_crc32c(bytes: &[u8]) -> u32 {
    mask_crc(crc32c(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_golden_vectors() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
        assert_eq!(masked_crc32c(b""), 0xA282_EAD8);
        assert_eq!(crc32c(&[0u8; 8]), 0x8C28_B28A);
        assert_eq!(masked_crc32c(&[0u8; 8]), 0x0798_0329);
    }
}
