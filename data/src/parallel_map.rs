//! [`Dataset::map_parallel`]: `map(f, num_parallel_calls=k)`, in order.

use crate::components::Element;
use crate::dataset::Dataset;
use crate::run_ahead::{panic_message, MAX_AHEAD};
use ferroflow_tensor_core::{Error, Result};
use rayon::prelude::*;
use std::collections::VecDeque;
use std::sync::Arc;

impl Dataset {
    /// Applies `f` to up to `num_parallel_calls` elements at a time on the rayon thread pool
    /// (`map(f, num_parallel_calls=k, deterministic=True)`): the elements come out in their
    /// order, each the same as [`Dataset::map`] gives, and preparing expensive elements
    /// (decoding, augmenting) uses every core. `std::thread::available_parallelism()` is
    /// what TensorFlow's `AUTOTUNE` would pick. A panic in `f` comes back as that element's
    /// error; 0 parallel calls is an error when iterating.
    ///
    /// As with TensorFlow's parallel map, stateful random draws inside `f` (from the global
    /// seed) are taken in whatever order the threads reach them: seed each element's draws
    /// (the `stateless_*` functions of `ferroflow_tensor_core::random`) for repeatable
    /// augmentation. `f` runs on pool threads, outside the caller's device scope. Elements
    /// are prepared a group at a time when asked for; add [`Dataset::prefetch`] to prepare
    /// the next group while the step runs.
    ///
    /// ```
    /// use ferroflow_data::Dataset;
    /// let ds = Dataset::range(0..100).map_parallel(4, |e| Ok(vec![e[0].mul(&e[0])?]));
    /// let squares: Vec<i64> = ds.iter().map(|e| e?[0].to_scalar::<i64>()).collect::<Result<_, _>>()?;
    /// assert_eq!(squares, (0..100).map(|i| i * i).collect::<Vec<_>>());
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn map_parallel<F>(&self, num_parallel_calls: usize, f: F) -> Dataset
    where
        F: Fn(Element) -> Result<Element> + Send + Sync + 'static,
    {
        if num_parallel_calls == 0 {
            return Dataset::failing("map", "num_parallel_calls must be at least 1");
        }
        let width = num_parallel_calls.min(MAX_AHEAD);
        let upstream = self.element_maker();
        let f = Arc::new(f);
        Dataset::from_elements(
            Arc::new(move |n| {
                let mut input = upstream(n);
                let mut ready: VecDeque<Result<Element>> = VecDeque::new();
                let f = f.clone();
                Box::new(std::iter::from_fn(move || {
                    if ready.is_empty() {
                        let chunk: Vec<Result<Element>> = input.by_ref().take(width).collect();
                        ready.extend(chunk.into_par_iter().map(|e| call(&*f, e)).collect::<Vec<_>>());
                    }
                    ready.pop_front()
                }))
            }),
            self.cardinality(),
        )
    }
}

/// `f` on one element, a panic turned into its error.
fn call<F: Fn(Element) -> Result<Element>>(f: &F, element: Result<Element>) -> Result<Element> {
    let element = element?;
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(element))).unwrap_or_else(|panic| {
        Err(Error::invalid(
            "map",
            format!("map function panicked: {}", panic_message(&*panic)),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::Cardinality;

    #[test]
    fn parallel_map_keeps_order_errors_and_panics_in_place() {
        let f = |e: Element| -> Result<Element> {
            match e[0].to_scalar::<i64>()? {
                3 => Err(Error::invalid("f", "three")),
                5 => panic!("five"),
                _ => Ok(vec![e[0].mul(&e[0])?]),
            }
        };
        let base = Dataset::range(0..20);
        let parallel = base.map_parallel(3, f);
        assert_eq!(parallel.cardinality(), Cardinality::Finite(20));
        let out: Vec<Result<i64>> = parallel.iter().map(|e| e.and_then(|e| e[0].to_scalar())).collect();
        assert_eq!(out.len(), 20);
        for (i, v) in out.iter().enumerate() {
            match i {
                3 => assert!(v.as_ref().unwrap_err().to_string().contains("three")),
                5 => assert!(v.as_ref().unwrap_err().to_string().contains("panicked: five")),
                _ => assert_eq!(*v.as_ref().unwrap(), (i * i) as i64),
            }
        }
        // Runs on several threads at once.
        let threads = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
        let seen = threads.clone();
        let ds = Dataset::range(0..64).map_parallel(8, move |e| {
            seen.lock().unwrap().insert(std::thread::current().id());
            std::thread::sleep(std::time::Duration::from_millis(2));
            Ok(e)
        });
        assert_eq!(ds.iter().count(), 64);
        if rayon::current_num_threads() > 1 {
            assert!(threads.lock().unwrap().len() > 1);
        }
        assert!(base.map_parallel(0, Ok).iter().next().unwrap().is_err());
    }
}
