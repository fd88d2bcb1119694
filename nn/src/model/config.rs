//! `to_json` / `from_json`: Keras 3's serialised layout (`{"module", "class_name", "config",
//! "registered_name"}`) for `Sequential` and the built-in layers. A model read back is
//! uncompiled; as Keras' `build_from_config`, it is built when the file records its input
//! shape, else its layers build (and initialise) on first use. Settings a built-in layer does
//! not implement are refused rather than ignored.

use super::Model;
use crate::layers::{
    Activation, AveragePooling2D, BatchNormalization, Conv2D, Dense, Dropout, Embedding, Flatten,
    GlobalAveragePooling2D, GlobalMaxPooling2D, LayerNormalization, MaxPooling2D, Rescaling, Reshape, Sequential,
};
use crate::Layer;
use ferroflow_tensor_core::{DType, Error, Result};
use serde_json::{json, Map, Value};

/// A layer's Keras configuration: its class name and `config` dict, and its `build_config`
/// when built. Implemented by the built-in layers.
pub trait LayerConfig {
    /// Keras' class name (`Dense`).
    fn class_name(&self) -> &'static str;
    /// The `config` dict, with Keras' keys.
    fn config(&self) -> Map<String, Value>;
    /// The input shape the layer was built for (`[null, 4]`), if built.
    fn build_input_shape(&self) -> Option<Vec<Option<usize>>> {
        None
    }
}

/// Keras' serialised dtype policy for `dtype`.
pub(crate) fn dtype_policy(dtype: DType) -> Value {
    json!({"module": "keras", "class_name": "DTypePolicy", "config": {"name": dtype.name()}, "registered_name": null})
}

/// Reads a dtype from a policy dict or a plain name (older Keras files), float32 if absent.
pub(crate) fn read_dtype(config: &Value) -> Result<DType> {
    let name = match config.get("dtype") {
        None | Some(Value::Null) => return Ok(DType::F32),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v
            .pointer("/config/name")
            .and_then(Value::as_str)
            .unwrap_or("float32")
            .to_string(),
    };
    name.parse()
}

/// The full entry of one layer: module, class name, config, and build config when built.
pub(crate) fn layer_entry(class: &str, config: Map<String, Value>, built: Option<Vec<Option<usize>>>) -> Value {
    let mut entry = json!({
        "module": "keras.layers",
        "class_name": class,
        "config": Value::Object(config),
        "registered_name": null,
    });
    if let (Some(shape), Some(obj)) = (built, entry.as_object_mut()) {
        obj.insert("build_config".into(), json!({ "input_shape": shape }));
    }
    entry
}

/// A string field of a config.
pub(crate) fn get_str<'v>(config: &'v Value, key: &str) -> Option<&'v str> {
    config.get(key).and_then(Value::as_str)
}

/// An unsigned field of a config, or an error naming the layer and key.
pub(crate) fn get_usize(config: &Value, class: &str, key: &str) -> Result<usize> {
    config
        .get(key)
        .and_then(Value::as_u64)
        .map(|v| v as usize)
        .ok_or_else(|| Error::invalid("from_json", format!("{class}: missing or invalid {key:?}")))
}

/// A float field with a default.
pub(crate) fn get_f64(config: &Value, key: &str, default: f64) -> f64 {
    config.get(key).and_then(Value::as_f64).unwrap_or(default)
}

/// A `[a, b]` pair field (or one number for both), with a default.
pub(crate) fn get_pair(config: &Value, key: &str, default: [usize; 2]) -> Result<[usize; 2]> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) => {
            let v = n.as_u64().unwrap_or(0) as usize;
            Ok([v, v])
        }
        Some(Value::Array(a)) if a.len() == 2 => {
            let v: Vec<usize> = a.iter().filter_map(Value::as_u64).map(|x| x as usize).collect();
            if v.len() == 2 {
                Ok([v[0], v[1]])
            } else {
                Err(Error::invalid("from_json", format!("{key} must hold two integers")))
            }
        }
        Some(other) => Err(Error::invalid(
            "from_json",
            format!("{key} must be a pair, got {other}"),
        )),
    }
}

/// Builds a layer from its serialised entry (`{"class_name": "Dense", "config": {...}}`).
pub fn layer_from_config(entry: &Value) -> Result<Box<dyn Layer>> {
    let class =
        get_str(entry, "class_name").ok_or_else(|| Error::invalid("from_json", "a layer entry without class_name"))?;
    let config = entry.get("config").cloned().unwrap_or(Value::Object(Map::new()));
    let layer: Box<dyn Layer> = match class {
        "Dense" => Box::new(Dense::from_config(&config)?),
        "Dropout" => Box::new(Dropout::from_config(&config)?),
        "Activation" => Box::new(Activation::from_config(&config)?),
        "Flatten" => Box::new(Flatten::from_config(&config)?),
        "Conv2D" => Box::new(Conv2D::from_config(&config)?),
        "MaxPooling2D" => Box::new(MaxPooling2D::from_config(&config)?),
        "AveragePooling2D" => Box::new(AveragePooling2D::from_config(&config)?),
        "BatchNormalization" => Box::new(BatchNormalization::from_config(&config)?),
        "LayerNormalization" => Box::new(LayerNormalization::from_config(&config)?),
        "Embedding" => Box::new(Embedding::from_config(&config)?),
        "Reshape" => Box::new(Reshape::from_config(&config)?),
        "GlobalAveragePooling2D" => Box::new(GlobalAveragePooling2D::from_config(&config)?),
        "GlobalMaxPooling2D" => Box::new(GlobalMaxPooling2D::from_config(&config)?),
        "Rescaling" => Box::new(Rescaling::from_config(&config)?),
        "Sequential" => Box::new(Sequential::from_config(&config)?),
        other => {
            return Err(Error::invalid(
                "from_json",
                format!("unknown layer class {other:?} (built-in layers and Sequential can be read)"),
            ))
        }
    };
    // `trainable: false` freezes the layer's weights, as Keras' `layer.trainable = False`. A
    // container's layers carry their own flags in their entries, so only its switch is set.
    match config.get("trainable") {
        None | Some(Value::Null) | Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) => match (layer.sublayers(), layer.trainable_switch()) {
            (Some(_), Some(switch)) => switch.set(false),
            _ => layer.set_trainable(false),
        },
        Some(other) => {
            return Err(Error::invalid(
                "from_json",
                format!("{class} layer: trainable must be true or false, got {other}"),
            ))
        }
    }
    Ok(layer)
}

impl Model {
    /// The model's architecture as Keras 3 JSON (`model.to_json()`): for a `Sequential` or
    /// a built-in layer. The weights are not included (see [`Model::save_weights`]).
    ///
    /// ```
    /// use ferroflow_nn::{Activation, Dense, Model, Sequential};
    /// let mut layers = Sequential::new();
    /// layers.add(Dense::new(3).with_activation(Activation::Relu).with_input_dim(4)?);
    /// layers.add(Dense::new(1));
    /// let json = Model::new(layers).to_json()?;
    /// assert!(json.starts_with(r#"{"module": "keras", "class_name": "Sequential", "config": {"#));
    /// let back = Model::from_json(&json)?;
    /// assert!(!back.is_compiled());
    /// assert_eq!(back.to_json()?.len() > 0, true);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn to_json(&self) -> Result<String> {
        let config = self.layer.keras_config().ok_or_else(|| {
            let (path, class) = without_config(self.layer.as_ref(), self.name().to_string())
                .unwrap_or_else(|| (self.name().to_string(), self.layer.class_name().to_string()));
            Error::invalid(
                "to_json",
                format!(
                    "{path} ({class}) has no Keras configuration: Sequential and the built-in layers \
                     have one, custom layers and leaky_relu slopes other than Keras' 0.2 do not"
                ),
            )
        })?;
        let mut value = config;
        if let Some(obj) = value.as_object_mut() {
            if obj.get("module").and_then(Value::as_str) == Some("keras.layers")
                && obj.get("class_name").and_then(Value::as_str) == Some("Sequential")
            {
                obj.insert("module".into(), json!("keras"));
            }
            obj.insert(
                "compile_config".into(),
                self.compile_config.clone().unwrap_or_else(|| json!({})),
            );
        }
        Ok(python_json(&value))
    }

    /// A model from [`Model::to_json`]'s output (or Keras 3's): uncompiled, with fresh
    /// weights. As Keras' `build_from_config`, it is built at once when the file records its
    /// input shape (`build_config`, `build_input_shape` or a first `InputLayer`'s
    /// `batch_shape`), else on first use.
    pub fn from_json(json: &str) -> Result<Model> {
        let value: Value = serde_json::from_str(json).map_err(|e| Error::external("from_json", e))?;
        let layer = layer_from_config(&value)?;
        let model = Model::from_rc(std::rc::Rc::from(layer));
        if let Some(example) = build_example(&value)? {
            // As Keras' build_from_config: a build that fails is a warning, and the model
            // builds on first use instead.
            if let Err(e) = model.build_from(&example) {
                eprintln!("from_json: the model could not be built from its recorded input shape ({e}); it builds on first use");
            }
        }
        Ok(model)
    }
}

/// The path and class of the innermost layer in `layer` without a Keras configuration.
fn without_config(layer: &dyn Layer, path: String) -> Option<(String, String)> {
    let inner = layer.sublayers().into_iter().flatten().find_map(|child| {
        let child_path = format!("{path}/{}", child.name());
        without_config(child.as_ref(), child_path)
    });
    inner.or_else(|| {
        layer
            .keras_config()
            .is_none()
            .then(|| (path, layer.class_name().to_string()))
    })
}

/// A batch of one zero row of the input shape a Keras file records, if it records one with
/// every dimension but the batch known: the model's `build_config.input_shape`, its config's
/// `build_input_shape`, or a first `InputLayer`'s `batch_shape` (`batch_input_shape` in older
/// files), whose dtype it takes.
fn build_example(value: &Value) -> Result<Option<ferroflow_tensor_core::Tensor>> {
    let input_layer = value
        .pointer("/config/layers/0")
        .filter(|l| l.get("class_name").and_then(Value::as_str) == Some("InputLayer"))
        .and_then(|l| l.get("config"));
    let shape = [
        value.pointer("/build_config/input_shape"),
        value.pointer("/config/build_input_shape"),
        input_layer.and_then(|c| c.get("batch_shape")),
        input_layer.and_then(|c| c.get("batch_input_shape")),
    ]
    .into_iter()
    .flatten()
    .find_map(Value::as_array);
    let Some(shape) = shape else { return Ok(None) };
    let mut dims = vec![1usize];
    for d in shape.iter().skip(1) {
        match d.as_u64().and_then(|d| usize::try_from(d).ok()) {
            Some(d) => dims.push(d),
            None => return Ok(None),
        }
    }
    if shape.is_empty() {
        return Ok(None);
    }
    // The InputLayer's dtype, else the first layer's (Keras builds a Sequential in its first
    // layer's compute dtype).
    let first_layer = value
        .pointer("/config/layers")
        .and_then(Value::as_array)
        .and_then(|l| {
            l.iter()
                .find(|l| l.get("class_name").and_then(Value::as_str) != Some("InputLayer"))
        })
        .and_then(|l| l.get("config"));
    let dtype = match (input_layer, first_layer) {
        // A dtype ferroflow has no tensors of (uint8, float16): build on first use instead.
        (Some(c), _) => match read_dtype(c) {
            Ok(d) => d,
            Err(_) => return Ok(None),
        },
        (None, Some(c)) => read_dtype(c).unwrap_or(DType::F32),
        (None, None) => read_dtype(value.get("config").unwrap_or(&Value::Null)).unwrap_or(DType::F32),
    };
    ferroflow_tensor_core::Tensor::zeros(&dims, dtype).map(Some)
}

/// JSON with Python's `json.dumps` separators (`", "` and `": "`), keys in insertion order.
fn python_json(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", Value::String(k.clone()), python_json(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(python_json).collect::<Vec<_>>().join(", ")),
        other => other.to_string(),
    }
}
