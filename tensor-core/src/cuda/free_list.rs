//! [`FreeList`]: device buffers that tensors let go of, kept by dtype and length for the next
//! op that needs the same size, as PyTorch's caching allocator keeps its blocks.
//!
//! Why: an eager op allocates its output and frees its inputs' temporaries, and the
//! stream-ordered pool (`cuMemAllocAsync`/`cuMemFreeAsync`) costs a driver call for each,
//! which is most of an op's host time when the kernel is a few microseconds. A buffer
//! taken from this list costs a lock, a hash lookup and the check that the GPU's context
//! is current on the thread (which allocating also did) instead.
//!
//! Why reuse is safe without events: every kernel and copy of the process runs on the
//! runtime's one stream (a capture records on its own stream, but what it records runs
//! when the graph is launched on the one stream). So whatever the new owner queues runs
//! after everything the old owner queued, exactly as the pool orders a freed block.
//!
//! Only buffers up to [`MAX_BUFFER`] bytes are kept, and [`MAX_CACHED`] in all: large
//! buffers are rare per op and their kernels long, so the pool serves them as before. Past
//! the cap a freed buffer goes to the pool (nothing is evicted). An allocation or upload the
//! driver refuses for want of memory empties the list and is tried once more.

use crate::DType;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// The largest buffer kept for reuse (bytes).
const MAX_BUFFER: usize = 16 << 20;
/// The most bytes kept for reuse at once.
const MAX_CACHED: usize = 256 << 20;
/// Sizes the map may name before entries left empty are dropped: keeping them makes the
/// steady state (one buffer of a size taken, then given back, per op) allocate nothing,
/// and the bound keeps a run of ever-changing shapes from growing the map without end.
const MAX_SIZES: usize = 1024;

/// Freed buffers of one GPU (`S`: the typed device memory, `buffer::Slice`) by (dtype,
/// allocated elements).
pub(crate) struct FreeList<S> {
    /// False under `FERROFLOW_CUDA_CACHE=0`: every buffer goes back to the pool.
    enabled: bool,
    slices: Mutex<HashMap<(DType, usize), Vec<S>>>,
    /// Bytes held in `slices` (read without the lock for the memory statistics).
    bytes: AtomicUsize,
}

impl<S> FreeList<S> {
    /// An empty list; a disabled one keeps nothing.
    pub(crate) fn new(enabled: bool) -> FreeList<S> {
        FreeList {
            enabled,
            slices: Mutex::new(HashMap::new()),
            bytes: AtomicUsize::new(0),
        }
    }

    /// A kept buffer of exactly `len` elements of `dtype`, if there is one.
    pub(crate) fn take(&self, dtype: DType, len: usize) -> Option<S> {
        if !self.enabled {
            return None;
        }
        let mut slices = self.slices.lock().unwrap_or_else(PoisonError::into_inner);
        let slice = slices.get_mut(&(dtype, len))?.pop()?;
        self.bytes.fetch_sub(len * dtype.size_of(), Ordering::Relaxed);
        Some(slice)
    }

    /// Keeps `slice` (`len` elements of `dtype`) for reuse, or hands it back when it is too
    /// large or the list is full (the caller then frees it).
    pub(crate) fn give(&self, dtype: DType, len: usize, slice: S) -> Option<S> {
        let bytes = len * dtype.size_of();
        if !self.enabled || bytes > MAX_BUFFER {
            return Some(slice);
        }
        let mut slices = self.slices.lock().unwrap_or_else(PoisonError::into_inner);
        if self.bytes.load(Ordering::Relaxed) + bytes > MAX_CACHED {
            return Some(slice);
        }
        if slices.len() >= MAX_SIZES && !slices.contains_key(&(dtype, len)) {
            slices.retain(|_, kept| !kept.is_empty());
        }
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        slices.entry((dtype, len)).or_default().push(slice);
        None
    }

    /// Returns every kept buffer to the stream-ordered pool.
    pub(crate) fn clear(&self) {
        let all = {
            let mut slices = self.slices.lock().unwrap_or_else(PoisonError::into_inner);
            self.bytes.store(0, Ordering::Relaxed);
            std::mem::take(&mut *slices)
        };
        // Freed outside the lock: each drop is a driver call.
        drop(all);
    }

    /// Bytes kept for reuse now.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_buffer_is_reused_only_for_its_dtype_and_length() {
        let list = FreeList::new(true);
        assert!(list.give(DType::F32, 10, "a").is_none());
        assert!(list.give(DType::F32, 10, "b").is_none());
        assert_eq!(list.bytes(), 80);
        assert_eq!(list.take(DType::F32, 11), None);
        assert_eq!(list.take(DType::I32, 10), None);
        assert_eq!(list.take(DType::F32, 10), Some("b"));
        assert_eq!(list.bytes(), 40);
        assert_eq!(list.take(DType::F32, 10), Some("a"));
        assert_eq!((list.take(DType::F32, 10), list.bytes()), (None, 0));
    }

    #[test]
    fn empty_entries_are_dropped_once_the_map_names_too_many_sizes() {
        let list = FreeList::new(true);
        for len in 1..=MAX_SIZES {
            assert!(list.give(DType::I32, len, len).is_none());
            assert_eq!(list.take(DType::I32, len), Some(len));
        }
        // Every size taken back leaves an empty entry, kept for its next use...
        assert_eq!(list.slices.lock().unwrap().len(), MAX_SIZES);
        // ...until a new size would pass the bound: then the empty ones go.
        assert!(list.give(DType::I32, MAX_SIZES + 1, 0).is_none());
        assert_eq!(list.slices.lock().unwrap().len(), 1);
        assert_eq!(list.take(DType::I32, MAX_SIZES + 1), Some(0));
    }

    #[test]
    fn large_buffers_and_overflow_go_back_to_the_caller() {
        let list = FreeList::new(true);
        let largest = MAX_BUFFER / 8;
        assert_eq!(list.give(DType::F64, largest + 1, 1), Some(1));
        let kept = (0..=MAX_CACHED / MAX_BUFFER)
            .take_while(|_| list.give(DType::F64, largest, 2).is_none())
            .count();
        assert_eq!(kept, MAX_CACHED / MAX_BUFFER);
        assert_eq!(list.bytes(), MAX_CACHED);
        list.clear();
        assert_eq!((list.bytes(), list.take(DType::F64, largest)), (0, None));
    }

    #[test]
    fn a_disabled_list_keeps_nothing() {
        let list = FreeList::new(false);
        assert_eq!(list.give(DType::Bool, 1, 'x'), Some('x'));
        assert_eq!((list.take(DType::Bool, 1), list.bytes()), (None, 0));
    }
}
