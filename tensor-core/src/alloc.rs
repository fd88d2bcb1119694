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

/// The element count of `dims`, or an error naming `op` if the count overflows or its
/// elements of `dtype` need more memory than the machine has.
pub fn checked_elements(op: &'static str, dims: &[usize], dtype: DType) -> Result<usize> {
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
    let elements = spec.shape.dims().iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
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
        assert_eq!(checked_elements("t", &[0, usize::MAX], DType::F32).unwrap(), 0);
        for dims in [vec![1usize << 40], vec![1 << 32, 1 << 32], vec![usize::MAX, 2]] {
            let e = checked_elements("zeros", &dims, DType::F32).unwrap_err();
            assert!(matches!(e, Error::ResourceExhausted { op: "zeros", .. }), "{e}");
            assert!(e.to_string().starts_with("zeros: "), "{e}");
        }
    }
}
