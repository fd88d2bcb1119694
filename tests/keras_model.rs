//! The Keras model's other faces: the summary table, Keras JSON round trips, weights saved
//! and loaded (also into a model whose layers have not built yet), and the lesson's own
//! module turned into a Keras model.

use ferroflow::prelude::*;

#[test]
fn summary_is_keras_table() -> ferroflow::Result<()> {
    let mut s = Sequential::new().with_name("sequential");
    s.add(Dense::new(64).with_name("dense").with_activation(Activation::Relu));
    s.add(Dense::new(10).with_name("dense_1"));
    let mut model = Model::new(s);
    let unbuilt = model.summary()?;
    assert!(
        unbuilt.contains("│ dense (Dense)                   │ ?                      │   0 (unbuilt) │"),
        "{unbuilt}"
    );
    assert!(unbuilt.contains(" Total params: 0 (0.00 B)"));
    model.predict_on_batch(&Tensor::zeros(&[2, 784], DType::F32)?)?;
    let want = "\
Model: \"sequential\"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ dense (Dense)                   │ (None, 64)             │        50,240 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense_1 (Dense)                 │ (None, 10)             │           650 │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 50,890 (198.79 KB)
 Trainable params: 50,890 (198.79 KB)
 Non-trainable params: 0 (0.00 B)
";
    assert_eq!(model.summary()?, want);
    let wide = model.summary_with_width(88)?;
    assert!(wide.contains("┃ Layer (type)                         ┃ Output Shape                ┃         Param # ┃"));
    // After a training step the optimizer's variables count too.
    model.compile(CompileOptions::new(
        Adam::new(0.001)?,
        Loss::SparseCategoricalCrossentropy(Predictions::Logits),
    ))?;
    model.train_on_batch(&Tensor::zeros(&[2, 784], DType::F32)?, &Tensor::new([1i32, 2]), None)?;
    let trained = model.summary()?;
    // Adam: iterations (int64), the float32 rate, and m and v for 50,890 parameters.
    assert!(trained.contains(" Optimizer params: 101,782 (397.59 KB)"), "{trained}");
    assert!(trained.contains(" Total params: 152,672 (596.38 KB)"), "{trained}");
    Ok(())
}

#[test]
fn layers_without_weights_get_unique_names_as_keras_needs() -> ferroflow::Result<()> {
    // Keras refuses a model whose layers share a name.
    let mut s = Sequential::new().with_name("twice");
    s.add(Dense::new(3).with_input_dim(4)?);
    s.add(ferroflow::nn::Dropout::new(0.5)?);
    s.add(Dense::new(3));
    s.add(ferroflow::nn::Dropout::new(0.5)?);
    s.add(Activation::Relu);
    s.add(Activation::Tanh);
    let model = Model::new(s);
    model.predict_on_batch(&Tensor::zeros(&[1, 4], DType::F32)?)?;
    let v: serde_json::Value = serde_json::from_str(&model.to_json()?).unwrap();
    let names: Vec<&str> = v["config"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["config"]["name"].as_str().unwrap())
        .collect();
    // Named at construction from a per-process counter, as Keras does (other tests in this
    // binary make dropouts too).
    assert!(
        names[1].starts_with("dropout") && names[3].starts_with("dropout_"),
        "{names:?}"
    );
    assert_eq!(&names[4..], ["activation", "activation_1"]);
    let unique: std::collections::HashSet<_> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "{names:?}");
    let summary = model.summary()?;
    let row = format!("{} (Dropout)", names[3]);
    assert!(
        summary.contains(&row) && summary.contains("activation_1 (Activation)"),
        "{summary}"
    );
    // Read back, the names stay what the file says.
    let back = Model::from_json(&model.to_json()?)?;
    let again: serde_json::Value = serde_json::from_str(&back.to_json()?).unwrap();
    assert_eq!(again["config"]["layers"][3]["config"]["name"], names[3]);
    assert_eq!(again["config"]["layers"][5]["config"]["name"], "activation_1");
    Ok(())
}

#[test]
fn to_json_refuses_what_keras_would_read_differently_and_names_the_layer() -> ferroflow::Result<()> {
    // Keras reads "leaky_relu" with slope 0.2: another slope cannot be written, even nested.
    let mut inner = Sequential::new().with_name("inner");
    inner.add(
        Dense::new(2)
            .with_name("leaky")
            .with_activation(Activation::LeakyRelu(0.1)),
    );
    let mut outer = Sequential::new().with_name("outer");
    outer.add(Dense::new(2).with_activation(Activation::LeakyRelu(0.2)));
    outer.add(inner);
    let err = Model::new(outer).to_json().unwrap_err().to_string();
    assert!(err.contains("outer/inner/leaky (Dense)"), "{err}");
    let mut fine = Sequential::new();
    fine.add(Dense::new(2).with_activation(Activation::LeakyRelu(0.2)));
    fine.add(Activation::LeakyRelu(0.2));
    let v: serde_json::Value = serde_json::from_str(&Model::new(fine).to_json()?).unwrap();
    assert_eq!(v["config"]["layers"][1]["config"]["activation"], "leaky_relu");
    Ok(())
}

#[test]
fn keras_json_round_trips_and_builds_fresh_uncompiled_models() -> ferroflow::Result<()> {
    let mut s = Sequential::new().with_name("seq_json");
    s.add(
        Dense::new(3)
            .with_name("hidden")
            .with_activation(Activation::Relu)
            .with_input_dim(4)?,
    );
    s.add(ferroflow::nn::Dropout::new(0.25)?);
    s.add(
        Dense::new(1)
            .with_name("out")
            .with_bias(false)
            .with_kernel_initializer(ferroflow::nn::initializers::Initializer::Zeros),
    );
    let mut model = Model::new(s);
    model.compile(CompileOptions::new(Sgd::new(0.1)?, "mse").with_metrics(["mae"]))?;
    model.predict_on_batch(&Tensor::zeros(&[1, 4], DType::F32)?)?;
    let json = model.to_json()?;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["module"], "keras");
    assert_eq!(v["class_name"], "Sequential");
    assert_eq!(v["config"]["name"], "seq_json");
    let layers = v["config"]["layers"].as_array().unwrap();
    assert_eq!(layers[0]["class_name"], "Dense");
    assert_eq!(layers[0]["config"]["units"], 3);
    assert_eq!(layers[0]["config"]["activation"], "relu");
    assert_eq!(layers[0]["config"]["kernel_initializer"]["class_name"], "GlorotUniform");
    assert_eq!(layers[0]["build_config"]["input_shape"], serde_json::json!([null, 4]));
    assert_eq!(layers[1]["config"]["rate"], 0.25);
    assert_eq!(layers[2]["config"]["use_bias"], false);
    assert_eq!(layers[2]["build_config"]["input_shape"], serde_json::json!([null, 3]));
    assert_eq!(v["compile_config"]["loss"], "mean_squared_error");
    assert!(json.starts_with(r#"{"module": "keras", "class_name": "Sequential", "config": {"name": "seq_json", "trainable": true, "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null}, "layers": [{"module": "keras.layers", "class_name": "Dense""#), "{json}");

    let back = Model::from_json(&json)?;
    assert!(!back.is_compiled() && !back.is_built());
    assert_eq!(back.name(), "seq_json");
    // Built on first use; then its JSON is the original's, without the compile config.
    back.predict_on_batch(&Tensor::zeros(&[1, 4], DType::F32)?)?;
    let again: serde_json::Value = serde_json::from_str(&back.to_json()?).unwrap();
    assert_eq!(again["config"], v["config"]);
    assert_eq!(again["compile_config"], serde_json::json!({}));
    assert_eq!(
        back.predict_on_batch(&Tensor::ones(&[1, 4], DType::F32)?)?
            .to_vec::<f32>()?,
        vec![0.0],
        "zeros kernel"
    );

    // Keras 3's own file (an InputLayer first, older plain-string dtypes) reads too.
    let keras = r#"{"module": "keras", "class_name": "Sequential", "config": {"name": "sequential", "trainable": true, "dtype": "float32", "layers": [{"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [null, 4], "dtype": "float32", "sparse": false, "name": "input_layer"}, "registered_name": null}, {"module": "keras.layers", "class_name": "Dense", "config": {"name": "dense", "trainable": true, "dtype": "float32", "units": 3, "activation": "relu", "use_bias": true, "kernel_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": null}, "registered_name": null}, "bias_initializer": {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": null}, "kernel_regularizer": null, "bias_regularizer": null, "kernel_constraint": null, "bias_constraint": null}, "registered_name": null, "build_config": {"input_shape": [null, 4]}}], "build_input_shape": [null, 4]}, "registered_name": null, "build_config": {"input_shape": [null, 4]}, "compile_config": {}}"#;
    let k = Model::from_json(keras)?;
    assert_eq!(
        k.predict_on_batch(&Tensor::zeros(&[2, 4], DType::F32)?)?.dims(),
        &[2, 3]
    );
    assert!(Model::from_json(r#"{"class_name": "Lambda", "config": {}}"#).is_err());
    assert!(Model::from_json("not json").is_err());
    Ok(())
}

#[test]
fn weights_load_exactly_and_wait_for_lazily_built_layers() -> ferroflow::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let make = || {
        let mut s = Sequential::new();
        s.add(Dense::new(4).with_activation(Activation::Tanh));
        s.add(Dense::new(2));
        Model::new(s)
    };
    let x = random::normal(&[3, 5], Normal::default().seed(1))?;
    let trained = make();
    let want = trained.predict_on_batch(&x)?.to_vec::<f32>()?;
    for name in ["w.safetensors", "w_tf"] {
        let path = dir.path().join(name);
        trained.save_weights(&path)?;
        // Unbuilt: the values wait, then land when the layers build (C04).
        let lazy = make();
        lazy.load_weights(&path)?;
        assert_eq!(lazy.pending_restorations().len(), 4);
        assert_eq!(lazy.predict_on_batch(&x)?.to_vec::<f32>()?, want);
        assert!(lazy.pending_restorations().is_empty());
        // Built: the file must match exactly; a wrong architecture changes nothing.
        let mut other = Sequential::new();
        other.add(Dense::new(3));
        other.add(Dense::new(2));
        let other = Model::new(other);
        let before = other.predict_on_batch(&x)?.to_vec::<f32>()?;
        assert!(other.load_weights(&path).is_err());
        assert_eq!(other.predict_on_batch(&x)?.to_vec::<f32>()?, before);
    }
    // Waiting values of the wrong shape are reported when the layer builds.
    let path = dir.path().join("w.safetensors");
    let mut narrow = Sequential::new();
    narrow.add(Dense::new(3));
    narrow.add(Dense::new(2));
    let narrow = Model::new(narrow);
    narrow.load_weights(&path)?;
    let err = narrow.predict_on_batch(&x).unwrap_err().to_string();
    assert!(err.contains("does not fit the model"), "{err}");
    Ok(())
}

/// The lesson's modules, written as in the lesson.
#[derive(Module)]
struct LessonDense {
    w: Variable,
    b: Variable,
}

impl LessonDense {
    fn new(inputs: usize, outputs: usize, seed: u64) -> ferroflow::Result<Self> {
        Ok(LessonDense {
            w: Variable::new("w", random::normal(&[inputs, outputs], Normal::default().seed(seed))?)?,
            b: Variable::new("b", Tensor::zeros(&[outputs], DType::F32)?)?,
        })
    }

    fn call(&self, x: &Tensor) -> ferroflow::Result<Tensor> {
        x.matmul(&self.w.read()?)?.add(&self.b.read()?)?.relu()
    }
}

#[derive(Module)]
struct SequentialModule {
    dense_1: LessonDense,
    dense_2: LessonDense,
}

impl SequentialModule {
    fn call(&self, x: &Tensor) -> ferroflow::Result<Tensor> {
        self.dense_2.call(&self.dense_1.call(x)?)
    }
}

#[test]
fn the_lessons_module_becomes_a_keras_model_unchanged() -> ferroflow::Result<()> {
    let module = SequentialModule {
        dense_1: LessonDense::new(3, 3, 1)?,
        dense_2: LessonDense::new(3, 2, 2)?,
    };
    let x = Tensor::new([[0.0288f32, -0.3256, 0.5925]]);
    let direct = module.call(&x)?.to_vec::<f32>()?;
    let mut model = Model::from_module(module, SequentialModule::call);
    assert_eq!(model.predict_on_batch(&x)?.to_vec::<f32>()?, direct);
    let paths: Vec<String> = model.variables_by_path_in_order().into_iter().map(|(p, _)| p).collect();
    assert_eq!(paths, ["dense_1/b", "dense_1/w", "dense_2/b", "dense_2/w"]);
    model.compile(CompileOptions::new(Sgd::new(0.1)?, "mse"))?;
    let xs = random::normal(&[16, 3], Normal::default().seed(3))?;
    let ys = xs.slice(&[0, 0], &[-1, 2])?;
    let h = model.fit((&xs, &ys), FitOptions::new().epochs(5).batch_size(4).seed(1).verbose(0))?;
    assert_eq!(h.epoch.len(), 5);
    let summary = model.summary()?;
    assert!(summary.contains("dense_1 (LessonDense)"), "{summary}");
    assert!(model.to_json().is_err(), "a custom module has no Keras config");
    Ok(())
}

#[test]
fn run_functions_eagerly_wins_over_a_traced_model() -> ferroflow::Result<()> {
    let x = random::normal(&[8, 2], Normal::default().seed(4))?;
    let y = x.reduce_sum(Axes::from(-1).keepdims())?;
    let run = |eager_everywhere: bool| -> ferroflow::Result<Vec<f32>> {
        let d = Dense::new(1).with_input_dim(2)?;
        d.kernel().unwrap().assign(&Tensor::new([[0.5f32], [0.25]]))?;
        let mut s = Sequential::new();
        s.add(d);
        let mut m = Model::new(s);
        m.compile(CompileOptions::new(Sgd::new(0.1)?, "mse"))?;
        ferroflow::graph::config::run_functions_eagerly(eager_everywhere);
        let r = m.fit(
            (&x, &y),
            FitOptions::new().epochs(2).batch_size(4).shuffle(false).verbose(0),
        );
        ferroflow::graph::config::run_functions_eagerly(false);
        r?;
        Ok(m.get_weights()?
            .iter()
            .flat_map(|t| t.to_vec::<f32>().unwrap())
            .collect())
    };
    let traced = run(false)?;
    let eager = run(true)?;
    for (a, b) in traced.iter().zip(&eager) {
        assert!((a - b).abs() < 1e-6);
    }
    Ok(())
}

#[test]
fn get_weights_follows_keras_creation_order() -> ferroflow::Result<()> {
    // Keras' model.get_weights(): layer by layer, kernel before bias, gamma before beta
    // before the moving statistics, so weights from Keras set straight in.
    let mut s = Sequential::new();
    s.add(Dense::new(2).with_input_dim(3)?);
    s.add(ferroflow::nn::BatchNormalization::new());
    let m = Model::new(s);
    m.build_from(&Tensor::zeros(&[1, 3], DType::F32)?)?;
    let shapes: Vec<Vec<usize>> = m.get_weights()?.iter().map(|w| w.dims().to_vec()).collect();
    assert_eq!(shapes, vec![vec![3, 2], vec![2], vec![2], vec![2], vec![2], vec![2]]);
    let names: Vec<String> = m.weights().iter().map(|v| v.name().to_string()).collect();
    let leaf = |i: usize| names[i].rsplit('/').next().unwrap().to_string();
    assert_eq!(
        (0..6).map(leaf).collect::<Vec<_>>(),
        ["kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance"],
        "{names:?}"
    );
    // set_weights takes the same order: a Keras-ordered list round-trips.
    let keras: Vec<Tensor> = vec![
        Tensor::from_vec((0..6).map(|i| i as f32).collect(), &[3, 2])?,
        Tensor::new([10.0f32, 20.0]),
        Tensor::new([2.0f32, 3.0]),
        Tensor::new([0.5f32, 0.25]),
        Tensor::new([1.0f32, -1.0]),
        Tensor::new([4.0f32, 9.0]),
    ];
    m.set_weights(&keras)?;
    let back = m.get_weights()?;
    for (a, b) in back.iter().zip(&keras) {
        assert_eq!(a.to_vec::<f32>()?, b.to_vec::<f32>()?);
    }
    Ok(())
}

#[test]
fn layer_normalization_rounds_as_keras() -> ferroflow::Result<()> {
    // x·inv + (beta - mean·inv), inv = rsqrt(var + eps)·gamma: Keras' order, which rounds
    // differently from (x - mean)·inv in float32 when |mean| is large.
    let ln = ferroflow::nn::LayerNormalization::new();
    let y = ln
        .call(&Tensor::new([[1000.0f32, 1001.0]]), Mode::Inference)?
        .to_vec::<f32>()?;
    let inv = 1.0f32 / (0.25f32 + 1e-3f32).sqrt();
    let shift = 0.0f32 - 1000.5f32 * inv;
    assert_eq!(y, vec![1000.0f32 * inv + shift, 1001.0f32 * inv + shift]);
    assert_ne!(y[0], (1000.0f32 - 1000.5) * inv, "not the (x - mean)·inv order");
    Ok(())
}

#[test]
fn from_json_honours_or_refuses_keras_layer_settings() -> ferroflow::Result<()> {
    let seq = |layer: &str| {
        format!(r#"{{"module": "keras", "class_name": "Sequential", "config": {{"name": "s", "layers": [{layer}]}}}}"#)
    };
    // dilation_rate is honoured: a 3x3 kernel dilated by 2 spans 5x5.
    let conv = seq(
        r#"{"module": "keras.layers", "class_name": "Conv2D", "config": {"name": "c", "filters": 1, "kernel_size": [3, 3], "strides": [1, 1], "padding": "valid", "data_format": "channels_last", "dilation_rate": [2, 2], "groups": 1, "activation": "linear", "use_bias": true}}"#,
    );
    let m = Model::from_json(&conv)?;
    assert_eq!(
        m.predict_on_batch(&Tensor::ones(&[1, 5, 5, 1], DType::F32)?)?.dims(),
        &[1, 1, 1, 1]
    );
    // The kernel initializer's class is honoured (a Constant kernel of ones sums the window).
    let init = seq(
        r#"{"module": "keras.layers", "class_name": "Conv2D", "config": {"name": "c2", "filters": 1, "kernel_size": [2, 2], "activation": "linear", "use_bias": false, "kernel_initializer": {"module": "keras.initializers", "class_name": "Constant", "config": {"value": 1.0}}}}"#,
    );
    let m = Model::from_json(&init)?;
    let y = m.predict_on_batch(&Tensor::ones(&[1, 2, 2, 1], DType::F32)?)?;
    assert_eq!(y.to_vec::<f32>()?, vec![4.0]);
    // What the layers would silently ignore is refused, naming the layer and the setting.
    for (layer, key) in [
        (
            r#"{"class_name": "Dense", "config": {"name": "d", "units": 1, "kernel_regularizer": {"class_name": "L2", "config": {"l2": 0.5}}}}"#,
            "kernel_regularizer",
        ),
        (
            r#"{"class_name": "BatchNormalization", "config": {"name": "bn", "axis": -1, "scale": false}}"#,
            "scale",
        ),
        (
            r#"{"class_name": "Conv2D", "config": {"name": "g", "filters": 2, "kernel_size": [1, 1], "groups": 2}}"#,
            "groups",
        ),
        (
            r#"{"class_name": "Dropout", "config": {"name": "do", "rate": 0.5, "noise_shape": [null, 1]}}"#,
            "noise_shape",
        ),
        (
            r#"{"class_name": "Embedding", "config": {"name": "e", "input_dim": 3, "output_dim": 2, "mask_zero": true}}"#,
            "mask_zero",
        ),
        (
            r#"{"class_name": "Dense", "config": {"name": "t", "units": 1, "trainable": "no"}}"#,
            "trainable must be true or false",
        ),
    ] {
        let e = Model::from_json(&seq(layer)).unwrap_err().to_string();
        assert!(e.contains(key), "{key}: {e}");
    }
    Ok(())
}

#[test]
fn frozen_layers_keep_their_weights_through_fit_and_model_files() -> ferroflow::Result<()> {
    use ferroflow::nn::BatchNormalization;
    let mut s = Sequential::new();
    s.add(Dense::new(4).with_activation(Activation::Relu).with_seed(1));
    s.add(BatchNormalization::new());
    s.add(Dense::new(1).with_seed(2));
    let mut model = Model::new(s);
    let x = random::normal(&[32, 3], Normal::default().seed(3))?;
    let y = x.reduce_sum(Axes::from(-1).keepdims())?;
    model.predict_on_batch(&x)?;
    // Keras' fine-tuning recipe: freeze the base, then compile and train.
    let layers = model.layer().sublayers().unwrap();
    layers[0].set_trainable(false);
    layers[1].set_trainable(false);
    assert!(!layers[0].trainable() && layers[2].trainable());
    let before = model.get_weights()?;
    model.compile(CompileOptions::new(Sgd::new(0.1)?, "mse"))?;
    model.fit((&x, &y), FitOptions::new().epochs(2).batch_size(8).seed(0).verbose(0))?;
    let after = model.get_weights()?;
    // Keras order: kernel, bias, gamma, beta, moving mean, moving variance, kernel, bias.
    for i in 0..6 {
        assert_eq!(
            before[i].to_vec::<f32>()?,
            after[i].to_vec::<f32>()?,
            "frozen weight {i} moved"
        );
    }
    assert_ne!(before[6].to_vec::<f32>()?, after[6].to_vec::<f32>()?, "the head trains");
    let summary = model.summary()?;
    assert!(summary.contains(" Trainable params: 5 "), "{summary}");
    assert!(summary.contains(" Non-trainable params: 32 "), "{summary}");

    // The file says which layers are frozen, and reading it freezes them again.
    let json = model.to_json()?;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let flags: Vec<bool> = (0..3)
        .map(|i| v["config"]["layers"][i]["config"]["trainable"].as_bool().unwrap())
        .collect();
    assert_eq!(flags, [false, false, true]);
    let back = Model::from_json(&json)?;
    back.predict_on_batch(&x)?;
    assert_eq!(back.layer().trainable_variables().len(), 2);
    // Unfreezing makes the weights trainable again; moving statistics never are.
    back.layer().set_trainable(true);
    assert_eq!(back.layer().trainable_variables().len(), 6);
    // Keras' container rule: a frozen container trains nothing, even a layer unfrozen inside it.
    back.layer().set_trainable(false);
    back.layer().sublayers().unwrap()[2].set_trainable(true);
    assert!(back.layer().sublayers().unwrap()[2].trainable());
    assert!(back.trainable_variables().is_empty());
    let summary = back.summary()?;
    assert!(summary.contains(" Trainable params: 0 "), "{summary}");
    back.layer().set_trainable(true);
    assert_eq!(back.trainable_variables().len(), 6);
    // As in Keras, the rule holds for the container asked: inside a trainable model, a frozen
    // container does not hide a layer unfrozen within it (Keras 3.15 counts 4 weights here).
    let mut inner = Sequential::new();
    inner.add(Dense::new(2).with_input_dim(3)?);
    inner.add(Dense::new(2).with_input_dim(2)?);
    inner.set_trainable(false);
    inner.sublayers().unwrap()[1].set_trainable(true);
    assert!(inner.trainable_variables().is_empty());
    let mut outer = Sequential::new();
    outer.add(inner);
    outer.add(Dense::new(1).with_input_dim(2)?);
    assert_eq!(outer.trainable_variables().len(), 4);

    // Changed between fits without compiling again, traced and eager: the next fit sees it.
    for eager in [false, true] {
        let mut s = Sequential::new();
        s.add(Dense::new(4).with_seed(4));
        s.add(Dense::new(1).with_seed(5));
        let mut model = Model::new(s);
        model.compile(CompileOptions::new(Sgd::new(0.1)?, "mse").run_eagerly(eager))?;
        let fit = |model: &Model| model.fit((&x, &y), FitOptions::new().epochs(1).batch_size(8).seed(0).verbose(0));
        fit(&model)?;
        let first = &model.layer().sublayers().unwrap()[0];
        first.set_trainable(false);
        let before = model.get_weights()?;
        fit(&model)?;
        let after = model.get_weights()?;
        assert_eq!(
            before[0].to_vec::<f32>()?,
            after[0].to_vec::<f32>()?,
            "eager {eager}: frozen moved"
        );
        assert_ne!(
            before[2].to_vec::<f32>()?,
            after[2].to_vec::<f32>()?,
            "eager {eager}: head still trains"
        );
        first.set_trainable(true);
        fit(&model)?;
        assert_ne!(
            after[0].to_vec::<f32>()?,
            model.get_weights()?[0].to_vec::<f32>()?,
            "eager {eager}: unfrozen"
        );
    }
    Ok(())
}

#[test]
fn a_frozen_batch_normalization_trains_on_its_moving_statistics() -> ferroflow::Result<()> {
    use ferroflow::nn::BatchNormalization;
    let bn = BatchNormalization::new();
    let x = Tensor::new([[1.0f32, 2.0], [3.0, 6.0]]);
    bn.call(&x, Mode::Training)?;
    let inference = bn.call(&x, Mode::Inference)?.to_vec::<f32>()?;
    bn.set_trainable(false);
    assert_eq!(bn.call(&x, Mode::Training)?.to_vec::<f32>()?, inference);
    bn.set_trainable(true);
    assert_ne!(bn.call(&x, Mode::Training)?.to_vec::<f32>()?, inference);
    Ok(())
}

#[test]
fn from_json_builds_when_the_file_records_the_input_shape() -> ferroflow::Result<()> {
    // As Keras' build_from_config: weights exist right after loading.
    let keras = r#"{"module": "keras", "class_name": "Sequential", "config": {"name": "sequential", "layers": [{"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [null, 4], "dtype": "float32", "name": "input_layer"}}, {"module": "keras.layers", "class_name": "Dense", "config": {"name": "dense", "units": 3}}]}}"#;
    let m = Model::from_json(keras)?;
    assert!(m.is_built());
    let shapes: Vec<Vec<usize>> = m.get_weights()?.iter().map(|w| w.dims().to_vec()).collect();
    assert_eq!(shapes, vec![vec![4, 3], vec![3]]);
    // Without a recorded shape it builds on first use, as before.
    let lazy = r#"{"module": "keras", "class_name": "Sequential", "config": {"name": "s2", "layers": [{"class_name": "Dense", "config": {"name": "d2", "units": 3}}]}}"#;
    assert!(!Model::from_json(lazy)?.is_built());
    // An Embedding model whose input is recorded as float builds too: ids are cast.
    let emb = r#"{"module": "keras", "class_name": "Sequential", "config": {"name": "s3", "layers": [{"class_name": "Embedding", "config": {"name": "e3", "input_dim": 5, "output_dim": 2}}], "build_input_shape": [null, 3]}}"#;
    let m = Model::from_json(emb)?;
    assert!(m.is_built());
    let by_float = m.predict_on_batch(&Tensor::new([[1.0f32, 4.0, 0.0]]))?;
    let by_int = m.predict_on_batch(&Tensor::new([[1i32, 4, 0]]))?;
    assert_eq!(by_float.to_vec::<f32>()?, by_int.to_vec::<f32>()?);
    Ok(())
}

#[test]
fn normalization_axis_may_name_the_last_axis_from_the_front() -> ferroflow::Result<()> {
    // keras.applications writes BatchNormalization(axis=3) for NHWC inputs: the last axis.
    let bn = |axis: i64| {
        format!(
            r#"{{"module": "keras", "class_name": "Sequential", "config": {{"name": "s", "layers": [{{"class_name": "BatchNormalization", "config": {{"name": "bn{axis}", "axis": {axis}}}}}]}}}}"#
        )
    };
    let m = Model::from_json(&bn(3))?;
    let y = m.predict_on_batch(&Tensor::ones(&[1, 2, 2, 3], DType::F32)?)?;
    assert_eq!(y.dims(), &[1, 2, 2, 3]);
    // Another axis is an error when the layer meets its input, not a silent last-axis norm.
    let m = Model::from_json(&bn(1))?;
    let e = m
        .predict_on_batch(&Tensor::ones(&[1, 2, 2, 3], DType::F32)?)
        .unwrap_err()
        .to_string();
    assert!(e.contains("axis 1"), "{e}");
    assert!(Model::from_json(&bn(3).replace("\"axis\": 3", "\"axis\": [1, 2]")).is_err());
    Ok(())
}

#[test]
fn an_input_dtype_without_tensors_builds_on_first_use() -> ferroflow::Result<()> {
    // A uint8 InputLayer (images) has no ferroflow dtype: the model loads and builds lazily.
    let keras = r#"{"module": "keras", "class_name": "Sequential", "config": {"name": "s", "layers": [{"class_name": "InputLayer", "config": {"batch_shape": [null, 4], "dtype": "uint8", "name": "in"}}, {"class_name": "Dense", "config": {"name": "d", "units": 2}}]}}"#;
    let m = Model::from_json(keras)?;
    assert!(!m.is_built());
    assert_eq!(m.predict_on_batch(&Tensor::ones(&[3, 4], DType::F32)?)?.dims(), &[3, 2]);
    Ok(())
}

#[test]
fn layer_dtypes_round_trip_through_keras_json() -> ferroflow::Result<()> {
    use ferroflow::nn::{BatchNormalization, Conv2D, LayerNormalization};
    let mut s = Sequential::new();
    s.add(Conv2D::new(2, [2, 2]).with_dtype(DType::F64).with_seed(1));
    s.add(BatchNormalization::new().with_dtype(DType::F64));
    s.add(LayerNormalization::new().with_dtype(DType::F64));
    let model = Model::new(s);
    let x = Tensor::ones(&[1, 3, 3, 1], DType::F32)?;
    assert_eq!(
        model.predict_on_batch(&x)?.dtype(),
        DType::F64,
        "float32 inputs cast up"
    );
    let back = Model::from_json(&model.to_json()?)?;
    assert_eq!(back.predict_on_batch(&x)?.dtype(), DType::F64);
    assert!(back.get_weights()?.iter().all(|w| w.dtype() == DType::F64));
    Ok(())
}

#[test]
fn a_seeded_dense_repeats_its_weights_and_writes_seeds_keras_can_read() -> ferroflow::Result<()> {
    use ferroflow::nn::initializers::Initializer;
    let make = || {
        Dense::new(3)
            .with_seed(7)
            .with_bias_initializer(Initializer::RandomNormal { mean: 0.0, stddev: 1.0 })
            .with_input_dim(2)
    };
    let (a, b) = (make()?, make()?);
    let values = |d: &Dense| -> ferroflow::Result<Vec<Vec<f32>>> {
        [d.kernel(), d.bias()]
            .iter()
            .map(|v| v.unwrap().value().to_vec::<f32>())
            .collect()
    };
    assert_eq!(values(&a)?, values(&b)?, "a seed repeats its values, as in Keras 3");
    // The bias has a seed of its own: not a copy of the kernel's first row.
    let (kernel, bias) = (values(&a)?[0].clone(), values(&a)?[1].clone());
    assert_ne!(bias, kernel[..3].to_vec());
    let mut s = Sequential::new();
    s.add(a);
    let json = Model::new(s).to_json()?;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let bias_seed = v["config"]["layers"][0]["config"]["bias_initializer"]["config"]["seed"]
        .as_u64()
        .unwrap();
    assert!(bias_seed < 1 << 32, "Keras draws from uint32 seeds: {bias_seed}");
    let back = Model::from_json(&json)?;
    back.predict_on_batch(&Tensor::zeros(&[1, 2], DType::F32)?)?;
    let again: Vec<Vec<f32>> = back
        .get_weights()?
        .iter()
        .map(|w| w.to_vec::<f32>())
        .collect::<ferroflow::Result<_>>()?;
    assert_eq!(again, values(&b)?, "the file rebuilds the same weights");
    Ok(())
}

#[test]
fn adamw_trains_the_same_traced_and_eager_and_decays_only_what_it_should() -> ferroflow::Result<()> {
    let x = random::normal(&[32, 3], Normal::default().seed(3))?;
    let y = x.reduce_sum(Axes::from(-1).keepdims())?;
    let train = |eager: bool, decay: bool| -> ferroflow::Result<Vec<Vec<f32>>> {
        let mut s = Sequential::new();
        s.add(Dense::new(4).with_seed(4));
        s.add(Dense::new(1).with_seed(5));
        let mut model = Model::new(s);
        let opt = if decay {
            Adam::adamw(0.01)?.with_weight_decay(0.5)?
        } else {
            Adam::new(0.01)?
        };
        opt.exclude_from_weight_decay(&[], &["bias"])?;
        model.compile(CompileOptions::new(opt, "mse").run_eagerly(eager))?;
        model.fit((&x, &y), FitOptions::new().epochs(2).batch_size(8).seed(0).verbose(0))?;
        model.get_weights()?.iter().map(|w| w.to_vec::<f32>()).collect()
    };
    let traced = train(false, true)?;
    let eager = train(true, true)?;
    for (t, e) in traced.iter().flatten().zip(eager.iter().flatten()) {
        assert!((t - e).abs() <= 1e-6, "traced {t} vs eager {e}");
    }
    // Kernels shrink towards zero against plain Adam; biases (excluded) barely move apart.
    let plain = train(true, false)?;
    let norm = |w: &[f32]| w.iter().map(|v| v * v).sum::<f32>();
    assert!(norm(&eager[0]) < norm(&plain[0]), "{:?} vs {:?}", eager[0], plain[0]);
    assert!(norm(&eager[2]) < norm(&plain[2]));
    Ok(())
}
