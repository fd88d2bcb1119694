//! The world of one (no MPI): `fit` with a strategy (share of the global batch, summed
//! gradients, agreements, reduced logs, the start broadcast) trains as plain `fit` does, and
//! the multi-process checks of `examples/mpi_checks.rs` pass.

#[path = "../examples/support/distributed_checks.rs"]
mod checks;

use ferroflow::distribute::{AutoShard, LocalCommunicator, MultiWorkerMirroredStrategy};
use ferroflow::nn::callbacks::ModelCheckpoint;
use ferroflow::prelude::*;
use std::sync::Arc;

/// A compiled model starting from `init` (models that are compared start from the same
/// values explicitly, whatever their seeding gives).
fn model_from(init: &[Tensor]) -> ferroflow::Result<Model> {
    let m = model()?;
    m.build_from(&Tensor::zeros(&[1, 4], DType::F64)?)?;
    m.set_weights(init)?;
    Ok(m)
}

fn initial() -> ferroflow::Result<Vec<Tensor>> {
    let m = model()?;
    m.build_from(&Tensor::zeros(&[1, 4], DType::F64)?)?;
    m.get_weights()
}

fn model() -> ferroflow::Result<Model> {
    let mut layers = Sequential::new();
    layers.add(
        Dense::new(6)
            .with_activation(Activation::Tanh)
            .with_seed(1)
            .with_dtype(DType::F64),
    );
    layers.add(Dense::new(2).with_seed(2).with_dtype(DType::F64));
    let mut m = Model::new(layers);
    m.compile(CompileOptions::new(Sgd::new(0.1)?.with_momentum(0.9)?, "mse").with_metrics(["mae"]))?;
    Ok(m)
}

fn data() -> ferroflow::Result<(Tensor, Tensor)> {
    let x = random::normal(&[37, 4], Normal::default().seed(3).dtype(DType::F64))?;
    let y = x.matmul(&random::normal(&[4, 2], Normal::default().seed(4).dtype(DType::F64))?)?;
    Ok((x, y))
}

fn close(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(p, q)| (p - q).abs() <= 1e-12 * q.abs().max(1.0))
}

#[test]
fn a_world_of_one_trains_as_plain_fit() -> ferroflow::Result<()> {
    let (x, y) = data()?;
    let init = initial()?;
    let run = |strategy: Option<&MultiWorkerMirroredStrategy>| -> ferroflow::Result<(Vec<Vec<f64>>, History)> {
        let m = model_from(&init)?;
        let mut options = FitOptions::new()
            .epochs(3)
            .batch_size(8)
            .seed(5)
            .validation_split(0.25)
            .verbose(0);
        if let Some(s) = strategy {
            options = options.strategy(s);
        }
        let h = m.fit((&x, &y), options)?;
        assert!(
            m.distribute_strategy().is_none(),
            "the strategy is only set while fit runs"
        );
        let w = m
            .get_weights()?
            .iter()
            .map(|t| t.to_vec::<f64>())
            .collect::<ferroflow::Result<_>>()?;
        Ok((w, h))
    };
    let (plain_w, plain_h) = run(None)?;
    let (dist_w, dist_h) = run(Some(&MultiWorkerMirroredStrategy::local()))?;
    for (a, b) in dist_w.iter().zip(&plain_w) {
        assert!(close(a, b), "{a:?} vs {b:?}");
    }
    for key in ["loss", "mae", "val_loss", "val_mae"] {
        assert!(close(dist_h.get(key).unwrap(), plain_h.get(key).unwrap()), "{key}");
    }
    Ok(())
}

#[test]
fn a_world_of_one_is_the_chief_and_writes() -> ferroflow::Result<()> {
    let (x, y) = data()?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("w-{epoch}.safetensors").to_string_lossy().into_owned();
    let m = model()?;
    let strategy = MultiWorkerMirroredStrategy::local();
    let mut seen_chief = false;
    let probe = ferroflow::nn::callbacks::LambdaCallback::new().on_epoch_end(|model, _, _| {
        seen_chief = model.is_chief() && model.distribute_strategy().is_some();
        Ok(())
    });
    m.fit(
        (&x, &y),
        FitOptions::new()
            .epochs(2)
            .verbose(0)
            .strategy(&strategy)
            .with_callback(probe)
            .with_callback(ModelCheckpoint::new(path).save_weights_only(true)),
    )?;
    assert!(seen_chief);
    assert!(dir.path().join("w-2.safetensors").exists());
    Ok(())
}

#[test]
fn pre_sharded_datasets_train_on_every_batch() -> ferroflow::Result<()> {
    let (x, y) = data()?;
    let ds = Dataset::from_tensor_slices((&x, &y))?.shard(1, 0)?.batch(10);
    let strategy = MultiWorkerMirroredStrategy::local().auto_shard(AutoShard::Off);
    let init = initial()?;
    let (a, b) = (model_from(&init)?, model_from(&init)?);
    let ha = a.fit(&ds, FitOptions::new().epochs(2).verbose(0).strategy(&strategy))?;
    let hb = b.fit(&ds, FitOptions::new().epochs(2).verbose(0))?;
    assert!(close(ha.get("loss").unwrap(), hb.get("loss").unwrap()));
    Ok(())
}

/// The multi-process checks of `examples/mpi_checks.rs`, on the world of one.
#[test]
fn the_mpi_checks_pass_on_a_world_of_one() {
    let comm: checks::Comm = Arc::new(LocalCommunicator::new());
    let dir = tempfile::tempdir().unwrap();
    let (passed, total) = checks::run_all(&comm, dir.path());
    assert_eq!((passed, total), (9, 9));
}
