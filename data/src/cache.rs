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
    /// input without an error fills the cache, and later iterations yield the kept elements
    /// without running the stages above it again. Stages below the cache then run once, so a
    /// shuffle below it keeps its first order; put shuffles after the cache to reshuffle every
    /// epoch, as `tf.data` advises. An iteration stopped early keeps nothing, and a warning
    /// says so (as TensorFlow's).
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
        Dataset::from_elements(
            Arc::new(move |n| -> BoxIter<Result<Element>> {
                let kept = shared.filled.lock().unwrap_or_else(PoisonError::into_inner).clone();
                match kept {
                    Some(elements) => Box::new((0..elements.len()).map(move |i| Ok(elements[i].clone()))),
                    None => Box::new(Filling {
                        upstream: upstream(n),
                        seen: Vec::new(),
                        clean: true,
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
    /// No error so far.
    clean: bool,
    finished: bool,
    shared: Arc<Shared>,
}

impl Iterator for Filling {
    type Item = Result<Element>;

    fn next(&mut self) -> Option<Result<Element>> {
        if self.finished {
            return None;
        }
        match self.upstream.next() {
            Some(Ok(e)) => {
                if self.clean {
                    self.seen.push(e.clone());
                }
                Some(Ok(e))
            }
            Some(Err(err)) => {
                self.clean = false;
                self.seen = Vec::new();
                Some(Err(err))
            }
            None => {
                self.finished = true;
                if self.clean {
                    let elements = Arc::new(std::mem::take(&mut self.seen));
                    self.shared
                        .filled
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .get_or_insert(elements);
                }
                None
            }
        }
    }
}

impl Drop for Filling {
    fn drop(&mut self) {
        if !self.finished && self.clean && !self.shared.warned.swap(true, Ordering::Relaxed) {
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
    fn a_partial_or_failed_first_iteration_caches_nothing() {
        let calls = Arc::new(AtomicUsize::new(0));
        let ds = counted(&calls, None).cache();
        assert_eq!(ds.iter().take(2).count(), 2);
        assert_eq!(ds.iter().count(), 5);
        assert_eq!(ds.iter().count(), 5);
        assert_eq!(calls.load(Ordering::SeqCst), 2 + 5);

        let calls = Arc::new(AtomicUsize::new(0));
        let flaky = counted(&calls, Some(3)).cache();
        assert_eq!(flaky.iter().filter(|e| e.is_err()).count(), 1);
        assert_eq!(flaky.iter().filter(|e| e.is_ok()).count(), 5);
        assert_eq!(flaky.iter().filter(|e| e.is_ok()).count(), 5);
        assert_eq!(calls.load(Ordering::SeqCst), 10, "the clean second pass was kept");
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
