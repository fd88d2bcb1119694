//! Whether rayon's workers are likely still awake: a product that only pays off on two
//! threads when no worker has to be woken asks here first.
//!
//! A worker that runs out of work spins (yielding) for a few tens of microseconds before it
//! sleeps. Splitting a 64³ product with a spinning worker saves a fifth or more of it;
//! splitting it with a sleeping one costs the caller the wake-up (measured on 2 cores: the
//! `f32` product took about 5 µs on one thread, 4 µs split with the workers spinning and
//! 11 µs split with them asleep). The last sizeable product's end time is the cheapest
//! sign of which case holds: products that follow each other closely keep the pool awake
//! once split. The stamp is one per process, shared by every rayon pool.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How recent the last recorded product must be for the workers to count as awake. Back to
/// back 64³ products on two threads measured faster split at gaps up to 20 µs and slower
/// from 50 µs (workers gone to sleep).
const AWAKE_FOR: Duration = Duration::from_micros(20);

/// Nanoseconds from [`epoch`] to the end of the last recorded product, plus one (0: none yet).
static LAST_END: AtomicU64 = AtomicU64::new(0);

/// The clock's origin, fixed at first use.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since [`epoch`], plus one so that no recorded time is 0.
fn now() -> u64 {
    u64::try_from(epoch().elapsed().as_nanos()).unwrap_or(u64::MAX - 1) + 1
}

/// Records that a product just ended (its workers, if any, are now spinning).
pub(crate) fn note_product_end() {
    LAST_END.store(now(), Ordering::Relaxed);
}

/// Whether a recorded product ended within [`AWAKE_FOR`].
pub(crate) fn workers_awake() -> bool {
    awake_at(LAST_END.load(Ordering::Relaxed), now())
}

/// Whether a product that ended at `last` (0: none) counts as recent at `now`.
fn awake_at(last: u64, now: u64) -> bool {
    last != 0 && now.saturating_sub(last) < AWAKE_FOR.as_nanos() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_ends_count_as_awake_and_old_ones_or_none_do_not() {
        let window = AWAKE_FOR.as_nanos() as u64;
        assert!(!awake_at(0, 5), "nothing recorded yet");
        assert!(awake_at(1_000, 1_000));
        assert!(awake_at(1_000, 1_000 + window - 1));
        assert!(!awake_at(1_000, 1_000 + window));
        assert!(!awake_at(1_000, 1_000 + 100 * window));
        // A stamp from another thread that reads as later than `now` is recent, not stale.
        assert!(awake_at(2_000, 1_000));
    }

    #[test]
    fn a_product_just_noted_reads_awake() {
        // Well inside the 20 µs window unless this thread is descheduled in between: retry
        // a few times rather than fail on a busy machine.
        let awake = (0..5).any(|_| {
            note_product_end();
            workers_awake()
        });
        assert!(awake);
    }
}
