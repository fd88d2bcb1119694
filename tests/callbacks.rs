//! Keras' callbacks through `fit`: early stopping with restored weights, checkpoint files,
//! backup and bit-identical resumption, NaN termination, learning-rate changes reaching a
//! traced step, CSV and TensorBoard logs, closures, and the progress text.

use ferroflow::data::Dataset;
use ferroflow::nn::callbacks::{
    BackupAndRestore, CsvLogger, EarlyStopping, LambdaCallback, LearningRateScheduler, ModelCheckpoint, ProgbarLogger,
    ReduceLrOnPlateau, TensorBoard, TerminateOnNaN,
};
use ferroflow::prelude::*;
use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;
use std::sync::Mutex;

/// Serialises the tests (they set the global random seed).
static RANDOM: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    RANDOM.lock().unwrap_or_else(|p| p.into_inner())
}

/// A small MLP with seeded initial weights, compiled with Adam and MSE (traced).
fn mlp(lr: f64) -> ferroflow::Result<Model> {
    random::set_seed(0);
    let mut s = Sequential::new();
    s.add(Dense::new(8).with_activation(Activation::Relu).with_seed(1));
    s.add(Dense::new(1).with_seed(2));
    let mut m = Model::new(s);
    m.compile(CompileOptions::new(Adam::new(lr)?, "mse").with_metrics(["mae"]))?;
    Ok(m)
}

fn data() -> ferroflow::Result<(Tensor, Tensor)> {
    let x = random::normal(&[40, 3], Normal::default().seed(11))?;
    let y = x.reduce_sum(Axes::from(-1).keepdims())?.sin()?;
    Ok((x, y))
}

fn weights(m: &Model) -> Vec<Vec<f32>> {
    m.get_weights()
        .unwrap()
        .iter()
        .map(|t| t.to_vec::<f32>().unwrap())
        .collect()
}

#[test]
fn early_stopping_restores_the_best_epochs_weights() -> ferroflow::Result<()> {
    let _serial = serial();
    let (x, y) = data()?;
    // A rate this large makes the loss rise after a few epochs.
    let m = mlp(0.5)?;
    let snapshots = RefCell::new(Vec::new());
    let mut stop = EarlyStopping::new()
        .monitor("loss")
        .patience(2)
        .restore_best_weights(true);
    let record = LambdaCallback::new().on_epoch_end(|model, _, _| {
        snapshots.borrow_mut().push(weights(model));
        Ok(())
    });
    let h = m.fit(
        (&x, &y),
        FitOptions::new()
            .epochs(30)
            .batch_size(8)
            .seed(1)
            .verbose(0)
            .with_callback(record)
            .with_callback(&mut stop),
    )?;
    let losses = h.get("loss").unwrap();
    let stopped = stop.stopped_epoch().expect("stopped early");
    let (best, best_epoch) = stop.best().unwrap();
    assert_eq!(losses.len(), stopped + 1);
    assert_eq!(best, losses.iter().cloned().fold(f64::INFINITY, f64::min));
    assert_eq!(stopped - best_epoch, 2, "patience 2");
    assert_eq!(weights(&m), snapshots.borrow()[best_epoch], "the best epoch's weights");
    Ok(())
}

#[test]
fn model_checkpoint_writes_templated_files_and_only_improvements() -> ferroflow::Result<()> {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = data()?;
    let m = mlp(0.01)?;
    let template = dir.path().join("ckpt-{epoch:02d}-{loss:.3f}.safetensors");
    let mut every = ModelCheckpoint::new(template.to_str().unwrap()).save_weights_only(true);
    let best_template = dir.path().join("best-{epoch:02d}");
    let mut best = ModelCheckpoint::new(best_template.to_str().unwrap())
        .monitor("val_loss")
        .save_best_only(true);
    let h = m.fit(
        (&x, &y),
        FitOptions::new()
            .epochs(4)
            .batch_size(8)
            .seed(2)
            .validation_split(0.25)
            .verbose(0)
            .with_callback(&mut every)
            .with_callback(&mut best),
    )?;
    let losses = h.get("loss").unwrap();
    let names: Vec<String> = every
        .saved()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let want: Vec<String> = (0..4)
        .map(|e| format!("ckpt-{:02}-{:.3}.safetensors", e + 1, losses[e]))
        .collect();
    assert_eq!(names, want);
    assert!(every.saved().iter().all(|p| p.exists()));
    // The last file holds the final weights.
    let fresh = mlp(0.01)?;
    fresh.predict_on_batch(&x)?;
    fresh.load_weights(every.saved().last().unwrap())?;
    assert_eq!(weights(&fresh), weights(&m));
    // save_best_only: one file per improvement of val_loss (TensorFlow format, with the
    // optimizer).
    let val = h.get("val_loss").unwrap();
    let improvements = val
        .iter()
        .scan(f64::INFINITY, |b, &v| {
            let better = v < *b;
            if better {
                *b = v;
            }
            Some(better)
        })
        .filter(|&b| b)
        .count();
    assert_eq!(best.saved().len(), improvements);
    for p in best.saved() {
        let names: Vec<String> = ferroflow::checkpoint::list_variables(p)
            .map_err(ferroflow::Error::from)?
            .into_iter()
            .map(|i| i.name)
            .collect();
        assert!(names.iter().any(|n| n.starts_with("optimizer/")), "{names:?}");
    }
    Ok(())
}

/// Fails `fit` at the end of one epoch, as a crash would.
struct Interrupt(usize);

impl Callback for Interrupt {
    fn on_epoch_end(&mut self, _: &Model, epoch: usize, _: &mut Logs) -> ferroflow::Result<()> {
        if epoch == self.0 {
            return Err(ferroflow::Error::invalid("test", "interrupted"));
        }
        Ok(())
    }
}

#[test]
fn backup_and_restore_resumes_bit_identically() -> ferroflow::Result<()> {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("backup");
    let (x, y) = data()?;
    let options = || FitOptions::new().epochs(6).batch_size(8).seed(3).verbose(0);
    let uninterrupted = mlp(0.01)?;
    let full = uninterrupted.fit((&x, &y), options())?;

    let crashed = mlp(0.01)?;
    let err = crashed
        .fit(
            (&x, &y),
            options()
                .with_callback(BackupAndRestore::new(&backup))
                .with_callback(Interrupt(2)),
        )
        .unwrap_err();
    assert!(err.to_string().contains("interrupted"));
    assert!(
        backup.join("training_metadata.json").exists(),
        "the backup survives a failure"
    );

    let resumed = mlp(0.01)?;
    let mut restore = BackupAndRestore::new(&backup);
    let rest = resumed.fit((&x, &y), options().with_callback(&mut restore))?;
    assert_eq!(restore.restored_epoch(), Some(3));
    assert_eq!(rest.epoch, vec![3, 4, 5]);
    assert_eq!(weights(&resumed), weights(&uninterrupted), "bit-identical");
    assert_eq!(rest.get("loss").unwrap(), &full.get("loss").unwrap()[3..]);
    assert_eq!(
        resumed.optimizer().unwrap().iterations()?,
        uninterrupted.optimizer().unwrap().iterations()?
    );
    assert!(!backup.exists(), "deleted after a completed fit");
    Ok(())
}

#[test]
fn terminate_on_nan_stops_at_the_bad_batch() -> ferroflow::Result<()> {
    let _serial = serial();
    let (x, mut y) = data()?;
    let mut ys = y.to_vec::<f32>()?;
    ys[20] = f32::NAN;
    y = Tensor::from_vec(ys, &[40, 1])?;
    let m = mlp(0.01)?;
    let mut nan = TerminateOnNaN::new();
    let h = m.fit(
        (&x, &y),
        FitOptions::new()
            .epochs(5)
            .batch_size(8)
            .shuffle(false)
            .verbose(0)
            .with_callback(&mut nan),
    )?;
    assert_eq!(nan.terminated_at(), Some(2), "rows 16..24 are batch 2");
    assert_eq!(h.epoch, vec![0], "the epoch ends, no more follow");
    assert!(h.get("loss").unwrap()[0].is_nan());
    let m = mlp(0.01)?;
    let err = m.fit(
        (&x, &y),
        FitOptions::new()
            .batch_size(8)
            .shuffle(false)
            .verbose(0)
            .with_callback(TerminateOnNaN::new().raise_error(true)),
    );
    assert!(err
        .unwrap_err()
        .to_string()
        .contains("NaN or Inf loss encountered at batch 2"));
    Ok(())
}

#[test]
fn learning_rate_changes_reach_the_traced_step() -> ferroflow::Result<()> {
    let _serial = serial();
    let (x, y) = data()?;
    // A rate of 0 from epoch 1 on: the traced step must read the new rate.
    let m = mlp(0.05)?;
    let after_first = RefCell::new(Vec::new());
    let h = m.fit(
        (&x, &y),
        FitOptions::new()
            .epochs(3)
            .batch_size(8)
            .seed(4)
            .verbose(0)
            .with_callback(LearningRateScheduler::new(
                |epoch, lr| if epoch == 0 { lr } else { 0.0 },
            ))
            .with_callback(LambdaCallback::new().on_epoch_end(|model, epoch, _| {
                if epoch == 0 {
                    *after_first.borrow_mut() = weights(model);
                }
                Ok(())
            })),
    )?;
    assert_eq!(weights(&m), *after_first.borrow());
    assert_eq!(h.get("learning_rate").unwrap(), &[0.05, 0.0, 0.0]);

    // ReduceLROnPlateau halves the rate when the loss stops improving by 10.
    let m = mlp(0.04)?;
    let h = m.fit(
        (&x, &y),
        FitOptions::new()
            .epochs(3)
            .batch_size(8)
            .seed(4)
            .verbose(0)
            .with_callback(
                ReduceLrOnPlateau::new()
                    .monitor("loss")
                    .factor(0.5)?
                    .patience(1)
                    .min_delta(10.0),
            ),
    )?;
    // Each epoch logs the rate it trained with, before any reduction (as Keras).
    assert_eq!(h.get("learning_rate").unwrap(), &[0.04, 0.04, 0.02]);
    assert_eq!(m.optimizer().unwrap().learning_rate()?, 0.01);
    Ok(())
}

#[test]
fn csv_logger_writes_keras_rows() -> ferroflow::Result<()> {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.csv");
    let (x, y) = data()?;
    let m = mlp(0.01)?;
    let h = m.fit(
        (&x, &y),
        FitOptions::new()
            .epochs(2)
            .batch_size(8)
            .seed(5)
            .verbose(0)
            .with_callback(CsvLogger::new(&path)),
    )?;
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert_eq!(lines[0], "epoch,loss,mae,val_loss,val_mae");
    let row: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(row[0], "0");
    assert_eq!(row[1].parse::<f64>().unwrap(), h.get("loss").unwrap()[0]);
    assert_eq!(&row[3..], ["NA", "NA"]);
    assert_eq!(lines.len(), 4, "two rows and the final line end");
    Ok(())
}

#[test]
fn tensorboard_writes_train_and_validation_runs_with_the_graph() -> ferroflow::Result<()> {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = data()?;
    let m = mlp(0.01)?;
    let tb = TensorBoard::new(dir.path());
    let (train_dir, val_dir) = (tb.train_dir(), tb.validation_dir());
    m.fit(
        (&x, &y),
        FitOptions::new()
            .epochs(2)
            .batch_size(8)
            .seed(6)
            .validation_split(0.2)
            .verbose(0)
            .with_callback(tb),
    )?;
    let payloads = |d: &std::path::Path| -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for f in std::fs::read_dir(d).unwrap() {
            let bytes = std::fs::read(f.unwrap().path()).unwrap();
            out.extend(ferroflow::graph::export::events::read_records(&bytes).unwrap());
        }
        out
    };
    let has = |records: &[Vec<u8>], needle: &[u8]| records.iter().any(|r| r.windows(needle.len()).any(|w| w == needle));
    let train = payloads(&train_dir);
    for tag in [&b"epoch_loss"[..], b"epoch_mae", b"epoch_learning_rate", b"MatMul"] {
        assert!(has(&train, tag), "{}", String::from_utf8_lossy(tag));
    }
    let val = payloads(&val_dir);
    assert!(has(&val, b"epoch_loss") && has(&val, b"evaluation_loss_vs_iterations"));
    assert!(!has(&val, b"val_loss"), "validation tags drop the prefix");
    Ok(())
}

#[test]
fn hooks_run_in_keras_order() -> ferroflow::Result<()> {
    let _serial = serial();
    let (x, y) = data()?;
    let m = mlp(0.01)?;
    let calls = RefCell::new(Vec::<String>::new());
    let log = |s: String| calls.borrow_mut().push(s);
    m.fit(
        Dataset::from_tensor_slices((&x, &y))?.batch(20),
        FitOptions::new()
            .epochs(2)
            .validation_data((&x, &y))
            .validation_freq(2)
            .verbose(0)
            .with_callback(
                LambdaCallback::new()
                    .on_train_begin(|_, _| {
                        log("train_begin".into());
                        Ok(())
                    })
                    .on_epoch_begin(|_, e, _| {
                        log(format!("epoch_begin {e}"));
                        Ok(())
                    })
                    .on_batch_end(|_, b, logs| {
                        log(format!("batch_end {b} {:?}", logs.keys().collect::<Vec<_>>()));
                        Ok(())
                    })
                    .on_epoch_end(|_, e, logs| {
                        log(format!("epoch_end {e} {:?}", logs.keys().collect::<Vec<_>>()));
                        Ok(())
                    })
                    .on_train_end(|_, _| {
                        log("train_end".into());
                        Ok(())
                    }),
            ),
    )?;
    assert_eq!(
        *calls.borrow(),
        [
            "train_begin",
            "epoch_begin 0",
            r#"batch_end 0 ["loss", "mae"]"#,
            r#"batch_end 1 ["loss", "mae"]"#,
            r#"epoch_end 0 ["loss", "mae"]"#,
            "epoch_begin 1",
            r#"batch_end 0 ["loss", "mae"]"#,
            r#"batch_end 1 ["loss", "mae"]"#,
            r#"epoch_end 1 ["loss", "mae", "val_loss", "val_mae"]"#,
            "train_end",
        ]
    );
    Ok(())
}

/// A writer tests can read back.
#[derive(Clone, Default)]
struct Shared(Rc<RefCell<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Checks one epoch line of verbose 2: `5/5 - 0s - 123us/step - loss: 0.1234 - mae: 0.5678`.
fn check_line(line: &str, steps: usize) {
    let parts: Vec<&str> = line.split(" - ").collect();
    assert_eq!(parts[0], format!("{steps}/{steps}"), "{line}");
    assert!(
        parts[1].ends_with('s') && parts[1][..parts[1].len() - 1].parse::<u64>().is_ok(),
        "{line}"
    );
    assert!(parts[2].ends_with("/step"), "{line}");
    for (part, key) in parts[3..].iter().zip(["loss", "mae"]) {
        let (k, v) = part.split_once(": ").unwrap();
        assert_eq!(k, key);
        assert!(
            v.parse::<f64>().is_ok() && (v.contains('e') || v.split('.').nth(1).unwrap().len() == 4),
            "{line}"
        );
    }
}

#[test]
fn progress_at_verbose_2_is_one_plain_line_per_epoch() -> ferroflow::Result<()> {
    let _serial = serial();
    let (x, y) = data()?;
    let m = mlp(0.01)?;
    let out = Shared::default();
    m.fit(
        (&x, &y),
        FitOptions::new()
            .epochs(2)
            .batch_size(16)
            .seed(7)
            .with_callback(ProgbarLogger::to_writer(2, out.clone())),
    )?;
    let text = String::from_utf8(out.0.borrow().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(lines[0], "Epoch 1/2");
    assert_eq!(lines[2], "Epoch 2/2");
    check_line(lines[1], 3);
    check_line(lines[3], 3);
    assert!(!text.contains(['\r', '\x1b', '\x08']));
    Ok(())
}

/// Runs a fit in a child process (this test binary, one test), whose standard output is a
/// pipe: verbose 0 prints nothing, `auto` prints verbose 2's lines without control characters.
#[test]
fn progress_on_standard_output_at_verbose_0_and_auto() -> ferroflow::Result<()> {
    if let Ok(v) = std::env::var("FERROFLOW_PROGRESS_CHILD") {
        let (x, y) = data()?;
        let m = mlp(0.01)?;
        let options = FitOptions::new().epochs(2).batch_size(20).seed(8);
        let options = if v == "auto" {
            options
        } else {
            options.verbose(v.parse::<u8>().unwrap())
        };
        m.fit((&x, &y), options)?;
        return Ok(());
    }
    let _serial = serial();
    let run = |v: &str| -> String {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "progress_on_standard_output_at_verbose_0_and_auto",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("FERROFLOW_PROGRESS_CHILD", v)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let silent = run("0");
    assert!(!silent.contains("Epoch") && !silent.contains("/step"), "{silent}");
    let auto = run("auto");
    // (The test harness writes its own words on the first line.)
    assert_eq!(auto.matches("Epoch ").count(), 2, "{auto}");
    let lines: Vec<&str> = auto.lines().filter(|l| l.contains("/step")).collect();
    assert_eq!(lines.len(), 2, "{auto}");
    for l in lines {
        check_line(l, 2);
    }
    assert!(!auto.contains(['\r', '\x1b', '\x08']));
    Ok(())
}
