//! The stages a pipeline is built from, generic over what flows through them: row indices of
//! a slice dataset (so shuffling, repeating, taking and skipping rows never copies a tensor)
//! or elements.

use crate::rng::{derive_seed, SplitMix64};
use std::sync::Arc;

/// A boxed iterator that can move to a prefetch thread.
pub type BoxIter<T> = Box<dyn Iterator<Item = T> + Send>;

/// Starts iteration `n` of a stream (`n` varies the order of shuffles below it).
pub type Maker<T> = Arc<dyn Fn(u64) -> BoxIter<T> + Send + Sync>;

/// TensorFlow's buffered shuffle: fill a buffer of `capacity`, then repeatedly emit a random
/// buffered item and refill its place from upstream.
pub struct Shuffle<T> {
    upstream: BoxIter<T>,
    buffer: Vec<T>,
    capacity: usize,
    rng: SplitMix64,
    filled: bool,
}

impl<T> Shuffle<T> {
    /// Shuffles `upstream` through a buffer of `capacity` (at least 1), seeded.
    pub fn new(upstream: BoxIter<T>, capacity: usize, seed: u64) -> Self {
        Shuffle {
            upstream,
            buffer: Vec::new(),
            capacity: capacity.max(1),
            rng: SplitMix64::new(seed),
            filled: false,
        }
    }
}

/// Items that may be errors: an error from upstream passes through the shuffle at once, as
/// TensorFlow's shuffle returns an upstream error when it meets it, rather than being
/// buffered and coming out at a random later place.
pub trait Fallible {
    /// Whether this item is an error.
    fn is_error(&self) -> bool;
}

impl<T> Fallible for ferroflow_tensor_core::Result<T> {
    fn is_error(&self) -> bool {
        self.is_err()
    }
}

impl Fallible for usize {
    fn is_error(&self) -> bool {
        false
    }
}

impl<T: Fallible> Iterator for Shuffle<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        if !self.filled {
            while self.buffer.len() < self.capacity {
                match self.upstream.next() {
                    Some(x) if x.is_error() => return Some(x),
                    Some(x) => self.buffer.push(x),
                    None => break,
                }
            }
            self.filled = true;
        }
        if self.buffer.is_empty() {
            return None;
        }
        let i = self.rng.below(self.buffer.len());
        Some(match self.upstream.next() {
            Some(x) if x.is_error() => return Some(x),
            Some(next) => std::mem::replace(&mut self.buffer[i], next),
            None => self.buffer.swap_remove(i),
        })
    }
}

/// A shuffled stream: iteration `n` shuffles with a seed derived from `seed` and `n`, so each
/// epoch has its own order and the same epoch always the same one.
pub fn shuffled<T: Fallible + Send + 'static>(upstream: Maker<T>, capacity: usize, seed: u64) -> Maker<T> {
    Arc::new(move |n| Box::new(Shuffle::new(upstream(n), capacity, derive_seed(seed, n))))
}

/// `count` repetitions (forever with `None`); repetition `r` of iteration `n` is upstream
/// iteration `derive(n, r)`, every repetition its own (also when repeats nest: an identity
/// for the first repetition would give an inner repeat's second pass and an outer repeat's
/// second pass the same iteration, so the same shuffle). Repeating forever stops if a
/// repetition yields nothing, where looping would never produce an item; a finite repeat
/// goes on through empty repetitions, as TensorFlow's does.
pub fn repeated<T: Send + 'static>(upstream: Maker<T>, count: Option<usize>) -> Maker<T> {
    Arc::new(move |n| {
        let upstream = upstream.clone();
        let mut r = 0u64;
        let mut current: Option<BoxIter<T>> = None;
        let mut yielded_this_round = false;
        Box::new(std::iter::from_fn(move || loop {
            if let Some(it) = current.as_mut() {
                if let Some(x) = it.next() {
                    yielded_this_round = true;
                    return Some(x);
                }
                current = None;
                if !yielded_this_round && count.is_none() {
                    return None;
                }
            }
            if count.is_some_and(|c| r >= c as u64) {
                return None;
            }
            yielded_this_round = false;
            current = Some(upstream(derive_seed(n, r)));
            r += 1;
        }))
    })
}

/// The first `k` items of each iteration.
pub fn taken<T: Send + 'static>(upstream: Maker<T>, k: usize) -> Maker<T> {
    Arc::new(move |n| Box::new(upstream(n).take(k)))
}

/// Each iteration without its first `k` items.
pub fn skipped<T: Send + 'static>(upstream: Maker<T>, k: usize) -> Maker<T> {
    Arc::new(move |n| Box::new(upstream(n).skip(k)))
}

/// Each iteration's items `index`, `index + num_shards`, ... (`shard`).
pub fn sharded<T: Send + 'static>(upstream: Maker<T>, num_shards: usize, index: usize) -> Maker<T> {
    Arc::new(move |n| Box::new(upstream(n).skip(index).step_by(num_shards)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(n: usize) -> Maker<usize> {
        Arc::new(move |_| Box::new(0..n))
    }

    #[test]
    fn shuffle_is_a_permutation_that_changes_per_iteration() {
        let s = shuffled(range(50), 10, 3);
        let a: Vec<usize> = s(0).collect();
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        assert_ne!(a, (0..50).collect::<Vec<_>>());
        assert_eq!(a, s(0).collect::<Vec<_>>());
        assert_ne!(a, s(1).collect::<Vec<_>>());
    }

    #[test]
    fn a_buffer_of_one_keeps_the_order() {
        let s = shuffled(range(5), 1, 3);
        assert_eq!(s(0).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn repeat_counts_and_stops_on_empty_upstreams() {
        assert_eq!(
            repeated(range(2), Some(3))(0).collect::<Vec<_>>(),
            vec![0, 1, 0, 1, 0, 1]
        );
        assert_eq!(repeated(range(0), None)(0).count(), 0);
        assert_eq!(repeated(range(2), None)(0).take(7).count(), 7);
        assert_eq!(taken(range(5), 2)(0).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(skipped(range(5), 3)(0).collect::<Vec<_>>(), vec![3, 4]);
    }
}
