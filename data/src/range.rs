//! Counting datasets: [`Dataset::range`], [`Dataset::range_step`] and
//! [`Dataset::enumerate`], whose elements are `int64` scalars as TensorFlow's.

use crate::dataset::{Cardinality, Dataset};
use ferroflow_tensor_core::Tensor;
use std::sync::Arc;

impl Dataset {
    /// The integers of `range`, one `int64` scalar per element (`tf.data.Dataset.range(start,
    /// stop)`).
    ///
    /// ```
    /// use ferroflow_data::{Cardinality, Dataset};
    /// let ds = Dataset::range(2..5);
    /// assert_eq!(ds.cardinality(), Cardinality::Finite(3));
    /// let v: Vec<i64> = ds.iter().map(|e| e?[0].to_scalar::<i64>()).collect::<Result<_, _>>()?;
    /// assert_eq!(v, vec![2, 3, 4]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn range(range: std::ops::Range<i64>) -> Dataset {
        Dataset::range_step(range.start, range.end, 1)
    }

    /// `start`, `start + step`, ... up to but excluding `stop` (`range(start, stop, step)`);
    /// a negative step counts down. A step of 0 is an error when iterating (TensorFlow's
    /// fails when the dataset is made). As TensorFlow's, a range counting up to `i64::MAX`
    /// has infinite cardinality (it stands for "forever").
    ///
    /// ```
    /// use ferroflow_data::Dataset;
    /// let v: Vec<i64> = Dataset::range_step(5, 0, -2).iter().map(|e| e?[0].to_scalar::<i64>()).collect::<Result<_, _>>()?;
    /// assert_eq!(v, vec![5, 3, 1]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn range_step(start: i64, stop: i64, step: i64) -> Dataset {
        if step == 0 {
            return Dataset::failing("range", "step must not be 0");
        }
        // In i128 so that no bounds overflow: ceil((stop - start) / step), at least 0.
        let (span, step_wide) = (i128::from(stop) - i128::from(start), i128::from(step));
        let count = if (span > 0) == (step > 0) && span != 0 {
            ((span.abs() + step_wide.abs() - 1) / step_wide.abs()) as u64
        } else {
            0
        };
        Dataset::from_elements(
            Arc::new(move |_| {
                Box::new((0..count).map(move |i| {
                    let v = i128::from(start) + i128::from(i) * step_wide;
                    Ok(vec![Tensor::scalar(v as i64)])
                }))
            }),
            if step > 0 && stop == i64::MAX {
                Cardinality::Infinite
            } else {
                usize::try_from(count).map_or(Cardinality::Unknown, Cardinality::Finite)
            },
        )
    }

    /// Each element with its position counted from `start` in front, as an `int64` scalar
    /// first component (`enumerate(start)`): `[x, y]` becomes `[i, x, y]`.
    ///
    /// ```
    /// use ferroflow_data::Dataset;
    /// use ferroflow_tensor_core::Tensor;
    /// let ds = Dataset::from_tensor_slices(Tensor::new([7.0f32, 8.0]))?.enumerate(10);
    /// let last = ds.iter().last().unwrap()?;
    /// assert_eq!((last[0].to_scalar::<i64>()?, last[1].to_scalar::<f32>()?), (11, 8.0));
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn enumerate(&self, start: i64) -> Dataset {
        let upstream = self.element_maker();
        Dataset::from_elements(
            Arc::new(move |n| {
                Box::new(upstream(n).zip(0u64..).map(move |(e, k)| {
                    let mut e = e?;
                    e.insert(0, Tensor::scalar(start.wrapping_add(k as i64)));
                    Ok(e)
                }))
            }),
            self.cardinality(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(ds: &Dataset) -> Vec<i64> {
        ds.iter().map(|e| e.unwrap()[0].to_scalar::<i64>().unwrap()).collect()
    }

    #[test]
    fn range_counts_as_python_range() {
        assert_eq!(ints(&Dataset::range(0..0)), Vec::<i64>::new());
        assert_eq!(ints(&Dataset::range_step(3, 1, 1)), Vec::<i64>::new());
        assert_eq!(ints(&Dataset::range_step(0, 10, 3)), vec![0, 3, 6, 9]);
        assert_eq!(Dataset::range_step(0, 10, 3).cardinality(), Cardinality::Finite(4));
        assert_eq!(ints(&Dataset::range_step(0, -3, -1)), vec![0, -1, -2]);
        assert_eq!(Dataset::range_step(1, 5, -1).cardinality(), Cardinality::Finite(0));
        let extremes = Dataset::range_step(i64::MIN, i64::MAX, i64::MAX);
        assert_eq!(ints(&extremes), vec![i64::MIN, -1, i64::MAX - 1]);
        assert_eq!(
            extremes.cardinality(),
            Cardinality::Infinite,
            "TensorFlow's reading of i64::MAX"
        );
        assert_eq!(
            Dataset::range_step(i64::MIN, 0, i64::MAX).cardinality(),
            Cardinality::Finite(2)
        );
        assert!(Dataset::range_step(0, 3, 0).iter().next().unwrap().is_err());
    }

    #[test]
    fn enumerate_keeps_the_cardinality() {
        let ds = Dataset::range(5..8).enumerate(0);
        assert_eq!(ds.cardinality(), Cardinality::Finite(3));
        let pairs: Vec<(i64, i64)> = ds
            .iter()
            .map(|e| {
                let e = e.unwrap();
                (e[0].to_scalar().unwrap(), e[1].to_scalar().unwrap())
            })
            .collect();
        assert_eq!(pairs, vec![(0, 5), (1, 6), (2, 7)]);
        assert_eq!(
            Dataset::range(0..2).repeat().enumerate(3).cardinality(),
            Cardinality::Infinite
        );
    }
}
