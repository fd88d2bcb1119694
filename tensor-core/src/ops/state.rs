//! Stateful ops: `read_variable`, `assign`, `assign_add`, `assign_sub`.

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
        (Data::F32(a), Data::F32(b)) => a.zip_mut_with(b, |p, &q| *p = if sub { *p - q } else { *p + q }),
        (Data::F64(a), Data::F64(b)) => a.zip_mut_with(b, |p, &q| *p = if sub { *p - q } else { *p + q }),
        (Data::I32(a), Data::I32(b)) => {
            a.zip_mut_with(b, |p, &q| *p = if sub { p.wrapping_sub(q) } else { p.wrapping_add(q) })
        }
        (Data::I64(a), Data::I64(b)) => {
            a.zip_mut_with(b, |p, &q| *p = if sub { p.wrapping_sub(q) } else { p.wrapping_add(q) })
        }
        _ => return false,
    }
    true
}
