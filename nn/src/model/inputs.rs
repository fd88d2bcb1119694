//! What `fit`, `evaluate` and `predict` take ([`Inputs`]: tensors or a dataset) and how it
//! becomes batches: Keras' data adapters. Tensors are batched by row index (shuffled per
//! pass over the data from the seed and the pass number, so a resumed run repeats the
//! order); datasets are iterated pass by pass with [`Dataset::iter_epoch`] (a pass is an
//! epoch unless `steps_per_epoch` splits it). Inside an accelerator's device
//! scope, batches of tensors are cut on the host and copied to the device on a background
//! thread, a few ahead of the step (Keras' prefetch to the strategy's device).

use ferroflow_data::rows::{num_rows, row_range, take_rows};
use ferroflow_data::{derive_seed, permutation, run_ahead, Cardinality, Dataset, DatasetIter};
use ferroflow_tensor_core::{DType, Device, Error, Result, Tensor};
use std::collections::BTreeMap;

/// The data of a `fit`, `evaluate` or `predict` call: `x` alone, `(x, y)`,
/// `(x, y, sample_weight)`, or a [`Dataset`] whose elements are `[x]`, `[x, y]` or
/// `[x, y, sample_weight]` batches.
#[derive(Debug, Clone)]
pub enum Inputs {
    /// Whole tensors, batched by the model.
    Tensors {
        /// Inputs, `[samples, ...]`.
        x: Tensor,
        /// Targets, `[samples, ...]`.
        y: Option<Tensor>,
        /// Per-sample weights, `[samples]`.
        sample_weight: Option<Tensor>,
    },
    /// A dataset of batches.
    Dataset(Dataset),
}

impl From<&Tensor> for Inputs {
    fn from(x: &Tensor) -> Self {
        Inputs::Tensors {
            x: x.clone(),
            y: None,
            sample_weight: None,
        }
    }
}

impl From<Tensor> for Inputs {
    fn from(x: Tensor) -> Self {
        Inputs::from(&x)
    }
}

impl From<(&Tensor, &Tensor)> for Inputs {
    fn from((x, y): (&Tensor, &Tensor)) -> Self {
        Inputs::Tensors {
            x: x.clone(),
            y: Some(y.clone()),
            sample_weight: None,
        }
    }
}

impl From<(Tensor, Tensor)> for Inputs {
    fn from((x, y): (Tensor, Tensor)) -> Self {
        Inputs::from((&x, &y))
    }
}

impl From<(&Tensor, &Tensor, &Tensor)> for Inputs {
    fn from((x, y, w): (&Tensor, &Tensor, &Tensor)) -> Self {
        Inputs::Tensors {
            x: x.clone(),
            y: Some(y.clone()),
            sample_weight: Some(w.clone()),
        }
    }
}

impl From<&Dataset> for Inputs {
    fn from(ds: &Dataset) -> Self {
        Inputs::Dataset(ds.clone())
    }
}

impl From<Dataset> for Inputs {
    fn from(ds: Dataset) -> Self {
        Inputs::Dataset(ds)
    }
}

/// Keras' `class_weight`: a weight per class id, turned into per-sample weights (classes
/// not listed weigh 1).
pub type ClassWeight = BTreeMap<i64, f64>;

/// A batch: `[x, y, sample_weight]`, the later ones present when given.
pub(crate) type Batch = Vec<Tensor>;

/// Data ready to batch.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    Tensors { parts: Vec<Tensor>, rows: usize },
    Dataset(Dataset),
}

impl Source {
    /// Checks the tensors' row counts (`op` names the call in errors).
    pub fn new(inputs: Inputs, op: &'static str) -> Result<Source> {
        match inputs {
            Inputs::Dataset(ds) => Ok(Source::Dataset(ds)),
            Inputs::Tensors { x, y, sample_weight } => {
                let rows = num_rows(op, &x)?;
                let mut parts = vec![x];
                if let Some(y) = y {
                    parts.push(y);
                }
                if let Some(w) = sample_weight {
                    if parts.len() < 2 {
                        return Err(Error::invalid(op, "sample weights need targets"));
                    }
                    parts.push(w);
                }
                for (t, what) in parts.iter().zip(["x", "y", "sample_weight"]).skip(1) {
                    let n = num_rows(op, t)?;
                    if n != rows {
                        return Err(Error::shapes(
                            op,
                            &[&parts[0].shape(), &t.shape()],
                            format!("x has {rows} samples but {what} has {n}; they must have the same first dimension"),
                        ));
                    }
                }
                Ok(Source::Tensors { parts, rows })
            }
        }
    }

    /// Whether batches carry targets (for a dataset: unknown until iterated, assumed yes).
    pub fn has_targets(&self) -> bool {
        match self {
            Source::Tensors { parts, .. } => parts.len() >= 2,
            Source::Dataset(_) => true,
        }
    }

    /// Whether the tensors carry sample weights.
    pub fn has_sample_weights(&self) -> bool {
        matches!(self, Source::Tensors { parts, .. } if parts.len() == 3)
    }

    /// Keras' `validation_split`: the last `fraction` of the samples (taken before any
    /// shuffling) becomes the validation data.
    pub fn split_validation(self, fraction: f64) -> Result<(Source, Source)> {
        let Source::Tensors { parts, rows } = self else {
            return Err(Error::invalid(
                "fit",
                "validation_split needs tensors; for a dataset, pass validation_data",
            ));
        };
        let split_at = (rows as f64 * (1.0 - fraction)).floor() as usize;
        if split_at == 0 || split_at == rows {
            return Err(Error::invalid(
                "fit",
                format!(
                    "training data contains {rows} samples, which is not sufficient to split it into a validation and training set as specified by validation_split={fraction}"
                ),
            ));
        }
        let take = |a: usize, b: usize| -> Result<Source> {
            Ok(Source::Tensors {
                parts: parts.iter().map(|t| row_range(t, a, b)).collect::<Result<_>>()?,
                rows: b - a,
            })
        };
        Ok((take(0, split_at)?, take(split_at, rows)?))
    }

    /// Adds per-sample weights from `class_weight` (the targets' class ids: the argmax of
    /// one-hot targets, or the ids themselves).
    pub fn with_class_weight(self, class_weight: &ClassWeight) -> Result<Source> {
        match self {
            Source::Tensors { mut parts, rows } => {
                if parts.len() != 2 {
                    return Err(Error::invalid(
                        "fit",
                        "class_weight needs targets and no sample_weight (they cannot be combined)",
                    ));
                }
                let w = class_weights_for(&parts[1], class_weight)?;
                parts.push(w);
                Ok(Source::Tensors { parts, rows })
            }
            Source::Dataset(ds) => {
                let cw = class_weight.clone();
                Ok(Source::Dataset(
                    ds.map(move |mut e| {
                        if e.len() != 2 {
                            return Err(Error::invalid(
                                "fit",
                                "class_weight needs (x, y) dataset elements without sample weights",
                            ));
                        }
                        let w = class_weights_for(&e[1], &cw)?;
                        e.push(w);
                        Ok(e)
                    })
                    .sharing_iterations_with(&ds),
                ))
            }
        }
    }

    /// The first sample's input (one row), to build the model before training starts.
    pub fn first_x(&self) -> Result<Option<Tensor>> {
        match self {
            Source::Tensors { parts, rows } => {
                if *rows == 0 {
                    Ok(None)
                } else {
                    row_range(&parts[0], 0, 1).map(Some)
                }
            }
            // A separate probe iteration: shuffles of real epochs and caches are untouched.
            Source::Dataset(ds) => match ds.peek() {
                Some(e) => Ok(e?.into_iter().next()),
                None => Ok(None),
            },
        }
    }

    /// Batches per pass, when known.
    pub fn batches_per_pass(&self, batch_size: usize) -> Option<usize> {
        match self {
            Source::Tensors { rows, .. } => Some(rows.div_ceil(batch_size)),
            Source::Dataset(ds) => match ds.cardinality() {
                Cardinality::Finite(n) => Some(n),
                _ => None,
            },
        }
    }

    /// Whether a pass never ends.
    pub fn is_infinite(&self) -> bool {
        matches!(self, Source::Dataset(ds) if ds.cardinality() == Cardinality::Infinite)
    }

    /// The batches of pass `pass` (a fresh iteration of the data) from its `skip`-th on,
    /// staged to `order.device` ahead of the caller when it names one and the data are
    /// tensors. Datasets are never staged here: their closures may read the caller's
    /// thread-local state (the device scope, the random seed sequence), so they run on the
    /// caller's thread unless the user asks for `Dataset::prefetch_to_device`.
    fn pass(&self, pass: u64, order: &Order, skip: usize) -> PassIter {
        let mut batches = self.host_pass(pass, order);
        match &mut batches {
            // Rows are cut by position: skipping cuts nothing.
            PassIter::Tensors {
                next, rows, batch_size, ..
            } => *next = skip.saturating_mul(*batch_size).min(*rows),
            _ => {
                for _ in 0..skip {
                    if batches.next().is_none() {
                        break;
                    }
                }
            }
        }
        match (order.device, self) {
            (Some(device), Source::Tensors { .. }) => {
                let staged = batches.map(move |b| b.and_then(|b| b.iter().map(|t| t.to(device)).collect()));
                PassIter::Staged(run_ahead("prefetch_to_device", staged, STAGED_BATCHES))
            }
            _ => batches,
        }
    }

    /// The batches of pass `pass`, made where the data is.
    fn host_pass(&self, pass: u64, order: &Order) -> PassIter {
        match self {
            Source::Tensors { parts, rows } => {
                let indices = order
                    .shuffle_seed
                    .map(|seed| permutation(*rows, derive_seed(seed, pass)));
                PassIter::Tensors {
                    parts: parts.clone(),
                    rows: *rows,
                    batch_size: order.batch_size,
                    next: 0,
                    indices,
                }
            }
            Source::Dataset(ds) => PassIter::Dataset(ds.iter_epoch(order.dataset_base.saturating_add(pass))),
        }
    }
}

/// The weights of `class_weight` for each sample's class.
fn class_weights_for(y: &Tensor, class_weight: &ClassWeight) -> Result<Tensor> {
    let ids = if y.rank() > 1 && y.dims().last().is_some_and(|&d| d > 1) {
        y.argmax(-1)?
    } else if y.rank() > 1 {
        y.reshape(&[-1])?
    } else {
        y.clone()
    };
    let ids = if ids.dtype().is_float() { ids.round()? } else { ids };
    let ids = ids.cast(DType::I64)?.to_vec::<i64>()?;
    let weights: Vec<f32> = ids
        .iter()
        .map(|c| class_weight.get(c).copied().unwrap_or(1.0) as f32)
        .collect();
    Tensor::from_vec(weights, &[ids.len()])
}

/// How many batches a staged pass holds ready ahead of the step (a third may be in the
/// making on the staging thread).
const STAGED_BATCHES: usize = 2;

/// How a pass orders and groups tensor rows, and where its batches go.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Order {
    pub batch_size: usize,
    /// `Some(seed)`: a permutation per pass drawn from the seed and the pass number.
    pub shuffle_seed: Option<u64>,
    /// `Some(device)`: each batch is made and copied there on a background thread.
    pub device: Option<Device>,
    /// Added to the pass number of a dataset's iteration: where this `fit` starts in the
    /// dataset's iterations (see [`BatchStream::dataset_base`]).
    pub dataset_base: u64,
}

impl Order {
    /// Batches of `batch_size` in `shuffle_seed`'s order, staged to the accelerator of the
    /// caller's [`device_scope`](ferroflow_tensor_core::device_scope) if there is one (a CPU
    /// scope changes nothing).
    pub fn new(batch_size: usize, shuffle_seed: Option<u64>) -> Order {
        Order {
            batch_size,
            shuffle_seed,
            device: ferroflow_tensor_core::default_device().filter(|d| !d.is_cpu()),
            dataset_base: 0,
        }
    }

    /// This order without staging: for a data-parallel run, whose worker cuts its share out
    /// of each batch on the host before the step.
    pub fn unstaged(self) -> Order {
        Order { device: None, ..self }
    }
}

/// One pass over the data.
enum PassIter {
    Tensors {
        parts: Vec<Tensor>,
        rows: usize,
        batch_size: usize,
        next: usize,
        indices: Option<Vec<usize>>,
    },
    Dataset(DatasetIter),
    /// Another pass running ahead on a background thread, copying to a device.
    Staged(Box<dyn Iterator<Item = Result<Batch>> + Send>),
}

impl Iterator for PassIter {
    type Item = Result<Batch>;
    fn next(&mut self) -> Option<Result<Batch>> {
        match self {
            PassIter::Dataset(it) => it.next(),
            PassIter::Staged(it) => it.next(),
            PassIter::Tensors {
                parts,
                rows,
                batch_size,
                next,
                indices,
            } => {
                if *next >= *rows {
                    return None;
                }
                let end = (*next + *batch_size).min(*rows);
                let batch = match indices {
                    Some(idx) => parts.iter().map(|t| take_rows(t, &idx[*next..end])).collect(),
                    None => parts.iter().map(|t| row_range(t, *next, end)).collect(),
                };
                *next = end;
                Some(batch)
            }
        }
    }
}

/// Where an epoch's batches come from.
enum Placement {
    /// `steps_per_epoch` splits passes of known length: from `offset` in pass `pass`.
    Within { pass: u64, offset: usize },
    /// `steps_per_epoch` over data of unknown length: where the previous epoch stopped.
    Continuing,
    /// One whole pass per epoch, this one.
    Whole(u64),
}

/// Batches across epochs, as Keras 3's `EpochIterator`: without `steps_per_epoch` each
/// epoch is one pass. With it, an epoch takes that many batches from the current pass and
/// the pass continues into the next epoch; an epoch that reaches the end of the pass stops
/// there, short ("Your input ran out of data", printed once), and the next epoch starts a
/// new pass. A pass of `P` batches therefore serves `ceil(P / steps)` epochs.
pub(crate) struct BatchStream<'a> {
    source: &'a Source,
    order: Order,
    steps_per_epoch: Option<usize>,
    current: Option<PassIter>,
    pass: u64,
    /// Batches this epoch has taken.
    taken: usize,
    /// Whether the ran-out-of-data warning was printed.
    warned: bool,
    /// The highest pass started, if any.
    last_pass: Option<u64>,
}

impl<'a> BatchStream<'a> {
    pub fn new(source: &'a Source, order: Order, steps_per_epoch: Option<usize>) -> Self {
        BatchStream {
            source,
            order,
            steps_per_epoch,
            current: None,
            pass: 0,
            taken: 0,
            warned: false,
            last_pass: None,
        }
    }

    /// Where epoch `epoch` starts (see [`BatchStream::start_epoch`]).
    fn placement(&self, epoch: usize) -> Placement {
        match (
            self.steps_per_epoch,
            self.source.batches_per_pass(self.order.batch_size),
        ) {
            (Some(steps), Some(per_pass)) if per_pass > 0 && steps != per_pass => {
                // Each pass serves ceil(per_pass / steps) epochs, the last one short.
                let epochs_per_pass = per_pass.div_ceil(steps) as u64;
                Placement::Within {
                    pass: epoch as u64 / epochs_per_pass,
                    offset: (epoch as u64 % epochs_per_pass) as usize * steps,
                }
            }
            (Some(_), None) => Placement::Continuing,
            _ => Placement::Whole(epoch as u64),
        }
    }

    /// Where a `fit` starting at `first_epoch` begins in a dataset's iterations: as Keras
    /// iterates a dataset anew in each `fit`, the passes continue after those an earlier
    /// `fit` used (new shuffles), and a `fit` resumed at `initial_epoch` after one that
    /// stopped there sees the passes an uninterrupted run would have seen. Tensors: 0.
    pub fn dataset_base(&self, first_epoch: usize) -> u64 {
        let Source::Dataset(ds) = self.source else { return 0 };
        // The passes an uninterrupted run would have started before `first_epoch`; none
        // where epochs continue over data of unknown length, so a later fit takes fresh ones.
        let before = match first_epoch.checked_sub(1).map(|e| self.placement(e)) {
            Some(Placement::Within { pass, .. } | Placement::Whole(pass)) => pass + 1,
            Some(Placement::Continuing) | None => 0,
        };
        ds.iterations_started().saturating_sub(before)
    }

    /// Sets where this stream's dataset passes start (see [`BatchStream::dataset_base`]).
    pub fn set_dataset_base(&mut self, base: u64) {
        self.order.dataset_base = base;
    }

    /// Marks the dataset's passes this stream used, so a later `fit` continues after them.
    pub fn claim_passes(&self) {
        if let (Source::Dataset(ds), Some(last)) = (self.source, self.last_pass) {
            ds.claim_iterations(self.order.dataset_base.saturating_add(last).saturating_add(1));
        }
    }

    /// Records that pass `pass` started.
    fn started(&mut self, pass: u64) {
        self.last_pass = Some(self.last_pass.map_or(pass, |p| p.max(pass)));
    }

    /// Positions the stream at the start of `epoch`: where an uninterrupted run from epoch 0
    /// would be (so `initial_epoch` and resumed runs see the same batches).
    pub fn start_epoch(&mut self, epoch: usize) {
        self.taken = 0;
        match self.placement(epoch) {
            Placement::Within { pass, offset } => {
                if self.current.is_none() || self.pass != pass {
                    self.current = Some(self.source.pass(pass, &self.order, offset));
                    self.pass = pass;
                    self.started(pass);
                }
            }
            // No pass length to place the epoch by (an infinite dataset, or one of unknown
            // cardinality such as a filter's): continue the current iteration across epochs
            // until it runs out, as Keras' iterator does. A run resumed at `initial_epoch >
            // 0` starts from the first batch, since where epoch `e` would begin is not known
            // without reading the passes before it.
            Placement::Continuing => {
                if self.current.is_none() {
                    self.current = Some(self.source.pass(self.pass, &self.order, 0));
                    self.started(self.pass);
                }
            }
            Placement::Whole(pass) => {
                self.pass = pass;
                self.current = Some(self.source.pass(self.pass, &self.order, 0));
                self.started(self.pass);
            }
        }
    }

    /// The next batch of this epoch, or `None` when the epoch's batches are done. With
    /// `steps_per_epoch` the caller counts steps; a pass that runs out ends the epoch (the
    /// next epoch starts the next pass). A pass of unknown length that runs out at an
    /// epoch's first batch (the previous epoch took its last) is followed at once by the
    /// next pass rather than leaving an epoch without batches.
    pub fn next_batch(&mut self) -> Option<Result<Batch>> {
        let it = self.current.as_mut()?;
        if let Some(b) = it.next() {
            self.taken += 1;
            return Some(b);
        }
        self.current = None;
        self.pass += 1;
        let steps = self.steps_per_epoch?;
        if self.taken > 0 {
            if self.taken < steps && !self.warned {
                self.warned = true;
                eprintln!(
                    "Your input ran out of data; interrupting the epoch after {} of {steps} steps. \
                     Make sure that your dataset can generate at least `steps_per_epoch * epochs` \
                     batches (`repeat()` it).",
                    self.taken
                );
            }
            return None;
        }
        let mut fresh = self.source.pass(self.pass, &self.order, 0);
        self.started(self.pass);
        let first = fresh.next();
        if first.is_some() {
            self.taken += 1;
            self.current = Some(fresh);
        }
        first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The batches of epochs `start..end`, as fit reads them.
    fn read(source: &Source, order: Order, steps: Option<usize>, start: usize, end: usize) -> Vec<Vec<Vec<f32>>> {
        let mut stream = BatchStream::new(source, order, steps);
        let mut out = Vec::new();
        for epoch in start..end {
            stream.start_epoch(epoch);
            let mut taken = 0;
            while steps.is_none_or(|k| taken < k) {
                let Some(batch) = stream.next_batch() else { break };
                out.push(batch.unwrap().iter().map(|t| t.to_vec::<f32>().unwrap()).collect());
                taken += 1;
            }
        }
        out
    }

    #[test]
    fn staged_passes_give_the_same_batches_from_the_same_positions() {
        let x = Tensor::from_vec((0..20).map(|i| i as f32).collect(), &[10, 2]).unwrap();
        let y = Tensor::from_vec((0..10).map(|i| i as f32).collect(), &[10]).unwrap();
        let source = Source::new((&x, &y).into(), "test").unwrap();
        let plain = Order {
            batch_size: 3,
            shuffle_seed: Some(5),
            device: None,
            dataset_base: 0,
        };
        // The CPU stands in for an accelerator: `to` is then a clone, the staging the same.
        let staged = Order {
            device: Some(Device::Cpu),
            ..plain
        };
        // Four batches a pass: whole passes; 3 steps an epoch (a pass serves an epoch of 3
        // and one of 1, as Keras' iterator stops at the end of the data; a resumed run skips
        // into a pass); 1 step; and 5 (each epoch is one pass, cut short at 4).
        for (steps, lengths) in [
            (None, [4, 4, 4, 4, 4]),
            (Some(3), [3, 1, 3, 1, 3]),
            (Some(1), [1, 1, 1, 1, 1]),
            (Some(5), [4, 4, 4, 4, 4]),
        ] {
            // An uninterrupted run of five epochs, unstaged: the reference.
            let all = read(&source, plain, steps, 0, 5);
            assert_eq!(all.len(), lengths.iter().sum::<usize>(), "steps {steps:?}");
            // Every pass holds each of the 10 rows once.
            let mut rows: Vec<f32> = all.iter().take(4).flat_map(|b| b[1].clone()).collect();
            if steps == Some(3) {
                rows.sort_by(f32::total_cmp);
                assert_eq!(rows, (0..10).map(|i| i as f32).collect::<Vec<_>>());
            }
            for order in [plain, staged] {
                assert_eq!(read(&source, order, steps, 0, 5), all, "steps {steps:?}, {order:?}");
                // Resumed at epoch 2: the batches the uninterrupted run gave from there.
                let resumed = read(&source, order, steps, 2, 5);
                let skip = lengths[..2].iter().sum::<usize>();
                assert_eq!(resumed, all[skip..], "steps {steps:?}, {order:?} resumed");
            }
        }
        let mut stream = BatchStream::new(&source, staged, None);
        stream.start_epoch(0);
        assert!(matches!(stream.current, Some(PassIter::Staged(_))));
        // Datasets are never staged by fit.
        let ds = Source::Dataset(Dataset::from_tensor_slices((&x, &y)).unwrap().batch(3));
        let mut stream = BatchStream::new(&ds, staged, None);
        stream.start_epoch(0);
        assert!(matches!(stream.current, Some(PassIter::Dataset(_))));
        // A CPU scope stages nothing; a data-parallel order never does.
        let _scope = ferroflow_tensor_core::device_scope(Device::Cpu);
        assert_eq!(Order::new(3, None).device, None);
        assert_eq!(staged.unstaged().device, None);
    }

    #[test]
    fn steps_per_epoch_continues_a_dataset_of_unknown_length_across_epochs() {
        let x = Tensor::from_vec((0..100).map(|i| i as f32).collect(), &[100, 1]).unwrap();
        let y = x.clone();
        // 100 batches of one row; the filter makes the cardinality unknown.
        let ds = Dataset::from_tensor_slices((&x, &y))
            .unwrap()
            .batch(1)
            .filter(|_| Ok(true));
        assert_eq!(ds.cardinality(), Cardinality::Unknown);
        let source = Source::Dataset(ds);
        let order = Order {
            batch_size: 1,
            shuffle_seed: None,
            device: None,
            dataset_base: 0,
        };
        // 10 epochs of 10 steps see each of the 100 batches once, in order.
        let seen: Vec<f32> = read(&source, order, Some(10), 0, 10)
            .into_iter()
            .map(|b| b[0][0])
            .collect();
        assert_eq!(seen, (0..100).map(|i| i as f32).collect::<Vec<_>>());
        // The epoch that reaches the end stops there (30, 30, 30, then 10); the next one
        // starts a new pass from the first batch.
        let more = read(&source, order, Some(30), 0, 5);
        assert_eq!(more.len(), 130);
        assert_eq!(more[99][0], [99.0]);
        assert_eq!(more[100][0], [0.0]);
        // An epoch that finds the pass used up at its first batch starts the next pass.
        let exact = read(&source, order, Some(50), 0, 3);
        assert_eq!(exact.len(), 150);
        assert_eq!(exact[100][0], [0.0]);
    }
}
