//! One large product on many threads, BLIS-style: `B` is packed once, by all threads
//! together, into a buffer every thread reads; `C` is cut into a grid of near-square tiles
//! (over rows *and* columns, balanced: see [`super::grid`]) that threads claim, each packing
//! only its own rows of `A`.
//!
//! Why: cutting `C` into row bands and running a whole serial product per band (the driver
//! for batches) repacks all of `B` in every band. On 16 cores that made 16 copies of `B` and
//! bands too thin to reuse a packed `B` panel, and scaling stopped at 4.5x of one thread.
//!
//! Scheduling follows [`super::super::matmul`]: the caller spawns fire-and-forget helpers and
//! works itself; tiles and packing units are claimed from atomic counters. `B` is packed a
//! `kc` slice at a time, as the tiles reach it: a tile about to read slice `q` packs that
//! slice's unclaimed units itself (or, when they are all claimed, units of the next slices),
//! and otherwise waits only for units running threads have already claimed, never for a
//! sleeping worker. Packing all of `B` before any tile ran left every thread copying at once
//! (memory-bound) and the packed slices cold by the time they were read: with the shared `B`
//! forced on two threads (2048² `f32`), packing slice by slice ran 7 % faster.
//! Every element of `C` sees the same operations as in the serial [`super::packed_gemm`]
//! (the same `kc` slices in the same order), so results are bit-identical whatever the
//! thread count or grid.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::blocking::{Blocking, Caches};
use super::grid::{Grid, Tile};
use super::microkernel::{self, MicroKernel};
use super::{aligned_words, even_blocks, pack, reads_a_in_place, with_pack_space, Isa, PackedFloat};
use crate::kernels::matmul::{spin_until, Epilogue};

/// Panels of `B` one packing unit covers (a few KiB to a few hundred KiB of copying).
const PANELS_PER_UNIT: usize = 4;

/// Fewest threads on which one product shares a packed `B` ([`parallel_gemm`]); on fewer,
/// the batch driver gives each thread a band of rows (of columns when `C` is short) and its
/// own packed `B`.
///
/// Why: a tile that reads `B` panels another core has just packed fetches every line from
/// that core's cache, while a band packs its own from the unchanged `B` the cores already
/// share. On two cores (an AVX-512 Xeon, `bench W1` beside numpy, 3 rounds) bands were
/// faster at every size: 1.03–1.06x at n = 512–2048 (`f32` and `f64`), 1.14x at 256,
/// 1.2–1.4x at 128. What sharing saves grows with the thread count (sixteen bands pack
/// `B` sixteen times); `FERROFLOW_GEMM_SPLIT` lets the device script compare both there.
const SHARED_B_MIN_THREADS: usize = 3;

/// Fewest multiply-adds for which one product shares a packed `B` ([`parallel_gemm`]);
/// smaller products run as bands on any thread count.
///
/// Why: on 16 cores (the device machine's Xeon, paired runs of the two splits beside numpy,
/// 2 rounds, f32, GFLOP/s) bands beat the shared `B` below about 2^28 multiply-adds and lost
/// above it: n = 256: 565 and 623 against 521 and 493; n = 512 (2^27): 918 and 915 against
/// 879 and 862; W3 (`256² · 256² + b`): 423 and 400 against 382 and 340. From n = 1024
/// (2^30) sharing won clearly: 1138 and 1139 against 963 and 944; n = 2048: 1503 and 1459
/// against 1096 and 1106. Below that size `B` is small (1 MiB at n = 512) and packing it
/// once per band costs less than tiles waiting for the panels other threads pack.
const SHARED_B_MIN_MACS: usize = 1 << 28;

/// Whether one product of `macs` multiply-adds on `threads` threads runs [`parallel_gemm`]
/// (a shared packed `B`) rather than bands that each pack their own.
/// `FERROFLOW_GEMM_SPLIT=shared` or `=bands` forces either, to compare them side by side on
/// one machine; read once.
pub(crate) fn shares_packed_b(threads: usize, macs: usize) -> bool {
    use std::sync::OnceLock;
    static FORCED: OnceLock<Option<bool>> = OnceLock::new();
    let forced = FORCED.get_or_init(|| match std::env::var("FERROFLOW_GEMM_SPLIT").as_deref() {
        Ok("shared") => Some(true),
        Ok("bands") => Some(false),
        _ => None,
    });
    forced.unwrap_or(threads >= SHARED_B_MIN_THREADS && macs >= SHARED_B_MIN_MACS)
}

/// Largest packed `B` (in 8-byte words) kept for reuse between products: 64 MiB.
const KEEP_WORDS: usize = 8 << 20;

thread_local! {
    /// The shared packed `B` of products this thread drives (grown, never shrunk).
    static SHARED_B: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// One product shared by the calling thread and its helpers.
struct Job<T: 'static> {
    kernel: MicroKernel<T>,
    blk: Blocking,
    m: usize,
    k: usize,
    n: usize,
    a: *const T,
    rsa: isize,
    csa: isize,
    b: *const T,
    rsb: isize,
    csb: isize,
    /// Row-major `m × n` output.
    c: *mut T,
    /// The packed `B`: `kc` slice `q` starts at `q·kc·n_pad`, its panel `j` at
    /// `j·NR·kcb` after that.
    packed: *mut T,
    n_pad: usize,
    grid: Grid,
    /// Tile indices in the order they are claimed ([`Grid::claim_order`]).
    order: Box<[usize]>,
    units_per_slice: usize,
    units: usize,
    unit_next: AtomicUsize,
    /// Finished packing units of each `kc` slice.
    slice_done: Box<[AtomicUsize]>,
    tile_next: AtomicUsize,
    tile_done: AtomicUsize,
    /// Lifetime erased: valid while the creating call waits (see `parallel_gemm`).
    epilogue: Option<*const Epilogue<'static, T>>,
}

// SAFETY: the pointers are only dereferenced for a packing unit or tile claimed from the
// counters (each claimed once); the creating call does not return, ending the borrows,
// before every unit and tile has finished. Units write disjoint parts of `packed`, tiles
// disjoint parts of `C`; a tile reads a slice of `packed` only after every unit of that slice
// is done (Acquire on its `slice_done`). `A` and `B` are only read. `T` is `f32` or `f64`.
unsafe impl<T: Send + Sync> Send for Job<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for Job<T> {}

impl<T: PackedFloat> Job<T> {
    /// Returns once every panel of `kc` slice `q` of `B` is packed, packing unclaimed units
    /// itself meanwhile and otherwise waiting for units other threads claimed. Units are
    /// claimed in slice order and every earlier slice is already complete, so each unit it
    /// claims belongs to slice `q` or, once `q`'s are all claimed, a later one (packing
    /// ahead for the tiles to come).
    fn ensure_slice(&self, q: usize) {
        let packed = || self.slice_done[q].load(Ordering::Acquire) >= self.units_per_slice;
        while !packed() {
            let u = self.unit_next.fetch_add(1, Ordering::Relaxed);
            if u >= self.units {
                return spin_until(packed);
            }
            // SAFETY: `u` claimed exactly once; the creating call waits for `tile_done`, and
            // a tile only finishes after the slices it reads are packed.
            unsafe { self.pack_unit(u) };
        }
    }

    /// Packs unit `u`: up to [`PANELS_PER_UNIT`] panels of one `kc` slice of `B`, then counts
    /// it done for its slice.
    ///
    /// # Safety
    ///
    /// `u < units`, claimed once, while the creating call waits.
    unsafe fn pack_unit(&self, u: usize) {
        let nr = self.kernel.nr();
        let (q, chunk) = (u / self.units_per_slice, u % self.units_per_slice);
        let pc = q * self.blk.kc;
        let kcb = self.blk.kc.min(self.k - pc);
        let c0 = chunk * PANELS_PER_UNIT * nr;
        let cols = (PANELS_PER_UNIT * nr).min(self.n - c0);
        // SAFETY: rows `pc..pc + kcb` and columns `c0..c0 + cols` lie inside `B`; the
        // destination is this unit's own `⌈cols/nr⌉·nr·kcb` elements inside `packed`.
        unsafe {
            let dst = std::slice::from_raw_parts_mut(
                self.packed.add(pc * self.n_pad + c0 * kcb),
                cols.div_ceil(nr) * nr * kcb,
            );
            pack::pack_b(
                kcb,
                cols,
                self.b.offset(pc as isize * self.rsb + c0 as isize * self.csb),
                self.rsb,
                self.csb,
                nr,
                dst,
            );
        }
        self.slice_done[q].fetch_add(1, Ordering::Release);
    }

    /// Computes tile `t` over the whole `k` range, then runs the epilogue on its rows.
    ///
    /// # Safety
    ///
    /// `t < grid.tiles()`, claimed once, while the creating call waits. The slices of `B` it
    /// reads are packed on the way ([`Job::ensure_slice`]).
    unsafe fn run_tile(&self, t: usize) {
        let (mr, nr) = (self.kernel.mr(), self.kernel.nr());
        let Tile { r0, rows, c0, cols } = self.grid.tile(t);
        let blk = self.blk;
        let mc = even_blocks(rows, blk.mc, mr);
        let direct = reads_a_in_place(
            self.csa,
            self.rsa,
            std::mem::size_of::<T>(),
            (self.m, self.kernel.mr()),
            self.n,
        );
        let a_space = if direct { 0 } else { mc * blk.kc.min(self.k) };
        with_pack_space::<T, _>(a_space, 0, |pa, _| {
            for pc in (0..self.k).step_by(blk.kc) {
                let kcb = blk.kc.min(self.k - pc);
                self.ensure_slice(pc / blk.kc);
                let hints = blk.asks_next_panel(kcb * self.n_pad * size_of::<T>());
                for ic in (r0..r0 + rows).step_by(mc) {
                    let mcb = mc.min(r0 + rows - ic);
                    // SAFETY: rows `ic..ic + mcb`, columns `pc..pc + kcb` lie inside `A`.
                    let a_block = unsafe { self.a.offset(ic as isize * self.rsa + pc as isize * self.csa) };
                    if !direct {
                        // SAFETY: as above.
                        unsafe { pack::pack_a(mcb, kcb, a_block, self.rsa, self.csa, mr, pa) };
                    }
                    for jr in (c0..c0 + cols).step_by(nr) {
                        // SAFETY: panel `jr / nr` of slice `pc` was packed (every unit of
                        // the slice is done: `ensure_slice` above); the clipped micro-tile
                        // lies inside this tile of `C`, which no other thread touches; the
                        // kernel runs on this CPU.
                        unsafe {
                            let bpanel = self.packed.add(pc * self.n_pad + jr * kcb);
                            // The tile's next panel, for its tiles to ask L2 for as they run.
                            let next = if hints && jr + nr < c0 + cols {
                                bpanel.wrapping_add(nr * kcb)
                            } else {
                                std::ptr::null()
                            };
                            for (t, (ir, r)) in self.kernel.row_tiles(mcb, direct).enumerate() {
                                let ct = self.c.add((ic + ir) * self.n + jr);
                                let cl = nr.min(c0 + cols - jr);
                                let ldc = self.n as isize;
                                let (ap, ap_rs) = if direct {
                                    (a_block.offset(ir as isize * self.rsa), self.rsa)
                                } else {
                                    (pa[ir * kcb..].as_ptr(), 0)
                                };
                                let tile = self.kernel.tile_for(r, cl, direct);
                                let next = microkernel::next_panel_stretch(next, nr * kcb, kcb, t);
                                tile(kcb, ap, ap_rs, bpanel, nr as isize, ct, ldc, 1, r, cl, pc == 0, next)
                            }
                        }
                    }
                }
            }
        });
        if let Some(epi) = self.epilogue {
            for r in r0..r0 + rows {
                // SAFETY: row `r` of this tile, written above and owned by this claim; the
                // epilogue outlives the job (see the field).
                unsafe {
                    let seg = std::slice::from_raw_parts_mut(self.c.add(r * self.n + c0), cols);
                    (*epi)(r, c0, seg);
                }
            }
        }
    }
}

impl<T: PackedFloat> crate::kernels::helpers::Helping for Job<T> {
    /// Computes tiles until none are left, packing the slices of `B` they need on the way
    /// ([`Job::ensure_slice`]); whether it claimed any.
    fn help(&self) -> bool {
        let mut claimed = false;
        loop {
            let claim = self.tile_next.fetch_add(1, Ordering::Relaxed);
            let Some(&t) = self.order.get(claim) else {
                return claimed;
            };
            claimed = true;
            // SAFETY: claim `claim` is taken once and `order` is a permutation of the tiles,
            // so tile `t` is computed once; each slice is packed before the tile reads it.
            unsafe { self.run_tile(t) };
            self.tile_done.fetch_add(1, Ordering::Release);
        }
    }

    fn finished(&self) -> bool {
        self.tile_done.load(Ordering::Acquire) >= self.order.len()
    }

    fn long_claims(&self) -> bool {
        // Tiles are cut to 2^18 multiply-adds or more (`grid.rs`'s `MIN_TILE_MACS`, as many
        // as `LONG_CLAIM_MACS`) where the product allows; counting a shorter one costs only
        // two transfers of a cache line.
        true
    }
}

/// `C = A·B` for one product on up to `threads` threads (the caller and rayon helpers),
/// then `epilogue` on every row segment of each tile. `C` is row-major `m × n`, written
/// whole (each tile's first `k` slice overwrites it) and never read first, so it may be
/// uninitialised. Returns `false`, touching nothing, when this CPU has no packed kernel for
/// `T`.
///
/// # Safety
///
/// As [`super::packed_gemm`] with `m, k, n > 0`, `rsc = n`, `csc = 1`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn parallel_gemm<T: PackedFloat>(
    (m, k, n): (usize, usize, usize),
    (a, rsa, csa): (*const T, isize, isize),
    (b, rsb, csb): (*const T, isize, isize),
    c: *mut T,
    threads: usize,
    epilogue: Option<&Epilogue<'_, T>>,
) -> bool {
    let Some(kernel) = T::kernel(Isa::detect()) else {
        return false;
    };
    let (mr, nr) = (kernel.mr(), kernel.nr());
    let blk = Blocking::new(Caches::detect(), mr, nr, std::mem::size_of::<T>());
    let n_pad = n.div_ceil(nr) * nr;
    let grid = Grid::new((m, k, n), mr, nr, threads);
    let units_per_slice = n.div_ceil(nr).div_ceil(PANELS_PER_UNIT);
    let words = (k * n_pad * std::mem::size_of::<T>()).div_ceil(8);
    SHARED_B.with(|cell| {
        let mut own = Vec::new();
        let mut borrowed = cell.try_borrow_mut();
        let space: &mut Vec<u64> = match borrowed.as_deref_mut() {
            // Keep up to 64 MiB for the next product; a larger `B` gets a buffer of its own.
            Ok(space) if words <= KEEP_WORDS => space,
            _ => &mut own,
        };
        let packed = aligned_words(space, words).as_mut_ptr().cast::<T>();
        debug_assert_eq!(packed as usize % 64, 0, "packed B starts on a cache line");
        let job = Arc::new(Job {
            kernel,
            blk,
            m,
            k,
            n,
            a,
            rsa,
            csa,
            b,
            rsb,
            csb,
            c,
            packed,
            n_pad,
            grid,
            order: grid.claim_order(),
            units_per_slice,
            units: k.div_ceil(blk.kc) * units_per_slice,
            unit_next: AtomicUsize::new(0),
            slice_done: (0..k.div_ceil(blk.kc)).map(|_| AtomicUsize::new(0)).collect(),
            tile_next: AtomicUsize::new(0),
            tile_done: AtomicUsize::new(0),
            // SAFETY (lifetime erasure): the epilogue is only called from tiles of this job,
            // all of which finish before this function returns.
            epilogue: epilogue.map(|e| unsafe {
                std::mem::transmute::<*const Epilogue<'_, T>, *const Epilogue<'static, T>>(e as *const _)
            }),
        });
        // Only tiles are claimed from `help`: a helper beyond the tile count would find nothing.
        crate::kernels::helpers::share(&job, threads.min(job.order.len()).saturating_sub(1));
    });
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_threads_and_small_products_use_bands_large_ones_share_one_packed_b() {
        if std::env::var_os("FERROFLOW_GEMM_SPLIT").is_some() {
            return; // forced either way for a comparison run
        }
        let large = 1024 * 1024 * 1024;
        assert!(!shares_packed_b(1, large) && !shares_packed_b(2, large));
        assert!(shares_packed_b(3, large) && shares_packed_b(16, large));
        assert!(shares_packed_b(16, SHARED_B_MIN_MACS));
        assert!(!shares_packed_b(16, SHARED_B_MIN_MACS - 1) && !shares_packed_b(16, 512 * 512 * 512));
    }
}
