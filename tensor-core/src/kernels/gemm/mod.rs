//! ferroflow's own single-threaded GEMM: packed operands, cache blocking from the running
//! CPU, and a register-blocked micro-kernel compiled for AVX-512 and for AVX2 + FMA, chosen
//! at run time. CPUs with neither (and other architectures) keep `matrixmultiply`'s portable
//! kernels, so [`packed_gemm`] answers `false` there and the caller falls back.
//!
//! [`parallel_gemm`] runs one large product on many threads around a shared packed `B`
//! (where [`shares_packed_b`] says so); the batch driver in [`super::matmul`] runs
//! [`packed_gemm`] on each of its blocks.

mod blocking;
mod grid;
mod microkernel;
mod pack;
mod parallel;
mod tile_cuts;
mod vector;

use std::cell::RefCell;

use blocking::{Blocking, Caches};
#[cfg(target_arch = "x86_64")]
pub(crate) use microkernel::prefetch_row;
use microkernel::MicroKernel;
pub(crate) use parallel::{parallel_gemm, shares_packed_b};

/// Float types with a packed kernel.
pub(crate) trait PackedFloat: Copy + Send + Sync + 'static {
    /// Additive identity.
    const ZERO: Self;
    /// The kernel for an instruction-set level, `None` where there is none.
    fn kernel(isa: Isa) -> Option<MicroKernel<Self>>;
}

impl PackedFloat for f32 {
    const ZERO: f32 = 0.0;
    fn kernel(isa: Isa) -> Option<MicroKernel<f32>> {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Some(microkernel::F32_AVX512),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => Some(microkernel::F32_AVX2),
            _ => None,
        }
    }
}

impl PackedFloat for f64 {
    const ZERO: f64 = 0.0;
    fn kernel(isa: Isa) -> Option<MicroKernel<f64>> {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Some(microkernel::F64_AVX512),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => Some(microkernel::F64_AVX2),
            _ => None,
        }
    }
}

/// Which compiled kernel a product runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    /// AVX-512 F (9 × 3-vector tiles).
    Avx512,
    /// AVX2 + FMA (6 × 2-vector tiles).
    Avx2,
    /// No packed kernel: `matrixmultiply`.
    Portable,
}

impl Isa {
    /// The best level this CPU runs. `FERROFLOW_GEMM=avx2` or `=portable` caps it (to
    /// compare kernels side by side on one machine); it never raises it.
    pub fn detect() -> Isa {
        use std::sync::OnceLock;
        static ISA: OnceLock<Isa> = OnceLock::new();
        *ISA.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            let best = match crate::kernels::simd::level() {
                crate::kernels::simd::Level::Avx512 => Isa::Avx512,
                crate::kernels::simd::Level::Avx2 => Isa::Avx2,
                crate::kernels::simd::Level::Baseline => Isa::Portable,
            };
            #[cfg(not(target_arch = "x86_64"))]
            let best = Isa::Portable;
            match std::env::var("FERROFLOW_GEMM").as_deref() {
                Ok("portable") => Isa::Portable,
                Ok("avx2") if best == Isa::Avx512 => Isa::Avx2,
                _ => best,
            }
        })
    }

    /// Whether this CPU can run `self`'s kernel.
    #[cfg(test)]
    pub fn supported(self) -> bool {
        matches!(
            (self, Isa::detect()),
            (Isa::Portable, _) | (Isa::Avx2, Isa::Avx2 | Isa::Avx512) | (Isa::Avx512, Isa::Avx512)
        )
    }
}

thread_local! {
    /// Packing space reused by every product on this thread (grown, never shrunk): small
    /// products allocate nothing once warm. `u64` storage keeps it 8-byte aligned for `f64`.
    static PACK_SPACE: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with two packing buffers of `a_len` and `b_len` elements of `T`, each starting
/// on a 64-byte boundary, reused from this thread when it is not already in use.
fn with_pack_space<T: PackedFloat, R>(a_len: usize, b_len: usize, f: impl FnOnce(&mut [T], &mut [T]) -> R) -> R {
    // Whole cache lines per buffer, so the second starts aligned when the first does.
    let words = |len: usize| (len * std::mem::size_of::<T>()).div_ceil(64) * 8;
    let run = |space: &mut Vec<u64>| {
        let (a_words, b_words) = aligned_words(space, words(a_len) + words(b_len)).split_at_mut(words(a_len));
        // SAFETY: `T` is `f32` or `f64` (sealed), whose alignment divides 8 and every bit
        // pattern is a value; each slice is carved from its own disjoint range of words,
        // sized to hold `len` elements.
        let (pa, pb) = unsafe {
            (
                std::slice::from_raw_parts_mut(a_words.as_mut_ptr().cast::<T>(), a_len),
                std::slice::from_raw_parts_mut(b_words.as_mut_ptr().cast::<T>(), b_len),
            )
        };
        f(pa, pb)
    };
    PACK_SPACE.with(|cell| match cell.try_borrow_mut() {
        Ok(mut space) => run(&mut space),
        Err(_) => run(&mut Vec::new()),
    })
}

/// `words` words of `space` (grown as needed, never shrunk) starting on a 64-byte boundary.
///
/// Why: a vector load of a packed panel row that starts off a cache line straddles two
/// lines (half the loads with AVX2 over a 16-byte aligned heap block, every load with
/// AVX-512), and each straddling load costs a second cache access.
fn aligned_words(space: &mut Vec<u64>, words: usize) -> &mut [u64] {
    // At most 7 words are skipped to reach the boundary (the block is 8-byte aligned);
    // `align_offset` may in principle give up (usize::MAX), so clamp rather than trust it.
    if space.len() < words + 7 {
        space.resize(words + 7, 0);
    }
    let skip = space.as_ptr().align_offset(64).min(7);
    &mut space[skip..skip + words]
}

/// `C = A·B` (or `C += A·B` when `accumulate`) through the packed kernel of `isa`. Returns
/// `false`, touching nothing, when `isa` has no kernel for `T` or a dimension is 0. Unless
/// accumulating, `C` is written whole and never read, so it may be uninitialised.
///
/// # Safety
///
/// As [`super::matmul::GemmFloat::raw_gemm`]: every addressed element of `A`, `B` (reads)
/// and `C` (writes, and reads when accumulating) is valid, and `C` aliases nothing.
/// `isa` must be supported by this CPU.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn packed_gemm<T: PackedFloat>(
    isa: Isa,
    (m, k, n): (usize, usize, usize),
    (a, rsa, csa): (*const T, isize, isize),
    (b, rsb, csb): (*const T, isize, isize),
    (c, rsc, csc): (*mut T, isize, isize),
    accumulate: bool,
) -> bool {
    let Some(kernel) = T::kernel(isa) else {
        return false;
    };
    if m == 0 || k == 0 || n == 0 {
        return false;
    }
    let blk = Blocking::new(Caches::detect(), kernel.mr(), kernel.nr(), std::mem::size_of::<T>());
    let elem = std::mem::size_of::<T>();
    let direct_a = reads_a_in_place(csa, rsa, elem, (m, kernel.mr()), n);
    let direct_b = reads_b_in_place(csb, rsb, elem, (m, k, n), kernel.mr());
    // SAFETY: forwarded contract.
    unsafe {
        run_blocked(
            (kernel, blk, direct_a, direct_b),
            (m, k, n),
            (a, rsa, csa),
            (b, rsb, csb),
            (c, rsc, csc),
            accumulate,
        )
    };
    true
}

/// The loop nest of [`packed_gemm`] with explicit block sizes (`mc`, `nc` multiples of the
/// kernel's `MR`, `NR`), reading `A` in place when `direct`, and the whole panels of `B`
/// when `direct_b`, their rows `rsb` apart whatever `rsb` is (the last, partial panel too
/// when every tile of it runs a build exactly its width, else it is packed). The first `k` slice (`pc == 0`) of
/// every column block visits every tile of `C` and, unless accumulating, overwrites it: `C`
/// may be uninitialised.
///
/// # Safety
///
/// As [`packed_gemm`], with `m, k, n > 0`, a kernel this CPU runs, `csa = 1` when `direct`
/// and `csb = 1` when `direct_b`.
unsafe fn run_blocked<T: PackedFloat>(
    (kernel, blk, direct, direct_b): (MicroKernel<T>, Blocking, bool, bool),
    (m, k, n): (usize, usize, usize),
    (a, rsa, csa): (*const T, isize, isize),
    (b, rsb, csb): (*const T, isize, isize),
    (c, rsc, csc): (*mut T, isize, isize),
    accumulate: bool,
) {
    let (mr, nr) = (kernel.mr(), kernel.nr());
    let kc_max = blk.kc.min(k);
    let mc = even_blocks(m, blk.mc, mr);
    let nc_max = blk.nc.min(n.div_ceil(nr) * nr);
    let a_space = if direct { 0 } else { mc * kc_max };
    // With `direct_b`, at most the last, partial panel of each block of `B` is packed.
    let b_space = if direct_b { kc_max * nr } else { kc_max * nc_max };
    with_pack_space::<T, _>(a_space, b_space, |pa, pb| {
        for jc in (0..n).step_by(blk.nc) {
            let ncb = blk.nc.min(n - jc);
            for pc in (0..k).step_by(blk.kc) {
                let kcb = blk.kc.min(k - pc);
                let overwrite = pc == 0 && !accumulate;
                let hints = blk.asks_next_panel(kcb * ncb * size_of::<T>());
                let b_block = b.wrapping_offset(pc as isize * rsb + jc as isize * csb);
                // Columns read in place: with `direct_b` the whole panels, and the last,
                // partial one too when every tile of it runs a build exactly that wide.
                let tail = ncb % nr;
                let whole = match direct_b {
                    false => 0,
                    true if tail == 0 || kernel.reads_exactly(tail) => ncb,
                    true => ncb - tail,
                };
                if whole < ncb {
                    // SAFETY: rows `pc..pc + kcb` and columns `jc + whole..jc + ncb` lie
                    // inside `B`.
                    unsafe { pack::pack_b(kcb, ncb - whole, b_block.wrapping_add(whole), rsb, csb, nr, pb) };
                }
                for ic in (0..m).step_by(mc) {
                    let mcb = mc.min(m - ic);
                    // SAFETY: rows `ic..ic + mcb` and columns `pc..pc + kcb` lie inside `A`.
                    let a_block = unsafe { a.offset(ic as isize * rsa + pc as isize * csa) };
                    if !direct {
                        // SAFETY: as above.
                        unsafe { pack::pack_a(mcb, kcb, a_block, rsa, csa, mr, pa) };
                    }
                    let row_tiles = kernel.row_tiles(mcb, direct);
                    for (jr, cols) in kernel.col_tiles(ncb, whole == ncb) {
                        // A tile over `B` in place reads exactly its columns, no padding.
                        debug_assert!(jr >= whole || kernel.reads_exactly(cols));
                        let (bpanel, bps) = if jr < whole {
                            (b_block.wrapping_add(jr), rsb)
                        } else {
                            (pb[(jr - whole) * kcb..].as_ptr(), nr as isize)
                        };
                        // The next packed panel, for the tiles to ask L2 for as they run.
                        let next = if hints && jr >= whole && jr + nr < ncb {
                            pb.get((jr + nr - whole) * kcb..)
                                .map_or(std::ptr::null(), <[T]>::as_ptr)
                        } else {
                            std::ptr::null()
                        };
                        for (t, (ir, rows)) in row_tiles.enumerate() {
                            // SAFETY: the panels hold `kcb·mr` and `kcb·nr` packed values
                            // (or `A`'s rows are read in place, and `B`'s columns: `kcb`
                            // rows of a tile's width, which its build reads exactly:
                            // `reads_exactly`, `col_tiles`); the tile lies inside `C`
                            // (caller contract); `isa` runs on this CPU.
                            unsafe {
                                let ct = c.offset((ic + ir) as isize * rsc + (jc + jr) as isize * csc);
                                let (ap, ap_rs) = if direct {
                                    (a_block.offset(ir as isize * rsa), rsa)
                                } else {
                                    (pa[ir * kcb..].as_ptr(), 0)
                                };
                                let tile = kernel.tile_for(rows, cols, direct);
                                let next = microkernel::next_panel_stretch(next, nr * kcb, kcb, t);
                                tile(kcb, ap, ap_rs, bpanel, bps, ct, rsc, csc, rows, cols, overwrite, next)
                            };
                        }
                    }
                }
            }
        }
    });
}

/// Rows per block when `rows` rows are cut into as few blocks of at most `mc` rows as
/// possible, all but the last of the same whole number of `mr`-row tiles and the last no
/// larger: 512 rows under `mc = 240` become 180 + 180 + 152, not 240 + 240 + 32.
///
/// Why: each block of `A` is run against every packed panel of `B`, so a thin last block
/// loads every panel again for a few tiles' work. Measured with the shared packed `B` forced
/// on two threads (2048² `f32`, 512-row tiles): 5 % faster; one thread's bands, whose
/// remainders were already wider, measured alike. The blocks never change a sum: every
/// element still sees the same `kc` slices in the same order.
pub(crate) fn even_blocks(rows: usize, mc: usize, mr: usize) -> usize {
    let tiles = rows.div_ceil(mr);
    let blocks = tiles.div_ceil((mc / mr).max(1));
    tiles.div_ceil(blocks.max(1)) * mr
}

/// Whether the kernel reads `A` where it lies instead of packing it: when its rows are
/// contiguous, each block of `A` is reused for few column panels (`n` up to
/// [`DIRECT_A_MAX_N`]), and a tile's rows (up to `mr` of the `m`) do not crowd into one
/// set of L1.
/// Packing copies every element once per column block, which then costs more than it saves
/// (measured: W4's products 5–10 % faster in place); for wide products the packed block
/// stays in L2, where rows a power of two apart in place would evict each other (n = 2048
/// ran 5 % slower in place).
fn reads_a_in_place(csa: isize, rsa: isize, elem: usize, (m, mr): (usize, usize), n: usize) -> bool {
    // Only the stride modulo the set span matters, so a wrapped product is as good.
    let stride = rsa.unsigned_abs().wrapping_mul(elem);
    let most = max_rows_per_l1_set(Caches::detect().l1);
    csa == 1 && n <= DIRECT_A_MAX_N && rows_per_l1_set(stride, m.min(mr)) <= most
}

/// Bytes after which addresses fall in the same L1 set again (64 sets of 64-byte lines: the
/// 32 or 48 KiB, 8- or 12-way L1 of every x86-64 core with these kernels).
const L1_SET_SPAN: usize = 4096;

/// Most rows of `A` read in place that may share one set of an L1 of `l1` bytes: its ways
/// (`l1` over [`L1_SET_SPAN`]) but two, which the `B` panel's and `C`'s lines streaming
/// through the set need. f64 at n = 512 (rows 4 KiB apart, all 12 of the then 12-row
/// AVX-512 tile in one set, more than either rule allows) ran 10–25 % slower in place than packed,
/// erratically, while 6 rows per set (f32 at n = 512) ran 10 % faster in place. On a
/// Sapphire Rapids Xeon (48 KiB, 12-way L1), all 9 rows of today's AVX-512 tile in one set
/// ran faster in place than packed (one thread, calls alternating in one process): 512³
/// `f64` 1.02–1.03x on one and two threads, 256 × 1024 × 256 `f32` 1.08–1.10x, and narrow
/// products, whose packed `A` serves few column panels, 1.2–1.9x (512 × 1024 × 144 and
/// 1024 × 1024 × 10 `f32`, 512 × 512 × 48 `f64`).
fn max_rows_per_l1_set(l1: usize) -> usize {
    (l1 / L1_SET_SPAN).saturating_sub(2).max(1)
}

/// How many of `rows` rows `stride` bytes apart start in the busiest L1 set (counting the
/// first row's set as set 0). Rows step through `k` together, so rows that start in one set
/// stay in one set. A zero stride (one row broadcast to all) is one line, not a crowd.
fn rows_per_l1_set(stride: usize, rows: usize) -> usize {
    if stride == 0 {
        return 1.min(rows);
    }
    let offset = stride % L1_SET_SPAN;
    // Byte counters: `rows ≤ mr ≤ 12`, and one 64-byte array is cheap to clear and scan on
    // every call of a small product (a `usize` array measured 2 % of a 64³ product).
    let mut per_set = [0u8; L1_SET_SPAN / 64];
    for i in 0..rows.min(u8::MAX as usize) {
        // `i · offset` stays far from overflow: `i < 255`, `offset < 4096`.
        per_set[(i * offset) % L1_SET_SPAN / 64] += 1;
    }
    per_set.into_iter().max().map_or(0, usize::from)
}

/// Whether the kernel reads `B`'s panels where they lie instead of packing them: when the
/// copy cannot pay for itself.
///
/// - `B` is one contiguous row-major block that fits in two thirds of L1. Contiguous, its
///   lines spread evenly over the L1 sets, so after the first tile the kernel's row reads
///   hit L1, and the copy (a tenth of a 64³ product's time) is saved. Measured on an
///   AVX-512 Xeon (48 KiB L1, one thread): 64³ products 10 % (`f32`) and 12 % (`f64`)
///   faster in place, while a 128² `f32` `B` (64 KiB) ran 6 % slower in place.
/// - Or `C` is short, whatever `rsb` (a column block of a wider `B`): one row of tiles
///   (`m ≤ mr`) reads each element of `B` once, so packing only adds a copy; two rows of
///   tiles read it twice, which still costs less than the copy where `B` fits in L2. Such
///   products are small-batch layers, and each thread's band of a product split into many
///   thin bands (16 rows of a 256² product on 16 threads, two rows of the AVX-512 kernel's
///   9-row tiles). Measured with the AVX-512 kernels on a Sapphire Rapids Xeon (48 KiB L1,
///   2 MiB L2, one thread, calls alternating in one process): 8 rows 1.3–2.8x faster in place at n = 128 … 2048
///   (`f32` and `f64`); 16 rows of a 256² `f32` product 1.59x, of 512² 0.99–1.22x, of
///   784 × 256 1.21–1.28x, of 512² `f64` 1.25–1.45x; while past L2 (16 rows of 2048² or
///   18 of 1024² `f32`) 0.85–1.0x, and from 64 rows on in place was no faster (0.9–1.1x at
///   n = 128 … 384) or slower (0.5–0.85x where `B`'s rows are 2 or 4 KiB apart).
fn reads_b_in_place(csb: isize, rsb: isize, elem: usize, (m, k, n): (usize, usize, usize), mr: usize) -> bool {
    if csb != 1 {
        return false;
    }
    let caches = Caches::detect();
    let bytes = k.saturating_mul(n).saturating_mul(elem);
    let fits_l1 = rsb == n as isize && bytes <= caches.l1 * 2 / 3;
    // Rows of tiles, each of which reads every element of `B` once.
    let passes = m.div_ceil(mr.max(1));
    fits_l1 || passes <= 1 || (passes <= MAX_IN_PLACE_B_PASSES && bytes <= caches.l2)
}

/// Most rows of tiles (reads of each element of `B`) for which [`reads_b_in_place`] reads
/// a `B` that fits in L2 in place.
const MAX_IN_PLACE_B_PASSES: usize = 2;

/// Widest product (columns of `C`) whose `A` is read in place; see [`reads_a_in_place`].
const DIRECT_A_MAX_N: usize = 512;

#[cfg(test)]
mod tests;
