//! Keras' `_keras_logits`: with the TensorFlow backend, a cross-entropy given the output of
//! a sigmoid or softmax activation computes from that activation's input, its logits, as
//! if `from_logits=True` had been passed. Clipped probabilities would cap a saturated wrong
//! prediction's loss near 15.9 and give it no gradient; the logits keep both exact.
//!
//! Keras attaches the logits to the output tensor (the TensorFlow backend's `sigmoid` and
//! `softmax` set `output._keras_logits`), and `_get_logits` uses them whichever activation
//! made them (binary cross-entropy on a softmax output reads the softmax's input). Here an
//! activation calls [`remember`], and the cross-entropies of [`crate::losses`] ask
//! [`logits_of`]: a per-thread side table from the output to its logits, which holds the
//! logits exactly as long as the output lives (entries of dropped outputs are pruned). It
//! works the same eagerly and while tracing (a traced output is a symbolic tensor of its
//! own); any op on the output (a reshape, a cast) makes a new tensor without logits, as in
//! Keras.

use ferroflow_tensor_core::{Tensor, TensorId, WeakTensor};
use std::cell::RefCell;

/// The activation an output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Squash {
    /// `sigmoid(logits)`.
    Sigmoid,
    /// `softmax(logits)` over the last axis.
    Softmax,
}

impl Squash {
    /// TensorFlow's op type (`Sigmoid`, `Softmax`), as Keras' warning names it.
    pub fn op_type(self) -> &'static str {
        match self {
            Squash::Sigmoid => "Sigmoid",
            Squash::Softmax => "Softmax",
        }
    }
}

/// One remembered output: a weak reference to it (the entry goes when it does), its id, the
/// activation and the logits.
type Entry = (WeakTensor, TensorId, Squash, Tensor);

thread_local! {
    static TABLE: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

/// Records that `output` is `squash(logits)`, for as long as `output` lives.
///
/// ```
/// use ferroflow_optim::keras_logits::{logits_of, remember, Squash};
/// use ferroflow_tensor_core::Tensor;
/// let z = Tensor::new([[30.0f32]]);
/// let p = z.sigmoid()?;
/// remember(&p, &z, Squash::Sigmoid);
/// let (squash, logits) = logits_of(&p).unwrap();
/// assert_eq!((squash, logits.id()), (Squash::Sigmoid, z.id()));
/// assert!(logits_of(&z).is_none());
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
pub fn remember(output: &Tensor, logits: &Tensor, squash: Squash) {
    TABLE.with(|t| {
        let mut t = t.borrow_mut();
        t.retain(|(out, ..)| !out.is_dropped());
        t.push((output.downgrade(), output.id(), squash, logits.clone()));
    });
}

/// The activation and logits `output` was computed from, if it was recorded by
/// [`remember`].
pub fn logits_of(output: &Tensor) -> Option<(Squash, Tensor)> {
    TABLE.with(|t| {
        let mut t = t.borrow_mut();
        t.retain(|(out, ..)| !out.is_dropped());
        t.iter()
            .rev()
            .find(|(_, id, ..)| *id == output.id())
            .map(|(_, _, s, z)| (*s, z.clone()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry lives as long as its output: the logits are released with it.
    #[test]
    fn entries_go_with_their_outputs() {
        let z = Tensor::new([1.0f32]);
        let p = z.sigmoid().unwrap();
        remember(&p, &z, Squash::Sigmoid);
        let weak_logits = z.downgrade();
        drop(z);
        assert!(weak_logits.upgrade().is_some(), "held while the output lives");
        drop(p);
        // The next remember prunes the dropped output's entry.
        let (a, b) = (Tensor::new([2.0f32]), Tensor::new([3.0f32]));
        remember(&a, &b, Squash::Softmax);
        assert!(weak_logits.upgrade().is_none());
        assert_eq!(TABLE.with(|t| t.borrow().len()), 1);
    }
}
