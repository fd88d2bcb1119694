//! Large host buffers kept for the next output of the same size.
//!
//! glibc's `malloc` (and most allocators) maps every block of 32 MiB or more straight from
//! the kernel and unmaps it when it is freed. An op whose output is that large, run in a
//! loop (a training step, a benchmark), then writes into fresh memory every time: each 4 KiB
//! page faults on its first write and the kernel zeroes it first. For a 2048² `f64` matmul
//! (a 32 MiB output) that was 8 % of the process's time spent in the kernel and 9 % of the
//! product's speed (two AMD Zen 4 cores, glibc 2.36), against none when the block is reused.
//!
//! So a tensor of at least [`MIN_BYTES`] that dies as the only owner of its elements hands
//! its buffer here, and the ops that write every element of their output without reading
//! it (matmul, the elementwise kernels, fused elementwise programs) take their output from
//! here when a kept buffer fits. The cache holds at most [`MAX_BLOCKS`] buffers and
//! a sixteenth of the machine's memory ([`crate::memory_limit`]); the oldest go first.
//! [`release`] frees them all.
//!
//! ```
//! use ferroflow_tensor_core::{host_cache, Tensor};
//! // 2^23 f32 elements, exactly `MIN_BYTES`: big enough to be kept when dropped.
//! let big = Tensor::ones(&[1 << 23], ferroflow_tensor_core::DType::F32)?.add(&Tensor::scalar(1.0f32))?;
//! drop(big);
//! assert!(host_cache::cached_bytes() >= host_cache::MIN_BYTES);
//! // The next output of that size reuses the buffer.
//! let again = Tensor::ones(&[1 << 23], ferroflow_tensor_core::DType::F32)?.add(&Tensor::scalar(2.0f32))?;
//! assert_eq!(again.to_vec::<f32>()?[0], 3.0);
//! drop(again);
//! assert!(host_cache::release() >= host_cache::MIN_BYTES);
//! assert_eq!(host_cache::cached_bytes(), 0);
//! # Ok::<(), ferroflow_tensor_core::Error>(())
//! ```

use crate::{Data, Element};
use std::any::Any;
use std::mem::{size_of, MaybeUninit};
use std::sync::Mutex;

/// Smallest buffer kept, in bytes: glibc's largest `mmap` threshold on 64-bit machines.
/// Below it, `malloc` keeps freed blocks itself after the first one, and outputs of 4–16 MiB
/// measured the same with and without reuse.
pub const MIN_BYTES: usize = 32 << 20;

/// Most buffers kept at once.
pub const MAX_BLOCKS: usize = 8;

/// A kept buffer can serve an output up to this fraction (`1/WASTE`) smaller than itself.
const WASTE: usize = 4;

/// One kept buffer: a `Vec<T>` of length 0, its capacity in bytes.
struct Block {
    bytes: usize,
    vec: Box<dyn Any + Send>,
}

/// Oldest first.
static BLOCKS: Mutex<Vec<Block>> = Mutex::new(Vec::new());

fn blocks() -> std::sync::MutexGuard<'static, Vec<Block>> {
    // A panic while the lock was held left a valid list (every change is one push or remove).
    BLOCKS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Bytes the buffers of `list` hold.
fn held(list: &[Block]) -> usize {
    list.iter().map(|b| b.bytes).sum()
}

/// Bytes the cache may hold in all.
fn budget() -> usize {
    crate::memory_limit() / 16
}

/// A vector of `len` elements, all written by `write`, in a kept buffer when one fits:
/// the output path of the ops that write their whole output without reading it.
///
/// # Safety
///
/// `write` must initialise every element of the slice it is given (it may be a reused
/// buffer, never zeroed).
pub(crate) unsafe fn written_vec<T: Copy + Send + 'static>(
    len: usize,
    write: impl FnOnce(&mut [MaybeUninit<T>]),
) -> Vec<T> {
    let mut out = vec_for(len);
    write(&mut out.spare_capacity_mut()[..len]);
    // SAFETY: `write` initialised all `len` elements (the caller's contract). Should it
    // panic instead, `out` is dropped with length 0 and nothing unwritten is read.
    unsafe { out.set_len(len) };
    out
}

/// An empty vector with room for `len` elements of `T`: a kept buffer when one fits (at
/// least `len`, at most a quarter more), else a new allocation. Its old contents are not
/// readable (the length is 0).
fn vec_for<T: Copy + Send + 'static>(len: usize) -> Vec<T> {
    let wanted = len.saturating_mul(size_of::<T>());
    if wanted < MIN_BYTES {
        return Vec::with_capacity(len);
    }
    let taken = {
        let mut list = blocks();
        let fits = |b: &Block| b.bytes >= wanted && b.bytes - wanted <= wanted / WASTE && b.vec.is::<Vec<T>>();
        // The tightest fit, the newest among equals.
        let best = (0..list.len())
            .rev()
            .filter(|&i| fits(&list[i]))
            .min_by_key(|&i| list[i].bytes);
        best.map(|i| list.remove(i))
    };
    match taken.map(|b| b.vec.downcast::<Vec<T>>()) {
        Some(Ok(v)) => *v,
        _ => Vec::with_capacity(len),
    }
}

/// Keeps the buffer of `data` if it is large and `data` is its only owner; otherwise leaves
/// `data` as it was. Called when a tensor is dropped.
#[inline]
pub(crate) fn offer(data: &mut Data) {
    // Every tensor's drop comes here: the size test is all most of them pay.
    if data.len().saturating_mul(data.dtype().size_of()) >= MIN_BYTES {
        keep_buffer_of(data);
    }
}

#[cold]
fn keep_buffer_of(data: &mut Data) {
    let taken = std::mem::replace(data, Data::F32(crate::Array::from_elem(ndarray::IxDyn(&[0]), 0.0)));
    crate::data::with_data!(taken, a => keep(a));
}

fn keep<T: Element>(array: crate::Array<T>) {
    // Shared with another tensor (a view, a clone of the data): that owner frees it.
    let Ok(owned) = array.try_into_owned_nocopy() else {
        return;
    };
    let (mut vec, _offset) = owned.into_raw_vec_and_offset();
    vec.clear();
    let bytes = vec.capacity() * size_of::<T>();
    let budget = budget();
    if bytes > budget {
        return;
    }
    let mut list = blocks();
    // The oldest buffers that must go to make room, freed after the lock is released.
    let mut evict = 0;
    let mut kept = held(&list);
    while evict < list.len() && (list.len() - evict >= MAX_BLOCKS || kept + bytes > budget) {
        kept -= list[evict].bytes;
        evict += 1;
    }
    let evicted: Vec<Block> = list.drain(..evict).collect();
    list.push(Block {
        bytes,
        vec: Box::new(vec),
    });
    drop(list);
    drop(evicted);
}

/// Bytes of host memory the cache holds for reuse.
pub fn cached_bytes() -> usize {
    held(&blocks())
}

/// Frees every kept buffer; returns the bytes freed.
pub fn release() -> usize {
    let freed: Vec<Block> = std::mem::take(&mut *blocks());
    held(&freed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DType, Tensor};

    /// Tests share the one cache: each runs under this lock and starts from an empty cache.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn serial() -> std::sync::MutexGuard<'static, ()> {
        let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        release();
        guard
    }

    const BIG_F64: usize = MIN_BYTES / 8;

    /// A large `f64` source the tests keep alive, so only the outputs made from it die.
    fn source() -> Tensor {
        Tensor::ones(&[BIG_F64], DType::F64).unwrap()
    }

    fn negated(src: &Tensor) -> Tensor {
        src.mul(&Tensor::scalar(-1.0f64)).unwrap()
    }

    #[test]
    fn a_large_dying_tensor_is_kept_and_its_buffer_reused() {
        let _g = serial();
        let src = source();
        let t = negated(&src);
        let address = t.data().unwrap().array::<f64>().unwrap().as_ptr() as usize;
        drop(t);
        assert_eq!(cached_bytes(), MIN_BYTES);
        // The next output of that size writes into the kept buffer, and is right.
        let again = src.mul(&Tensor::scalar(5.0f64)).unwrap();
        assert_eq!(again.data().unwrap().array::<f64>().unwrap().as_ptr() as usize, address);
        assert_eq!(cached_bytes(), 0);
        assert!(again.to_vec::<f64>().unwrap().iter().all(|&v| v == 5.0));
        // A matmul output too.
        let a = Tensor::ones(&[1024, 1], DType::F64).unwrap();
        let b = Tensor::ones(&[1, 4096], DType::F64)
            .unwrap()
            .mul(&Tensor::scalar(2.0f64))
            .unwrap();
        drop(again);
        let p = a.matmul(&b).unwrap();
        assert_eq!(p.data().unwrap().array::<f64>().unwrap().as_ptr() as usize, address);
        assert!(p.to_vec::<f64>().unwrap().iter().all(|&v| v == 2.0));
    }

    #[test]
    fn small_shared_or_mistyped_buffers_are_not_reused() {
        let _g = serial();
        let src = source();
        // Small: below MIN_BYTES.
        drop(
            Tensor::ones(&[1000], DType::F64)
                .unwrap()
                .mul(&Tensor::scalar(2.0f64))
                .unwrap(),
        );
        assert_eq!(cached_bytes(), 0);
        // Shared: another tensor still holds the elements.
        let t = negated(&src);
        let other = Tensor::from_data(t.data().unwrap().clone());
        drop(t);
        assert_eq!(cached_bytes(), 0);
        drop(other);
        assert_eq!(cached_bytes(), MIN_BYTES);
        // Another dtype, or a size the buffer exceeds by more than a quarter, allocates anew.
        assert_eq!(vec_for::<i64>(BIG_F64).capacity(), BIG_F64);
        let smaller = BIG_F64 * 3 / 4;
        assert_eq!(vec_for::<f64>(smaller).capacity(), smaller);
        assert_eq!(cached_bytes(), MIN_BYTES);
        assert_eq!(release(), MIN_BYTES);
        assert_eq!(cached_bytes(), 0);
    }

    #[test]
    fn at_most_max_blocks_are_kept_the_oldest_going_first() {
        let _g = serial();
        let src = source();
        let kept = MAX_BLOCKS.min(budget() / MIN_BYTES);
        let live: Vec<Tensor> = (0..MAX_BLOCKS + 2).map(|_| negated(&src)).collect();
        let addresses: Vec<usize> = live
            .iter()
            .map(|t| t.data().unwrap().array::<f64>().unwrap().as_ptr() as usize)
            .collect();
        drop(live);
        assert_eq!(cached_bytes(), kept * MIN_BYTES);
        // The newest buffer is handed out first; the two oldest were freed.
        let v = vec_for::<f64>(BIG_F64);
        assert_eq!(v.as_ptr() as usize, addresses[MAX_BLOCKS + 1]);
        let left: Vec<usize> = blocks()
            .iter()
            .map(|b| b.vec.downcast_ref::<Vec<f64>>().unwrap().as_ptr() as usize)
            .collect();
        assert_eq!(left, addresses[MAX_BLOCKS + 2 - kept..MAX_BLOCKS + 1]);
        release();
    }
}
