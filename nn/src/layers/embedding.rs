//! `Embedding`: integer ids looked up in a trainable table.

use super::{unique_name, Layer};
use crate::initializers::Initializer;
use crate::Attr;
use ferroflow_tensor_core::{DType, Error, Result, Tensor, Variable};

/// `keras.layers.Embedding`: maps integer ids in `[0, input_dim)` to rows of an
/// `[input_dim, output_dim]` table (initialised uniformly in ±0.05, as Keras does). The output
/// has the ids' shape plus `output_dim`; the gradient reaches only the rows looked up.
///
/// ```
/// use ferroflow_nn::{layers::Layer, Embedding, Module};
/// use ferroflow_tensor_core::Tensor;
/// let e = Embedding::new(10, 4)?;
/// let y = e.call(&Tensor::new([[1i32, 2, 3], [4, 5, 6]]), false)?;
/// assert_eq!(y.dims(), &[2, 3, 4]);
/// assert_eq!(e.count_params(), 40);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
#[derive(Debug)]
pub struct Embedding {
    name: String,
    input_dim: usize,
    embeddings: Variable,
}

impl Embedding {
    /// A table of `input_dim` rows of `output_dim` float32 values.
    pub fn new(input_dim: usize, output_dim: usize) -> Result<Self> {
        Self::with_initializer(
            input_dim,
            output_dim,
            Initializer::RandomUniform {
                minval: -0.05,
                maxval: 0.05,
            },
            None,
        )
    }

    /// A table drawn from `init` with op seed `seed`.
    pub fn with_initializer(input_dim: usize, output_dim: usize, init: Initializer, seed: Option<u64>) -> Result<Self> {
        let name = unique_name("embedding");
        let table = init.init(&[input_dim, output_dim], DType::F32, seed)?;
        let embeddings = Variable::new(format!("{name}/embeddings"), table, true)?;
        Ok(Embedding {
            name,
            input_dim,
            embeddings,
        })
    }

    /// The `[input_dim, output_dim]` table.
    pub fn embeddings(&self) -> &Variable {
        &self.embeddings
    }
}

impl Layer for Embedding {
    fn call(&self, ids: &Tensor, _training: bool) -> Result<Tensor> {
        if ids.dtype().is_float() || ids.dtype() == DType::Bool {
            return Err(Error::dtypes("Embedding", &[ids.dtype()], "ids must be int32 or int64"));
        }
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
        self.embeddings.read()?.gather(ids, 0)
    }
}

layer_module!(Embedding, |l| &l.name, |l| vec![(
    "embeddings".to_string(),
    Attr::Variable(&l.embeddings)
)]);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Module;
    use ferroflow_autodiff::GradientTape;

    #[test]
    fn looks_up_rows_and_sends_gradients_to_them_only() {
        let table = Initializer::Constant(0.0);
        let e = Embedding::with_initializer(3, 2, table, None).unwrap();
        e.embeddings()
            .assign(&Tensor::new([[1.0f32, 2.0], [3.0, 4.0], [5.0, 6.0]]))
            .unwrap();
        let tape = GradientTape::new();
        let y = e.call(&Tensor::new([2i64, 0, 2]), true).unwrap();
        assert_eq!(y.to_vec::<f32>().unwrap(), vec![5.0, 6.0, 1.0, 2.0, 5.0, 6.0]);
        let g = tape
            .gradient_vars(&y.reduce_sum(None, false).unwrap(), &[e.embeddings()])
            .unwrap();
        let g = g[0].as_ref().unwrap();
        assert_eq!(g.to_vec::<f32>().unwrap(), vec![1.0, 1.0, 0.0, 0.0, 2.0, 2.0]);
        assert!(e.call(&Tensor::new([3i32]), false).is_err());
        assert!(e.call(&Tensor::new([1.0f32]), false).is_err());
        assert_eq!(e.variables_by_path_in_order()[0].0, "embeddings");
    }

    #[test]
    fn default_table_is_small_uniform() {
        let e = Embedding::new(50, 8).unwrap();
        let v = e.embeddings().value().to_vec::<f32>().unwrap();
        assert!(v.iter().all(|x| x.abs() <= 0.05));
        assert!(v.iter().any(|x| *x != 0.0));
        let tracked = ferroflow_tensor_core::Trackable::variables_by_path(&e);
        assert_eq!(tracked.len(), 1, "checkpoints see the table");
    }
}
