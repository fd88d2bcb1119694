//! The shape and scaling layers (`Reshape`, `Rescaling`, global pooling) against Keras 3.15:
//! models Keras wrote are read and predict what Keras predicted, written back with Keras'
//! settings, and train (traced) inside a small CNN.

use ferroflow::nn::{Conv2D, GlobalAveragePooling2D, GlobalMaxPooling2D, Rescaling, Reshape};
use ferroflow::prelude::*;
use serde_json::Value;

/// `keras.Sequential([Input((4,4,2)), Rescaling(0.5, 1.0), Reshape((2,8,2)),
/// GlobalAveragePooling2D()])`, as Keras 3.15 writes it (`model.to_json()`).
const AVERAGE: &str = r#"{"module": "keras", "class_name": "Sequential", "config": {"name": "a", "trainable": true, "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null}, "layers": [{"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [null, 4, 4, 2], "dtype": "float32", "sparse": false, "ragged": false, "name": "input_layer", "optional": false}, "registered_name": null}, {"module": "keras.layers", "class_name": "Rescaling", "config": {"name": "rescaling", "trainable": true, "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null}, "scale": 0.5, "offset": 1.0}, "registered_name": null, "build_config": {"input_shape": [null, 4, 4, 2]}}, {"module": "keras.layers", "class_name": "Reshape", "config": {"name": "reshape", "trainable": true, "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null}, "target_shape": [2, 8, 2]}, "registered_name": null}, {"module": "keras.layers", "class_name": "GlobalAveragePooling2D", "config": {"name": "global_average_pooling2d", "trainable": true, "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null}, "data_format": "channels_last", "keepdims": false}, "registered_name": null}], "build_input_shape": [null, 4, 4, 2]}, "registered_name": null, "build_config": {"input_shape": [null, 4, 4, 2]}, "compile_config": {}}"#;

/// `keras.Sequential([Input((4,4,2)), GlobalMaxPooling2D(keepdims=True), Reshape((-1,))])`.
const MAXIMUM: &str = r#"{"module": "keras", "class_name": "Sequential", "config": {"name": "b", "trainable": true, "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null}, "layers": [{"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [null, 4, 4, 2], "dtype": "float32", "sparse": false, "ragged": false, "name": "input_layer_1", "optional": false}, "registered_name": null}, {"module": "keras.layers", "class_name": "GlobalMaxPooling2D", "config": {"name": "global_max_pooling2d", "trainable": true, "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null}, "data_format": "channels_last", "keepdims": true}, "registered_name": null}, {"module": "keras.layers", "class_name": "Reshape", "config": {"name": "reshape_1", "trainable": true, "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null}, "target_shape": [-1]}, "registered_name": null}], "build_input_shape": [null, 4, 4, 2]}, "registered_name": null, "build_config": {"input_shape": [null, 4, 4, 2]}, "compile_config": {}}"#;

/// Keras' input: `arange(32).reshape(1, 4, 4, 2) / 7 - 2` in float32.
fn input() -> ferroflow::Result<Tensor> {
    let values: Vec<f32> = (0..32).map(|i| i as f32 / 7.0 - 2.0).collect();
    Tensor::from_vec(values, &[1, 4, 4, 2])
}

/// The layer entries (without `InputLayer`) of a model file.
fn layer_configs(json: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(json).unwrap();
    v["config"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["class_name"] != "InputLayer")
        .map(|l| serde_json::json!({"class_name": l["class_name"], "config": l["config"]}))
        .collect()
}

#[test]
fn keras_files_load_predict_and_write_back_the_same_settings() -> ferroflow::Result<()> {
    for (json, keras_out) in [
        (AVERAGE, [1.0714285373687744f64, 1.1428570747375488]),
        (MAXIMUM, [2.2857141494750977, 2.4285712242126465]),
    ] {
        let model = Model::from_json(json)?;
        let y = model.predict_on_batch(&input()?)?;
        assert_eq!(y.dims(), &[1, 2]);
        for (got, want) in y.to_vec::<f32>()?.iter().zip(keras_out) {
            assert!((f64::from(*got) - want).abs() <= 1e-6, "{got} vs Keras {want}");
        }
        assert_eq!(layer_configs(&model.to_json()?), layer_configs(json));
    }
    Ok(())
}

#[test]
fn bad_settings_are_refused_with_the_layer_named() {
    let entry = |class: &str, config: Value| {
        let json = serde_json::json!({"class_name": "Sequential", "config": {"layers": [{"class_name": class, "config": config}]}});
        Model::from_json(&json.to_string()).unwrap_err().to_string()
    };
    assert!(entry("Reshape", serde_json::json!({"target_shape": [-1, -1]})).contains("Reshape"));
    assert!(entry("Reshape", serde_json::json!({"target_shape": "x"})).contains("target_shape"));
    assert!(entry("Rescaling", serde_json::json!({"scale": [0.5, 0.25]})).contains("scale"));
    assert!(entry(
        "GlobalMaxPooling2D",
        serde_json::json!({"data_format": "channels_first"})
    )
    .contains("data_format"));
    assert!(entry("GlobalAveragePooling2D", serde_json::json!({"keepdims": 1})).contains("keepdims"));
    // A shape the example cannot take, and a rank the pooling cannot pool, name the layer.
    let x = Tensor::zeros(&[2, 6], DType::F32).unwrap();
    let e = Reshape::new([4])
        .unwrap()
        .call(&x, Mode::Inference)
        .unwrap_err()
        .to_string();
    assert!(e.contains("Reshape") && e.contains("[2, 6]"), "{e}");
    let e = Reshape::new([4, -1])
        .unwrap()
        .call(&x, Mode::Inference)
        .unwrap_err()
        .to_string();
    assert!(e.contains("Reshape"), "{e}");
    let huge = Reshape::new([1 << 40, 1 << 40, 1 << 40]).unwrap();
    assert!(huge
        .call(&x, Mode::Inference)
        .unwrap_err()
        .to_string()
        .contains("Reshape"));
    let empty = Reshape::new([3, -1])
        .unwrap()
        .call(&Tensor::zeros(&[2, 0], DType::F32).unwrap(), Mode::Inference);
    assert_eq!(empty.unwrap().dims(), &[2, 3, 0]);
    let e = GlobalAveragePooling2D::new()
        .call(&x, Mode::Inference)
        .unwrap_err()
        .to_string();
    assert!(e.contains("GlobalAveragePooling2D") && e.contains("rank-4"), "{e}");
}

#[test]
fn a_cnn_with_the_new_layers_trains_the_same_traced_and_eager() -> ferroflow::Result<()> {
    let pixels = random::uniform(&[16, 6, 6, 1], Uniform::new(0.0, 255.0).seed(7))?.cast(DType::I32)?;
    let labels = pixels
        .cast(DType::F32)?
        .reduce_mean(Axes::from([1i64, 2, 3].as_slice()).keepdims())?
        .reshape(&[16, 1])?;
    let labels = labels.mul(&Tensor::scalar(1.0f32 / 255.0))?;
    let mut weights = Vec::new();
    for eager in [false, true] {
        let mut s = Sequential::new();
        s.add(Rescaling::new(1.0 / 255.0));
        s.add(Conv2D::new(4, [3, 3]).with_seed(1));
        s.add(GlobalMaxPooling2D::new().with_keepdims(true));
        s.add(Reshape::new([2, 2])?);
        s.add(Reshape::new([-1])?);
        s.add(Dense::new(1).with_seed(2));
        let mut model = Model::new(s);
        model.compile(CompileOptions::new(Sgd::new(0.1)?, "mse").run_eagerly(eager))?;
        let history = model.fit(
            (&pixels, &labels),
            FitOptions::new().epochs(3).batch_size(4).seed(0).verbose(0),
        )?;
        let losses = history.get("loss").unwrap().to_vec();
        assert!(losses[2] < losses[0], "eager {eager}: {losses:?}");
        let summary = model.summary()?;
        for row in ["(Rescaling)", "(GlobalMaxPooling2D)", "(Reshape)"] {
            assert!(summary.contains(row), "{summary}");
        }
        weights.push(model.get_weights()?);
    }
    for (t, e) in weights[0].iter().zip(&weights[1]) {
        for (a, b) in t.to_vec::<f32>()?.iter().zip(e.to_vec::<f32>()?) {
            assert!((a - b).abs() <= 1e-6, "traced {a} vs eager {b}");
        }
    }
    Ok(())
}

#[test]
fn global_average_pooling_keeps_dims_on_request() -> ferroflow::Result<()> {
    let x = input()?;
    let y = GlobalAveragePooling2D::new()
        .with_keepdims(true)
        .call(&x, Mode::Inference)?;
    assert_eq!(y.dims(), &[1, 1, 1, 2]);
    // The mean of channel 0 is that of 0, 2, ..., 30 over 7, less 2.
    assert!((y.to_vec::<f32>()?[0] - (15.0 / 7.0 - 2.0)).abs() < 1e-6);
    // Integers average to float32 (Keras' mean); their maximum stays integer.
    let ints = Tensor::from_vec(vec![1i32, 2, 3, 4], &[1, 2, 2, 1])?;
    let mean = GlobalAveragePooling2D::new().call(&ints, Mode::Inference)?;
    assert_eq!((mean.dtype(), mean.to_vec::<f32>()?), (DType::F32, vec![2.5]));
    let max = GlobalMaxPooling2D::new().call(&ints, Mode::Inference)?;
    assert_eq!((max.dtype(), max.to_vec::<i32>()?), (DType::I32, vec![4]));
    Ok(())
}
