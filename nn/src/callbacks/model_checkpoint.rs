//! [`ModelCheckpoint`]: saves the model during training, every epoch or when it improves.

use super::monitor::{Mode, Monitor};
use super::Callback;
use crate::model::{Logs, Model};
use ferroflow_checkpoint::Checkpoint;
use ferroflow_tensor_core::{Error, Result};
use std::path::{Path, PathBuf};

/// Fills a Keras filepath template: `{epoch:02d}`, `{val_loss:.2f}`, `{loss}` (Python format
/// specs `[0][width]d`, `.Nf`, `.Ne`, none). `epoch` is 1-based, as Keras passes it.
///
/// ```
/// use ferroflow_nn::callbacks::ModelCheckpoint;
/// use ferroflow_nn::Logs;
/// let logs = Logs::from_pairs([("val_loss", 0.23456)]);
/// let p = ModelCheckpoint::format_path("ckpt-{epoch:02d}-{val_loss:.2f}.safetensors", 3, None, &logs)?;
/// assert_eq!(p, "ckpt-03-0.23.safetensors");
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
fn format_path(template: &str, epoch: usize, batch: Option<usize>, logs: &Logs) -> Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open].replace("}}", "}"));
        let after = &rest[open + 1..];
        if let Some(stripped) = after.strip_prefix('{') {
            out.push('{');
            rest = stripped;
            continue;
        }
        let close = after
            .find('}')
            .ok_or_else(|| bad_template(template, "an unclosed '{'"))?;
        let field = &after[..close];
        let (name, spec) = field.split_once(':').unwrap_or((field, ""));
        // `epoch` and `batch` are Python ints, logged values Python floats.
        let (value, int) = match name {
            "epoch" => (epoch as f64, true),
            "batch" if batch.is_some() => (batch.unwrap_or(0) as f64, true),
            _ => (
                logs.get(name)
                    .ok_or_else(|| bad_template(template, &format!("no logged value {name:?}")))?,
                false,
            ),
        };
        let text = if spec.is_empty() && !int {
            Some(python_float_repr(value))
        } else {
            format_spec(value, spec)
        };
        out.push_str(&text.ok_or_else(|| bad_template(template, &format!("unsupported format {spec:?}")))?);
        rest = &after[close + 1..];
    }
    out.push_str(&rest.replace("}}", "}"));
    Ok(out)
}

fn bad_template(template: &str, why: &str) -> Error {
    Error::invalid(
        "ModelCheckpoint",
        format!("failed to format the filepath {template:?}: {why}"),
    )
}

/// Python's `repr` of a float, which `"{loss}".format(loss=...)` writes: the shortest
/// digits that read back, `1.0` for a whole number, and exponent form (`1e-05`, `1e+16`)
/// below 1e-4 or from 1e16.
fn python_float_repr(v: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    // Rust's `{:e}` gives the same shortest digits: `d[.ddd]e[-]x`.
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..16).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.unsigned_abs());
    }
    let s = format!("{v}");
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

/// One value under a Python format spec.
fn format_spec(v: f64, spec: &str) -> Option<String> {
    if spec.is_empty() {
        return Some(if v.fract() == 0.0 && v.abs() < 1e15 {
            format!("{}", v as i64)
        } else {
            format!("{v}")
        });
    }
    if let Some(d) = spec.strip_suffix('d') {
        let zero = d.starts_with('0');
        let width: usize = if d.is_empty() {
            0
        } else {
            d.trim_start_matches('0').parse().unwrap_or(0)
        };
        let n = v as i64;
        return Some(if zero {
            format!("{n:0width$}")
        } else {
            format!("{n:width$}")
        });
    }
    let precision = |s: &str| -> Option<usize> { s.strip_prefix('.').unwrap_or(s).parse().ok() };
    if let Some(p) = spec.strip_suffix('f') {
        let p = if p.is_empty() { 6 } else { precision(p)? };
        return Some(format!("{v:.p$}"));
    }
    if let Some(p) = spec.strip_suffix('e') {
        let p = if p.is_empty() { 6 } else { precision(p)? };
        let s = format!("{v:.p$e}");
        let (m, e) = s.split_once('e')?;
        let (sign, digits) = e.strip_prefix('-').map_or(('+', e), |d| ('-', d));
        return Some(format!("{m}e{sign}{digits:0>2}"));
    }
    None
}

/// When [`ModelCheckpoint`] saves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveFreq {
    /// At the end of every epoch.
    Epoch,
    /// Every this many training batches, at least 1. `Batches(0)` fails when training
    /// starts; Keras takes `save_freq=0` to mean every batch, which is `Batches(1)` here.
    Batches(usize),
}

/// `keras.callbacks.ModelCheckpoint`: saves the model to a path template
/// (`ckpt-{epoch:02d}-{val_loss:.2f}.safetensors`) every epoch, or only when `monitor`
/// improves (`save_best_only`). With `save_weights_only` the file holds the model's
/// variables (as `save_weights`); otherwise also the optimizer's, so training can resume.
/// `.safetensors` paths are safetensors files, others TensorFlow checkpoints.
#[derive(Debug, Clone)]
pub struct ModelCheckpoint {
    template: String,
    monitor: Monitor,
    save_best_only: bool,
    save_weights_only: bool,
    save_freq: SaveFreq,
    verbose: bool,
    best: Option<f64>,
    batches: usize,
    /// The epoch in progress (0-based), for batch-frequency saves' `{epoch}`.
    epoch: usize,
    saved: Vec<PathBuf>,
}

impl ModelCheckpoint {
    /// Saves to `filepath` (a template) at every epoch, monitoring `val_loss`.
    pub fn new(filepath: impl Into<String>) -> Self {
        ModelCheckpoint {
            template: filepath.into(),
            monitor: Monitor::new("val_loss", Mode::Auto, 0.0),
            save_best_only: false,
            save_weights_only: false,
            save_freq: SaveFreq::Epoch,
            verbose: false,
            best: None,
            batches: 0,
            epoch: 0,
            saved: Vec::new(),
        }
    }

    /// The template's formatting, public for tests and tools.
    pub fn format_path(template: &str, epoch: usize, batch: Option<usize>, logs: &Logs) -> Result<String> {
        format_path(template, epoch, batch, logs)
    }

    /// The logged value `save_best_only` compares.
    pub fn monitor(mut self, name: &str) -> Self {
        self.monitor = Monitor::new(name, self.monitor.mode, 0.0);
        self
    }

    /// Whether smaller or larger is better.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.monitor.mode = mode;
        self
    }

    /// Saves only when the monitored value improves.
    pub fn save_best_only(mut self, yes: bool) -> Self {
        self.save_best_only = yes;
        self
    }

    /// Saves only the model's variables (not the optimizer's).
    pub fn save_weights_only(mut self, yes: bool) -> Self {
        self.save_weights_only = yes;
        self
    }

    /// Every epoch (default) or every `n` batches.
    pub fn save_freq(mut self, freq: SaveFreq) -> Self {
        self.save_freq = freq;
        self
    }

    /// A value the first save must beat (`initial_value_threshold`).
    pub fn initial_value_threshold(mut self, value: f64) -> Self {
        self.best = Some(value);
        self
    }

    /// Prints each save.
    pub fn verbose(mut self, verbose: bool) -> Self {
        self.verbose = verbose;
        self
    }

    /// The files written so far, in order.
    pub fn saved(&self) -> &[PathBuf] {
        &self.saved
    }

    fn save(&mut self, model: &Model, epoch: usize, batch: Option<usize>, logs: &Logs) -> Result<()> {
        let path = PathBuf::from(format_path(&self.template, epoch + 1, batch, logs)?);
        if self.save_best_only {
            match logs.get(&self.monitor.name) {
                None => eprintln!("Can save best model only with {} available.", self.monitor.name),
                Some(current) => {
                    self.monitor.resolve(model, "ModelCheckpoint")?;
                    if !self.monitor.is_improvement(current, self.best) {
                        if self.verbose {
                            println!(
                                "\nEpoch {}: {} did not improve from {}",
                                epoch + 1,
                                self.monitor.name,
                                self.best.map_or("None".into(), |b| format!("{b:.5}"))
                            );
                        }
                        return Ok(());
                    }
                    if self.verbose {
                        println!(
                            "\nEpoch {}: {} improved from {} to {current:.5}, saving model to {}",
                            epoch + 1,
                            self.monitor.name,
                            self.best.map_or("None".into(), |b| format!("{b:.5}")),
                            path.display()
                        );
                    }
                    self.best = Some(current);
                }
            }
        } else if self.verbose {
            println!("\nEpoch {}: saving model to {}", epoch + 1, path.display());
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::invalid("ModelCheckpoint", format!("{}: {e}", dir.display())))?;
        }
        write_model(model, &path, self.save_weights_only)?;
        self.saved.push(path);
        Ok(())
    }
}

/// Saves the model's variables, and with `!weights_only` the optimizer's too.
pub(crate) fn write_model(model: &Model, path: &Path, weights_only: bool) -> Result<()> {
    if weights_only {
        return model.save_weights(path);
    }
    let mut ck = Checkpoint::new().track("model", model).map_err(Error::from)?;
    if let Some(opt) = model.optimizer() {
        ck = ck.track("optimizer", opt.state()).map_err(Error::from)?;
    }
    ck.write(path).map_err(Error::from)?;
    Ok(())
}

impl Callback for ModelCheckpoint {
    fn chief_only(&self) -> bool {
        true
    }

    fn on_train_begin(&mut self, _model: &Model, _logs: &Logs) -> Result<()> {
        // Zero batches between saves would never save: say so before training, not after.
        if self.save_freq == SaveFreq::Batches(0) {
            return Err(Error::invalid(
                "ModelCheckpoint",
                "save_freq must be SaveFreq::Epoch or SaveFreq::Batches(n) with n >= 1, got Batches(0)",
            ));
        }
        Ok(())
    }

    fn on_epoch_begin(&mut self, _model: &Model, epoch: usize, _logs: &Logs) -> Result<()> {
        self.epoch = epoch;
        Ok(())
    }

    fn on_train_batch_end(&mut self, model: &Model, batch: usize, logs: &Logs) -> Result<()> {
        if let SaveFreq::Batches(n) = self.save_freq {
            self.batches += 1;
            if self.batches.is_multiple_of(n) {
                // The epoch in progress, as Keras' `_current_epoch`: files of different
                // epochs get different names.
                self.save(model, self.epoch, Some(batch + 1), logs)?;
            }
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, model: &Model, epoch: usize, logs: &mut Logs) -> Result<()> {
        if self.save_freq == SaveFreq::Epoch {
            self.save(model, epoch, None, logs)?;
        }
        Ok(())
    }

    fn wants_batch_logs(&self) -> bool {
        matches!(self.save_freq, SaveFreq::Batches(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_format_specs() {
        let logs = Logs::from_pairs([("loss", 0.5), ("val_acc", 0.98765)]);
        assert_eq!(format_path("m-{epoch}", 7, None, &logs).unwrap(), "m-7");
        // A logged value without a spec is Python's float repr.
        let reprs = Logs::from_pairs([("a", 1.0), ("b", 0.1), ("c", 1e-5), ("d", 1e16), ("e", 123.25)]);
        assert_eq!(
            format_path("{a}_{b}_{c}_{d}_{e}", 1, None, &reprs).unwrap(),
            "1.0_0.1_1e-05_1e+16_123.25"
        );
        let more = Logs::from_pairs([("a", -2.5e-7), ("b", 1.2345678901234568e17), ("c", 0.0001)]);
        assert_eq!(
            format_path("{a}_{b}_{c}", 1, None, &more).unwrap(),
            "-2.5e-07_1.2345678901234568e+17_0.0001"
        );
        assert_eq!(
            format_path("m-{epoch:03d}-{loss:.3f}", 7, None, &logs).unwrap(),
            "m-007-0.500"
        );
        assert_eq!(format_path("{val_acc:.2e}", 1, None, &logs).unwrap(), "9.88e-01");
        assert_eq!(
            format_path("{{literal}}-{epoch}", 2, None, &logs).unwrap(),
            "{literal}-2"
        );
        assert!(format_path("{missing}", 1, None, &logs).is_err());
        assert!(format_path("{epoch", 1, None, &logs).is_err());
        assert!(format_path("{loss:x}", 1, None, &logs).is_err());
    }

    fn linear_model() -> Model {
        let mut s = crate::Sequential::new();
        s.add(crate::Dense::new(1).with_bias(false).with_input_dim(2).unwrap());
        let mut m = Model::new(s);
        m.compile(crate::CompileOptions::new(
            ferroflow_optim::Sgd::new(0.1).unwrap(),
            "mse",
        ))
        .unwrap();
        m
    }

    fn data() -> (ferroflow_tensor_core::Tensor, ferroflow_tensor_core::Tensor) {
        let x = ferroflow_tensor_core::Tensor::from_vec((0..8).map(|i| i as f32 / 8.0).collect(), &[4, 2]).unwrap();
        let y = ferroflow_tensor_core::Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[4, 1]).unwrap();
        (x, y)
    }

    #[test]
    fn batch_frequency_saves_name_the_epoch_in_progress() {
        let dir = tempfile::tempdir().unwrap();
        let template = dir.path().join("e{epoch}-b{batch}.safetensors");
        let mut cb = ModelCheckpoint::new(template.to_str().unwrap())
            .save_weights_only(true)
            .save_freq(SaveFreq::Batches(2));
        let m = linear_model();
        let (x, y) = data();
        // Two epochs of two batches: one save at the end of each epoch's second batch.
        m.fit(
            (&x, &y),
            crate::FitOptions::new()
                .epochs(2)
                .batch_size(2)
                .verbose(0)
                .with_callback(&mut cb),
        )
        .unwrap();
        let names: Vec<String> = cb
            .saved()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["e1-b2.safetensors", "e2-b2.safetensors"]);
        assert!(cb.saved().iter().all(|p| p.exists()));
    }

    #[test]
    fn zero_batch_save_frequency_is_an_error_before_training() {
        let dir = tempfile::tempdir().unwrap();
        let mut cb =
            ModelCheckpoint::new(dir.path().join("m.safetensors").to_str().unwrap()).save_freq(SaveFreq::Batches(0));
        let m = linear_model();
        let before = m.get_weights().unwrap()[0].to_vec::<f32>().unwrap();
        let (x, y) = data();
        let err = m
            .fit(
                (&x, &y),
                crate::FitOptions::new().batch_size(2).verbose(0).with_callback(&mut cb),
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("save_freq") && err.contains("Batches(0)"), "{err}");
        assert_eq!(
            m.get_weights().unwrap()[0].to_vec::<f32>().unwrap(),
            before,
            "nothing trained"
        );
        assert!(cb.saved().is_empty());
    }
}
