//! Row-wise copies along the first axis — one element of a slice dataset, a batch of rows, a
//! batch stacked from elements — done directly on the arrays: data handling is not part of
//! any computation, so it is neither recorded on a tape nor traced.

use ferroflow_tensor_core::{Array, Data, Error, Result, Tensor};
use ndarray::{Axis, Slice};

/// Applies `$body` to the array inside a `Data`, rewrapping the result in the same variant.
macro_rules! map_data {
    ($data:expr, |$a:ident| $body:expr) => {
        match $data {
            Data::F32($a) => Data::F32($body),
            Data::F64($a) => Data::F64($body),
            Data::I32($a) => Data::I32($body),
            Data::I64($a) => Data::I64($body),
            Data::Bool($a) => Data::Bool($body),
        }
    };
}

/// The number of rows (first dimension) of `t`, or an error naming `op` for a scalar.
pub fn num_rows(op: &'static str, t: &Tensor) -> Result<usize> {
    t.dims()
        .first()
        .copied()
        .ok_or_else(|| Error::shapes(op, &[&t.shape()], "needs tensors of rank >= 1 (a first axis to slice)"))
}

/// Row `i` of `t`, without the first axis.
pub fn row(t: &Tensor, i: usize) -> Result<Tensor> {
    check_row("slice", t, i)?;
    Ok(Tensor::from_data(map_data!(t.data()?, |a| a
        .index_axis(Axis(0), i)
        .to_shared())))
}

/// Rows `start..end` of `t`.
pub fn row_range(t: &Tensor, start: usize, end: usize) -> Result<Tensor> {
    let n = num_rows("batch", t)?;
    if start > end || end > n {
        return Err(Error::invalid(
            "batch",
            format!("rows {start}..{end} of a tensor with {n} rows"),
        ));
    }
    Ok(Tensor::from_data(map_data!(t.data()?, |a| a
        .slice_axis(Axis(0), Slice::from(start..end))
        .to_shared())))
}

/// The rows of `t` at `indices`, in that order.
pub fn take_rows(t: &Tensor, indices: &[usize]) -> Result<Tensor> {
    let n = num_rows("batch", t)?;
    if let Some(&bad) = indices.iter().find(|&&i| i >= n) {
        return Err(Error::invalid("batch", format!("row {bad} of a tensor with {n} rows")));
    }
    Ok(Tensor::from_data(map_data!(t.data()?, |a| a
        .select(Axis(0), indices)
        .into_shared())))
}

/// Stacks equally shaped tensors along a new first axis.
pub fn stack(op: &'static str, items: &[&Tensor]) -> Result<Tensor> {
    let Some(first) = items.first() else {
        return Err(Error::invalid(op, "nothing to stack"));
    };
    for t in items {
        if t.dims() != first.dims() || t.dtype() != first.dtype() {
            return Err(Error::shapes(
                op,
                &[&first.shape(), &t.shape()],
                format!(
                    "elements of one batch differ ({} vs {}); batch equally shaped elements or map them to one shape",
                    first.dtype(),
                    t.dtype()
                ),
            ));
        }
    }
    fn stack_of<T: Clone>(arrays: Vec<&Array<T>>) -> Result<Array<T>> {
        let views: Vec<_> = arrays.iter().map(|a| a.view()).collect();
        ndarray::stack(Axis(0), &views)
            .map(|a| a.into_shared())
            .map_err(|e| Error::invalid("batch", e.to_string()))
    }
    let datas = items.iter().map(|t| t.data()).collect::<Result<Vec<_>>>()?;
    macro_rules! gather {
        ($v:ident) => {
            Data::$v(stack_of(
                datas
                    .iter()
                    .map(|d| match d {
                        Data::$v(a) => Ok(a),
                        _ => Err(Error::invalid(op, "mixed dtypes")),
                    })
                    .collect::<Result<Vec<_>>>()?,
            )?)
        };
    }
    let out = match datas[0] {
        Data::F32(_) => gather!(F32),
        Data::F64(_) => gather!(F64),
        Data::I32(_) => gather!(I32),
        Data::I64(_) => gather!(I64),
        Data::Bool(_) => gather!(Bool),
    };
    Ok(Tensor::from_data(out))
}

fn check_row(op: &'static str, t: &Tensor, i: usize) -> Result<()> {
    let n = num_rows(op, t)?;
    if i >= n {
        return Err(Error::invalid(op, format!("row {i} of a tensor with {n} rows")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_ranges_and_gathers_copy_the_right_values() -> Result<()> {
        let t = Tensor::from_vec((0..12).collect::<Vec<i32>>(), &[4, 3])?;
        assert_eq!(row(&t, 2)?.to_vec::<i32>()?, vec![6, 7, 8]);
        assert_eq!(row(&t, 2)?.dims(), &[3]);
        assert_eq!(row_range(&t, 1, 3)?.to_vec::<i32>()?, vec![3, 4, 5, 6, 7, 8]);
        assert_eq!(take_rows(&t, &[3, 0])?.to_vec::<i32>()?, vec![9, 10, 11, 0, 1, 2]);
        let s = stack("batch", &[&row(&t, 1)?, &row(&t, 0)?])?;
        assert_eq!(s.dims(), &[2, 3]);
        assert_eq!(s.to_vec::<i32>()?, vec![3, 4, 5, 0, 1, 2]);
        assert!(row(&t, 4).is_err());
        assert!(take_rows(&t, &[4]).is_err());
        assert!(row(&Tensor::scalar(1.0f32), 0).is_err());
        assert!(stack("batch", &[&row(&t, 0)?, &Tensor::new([1i32])]).is_err());
        Ok(())
    }
}
