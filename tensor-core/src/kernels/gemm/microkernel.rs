//! The register-blocked micro-kernel: `C[MR×NR] (+)= Ã·B̃` over one `kc` slice of packed
//! panels.
//!
//! One generic body over [`Lanes`] registers, compiled per instruction set with
//! `#[target_feature]` and per tile shape (the full tile and the smaller edge builds): the
//! accumulator tile is a fixed-size array of registers that LLVM keeps in registers (`MR`
//! rows × `NV` vectors: 6 × 2 with AVX2, 16 `f32` or 8 `f64` columns; 9 × 3 with AVX-512,
//! 48 or 24), and
//! every step is one broadcast per row and one fused multiply-add per register. Sharing the
//! body means the AVX-512 build computes exactly what the AVX2 build computes, which the
//! tests check on machines that have both.
//!
//! Every element of the tile sees the same operations whatever its position: a zeroed
//! accumulator, `kc` fused multiply-adds in `p` order, then one store (or one add to `C`).

use super::tile_cuts::TileCut;
#[cfg(target_arch = "x86_64")]
use super::vector::Lanes;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::{__m256, __m256d, __m512, __m512d};

/// One compiled micro-kernel: its builds, from the smallest edge tile to the full tile,
/// and which build runs a tile of each size.
#[derive(Clone, Copy)]
pub(crate) struct MicroKernel<T: 'static> {
    /// Builds smallest first (by `rows × cols`); the last, and largest, is the full
    /// `mr × nr` tile. The others are for edge tiles: they read the same `mr × nr` packed
    /// panels and compute each element exactly as the full tile does, only without the
    /// padding's work (a 4-row edge under the former 12-row tile spent two thirds of its
    /// multiply-adds on padding, and a 10-column product, W4's logits, under a 48-column
    /// tile would spend four fifths). Never empty, and ordered: checked at compile time
    /// (`well_ordered`).
    pub builds: &'static [Build<T>],
    /// Columns in one register: the narrowest build's width.
    lane: usize,
    /// `picks[rows][registers]`: the index in `builds` of the smallest build that covers a
    /// tile that large. Worked out at compile time, because the search over the builds for
    /// every tile took 5–8 % of a 64³ product's time (`perf`).
    picks: Picks,
    /// The tallest height below `mr` with a build exactly that tall for every width the
    /// full height has (see [`TileCut::exact`]).
    short: Option<usize>,
    /// Whether every tile of a whole number of registers, whatever its height, runs a build
    /// exactly that wide: then `B` read in place may be cut anywhere between registers
    /// (see [`TileCut::even`]).
    exact_widths: bool,
}

/// Most rows a build may have (the bound of [`MicroKernel::picks`]).
const MAX_ROWS: usize = 12;
/// Most registers across a build may have.
const MAX_REGS: usize = 4;

/// `[rows][registers]`: the index in a kernel's builds of the smallest that covers a tile
/// that large (see [`pick_table`]).
type Picks = [[u8; MAX_REGS + 1]; MAX_ROWS + 1];

/// A build of the micro-kernel for tiles of at most `rows × cols`.
#[derive(Clone, Copy)]
pub(crate) struct Build<T: 'static> {
    /// Rows it computes (at most the kernel's `mr`).
    pub rows: usize,
    /// Columns it computes (a whole number of registers, at most the kernel's `nr`).
    pub cols: usize,
    /// `tile(kc, a_panel, 0, b_panel, nr, c, rsc, csc, rows, cols, overwrite, next)` over a
    /// packed `A` panel (`B`'s rows `nr` apart in a packed panel, or a row-major `B` read in
    /// place with its own row stride); `next` is the stretch of the next `B` panel the tile
    /// asks L2 for ([`next_panel_stretch`]), or null.
    pub tile: TileFn<T>,
    /// `tile(kc, a, rsa, b_panel, …)` reading `rows` rows of a row-major `A` (unit column
    /// stride, row stride `rsa`) in place: no packing of `A`.
    pub tile_direct: TileFn<T>,
}

impl<T: 'static> MicroKernel<T> {
    /// The full tile's build.
    pub fn full(&self) -> &Build<T> {
        &self.builds[self.builds.len() - 1]
    }

    /// Rows of the full tile (broadcast from the packed `A` panel).
    pub fn mr(&self) -> usize {
        self.full().rows
    }

    /// Columns of the full tile (vector lanes, loaded from the packed `B` panel).
    pub fn nr(&self) -> usize {
        self.full().cols
    }

    /// Builds `builds` (smallest first, the full tile last) into a kernel, working out which
    /// build runs each tile size. Used in `const` items, so a kernel whose builds break the
    /// rules (`well_ordered`, whole registers, within the table's bounds) fails to compile.
    // Only the x86-64 kernels are built (elsewhere `matrixmultiply` runs every product).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub const fn new(builds: &'static [Build<T>]) -> Self {
        assert!(well_ordered(builds), "builds out of order");
        let full = &builds[builds.len() - 1];
        let lane = narrowest(builds);
        assert!(lane > 0 && full.rows <= MAX_ROWS && full.cols / lane <= MAX_REGS);
        assert!(builds.len() <= u8::MAX as usize);
        let picks = pick_table(builds, lane);
        MicroKernel {
            builds,
            lane,
            picks,
            short: short_height(builds, lane, &picks),
            exact_widths: exact_widths(builds, lane, &picks),
        }
    }

    /// The smallest build that covers a tile of `rows` × `cols` (the full tile when none
    /// does).
    fn build_for(&self, rows: usize, cols: usize) -> &Build<T> {
        let pick = self
            .picks
            .get(rows)
            .and_then(|by_regs| by_regs.get(cols.div_ceil(self.lane)));
        pick.map_or(self.full(), |&i| &self.builds[usize::from(i)])
    }

    /// The build for a tile of `rows ≤ mr` rows and `cols ≤ nr` columns: the smallest that
    /// covers it.
    pub fn tile_for(&self, rows: usize, cols: usize, direct: bool) -> TileFn<T> {
        debug_assert!(rows <= self.mr() && cols <= self.nr(), "{rows} × {cols} tile");
        let build = self.build_for(rows, cols);
        if direct {
            build.tile_direct
        } else {
            build.tile
        }
    }

    /// Whether a tile `cols` wide runs a build exactly `cols` wide whatever its row count
    /// ([`MicroKernel::tile_for`]), so it reads no column of `B` past `cols`: then a last,
    /// partial panel of `B` can be read where it lies, without the packed panel's zero
    /// padding. True for every whole number of registers under today's kernels.
    ///
    /// Why: at n = 64 (`f32`, 9 × 48 tiles) packing the last 16 columns, a `memmove` and a
    /// zero fill per row, took a tenth of each thread's time on two threads (`perf`); read
    /// in place, 64² products ran 7.6 % faster on two threads and 4.3 % on one (`f64`: 2 %
    /// and 0.6 %; paired runs, an AVX-512 Xeon).
    pub fn reads_exactly(&self, cols: usize) -> bool {
        (1..=self.mr()).all(|rows| self.build_for(rows, cols).cols == cols)
    }

    /// The row tiles of a block of `rows` rows: clipped `mr`-row tiles over packed `A`, and
    /// over `A` read in place (`in_place`) full tiles then ones of the short height, where
    /// the rows add up exactly (see [`TileCut::exact`]).
    pub fn row_tiles(&self, rows: usize, in_place: bool) -> TileCut {
        if in_place {
            TileCut::exact(rows, self.mr(), self.short)
        } else {
            TileCut::clipped(rows, self.mr())
        }
    }

    /// The column tiles of a block of `cols` columns: clipped `nr`-column tiles over packed
    /// `B`, and over `B` read in place (`in_place`) whole registers shared out evenly (see
    /// [`TileCut::even`]).
    pub fn col_tiles(&self, cols: usize, in_place: bool) -> TileCut {
        if in_place && self.exact_widths {
            TileCut::even(cols, self.nr(), self.lane)
        } else {
            TileCut::clipped(cols, self.nr())
        }
    }
}

/// Signature of a compiled tile function; see [`tile_body`] for the contract.
pub(crate) type TileFn<T> =
    unsafe fn(usize, *const T, isize, *const T, isize, *mut T, isize, isize, usize, usize, bool, *const T);

/// How many `k` steps ahead the kernel prefetches its packed `A` panel. Four steps cover
/// the L2 latency at two to four fused multiply-adds per cycle; measured on an AVX-512 Xeon
/// in alternating runs, 4 gave `f64` +1–5 % on two threads at n = 512…2048 (16 and 32 gave
/// less; `f32` is neutral). A step wider than a line asks for every line it spans: the
/// 96-byte steps of the former 12-row `f64` panel, asked for one line each, left every third
/// line to demand misses (all lines: +10 % at n = 2048, one thread, Ice Lake, paired runs);
/// with today's 72-byte steps one hint per step would miss every ninth line.
const PF_DIST: usize = 4;

/// How many `k` steps ahead the AVX-512 `f64` kernel prefetches its `B` panel (see
/// [`k_step`]). Measured on an AVX-512 Xeon (Ice Lake, 48 KiB L1) in paired runs with the
/// former 12 × 16 tile: `f64` +6 % at n = 2048 on one thread and +5 % at n = 1024 on two,
/// while `f32` (then a 12 × 32 tile) lost 2–6 %; with the 9 × 3 tiles, see `k_step`.
const PF_DIST_B: usize = 8;

/// How many steps before its end a tile starts asking for its `C` lines (one row per
/// step). Asked for at the tile's start, they were evicted again by the panels streaming
/// through L1 before the store: on AMD Zen 4 (32 KiB L1) that final `C` update took 10 %
/// of the kernel's samples at n = 2048. Measured there in alternating runs, 32–96 steps
/// gave `f64` +5–9 % and `f32` +4–7 % at n = 1024 and 2048 on one and two threads, 16 less;
/// smaller products were unchanged.
const C_PF_STEPS: usize = 48;

/// How many `k` steps a tile runs for each 64-byte line of the next `B` panel it asks L2
/// for (see [`next_panel_stretch`]).
///
/// Why: the wide AVX-512 tiles' `B` panel (96 KiB at `kc = 512`) streams from L2, and the
/// first tile down each column of tiles finds it in the last-level cache (the packed `kc`
/// slice, 2–4 MiB at n = 1024–2048, outgrows L2), where the hardware prefetcher does not
/// keep up with a kernel that takes 192 bytes of `B` every 14 cycles. The tiles of the
/// column before now ask for it, a line every few steps, so it is in L2 when the column
/// starts. Measured on a 2-core Sapphire Rapids Xeon (48 KiB L1, 2 MiB L2), alternating
/// runs, 6 rounds: 2048² `f32` on one thread 150 → 156 GFLOP/s (OpenBLAS: 156–158), on
/// two 296 → 308; 1024² `f32` on two 300 → 308; `f64` +1.5–3.4 % at 1024 and 2048. A line
/// every 8 or 16 steps gained less (1–2 %); asking for the block's first panel again
/// before its next block of `A`, nothing. AVX2's tiles (their panel fits half of L1) ran
/// alike with and without, so only kernels whose panel streams ask
/// ([`super::blocking::Blocking::next_panel_hints`]).
pub(crate) const NEXT_PANEL_STEPS: usize = 4;

/// The stretch of the next `B` panel (`panel`, `len` elements; null when there is none)
/// that the `t`-th tile down a column of `kc`-deep tiles asks L2 for: each tile covers one
/// line every [`NEXT_PANEL_STEPS`] of its steps before its `C` lines are asked for, the
/// tiles in turn, so the first tiles of the column cover the whole panel and the rest
/// (null, past its end) ask for nothing. The address is only ever a prefetch hint, never
/// read.
pub(crate) fn next_panel_stretch<T>(panel: *const T, len: usize, kc: usize, t: usize) -> *const T {
    let per_tile = kc.saturating_sub(C_PF_STEPS) / NEXT_PANEL_STEPS * 64 / std::mem::size_of::<T>().max(1);
    let at = t.saturating_mul(per_tile);
    if panel.is_null() || per_tile == 0 || at >= len {
        std::ptr::null()
    } else {
        panel.wrapping_add(at)
    }
}

/// `C[..rows, ..cols] = acc` (`overwrite`) or `C += acc`, where `acc = Ã·B̃` over `kc`: a
/// tile of `MR` rows by `NV` registers of `V`, reading packed `A` panels of `PANEL ≥ MR`
/// rows (an edge build computes only the first `MR`); unless null, one line of `next`
/// every [`NEXT_PANEL_STEPS`] steps is asked for into L2 (a hint: never read).
///
/// # Safety
///
/// The CPU has `V`'s features; `b + p·rsb .. + NV·LANES` is readable for `p < kc` (rows of
/// a packed panel, `rsb` = the kernel's `nr` ≥ `NV·LANES`, or of a row-major `B` read in
/// place);
/// `a` holds `kc·PANEL` (a packed panel) or, when `DIRECT`, `a + i·rsa + p` is readable for
/// `i < rows`, `p < kc` (rows of a row-major `A`, `rows ≥ 1`); for `i < rows ≤ MR`, `j < cols ≤ NV·LANES`, `c + i·rsc + j·csc` is
/// valid for writes (and reads unless `overwrite`) and not aliased during the call.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_body<V: Lanes, const MR: usize, const PANEL: usize, const NV: usize, const DIRECT: bool>(
    kc: usize,
    a: *const V::Elem,
    rsa: isize,
    b: *const V::Elem,
    rsb: isize,
    c: *mut V::Elem,
    rsc: isize,
    csc: isize,
    rows: usize,
    cols: usize,
    overwrite: bool,
    next: *const V::Elem,
) where
    V::Elem: std::ops::Add<Output = V::Elem>,
{
    let nr = NV * V::LANES;
    debug_assert!(MR <= PANEL && (1..=MR).contains(&rows) && (1..=nr).contains(&cols));
    // SAFETY (whole body): `V`'s features are present (caller contract); every pointer
    // read stays inside the panels (`B` at `p·rsb + v·LANES`, packed `A` at `p·PANEL + i`,
    // `p < kc`, `i < MR ≤ PANEL`, `v < NV`), the rows of `A` in place, or the clipped tile.
    unsafe {
        // Direct `A`: one pointer per row; rows past the edge re-read the last row (their
        // results are never stored), so nothing outside `A` is touched.
        let mut arows = [a; MR];
        if DIRECT {
            for (i, r) in arows.iter_mut().enumerate() {
                *r = a.offset(i.min(rows - 1) as isize * rsa);
            }
        }
        let mut acc = [[V::zero(); NV]; MR];
        // `C` is read and written only after the last step, so its lines are asked for
        // during the last `C_PF_STEPS` steps, one row per step: asked for at the start,
        // they were evicted again by the `A` and `B` panels streaming through L1.
        let c_from = kc.saturating_sub(C_PF_STEPS);
        // A slice shallower than the tile is tall has too few steps for one row each:
        // the rows it cannot reach are asked for now.
        for row in kc.min(rows)..rows {
            prefetch_row(c.offset(row as isize * rsc), cols, csc);
        }
        // Three loops, so that only the `rows` steps that ask for a row of `C` carry the
        // hint and its bookkeeping. One loop over all of the last `C_PF_STEPS` steps, with a
        // test in each, kept LLVM from holding the tile's pointers in registers there (they
        // were reloaded from the stack every step), which costs most where a step is short:
        // a 64³ `f32` product runs three quarters of its steps in that loop, and its 9 × 16
        // edge tiles do 9 multiply-adds a step. Measured on an AVX-512 Xeon: a 64³ `f32`
        // product took 4.1 µs instead of 4.3 on one thread (median of 200 000 calls, three
        // alternating runs); `bench W1` beside the former build, 3 rounds: n = 64 1.04x,
        // n = 128 … 2048 and `f64` 0.99–1.02x.
        let c_until = (c_from + rows).min(kc);
        if next.is_null() {
            for p in 0..c_from {
                k_step::<V, MR, PANEL, NV, DIRECT>(p, a, &arows, b, rsb, &mut acc);
            }
        } else {
            // `c_from` is `kc - C_PF_STEPS`, a whole number of hinted steps for every `kc`
            // the blockings choose; any remainder runs after.
            let next = next.cast::<i8>();
            let chunks = c_from / NEXT_PANEL_STEPS;
            for q in 0..chunks {
                prefetch_l2(next.wrapping_add(q * 64));
                for p in q * NEXT_PANEL_STEPS..(q + 1) * NEXT_PANEL_STEPS {
                    k_step::<V, MR, PANEL, NV, DIRECT>(p, a, &arows, b, rsb, &mut acc);
                }
            }
            for p in chunks * NEXT_PANEL_STEPS..c_from {
                k_step::<V, MR, PANEL, NV, DIRECT>(p, a, &arows, b, rsb, &mut acc);
            }
        }
        for p in c_from..c_until {
            prefetch_row(c.offset((p - c_from) as isize * rsc), cols, csc);
            k_step::<V, MR, PANEL, NV, DIRECT>(p, a, &arows, b, rsb, &mut acc);
        }
        for p in c_until..kc {
            k_step::<V, MR, PANEL, NV, DIRECT>(p, a, &arows, b, rsb, &mut acc);
        }
        if rows == MR && cols == nr && csc == 1 {
            for (i, row) in acc.iter().enumerate() {
                let crow = c.offset(i as isize * rsc);
                for (v, &x) in row.iter().enumerate() {
                    let cp = crow.add(v * V::LANES);
                    if overwrite {
                        x.store(cp);
                    } else {
                        V::load(cp).add(x).store(cp);
                    }
                }
            }
        } else {
            // A clipped tile: spill the registers, then copy what lies inside `C`.
            let spill = acc;
            let vals = spill.as_ptr().cast::<V::Elem>();
            for i in 0..rows {
                for j in 0..cols {
                    let x = *vals.add(i * nr + j);
                    let cp = c.offset(i as isize * rsc + j as isize * csc);
                    *cp = if overwrite { x } else { *cp + x };
                }
            }
        }
    }
}

/// Step `p` of the tile: `acc[i][v] += A[i][p] · B[p][v]` for every row and register.
///
/// # Safety
///
/// `V`'s CPU features are present, and the reads of [`tile_body`]'s contract are valid for
/// this one `p < kc`: `B` at `b + p·rsb + v·LANES` (`v < NV`, `LANES` elements each), and
/// `A` at `arows[i] + p` (`DIRECT`) or at `a + p·PANEL + i` (packed), for `i < MR`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn k_step<V: Lanes, const MR: usize, const PANEL: usize, const NV: usize, const DIRECT: bool>(
    p: usize,
    a: *const V::Elem,
    arows: &[*const V::Elem; MR],
    b: *const V::Elem,
    rsb: isize,
    acc: &mut [[V; NV]; MR],
) {
    // SAFETY: `p < kc`, so every read stays inside the panels (see `tile_body`).
    unsafe {
        let bp = b.offset(p as isize * rsb);
        if PANEL * std::mem::size_of::<V::Elem>() > 64 {
            // The AVX-512 `f64` kernel (the only one whose `A` step spans more than a line):
            // its `B` panel (48 KiB at `kc = 256`) and `A` panel (18 KiB) overflow a 48 KiB
            // L1, so `B`'s rows come back from L2 each tile: ask for them `PF_DIST_B` steps
            // ahead. Paired runs (Ice Lake, n = 512…2048): without them `f64` ran 0.94–0.99x;
            // with them `f32`, whose `B` panel is as large, ran 0.96–1.05x, so it goes
            // without. AVX2's panels stay in L1, where hints only cost issue slots.
            prefetch_step(b.wrapping_offset((p + PF_DIST_B) as isize * rsb), NV * V::LANES);
        }
        let mut bv = [V::zero(); NV];
        for (v, reg) in bv.iter_mut().enumerate() {
            *reg = V::load(bp.add(v * V::LANES));
        }
        // Only meaningful for a packed panel; in place it could point past `A`, so it
        // is formed without the in-bounds promise of `add`.
        let ap = a.wrapping_add(p * PANEL);
        if !DIRECT {
            // The packed `A` panel streams from L2: ask for its lines `PF_DIST` steps
            // ahead so the broadcasts never wait on them. A step of more than one line
            // (the former 12 `f64` rows were 96 bytes, 9 are 72) asks for each line it covers:
            // one hint per step skipped every third line. Reading past the panel's end is
            // harmless.
            prefetch_step(ap.wrapping_add(PF_DIST * PANEL), PANEL);
        }
        for (i, row) in acc.iter_mut().enumerate() {
            let av = V::splat(if DIRECT { *arows[i].add(p) } else { *ap.add(i) });
            for (r, &bj) in row.iter_mut().zip(&bv) {
                *r = av.mul_add(bj, *r);
            }
        }
    }
}

/// Asks for one step of a stream read step after step (`len` elements from `at`, the next
/// step right after): one hint per 64 bytes, which over consecutive steps covers every
/// line, with no second hint for a step that merely straddles a line. Safe for any
/// address: it is formed without the in-bounds promise, and a hint never faults.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn prefetch_step<T>(at: *const T, len: usize) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    let at = at.cast::<i8>();
    for line in 0..(len * std::mem::size_of::<T>()).div_ceil(64) {
        // SAFETY: SSE, which `_mm_prefetch` needs, is part of x86-64; a hint never faults.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(at.wrapping_add(line * 64)) };
    }
}

/// Asks for the line at `at` into L2 (not L1: the line is for a later tile). Safe for any
/// address: a hint never faults.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn prefetch_l2(at: *const i8) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
    // SAFETY: SSE, which `_mm_prefetch` needs, is part of x86-64; a hint never faults.
    unsafe { _mm_prefetch::<_MM_HINT_T1>(at) };
}

/// Asks for every cache line of one row of a `C` tile, or of any other `cols` elements
/// `csc` apart (a helper asks for a job's bytes with it). Safe for any address: it is formed
/// without the in-bounds promise, and a hint never faults.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn prefetch_row<T>(row: *const T, cols: usize, csc: isize) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    let row = row.cast::<i8>();
    let last = (cols as isize - 1) * csc * std::mem::size_of::<T>() as isize;
    // Both ends, and for a contiguous row every line between them (a row that starts inside
    // a line spans one line more than its length in lines). A strided row (rare: a
    // transposed `C`) gets its two ends only.
    // SAFETY: SSE, which `_mm_prefetch` needs, is part of x86-64; a hint never faults.
    unsafe {
        _mm_prefetch::<_MM_HINT_T0>(row);
        if csc == 1 {
            let mut at = 64;
            while at < last {
                _mm_prefetch::<_MM_HINT_T0>(row.wrapping_offset(at));
                at += 64;
            }
        }
        _mm_prefetch::<_MM_HINT_T0>(row.wrapping_offset(last));
    }
}

/// Declares the `#[target_feature]` builds of [`tile_body`] for one tile shape: `$tile`
/// over packed `A` panels and `$direct` over `A` in place.
macro_rules! tile_fns {
    ($tile:ident, $direct:ident: $t:ty, $v:ty, $mr:literal / $panel:literal, $nv:literal, $features:literal) => {
        tile_fns!(@one $tile, false, $t, $v, $mr, $panel, $nv, $features);
        tile_fns!(@one $direct, true, $t, $v, $mr, $panel, $nv, $features);
    };
    (@one $name:ident, $in_place:literal, $t:ty, $v:ty, $mr:literal, $panel:literal, $nv:literal, $features:literal) => {
        /// [`tile_body`] compiled for the named instruction set.
        ///
        /// # Safety
        ///
        /// The CPU supports the features; the [`tile_body`] contract holds.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $name(
            kc: usize,
            a: *const $t,
            rsa: isize,
            b: *const $t,
            rsb: isize,
            c: *mut $t,
            rsc: isize,
            csc: isize,
            rows: usize,
            cols: usize,
            overwrite: bool,
            next: *const $t,
        ) {
            // SAFETY: forwarded contract.
            unsafe {
                tile_body::<$v, $mr, $panel, $nv, $in_place>(kc, a, rsa, b, rsb, c, rsc, csc, rows, cols, overwrite, next)
            }
        }
    };
}

/// One [`Build`] of [`tile_body`]: `rows` of a `panel`-row kernel by `nv` registers.
macro_rules! build {
    ($t:ty, $v:ty, $rows:literal / $panel:literal, $nv:literal, $features:literal) => {{
        tile_fns!(tile, tile_direct: $t, $v, $rows / $panel, $nv, $features);
        Build {
            rows: $rows,
            cols: $nv * <$v as Lanes>::LANES,
            tile,
            tile_direct,
        }
    }};
}

// AVX2: 16 ymm registers; 6 rows × 2 vectors of accumulators + 2 loaded `B` vectors + 1
// broadcast = 15. Edges: 4 rows (of 6), one register (of 2).

/// The AVX2 + FMA kernel for `f32`.
#[cfg(target_arch = "x86_64")]
pub(crate) const F32_AVX2: MicroKernel<f32> = MicroKernel::new(&[
    build!(f32, __m256, 4 / 6, 1, "avx2,fma"),
    build!(f32, __m256, 6 / 6, 1, "avx2,fma"),
    build!(f32, __m256, 4 / 6, 2, "avx2,fma"),
    build!(f32, __m256, 6 / 6, 2, "avx2,fma"),
]);
/// The AVX2 + FMA kernel for `f64`.
#[cfg(target_arch = "x86_64")]
pub(crate) const F64_AVX2: MicroKernel<f64> = MicroKernel::new(&[
    build!(f64, __m256d, 4 / 6, 1, "avx2,fma"),
    build!(f64, __m256d, 6 / 6, 1, "avx2,fma"),
    build!(f64, __m256d, 4 / 6, 2, "avx2,fma"),
    build!(f64, __m256d, 6 / 6, 2, "avx2,fma"),
]);

// AVX-512: 32 zmm registers; 9 rows × 3 vectors of accumulators + 3 loaded `B` vectors + 1
// broadcast = 31. That is 27 multiply-adds for every 12 loads, where 12 rows × 2 vectors
// (27 registers) gave 24 for 14: measured on an Intel Ice Lake Xeon in paired runs against
// 12 × 2, `f64` +4–18 % and `f32` +8–25 % at n = 512…2048 on one and two threads. Edges: 4
// and 8 rows (the remainders of every power of two: 9 divides none), by 1, 2 or 3 registers.

/// The AVX-512 builds of one type, smallest first.
macro_rules! avx512_builds {
    ($t:ty, $v:ty) => {
        &[
            build!($t, $v, 4 / 9, 1, "avx512f,avx2,fma"),
            build!($t, $v, 4 / 9, 2, "avx512f,avx2,fma"),
            build!($t, $v, 8 / 9, 1, "avx512f,avx2,fma"),
            build!($t, $v, 9 / 9, 1, "avx512f,avx2,fma"),
            build!($t, $v, 4 / 9, 3, "avx512f,avx2,fma"),
            build!($t, $v, 8 / 9, 2, "avx512f,avx2,fma"),
            build!($t, $v, 9 / 9, 2, "avx512f,avx2,fma"),
            build!($t, $v, 8 / 9, 3, "avx512f,avx2,fma"),
            build!($t, $v, 9 / 9, 3, "avx512f,avx2,fma"),
        ]
    };
}

/// The AVX-512 kernel for `f32`.
#[cfg(target_arch = "x86_64")]
pub(crate) const F32_AVX512: MicroKernel<f32> = MicroKernel::new(avx512_builds!(f32, __m512));
/// The AVX-512 kernel for `f64`.
#[cfg(target_arch = "x86_64")]
pub(crate) const F64_AVX512: MicroKernel<f64> = MicroKernel::new(avx512_builds!(f64, __m512d));

/// Whether `builds` are what [`MicroKernel::full`] and [`MicroKernel::tile_for`]
/// rely on: at least one, ordered by area, each inside the last (the full tile).
const fn well_ordered<T: 'static>(builds: &[Build<T>]) -> bool {
    if builds.is_empty() {
        return false;
    }
    let full = &builds[builds.len() - 1];
    let mut i = 0;
    while i < builds.len() {
        let build = &builds[i];
        if build.rows > full.rows || build.cols > full.cols {
            return false;
        }
        if i > 0 && builds[i - 1].rows * builds[i - 1].cols > build.rows * build.cols {
            return false;
        }
        i += 1;
    }
    true
}

/// The narrowest build's width: one register's columns. Every build must be a whole number
/// of them.
const fn narrowest<T: 'static>(builds: &[Build<T>]) -> usize {
    let mut lane = builds[builds.len() - 1].cols;
    let mut i = 0;
    while i < builds.len() {
        if builds[i].cols < lane {
            lane = builds[i].cols;
        }
        i += 1;
    }
    let mut i = 0;
    while i < builds.len() {
        assert!(
            lane > 0 && builds[i].cols.is_multiple_of(lane),
            "a build of part of a register"
        );
        i += 1;
    }
    lane
}

/// `[rows][registers]`: the index of the smallest build that covers a tile that large (the
/// full tile where none does).
const fn pick_table<T: 'static>(builds: &[Build<T>], lane: usize) -> Picks {
    let mut picks: Picks = [[(builds.len() - 1) as u8; MAX_REGS + 1]; MAX_ROWS + 1];
    let mut rows = 0;
    while rows <= MAX_ROWS {
        let mut regs = 0;
        while regs <= MAX_REGS {
            // The first that covers is the smallest: the builds are ordered by area.
            let mut i = 0;
            while i < builds.len() {
                if rows <= builds[i].rows && regs * lane <= builds[i].cols {
                    picks[rows][regs] = i as u8;
                    break;
                }
                i += 1;
            }
            regs += 1;
        }
        rows += 1;
    }
    picks
}

/// The build `picks` names for a tile of `rows` × `regs` registers (both within the table).
const fn picked<'b, T: 'static>(builds: &'b [Build<T>], picks: &Picks, rows: usize, regs: usize) -> &'b Build<T> {
    &builds[picks[rows][regs] as usize]
}

/// The tallest height below the full tile's that has a build of exactly that height for
/// every width the full height has.
const fn short_height<T: 'static>(builds: &[Build<T>], lane: usize, picks: &Picks) -> Option<usize> {
    let mr = builds[builds.len() - 1].rows;
    let mut short = None;
    let mut height = 1;
    while height < mr {
        let mut exact = true;
        let mut i = 0;
        while i < builds.len() {
            if builds[i].rows == mr {
                let pick = picked(builds, picks, height, builds[i].cols / lane);
                exact = exact && pick.rows == height && pick.cols == builds[i].cols;
            }
            i += 1;
        }
        if exact {
            short = Some(height);
        }
        height += 1;
    }
    short
}

/// Whether every tile a whole number of registers wide, of any height up to the full
/// tile's, runs a build exactly that wide.
const fn exact_widths<T: 'static>(builds: &[Build<T>], lane: usize, picks: &Picks) -> bool {
    let full = &builds[builds.len() - 1];
    let mut rows = 1;
    while rows <= full.rows {
        let mut regs = 1;
        while regs <= full.cols / lane {
            if picked(builds, picks, rows, regs).cols != regs * lane {
                return false;
            }
            regs += 1;
        }
        rows += 1;
    }
    true
}
