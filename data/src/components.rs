//! What a dataset element is made of: one tensor per component (`x`, or `x` and `y`, or `x`, `y`
//! and sample weights), and the conversions that let `from_tensor_slices` take a tensor, a pair
//! or a tuple as TensorFlow does.

use ferroflow_tensor_core::Tensor;

/// One element of a [`Dataset`](crate::Dataset): its components in order (`[x]`, `[x, y]`,
/// `[x, y, sample_weight]`, ...).
pub type Element = Vec<Tensor>;

/// Values that are a list of component tensors: a tensor, a pair, a tuple of up to four, an
/// array or a `Vec`, owned or borrowed (borrowed tensors are cheap clones: they share data).
pub trait IntoComponents {
    /// The components, in order.
    fn into_components(self) -> Vec<Tensor>;
}

impl IntoComponents for Tensor {
    fn into_components(self) -> Vec<Tensor> {
        vec![self]
    }
}

impl IntoComponents for &Tensor {
    fn into_components(self) -> Vec<Tensor> {
        vec![self.clone()]
    }
}

impl IntoComponents for Vec<Tensor> {
    fn into_components(self) -> Vec<Tensor> {
        self
    }
}

impl IntoComponents for &[Tensor] {
    fn into_components(self) -> Vec<Tensor> {
        self.to_vec()
    }
}

impl<const N: usize> IntoComponents for [Tensor; N] {
    fn into_components(self) -> Vec<Tensor> {
        self.into()
    }
}

impl<const N: usize> IntoComponents for [&Tensor; N] {
    fn into_components(self) -> Vec<Tensor> {
        self.iter().map(|t| (*t).clone()).collect()
    }
}

/// A component of a tuple: a tensor, owned or borrowed.
pub trait Component {
    /// The tensor (a cheap clone when borrowed).
    fn into_tensor(self) -> Tensor;
}

impl Component for Tensor {
    fn into_tensor(self) -> Tensor {
        self
    }
}

impl Component for &Tensor {
    fn into_tensor(self) -> Tensor {
        self.clone()
    }
}

macro_rules! tuple_components {
    ($($t:ident),+) => {
        impl<$($t: Component),+> IntoComponents for ($($t,)+) {
            #[allow(non_snake_case)]
            fn into_components(self) -> Vec<Tensor> {
                let ($($t,)+) = self;
                vec![$($t.into_tensor()),+]
            }
        }
    };
}

tuple_components!(A);
tuple_components!(A, B);
tuple_components!(A, B, C);
tuple_components!(A, B, C, D);
