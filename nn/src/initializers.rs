//! Weight initializers with Keras' definitions and defaults (`glorot_uniform` kernels, zero
//! biases), all drawn from tensor-core's seeded generators.

use ferroflow_tensor_core::random::{self, Normal, Uniform};
use ferroflow_tensor_core::{DType, Error, Result, Tensor};

/// A Keras initializer. Fan-in and fan-out come from the shape: `[in, out]` for a dense
/// kernel, `[kh, kw, in, out]` for a conv kernel (the receptive field multiplies both).
#[derive(Debug, Clone, PartialEq)]
pub enum Initializer {
    /// All zeros.
    Zeros,
    /// All ones.
    Ones,
    /// A constant.
    Constant(f64),
    /// Normal with the given mean and standard deviation.
    RandomNormal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        stddev: f64,
    },
    /// Uniform in `[minval, maxval)` (Keras' `RandomUniform`; embeddings use ±0.05).
    RandomUniform {
        /// Lower bound.
        minval: f64,
        /// Upper bound (exclusive).
        maxval: f64,
    },
    /// Normal, redrawn beyond two standard deviations.
    TruncatedNormal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        stddev: f64,
    },
    /// Uniform in `±sqrt(6 / (fan_in + fan_out))` (Keras' default for kernels).
    GlorotUniform,
    /// Truncated normal with `stddev = sqrt(2 / fan_in) / 0.8796`.
    HeNormal,
    /// Uniform in `±sqrt(6 / fan_in)`.
    HeUniform,
    /// Truncated normal with `stddev = sqrt(1 / fan_in) / 0.8796`.
    LecunNormal,
}

/// `(fan_in, fan_out)` of a weight shape, as Keras computes them.
pub fn fans(shape: &[usize]) -> (f64, f64) {
    match shape {
        [] => (1.0, 1.0),
        [n] => (*n as f64, *n as f64),
        [i, o] => (*i as f64, *o as f64),
        _ => {
            let receptive: usize = shape[..shape.len() - 2].iter().product();
            let i = shape[shape.len() - 2] * receptive;
            let o = shape[shape.len() - 1] * receptive;
            (i as f64, o as f64)
        }
    }
}

/// Standard deviation of a unit truncated normal cut at ±2, which Keras divides by so the
/// truncated draws keep the intended variance.
const TRUNCATED_STD: f64 = 0.879_625_661_034_239_8;

impl Initializer {
    /// A tensor of `shape` and `dtype`, drawn from the global seed (see
    /// [`ferroflow_tensor_core::random`]).
    ///
    /// ```
    /// use ferroflow_nn::initializers::Initializer;
    /// use ferroflow_tensor_core::DType;
    /// let k = Initializer::GlorotUniform.init(&[3, 5], DType::F32)?;
    /// let limit = (6.0f32 / 8.0).sqrt();
    /// assert!(k.to_vec::<f32>()?.iter().all(|v| v.abs() <= limit));
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn init(&self, shape: &[usize], dtype: DType) -> Result<Tensor> {
        self.draw(shape, dtype, None)
    }

    /// A tensor of `shape` and `dtype` drawn from `seed` alone: the same seed gives the same
    /// values at every call, whatever the global seed, as Keras 3's seeded initializers do
    /// (`GlorotUniform(seed=1)` twice is one tensor twice).
    pub fn init_with_seed(&self, shape: &[usize], dtype: DType, seed: u64) -> Result<Tensor> {
        self.draw(shape, dtype, Some(seed))
    }

    /// The draw: from the seed alone (stateless), or from the global seed.
    pub(crate) fn draw(&self, shape: &[usize], dtype: DType, seed: Option<u64>) -> Result<Tensor> {
        let normal = |mean: f64, stddev: f64| Normal::new(mean, stddev).dtype(dtype);
        let uniform = |minval: f64, maxval: f64| Uniform::new(minval, maxval).dtype(dtype);
        let draw_uniform = |u: Uniform| match seed {
            Some(s) => random::stateless_uniform(shape, s, u),
            None => random::uniform(shape, u),
        };
        let draw_normal = |n: Normal| match seed {
            Some(s) => random::stateless_normal(shape, s, n),
            None => random::normal(shape, n),
        };
        let draw_truncated = |n: Normal| match seed {
            Some(s) => random::stateless_truncated_normal(shape, s, n),
            None => random::truncated_normal(shape, n),
        };
        if !dtype.is_float() && !matches!(self, Initializer::Zeros | Initializer::Ones | Initializer::Constant(_)) {
            return Err(Error::dtypes(
                "initializer",
                &[dtype],
                "random initializers need a float dtype",
            ));
        }
        let (fan_in, fan_out) = fans(shape);
        match *self {
            Initializer::Zeros => Tensor::zeros(shape, dtype),
            Initializer::Ones => Tensor::ones(shape, dtype),
            Initializer::Constant(v) => Tensor::fill(shape, v, dtype),
            Initializer::RandomNormal { mean, stddev } => draw_normal(normal(mean, stddev)),
            Initializer::RandomUniform { minval, maxval } => draw_uniform(uniform(minval, maxval)),
            Initializer::TruncatedNormal { mean, stddev } => draw_truncated(normal(mean, stddev)),
            Initializer::GlorotUniform => {
                let limit = (6.0 / (fan_in + fan_out).max(1.0)).sqrt();
                draw_uniform(uniform(-limit, limit))
            }
            Initializer::HeNormal => {
                let stddev = (2.0 / fan_in.max(1.0)).sqrt() / TRUNCATED_STD;
                draw_truncated(normal(0.0, stddev))
            }
            Initializer::HeUniform => {
                let limit = (6.0 / fan_in.max(1.0)).sqrt();
                draw_uniform(uniform(-limit, limit))
            }
            Initializer::LecunNormal => {
                let stddev = (1.0 / fan_in.max(1.0)).sqrt() / TRUNCATED_STD;
                draw_truncated(normal(0.0, stddev))
            }
        }
    }
}

impl Initializer {
    /// Keras' serialised form (`{"module": "keras.initializers", "class_name": ..., "config":
    /// ...}`), with the layer's seed.
    pub fn to_keras(&self, seed: Option<u64>) -> serde_json::Value {
        use serde_json::json;
        let (class, config) = match self {
            Initializer::Zeros => ("Zeros", json!({})),
            Initializer::Ones => ("Ones", json!({})),
            Initializer::Constant(v) => ("Constant", json!({ "value": v })),
            Initializer::RandomNormal { mean, stddev } => {
                ("RandomNormal", json!({"seed": seed, "mean": mean, "stddev": stddev}))
            }
            Initializer::RandomUniform { minval, maxval } => (
                "RandomUniform",
                json!({"seed": seed, "minval": minval, "maxval": maxval}),
            ),
            Initializer::TruncatedNormal { mean, stddev } => {
                ("TruncatedNormal", json!({"seed": seed, "mean": mean, "stddev": stddev}))
            }
            Initializer::GlorotUniform => (
                "GlorotUniform",
                json!({"seed": seed, "input_axes": null, "output_axes": null}),
            ),
            Initializer::HeNormal => (
                "HeNormal",
                json!({"seed": seed, "input_axes": null, "output_axes": null}),
            ),
            Initializer::HeUniform => (
                "HeUniform",
                json!({"seed": seed, "input_axes": null, "output_axes": null}),
            ),
            Initializer::LecunNormal => (
                "LecunNormal",
                json!({"seed": seed, "input_axes": null, "output_axes": null}),
            ),
        };
        json!({"module": "keras.initializers", "class_name": class, "config": config, "registered_name": null})
    }

    /// Reads Keras' serialised form (or a bare name such as `"glorot_uniform"`), with its seed.
    pub fn from_keras(value: &serde_json::Value) -> Result<(Initializer, Option<u64>)> {
        let bad = |why: String| Error::invalid("initializer", why);
        let (class, config) = match value {
            serde_json::Value::String(s) => (s.as_str(), serde_json::Value::Null),
            v => (
                v.get("class_name")
                    .and_then(|c| c.as_str())
                    .ok_or_else(|| bad(format!("no class_name in {v}")))?,
                v.get("config").cloned().unwrap_or(serde_json::Value::Null),
            ),
        };
        let f = |k: &str, d: f64| config.get(k).and_then(|v| v.as_f64()).unwrap_or(d);
        let seed = config.get("seed").and_then(|v| v.as_u64());
        let init = match class {
            "Zeros" | "zeros" => Initializer::Zeros,
            "Ones" | "ones" => Initializer::Ones,
            "Constant" | "constant" => Initializer::Constant(f("value", 0.0)),
            "RandomNormal" | "random_normal" => Initializer::RandomNormal {
                mean: f("mean", 0.0),
                stddev: f("stddev", 0.05),
            },
            "RandomUniform" | "random_uniform" => Initializer::RandomUniform {
                minval: f("minval", -0.05),
                maxval: f("maxval", 0.05),
            },
            "TruncatedNormal" | "truncated_normal" => Initializer::TruncatedNormal {
                mean: f("mean", 0.0),
                stddev: f("stddev", 0.05),
            },
            "GlorotUniform" | "glorot_uniform" => Initializer::GlorotUniform,
            "HeNormal" | "he_normal" => Initializer::HeNormal,
            "HeUniform" | "he_uniform" => Initializer::HeUniform,
            "LecunNormal" | "lecun_normal" => Initializer::LecunNormal,
            other => return Err(bad(format!("unknown initializer {other:?}"))),
        };
        Ok((init, seed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(t: &Tensor) -> (f64, f64, f64) {
        let v = t.cast(DType::F64).unwrap().to_vec::<f64>().unwrap();
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
        (mean, var.sqrt(), v.iter().fold(0.0f64, |m, x| m.max(x.abs())))
    }

    #[test]
    fn keras_scales_and_seeds() {
        let g = Initializer::GlorotUniform
            .init_with_seed(&[200, 300], DType::F32, 1)
            .unwrap();
        let limit = (6.0f64 / 500.0).sqrt();
        let (mean, std, max) = stats(&g);
        assert!(mean.abs() < 0.005 && (std - limit / 3f64.sqrt()).abs() < 0.003 && max <= limit);
        let h = Initializer::HeNormal
            .init_with_seed(&[400, 300], DType::F64, 2)
            .unwrap();
        let (_, std, max) = stats(&h);
        assert!((std - (2.0f64 / 400.0).sqrt()).abs() < 0.003, "{std}");
        assert!(max <= 2.0 * (2.0f64 / 400.0).sqrt() / TRUNCATED_STD + 1e-12);
        assert_eq!(fans(&[3, 3, 16, 32]), (144.0, 288.0));
        let a = Initializer::LecunNormal
            .init_with_seed(&[10, 10], DType::F32, 5)
            .unwrap();
        let b = Initializer::LecunNormal
            .init_with_seed(&[10, 10], DType::F32, 5)
            .unwrap();
        assert_eq!(
            a.to_vec::<f32>().unwrap(),
            b.to_vec::<f32>().unwrap(),
            "a seeded initializer repeats its values, as Keras 3's"
        );
        assert!(Initializer::HeUniform.init(&[2], DType::I32).is_err());
        assert_eq!(
            Initializer::Constant(2.5)
                .init(&[2], DType::F64)
                .unwrap()
                .to_vec::<f64>()
                .unwrap(),
            vec![2.5, 2.5]
        );
    }
}
