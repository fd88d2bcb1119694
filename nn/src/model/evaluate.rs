//! `evaluate` and `predict`, and their single-batch forms.

use super::fit::{batch_len, next_group, LogMaker, LossTracker};
use super::inputs::{BatchStream, Inputs, Order, Source};
use super::logs::{FitParams, Logs};
use super::replica::{agree, any, global_results, local_part, worker_failed};
use super::Model;
use crate::callbacks::{Callback, CallbackList, ProgbarLogger, Verbose};
use ferroflow_tensor_core::{Error, Result, Tensor};

/// `evaluate` and `predict` take the same options; one definition serves both.
macro_rules! loop_options {
    ($(#[$doc:meta])* $name:ident, $hooks:literal) => {
        $(#[$doc])*
        pub struct $name<'a> {
            pub(crate) batch_size: usize,
            pub(crate) steps: Option<usize>,
            pub(crate) callbacks: Vec<Box<dyn Callback + 'a>>,
            pub(crate) verbose: Verbose,
        }

        impl Default for $name<'_> {
            fn default() -> Self {
                $name {
                    batch_size: 32,
                    steps: None,
                    callbacks: Vec::new(),
                    verbose: Verbose::Silent,
                }
            }
        }

        impl std::fmt::Debug for $name<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("batch_size", &self.batch_size)
                    .field("steps", &self.steps)
                    .field("verbose", &self.verbose)
                    .finish_non_exhaustive()
            }
        }

        impl<'a> $name<'a> {
            /// Batches of 32, all of them, silent (`Default` is the same).
            pub fn new() -> Self {
                Self::default()
            }

            /// Samples per batch for tensor inputs.
            pub fn batch_size(mut self, n: usize) -> Self {
                self.batch_size = n;
                self
            }

            /// At most this many batches (at least 1; required for a dataset that repeats
            /// forever).
            pub fn steps(mut self, n: usize) -> Self {
                self.steps = Some(n);
                self
            }

            #[doc = concat!("Adds a callback (its `", $hooks, "` hooks run).")]
            pub fn with_callback(mut self, callback: impl Callback + 'a) -> Self {
                self.callbacks.push(Box::new(callback));
                self
            }

            /// Progress output: silent by default (Keras prints a bar unless told not to).
            pub fn verbose(mut self, verbose: impl Into<Verbose>) -> Self {
                self.verbose = verbose.into();
                self
            }
        }
    };
}

loop_options!(
    /// `evaluate`'s arguments: batch size (32), a step limit, callbacks and verbosity.
    EvaluateOptions,
    "on_test_*"
);

loop_options!(
    /// `predict`'s arguments: batch size (32), a step limit, callbacks and verbosity.
    PredictOptions,
    "on_predict_*"
);

fn with_progress<'a>(
    mut items: Vec<Box<dyn Callback + 'a>>,
    verbose: Verbose,
    steps: Option<usize>,
) -> CallbackList<'a> {
    let v = verbose.resolve();
    if v > 0 && !items.iter().any(|c| c.is_progress()) {
        items.push(Box::new(ProgbarLogger::new(v)));
    }
    let mut list = CallbackList::new(items);
    list.set_params(&FitParams {
        epochs: 1,
        steps,
        verbose: v,
    });
    list
}

impl Model {
    /// Loss and metrics over the data (`model.evaluate(..., return_dict=True)`), in batches,
    /// without shuffling. The model must be compiled.
    pub fn evaluate(&self, data: impl Into<Inputs>, options: EvaluateOptions<'_>) -> Result<Logs> {
        self.steps("evaluate")?;
        if options.batch_size == 0 {
            return Err(Error::invalid("evaluate", "batch_size must be at least 1"));
        }
        if options.steps == Some(0) {
            return Err(Error::invalid("evaluate", "steps must be at least 1"));
        }
        let source = Source::new(data.into(), "evaluate")?;
        if source.is_infinite() && options.steps.is_none() {
            return Err(Error::invalid(
                "evaluate",
                "the dataset repeats forever (infinite cardinality): pass steps so that evaluation ends",
            ));
        }
        if !source.has_targets() {
            return Err(Error::invalid(
                "evaluate",
                "evaluate needs targets: pass (x, y) or a dataset of (x, y) batches",
            ));
        }
        let steps = options.steps.or_else(|| source.batches_per_pass(options.batch_size));
        let mut callbacks = with_progress(options.callbacks, options.verbose, steps);
        self.run_evaluation(&source, options.batch_size, options.steps, &mut callbacks)
    }

    /// The evaluation loop (also `fit`'s validation, with fit's callbacks).
    pub(crate) fn run_evaluation(
        &self,
        source: &Source,
        batch_size: usize,
        max_steps: Option<usize>,
        callbacks: &mut CallbackList<'_>,
    ) -> Result<Logs> {
        let steps = self.steps("evaluate")?;
        steps.core.reset_metrics()?;
        callbacks.on_test_begin(self, &Logs::new())?;
        // Inside a data-parallel fit, validation is data-parallel too.
        let strategy = self.distribute_strategy();
        let order = Order::new(batch_size, None);
        let order = if strategy.is_some() { order.unstaged() } else { order };
        let mut stream = BatchStream::new(source, order, None);
        stream.start_epoch(0);
        let comm = strategy.as_ref().map(|s| s.communicator().as_ref());
        let wants = match comm {
            Some(comm) => any(comm, callbacks.wants_batch_logs())?,
            None => callbacks.wants_batch_logs(),
        };
        let mut tracker = LossTracker::default();
        let mut maker = LogMaker::new();
        let mut logs = Logs::new();
        let mut done = 0usize;
        let mut results: Vec<Tensor> = Vec::new();
        let mut group = Vec::with_capacity(steps.steps_per_execution);
        loop {
            let left = max_steps.map(|s| s.saturating_sub(done));
            if left == Some(0) {
                break;
            }
            let fetched = next_group(&mut stream, steps.steps_per_execution, left, &mut group);
            if let (Some(comm), Some(s)) = (comm, &strategy) {
                let failed = fetched.is_err();
                let a = agree(comm, false, group.len(), failed)?;
                if let Some(rank) = a.failed {
                    return Err(fetched.err().unwrap_or_else(|| worker_failed("evaluate", rank)));
                }
                group.truncate(a.batches);
                if a.batches == 0 {
                    break;
                }
                for b in group.iter_mut() {
                    *b = local_part(s, std::mem::take(b))?.0;
                }
            } else {
                fetched?;
            }
            if group.is_empty() {
                break;
            }
            if done == 0 {
                self.ensure_built(&group[0][0])?;
            }
            if wants {
                callbacks.on_test_batch_begin(self, done, &Logs::new())?;
            }
            let mut out = steps.test(&group)?;
            for (loss, b) in out.iter().zip(&group) {
                tracker.add(loss, batch_len(b))?;
            }
            results = out.split_off(group.len());
            done += group.len();
            if wants {
                let (loss, results) = match comm {
                    Some(comm) => global_results(comm, &steps.core, &tracker)?,
                    None => (tracker.result(), results.clone()),
                };
                maker.fill(self, loss, &results, &mut logs)?;
                callbacks.on_test_batch_end(self, done - 1, &logs)?;
            }
        }
        if done == 0 {
            return Err(Error::invalid("evaluate", "the data yielded no batches"));
        }
        let (loss, results) = match comm {
            Some(comm) => global_results(comm, &steps.core, &tracker)?,
            None => (tracker.result(), results),
        };
        maker.fill(self, loss, &results, &mut logs)?;
        callbacks.on_test_end(self, &logs)?;
        Ok(logs)
    }

    /// One evaluation step on one batch (`test_on_batch`), metrics started over.
    pub fn test_on_batch(&self, x: &Tensor, y: &Tensor, sample_weight: Option<&Tensor>) -> Result<Logs> {
        self.on_batch("test_on_batch", x, y, sample_weight, false)
    }

    /// The model's outputs for `x` (tensors or a dataset whose first component is the
    /// input), computed in batches and concatenated (`model.predict`). Runs traced when the
    /// model is compiled to, eagerly otherwise.
    pub fn predict(&self, x: impl Into<Inputs>, options: PredictOptions<'_>) -> Result<Tensor> {
        if options.batch_size == 0 {
            return Err(Error::invalid("predict", "batch_size must be at least 1"));
        }
        if options.steps == Some(0) {
            return Err(Error::invalid("predict", "steps must be at least 1"));
        }
        let source = Source::new(x.into(), "predict")?;
        if source.is_infinite() && options.steps.is_none() {
            return Err(Error::invalid(
                "predict",
                "the dataset repeats forever (infinite cardinality): pass steps so that prediction ends",
            ));
        }
        let steps = options.steps.or_else(|| source.batches_per_pass(options.batch_size));
        let mut callbacks = with_progress(options.callbacks, options.verbose, steps);
        callbacks.on_predict_begin(self, &Logs::new())?;
        let order = Order::new(options.batch_size, None);
        let mut stream = BatchStream::new(&source, order, None);
        stream.start_epoch(0);
        let mut outputs = Vec::new();
        while options.steps.is_none_or(|s| outputs.len() < s) {
            let Some(batch) = stream.next_batch() else { break };
            let batch = batch?;
            let x = batch
                .first()
                .ok_or_else(|| Error::invalid("predict", "an element without components"))?;
            callbacks.on_predict_batch_begin(self, outputs.len(), &Logs::new())?;
            outputs.push(self.predict_on_batch(x)?);
            callbacks.on_predict_batch_end(self, outputs.len() - 1, &Logs::new())?;
        }
        callbacks.on_predict_end(self, &Logs::new())?;
        if outputs.is_empty() {
            return Err(Error::invalid("predict", "the data yielded no batches"));
        }
        let refs: Vec<&Tensor> = outputs.iter().collect();
        if refs.len() == 1 {
            return Ok(outputs.remove(0));
        }
        Tensor::concat(&refs, 0)
    }

    /// The model's output for one batch (`predict_on_batch`).
    pub fn predict_on_batch(&self, x: &Tensor) -> Result<Tensor> {
        match &self.steps {
            Some(steps) => {
                self.ensure_built(x)?;
                steps.predict(x)
            }
            None => self.call(x, crate::Mode::Inference),
        }
    }
}
