//! Elementwise loops too short for rayon's pool, split with the matmul helpers that still
//! linger after a product (see [`super::helpers`]).
//!
//! Why: an eager op that follows a product (W3's bias add, a training step's activation
//! and its gradient) runs while the product's helpers spin on the mailbox for the next
//! job. Handing them part of the loop costs a cache line or two, where waking a pool
//! worker costs more than the loop ([`super::elementwise::PAR_THRESHOLD`]). Nothing is
//! woken or spawned: with no helper lingering, the caller runs the loop alone.
//!
//! Elementwise results do not depend on the split, so this changes no bit.

use std::mem::MaybeUninit;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::helpers::{lingering, share_with_lingering, Helping};

/// Fewest elements a loop must have to be split: two [`PIECE`]s.
pub(crate) const MIN_ELEMENTS: usize = 2 * PIECE;

/// Elements per claim of a split loop.
const PIECE: usize = 1 << 13;

/// Whether a loop over `len` elements is split now: long enough, and a helper lingers.
pub(crate) fn worth_splitting(len: usize) -> bool {
    len >= MIN_ELEMENTS && lingering() > 0
}

/// What writes one piece of an output: its range and its elements.
type FillPiece<'a, U> = dyn Fn(Range<usize>, &mut [MaybeUninit<U>]) + Sync + 'a;

/// A new vector of `len` elements written in pieces, `fill(range, &mut out[range])` for
/// consecutive ranges covering it once each, on the calling thread and on the helpers
/// lingering now (taken, like every new output, through [`crate::host_cache`]).
///
/// # Safety
///
/// `fill` must write every element of the piece it is given.
pub(crate) unsafe fn written_in_pieces<U: Copy + Send + 'static>(len: usize, fill: &FillPiece<'_, U>) -> Vec<U> {
    // SAFETY: the pieces cover all `len` slots, and `fill` writes each whole (the caller's
    // contract).
    unsafe { crate::host_cache::written_vec(len, |out| fill_pieces(out, fill)) }
}

/// Writes `out` in pieces (see [`written_in_pieces`]).
fn fill_pieces<U: Send>(out: &mut [MaybeUninit<U>], fill: &FillPiece<'_, U>) {
    let len = out.len();
    let base = Shared(out.as_mut_ptr());
    for_each_range(len, &|range: Range<usize>| {
        // SAFETY: the ranges are disjoint and inside `out`, which outlives this call, so
        // each piece is one exclusive sub-slice.
        let piece = unsafe { std::slice::from_raw_parts_mut(base.get().add(range.start), range.len()) };
        fill(range, piece)
    });
}

/// The output's base pointer, shared by the threads writing disjoint pieces of it.
struct Shared<U>(*mut MaybeUninit<U>);

impl<U> Shared<U> {
    fn get(&self) -> *mut MaybeUninit<U> {
        self.0
    }
}

// SAFETY: only used to form disjoint sub-slices, each written by one thread.
unsafe impl<U: Send> Sync for Shared<U> {}

/// Runs `body` over consecutive ranges covering `0..len` exactly once each, on the calling
/// thread and on the helpers lingering now (see [`worth_splitting`]).
pub(crate) fn for_each_range(len: usize, body: &(dyn Fn(Range<usize>) + Sync)) {
    let pieces = len.div_ceil(PIECE);
    // SAFETY (of the erased lifetime): `share_with_lingering` returns only once every piece
    // is done, and a helper that claims after that finds no piece left and never calls
    // `body`; a raw pointer, so that nothing holds a dangling reference meanwhile.
    let body = unsafe {
        std::mem::transmute::<*const (dyn Fn(Range<usize>) + Sync + '_), *const (dyn Fn(Range<usize>) + Sync + 'static)>(
            body,
        )
    };
    let job = Arc::new(Ranges {
        body,
        len,
        next: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        pieces,
    });
    share_with_lingering(&job, pieces.saturating_sub(1));
}

/// A loop cut into pieces claimed from a counter.
struct Ranges {
    /// The loop's body; valid while a piece is unclaimed (see [`for_each_range`]).
    body: *const (dyn Fn(Range<usize>) + Sync + 'static),
    len: usize,
    next: AtomicUsize,
    done: AtomicUsize,
    pieces: usize,
}

// SAFETY: `body` is only called through a shared reference to a `Sync` closure, while it
// is alive (see `for_each_range`).
unsafe impl Send for Ranges {}
// SAFETY: as above.
unsafe impl Sync for Ranges {}

impl Helping for Ranges {
    fn help(&self) -> bool {
        let mut helped = false;
        loop {
            let p = self.next.fetch_add(1, Ordering::Relaxed);
            if p >= self.pieces {
                return helped;
            }
            let start = p * PIECE;
            // SAFETY: a piece was unclaimed, so `for_each_range` has not returned and `body`
            // is alive.
            unsafe { (*self.body)(start..(start + PIECE).min(self.len)) };
            self.done.fetch_add(1, Ordering::Release);
            helped = true;
        }
    }

    fn finished(&self) -> bool {
        self.done.load(Ordering::Acquire) >= self.pieces
    }

    fn long_claims(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::broadcast::{zip_repeated, Repeat};
    use crate::kernels::elementwise::{map_slice, zip_slices};
    use crate::kernels::matmul::{gemm, MatRef};
    use std::sync::atomic::AtomicU8;

    /// Runs a product that shares its work, so that its helpers linger afterwards.
    fn product_with_helpers() {
        let n = 192;
        let a: Vec<f32> = (0..n * n).map(|i| (i % 7) as f32).collect();
        let mut c = vec![0.0f32; n * n];
        let op = MatRef::new(&a, n, 1);
        gemm(n, n, n, op, op, &mut c);
    }

    #[test]
    fn every_element_is_visited_once_with_or_without_lingering_helpers() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        pool.install(|| {
            for len in [
                1,
                PIECE - 1,
                PIECE,
                MIN_ELEMENTS,
                2 * PIECE + 3,
                5 * PIECE,
                7 * PIECE - 1,
            ] {
                for warm in [false, true] {
                    if warm {
                        product_with_helpers();
                    }
                    let seen: Vec<AtomicU8> = (0..len).map(|_| AtomicU8::new(0)).collect();
                    for_each_range(len, &|range: Range<usize>| {
                        assert!(range.start < range.end && range.end <= len && range.len() <= PIECE);
                        for i in range {
                            seen[i].fetch_add(1, Ordering::Relaxed);
                        }
                    });
                    assert!(
                        seen.iter().all(|s| s.load(Ordering::Relaxed) == 1),
                        "len {len}, warm {warm}"
                    );
                }
            }
        });
    }

    #[test]
    fn split_loops_give_the_serial_results() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        pool.install(|| {
            let n = 3 * PIECE + 5 * 64;
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let row: Vec<f32> = a[..64].to_vec();
            let per_row: Vec<f32> = b[..n / 64].to_vec();
            let expected = (
                a.iter().map(|x| x * 2.0 + 1.0).collect::<Vec<_>>(),
                a.iter().zip(&b).map(|(x, y)| x * y - 0.5).collect::<Vec<_>>(),
                a.iter().enumerate().map(|(i, x)| x + row[i % 64]).collect::<Vec<_>>(),
                a.iter()
                    .enumerate()
                    .map(|(i, x)| x - per_row[i / 64])
                    .collect::<Vec<_>>(),
            );
            let (mut splits, mut tries) = (0, 0);
            // A helper may leave (or be descheduled) between the product and the loops: try
            // until they ran split, which on any multi-core machine is about the first time.
            while splits == 0 && tries < 200 {
                tries += 1;
                product_with_helpers();
                if worth_splitting(n) {
                    splits += 1;
                }
                let got = (
                    map_slice(&a, |x| x * 2.0 + 1.0, usize::MAX),
                    zip_slices(&a, &b, |x, y| x * y - 0.5, usize::MAX),
                    zip_repeated(&a, &row, Repeat::Row(64), |x, y| x + y, usize::MAX),
                    zip_repeated(&a, &per_row, Repeat::Run(64), |x, y| x - y, usize::MAX),
                );
                assert!(got == expected, "split loops differ from the elementwise results");
            }
            // Where a second core exists, the split path must have run (else this test
            // would check only the serial one).
            let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
            assert!(splits > 0 || cores < 2, "no loop ran split in {tries} tries");
        });
    }
}
