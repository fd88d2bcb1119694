//! The checks of data-parallel training, written against any [`Communicator`]: run under
//! `mpirun` by `examples/mpi_checks.rs` (2 and 3 ranks, in CI) and in one process over the
//! world of one by `tests/distribute_local.rs`, so the same checks cover both transports.
//!
//! Every check runs the same collectives on every rank, compares, and the outcome is then
//! agreed, so one failing rank fails the check everywhere.
#![allow(dead_code)] // each includer uses its part

use ferroflow::autodiff::GradientTape;
use ferroflow::distribute::{
    broadcast_trackable, shard_range, AutoShard, Communicator, CommunicatorExt, DistributedGradientTape,
    DistributedOptimizer, MultiWorkerMirroredStrategy, ReduceOp, ReduceOptions,
};
use ferroflow::nn::callbacks::{BackupAndRestore, LambdaCallback, ModelCheckpoint};
use ferroflow::nn::Mode;
use ferroflow::prelude::*;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

pub type Comm = Arc<dyn Communicator>;
pub type Check = fn(&Comm, &Path) -> Result<(), String>;

pub fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

pub fn ensure(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what())
    }
}

/// Whether `tensors` are bit for bit rank 0's, on every rank.
pub fn identical_to_rank0(comm: &Comm, tensors: &[Tensor]) -> Result<bool, String> {
    let mine: Vec<u8> = tensors
        .iter()
        .flat_map(|t| t.cast(DType::F64).and_then(|t| t.to_vec::<f64>()).unwrap_or_default())
        .flat_map(f64::to_le_bytes)
        .collect();
    let mut rank0 = mine.clone();
    comm.broadcast_vec(&mut rank0, 0).map_err(err)?;
    let mut differ = [f64::from(u8::from(rank0 != mine))];
    comm.all_reduce_in_place_f64(&mut differ, ReduceOp::Max).map_err(err)?;
    Ok(differ[0] == 0.0)
}

pub fn values(t: &Tensor) -> Vec<f64> {
    t.cast(DType::F64).and_then(|t| t.to_vec::<f64>()).unwrap_or_default()
}

/// Float64 results within 1e-12 (relative to values of order one and above).
pub fn close_f64(got: &[Tensor], want: &[Tensor]) -> Result<(), String> {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        for (a, b) in values(g).iter().zip(values(w)) {
            ensure((a - b).abs() <= 1e-12 * b.abs().max(1.0), || {
                format!("weight {i}: {a} vs {b} (one process)")
            })?;
        }
    }
    Ok(())
}

/// The oracle's float32 rule: each element matches the one-process float32 value (`tf`) to
/// 1e-5 relative, or is at least as close to the float64 result (`exact`) as it is.
pub fn close_f32(got: &[Tensor], tf: &[Tensor], exact: &[Tensor]) -> Result<(), String> {
    for (i, ((g, t), e)) in got.iter().zip(tf).zip(exact).enumerate() {
        for ((a, b), x) in values(g).iter().zip(values(t)).zip(values(e)) {
            let ok = (a - b).abs() <= 1e-5 * b.abs() || (a - x).abs() <= (b - x).abs() + 1e-5 * x.abs();
            ensure(ok, || format!("weight {i}: {a} vs {b} (one process), exact {x}"))?;
        }
    }
    Ok(())
}

pub fn collectives(comm: &Comm, _: &Path) -> Result<(), String> {
    let (r, n) = (comm.rank() as f64, comm.size() as f64);
    comm.barrier().map_err(err)?;
    let send = [r, -r, 1.0 + r];
    for (op, want) in [
        (
            ReduceOp::Sum,
            [n * (n - 1.0) / 2.0, -n * (n - 1.0) / 2.0, n + n * (n - 1.0) / 2.0],
        ),
        (
            ReduceOp::Mean,
            [(n - 1.0) / 2.0, -(n - 1.0) / 2.0, 1.0 + (n - 1.0) / 2.0],
        ),
        (ReduceOp::Max, [n - 1.0, 0.0, n]),
        (ReduceOp::Min, [0.0, -(n - 1.0), 1.0]),
    ] {
        let mut got = [0.0; 3];
        comm.all_reduce_f64(&send, &mut got, op).map_err(err)?;
        ensure(got == want, || format!("f64 {op:?}: {got:?}, want {want:?}"))?;
        let t = comm
            .all_reduce(&Tensor::new([r as f32, -r as f32, 1.0 + r as f32]), op)
            .map_err(err)?;
        let want32: Vec<f32> = want.iter().map(|&v| v as f32).collect();
        ensure(t.to_vec::<f32>().map_err(err)? == want32, || {
            format!("f32 {op:?}: {t:?}")
        })?;
    }
    let last = comm.size() - 1;
    let b = comm.broadcast(&Tensor::new([[r, 2.0 * r]]), last).map_err(err)?;
    ensure(
        b.to_vec::<f64>().map_err(err)? == vec![n - 1.0, 2.0 * (n - 1.0)],
        || format!("broadcast {b:?}"),
    )?;
    let mut text = if comm.rank() == 1 {
        b"from rank one".to_vec()
    } else {
        Vec::new()
    };
    comm.broadcast_vec(&mut text, 1.min(last)).map_err(err)?;
    ensure(comm.size() == 1 || text == b"from rank one", || "broadcast_vec".into())
}

/// The W4 layers (784-256-256-10) with a seed that differs per rank.
pub fn w4_layers(seed: u64) -> Sequential {
    let mut m = Sequential::new().with_name("w4");
    m.add(Dense::new(256).with_activation(Activation::Relu).with_seed(seed));
    m.add(Dense::new(256).with_activation(Activation::Relu).with_seed(seed + 1));
    m.add(Dense::new(10).with_seed(seed + 2));
    m
}

pub fn broadcast_identical(comm: &Comm, _: &Path) -> Result<(), String> {
    let model = Model::new(w4_layers(100 + comm.rank() as u64));
    model
        .build_from(&Tensor::zeros(&[1, 784], DType::F32).map_err(err)?)
        .map_err(err)?;
    let before = identical_to_rank0(comm, &model.get_weights().map_err(err)?)?;
    ensure(comm.size() == 1 || !before, || {
        "weights were identical before the broadcast".into()
    })?;
    broadcast_trackable(comm.as_ref(), &model, 0).map_err(err)?;
    ensure(identical_to_rank0(comm, &model.get_weights().map_err(err)?)?, || {
        "weights differ after the broadcast".into()
    })
}

/// A small regression problem (float64), rank 0's on every rank: random draws repeat per
/// process, not per call, so each run of a comparison must get the same tensors.
pub fn regression_data(comm: &Comm, rows: usize) -> ferroflow::Result<(Tensor, Tensor)> {
    let x = random::normal(&[rows, 5], Normal::default().dtype(DType::F64))?;
    let w = random::normal(&[5, 2], Normal::default().dtype(DType::F64))?;
    let y = x.matmul(&w)?.tanh()?;
    Ok((comm.broadcast(&x, 0)?, comm.broadcast(&y, 0)?))
}

/// Initial weights of [`small_mlp`] (float64), rank 0's on every rank.
pub fn initial_weights(comm: &Comm) -> ferroflow::Result<Vec<Tensor>> {
    let m = small_mlp(DType::F64);
    m.call(&Tensor::zeros(&[1, 5], DType::F64)?, Mode::Inference)?;
    m.variables().iter().map(|v| comm.broadcast(&v.value(), 0)).collect()
}

/// Sets a built layer's variables to `init`, cast to their dtypes.
pub fn assign(layer: &dyn Module, init: &[Tensor]) -> ferroflow::Result<()> {
    for (v, t) in layer.variables().iter().zip(init) {
        v.assign(&t.cast(v.dtype())?)?;
    }
    Ok(())
}

/// A problem and a starting point shared by the runs of a comparison.
pub struct Fixture {
    x: Tensor,
    y: Tensor,
    init: Vec<Tensor>,
}

impl Fixture {
    fn new(comm: &Comm, rows: usize) -> Result<Fixture, String> {
        let (x, y) = regression_data(comm, rows).map_err(err)?;
        Ok(Fixture {
            x,
            y,
            init: initial_weights(comm).map_err(err)?,
        })
    }
}

pub fn small_mlp(dtype: DType) -> Sequential {
    let mut m = Sequential::new();
    m.add(
        Dense::new(8)
            .with_activation(Activation::Tanh)
            .with_seed(21)
            .with_dtype(dtype),
    );
    m.add(Dense::new(2).with_seed(22).with_dtype(dtype));
    m
}

pub fn optimizer(kind: &str) -> ferroflow::Result<Box<dyn Optimizer>> {
    Ok(match kind {
        "momentum" => Box::new(Sgd::new(0.1)?.with_momentum(0.9)?),
        _ => Box::new(Adam::new(0.01)?),
    })
}

/// How a data-parallel tape run weighs the workers.
#[derive(Clone, Copy)]
pub enum Reduction {
    /// TensorFlow's way: each worker's loss is its rows' sum divided by the global batch size
    /// (`compute_average_loss`), and the gradients are summed.
    SumOfShares,
    /// Horovod's way with uneven shards: local means, averaged weighted by sample counts.
    WeightedMean,
}

/// 20 steps on the fixture's rows: on this rank's share with a distributed tape when `comm`
/// is given, else on all of them.
pub fn train_by_tape(
    comm: Option<(&Comm, Reduction)>,
    dtype: DType,
    kind: &str,
    f: &Fixture,
) -> ferroflow::Result<Vec<Tensor>> {
    let (x, y) = (f.x.cast(dtype)?, f.y.cast(dtype)?);
    let rows = x.dims()[0];
    let (x, y) = match comm {
        Some((c, _)) => {
            let part = shard_range(rows, c.size(), c.rank());
            (
                ferroflow::data::rows::row_range(&x, part.start, part.end)?,
                ferroflow::data::rows::row_range(&y, part.start, part.end)?,
            )
        }
        None => (x, y),
    };
    let model = small_mlp(dtype);
    model.call(&x, Mode::Inference)?;
    assign(&model, &f.init)?;
    let vars = model.trainable_variables();
    let opt = optimizer(kind)?;
    let outputs = f.y.dims()[1];
    for _ in 0..20 {
        let local_rows = x.dims()[0];
        let squares = || -> ferroflow::Result<Tensor> { model.call(&x, Mode::Training)?.sub(&y)?.square() };
        let grads: Vec<Tensor> = match comm {
            Some((c, Reduction::SumOfShares)) => {
                let tape = DistributedGradientTape::new(c.clone()).reduce_options(ReduceOptions::new().sum());
                let sq = squares()?;
                let loss = sq
                    .reduce_sum(Axes::All)?
                    .div(&sq.scalar_like((rows * outputs) as f64))?;
                tape.gradient(&loss, &vars)?
            }
            Some((c, Reduction::WeightedMean)) => {
                let tape = DistributedGradientTape::new(c.clone()).local_samples(local_rows);
                let loss = squares()?.reduce_mean(Axes::All)?;
                tape.gradient(&loss, &vars)?
            }
            None => {
                let tape = GradientTape::new();
                let loss = squares()?.reduce_mean(Axes::All)?;
                tape.gradient(&loss, &vars)?
            }
        };
        opt.apply_gradients(grads.iter().zip(&vars))?;
    }
    Ok(vars.iter().map(Variable::value).collect())
}

pub fn tape_matches_one_process(comm: &Comm, _: &Path) -> Result<(), String> {
    // 10 rows: halves on 2 ranks, 4/3/3 on 3.
    let f = Fixture::new(comm, 10)?;
    for kind in ["momentum", "adam"] {
        let one64 = train_by_tape(None, DType::F64, kind, &f).map_err(err)?;
        for (how, reduction) in [
            ("sum of shares", Reduction::SumOfShares),
            ("weighted mean", Reduction::WeightedMean),
        ] {
            let dist64 = train_by_tape(Some((comm, reduction)), DType::F64, kind, &f).map_err(err)?;
            close_f64(&dist64, &one64).map_err(|e| format!("{kind} f64, {how}: {e}"))?;
            ensure(identical_to_rank0(comm, &dist64)?, || {
                format!("{kind} f64, {how}: ranks differ after 20 steps")
            })?;
        }
        let dist32 = train_by_tape(Some((comm, Reduction::SumOfShares)), DType::F32, kind, &f).map_err(err)?;
        let one32 = train_by_tape(None, DType::F32, kind, &f).map_err(err)?;
        close_f32(&dist32, &one32, &one64).map_err(|e| format!("{kind} f32: {e}"))?;
        ensure(identical_to_rank0(comm, &dist32)?, || {
            format!("{kind} f32: ranks differ after 20 steps")
        })?;
    }
    Ok(())
}

pub fn optimizer_matches_one_process(comm: &Comm, _: &Path) -> Result<(), String> {
    // Equal shares (12 rows on 2 or 3 ranks): the plain mean of Horovod's optimizer is exact.
    let rows = 12;
    let f = Fixture::new(comm, rows)?;
    let run = |distributed: bool| -> ferroflow::Result<Vec<Tensor>> {
        let (x, y) = (f.x.clone(), f.y.clone());
        let part = if distributed {
            shard_range(rows, comm.size(), comm.rank())
        } else {
            0..rows
        };
        let x = ferroflow::data::rows::row_range(&x, part.start, part.end)?;
        let y = ferroflow::data::rows::row_range(&y, part.start, part.end)?;
        let model = small_mlp(DType::F64);
        model.call(&x, Mode::Inference)?;
        assign(&model, &f.init)?;
        let vars = model.trainable_variables();
        let inner = Sgd::new(0.1)?.with_momentum(0.9)?;
        let opt: Box<dyn Optimizer> = if distributed {
            Box::new(DistributedOptimizer::new(inner, comm.clone()))
        } else {
            Box::new(inner)
        };
        for _ in 0..20 {
            let tape = GradientTape::new();
            let loss = model
                .call(&x, Mode::Training)?
                .sub(&y)?
                .square()?
                .reduce_mean(Axes::All)?;
            let grads: Vec<Tensor> = tape.gradient(&loss, &vars)?;
            opt.apply_gradients(grads.iter().zip(&vars))?;
        }
        Ok(vars.iter().map(Variable::value).collect())
    };
    if rows % comm.size() != 0 {
        return Ok(());
    }
    let dist = run(true).map_err(err)?;
    close_f64(&dist, &run(false).map_err(err)?)?;
    ensure(identical_to_rank0(comm, &dist)?, || "ranks differ".into())
}

/// The small MLP as a compiled Keras model starting from `init`.
pub fn compiled_from(init: &[Tensor]) -> ferroflow::Result<Model> {
    let model = compiled(small_mlp(DType::F64))?;
    model.build_from(&Tensor::zeros(&[1, 5], DType::F64)?)?;
    // `init` is in the module's variable order (see `initial_weights`), not get_weights'.
    assign(model.layer(), init)?;
    Ok(model)
}

pub fn compiled(layers: Sequential) -> ferroflow::Result<Model> {
    let mut model = Model::new(layers);
    model.compile(CompileOptions::new(Sgd::new(0.05)?.with_momentum(0.9)?, "mse").with_metrics(["mae"]))?;
    Ok(model)
}

pub fn fit_once(
    f: &Fixture,
    strategy: Option<&MultiWorkerMirroredStrategy>,
    epochs: usize,
) -> ferroflow::Result<(Model, History)> {
    let (x, y) = (&f.x, &f.y);
    let model = compiled_from(&f.init)?;
    let mut options = FitOptions::new()
        .epochs(epochs)
        .batch_size(16)
        .seed(7)
        .validation_split(0.2)
        .verbose(0);
    if let Some(s) = strategy {
        options = options.strategy(s);
    }
    let history = model.fit((x, y), options)?;
    Ok((model, history))
}

pub fn fit_matches_one_process(comm: &Comm, _: &Path) -> Result<(), String> {
    let strategy = MultiWorkerMirroredStrategy::new(comm.clone());
    let f = Fixture::new(comm, 50)?;
    let (dist, dist_history) = fit_once(&f, Some(&strategy), 3).map_err(err)?;
    let (one, one_history) = fit_once(&f, None, 3).map_err(err)?;
    let dist_w = dist.get_weights().map_err(err)?;
    close_f64(&dist_w, &one.get_weights().map_err(err)?)?;
    ensure(identical_to_rank0(comm, &dist_w)?, || "ranks' weights differ".into())?;
    // A loss function returning the batch's mean (one value) trains as one process too.
    let mean_loss = |strategy: Option<&MultiWorkerMirroredStrategy>| -> ferroflow::Result<Vec<Tensor>> {
        let mut model = Model::new(small_mlp(DType::F64));
        model.compile(CompileOptions::new(
            Sgd::new(0.05)?,
            ferroflow::nn::LossSpec::function("mean_sq", |y, p| p.sub(y)?.square()?.reduce_mean(Axes::All)),
        ))?;
        model.build_from(&Tensor::zeros(&[1, 5], DType::F64)?)?;
        assign(model.layer(), &f.init)?;
        let mut options = FitOptions::new().epochs(2).batch_size(16).seed(7).verbose(0);
        if let Some(s) = strategy {
            options = options.strategy(s);
        }
        model.fit((&f.x, &f.y), options)?;
        model.get_weights()
    };
    close_f64(
        &mean_loss(Some(&strategy)).map_err(err)?,
        &mean_loss(None).map_err(err)?,
    )
    .map_err(|e| format!("a loss returning a mean: {e}"))?;
    // Global batches smaller than the world: 5 rows in batches of 4 (the last holds 1 row),
    // and in batches of 1 with 2 rows held out, where every rank but one has an empty share
    // of every step and every validation batch (so it never sees a row to resolve its named
    // metrics from), yet all of them reduce the same metric states.
    let small = Fixture::new(comm, 5)?;
    let run_small = |s: Option<&MultiWorkerMirroredStrategy>,
                     batch: usize,
                     split: f64|
     -> ferroflow::Result<(Vec<Tensor>, History)> {
        let model = compiled_from(&small.init)?;
        let mut options = FitOptions::new().epochs(3).batch_size(batch).seed(1).verbose(0);
        if split > 0.0 {
            options = options.validation_split(split);
        }
        if let Some(s) = s {
            options = options.strategy(s);
        }
        let h = model.fit((&small.x, &small.y), options)?;
        Ok((model.get_weights()?, h))
    };
    for (batch, split) in [(4, 0.0), (1, 0.4)] {
        let (dist_small, dist_small_h) = run_small(Some(&strategy), batch, split).map_err(err)?;
        let (one_small, one_small_h) = run_small(None, batch, split).map_err(err)?;
        close_f64(&dist_small, &one_small).map_err(|e| format!("batches of {batch}: {e}"))?;
        let keys: &[&str] = if split > 0.0 {
            &["loss", "mae", "val_loss", "val_mae"]
        } else {
            &["loss", "mae"]
        };
        for key in keys {
            let (a, b) = (
                dist_small_h.get(key).unwrap_or_default(),
                one_small_h.get(key).unwrap_or_default(),
            );
            ensure(
                a.len() == 3 && b.len() == 3 && a.iter().zip(b).all(|(p, q)| (p - q).abs() <= 1e-10 * q.abs().max(1.0)),
                || format!("batches of {batch}: {key} {a:?} vs {b:?}"),
            )?;
        }
    }
    for key in ["loss", "mae", "val_loss", "val_mae"] {
        let d = dist_history.get(key).ok_or(format!("no {key} in the history"))?;
        let o = one_history
            .get(key)
            .ok_or(format!("no {key} in the one-process history"))?;
        let d_t: Vec<Tensor> = d.iter().map(|&v| Tensor::scalar(v)).collect();
        ensure(identical_to_rank0(comm, &d_t)?, || {
            format!("{key} differs between ranks")
        })?;
        for (a, b) in d.iter().zip(o) {
            ensure((a - b).abs() <= 1e-10 * b.abs().max(1.0), || {
                format!("{key}: {a} (data-parallel) vs {b} (one process)")
            })?;
        }
    }
    Ok(())
}

pub fn fit_sharded_datasets(comm: &Comm, _: &Path) -> Result<(), String> {
    // 23 rows sharded by rank: shards of 12/11 (or 8/8/7) rows in batches of 4 give the
    // ranks different batch counts; each epoch ends when the first runs out.
    let (x, y) = regression_data(comm, 23).map_err(err)?;
    let ds = Dataset::from_tensor_slices((&x, &y))
        .map_err(err)?
        .shard(comm.size(), comm.rank())
        .map_err(err)?
        .batch(4);
    let strategy = MultiWorkerMirroredStrategy::new(comm.clone()).auto_shard(AutoShard::Off);
    let model = compiled_from(&initial_weights(comm).map_err(err)?).map_err(err)?;
    let history = model
        .fit(&ds, FitOptions::new().epochs(2).verbose(0).strategy(&strategy))
        .map_err(err)?;
    // Three batches per step: ranks holding fewer batches for a step cut the others' group.
    let mut grouped = Model::new(small_mlp(DType::F64));
    grouped
        .compile(CompileOptions::new(Sgd::new(0.05).map_err(err)?, "mse").steps_per_execution(3))
        .map_err(err)?;
    grouped
        .fit(&ds, FitOptions::new().epochs(2).verbose(0).strategy(&strategy))
        .map_err(err)?;
    ensure(identical_to_rank0(comm, &grouped.get_weights().map_err(err)?)?, || {
        "weights differ between ranks with steps_per_execution".into()
    })?;
    let loss: Vec<Tensor> = history
        .get("loss")
        .unwrap_or_default()
        .iter()
        .map(|&v| Tensor::scalar(v))
        .collect();
    ensure(loss.len() == 2, || "two epochs of losses".into())?;
    ensure(identical_to_rank0(comm, &loss)?, || {
        "losses differ between ranks".into()
    })?;
    ensure(identical_to_rank0(comm, &model.get_weights().map_err(err)?)?, || {
        "weights differ between ranks".into()
    })
}

pub fn checkpoint_interop(comm: &Comm, dir: &Path) -> Result<(), String> {
    let strategy = MultiWorkerMirroredStrategy::new(comm.clone());
    // Distributed → one process: rank 0 writes, every rank reads into a model of its own.
    let f = Fixture::new(comm, 50)?;
    let (dist, _) = fit_once(&f, Some(&strategy), 2).map_err(err)?;
    for file in ["dist.safetensors", "dist.ckpt"] {
        if comm.rank() == 0 {
            dist.save_weights(dir.join(file)).map_err(err)?;
        }
        comm.barrier().map_err(err)?;
        let single = Model::new(small_mlp(DType::F64));
        single.load_weights(dir.join(file)).map_err(err)?;
        single
            .build_from(&Tensor::zeros(&[1, 5], DType::F64).map_err(err)?)
            .map_err(err)?;
        let (a, b) = (single.get_weights().map_err(err)?, dist.get_weights().map_err(err)?);
        ensure(a.iter().zip(&b).all(|(p, q)| values(p) == values(q)), || {
            format!("{file}: a one-process model loads other values")
        })?;
    }
    // One process → distributed: a one-process checkpoint seeds a data-parallel run, which
    // then trains exactly as the one process would from it.
    let (one, _) = fit_once(&f, None, 1).map_err(err)?;
    if comm.rank() == 0 {
        one.save_weights(dir.join("one.safetensors")).map_err(err)?;
    }
    comm.barrier().map_err(err)?;
    let (x, y) = (&f.x, &f.y);
    let resume = |s: Option<&MultiWorkerMirroredStrategy>| -> ferroflow::Result<Vec<Tensor>> {
        let model = compiled(small_mlp(DType::F64))?;
        model.load_weights(dir.join("one.safetensors"))?;
        let mut options = FitOptions::new().epochs(2).batch_size(10).seed(3).verbose(0);
        if let Some(s) = s {
            options = options.strategy(s);
        }
        model.fit((x, y), options)?;
        model.get_weights()
    };
    let dist_w = resume(Some(&strategy)).map_err(err)?;
    close_f64(&dist_w, &resume(None).map_err(err)?)?;
    ensure(identical_to_rank0(comm, &dist_w)?, || {
        "ranks differ after resuming".into()
    })
}

pub fn mismatch_detected(comm: &Comm, _: &Path) -> Result<(), String> {
    if comm.size() < 2 {
        return Ok(());
    }
    // The last rank builds a wider hidden layer.
    let units = if comm.rank() == comm.size() - 1 { 9 } else { 8 };
    let mut layers = Sequential::new();
    layers.add(Dense::new(units).with_seed(1));
    layers.add(Dense::new(2).with_seed(2));
    let model = Model::new(layers);
    model
        .build_from(&Tensor::zeros(&[1, 5], DType::F32).map_err(err)?)
        .map_err(err)?;
    match broadcast_trackable(comm.as_ref(), &model, 0) {
        Ok(()) => Err("the broadcast accepted different models".into()),
        Err(e) => {
            let msg = e.to_string();
            let names = msg.contains(&format!("rank {}", comm.size() - 1)) && msg.contains("[9]");
            ensure(names, || format!("the error does not name the mismatch: {msg}"))
        }
    }
}

pub fn backup_resume(comm: &Comm, dir: &Path) -> Result<(), String> {
    let strategy = MultiWorkerMirroredStrategy::new(comm.clone());
    let f = Fixture::new(comm, 50)?;
    let (x, y) = (&f.x, &f.y);
    let backup = dir.join("backup");
    let options =
        |s: &MultiWorkerMirroredStrategy| FitOptions::new().epochs(4).batch_size(8).seed(5).verbose(0).strategy(s);
    let uninterrupted = compiled_from(&f.init).map_err(err)?;
    uninterrupted.fit((x, y), options(&strategy)).map_err(err)?;

    // The last rank fails at the end of epoch 2: every rank stops with an error.
    let last = comm.size() - 1;
    let first = compiled_from(&f.init).map_err(err)?;
    let fail = LambdaCallback::new().on_epoch_end(move |_, epoch, _| {
        if epoch == 1 && comm_rank() == last {
            Err(ferroflow::Error::invalid("test", "simulated failure"))
        } else {
            Ok(())
        }
    });
    let outcome = first.fit(
        (x, y),
        options(&strategy)
            .with_callback(BackupAndRestore::new(&backup))
            .with_callback(fail),
    );
    ensure(outcome.is_err(), || "the interrupted fit did not fail".into())?;

    // A restarted job resumes from the chief's backup and ends as the uninterrupted one.
    let second = compiled_from(&f.init).map_err(err)?;
    second
        .fit((x, y), options(&strategy).with_callback(BackupAndRestore::new(&backup)))
        .map_err(err)?;
    let (a, b) = (
        second.get_weights().map_err(err)?,
        uninterrupted.get_weights().map_err(err)?,
    );
    ensure(a.iter().zip(&b).all(|(p, q)| values(p) == values(q)), || {
        "the resumed run ends elsewhere".into()
    })?;
    ensure(identical_to_rank0(comm, &a)?, || "ranks differ after resuming".into())
}

/// Runs every check, prints `check NAME: ok|FAILED` on rank 0 and returns how many passed
/// of how many, agreed over the ranks.
pub fn run_all(comm: &Comm, dir: &Path) -> (usize, usize) {
    let checks: [(&str, Check); 9] = [
        ("collectives", collectives),
        (
            "broadcast makes every rank's weights bit-identical",
            broadcast_identical,
        ),
        (
            "tape: half batches match one process (SGD momentum, Adam; f64 and f32)",
            tape_matches_one_process,
        ),
        (
            "DistributedOptimizer matches one process",
            optimizer_matches_one_process,
        ),
        (
            "fit: data-parallel matches one process, global logs",
            fit_matches_one_process,
        ),
        ("fit: pre-sharded datasets of uneven length", fit_sharded_datasets),
        (
            "checkpoints: distributed to single process and back",
            checkpoint_interop,
        ),
        (
            "a rank with another model is caught at the first broadcast",
            mismatch_detected,
        ),
        (
            "BackupAndRestore: an interrupted job resumes bit-identical",
            backup_resume,
        ),
    ];
    let mut passed = 0;
    for (name, check) in checks {
        let result = check(comm, dir);
        let mut failed = [f64::from(u8::from(result.is_err()))];
        let agreed = comm.all_reduce_in_place_f64(&mut failed, ReduceOp::Max);
        if let Err(e) = &result {
            eprintln!("rank {}: {name}: {e}", comm.rank());
        }
        let ok = agreed.is_ok() && failed[0] == 0.0;
        if comm.rank() == 0 {
            println!("check {name}: {}", if ok { "ok" } else { "FAILED" });
        }
        passed += usize::from(ok);
    }
    if comm.rank() == 0 {
        let _ = std::fs::remove_dir_all(dir);
    }
    (passed, checks.len())
}

/// This process's rank, for callbacks that cannot capture the communicator.
pub fn comm_rank() -> usize {
    std::env::var("OMPI_COMM_WORLD_RANK")
        .or_else(|_| std::env::var("PMI_RANK"))
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// How the failing rank fails.
#[derive(Clone, Copy, PartialEq)]
pub enum Fault {
    /// A callback returns an error.
    Error,
    /// The process exits mid-step.
    Exit,
    /// A callback panics.
    Panic,
}

/// A data-parallel fit in which the last rank fails in the second epoch, as `how` says. The
/// chief writes a checkpoint every epoch into `dir`. Every rank must stop, none may hang.
pub fn fault(comm: &Comm, dir: &Path, how: Fault) -> ExitCode {
    let strategy = MultiWorkerMirroredStrategy::new(comm.clone());
    let last = comm.size() - 1;
    let run = || -> ferroflow::Result<History> {
        let (x, y) = regression_data(comm, 256)?;
        let (x, y) = (x.cast(DType::F32)?, y.cast(DType::F32)?);
        let model = compiled(w4_like())?;
        let bomb = LambdaCallback::new().on_batch_begin(move |_, batch, _| {
            if comm_rank() == last && batch == 3 && FAULT_EPOCH.load(std::sync::atomic::Ordering::SeqCst) {
                match how {
                    Fault::Exit => {
                        eprintln!("rank {last}: exiting mid-step on purpose");
                        std::process::exit(7);
                    }
                    Fault::Panic => panic!("rank {last} panics on purpose"),
                    Fault::Error => return Err(ferroflow::Error::invalid("fault", "rank failed on purpose")),
                }
            }
            Ok(())
        });
        let arm = LambdaCallback::new().on_epoch_begin(|_, epoch, _| {
            FAULT_EPOCH.store(epoch == 1, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        });
        model.fit(
            (&x, &y),
            FitOptions::new()
                .epochs(3)
                .batch_size(16)
                .verbose(0)
                .strategy(&strategy)
                .with_callback(arm)
                .with_callback(bomb)
                .with_callback(
                    ModelCheckpoint::new(dir.join("ckpt-{epoch:02d}.safetensors").to_string_lossy().into_owned())
                        .save_weights_only(true),
                ),
        )
    };
    match run() {
        Ok(_) => {
            println!("rank {}: fit finished although a rank failed", comm.rank());
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("rank {}: fit stopped: {e}", comm.rank());
            ExitCode::from(3)
        }
    }
}

pub static FAULT_EPOCH: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn w4_like() -> Sequential {
    let mut m = Sequential::new();
    m.add(Dense::new(64).with_activation(Activation::Relu).with_seed(1));
    m.add(Dense::new(2).with_seed(2));
    m
}

/// Every checkpoint in `dir` loads completely (none is a partial write under its final name).
pub fn verify_dir(dir: &Path) -> ExitCode {
    let mut files = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let model = Model::new(w4_like());
        let loaded = Tensor::zeros(&[1, 5], DType::F32)
            .and_then(|x| model.build_from(&x))
            .and_then(|_| model.load_weights(&path));
        match loaded {
            Ok(()) => files += 1,
            Err(e) => {
                println!("verify-dir: {} does not load: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    println!("verify-dir: {files} checkpoint(s), all complete");
    ExitCode::SUCCESS
}
