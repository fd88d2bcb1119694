//! Running an iterator ahead of its consumer on a background thread: the machinery behind
//! [`Dataset::prefetch`](crate::Dataset::prefetch) and
//! [`Dataset::prefetch_to_device`](crate::Dataset::prefetch_to_device), public so that a
//! training loop can stage its own batches the same way.

use ferroflow_tensor_core::{Error, Result};
use std::sync::mpsc;

/// The most items [`run_ahead`] holds ready, whatever buffer it is asked for.
pub const MAX_AHEAD: usize = 1 << 12;

/// Runs `upstream` on a background thread, up to `buffer` items (at least one, at most
/// [`MAX_AHEAD`]) ahead of the
/// returned iterator, which yields the same items in the same order. A panic on that thread
/// comes back as an error item (and ends the stream); dropping the returned iterator ends the
/// thread at its next item. `op` names the stage in those errors.
///
/// ```
/// use ferroflow_data::run_ahead;
/// use ferroflow_tensor_core::Result;
///
/// let squares = (1..=4).map(|i: i32| -> Result<i32> { Ok(i * i) });
/// let ahead: Vec<i32> = run_ahead("squares", squares, 2).collect::<Result<_>>()?;
/// assert_eq!(ahead, vec![1, 4, 9, 16]);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
pub fn run_ahead<T, I>(op: &'static str, upstream: I, buffer: usize) -> Box<dyn Iterator<Item = Result<T>> + Send>
where
    T: Send + 'static,
    I: Iterator<Item = Result<T>> + Send + 'static,
{
    // The channel allocates its slots up front: a huge buffer is held to a bound that keeps
    // the thread well ahead without reserving memory for it (TensorFlow's buffer grows).
    let (tx, rx) = mpsc::sync_channel::<Result<T>>(buffer.clamp(1, MAX_AHEAD));
    let spawned = std::thread::Builder::new()
        .name(format!("ferroflow-{op}"))
        .spawn(move || {
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                for item in upstream {
                    if tx.send(item).is_err() {
                        return; // the consumer is gone
                    }
                }
            }));
            if let Err(panic) = run {
                let msg = panic_message(&*panic);
                let _ = tx.send(Err(Error::invalid(op, format!("pipeline panicked: {msg}"))));
            }
        });
    match spawned {
        Ok(_) => Box::new(rx.into_iter()),
        Err(e) => Box::new(std::iter::once(Err(Error::external(op, e)))),
    }
}

/// The text a panic was raised with.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a pipeline stage panicked".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yields_everything_in_order_and_reports_panics_and_errors() {
        let got: Vec<usize> = run_ahead("t", (0..100).map(Ok), 3).collect::<Result<_>>().unwrap();
        assert_eq!(got, (0..100).collect::<Vec<_>>());

        let failing = (0..5).map(|i| {
            if i == 2 {
                Err(Error::invalid("stage", "bad row"))
            } else {
                Ok(i)
            }
        });
        let items: Vec<Result<i32>> = run_ahead("t", failing, 1).collect();
        assert_eq!(items.len(), 5, "an error item does not end the stream");
        assert!(items[2].as_ref().unwrap_err().to_string().contains("bad row"));

        let panicking = (0..5).map(|i| if i == 3 { panic!("row three") } else { Ok(i) });
        let items: Vec<Result<i32>> = run_ahead("staging", panicking, 1).collect();
        assert_eq!(items.len(), 4);
        let err = items[3].as_ref().unwrap_err().to_string();
        assert!(err.contains("staging") && err.contains("row three"), "{err}");
    }

    #[test]
    fn dropping_the_consumer_stops_the_producer() {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::Arc;

        /// Sets its flag when dropped: the producer thread dropped its upstream and ended.
        struct Ended(Arc<AtomicBool>);
        impl Drop for Ended {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }

        let (produced, ended) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let (count, guard) = (produced.clone(), Ended(ended.clone()));
        let endless = (0..).map(move |i: u64| {
            let _ = &guard;
            count.fetch_add(1, Ordering::SeqCst);
            Ok(i)
        });
        let mut it = run_ahead("t", endless, 2);
        assert_eq!(it.next().unwrap().unwrap(), 0);
        drop(it);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !ended.load(Ordering::SeqCst) {
            assert!(std::time::Instant::now() < deadline, "the producer never ended");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        // The item taken, two in the channel and one in hand at most.
        assert!(
            produced.load(Ordering::SeqCst) <= 4,
            "{}",
            produced.load(Ordering::SeqCst)
        );
    }
}
