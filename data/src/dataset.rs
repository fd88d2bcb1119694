//! [`Dataset`]: a lazy, re-iterable pipeline of elements, as `tf.data.Dataset`.

use crate::components::{Element, IntoComponents};
use crate::rows;
use crate::run_ahead::run_ahead;
use crate::stages::{repeated, sharded, shuffled, skipped, taken, BoxIter, Maker};
use ferroflow_tensor_core::{Device, Error, Result, Tensor};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// How many elements a dataset yields per iteration (`Dataset.cardinality()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cardinality {
    /// Exactly this many.
    Finite(usize),
    /// Never ends (`tf.data.INFINITE_CARDINALITY`).
    Infinite,
    /// Not known without iterating, after a `filter` (`tf.data.UNKNOWN_CARDINALITY`).
    Unknown,
}

impl Cardinality {
    /// The count, when finite.
    pub fn finite(self) -> Option<usize> {
        match self {
            Cardinality::Finite(n) => Some(n),
            _ => None,
        }
    }

    pub(crate) fn map(self, f: impl FnOnce(usize) -> usize) -> Cardinality {
        match self {
            Cardinality::Finite(n) => Cardinality::Finite(f(n)),
            other => other,
        }
    }
}

/// How [`Dataset::batch`] groups elements: `ds.batch(32)`, or
/// `ds.batch(Batch::new(32).drop_remainder(true))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    pub(crate) size: usize,
    pub(crate) drop_remainder: bool,
}

impl Batch {
    /// Batches of `size` elements; the last one may be smaller.
    pub fn new(size: usize) -> Self {
        Batch {
            size,
            drop_remainder: false,
        }
    }

    /// Drops a last batch smaller than the size (so every batch has the same shape).
    pub fn drop_remainder(mut self, drop: bool) -> Self {
        self.drop_remainder = drop;
        self
    }
}

impl Batch {
    /// How many batches `elements` make.
    pub(crate) fn batches_of(self, elements: Cardinality) -> Cardinality {
        elements.map(|n| {
            if self.drop_remainder {
                n / self.size
            } else {
                n.div_ceil(self.size)
            }
        })
    }
}

impl From<usize> for Batch {
    fn from(size: usize) -> Self {
        Batch::new(size)
    }
}

/// A slice dataset's rows: the source tensors and a stream of row indices. Row-preserving
/// stages (shuffle, repeat, take, skip) act on the indices; batching gathers rows once.
#[derive(Clone)]
struct Rows {
    sources: Arc<Vec<Tensor>>,
    indices: Maker<usize>,
}

impl Rows {
    fn with_indices(&self, indices: Maker<usize>) -> Rows {
        Rows {
            sources: self.sources.clone(),
            indices,
        }
    }

    /// Elements, one row of every source each.
    fn elements(&self) -> Maker<Result<Element>> {
        let rows = self.clone();
        Arc::new(move |n| {
            let sources = rows.sources.clone();
            Box::new((rows.indices)(n).map(move |i| sources.iter().map(|t| rows::row(t, i)).collect()))
        })
    }

    /// Batches gathered straight from the sources.
    fn batches(&self, batch: Batch) -> Maker<Result<Element>> {
        let rows = self.clone();
        Arc::new(move |n| {
            let sources = rows.sources.clone();
            let mut indices = (rows.indices)(n);
            // Capped as TensorFlow caps it: a huge batch size stacks "everything" and must not
            // allocate for its size up front.
            let mut chunk = Vec::with_capacity(batch.size.min(PREALLOCATED_BATCH));
            Box::new(std::iter::from_fn(move || {
                chunk.clear();
                chunk.extend(indices.by_ref().take(batch.size));
                if chunk.is_empty() || (batch.drop_remainder && chunk.len() < batch.size) {
                    return None;
                }
                Some(gather(&sources, &chunk))
            }))
        })
    }
}

/// The rows at `chunk` of every source: contiguous ranges are sliced, others gathered.
fn gather(sources: &[Tensor], chunk: &[usize]) -> Result<Element> {
    let contiguous = chunk.windows(2).all(|w| w[1] == w[0] + 1);
    sources
        .iter()
        .map(|t| {
            if contiguous {
                rows::row_range(t, chunk[0], chunk[0] + chunk.len())
            } else {
                rows::take_rows(t, chunk)
            }
        })
        .collect()
}

/// A `tf.data.Dataset`: a lazy pipeline of elements (each a list of tensors, see [`Element`])
/// that can be iterated any number of times. Transformations return a new dataset and leave
/// the original usable; cloning is cheap.
///
/// Iterating copies at most one batch at a time: slicing, shuffling, repeating, taking and
/// skipping rows of a [`from_tensor_slices`](Dataset::from_tensor_slices) dataset move row
/// indices, and [`batch`](Dataset::batch) gathers the chosen rows in one copy.
///
/// Each iteration (each epoch of training) reshuffles: iteration `n` of a
/// [`shuffle`](Dataset::shuffle) draws its order from the seed and `n`, so runs with the same
/// seed repeat exactly ([`iter_epoch`](Dataset::iter_epoch) names the iteration).
///
/// ```
/// use ferroflow_data::{Batch, Cardinality, Dataset};
/// use ferroflow_tensor_core::Tensor;
///
/// let x = Tensor::from_vec((0..10).map(|v| v as f32).collect(), &[10, 1])?;
/// let y = Tensor::from_vec((0..10).collect::<Vec<i32>>(), &[10])?;
/// let ds = Dataset::from_tensor_slices((&x, &y))?
///     .shuffle(10, 42)
///     .batch(Batch::new(4).drop_remainder(true));
/// assert_eq!(ds.cardinality(), Cardinality::Finite(2));
/// let mut seen = Vec::new();
/// for batch in &ds {
///     let [bx, by] = <[Tensor; 2]>::try_from(batch?).unwrap();
///     assert_eq!((bx.dims(), by.dims()), (&[4, 1][..], &[4][..]));
///     seen.extend(by.to_vec::<i32>()?);
/// }
/// assert_eq!(seen.len(), 8);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Dataset {
    elements: Maker<Result<Element>>,
    rows: Option<Rows>,
    cardinality: Cardinality,
    /// Iterations started by [`Dataset::iter`], shared by clones.
    iterations: Arc<AtomicU64>,
}

impl fmt::Debug for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dataset")
            .field("cardinality", &self.cardinality)
            .finish_non_exhaustive()
    }
}

impl Dataset {
    pub(crate) fn from_elements(elements: Maker<Result<Element>>, cardinality: Cardinality) -> Dataset {
        Dataset {
            elements,
            rows: None,
            cardinality,
            iterations: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A dataset whose every iteration yields one error: a transformation given an invalid
    /// argument fails when iterated, as a TensorFlow op does when it runs.
    pub(crate) fn failing(op: &'static str, msg: &'static str) -> Dataset {
        Dataset::from_elements(
            Arc::new(move |_| Box::new(std::iter::once(Err(Error::invalid(op, msg))))),
            Cardinality::Unknown,
        )
    }

    /// How iteration `n` of this dataset's elements starts, for the stages built on it.
    pub(crate) fn element_maker(&self) -> Maker<Result<Element>> {
        self.elements.clone()
    }

    fn from_rows(rows: Rows, cardinality: Cardinality) -> Dataset {
        Dataset {
            elements: rows.elements(),
            rows: Some(rows),
            cardinality,
            iterations: Arc::new(AtomicU64::new(0)),
        }
    }

    /// One element per row of the components (`tf.data.Dataset.from_tensor_slices`): a tensor,
    /// a pair `(x, y)` or a tuple, all with the same number of rows (first dimension).
    ///
    /// ```
    /// use ferroflow_data::Dataset;
    /// use ferroflow_tensor_core::Tensor;
    /// let ds = Dataset::from_tensor_slices(Tensor::new([[1.0f32, 2.0], [3.0, 4.0]]))?;
    /// let first = ds.iter().next().unwrap()?;
    /// assert_eq!(first[0].to_vec::<f32>()?, vec![1.0, 2.0]);
    /// assert!(Dataset::from_tensor_slices((Tensor::new([1.0f32]), Tensor::new([1, 2]))).is_err());
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn from_tensor_slices(components: impl IntoComponents) -> Result<Dataset> {
        let sources = components.into_components();
        if sources.is_empty() {
            return Err(Error::invalid("from_tensor_slices", "needs at least one tensor"));
        }
        let n = rows::num_rows("from_tensor_slices", &sources[0])?;
        for t in &sources {
            let m = rows::num_rows("from_tensor_slices", t)?;
            if m != n {
                let shapes: Vec<_> = sources.iter().map(|t| t.shape()).collect();
                return Err(Error::shapes(
                    "from_tensor_slices",
                    &shapes.iter().collect::<Vec<_>>(),
                    "components must have the same number of rows (first dimension)",
                ));
            }
            t.data()?;
        }
        let rows = Rows {
            sources: Arc::new(sources),
            indices: Arc::new(move |_| Box::new(0..n)),
        };
        Ok(Dataset::from_rows(rows, Cardinality::Finite(n)))
    }

    /// A dataset of exactly one element, the components whole (`from_tensors`).
    pub fn from_tensors(components: impl IntoComponents) -> Dataset {
        let element = components.into_components();
        Dataset::from_elements(
            Arc::new(move |_| Box::new(std::iter::once(Ok(element.clone())))),
            Cardinality::Finite(1),
        )
    }

    /// A dataset of the given elements, in order.
    pub fn from_vec(elements: Vec<Element>) -> Dataset {
        let n = elements.len();
        let elements = Arc::new(elements);
        Dataset::from_elements(
            Arc::new(move |_| {
                let elements = elements.clone();
                Box::new((0..elements.len()).map(move |i| Ok(elements[i].clone())))
            }),
            Cardinality::Finite(n),
        )
    }

    /// Elements in random order through a buffer of `buffer` elements (`shuffle(buffer_size,
    /// seed)`, reshuffled every iteration). A buffer at least as large as the dataset gives a
    /// uniform shuffle; a buffer of 1 keeps the order.
    pub fn shuffle(&self, buffer: usize, seed: u64) -> Dataset {
        if buffer == 0 {
            return Dataset::failing("shuffle", "buffer_size must be greater than zero");
        }
        match &self.rows {
            Some(rows) => Dataset::from_rows(
                rows.with_indices(shuffled(rows.indices.clone(), buffer, seed)),
                self.cardinality,
            ),
            None => Dataset::from_elements(shuffled(self.elements.clone(), buffer, seed), self.cardinality),
        }
    }

    /// Consecutive elements stacked into batches along a new first axis (`batch(batch_size,
    /// drop_remainder)`). A batch size of 0 is an error when iterating; elements of one batch
    /// must have the same shapes.
    pub fn batch(&self, batch: impl Into<Batch>) -> Dataset {
        let batch = batch.into();
        if batch.size == 0 {
            return Dataset::failing("batch", "batch size must be at least 1");
        }
        let cardinality = batch.batches_of(self.cardinality);
        let elements = match &self.rows {
            Some(rows) => rows.batches(batch),
            None => {
                let groups = grouped(self.elements.clone(), batch);
                Arc::new(move |n| -> BoxIter<Result<Element>> {
                    Box::new(groups(n).map(|items| stack_elements(&items?)))
                }) as Maker<Result<Element>>
            }
        };
        Dataset::from_elements(elements, cardinality)
    }

    /// Repeats the dataset forever (`repeat()`); each repetition is a new iteration, so
    /// shuffles below it reshuffle.
    pub fn repeat(&self) -> Dataset {
        // TensorFlow's: an empty input stays empty; anything else, unknown included, repeats
        // forever.
        let cardinality = match self.cardinality {
            Cardinality::Finite(0) => Cardinality::Finite(0),
            _ => Cardinality::Infinite,
        };
        self.restage(cardinality, |m| repeated(m, None), |m| repeated(m, None))
    }

    /// Repeats the dataset `count` times (`repeat(count)`).
    pub fn repeat_n(&self, count: usize) -> Dataset {
        let cardinality = match self.cardinality {
            _ if count == 0 => Cardinality::Finite(0),
            c => c.map(|n| n.saturating_mul(count)),
        };
        self.restage(cardinality, |m| repeated(m, Some(count)), |m| repeated(m, Some(count)))
    }

    /// The first `count` elements (`take(count)`).
    pub fn take(&self, count: usize) -> Dataset {
        let cardinality = match self.cardinality {
            Cardinality::Infinite => Cardinality::Finite(count),
            c => c.map(|n| n.min(count)),
        };
        self.restage(cardinality, |m| taken(m, count), |m| taken(m, count))
    }

    /// All but the first `count` elements (`skip(count)`).
    pub fn skip(&self, count: usize) -> Dataset {
        let cardinality = self.cardinality.map(|n| n.saturating_sub(count));
        self.restage(cardinality, |m| skipped(m, count), |m| skipped(m, count))
    }

    /// Every `num_shards`-th element, starting at `index` (`shard(num_shards, index)`): worker
    /// `index` of `num_shards` reads its own part of the data. Shard before shuffling or
    /// batching, as `tf.data` advises, so the shards partition the elements; a slice dataset
    /// shards its row indices and copies nothing.
    ///
    /// ```
    /// use ferroflow_data::{Cardinality, Dataset};
    /// use ferroflow_tensor_core::Tensor;
    /// let ds = Dataset::from_tensor_slices(Tensor::new([0i32, 1, 2, 3, 4, 5, 6]))?;
    /// let second = ds.shard(3, 1)?;
    /// assert_eq!(second.cardinality(), Cardinality::Finite(2));
    /// let ids: Vec<i32> = second.iter().map(|e| e?[0].to_scalar::<i32>()).collect::<Result<_, _>>()?;
    /// assert_eq!(ids, vec![1, 4]);
    /// assert!(ds.shard(3, 3).is_err());
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn shard(&self, num_shards: usize, index: usize) -> Result<Dataset> {
        if num_shards == 0 || index >= num_shards {
            return Err(Error::invalid(
                "shard",
                format!("index {index} is not a shard of {num_shards} (need 0 <= index < num_shards)"),
            ));
        }
        let cardinality = self
            .cardinality
            .map(|n| n / num_shards + usize::from(index < n % num_shards));
        Ok(self.restage(
            cardinality,
            |m| sharded(m, num_shards, index),
            |m| sharded(m, num_shards, index),
        ))
    }

    /// Applies a row-preserving stage to the row indices when there are rows, else to the
    /// elements.
    fn restage(
        &self,
        cardinality: Cardinality,
        on_rows: impl FnOnce(Maker<usize>) -> Maker<usize>,
        on_elements: impl FnOnce(Maker<Result<Element>>) -> Maker<Result<Element>>,
    ) -> Dataset {
        match &self.rows {
            Some(rows) => Dataset::from_rows(rows.with_indices(on_rows(rows.indices.clone())), cardinality),
            None => Dataset::from_elements(on_elements(self.elements.clone()), cardinality),
        }
    }

    /// Applies `f` to every element (`map`). An error from `f` is yielded in place of the
    /// element.
    ///
    /// ```
    /// use ferroflow_data::Dataset;
    /// use ferroflow_tensor_core::{DType, Tensor};
    /// let ds = Dataset::from_tensor_slices(Tensor::new([1i32, 2, 3]))?
    ///     .map(|e| Ok(vec![e[0].cast(DType::F32)?.square()?]));
    /// let squares: Vec<f32> = ds.iter().map(|e| e?[0].to_scalar::<f32>()).collect::<Result<_, _>>()?;
    /// assert_eq!(squares, vec![1.0, 4.0, 9.0]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn map<F>(&self, f: F) -> Dataset
    where
        F: Fn(Element) -> Result<Element> + Send + Sync + 'static,
    {
        let upstream = self.elements.clone();
        let f = Arc::new(f);
        Dataset::from_elements(
            Arc::new(move |n| {
                let f = f.clone();
                Box::new(upstream(n).map(move |e| e.and_then(|e| f(e))))
            }),
            self.cardinality,
        )
    }

    /// Keeps the elements for which `predicate` is true (`filter`); the cardinality becomes
    /// unknown.
    pub fn filter<F>(&self, predicate: F) -> Dataset
    where
        F: Fn(&Element) -> Result<bool> + Send + Sync + 'static,
    {
        let upstream = self.elements.clone();
        let predicate = Arc::new(predicate);
        let cardinality = match self.cardinality {
            Cardinality::Finite(0) => Cardinality::Finite(0),
            _ => Cardinality::Unknown,
        };
        Dataset::from_elements(
            Arc::new(move |n| {
                let predicate = predicate.clone();
                Box::new(upstream(n).filter_map(move |e| match e {
                    Ok(e) => match predicate(&e) {
                        Ok(true) => Some(Ok(e)),
                        Ok(false) => None,
                        Err(err) => Some(Err(err)),
                    },
                    Err(err) => Some(Err(err)),
                }))
            }),
            cardinality,
        )
    }

    /// Produces up to `buffer` elements ahead on a background thread (`prefetch`), so
    /// preparing the next batch overlaps with training on this one. A panic in a `map`
    /// closure on that thread comes back as an error.
    pub fn prefetch(&self, buffer: usize) -> Dataset {
        if buffer == 0 {
            return self.clone();
        }
        let upstream = self.elements.clone();
        Dataset::from_elements(
            Arc::new(move |n| run_ahead("prefetch", upstream(n), buffer)),
            self.cardinality,
        )
    }

    /// Copies each element's tensors to `device` on a background thread, up to `buffer`
    /// elements ahead (TensorFlow's `prefetch_to_device`): the pipeline's work and the host
    /// side of each copy happen off the step's thread, and the copy is queued on the
    /// device's stream before the step asks for the element. Tensors already there are not
    /// copied. The pipeline's closures run on that thread, outside the caller's device scope.
    /// `fit`, `evaluate` and `predict` stage batches of tensors this way by themselves inside
    /// an accelerator's [`device_scope`](ferroflow_tensor_core::device_scope).
    ///
    /// ```
    /// use ferroflow_data::Dataset;
    /// use ferroflow_tensor_core::{Device, Tensor};
    ///
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[4, 1])?;
    /// let ds = Dataset::from_tensor_slices(&x)?.batch(2).prefetch_to_device(Device::Cpu, 1);
    /// for batch in &ds {
    ///     assert_eq!(batch?[0].device(), Device::Cpu);
    /// }
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn prefetch_to_device(&self, device: Device, buffer: usize) -> Dataset {
        self.map(move |e| e.iter().map(|t| t.to(device)).collect())
            .prefetch(buffer.max(1))
    }

    /// The number of elements one iteration yields (`cardinality()`).
    pub fn cardinality(&self) -> Cardinality {
        self.cardinality
    }

    /// Iterates the dataset; each call is a new iteration (shuffles draw a new order).
    pub fn iter(&self) -> DatasetIter {
        let n = self.iterations.fetch_add(1, Ordering::Relaxed);
        self.iter_epoch(n)
    }

    /// How many iterations [`Dataset::iter`] has started, or were claimed with
    /// [`Dataset::claim_iterations`]: the number the next [`Dataset::iter`] takes.
    pub fn iterations_started(&self) -> u64 {
        self.iterations.load(Ordering::Relaxed)
    }

    /// Marks the iterations below `end` as used, so the next [`Dataset::iter`] starts at
    /// `end` or later: `fit` iterates by number ([`Dataset::iter_epoch`]) and claims what it
    /// used, so the next `fit` on the same dataset sees new shuffles, as each new TensorFlow
    /// iterator reshuffles.
    pub fn claim_iterations(&self, end: u64) {
        self.iterations.fetch_max(end, Ordering::Relaxed);
    }

    /// This dataset counting its iterations with `other`'s counter: for a wrapper that stands
    /// for `other` (a `map` that `fit` adds), so that iterations it claims are `other`'s.
    pub fn sharing_iterations_with(mut self, other: &Dataset) -> Dataset {
        self.iterations = other.iterations.clone();
        self
    }

    /// The first element of a probe iteration (number [`Dataset::PROBE`]), to read an
    /// element's shapes before training: its shuffles are not any real epoch's, and a
    /// [`cache`](Dataset::cache) neither fills from it nor warns that it stopped early.
    pub fn peek(&self) -> Option<Result<Element>> {
        self.iter_epoch(Dataset::PROBE).next()
    }

    /// The iteration number [`Dataset::peek`] uses, far from any real epoch's.
    pub const PROBE: u64 = u64::MAX;

    /// Iteration number `epoch` (starting at 0): the order is a function of the seeds and
    /// `epoch` alone, which is how training resumes an interrupted epoch exactly.
    pub fn iter_epoch(&self, epoch: u64) -> DatasetIter {
        DatasetIter {
            inner: (self.elements)(epoch),
        }
    }
}

/// The most elements a batch reserves room for before it has them (TensorFlow's batch caps
/// its reservation the same way: `batch(i32::MAX)` is how "everything in one batch" is
/// written).
pub(crate) const PREALLOCATED_BATCH: usize = 1 << 16;

/// Each iteration's elements in consecutive groups of `batch.size` (the last one shorter
/// unless `batch.drop_remainder`), for [`Dataset::batch`] and its padded form.
pub(crate) fn grouped(upstream: Maker<Result<Element>>, batch: Batch) -> Maker<Result<Vec<Element>>> {
    Arc::new(move |n| -> BoxIter<Result<Vec<Element>>> {
        let mut it = upstream(n);
        let mut done = false;
        Box::new(std::iter::from_fn(move || {
            if done {
                return None;
            }
            let mut items = Vec::with_capacity(batch.size.min(PREALLOCATED_BATCH));
            // An error drops the batch being gathered; batching goes on with the next
            // element, as TensorFlow's batch does.
            for e in it.by_ref().take(batch.size) {
                match e {
                    Ok(e) => items.push(e),
                    Err(err) => return Some(Err(err)),
                }
            }
            if items.is_empty() || (batch.drop_remainder && items.len() < batch.size) {
                done = true;
                return None;
            }
            Some(Ok(items))
        }))
    })
}

/// Stacks each component of `items` into a batch.
pub(crate) fn stack_elements(items: &[Element]) -> Result<Element> {
    let width = items[0].len();
    if let Some(bad) = items.iter().find(|e| e.len() != width) {
        return Err(Error::invalid(
            "batch",
            format!("elements have {} and {} components", width, bad.len()),
        ));
    }
    (0..width)
        .map(|c| rows::stack("batch", &items.iter().map(|e| &e[c]).collect::<Vec<_>>()))
        .collect()
}

/// An iteration over a [`Dataset`]: yields elements (or the error that replaced one).
pub struct DatasetIter {
    inner: BoxIter<Result<Element>>,
}

impl Iterator for DatasetIter {
    type Item = Result<Element>;
    fn next(&mut self) -> Option<Result<Element>> {
        self.inner.next()
    }
}

impl IntoIterator for &Dataset {
    type Item = Result<Element>;
    type IntoIter = DatasetIter;
    fn into_iter(self) -> DatasetIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(n: i32) -> Tensor {
        Tensor::from_vec((0..n).collect::<Vec<i32>>(), &[n as usize]).unwrap()
    }

    fn values(ds: &Dataset) -> Vec<Vec<i32>> {
        ds.iter().map(|e| e.unwrap()[0].to_vec::<i32>().unwrap()).collect()
    }

    #[test]
    fn batching_keeps_or_drops_the_remainder() {
        let ds = Dataset::from_tensor_slices(ints(5)).unwrap();
        assert_eq!(values(&ds.batch(2)), vec![vec![0, 1], vec![2, 3], vec![4]]);
        assert_eq!(ds.batch(2).cardinality(), Cardinality::Finite(3));
        let dropped = ds.batch(Batch::new(2).drop_remainder(true));
        assert_eq!(values(&dropped), vec![vec![0, 1], vec![2, 3]]);
        assert_eq!(dropped.cardinality(), Cardinality::Finite(2));
        assert_eq!(values(&ds.batch(9)), vec![vec![0, 1, 2, 3, 4]]);
        assert!(ds.batch(0).iter().next().unwrap().is_err());
    }

    #[test]
    fn element_batching_matches_row_batching() {
        let ds = Dataset::from_tensor_slices(ints(7)).unwrap();
        let via_elements = ds.map(Ok).shuffle(7, 1).batch(3);
        let via_rows = ds.shuffle(7, 1).batch(3);
        assert_eq!(values(&via_elements), values(&via_rows));
    }

    #[test]
    fn take_skip_repeat_and_cardinality() {
        let ds = Dataset::from_tensor_slices(ints(4)).unwrap();
        let flat = |d: &Dataset| values(d).into_iter().flatten().collect::<Vec<_>>();
        assert_eq!(flat(&ds.skip(1).take(2)), vec![1, 2]);
        assert_eq!(flat(&ds.repeat_n(2)), vec![0, 1, 2, 3, 0, 1, 2, 3]);
        assert_eq!(ds.repeat().cardinality(), Cardinality::Infinite);
        assert_eq!(ds.repeat().take(6).cardinality(), Cardinality::Finite(6));
        assert_eq!(ds.filter(|_| Ok(true)).cardinality(), Cardinality::Unknown);
        assert_eq!(ds.skip(9).cardinality(), Cardinality::Finite(0));
        assert_eq!(flat(&ds.filter(|e| Ok(e[0].to_scalar::<i32>()? % 2 == 1))), vec![1, 3]);
    }

    #[test]
    fn repeat_reshuffles_and_epochs_are_reproducible() {
        let ds = Dataset::from_tensor_slices(ints(8)).unwrap().shuffle(8, 5);
        let twice = values(&ds.repeat_n(2)).into_iter().flatten().collect::<Vec<_>>();
        assert_ne!(twice[..8], twice[8..]);
        let e3: Vec<_> = ds
            .iter_epoch(3)
            .map(|e| e.unwrap()[0].to_scalar::<i32>().unwrap())
            .collect();
        let again: Vec<_> = ds
            .iter_epoch(3)
            .map(|e| e.unwrap()[0].to_scalar::<i32>().unwrap())
            .collect();
        assert_eq!(e3, again);
        assert_ne!(values(&ds), values(&ds), "each iter() is a new epoch");
    }

    #[test]
    fn prefetch_yields_the_same_elements_and_reports_panics() {
        let ds = Dataset::from_tensor_slices(ints(10)).unwrap().batch(3);
        assert_eq!(values(&ds.prefetch(2)), values(&ds));
        let panicking = Dataset::from_tensor_slices(ints(3))
            .unwrap()
            .map(|e| {
                if e[0].to_scalar::<i32>()? == 1 {
                    panic!("bad row")
                } else {
                    Ok(e)
                }
            })
            .prefetch(1);
        let out: Vec<_> = panicking.iter().collect();
        assert!(out[0].is_ok());
        let err = out[1].as_ref().unwrap_err().to_string();
        assert!(err.contains("bad row"), "{err}");
        // Dropping a half-read prefetching iterator ends its thread.
        let mut it = ds.repeat().prefetch(1).iter();
        assert!(it.next().is_some());
        drop(it);
    }

    #[test]
    fn prefetch_to_device_keeps_elements_order_and_cardinality() {
        let threads = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let seen = threads.clone();
        let ds = Dataset::from_tensor_slices(ints(10))
            .unwrap()
            .map(move |e| {
                let name = std::thread::current().name().unwrap_or("").to_string();
                seen.lock().unwrap().push(name);
                Ok(e)
            })
            .batch(4);
        let staged = ds.prefetch_to_device(Device::Cpu, 2);
        let _ = values(&staged);
        let names = std::mem::take(&mut *threads.lock().unwrap());
        assert_eq!(names.len(), 10);
        assert!(names.iter().all(|t| t == "ferroflow-prefetch"), "{names:?}");
        assert_eq!(values(&staged), values(&ds));
        assert_eq!(staged.cardinality(), Cardinality::Finite(3));
        for batch in &staged {
            assert!(batch.unwrap().iter().all(|t| t.device() == Device::Cpu));
        }
        // A buffer of 0 still stages (one element ahead) rather than copying on the caller.
        threads.lock().unwrap().clear();
        assert_eq!(values(&ds.prefetch_to_device(Device::Cpu, 0)), values(&ds));
        let names = std::mem::take(&mut *threads.lock().unwrap());
        assert_eq!(
            names.iter().filter(|t| *t == "ferroflow-prefetch").count(),
            10,
            "{names:?}"
        );
    }

    #[test]
    fn mismatched_components_and_batches_are_errors() {
        assert!(Dataset::from_tensor_slices((ints(3), ints(4))).is_err());
        assert!(Dataset::from_tensor_slices(Tensor::scalar(1.0f32)).is_err());
        let ragged = Dataset::from_vec(vec![vec![ints(2)], vec![ints(3)]]).batch(2);
        let err = ragged.iter().next().unwrap().unwrap_err().to_string();
        assert!(err.contains("batch"), "{err}");
    }
}
