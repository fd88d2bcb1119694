//! `BatchNormalization` and `LayerNormalization`: normalise over the batch or over the
//! features, then scale by `gamma` and shift by `beta`.

use super::{unique_name, Layer, Mode};
use crate::Attr;
use ferroflow_tensor_core::{Axes, DType, Error, Result, Tensor, Variable};
use std::cell::OnceCell;

/// The per-feature variables of a normalisation layer, created at the first call (or at
/// build) from the size of the last axis.
#[derive(Debug)]
struct FeatureVars {
    gamma: Variable,
    beta: Variable,
    moving: Option<(Variable, Variable)>,
}

fn feature_vars(name: &str, features: usize, dtype: DType, moving: bool) -> Result<FeatureVars> {
    let path = |n: &str| format!("{name}/{n}");
    Ok(FeatureVars {
        gamma: Variable::new(path("gamma"), Tensor::ones(&[features], dtype)?)?,
        beta: Variable::new(path("beta"), Tensor::zeros(&[features], dtype)?)?,
        moving: if moving {
            Some((
                Variable::non_trainable(path("moving_mean"), Tensor::zeros(&[features], dtype)?)?,
                Variable::non_trainable(path("moving_variance"), Tensor::ones(&[features], dtype)?)?,
            ))
        } else {
            None
        },
    })
}

fn attributes(vars: &OnceCell<FeatureVars>) -> Vec<(String, Attr<'_>)> {
    let Some(f) = vars.get() else { return Vec::new() };
    let mut out = vec![
        ("gamma".to_string(), Attr::Variable(&f.gamma)),
        ("beta".to_string(), Attr::Variable(&f.beta)),
    ];
    if let Some((m, v)) = &f.moving {
        out.push(("moving_mean".to_string(), Attr::Variable(m)));
        out.push(("moving_variance".to_string(), Attr::Variable(v)));
    }
    out
}

/// A normalization's `axis` from a Keras config: an integer or a list of one (`-1` if
/// absent). Several axes are refused: the layers normalise one, the last.
fn config_axis(class: &str, config: &serde_json::Value) -> Result<i64> {
    let v = match config.get("axis") {
        None | Some(serde_json::Value::Null) => return Ok(-1),
        Some(serde_json::Value::Array(a)) if a.len() == 1 => &a[0],
        Some(v) => v,
    };
    v.as_i64().ok_or_else(|| {
        Error::invalid(
            "from_json",
            format!("{class}: axis = {v} is not supported (one axis, the last, is normalised)"),
        )
    })
}

/// The configured axis must be the input's last (`axis=3` on NHWC inputs is `-1`).
fn check_last_axis(op: &'static str, axis: i64, x: &Tensor) -> Result<()> {
    let rank = x.rank() as i64;
    if axis == -1 || axis == rank - 1 {
        Ok(())
    } else {
        Err(Error::invalid(
            op,
            format!("axis {axis} is not the last axis of a rank-{rank} input; only the last axis is normalised"),
        ))
    }
}

fn last_axis(op: &'static str, x: &Tensor) -> Result<usize> {
    match x.dims().last() {
        Some(&n) if x.dtype().is_float() => Ok(n),
        Some(_) => Err(Error::dtypes(op, &[x.dtype()], "needs a float input")),
        None => Err(Error::shapes(op, &[&x.shape()], "needs inputs of rank >= 1")),
    }
}

/// `(x - mean) / sqrt(var + epsilon) * gamma + beta`, in the order TensorFlow's
/// `tf.nn.batch_normalization` (and Keras' layer normalization) computes it:
/// `x · inv + (beta - mean · inv)` with `inv = rsqrt(var + epsilon) · gamma`, so float32
/// results round as theirs do (`(x - mean) · inv` differs when `|mean|` is large).
fn normalize(x: &Tensor, mean: &Tensor, var: &Tensor, eps: f64, f: &FeatureVars) -> Result<Tensor> {
    let inv = var.add(&var.scalar_like(eps))?.rsqrt()?.mul(&f.gamma.read()?)?;
    x.mul(&inv)?.add(&f.beta.read()?.sub(&mean.mul(&inv)?)?)
}

/// `keras.layers.BatchNormalization` over the last axis. Training normalises with the
/// batch's mean and (population) variance over every other axis and moves
/// `moving_mean`/`moving_variance` towards them by `1 - momentum`; inference uses the moving
/// statistics. Keras' defaults: `momentum = 0.99`, `epsilon = 1e-3`.
///
/// ```
/// use ferroflow_nn::{BatchNormalization, Layer, Mode, Module};
/// use ferroflow_tensor_core::Tensor;
/// let bn = BatchNormalization::new();
/// let x = Tensor::new([[1.0f32, 10.0], [3.0, 30.0]]);
/// let y = bn.call(&x, Mode::Training)?;
/// assert!((y.to_vec::<f32>()?[0] + 0.9995).abs() < 1e-3); // (1 - 2) / sqrt(1 + 0.001)
/// assert_eq!(bn.trainable_variables().len(), 2);
/// assert_eq!(bn.variables().len(), 4);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
#[derive(Debug)]
pub struct BatchNormalization {
    name: String,
    dtype: DType,
    trainable: std::cell::Cell<bool>,
    momentum: f64,
    epsilon: f64,
    /// The feature axis as configured (`-1`, or the last axis counted from the front).
    axis: i64,
    vars: OnceCell<FeatureVars>,
}

impl Default for BatchNormalization {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchNormalization {
    /// With Keras' defaults.
    pub fn new() -> Self {
        BatchNormalization {
            name: unique_name("batch_normalization"),
            dtype: DType::F32,
            trainable: std::cell::Cell::new(true),
            momentum: 0.99,
            epsilon: 1e-3,
            axis: -1,
            vars: OnceCell::new(),
        }
    }

    /// Sets the variables' dtype (float32 by default); floating inputs are cast to it, as
    /// Keras autocasts them.
    pub fn with_dtype(mut self, dtype: DType) -> Self {
        self.dtype = dtype;
        self
    }

    /// Sets the momentum of the moving statistics.
    pub fn with_momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// Sets the variance epsilon.
    pub fn with_epsilon(mut self, epsilon: f64) -> Self {
        self.epsilon = epsilon;
        self
    }

    fn build(&self, x: &Tensor) -> Result<&FeatureVars> {
        let n = last_axis("BatchNormalization", x)?;
        check_last_axis("BatchNormalization", self.axis, x)?;
        if self.vars.get().is_none() {
            let _ = self.vars.set(feature_vars(&self.name, n, self.dtype, true)?);
            super::freeze_new(self, crate::Module::variables(self).iter());
        }
        self.vars
            .get()
            .ok_or_else(|| Error::invalid("BatchNormalization", "not built"))
    }
}

impl crate::model::LayerConfig for BatchNormalization {
    fn class_name(&self) -> &'static str {
        "BatchNormalization"
    }

    fn config(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = super::base_config(&self.name, self.dtype);
        m.insert("axis".into(), self.axis.into());
        m.insert("momentum".into(), self.momentum.into());
        m.insert("epsilon".into(), self.epsilon.into());
        m.insert("center".into(), true.into());
        m.insert("scale".into(), true.into());
        m
    }
}

impl BatchNormalization {
    /// A layer from Keras' config (`momentum`, `epsilon`); settings the layer does not
    /// implement (another axis, `scale=False`, renormalization, regularizers) are refused.
    pub fn from_config(config: &serde_json::Value) -> Result<Self> {
        use super::unsupported::{refuse_unsupported, Allowed, COMMON, NORMALIZATION};
        use crate::initializers::Initializer;
        let moving: &[(&str, Allowed)] = &[
            ("moving_mean_initializer", Allowed::Init(Initializer::Zeros)),
            ("moving_variance_initializer", Allowed::Init(Initializer::Ones)),
            ("renorm", Allowed::OneOf(&["false"])),
            ("synchronized", Allowed::OneOf(&["false"])),
        ];
        refuse_unsupported("BatchNormalization", config, &[COMMON, NORMALIZATION, moving])?;
        let axis = config_axis("BatchNormalization", config)?;
        let mut b = BatchNormalization::new()
            .with_momentum(crate::model::get_f64(config, "momentum", 0.99))
            .with_epsilon(crate::model::get_f64(config, "epsilon", 1e-3))
            .with_dtype(crate::model::read_dtype(config)?);
        b.name = super::config_name(config, "batch_normalization");
        b.axis = axis;
        Ok(b)
    }
}

impl Layer for BatchNormalization {
    fn trainable_switch(&self) -> Option<&std::cell::Cell<bool>> {
        Some(&self.trainable)
    }
    fn keras_config(&self) -> Option<serde_json::Value> {
        Some(super::keras_entry(self))
    }

    fn call(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let x = &super::autocast(x, self.dtype)?;
        let f = self.build(x)?;
        let (moving_mean, moving_var) = f
            .moving
            .as_ref()
            .ok_or_else(|| Error::invalid("BatchNormalization", "no moving statistics"))?;
        // A frozen layer normalises with its moving statistics and leaves them as they are,
        // also while training (Keras 3's `training and self.trainable`).
        if mode == Mode::Inference || !self.trainable.get() {
            return normalize(x, &moving_mean.read()?, &moving_var.read()?, self.epsilon, f);
        }
        let axes: Vec<i64> = (0..x.rank() as i64 - 1).collect();
        let mean = x.reduce_mean(&axes)?;
        // tf.nn.moments: the variance does not differentiate through the mean.
        let var = x.squared_difference(&mean.stop_gradient()?)?.reduce_mean(&axes)?;
        let m = x.scalar_like(self.momentum);
        let one_minus = x.scalar_like(1.0 - self.momentum);
        // Statistics are not trained through: their update is state, not part of the loss.
        moving_mean.assign(
            &moving_mean
                .read()?
                .mul(&m)?
                .add(&mean.stop_gradient()?.mul(&one_minus)?)?,
        )?;
        moving_var.assign(
            &moving_var
                .read()?
                .mul(&m)?
                .add(&var.stop_gradient()?.mul(&one_minus)?)?,
        )?;
        normalize(x, &mean, &var, self.epsilon, f)
    }
}

/// `keras.layers.LayerNormalization` over the last axis: each example is normalised by its
/// own mean and variance, the same in training and inference. Keras' default
/// `epsilon = 1e-3`.
///
/// ```
/// use ferroflow_nn::{Layer, LayerNormalization, Mode};
/// use ferroflow_tensor_core::Tensor;
/// let ln = LayerNormalization::new();
/// let y = ln.call(&Tensor::new([[1.0f32, 3.0]]), Mode::Inference)?;
/// let v = y.to_vec::<f32>()?;
/// assert!((v[0] + 0.9995).abs() < 1e-3 && (v[1] - 0.9995).abs() < 1e-3);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
#[derive(Debug)]
pub struct LayerNormalization {
    name: String,
    dtype: DType,
    trainable: std::cell::Cell<bool>,
    epsilon: f64,
    /// The normalised axis as configured (`-1`, or the last axis counted from the front).
    axis: i64,
    vars: OnceCell<FeatureVars>,
}

impl Default for LayerNormalization {
    fn default() -> Self {
        Self::new()
    }
}

impl LayerNormalization {
    /// With Keras' defaults.
    pub fn new() -> Self {
        LayerNormalization {
            name: unique_name("layer_normalization"),
            dtype: DType::F32,
            trainable: std::cell::Cell::new(true),
            epsilon: 1e-3,
            axis: -1,
            vars: OnceCell::new(),
        }
    }

    /// Sets the variance epsilon.
    pub fn with_epsilon(mut self, epsilon: f64) -> Self {
        self.epsilon = epsilon;
        self
    }

    /// Sets the variables' dtype (float32 by default); floating inputs are cast to it, as
    /// Keras autocasts them.
    pub fn with_dtype(mut self, dtype: DType) -> Self {
        self.dtype = dtype;
        self
    }
}

impl crate::model::LayerConfig for LayerNormalization {
    fn class_name(&self) -> &'static str {
        "LayerNormalization"
    }

    fn config(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = super::base_config(&self.name, self.dtype);
        m.insert("axis".into(), self.axis.into());
        m.insert("epsilon".into(), self.epsilon.into());
        m.insert("center".into(), true.into());
        m.insert("scale".into(), true.into());
        m
    }
}

impl LayerNormalization {
    /// A layer from Keras' config (`epsilon`); settings the layer does not implement
    /// (another axis, `scale=False`, RMS scaling, regularizers) are refused.
    pub fn from_config(config: &serde_json::Value) -> Result<Self> {
        use super::unsupported::{refuse_unsupported, Allowed, COMMON, NORMALIZATION};
        let rms: &[(&str, Allowed)] = &[("rms_scaling", Allowed::OneOf(&["false"]))];
        refuse_unsupported("LayerNormalization", config, &[COMMON, NORMALIZATION, rms])?;
        let axis = config_axis("LayerNormalization", config)?;
        let mut l = LayerNormalization::new()
            .with_epsilon(crate::model::get_f64(config, "epsilon", 1e-3))
            .with_dtype(crate::model::read_dtype(config)?);
        l.name = super::config_name(config, "layer_normalization");
        l.axis = axis;
        Ok(l)
    }
}

impl Layer for LayerNormalization {
    fn trainable_switch(&self) -> Option<&std::cell::Cell<bool>> {
        Some(&self.trainable)
    }
    fn keras_config(&self) -> Option<serde_json::Value> {
        Some(super::keras_entry(self))
    }

    fn call(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        let x = &super::autocast(x, self.dtype)?;
        let n = last_axis("LayerNormalization", x)?;
        check_last_axis("LayerNormalization", self.axis, x)?;
        if self.vars.get().is_none() {
            let _ = self.vars.set(feature_vars(&self.name, n, self.dtype, false)?);
            super::freeze_new(self, crate::Module::variables(self).iter());
        }
        let f = self
            .vars
            .get()
            .ok_or_else(|| Error::invalid("LayerNormalization", "not built"))?;
        let mean = x.reduce_mean(Axes::from(-1).keepdims())?;
        let var = x
            .squared_difference(&mean.stop_gradient()?)?
            .reduce_mean(Axes::from(-1).keepdims())?;
        normalize(x, &mean, &var, self.epsilon, f)
    }
}

layer_module!(BatchNormalization, |l| &l.name, |l| attributes(&l.vars));
layer_module!(LayerNormalization, |l| &l.name, |l| attributes(&l.vars));

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Module;
    use ferroflow_autodiff::GradientTape;

    #[test]
    fn batch_norm_trains_on_batch_statistics_and_infers_on_moving_ones() {
        let bn = BatchNormalization::new().with_momentum(0.5).with_dtype(DType::F64);
        let x = Tensor::new([[1.0f64, 2.0], [3.0, 6.0]]);
        let y = bn.call(&x, Mode::Training).unwrap().to_vec::<f64>().unwrap();
        // feature 0: mean 2, var 1; feature 1: mean 4, var 4.
        let e = |d: f64, v: f64| d / (v + 1e-3f64).sqrt();
        for (a, b) in y.iter().zip([e(-1.0, 1.0), e(-2.0, 4.0), e(1.0, 1.0), e(2.0, 4.0)]) {
            approx::assert_relative_eq!(*a, b, max_relative = 1e-12);
        }
        let paths: Vec<String> = bn.variables_by_path_in_order().into_iter().map(|(p, _)| p).collect();
        assert_eq!(paths, ["beta", "gamma", "moving_mean", "moving_variance"]);
        // Checkpoints see the same paths (the layer is Trackable, like every layer).
        let tracked = ferroflow_tensor_core::Trackable::variables_by_path(&bn);
        assert_eq!(tracked.into_iter().map(|(p, _)| p).collect::<Vec<_>>(), paths);
        let (mm, mv) = bn.vars.get().unwrap().moving.clone().unwrap();
        assert_eq!(mm.value().to_vec::<f64>().unwrap(), vec![1.0, 2.0]);
        assert_eq!(mv.value().to_vec::<f64>().unwrap(), vec![1.0, 2.5]);
        // Inference uses the moving statistics and changes nothing.
        let y = bn.call(&x, Mode::Inference).unwrap().to_vec::<f64>().unwrap();
        approx::assert_relative_eq!(y[0], 0.0, epsilon = 1e-12);
        approx::assert_relative_eq!(y[3], 4.0 / (2.5f64 + 1e-3).sqrt(), max_relative = 1e-12);
        assert_eq!(mm.value().to_vec::<f64>().unwrap(), vec![1.0, 2.0]);
        assert_eq!(bn.count_params(), 8);
        assert_eq!(bn.trainable_variables().len(), 2);
    }

    #[test]
    fn layer_norm_normalises_each_example_and_has_gradients() {
        let ln = LayerNormalization::new().with_epsilon(0.0).with_dtype(DType::F64);
        let x = Tensor::new([[1.0f64, 2.0, 3.0], [10.0, 10.0, 40.0]]);
        let tape = GradientTape::new();
        tape.watch(&x);
        let y = ln.call(&x, Mode::Inference).unwrap();
        let v = y.to_vec::<f64>().unwrap();
        let s = (2.0f64 / 3.0).sqrt();
        approx::assert_relative_eq!(v[0], -1.0 / s, max_relative = 1e-12);
        approx::assert_relative_eq!(v[5], (40.0 - 20.0) / 200.0f64.sqrt(), max_relative = 1e-12);
        let g = tape.gradient(&y.reduce_sum(Axes::All).unwrap(), &x).unwrap();
        // The output sums to sum(beta) whatever x is, so d(sum)/dx = 0.
        for d in g.to_vec::<f64>().unwrap() {
            assert!(d.abs() < 1e-12, "{d}");
        }
        assert_eq!(ln.variables().len(), 2);
        // Integers are promoted to the layer's dtype.
        let ints = ln.call(&Tensor::new([[1i32, 2, 3]]), Mode::Inference).unwrap();
        assert_eq!(ints.dtype(), DType::F64);
    }
}
