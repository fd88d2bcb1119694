//! Checkpoints across crates: the lesson's modules and the optimizers saved, listed and
//! restored in both formats; TensorFlow's own checkpoint of the lesson's model imported;
//! restore-status, mismatch and manager semantics of `spec/tf-function-semantics.md` (C01–C06);
//! training resumed from a checkpoint continuing bit-identically; corrupt files rejected
//! without a panic.

use ferroflow::autodiff::GradientTape;
use ferroflow::checkpoint::{
    latest_checkpoint, list_variables, load_variable, Checkpoint, CheckpointError, CheckpointManager, CheckpointReader,
    Format, Weights,
};
use ferroflow::nn::{Activation, Dense, Layer, Mode, Module, Sequential};
use ferroflow::optim::{losses, Adam, Optimizer};
use ferroflow::tensor::random::{self, Normal};
use ferroflow::tensor::{DType, Tensor, Trackable, Variable};
use std::path::{Path, PathBuf};

/// The lesson's `Dense`: one weight, sigmoid activation.
#[derive(Module)]
struct LessonDense {
    w: Variable,
}

impl LessonDense {
    fn new(inputs: usize, outputs: usize) -> Self {
        LessonDense {
            w: Variable::new("w", Tensor::zeros(&[inputs, outputs], DType::F32).unwrap()).unwrap(),
        }
    }
    fn call(&self, x: &Tensor) -> ferroflow::Result<Tensor> {
        x.matmul(&self.w.read()?)?.sigmoid()
    }
}

/// The lesson's `SequentialModule`.
#[derive(Module)]
struct SequentialModule {
    dense_1: LessonDense,
    dense_2: LessonDense,
}

impl SequentialModule {
    fn new() -> Self {
        SequentialModule {
            dense_1: LessonDense::new(3, 3),
            dense_2: LessonDense::new(3, 1),
        }
    }
    fn call(&self, x: &Tensor) -> ferroflow::Result<Tensor> {
        self.dense_2.call(&self.dense_1.call(x)?)
    }
}

fn fixture_prefix() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("checkpoint/tests/fixtures/tf_ckpt/checkpoint1")
}

/// The file names in `dir`, sorted.
fn files_in(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    files
}

fn names(path: &Path) -> Vec<String> {
    list_variables(path).unwrap().into_iter().map(|i| i.name).collect()
}

#[test]
fn tensorflow_checkpoint_of_the_lesson_model_restores_and_gives_tensorflows_output() {
    let model = SequentialModule::new();
    let status = Checkpoint::new()
        .track("model", &model)
        .unwrap()
        .read(fixture_prefix())
        .unwrap();
    status.assert_consumed().unwrap();
    let y = model.call(&Tensor::new([[2.0f32, 2.0, 2.0]])).unwrap();
    // `my_model([[2., 2., 2.]])` in TensorFlow 2.21 (checkpoint/spec/tf-checkpoint-format.md).
    approx::assert_relative_eq!(y.to_vec::<f32>().unwrap()[0], 0.6172168, max_relative = 1e-6);
    assert_eq!(names(&fixture_prefix()), ["model/dense_1/w", "model/dense_2/w"]);
    let w2 = load_variable(fixture_prefix(), "model/dense_2/w/.ATTRIBUTES/VARIABLE_VALUE").unwrap();
    assert_eq!(w2.to_vec::<f32>().unwrap(), vec![1.0668802, 0.19454929, -0.53082895]);
}

/// A two-layer Keras-style model and an Adam optimizer whose slots exist (built), initialised
/// from `seed`.
fn model_and_optimizer(seed: u64) -> (Sequential, Adam) {
    let mut m = Sequential::new();
    m.add(
        Dense::new(4)
            .with_activation(Activation::Relu)
            .with_seed(seed)
            .with_input_dim(3)
            .unwrap(),
    );
    m.add(Dense::new(1).with_seed(seed + 1).with_input_dim(4).unwrap());
    let opt = Adam::new(0.01).unwrap();
    opt.build(&m.trainable_variables()).unwrap();
    (m, opt)
}

fn batch() -> (Tensor, Tensor) {
    // A fixed formula, not the seeded generator: its op seeds continue between calls.
    let x = Tensor::range(0.0, 48.0, 1.0, DType::F32)
        .unwrap()
        .sin()
        .unwrap()
        .reshape(&[16, 3])
        .unwrap();
    let y = Tensor::range(0.0, 16.0, 1.0, DType::F32)
        .unwrap()
        .cos()
        .unwrap()
        .reshape(&[16, 1])
        .unwrap();
    (x, y)
}

fn train(m: &(Sequential, Adam), steps: usize) {
    let (x, y) = batch();
    let vars = m.0.trainable_variables();
    for _ in 0..steps {
        let tape = GradientTape::new();
        let loss = losses::mean_squared_error(&y, &m.0.call(&x, Mode::Training).unwrap()).unwrap();
        let grads = tape.gradient(&loss, &vars).unwrap();
        m.1.apply_gradients(std::iter::zip(grads, &vars)).unwrap();
    }
}

/// Every value of the model and the optimizer, by path, as exact f64s.
fn values(m: &(Sequential, Adam)) -> Vec<(String, Vec<f64>)> {
    let mut out: Vec<(String, Vec<f64>)> = Vec::new();
    for (prefix, vars) in [
        ("model", m.0.variables_by_path()),
        ("optimizer", m.1.variables_by_path()),
    ] {
        out.extend(
            vars.into_iter()
                .map(|(p, v)| (format!("{prefix}/{p}"), v.value().to_f64_vec().unwrap())),
        );
    }
    out
}

fn checkpoint(m: &(Sequential, Adam)) -> Checkpoint<'_> {
    Checkpoint::new()
        .track("model", &m.0)
        .unwrap()
        .track("optimizer", &m.1)
        .unwrap()
}

#[test]
fn both_formats_round_trip_a_model_with_its_optimizer_state() {
    let dir = tempfile::tempdir().unwrap();
    let trained = model_and_optimizer(1);
    train(&trained, 5);
    for file in ["ck", "ck.safetensors"] {
        let path = checkpoint(&trained).write(dir.path().join(file)).unwrap();
        let listed = names(&path);
        for want in [
            "model/layers/0/kernel",
            "model/layers/1/bias",
            "optimizer/iterations",
            "optimizer/m/3",
            "optimizer/v/0",
        ] {
            assert!(listed.iter().any(|n| n == want), "{want} missing from {listed:?}");
        }
        let fresh = model_and_optimizer(7);
        assert_ne!(values(&fresh), values(&trained));
        checkpoint(&fresh).read(&path).unwrap().assert_consumed().unwrap();
        assert_eq!(values(&fresh), values(&trained));
        assert_eq!(fresh.1.iterations().unwrap(), 5);
    }
}

#[test]
fn training_resumed_from_a_checkpoint_continues_bit_identically() {
    for format in [Format::TensorFlow, Format::Safetensors] {
        let dir = tempfile::tempdir().unwrap();
        let straight = model_and_optimizer(1);
        let first = model_and_optimizer(1);
        // Copy the start explicitly, whatever the layers' seeding gives.
        for (a, b) in first.0.variables().iter().zip(straight.0.variables()) {
            a.assign(&b.value()).unwrap();
        }
        train(&straight, 10);
        train(&first, 4);
        let ck = checkpoint(&first);
        let mut manager = CheckpointManager::new(&ck, dir.path(), Some(3))
            .unwrap()
            .with_format(format);
        manager.save().unwrap();
        drop(manager);

        // A new process: different initial values, the same structure.
        let resumed = model_and_optimizer(99);
        let ck = checkpoint(&resumed);
        let manager = CheckpointManager::new(&ck, dir.path(), Some(3))
            .unwrap()
            .with_format(format);
        assert!(manager.restore_or_initialize().unwrap().is_some());
        assert_eq!(ck.save_counter(), 1);
        train(&resumed, 6);
        assert_eq!(values(&resumed), values(&straight), "{format:?}");
    }
}

#[test]
fn write_is_exact_and_save_numbers_with_a_counter_and_state_file() {
    // C01 / C02.
    let dir = tempfile::tempdir().unwrap();
    let v = Variable::new("v", Tensor::new([1.0f32, 2.0])).unwrap();
    let ck = Checkpoint::new().track("v", &v).unwrap();
    let p = ck.write(dir.path().join("c01/w")).unwrap();
    assert_eq!(p, dir.path().join("c01/w"));
    let files = files_in(&dir.path().join("c01"));
    assert_eq!(files, ["w.data-00000-of-00001", "w.index"]);
    assert_eq!(CheckpointReader::open(&p).unwrap().save_counter().unwrap(), None);

    let c02 = dir.path().join("c02");
    assert_eq!(ck.save(c02.join("ckpt")).unwrap(), c02.join("ckpt-1"));
    assert_eq!(ck.save(c02.join("ckpt")).unwrap(), c02.join("ckpt-2"));
    assert_eq!(ck.save_counter(), 2);
    assert_eq!(
        std::fs::read_to_string(c02.join("checkpoint")).unwrap(),
        "model_checkpoint_path: \"ckpt-2\"\nall_model_checkpoint_paths: \"ckpt-2\"\n"
    );
    assert_eq!(latest_checkpoint(&c02).unwrap(), Some(c02.join("ckpt-2")));
    // C06: a directory resolves through its state file.
    assert_eq!(names(&c02), ["v"]);
    assert_eq!(CheckpointReader::open(&c02).unwrap().save_counter().unwrap(), Some(2));
    assert_eq!(
        ck.save(dir.path().join("s.safetensors")).unwrap(),
        dir.path().join("s-3.safetensors")
    );
    assert_eq!(
        CheckpointReader::open(dir.path().join("s-3.safetensors"))
            .unwrap()
            .save_counter()
            .unwrap(),
        Some(3)
    );
}

#[test]
fn restore_status_reports_unused_values_and_unmatched_variables() {
    // C03 / C03c / C03d.
    let dir = tempfile::tempdir().unwrap();
    for ext in ["", ".safetensors"] {
        let a = Variable::new("a", Tensor::scalar(1.0f32)).unwrap();
        let b = Variable::new("b", Tensor::scalar(2.0f32)).unwrap();
        let p = Checkpoint::new()
            .track("a", &a)
            .unwrap()
            .track("b", &b)
            .unwrap()
            .write(dir.path().join(format!("ck{ext}")))
            .unwrap();
        let a2 = Variable::new("a", Tensor::scalar(0.0f32)).unwrap();
        let status = Checkpoint::new().track("a", &a2).unwrap().read(&p).unwrap();
        assert_eq!(a2.value().to_scalar::<f32>().unwrap(), 1.0);
        status.assert_existing_objects_matched().unwrap();
        let e = status.assert_consumed().unwrap_err().to_string();
        assert!(e.contains("b") && e.contains("not used"), "{e}");
        status.expect_partial();
        assert_eq!(status.unused(), ["b"]);

        // A variable the checkpoint lacks.
        let c = Variable::new("c", Tensor::scalar(0.0f32)).unwrap();
        let status = Checkpoint::new()
            .track("a", &a2)
            .unwrap()
            .track("b", &b)
            .unwrap()
            .track("c", &c)
            .unwrap()
            .read(&p)
            .unwrap();
        assert_eq!(status.unmatched(), ["c"]);
        assert!(status.assert_existing_objects_matched().is_err());

        // restore() of a write() checkpoint: save_counter has no value.
        let status = Checkpoint::new()
            .track("a", &a2)
            .unwrap()
            .track("b", &b)
            .unwrap()
            .restore(&p)
            .unwrap();
        assert_eq!(status.unmatched(), ["save_counter"]);
        assert!(status.assert_consumed().is_err());
    }
    // restore() of save() continues the counter.
    let v = Variable::new("v", Tensor::scalar(1.0f32)).unwrap();
    let src = Checkpoint::new().track("v", &v).unwrap();
    src.save(dir.path().join("s/s")).unwrap();
    let p2 = src.save(dir.path().join("s/s")).unwrap();
    let v2 = Variable::new("v", Tensor::scalar(0.0f32)).unwrap();
    let ck2 = Checkpoint::new().track("v", &v2).unwrap();
    ck2.restore(&p2).unwrap().assert_consumed().unwrap();
    assert_eq!(ck2.save_counter(), 2);
    assert_eq!(ck2.save(dir.path().join("s/s")).unwrap(), dir.path().join("s/s-3"));
    // A missing path.
    let e = ck2.restore(dir.path().join("nope")).unwrap_err();
    assert!(matches!(e, CheckpointError::NotFound { .. }), "{e}");
}

#[test]
fn every_mismatch_is_reported_at_once_and_nothing_is_assigned() {
    let dir = tempfile::tempdir().unwrap();
    let model = SequentialModule::new();
    model
        .dense_1
        .w
        .assign(&Tensor::ones(&[3, 3], DType::F32).unwrap())
        .unwrap();
    for ext in ["", ".safetensors"] {
        let p = Checkpoint::new()
            .track("model", &model)
            .unwrap()
            .write(dir.path().join(format!("m{ext}")))
            .unwrap();
        let bad = SequentialModule {
            dense_1: LessonDense {
                w: Variable::new("w", Tensor::zeros(&[3, 3], DType::F64).unwrap()).unwrap(),
            },
            dense_2: LessonDense {
                w: Variable::new("w", Tensor::zeros(&[3, 2], DType::F32).unwrap()).unwrap(),
            },
        };
        match Checkpoint::new().track("model", &bad).unwrap().read(&p).unwrap_err() {
            CheckpointError::Mismatch { mismatches, .. } => {
                assert_eq!(mismatches.len(), 2, "{mismatches:?}");
                assert!(mismatches[0].contains("model/dense_1/w") && mismatches[0].contains("float64"));
                assert!(mismatches[1].contains("model/dense_2/w") && mismatches[1].contains("[3, 2]"));
            }
            e => panic!("expected a mismatch, got {e}"),
        }
        assert_eq!(bad.dense_1.w.value().to_vec::<f64>().unwrap(), vec![0.0; 9]);
    }
}

#[test]
fn manager_keeps_the_newest_and_recovers_its_list() {
    // C05 / C05b.
    let dir = tempfile::tempdir().unwrap();
    let v = Variable::new("v", Tensor::scalar(0.0f32)).unwrap();
    let ck = Checkpoint::new().track("v", &v).unwrap();
    // TensorFlow's layout, as `tf.train.CheckpointManager` writes it.
    let mut mgr = CheckpointManager::new(&ck, dir.path(), Some(2))
        .unwrap()
        .with_format(Format::TensorFlow);
    assert_eq!(mgr.restore_or_initialize().unwrap(), None);
    for i in 0..3 {
        v.assign(&Tensor::scalar(i as f32)).unwrap();
        assert_eq!(mgr.save().unwrap(), dir.path().join(format!("ckpt-{}", i + 1)));
    }
    assert_eq!(
        mgr.checkpoints(),
        [dir.path().join("ckpt-2"), dir.path().join("ckpt-3")]
    );
    let files = files_in(dir.path());
    assert_eq!(
        files,
        [
            "checkpoint",
            "ckpt-2.data-00000-of-00001",
            "ckpt-2.index",
            "ckpt-3.data-00000-of-00001",
            "ckpt-3.index"
        ]
    );
    let state = std::fs::read_to_string(dir.path().join("checkpoint")).unwrap();
    assert!(state.starts_with("model_checkpoint_path: \"ckpt-3\"\nall_model_checkpoint_paths: \"ckpt-2\"\nall_model_checkpoint_paths: \"ckpt-3\"\n"), "{state}");
    assert_eq!(state.matches("all_model_checkpoint_timestamps: ").count(), 2);
    assert!(state.contains("last_preserved_timestamp: "));

    assert!(CheckpointManager::new(&ck, dir.path(), Some(0)).is_err());
    let n = mgr.save_numbered(100).unwrap();
    assert_eq!(n, dir.path().join("ckpt-100"));
    drop(mgr);
    let w = Variable::new("v", Tensor::scalar(9.0f32)).unwrap();
    let ck2 = Checkpoint::new().track("v", &w).unwrap();
    let mgr2 = CheckpointManager::new(&ck2, dir.path(), Some(2)).unwrap();
    assert_eq!(
        mgr2.checkpoints(),
        [dir.path().join("ckpt-3"), dir.path().join("ckpt-100")]
    );
    assert_eq!(mgr2.restore_or_initialize().unwrap(), Some(dir.path().join("ckpt-100")));
    assert_eq!(w.value().to_scalar::<f32>().unwrap(), 2.0);
    assert_eq!(ck2.save_counter(), 4);
}

#[test]
fn save_and_load_weights_need_an_exact_match() {
    let dir = tempfile::tempdir().unwrap();
    let (m, _) = model_and_optimizer(5);
    for file in ["w.safetensors", "w"] {
        let p = dir.path().join(file);
        m.save_weights(&p).unwrap();
        assert_eq!(
            names(&p),
            ["layers/0/bias", "layers/0/kernel", "layers/1/bias", "layers/1/kernel"]
        );
        let (m2, _) = model_and_optimizer(6);
        m2.load_weights(&p).unwrap();
        let x = batch().0;
        assert_eq!(
            m2.call(&x, Mode::Inference).unwrap().to_vec::<f32>().unwrap(),
            m.call(&x, Mode::Inference).unwrap().to_vec::<f32>().unwrap()
        );
        let lesson = SequentialModule::new();
        let e = lesson.load_weights(&p).unwrap_err().to_string();
        assert!(
            e.contains("dense_1/w: no stored value") && e.contains("layers/0/kernel: stored but not"),
            "{e}"
        );
    }
}

/// Truncations and byte flips of real checkpoints: an error or a correct load, never a panic.
#[test]
fn truncated_and_corrupted_checkpoints_are_errors_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let model = SequentialModule::new();
    model
        .dense_1
        .w
        .assign(&random::normal(&[3, 3], Normal::default().seed(1)).unwrap())
        .unwrap();
    let expected: Vec<f32> = model.dense_1.w.value().to_vec().unwrap();
    let ck = Checkpoint::new().track("model", &model).unwrap();
    let st = ck.write(dir.path().join("m.safetensors")).unwrap();
    let tf = ck.write(dir.path().join("m")).unwrap();
    let tf_index = PathBuf::from(format!("{}.index", tf.display()));
    let tf_data = PathBuf::from(format!("{}.data-00000-of-00001", tf.display()));
    let mut checked = 0;
    for (file, open_path) in [(&st, &st), (&tf_index, &tf), (&tf_data, &tf)] {
        let original = std::fs::read(file).unwrap();
        let mut variants: Vec<Vec<u8>> = (0..original.len()).map(|n| original[..n].to_vec()).collect();
        for i in 0..original.len() {
            let mut b = original.clone();
            b[i] ^= 0x5A;
            variants.push(b);
        }
        for bytes in variants {
            std::fs::write(file, &bytes).unwrap();
            let fresh = SequentialModule::new();
            match Checkpoint::new().track("model", &fresh).unwrap().read(open_path) {
                Err(e) => assert!(
                    e.to_string().contains(dir.path().to_str().unwrap()),
                    "error without the file: {e}"
                ),
                Ok(status) => {
                    // A flip the format cannot detect (e.g. in JSON whitespace) must still load right.
                    if status.assert_consumed().is_ok() {
                        let got: Vec<f32> = fresh.dense_1.w.value().to_vec().unwrap();
                        let same = got.iter().zip(&expected).all(|(a, b)| a.to_bits() == b.to_bits());
                        assert!(same || *file == st, "undetected corruption in {}", file.display());
                    }
                }
            }
            checked += 1;
        }
        std::fs::write(file, &original).unwrap();
    }
    assert!(checked > 1000, "{checked}");
}

#[test]
fn overwriting_a_checkpoint_replaces_it_whole_and_leaves_no_temporaries() {
    let dir = tempfile::tempdir().unwrap();
    let v = Variable::new("v", Tensor::new([1.0f64, 2.0])).unwrap();
    let ck = Checkpoint::new().track("v", &v).unwrap();
    for file in ["latest", "latest.safetensors"] {
        for round in 0..3 {
            v.assign(&Tensor::new([round as f64, -1.0])).unwrap();
            ck.write(dir.path().join(file)).unwrap();
            assert_eq!(
                load_variable(dir.path().join(file), "v")
                    .unwrap()
                    .to_vec::<f64>()
                    .unwrap(),
                vec![round as f64, -1.0]
            );
        }
    }
    let files = files_in(dir.path());
    assert_eq!(
        files,
        ["latest.data-00000-of-00001", "latest.index", "latest.safetensors"]
    );
}

#[test]
fn the_manager_saves_safetensors_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let v = Variable::new("v", Tensor::new([1.0f32, 2.0])).unwrap();
    let ck = Checkpoint::new().track("v", &v).unwrap();
    let mut mgr = CheckpointManager::new(&ck, dir.path(), Some(1)).unwrap();
    assert_eq!(mgr.save().unwrap(), dir.path().join("ckpt-1.safetensors"));
    assert_eq!(mgr.save().unwrap(), dir.path().join("ckpt-2.safetensors"));
    assert!(!dir.path().join("ckpt-1.safetensors").exists());
    assert_eq!(
        latest_checkpoint(dir.path()).unwrap(),
        Some(dir.path().join("ckpt-2.safetensors"))
    );
    assert_eq!(
        CheckpointReader::open(dir.path()).unwrap().save_counter().unwrap(),
        Some(2)
    );
}

/// A safetensors checkpoint of `v = [1, 2]` whose stored save counter is `counter`.
fn safetensors_with_counter(path: &Path, counter: &str) {
    let header = format!(
        r#"{{"__metadata__":{{"save_counter":"{counter}"}},"v":{{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}}}"#
    );
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    for x in [1.0f32, 2.0] {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_restored_save_counter_is_checked_and_never_wraps() {
    let dir = tempfile::tempdir().unwrap();
    let v = Variable::new("v", Tensor::new([0.0f32, 0.0])).unwrap();
    let ck = Checkpoint::new().track("v", &v).unwrap();

    // At i64::MAX the next save is an error, and nothing is written.
    let max = dir.path().join("max.safetensors");
    safetensors_with_counter(&max, &i64::MAX.to_string());
    ck.restore(&max).unwrap().assert_consumed().unwrap();
    assert_eq!(ck.save_counter(), i64::MAX);
    let err = ck.save(dir.path().join("next")).unwrap_err();
    assert!(err.to_string().contains("overflow"), "{err}");
    assert_eq!(ck.save_counter(), i64::MAX);
    let mut manager = CheckpointManager::new(&ck, dir.path().join("managed"), Some(2)).unwrap();
    assert!(manager.save().is_err());
    assert!(!dir.path().join("managed").join("checkpoint").exists());

    // A negative counter cannot come from `save`: the file is corrupt.
    let negative = dir.path().join("negative.safetensors");
    safetensors_with_counter(&negative, "-5");
    assert!(matches!(
        CheckpointReader::open(&negative).unwrap().save_counter(),
        Err(CheckpointError::Corrupt { .. })
    ));
    assert!(matches!(ck.restore(&negative), Err(CheckpointError::Corrupt { .. })));
}

#[cfg(unix)]
#[test]
fn index_and_state_files_that_are_not_regular_files_are_refused() {
    // A symlink to /dev/zero reports 0 bytes and never ends: it must be an error, not a read
    // that grows until memory runs out.
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("ckpt.index")).unwrap();
    assert!(matches!(
        CheckpointReader::open(dir.path().join("ckpt")),
        Err(CheckpointError::Io { .. })
    ));
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("checkpoint")).unwrap();
    assert!(latest_checkpoint(dir.path()).is_err());
}
