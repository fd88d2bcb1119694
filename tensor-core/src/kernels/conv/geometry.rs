//! The spatial geometry of a convolution or pooling window: output sizes and TensorFlow's
//! `SAME` / `VALID` padding, checked once so that no kernel index can go out of bounds.

/// Padding scheme of a convolution or pooling window, as in TensorFlow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Padding {
    /// Pad so that `out = ceil(in / stride)`; the odd padding unit goes at
    /// the end (bottom / right).
    Same,
    /// No padding: only windows that fit entirely inside the input,
    /// `out = ceil((in - ek + 1) / stride)` (0 when `in < ek`).
    Valid,
}

/// Output size and padding of one spatial dimension, TensorFlow style.
///
/// Returns `(out, pad_before, pad_after)` for an input of length `input`, a
/// window of `kernel` taps spaced `dilation` apart and the given stride.
///
/// # Errors
///
/// Returns a message when `kernel`, `stride` or `dilation` is zero, or the
/// effective window size overflows.
pub fn conv_output_dim(
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    padding: Padding,
) -> Result<(usize, usize, usize), String> {
    if kernel == 0 {
        return Err("window size must be positive".to_string());
    }
    if stride == 0 {
        return Err("strides must be positive".to_string());
    }
    if dilation == 0 {
        return Err("dilations must be positive".to_string());
    }
    let ek = (kernel - 1)
        .checked_mul(dilation)
        .and_then(|v| v.checked_add(1))
        .ok_or_else(|| "effective window size overflows".to_string())?;
    match padding {
        Padding::Valid => {
            let out = if input < ek { 0 } else { (input - ek) / stride + 1 };
            Ok((out, 0, 0))
        }
        Padding::Same => {
            let out = input.div_ceil(stride);
            if out == 0 {
                return Ok((0, 0, 0));
            }
            // (out - 1) * stride < input, so this cannot overflow usize
            // unless `ek` is huge; check anyway.
            let needed = ((out - 1) * stride)
                .checked_add(ek)
                .ok_or_else(|| "padding size overflows".to_string())?;
            let total = needed.saturating_sub(input);
            Ok((out, total / 2, total - total / 2))
        }
    }
}

/// Complete geometry of a 2-D convolution or pooling op (NHWC data, HWIO
/// filters). Build it with [`Conv2dGeometry::new`] or
/// [`Conv2dGeometry::pool`]; the kernels trust it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Conv2dGeometry {
    /// Batch size.
    pub n: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Input channels.
    pub c_in: usize,
    /// Filter (window) height.
    pub kh: usize,
    /// Filter (window) width.
    pub kw: usize,
    /// Output channels of a convolution (pools use `c_in` and ignore this).
    pub c_out: usize,
    /// Vertical stride.
    pub sh: usize,
    /// Horizontal stride.
    pub sw: usize,
    /// Vertical dilation.
    pub dh: usize,
    /// Horizontal dilation.
    pub dw: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
    /// Rows of implicit zero (or ignored) padding above the input.
    pub pad_top: usize,
    /// Columns of implicit zero (or ignored) padding left of the input.
    pub pad_left: usize,
}

/// Largest element count accepted for any buffer (so offsets fit `isize`).
const MAX_ELEMS: usize = isize::MAX as usize;

fn checked_len(dims: &[usize], what: &str) -> Result<usize, String> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&len| len <= MAX_ELEMS)
        .ok_or_else(|| format!("{what} size overflows"))
}

impl Conv2dGeometry {
    /// Geometry of a convolution of an NHWC `input` shape with an HWIO
    /// `filter` shape `[kh, kw, c_in, c_out]`, with `strides` and
    /// `dilations` given as `[vertical, horizontal]`.
    ///
    /// An empty batch, zero channels or a zero-sized output are valid; the
    /// kernels then return empty (or all-zero) results.
    ///
    /// # Errors
    ///
    /// Returns a message for a zero stride, dilation or filter height /
    /// width, for an input channel count that differs from the filter's,
    /// or for sizes that overflow.
    pub fn new(
        input: [usize; 4],
        filter: [usize; 4],
        strides: [usize; 2],
        dilations: [usize; 2],
        padding: Padding,
    ) -> Result<Self, String> {
        let [n, h, w, c_in] = input;
        let [kh, kw, f_in, c_out] = filter;
        if strides.contains(&0) {
            return Err(format!("strides must be positive, got {strides:?}"));
        }
        if dilations.contains(&0) {
            return Err(format!("dilations must be positive, got {dilations:?}"));
        }
        if kh == 0 || kw == 0 {
            return Err(format!(
                "filter height and width must be positive, got filter shape {filter:?}"
            ));
        }
        if f_in != c_in {
            return Err(format!(
                "input depth {c_in} does not match filter input depth {f_in} \
                 (input shape {input:?}, filter shape {filter:?})"
            ));
        }
        let (oh, pad_top, _) = conv_output_dim(h, kh, strides[0], dilations[0], padding)?;
        let (ow, pad_left, _) = conv_output_dim(w, kw, strides[1], dilations[1], padding)?;
        checked_len(&[kh, kw], "window")?;
        checked_len(&input, "input")?;
        checked_len(&filter, "filter")?;
        checked_len(&[n, oh, ow, c_out], "output")?;
        checked_len(&[n, oh, ow, c_in], "pool output")?;
        checked_len(&[oh, ow, kh, kw, c_in], "im2col row block")?;
        Ok(Self {
            n,
            h,
            w,
            c_in,
            kh,
            kw,
            c_out,
            sh: strides[0],
            sw: strides[1],
            dh: dilations[0],
            dw: dilations[1],
            oh,
            ow,
            pad_top,
            pad_left,
        })
    }

    /// Geometry of a 2-D pooling op over an NHWC `input` shape with a
    /// `[kh, kw]` window (no dilation); `c_out` is set to the channel count.
    ///
    /// # Errors
    ///
    /// Returns a message for a zero stride or window size, or for sizes that
    /// overflow.
    pub fn pool(input: [usize; 4], ksize: [usize; 2], strides: [usize; 2], padding: Padding) -> Result<Self, String> {
        let c = input[3];
        Self::new(input, [ksize[0], ksize[1], c, c], strides, [1, 1], padding)
    }

    /// Input shape `[n, h, w, c_in]`.
    pub fn input_shape(&self) -> [usize; 4] {
        [self.n, self.h, self.w, self.c_in]
    }

    /// Filter shape `[kh, kw, c_in, c_out]` (HWIO).
    #[cfg(test)]
    pub fn filter_shape(&self) -> [usize; 4] {
        [self.kh, self.kw, self.c_in, self.c_out]
    }

    /// Convolution output shape `[n, oh, ow, c_out]`.
    pub fn output_shape(&self) -> [usize; 4] {
        [self.n, self.oh, self.ow, self.c_out]
    }

    /// Pooling output shape `[n, oh, ow, c_in]`.
    pub fn pool_output_shape(&self) -> [usize; 4] {
        [self.n, self.oh, self.ow, self.c_in]
    }

    /// Number of input elements.
    pub fn input_len(&self) -> usize {
        self.n * self.h * self.w * self.c_in
    }

    /// Number of filter elements.
    pub fn filter_len(&self) -> usize {
        self.kh * self.kw * self.c_in * self.c_out
    }

    /// Number of convolution output elements.
    pub fn output_len(&self) -> usize {
        self.n * self.oh * self.ow * self.c_out
    }

    /// Number of pooling output elements.
    pub fn pool_output_len(&self) -> usize {
        self.n * self.oh * self.ow * self.c_in
    }

    /// Rows of padding below the input (TensorFlow puts the odd unit here).
    #[cfg(test)]
    pub fn pad_bottom(&self) -> usize {
        let needed = self.oh.saturating_sub(1) * self.sh + (self.kh - 1) * self.dh + 1;
        if self.oh == 0 {
            0
        } else {
            needed.saturating_sub(self.h + self.pad_top)
        }
    }

    /// Columns of padding right of the input.
    #[cfg(test)]
    pub fn pad_right(&self) -> usize {
        let needed = self.ow.saturating_sub(1) * self.sw + (self.kw - 1) * self.dw + 1;
        if self.ow == 0 {
            0
        } else {
            needed.saturating_sub(self.w + self.pad_left)
        }
    }

    /// Length of one im2col row: `kh * kw * c_in`.
    pub(super) fn k_len(&self) -> usize {
        self.kh * self.kw * self.c_in
    }

    /// Whether the convolution is a plain per-pixel matrix multiply (1x1
    /// filter, unit strides), so the input is its own im2col matrix.
    pub(super) fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.sh == 1 && self.sw == 1
    }
}
