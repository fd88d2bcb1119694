//! NumPy's `.npy` and `.npz` files. Decoding is `ndarray-npy`'s; the header's claims (header
//! length, shape × item size, a zip entry's size) are checked against the bytes actually
//! present first, so a truncated or hostile file is an error, never a huge allocation.

use ferroflow_tensor_core::{memory_limit, DType, Error, Result, Tensor};
use ndarray::ArrayD;
use ndarray_npy::npy::header::Header;
use ndarray_npy::{ReadNpyExt, ReadableElement, WritableElement, WriteNpyExt};
use std::io::{Cursor, Read, Write};
use std::path::Path;

const MAGIC: &[u8] = b"\x93NUMPY";

/// Reads a `.npy` file into a tensor. float32/float64, int32/int64 and bool load as
/// themselves; 8- and 16-bit integers load as int32 and uint32 as int64 (as checkpoints do).
///
/// ```
/// use ferroflow_data::{read_npy, write_npy};
/// use ferroflow_tensor_core::Tensor;
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("x.npy");
/// write_npy(&path, &Tensor::new([[1.0f32, 2.0], [3.0, 4.0]]))?;
/// assert_eq!(read_npy(&path)?.to_vec::<f32>()?, vec![1.0, 2.0, 3.0, 4.0]);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
pub fn read_npy(path: impl AsRef<Path>) -> Result<Tensor> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| file_error(path, e))?;
    decode_npy(&bytes).map_err(|e| in_file(path, e))
}

/// Reads every array of a `.npz` file (compressed or not), in the archive's order, named
/// as `numpy.savez` named them (without `.npy`).
pub fn read_npz(path: impl AsRef<Path>) -> Result<Vec<(String, Tensor)>> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|e| file_error(path, e))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| in_file(path, npz_error(e)))?;
    let mut out = Vec::with_capacity(archive.len().min(1024));
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| in_file(path, npz_error(e)))?;
        let name = entry.name().to_string();
        let declared = entry.size();
        if declared > memory_limit() as u64 {
            return Err(in_file(
                path,
                Error::ResourceExhausted {
                    op: "read_npz",
                    msg: format!("entry {name} claims {declared} bytes, more than this machine's memory"),
                },
            ));
        }
        let mut bytes = Vec::new();
        entry
            .by_ref()
            .take(declared)
            .read_to_end(&mut bytes)
            .map_err(|e| file_error(path, e))?;
        let tensor =
            decode_npy(&bytes).map_err(|e| in_file(path, Error::invalid("read_npz", format!("{name}: {e}"))))?;
        out.push((name.strip_suffix(".npy").unwrap_or(&name).to_string(), tensor));
    }
    Ok(out)
}

/// Writes a tensor as a `.npy` file (version 1.0, C order).
pub fn write_npy(path: impl AsRef<Path>, tensor: &Tensor) -> Result<()> {
    let path = path.as_ref();
    let bytes = encode_npy(tensor)?;
    std::fs::write(path, bytes).map_err(|e| file_error(path, e))
}

/// Writes named tensors as an uncompressed `.npz` file (`numpy.savez`).
pub fn write_npz(path: impl AsRef<Path>, arrays: &[(&str, &Tensor)]) -> Result<()> {
    let path = path.as_ref();
    let file = std::fs::File::create(path).map_err(|e| file_error(path, e))?;
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, t) in arrays {
        zip.start_file(format!("{name}.npy"), options)
            .map_err(|e| in_file(path, npz_error(e)))?;
        zip.write_all(&encode_npy(t)?).map_err(|e| file_error(path, e))?;
    }
    zip.finish().map_err(|e| in_file(path, npz_error(e)))?;
    Ok(())
}

/// The bytes of a `.npy` file holding `t`.
pub fn encode_npy(t: &Tensor) -> Result<Vec<u8>> {
    fn enc<T: ferroflow_tensor_core::Element + WritableElement>(t: &Tensor) -> Result<Vec<u8>> {
        let a = t.to_ndarray::<T>()?;
        let mut out = Vec::new();
        a.as_standard_layout()
            .write_npy(&mut out)
            .map_err(|e| Error::external("write_npy", e))?;
        Ok(out)
    }
    match t.dtype() {
        DType::F32 => enc::<f32>(t),
        DType::F64 => enc::<f64>(t),
        DType::I32 => enc::<i32>(t),
        DType::I64 => enc::<i64>(t),
        DType::Bool => enc::<bool>(t),
    }
}

/// Decodes the bytes of a `.npy` file.
pub fn decode_npy(bytes: &[u8]) -> Result<Tensor> {
    let header = checked_header(bytes)?;
    // A plain dtype is a quoted string (`'<f4'`); structured dtypes (lists) are refused below.
    let literal = header.header.type_descriptor.to_string();
    let descr = literal.trim_matches(|c| c == '\'' || c == '"').to_string();
    // The item size is the number after the byte-order character (`<f4`, `|b1`).
    let item: usize = descr
        .get(2..)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("unsupported dtype descriptor {descr:?}")))?;
    let elements = header
        .header
        .shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .and_then(|n| n.checked_mul(item))
        .ok_or_else(|| bad(format!("shape {:?} overflows", header.header.shape)))?;
    let available = bytes.len() - header.data_start;
    if elements > available {
        return Err(bad(format!(
            "shape {:?} of {descr} needs {elements} bytes of data, the file has {available}",
            header.header.shape
        )));
    }
    let kind = descr.get(1..2).unwrap_or("");
    match (kind, item) {
        ("f", 4) => read_as::<f32>(bytes),
        ("f", 8) => read_as::<f64>(bytes),
        ("i", 4) => read_as::<i32>(bytes),
        ("i", 8) => read_as::<i64>(bytes),
        ("b", 1) => read_as::<bool>(bytes),
        ("i", 1) => widen::<i8, i32>(bytes),
        ("u", 1) => widen::<u8, i32>(bytes),
        ("i", 2) => widen::<i16, i32>(bytes),
        ("u", 2) => widen::<u16, i32>(bytes),
        ("u", 4) => widen::<u32, i64>(bytes),
        _ => Err(bad(format!(
            "dtype {descr:?} is not supported (float32/64, int8-64, uint8-32, bool are)"
        ))),
    }
}

struct CheckedHeader {
    header: Header,
    data_start: usize,
}

/// Parses the header after checking that its length field fits the file.
fn checked_header(bytes: &[u8]) -> Result<CheckedHeader> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(bad("not a .npy file (no \\x93NUMPY magic)".into()));
    }
    let (len_size, len) = match bytes[6] {
        1 => (2, u16::from_le_bytes([bytes[8], bytes[9]]) as usize),
        2 | 3 if bytes.len() >= 12 => (
            4,
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
        ),
        v => return Err(bad(format!("unsupported .npy format version {v}"))),
    };
    let data_start = 8 + len_size + len;
    if data_start > bytes.len() {
        return Err(bad(format!(
            "the header claims {len} bytes, the file has {}",
            bytes.len().saturating_sub(8 + len_size)
        )));
    }
    let header = Header::from_reader(&mut Cursor::new(&bytes[..data_start])).map_err(|e| bad(e.to_string()))?;
    Ok(CheckedHeader { header, data_start })
}

fn read_as<T: ReadableElement + ferroflow_tensor_core::Element>(bytes: &[u8]) -> Result<Tensor> {
    let a = ArrayD::<T>::read_npy(Cursor::new(bytes)).map_err(|e| bad(e.to_string()))?;
    Ok(Tensor::from_ndarray(a.as_standard_layout().into_owned()))
}

fn widen<S: ReadableElement + Copy, T: ferroflow_tensor_core::Element + From<S>>(bytes: &[u8]) -> Result<Tensor> {
    let a = ArrayD::<S>::read_npy(Cursor::new(bytes)).map_err(|e| bad(e.to_string()))?;
    Ok(Tensor::from_ndarray(a.as_standard_layout().mapv(T::from)))
}

fn bad(msg: String) -> Error {
    Error::invalid("read_npy", msg)
}

fn npz_error(e: zip::result::ZipError) -> Error {
    Error::external("read_npz", e)
}

fn file_error(path: &Path, e: std::io::Error) -> Error {
    Error::invalid("npy", format!("{}: {e}", path.display()))
}

fn in_file(path: &Path, e: Error) -> Error {
    match e {
        Error::InvalidArgument { op, msg } => Error::invalid(op, format!("{}: {msg}", path.display())),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_dtype() -> Result<()> {
        for t in [
            Tensor::new([[1.5f32, -2.0]]),
            Tensor::new([1.0f64, 2.0, 3.0]),
            Tensor::new([[1i32], [2]]),
            Tensor::new([7i64]),
            Tensor::new([true, false]),
            Tensor::scalar(3.0f32),
            Tensor::zeros(&[0, 3], DType::F32)?,
        ] {
            let back = decode_npy(&encode_npy(&t)?)?;
            assert_eq!(back.dtype(), t.dtype());
            assert_eq!(back.dims(), t.dims());
            assert_eq!(back.to_f64_vec()?, t.to_f64_vec()?);
        }
        Ok(())
    }

    #[test]
    fn lying_headers_are_errors_not_allocations() -> Result<()> {
        let good = encode_npy(&Tensor::new([1.0f32, 2.0, 3.0]))?;
        // Claim a huge shape: the data is not there.
        // The header is padded with spaces: a longer shape fits in the same header length.
        let at = good.windows(4).position(|w| w == b"(3,)").unwrap();
        let newline = good.iter().position(|&b| b == b'\n').unwrap();
        let mut lying = good[..at].to_vec();
        lying.extend_from_slice(b"(999999999999,)");
        lying.extend_from_slice(&good[at + 4..newline - 11]);
        lying.extend_from_slice(&good[newline..]);
        assert_eq!(lying.len(), good.len());
        let err = decode_npy(&lying).unwrap_err().to_string();
        assert!(err.contains("needs"), "{err}");
        // Truncated data, truncated header, wrong magic, absurd header length.
        assert!(decode_npy(&good[..good.len() - 4]).is_err());
        assert!(decode_npy(&good[..9]).is_err());
        assert!(decode_npy(b"PK\x03\x04 not npy").is_err());
        let mut long = good.clone();
        long[8] = 0xff;
        long[9] = 0xff;
        assert!(decode_npy(&long).is_err());
        Ok(())
    }
}
