//! The world-of-one communicator runs every distributed code path without MPI, with the
//! results of one process.

use ferroflow_autodiff::GradientTape;
use ferroflow_distribute::{
    all_reduce_gradients, broadcast_variables, Communicator, CommunicatorExt, DistributedGradientTape,
    DistributedOptimizer, LocalCommunicator, MultiWorkerMirroredStrategy, ReduceOp, ReduceOptions, Weighting,
};
use ferroflow_optim::{Optimizer, Sgd};
use ferroflow_tensor_core::{Axes, Tensor, Variable};
use std::sync::Arc;

#[test]
fn collectives_of_one_worker() {
    let comm = LocalCommunicator::new();
    assert_eq!((comm.rank(), comm.size(), comm.is_chief()), (0, 1, true));
    comm.barrier().unwrap();
    for op in [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min] {
        let mut out = [0.0f64; 2];
        comm.all_reduce_f64(&[1.5, -2.0], &mut out, op).unwrap();
        assert_eq!(out, [1.5, -2.0]);
    }
    assert!(comm.all_reduce_f32(&[1.0], &mut [0.0; 2], ReduceOp::Sum).is_err());
    let t = comm.all_reduce(&Tensor::new([[1.0f32, 2.0]]), ReduceOp::Mean).unwrap();
    assert_eq!((t.dims(), t.to_vec::<f32>().unwrap()), (&[1, 2][..], vec![1.0, 2.0]));
    assert!(comm.all_reduce(&Tensor::new([1i32]), ReduceOp::Sum).is_err());
    let b = comm.broadcast(&Tensor::new([7i64, 8]), 0).unwrap();
    assert_eq!(b.to_vec::<i64>().unwrap(), vec![7, 8]);
    assert!(comm.broadcast(&b, 1).is_err());
    let mut bytes = b"hello".to_vec();
    comm.broadcast_vec(&mut bytes, 0).unwrap();
    assert_eq!(bytes, b"hello");
}

#[test]
fn broadcast_keeps_values_and_checks_roots() {
    let comm = LocalCommunicator::new();
    let w = Variable::new("w", Tensor::new([1.0f64, 2.0])).unwrap();
    broadcast_variables(&comm, &[("w".into(), w.clone())], 0).unwrap();
    assert_eq!(w.value().to_vec::<f64>().unwrap(), vec![1.0, 2.0]);
    assert!(broadcast_variables(&comm, &[("w".into(), w)], 3).is_err());
}

#[test]
fn gradients_of_one_worker_are_the_local_ones() {
    let comm: Arc<dyn Communicator> = Arc::new(LocalCommunicator::new());
    let grads = [
        Tensor::new([1.0f32, -3.0]),
        Tensor::new([[0.5f64]]),
        Tensor::new([2.0f32]),
    ];
    for weighting in [Weighting::Equal, Weighting::Samples(3), Weighting::Share(1.0)] {
        for options in [
            ReduceOptions::new(),
            ReduceOptions::new().bucket_bytes(0),
            ReduceOptions::new().sum(),
        ] {
            if options.is_sum() && matches!(weighting, Weighting::Samples(_)) {
                continue; // a sum of count-weighted gradients is not a mean
            }
            let out = all_reduce_gradients(comm.clone(), &grads, weighting, options).unwrap();
            assert_eq!(out[0].to_vec::<f32>().unwrap(), vec![1.0, -3.0]);
            assert_eq!(out[1].to_vec::<f64>().unwrap(), vec![0.5]);
            assert_eq!(out[2].to_vec::<f32>().unwrap(), vec![2.0]);
        }
    }
    assert!(all_reduce_gradients(
        comm.clone(),
        &[Tensor::new([1i32])],
        Weighting::Equal,
        ReduceOptions::new()
    )
    .is_err());
    // No samples anywhere: the weighted mean is undefined.
    assert!(all_reduce_gradients(comm, &grads, Weighting::Samples(0), ReduceOptions::new()).is_err());
}

#[test]
fn tape_and_optimizer_match_the_plain_ones() {
    let comm: Arc<dyn Communicator> = Arc::new(LocalCommunicator::new());
    let x = Tensor::new([[1.0f64, 2.0], [3.0, -1.0]]);
    let run = |distributed: bool| -> Vec<f64> {
        let w = Variable::new("w", Tensor::new([[0.5f64], [-0.25]])).unwrap();
        let plain = Sgd::new(0.1).unwrap().with_momentum(0.9).unwrap();
        let opt: Box<dyn Optimizer> = if distributed {
            Box::new(DistributedOptimizer::new(plain, comm.clone()))
        } else {
            Box::new(plain)
        };
        for _ in 0..5 {
            let loss = |w: &Variable| x.matmul(&w.read()?)?.square()?.reduce_mean(Axes::All);
            let dw = if distributed {
                let tape = DistributedGradientTape::new(comm.clone()).local_samples(2);
                tape.gradient(&loss(&w).unwrap(), &w).unwrap()
            } else {
                let tape = GradientTape::new();
                tape.gradient(&loss(&w).unwrap(), &w).unwrap()
            };
            opt.apply_gradients([(dw, &w)]).unwrap();
        }
        w.value().to_vec::<f64>().unwrap()
    };
    assert_eq!(run(true), run(false));
}

#[test]
fn strategy_of_one_worker_takes_every_row() {
    let s = MultiWorkerMirroredStrategy::local();
    assert_eq!((s.rank(), s.num_workers(), s.is_chief()), (0, 1, true));
    assert_eq!(s.local_rows(7), 0..7);
    assert!(s.same_as(&s.clone()));
    assert!(!s.same_as(&MultiWorkerMirroredStrategy::local()));
    let g = s.sum_gradients(&[Tensor::new([1.0f32])]).unwrap();
    assert_eq!(g[0].to_vec::<f32>().unwrap(), vec![1.0]);
}
