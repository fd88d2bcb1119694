//! Packing of operand blocks into the panel layouts the micro-kernel streams through.
//!
//! `A` (an `mc × kc` block) becomes `⌈mc/MR⌉` panels, each `kc` columns of `MR` consecutive
//! values (`panel[p·MR + i] = A[i][p]`); `B` (a `kc × nc` block) becomes `⌈nc/NR⌉` panels of
//! `kc` rows of `NR` values (`panel[p·NR + j] = B[p][j]`). Rows or columns past the block
//! edge are zero, so the kernel always runs whole tiles and only its store is clipped.
//! Any strides are accepted: a transposed operand is packed straight from its storage.

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
        if live < mr {
            dst.fill(T::ZERO);
        }
        // SAFETY: row `r0 < rows` of the block (caller contract).
        let base = unsafe { a.offset(r0 as isize * rsa) };
        if rsa.unsigned_abs() < csa.unsigned_abs() {
            // Column-major storage (a transposed operand): read down each column.
            for (p, col) in dst.chunks_exact_mut(mr).enumerate() {
                for (i, v) in col[..live].iter_mut().enumerate() {
                    // SAFETY: row `r0 + i < rows`, column `p < kc` of the block.
                    *v = unsafe { *base.offset(i as isize * rsa + p as isize * csa) };
                }
            }
        } else {
            for i in 0..live {
                // SAFETY: row `r0 + i < rows` of the block.
                let src = unsafe { base.offset(i as isize * rsa) };
                for p in 0..kc {
                    // SAFETY: column `p < kc` of that row.
                    dst[p * mr + i] = unsafe { *src.offset(p as isize * csa) };
                }
            }
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
    for (panel, dst) in out.chunks_exact_mut(nr * kc).take(cols.div_ceil(nr)).enumerate() {
        let c0 = panel * nr;
        let live = nr.min(cols - c0);
        if csb.unsigned_abs() > rsb.unsigned_abs() {
            // Column-major storage (a transposed operand): read down each column.
            if live < nr {
                dst.fill(T::ZERO);
            }
            for j in 0..live {
                // SAFETY: column `c0 + j < cols` of the block.
                let src = unsafe { b.offset((c0 + j) as isize * csb) };
                for p in 0..kc {
                    // SAFETY: row `p < kc` of that column.
                    dst[p * nr + j] = unsafe { *src.offset(p as isize * rsb) };
                }
            }
            continue;
        }
        for (p, row) in dst.chunks_exact_mut(nr).enumerate() {
            // SAFETY: row `p < kc`, first column `c0 < cols` of the block.
            let src = unsafe { b.offset(p as isize * rsb + c0 as isize * csb) };
            if csb == 1 {
                // SAFETY: `live` contiguous elements of row `p` (unit column stride).
                row[..live].copy_from_slice(unsafe { std::slice::from_raw_parts(src, live) });
            } else {
                for (j, v) in row[..live].iter_mut().enumerate() {
                    // SAFETY: column `c0 + j < cols` of row `p`.
                    *v = unsafe { *src.offset(j as isize * csb) };
                }
            }
            row[live..].fill(T::ZERO);
        }
    }
}
