//! Packing of operand blocks into the panel layouts the micro-kernel streams through.
//!
//! `A` (an `mc × kc` block) becomes `⌈mc/MR⌉` panels, each `kc` columns of `MR` consecutive
//! values (`panel[p·MR + i] = A[i][p]`); `B` (a `kc × nc` block) becomes `⌈nc/NR⌉` panels of
//! `kc` rows of `NR` values (`panel[p·NR + j] = B[p][j]`). Rows or columns past the block
//! edge are zero, so a kernel always runs whole tiles of its height (the full `MR` or a
//! shorter edge build, which reads the first rows of the same panels) and only its store is
//! clipped.
//! Any strides are accepted: a transposed operand is packed straight from its storage.
//!
//! The kernels' own tile sizes (`MR` of 6 or 9, `NR` of 8, 16, 24 or 48) get copies compiled
//! for that size: packing is the only work of a product that is not multiply-adds, and a
//! loop of unknown length per 6 values (or a `memcpy` call per 64 bytes) made it take 5–9 %
//! of a product's time on two cores (measured with `perf` at n = 64 and 1024).

use super::PackedFloat;

/// Packs the `rows × kc` block of `A` at `a` (strides `rsa`, `csa`) into `out`, which holds
/// at least `⌈rows/mr⌉·mr·kc` elements.
///
/// # Safety
///
/// Every `a + i·rsa + p·csa` with `i < rows`, `p < kc` is valid for reads.
pub(crate) unsafe fn pack_a<T: PackedFloat>(
    rows: usize,
    kc: usize,
    a: *const T,
    rsa: isize,
    csa: isize,
    mr: usize,
    out: &mut [T],
) {
    for (panel, dst) in out.chunks_exact_mut(mr * kc).take(rows.div_ceil(mr)).enumerate() {
        let r0 = panel * mr;
        let live = mr.min(rows - r0);
        // SAFETY: row `r0 < rows` of the block (caller contract).
        let base = unsafe { a.offset(r0 as isize * rsa) };
        // SAFETY (each arm): rows `r0..r0 + live`, columns `..kc` of the block.
        match (live, mr) {
            (6, 6) => unsafe { gather_rows::<T, 6>(base, rsa, csa, dst) },
            (9, 9) => unsafe { gather_rows::<T, 9>(base, rsa, csa, dst) },
            _ => unsafe { pack_a_panel(live, base, rsa, csa, mr, dst) },
        }
    }
}

/// One whole `MR`-row panel of `A`: column `p` of the panel is one read of each row, written
/// as `MR` consecutive values.
///
/// # Safety
///
/// Every `base + i·rsa + p·csa` with `i < MR`, `p < dst.len() / MR` is valid for reads.
#[inline(always)]
unsafe fn gather_rows<T: PackedFloat, const MR: usize>(base: *const T, rsa: isize, csa: isize, dst: &mut [T]) {
    // SAFETY: row `i < MR` of the panel.
    let rows: [*const T; MR] = std::array::from_fn(|i| unsafe { base.offset(i as isize * rsa) });
    for (p, col) in dst.chunks_exact_mut(MR).enumerate() {
        // Rows read in place are `MR` separate streams, each reaching a new 64-byte line every
        // 16 (`f32`) or 8 (`f64`) steps: ask for each row's line 64 steps ahead as it does.
        // Measured with `perf` (2048² `f32`, one thread): packing `A` took a quarter less
        // time. Only for contiguous rows: a transposed `A` (W4's weight gradients) ran 4 %
        // slower with it.
        #[cfg(target_arch = "x86_64")]
        if csa == 1 && p % (64 / std::mem::size_of::<T>()).max(1) == 0 {
            for row in &rows {
                // SAFETY: a prefetch hint never faults; the address is formed without the
                // in-bounds promise of `offset`.
                unsafe {
                    std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                        row.wrapping_add(p + 64).cast::<i8>(),
                    )
                };
            }
        }
        for (v, row) in col.iter_mut().zip(&rows) {
            // SAFETY: column `p` of a row of the panel (caller contract).
            *v = unsafe { *row.offset(p as isize * csa) };
        }
    }
}

/// Any panel of `A`, `live ≤ mr` rows of it real (the rest zero).
///
/// # Safety
///
/// Every `base + i·rsa + p·csa` with `i < live`, `p < dst.len() / mr` is valid for reads.
unsafe fn pack_a_panel<T: PackedFloat>(live: usize, base: *const T, rsa: isize, csa: isize, mr: usize, dst: &mut [T]) {
    if live < mr {
        dst.fill(T::ZERO);
    }
    for (p, col) in dst.chunks_exact_mut(mr).enumerate() {
        for (i, v) in col[..live].iter_mut().enumerate() {
            // SAFETY: row `i < live`, column `p` of the panel (caller contract).
            *v = unsafe { *base.offset(i as isize * rsa + p as isize * csa) };
        }
    }
}

/// Packs the `kc × cols` block of `B` at `b` (strides `rsb`, `csb`) into `out`, which holds
/// at least `⌈cols/nr⌉·nr·kc` elements.
///
/// # Safety
///
/// Every `b + p·rsb + j·csb` with `p < kc`, `j < cols` is valid for reads.
pub(crate) unsafe fn pack_b<T: PackedFloat>(
    kc: usize,
    cols: usize,
    b: *const T,
    rsb: isize,
    csb: isize,
    nr: usize,
    out: &mut [T],
) {
    // Whole panels of a `B` with contiguous rows go several at a time (`copy_panel_rows`).
    let grouped: Option<RowCopy<T>> = match (csb, nr) {
        (1, 8) => Some(row_copy::<T, 8>()),
        (1, 16) => Some(row_copy::<T, 16>()),
        (1, 24) => Some(row_copy::<T, 24>()),
        (1, 48) => Some(row_copy::<T, 48>()),
        _ => None,
    };
    let first = grouped.map_or(0, |_| cols / nr);
    if let Some(copy) = grouped {
        for (group, dst) in out[..first * nr * kc]
            .chunks_mut(PANELS_PER_ROW_READ * nr * kc)
            .enumerate()
        {
            // SAFETY: rows `..kc` and the group's whole panels of columns (all below
            // `first·nr ≤ cols`) lie inside the block; `dst` holds exactly those panels;
            // `row_copy` picks the AVX2 build only where this CPU has AVX2.
            unsafe { copy(b.add(group * PANELS_PER_ROW_READ * nr), rsb, kc, dst) };
        }
    }
    for (panel, dst) in out
        .chunks_exact_mut(nr * kc)
        .take(cols.div_ceil(nr))
        .enumerate()
        .skip(first)
    {
        let c0 = panel * nr;
        let live = nr.min(cols - c0);
        // SAFETY: column `c0 < cols` of the block (caller contract).
        let base = unsafe { b.offset(c0 as isize * csb) };
        if csb.unsigned_abs() > rsb.unsigned_abs() {
            // Column-major storage (a transposed operand): read down each column.
            if live < nr {
                dst.fill(T::ZERO);
            }
            for j in 0..live {
                // SAFETY: column `c0 + j < cols` of the block.
                let src = unsafe { base.offset(j as isize * csb) };
                for p in 0..kc {
                    // SAFETY: row `p < kc` of that column.
                    dst[p * nr + j] = unsafe { *src.offset(p as isize * rsb) };
                }
            }
            continue;
        }
        // SAFETY: rows `..kc`, columns `c0..c0 + live` of the block.
        unsafe { pack_b_panel(live, base, rsb, csb, nr, dst) };
    }
}

/// Panels packed from one contiguous read of each row of `B`.
const PANELS_PER_ROW_READ: usize = 8;

/// `dst.len() / (NR·kc)` whole consecutive panels of a `B` with contiguous rows, row by row:
/// each row of `B` is read once, contiguously, for all of them.
///
/// Why: panel by panel, each row gives only `NR` values (one or two cache lines) before the
/// copy jumps a whole row of `B` on, so with long rows every line is a miss of its own and
/// no stream forms for the prefetchers. Eight panels per row read cut the copy's time by a
/// fifth (`perf`, 240 × 2048 × 2048 `f64`, one thread); 32 measured alike.
///
/// # Safety
///
/// `base + p·rsb .. + (dst.len() / kc)` is readable for every `p < kc`.
#[inline(always)]
unsafe fn copy_panel_rows<T: PackedFloat, const NR: usize>(base: *const T, rsb: isize, kc: usize, dst: &mut [T]) {
    let panels = dst.len() / (NR * kc);
    for p in 0..kc {
        // SAFETY: row `p`, `panels·NR` contiguous values (caller contract).
        let src = unsafe { base.offset(p as isize * rsb) };
        for g in 0..panels {
            // SAFETY: as above; `T` is `Copy`.
            let vals = unsafe { &*src.add(g * NR).cast::<[T; NR]>() };
            dst[g * NR * kc + p * NR..][..NR].copy_from_slice(vals);
        }
    }
}

/// A [`copy_panel_rows`] build: `(row 0 of the panels, row stride, kc, destination)`.
type RowCopy<T> = unsafe fn(*const T, isize, usize, &mut [T]);

/// [`copy_panel_rows`] for `NR`-wide panels, compiled with AVX2 where this CPU has it
/// (every CPU with a packed kernel does).
fn row_copy<T: PackedFloat, const NR: usize>() -> RowCopy<T> {
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::simd::level() != crate::kernels::simd::Level::Baseline {
        return copy_panel_rows_avx2::<T, NR>;
    }
    copy_panel_rows::<T, NR>
}

/// [`copy_panel_rows`] compiled with AVX2, so each row's copy is a few inline 32-byte moves.
///
/// Why: without AVX2 the compiler turns a copy of more than 128 bytes into a `memmove`
/// call, and the AVX-512 kernels' rows are 192 bytes (48 `f32`, 24 `f64`). Measured on an
/// AVX-512 Xeon (2 threads, bands, paired runs in one binary): 256² `f32` 3.6 % faster,
/// larger products and `f64` alike.
///
/// # Safety
///
/// As [`copy_panel_rows`]; the CPU has AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn copy_panel_rows_avx2<T: PackedFloat, const NR: usize>(base: *const T, rsb: isize, kc: usize, dst: &mut [T]) {
    // SAFETY: forwarded contract.
    unsafe { copy_panel_rows::<T, NR>(base, rsb, kc, dst) }
}

/// Any row-major panel of `B`, `live ≤ nr` columns of it real (the rest zero).
///
/// # Safety
///
/// Every `base + p·rsb + j·csb` with `p < dst.len() / nr`, `j < live` is valid for reads.
unsafe fn pack_b_panel<T: PackedFloat>(live: usize, base: *const T, rsb: isize, csb: isize, nr: usize, dst: &mut [T]) {
    for (p, row) in dst.chunks_exact_mut(nr).enumerate() {
        // SAFETY: row `p`, first column of the panel.
        let src = unsafe { base.offset(p as isize * rsb) };
        if csb == 1 {
            // SAFETY: `live` contiguous elements of row `p` (unit column stride).
            row[..live].copy_from_slice(unsafe { std::slice::from_raw_parts(src, live) });
        } else {
            for (j, v) in row[..live].iter_mut().enumerate() {
                // SAFETY: column `j < live` of row `p`.
                *v = unsafe { *src.offset(j as isize * csb) };
            }
        }
        row[live..].fill(T::ZERO);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `rows × cols` matrix of distinct values, stored row-major or column-major.
    fn matrix(rows: usize, cols: usize, col_major: bool) -> (Vec<f32>, isize, isize) {
        let mut data = vec![0.0; rows * cols];
        for i in 0..rows {
            for j in 0..cols {
                let at = if col_major { j * rows + i } else { i * cols + j };
                data[at] = (i * 1000 + j) as f32 + 0.5;
            }
        }
        let (rs, cs) = if col_major {
            (1, rows as isize)
        } else {
            (cols as isize, 1)
        };
        (data, rs, cs)
    }

    /// Checks packed panels of `width` values per step over `kc` steps: value `at` is
    /// `value(edge, p)` for index `edge` along the panel's width (rows of `A`, columns of
    /// `B`) while `edge < live`, and zero past the edge.
    fn assert_panels(
        out: &[f32],
        width: usize,
        kc: usize,
        live: usize,
        value: impl Fn(usize, usize) -> f32,
        what: &str,
    ) {
        for (at, &v) in out.iter().enumerate() {
            let (panel, p, lane) = (at / (width * kc), at % (width * kc) / width, at % width);
            let edge = panel * width + lane;
            let want = if edge < live { value(edge, p) } else { 0.0 };
            assert_eq!(v, want, "{what} at {at}");
        }
    }

    /// Every tile size the kernels use (the fixed-size copies) and others (the general
    /// loops), whole and partial panels, both storage orders: the panels hold exactly the
    /// documented layout, zeros past the edge.
    #[test]
    fn panels_hold_the_documented_layout() {
        for col_major in [false, true] {
            for mr in [4usize, 6, 9, 12] {
                for rows in [1, mr - 1, mr, 2 * mr + 1] {
                    let kc = 7;
                    let (a, rsa, csa) = matrix(rows, kc, col_major);
                    let mut out = vec![f32::NAN; rows.div_ceil(mr) * mr * kc];
                    // SAFETY: the block is the whole matrix.
                    unsafe { pack_a(rows, kc, a.as_ptr(), rsa, csa, mr, &mut out) };
                    let what = format!("A mr={mr} rows={rows} col_major={col_major}");
                    assert_panels(&out, mr, kc, rows, |r, p| (r * 1000 + p) as f32 + 0.5, &what);
                }
            }
            for nr in [4usize, 8, 16, 24, 32, 48] {
                for cols in [1, nr - 1, nr, 2 * nr + 3, (PANELS_PER_ROW_READ + 1) * nr + 3] {
                    let kc = 5;
                    let (b, rsb, csb) = matrix(kc, cols, col_major);
                    let mut out = vec![f32::NAN; cols.div_ceil(nr) * nr * kc];
                    // SAFETY: the block is the whole matrix.
                    unsafe { pack_b(kc, cols, b.as_ptr(), rsb, csb, nr, &mut out) };
                    let what = format!("B nr={nr} cols={cols} col_major={col_major}");
                    assert_panels(&out, nr, kc, cols, |c, p| (p * 1000 + c) as f32 + 0.5, &what);
                }
            }
        }
    }

    /// A block inside a larger matrix (row stride wider than the block): the copies read
    /// only the block's columns.
    #[test]
    fn blocks_of_a_wider_matrix() {
        let (b, rsb, _) = matrix(3, 40, false);
        let mut out = vec![f32::NAN; 16 * 3];
        // SAFETY: columns 5..21 of a 3 × 40 matrix.
        unsafe { pack_b(3, 16, b.as_ptr().add(5), rsb, 1, 16, &mut out) };
        for p in 0..3 {
            for j in 0..16 {
                assert_eq!(out[p * 16 + j], (p * 1000 + 5 + j) as f32 + 0.5);
            }
        }
        let (a, rsa, _) = matrix(6, 40, false);
        let mut out = vec![f32::NAN; 6 * 4];
        // SAFETY: columns 9..13 of a 6 × 40 matrix.
        unsafe { pack_a(6, 4, a.as_ptr().add(9), rsa, 1, 6, &mut out) };
        for p in 0..4 {
            for i in 0..6 {
                assert_eq!(out[p * 6 + i], (i * 1000 + 9 + p) as f32 + 0.5);
            }
        }
    }
}
