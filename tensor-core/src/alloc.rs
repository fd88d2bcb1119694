//! The allocation guard: every tensor a constructor or an op is about to make is sized
//! first, and a request the machine cannot hold is an [`Error::ResourceExhausted`] instead of
//! an aborted process (Rust aborts when an allocation fails, and ndarray panics when a shape's
//! element count overflows).
//!
//! Ops are checked once, in [`Op::infer`](crate::Op::infer), from their output specs, so the
//! eager path, tracing and the graph executor's re-validation share the check.

use crate::{DType, Error, Result, TensorSpec};
use std::sync::OnceLock;

/// Bytes the machine can hold: physical memory plus swap where the system says (Linux's
/// `/proc/meminfo`), otherwise the largest allocation Rust allows.
pub fn memory_limit() -> usize {
    static LIMIT: OnceLock<usize> = OnceLock::new();
    *LIMIT.get_or_init(|| system_memory().unwrap_or(isize::MAX as usize).min(isize::MAX as usize))
}

/// `MemTotal + SwapTotal` in bytes, from `/proc/meminfo`.
fn system_memory() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib = |key: &str| -> Option<usize> {
        let line = text.lines().find(|l| l.starts_with(key))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    let total = kib("MemTotal:")?;
    let swap = kib("SwapTotal:").unwrap_or(0);
    total.checked_add(swap)?.checked_mul(1024)
}

/// The product of the non-zero entries of `dims` (1 when there are none), or `None` on
/// overflow. ndarray refuses (panics on) any shape whose non-zero axis lengths multiply past
/// `isize::MAX`, even when another axis is 0 and the tensor holds no elements.
fn nonzero_elements(dims: &[usize]) -> Option<usize> {
    dims.iter()
        .filter(|&&d| d != 0)
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// The element count of `dims`, or an error naming `op` if the count overflows or its
/// elements of `dtype` need more memory than the machine has. An empty shape whose non-zero
/// dimensions would take more than `isize::MAX` bytes (as `[0, usize::MAX]`) is an error
/// too: no array of that shape can be made.
pub fn checked_elements(op: &'static str, dims: &[usize], dtype: DType) -> Result<usize> {
    let nonzero_bytes = nonzero_elements(dims).and_then(|n| n.checked_mul(dtype.size_of()));
    if nonzero_bytes.is_none_or(|b| b > isize::MAX as usize) {
        return Err(Error::ResourceExhausted {
            op,
            msg: format!(
                "a {dtype} tensor of shape {dims:?} cannot be made: its non-zero dimensions need more than isize::MAX bytes"
            ),
        });
    }
    let n = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let bytes = n.and_then(|n| n.checked_mul(dtype.size_of()));
    match (n, bytes) {
        (Some(n), Some(b)) if b <= memory_limit() => Ok(n),
        _ => Err(Error::ResourceExhausted {
            op,
            msg: format!(
                "a {dtype} tensor of shape {dims:?} needs {} bytes, more than this machine's {} bytes of memory",
                bytes.map_or_else(|| "more than 2^64".to_string(), |b| b.to_string()),
                memory_limit()
            ),
        }),
    }
}

/// Tensors up to this many bytes are never checked against the machine's memory: every
/// machine this runs on holds them, and most ops' outputs are far smaller.
const ALWAYS_FITS: usize = 1 << 28;

/// [`checked_elements`] for an op's output spec, with the op's name made only for an error
/// (this runs for every op dispatched: a few instructions when the output is small).
pub(crate) fn check_spec(op: impl FnOnce() -> &'static str, spec: &TensorSpec) -> Result<()> {
    // The non-zero dimensions, so that an empty shape with huge other dimensions takes the
    // full check (which rejects it) instead of passing as 0 bytes.
    let elements = nonzero_elements(spec.shape.dims());
    match elements.and_then(|n| n.checked_mul(spec.dtype.size_of())) {
        Some(bytes) if bytes <= ALWAYS_FITS => Ok(()),
        _ => checked_elements(op(), spec.shape.dims(), spec.dtype).map(|_| ()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_requests_are_errors() {
        assert!(memory_limit() > 1 << 20);
        assert_eq!(checked_elements("t", &[2, 3], DType::F32).unwrap(), 6);
        assert_eq!(checked_elements("t", &[0, 5], DType::F32).unwrap(), 0);
        assert_eq!(
            checked_elements("t", &[0, isize::MAX as usize / 4], DType::F32).unwrap(),
            0
        );
        for dims in [
            vec![1usize << 40],
            vec![1 << 32, 1 << 32],
            vec![usize::MAX, 2],
            // Empty, but ndarray cannot make these shapes.
            vec![0, usize::MAX],
            vec![0, 1 << 62, 4],
            vec![isize::MAX as usize / 4 + 1, 0],
        ] {
            let e = checked_elements("zeros", &dims, DType::F32).unwrap_err();
            assert!(matches!(e, Error::ResourceExhausted { op: "zeros", .. }), "{e}");
            assert!(e.to_string().starts_with("zeros: "), "{e}");
            assert!(e.to_string().contains(&format!("{dims:?}")), "{e}");
        }
    }

    #[test]
    fn empty_shapes_ndarray_cannot_make_are_errors() {
        let spec = TensorSpec::new(DType::F32, vec![0, usize::MAX]);
        let e = check_spec(|| "pad", &spec).unwrap_err();
        assert!(matches!(e, Error::ResourceExhausted { op: "pad", .. }), "{e}");
        assert!(check_spec(|| "pad", &TensorSpec::new(DType::F32, vec![0, 1 << 20])).is_ok());
    }
}
