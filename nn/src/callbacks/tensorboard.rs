//! [`TensorBoard`]: training curves and the train step's graph as TensorBoard event files.

use super::Callback;
use crate::model::{Logs, Model};
use ferroflow_graph::export::SummaryWriter;
use ferroflow_tensor_core::{Error, Result};
use std::path::{Path, PathBuf};

/// How often [`TensorBoard`] writes training values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateFreq {
    /// Once per epoch (`epoch_loss`, ...).
    Epoch,
    /// Also every this many batches (`batch_loss`, ...).
    Batches(usize),
}

/// `keras.callbacks.TensorBoard`: writes the logged values to `log_dir/train` and
/// `log_dir/validation` as Keras names them (`epoch_loss`, `epoch_accuracy`,
/// `epoch_learning_rate`; `batch_loss` with `UpdateFreq::Batches`), evaluation results as
/// `evaluation_loss_vs_iterations`, and the traced train step's graph. View with
/// `tensorboard --logdir LOG_DIR`.
#[derive(Debug)]
pub struct TensorBoard {
    log_dir: PathBuf,
    update_freq: UpdateFreq,
    write_graph: bool,
    train: Option<SummaryWriter>,
    validation: Option<SummaryWriter>,
    global_batch: i64,
    graph_written: bool,
}

impl TensorBoard {
    /// Logs under `log_dir`, per epoch, with the graph.
    pub fn new(log_dir: impl Into<PathBuf>) -> Self {
        TensorBoard {
            log_dir: log_dir.into(),
            update_freq: UpdateFreq::Epoch,
            write_graph: true,
            train: None,
            validation: None,
            global_batch: 0,
            graph_written: false,
        }
    }

    /// Per epoch (default) or also every `n` batches.
    pub fn update_freq(mut self, freq: UpdateFreq) -> Self {
        self.update_freq = freq;
        self
    }

    /// Whether to write the train step's graph (true).
    pub fn write_graph(mut self, write: bool) -> Self {
        self.write_graph = write;
        self
    }

    /// The directory of the training curves.
    pub fn train_dir(&self) -> PathBuf {
        self.log_dir.join("train")
    }

    /// The directory of the validation curves.
    pub fn validation_dir(&self) -> PathBuf {
        self.log_dir.join("validation")
    }

    fn writer<'w>(slot: &'w mut Option<SummaryWriter>, dir: &Path) -> Result<&'w mut SummaryWriter> {
        if slot.is_none() {
            *slot = Some(SummaryWriter::create(dir).map_err(|e| io(dir, e))?);
        }
        slot.as_mut().ok_or_else(|| Error::invalid("TensorBoard", "no writer"))
    }
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::invalid("TensorBoard", format!("{}: {e}", path.display()))
}

impl Callback for TensorBoard {
    fn chief_only(&self) -> bool {
        true
    }

    fn on_train_batch_end(&mut self, model: &Model, _: usize, logs: &Logs) -> Result<()> {
        self.global_batch += 1;
        let dir = self.train_dir();
        if self.write_graph && !self.graph_written {
            self.graph_written = true;
            if let Some(cf) = model.train_step_graph()? {
                let w = Self::writer(&mut self.train, &dir)?;
                w.graph(&cf).map_err(|e| io(&dir, e))?;
            }
        }
        if let UpdateFreq::Batches(n) = self.update_freq {
            if n > 0 && self.global_batch % n as i64 == 0 {
                let w = Self::writer(&mut self.train, &dir)?;
                for (k, v) in logs.iter() {
                    w.scalar(&format!("batch_{k}"), v as f32, self.global_batch)
                        .map_err(|e| io(&dir, e))?;
                }
            }
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, model: &Model, epoch: usize, logs: &mut Logs) -> Result<()> {
        let step = epoch as i64;
        let train_dir = self.train_dir();
        let w = Self::writer(&mut self.train, &train_dir)?;
        for (k, v) in logs.iter().filter(|(k, _)| !k.starts_with("val_")) {
            w.scalar(&format!("epoch_{k}"), v as f32, step)
                .map_err(|e| io(&train_dir, e))?;
        }
        if logs.get("learning_rate").is_none() {
            if let Some(opt) = model.optimizer() {
                w.scalar("epoch_learning_rate", opt.learning_rate()? as f32, step)
                    .map_err(|e| io(&train_dir, e))?;
            }
        }
        w.flush().map_err(|e| io(&train_dir, e))?;
        if logs.keys().any(|k| k.starts_with("val_")) {
            let val_dir = self.validation_dir();
            let w = Self::writer(&mut self.validation, &val_dir)?;
            for (k, v) in logs.iter() {
                if let Some(name) = k.strip_prefix("val_") {
                    w.scalar(&format!("epoch_{name}"), v as f32, step)
                        .map_err(|e| io(&val_dir, e))?;
                }
            }
            w.flush().map_err(|e| io(&val_dir, e))?;
        }
        Ok(())
    }

    fn on_test_end(&mut self, model: &Model, logs: &Logs) -> Result<()> {
        let step = model.optimizer().map(|o| o.iterations()).transpose()?.unwrap_or(0);
        let dir = self.validation_dir();
        let w = Self::writer(&mut self.validation, &dir)?;
        for (k, v) in logs.iter() {
            w.scalar(&format!("evaluation_{k}_vs_iterations"), v as f32, step)
                .map_err(|e| io(&dir, e))?;
        }
        Ok(())
    }

    fn on_train_end(&mut self, _: &Model, _: &Logs) -> Result<()> {
        for (w, dir) in [
            (&mut self.train, self.log_dir.join("train")),
            (&mut self.validation, self.log_dir.join("validation")),
        ] {
            if let Some(w) = w.as_mut() {
                w.flush().map_err(|e| io(&dir, e))?;
            }
        }
        Ok(())
    }

    fn wants_batch_logs(&self) -> bool {
        self.write_graph && !self.graph_written || matches!(self.update_freq, UpdateFreq::Batches(_))
    }
}
