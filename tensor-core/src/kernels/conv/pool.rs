//! Max and average pooling, forward and backward (NHWC; padded positions never count).

use super::*;
use rayon::prelude::*;

/// Max-pool comparison: strictly greater wins (so the first maximum is kept
/// on ties), and the first NaN wins over any number.
#[inline]
fn beats<T: ConvFloat>(v: T, best: T) -> bool {
    (v > best) | (v.is_nan() & !best.is_nan())
}

/// Output rows per block for the pooling kernels.
fn pool_rows_per_block(g: &Conv2dGeometry, large: bool) -> usize {
    let total_rows = g.n * g.oh;
    if large {
        total_rows.div_ceil(MIN_PAR_BLOCKS * 4).max(1)
    } else {
        total_rows.max(1)
    }
}

pub(super) fn pool_work(g: &Conv2dGeometry) -> usize {
    g.pool_output_len().saturating_mul(g.kh * g.kw)
}

/// Max pooling (like `tf.nn.max_pool2d`): each output is the maximum of the
/// real (unpadded) input elements in its window; NaNs propagate. Returns
/// `[n, oh, ow, c_in]`. Windows are spaced by the strides; `dh`/`dw` > 1
/// would space the taps inside a window (a window with no real element
/// yields zero, which `SAME` / `VALID` pooling without dilation never
/// produces).
///
/// # Panics
///
/// Panics if the input length does not match the geometry.
pub fn max_pool2d<T: ConvFloat>(g: &Conv2dGeometry, input: &[T]) -> Vec<T> {
    check_len(input.len(), g.input_len(), "max_pool2d", "input");
    let c = g.c_in;
    let mut out = vec![T::default(); g.pool_output_len()];
    let work = pool_work(g);
    let rows_per = pool_rows_per_block(g, is_large(work));
    let img_len = g.h * g.w * c;
    for_each_row_block(&mut out, g.ow * c, rows_per, go_parallel(work), |row0, chunk| {
        for (lr, orow) in chunk.chunks_mut(g.ow * c).enumerate() {
            let r = row0 + lr;
            let (b, oy) = (r / g.oh, r % g.oh);
            let img = &input[b * img_len..][..img_len];
            let (ky0, ky1, ybase) = tap_range(oy, g.sh, g.pad_top, g.dh, g.kh, g.h);
            for (ox, dst) in orow.chunks_mut(c).enumerate() {
                let (kx0, kx1, xbase) = tap_range(ox, g.sw, g.pad_left, g.dw, g.kw, g.w);
                let mut first = true;
                for ky in ky0..ky1 {
                    let iy = tap_index(ybase, ky, g.dh);
                    for kx in kx0..kx1 {
                        let ix = tap_index(xbase, kx, g.dw);
                        let src = &img[(iy * g.w + ix) * c..][..c];
                        if first {
                            dst.copy_from_slice(src);
                            first = false;
                        } else {
                            for (d, &v) in dst.iter_mut().zip(src) {
                                if beats(v, *d) {
                                    *d = v;
                                }
                            }
                        }
                    }
                }
            }
        }
    });
    out
}

/// Gradient of [`max_pool2d`] (like TensorFlow's `MaxPoolGrad`): each
/// `grad_out` element is added to the input position holding its window's
/// maximum (the first one in row-major window order on ties). Returns
/// `[n, h, w, c_in]`.
///
/// # Panics
///
/// Panics if a slice length does not match the geometry.
pub fn max_pool2d_grad<T: ConvFloat>(g: &Conv2dGeometry, input: &[T], grad_out: &[T]) -> Vec<T> {
    check_len(input.len(), g.input_len(), "max_pool2d_grad", "input");
    check_len(grad_out.len(), g.pool_output_len(), "max_pool2d_grad", "grad_out");
    // Narrow argmax indices vectorise better; images with more than 2^32
    // pixels fall back to `usize`.
    if u32::try_from(g.h * g.w).is_ok() {
        max_pool2d_grad_with::<T, u32>(g, input, grad_out)
    } else {
        max_pool2d_grad_with::<T, usize>(g, input, grad_out)
    }
}

/// TensorFlow's `MaxPoolGradGrad`: each output element is `grad` at its window's maximum
/// of `input` (the position [`max_pool2d_grad`] sends that output's gradient to). Returns
/// `[n, oh, ow, c_in]`; an empty window gives zero.
///
/// # Panics
///
/// Panics if a slice length does not match the geometry.
pub fn max_pool2d_grad_grad<T: ConvFloat>(g: &Conv2dGeometry, input: &[T], grad: &[T]) -> Vec<T> {
    check_len(input.len(), g.input_len(), "max_pool2d_grad_grad", "input");
    check_len(grad.len(), g.input_len(), "max_pool2d_grad_grad", "grad");
    let c = g.c_in;
    let img_len = g.h * g.w * c;
    let mut out = vec![T::default(); g.pool_output_len()];
    if out.is_empty() || g.ow * c == 0 {
        return out; // no channels, or a window larger than a VALID input: nothing to gather
    }
    let (mut best, mut arg) = (vec![T::default(); c], vec![0usize; c]);
    for (r, orow) in out.chunks_mut(g.ow * c).enumerate() {
        let (b, oy) = (r / g.oh, r % g.oh);
        let img = &input[b * img_len..][..img_len];
        let gimg = &grad[b * img_len..][..img_len];
        for (ox, dst) in orow.chunks_mut(c).enumerate() {
            if window_argmax(g, img, oy, ox, &mut best, &mut arg) {
                for (ch, (d, &a)) in dst.iter_mut().zip(&arg).enumerate() {
                    *d = gimg[a * c + ch];
                }
            }
        }
    }
    out
}

/// Each channel's maximum and its pixel in the window of output `(oy, ox)` of one image,
/// into `best` and `arg`: the first maximum in row-major window order on ties, a NaN over
/// any number (as [`max_pool2d`] picks). False for a window with no real element.
#[inline]
fn window_argmax<T: ConvFloat, I: PixIndex>(
    g: &Conv2dGeometry,
    img: &[T],
    oy: usize,
    ox: usize,
    best: &mut [T],
    arg: &mut [I],
) -> bool {
    let c = g.c_in;
    let (ky0, ky1, ybase) = tap_range(oy, g.sh, g.pad_top, g.dh, g.kh, g.h);
    let (kx0, kx1, xbase) = tap_range(ox, g.sw, g.pad_left, g.dw, g.kw, g.w);
    let mut first = true;
    for ky in ky0..ky1 {
        let iy = tap_index(ybase, ky, g.dh);
        for kx in kx0..kx1 {
            let pix = iy * g.w + tap_index(xbase, kx, g.dw);
            let src = &img[pix * c..][..c];
            let pix = I::from_pix(pix);
            if first {
                best.copy_from_slice(src);
                arg.fill(pix);
                first = false;
            } else {
                for ((bv, a), &v) in best.iter_mut().zip(arg.iter_mut()).zip(src) {
                    let take = beats(v, *bv);
                    *bv = if take { v } else { *bv };
                    *a = if take { pix } else { *a };
                }
            }
        }
    }
    !first
}

/// Pixel index type used to record argmaxes.
pub(super) trait PixIndex: Copy + Send + Sync + Default {
    fn from_pix(pix: usize) -> Self;
    fn pix(self) -> usize;
}

impl PixIndex for u32 {
    #[inline]
    fn from_pix(pix: usize) -> Self {
        pix as u32
    }

    #[inline]
    fn pix(self) -> usize {
        self as usize
    }
}

impl PixIndex for usize {
    #[inline]
    fn from_pix(pix: usize) -> Self {
        pix
    }

    #[inline]
    fn pix(self) -> usize {
        self
    }
}

/// [`max_pool2d_grad`] with argmax indices of type `I` (which must hold
/// every pixel index of an image).
pub(super) fn max_pool2d_grad_with<T: ConvFloat, I: PixIndex>(
    g: &Conv2dGeometry,
    input: &[T],
    grad_out: &[T],
) -> Vec<T> {
    let c = g.c_in;
    let img_len = g.h * g.w * c;
    let out_img_len = g.oh * g.ow * c;
    let mut dinput = vec![T::default(); g.input_len()];
    if dinput.is_empty() || out_img_len == 0 {
        return dinput;
    }
    let image = |b: usize, dimg: &mut [T], scratch: &mut (Vec<T>, Vec<I>)| {
        let img = &input[b * img_len..][..img_len];
        let gimg = &grad_out[b * out_img_len..][..out_img_len];
        let (best, arg) = scratch;
        best.resize(c, T::default());
        arg.resize(c, I::default());
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                if !window_argmax(g, img, oy, ox, best, arg) {
                    continue; // empty window: no input receives gradient
                }
                let grow = &gimg[(oy * g.ow + ox) * c..][..c];
                for (ch, (&a, &gv)) in arg.iter().zip(grow).enumerate() {
                    dimg[a.pix() * c + ch] += gv;
                }
            }
        }
    };
    if go_parallel(pool_work(g)) && g.n > 1 {
        dinput
            .par_chunks_mut(img_len)
            .enumerate()
            .for_each_init(|| (Vec::new(), Vec::new()), |s, (b, dimg)| image(b, dimg, s));
    } else {
        let mut scratch = (Vec::new(), Vec::new());
        for (b, dimg) in dinput.chunks_mut(img_len).enumerate() {
            image(b, dimg, &mut scratch);
        }
    }
    dinput
}

/// Average pooling (like `tf.nn.avg_pool2d`): each output is the mean of the
/// real (unpadded) input elements in its window, so border windows under
/// `SAME` padding divide by their real element count. Returns
/// `[n, oh, ow, c_in]`.
///
/// # Panics
///
/// Panics if the input length does not match the geometry.
pub fn avg_pool2d<T: ConvFloat>(g: &Conv2dGeometry, input: &[T]) -> Vec<T> {
    check_len(input.len(), g.input_len(), "avg_pool2d", "input");
    let c = g.c_in;
    let mut out = vec![T::default(); g.pool_output_len()];
    let work = pool_work(g);
    let rows_per = pool_rows_per_block(g, is_large(work));
    let img_len = g.h * g.w * c;
    for_each_row_block(&mut out, g.ow * c, rows_per, go_parallel(work), |row0, chunk| {
        for (lr, orow) in chunk.chunks_mut(g.ow * c).enumerate() {
            let r = row0 + lr;
            let (b, oy) = (r / g.oh, r % g.oh);
            let img = &input[b * img_len..][..img_len];
            let (ky0, ky1, ybase) = tap_range(oy, g.sh, g.pad_top, g.dh, g.kh, g.h);
            for (ox, dst) in orow.chunks_mut(c).enumerate() {
                let (kx0, kx1, xbase) = tap_range(ox, g.sw, g.pad_left, g.dw, g.kw, g.w);
                let count = (ky1 - ky0) * (kx1 - kx0);
                if count == 0 {
                    continue;
                }
                for ky in ky0..ky1 {
                    let iy = tap_index(ybase, ky, g.dh);
                    for kx in kx0..kx1 {
                        let ix = tap_index(xbase, kx, g.dw);
                        let src = &img[(iy * g.w + ix) * c..][..c];
                        for (d, &v) in dst.iter_mut().zip(src) {
                            *d += v;
                        }
                    }
                }
                let denom = T::from_usize(count);
                for d in dst.iter_mut() {
                    *d = *d / denom;
                }
            }
        }
    });
    out
}

/// Gradient of [`avg_pool2d`] (like TensorFlow's `AvgPoolGrad`): each
/// `grad_out` element is divided by its window's real element count and
/// added to every real input position of the window. Returns
/// `[n, h, w, c_in]`.
///
/// # Panics
///
/// Panics if the gradient length does not match the geometry.
pub fn avg_pool2d_grad<T: ConvFloat>(g: &Conv2dGeometry, grad_out: &[T]) -> Vec<T> {
    check_len(grad_out.len(), g.pool_output_len(), "avg_pool2d_grad", "grad_out");
    let c = g.c_in;
    let img_len = g.h * g.w * c;
    let out_img_len = g.oh * g.ow * c;
    let mut dinput = vec![T::default(); g.input_len()];
    if dinput.is_empty() || out_img_len == 0 {
        return dinput;
    }
    let image = |b: usize, dimg: &mut [T], share: &mut Vec<T>| {
        let gimg = &grad_out[b * out_img_len..][..out_img_len];
        share.resize(c, T::default());
        for oy in 0..g.oh {
            let (ky0, ky1, ybase) = tap_range(oy, g.sh, g.pad_top, g.dh, g.kh, g.h);
            for ox in 0..g.ow {
                let (kx0, kx1, xbase) = tap_range(ox, g.sw, g.pad_left, g.dw, g.kw, g.w);
                let count = (ky1 - ky0) * (kx1 - kx0);
                if count == 0 {
                    continue;
                }
                let denom = T::from_usize(count);
                let grow = &gimg[(oy * g.ow + ox) * c..][..c];
                for (s, &gv) in share.iter_mut().zip(grow) {
                    *s = gv / denom;
                }
                for ky in ky0..ky1 {
                    let iy = tap_index(ybase, ky, g.dh);
                    for kx in kx0..kx1 {
                        let ix = tap_index(xbase, kx, g.dw);
                        let dst = &mut dimg[(iy * g.w + ix) * c..][..c];
                        for (d, &s) in dst.iter_mut().zip(share.iter()) {
                            *d += s;
                        }
                    }
                }
            }
        }
    };
    if go_parallel(pool_work(g)) && g.n > 1 {
        dinput
            .par_chunks_mut(img_len)
            .enumerate()
            .for_each_init(Vec::new, |s, (b, dimg)| image(b, dimg, s));
    } else {
        let mut share = Vec::new();
        for (b, dimg) in dinput.chunks_mut(img_len).enumerate() {
            image(b, dimg, &mut share);
        }
    }
    dinput
}
