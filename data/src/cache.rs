//! [`Dataset::cache`]: the elements of the first complete iteration, kept in memory.

use crate::components::Element;
use crate::dataset::Dataset;
use crate::stages::BoxIter;
use ferroflow_tensor_core::Result;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// What the iterations of one cached dataset share.
#[derive(Default)]
struct Shared {
    /// The elements, once an iteration has read the whole input without an error.
    filled: Mutex<Option<Arc<Vec<Element>>>>,
    /// Whether the partial-read warning was printed.
    warned: AtomicBool,
}

impl Dataset {
    /// Keeps the elements in memory (`cache()`): the first iteration that reads the whole
    /// input (to its end, or to as many elements as its known cardinality) fills the cache,
    /// and later iterations yield the kept elements without running the stages below it
    /// again. Those stages then run once, so a shuffle below the cache keeps its first order;
    /// put shuffles after the cache to reshuffle every epoch, as `tf.data` advises. As
    /// TensorFlow's, an element that fails while the cache fills is passed on as the error
    /// and left out of the cache, and an iteration stopped early keeps nothing and warns.
    ///
    /// ```
    /// use ferroflow_data::Dataset;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// let calls = Arc::new(AtomicUsize::new(0));
    /// let counter = calls.clone();
    /// let ds = Dataset::range(0..4)
    ///     .map(move |e| {
    ///         counter.fetch_add(1, Ordering::SeqCst);
    ///         Ok(e)
    ///     })
    ///     .cache();
    /// assert_eq!(ds.iter().count(), 4);
    /// assert_eq!(ds.iter().count(), 4);
    /// assert_eq!(calls.load(Ordering::SeqCst), 4, "the map ran in the first epoch only");
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn cache(&self) -> Dataset {
        let upstream = self.element_maker();
        let shared = Arc::new(Shared::default());
        let expected = self.cardinality().finite();
        Dataset::from_elements(
            Arc::new(move |n| -> BoxIter<Result<Element>> {
                let kept = shared.filled.lock().unwrap_or_else(PoisonError::into_inner).clone();
                match kept {
                    Some(elements) => Box::new((0..elements.len()).map(move |i| Ok(elements[i].clone()))),
                    // A probe (`peek`) reads without filling or warning.
                    None if n == Dataset::PROBE => upstream(n),
                    None => Box::new(Filling {
                        upstream: upstream(n),
                        seen: Vec::new(),
                        expected,
                        finished: false,
                        shared: shared.clone(),
                    }),
                }
            }),
            self.cardinality(),
        )
    }
}

/// An iteration that reads the input and keeps what it reads.
struct Filling {
    upstream: BoxIter<Result<Element>>,
    seen: Vec<Element>,
    /// The input's cardinality when known: the cache is complete at that many elements,
    /// whether or not the reader asks past the last one (a `zip` with a shorter input never
    /// does).
    expected: Option<usize>,
    finished: bool,
    shared: Arc<Shared>,
}

impl Filling {
    fn complete(&mut self) {
        self.finished = true;
        let elements = Arc::new(std::mem::take(&mut self.seen));
        self.shared
            .filled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(elements);
    }
}

impl Iterator for Filling {
    type Item = Result<Element>;

    fn next(&mut self) -> Option<Result<Element>> {
        if self.finished {
            return None;
        }
        match self.upstream.next() {
            Some(Ok(e)) => {
                self.seen.push(e.clone());
                if self.expected == Some(self.seen.len()) {
                    self.complete();
                }
                Some(Ok(e))
            }
            Some(Err(err)) => Some(Err(err)),
            None => {
                self.complete();
                None
            }
        }
    }
}

impl Drop for Filling {
    fn drop(&mut self) {
        if !self.finished && !self.seen.is_empty() && !self.shared.warned.swap(true, Ordering::Relaxed) {
            eprintln!(
                "warning: an iteration stopped before reading all of a cached dataset, so nothing \
                 was cached; read it whole once (or put take() before cache()) to use the cache"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferroflow_tensor_core::Error;
    use std::sync::atomic::AtomicUsize;

    fn counted(calls: &Arc<AtomicUsize>, fail_at: Option<i64>) -> Dataset {
        let calls = calls.clone();
        Dataset::range(0..5).map(move |e| {
            let pass = calls.fetch_add(1, Ordering::SeqCst);
            if fail_at == Some(e[0].to_scalar::<i64>()?) && pass < 5 {
                return Err(Error::invalid("map", "flaky"));
            }
            Ok(e)
        })
    }

    #[test]
    fn a_partial_first_iteration_caches_nothing_and_a_failed_element_is_left_out() {
        let calls = Arc::new(AtomicUsize::new(0));
        let ds = counted(&calls, None).cache();
        assert!(ds.peek().unwrap().is_ok());
        assert_eq!(ds.iter().take(2).count(), 2);
        assert_eq!(ds.iter().count(), 5);
        assert_eq!(ds.iter().count(), 5);
        assert_eq!(calls.load(Ordering::SeqCst), 1 + 2 + 5);

        // As TensorFlow's: the error is passed on and the cache completes without it.
        let calls = Arc::new(AtomicUsize::new(0));
        let flaky = counted(&calls, Some(3)).cache();
        let first: Vec<_> = flaky.iter().collect();
        assert_eq!((first.len(), first.iter().filter(|e| e.is_err()).count()), (5, 1));
        let later: Vec<i64> = flaky.iter().map(|e| e.unwrap()[0].to_scalar().unwrap()).collect();
        assert_eq!(later, vec![0, 1, 2, 4]);
        assert_eq!(calls.load(Ordering::SeqCst), 5);
    }

    #[test]
    fn the_cache_completes_at_its_cardinality_without_a_final_poll() {
        let calls = Arc::new(AtomicUsize::new(0));
        let cached = counted(&calls, None).cache();
        // zip stops with the shorter input and never asks the cache past its last element.
        let zipped = Dataset::zip(&[Dataset::range(0..5), cached.clone()]);
        assert_eq!(zipped.iter().count(), 5);
        assert_eq!(zipped.iter().count(), 5);
        assert_eq!(calls.load(Ordering::SeqCst), 5, "filled in the first epoch");
    }

    #[test]
    fn a_shuffle_below_the_cache_keeps_its_first_order() {
        let ds = Dataset::range(0..16).shuffle(16, 9).cache();
        let order = |d: &Dataset| {
            d.iter()
                .map(|e| e.unwrap()[0].to_scalar::<i64>().unwrap())
                .collect::<Vec<_>>()
        };
        let first = order(&ds);
        assert_eq!(order(&ds), first);
        let reshuffled = ds.shuffle(16, 4);
        assert_ne!(order(&reshuffled), order(&reshuffled));
    }
}
