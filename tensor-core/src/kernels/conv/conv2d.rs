//! `conv2d` and its two backprops, each lowered to GEMMs over im2col blocks.

use super::im2col::{col2im_rows, im2col_rows, rows_per_block};
use super::*;
use crate::kernels::matmul::{gemm_serial, MatRef};
use rayon::prelude::*;

/// 2-D convolution (cross-correlation, like `tf.nn.conv2d`) of an NHWC
/// `input` with an HWIO `filter`; returns the NHWC `[n, oh, ow, c_out]`
/// output.
///
/// # Panics
///
/// Panics if a slice length does not match the geometry.
pub fn conv2d<T: ConvFloat>(g: &Conv2dGeometry, input: &[T], filter: &[T]) -> Vec<T> {
    check_len(input.len(), g.input_len(), "conv2d", "input");
    check_len(filter.len(), g.filter_len(), "conv2d", "filter");
    let mut out = vec![T::default(); g.output_len()];
    let k_len = g.k_len();
    if out.is_empty() || k_len == 0 {
        return out;
    }
    let work = g.output_len().saturating_mul(k_len);
    let rows_per = rows_per_block(g, is_large(work));
    let row_len = g.ow * g.c_out;
    let pointwise = g.is_pointwise();
    let filter_mat = MatRef::new(filter, g.c_out, 1);
    let block = |row0: usize, out_block: &mut [T], buf: &mut Vec<T>| {
        let m = out_block.len() / g.c_out;
        let cols: &[T] = if pointwise {
            &input[row0 * g.ow * k_len..][..m * k_len]
        } else {
            buf.resize(m * k_len, T::default());
            im2col_rows(g, input, row0, m / g.ow, buf);
            &buf[..m * k_len]
        };
        let cols = MatRef::new(cols, k_len, 1);
        gemm_serial((m, k_len, g.c_out), cols, filter_mat, out_block, false);
    };
    let block_len = rows_per * row_len;
    if go_parallel(work) {
        out.par_chunks_mut(block_len)
            .enumerate()
            .for_each_init(Vec::new, |buf, (i, chunk)| block(i * rows_per, chunk, buf));
    } else {
        let mut buf = Vec::new();
        for (i, chunk) in out.chunks_mut(block_len).enumerate() {
            block(i * rows_per, chunk, &mut buf);
        }
    }
    out
}

/// Gradient of [`conv2d`] with respect to its input: given `grad_out`
/// (`[n, oh, ow, c_out]`), returns `d(sum(conv2d(x, filter) * grad_out)) /
/// dx` as an NHWC `[n, h, w, c_in]` buffer (like
/// `tf.nn.conv2d_backprop_input`).
///
/// # Panics
///
/// Panics if a slice length does not match the geometry.
pub fn conv2d_backprop_input<T: ConvFloat>(g: &Conv2dGeometry, filter: &[T], grad_out: &[T]) -> Vec<T> {
    check_len(filter.len(), g.filter_len(), "conv2d_backprop_input", "filter");
    check_len(grad_out.len(), g.output_len(), "conv2d_backprop_input", "grad_out");
    let mut dinput = vec![T::default(); g.input_len()];
    let k_len = g.k_len();
    if dinput.is_empty() || grad_out.is_empty() {
        return dinput;
    }
    let work = g.output_len().saturating_mul(k_len);
    let parallel = go_parallel(work);
    let rows_per = rows_per_block(g, is_large(work));
    // filterᵀ: [c_out, k_len] view of the [k_len, c_out] filter.
    let filter_t = MatRef::new(filter, 1, g.c_out);
    let grad_rows = |row0: usize, m: usize| MatRef::new(&grad_out[row0 * g.ow * g.c_out..][..m * g.c_out], g.c_out, 1);
    if g.is_pointwise() {
        // The input gradient is itself the im2col gradient: one GEMM per
        // block, written straight into disjoint rows.
        let row_len = g.w * k_len;
        for_each_row_block(&mut dinput, row_len, rows_per, parallel, |row0, chunk| {
            let m = chunk.len() / k_len;
            gemm_serial((m, g.c_out, k_len), grad_rows(row0, m), filter_t, chunk, false);
        });
        return dinput;
    }
    let img_len = g.h * g.w * g.c_in;
    if rows_per >= g.oh {
        // Small images: each block is a run of whole images, so blocks
        // scatter into disjoint parts of the input gradient.
        let imgs = rows_per / g.oh;
        let run = |bi: usize, dchunk: &mut [T], buf: &mut Vec<T>| {
            let nrows = dchunk.len() / img_len * g.oh;
            let m = nrows * g.ow;
            buf.resize(m * k_len, T::default());
            let grad = grad_rows(bi * imgs * g.oh, m);
            gemm_serial((m, g.c_out, k_len), grad, filter_t, &mut buf[..m * k_len], false);
            col2im_rows(g, buf, 0, nrows, dchunk);
        };
        if parallel {
            dinput
                .par_chunks_mut(imgs * img_len)
                .enumerate()
                .for_each_init(Vec::new, |buf, (bi, dchunk)| run(bi, dchunk, buf));
        } else {
            let mut buf = Vec::new();
            for (bi, dchunk) in dinput.chunks_mut(imgs * img_len).enumerate() {
                run(bi, dchunk, &mut buf);
            }
        }
        return dinput;
    }
    // Large images: blocks of rows within one image. Each image's gradient
    // is the same whichever way the work is spread: the per-block GEMMs are
    // identical and every image is scattered serially in block order.
    let rows_img = rows_per;
    let blocks_img = g.oh.div_ceil(rows_img);
    let dcols = |b: usize, j: usize, buf: &mut Vec<T>| {
        let oy0 = j * rows_img;
        let nrows = rows_img.min(g.oh - oy0);
        let m = nrows * g.ow;
        buf.resize(m * k_len, T::default());
        let grad = grad_rows(b * g.oh + oy0, m);
        gemm_serial((m, g.c_out, k_len), grad, filter_t, &mut buf[..m * k_len], false);
        (oy0, nrows)
    };
    let threads = rayon::current_num_threads();
    if parallel && g.n >= threads && (g.n >= 2 * threads || g.n.is_multiple_of(threads)) {
        // Enough images to keep every thread busy: one task per image.
        dinput
            .par_chunks_mut(img_len)
            .enumerate()
            .for_each_init(Vec::new, |buf, (b, dimg)| {
                for j in 0..blocks_img {
                    let (oy0, nrows) = dcols(b, j, buf);
                    col2im_rows(g, buf, oy0, nrows, dimg);
                }
            });
        return dinput;
    }
    // Few images: compute a wave of blocks in parallel, then scatter them
    // serially in block order.
    let wave = if parallel { threads.clamp(1, blocks_img) } else { 1 };
    let mut bufs: Vec<(Vec<T>, usize, usize)> = (0..wave).map(|_| (Vec::new(), 0, 0)).collect();
    for (b, dimg) in dinput.chunks_mut(img_len).enumerate() {
        for first in (0..blocks_img).step_by(wave) {
            let count = wave.min(blocks_img - first);
            let run = |(j, slot): (usize, &mut (Vec<T>, usize, usize))| {
                let (oy0, nrows) = dcols(b, first + j, &mut slot.0);
                slot.1 = oy0;
                slot.2 = nrows;
            };
            if count > 1 {
                bufs[..count].par_iter_mut().enumerate().for_each(run);
            } else {
                bufs[..count].iter_mut().enumerate().for_each(run);
            }
            for (buf, oy0, nrows) in &bufs[..count] {
                col2im_rows(g, buf, *oy0, *nrows, dimg);
            }
        }
    }
    dinput
}

/// Gradient of [`conv2d`] with respect to its filter: given `grad_out`
/// (`[n, oh, ow, c_out]`), returns `d(sum(conv2d(input, f) * grad_out)) /
/// df` as an HWIO `[kh, kw, c_in, c_out]` buffer (like
/// `tf.nn.conv2d_backprop_filter`).
///
/// # Panics
///
/// Panics if a slice length does not match the geometry.
pub fn conv2d_backprop_filter<T: ConvFloat>(g: &Conv2dGeometry, input: &[T], grad_out: &[T]) -> Vec<T> {
    check_len(input.len(), g.input_len(), "conv2d_backprop_filter", "input");
    check_len(grad_out.len(), g.output_len(), "conv2d_backprop_filter", "grad_out");
    let f_len = g.filter_len();
    let mut dfilter = vec![T::default(); f_len];
    let k_len = g.k_len();
    if dfilter.is_empty() || grad_out.is_empty() {
        return dfilter;
    }
    let work = g.output_len().saturating_mul(k_len);
    let large = is_large(work);
    let rows_per = rows_per_block(g, large);
    let total_rows = g.n * g.oh;
    let n_blocks = total_rows.div_ceil(rows_per);
    let pointwise = g.is_pointwise();
    // The im2col block `bi` (borrowing `buf` when a gather is needed) and
    // the matching rows of `grad_out`.
    let block = |bi: usize, buf: &'_ mut Vec<T>| -> (usize, usize) {
        let row0 = bi * rows_per;
        let m = rows_per.min(total_rows - row0) * g.ow;
        if !pointwise {
            buf.resize(m * k_len, T::default());
            im2col_rows(g, input, row0, m / g.ow, buf);
        }
        (row0, m)
    };
    let cols_of = |row0: usize, m: usize| row0 * g.ow * k_len..(row0 * g.ow + m) * k_len;
    let grad_of = |row0: usize, m: usize| MatRef::new(&grad_out[row0 * g.ow * g.c_out..][..m * g.c_out], g.c_out, 1);
    // Rows `k0..k0 + acc.len() / c_out` of the filter gradient: (+)=
    // colsᵀ · grad, with colsᵀ the [k_len, m] view of the [m, k_len] block.
    let gemm_rows = |cols: &[T], k0: usize, row0: usize, m: usize, acc: &mut [T], add: bool| {
        let cols_t = MatRef::new(&cols[k0..], 1, k_len);
        let rows = acc.len() / g.c_out;
        gemm_serial((rows, m, g.c_out), cols_t, grad_of(row0, m), acc, add);
    };
    // How the reduction over blocks is organised is a function of the
    // geometry only, so the summation order never depends on threads or
    // timing.
    let partials = n_blocks.min(MAX_FILTER_PARTIALS).min(FILTER_PARTIAL_BUDGET / f_len);
    if !large || partials < 2 {
        // Blocks accumulate serially in order; a large problem splits each
        // GEMM over disjoint row ranges of the filter gradient, which leaves
        // every element's summation order unchanged.
        let split = if large {
            k_len.div_ceil(MAX_FILTER_PARTIALS).max(MIN_GEMM_M)
        } else {
            k_len
        } * g.c_out;
        let parallel = large && split < f_len && rayon::current_num_threads() > 1;
        let mut buf = Vec::new();
        for bi in 0..n_blocks {
            let (row0, m) = block(bi, &mut buf);
            let cols = if pointwise {
                &input[cols_of(row0, m)]
            } else {
                &buf[..m * k_len]
            };
            let part = |(si, acc): (usize, &mut [T])| {
                gemm_rows(cols, si * (split / g.c_out), row0, m, acc, bi != 0);
            };
            if parallel {
                dfilter.par_chunks_mut(split).enumerate().for_each(part);
            } else {
                dfilter.chunks_mut(split).enumerate().for_each(part);
            }
        }
        return dfilter;
    }
    // Small filter, many blocks: contiguous runs of blocks reduce into
    // separate partial sums in parallel, then the partials are added in
    // order.
    let blocks_per_partial = n_blocks.div_ceil(partials);
    let partials = n_blocks.div_ceil(blocks_per_partial);
    let accumulate = |pi: usize, acc: &mut [T], buf: &mut Vec<T>| {
        let first = pi * blocks_per_partial;
        let last = (first + blocks_per_partial).min(n_blocks);
        for bi in first..last {
            let (row0, m) = block(bi, buf);
            let cols = if pointwise {
                &input[cols_of(row0, m)]
            } else {
                &buf[..m * k_len]
            };
            gemm_rows(cols, 0, row0, m, acc, bi != first);
        }
    };
    let mut sums = vec![T::default(); partials * f_len];
    if rayon::current_num_threads() > 1 {
        sums.par_chunks_mut(f_len)
            .enumerate()
            .for_each_init(Vec::new, |buf, (pi, acc)| accumulate(pi, acc, buf));
    } else {
        let mut buf = Vec::new();
        for (pi, acc) in sums.chunks_mut(f_len).enumerate() {
            accumulate(pi, acc, &mut buf);
        }
    }
    let (head, rest) = sums.split_at(f_len);
    dfilter.copy_from_slice(head);
    for part in rest.chunks(f_len) {
        for (d, &p) in dfilter.iter_mut().zip(part) {
            *d += p;
        }
    }
    dfilter
}
