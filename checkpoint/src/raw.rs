//! Tensors as files hold them: a stored dtype, a shape and little-endian, row-major bytes.
//! Both formats read and write [`RawTensor`]s; only this file converts them to and from
//! [`Tensor`]s, so the rules for narrow types (f16, bf16, small integers) live in one place.

use crate::error::{CheckpointError, Result};
use ferroflow_tensor_core::{DType, Tensor};
use std::fmt;
use std::path::Path;

/// Element types a checkpoint file may hold (the union of safetensors' and TensorFlow's
/// numeric types, plus TensorFlow's strings).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StoredDtype {
    /// Boolean, one byte (0 or 1).
    Bool,
    /// Unsigned 8-bit integer.
    U8,
    /// Signed 8-bit integer.
    I8,
    /// Signed 16-bit integer.
    I16,
    /// Unsigned 16-bit integer.
    U16,
    /// IEEE half precision.
    F16,
    /// bfloat16.
    BF16,
    /// Signed 32-bit integer.
    I32,
    /// Unsigned 32-bit integer.
    U32,
    /// IEEE single precision.
    F32,
    /// IEEE double precision.
    F64,
    /// Signed 64-bit integer.
    I64,
    /// Unsigned 64-bit integer.
    U64,
    /// TensorFlow string (only the checkpoint's object graph uses it).
    String,
}

impl StoredDtype {
    /// Bytes per element; `None` for strings, which have no fixed width.
    pub fn size(self) -> Option<usize> {
        use StoredDtype::*;
        Some(match self {
            Bool | U8 | I8 => 1,
            I16 | U16 | F16 | BF16 => 2,
            I32 | U32 | F32 => 4,
            F64 | I64 | U64 => 8,
            String => return None,
        })
    }

    /// TensorFlow's name (`float32`, `bfloat16`, `string`, ...).
    pub fn name(self) -> &'static str {
        use StoredDtype::*;
        match self {
            Bool => "bool",
            U8 => "uint8",
            I8 => "int8",
            I16 => "int16",
            U16 => "uint16",
            F16 => "float16",
            BF16 => "bfloat16",
            I32 => "int32",
            U32 => "uint32",
            F32 => "float32",
            F64 => "float64",
            I64 => "int64",
            U64 => "uint64",
            String => "string",
        }
    }

    /// The stored type of a ferroflow dtype (always exact).
    pub fn from_dtype(d: DType) -> StoredDtype {
        match d {
            DType::F32 => StoredDtype::F32,
            DType::F64 => StoredDtype::F64,
            DType::I32 => StoredDtype::I32,
            DType::I64 => StoredDtype::I64,
            DType::Bool => StoredDtype::Bool,
        }
    }

    /// The dtype a loaded tensor gets. Wider types are kept; the narrow ones widen without
    /// loss: f16 and bf16 load as float32, 8/16-bit integers as int32, uint32 as int64.
    /// uint64 (could overflow int64) and strings have no ferroflow dtype.
    pub fn load_dtype(self) -> Option<DType> {
        use StoredDtype::*;
        Some(match self {
            Bool => DType::Bool,
            U8 | I8 | I16 | U16 | I32 => DType::I32,
            F16 | BF16 | F32 => DType::F32,
            F64 => DType::F64,
            U32 | I64 => DType::I64,
            U64 | String => return None,
        })
    }
}

impl fmt::Display for StoredDtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Name, dtype and shape of one stored tensor, known without reading its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// The name under which it is stored (an object path such as `model/dense_1/w`).
    pub name: String,
    /// The stored element type.
    pub dtype: StoredDtype,
    /// The dimensions (`[]` for a scalar).
    pub shape: Vec<usize>,
}

/// One stored tensor: dtype, shape and its bytes (little-endian, row-major).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawTensor {
    /// The stored element type.
    pub dtype: StoredDtype,
    /// The dimensions (`[]` for a scalar).
    pub shape: Vec<usize>,
    /// The element bytes.
    pub data: Vec<u8>,
}

/// Number of elements of `shape`, or `None` when the product overflows `usize`.
pub fn checked_elements(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Byte length of a `dtype` tensor of `shape`, or `None` on overflow or for strings.
pub fn checked_byte_len(dtype: StoredDtype, shape: &[usize]) -> Option<usize> {
    checked_elements(shape)?.checked_mul(dtype.size()?)
}

impl RawTensor {
    /// The bytes of an eager tensor.
    pub fn from_tensor(t: &Tensor) -> Result<RawTensor> {
        let dtype = StoredDtype::from_dtype(t.dtype());
        let shape = t.dims().to_vec();
        let data = match t.dtype() {
            DType::F32 => le_bytes(t.to_vec::<f32>()?, f32::to_le_bytes),
            DType::F64 => le_bytes(t.to_vec::<f64>()?, f64::to_le_bytes),
            DType::I32 => le_bytes(t.to_vec::<i32>()?, i32::to_le_bytes),
            DType::I64 => le_bytes(t.to_vec::<i64>()?, i64::to_le_bytes),
            DType::Bool => t.to_vec::<bool>()?.into_iter().map(u8::from).collect(),
        };
        Ok(RawTensor { dtype, shape, data })
    }

    /// The tensor these bytes hold, widened as [`StoredDtype::load_dtype`] says. `file` and
    /// `name` only label errors.
    pub fn to_tensor(&self, file: &Path, name: &str) -> Result<Tensor> {
        let unsupported = || CheckpointError::UnsupportedDtype {
            path: file.to_path_buf(),
            name: name.to_string(),
            dtype: self.dtype.name().to_string(),
        };
        if self.dtype.load_dtype().is_none() {
            return Err(unsupported());
        }
        if checked_byte_len(self.dtype, &self.shape) != Some(self.data.len()) {
            return Err(CheckpointError::corrupt(
                file,
                format!(
                    "tensor '{name}': {} bytes do not hold a {} tensor of shape {:?}",
                    self.data.len(),
                    self.dtype,
                    self.shape
                ),
            ));
        }
        let d = &self.data;
        use StoredDtype::*;
        let t = match self.dtype {
            F32 => Tensor::from_vec(decode(d, f32::from_le_bytes), &self.shape),
            F64 => Tensor::from_vec(decode(d, f64::from_le_bytes), &self.shape),
            I32 => Tensor::from_vec(decode(d, i32::from_le_bytes), &self.shape),
            I64 => Tensor::from_vec(decode(d, i64::from_le_bytes), &self.shape),
            Bool => Tensor::from_vec(d.iter().map(|&b| b != 0).collect::<Vec<bool>>(), &self.shape),
            F16 => Tensor::from_vec(
                decode(d, |b: [u8; 2]| half::f16::from_le_bytes(b).to_f32()),
                &self.shape,
            ),
            BF16 => Tensor::from_vec(
                decode(d, |b: [u8; 2]| half::bf16::from_le_bytes(b).to_f32()),
                &self.shape,
            ),
            U8 => Tensor::from_vec(d.iter().map(|&b| i32::from(b)).collect::<Vec<i32>>(), &self.shape),
            I8 => Tensor::from_vec(d.iter().map(|&b| i32::from(b as i8)).collect::<Vec<i32>>(), &self.shape),
            I16 => Tensor::from_vec(decode(d, |b| i32::from(i16::from_le_bytes(b))), &self.shape),
            U16 => Tensor::from_vec(decode(d, |b| i32::from(u16::from_le_bytes(b))), &self.shape),
            U32 => Tensor::from_vec(decode(d, |b| i64::from(u32::from_le_bytes(b))), &self.shape),
            U64 | String => return Err(unsupported()),
        };
        Ok(t?)
    }
}

fn le_bytes<T, const N: usize>(values: Vec<T>, f: fn(T) -> [u8; N]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * N);
    for v in values {
        out.extend_from_slice(&f(v));
    }
    out
}

fn decode<T, const N: usize>(bytes: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
    bytes
        .chunks_exact(N)
        .map(|c| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            f(a)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_dtype() {
        let p = Path::new("t");
        for t in [
            Tensor::new([[1.5f32, -2.0], [3.0, 4.25]]),
            Tensor::new([1.0f64, f64::MIN_POSITIVE]),
            Tensor::new([i32::MIN, 7]),
            Tensor::scalar(i64::MAX),
            Tensor::new([true, false, true]),
            Tensor::zeros(&[0, 4], DType::F32).unwrap(),
        ] {
            let raw = RawTensor::from_tensor(&t).unwrap();
            let back = raw.to_tensor(p, "x").unwrap();
            assert_eq!(back.dtype(), t.dtype());
            assert_eq!(back.dims(), t.dims());
            assert_eq!(RawTensor::from_tensor(&back).unwrap(), raw);
        }
    }

    #[test]
    fn narrow_types_widen() {
        let p = Path::new("t");
        let half = RawTensor {
            dtype: StoredDtype::F16,
            shape: vec![2],
            data: vec![0x00, 0x3c, 0x00, 0xc0],
        };
        assert_eq!(
            half.to_tensor(p, "h").unwrap().to_vec::<f32>().unwrap(),
            vec![1.0, -2.0]
        );
        let bf = RawTensor {
            dtype: StoredDtype::BF16,
            shape: vec![1],
            data: vec![0x80, 0x3f],
        };
        assert_eq!(bf.to_tensor(p, "b").unwrap().to_vec::<f32>().unwrap(), vec![1.0]);
        let u8s = RawTensor {
            dtype: StoredDtype::U8,
            shape: vec![2],
            data: vec![255, 1],
        };
        assert_eq!(u8s.to_tensor(p, "u").unwrap().to_vec::<i32>().unwrap(), vec![255, 1]);
        let i8s = RawTensor {
            dtype: StoredDtype::I8,
            shape: vec![1],
            data: vec![255],
        };
        assert_eq!(i8s.to_tensor(p, "i").unwrap().to_vec::<i32>().unwrap(), vec![-1]);
    }

    #[test]
    fn wrong_lengths_and_unloadable_types_are_errors() {
        let p = Path::new("f.safetensors");
        let short = RawTensor {
            dtype: StoredDtype::F32,
            shape: vec![2],
            data: vec![0; 7],
        };
        let e = short.to_tensor(p, "w").unwrap_err().to_string();
        assert!(e.contains("f.safetensors") && e.contains("'w'"), "{e}");
        let u64s = RawTensor {
            dtype: StoredDtype::U64,
            shape: vec![],
            data: vec![0; 8],
        };
        assert!(matches!(
            u64s.to_tensor(p, "c"),
            Err(CheckpointError::UnsupportedDtype { .. })
        ));
        assert_eq!(checked_byte_len(StoredDtype::F64, &[usize::MAX, 2]), None);
    }
}
