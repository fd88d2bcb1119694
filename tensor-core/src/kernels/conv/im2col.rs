//! im2col and col2im: the receptive fields of a block of output rows gathered into a
//! matrix (and scattered back), so each convolution block is one GEMM.

use super::{tap_index, tap_range, Conv2dGeometry, ConvFloat, IM2COL_TARGET, MIN_GEMM_M, MIN_PAR_BLOCKS};

/// Rows `(b, oy)` of output per block for the im2col kernels; a function of
/// the geometry only.
pub(super) fn rows_per_block(g: &Conv2dGeometry, large: bool) -> usize {
    let total_rows = g.n * g.oh;
    let per_row = (g.ow * g.k_len()).max(1);
    let mut rows = IM2COL_TARGET / per_row;
    if large {
        rows = rows.min(total_rows.div_ceil(MIN_PAR_BLOCKS));
    }
    rows = rows.max(MIN_GEMM_M.div_ceil(g.ow.max(1)));
    rows.clamp(1, total_rows.max(1))
}

/// Zeroes a (usually short or empty) run without a library call.
#[inline]
pub(super) fn fill_zero<T: ConvFloat>(dst: &mut [T]) {
    if dst.len() > 16 {
        dst.fill(T::default());
    } else {
        for d in dst {
            *d = T::default();
        }
    }
}

/// Copies a (usually short) run without a library call for tiny lengths.
#[inline]
pub(super) fn copy_run<T: ConvFloat>(dst: &mut [T], src: &[T]) {
    if dst.len() > 16 {
        dst.copy_from_slice(src);
    } else {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = s;
        }
    }
}

/// Valid horizontal taps of every output column: `(kx0, kx1, ix0)` with
/// `ix0` the input column of tap `kx0` (0 when there is no valid tap).
pub(super) fn x_taps(g: &Conv2dGeometry) -> Vec<(usize, usize, usize)> {
    (0..g.ow)
        .map(|ox| {
            let (kx0, kx1, base) = tap_range(ox, g.sw, g.pad_left, g.dw, g.kw, g.w);
            let ix0 = if kx1 > kx0 { tap_index(base, kx0, g.dw) } else { 0 };
            (kx0, kx1, ix0)
        })
        .collect()
}

/// Gathers the receptive fields of output rows `row0..row0 + nrows` (global
/// `(b, oy)` row index) into `cols`, one `k_len` row per output pixel.
pub(super) fn im2col_rows<T: ConvFloat>(g: &Conv2dGeometry, input: &[T], row0: usize, nrows: usize, cols: &mut [T]) {
    let c = g.c_in;
    let k_len = g.k_len();
    let krow = g.kw * c;
    let img_len = g.h * g.w * c;
    let row_stride = g.w * c;
    let xt = x_taps(g);
    let rows = cols[..nrows * g.ow * k_len].chunks_exact_mut(g.ow * k_len);
    for (lr, out_row) in rows.enumerate() {
        let r = row0 + lr;
        let (b, oy) = (r / g.oh, r % g.oh);
        let img = &input[b * img_len..][..img_len];
        let (ky0, ky1, ybase) = tap_range(oy, g.sh, g.pad_top, g.dh, g.kh, g.h);
        let iy0 = if ky1 > ky0 { tap_index(ybase, ky0, g.dh) } else { 0 };
        for (dst, &(kx0, kx1, ix0)) in out_row.chunks_exact_mut(k_len).zip(&xt) {
            fill_zero(&mut dst[..ky0 * krow]);
            fill_zero(&mut dst[ky1 * krow..]);
            let taps = &mut dst[ky0 * krow..ky1 * krow];
            let mut src_off = iy0 * row_stride + ix0 * c;
            if kx0 == 0 && kx1 == g.kw && g.dw == 1 {
                // Every horizontal tap is real: one contiguous run per row.
                for drow in taps.chunks_exact_mut(krow) {
                    copy_run(drow, &img[src_off..src_off + krow]);
                    src_off += g.dh * row_stride;
                }
                continue;
            }
            for drow in taps.chunks_exact_mut(krow) {
                fill_zero(&mut drow[..kx0 * c]);
                fill_zero(&mut drow[kx1 * c..]);
                let live = &mut drow[kx0 * c..kx1 * c];
                if g.dw == 1 {
                    copy_run(live, &img[src_off..src_off + live.len()]);
                } else {
                    let mut off = src_off;
                    for d in live.chunks_exact_mut(c) {
                        copy_run(d, &img[off..off + c]);
                        off += g.dw * c;
                    }
                }
                src_off += g.dh * row_stride;
            }
        }
    }
}

/// Adds im2col-layout gradients of output rows `row0..row0 + nrows` back
/// into the input gradient (the adjoint of [`im2col_rows`]).
pub(super) fn col2im_rows<T: ConvFloat>(g: &Conv2dGeometry, cols: &[T], row0: usize, nrows: usize, dinput: &mut [T]) {
    let c = g.c_in;
    let k_len = g.k_len();
    let krow = g.kw * c;
    let img_len = g.h * g.w * c;
    for lr in 0..nrows {
        let r = row0 + lr;
        let (b, oy) = (r / g.oh, r % g.oh);
        let img = &mut dinput[b * img_len..][..img_len];
        let (ky0, ky1, ybase) = tap_range(oy, g.sh, g.pad_top, g.dh, g.kh, g.h);
        for ox in 0..g.ow {
            let src = &cols[(lr * g.ow + ox) * k_len..][..k_len];
            let (kx0, kx1, xbase) = tap_range(ox, g.sw, g.pad_left, g.dw, g.kw, g.w);
            if kx1 == kx0 {
                continue;
            }
            let ix0 = tap_index(xbase, kx0, g.dw);
            for ky in ky0..ky1 {
                let iy = tap_index(ybase, ky, g.dh);
                let drow = &mut img[iy * g.w * c..][..g.w * c];
                let srow = &src[ky * krow..][..krow];
                if g.dw == 1 {
                    let d = &mut drow[ix0 * c..(ix0 + kx1 - kx0) * c];
                    for (d, &s) in d.iter_mut().zip(&srow[kx0 * c..kx1 * c]) {
                        *d += s;
                    }
                } else {
                    for kx in kx0..kx1 {
                        let ix = ix0 + (kx - kx0) * g.dw;
                        for (d, &s) in drow[ix * c..][..c].iter_mut().zip(&srow[kx * c..][..c]) {
                            *d += s;
                        }
                    }
                }
            }
        }
    }
}
