//! `Embedding`: integer ids looked up in a trainable table.

use super::{unique_name, Layer, Mode};
use crate::initializers::Initializer;
use crate::Attr;
use ferroflow_tensor_core::{DType, Error, Result, Tensor, Variable};
use std::cell::OnceCell;

/// `keras.layers.Embedding`: maps integer ids in `[0, input_dim)` to rows of an
/// `[input_dim, output_dim]` table (initialised uniformly in ±0.05, as Keras does), built on
/// the first call or by [`Embedding::build`]. The output has the ids' shape plus
/// `output_dim`; the gradient reaches only the rows looked up.
///
/// ```
/// use ferroflow_nn::{Embedding, Layer, Mode};
/// use ferroflow_tensor_core::Tensor;
/// let e = Embedding::new(10, 4).with_seed(1);
/// let y = e.call(&Tensor::new([[1i32, 2, 3], [4, 5, 6]]), Mode::Inference)?;
/// assert_eq!(y.dims(), &[2, 3, 4]);
/// assert_eq!(e.count_params(), 40);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
#[derive(Debug)]
pub struct Embedding {
    name: String,
    input_dim: usize,
    output_dim: usize,
    initializer: Initializer,
    seed: Option<u64>,
    embeddings: OnceCell<Variable>,
    trainable: std::cell::Cell<bool>,
}

impl Embedding {
    /// A table of `input_dim` rows of `output_dim` float32 values.
    pub fn new(input_dim: usize, output_dim: usize) -> Self {
        Embedding {
            name: unique_name("embedding"),
            input_dim,
            output_dim,
            initializer: Initializer::RandomUniform {
                minval: -0.05,
                maxval: 0.05,
            },
            seed: None,
            embeddings: OnceCell::new(),
            trainable: std::cell::Cell::new(true),
        }
    }

    /// Draws the table from `initializer` (Keras' `embeddings_initializer`).
    pub fn with_embeddings_initializer(mut self, initializer: Initializer) -> Self {
        self.initializer = initializer;
        self
    }

    /// Seeds the initializer.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Sets the layer's name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Builds the table now instead of at the first call.
    pub fn build(self) -> Result<Self> {
        self.table()?;
        Ok(self)
    }

    /// The table, made on first use.
    fn table(&self) -> Result<&Variable> {
        if let Some(t) = self.embeddings.get() {
            return Ok(t);
        }
        let dims = [self.input_dim, self.output_dim];
        let table = self.initializer.draw(&dims, DType::F32, self.seed)?;
        let var = Variable::new(format!("{}/embeddings", self.name), table)?;
        super::freeze_new(self, [&var]);
        Ok(self.embeddings.get_or_init(|| var))
    }

    /// The `[input_dim, output_dim]` table, once built.
    pub fn embeddings(&self) -> Option<&Variable> {
        self.embeddings.get()
    }
}

impl crate::model::LayerConfig for Embedding {
    fn class_name(&self) -> &'static str {
        "Embedding"
    }

    fn config(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = super::base_config(&self.name, ferroflow_tensor_core::DType::F32);
        m.insert("input_dim".into(), self.input_dim.into());
        m.insert("output_dim".into(), self.output_dim.into());
        m.insert("embeddings_initializer".into(), self.initializer.to_keras(self.seed));
        m.insert("embeddings_regularizer".into(), serde_json::Value::Null);
        m.insert("activity_regularizer".into(), serde_json::Value::Null);
        m.insert("embeddings_constraint".into(), serde_json::Value::Null);
        m.insert("mask_zero".into(), false.into());
        m
    }
}

impl Embedding {
    /// A layer from Keras' config (`input_dim`, `output_dim`, `embeddings_initializer`).
    pub fn from_config(config: &serde_json::Value) -> Result<Self> {
        use super::unsupported::{refuse_unsupported, Allowed, COMMON};
        use crate::model::get_usize;
        let own: &[(&str, Allowed)] = &[
            ("mask_zero", Allowed::OneOf(&["false"])),
            ("embeddings_regularizer", Allowed::Null),
            ("embeddings_constraint", Allowed::Null),
            ("lora_rank", Allowed::Null),
        ];
        refuse_unsupported("Embedding", config, &[COMMON, own])?;
        let mut e = Embedding::new(
            get_usize(config, "Embedding", "input_dim")?,
            get_usize(config, "Embedding", "output_dim")?,
        )
        .with_name(super::config_name(config, "embedding"));
        if let Some(init) = config.get("embeddings_initializer").filter(|v| !v.is_null()) {
            let (init, seed) = Initializer::from_keras(init)?;
            e = e.with_embeddings_initializer(init);
            e.seed = seed;
        }
        Ok(e)
    }
}

impl Layer for Embedding {
    fn trainable_switch(&self) -> Option<&std::cell::Cell<bool>> {
        Some(&self.trainable)
    }
    fn keras_config(&self) -> Option<serde_json::Value> {
        Some(super::keras_entry(self))
    }

    fn call(&self, ids: &Tensor, _mode: Mode) -> Result<Tensor> {
        if ids.dtype() == DType::Bool {
            return Err(Error::dtypes("Embedding", &[ids.dtype()], "ids must be numbers"));
        }
        // Keras casts float ids to int32 (truncating, as a cast does).
        let ids = &if ids.dtype().is_float() {
            ids.cast(DType::I32)?
        } else {
            ids.clone()
        };
        if !ids.is_symbolic() {
            // Out-of-range ids are an error eagerly (TensorFlow's CPU kernel also rejects them).
            let bad = ids
                .to_f64_vec()?
                .into_iter()
                .find(|&i| i < 0.0 || i >= self.input_dim as f64);
            if let Some(i) = bad {
                return Err(Error::invalid(
                    "Embedding",
                    format!("id {i} is outside [0, {})", self.input_dim),
                ));
            }
        }
        self.table()?.read()?.gather(ids, 0)
    }
}

layer_module!(Embedding, |l| &l.name, |l| l
    .embeddings
    .get()
    .map(|t| ("embeddings".to_string(), Attr::Variable(t)))
    .into_iter()
    .collect());

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Module;
    use ferroflow_autodiff::GradientTape;
    use ferroflow_tensor_core::Axes;

    #[test]
    fn looks_up_rows_and_sends_gradients_to_them_only() {
        let table = Initializer::Constant(0.0);
        let e = Embedding::new(3, 2).with_embeddings_initializer(table).build().unwrap();
        let embeddings = e.embeddings().unwrap();
        embeddings
            .assign(&Tensor::new([[1.0f32, 2.0], [3.0, 4.0], [5.0, 6.0]]))
            .unwrap();
        let tape = GradientTape::new();
        let y = e.call(&Tensor::new([2i64, 0, 2]), Mode::Training).unwrap();
        assert_eq!(y.to_vec::<f32>().unwrap(), vec![5.0, 6.0, 1.0, 2.0, 5.0, 6.0]);
        let g = tape.gradient(&y.reduce_sum(Axes::All).unwrap(), embeddings).unwrap();
        assert_eq!(g.to_vec::<f32>().unwrap(), vec![1.0, 1.0, 0.0, 0.0, 2.0, 2.0]);
        assert!(e.call(&Tensor::new([3i32]), Mode::Inference).is_err());
        // Float ids are cast to int32, as Keras casts them; bool ids are an error.
        let by_float = e.call(&Tensor::new([1.9f32]), Mode::Inference).unwrap();
        assert_eq!(by_float.to_vec::<f32>().unwrap(), vec![3.0, 4.0]);
        assert!(e.call(&Tensor::new([true]), Mode::Inference).is_err());
        assert_eq!(e.variables_by_path_in_order()[0].0, "embeddings");
    }

    #[test]
    fn default_table_is_small_uniform() {
        let e = Embedding::new(50, 8);
        assert!(ferroflow_tensor_core::Trackable::variables_by_path(&e).is_empty());
        let e = e.build().unwrap();
        let v = e.embeddings().unwrap().value().to_vec::<f32>().unwrap();
        assert!(v.iter().all(|x| x.abs() <= 0.05));
        assert!(v.iter().any(|x| *x != 0.0));
        let tracked = ferroflow_tensor_core::Trackable::variables_by_path(&e);
        assert_eq!(tracked.len(), 1, "checkpoints see the table");
    }
}
