//! Elementwise loops of 16 Ki to 512 Ki elements that make a new output, split with the
//! matmul helpers that still linger after a product (see [`super::helpers`]): cheap loops
//! that size are too short for rayon's pool, and costly ones run sooner on helpers that
//! already spin ([`worth_splitting`]).
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

use super::elementwise::PAR_THRESHOLD;
use super::helpers::{lingering, share_with_lingering, Helping};

/// Fewest elements a loop must have to be split: two [`PIECE`]s.
pub(crate) const MIN_ELEMENTS: usize = 2 * PIECE;

/// Elements per claim of a split loop.
pub(crate) const PIECE: usize = 1 << 13;

/// Whether a loop over `len` elements, on the pool from `par_from`, is split now: a helper
/// lingers, and the loop is long enough for two pieces and shorter than the pool's
/// threshold for cheap loops ([`PAR_THRESHOLD`]).
///
/// A loop long enough for the pool (a costly one: `exp`, `sigmoid`, a fused chain) is split
/// too where every pool thread but the caller lingers, so that it runs on as many threads
/// as the pool would give it. Why: a loop handed to the pool while a helper lingers runs as
/// that helper leaves (it stops lingering once it has run pool work), and the next product
/// then starts its helpers afresh. Measured on 2 cores after a product, a fused
/// `sigmoid(x * a + b) * c` (p50): 61–64 µs on the pool against 26–32 µs split at 64 Ki
/// elements, 100–135 against 91–113 µs at 200 K.
pub(crate) fn worth_splitting(len: usize, par_from: usize) -> bool {
    if !(MIN_ELEMENTS..PAR_THRESHOLD).contains(&len) {
        return false;
    }
    let helpers = lingering();
    helpers > 0 && (len < par_from || helpers + 1 >= rayon::current_num_threads())
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
    #[cfg(test)]
    tests::SPLITS_HERE.with(|n| n.set(n.get() + 1));
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
pub(crate) mod tests {
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

    thread_local! {
        /// Loops split on this thread ([`for_each_range`] calls): tests beside this one
        /// split loops too, so a process-wide count would not say whose loop split.
        pub(crate) static SPLITS_HERE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// Runs `check` (loops of `len` elements) once as it comes, then right after products
    /// until a loop it ran on this thread was split, for at most 10 s: a helper may leave (or
    /// be descheduled) between the product and the loop, and tests running beside this one
    /// may hold the other cores for a while. Fails where a second core exists and no loop
    /// split, for then the split path went unchecked.
    pub(crate) fn check_with_lingering_helpers(len: usize, mut check: impl FnMut()) {
        check();
        let start = std::time::Instant::now();
        let mut tries = 0;
        loop {
            tries += 1;
            product_with_helpers();
            let before = SPLITS_HERE.with(|n| n.get());
            check();
            if SPLITS_HERE.with(|n| n.get()) > before {
                return;
            }
            let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
            if cores < 2 {
                return;
            }
            assert!(
                start.elapsed().as_secs() < 10,
                "no loop of {len} ran split in {tries} tries"
            );
        }
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
            check_with_lingering_helpers(n, || {
                let got = (
                    map_slice(&a, |x| x * 2.0 + 1.0, usize::MAX),
                    zip_slices(&a, &b, |x, y| x * y - 0.5, usize::MAX),
                    zip_repeated(&a, &row, Repeat::Row(64), |x, y| x + y, usize::MAX),
                    zip_repeated(&a, &per_row, Repeat::Run(64), |x, y| x - y, usize::MAX),
                );
                assert!(got == expected, "split loops differ from the elementwise results");
            });
        });
    }
}
