//! The single dispatch point every op goes through, and the two hooks that let other crates
//! see ops without tensor-core knowing them: [`Tracer`] (graph capture) and [`Observer`]
//! (gradient tapes, recorders).
//!
//! `dispatch` validates the op against its inputs' specs (shape inference), then either hands
//! it to the active tracer (when this thread is tracing or an input is symbolic) or runs the
//! eager kernel, and finally tells every active observer what ran. Hooks are per thread, like
//! TensorFlow's tape and graph contexts.

use crate::op::Outputs;
use crate::{Data, Error, Op, Result, Tensor, TensorSpec};
use std::cell::RefCell;
use std::rc::Rc;

/// Records ops into a graph instead of running them (implemented by the graph crate).
pub trait Tracer {
    /// Records `op` applied to `inputs`, whose outputs were inferred as `outputs`, and
    /// returns the symbolic output tensors. Eager inputs are the tracer's to capture (as
    /// constants, typically).
    fn record(&self, op: &Op, inputs: &[&Tensor], outputs: Vec<TensorSpec>) -> Result<Vec<Tensor>>;
}

/// Sees every op that runs (eagerly or traced) while it is registered, with its inputs and
/// outputs. Gradient tapes are observers.
pub trait Observer {
    /// Called once per dispatched op, after its outputs exist.
    fn observe(&self, op: &Op, inputs: &[&Tensor], outputs: &[Tensor]);
}

type ObserverList = Rc<Vec<(u64, Rc<dyn Observer>)>>;

thread_local! {
    static TRACERS: RefCell<Vec<(u64, Rc<dyn Tracer>)>> = const { RefCell::new(Vec::new()) };
    // Copy-on-write list so that notifying observers never holds a borrow: an observer may
    // itself dispatch ops (a tape computing a gradient under an outer tape).
    static OBSERVERS: RefCell<Option<ObserverList>> = const { RefCell::new(None) };
    static PAUSED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

static NEXT_HOOK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn fresh_hook_id() -> u64 {
    NEXT_HOOK.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Removes its tracer from this thread's stack when dropped.
#[must_use = "the tracer is removed when the guard is dropped"]
pub struct TracerGuard {
    id: u64,
}

impl Drop for TracerGuard {
    fn drop(&mut self) {
        TRACERS.with(|t| t.borrow_mut().retain(|(id, _)| *id != self.id));
    }
}

/// Removes its observer from this thread when dropped.
#[must_use = "the observer is removed when the guard is dropped"]
pub struct ObserverGuard {
    id: u64,
}

impl Drop for ObserverGuard {
    fn drop(&mut self) {
        OBSERVERS.with(|o| {
            let mut o = o.borrow_mut();
            if let Some(list) = o.as_ref() {
                let rest: Vec<_> = list.iter().filter(|(id, _)| *id != self.id).cloned().collect();
                *o = if rest.is_empty() { None } else { Some(Rc::new(rest)) };
            }
        });
    }
}

/// Makes `tracer` the active tracer of this thread until the guard drops (tracers nest; the
/// innermost records).
pub fn push_tracer(tracer: Rc<dyn Tracer>) -> TracerGuard {
    let id = fresh_hook_id();
    TRACERS.with(|t| t.borrow_mut().push((id, tracer)));
    TracerGuard { id }
}

/// Registers `observer` on this thread until the guard drops.
pub fn push_observer(observer: Rc<dyn Observer>) -> ObserverGuard {
    let id = fresh_hook_id();
    OBSERVERS.with(|o| {
        let mut o = o.borrow_mut();
        let mut list: Vec<_> = o.as_ref().map(|l| l.as_ref().clone()).unwrap_or_default();
        list.push((id, observer));
        *o = Some(Rc::new(list));
    });
    ObserverGuard { id }
}

/// Stops observers from seeing ops until the guard drops (what `tape.stop_recording()` and
/// `stop_gradient` regions need).
#[must_use = "observers resume when the guard is dropped"]
pub struct PauseObservers(());

impl PauseObservers {
    /// Pauses observation on this thread.
    pub fn new() -> Self {
        PAUSED.with(|p| p.set(p.get() + 1));
        PauseObservers(())
    }
}

impl Default for PauseObservers {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for PauseObservers {
    fn drop(&mut self) {
        PAUSED.with(|p| p.set(p.get().saturating_sub(1)));
    }
}

/// True when an observer (a recording gradient tape, typically) is registered on this thread
/// and not paused.
pub fn has_observers() -> bool {
    PAUSED.with(|p| p.get()) == 0 && OBSERVERS.with(|o| o.borrow().is_some())
}

/// True when a tracer is active on this thread.
pub fn is_tracing() -> bool {
    TRACERS.with(|t| !t.borrow().is_empty())
}

fn current_tracer() -> Option<Rc<dyn Tracer>> {
    TRACERS.with(|t| t.borrow().last().map(|(_, tr)| tr.clone()))
}

/// Runs `op` on `inputs`: traced if a tracer is active (or an input is symbolic), eagerly
/// otherwise; then notifies the observers. Every tensor method ends here.
pub fn dispatch(op: Op, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
    dispatch_outputs(op, inputs).map(|o| o.into_vec())
}

/// [`dispatch`] with the outputs inline (no allocation for a single output).
fn dispatch_outputs(op: Op, inputs: &[&Tensor]) -> Result<Outputs<Tensor>> {
    let tracer = current_tracer();
    // Shape inference validates every input, eager or traced, so kernels never see bad input.
    let specs: smallvec::SmallVec<[TensorSpec; 4]> = inputs.iter().map(|t| t.spec()).collect();
    let out_specs = op.infer(&specs)?;
    let outputs: Outputs<Tensor> = match tracer {
        Some(tracer) => Outputs::from_vec(tracer.record(&op, inputs, out_specs.into_vec())?),
        None => match crate::device::placement(&op, inputs)? {
            Some(device) if !device.is_cpu() => crate::device::storage::backend::run(device, &op, inputs, &out_specs)?,
            _ => host_compute(&op, inputs)?,
        },
    };
    notify(&op, inputs, &outputs);
    Ok(outputs)
}

/// Runs `op`'s CPU kernel on host inputs (scalars on a device are read back first).
pub(crate) fn host_compute(op: &Op, inputs: &[&Tensor]) -> Result<Outputs<Tensor>> {
    let mut datas: smallvec::SmallVec<[&Data; 4]> = smallvec::SmallVec::with_capacity(inputs.len());
    for t in inputs {
        if t.is_symbolic() {
            return Err(Error::Symbolic {
                op: op.name(),
                msg: "a symbolic tensor was used outside of the function that traced it".into(),
            });
        }
        datas.push(t.data()?);
    }
    Ok(op.compute(&datas)?.into_iter().map(Tensor::from_data).collect())
}

/// [`dispatch`] for single-output ops.
pub fn dispatch1(op: Op, inputs: &[&Tensor]) -> Result<Tensor> {
    let name = op.name();
    dispatch_outputs(op, inputs)?
        .into_iter()
        .next()
        .ok_or_else(|| Error::Other {
            op: name,
            msg: "op produced no output".into(),
        })
}

fn notify(op: &Op, inputs: &[&Tensor], outputs: &[Tensor]) {
    if PAUSED.with(|p| p.get()) > 0 {
        return;
    }
    let list = OBSERVERS.with(|o| o.borrow().clone());
    if let Some(list) = list {
        for (_, obs) in list.iter() {
            obs.observe(op, inputs, outputs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Op, UnaryOp};
    use std::cell::RefCell;

    /// One observed op: name, input ids, output ids, output values.
    type Seen = (String, Vec<u64>, Vec<u64>, Vec<Vec<f64>>);

    #[derive(Default)]
    struct Recorder(RefCell<Vec<Seen>>);

    impl Observer for Recorder {
        fn observe(&self, op: &Op, inputs: &[&Tensor], outputs: &[Tensor]) {
            self.0.borrow_mut().push((
                op.name().to_string(),
                inputs.iter().map(|t| t.id().0).collect(),
                outputs.iter().map(|t| t.id().0).collect(),
                outputs.iter().map(|t| t.to_f64_vec().unwrap()).collect(),
            ));
        }
    }

    #[test]
    fn observer_sees_every_op_with_inputs_and_outputs() {
        let rec = Rc::new(Recorder::default());
        let x = Tensor::new([1.0f32, 2.0]);
        let y = Tensor::new([3.0f32, 4.0]);
        let (s, z);
        {
            let _g = push_observer(rec.clone());
            s = x.add(&y).unwrap();
            z = s.exp().unwrap();
        }
        // Not observed after the guard is dropped.
        let _ = z.neg().unwrap();
        let log = rec.0.borrow();
        assert_eq!(log.len(), 2);
        assert_eq!(log[0].0, "add");
        assert_eq!(log[0].1, vec![x.id().0, y.id().0]);
        assert_eq!(log[0].2, vec![s.id().0]);
        assert_eq!(log[0].3, vec![vec![4.0, 6.0]]);
        assert_eq!(log[1].0, "exp");
        assert_eq!(log[1].1, vec![s.id().0]);
        assert_eq!(log[1].2, vec![z.id().0]);
        assert!((log[1].3[0][0] - 4f64.exp()).abs() < 1e-4);
    }

    #[test]
    fn paused_observers_see_nothing_and_errors_are_not_observed() {
        let rec = Rc::new(Recorder::default());
        let _g = push_observer(rec.clone());
        {
            let _p = PauseObservers::new();
            let _ = Tensor::new([1.0f64]).exp().unwrap();
        }
        assert!(Tensor::new([1.0f64]).add(&Tensor::new([1.0f32])).is_err());
        assert!(dispatch(Op::Unary(UnaryOp::Exp), &[&Tensor::new([true])]).is_err());
        assert!(rec.0.borrow().is_empty());
    }

    struct FakeTracer;
    impl Tracer for FakeTracer {
        fn record(&self, _op: &Op, _inputs: &[&Tensor], outputs: Vec<TensorSpec>) -> Result<Vec<Tensor>> {
            Ok(outputs
                .into_iter()
                .map(|s| Tensor::symbolic(s, std::sync::Arc::new(())))
                .collect())
        }
    }

    #[test]
    fn tracer_gets_inferred_specs_and_symbolic_values_fail_eagerly() {
        let sym = {
            let _t = push_tracer(Rc::new(FakeTracer));
            assert!(is_tracing());
            let a = Tensor::new([[1.0f32, 2.0]]);
            let b = Tensor::new([[1.0f32], [2.0]]);
            let c = a.matmul(&b).unwrap();
            assert!(c.is_symbolic());
            assert_eq!(c.dims(), &[1, 1]);
            // Shape errors surface while tracing.
            assert!(a.matmul(&a).is_err());
            c
        };
        assert!(!is_tracing());
        let e = sym.exp().unwrap_err();
        assert!(e.to_string().contains("exp"), "{e}");
    }
}
