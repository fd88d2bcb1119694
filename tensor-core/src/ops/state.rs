//! Stateful ops: `read_variable`, `assign`, `assign_add`, `assign_sub`.

use crate::kernels::elementwise::{update_in_pieces, PAR_THRESHOLD};
use crate::kernels::simd::vectorized;
use crate::{Data, Error, Result, TensorSpec, Variable};

/// How an [`crate::Op::Assign`] combines its input with the variable's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssignMode {
    /// `var = x`
    Set,
    /// `var += x`
    Add,
    /// `var -= x`
    Sub,
}

impl AssignMode {
    /// TensorFlow's name.
    pub fn name(self) -> &'static str {
        match self {
            AssignMode::Set => "assign",
            AssignMode::Add => "assign_add",
            AssignMode::Sub => "assign_sub",
        }
    }
}

pub(crate) fn check_assign(op: &'static str, var: &Variable, x: &[TensorSpec]) -> Result<()> {
    let want = var.spec();
    if x[0].dtype != want.dtype {
        return Err(Error::dtypes(
            op,
            &[want.dtype, x[0].dtype],
            format!("variable '{}' has dtype {}", var.name(), want.dtype),
        ));
    }
    if x[0].shape != want.shape {
        return Err(Error::shapes(
            op,
            &[&want.shape, &x[0].shape],
            format!("variable '{}' has a fixed shape", var.name()),
        ));
    }
    if op != "assign" && !want.dtype.is_float() && !want.dtype.is_int() {
        return Err(Error::dtypes(op, &[want.dtype], "needs a numeric variable"));
    }
    Ok(())
}

pub(crate) fn assign(var: &Variable, mode: AssignMode, x: &Data) -> Result<()> {
    // `v += x` of equal shapes updates the stored array in place (copy-on-write keeps earlier
    // reads intact), instead of making a new array per step, as optimizers do for every
    // variable and the step counter.
    if mode != AssignMode::Set && var.update_in_place(|cur| add_in_place(cur, x, mode == AssignMode::Sub)) {
        return Ok(());
    }
    let new = match mode {
        AssignMode::Set => x.clone(),
        AssignMode::Add => crate::ops::math::binary(crate::BinaryOp::Add, &var.value_data()?, x)?,
        AssignMode::Sub => crate::ops::math::binary(crate::BinaryOp::Sub, &var.value_data()?, x)?,
    };
    var.store(new)
}

/// `cur ±= x` elementwise when both hold the same dtype and shape; `false` (nothing done)
/// otherwise. Integers wrap, as the `add`/`subtract` kernels do.
fn add_in_place(cur: &mut Data, x: &Data, sub: bool) -> bool {
    if cur.dims() != x.dims() {
        return false;
    }
    match (cur, x) {
        (Data::F32(a), Data::F32(b)) if sub => zip_in_place(a, b, |p, q| p - q),
        (Data::F32(a), Data::F32(b)) => zip_in_place(a, b, |p, q| p + q),
        (Data::F64(a), Data::F64(b)) if sub => zip_in_place(a, b, |p, q| p - q),
        (Data::F64(a), Data::F64(b)) => zip_in_place(a, b, |p, q| p + q),
        (Data::I32(a), Data::I32(b)) if sub => zip_in_place(a, b, i32::wrapping_sub),
        (Data::I32(a), Data::I32(b)) => zip_in_place(a, b, i32::wrapping_add),
        (Data::I64(a), Data::I64(b)) if sub => zip_in_place(a, b, i64::wrapping_sub),
        (Data::I64(a), Data::I64(b)) => zip_in_place(a, b, i64::wrapping_add),
        _ => return false,
    }
    true
}

/// `a[i] = f(a[i], b[i])` over two arrays of one shape: vectorised loops, in pieces on the
/// pool above its threshold and on this thread below it ([`update_in_pieces`]), when both
/// are row-major and contiguous (an optimizer's every variable, every step), else
/// `ndarray`'s strided walk.
///
/// Why: `ndarray::zip_mut_with` over the dynamic-rank arrays ran W4's SGD updates (270 K
/// weights a step) at under a cycle per element, 2.7 % of a one-thread step (`perf`).
fn zip_in_place<T: Copy + Send + Sync>(
    a: &mut crate::data::Array<T>,
    b: &crate::data::Array<T>,
    f: impl Fn(T, T) -> T + Sync,
) {
    // Copy-on-write either way: `as_slice_mut` makes a row-major `a` unique before lending
    // it (and lends nothing otherwise), `zip_mut_with` unshares it itself.
    match (a.as_slice_mut(), b.as_slice()) {
        (Some(pa), Some(pb)) => update_in_pieces(pa, PAR_THRESHOLD, &|range, piece| {
            vectorized(
                #[inline(always)]
                || {
                    for (p, &q) in piece.iter_mut().zip(&pb[range]) {
                        *p = f(*p, q);
                    }
                },
            )
        }),
        _ => a.zip_mut_with(b, |p, &q| *p = f(*p, q)),
    }
}
