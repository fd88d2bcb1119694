//! Blocked, parallel matrix multiplication kernels.
//!
//! # Design
//!
//! The float path ([`gemm`], [`batched_gemm`]) is a parallel driver around a
//! single-threaded, packed, SIMD GEMM: ferroflow's own (`super::gemm`: AVX-512
//! and AVX2 + FMA micro-kernels chosen at run time) where the CPU has one, the
//! `matrixmultiply` crate's elsewhere. One large product (batch 1, from about
//! 2^28 multiply-adds) on three or more threads runs on
//! `super::gemm::parallel_gemm` instead: `B` packed once and shared by all
//! threads, `C` cut into a grid over rows and columns (on two threads, and for
//! smaller products, bands that each pack their own `B` measured faster: see
//! `super::gemm::shares_packed_b`). What follows describes the batch driver;
//! both keep the guarantees below.
//!
//! * **One thread pool.** All parallelism comes from rayon's global pool.
//!   `matrixmultiply`'s own `threading` feature stays off, so every
//!   `matrixmultiply` call is single-threaded and threads never nest (no
//!   oversubscription when a matmul runs inside an outer rayon task).
//! * **Split the output, never `k`.** The output `C` (and, for batched calls,
//!   the batch) is cut into disjoint blocks; each block is computed by
//!   exactly one single-threaded `matrixmultiply` call over the *full* `k`
//!   range. Every output element therefore sees the same sequence of
//!   floating point operations however `C` is split, so results are
//!   bit-identical between the serial and parallel paths and across thread
//!   counts.
//! * **Deterministic plan.** The block grid is a pure function of
//!   `(m, k, n, batch, rayon::current_num_threads())`. Only the assignment
//!   of blocks to threads, and for products near the threshold whether to
//!   split at all, is dynamic, and neither can influence any value.
//! * **Self-scheduling, caller participates.** The calling thread spawns
//!   `threads − 1` helper tasks on the pool and then claims blocks from a
//!   shared atomic counter itself, exactly like the helpers. Helpers are
//!   fire-and-forget: one that starts after every block has been claimed
//!   returns without touching the operands, so a call never waits for a
//!   sleeping worker to wake up (a `join`/`scope` would), only for blocks
//!   already being computed.
//! * **Threshold.** Below [`PAR_THRESHOLD_MACS`] multiply-adds in total the
//!   call stays on the calling thread (see the constant for measurements),
//!   down to [`WARM_PAR_THRESHOLD_MACS`] while the pool's workers are still
//!   awake from a product that ended moments ago.
//! * **Block shape.** One matrix is cut into `threads` row bands aligned to
//!   the microkernel tile (column bands when `C` is too short). Finer grids
//!   lose: every `matrixmultiply` call repacks the whole shared operand, so
//!   on 2 cores 4–16 blocks per thread measured 5–30% slower than one band
//!   per thread; row bands measured on par with or ahead of column bands
//!   (n ≤ 1024) and keep `C` writes contiguous. Batches are split across
//!   entries, and additionally into bands when the entry count is not a
//!   multiple of the thread count (so every thread gets equal work).
//!
//! The integer path ([`gemm_int`], [`batched_gemm_int`]) is single-threaded: one dot
//! product per element, accumulated in `p` order with wrapping arithmetic.

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::gemm;
use super::pool_warmth;
pub use super::tiny_matmul::DotOrder;
use super::tiny_matmul::{self, chain_entry};

/// Total multiply-add count (`batch · m · k · n`) below which the float
/// kernels run on the calling thread only.
///
/// Measured on a shared 2-core x86-64 (AVX-512) machine, f32, square `n`:
/// with warm pool workers (back-to-back calls) two bands beat one thread
/// from n ≈ 64 on (+20% at 64, +30% at 80, +60% at 128); with sleeping
/// workers a split 64³ product took ≈ 11 µs against ≈ 5 µs on one thread.
/// So a cold pool keeps n ≤ 64 serial and splits from n ≈ 67 on; a warm one
/// splits from [`WARM_PAR_THRESHOLD_MACS`].
pub const PAR_THRESHOLD_MACS: usize = 300_000;

/// The lower threshold that applies while rayon's workers are still awake from a product
/// that ended moments ago (back-to-back calls): then nobody pays the wake-up, and on a
/// 2-core AMD Zen 4 splitting a 64³ product (262 144 multiply-adds) ran +20–30 % faster
/// for `f32` and `f64`. Smaller ones gained nothing (n = 40, 48) or lost (n = 56, whose
/// uneven bands cost more than the second core gave). It applies to bands and batches
/// only, not to one product on the shared-`B` driver (three or more threads).
pub const WARM_PAR_THRESHOLD_MACS: usize = 1 << 18;

/// Minimal multiply-add count of one parallel block; plans never cut the
/// output into blocks smaller than this.
const MIN_BLOCK_MACS: usize = 1 << 16;

/// Multiply-adds one claim of consecutive tiny blocks should reach (keeps
/// the shared counter off the hot path for large batches of small products).
const MIN_CLAIM_MACS: usize = 1 << 15;

mod sealed {
    /// Restricts [`super::GemmFloat`] to the types `matrixmultiply` supports.
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// Element types the blocked float matmul supports (`f32`, `f64`).
///
/// The trait is sealed; it carries the raw hooks into the GEMM kernels.
pub trait GemmFloat:
    Copy + Send + Sync + 'static + Default + std::ops::Add<Output = Self> + std::ops::Mul<Output = Self> + sealed::Sealed
{
    /// Row/column granularity that parallel blocks are aligned to: a
    /// multiple of the microkernel tile (`MR`, `NR`) of every x86-64 kernel
    /// `matrixmultiply` may select for this type.
    const TILE: usize;

    /// Raw single-threaded `C = A·B` (or `C += A·B` when `accumulate`) through the packed
    /// kernel of this CPU (or `matrixmultiply` where there is none): the one unsafe hook
    /// every float product of the crate (matmul and the convolutions) goes through. Unless
    /// accumulating, every element of the `m × n` block of `C` is written and none is read
    /// first, so `C` may be uninitialised memory (matmul's outputs are).
    ///
    /// # Safety
    ///
    /// For all `i < m`, `p < k`, `j < n` the pointers `a + i·rsa + p·csa`,
    /// `b + p·rsb + j·csb` must be valid for reads and `c + i·rsc + j·csc`
    /// valid for writes (and reads when accumulating), with the `C` elements
    /// distinct and not aliased by anything else during the call.
    #[allow(clippy::too_many_arguments)]
    unsafe fn raw_gemm(
        m: usize,
        k: usize,
        n: usize,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        c: *mut Self,
        rsc: isize,
        csc: isize,
        accumulate: bool,
    );

    /// One row-major product `C = A·B` (`m × n`, `m, k, n > 0`) on `threads` threads around a
    /// `B` packed once and shared, then `epilogue` on each row segment; `false`, touching
    /// nothing, where this CPU has no packed kernel.
    ///
    /// # Safety
    ///
    /// As [`GemmFloat::raw_gemm`] with `rsc = n`, `csc = 1`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn raw_gemm_parallel(
        m: usize,
        k: usize,
        n: usize,
        a: (*const Self, isize, isize),
        b: (*const Self, isize, isize),
        c: *mut Self,
        threads: usize,
        epilogue: Option<&Epilogue<'_, Self>>,
    ) -> bool;

    /// Batch entry `bi` of a tiny product (at most [`TINY_MACS`] multiply-adds) into `c`, one
    /// dot product per element summed in TensorFlow's `order` for this type
    /// ([`tiny_matmul`](super::tiny_matmul)).
    ///
    /// # Safety
    ///
    /// Every element of the entry's `A` (`m × k`) and `B` (`k × n`) lies inside `a.data` and
    /// `b.data` (what [`contract_ok`] checks); `n > 0` and `c` holds at least `m·n` elements.
    unsafe fn tiny_entry<'c>(
        dims: (usize, usize, usize),
        bi: usize,
        a: MatRef<'_, Self>,
        b: MatRef<'_, Self>,
        c: &'c mut [MaybeUninit<Self>],
        order: DotOrder,
    ) -> &'c mut [Self];
}

/// Implements [`GemmFloat`] for `f32` and `f64`: the packed kernels, with `matrixmultiply`'s
/// `$portable` (`sgemm` / `dgemm`) where this CPU has none.
macro_rules! gemm_float {
    ($t:ty, $tile:literal, $portable:path, $tiny:path) => {
        impl GemmFloat for $t {
            const TILE: usize = $tile;

            unsafe fn raw_gemm(
                m: usize,
                k: usize,
                n: usize,
                a: *const $t,
                rsa: isize,
                csa: isize,
                b: *const $t,
                rsb: isize,
                csb: isize,
                c: *mut $t,
                rsc: isize,
                csc: isize,
                accumulate: bool,
            ) {
                // SAFETY: forwarded caller contract (see trait docs); `Isa::detect` only
                // names kernels this CPU runs.
                let packed = unsafe {
                    gemm::packed_gemm(
                        gemm::Isa::detect(),
                        (m, k, n),
                        (a, rsa, csa),
                        (b, rsb, csb),
                        (c, rsc, csc),
                        accumulate,
                    )
                };
                if packed {
                    return;
                }
                let beta = if accumulate { 1.0 } else { 0.0 };
                // SAFETY: forwarded caller contract (see trait docs); with beta = 0 `C` is
                // only written, never read.
                unsafe { $portable(m, k, n, 1.0, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
            }

            unsafe fn raw_gemm_parallel(
                m: usize,
                k: usize,
                n: usize,
                a: (*const $t, isize, isize),
                b: (*const $t, isize, isize),
                c: *mut $t,
                threads: usize,
                epilogue: Option<&Epilogue<'_, $t>>,
            ) -> bool {
                // SAFETY: forwarded caller contract.
                unsafe { gemm::parallel_gemm((m, k, n), a, b, c, threads, epilogue) }
            }

            unsafe fn tiny_entry<'c>(
                dims: (usize, usize, usize),
                bi: usize,
                a: MatRef<'_, $t>,
                b: MatRef<'_, $t>,
                c: &'c mut [MaybeUninit<$t>],
                order: DotOrder,
            ) -> &'c mut [$t] {
                // SAFETY: forwarded caller contract.
                unsafe { $tiny(dims, bi, a, b, c, order) }
            }
        }
    };
}

gemm_float!(f32, 16, matrixmultiply::sgemm, tiny_matmul::f32_entry);
gemm_float!(f64, 8, matrixmultiply::dgemm, tiny_matmul::f64_entry);

/// Index one past the last element a `rows × cols` operand with strides
/// `(rs, cs)` starting at `offset` addresses; `None` on overflow. Only
/// meaningful for non-empty operands.
fn end_index(offset: usize, rows: usize, cols: usize, rs: usize, cs: usize) -> Option<usize> {
    let r = (rows - 1).checked_mul(rs)?;
    let c = (cols - 1).checked_mul(cs)?;
    offset.checked_add(r)?.checked_add(c)?.checked_add(1)
}

/// Whether every operand described by `offsets` fits into a slice of `len`.
fn operands_fit(len: usize, offsets: &[usize], rows: usize, cols: usize, rs: usize, cs: usize) -> bool {
    offsets
        .iter()
        .all(|&o| end_index(o, rows, cols, rs, cs).is_some_and(|end| end <= len))
}

/// Stride as `isize` for `matrixmultiply`. A stride along a dimension of
/// extent 1 is never multiplied by a non-zero index, so it is normalised to
/// 0 (it may be arbitrarily large and not fit `isize`). Otherwise the bounds
/// check guarantees `stride ≤ slice.len() ≤ isize::MAX`.
fn istride(stride: usize, extent: usize) -> isize {
    if extent <= 1 {
        0
    } else {
        stride as isize
    }
}

/// Parallel block grid of one matrix product (per batch entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Plan {
    /// Rows per block (multiple of the tile unless it covers all of `m`).
    mb: usize,
    /// Columns per block.
    nb: usize,
    /// Number of row blocks.
    row_blocks: usize,
    /// Number of column blocks.
    col_blocks: usize,
}

impl Plan {
    fn single(m: usize, n: usize) -> Self {
        Plan {
            mb: m,
            nb: n,
            row_blocks: 1,
            col_blocks: 1,
        }
    }

    fn blocks(&self) -> usize {
        self.row_blocks * self.col_blocks
    }
}

/// Split `len` into about `parts` chunks whose size is a multiple of `tile`
/// (except the last). Returns `(chunk, count)`.
fn split_aligned(len: usize, parts: usize, tile: usize) -> (usize, usize) {
    let chunk = len.div_ceil(parts.max(1)).div_ceil(tile) * tile;
    let chunk = chunk.clamp(1, len.max(1));
    (chunk, len.div_ceil(chunk))
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Deterministic block plan for `batch` products of size `m × k × n` on
/// `threads` workers. Returns `None` when the call should stay serial.
///
/// Measured on 2 cores (f32, square): splitting one matrix into exactly
/// `threads` row bands beats finer grids (each block repacks the whole shared
/// operand, so 4–16 blocks per thread lost 5–30% with `matrixmultiply`; with
/// this crate's kernels, 4 bands instead of 2 still lost 4–10% at n = 64 and
/// 128 on a 2-core Zen 4) and is on par with or slightly ahead of column bands.
///
/// `warm` says the pool's workers are awake (see [`WARM_PAR_THRESHOLD_MACS`]); it moves
/// only the threshold, never the grid of a product above both.
fn plan(tile: usize, m: usize, k: usize, n: usize, batch: usize, threads: usize, warm: bool) -> Option<Plan> {
    let per = m.saturating_mul(k).saturating_mul(n);
    let threshold = if warm {
        WARM_PAR_THRESHOLD_MACS
    } else {
        PAR_THRESHOLD_MACS
    };
    if threads <= 1 || per.saturating_mul(batch) < threshold {
        return None;
    }
    // Blocks per matrix so that the task count is a multiple of `threads`
    // (every worker gets the same amount of work); many batch entries
    // balance well enough on their own.
    let mut want = if batch >= 8 * threads {
        1
    } else {
        threads / gcd(batch, threads)
    };
    want = want.min((per / MIN_BLOCK_MACS).max(1));
    if want <= 1 {
        return (batch > 1).then_some(Plan::single(m, n));
    }
    let (row_tiles, col_tiles) = (m.div_ceil(tile), n.div_ceil(tile));
    if row_tiles >= want || row_tiles >= col_tiles {
        let (mb, row_blocks) = split_aligned(m, want, tile);
        Some(Plan {
            mb,
            nb: n,
            row_blocks,
            col_blocks: 1,
        })
    } else {
        let (nb, col_blocks) = split_aligned(n, want, tile);
        Some(Plan {
            mb: m,
            nb,
            row_blocks: 1,
            col_blocks,
        })
    }
}

/// One float matmul call, shared between the calling thread and helper
/// tasks on rayon's pool. Blocks are claimed through `next`; `done` counts
/// finished blocks.
struct Job<T> {
    a: *const T,
    b: *const T,
    c: *mut T,
    /// Lengths of the slices behind `a` and `b` (`contract_ok` checked every entry against
    /// them), so a tiny entry can be computed through [`tiny_entry`] as on the serial path.
    a_len: usize,
    b_len: usize,
    a_offsets: *const usize,
    b_offsets: *const usize,
    /// Entries in the batch (the length of both offset lists).
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
    rsa: isize,
    csa: isize,
    rsb: isize,
    csb: isize,
    plan: Plan,
    /// `batch · plan.blocks()`.
    total: usize,
    /// Blocks taken per claim.
    grain: usize,
    /// Entry 0's offsets into `a` and `b`, copied: a helper's block of a single product
    /// then reads nothing of the caller's but the job and the operands (the offset lists
    /// sit in memory the caller has just written, one more miss before the first multiply).
    /// Measured on 2 cores: 64³ `f32` products took 2.78 µs with the copy and 2.93 reading
    /// the list (eight alternating runs of 300 000, mean of the faster 90 % of calls).
    first_offsets: (usize, usize),
    next: AtomicUsize,
    done: AtomicUsize,
    /// Applied to each row segment of a block right after it is computed:
    /// `(row of C counting across batches, first column, the segment)`. The
    /// pointer's lifetime is erased; it is valid for as long as the call
    /// that created the job waits (see `helpers::share`).
    epilogue: Option<*const Epilogue<'static, T>>,
    /// How tiny entries sum their dot products.
    order: DotOrder,
}

/// A function applied to each computed row segment of `C` while it is in
/// cache: `(row across batches, first column, segment)`. Bias-add and
/// activation fusion use it.
pub type Epilogue<'a, T> = dyn Fn(usize, usize, &mut [T]) + Sync + 'a;

// SAFETY: the raw pointers are only dereferenced in `run_block` for a block
// index claimed from `next` (< `total`); the thread that created the job
// does not return (ending the borrows behind the pointers) before `done`
// reaches `total`, i.e. before every such block has finished. Claimed blocks
// are pairwise disjoint regions of `C`; `A`, `B` and the offsets are only
// read. `T: Send + Sync` (GemmFloat).
unsafe impl<T: Send + Sync> Send for Job<T> {}
// SAFETY: as above; all shared mutation goes through atomics or disjoint
// output blocks.
unsafe impl<T: Send + Sync> Sync for Job<T> {}

impl<T: GemmFloat> Job<T> {
    /// Computes block `t` (`t < total`) of the plan.
    ///
    /// # Safety
    ///
    /// The slices behind the pointers must still be borrowed by the creating
    /// call, have passed `contract_ok`, and block `t` must not be computed
    /// concurrently by anyone else.
    unsafe fn run_block(&self, t: usize) {
        let p = &self.plan;
        let blocks = p.blocks();
        let (bi, blk) = (t / blocks, t % blocks);
        let (ri, cj) = (blk / p.col_blocks, blk % p.col_blocks);
        let (r0, c0) = (ri * p.mb, cj * p.nb);
        let rows = p.mb.min(self.m - r0);
        let cols = p.nb.min(self.n - c0);
        // SAFETY: `contract_ok` established that for every batch entry the
        // operands `A_bi` (m×k) and `B_bi` (k×n) lie inside their slices and
        // that `C` holds `batch · m · n` elements; `bi < batch` and the block
        // covers rows `r0..r0 + rows ≤ m` and columns `c0..c0 + cols ≤ n`, so
        // every pointer formed here and inside `raw_gemm` stays in bounds.
        // Distinct `t` give disjoint `C` blocks and each `t` is claimed once.
        unsafe {
            if is_tiny((self.m, self.k, self.n)) && rows == self.m && cols == self.n {
                // A tiny entry (plans never cut one: it is a whole block) gets the serial
                // path's arithmetic, so its bits do not depend on the split.
                let a = MatRef {
                    data: std::slice::from_raw_parts(self.a, self.a_len),
                    offsets: std::slice::from_raw_parts(self.a_offsets, self.batch),
                    rs: self.rsa as usize,
                    cs: self.csa as usize,
                };
                let b = MatRef {
                    data: std::slice::from_raw_parts(self.b, self.b_len),
                    offsets: std::slice::from_raw_parts(self.b_offsets, self.batch),
                    rs: self.rsb as usize,
                    cs: self.csb as usize,
                };
                let c = std::slice::from_raw_parts_mut(
                    self.c.add(bi * self.m * self.n).cast::<MaybeUninit<T>>(),
                    self.m * self.n,
                );
                let epilogue = self.epilogue.map(|e| &*e);
                tiny_entry((self.m, self.k, self.n), bi, a, b, c, (self.order, epilogue));
                return;
            }
            let (ao, bo) = if bi == 0 {
                self.first_offsets
            } else {
                (*self.a_offsets.add(bi), *self.b_offsets.add(bi))
            };
            let ap = self.a.add(ao).offset(r0 as isize * self.rsa);
            let bp = self.b.add(bo).offset(c0 as isize * self.csb);
            let cp = self.c.add((bi * self.m + r0) * self.n + c0);
            T::raw_gemm(
                rows,
                self.k,
                cols,
                ap,
                self.rsa,
                self.csa,
                bp,
                self.rsb,
                self.csb,
                cp,
                self.n as isize,
                1,
                false,
            );
            if let Some(epi) = self.epilogue {
                for r in 0..rows {
                    let row = std::slice::from_raw_parts_mut(cp.add(r * self.n), cols);
                    (*epi)(bi * self.m + r0 + r, c0, row);
                }
            }
        }
    }
}

impl<T: GemmFloat> super::helpers::Helping for Job<T> {
    /// Claims and computes blocks until none are left; whether it claimed any. A thread
    /// whose claim ended at the last block returns without claiming again (so of two
    /// threads sharing two blocks, only the one done first touches the counter twice).
    fn help(&self) -> bool {
        let mut claimed = false;
        loop {
            let t0 = self.next.fetch_add(self.grain, Ordering::Relaxed);
            if t0 >= self.total {
                return claimed;
            }
            claimed = true;
            let t1 = (t0 + self.grain).min(self.total);
            for t in t0..t1 {
                // SAFETY: `t < total` was claimed exactly once (atomic
                // counter), so no one else computes it, and the creating call
                // is still waiting for `done` to count it (see `Send` impl).
                unsafe { self.run_block(t) };
            }
            self.done.fetch_add(t1 - t0, Ordering::Release);
            if t1 == self.total {
                // The last block was this claim's: a further claim would only move the
                // counter's line to this core to find nothing.
                return true;
            }
        }
    }

    fn finished(&self) -> bool {
        self.done.load(Ordering::Acquire) >= self.total
    }

    fn long_claims(&self) -> bool {
        claims_are_long(
            (self.m, self.k, self.n),
            &self.plan,
            self.grain,
            self.epilogue.is_some(),
        )
    }
}

/// Products of at most this many multiply-adds skip `matrixmultiply`: its packing buffers
/// (an aligned allocation per call) and packing cost more than the arithmetic of the seed
/// model's 1×3·3×3 or a 32×3·3×3 training batch.
const TINY_MACS: usize = 512;

/// Whether an `m × k × n` entry is tiny (at most [`TINY_MACS`]): computed by
/// [`tiny_entry`]'s naive loop on every path, split or not.
fn is_tiny((m, k, n): (usize, usize, usize)) -> bool {
    m.saturating_mul(k).saturating_mul(n) <= TINY_MACS
}

/// Whether claims of `grain` blocks of `plan` over `m × k × n` entries may run long (see
/// [`super::helpers::Helping::long_claims`]): judged by their multiply-adds plus
/// [`STORE_MACS`] per output stored, as the packed kernels run them; the slower paths (the
/// naive loop of tiny entries, an epilogue, `matrixmultiply` where no packed kernel runs)
/// count as long at any size.
fn claims_are_long((m, k, n): (usize, usize, usize), plan: &Plan, grain: usize, epilogue: bool) -> bool {
    let slow_path = is_tiny((m, k, n)) || epilogue || gemm::Isa::detect() == gemm::Isa::Portable;
    let outputs = plan.mb.saturating_mul(plan.nb).saturating_mul(grain);
    slow_path || outputs.saturating_mul(k.saturating_add(STORE_MACS)) >= super::helpers::LONG_CLAIM_MACS
}

/// Multiply-adds one stored output counts as when a claim's length is judged
/// ([`claims_are_long`]): a store and its share of the loops take about a cycle, in which the
/// packed kernels do 16 to 32 multiply-adds; with `k = 1` a claim is mostly stores.
const STORE_MACS: usize = 32;

/// One operand of a (batched) product: batch entry `i` is the matrix starting at
/// `data[offsets[i]]` whose element `(r, c)` is `data[offsets[i] + r·rs + c·cs]`. A transposed
/// or broadcast operand is just other strides or repeated offsets, never a copy.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a, T> {
    /// The elements.
    pub data: &'a [T],
    /// Where each batch entry starts in `data`.
    pub offsets: &'a [usize],
    /// Row stride.
    pub rs: usize,
    /// Column stride.
    pub cs: usize,
}

impl<'a, T> MatRef<'a, T> {
    /// A single matrix starting at `data[0]`.
    pub fn new(data: &'a [T], rs: usize, cs: usize) -> Self {
        MatRef {
            data,
            offsets: &[0],
            rs,
            cs,
        }
    }

    /// Batch entries starting at `offsets`.
    pub fn batched(data: &'a [T], offsets: &'a [usize], rs: usize, cs: usize) -> Self {
        MatRef { data, offsets, rs, cs }
    }
}

/// `c = a·b`, or `c += a·b` when `accumulate`, for one product on the calling thread: `a`
/// (`m × k`) and `b` (`k × n`) strided, `c` the contiguous row-major `m × n` block. The entry
/// the convolution kernels use for each of their blocks (they parallelise over blocks
/// themselves); it shares [`GemmFloat::raw_gemm`] with [`gemm`].
///
/// # Panics
///
/// If an operand's last element lies outside its slice or `c` is shorter than `m·n`: the
/// callers size everything from a checked geometry, so this is a bug, never bad input.
pub fn gemm_serial<T: GemmFloat>(
    (m, k, n): (usize, usize, usize),
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: &mut [T],
    accumulate: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(c.len() >= m * n, "gemm_serial: output too small");
    if k == 0 {
        if !accumulate {
            c[..m * n].fill(T::default());
        }
        return;
    }
    assert!(
        operands_fit(a.data.len(), a.offsets, m, k, a.rs, a.cs)
            && operands_fit(b.data.len(), b.offsets, k, n, b.rs, b.cs),
        "gemm_serial: an operand lies outside its slice"
    );
    // SAFETY: the asserts keep every addressed element of `a`, `b` and `c` in bounds; `c`
    // is a unique borrow, so it aliases neither operand.
    unsafe {
        T::raw_gemm(
            m,
            k,
            n,
            a.data.as_ptr().add(a.offsets[0]),
            istride(a.rs, m),
            istride(a.cs, k),
            b.data.as_ptr().add(b.offsets[0]),
            istride(b.rs, k),
            istride(b.cs, n),
            c.as_mut_ptr(),
            n as isize,
            1,
            accumulate,
        )
    }
}

/// One whole float batch entry below [`TINY_MACS`]: [`GemmFloat::tiny_entry`] in `order`,
/// then `epilogue` on each of its rows. The serial path and a parallel job's tiny blocks
/// share it, so a tiny entry's bits never depend on the split.
///
/// # Safety
///
/// As [`GemmFloat::tiny_entry`].
unsafe fn tiny_entry<T: GemmFloat>(
    (m, k, n): (usize, usize, usize),
    bi: usize,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: &mut [MaybeUninit<T>],
    (order, epilogue): (DotOrder, Option<&Epilogue<'_, T>>),
) {
    // SAFETY: this function's contract.
    let c = unsafe { T::tiny_entry((m, k, n), bi, a, b, c, order) };
    if let Some(epi) = epilogue {
        epilogue_on_rows(c, n, bi * m, epi);
    }
}

/// Runs `epi` on each `n`-wide row of `c` (whole batch entries), whose first row is row
/// `row0` of `C` counting across batches.
fn epilogue_on_rows<T>(c: &mut [T], n: usize, row0: usize, epi: &Epilogue<'_, T>) {
    for (r, row) in c.chunks_exact_mut(n).enumerate() {
        epi(row0 + r, 0, row);
    }
}

/// Shared driver of [`gemm`] and [`batched_gemm`]; bounds already checked,
/// `m, k, n, batch > 0`.
fn drive<T: GemmFloat>(
    (m, k, n): (usize, usize, usize),
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: &mut [MaybeUninit<T>],
    plan: Option<Plan>,
    (order, epilogue): (DotOrder, Option<&Epilogue<'_, T>>),
) {
    let batch = a.offsets.len();
    let Some(p) = plan else {
        // Serial: no job, no atomics, no allocation (small products like the seed model's
        // 1×3·3×3 live here, where that bookkeeping cost more than the arithmetic).
        for (bi, cb) in c[..batch * m * n].chunks_exact_mut(m * n).enumerate() {
            if is_tiny((m, k, n)) {
                // SAFETY: `contract_ok` (checked by the caller) established that every batch
                // entry's A (m×k) and B (k×n) lie inside `a` and `b`; `cb` holds m·n elements.
                unsafe { tiny_entry((m, k, n), bi, a, b, cb, (order, epilogue)) };
                continue;
            }
            // SAFETY: `contract_ok` (checked by the caller) established that every batch
            // entry's A (m×k) and B (k×n) lie inside `a` and `b`; `cb` holds m·n elements.
            unsafe {
                T::raw_gemm(
                    m,
                    k,
                    n,
                    a.data.as_ptr().add(a.offsets[bi]),
                    istride(a.rs, m),
                    istride(a.cs, k),
                    b.data.as_ptr().add(b.offsets[bi]),
                    istride(b.rs, k),
                    istride(b.cs, n),
                    cb.as_mut_ptr().cast::<T>(),
                    n as isize,
                    1,
                    false,
                )
            };
            if let Some(epi) = epilogue {
                // SAFETY: the product above wrote every element of `cb`.
                epilogue_on_rows(unsafe { assume_init(cb) }, n, bi * m, epi);
            }
        }
        return;
    };
    let threads = rayon::current_num_threads();
    if batch == 1 && gemm::shares_packed_b(threads, m.saturating_mul(k).saturating_mul(n)) {
        // One large product on many threads: share one packed `B` (see `gemm::parallel`).
        // On few threads, or for a smaller product, the row bands below each pack their own.
        // SAFETY: `contract_ok` (checked by the caller) established that A (m×k) and B (k×n)
        // lie inside `a` and `b` and that `c` holds m·n elements; `c` is a unique borrow.
        let done = unsafe {
            T::raw_gemm_parallel(
                m,
                k,
                n,
                (a.data.as_ptr().add(a.offsets[0]), istride(a.rs, m), istride(a.cs, k)),
                (b.data.as_ptr().add(b.offsets[0]), istride(b.rs, k), istride(b.cs, n)),
                c.as_mut_ptr().cast::<T>(),
                threads,
                epilogue,
            )
        };
        if done {
            return;
        }
    }
    let helpers = threads.saturating_sub(1);
    let total = batch * p.blocks();
    let workers = helpers + 1;
    let by_work = MIN_CLAIM_MACS.div_ceil((p.mb * k * p.nb).max(1));
    let grain = by_work.min(total / (4 * workers)).max(1);
    let job = Arc::new(Job {
        a: a.data.as_ptr(),
        b: b.data.as_ptr(),
        c: c.as_mut_ptr().cast::<T>(),
        a_len: a.data.len(),
        b_len: b.data.len(),
        a_offsets: a.offsets.as_ptr(),
        b_offsets: b.offsets.as_ptr(),
        batch,
        m,
        k,
        n,
        rsa: istride(a.rs, m),
        csa: istride(a.cs, k),
        rsb: istride(b.rs, k),
        csb: istride(b.cs, n),
        plan: p,
        total,
        grain,
        first_offsets: (a.offsets[0], b.offsets[0]),
        next: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        order,
        // SAFETY (lifetime erasure): the epilogue is only called from blocks
        // of this job, all of which finish before `drive` returns (`share` waits
        // for `done == total`), so the borrow outlives every use.
        epilogue: epilogue.map(|e| unsafe {
            std::mem::transmute::<*const Epilogue<'_, T>, *const Epilogue<'static, T>>(e as *const _)
        }),
    });
    // Nothing in the blocks panics (the bounds were checked up front), and `share` returns
    // only once every block is computed, so `c` stays borrowed for as long as helpers write.
    super::helpers::share(&job, helpers.min(total.div_ceil(grain) - 1));
}

/// Spins briefly, then yields, until `done()`: the wait for work already claimed by running
/// threads (this driver's blocks, the shared-`B` driver's packing units and tiles).
pub(crate) fn spin_until(done: impl Fn() -> bool) {
    let mut spins = 0u32;
    while !done() {
        if spins < 64 {
            spins += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

/// Checks the contract shared by the entry points; returns `false` (after a failed
/// `debug_assert!` in debug builds) if it is violated.
fn contract_ok<T>((m, k, n): (usize, usize, usize), a: MatRef<'_, T>, b: MatRef<'_, T>, c_len: usize) -> bool {
    let batch = a.offsets.len();
    let ok_c = batch
        .checked_mul(m)
        .and_then(|x| x.checked_mul(n))
        .is_some_and(|need| need <= c_len);
    let ok = ok_c
        && a.offsets.len() == b.offsets.len()
        && (k == 0
            || m == 0
            || n == 0
            || (operands_fit(a.data.len(), a.offsets, m, k, a.rs, a.cs)
                && operands_fit(b.data.len(), b.offsets, k, n, b.rs, b.cs)));
    debug_assert!(ok_c, "gemm: output slice shorter than batch·m·n");
    debug_assert!(
        a.offsets.len() == b.offsets.len(),
        "gemm: a and b have different batch counts"
    );
    debug_assert!(ok, "gemm: an operand's last element lies outside its slice");
    ok
}

/// The entries' common prologue: checks the contract and returns the `batch·m·n` elements the
/// product is to write; on a violation zeroes what the call may write and returns `None`
/// (see [`gemm`]). Elements past `batch·m·n` are never touched.
fn checked_output<'c, T: Copy + Default>(
    (m, k, n): (usize, usize, usize),
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: &'c mut [MaybeUninit<T>],
) -> Option<&'c mut [MaybeUninit<T>]> {
    let batch = a.offsets.len();
    if !contract_ok((m, k, n), a, b, c.len()) {
        let len = c.len().min(batch.saturating_mul(m).saturating_mul(n));
        fill(&mut c[..len], T::default());
        return None;
    }
    // `contract_ok` checked that this product neither overflows nor exceeds `c.len()`.
    Some(&mut c[..batch * m * n])
}

/// Writes `v` to every element of `c` and returns it, now initialised.
fn fill<T: Copy>(c: &mut [MaybeUninit<T>], v: T) -> &mut [T] {
    for x in c.iter_mut() {
        x.write(v);
    }
    // SAFETY: every element was just written.
    unsafe { assume_init(c) }
}

/// `c` as the initialised values it holds.
///
/// # Safety
///
/// Every element of `c` has been written.
unsafe fn assume_init<T>(c: &mut [MaybeUninit<T>]) -> &mut [T] {
    // SAFETY: `MaybeUninit<T>` has `T`'s layout, and the caller promises initialised values.
    unsafe { std::slice::from_raw_parts_mut(c.as_mut_ptr().cast::<T>(), c.len()) }
}

/// `C = A·B` for one matrix.
///
/// `A` (`m × k`) and `B` (`k × n`) are strided [`MatRef`]s: element `A[i][p]` is
/// `a.data[i·a.rs + p·a.cs]`. A transposed operand is expressed by swapping the strides
/// (never copy it). `c` receives the contiguous row-major `m × n` result (its first `m·n`
/// elements are overwritten).
///
/// `k == 0` yields `C = 0`; `m == 0` or `n == 0` does nothing.
///
/// Large products are split into disjoint output blocks run on rayon's
/// global pool (see the module docs); the result is bit-identical to the
/// serial one.
///
/// The caller guarantees that every addressed element lies inside its
/// slice. This is `debug_assert!`ed; in release builds a violation makes the
/// call write zeros to `C` instead of reading out of bounds.
#[cfg(test)]
pub fn gemm<T: GemmFloat>(m: usize, k: usize, n: usize, a: MatRef<'_, T>, b: MatRef<'_, T>, c: &mut [T]) {
    // SAFETY: the entry only writes initialised values.
    batched_gemm(m, k, n, a, b, unsafe { tests::out(c) }, DotOrder::Chain);
}

/// Batched `C_i = A_i·B_i`.
///
/// Batch entry `i` of each operand starts at its `offsets[i]` ([`MatRef`]), all with the
/// same strides and shapes as in [`gemm`]. `C` is the contiguous `[batch, m, n]` output with
/// `batch = a.offsets.len()` (which must equal `b.offsets.len()`). Broadcast batch
/// dimensions are expressed by repeated offsets.
///
/// Work is split across batch entries and, when there are fewer entries
/// than worker tasks, across output blocks within each entry.
///
/// `c` may be uninitialised: the product writes its first `batch·m·n` elements without
/// reading them, and on return those are initialised (whatever the contract check finds).
/// Elements past them are not touched.
///
/// Tiny products (at most [`TINY_MACS`] multiply-adds) sum each dot product in `order`
/// ([`DotOrder`]: the matmul op asks for TensorFlow's order for its call); larger ones run
/// the packed kernels whatever the order.
///
/// Contract violations are handled as in [`gemm`].
pub fn batched_gemm<T: GemmFloat>(
    m: usize,
    k: usize,
    n: usize,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: &mut [MaybeUninit<T>],
    order: DotOrder,
) {
    batched_gemm_auto((m, k, n), a, b, c, (order, None));
}

/// [`batched_gemm`] followed by `epilogue` on every row segment of each
/// output block, run by the thread that computed the block right after it
/// (so the block is still in cache). With `k == 0` the epilogue runs on the
/// zero rows.
#[allow(clippy::too_many_arguments)]
pub fn batched_gemm_epilogue<T: GemmFloat>(
    m: usize,
    k: usize,
    n: usize,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: &mut [MaybeUninit<T>],
    order: DotOrder,
    epilogue: &Epilogue<'_, T>,
) {
    batched_gemm_auto((m, k, n), a, b, c, (order, Some(epilogue)));
}

/// [`batched_gemm_planned`] under the plan for this pool: split from [`PAR_THRESHOLD_MACS`]
/// on, or from [`WARM_PAR_THRESHOLD_MACS`] while a sizeable product (at least that large,
/// split or not) ended moments ago; this call then records its own end in turn.
///
/// A serial product's end counts too: it says the caller is issuing products back to back,
/// and over such a run one wake-up (paid by the second product) buys a split for every
/// later one. An isolated product, or one after a pause, stays serial.
fn batched_gemm_auto<T: GemmFloat>(
    (m, k, n): (usize, usize, usize),
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: &mut [MaybeUninit<T>],
    finish: (DotOrder, Option<&Epilogue<'_, T>>),
) {
    let batch = a.offsets.len();
    let macs = m.saturating_mul(k).saturating_mul(n).saturating_mul(batch);
    let sizeable = macs >= WARM_PAR_THRESHOLD_MACS;
    let threads = rayon::current_num_threads();
    // One product on the shared-`B` driver would make a single tile of so small a product
    // (no helper, only the packing): the lower threshold is for bands and batches.
    let bands = batch > 1 || !gemm::shares_packed_b(threads, macs);
    let warm = sizeable && bands && pool_warmth::workers_awake();
    let plan = plan(T::TILE, m, k, n, batch, threads, warm);
    batched_gemm_planned((m, k, n), a, b, c, plan, finish);
    if sizeable {
        pool_warmth::note_product_end();
    }
}

/// [`batched_gemm`] with an explicit plan (`None` = serial).
fn batched_gemm_planned<T: GemmFloat>(
    (m, k, n): (usize, usize, usize),
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: &mut [MaybeUninit<T>],
    plan: Option<Plan>,
    (order, epilogue): (DotOrder, Option<&Epilogue<'_, T>>),
) {
    let batch = a.offsets.len();
    let Some(c) = checked_output((m, k, n), a, b, c) else {
        return;
    };
    if m == 0 || n == 0 || batch == 0 {
        return;
    }
    if k == 0 {
        let c = fill(c, T::default());
        if let Some(epi) = epilogue {
            epilogue_on_rows(c, n, 0, epi);
        }
        return;
    }
    drive((m, k, n), a, b, c, plan, (order, epilogue));
}

/// Integer element types of [`gemm_int`]: wrapping multiply-add.
pub trait GemmInt: Copy + Default + Send + Sync + 'static {
    /// `self + a·b` with wrapping (two's complement) overflow.
    fn wrapping_mul_add(self, a: Self, b: Self) -> Self;
}

impl GemmInt for i32 {
    #[inline(always)]
    fn wrapping_mul_add(self, a: i32, b: i32) -> i32 {
        self.wrapping_add(a.wrapping_mul(b))
    }
}

impl GemmInt for i64 {
    #[inline(always)]
    fn wrapping_mul_add(self, a: i64, b: i64) -> i64 {
        self.wrapping_add(a.wrapping_mul(b))
    }
}

/// Integer `C = A·B` (wrapping arithmetic) with the layout conventions of
/// [`gemm`]. Single-threaded, one dot product per element in `p` order.
///
/// Contract violations are handled as in [`gemm`].
#[cfg(test)]
pub fn gemm_int<T: GemmInt>(m: usize, k: usize, n: usize, a: MatRef<'_, T>, b: MatRef<'_, T>, c: &mut [T]) {
    // SAFETY: the entry only writes initialised values.
    batched_gemm_int(m, k, n, a, b, unsafe { tests::out(c) });
}

/// Batched integer matmul with the layout conventions of [`batched_gemm`].
///
/// Its output, like [`batched_gemm`]'s, may be uninitialised.
///
/// Contract violations are handled as in [`gemm`].
pub fn batched_gemm_int<T: GemmInt>(
    m: usize,
    k: usize,
    n: usize,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: &mut [MaybeUninit<T>],
) {
    let Some(c) = checked_output((m, k, n), a, b, c) else {
        return;
    };
    if m == 0 || n == 0 {
        return;
    }
    for (bi, cb) in c.chunks_exact_mut(m * n).enumerate() {
        // SAFETY: `checked_output` checked every entry's operands against their slices, and
        // `cb` holds the entry's `m·n` elements.
        unsafe { chain_entry((m, k, n), bi, a, b, cb, T::wrapping_mul_add) };
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;

    /// An initialised buffer as the gemm entries' output type.
    ///
    /// # Safety
    ///
    /// Only for passing to the gemm entries, which write nothing but initialised values, so
    /// `c` stays initialised; never write `MaybeUninit::uninit()` through it.
    pub(crate) unsafe fn out<T>(c: &mut [T]) -> &mut [MaybeUninit<T>] {
        // SAFETY: `MaybeUninit<T>` has `T`'s layout; the caller keeps `c` initialised.
        unsafe { &mut *(c as *mut [T] as *mut [MaybeUninit<T>]) }
    }

    /// Deterministic pseudo-random values in [-1, 1).
    pub(crate) fn data(len: usize, seed: u64) -> Vec<f64> {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..len)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f64 / (1u64 << 24) as f64) * 2.0 - 1.0
            })
            .collect()
    }

    /// Storage for an `r × c` operand, row-major or transposed (column-major).
    /// Returns `(values, rs, cs)`.
    pub(crate) fn operand(r: usize, c: usize, transposed: bool, seed: u64) -> (Vec<f64>, usize, usize) {
        let v = data(r * c, seed);
        if transposed {
            (v, 1, r)
        } else {
            (v, c, 1)
        }
    }

    /// Naive reference in f64 plus the magnitude bound `Σ|a||b|` per element.
    #[allow(clippy::too_many_arguments)]
    fn naive(
        m: usize,
        k: usize,
        n: usize,
        a: &[f64],
        ao: usize,
        (rsa, csa): (usize, usize),
        b: &[f64],
        bo: usize,
        (rsb, csb): (usize, usize),
    ) -> (Vec<f64>, Vec<f64>) {
        let mut c = vec![0.0; m * n];
        let mut mag = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                for p in 0..k {
                    let x = a[ao + i * rsa + p * csa] * b[bo + p * rsb + j * csb];
                    c[i * n + j] += x;
                    mag[i * n + j] += x.abs();
                }
            }
        }
        (c, mag)
    }

    fn check_f32(m: usize, k: usize, n: usize, ta: bool, tb: bool) {
        let (a, rsa, csa) = operand(m, k, ta, 1 + m as u64);
        let (b, rsb, csb) = operand(k, n, tb, 2 + n as u64);
        let (want, mag) = naive(m, k, n, &a, 0, (rsa, csa), &b, 0, (rsb, csb));
        let a32: Vec<f32> = a.iter().map(|&x| x as f32).collect();
        let b32: Vec<f32> = b.iter().map(|&x| x as f32).collect();
        let mut c = vec![f32::NAN; m * n];
        gemm(
            m,
            k,
            n,
            MatRef::new(&a32, rsa, csa),
            MatRef::new(&b32, rsb, csb),
            &mut c,
        );
        for idx in 0..m * n {
            assert_abs_diff_eq!(c[idx] as f64, want[idx], epsilon = 1e-5 * (mag[idx] + 1.0));
        }
    }

    fn check_f64(m: usize, k: usize, n: usize, ta: bool, tb: bool) {
        let (a, rsa, csa) = operand(m, k, ta, 3 + k as u64);
        let (b, rsb, csb) = operand(k, n, tb, 4 + m as u64);
        let (want, mag) = naive(m, k, n, &a, 0, (rsa, csa), &b, 0, (rsb, csb));
        let mut c = vec![f64::NAN; m * n];
        gemm(m, k, n, MatRef::new(&a, rsa, csa), MatRef::new(&b, rsb, csb), &mut c);
        for idx in 0..m * n {
            assert_abs_diff_eq!(c[idx], want[idx], epsilon = 1e-12 * (mag[idx] + 1.0));
        }
    }

    const SHAPES: &[(usize, usize, usize)] = &[
        (1, 1, 1),
        (1, 7, 1),
        (3, 5, 7),
        (1, 33, 17),
        (17, 33, 1),
        (16, 16, 16),
        (64, 64, 64),
        (100, 81, 100),
        (129, 65, 257),
        (300, 200, 500),
        (20, 300, 700),
        (700, 300, 20),
    ];

    #[test]
    fn f32_matches_naive_all_layouts() {
        for &(m, k, n) in SHAPES {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                check_f32(m, k, n, ta, tb);
            }
        }
    }

    #[test]
    fn f64_matches_naive_all_layouts() {
        for &(m, k, n) in SHAPES {
            for (ta, tb) in [(false, false), (true, true)] {
                check_f64(m, k, n, ta, tb);
            }
        }
        check_f64(300, 200, 500, true, false);
        check_f64(300, 200, 500, false, true);
    }

    #[test]
    fn zero_sizes() {
        // k == 0: C = 0.
        let mut c = vec![f32::NAN; 6];
        gemm::<f32>(2, 0, 3, MatRef::new(&[], 0, 1), MatRef::new(&[], 3, 1), &mut c);
        assert_eq!(c, vec![0.0; 6]);
        let mut c = vec![7i64; 6];
        gemm_int::<i64>(3, 0, 2, MatRef::new(&[], 0, 1), MatRef::new(&[], 2, 1), &mut c);
        assert_eq!(c, vec![0; 6]);
        let mut c = vec![f64::NAN; 12];
        batched_gemm::<f64>(
            2,
            0,
            3,
            MatRef::batched(&[], &[0, 0], 0, 1),
            MatRef::batched(&[], &[0, 0], 3, 1),
            unsafe { out(&mut c) },
            DotOrder::Chain,
        );
        assert_eq!(c, vec![0.0; 12]);
        // m == 0 or n == 0: nothing to do, nothing touched.
        let a = [1.0f32; 6];
        let mut c: [f32; 0] = [];
        gemm(0, 3, 2, MatRef::new(&a, 3, 1), MatRef::new(&a, 2, 1), &mut c);
        gemm(2, 3, 0, MatRef::new(&a, 3, 1), MatRef::new(&a, 0, 1), &mut c);
        let mut c = [5.0f32; 2];
        gemm(0, 3, 2, MatRef::new(&a, 3, 1), MatRef::new(&a, 2, 1), &mut c);
        assert_eq!(c, [5.0; 2]);
        // Past `m·n`, nothing is touched either.
        let mut c = [5.0f32; 6];
        gemm(1, 3, 2, MatRef::new(&a, 3, 1), MatRef::new(&a, 2, 1), &mut c);
        assert_eq!(c, [3.0, 3.0, 5.0, 5.0, 5.0, 5.0]);
        // Empty batch.
        batched_gemm::<f32>(
            2,
            2,
            2,
            MatRef::batched(&a, &[], 2, 1),
            MatRef::batched(&a, &[], 2, 1),
            &mut [],
            DotOrder::Chain,
        );
    }

    #[test]
    fn zero_stride_broadcast_operand() {
        // Every row of A is the same vector (rsa = 0).
        let (m, k, n) = (90, 70, 110);
        let row = data(k, 9);
        let (b, rsb, csb) = operand(k, n, false, 10);
        let (want, mag) = naive(m, k, n, &row, 0, (0, 1), &b, 0, (rsb, csb));
        let mut c = vec![0.0; m * n];
        gemm(m, k, n, MatRef::new(&row, 0, 1), MatRef::new(&b, rsb, csb), &mut c);
        for idx in 0..m * n {
            assert_abs_diff_eq!(c[idx], want[idx], epsilon = 1e-12 * (mag[idx] + 1.0));
        }
    }

    #[test]
    fn batched_with_offsets_and_broadcast() {
        for &(m, k, n, ta, tb) in &[
            (5usize, 4usize, 3usize, false, false),
            (64, 48, 80, true, false),
            (120, 100, 90, false, true),
            (300, 200, 500, true, true),
        ] {
            let batch = 3;
            let (a, rsa, csa) = operand(m, k * batch, ta, 11);
            // A_i lives at column block i of a wide A (strided, not contiguous);
            // B is broadcast: a single matrix repeated for every batch entry,
            // after some leading padding.
            let a_offsets: Vec<usize> = (0..batch).map(|i| i * k * csa).collect();
            let (b0, rsb, csb) = operand(k, n, tb, 12);
            let pad = 7;
            let mut b = vec![0.0; pad];
            b.extend_from_slice(&b0);
            let b_offsets = vec![pad; batch];
            let mut c = vec![f64::NAN; batch * m * n];
            batched_gemm(
                m,
                k,
                n,
                MatRef::batched(&a, &a_offsets, rsa, csa),
                MatRef::batched(&b, &b_offsets, rsb, csb),
                unsafe { out(&mut c) },
                DotOrder::Chain,
            );
            let a32: Vec<f32> = a.iter().map(|&x| x as f32).collect();
            let b32: Vec<f32> = b.iter().map(|&x| x as f32).collect();
            let mut c32 = vec![f32::NAN; batch * m * n];
            batched_gemm(
                m,
                k,
                n,
                MatRef::batched(&a32, &a_offsets, rsa, csa),
                MatRef::batched(&b32, &b_offsets, rsb, csb),
                unsafe { out(&mut c32) },
                DotOrder::Chain,
            );
            for i in 0..batch {
                let (want, mag) = naive(m, k, n, &a, a_offsets[i], (rsa, csa), &b, pad, (rsb, csb));
                for idx in 0..m * n {
                    let got = c[i * m * n + idx];
                    assert_abs_diff_eq!(got, want[idx], epsilon = 1e-12 * (mag[idx] + 1.0));
                    let got = c32[i * m * n + idx] as f64;
                    assert_abs_diff_eq!(got, want[idx], epsilon = 1e-5 * (mag[idx] + 1.0));
                }
            }
        }
    }

    /// Every split (and the serial path) gives bit-identical results.
    #[test]
    fn split_is_bit_identical() {
        let (m, k, n) = (150, 333, 170);
        let batch = 3;
        let a: Vec<f32> = data(m * k * batch, 21).iter().map(|&x| x as f32).collect();
        let b: Vec<f32> = data(k * n, 22).iter().map(|&x| x as f32).collect();
        let a_offsets: Vec<usize> = (0..batch).map(|i| i * m * k).collect();
        let b_offsets = vec![0; batch];
        let run = |plan: Option<Plan>| {
            let mut c = vec![f32::NAN; batch * m * n];
            batched_gemm_planned(
                (m, k, n),
                MatRef::batched(&a, &a_offsets, k, 1),
                MatRef::batched(&b, &b_offsets, n, 1),
                unsafe { out(&mut c) },
                plan,
                (DotOrder::Chain, None),
            );
            c
        };
        let serial = run(None);
        for (rp, cp, tile) in [(2, 1, 16), (1, 2, 16), (3, 4, 16), (7, 1, 1), (1, 9, 3), (10, 10, 8)] {
            let (mb, row_blocks) = split_aligned(m, rp, tile);
            let (nb, col_blocks) = split_aligned(n, cp, tile);
            let p = Plan {
                mb,
                nb,
                row_blocks,
                col_blocks,
            };
            let par = run(Some(p));
            assert!(
                serial.iter().zip(&par).all(|(x, y)| x.to_bits() == y.to_bits()),
                "plan {p:?} differs from serial"
            );
        }
        // Public entry point under different pool sizes.
        for threads in [1, 2, 3, 4] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let mut c = vec![f32::NAN; batch * m * n];
            pool.install(|| {
                batched_gemm(
                    m,
                    k,
                    n,
                    MatRef::batched(&a, &a_offsets, k, 1),
                    MatRef::batched(&b, &b_offsets, n, 1),
                    unsafe { out(&mut c) },
                    DotOrder::Chain,
                )
            });
            assert!(serial.iter().zip(&c).all(|(x, y)| x.to_bits() == y.to_bits()));
        }
    }

    /// `batched_gemm_planned` into a fresh output: the product under `plan` (`None`: serial).
    fn run_planned<T: GemmFloat>(
        (m, k, n): (usize, usize, usize),
        a: MatRef<'_, T>,
        b: MatRef<'_, T>,
        plan: Option<Plan>,
        epilogue: Option<&Epilogue<'_, T>>,
    ) -> Vec<T> {
        let mut c = vec![T::default(); a.offsets.len() * m * n];
        batched_gemm_planned(
            (m, k, n),
            a,
            b,
            unsafe { out(&mut c) },
            plan,
            (DotOrder::Chain, epilogue),
        );
        c
    }

    /// Whether a 64³ product splits depends on timing (the workers being awake), so its
    /// split and serial runs must agree bit for bit, for both float types.
    #[test]
    fn warm_split_of_a_small_product_is_bit_identical() {
        fn check<T: GemmFloat>(to_t: fn(f64) -> T, bits: fn(T) -> u64) {
            let (m, k, n) = (64, 64, 64);
            let a: Vec<T> = data(m * k, 41).into_iter().map(to_t).collect();
            let b: Vec<T> = data(k * n, 42).into_iter().map(to_t).collect();
            let run = |plan: Option<Plan>| {
                let c = run_planned((m, k, n), MatRef::new(&a, k, 1), MatRef::new(&b, n, 1), plan, None);
                c.into_iter().map(bits).collect::<Vec<u64>>()
            };
            let split = plan(T::TILE, m, k, n, 1, 2, true);
            assert!(split.is_some_and(|p| p.blocks() == 2), "{split:?}");
            // Two threads, as the plan says: on more the product would take the shared-`B`
            // driver instead of the bands.
            let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
            assert_eq!(run(None), pool.install(|| run(split)));
        }
        check::<f32>(|x| x as f32, |x| u64::from(x.to_bits()));
        check::<f64>(|x| x, f64::to_bits);
    }

    /// A batch of tiny entries (the serial path computes each without fused multiply-adds)
    /// gives the same bits split across threads, with and without an epilogue, whatever
    /// the thread count.
    #[test]
    fn batch_of_tiny_products_is_bit_identical_split_or_not() {
        fn check<T: GemmFloat>(to_t: fn(f64) -> T, bits: fn(T) -> u64) {
            let (m, k, n, batch) = (8, 8, 8, 1024);
            assert!(m * k * n <= TINY_MACS);
            let a: Vec<T> = data(m * k * batch, 51).into_iter().map(to_t).collect();
            let b: Vec<T> = data(k * n * batch, 52).into_iter().map(to_t).collect();
            let a_offsets: Vec<usize> = (0..batch).map(|i| i * m * k).collect();
            let b_offsets: Vec<usize> = (0..batch).map(|i| i * k * n).collect();
            let double = |_: usize, _: usize, row: &mut [T]| row.iter_mut().for_each(|x| *x = *x + *x);
            let run = |plan: Option<Plan>, epilogue: Option<&Epilogue<'_, T>>| {
                let (a, b) = (
                    MatRef::batched(&a, &a_offsets, k, 1),
                    MatRef::batched(&b, &b_offsets, n, 1),
                );
                let c = run_planned((m, k, n), a, b, plan, epilogue);
                c.into_iter().map(bits).collect::<Vec<u64>>()
            };
            for epilogue in [None, Some(&double as &Epilogue<'_, T>)] {
                let serial = run(None, epilogue);
                for threads in [2, 3, 4] {
                    let split = plan(T::TILE, m, k, n, batch, threads, false);
                    assert_eq!(split, Some(Plan::single(m, n)));
                    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                    assert!(serial == pool.install(|| run(split, epilogue)), "{threads} threads");
                }
            }
        }
        check::<f32>(|x| x as f32, |x| u64::from(x.to_bits()));
        check::<f64>(|x| x, f64::to_bits);
    }

    /// One product is bit-identical on any number of threads, for every operand layout,
    /// through `gemm` (row bands: these products are below the shared packed `B`'s size)
    /// and through the shared packed-`B` driver forced on every count: with one tile per
    /// thread, with several per thread (520 × 260 × 520 on two threads: 8 tiles), and with
    /// tiles taller than one packed `A` block (1000 rows on two threads: tiles of about 500
    /// rows, three blocks each).
    #[test]
    fn single_product_is_bit_identical_across_thread_counts() {
        for ((m, k, n), (ta, tb)) in [(203, 517, 301), (520, 260, 520), (1000, 150, 240)]
            .into_iter()
            .flat_map(|shape| [(false, false), (true, true), (false, true)].map(|layout| (shape, layout)))
        {
            let (a, rsa, csa) = operand(m, k, ta, 51);
            let (b, rsb, csb) = operand(k, n, tb, 52);
            let a: Vec<f32> = a.iter().map(|&x| x as f32).collect();
            let b: Vec<f32> = b.iter().map(|&x| x as f32).collect();
            let mut serial = vec![f32::NAN; m * n];
            batched_gemm_planned(
                (m, k, n),
                MatRef::new(&a, rsa, csa),
                MatRef::new(&b, rsb, csb),
                unsafe { out(&mut serial) },
                None,
                (DotOrder::Chain, None),
            );
            for threads in [1, 2, 3, 4, 7, 16] {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                let mut c = vec![f32::NAN; m * n];
                pool.install(|| gemm(m, k, n, MatRef::new(&a, rsa, csa), MatRef::new(&b, rsb, csb), &mut c));
                assert!(
                    serial.iter().zip(&c).all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{m}x{k}x{n}, {threads} threads, ta={ta} tb={tb}"
                );
                let mut shared = vec![f32::NAN; m * n];
                // SAFETY: `a` (m×k) and `b` (k×n) lie inside their vectors at these strides;
                // `shared` holds m·n elements and aliases neither.
                let ran = pool.install(|| unsafe {
                    f32::raw_gemm_parallel(
                        m,
                        k,
                        n,
                        (a.as_ptr(), rsa as isize, csa as isize),
                        (b.as_ptr(), rsb as isize, csb as isize),
                        shared.as_mut_ptr(),
                        threads,
                        None,
                    )
                });
                if ran {
                    assert!(
                        serial.iter().zip(&shared).all(|(x, y)| x.to_bits() == y.to_bits()),
                        "{m}x{k}x{n}, shared B on {threads} threads, ta={ta} tb={tb}"
                    );
                }
            }
        }
    }

    #[test]
    fn only_short_claims_on_the_packed_kernels_go_uncounted() {
        let bands = |m: usize, n: usize| Plan {
            mb: m / 2,
            nb: n,
            row_blocks: 2,
            col_blocks: 1,
        };
        let packed = gemm::Isa::detect() != gemm::Isa::Portable;
        // Half of a 64³ product: 2^17 multiply-adds and 2048 outputs, a few µs.
        assert_eq!(claims_are_long((64, 64, 64), &bands(64, 64), 1, false), !packed);
        // The same with an epilogue, or as a batch of tiny entries, runs slower paths.
        assert!(claims_are_long((64, 64, 64), &bands(64, 64), 1, true));
        assert!(claims_are_long((3, 3, 3), &Plan::single(3, 3), 10_000, false));
        // Mostly stores: 512 × 1 × 512 in two bands is 2^17 multiply-adds but 2^17 outputs.
        assert!(claims_are_long((512, 1, 512), &bands(512, 512), 1, false));
        assert!(claims_are_long((128, 128, 128), &bands(128, 128), 1, false));
        assert!(claims_are_long((64, 64, 64), &bands(64, 64), 2, false));
    }

    #[test]
    fn plan_properties() {
        // Below the threshold: serial.
        assert_eq!(plan(16, 64, 64, 64, 1, 2, false), None);
        assert_eq!(plan(16, 1000, 1000, 1000, 1, 1, false), None);
        // With the workers awake a 64³ product splits (and a smaller one still does not);
        // above both thresholds the grid is the same either way.
        assert_eq!(plan(16, 64, 64, 64, 1, 2, true).map(|p| p.blocks()), Some(2));
        assert_eq!(plan(16, 56, 56, 56, 1, 2, true), None);
        assert_eq!(plan(16, 64, 64, 64, 1, 1, true), None);
        assert_eq!(
            plan(16, 300, 300, 300, 1, 2, true),
            plan(16, 300, 300, 300, 1, 2, false)
        );
        // One matrix on two threads: two row bands aligned to the tile.
        let p = plan(16, 512, 512, 512, 1, 2, false).unwrap();
        assert_eq!((p.mb, p.row_blocks, p.col_blocks), (256, 2, 1));
        // Short, wide output: column bands.
        let p = plan(16, 8, 1024, 4096, 1, 4, false).unwrap();
        assert_eq!((p.row_blocks, p.col_blocks, p.nb), (1, 4, 1024));
        // Even batch: whole matrices per task; odd batch: split each.
        assert_eq!(plan(16, 256, 256, 256, 4, 2, false), Some(Plan::single(256, 256)));
        assert_eq!(plan(16, 256, 256, 256, 3, 2, false).unwrap().blocks(), 2);
        // Every plan covers the output exactly once.
        for &(m, k, n, batch, threads) in &[
            (300usize, 200usize, 500usize, 1usize, 2usize),
            (17, 1000, 9, 1, 8),
            (1, 4096, 4096, 1, 3),
            (4096, 4096, 1, 1, 3),
            (100, 100, 100, 5, 4),
        ] {
            if let Some(p) = plan(16, m, k, n, batch, threads, false) {
                assert!(p.mb * p.row_blocks >= m && p.mb * (p.row_blocks - 1) < m);
                assert!(p.nb * p.col_blocks >= n && p.nb * (p.col_blocks - 1) < n);
                assert_eq!(plan(16, m, k, n, batch, threads, false), Some(p));
            }
        }
    }

    /// Calls from inside rayon tasks (nested parallelism) stay correct.
    #[test]
    fn nested_in_rayon_tasks() {
        use rayon::prelude::*;
        let (m, k, n) = (200, 150, 180);
        let a = data(m * k, 31);
        let b = data(k * n, 32);
        let serial = run_planned((m, k, n), MatRef::new(&a, k, 1), MatRef::new(&b, n, 1), None, None);
        let outs: Vec<Vec<f64>> = (0..8)
            .into_par_iter()
            .map(|_| {
                let mut c = vec![f64::NAN; m * n];
                gemm(m, k, n, MatRef::new(&a, k, 1), MatRef::new(&b, n, 1), &mut c);
                c
            })
            .collect();
        for c in outs {
            assert!(serial.iter().zip(&c).all(|(x, y)| x.to_bits() == y.to_bits()));
        }
    }

    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "outside its slice")]
    fn contract_violation_debug_asserts() {
        let a = [1.0f32; 4];
        let mut c = [0.0f32; 4];
        gemm(2, 2, 2, MatRef::new(&a, 3, 1), MatRef::new(&a, 2, 1), &mut c);
    }

    #[cfg(not(debug_assertions))]
    #[test]
    fn contract_violation_zero_fills_in_release() {
        let a = [1.0f32; 4];
        let mut c = [9.0f32; 4];
        gemm(2, 2, 2, MatRef::new(&a, 3, 1), MatRef::new(&a, 2, 1), &mut c);
        assert_eq!(c, [0.0; 4]);
    }

    fn naive_int(
        m: usize,
        k: usize,
        n: usize,
        a: &[i64],
        (rsa, csa): (usize, usize),
        b: &[i64],
        (rsb, csb): (usize, usize),
    ) -> Vec<i64> {
        let mut c = vec![0i64; m * n];
        for i in 0..m {
            for j in 0..n {
                for p in 0..k {
                    c[i * n + j] = c[i * n + j].wrapping_add(a[i * rsa + p * csa].wrapping_mul(b[p * rsb + j * csb]));
                }
            }
        }
        c
    }

    #[test]
    fn int_matches_naive() {
        for &(m, k, n) in &[(1, 1, 1), (3, 5, 7), (17, 33, 9), (40, 30, 50)] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let (a, rsa, csa) = operand(m, k, ta, 41);
                let (b, rsb, csb) = operand(k, n, tb, 42);
                let a: Vec<i64> = a.iter().map(|&x| (x * 100.0) as i64).collect();
                let b: Vec<i64> = b.iter().map(|&x| (x * 100.0) as i64).collect();
                let want = naive_int(m, k, n, &a, (rsa, csa), &b, (rsb, csb));
                let mut c = vec![-1i64; m * n];
                gemm_int(m, k, n, MatRef::new(&a, rsa, csa), MatRef::new(&b, rsb, csb), &mut c);
                assert_eq!(c, want);
                let a32: Vec<i32> = a.iter().map(|&x| x as i32).collect();
                let b32: Vec<i32> = b.iter().map(|&x| x as i32).collect();
                let mut c32 = vec![-1i32; m * n];
                gemm_int(
                    m,
                    k,
                    n,
                    MatRef::new(&a32, rsa, csa),
                    MatRef::new(&b32, rsb, csb),
                    &mut c32,
                );
                assert_eq!(c32, want.iter().map(|&x| x as i32).collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn int_wraps_on_overflow() {
        let a = [i32::MAX, 2];
        let b = [2, i32::MAX];
        let mut c = [0i32; 1];
        gemm_int(1, 2, 1, MatRef::new(&a, 2, 1), MatRef::new(&b, 1, 1), &mut c);
        let want = i32::MAX.wrapping_mul(2).wrapping_add(2i32.wrapping_mul(i32::MAX));
        assert_eq!(c, [want]);
        let a = [i64::MIN, -1];
        let mut c = [0i64; 1];
        gemm_int(1, 2, 1, MatRef::new(&a, 2, 1), MatRef::new(&[-1i64, 1], 1, 1), &mut c);
        assert_eq!(c, [i64::MIN.wrapping_mul(-1).wrapping_add(-1)]);
    }

    #[test]
    fn batched_int_broadcast() {
        let (m, k, n, batch) = (4, 3, 5, 3);
        let a: Vec<i32> = (0..(m * k * batch) as i32).map(|x| x - 10).collect();
        let b: Vec<i32> = (0..(k * n) as i32).map(|x| 3 - x).collect();
        let a_offsets: Vec<usize> = (0..batch).map(|i| i * m * k).collect();
        let mut c = vec![0i32; batch * m * n];
        batched_gemm_int(
            m,
            k,
            n,
            MatRef::batched(&a, &a_offsets, 1, m),
            MatRef::batched(&b, &[0, 0, 0], n, 1),
            unsafe { out(&mut c) },
        );
        let a64: Vec<i64> = a.iter().map(|&x| x as i64).collect();
        let b64: Vec<i64> = b.iter().map(|&x| x as i64).collect();
        for i in 0..batch {
            let want = naive_int(m, k, n, &a64[i * m * k..], (1, m), &b64, (n, 1));
            let got: Vec<i64> = c[i * m * n..(i + 1) * m * n].iter().map(|&x| x as i64).collect();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn epilogue_sees_every_row_segment_once() {
        for (m, k, n) in [(3, 4, 5), (300, 64, 200), (257, 129, 33)] {
            let a = data(m * k, 41);
            let b = data(k * n, 42);
            let bias: Vec<f64> = (0..n).map(|j| j as f64).collect();
            let mut plain = vec![0.0; m * n];
            gemm(m, k, n, MatRef::new(&a, k, 1), MatRef::new(&b, n, 1), &mut plain);
            let mut fused = vec![f64::NAN; m * n];
            let epi = |_row: usize, c0: usize, seg: &mut [f64]| {
                for (j, v) in seg.iter_mut().enumerate() {
                    *v = (*v + bias[c0 + j]).max(0.0);
                }
            };
            batched_gemm_epilogue(
                m,
                k,
                n,
                MatRef::new(&a, k, 1),
                MatRef::new(&b, n, 1),
                unsafe { out(&mut fused) },
                DotOrder::Chain,
                &epi,
            );
            for (i, (f, p)) in fused.iter().zip(&plain).enumerate() {
                assert_eq!(*f, (p + bias[i % n]).max(0.0));
            }
        }
    }
}
