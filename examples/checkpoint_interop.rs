//! Writes checkpoints for other tools to read: `cargo run --example checkpoint_interop -- DIR`.
//!
//! The lesson's model is restored from TensorFlow's own checkpoint, trained one Adam step,
//! and written as `DIR/model.safetensors` and as the TensorFlow checkpoint `DIR/model`
//! (`.index` + `.data-00000-of-00001`), with `DIR/expected.json` holding every value.
//! `scripts/verify_checkpoints.py DIR` then reads both with Python's `safetensors`, numpy and
//! a TensorFlow-format reader (and TensorFlow itself when it is installed).

use ferroflow::checkpoint::list_variables;
use ferroflow::prelude::*;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The lesson's dense layer: `sigmoid(x @ w)`.
#[derive(Module)]
struct Dense {
    w: Variable,
}

/// The lesson's two-layer model.
#[derive(Module)]
struct SequentialModule {
    dense_1: Dense,
    dense_2: Dense,
}

impl SequentialModule {
    fn call(&self, x: &Tensor) -> ferroflow::Result<Tensor> {
        let h = x.matmul(&self.dense_1.w.read()?)?.sigmoid()?;
        h.matmul(&self.dense_2.w.read()?)?.sigmoid()
    }
}

fn main() -> ferroflow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .ok_or_else(|| Error::invalid("checkpoint_interop", "usage: checkpoint_interop DIR"))?;
    std::fs::create_dir_all(&dir)?;
    let zeros = |r, c| Variable::new("w", Tensor::zeros(&[r, c], DType::F32)?);
    let model = SequentialModule {
        dense_1: Dense { w: zeros(3, 3)? },
        dense_2: Dense { w: zeros(3, 1)? },
    };
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/checkpoint/tests/fixtures/tf_ckpt/checkpoint1"
    );
    Checkpoint::new()
        .track("model", &model)?
        .read(fixture)?
        .assert_consumed()?;

    let optimizer = Adam::new(0.1)?;
    let tape = GradientTape::new();
    let loss = model
        .call(&Tensor::new([[2.0f32, 2.0, 2.0]]))?
        .square()?
        .reduce_mean(Axes::All)?;
    let vars = model.trainable_variables();
    let grads = tape.gradient(&loss, &vars)?;
    optimizer.apply_gradients(std::iter::zip(grads, &vars))?;

    let ckpt = Checkpoint::new()
        .track("model", &model)?
        .track("optimizer", &optimizer)?;
    let mut expected = BTreeMap::new();
    for (path, var) in ckpt.variables()? {
        let value = var.read()?;
        expected.insert(
            path,
            serde_json::json!({"dtype": value.dtype().name(), "shape": value.dims(), "values": value.to_f64_vec()?}),
        );
    }
    for path in [dir.join("model.safetensors"), dir.join("model")] {
        ckpt.write(&path)?;
        println!("wrote {} ({} variables)", path.display(), list_variables(&path)?.len());
    }
    let json = serde_json::to_string_pretty(&expected).map_err(|e| Error::external("json", e))?;
    std::fs::write(dir.join("expected.json"), json)?;
    Ok(())
}
