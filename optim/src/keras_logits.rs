//! Keras' `_keras_logits`: with the TensorFlow backend, a cross-entropy given the output of
//! a sigmoid or softmax activation computes from that activation's input, its logits, as
//! if `from_logits=True` had been passed. Clipped probabilities would cap a saturated wrong
//! prediction's loss near 15.9 and give it no gradient; the logits keep both exact.
//!
//! Keras attaches the logits to the output tensor (`keras.activations.sigmoid` and
//! `softmax` set `output._keras_logits`). Here an activation calls [`remember`], and the
//! cross-entropies of [`crate::losses`] ask [`logits_of`]: a short per-thread table maps the
//! output's id to its logits. It works the same eagerly and while tracing (a traced output
//! is a symbolic tensor with an id of its own), and holds the last few entries only.

use ferroflow_tensor_core::{Tensor, TensorId};
use std::cell::RefCell;
use std::collections::VecDeque;

/// The activation an output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Squash {
    /// `sigmoid(logits)`: binary cross-entropy reads the logits.
    Sigmoid,
    /// `softmax(logits)` over the last axis: categorical and sparse categorical
    /// cross-entropy read the logits.
    Softmax,
}

/// How many outputs are remembered: a loss is computed right after the forward pass that
/// made its predictions, so a few entries cover a model's outputs.
const KEEP: usize = 16;

thread_local! {
    static TABLE: RefCell<VecDeque<(TensorId, Squash, Tensor)>> = const { RefCell::new(VecDeque::new()) };
}

/// Records that `output` is `squash(logits)`.
///
/// ```
/// use ferroflow_optim::keras_logits::{logits_of, remember, Squash};
/// use ferroflow_tensor_core::Tensor;
/// let z = Tensor::new([[30.0f32]]);
/// let p = z.sigmoid()?;
/// remember(&p, &z, Squash::Sigmoid);
/// assert_eq!(logits_of(&p, Squash::Sigmoid).map(|t| t.id()), Some(z.id()));
/// assert!(logits_of(&p, Squash::Softmax).is_none());
/// assert!(logits_of(&z, Squash::Sigmoid).is_none());
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
pub fn remember(output: &Tensor, logits: &Tensor, squash: Squash) {
    TABLE.with(|t| {
        let mut t = t.borrow_mut();
        if t.len() == KEEP {
            t.pop_front();
        }
        t.push_back((output.id(), squash, logits.clone()));
    });
}

/// The logits `output` was computed from by `squash`, if it was recorded (see
/// [`remember`]).
pub fn logits_of(output: &Tensor, squash: Squash) -> Option<Tensor> {
    TABLE.with(|t| {
        t.borrow()
            .iter()
            .rev()
            .find(|(id, s, _)| *id == output.id() && *s == squash)
            .map(|(_, _, z)| z.clone())
    })
}
