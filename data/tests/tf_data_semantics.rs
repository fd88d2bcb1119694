//! tf.data behaviour the pipeline matches: fresh shuffles for every repetition (also when
//! repeats nest), errors that do not end a stream or wait inside a shuffle buffer, the
//! cardinality of repeats, and sizes that must not be allocated up front.

use ferroflow_data::{Cardinality, Dataset};
use ferroflow_tensor_core::{Error, Result, Tensor};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn ints(ds: &Dataset) -> Result<Vec<i32>> {
    ds.iter().map(|e| e?[0].to_scalar::<i32>()).collect()
}

#[test]
fn nested_repeats_reshuffle_every_pass() -> Result<()> {
    let ds = Dataset::from_tensor_slices(Tensor::from_vec((0..32).collect::<Vec<i32>>(), &[32])?)?
        .shuffle(32, 7)
        .repeat_n(2)
        .repeat_n(2);
    let v = ints(&ds)?;
    assert_eq!(v.len(), 128);
    let passes: Vec<&[i32]> = v.chunks(32).collect();
    for i in 0..4 {
        for j in i + 1..4 {
            assert_ne!(passes[i], passes[j], "passes {i} and {j}");
        }
    }
    Ok(())
}

#[test]
fn a_zero_shuffle_buffer_is_an_error() -> Result<()> {
    let ds = Dataset::from_tensor_slices(Tensor::new([0i32, 1, 2, 3]))?;
    assert!(ds.shuffle(0, 1).iter().next().unwrap().is_err());
    Ok(())
}

#[test]
fn a_finite_repeat_goes_on_through_an_empty_repetition() -> Result<()> {
    let n = Arc::new(AtomicUsize::new(0));
    let c = n.clone();
    let ds = Dataset::from_tensor_slices(Tensor::new([1i32, 2, 3]))?
        .filter(move |_| Ok(c.fetch_add(1, Ordering::SeqCst) >= 3))
        .repeat_n(3);
    assert_eq!(ds.iter().count(), 6);
    Ok(())
}

#[test]
fn batching_goes_on_after_an_error() -> Result<()> {
    let ds = Dataset::from_tensor_slices(Tensor::new([0i32, 1, 2, 3, 4, 5]))?
        .map(|e| {
            if e[0].to_scalar::<i32>()? == 1 {
                Err(Error::invalid("f", "bad"))
            } else {
                Ok(e)
            }
        })
        .batch(2);
    let out: Vec<_> = ds.iter().collect();
    assert_eq!(out.len(), 3);
    assert!(out[0].is_err());
    assert_eq!(out[1].as_ref().unwrap()[0].to_vec::<i32>()?, vec![2, 3]);
    assert_eq!(out[2].as_ref().unwrap()[0].to_vec::<i32>()?, vec![4, 5]);
    Ok(())
}

#[test]
fn repeat_cardinality_follows_tensorflow() -> Result<()> {
    let f = Dataset::from_tensor_slices(Tensor::new([1i32, 2, 3]))?.filter(|_| Ok(true));
    assert_eq!(f.cardinality(), Cardinality::Unknown);
    assert_eq!(f.repeat().cardinality(), Cardinality::Infinite);
    assert_eq!(f.repeat().take(5).cardinality(), Cardinality::Finite(5));
    assert_eq!(f.repeat_n(0).cardinality(), Cardinality::Finite(0));
    assert_eq!(f.repeat_n(0).iter().count(), 0);
    Ok(())
}

#[test]
fn huge_batch_and_prefetch_sizes_are_not_allocated_up_front() -> Result<()> {
    let ds = Dataset::from_tensor_slices(Tensor::new([1i32, 2, 3]))?;
    assert_eq!(ds.batch(usize::MAX).iter().next().unwrap()?[0].dims(), &[3]);
    assert_eq!(ds.map(Ok).batch(usize::MAX).iter().next().unwrap()?[0].dims(), &[3]);
    assert_eq!(ds.prefetch(usize::MAX).iter().count(), 3);
    Ok(())
}

#[test]
fn a_shuffle_passes_an_upstream_error_on_at_once() -> Result<()> {
    let ds = Dataset::from_tensor_slices(Tensor::from_vec((0..8).collect::<Vec<i32>>(), &[8])?)?
        .map(|e| {
            if e[0].to_scalar::<i32>()? == 0 {
                Err(Error::invalid("f", "bad"))
            } else {
                Ok(e)
            }
        })
        .shuffle(8, 1);
    for epoch in 0..20 {
        assert_eq!(ds.iter_epoch(epoch).position(|e| e.is_err()), Some(0), "epoch {epoch}");
    }
    Ok(())
}

#[test]
fn iterations_can_be_claimed() -> Result<()> {
    let ds = Dataset::from_tensor_slices(Tensor::new([1i32, 2, 3]))?.shuffle(3, 1);
    assert_eq!(ds.iterations_started(), 0);
    let _ = ds.iter();
    assert_eq!(ds.iterations_started(), 1);
    ds.claim_iterations(5);
    ds.claim_iterations(2);
    assert_eq!(ds.iterations_started(), 5);
    Ok(())
}
