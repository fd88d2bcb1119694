//! The Keras training loop's behaviour: history, validation split, shuffling, batching,
//! weights, datasets, `steps_per_execution`, the single-batch methods, and bad input that
//! fails clearly before anything changes.

use ferroflow::data::Dataset;
use ferroflow::prelude::*;
use std::sync::Mutex;

/// Serialises these tests: unseeded fits draw their shuffle seed from the global random
/// state, which one test sets, and tests run on parallel threads.
static RANDOM: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    RANDOM.lock().unwrap_or_else(|p| p.into_inner())
}

/// A linear model `x · w` (no bias) with a known kernel.
fn linear(w: &[f32]) -> ferroflow::Result<Model> {
    let d = Dense::new(1).with_bias(false).with_input_dim(w.len())?;
    d.kernel()
        .expect("built")
        .assign(&Tensor::from_vec(w.to_vec(), &[w.len(), 1])?)?;
    let mut s = Sequential::new();
    s.add(d);
    Ok(Model::new(s))
}

fn compiled(w: &[f32], lr: f64, eager: bool) -> ferroflow::Result<Model> {
    let mut m = linear(w)?;
    m.compile(
        CompileOptions::new(Sgd::new(lr)?, "mse")
            .with_metrics(["mae"])
            .run_eagerly(eager),
    )?;
    Ok(m)
}

/// `n` rows: x = [i, 1], y = 2i + 1.
fn data(n: usize) -> ferroflow::Result<(Tensor, Tensor)> {
    let x: Vec<f32> = (0..n).flat_map(|i| [i as f32 / n as f32, 1.0]).collect();
    let y: Vec<f32> = (0..n).map(|i| 2.0 * i as f32 / n as f32 + 1.0).collect();
    Ok((Tensor::from_vec(x, &[n, 2])?, Tensor::from_vec(y, &[n, 1])?))
}

fn weights(m: &Model) -> Vec<Vec<f32>> {
    m.get_weights()
        .unwrap()
        .iter()
        .map(|t| t.to_vec::<f32>().unwrap())
        .collect()
}

#[test]
fn history_records_every_epoch_with_val_prefixes_and_serialises() -> ferroflow::Result<()> {
    let _serial = serial();
    let (x, y) = data(20)?;
    let m = compiled(&[0.0, 0.0], 0.1, false)?;
    let h = m.fit(
        (&x, &y),
        FitOptions::new()
            .epochs(3)
            .batch_size(8)
            .validation_split(0.25)
            .verbose(0),
    )?;
    assert_eq!(h.epoch, vec![0, 1, 2]);
    let keys: Vec<&String> = h.history.keys().collect();
    assert_eq!(keys, ["loss", "mae", "val_loss", "val_mae"]);
    assert!(h.history.values().all(|v| v.len() == 3));
    let loss = h.get("loss").unwrap();
    assert!(loss[2] < loss[0], "training reduces the loss: {loss:?}");
    assert_eq!(h.params.epochs, 3);
    assert_eq!(h.params.steps, Some(2), "15 training rows in batches of 8");
    let json = serde_json::to_string(&h).unwrap();
    let back: History = serde_json::from_str(&json).unwrap();
    assert_eq!(back, h);
    Ok(())
}

#[test]
fn validation_split_takes_the_tail_before_shuffling() -> ferroflow::Result<()> {
    let _serial = serial();
    // With a learning rate of 0 nothing changes, so val_loss is the loss of the zero model
    // on the last 25% of the rows: the mean of their y².
    let (x, y) = data(20)?;
    let m = compiled(&[0.0, 0.0], 0.0, false)?;
    let h = m.fit(
        (&x, &y),
        FitOptions::new()
            .epochs(2)
            .batch_size(4)
            .validation_split(0.25)
            .verbose(0),
    )?;
    let ys = y.to_vec::<f32>()?;
    let tail: f64 = ys[15..].iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / 5.0;
    for v in h.get("val_loss").unwrap() {
        assert!((v - tail).abs() < 1e-5, "val_loss {v}, tail {tail}");
    }
    let head: f64 = ys[..15].iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / 15.0;
    assert!((h.get("loss").unwrap()[0] - head).abs() < 1e-5);
    // Too little data to split is an error.
    let (x1, y1) = data(1)?;
    assert!(m
        .fit((&x1, &y1), FitOptions::new().validation_split(0.5).verbose(0))
        .is_err());
    Ok(())
}

#[test]
fn shuffling_is_reproducible_per_seed_and_differs_between_seeds() -> ferroflow::Result<()> {
    let _serial = serial();
    let (x, y) = data(32)?;
    let run = |seed: Option<u64>, shuffle: bool| -> ferroflow::Result<Vec<Vec<f32>>> {
        let m = compiled(&[0.1, -0.1], 0.05, false)?;
        let mut options = FitOptions::new().epochs(2).batch_size(4).shuffle(shuffle).verbose(0);
        if let Some(s) = seed {
            options = options.seed(s);
        }
        m.fit((&x, &y), options)?;
        Ok(weights(&m))
    };
    assert_eq!(run(Some(1), true)?, run(Some(1), true)?);
    assert_ne!(run(Some(1), true)?, run(Some(2), true)?);
    assert_ne!(run(Some(1), true)?, run(None, false)?);
    assert_eq!(
        run(Some(1), false)?,
        run(Some(2), false)?,
        "the seed only orders shuffles"
    );
    random::set_seed(5);
    let a = run(None, true)?;
    random::set_seed(5);
    assert_eq!(a, run(None, true)?, "unseeded fits follow the global seed");
    Ok(())
}

#[test]
fn batching_keeps_the_remainder_and_takes_oversized_batches_whole() -> ferroflow::Result<()> {
    let _serial = serial();
    let (x, y) = data(10)?;
    let m = compiled(&[0.0, 0.0], 0.1, false)?;
    let h = m.fit((&x, &y), FitOptions::new().batch_size(4).verbose(0))?;
    assert_eq!(h.params.steps, Some(3));
    let h = m.fit((&x, &y), FitOptions::new().batch_size(64).verbose(0))?;
    assert_eq!(h.params.steps, Some(1));
    // Only steps_per_epoch: the batch size that gives that many batches.
    let h = m.fit((&x, &y), FitOptions::new().steps_per_epoch(2).verbose(0))?;
    assert_eq!(h.params.steps, Some(2));
    // Empty data is an error, and so is a dataset that yields nothing.
    let empty = Tensor::zeros(&[0, 2], DType::F32)?;
    let err = m.fit(
        (&empty, &Tensor::zeros(&[0, 1], DType::F32)?),
        FitOptions::new().verbose(0),
    );
    assert!(err.unwrap_err().to_string().contains("no samples"));
    let nothing = Dataset::from_tensor_slices((&x, &y))?.filter(|_| Ok(false)).batch(4);
    let err = m.fit(&nothing, FitOptions::new().verbose(0)).unwrap_err().to_string();
    assert!(err.contains("yielded no batches"), "{err}");
    Ok(())
}

#[test]
fn the_last_partial_batch_weighs_by_its_size_in_the_epoch_loss() -> ferroflow::Result<()> {
    let _serial = serial();
    let (x, y) = data(10)?;
    let m = compiled(&[0.0, 0.0], 0.0, false)?;
    let h = m.fit((&x, &y), FitOptions::new().batch_size(4).shuffle(false).verbose(0))?;
    let ys = y.to_vec::<f32>()?;
    let all: f64 = ys.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / 10.0;
    assert!((h.get("loss").unwrap()[0] - all).abs() < 1e-5);
    Ok(())
}

#[test]
fn sample_and_class_weights_weigh_the_loss() -> ferroflow::Result<()> {
    let _serial = serial();
    let (x, y) = data(6)?;
    let m = compiled(&[0.0, 0.0], 0.0, true)?;
    let w = Tensor::new([1.0f32, 0.0, 2.0, 0.0, 0.0, 1.0]);
    let logs = m.test_on_batch(&x, &y, Some(&w))?;
    let ys = y.to_vec::<f32>()?;
    let wv = w.to_vec::<f32>()?;
    let want: f64 = ys
        .iter()
        .zip(&wv)
        .map(|(&v, &w)| (v as f64).powi(2) * w as f64)
        .sum::<f64>()
        / 6.0;
    assert!((logs.get("loss").unwrap() - want).abs() < 1e-5, "{logs:?} vs {want}");
    // mae is a plain metric: not weighted.
    let mae: f64 = ys.iter().map(|&v| v as f64).sum::<f64>() / 6.0;
    assert!((logs.get("mae").unwrap() - mae).abs() < 1e-5);

    // class_weight is sample_weight from the labels.
    let xc = ferroflow::random::normal(&[12, 3], Normal::default().seed(1))?;
    let yc = Tensor::new([0i32, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2]);
    let train = |options: FitOptions| -> ferroflow::Result<Vec<Vec<f32>>> {
        // The same initial weights every time (a seeded layer repeats its values; the global
        // seed also fixes the unseeded draws).
        random::set_seed(0);
        let mut s = Sequential::new();
        s.add(Dense::new(3).with_seed(3));
        let mut m = Model::new(s);
        m.compile(CompileOptions::new(
            Sgd::new(0.1)?,
            Loss::SparseCategoricalCrossentropy(Predictions::Logits),
        ))?;
        m.fit((&xc, &yc), options.epochs(2).batch_size(5).seed(4).verbose(0))?;
        Ok(weights(&m))
    };
    let by_class = train(FitOptions::new().class_weight([(0, 2.0), (2, 0.5)]))?;
    let per_sample: Vec<f32> = yc
        .to_vec::<i32>()?
        .iter()
        .map(|&c| [2.0, 1.0, 0.5][c as usize])
        .collect();
    let by_sample = train(FitOptions::new().sample_weight(&Tensor::from_vec(per_sample, &[12])?))?;
    assert_eq!(by_class, by_sample);
    assert_ne!(by_class, train(FitOptions::new())?);
    Ok(())
}

#[test]
fn datasets_train_like_the_same_tensors() -> ferroflow::Result<()> {
    let _serial = serial();
    let (x, y) = data(12)?;
    let a = compiled(&[0.3, 0.2], 0.1, false)?;
    a.fit(
        (&x, &y),
        FitOptions::new().epochs(3).batch_size(4).shuffle(false).verbose(0),
    )?;
    let b = compiled(&[0.3, 0.2], 0.1, false)?;
    let ds = Dataset::from_tensor_slices((&x, &y))?.batch(4).prefetch(2);
    let h = b.fit(&ds, FitOptions::new().epochs(3).verbose(0))?;
    assert_eq!(weights(&a), weights(&b));
    assert_eq!(h.params.steps, Some(3));
    // A repeated dataset with steps_per_epoch.
    let c = compiled(&[0.3, 0.2], 0.1, false)?;
    c.fit(
        Dataset::from_tensor_slices((&x, &y))?.batch(4).repeat(),
        FitOptions::new().epochs(3).steps_per_epoch(3).verbose(0),
    )?;
    assert_eq!(weights(&a), weights(&c));
    Ok(())
}

#[test]
fn eager_traced_and_multi_step_executions_agree() -> ferroflow::Result<()> {
    let _serial = serial();
    let (x, y) = data(16)?;
    let run = |eager: bool, spe: usize| -> ferroflow::Result<(Vec<Vec<f32>>, Vec<f64>)> {
        let mut m = linear(&[0.5, -0.5])?;
        m.compile(
            CompileOptions::new(Adam::new(0.01)?, "mse")
                .with_metrics(["mae"])
                .run_eagerly(eager)
                .steps_per_execution(spe),
        )?;
        let h = m.fit((&x, &y), FitOptions::new().epochs(2).batch_size(3).seed(7).verbose(0))?;
        Ok((weights(&m), h.get("loss").unwrap().to_vec()))
    };
    let (w_eager, l_eager) = run(true, 1)?;
    let (w_graph, l_graph) = run(false, 1)?;
    let (w_multi, l_multi) = run(false, 4)?;
    for (a, b) in [(&w_eager, &w_graph), (&w_graph, &w_multi)] {
        for (u, v) in a.iter().flatten().zip(b.iter().flatten()) {
            assert!((u - v).abs() < 1e-6, "{a:?} vs {b:?}");
        }
    }
    for (a, b) in l_eager.iter().zip(&l_graph).chain(l_graph.iter().zip(&l_multi)) {
        assert!((a - b).abs() < 1e-6);
    }
    Ok(())
}

#[test]
fn single_batch_methods_and_predict_batching() -> ferroflow::Result<()> {
    let _serial = serial();
    let (x, y) = data(7)?;
    let m = compiled(&[1.0, 2.0], 0.1, false)?;
    let p = m.predict(&x, PredictOptions::new().batch_size(3))?;
    assert_eq!(p.dims(), &[7, 1]);
    assert_eq!(p.to_vec::<f32>()?, m.predict_on_batch(&x)?.to_vec::<f32>()?);
    let before = m.test_on_batch(&x, &y, None)?.get("loss").unwrap();
    let trained = m.train_on_batch(&x, &y, None)?.get("loss").unwrap();
    assert_eq!(before, trained, "train_on_batch reports the loss before its update");
    assert!(m.test_on_batch(&x, &y, None)?.get("loss").unwrap() < before);
    assert_eq!(m.metrics_names(), ["loss", "mae"]);
    Ok(())
}

#[test]
fn bad_input_is_a_clear_error_and_changes_nothing() -> ferroflow::Result<()> {
    let _serial = serial();
    let (x, y) = data(8)?;
    // Fit before compile.
    let m = linear(&[0.5, 0.5])?;
    let err = m.fit((&x, &y), FitOptions::new().verbose(0)).unwrap_err().to_string();
    assert!(err.contains("compile()"), "{err}");

    let m = compiled(&[0.5, 0.5], 0.1, false)?;
    let before = weights(&m);
    // x and y of different lengths.
    let short = Tensor::zeros(&[5, 1], DType::F32)?;
    let err = m
        .fit((&x, &short), FitOptions::new().verbose(0))
        .unwrap_err()
        .to_string();
    assert!(err.contains("x has 8 samples but y has 5"), "{err}");
    // A loss that does not fit the output: targets of 3 values for 1 output.
    let wide = Tensor::zeros(&[8, 3], DType::F32)?;
    let err = m
        .fit((&x, &wide), FitOptions::new().verbose(0))
        .unwrap_err()
        .to_string();
    assert!(err.contains("mean_squared_error") && err.contains("[8, 3]"), "{err}");
    assert_eq!(weights(&m), before, "nothing changed");
    // Bad options.
    assert!(m.fit((&x, &y), FitOptions::new().batch_size(0).verbose(0)).is_err());
    assert!(m
        .fit((&x, &y), FitOptions::new().validation_split(1.5).verbose(0))
        .is_err());

    // Labels out of range for the classes.
    let mut s = Sequential::new();
    s.add(Dense::new(3).with_seed(1));
    let mut c = Model::new(s);
    c.compile(CompileOptions::new(
        Sgd::new(0.1)?,
        Loss::SparseCategoricalCrossentropy(Predictions::Logits),
    ))?;
    let labels = Tensor::new([0i32, 1, 2, 7, 0, 1, 2, 0]);
    c.predict_on_batch(&x)?;
    let before = weights(&c);
    let err = c
        .fit((&x, &labels), FitOptions::new().verbose(0))
        .unwrap_err()
        .to_string();
    assert!(err.contains("label 7 is out of range"), "{err}");
    assert_eq!(weights(&c), before, "nothing changed");
    // Unknown names at compile time.
    let mut u = linear(&[0.0, 0.0])?;
    assert!(u.compile(CompileOptions::new(Sgd::new(0.1)?, "no_such_loss")).is_err());
    assert!(u
        .compile(CompileOptions::new(Sgd::new(0.1)?, "mse").with_metrics(["no_such_metric"]))
        .is_err());
    Ok(())
}

#[test]
fn a_cpu_device_scope_changes_nothing_about_fit() -> ferroflow::Result<()> {
    let _serial = serial();
    let (x, y) = data(10)?;
    let options = || FitOptions::new().epochs(3).batch_size(4).seed(3).verbose(0);
    // Tensors, shuffled: the same weights, history and predictions inside the scope.
    let plain = compiled(&[0.3, 0.2], 0.1, false)?;
    let h_plain = plain.fit((&x, &y), options().validation_data((&x, &y)))?;
    let scoped = compiled(&[0.3, 0.2], 0.1, false)?;
    let h_scoped = with_device(Device::Cpu, || {
        scoped.fit((&x, &y), options().validation_data((&x, &y)))
    })?;
    assert_eq!(weights(&plain), weights(&scoped));
    for key in ["loss", "val_loss", "mae"] {
        assert_eq!(h_plain.get(key), h_scoped.get(key), "{key}");
    }
    let p = plain.predict(&x, PredictOptions::new().batch_size(3).verbose(0))?;
    let q = with_device(Device::Cpu, || {
        scoped.predict(&x, PredictOptions::new().batch_size(3).verbose(0))
    })?;
    assert_eq!(p.to_vec::<f32>()?, q.to_vec::<f32>()?);

    // A dataset's closures run on the caller's thread, in or out of a scope (only an
    // accelerator's scope stages batches of tensors, and never a dataset's closures).
    let threads = std::sync::Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = threads.clone();
    let ds = Dataset::from_tensor_slices((&x, &y))?
        .map(move |e| {
            let name = std::thread::current().name().unwrap_or("").to_string();
            seen.lock().unwrap().push(name);
            Ok(e)
        })
        .batch(4)
        .repeat();
    let spe = || FitOptions::new().epochs(3).steps_per_epoch(2).verbose(0);
    let a = compiled(&[0.3, 0.2], 0.1, false)?;
    a.fit(&ds, spe())?;
    let b = compiled(&[0.3, 0.2], 0.1, false)?;
    with_device(Device::Cpu, || b.fit(&ds, spe()))?;
    assert_eq!(weights(&a), weights(&b));
    let caller = std::thread::current().name().unwrap_or("").to_string();
    let names = threads.lock().unwrap().clone();
    assert!(!names.is_empty());
    assert!(names.iter().all(|t| *t == caller), "{names:?}");
    Ok(())
}

#[test]
fn a_metric_both_plain_and_weighted_logs_under_two_keys() -> ferroflow::Result<()> {
    // As Keras: the weighted one is logged as `weighted_mae`, rather than overwriting `mae`.
    let _s = serial();
    let mut m = linear(&[0.0, 0.0])?;
    m.compile(
        CompileOptions::new(Sgd::new(0.0)?, "mse")
            .with_metrics(["mae"])
            .with_weighted_metrics(["mae"]),
    )?;
    let (x, y) = data(4)?;
    // Zero weights on the first two rows: the weighted mean of |y| counts only the last two.
    let w = Tensor::new([0.0f32, 0.0, 1.0, 1.0]);
    let h = m.fit((&x, &y), FitOptions::new().batch_size(4).sample_weight(&w).verbose(0))?;
    let abs_y: Vec<f64> = (0..4).map(|i| 2.0 * i as f64 / 4.0 + 1.0).collect();
    let plain = h.get("mae").expect("mae")[0];
    let weighted = h.get("weighted_mae").expect("weighted_mae")[0];
    assert!((plain - abs_y.iter().sum::<f64>() / 4.0).abs() < 1e-6, "{plain}");
    assert!((weighted - (abs_y[2] + abs_y[3]) / 2.0).abs() < 1e-6, "{weighted}");
    assert_eq!(m.metrics_names(), ["loss", "mae", "weighted_mae"]);
    Ok(())
}

#[test]
fn steps_per_epoch_stops_an_epoch_at_the_end_of_the_data() -> ferroflow::Result<()> {
    // As Keras 3's EpochIterator: 10 rows in batches of 4 are 3 batches a pass; with 2
    // steps an epoch, the pass serves an epoch of 2 and one of 1, then a new pass begins.
    let _serial = serial();
    let (x, y) = data(10)?;
    let steps = |m: &Model| m.optimizer().unwrap().iterations().unwrap();
    let m = compiled(&[0.0, 0.0], 0.0, false)?;
    let opts = || FitOptions::new().batch_size(4).shuffle(false).verbose(0);
    m.fit((&x, &y), opts().epochs(3).steps_per_epoch(2))?;
    assert_eq!(steps(&m), 2 + 1 + 2);
    // More steps than a pass holds: each epoch is one pass, cut short.
    let m = compiled(&[0.0, 0.0], 0.0, false)?;
    m.fit((&x, &y), opts().epochs(2).steps_per_epoch(5))?;
    assert_eq!(steps(&m), 3 + 3);
    // A dataset of unknown length (a filter's) ends its epoch when it runs out too.
    let ds = Dataset::from_tensor_slices((&x, &y))?.filter(|_| Ok(true)).batch(4);
    let m = compiled(&[0.0, 0.0], 0.0, false)?;
    m.fit(&ds, FitOptions::new().epochs(3).steps_per_epoch(2).verbose(0))?;
    assert_eq!(steps(&m), 2 + 1 + 2);
    Ok(())
}

#[test]
fn a_loss_function_sees_targets_of_the_predictions_rank_and_dtype() -> ferroflow::Result<()> {
    // Keras' LossFunctionWrapper: `[4]` int targets against a `[4, 1]` output reach the
    // function as `[4, 1]` floats, so `p - t` does not broadcast to `[4, 4]`.
    let _serial = serial();
    let mut m = linear(&[1.0])?;
    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let log = seen.clone();
    m.compile(CompileOptions::new(
        Sgd::new(0.0)?,
        ferroflow::nn::LossSpec::function("my_mse", move |t: &Tensor, p: &Tensor| {
            log.borrow_mut().push((t.dims().to_vec(), t.dtype()));
            p.sub(t)?.square()?.reduce_mean(-1)
        }),
    ))?;
    let x = Tensor::from_vec(vec![0.0f32, 1.0, 2.0, 3.0], &[4, 1])?;
    let y = Tensor::new([0i32, 1, 2, 4]);
    let logs = m.evaluate((&x, &y), EvaluateOptions::new().verbose(0))?;
    assert!((logs.get("loss").unwrap() - 0.25).abs() < 1e-6, "{logs:?}");
    assert!(
        !seen.borrow().is_empty() && seen.borrow().iter().all(|(d, t)| d == &[4, 1] && *t == DType::F32),
        "{seen:?}"
    );
    Ok(())
}

#[test]
fn sparse_categorical_crossentropy_takes_float_class_ids() -> ferroflow::Result<()> {
    // Keras casts float labels (read from a float array) to int64 class ids.
    let _serial = serial();
    let logits = Tensor::new([[2.0f32, 0.5, -1.0], [0.0, 1.0, 3.0]]);
    let as_int = ferroflow::optim::losses::sparse_categorical_crossentropy(
        &Tensor::new([0i64, 2]),
        &logits,
        ferroflow::optim::losses::Predictions::Logits,
    )?;
    let as_float = ferroflow::optim::losses::sparse_categorical_crossentropy(
        &Tensor::new([0.0f32, 2.0]),
        &logits,
        ferroflow::optim::losses::Predictions::Logits,
    )?;
    assert_eq!(as_int.to_scalar::<f32>()?, as_float.to_scalar::<f32>()?);
    Ok(())
}

#[test]
fn auc_precision_and_recall_treat_targets_as_booleans_and_clip_scores() -> ferroflow::Result<()> {
    use ferroflow::nn::metrics::{Auc, Metric, Precision, Recall};
    // A negative score is below every positive one: a perfect ranking (Keras clips scores
    // into [0, 1] before thresholding).
    let auc = Auc::new()?;
    auc.update_state(&Tensor::new([0.0f32, 1.0]), &Tensor::new([-0.2f32, 0.8]), None)?;
    assert!((auc.result_value()? - 1.0).abs() < 1e-6, "{}", auc.result_value()?);
    // Soft targets count as positives, whatever their value.
    let p = Precision::new()?;
    p.update_state(&Tensor::new([0.9f32, 0.1]), &Tensor::new([0.8f32, 0.7]), None)?;
    assert_eq!(p.result_value()?, 1.0);
    let r = Recall::new()?;
    r.update_state(&Tensor::new([0.9f32, 0.1, 0.0]), &Tensor::new([0.8f32, 0.2, 0.9]), None)?;
    assert_eq!(r.result_value()?, 0.5);
    Ok(())
}

#[test]
fn cross_entropy_after_a_sigmoid_or_softmax_reads_its_logits() -> ferroflow::Result<()> {
    // Keras' TensorFlow backend computes a cross-entropy on a sigmoid's (softmax's) output
    // from that activation's input: a saturated wrong prediction costs softplus(20) = 20,
    // not the ~15.9 of clipped probabilities, and still has a gradient.
    let _serial = serial();
    for eager in [true, false] {
        let d = Dense::new(1)
            .with_bias(false)
            .with_activation(Activation::Sigmoid)
            .with_input_dim(1)?;
        d.kernel().unwrap().assign(&Tensor::from_vec(vec![20.0f32], &[1, 1])?)?;
        let mut s = Sequential::new();
        s.add(d);
        let mut m = Model::new(s);
        m.compile(CompileOptions::new(Sgd::new(0.1)?, "binary_crossentropy").run_eagerly(eager))?;
        let (x, y) = (
            Tensor::from_vec(vec![1.0f32], &[1, 1])?,
            Tensor::from_vec(vec![0.0f32], &[1, 1])?,
        );
        let l = m
            .evaluate((&x, &y), EvaluateOptions::new().verbose(0))?
            .get("loss")
            .unwrap();
        assert!((l - 20.0).abs() < 1e-4, "eager {eager}: {l}");
        // One SGD step moves the kernel by lr · sigmoid(20) · x ≈ 0.1.
        m.fit((&x, &y), FitOptions::new().epochs(1).verbose(0))?;
        let k = weights(&m)[0][0];
        assert!((k - 19.9).abs() < 1e-4, "eager {eager}: kernel {k}");

        let d = Dense::new(3)
            .with_bias(false)
            .with_activation(Activation::Softmax)
            .with_input_dim(1)?;
        d.kernel()
            .unwrap()
            .assign(&Tensor::from_vec(vec![40.0f32, 0.0, -40.0], &[1, 3])?)?;
        let mut s = Sequential::new();
        s.add(d);
        let mut m = Model::new(s);
        m.compile(CompileOptions::new(Sgd::new(0.1)?, "sparse_categorical_crossentropy").run_eagerly(eager))?;
        let ids = Tensor::new([2i32]);
        let l = m
            .evaluate((&x, &ids), EvaluateOptions::new().verbose(0))?
            .get("loss")
            .unwrap();
        assert!((l - 80.0).abs() < 1e-3, "eager {eager}: {l}");
    }
    Ok(())
}

#[test]
fn a_trailing_size_one_output_axis_is_squeezed_as_keras_does() -> ferroflow::Result<()> {
    // squeeze_or_expand_to_same_rank: `[b, t]` targets against a `[b, t, 1]` output squeeze
    // the output (the loss is then one value per row), rather than expanding the targets.
    let _serial = serial();
    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let log = seen.clone();
    let mut s = Sequential::new();
    s.add(Dense::new(1).with_bias(false).with_input_dim(1)?);
    let mut m = Model::new(s);
    m.compile(CompileOptions::new(
        Sgd::new(0.0)?,
        ferroflow::nn::LossSpec::function("shapes", move |t: &Tensor, p: &Tensor| {
            log.borrow_mut().push((t.dims().to_vec(), p.dims().to_vec()));
            p.sub(t)?.square()?.reduce_mean(-1)
        }),
    ))?;
    let x = Tensor::zeros(&[2, 3, 1], DType::F32)?;
    let y = Tensor::zeros(&[2, 3], DType::F32)?;
    m.evaluate((&x, &y), EvaluateOptions::new().verbose(0))?;
    assert!(!seen.borrow().is_empty());
    assert!(
        seen.borrow().iter().all(|(t, p)| t == &[2, 3] && p == &[2, 3]),
        "{seen:?}"
    );
    Ok(())
}

#[test]
fn each_fit_on_a_shuffled_dataset_sees_new_orders_and_resumes_exactly() -> ferroflow::Result<()> {
    // Keras iterates a dataset anew in each fit, so a `.shuffle()` dataset reshuffles: a
    // second fit does not replay the first one's order. A fit resumed at initial_epoch after
    // one that stopped there sees what one uninterrupted fit saw.
    let _serial = serial();
    let (x, y) = data(16)?;
    let ds = Dataset::from_tensor_slices((&x, &y))?.shuffle(16, 7).batch(4);
    let run = |epochs: &[(usize, usize)]| -> ferroflow::Result<Vec<Vec<f32>>> {
        let ds = ds.clone();
        let fresh = Dataset::from_tensor_slices((&x, &y))?.shuffle(16, 7).batch(4);
        let ds = if epochs.len() > 1 { fresh } else { ds };
        let m = compiled(&[0.3, 0.2], 0.05, false)?;
        for &(from, to) in epochs {
            m.fit(&ds, FitOptions::new().initial_epoch(from).epochs(to).verbose(0))?;
        }
        Ok(weights(&m))
    };
    // Two fits of one epoch each differ from two fits replaying epoch 0: the second sees pass 1.
    let twice = {
        let ds = Dataset::from_tensor_slices((&x, &y))?.shuffle(16, 7).batch(4);
        let m = compiled(&[0.3, 0.2], 0.05, false)?;
        m.fit(&ds, FitOptions::new().epochs(1).verbose(0))?;
        m.fit(&ds, FitOptions::new().epochs(1).verbose(0))?;
        weights(&m)
    };
    let continuous = {
        let ds = Dataset::from_tensor_slices((&x, &y))?.shuffle(16, 7).batch(4);
        let m = compiled(&[0.3, 0.2], 0.05, false)?;
        m.fit(&ds, FitOptions::new().epochs(2).verbose(0))?;
        weights(&m)
    };
    assert_eq!(twice, continuous, "the second fit continues with the next pass");
    // Resumed at initial_epoch 2 after a fit of 2 epochs: as one fit of 4.
    assert_eq!(run(&[(0, 2), (2, 4)])?, run(&[(0, 4)])?);
    Ok(())
}

#[test]
fn a_fit_resumed_where_another_stopped_continues_split_passes_exactly() -> ferroflow::Result<()> {
    // 40 rows in batches of 4 are 10 batches a pass; 4 steps an epoch split each pass into
    // epochs of 4, 4 and 2. A fit of 4 epochs then one resumed at epoch 4 sees the batches
    // one fit of 7 epochs sees.
    let _serial = serial();
    let (x, y) = data(40)?;
    let make = || -> ferroflow::Result<Dataset> { Ok(Dataset::from_tensor_slices((&x, &y))?.shuffle(40, 3).batch(4)) };
    let opts = || FitOptions::new().steps_per_epoch(4).verbose(0);
    let whole = {
        let m = compiled(&[0.3, 0.2], 0.05, false)?;
        m.fit(&make()?, opts().epochs(7))?;
        weights(&m)
    };
    let resumed = {
        let ds = make()?;
        let m = compiled(&[0.3, 0.2], 0.05, false)?;
        m.fit(&ds, opts().epochs(4))?;
        m.fit(&ds, opts().initial_epoch(4).epochs(7))?;
        weights(&m)
    };
    assert_eq!(whole, resumed);
    Ok(())
}

#[test]
fn metrics_align_ranks_as_keras_does() -> ferroflow::Result<()> {
    // `[b, t, 1]` labels against `[b, t]` predictions: the metric squeezes the labels
    // instead of broadcasting to `[b, t, t]`.
    use ferroflow::nn::metrics::mean_absolute_error;
    let y_true = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2, 1])?;
    let y_pred = Tensor::from_vec(vec![1.5f32, 2.0, 3.0, 5.0], &[2, 2])?;
    let m = mean_absolute_error(&y_true, &y_pred)?;
    assert_eq!(m.dims(), &[2]);
    assert_eq!(m.to_vec::<f64>()?, vec![0.25, 0.5]);
    Ok(())
}

#[test]
fn mean_metrics_reduce_to_samples_as_keras_does() -> ferroflow::Result<()> {
    use ferroflow::nn::metrics::{BinaryAccuracy, Mean, Metric};
    // Binary accuracy is element-wise: rank-1 batches count each sample, so 8 right of 8
    // and then 0 of 2 is 0.8, not the 0.5 of two batch means.
    let acc = BinaryAccuracy::new()?;
    acc.update_state(&Tensor::new([1.0f32; 8]), &Tensor::new([0.9f32; 8]), None)?;
    acc.update_state(&Tensor::new([1.0f32; 2]), &Tensor::new([0.1f32; 2]), None)?;
    assert!((acc.result_value()? - 0.8).abs() < 1e-12, "{}", acc.result_value()?);
    // Per-sample weights against [b, d] values: each sample's mean, weighted.
    let m = Mean::new("m")?;
    m.update_state(
        &Tensor::new([[1.0f64, 3.0], [10.0, 20.0]]),
        Some(&Tensor::new([1.0f64, 0.0])),
    )?;
    assert_eq!(m.result()?.to_scalar::<f64>()?, 2.0);
    // [b, t] weights against [b, t, 1] values: squeezed to [b, t] and weighted element-wise.
    let m = Mean::new("m2")?;
    let v = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[2, 2, 1])?;
    m.update_state(&v, Some(&Tensor::new([[1.0f64, 0.0], [1.0, 1.0]])))?;
    // Per sample: (1·1 + 2·0)/2 = 0.5 and (3 + 4)/2 = 3.5; weights' means 0.5 and 1.
    assert!((m.result()?.to_scalar::<f64>()? - 4.0 / 1.5).abs() < 1e-12);
    Ok(())
}

#[test]
fn a_resumed_fit_on_data_of_unknown_length_takes_fresh_passes() -> ferroflow::Result<()> {
    // Without a pass length to place epochs by, a later fit continues after the passes the
    // earlier one used rather than replaying them from the start.
    let _serial = serial();
    let (x, y) = data(16)?;
    let ds = Dataset::from_tensor_slices((&x, &y))?.shuffle(16, 5).repeat().batch(4);
    let m = compiled(&[0.0, 0.0], 0.0, false)?;
    m.fit(&ds, FitOptions::new().steps_per_epoch(3).epochs(2).verbose(0))?;
    let used = ds.iterations_started();
    assert!(used >= 1);
    m.fit(
        &ds,
        FitOptions::new()
            .steps_per_epoch(3)
            .initial_epoch(2)
            .epochs(4)
            .verbose(0),
    )?;
    assert!(ds.iterations_started() > used, "the second fit took a new pass");
    Ok(())
}

#[test]
fn float64_data_trains_a_float32_model_as_keras_autocasts() -> ferroflow::Result<()> {
    let mut layers = Sequential::new();
    layers.add(Dense::new(1).with_seed(1));
    let mut model = Model::new(layers);
    model.compile(CompileOptions::new(Sgd::new(0.1)?, "mse"))?;
    let x = random::normal(&[32, 3], Normal::default().seed(2))?.cast(DType::F64)?;
    let y = x.reduce_sum(Axes::from(-1).keepdims())?;
    let history = model.fit((&x, &y), FitOptions::new().epochs(3).batch_size(8).seed(0).verbose(0))?;
    assert!(model.get_weights()?.iter().all(|w| w.dtype() == DType::F32));
    let loss = history.get("loss").unwrap();
    assert!(loss[2] < loss[0], "{loss:?}");
    assert_eq!(model.predict(&x, PredictOptions::new())?.dtype(), DType::F32);
    Ok(())
}

#[test]
fn keras_regression_and_margin_losses_train_traced_and_eager_alike() -> ferroflow::Result<()> {
    let x = random::normal(&[32, 3], Normal::default().seed(7))?;
    let y = x
        .reduce_sum(Axes::from(-1).keepdims())?
        .greater(&x.scalar_like(0.0))?
        .cast(DType::F32)?;
    for loss in ["hinge", "log_cosh", "poisson", "msle"] {
        let mut histories = Vec::new();
        for eager in [false, true] {
            // Seeded alike, so both models start from the same weights (as in Keras 3).
            let mut layers = Sequential::new();
            layers.add(Dense::new(1).with_activation(Activation::Sigmoid).with_seed(1));
            let mut model = Model::new(layers);
            model.compile(
                CompileOptions::new(Sgd::new(0.05)?, loss)
                    .with_metrics(["mape", "cosine_similarity", "kld"])
                    .run_eagerly(eager),
            )?;
            let h = model.fit((&x, &y), FitOptions::new().epochs(2).batch_size(8).seed(0).verbose(0))?;
            histories.push(h);
        }
        for key in ["loss", "mape", "cosine_similarity", "kld"] {
            let (traced, eager) = (histories[0].get(key).unwrap(), histories[1].get(key).unwrap());
            for (a, b) in traced.iter().zip(eager) {
                assert!(
                    a.is_finite() && (a - b).abs() <= 1e-5 * a.abs().max(1.0),
                    "{loss} {key}: {a} vs {b}"
                );
            }
        }
    }
    Ok(())
}
