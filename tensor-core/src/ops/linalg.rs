//! Linear algebra: `matmul` (batched, broadcasting batch dimensions, transpose flags; dense
//! operands passed to the kernel by strides, others copied once) and the composite
//! `tensordot`.

use crate::data::{row_major, Array};
use crate::dispatch::dispatch1;
use crate::kernels::matmul::{batched_gemm, batched_gemm_epilogue, batched_gemm_int, DotOrder, GemmFloat, MatRef};
use crate::shape::{broadcast_shapes, normalize_axis};
use crate::{DType, Data, Element, Error, MatMul, Op, Result, Shape, Tensor, TensorSpec};
use ndarray::IxDyn;
use smallvec::SmallVec;
use std::mem::MaybeUninit;

/// `(batch dims, m, k)` of an operand as the product sees it (after its transpose flag).
fn matrix_dims(op: &'static str, s: &Shape, transpose: bool) -> Result<(Vec<usize>, usize, usize)> {
    let d = s.dims();
    if d.len() < 2 {
        return Err(Error::shapes(op, &[s], "matmul operands need rank >= 2"));
    }
    let (r, c) = (d[d.len() - 2], d[d.len() - 1]);
    let batch = d[..d.len() - 2].to_vec();
    Ok(if transpose { (batch, c, r) } else { (batch, r, c) })
}

pub(crate) fn infer_matmul(ta: bool, tb: bool, x: &[TensorSpec]) -> Result<TensorSpec> {
    let (a, b) = (&x[0], &x[1]);
    if a.dtype != b.dtype || a.dtype == DType::Bool {
        return Err(Error::dtypes(
            "matmul",
            &[a.dtype, b.dtype],
            "operands must share a numeric dtype",
        ));
    }
    let (ba, m, k) = matrix_dims("matmul", &a.shape, ta)?;
    let (bb, k2, n) = matrix_dims("matmul", &b.shape, tb)?;
    if k != k2 {
        return Err(inner_mismatch(&a.shape, &b.shape, (k, k2), (ta, tb)));
    }
    // Plain 2-D products (the common case) need no batch broadcasting, nor an allocation.
    if ba.is_empty() && bb.is_empty() {
        return Ok(TensorSpec::new(a.dtype, [m, n]));
    }
    let mut out = broadcast_shapes("matmul", &Shape::new(ba), &Shape::new(bb))?.into_dims();
    out.extend_from_slice(&[m, n]);
    Ok(TensorSpec::new(a.dtype, out))
}

/// The error for operands whose inner dimensions differ.
fn inner_mismatch(a: &Shape, b: &Shape, (k, k2): (usize, usize), (ta, tb): (bool, bool)) -> Error {
    Error::shapes(
        "matmul",
        &[a, b],
        format!("inner dimensions differ: {k} vs {k2} (transpose_a={ta}, transpose_b={tb})"),
    )
}

/// An operand laid out for the kernel: its storage, row/column strides of the (possibly
/// transposed) matrix, and a per-batch offset for each output batch entry.
struct Operand<'a, T> {
    data: &'a [T],
    rs: usize,
    cs: usize,
    /// One offset per batch entry; inline for the common unbatched and small-batch cases, so
    /// a matmul allocates nothing but its output.
    offsets: SmallVec<[usize; 4]>,
}

impl<T> Operand<'_, T> {
    /// The kernel's view of this operand.
    fn mat(&self) -> MatRef<'_, T> {
        MatRef::batched(self.data, &self.offsets, self.rs, self.cs)
    }
}

/// The number of elements spanned if an array of these dims and strides fills a dense
/// block from its first element (any axis order, non-negative strides, no gaps); `None`
/// otherwise. Allocation-free, unlike ndarray's contiguity checks for dynamic dimensions
/// (which showed up as half of a tiny matmul's time).
fn dense_len(dims: &[usize], strides: &[isize]) -> Option<usize> {
    // A row-major matrix, the usual operand, needs no sorting.
    if let ([rows, cols], [row_stride, 1]) = (dims, strides) {
        if *row_stride == *cols as isize {
            return Some(rows * cols);
        }
    }
    let mut axes: [(usize, usize); 16] = [(0, 0); 16];
    if dims.len() > axes.len() {
        return None;
    }
    let mut k = 0;
    let mut total = 1usize;
    for (&d, &s) in dims.iter().zip(strides) {
        if d == 0 {
            return Some(0);
        }
        total *= d;
        if d > 1 {
            if s < 0 {
                return None;
            }
            axes[k] = (s as usize, d);
            k += 1;
        }
    }
    let axes = &mut axes[..k];
    // Insertion sort: at most a handful of axes, and no call into the generic sort.
    for i in 1..axes.len() {
        let mut j = i;
        while j > 0 && axes[j - 1] > axes[j] {
            axes.swap(j - 1, j);
            j -= 1;
        }
    }
    let mut expect = 1usize;
    for &(s, d) in axes.iter() {
        if s != expect {
            return None;
        }
        expect *= d;
    }
    Some(total)
}

/// `a` as the kernel's operand, or `None` if its elements do not fill a dense block (the
/// caller then makes a contiguous copy).
fn operand<'a, T: Element, S: ndarray::Data<Elem = T>>(
    a: &'a ndarray::ArrayBase<S, IxDyn>,
    transpose: bool,
    out_batch: &[usize],
) -> Option<Operand<'a, T>> {
    let (dims, strides) = (a.shape(), a.strides());
    let len = dense_len(dims, strides)?;
    let rank = dims.len();
    let (mut rs, mut cs) = (strides[rank - 2] as usize, strides[rank - 1] as usize);
    if transpose {
        std::mem::swap(&mut rs, &mut cs);
    }
    // Batch offsets: walk the output batch index, mapping each to this operand's (right
    // aligned, broadcast) batch dims. One zero offset for a plain 2-D product.
    let mut offsets = SmallVec::new();
    if out_batch.is_empty() {
        offsets.push(0);
    } else {
        let nb: usize = out_batch.iter().product();
        let lead = out_batch.len() - (rank - 2);
        offsets.reserve(nb);
        let mut idx: SmallVec<[usize; 6]> = smallvec::smallvec![0usize; out_batch.len()];
        for _ in 0..nb {
            let mut off = 0usize;
            for (j, &i) in idx.iter().enumerate().skip(lead) {
                let d = j - lead;
                // An empty operand (whose strides may be negative) is never read.
                if dims[d] != 1 && len > 0 {
                    off += i * strides[d] as usize;
                }
            }
            offsets.push(off);
            for j in (0..idx.len()).rev() {
                idx[j] += 1;
                if idx[j] < out_batch[j] {
                    break;
                }
                idx[j] = 0;
            }
        }
    }
    // SAFETY: `dense_len` verified that the array's elements occupy exactly `len`
    // consecutive elements starting at its pointer (non-negative strides, no gaps), all
    // inside the storage `a` borrows for 'a.
    let data = unsafe { std::slice::from_raw_parts(a.as_ptr(), len) };
    Some(Operand { data, rs, cs, offsets })
}

/// The product of `a` and `b` (transposed as flagged, batch dimensions broadcast) into a new
/// array, through `run` (a gemm entry, or a closure around one).
///
/// # Safety
///
/// `run` leaves every element of the output slice it is given initialised. The slice is
/// exactly `batch·m·n` long, the part the gemm entries ([`batched_gemm`],
/// [`batched_gemm_epilogue`], [`batched_gemm_int`]) promise to initialise: the output is
/// never zeroed first, and is taken as initialised once `run` returns.
unsafe fn matmul_typed<T: Element>(
    ta: bool,
    tb: bool,
    a: &Array<T>,
    b: &Array<T>,
    run: impl Fn(usize, usize, usize, MatRef<'_, T>, MatRef<'_, T>, &mut [MaybeUninit<T>]),
) -> Result<Data> {
    // Plain 2-D products (the common case, often tiny) skip the general shape inference
    // and its allocations.
    let (da, db) = (a.shape(), b.shape());
    let out_dims: SmallVec<[usize; 4]> = if da.len() == 2 && db.len() == 2 {
        let (m, k) = if ta { (da[1], da[0]) } else { (da[0], da[1]) };
        let (k2, n) = if tb { (db[1], db[0]) } else { (db[0], db[1]) };
        if k != k2 {
            return Err(inner_mismatch(&da.into(), &db.into(), (k, k2), (ta, tb)));
        }
        smallvec::smallvec![m, n]
    } else {
        let spec = infer_matmul(ta, tb, &[TensorSpec::new(T::DTYPE, da), TensorSpec::new(T::DTYPE, db)])?;
        spec.shape.dims().iter().copied().collect()
    };
    let (m, n) = (out_dims[out_dims.len() - 2], out_dims[out_dims.len() - 1]);
    let k = if ta { da[da.len() - 2] } else { da[da.len() - 1] };
    let batch = &out_dims[..out_dims.len() - 2];
    // An empty output reads no operand: return it before the operands' per-batch offsets
    // (a batch of 2^40 empty matrices must not cost an offset each).
    if out_dims.contains(&0) {
        return Ok(Data::from_owned(
            row_major(&out_dims, Vec::<T>::new()).expect("matmul size"),
        ));
    }
    let layout_err = || Error::Other {
        op: "matmul",
        msg: "operand layout not supported".into(),
    };
    // An operand that does not fill a dense block (a strided slice) is copied once.
    let (copy_a, copy_b);
    let oa = match operand(a, ta, batch) {
        Some(o) => o,
        None => {
            copy_a = a.as_standard_layout().into_owned();
            operand(&copy_a, ta, batch).ok_or_else(layout_err)?
        }
    };
    let ob = match operand(b, tb, batch) {
        Some(o) => o,
        None => {
            copy_b = b.as_standard_layout().into_owned();
            operand(&copy_b, tb, batch).ok_or_else(layout_err)?
        }
    };
    // The product writes every element without reading it (the gemm entries' contract), so
    // the output is never zeroed first: zeroing a reused heap block cost 5–40 % of the
    // product at n = 128…1024.
    let len = out_dims.iter().product();
    // SAFETY: `run` initialises all `len` elements (this function's contract).
    let out = unsafe { crate::host_cache::written_vec(len, |c| run(m, k, n, oa.mat(), ob.mat(), c)) };
    Ok(Data::from_owned(row_major(&out_dims, out).expect("matmul size")))
}

/// TensorFlow's summation order for a tiny product of these operands ([`DotOrder`]).
fn dot_order(ta: bool, tb: bool, a: &Data, b: &Data) -> DotOrder {
    DotOrder::of_matmul(ta, tb, a.dims().len() == 2 && b.dims().len() == 2)
}

pub(crate) fn matmul(ta: bool, tb: bool, a: &Data, b: &Data) -> Result<Data> {
    let order = dot_order(ta, tb, a, b);
    match (a, b) {
        // SAFETY (each arm): the gemm entries initialise the `batch·m·n` elements they are given.
        (Data::F32(x), Data::F32(y)) => unsafe {
            matmul_typed(ta, tb, x, y, |m, k, n, oa, ob, c| {
                batched_gemm::<f32>(m, k, n, oa, ob, c, order)
            })
        },
        (Data::F64(x), Data::F64(y)) => unsafe {
            matmul_typed(ta, tb, x, y, |m, k, n, oa, ob, c| {
                batched_gemm::<f64>(m, k, n, oa, ob, c, order)
            })
        },
        (Data::I32(x), Data::I32(y)) => unsafe { matmul_typed(ta, tb, x, y, batched_gemm_int::<i32>) },
        (Data::I64(x), Data::I64(y)) => unsafe { matmul_typed(ta, tb, x, y, batched_gemm_int::<i64>) },
        _ => Err(Error::dtypes(
            "matmul",
            &[a.dtype(), b.dtype()],
            "operands must share a numeric dtype",
        )),
    }
}

/// A matmul whose output blocks get `+ bias` (a vector of the last dimension) and then
/// `activation`, applied by the thread that computed each block while it is in cache
/// ([`EpilogueMatMul`](crate::fused::EpilogueMatMul) runs this); results equal matmul, add and
/// the activation run apart.
pub(crate) fn matmul_epilogue(
    options: MatMul,
    a: &Data,
    b: &Data,
    bias: Option<&Data>,
    activation: Option<crate::UnaryOp>,
) -> Result<Data> {
    let (ta, tb) = (options.transpose_a, options.transpose_b);
    let order = dot_order(ta, tb, a, b);
    fn go<T: Element + GemmFloat + crate::FloatElement>(
        (ta, tb, order): (bool, bool, DotOrder),
        a: &Array<T>,
        b: &Array<T>,
        bias: Option<&Data>,
        act: Option<crate::UnaryOp>,
    ) -> Result<Data> {
        // The bias as a slice: borrowed when contiguous (the usual case), else copied.
        let bias_arr = match bias {
            Some(d) => Some(
                d.array::<T>()
                    .ok_or_else(|| Error::dtypes("matmul", &[d.dtype(), T::DTYPE], "bias dtype differs"))?,
            ),
            None => None,
        };
        let bias_owned: Option<Vec<T>> = bias_arr
            .filter(|a| a.as_slice().is_none())
            .map(|a| a.iter().copied().collect());
        let bias: Option<&[T]> = bias_owned.as_deref().or_else(|| bias_arr.and_then(|a| a.as_slice()));
        // SAFETY: the closure either fills its output or hands it to `batched_gemm_epilogue`,
        // which leaves it initialised.
        unsafe {
            matmul_typed(ta, tb, a, b, |m, k, n, oa, ob, c| {
                if bias.is_some_and(|bv| bv.len() != n) {
                    // Ruled out by the check below `go`; the output must still be initialised.
                    c.fill(MaybeUninit::new(T::ZERO));
                    return;
                }
                let total = c.len();
                let epi = |row: usize, c0: usize, seg: &mut [T]| {
                    if let Some(bv) = &bias {
                        for (v, &bb) in seg.iter_mut().zip(&bv[c0..]) {
                            *v = *v + bb;
                        }
                    }
                    if let Some(u) = act {
                        // The elements the activation computes by its scalar form, as the
                        // separate op would (the last `total % 8`, for sigmoid).
                        let from = u.scalar_tail_from::<T>(total, row * n + c0, seg.len());
                        let (seg, tail) = seg.split_at_mut(from);
                        // The op fixed outside the loop and the AVX2+FMA build, as in the
                        // elementwise kernels (exp uses fused multiply-adds).
                        crate::ops::math::unary::with_unary_op!(u, op => crate::kernels::simd::with_fma!(fma => crate::kernels::simd::vectorized(#[inline(always)] || {
                            for v in seg.iter_mut() {
                                *v = op.apply_float::<T, fma>(*v)
                            }
                        })));
                        for v in tail {
                            *v = u.apply_scalar_tail(*v);
                        }
                    }
                };
                batched_gemm_epilogue(m, k, n, oa, ob, c, order, &epi);
            })
        }
    }
    if let Some(bv) = bias {
        // The output's last dimension: `b`'s last, or its second to last when transposed
        // (`b` may carry batch dimensions in front).
        let dims = b.dims();
        let n = if tb {
            dims.len().checked_sub(2).map(|i| &dims[i])
        } else {
            dims.last()
        };
        if bv.dims().len() != 1 || Some(&bv.dims()[0]) != n {
            return Err(Error::shapes(
                "matmul",
                &[&a.dims().into(), &b.dims().into(), &bv.dims().into()],
                "bias must match the output's last dimension",
            ));
        }
    }
    match (a, b) {
        (Data::F32(x), Data::F32(y)) => go((ta, tb, order), x, y, bias, activation),
        (Data::F64(x), Data::F64(y)) => go((ta, tb, order), x, y, bias, activation),
        _ => Err(Error::dtypes(
            "matmul",
            &[a.dtype(), b.dtype()],
            "fused matmul runs on floats",
        )),
    }
}

/// The axes `tensordot` contracts: the last `n` of `a` with the first `n` of `b`, or explicit
/// lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TensordotAxes {
    /// Contract the last `n` axes of `a` with the first `n` of `b`.
    Count(usize),
    /// Contract `a`'s axes `.0[i]` with `b`'s axes `.1[i]`.
    Pairs(Vec<i64>, Vec<i64>),
}

impl From<usize> for TensordotAxes {
    fn from(n: usize) -> Self {
        TensordotAxes::Count(n)
    }
}

impl<const N: usize> From<([i64; N], [i64; N])> for TensordotAxes {
    fn from((a, b): ([i64; N], [i64; N])) -> Self {
        TensordotAxes::Pairs(a.to_vec(), b.to_vec())
    }
}

impl Tensor {
    /// `tf.linalg.matmul(self, other)`: the product of the last two axes, batch dimensions
    /// broadcast. Transposed operands ([`Tensor::t`]) are read in place.
    ///
    /// ```
    /// use ferroflow_tensor_core::Tensor;
    /// let x = Tensor::new([[1.0f32, 2.0], [3.0, 4.0]]);
    /// let w = Tensor::new([[1.0f32], [-1.0]]);
    /// assert_eq!(x.matmul(&w)?.to_vec::<f32>()?, vec![-1.0, -1.0]);
    /// assert!(w.matmul(&w).is_err()); // [2, 1] x [2, 1]
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn matmul(&self, other: &Tensor) -> Result<Tensor> {
        self.matmul_with(other, MatMul::new())
    }

    /// `tf.linalg.matmul(self, other, transpose_a, transpose_b)`: the transposes are strides
    /// inside the one op, not copies.
    ///
    /// ```
    /// use ferroflow_tensor_core::{MatMul, Tensor};
    /// let x = Tensor::new([[1.0f32, 2.0, 3.0]]);
    /// let xtx = x.matmul_with(&x, MatMul::new().transpose_a())?; // xᵀx: [3, 3]
    /// assert_eq!(xtx.dims(), &[3, 3]);
    /// assert_eq!(xtx.to_vec::<f32>()?[8], 9.0);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn matmul_with(&self, other: &Tensor, options: MatMul) -> Result<Tensor> {
        dispatch1(
            Op::MatMul {
                transpose_a: options.transpose_a,
                transpose_b: options.transpose_b,
            },
            &[self, other],
        )
    }

    /// `tf.tensordot(self, other, axes)`: contracts the last `n` axes of `self` with the
    /// first `n` of `other` (`axes` a count), or the listed pairs (composite: transpose,
    /// reshape, matmul, reshape).
    ///
    /// ```
    /// use ferroflow_tensor_core::Tensor;
    /// let a = Tensor::new([[1.0f32, 2.0], [3.0, 4.0]]);
    /// let b = Tensor::new([[1.0f32, 0.0], [0.0, 1.0]]);
    /// assert_eq!(a.tensordot(&b, 1)?.to_vec::<f32>()?, vec![1.0, 2.0, 3.0, 4.0]);
    /// assert_eq!(a.tensordot(&b, ([0, 1], [0, 1]))?.to_scalar::<f32>()?, 5.0); // trace
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn tensordot(&self, other: &Tensor, axes: impl Into<TensordotAxes>) -> Result<Tensor> {
        let axes = axes.into();
        let (ra, rb) = (self.rank(), other.rank());
        let (ax_a, ax_b): (Vec<usize>, Vec<usize>) = match &axes {
            TensordotAxes::Count(n) => {
                if *n > ra || *n > rb {
                    return Err(Error::shapes(
                        "tensordot",
                        &[&self.shape(), &other.shape()],
                        format!("cannot contract {n} axes"),
                    ));
                }
                ((ra - n..ra).collect(), (0..*n).collect())
            }
            TensordotAxes::Pairs(a, b) => {
                if a.len() != b.len() {
                    return Err(Error::invalid(
                        "tensordot",
                        format!("axes lists differ in length: {a:?} vs {b:?}"),
                    ));
                }
                let na = a
                    .iter()
                    .map(|&x| normalize_axis("tensordot", x, ra))
                    .collect::<Result<Vec<_>>>()?;
                let nb = b
                    .iter()
                    .map(|&x| normalize_axis("tensordot", x, rb))
                    .collect::<Result<Vec<_>>>()?;
                (na, nb)
            }
        };
        let (da, db) = (self.dims().to_vec(), other.dims().to_vec());
        if ax_a.iter().zip(&ax_b).any(|(&i, &j)| da[i] != db[j]) {
            return Err(Error::shapes(
                "tensordot",
                &[&self.shape(), &other.shape()],
                format!("contracted dimensions differ on axes {ax_a:?} / {ax_b:?}"),
            ));
        }
        let free_a: Vec<usize> = (0..ra).filter(|i| !ax_a.contains(i)).collect();
        let free_b: Vec<usize> = (0..rb).filter(|i| !ax_b.contains(i)).collect();
        let k: usize = ax_a.iter().map(|&i| da[i]).product();
        let m: usize = free_a.iter().map(|&i| da[i]).product();
        let n: usize = free_b.iter().map(|&i| db[i]).product();
        let perm_a: Vec<usize> = free_a.iter().chain(&ax_a).copied().collect();
        let perm_b: Vec<usize> = ax_b.iter().chain(&free_b).copied().collect();
        let a2 = self.transpose(&perm_a)?.reshape(&[m as i64, k as i64])?;
        let b2 = other.transpose(&perm_b)?.reshape(&[k as i64, n as i64])?;
        let out: Vec<i64> = free_a
            .iter()
            .map(|&i| da[i] as i64)
            .chain(free_b.iter().map(|&i| db[i] as i64))
            .collect();
        a2.matmul(&b2)?.reshape(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Slice;

    /// The row-major shortcut answers as the general rule does.
    #[test]
    fn dense_len_of_matrices_and_views() {
        let cases: [(&[usize], &[isize], Option<usize>); 9] = [
            (&[3, 4], &[4, 1], Some(12)),
            (&[3, 4], &[1, 3], Some(12)),
            (&[3, 4], &[5, 1], None),
            (&[3, 4], &[8, 2], None),
            (&[0, 4], &[4, 1], Some(0)),
            (&[1, 4], &[7, 1], Some(4)),
            (&[3, 1], &[1, 9], Some(3)),
            (&[2, 3, 4], &[12, 4, 1], Some(24)),
            (&[2, 3, 4], &[12, 1, 3], Some(24)),
        ];
        for (dims, strides, want) in cases {
            assert_eq!(dense_len(dims, strides), want, "{dims:?} {strides:?}");
        }
    }

    /// An empty output returns before any per-batch work: 2^40 batch offsets would need
    /// 8 TiB.
    #[test]
    fn empty_batched_matmul_allocates_nothing_per_batch() {
        let a = Tensor::zeros(&[1 << 40, 0, 3], DType::F32).unwrap();
        let b = Tensor::zeros(&[3, 4], DType::F32).unwrap();
        let r = a.matmul(&b).unwrap();
        assert_eq!(r.dims(), &[1 << 40, 0, 4]);
        assert!(r.to_vec::<f32>().unwrap().is_empty());
        let c = Tensor::zeros(&[2, 1 << 40, 0, 3], DType::I64).unwrap();
        let d = Tensor::zeros(&[1, 3, 0], DType::I64).unwrap();
        assert_eq!(c.matmul(&d).unwrap().dims(), &[2, 1 << 40, 0, 0]);
    }

    /// A fused matmul + bias + sigmoid gives the bits of the three ops run apart, the last
    /// `n % 8` output elements included (TensorFlow's scalar form of sigmoid there), for
    /// outputs of 3 and 6 rows and of two batch entries of 3.
    #[test]
    fn fused_sigmoid_takes_the_scalar_form_on_the_last_elements() {
        use crate::FloatElement;
        let (m, k, n) = (3usize, 4usize, 7usize);
        let a: Vec<f32> = (0..2 * m * k).map(|i| ((i * 37) % 101) as f32 / 9.0 - 5.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 53) % 97) as f32 / 11.0 - 4.0).collect();
        let bias: Vec<f32> = (0..n).map(|i| i as f32 / 3.0 - 1.0).collect();
        let (tb, tbias) = (
            Tensor::from_slice(&b, &[k, n]).unwrap(),
            Tensor::from_slice(&bias, &[n]).unwrap(),
        );
        let mut tails_differ = false;
        for dims in [vec![m, k], vec![2 * m, k], vec![2, m, k]] {
            let rows = dims[..dims.len() - 1].iter().product::<usize>();
            let ta = Tensor::from_slice(&a[..rows * k], &dims).unwrap();
            let z = ta.matmul(&tb).unwrap().add(&tbias).unwrap();
            let want = z.sigmoid().unwrap().to_vec::<f32>().unwrap();
            let data = [ta.data().unwrap(), tb.data().unwrap(), tbias.data().unwrap()];
            let fused = matmul_epilogue(
                MatMul::new(),
                data[0],
                data[1],
                Some(data[2]),
                Some(crate::UnaryOp::Sigmoid),
            );
            let got = Tensor::from_data(fused.unwrap()).to_vec::<f32>().unwrap();
            assert_eq!(got, want, "{dims:?}");
            let from = crate::ops::math::eigen_f32::scalar_tail_start(rows * n);
            assert!(from < rows * n);
            let z = z.to_vec::<f32>().unwrap();
            tails_differ |= z[from..].iter().any(|&v| v.sigmoid_tf() != v.sigmoid_tf_tail());
        }
        assert!(tails_differ, "the inputs tell the two forms apart");
    }

    /// The op asks the tiny kernel for TensorFlow's order of each call: a 2-D `transpose_b`
    /// product sums in sixteen lanes (oneDNN's small kernel), the same product with a batch
    /// dimension (TensorFlow's batched kernel) in one fused chain.
    #[test]
    fn tiny_products_sum_in_tensorflows_order_for_the_call() {
        let (m, k, n) = (3usize, 20usize, 4usize);
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0).collect();
        let bt: Vec<f32> = (0..n * k).map(|i| ((i * 53) % 97) as f32 / 40.0 - 1.2).collect();
        let (ta, tb) = (
            Tensor::from_slice(&a, &[m, k]).unwrap(),
            Tensor::from_slice(&bt, &[n, k]).unwrap(),
        );
        let nt = MatMul::new().transpose_b();
        let two_d = ta.matmul_with(&tb, nt).unwrap().to_vec::<f32>().unwrap();
        let (ta3, tb3) = (
            ta.reshape(&[1, m as i64, k as i64]).unwrap(),
            tb.reshape(&[1, n as i64, k as i64]).unwrap(),
        );
        let batched = ta3.matmul_with(&tb3, nt).unwrap().to_vec::<f32>().unwrap();
        let mut differ = 0;
        for (e, (&got2, &got3)) in two_d.iter().zip(&batched).enumerate() {
            let (row, col) = (&a[(e / n) * k..][..k], &bt[(e % n) * k..][..k]);
            let chain = row.iter().zip(col).fold(0f32, |acc, (x, y)| x.mul_add(*y, acc));
            let mut lanes = [0f32; 16];
            for (p, (x, y)) in row.iter().zip(col).enumerate() {
                lanes[p % 16] = x.mul_add(*y, lanes[p % 16]);
            }
            let l8: Vec<f32> = (0..8).map(|l| lanes[l] + lanes[l + 8]).collect();
            let l4: Vec<f32> = (0..4).map(|l| l8[l] + l8[l + 4]).collect();
            let halved = (l4[0] + l4[2]) + (l4[1] + l4[3]);
            assert_eq!(
                (got2.to_bits(), got3.to_bits()),
                (halved.to_bits(), chain.to_bits()),
                "element {e}"
            );
            differ += usize::from(halved != chain);
        }
        assert!(differ > 0, "the two orders should differ somewhere on these inputs");
    }

    #[test]
    fn transposed_and_batched_matmul() {
        let a = Tensor::new([[1.0f64, 2.0], [3.0, 4.0], [5.0, 6.0]]);
        let b = Tensor::new([[1.0f64, 0.0, 2.0], [0.0, 1.0, 3.0]]);
        assert_eq!(
            a.matmul(&b).unwrap().to_vec::<f64>().unwrap(),
            vec![1.0, 2.0, 8.0, 3.0, 4.0, 18.0, 5.0, 6.0, 28.0]
        );
        let at = a.t().unwrap();
        assert_eq!(
            at.matmul_with(&b, MatMul::new().transpose_a())
                .unwrap()
                .to_vec::<f64>()
                .unwrap(),
            a.matmul(&b).unwrap().to_vec::<f64>().unwrap()
        );
        assert_eq!(
            a.matmul_with(&a, MatMul::new().transpose_a())
                .unwrap()
                .to_vec::<f64>()
                .unwrap(),
            vec![35.0, 44.0, 44.0, 56.0]
        );
        let batch = Tensor::stack(&[&a, &a.neg().unwrap()], 0).unwrap();
        let r = batch.matmul(&b).unwrap();
        assert_eq!(r.dims(), &[2, 3, 3]);
        assert_eq!(r.to_vec::<f64>().unwrap()[9], -1.0);
        let ai = Tensor::new([[1i32, 2], [3, 4]]);
        assert_eq!(ai.matmul(&ai).unwrap().to_vec::<i32>().unwrap(), vec![7, 10, 15, 22]);
    }

    /// Operands that are strided views (copied for the kernel) and batch dimensions that
    /// broadcast give the products of dense copies.
    #[test]
    fn strided_and_broadcast_operands_match_dense_copies() {
        let x = Tensor::range(0.0, 24.0, 1.0, DType::F64)
            .unwrap()
            .reshape(&[4, 6])
            .unwrap();
        let every_other = x.strided_slice([Slice::full().step(2), Slice::full().step(2)]).unwrap();
        let dense = Tensor::new([[0.0f64, 2.0, 4.0], [12.0, 14.0, 16.0]]);
        let b = Tensor::new([[1.0f64, -1.0], [0.5, 2.0], [-3.0, 0.25]]);
        let want = dense.matmul(&b).unwrap().to_vec::<f64>().unwrap();
        assert_eq!(every_other.matmul(&b).unwrap().to_vec::<f64>().unwrap(), want);
        let cols = x.slice(&[0, 1], &[3, 2]).unwrap(); // [3, 2], rows 6 apart
        let cols_dense = Tensor::new([[1.0f64, 2.0], [7.0, 8.0], [13.0, 14.0]]);
        assert_eq!(
            b.matmul_with(&cols, MatMul::new().transpose_a())
                .unwrap()
                .to_vec::<f64>()
                .unwrap(),
            b.matmul_with(&cols_dense, MatMul::new().transpose_a())
                .unwrap()
                .to_vec::<f64>()
                .unwrap()
        );
        // [2, 1, 3, 2] x [2, 3] -> [2, 1, 3, 3]: each batch entry times the same matrix.
        let a0 = Tensor::new([[1.0f64, 2.0], [3.0, 4.0], [5.0, 6.0]]);
        let a1 = a0.mul(&Tensor::scalar(-0.5f64)).unwrap();
        let batched = Tensor::stack(&[&a0, &a1], 0).unwrap().reshape(&[2, 1, 3, 2]).unwrap();
        let w = Tensor::new([[1.0f64, 0.0, 2.0], [0.0, 1.0, 3.0]]);
        let r = batched.matmul(&w).unwrap();
        assert_eq!(r.dims(), &[2, 1, 3, 3]);
        let mut want = a0.matmul(&w).unwrap().to_vec::<f64>().unwrap();
        want.extend(a1.matmul(&w).unwrap().to_vec::<f64>().unwrap());
        assert_eq!(r.to_vec::<f64>().unwrap(), want);
        // An empty operand viewed with a negative batch stride multiplies to zeros.
        let empty = Tensor::zeros(&[3, 2, 0], DType::F32)
            .unwrap()
            .strided_slice([Slice::full().step(-1), Slice::full(), Slice::full()])
            .unwrap();
        let r = empty.matmul(&Tensor::zeros(&[0, 4], DType::F32).unwrap()).unwrap();
        assert_eq!(r.dims(), &[3, 2, 4]);
        assert_eq!(r.to_vec::<f32>().unwrap(), vec![0.0; 24]);
    }

    #[test]
    fn matmul_errors_name_shapes() {
        let e = Tensor::zeros(&[2, 3], DType::F32)
            .unwrap()
            .matmul(&Tensor::zeros(&[4, 5], DType::F32).unwrap())
            .unwrap_err();
        assert!(
            e.to_string().contains("matmul") && e.to_string().contains("[2, 3]"),
            "{e}"
        );
        assert!(Tensor::zeros(&[3], DType::F32)
            .unwrap()
            .matmul(&Tensor::zeros(&[3, 1], DType::F32).unwrap())
            .is_err());
        assert!(Tensor::zeros(&[2, 2], DType::F32)
            .unwrap()
            .matmul(&Tensor::zeros(&[2, 2], DType::F64).unwrap())
            .is_err());
        let z = Tensor::zeros(&[2, 0], DType::F32)
            .unwrap()
            .matmul(&Tensor::zeros(&[0, 3], DType::F32).unwrap())
            .unwrap();
        assert_eq!(z.to_vec::<f32>().unwrap(), vec![0.0; 6]);
    }

    #[test]
    fn fused_bias_matches_the_output_of_a_transposed_batched_b() {
        // b is [batch 2, n 3, k 4] read transposed: the bias is checked against n = 3, not
        // against the batch dimension in front.
        let a = crate::random::normal(&[2, 2, 4], crate::random::Normal::default().seed(7)).unwrap();
        let b = crate::random::normal(&[2, 3, 4], crate::random::Normal::default().seed(8)).unwrap();
        let bias = Tensor::new([0.5f32, -1.0, 2.0]);
        let fused = crate::fused::EpilogueMatMul {
            transpose_a: false,
            transpose_b: true,
            bias: true,
            activation: None,
        };
        let (da, db) = (a.data().unwrap(), b.data().unwrap());
        let got = fused.run(&[da, db, bias.data().unwrap()]).unwrap();
        let want = a
            .matmul_with(&b, MatMul::default().transpose_b())
            .unwrap()
            .add(&bias)
            .unwrap();
        assert_eq!(got.dims(), &[2, 2, 3]);
        let got = Tensor::from_data(got).to_vec::<f32>().unwrap();
        assert_eq!(got, want.to_vec::<f32>().unwrap());
        // A bias as long as the batch dimension is refused, not silently zeroed.
        let wrong = Tensor::new([1.0f32, 2.0]);
        assert!(fused.run(&[da, db, wrong.data().unwrap()]).is_err());
    }

    #[test]
    fn tensordot_matches_matmul() {
        let a = Tensor::new([[1.0f32, 2.0], [3.0, 4.0]]);
        let t = a.tensordot(&a, TensordotAxes::Count(1)).unwrap();
        assert_eq!(
            t.to_vec::<f32>().unwrap(),
            a.matmul(&a).unwrap().to_vec::<f32>().unwrap()
        );
        let outer = a.tensordot(&a, TensordotAxes::Count(0)).unwrap();
        assert_eq!(outer.dims(), &[2, 2, 2, 2]);
    }
}
