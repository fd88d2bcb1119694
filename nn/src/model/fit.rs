//! `fit`: Keras' training loop — epochs of batches through the compiled train step, running
//! loss and metrics, validation, callbacks and the history.

use super::inputs::{Batch, BatchStream, ClassWeight, Inputs, Order, Source};
use super::logs::{FitParams, History, Logs};
use super::replica::{agree, any, global_results, local_part, sync_start, worker_failed};
use super::Model;
use crate::callbacks::{Callback, CallbackList, ProgbarLogger, Verbose};
use ferroflow_distribute::{Communicator, MultiWorkerMirroredStrategy};
use ferroflow_tensor_core::{Error, Result, Tensor};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// Where `fit`'s validation data comes from.
#[derive(Debug, Clone, Default)]
pub enum Validation {
    /// No validation.
    #[default]
    None,
    /// The last fraction of the training tensors, set aside before shuffling
    /// (`validation_split`).
    Split(f64),
    /// Separate data (`validation_data`).
    Data(Inputs),
}

/// `fit`'s arguments, with Keras' defaults: 1 epoch, batches of 32, shuffled every epoch,
/// verbosity `auto` (a progress bar on a terminal, one line per epoch otherwise).
///
/// ```
/// use ferroflow_nn::callbacks::EarlyStopping;
/// use ferroflow_nn::FitOptions;
/// let mut stop = EarlyStopping::new().monitor("val_loss").patience(3);
/// let options = FitOptions::new()
///     .epochs(50)
///     .batch_size(64)
///     .validation_split(0.2)
///     .with_callback(&mut stop)
///     .verbose(2);
/// # drop(options);
/// ```
pub struct FitOptions<'a> {
    pub(crate) epochs: usize,
    pub(crate) batch_size: Option<usize>,
    pub(crate) shuffle: bool,
    pub(crate) seed: Option<u64>,
    pub(crate) validation: Validation,
    pub(crate) validation_freq: Vec<usize>,
    pub(crate) validation_every: usize,
    pub(crate) validation_batch_size: Option<usize>,
    pub(crate) validation_steps: Option<usize>,
    pub(crate) initial_epoch: usize,
    pub(crate) steps_per_epoch: Option<usize>,
    pub(crate) class_weight: Option<ClassWeight>,
    pub(crate) sample_weight: Option<Tensor>,
    pub(crate) callbacks: Vec<Box<dyn Callback + 'a>>,
    pub(crate) verbose: Verbose,
    pub(crate) strategy: Option<MultiWorkerMirroredStrategy>,
}

impl Default for FitOptions<'_> {
    fn default() -> Self {
        FitOptions::new()
    }
}

impl std::fmt::Debug for FitOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FitOptions")
            .field("epochs", &self.epochs)
            .field("batch_size", &self.batch_size)
            .field("shuffle", &self.shuffle)
            .field("seed", &self.seed)
            .field("validation", &self.validation)
            .field("initial_epoch", &self.initial_epoch)
            .field("steps_per_epoch", &self.steps_per_epoch)
            .field("callbacks", &self.callbacks.len())
            .field("verbose", &self.verbose)
            .field("strategy", &self.strategy)
            .finish_non_exhaustive()
    }
}

impl<'a> FitOptions<'a> {
    /// Keras' defaults.
    pub fn new() -> Self {
        FitOptions {
            epochs: 1,
            batch_size: None,
            shuffle: true,
            seed: None,
            validation: Validation::None,
            validation_freq: Vec::new(),
            validation_every: 1,
            validation_batch_size: None,
            validation_steps: None,
            initial_epoch: 0,
            steps_per_epoch: None,
            class_weight: None,
            sample_weight: None,
            callbacks: Vec::new(),
            verbose: Verbose::Auto,
            strategy: None,
        }
    }

    /// Trains until this epoch (counting from 0, so with `initial_epoch(0)` this many epochs).
    pub fn epochs(mut self, epochs: usize) -> Self {
        self.epochs = epochs;
        self
    }

    /// Samples per batch for tensor inputs (32 by default; with only `steps_per_epoch`
    /// given, enough for that many batches). Datasets come batched.
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = Some(batch_size);
        self
    }

    /// Whether tensor inputs are reshuffled every epoch (true by default).
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// The seed of the shuffles: each pass over the data (an epoch, unless
    /// `steps_per_epoch` splits passes) uses an order drawn from the seed and the pass
    /// number, so the same seed repeats a run exactly. Unset, a seed is drawn from the global random seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Sets aside the last `fraction` of the tensors (before shuffling) for validation.
    pub fn validation_split(mut self, fraction: f64) -> Self {
        self.validation = Validation::Split(fraction);
        self
    }

    /// Validates on this data at the end of epochs (overrides `validation_split`).
    pub fn validation_data(mut self, data: impl Into<Inputs>) -> Self {
        self.validation = Validation::Data(data.into());
        self
    }

    /// Validates every `n`-th epoch (1 by default; 0 is an error in `fit`).
    pub fn validation_freq(mut self, n: usize) -> Self {
        self.validation_every = n;
        self.validation_freq.clear();
        self
    }

    /// Validates after exactly these epochs (1-based, as Keras' list form).
    pub fn validation_epochs(mut self, epochs: impl IntoIterator<Item = usize>) -> Self {
        self.validation_freq = epochs.into_iter().collect();
        self
    }

    /// Batch size of the validation data (the training one by default; 0 is an error in
    /// `fit`).
    pub fn validation_batch_size(mut self, n: usize) -> Self {
        self.validation_batch_size = Some(n);
        self
    }

    /// At most this many validation batches (required for validation data that repeats
    /// forever).
    pub fn validation_steps(mut self, n: usize) -> Self {
        self.validation_steps = Some(n);
        self
    }

    /// The epoch to start from (resuming a run).
    pub fn initial_epoch(mut self, epoch: usize) -> Self {
        self.initial_epoch = epoch;
        self
    }

    /// Batches per epoch, as Keras' epoch iterator counts them: the data continues across
    /// epochs when an epoch is shorter than a pass, and an epoch that reaches the end of the
    /// data stops there, short (with a warning), the next one starting a new pass. Required
    /// for a dataset that repeats forever.
    pub fn steps_per_epoch(mut self, steps: usize) -> Self {
        self.steps_per_epoch = Some(steps);
        self
    }

    /// Weighs each sample's loss by its class (`class_weight`; unlisted classes weigh 1).
    pub fn class_weight(mut self, weights: impl IntoIterator<Item = (i64, f64)>) -> Self {
        self.class_weight = Some(weights.into_iter().collect());
        self
    }

    /// Weighs each sample's loss (`sample_weight`, one weight per sample of `x`).
    pub fn sample_weight(mut self, weights: &Tensor) -> Self {
        self.sample_weight = Some(weights.clone());
        self
    }

    /// Adds a callback: owned, or `&mut` to read its state after `fit`.
    pub fn with_callback(mut self, callback: impl Callback + 'a) -> Self {
        self.callbacks.push(Box::new(callback));
        self
    }

    /// 0: silent; 1: a progress bar per epoch; 2: one line per epoch; `Verbose::Auto` (the
    /// default): 1 on a terminal, 2 otherwise.
    pub fn verbose(mut self, verbose: impl Into<Verbose>) -> Self {
        self.verbose = verbose.into();
        self
    }

    /// Trains data-parallel with `strategy` (TensorFlow's `MultiWorkerMirroredStrategy`):
    /// every worker runs the same `fit`; rank 0's weights and optimizer state are broadcast
    /// first, each worker trains on its share of every global batch of `batch_size` rows
    /// (the same shuffled order everywhere) with gradients averaged across workers, losses
    /// and metrics are reduced so every worker logs the global values, and progress,
    /// TensorBoard, ModelCheckpoint and CSVLogger act on rank 0 only. A worker whose step
    /// fails makes every worker stop with an error (or, where that cannot be agreed, ends
    /// the job) instead of leaving the others waiting.
    pub fn strategy(mut self, strategy: &MultiWorkerMirroredStrategy) -> Self {
        self.strategy = Some(strategy.clone());
        self
    }

    fn validates(&self, epoch: usize) -> bool {
        if self.validation_freq.is_empty() {
            self.validation_every > 0 && (epoch + 1).is_multiple_of(self.validation_every)
        } else {
            self.validation_freq.contains(&(epoch + 1))
        }
    }
}

/// Where a data-parallel `fit` is, for what an error there means to the other workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Before the first collective: the others wait in it for this worker.
    Setup,
    /// Between collectives: an error here was not told to the others.
    Running,
    /// Every worker returns the error (or has nothing more to wait for).
    Agreed,
}

/// Records each epoch's logs, after the user's callbacks (which may add to them).
struct HistoryRecorder(Rc<RefCell<History>>);

impl Callback for HistoryRecorder {
    fn set_params(&mut self, params: &FitParams) {
        self.0.borrow_mut().params = *params;
    }
    fn on_epoch_end(&mut self, _: &Model, epoch: usize, logs: &mut Logs) -> Result<()> {
        self.0.borrow_mut().record(epoch, logs);
        Ok(())
    }
    fn wants_batch_logs(&self) -> bool {
        false
    }
}

/// The running loss of an epoch: batch losses weighted by batch size, as Keras' tracker.
#[derive(Default)]
pub(crate) struct LossTracker {
    pub total: f64,
    pub count: f64,
}

impl LossTracker {
    pub fn add(&mut self, loss: &Tensor, batch_size: usize) -> Result<()> {
        if batch_size == 0 {
            // A worker's empty share of a small global batch: it weighs nothing (its loss, a
            // mean over no rows, is not computed).
            return Ok(());
        }
        let v = scalar_value(loss)?;
        self.total += v * batch_size as f64;
        self.count += batch_size as f64;
        Ok(())
    }

    /// Adds a worker's share of a global batch's mean loss (a loss divided by the global
    /// batch's `global_rows`, computed on `rows` of them): reduced over workers, the tracker
    /// holds the global batch's mean.
    pub fn add_share(&mut self, loss: &Tensor, global_rows: usize, rows: usize) -> Result<()> {
        self.total += scalar_value(loss)? * global_rows as f64;
        self.count += rows as f64;
        Ok(())
    }

    pub fn result(&self) -> f64 {
        if self.count == 0.0 {
            0.0
        } else {
            self.total / self.count
        }
    }
}

/// A float scalar's value, read without an op (a cast would cost a dispatch per step).
pub(crate) fn scalar_value(t: &Tensor) -> Result<f64> {
    match t.dtype() {
        ferroflow_tensor_core::DType::F32 => Ok(t.to_scalar::<f32>()? as f64),
        ferroflow_tensor_core::DType::F64 => t.to_scalar::<f64>(),
        _ => t.cast(ferroflow_tensor_core::DType::F64)?.to_scalar::<f64>(),
    }
}

/// Turns a step's outputs (`k` losses, then metric results) into logs.
pub(crate) struct LogMaker {
    names: Vec<String>,
    order: Vec<usize>,
    sorted: Vec<String>,
}

impl LogMaker {
    pub fn new() -> Self {
        LogMaker {
            names: Vec::new(),
            order: Vec::new(),
            sorted: Vec::new(),
        }
    }

    /// Writes `loss` and the metric results into `logs` (sorted keys).
    pub fn fill(&mut self, model: &Model, loss: f64, results: &[Tensor], logs: &mut Logs) -> Result<()> {
        if self.names.len() != results.len() + 1 {
            let steps = model.steps("fit")?;
            self.names = std::iter::once("loss".to_string())
                .chain(steps.core.metric_names())
                .collect();
            let mut order: Vec<usize> = (0..self.names.len()).collect();
            order.sort_by(|&a, &b| self.names[a].cmp(&self.names[b]));
            self.sorted = order.iter().map(|&i| self.names[i].clone()).collect();
            self.order = order;
        }
        let mut values = Vec::with_capacity(self.names.len());
        values.push(loss);
        for r in results {
            values.push(scalar_value(r)?);
        }
        let sorted: Vec<f64> = self.order.iter().map(|&i| values[i]).collect();
        logs.set_sorted(&self.sorted, &sorted);
        Ok(())
    }
}

/// Refills `group` with up to `n` batches of one epoch from the stream (fewer at the epoch's
/// end). The vector is reused from step to step.
pub(crate) fn next_group(
    stream: &mut BatchStream<'_>,
    n: usize,
    steps_left: Option<usize>,
    group: &mut Vec<Batch>,
) -> Result<()> {
    group.clear();
    let want = steps_left.map_or(n, |s| s.min(n));
    while group.len() < want {
        match stream.next_batch() {
            Some(b) => group.push(b?),
            None => break,
        }
    }
    Ok(())
}

/// The batch size of a batch (its first dimension).
pub(crate) fn batch_len(batch: &Batch) -> usize {
    batch.first().and_then(|x| x.dims().first().copied()).unwrap_or(0)
}

impl Model {
    /// Trains the model (`model.fit`): `fit((&x, &y), options)` or `fit(&dataset, options)`.
    /// Returns the [`History`]. The model must be compiled.
    ///
    /// Errors (before any training): a model that is not compiled, `x` and `y` of different
    /// lengths, no data, bad options. A loss that does not fit the model's output fails at
    /// the first step, before any variable changes.
    pub fn fit(&self, data: impl Into<Inputs>, options: FitOptions<'_>) -> Result<History> {
        let steps = match self.steps("fit") {
            Ok(steps) => steps,
            Err(e) => {
                // Not compiled on this worker: the others wait in the first agreement.
                if let Some(s) = options.strategy.as_ref().filter(|s| s.num_workers() > 1) {
                    let _ = agree(s.communicator().as_ref(), false, usize::MAX, true);
                }
                return Err(e);
            }
        };
        let strategy = options.strategy.clone();
        steps.core.set_strategy(strategy.clone());
        *self.strategy.borrow_mut() = strategy.clone();
        let stage = Cell::new(Stage::Setup);
        let result = self.fit_loop(data.into(), options, &stage);
        *self.strategy.borrow_mut() = None;
        steps.core.set_strategy(None);
        let Some(s) = strategy.as_ref().filter(|s| s.num_workers() > 1) else {
            return result;
        };
        let comm = s.communicator();
        match (result, stage.get()) {
            // Failed before the first collective: join it (the others are waiting there) and
            // say so, so every worker stops with an error.
            (Err(e), Stage::Setup) => {
                let _ = agree(comm.as_ref(), false, usize::MAX, true);
                Err(e)
            }
            // Failed where the others cannot be told in order: end the job.
            (Err(e), Stage::Running) => {
                eprintln!(
                    "fit: worker {} of {} failed: {e}; ending the job so no worker waits for it",
                    comm.rank(),
                    comm.size()
                );
                comm.abort(1)
            }
            (result, _) => result,
        }
    }

    fn fit_loop(&self, data: Inputs, mut options: FitOptions<'_>, stage: &Cell<Stage>) -> Result<History> {
        let steps = self.steps("fit")?;
        if options.batch_size == Some(0) {
            return Err(Error::invalid("fit", "batch_size must be at least 1"));
        }
        if options.steps_per_epoch == Some(0) {
            return Err(Error::invalid("fit", "steps_per_epoch must be at least 1"));
        }
        // Checked here, not at the first validation: that would fail (or, for a batch size
        // of 0, divide by zero) only after an epoch of training.
        if options.validation_batch_size == Some(0) {
            return Err(Error::invalid("fit", "validation_batch_size must be at least 1"));
        }
        if options.validation_steps == Some(0) {
            return Err(Error::invalid("fit", "validation_steps must be at least 1"));
        }
        if options.validation_freq.is_empty() && options.validation_every == 0 {
            return Err(Error::invalid(
                "fit",
                "validation_freq must be at least 1 (validate every n-th epoch), got 0",
            ));
        }
        let mut source = Source::new(data, "fit")?;
        if !source.has_targets() {
            return Err(Error::invalid(
                "fit",
                "fit needs targets: pass (x, y) or a dataset of (x, y) batches",
            ));
        }
        if let Some(w) = options.sample_weight.take() {
            source = match source {
                Source::Tensors { mut parts, .. } if parts.len() == 2 => {
                    parts.push(w);
                    let x = parts.remove(0);
                    let y = parts.remove(0);
                    let w = parts.remove(0);
                    Source::new((&x, &y, &w).into(), "fit")?
                }
                _ => {
                    return Err(Error::invalid(
                        "fit",
                        "sample_weight applies to (x, y) tensors without sample weights; a dataset carries them in its elements",
                    ))
                }
            };
        }
        let validation = std::mem::take(&mut options.validation);
        let (train, val) = match validation {
            Validation::None => (source, None),
            Validation::Split(f) => {
                if !(0.0..1.0).contains(&f) {
                    return Err(Error::invalid(
                        "fit",
                        format!("validation_split must be in [0, 1), got {f}"),
                    ));
                }
                if f == 0.0 {
                    (source, None)
                } else {
                    let (t, v) = source.split_validation(f)?;
                    (t, Some(v))
                }
            }
            Validation::Data(d) => (source, Some(Source::new(d, "fit")?)),
        };
        let train = match &options.class_weight {
            Some(cw) => {
                if train.has_sample_weights() {
                    return Err(Error::invalid(
                        "fit",
                        "class_weight and sample_weight cannot be combined",
                    ));
                }
                train.with_class_weight(cw)?
            }
            None => train,
        };
        if let Source::Tensors { rows: 0, .. } = train {
            return Err(Error::invalid("fit", "the training data has no samples"));
        }
        // An epoch (or a validation) over a dataset that never ends would never end either.
        if train.is_infinite() && options.steps_per_epoch.is_none() {
            return Err(Error::invalid(
                "fit",
                "the training dataset repeats forever (infinite cardinality): pass steps_per_epoch so that epochs end",
            ));
        }
        if val.as_ref().is_some_and(Source::is_infinite) && options.validation_steps.is_none() {
            return Err(Error::invalid(
                "fit",
                "the validation dataset repeats forever (infinite cardinality): pass validation_steps so that validation ends",
            ));
        }
        let batch_size = match (options.batch_size, options.steps_per_epoch, &train) {
            (Some(b), _, _) => b,
            (None, Some(steps), Source::Tensors { rows, .. }) => rows.div_ceil(steps).max(1),
            _ => 32,
        };
        let seed = options.seed.unwrap_or_else(draw_seed);
        self.shuffle_seed.set(Some(seed));
        let order = Order::new(batch_size, options.shuffle.then_some(seed));
        let steps_per_epoch = options.steps_per_epoch.or_else(|| train.batches_per_pass(batch_size));

        let strategy = options.strategy.take();
        let order = if strategy.is_some() { order.unstaged() } else { order };
        let comm: Option<&dyn Communicator> = strategy.as_ref().map(|s| s.communicator().as_ref());

        // Callbacks: the user's, then the history, then the progress bar (Keras' order);
        // the chief alone shows progress.
        let verbose = if self.is_chief() { options.verbose.resolve() } else { 0 };
        let history = Rc::new(RefCell::new(History::default()));
        let mut items = std::mem::take(&mut options.callbacks);
        let has_progress = items.iter().any(|c| c.is_progress());
        items.push(Box::new(HistoryRecorder(history.clone())));
        if verbose > 0 && !has_progress {
            items.push(Box::new(ProgbarLogger::new(verbose)));
        }
        let mut callbacks = CallbackList::new(items);
        callbacks.set_params(&FitParams {
            epochs: options.epochs,
            steps: steps_per_epoch,
            verbose,
        });

        self.stop_training.set(false);
        // Build the model first, so callbacks see its variables (a backup restores into them).
        if !self.is_built() {
            if let Some(x) = train.first_x()? {
                self.ensure_built(&x)?;
            }
        }
        let began = callbacks.on_train_begin(self, &Logs::new());
        let mut first_epoch = self.resume_epoch.take().unwrap_or(options.initial_epoch);
        let mut wants_logs = callbacks.wants_batch_logs();
        if let Some(comm) = comm {
            // The first collective: every worker's set-up (and `on_train_begin`) is agreed on.
            let first = agree(comm, false, usize::MAX, began.is_err());
            stage.set(Stage::Running);
            if let Some(rank) = first?.failed {
                stage.set(Stage::Agreed);
                return Err(began.err().unwrap_or_else(|| worker_failed("fit", rank)));
            }
            let (epoch, seed) = match sync_start(
                comm,
                self,
                &steps.core,
                first_epoch,
                self.shuffle_seed.get().unwrap_or(seed),
            ) {
                Ok(start) => start,
                Err(e) => {
                    // The broadcast's check of the variables fails on every worker alike.
                    if matches!(
                        e,
                        Error::InvalidArgument {
                            op: "broadcast_variables",
                            ..
                        }
                    ) {
                        stage.set(Stage::Agreed);
                    }
                    return Err(e);
                }
            };
            first_epoch = epoch;
            self.shuffle_seed.set(Some(seed));
            // Batch logs are reduced on every worker if any worker's callbacks read them.
            wants_logs = any(comm, wants_logs)?;
        } else {
            began?;
        }
        let order = Order {
            shuffle_seed: order.shuffle_seed.map(|_| self.shuffle_seed.get().unwrap_or(seed)),
            ..order
        };
        let mut stream = BatchStream::new(&train, order, options.steps_per_epoch);
        let mut dataset_base = stream.dataset_base(first_epoch);
        if let Some(comm) = comm {
            // Every worker reads the dataset's passes rank 0 reads.
            let mut bytes = dataset_base.to_le_bytes().to_vec();
            comm.broadcast_bytes(&mut bytes, 0)?;
            dataset_base = u64::from_le_bytes(bytes.try_into().unwrap_or([0; 8]));
        }
        stream.set_dataset_base(dataset_base);
        let mut epoch_logs = Logs::new();
        let mut last_logs = Logs::new();
        let mut maker = LogMaker::new();
        let spe = steps.steps_per_execution;
        let mut group = Vec::with_capacity(spe);
        let mut globals: Vec<usize> = Vec::with_capacity(spe);
        // An error of this worker not yet told to the others (data-parallel only).
        let mut carried: Option<Error> = None;
        for epoch in first_epoch..options.epochs {
            steps.core.reset_metrics()?;
            hand_over(callbacks.on_epoch_begin(self, epoch, &Logs::new()), &mut carried, comm)?;
            stream.start_epoch(epoch);
            let mut tracker = LossTracker::default();
            let mut step = 0usize;
            let mut last_results: Vec<Tensor> = Vec::new();
            loop {
                let left = options.steps_per_epoch.map(|s| s.saturating_sub(step));
                if left == Some(0) {
                    break;
                }
                let fetched = next_group(&mut stream, spe, left, &mut group);
                if let (Some(comm), Some(s)) = (comm, &strategy) {
                    if let Err(e) = fetched {
                        carried.get_or_insert(e);
                    }
                    let a = agree(comm, self.stop_training.get(), group.len(), carried.is_some())?;
                    if let Some(rank) = a.failed {
                        stage.set(Stage::Agreed);
                        return Err(carried.take().unwrap_or_else(|| worker_failed("fit", rank)));
                    }
                    // Every worker runs as many batches as the one with the fewest (workers
                    // reading their own data may hold different numbers).
                    group.truncate(a.batches);
                    let exhausted = a.batches == 0;
                    // A stop asked for before this epoch's first batch takes effect after it,
                    // as on one process (Keras checks after each batch).
                    if exhausted || (a.stop && step > 0) {
                        self.stop_training.set(a.stop);
                        break;
                    }
                    globals.clear();
                    for b in group.iter_mut() {
                        let (part, rows) = local_part(s, std::mem::take(b))?;
                        *b = part;
                        globals.push(rows);
                    }
                } else {
                    fetched?;
                }
                if group.is_empty() {
                    break;
                }
                if step == 0 && epoch == first_epoch {
                    self.ensure_built(&group[0][0])?;
                    steps.core.sync_trainable();
                    self.note_train_batch(&group[0]);
                }
                if wants_logs {
                    hand_over(
                        callbacks.on_train_batch_begin(self, step, &Logs::new()),
                        &mut carried,
                        comm,
                    )?;
                }
                let mut out = steps.train(&group, &globals)?;
                for (i, (loss, b)) in out.iter().zip(&group).enumerate() {
                    match globals.get(i) {
                        // This worker's share of the global mean loss.
                        Some(&global) if global > 0 => tracker.add_share(loss, global, batch_len(b))?,
                        _ => tracker.add(loss, batch_len(b))?,
                    }
                }
                last_results = out.split_off(group.len());
                step += group.len();
                if wants_logs {
                    let (loss, results) = match comm {
                        Some(comm) => global_results(comm, &steps.core, &tracker)?,
                        None => (tracker.result(), std::mem::take(&mut last_results)),
                    };
                    maker.fill(self, loss, &results, &mut epoch_logs)?;
                    last_results = results;
                    hand_over(
                        callbacks.on_train_batch_end(self, step - 1, &epoch_logs),
                        &mut carried,
                        comm,
                    )?;
                }
                if comm.is_none() && self.stop_training.get() {
                    break;
                }
            }
            if step == 0 {
                stage.set(Stage::Agreed);
                return Err(Error::invalid(
                    "fit",
                    "the training data yielded no batches (an empty dataset, or a filter that keeps nothing)",
                ));
            }
            match comm {
                Some(comm) => {
                    let (loss, results) = global_results(comm, &steps.core, &tracker)?;
                    maker.fill(self, loss, &results, &mut epoch_logs)?;
                }
                None => maker.fill(self, tracker.result(), &last_results, &mut epoch_logs)?,
            }
            let mut logs = epoch_logs.clone();
            if let Some(val) = &val {
                if options.validates(epoch) {
                    let vbs = options.validation_batch_size.unwrap_or(batch_size);
                    let val_logs = self.run_evaluation(val, vbs, options.validation_steps, &mut callbacks)?;
                    logs.merge(&val_logs.prefixed("val_"));
                }
            }
            let ended = callbacks.on_epoch_end(self, epoch, &mut logs);
            if let Some(comm) = comm {
                if let Err(e) = ended {
                    carried.get_or_insert(e);
                }
                let a = agree(comm, self.stop_training.get(), usize::MAX, carried.is_some())?;
                if let Some(rank) = a.failed {
                    stage.set(Stage::Agreed);
                    return Err(carried.take().unwrap_or_else(|| worker_failed("fit", rank)));
                }
                self.stop_training.set(a.stop);
            } else {
                ended?;
            }
            last_logs = logs;
            if self.stop_training.get() {
                break;
            }
        }
        stream.claim_passes();
        let ended = callbacks.on_train_end(self, &last_logs);
        if let Some(comm) = comm {
            // Nobody leaves before the chief's last files are complete (a backup deleted, a
            // checkpoint written), and an error there stops every worker.
            let a = agree(comm, false, usize::MAX, ended.is_err())?;
            stage.set(Stage::Agreed);
            if let Some(rank) = a.failed {
                return Err(ended.err().unwrap_or_else(|| worker_failed("fit", rank)));
            }
        }
        stage.set(Stage::Agreed);
        ended?;
        drop(callbacks);
        let history = Rc::try_unwrap(history)
            .map(RefCell::into_inner)
            .unwrap_or_else(|rc| rc.borrow().clone());
        Ok(history)
    }

    /// One training step on one batch (`train_on_batch`): metrics start over, so the logs
    /// are this batch's.
    pub fn train_on_batch(&self, x: &Tensor, y: &Tensor, sample_weight: Option<&Tensor>) -> Result<Logs> {
        self.on_batch("train_on_batch", x, y, sample_weight, true)
    }

    /// One step on one batch, training or not: the `*_on_batch` methods.
    pub(crate) fn on_batch(
        &self,
        op: &'static str,
        x: &Tensor,
        y: &Tensor,
        sample_weight: Option<&Tensor>,
        train: bool,
    ) -> Result<Logs> {
        let steps = self.steps(op)?;
        let inputs = match sample_weight {
            Some(w) => (x, y, w).into(),
            None => (x, y).into(),
        };
        let Source::Tensors { parts: batch, .. } = Source::new(inputs, op)? else {
            return Err(Error::invalid(op, "expected tensors"));
        };
        self.ensure_built(x)?;
        if train {
            steps.core.sync_trainable();
        }
        steps.core.reset_metrics()?;
        let batches = std::slice::from_ref(&batch);
        let mut out = if train {
            steps.train(batches, &[])?
        } else {
            steps.test(batches)?
        };
        let results = out.split_off(1);
        let mut tracker = LossTracker::default();
        tracker.add(&out[0], batch_len(&batch))?;
        let mut logs = Logs::new();
        LogMaker::new().fill(self, tracker.result(), &results, &mut logs)?;
        Ok(logs)
    }
}

/// A callback's error: returned at once on one process; training data-parallel, kept until
/// the next agreement tells every worker.
fn hand_over(result: Result<()>, carried: &mut Option<Error>, comm: Option<&dyn Communicator>) -> Result<()> {
    match (result, comm) {
        (Err(e), Some(_)) => {
            carried.get_or_insert(e);
            Ok(())
        }
        (result, _) => result,
    }
}

/// A shuffle seed from the global random state (so `random::set_seed` makes `fit`
/// reproducible without an explicit seed).
fn draw_seed() -> u64 {
    ferroflow_tensor_core::random::uniform(
        &[2],
        ferroflow_tensor_core::random::Uniform::new(0.0, 4_294_967_296.0).dtype(ferroflow_tensor_core::DType::F64),
    )
    .and_then(|t| t.to_vec::<f64>())
    .map(|v| ((v[0] as u64) << 32) ^ v[1] as u64)
    .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CompileOptions, Dense, EvaluateOptions, LossSpec, PredictOptions, Sequential};
    use ferroflow_data::Dataset;
    use ferroflow_optim::{losses, Sgd};

    /// A linear model `x · w` (no bias) with kernel `[0.5, -0.5]`, compiled with `loss`.
    fn model(loss: impl Into<LossSpec>) -> Model {
        let d = Dense::new(1).with_bias(false).with_input_dim(2).unwrap();
        d.kernel()
            .unwrap()
            .assign(&Tensor::from_vec(vec![0.5f32, -0.5], &[2, 1]).unwrap())
            .unwrap();
        let mut s = Sequential::new();
        s.add(d);
        let mut m = Model::new(s);
        m.compile(CompileOptions::new(Sgd::new(0.1).unwrap(), loss)).unwrap();
        m
    }

    /// A custom loss that returns one already averaged value.
    fn scalar_mse() -> LossSpec {
        LossSpec::function("scalar_mse", losses::mean_squared_error)
    }

    /// 8 rows: x = [i/8, 1], y = 2i/8 + 1.
    fn data() -> (Tensor, Tensor) {
        let x: Vec<f32> = (0..8).flat_map(|i| [i as f32 / 8.0, 1.0]).collect();
        let y: Vec<f32> = (0..8).map(|i| 2.0 * i as f32 / 8.0 + 1.0).collect();
        (
            Tensor::from_vec(x, &[8, 2]).unwrap(),
            Tensor::from_vec(y, &[8, 1]).unwrap(),
        )
    }

    fn kernel(m: &Model) -> Vec<f32> {
        m.get_weights().unwrap()[0].to_vec::<f32>().unwrap()
    }

    fn opts<'a>() -> FitOptions<'a> {
        FitOptions::new().epochs(3).batch_size(4).shuffle(false).verbose(0)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-5 * b.abs().max(1.0)
    }

    #[test]
    fn a_scalar_custom_loss_is_weighted_by_the_mean_weight() {
        let (x, y) = data();
        let ones = Tensor::from_vec(vec![1.0f32; 8], &[8]).unwrap();
        let twos = Tensor::from_vec(vec![2.0f32; 8], &[8]).unwrap();
        let local = MultiWorkerMirroredStrategy::local();
        for parallel in [false, true] {
            let with = |o: FitOptions<'static>| if parallel { o.strategy(&local) } else { o };
            let plain = model(scalar_mse());
            let h0 = plain.fit((&x, &y), with(opts())).unwrap();
            // Weights of 1 change nothing: the same losses, the same trained weights.
            let weighted = model(scalar_mse());
            let h1 = weighted.fit((&x, &y), with(opts().sample_weight(&ones))).unwrap();
            let (l0, l1) = (h0.get("loss").unwrap(), h1.get("loss").unwrap());
            assert!(
                l0.iter().zip(l1).all(|(a, b)| close(*a, *b)),
                "parallel {parallel}: {l0:?} vs {l1:?}"
            );
            let (k0, k1) = (kernel(&plain), kernel(&weighted));
            assert!(
                k0.iter().zip(&k1).all(|(a, b)| (a - b).abs() < 1e-6),
                "{k0:?} vs {k1:?}"
            );
            // The same through class_weight of 1 for every class.
            let classed = model(scalar_mse());
            classed
                .fit((&x, &y), with(opts().class_weight([(1, 1.0), (2, 1.0), (3, 1.0)])))
                .unwrap();
            assert!(kernel(&classed).iter().zip(&k0).all(|(a, b)| (a - b).abs() < 1e-6));
            // Weights of 2 double the loss (one step on the whole data: the logged loss is
            // the one before the update).
            let fresh = model(scalar_mse());
            let one = fresh
                .fit((&x, &y), with(FitOptions::new().batch_size(8).verbose(0)))
                .unwrap();
            let doubled = model(scalar_mse());
            let two = doubled
                .fit(
                    (&x, &y),
                    with(FitOptions::new().batch_size(8).verbose(0).sample_weight(&twos)),
                )
                .unwrap();
            let (a, b) = (one.get("loss").unwrap()[0], two.get("loss").unwrap()[0]);
            assert!(a > 0.1 && close(b, 2.0 * a), "parallel {parallel}: {b} is not 2 × {a}");
        }
        // evaluate weighs the same way.
        let m = model(scalar_mse());
        let e = EvaluateOptions::new().batch_size(4);
        let l = m.evaluate((&x, &y), EvaluateOptions::new().batch_size(4)).unwrap();
        let l2 = m.evaluate((&x, &y, &twos), e).unwrap();
        assert!(close(l2.get("loss").unwrap(), 2.0 * l.get("loss").unwrap()));
    }

    fn fit_error(data: impl Into<Inputs>, options: FitOptions<'_>) -> String {
        let m = model("mse");
        let before = kernel(&m);
        let err = m.fit(data, options).unwrap_err().to_string();
        assert_eq!(kernel(&m), before, "nothing trained before the error: {err}");
        err
    }

    #[test]
    fn zero_validation_batch_size_freq_or_steps_fail_before_training() {
        let (x, y) = data();
        let split = || FitOptions::new().validation_split(0.25).verbose(0);
        let err = fit_error((&x, &y), split().validation_batch_size(0));
        assert!(err.contains("validation_batch_size must be at least 1"), "{err}");
        let err = fit_error((&x, &y), split().validation_freq(0));
        assert!(err.contains("validation_freq must be at least 1"), "{err}");
        let err = fit_error((&x, &y), split().validation_steps(0));
        assert!(err.contains("validation_steps must be at least 1"), "{err}");
        let m = model("mse");
        let err = m.evaluate((&x, &y), EvaluateOptions::new().batch_size(0)).unwrap_err();
        assert!(err.to_string().contains("batch_size must be at least 1"), "{err}");
        let err = m.evaluate((&x, &y), EvaluateOptions::new().steps(0)).unwrap_err();
        assert!(err.to_string().contains("steps must be at least 1"), "{err}");
        let err = m.predict(&x, PredictOptions::new().batch_size(0)).unwrap_err();
        assert!(err.to_string().contains("batch_size must be at least 1"), "{err}");
        let err = m.predict(&x, PredictOptions::new().steps(0)).unwrap_err();
        assert!(err.to_string().contains("steps must be at least 1"), "{err}");
        // A positive validation batch size still validates.
        let h = model("mse").fit((&x, &y), split().validation_batch_size(1)).unwrap();
        assert_eq!(h.get("val_loss").map(<[f64]>::len), Some(1));
    }

    #[test]
    fn infinite_datasets_need_a_step_count() {
        let (x, y) = data();
        let ds = Dataset::from_tensor_slices((&x, &y)).unwrap().batch(4);
        let forever = ds.repeat();
        let err = fit_error(&forever, FitOptions::new().verbose(0));
        assert!(err.contains("steps_per_epoch"), "{err}");
        let err = fit_error(&ds, FitOptions::new().verbose(0).validation_data(&forever));
        assert!(err.contains("validation_steps"), "{err}");
        let m = model("mse");
        let err = m.evaluate(&forever, EvaluateOptions::new()).unwrap_err().to_string();
        assert!(err.contains("pass steps"), "{err}");
        let err = m.predict(&forever, PredictOptions::new()).unwrap_err().to_string();
        assert!(err.contains("pass steps"), "{err}");
        // With the counts given, each ends.
        let h = m
            .fit(
                &forever,
                FitOptions::new()
                    .epochs(2)
                    .steps_per_epoch(3)
                    .validation_data(&forever)
                    .validation_steps(2)
                    .verbose(0),
            )
            .unwrap();
        assert_eq!(h.get("val_loss").map(<[f64]>::len), Some(2));
        assert!(m.evaluate(&forever, EvaluateOptions::new().steps(3)).is_ok());
        assert_eq!(
            m.predict(&forever, PredictOptions::new().steps(3)).unwrap().dims(),
            [12, 1]
        );
    }
}
