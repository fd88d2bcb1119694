//! Typed arguments and results of a [`Function`](crate::Function): which closures
//! [`function`](crate::function) accepts (one to eight `&Tensor` arguments, or a slice of any
//! length), how a call passes its tensors, and how the graph's outputs become what the
//! closure returns (a tensor, a tuple or array of tensors, a `Vec`, or nothing).

use ferroflow_tensor_core::{Error, Result, Tensor};
use smallvec::SmallVec;

/// The tensors of one call, borrowed and inline for the usual handful.
pub type ArgTensors<'a> = SmallVec<[&'a Tensor; 4]>;

/// The erased body every [`Function`](crate::Function) runs while tracing: tensors (and
/// static arguments) in, tensors out.
pub(crate) type Body<'f> = dyn Fn(&[Tensor], &[crate::StaticArg]) -> Result<Vec<Tensor>> + 'f;

/// What a traced closure returns: the graph's outputs, read back into the same shape.
pub trait FunctionOutput: Sized {
    /// The outputs as a list.
    fn into_tensors(self) -> Vec<Tensor>;
    /// The value back from the list (as long as the one [`FunctionOutput::into_tensors`] made).
    fn from_tensors(tensors: Vec<Tensor>) -> Result<Self>;
}

fn wrong_count(want: usize, got: usize) -> Error {
    Error::invalid(
        "function",
        format!("the graph has {got} output(s), the closure returned {want}"),
    )
}

impl FunctionOutput for Tensor {
    fn into_tensors(self) -> Vec<Tensor> {
        vec![self]
    }
    fn from_tensors(tensors: Vec<Tensor>) -> Result<Self> {
        let n = tensors.len();
        let mut it = tensors.into_iter();
        match (it.next(), it.next()) {
            (Some(t), None) => Ok(t),
            _ => Err(wrong_count(1, n)),
        }
    }
}

impl FunctionOutput for Vec<Tensor> {
    fn into_tensors(self) -> Vec<Tensor> {
        self
    }
    fn from_tensors(tensors: Vec<Tensor>) -> Result<Self> {
        Ok(tensors)
    }
}

impl FunctionOutput for () {
    fn into_tensors(self) -> Vec<Tensor> {
        Vec::new()
    }
    fn from_tensors(tensors: Vec<Tensor>) -> Result<Self> {
        if tensors.is_empty() {
            Ok(())
        } else {
            Err(wrong_count(0, tensors.len()))
        }
    }
}

impl<const N: usize> FunctionOutput for [Tensor; N] {
    fn into_tensors(self) -> Vec<Tensor> {
        self.into()
    }
    fn from_tensors(tensors: Vec<Tensor>) -> Result<Self> {
        let n = tensors.len();
        tensors.try_into().map_err(|_| wrong_count(N, n))
    }
}

macro_rules! tuple_output {
    ($n:literal: $($t:ident),+) => {
        impl FunctionOutput for ($(tuple_output!(@ty $t),)+) {
            fn into_tensors(self) -> Vec<Tensor> {
                #[allow(non_snake_case)]
                let ($($t,)+) = self;
                vec![$($t),+]
            }
            fn from_tensors(tensors: Vec<Tensor>) -> Result<Self> {
                let n = tensors.len();
                let mut it = tensors.into_iter();
                #[allow(non_snake_case)]
                let ($($t,)+) = ($(tuple_output!(@next it $t, n, $n),)+);
                if it.next().is_some() {
                    return Err(wrong_count($n, n));
                }
                Ok(($($t,)+))
            }
        }
    };
    (@ty $t:ident) => { Tensor };
    (@next $it:ident $t:ident, $n:ident, $want:literal) => {
        $it.next().ok_or_else(|| wrong_count($want, $n))?
    };
}

tuple_output!(2: A, B);
tuple_output!(3: A, B, C);
tuple_output!(4: A, B, C, D);

/// A closure [`function`](crate::function) can trace: `Fn(&Tensor, ...) -> Result<O>` with
/// none to eight tensor arguments, or `Fn(&[Tensor]) -> Result<O>` for any number, where `O`
/// is a [`FunctionOutput`].
///
/// `Marker` tells the arities apart; it is inferred, never written.
pub trait TraceableFn<'f, Marker> {
    /// The argument list (`(Tensor, Tensor)`, or `[Tensor]` for the slice form).
    type Args: ?Sized;
    /// What the closure returns.
    type Output: FunctionOutput;
    /// The erased body.
    fn into_body(self) -> Box<Body<'f>>;
}

/// The outputs of a traced closure as a list.
fn outputs<O: FunctionOutput>(r: Result<O>) -> Result<Vec<Tensor>> {
    r.map(FunctionOutput::into_tensors)
}

macro_rules! traceable_arity {
    ($n:literal: $($i:literal $t:ident),+) => {
        impl<'f, F, O> TraceableFn<'f, (($(traceable_arity!(@ty $t),)+), O)> for F
        where
            F: Fn($(traceable_arity!(@ref $t)),+) -> Result<O> + 'f,
            O: FunctionOutput,
        {
            type Args = ($(traceable_arity!(@ty $t),)+);
            type Output = O;
            fn into_body(self) -> Box<Body<'f>> {
                Box::new(move |args: &[Tensor], _: &[crate::StaticArg]| {
                    if args.len() != $n {
                        return Err(Error::invalid(
                            "function",
                            format!("the function takes {} argument(s), got {}", $n, args.len()),
                        ));
                    }
                    outputs(self($(&args[$i]),+))
                })
            }
        }
    };
    (@ty $t:ident) => { Tensor };
    (@ref $t:ident) => { &Tensor };
}

traceable_arity!(1: 0 A);
traceable_arity!(2: 0 A, 1 B);
traceable_arity!(3: 0 A, 1 B, 2 C);
traceable_arity!(4: 0 A, 1 B, 2 C, 3 D);
traceable_arity!(5: 0 A, 1 B, 2 C, 3 D, 4 G);
traceable_arity!(6: 0 A, 1 B, 2 C, 3 D, 4 G, 5 H);
traceable_arity!(7: 0 A, 1 B, 2 C, 3 D, 4 G, 5 H, 6 I);
traceable_arity!(8: 0 A, 1 B, 2 C, 3 D, 4 G, 5 H, 6 I, 7 J);

impl<'f, F, O> TraceableFn<'f, ((), O)> for F
where
    F: Fn() -> Result<O> + 'f,
    O: FunctionOutput,
{
    type Args = ();
    type Output = O;
    fn into_body(self) -> Box<Body<'f>> {
        Box::new(move |args: &[Tensor], _: &[crate::StaticArg]| {
            if !args.is_empty() {
                return Err(Error::invalid(
                    "function",
                    format!("the function takes no arguments, got {}", args.len()),
                ));
            }
            outputs(self())
        })
    }
}

impl<'f, F, O> TraceableFn<'f, (Vec<Tensor>, O)> for F
where
    F: Fn(&[Tensor]) -> Result<O> + 'f,
    O: FunctionOutput,
{
    type Args = [Tensor];
    type Output = O;
    fn into_body(self) -> Box<Body<'f>> {
        Box::new(move |args: &[Tensor], _: &[crate::StaticArg]| outputs(self(args)))
    }
}

/// The tensors of a call, for a function whose closure takes `Args`: a `&Tensor` or a
/// one-tuple for one argument, a tuple of `&Tensor`s for several (`f.call((&x, &y, &b))`),
/// and a slice, `Vec` or array for the slice form.
pub trait CallArgs<Args: ?Sized> {
    /// The tensors, borrowed.
    fn tensors(&self) -> ArgTensors<'_>;
}

impl CallArgs<(Tensor,)> for &Tensor {
    fn tensors(&self) -> ArgTensors<'_> {
        smallvec::smallvec![*self]
    }
}

impl CallArgs<()> for () {
    fn tensors(&self) -> ArgTensors<'_> {
        ArgTensors::new()
    }
}

macro_rules! call_tuple {
    ($($t:ident),+) => {
        impl CallArgs<($(call_tuple!(@ty $t),)+)> for ($(call_tuple!(@ref $t),)+) {
            fn tensors(&self) -> ArgTensors<'_> {
                #[allow(non_snake_case)]
                let ($($t,)+) = *self;
                smallvec::smallvec![$($t),+]
            }
        }
    };
    (@ty $t:ident) => { Tensor };
    (@ref $t:ident) => { &Tensor };
}

call_tuple!(A);
call_tuple!(A, B);
call_tuple!(A, B, C);
call_tuple!(A, B, C, D);
call_tuple!(A, B, C, D, G);
call_tuple!(A, B, C, D, G, H);
call_tuple!(A, B, C, D, G, H, I);
call_tuple!(A, B, C, D, G, H, I, J);

impl CallArgs<[Tensor]> for &[Tensor] {
    fn tensors(&self) -> ArgTensors<'_> {
        self.iter().collect()
    }
}

impl CallArgs<[Tensor]> for &Vec<Tensor> {
    fn tensors(&self) -> ArgTensors<'_> {
        self.iter().collect()
    }
}

impl CallArgs<[Tensor]> for &[&Tensor] {
    fn tensors(&self) -> ArgTensors<'_> {
        self.iter().copied().collect()
    }
}

impl<const N: usize> CallArgs<[Tensor]> for &[Tensor; N] {
    fn tensors(&self) -> ArgTensors<'_> {
        self.iter().collect()
    }
}

impl<const N: usize> CallArgs<[Tensor]> for [&Tensor; N] {
    fn tensors(&self) -> ArgTensors<'_> {
        self.iter().copied().collect()
    }
}

impl<const N: usize> CallArgs<[Tensor]> for &[&Tensor; N] {
    fn tensors(&self) -> ArgTensors<'_> {
        self.iter().copied().collect()
    }
}
