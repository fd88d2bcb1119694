//! Reshaping the element stream: sliding [`Dataset::window`]s and [`Dataset::unbatch`].

use crate::components::Element;
use crate::dataset::{stack_elements, Cardinality, Dataset};
use crate::rows;
use ferroflow_tensor_core::{Error, Result};
use std::collections::VecDeque;
use std::sync::Arc;

/// The windows of [`Dataset::window`]: `size` elements, `stride` apart, a new window every
/// `shift` elements (`window(size, shift, stride, drop_remainder)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    size: usize,
    shift: usize,
    stride: usize,
    drop_remainder: bool,
}

impl Window {
    /// Windows of `size` consecutive elements that do not overlap (shift = size, stride 1).
    pub fn new(size: usize) -> Self {
        Window {
            size,
            shift: size,
            stride: 1,
            drop_remainder: false,
        }
    }

    /// Elements from one window's start to the next's (default: the size).
    pub fn shift(mut self, shift: usize) -> Self {
        self.shift = shift;
        self
    }

    /// Distance between the elements of one window (default 1, consecutive).
    pub fn stride(mut self, stride: usize) -> Self {
        self.stride = stride;
        self
    }

    /// Drops the windows at the end that have fewer than `size` elements.
    pub fn drop_remainder(mut self, drop: bool) -> Self {
        self.drop_remainder = drop;
        self
    }

    /// Input elements one full window spans.
    fn span(&self) -> usize {
        (self.size - 1).saturating_mul(self.stride).saturating_add(1)
    }
}

impl From<usize> for Window {
    fn from(size: usize) -> Self {
        Window::new(size)
    }
}

impl Dataset {
    /// Sliding windows over the elements, each window one element whose components are the
    /// window's elements stacked along a new first axis: TensorFlow's `window(size, shift,
    /// stride, drop_remainder).flat_map(lambda w: w.batch(size))`, the usual way a window
    /// is consumed (ferroflow has no datasets of datasets). Windows near the end hold fewer
    /// elements unless `drop_remainder`. A size, shift or stride of 0 is an error when
    /// iterating.
    ///
    /// ```
    /// use ferroflow_data::{Cardinality, Dataset, Window};
    /// let ds = Dataset::range(0..7).window(Window::new(3).shift(2));
    /// assert_eq!(ds.cardinality(), Cardinality::Finite(4));
    /// let windows: Vec<Vec<i64>> = ds.iter().map(|w| w?[0].to_vec::<i64>()).collect::<Result<_, _>>()?;
    /// assert_eq!(windows, vec![vec![0, 1, 2], vec![2, 3, 4], vec![4, 5, 6], vec![6]]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn window(&self, window: impl Into<Window>) -> Dataset {
        let window = window.into();
        if window.size == 0 || window.shift == 0 || window.stride == 0 {
            return Dataset::failing("window", "size, shift and stride must be at least 1");
        }
        // TensorFlow's window cardinality.
        let cardinality = self.cardinality().map(|n| {
            if window.drop_remainder {
                n.checked_sub(window.span()).map_or(0, |rest| rest / window.shift + 1)
            } else {
                n.div_ceil(window.shift)
            }
        });
        let upstream = self.element_maker();
        Dataset::from_elements(
            Arc::new(move |n| {
                let mut input = Some(upstream(n));
                // An error holds its element's place, as in TensorFlow's buffer of
                // (element, status) pairs: windows stay aligned with the input.
                let mut buffer: VecDeque<Result<Element>> = VecDeque::new();
                let span = window.span();
                Box::new(std::iter::from_fn(move || {
                    // Fill the buffer to one window's span, or to the end of the input.
                    while buffer.len() < span {
                        match input.as_mut().and_then(Iterator::next) {
                            Some(item) => buffer.push_back(item),
                            None => {
                                input = None;
                                break;
                            }
                        }
                    }
                    if buffer.is_empty() || (window.drop_remainder && buffer.len() < span) {
                        return None;
                    }
                    // The window is its strided elements, or the first error among them.
                    let items: Result<Vec<Element>> = buffer.iter().step_by(window.stride).cloned().collect();
                    // Move to the next window's start, reading past the buffer if it is
                    // shorter than the shift.
                    if window.shift >= buffer.len() {
                        let beyond = window.shift - buffer.len();
                        buffer.clear();
                        for _ in 0..beyond {
                            if input.as_mut().and_then(Iterator::next).is_none() {
                                input = None;
                                break;
                            }
                        }
                    } else {
                        buffer.drain(..window.shift);
                    }
                    Some(items.and_then(|items| stack_elements(&items)))
                }))
            }),
            cardinality,
        )
    }

    /// Splits every element along its first axis into one element per row (`unbatch`), the
    /// inverse of [`Dataset::batch`]. All components of an element must have the same number
    /// of rows. The cardinality becomes unknown (infinite stays infinite).
    ///
    /// ```
    /// use ferroflow_data::Dataset;
    /// let ds = Dataset::range(0..5).batch(2).unbatch();
    /// let v: Vec<i64> = ds.iter().map(|e| e?[0].to_scalar::<i64>()).collect::<Result<_, _>>()?;
    /// assert_eq!(v, vec![0, 1, 2, 3, 4]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn unbatch(&self) -> Dataset {
        let cardinality = match self.cardinality() {
            c @ (Cardinality::Finite(0) | Cardinality::Infinite) => c,
            _ => Cardinality::Unknown,
        };
        let upstream = self.element_maker();
        Dataset::from_elements(
            Arc::new(move |n| Box::new(upstream(n).flat_map(split_rows))),
            cardinality,
        )
    }
}

/// The rows of one batched element, or the one error that replaces them.
fn split_rows(element: Result<Element>) -> Box<dyn Iterator<Item = Result<Element>> + Send> {
    let rows_of = |e: &Element| -> Result<usize> {
        let counts = e
            .iter()
            .map(|t| rows::num_rows("unbatch", t))
            .collect::<Result<Vec<_>>>()?;
        match counts.iter().position(|&c| c != counts[0]) {
            Some(i) => Err(Error::invalid(
                "unbatch",
                format!(
                    "components of an element must have the same batch size: component 0 has {} rows, component {i} has {}",
                    counts[0], counts[i]
                ),
            )),
            None => Ok(counts.first().copied().unwrap_or(0)),
        }
    };
    match element.and_then(|e| rows_of(&e).map(|n| (e, n))) {
        Err(err) => Box::new(std::iter::once(Err(err))),
        Ok((e, n)) => Box::new((0..n).map(move |i| e.iter().map(|t| rows::row(t, i)).collect())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferroflow_tensor_core::Tensor;

    fn windows(ds: &Dataset) -> Vec<Vec<i64>> {
        ds.iter().map(|w| w.unwrap()[0].to_vec::<i64>().unwrap()).collect()
    }

    #[test]
    fn windows_follow_tensorflow_with_stride_shift_and_remainders() {
        // tf.data.Dataset.range(7).window(3, shift=1, stride=2, drop_remainder=True)
        let strided = Dataset::range(0..7).window(Window::new(3).shift(1).stride(2).drop_remainder(true));
        assert_eq!(windows(&strided), vec![vec![0, 2, 4], vec![1, 3, 5], vec![2, 4, 6]]);
        assert_eq!(strided.cardinality(), Cardinality::Finite(3));
        // A shift beyond the window skips elements: range(10).window(2, shift=4).
        let gapped = Dataset::range(0..10).window(Window::new(2).shift(4));
        assert_eq!(windows(&gapped), vec![vec![0, 1], vec![4, 5], vec![8, 9]]);
        assert_eq!(gapped.cardinality(), Cardinality::Finite(3));
        let short = Dataset::range(0..2).window(Window::new(3).drop_remainder(true));
        assert_eq!(
            (windows(&short).len(), short.cardinality()),
            (0, Cardinality::Finite(0))
        );
        let tail = Dataset::range(0..5).window(2);
        assert_eq!(windows(&tail), vec![vec![0, 1], vec![2, 3], vec![4]]);
        assert!(Dataset::range(0..3).window(0).iter().next().unwrap().is_err());
    }

    #[test]
    fn an_error_takes_its_place_in_the_windows() {
        // range(6) whose element 2 fails, window(3): TensorFlow yields the error, then [3, 4, 5].
        let flaky = Dataset::range(0..6).map(|e| {
            if e[0].to_scalar::<i64>()? == 2 {
                Err(Error::invalid("map", "bad"))
            } else {
                Ok(e)
            }
        });
        let out: Vec<_> = flaky.window(3).iter().collect();
        assert_eq!(out.len(), 2);
        assert!(out[0].is_err());
        assert_eq!(out[1].as_ref().unwrap()[0].to_vec::<i64>().unwrap(), vec![3, 4, 5]);
        // An error at a position the stride skips does not spoil the window.
        let strided: Vec<_> = flaky
            .window(Window::new(2).stride(2).shift(1).drop_remainder(true))
            .iter()
            .collect();
        assert_eq!(strided.len(), 4);
        assert_eq!(strided[1].as_ref().unwrap()[0].to_vec::<i64>().unwrap(), vec![1, 3]);
        assert!(strided[0].is_err() && strided[2].is_err());
    }

    #[test]
    fn windows_stack_every_component() {
        let x = Tensor::from_vec((0..8).map(|v| v as f32).collect(), &[4, 2]).unwrap();
        let y = Tensor::new([0i32, 1, 2, 3]);
        let ds = Dataset::from_tensor_slices((&x, &y))
            .unwrap()
            .window(Window::new(3).shift(1).drop_remainder(true));
        let first = ds.iter().next().unwrap().unwrap();
        assert_eq!(first[0].dims(), &[3, 2]);
        assert_eq!(first[1].to_vec::<i32>().unwrap(), vec![0, 1, 2]);
        assert_eq!(ds.iter().count(), 2);
    }

    #[test]
    fn unbatch_splits_rows_and_checks_batch_sizes() {
        let x = Tensor::from_vec((0..6).collect::<Vec<i32>>(), &[3, 2]).unwrap();
        let ds = Dataset::from_tensors(vec![x.clone(), Tensor::new([7i32, 8, 9])]).unbatch();
        let rows: Vec<(Vec<i32>, i32)> = ds
            .iter()
            .map(|e| {
                let e = e.unwrap();
                (e[0].to_vec().unwrap(), e[1].to_scalar().unwrap())
            })
            .collect();
        assert_eq!(rows, vec![(vec![0, 1], 7), (vec![2, 3], 8), (vec![4, 5], 9)]);
        let ragged = Dataset::from_tensors(vec![x, Tensor::new([1i32])]).unbatch();
        let err = ragged.iter().next().unwrap().unwrap_err().to_string();
        assert!(err.contains("unbatch") && err.contains("component 1 has 1"), "{err}");
        assert_eq!(
            Dataset::range(0..4).batch(2).repeat().unbatch().cardinality(),
            Cardinality::Infinite
        );
    }
}
