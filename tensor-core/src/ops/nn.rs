//! Neural-network ops: `softmax`, `log_softmax` and the softmax cross-entropies (fused,
//! stable kernels), and the composites `bias_add`, `sigmoid_cross_entropy_with_logits` and
//! `l2_normalize`.

use crate::data::{row_major, Array};
use crate::dispatch::dispatch1;
use crate::kernels::reduce::{fold_tree, split_dims};
use crate::ops::shape::index_values;
use crate::shape::normalize_axis;
use crate::{Data, Error, FloatElement, Op, Result, Tensor, TensorSpec};

pub(crate) fn infer_softmax(op: &'static str, axis: i64, x: &[TensorSpec]) -> Result<TensorSpec> {
    if !x[0].dtype.is_float() {
        return Err(Error::dtypes(op, &[x[0].dtype], "expects a float tensor"));
    }
    normalize_axis(op, axis, x[0].shape.rank())?;
    Ok(x[0].clone())
}

/// Visits each line of a row-major `[outer, n, inner]` buffer along its middle axis, giving
/// the index of the line's first element and its stride.
fn for_each_line(outer: usize, n: usize, inner: usize, mut f: impl FnMut(usize, usize)) {
    for o in 0..outer {
        for i in 0..inner {
            f(o * n * inner + i, inner);
        }
    }
}

/// The shifted line of a softmax: its `exp(x - max)` terms, kept for the caller, with `max`
/// (0 when not finite), `sum(exp(x - max))` and `log(sum(exp(x - max)))`.
///
/// Callers keep to TensorFlow's kernels and work with the shifted logits `x - max`:
/// `exp(x - max) / sum` for softmax, `log(sum) - (x - max)` for a cross-entropy term. The
/// form `exp(x - max - log(sum))` would round its argument first, and an argument of
/// magnitude `z` costs `z` ulps in the result; `max + log(sum) - x` loses a small loss to the
/// rounding of `max + log(sum)`. Two steps past TensorFlow: the sum is folded as a tree
/// (`fold_tree`), which every value of the line shares, so one running total over a
/// thousand classes cost float32 softmax 7 times TensorFlow's error; and it leaves out the
/// maximum's own term, exactly 1, taking `log1p` of the rest, so the log of a sum near 1 (a
/// confident prediction's small loss) keeps its relative accuracy.
struct ShiftedLine<T> {
    exps: Vec<T>,
}

impl<T: FloatElement> ShiftedLine<T> {
    fn new() -> Self {
        Self { exps: Vec::new() }
    }

    /// Loads the line of `n` values from `start`, `stride` apart; returns `(max, sum, lse)`.
    fn load(&mut self, s: &[T], start: usize, stride: usize, n: usize) -> (T, T, T) {
        let mut m = T::neg_infinity();
        let mut at = None;
        for k in 0..n {
            let v = s[start + k * stride];
            // NaN is never greater: the maximum ignores it, as `max` does.
            if v > m {
                (m, at) = (v, Some(k));
            }
        }
        if !m.is_finite() {
            (m, at) = (T::zero(), None);
        }
        self.exps.clear();
        self.exps.extend((0..n).map(|k| (s[start + k * stride] - m).exp()));
        let Some(at) = at else {
            let sum = fold_tree(&self.exps, T::zero(), &|a, b| a + b);
            return (m, sum, sum.ln());
        };
        self.exps[at] = T::zero();
        let rest = fold_tree(&self.exps, T::zero(), &|a, b| a + b);
        self.exps[at] = T::one();
        (m, rest + T::one(), rest.ln_1p())
    }
}

fn softmax_typed<T: FloatElement>(log: bool, ax: usize, a: &Array<T>) -> Array<T> {
    let std = a.as_standard_layout();
    let s = std.as_slice().expect("standard layout");
    let (outer, n, inner) = split_dims(a.shape(), ax, ax + 1);
    let mut out = vec![T::zero(); s.len()];
    let mut line = ShiftedLine::new();
    for_each_line(outer, n, inner, |start, stride| {
        let (m, sum, lse) = line.load(s, start, stride, n);
        for (k, &e) in line.exps.iter().enumerate() {
            let i = start + k * stride;
            out[i] = if log { (s[i] - m) - lse } else { e / sum };
        }
    });
    row_major(a.shape(), out).expect("softmax size").into_shared()
}

pub(crate) fn softmax(log: bool, axis: i64, x: &Data) -> Result<Data> {
    let op = if log { "log_softmax" } else { "softmax" };
    let ax = normalize_axis(op, axis, x.dims().len())?;
    match x {
        Data::F32(a) => Ok(Data::F32(softmax_typed(log, ax, a))),
        Data::F64(a) => Ok(Data::F64(softmax_typed(log, ax, a))),
        _ => Err(Error::dtypes(op, &[x.dtype()], "expects a float tensor")),
    }
}

pub(crate) fn infer_softmax_xent(axis: i64, x: &[TensorSpec]) -> Result<TensorSpec> {
    let op = "softmax_cross_entropy_with_logits";
    let (labels, logits) = (&x[0], &x[1]);
    if labels.dtype != logits.dtype || !logits.dtype.is_float() {
        return Err(Error::dtypes(
            op,
            &[labels.dtype, logits.dtype],
            "labels and logits must share a float dtype",
        ));
    }
    if labels.shape != logits.shape {
        return Err(Error::shapes(
            op,
            &[&labels.shape, &logits.shape],
            "labels and logits must have the same shape",
        ));
    }
    let ax = normalize_axis(op, axis, logits.shape.rank())?;
    let mut d = logits.shape.dims().to_vec();
    d.remove(ax);
    Ok(TensorSpec::new(logits.dtype, d))
}

fn softmax_xent_typed<T: FloatElement>(ax: usize, labels: &Array<T>, logits: &Array<T>) -> Data {
    let (ls, xs) = (labels.as_standard_layout(), logits.as_standard_layout());
    let (l, s) = (ls.as_slice().expect("standard"), xs.as_slice().expect("standard"));
    let (outer, n, inner) = split_dims(logits.shape(), ax, ax + 1);
    let mut out = Vec::with_capacity(outer * inner);
    let mut line = ShiftedLine::new();
    for_each_line(outer, n, inner, |start, stride| {
        let (m, _, lse) = line.load(s, start, stride, n);
        let mut loss = T::zero();
        for k in 0..n {
            let i = start + k * stride;
            loss = loss + l[i] * (lse - (s[i] - m));
        }
        out.push(loss);
    });
    let mut d = logits.shape().to_vec();
    d.remove(ax);
    Data::from_owned(row_major(&d, out).expect("xent size"))
}

pub(crate) fn softmax_xent(axis: i64, labels: &Data, logits: &Data) -> Result<Data> {
    let ax = normalize_axis("softmax_cross_entropy_with_logits", axis, logits.dims().len())?;
    match (labels, logits) {
        (Data::F32(l), Data::F32(x)) => Ok(softmax_xent_typed(ax, l, x)),
        (Data::F64(l), Data::F64(x)) => Ok(softmax_xent_typed(ax, l, x)),
        _ => Err(Error::dtypes(
            "softmax_cross_entropy_with_logits",
            &[labels.dtype(), logits.dtype()],
            "labels and logits must share a float dtype",
        )),
    }
}

pub(crate) fn infer_sparse_xent(x: &[TensorSpec]) -> Result<TensorSpec> {
    let op = "sparse_softmax_cross_entropy_with_logits";
    let (labels, logits) = (&x[0], &x[1]);
    if !labels.dtype.is_int() || !logits.dtype.is_float() {
        return Err(Error::dtypes(
            op,
            &[labels.dtype, logits.dtype],
            "labels must be integers and logits floats",
        ));
    }
    let ld = logits.shape.dims();
    if ld.is_empty() || labels.shape.dims() != &ld[..ld.len() - 1] {
        return Err(Error::shapes(
            op,
            &[&labels.shape, &logits.shape],
            "labels must have the shape of logits without its last axis",
        ));
    }
    Ok(TensorSpec::new(logits.dtype, labels.shape.clone()))
}

fn sparse_xent_typed<T: FloatElement>(labels: &[i64], logits: &Array<T>) -> Result<Data> {
    let xs = logits.as_standard_layout();
    let s = xs.as_slice().expect("standard");
    let n = *logits.shape().last().unwrap_or(&0);
    let mut out = Vec::with_capacity(labels.len());
    let mut line = ShiftedLine::new();
    for (row, &lab) in labels.iter().enumerate() {
        if lab < 0 || lab as usize >= n {
            return Err(Error::invalid(
                "sparse_softmax_cross_entropy_with_logits",
                format!("label {lab} is out of range [0, {n})"),
            ));
        }
        let (m, _, lse) = line.load(s, row * n, 1, n);
        out.push(lse - (s[row * n + lab as usize] - m));
    }
    let d = &logits.shape()[..logits.ndim() - 1];
    Ok(Data::from_owned(row_major(d, out).expect("sparse xent size")))
}

pub(crate) fn sparse_xent(labels: &Data, logits: &Data) -> Result<Data> {
    let l = index_values(labels);
    match logits {
        Data::F32(x) => sparse_xent_typed(&l, x),
        Data::F64(x) => sparse_xent_typed(&l, x),
        _ => Err(Error::dtypes(
            "sparse_softmax_cross_entropy_with_logits",
            &[labels.dtype(), logits.dtype()],
            "logits must be floats",
        )),
    }
}

impl Tensor {
    /// `tf.nn.softmax` along `axis` (stable: the maximum is subtracted first).
    ///
    /// ```
    /// use ferroflow_tensor_core::Tensor;
    /// let p = Tensor::new([[1.0f64, 1.0], [0.0, 1000.0]]).softmax(-1)?.to_vec::<f64>()?;
    /// assert_eq!(p, vec![0.5, 0.5, 0.0, 1.0]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn softmax(&self, axis: i64) -> Result<Tensor> {
        dispatch1(Op::Softmax { axis }, &[self])
    }

    /// `tf.nn.log_softmax` along `axis`.
    ///
    /// ```
    /// use ferroflow_tensor_core::Tensor;
    /// let l = Tensor::new([0.0f64, 0.0]).log_softmax(0)?.to_vec::<f64>()?;
    /// assert!(l.iter().all(|v| (v + 2f64.ln()).abs() < 1e-15));
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn log_softmax(&self, axis: i64) -> Result<Tensor> {
        dispatch1(Op::LogSoftmax { axis }, &[self])
    }

    /// `tf.nn.bias_add`: adds the rank-1 `bias` along the last axis (NHWC) of a value of
    /// rank 2 or more.
    ///
    /// ```
    /// use ferroflow_tensor_core::Tensor;
    /// let y = Tensor::new([[1.0f32, 2.0], [3.0, 4.0]]).bias_add(&Tensor::new([10.0f32, 20.0]))?;
    /// assert_eq!(y.to_vec::<f32>()?, vec![11.0, 22.0, 13.0, 24.0]);
    /// assert!(Tensor::new([[1.0f32, 2.0]]).bias_add(&Tensor::new([1.0f32])).is_err());
    /// assert!(Tensor::new([1.0f32, 2.0]).bias_add(&Tensor::new([1.0f32, 2.0])).is_err());
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn bias_add(&self, bias: &Tensor) -> Result<Tensor> {
        let (d, b) = (self.dims(), bias.dims());
        if b.len() != 1 || d.len() < 2 || d[d.len() - 1] != b[0] {
            return Err(Error::shapes(
                "bias_add",
                &[&self.shape(), &bias.shape()],
                "value must be at least 2-D, bias rank 1 matching its last dimension",
            ));
        }
        self.add(bias)
    }

    /// `tf.nn.softmax_cross_entropy_with_logits(labels=self, logits)` along `axis`: one value
    /// per example (fused and stable).
    ///
    /// ```
    /// use ferroflow_tensor_core::Tensor;
    /// let labels = Tensor::new([[0.0f64, 1.0]]);
    /// let xent = labels.softmax_cross_entropy_with_logits(&Tensor::new([[0.0f64, 0.0]]), -1)?;
    /// assert!((xent.to_vec::<f64>()?[0] - 2f64.ln()).abs() < 1e-15);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn softmax_cross_entropy_with_logits(&self, logits: &Tensor, axis: i64) -> Result<Tensor> {
        dispatch1(Op::SoftmaxCrossEntropy { axis }, &[self, logits])
    }

    /// `tf.nn.sparse_softmax_cross_entropy_with_logits(labels=self, logits)`: integer class
    /// ids against logits, one value per example.
    ///
    /// ```
    /// use ferroflow_tensor_core::Tensor;
    /// let xent = Tensor::new([1i32]).sparse_softmax_cross_entropy_with_logits(&Tensor::new([[0.0f64, 0.0]]))?;
    /// assert!((xent.to_vec::<f64>()?[0] - 2f64.ln()).abs() < 1e-15);
    /// assert!(Tensor::new([2i32]).sparse_softmax_cross_entropy_with_logits(&Tensor::new([[0.0f64, 0.0]])).is_err());
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn sparse_softmax_cross_entropy_with_logits(&self, logits: &Tensor) -> Result<Tensor> {
        dispatch1(Op::SparseSoftmaxCrossEntropy, &[self, logits])
    }

    /// `tf.nn.sigmoid_cross_entropy_with_logits(labels=self, logits)`:
    /// `max(x, 0) - x * z + log1p(exp(-|x|))`, TensorFlow's stable form (composite). As in
    /// TensorFlow, `max` and `|x|` are selects on `x >= 0`, so the gradient at `x = 0` is
    /// `sigmoid(0) - z` rather than the one-sided `-z`.
    ///
    /// ```
    /// use ferroflow_tensor_core::Tensor;
    /// let x = Tensor::new([1.0f64, 0.0]).sigmoid_cross_entropy_with_logits(&Tensor::new([0.0f64, 0.0]))?;
    /// assert!(x.to_vec::<f64>()?.iter().all(|v| (v - 2f64.ln()).abs() < 1e-15));
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn sigmoid_cross_entropy_with_logits(&self, logits: &Tensor) -> Result<Tensor> {
        if self.dims() != logits.dims() {
            return Err(Error::shapes(
                "sigmoid_cross_entropy_with_logits",
                &[&self.shape(), &logits.shape()],
                "labels and logits must have the same shape",
            ));
        }
        let zero = logits.scalar_like(0.0);
        let nonneg = logits.greater_equal(&zero)?;
        let relu = nonneg.select(logits, &zero)?;
        let neg_abs = nonneg.select(&logits.neg()?, logits)?;
        let xz = logits.mul(self)?;
        let tail = neg_abs.exp()?.log1p()?;
        relu.sub(&xz)?.add(&tail)
    }

    /// `tf.math.l2_normalize`: `x * rsqrt(max(sum(x^2, axes), 1e-12))` over some or all
    /// axes (composite).
    ///
    /// ```
    /// use ferroflow_tensor_core::{Axes, Tensor};
    /// let x = Tensor::new([[3.0f64, 4.0], [0.0, 2.0]]);
    /// let rows = x.l2_normalize(1)?.to_vec::<f64>()?;
    /// let all = x.l2_normalize(Axes::All)?.to_vec::<f64>()?;
    /// for (got, want) in rows.iter().zip([0.6, 0.8, 0.0, 1.0]).chain([(&all[0], 3.0 / 29f64.sqrt())]) {
    ///     assert!((got - want).abs() < 1e-15, "{got} vs {want}");
    /// }
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn l2_normalize(&self, axes: impl Into<crate::Axes>) -> Result<Tensor> {
        let ss = self.square()?.reduce_sum(axes.into().keepdims())?;
        self.mul(&ss.maximum(&self.scalar_like(1e-12))?.rsqrt()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `bias_add` needs a value of rank 2 or more, as TensorFlow's kernel.
    #[test]
    fn bias_add_needs_a_matrix_or_more() {
        let b = Tensor::new([1.0f32, 2.0]);
        assert!(Tensor::new([1.0f32, 2.0]).bias_add(&b).is_err());
        let y = Tensor::new([[[1.0f32, 2.0]]]).bias_add(&b).unwrap();
        assert_eq!(y.to_vec::<f32>().unwrap(), vec![2.0, 4.0]);
    }

    #[test]
    fn softmax_is_stable_and_normalised() {
        let x = Tensor::new([[1000.0f64, 1001.0], [-5.0, 5.0]]);
        let s = x.softmax(-1).unwrap().to_vec::<f64>().unwrap();
        assert!((s[0] + s[1] - 1.0).abs() < 1e-15 && (s[1] - 1.0 / (1.0 + (-1f64).exp())).abs() < 1e-15);
        let ls = x.log_softmax(0).unwrap().to_vec::<f64>().unwrap();
        assert!(ls.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn cross_entropies() {
        let logits = Tensor::new([[2.0f64, 1.0, 0.1]]);
        let labels = Tensor::new([[1.0f64, 0.0, 0.0]]);
        let dense = labels
            .softmax_cross_entropy_with_logits(&logits, -1)
            .unwrap()
            .to_vec::<f64>()
            .unwrap();
        let sparse = Tensor::new([0i32])
            .sparse_softmax_cross_entropy_with_logits(&logits)
            .unwrap()
            .to_vec::<f64>()
            .unwrap();
        let want = -logits.log_softmax(-1).unwrap().to_vec::<f64>().unwrap()[0];
        assert!((dense[0] - want).abs() < 1e-15 && (sparse[0] - want).abs() < 1e-15);
        assert!(Tensor::new([3i32])
            .sparse_softmax_cross_entropy_with_logits(&logits)
            .is_err());
        assert!(Tensor::new([0.0f64]).bias_add(&Tensor::new([1.0f64, 2.0])).is_err());
    }

    /// Softmax and the cross-entropies in float32 stay within a few ulps of the float64
    /// value of the same inputs where the result is small: softmax far from the maximum (no
    /// `exp(x - max - lse)`, whose argument's rounding costs `|x - max|` ulps) and a confident
    /// prediction's small loss (`lse - (x - max)`, not `max + lse - x`, whose rounding of
    /// `max + lse` is a large part of a loss of 1e-3).
    #[test]
    fn float32_softmax_and_small_losses_are_accurate() {
        let x = [7.3f32, -8.1, -7.9, 6.9];
        let wide: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
        let m = wide.iter().cloned().fold(f64::MIN, f64::max);
        let sum: f64 = wide.iter().map(|v| (v - m).exp()).sum();
        let rel = |got: f32, want: f64| (f64::from(got) - want).abs() / want.abs();
        // The shift `x - max` rounds in float32 as in TensorFlow; the rest is within 3 ulps.
        let shifted: Vec<f64> = x.iter().map(|&v| f64::from(v - x[0])).collect();
        let p = Tensor::new(x).softmax(0).unwrap().to_vec::<f32>().unwrap();
        for (k, &got) in p.iter().enumerate() {
            let want = shifted[k].exp() / sum;
            assert!(rel(got, want) < 3.6e-7, "softmax[{k}] = {got}, want {want}");
        }
        // Label 0 is the maximum: the loss is about 0.51; label 0 of a sharper row about 2e-3.
        let sharp = [6.9f32, -8.1, -7.9, 0.7];
        for row in [x, sharp] {
            let wide: Vec<f64> = row.iter().map(|&v| f64::from(v)).collect();
            let m = wide.iter().cloned().fold(f64::MIN, f64::max);
            let want = wide.iter().map(|v| (v - m).exp()).sum::<f64>().ln() - (wide[0] - m);
            let logits = Tensor::new([row]);
            let sparse = Tensor::new([0i32])
                .sparse_softmax_cross_entropy_with_logits(&logits)
                .unwrap();
            let onehot = Tensor::new([[1.0f32, 0.0, 0.0, 0.0]]);
            let dense = onehot.softmax_cross_entropy_with_logits(&logits, -1).unwrap();
            for got in [sparse, dense] {
                let got = got.to_vec::<f32>().unwrap()[0];
                assert!(rel(got, want) < 2.5e-7, "loss {got}, want {want}");
            }
        }
    }

    /// A long float32 softmax line: every value shares the line's sum, so its rounding is
    /// every value's error; folded as a tree, 4096 classes stay within 3 ulps of float64
    /// (the shift `x - max` is exact here: the logits are multiples of 2^-10 below 8).
    #[test]
    fn long_float32_softmax_lines_are_accurate() {
        let x: Vec<f32> = (0..4096)
            .map(|i| ((i as f32 * 0.731).sin() * 7168.0).round() / 1024.0)
            .collect();
        let m = x.iter().cloned().fold(f32::MIN, f32::max);
        let sum: f64 = x.iter().map(|&v| f64::from(v - m).exp()).sum();
        let p = Tensor::from_vec(x.clone(), &[4096])
            .unwrap()
            .softmax(0)
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        for (k, &got) in p.iter().enumerate() {
            let want = f64::from(x[k] - m).exp() / sum;
            assert!(
                (f64::from(got) - want).abs() / want < 3.6e-7,
                "softmax[{k}] = {got}, want {want}"
            );
        }
    }
}
