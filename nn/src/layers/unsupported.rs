//! Keras settings the built-in layers do not implement. A Keras config (`Model::from_json`)
//! that sets one to anything but its default is refused, naming the layer, the setting and
//! its value, rather than loaded as a different model that trains differently without a
//! word (a kernel regularizer that adds to the loss, `scale=False`, `groups=2`).

use crate::initializers::Initializer;
use ferroflow_tensor_core::{Error, Result};
use serde_json::Value;

/// What a setting may hold for the layers to honour it.
pub(crate) enum Allowed {
    /// Absent or null (regularizers, constraints, `noise_shape`).
    Null,
    /// Absent, null, or one of these values.
    OneOf(&'static [&'static str]),
    /// Absent, null, or this initializer.
    Init(Initializer),
}

/// Settings no built-in layer implements.
pub(crate) const COMMON: &[(&str, Allowed)] = &[("activity_regularizer", Allowed::Null)];

/// Regularizers and constraints of a layer with a kernel and a bias.
pub(crate) const KERNEL_AND_BIAS: &[(&str, Allowed)] = &[
    ("kernel_regularizer", Allowed::Null),
    ("bias_regularizer", Allowed::Null),
    ("kernel_constraint", Allowed::Null),
    ("bias_constraint", Allowed::Null),
    ("lora_rank", Allowed::Null),
    ("quantization_config", Allowed::Null),
];

/// The channels-last data format, the only one the layers take.
pub(crate) const CHANNELS_LAST: &[(&str, Allowed)] = &[("data_format", Allowed::OneOf(&["\"channels_last\""]))];

/// Normalization with a learned scale and offset, initialised as Keras does by default
/// (the axis is checked against the input's rank when the layer builds).
pub(crate) const NORMALIZATION: &[(&str, Allowed)] = &[
    ("center", Allowed::OneOf(&["true"])),
    ("scale", Allowed::OneOf(&["true"])),
    ("gamma_initializer", Allowed::Init(Initializer::Ones)),
    ("beta_initializer", Allowed::Init(Initializer::Zeros)),
    ("gamma_regularizer", Allowed::Null),
    ("beta_regularizer", Allowed::Null),
    ("gamma_constraint", Allowed::Null),
    ("beta_constraint", Allowed::Null),
];

/// Errors on the first setting of `config` in `groups` that the layers would not honour.
pub(crate) fn refuse_unsupported(class: &str, config: &Value, groups: &[&[(&str, Allowed)]]) -> Result<()> {
    for (key, allowed) in groups.iter().copied().flatten() {
        let Some(v) = config.get(*key).filter(|v| !v.is_null()) else {
            continue;
        };
        let ok = match allowed {
            Allowed::Null => false,
            Allowed::OneOf(values) => values
                .iter()
                .any(|want| serde_json::from_str::<Value>(want).is_ok_and(|w| w == *v)),
            Allowed::Init(init) => Initializer::from_keras(v).is_ok_and(|(got, _)| got == *init),
        };
        if !ok {
            let name = config.get("name").and_then(Value::as_str).unwrap_or("?");
            return Err(Error::invalid(
                "from_json",
                format!("{class} '{name}': {key} = {v} is not supported (ferroflow's {class} would ignore it)"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_pass_and_other_values_are_named() {
        let ok = json!({"name": "bn", "axis": -1, "center": true, "scale": true, "trainable": true,
            "gamma_initializer": {"class_name": "Ones", "config": {}}, "beta_regularizer": null});
        refuse_unsupported("BatchNormalization", &ok, &[COMMON, NORMALIZATION]).unwrap();
        for (key, value) in [
            ("scale", json!(false)),
            ("gamma_initializer", json!({"class_name": "Zeros", "config": {}})),
            ("beta_regularizer", json!({"class_name": "L2", "config": {"l2": 0.01}})),
            (
                "activity_regularizer",
                json!({"class_name": "L2", "config": {"l2": 0.01}}),
            ),
        ] {
            let mut c = json!({"name": "bn"});
            c[key] = value.clone();
            let e = refuse_unsupported("BatchNormalization", &c, &[COMMON, NORMALIZATION])
                .unwrap_err()
                .to_string();
            assert!(e.contains("'bn'") && e.contains(key), "{e}");
        }
    }
}
