//! Traced calls on a GPU captured as CUDA graphs: the second call is captured, later calls
//! replay it; every result equals, bit for bit, the same calls run op by op on the GPU
//! (capture off). Each test prints why and returns when the process has no GPU.

#![cfg(feature = "cuda")]

use ferroflow::graph::function;
use ferroflow::prelude::*;
use ferroflow::tensor::{cuda, set_graph_capture};

#[path = "support/gpu.rs"]
mod gpu_gate;
use gpu_gate::{gpu, GPU};

/// The seed model (3→3→1, sigmoid, no bias) on the GPU, seeded, in `dtype`. The global seed
/// is set first: as in TensorFlow, a second draw with the same op seed continues that seed's
/// sequence, and the runs a test compares must start from the same weights and batch.
fn model(dtype: DType) -> Vec<Variable> {
    random::set_seed(0);
    [(vec![3usize, 3], 1u64), (vec![3, 1], 2)]
        .into_iter()
        .map(|(shape, seed)| {
            let w = random::normal(&shape, Normal::default().seed(seed).dtype(dtype)).unwrap();
            let v = Variable::new(format!("w{seed}"), w).unwrap();
            v.to_device(GPU).unwrap();
            v
        })
        .collect()
}

/// One training step: MSE of the seed model, tape gradients, `w -= 0.1·g`.
fn step(p: &[Variable], x: &Tensor, y: &Tensor) -> ferroflow::Result<Tensor> {
    let tape = GradientTape::new();
    let out = x.matmul(&p[0].read()?)?.sigmoid()?.matmul(&p[1].read()?)?.sigmoid()?;
    let loss = out.sub(y)?.square()?.reduce_mean(Axes::All)?;
    let grads = tape.gradient(&loss, p)?;
    for (v, g) in p.iter().zip(grads) {
        v.assign_sub(&g.mul(&Tensor::scalar(0.1f64).cast(v.dtype())?)?)?;
    }
    Ok(loss)
}

fn batch(dtype: DType) -> (Tensor, Tensor) {
    let x = random::normal(&[32, 3], Normal::default().seed(13).dtype(dtype)).unwrap();
    let y = random::uniform(&[32, 1], Uniform::default().seed(14).dtype(dtype)).unwrap();
    (x.to(GPU).unwrap(), y.to(GPU).unwrap())
}

fn bits(t: &Tensor) -> Vec<u64> {
    t.to_f64_vec().unwrap().iter().map(|v| v.to_bits()).collect()
}

/// The bits in `t`'s device memory now: read through a fresh view, since a tensor keeps
/// its first host copy (which a wrong in-place write would not change).
fn memory_bits(t: &Tensor) -> Vec<u64> {
    bits(&t.reshape(&[-1]).unwrap())
}

/// Losses of `calls` traced steps and the final weights, with capture on or off; the
/// buffers each call allocated on the GPU.
fn train(dtype: DType, capture: bool, calls: usize) -> (Vec<Vec<u64>>, Vec<Vec<u64>>, Vec<u64>) {
    set_graph_capture(capture);
    let p = model(dtype);
    let (x, y) = batch(dtype);
    let f = function(|x: &Tensor, y: &Tensor| step(&p, x, y));
    let mut losses = Vec::new();
    let mut allocations = Vec::new();
    for _ in 0..calls {
        let before = cuda::memory_stats(0).unwrap().allocations;
        let loss = f.call((&x, &y)).unwrap();
        allocations.push(cuda::memory_stats(0).unwrap().allocations - before);
        assert_eq!(loss.device(), GPU);
        losses.push(bits(&loss));
    }
    set_graph_capture(true);
    (losses, p.iter().map(|v| bits(&v.value())).collect(), allocations)
}

#[test]
fn a_traced_train_step_replays_as_one_graph_bit_for_bit() {
    let Some(_serial) = gpu("a_traced_train_step_replays_as_one_graph_bit_for_bit") else {
        return;
    };
    for dtype in [DType::F32, DType::F64] {
        let (want_losses, want_weights, op_by_op) = train(dtype, false, 6);
        let (losses, weights, allocations) = train(dtype, true, 6);
        assert_eq!(losses, want_losses, "{dtype:?}: losses");
        assert_eq!(weights, want_weights, "{dtype:?}: weights");
        // Replays allocate only the copy of the loss they return; op by op, every op
        // allocates its output.
        assert!(op_by_op[2..].iter().all(|&n| n >= 5), "{dtype:?}: {op_by_op:?}");
        assert_eq!(&allocations[2..], &[1, 1, 1, 1], "{dtype:?}: {allocations:?}");
    }
}

#[test]
fn a_replay_never_changes_a_tensor_read_before_it() {
    let Some(_serial) = gpu("a_replay_never_changes_a_tensor_read_before_it") else {
        return;
    };
    set_graph_capture(true);
    let p = model(DType::F32);
    let (x, y) = batch(DType::F32);
    let f = function(|x: &Tensor, y: &Tensor| step(&p, x, y));
    for _ in 0..3 {
        f.call((&x, &y)).unwrap();
    }
    // A tensor sharing the variable's memory: this call must run op by op.
    let held = p[0].value();
    let held_bits = bits(&held);
    f.call((&x, &y)).unwrap();
    assert_eq!(memory_bits(&held), held_bits, "a tensor read before the call changed");
    assert_ne!(bits(&p[0].value()), held_bits, "the variable did not train");
    drop(held);
    // Nothing else shares it now: the next call replays (one buffer: the loss's copy).
    let before = cuda::memory_stats(0).unwrap().allocations;
    f.call((&x, &y)).unwrap();
    assert_eq!(cuda::memory_stats(0).unwrap().allocations - before, 1);
}

#[test]
fn an_assign_between_calls_is_what_the_next_replay_reads() {
    let Some(_serial) = gpu("an_assign_between_calls_is_what_the_next_replay_reads") else {
        return;
    };
    let run = |capture: bool| {
        set_graph_capture(capture);
        let p = model(DType::F64);
        let (x, y) = batch(DType::F64);
        let f = function(|x: &Tensor, y: &Tensor| step(&p, x, y));
        for _ in 0..3 {
            f.call((&x, &y)).unwrap();
        }
        p[0].assign(&Tensor::ones(&[3, 3], DType::F64).unwrap()).unwrap();
        p[1].assign_add(&Tensor::ones(&[3, 1], DType::F64).unwrap().to(GPU).unwrap())
            .unwrap();
        let mut allocations = Vec::new();
        let mut losses = Vec::new();
        for _ in 0..3 {
            let before = cuda::memory_stats(0).unwrap().allocations;
            losses.push(bits(&f.call((&x, &y)).unwrap()));
            allocations.push(cuda::memory_stats(0).unwrap().allocations - before);
        }
        set_graph_capture(true);
        (
            losses,
            p.iter().map(|v| bits(&v.value())).collect::<Vec<_>>(),
            allocations,
        )
    };
    let (replayed, op_by_op) = (run(true), run(false));
    assert_eq!((&replayed.0, &replayed.1), (&op_by_op.0, &op_by_op.1));
    // Replays, the assigned values copied into the graph's memory: only the loss's copy.
    assert_eq!(replayed.2, vec![1, 1, 1]);
}

#[test]
fn returned_variables_replay_as_fresh_tensors_and_read_only_ones_may_be_held() {
    let Some(_serial) = gpu("returned_variables_replay_as_fresh_tensors_and_read_only_ones_may_be_held") else {
        return;
    };
    set_graph_capture(true);
    let p = model(DType::F32);
    let frozen = Variable::new("scale", Tensor::scalar(0.5f32)).unwrap();
    frozen.to_device(GPU).unwrap();
    let (x, y) = batch(DType::F32);
    // Trains p, reads `frozen` only, and returns the updated first weight.
    let f = function(|a: &[Tensor]| -> ferroflow::Result<Vec<Tensor>> {
        let loss = step(&p, &a[0].mul(&frozen.read()?)?, &a[1])?;
        Ok(vec![loss, p[0].read()?])
    });
    let args = vec![x, y];
    let mut returned = Vec::new();
    let mut held = None;
    for call in 0..5 {
        if call == 2 {
            // After the capture: a tensor sharing the graph's memory of a read-only variable.
            let value = frozen.value();
            let value_bits = memory_bits(&value);
            held = Some((value, value_bits));
        }
        let before = cuda::memory_stats(0).unwrap().allocations;
        let out = f.call(&args).unwrap();
        let allocated = cuda::memory_stats(0).unwrap().allocations - before;
        // The returned weight is the variable's value after the call, in memory of its own.
        assert_eq!(bits(&out[1]), bits(&p[0].value()), "call {call}");
        if call >= 2 {
            // Replays (holding a read-only variable's value does not stop them): the two
            // outputs' copies are all they allocate.
            assert_eq!(allocated, 2, "call {call}");
        }
        returned.push((bits(&out[1]), out.into_iter().nth(1).unwrap()));
    }
    for (i, (was, t)) in returned.iter().enumerate() {
        assert_eq!(&memory_bits(t), was, "the weight returned by call {i} changed later");
    }
    let (held, held_bits) = held.unwrap();
    assert_eq!(memory_bits(&held), held_bits, "a read-only variable's memory changed");
}
