//! [`Dataset::padded_batch`]: batches of elements of different shapes, padded to one shape.

use crate::components::Element;
use crate::dataset::{grouped, Batch, Dataset};
use crate::rows;
use ferroflow_tensor_core::{checked_elements, Error, Result, Tensor};
use std::sync::Arc;

/// How [`Dataset::padded_batch`] pads and groups: `batch_size`, `padded_shapes`,
/// `padding_values` and `drop_remainder` as in `padded_batch`.
///
/// ```
/// use ferroflow_data::PaddedBatch;
/// // Sequences padded to length 10 with -1, labels with 0, last short batch dropped.
/// let options = PaddedBatch::new(32)
///     .padded_shapes(vec![vec![Some(10)], vec![]])
///     .padding_values(vec![-1.0, 0.0])
///     .drop_remainder(true);
/// # let _ = options;
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct PaddedBatch {
    batch: Batch,
    padded_shapes: Option<Vec<Vec<Option<usize>>>>,
    padding_values: Option<Vec<f64>>,
}

impl PaddedBatch {
    /// Batches of `size` elements, every component padded with zeros (`false`) to the
    /// largest shape in its batch.
    pub fn new(size: usize) -> Self {
        PaddedBatch {
            batch: Batch::new(size),
            padded_shapes: None,
            padding_values: None,
        }
    }

    /// Drops a last batch smaller than the size.
    pub fn drop_remainder(mut self, drop: bool) -> Self {
        self.batch = self.batch.drop_remainder(drop);
        self
    }

    /// The shape each component is padded to, one list of dimensions per component: `Some(d)`
    /// pads that axis to `d`, `None` to the longest in the batch (TensorFlow's `None` or -1).
    pub fn padded_shapes(mut self, shapes: Vec<Vec<Option<usize>>>) -> Self {
        self.padded_shapes = Some(shapes);
        self
    }

    /// The value each component is padded with, one per component, converted to the
    /// component's dtype as Rust's `as` converts (fractions truncate for integers; nonzero is
    /// `true` for booleans).
    pub fn padding_values(mut self, values: Vec<f64>) -> Self {
        self.padding_values = Some(values);
        self
    }
}

impl From<usize> for PaddedBatch {
    fn from(size: usize) -> Self {
        PaddedBatch::new(size)
    }
}

impl Dataset {
    /// Consecutive elements padded to one shape per component and stacked into batches
    /// (`padded_batch`): sequences of different lengths become one rectangular batch. Each
    /// component's elements must have the same rank; a fixed padded dimension smaller than an
    /// element's is an error naming both.
    ///
    /// ```
    /// use ferroflow_data::{Dataset, PaddedBatch};
    /// use ferroflow_tensor_core::Tensor;
    /// let seqs = Dataset::from_vec(vec![
    ///     vec![Tensor::new([1i32])],
    ///     vec![Tensor::new([2i32, 2])],
    ///     vec![Tensor::new([3i32, 3, 3])],
    /// ]);
    /// let batch = seqs.padded_batch(3).iter().next().unwrap()?;
    /// assert_eq!(batch[0].dims(), &[3, 3]);
    /// assert_eq!(batch[0].to_vec::<i32>()?, vec![1, 0, 0, 2, 2, 0, 3, 3, 3]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn padded_batch(&self, options: impl Into<PaddedBatch>) -> Dataset {
        let options = Arc::new(options.into());
        if options.batch.size == 0 {
            return Dataset::failing("padded_batch", "batch size must be at least 1");
        }
        let batch = options.batch;
        let cardinality = batch.batches_of(self.cardinality());
        let groups = grouped(self.element_maker(), batch);
        Dataset::from_elements(
            Arc::new(move |n| {
                let options = options.clone();
                Box::new(groups(n).map(move |items| pad_and_stack(&items?, &options)))
            }),
            cardinality,
        )
    }
}

/// One batch: every component padded to its target shape, then stacked.
fn pad_and_stack(items: &[Element], options: &PaddedBatch) -> Result<Element> {
    let width = items[0].len();
    if let Some(bad) = items.iter().find(|e| e.len() != width) {
        return Err(Error::invalid(
            "padded_batch",
            format!("elements have {width} and {} components", bad.len()),
        ));
    }
    for (what, len) in [
        ("padded_shapes", options.padded_shapes.as_ref().map(Vec::len)),
        ("padding_values", options.padding_values.as_ref().map(Vec::len)),
    ] {
        if let Some(len) = len.filter(|&l| l != width) {
            return Err(Error::invalid(
                "padded_batch",
                format!("{what} has {len} entries for elements of {width} components"),
            ));
        }
    }
    (0..width)
        .map(|c| {
            let column: Vec<&Tensor> = items.iter().map(|e| &e[c]).collect();
            let fixed = options.padded_shapes.as_ref().map(|s| s[c].as_slice());
            let value = options.padding_values.as_ref().map_or(0.0, |v| v[c]);
            let target = target_shape(c, &column, fixed)?;
            // The whole batch must fit before any element is padded (a fixed padded shape is
            // the user's and may be huge).
            let batch_dims: Vec<usize> = std::iter::once(column.len()).chain(target.iter().copied()).collect();
            checked_elements("padded_batch", &batch_dims, column[0].dtype())?;
            let padded = column
                .iter()
                .map(|t| {
                    let paddings: Vec<[usize; 2]> = t.dims().iter().zip(&target).map(|(&d, &to)| [0, to - d]).collect();
                    t.pad(&paddings, value)
                })
                .collect::<Result<Vec<_>>>()?;
            rows::stack("padded_batch", &padded.iter().collect::<Vec<_>>())
        })
        .collect()
}

/// The shape component `c` pads to: each axis fixed by `fixed` or the longest in `column`.
fn target_shape(c: usize, column: &[&Tensor], fixed: Option<&[Option<usize>]>) -> Result<Vec<usize>> {
    let rank = column[0].rank();
    if let Some(t) = column.iter().find(|t| t.rank() != rank) {
        return Err(Error::shapes(
            "padded_batch",
            &[&column[0].shape(), &t.shape()],
            format!("component {c}: elements of one batch must have the same rank"),
        ));
    }
    if let Some(fixed) = fixed.filter(|f| f.len() != rank) {
        return Err(Error::shapes(
            "padded_batch",
            &[&column[0].shape()],
            format!("component {c}: padded shape {fixed:?} has a different rank from the element"),
        ));
    }
    (0..rank)
        .map(|axis| {
            let longest = column.iter().map(|t| t.dims()[axis]).max().unwrap_or(0);
            match fixed.and_then(|f| f[axis]) {
                Some(to) if to < longest => Err(Error::invalid(
                    "padded_batch",
                    format!("component {c}: cannot pad axis {axis} of size {longest} to the smaller size {to}"),
                )),
                Some(to) => Ok(to),
                None => Ok(longest),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::Cardinality;

    fn seqs() -> Dataset {
        Dataset::range(1..5).map(|e| {
            let n = e[0].to_scalar::<i64>()? as usize;
            Ok(vec![Tensor::from_vec(vec![n as f32; n], &[n])?, e[0].clone()])
        })
    }

    #[test]
    fn pads_each_batch_to_its_longest_or_to_a_fixed_shape() {
        let ds = seqs().padded_batch(2);
        assert_eq!(ds.cardinality(), Cardinality::Finite(2));
        let batches: Vec<Element> = ds.iter().map(|b| b.unwrap()).collect();
        assert_eq!(batches[0][0].dims(), &[2, 2]);
        assert_eq!(batches[0][0].to_vec::<f32>().unwrap(), vec![1.0, 0.0, 2.0, 2.0]);
        assert_eq!(batches[1][0].dims(), &[2, 4]);
        assert_eq!(batches[1][1].to_vec::<i64>().unwrap(), vec![3, 4]);
        let fixed = seqs().padded_batch(
            PaddedBatch::new(3)
                .padded_shapes(vec![vec![Some(5)], vec![]])
                .padding_values(vec![-1.0, 0.0])
                .drop_remainder(true),
        );
        let only: Vec<Element> = fixed.iter().map(|b| b.unwrap()).collect();
        assert_eq!(only.len(), 1);
        assert_eq!(
            only[0][0].to_vec::<f32>().unwrap(),
            vec![1.0, -1.0, -1.0, -1.0, -1.0, 2.0, 2.0, -1.0, -1.0, -1.0, 3.0, 3.0, 3.0, -1.0, -1.0]
        );
    }

    #[test]
    fn bad_shapes_are_errors_naming_the_component() {
        let too_small = seqs().padded_batch(PaddedBatch::new(4).padded_shapes(vec![vec![Some(3)], vec![]]));
        let err = too_small.iter().next().unwrap().unwrap_err().to_string();
        assert!(
            err.contains("padded_batch") && err.contains("size 4 to the smaller size 3"),
            "{err}"
        );
        let ranks = Dataset::from_vec(vec![vec![Tensor::new([1i32])], vec![Tensor::scalar(2i32)]]).padded_batch(2);
        let err = ranks.iter().next().unwrap().unwrap_err().to_string();
        assert!(err.contains("same rank"), "{err}");
        let wrong_count = seqs().padded_batch(PaddedBatch::new(2).padding_values(vec![1.0]));
        assert!(wrong_count.iter().next().unwrap().is_err());
        assert!(seqs().padded_batch(0).iter().next().unwrap().is_err());
        let huge = seqs().padded_batch(PaddedBatch::new(4).padded_shapes(vec![vec![Some(usize::MAX / 2)], vec![]]));
        let err = huge.iter().next().unwrap().unwrap_err();
        assert!(matches!(err, Error::ResourceExhausted { .. }), "{err}");
    }
}
