//! Helper tasks of the parallel matmul drivers: started on rayon's pool, or handed to a
//! helper that is still *lingering* on a pool worker after the last product.
//!
//! Why: a task spawned on rayon's pool starts when an idle worker next looks for work, and
//! an idle worker looks between `sched_yield` calls. On a 2-core AMD Zen 4 VM that put a
//! helper's start 0.5–1.5 µs (median) after the spawn, against 0.1 µs for a thread spinning
//! on a flag, and half of a split 64³ `f32` product takes about 2.3 µs. So a helper that has
//! finished its blocks does not return to the pool at once: for [`LINGER`] it spins on a
//! one-slot mailbox, where the next product offers its job before spawning anything.
//!
//! The pool stays the only one (a lingering helper is a running rayon task), and its work
//! is held up little: every [`YIELD_EVERY`] the helper asks rayon for pending work and stops
//! lingering once it has run some; only a helper that did compute blocks lingers (one that
//! found its job finished, say popped by a worker waiting in a `join`, returns at once); and
//! no helper starts lingering again once it has lingered [`LINGER_AT_MOST`] in all, jobs
//! included (a `join` on the worker that picked up a helper resumes only when the helper
//! leaves: about that long at worst, plus the products it is helping with then, as behind
//! any long rayon task). Meanwhile the pool's other idle workers, finding nothing, go to
//! sleep instead of competing with the two busy threads for the cores.
//!
//! The mailbox is one per process: a helper lingering in one rayon pool may take a job
//! offered from another (results are the same; only which threads ran it differs).
//!
//! Nothing here decides what is computed: a job is the same set of blocks claimed from
//! atomic counters whichever threads run it, and an offer nobody takes leaves its blocks to
//! the caller (which then withdraws it), so results never depend on who helped.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::matmul::spin_until;

/// How long a helper that ran out of blocks waits for the next product's job before it
/// returns to the pool. W4's training steps (2 threads, alternating runs) were no slower
/// with 50 µs or 200 µs than without lingering, and 20 µs was often slower: a step's
/// products are tens of µs apart, so a shorter wait let the helper leave just before the
/// next one.
const LINGER: Duration = Duration::from_micros(50);

/// How long a helper lingers in all, jobs taken included, before it leaves at its next
/// idle moment (it finishes the products it is helping with, and may take one offered as
/// it leaves): the next product then spawns a fresh helper.
///
/// Why so long: products that follow each other closely (a benchmark, a training loop)
/// keep one helper the whole time, as OpenBLAS keeps its threads spinning between calls.
/// With 500 µs, a helper left after every product of 0.5 ms or more and the next product
/// spawned a fresh one; on a 2-core VM one product in ten or more then ran as if on one
/// thread (its helper started too late to claim a band), and back-to-back 512² `f64`
/// products took 0.90 of the time with 100 ms (median of six paired runs of 300 calls in
/// one binary, 0.885–0.973; 256² `f32`: 0.92 of four). A `join` on the worker that picked
/// up the helper resumes within [`LINGER`] of the last product, or after about this plus
/// the products the helper is in at the time.
const LINGER_AT_MOST: Duration = Duration::from_millis(100);

/// How often a lingering helper lets rayon run pending work instead.
const YIELD_EVERY: Duration = Duration::from_micros(2);

/// Work a parallel product shares with its helpers: claim blocks until none are left.
pub(crate) trait Helping: Send + Sync {
    /// Claims and computes blocks until the job has none left unclaimed; whether it
    /// claimed any.
    fn help(&self) -> bool;
    /// Whether every block has been computed (not only claimed).
    fn finished(&self) -> bool;
}

/// Runs `job` on the calling thread and up to `helpers` more, and returns once every block
/// is computed: the one way both matmul drivers share a product.
pub(crate) fn share(job: &Arc<impl Helping + 'static>, helpers: usize) {
    // Helpers are fire-and-forget: one that starts after all blocks were claimed returns
    // without touching the operands, so this thread never waits for a sleeping worker.
    start(job, helpers);
    // Soundness backstop: helpers may be writing into the caller's output until the job is
    // finished, so this frame must not unwind before that; should anything below ever
    // panic, abort instead of freeing memory that is still being written.
    let guard = AbortOnUnwind;
    job.help();
    withdraw(job);
    spin_until(|| job.finished());
    drop(guard);
}

/// A job offered to lingering helpers, and how many of them it still wants.
struct Offer {
    job: Arc<dyn Helping>,
    wanted: usize,
}

/// The mailbox lingering helpers watch: at most one job at a time.
static OFFER: Mutex<Option<Offer>> = Mutex::new(None);
/// Whether [`OFFER`] holds a job: what a lingering helper spins on, without the lock.
static OFFERED: AtomicBool = AtomicBool::new(false);
/// Helpers lingering now (not counting one busy with a job it took).
static LINGERING: AtomicUsize = AtomicUsize::new(0);

/// Starts `count` helpers for `job`: as many as are lingering are offered it through the
/// mailbox, the rest are spawned on rayon's pool (see [`share`]). A lingering helper may leave (or be descheduled) before it takes the
/// offer; the caller then computes more blocks itself, which changes no result.
fn start(job: &Arc<impl Helping + 'static>, count: usize) {
    let mut spawn = count;
    let lingering = LINGERING.load(Ordering::Acquire).min(count);
    if lingering > 0 {
        if let Ok(mut slot) = OFFER.try_lock() {
            if slot.is_none() {
                *slot = Some(Offer {
                    job: Arc::clone(job) as Arc<dyn Helping>,
                    wanted: lingering,
                });
                OFFERED.store(true, Ordering::Release);
                spawn -= lingering;
            }
        }
    }
    for _ in 0..spawn {
        let job = Arc::clone(job);
        rayon::spawn(move || {
            let helped = job.help();
            drop(job);
            if helped {
                linger();
            }
        });
    }
}

/// Aborts the process if dropped during unwinding: helpers may still be writing into the
/// caller's buffers, so the frame that owns them must never unwind early (see [`share`]).
struct AbortOnUnwind;

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        if std::thread::panicking() {
            std::process::abort();
        }
    }
}

/// Takes `job` back out of the mailbox if no helper took it: called once the caller's own
/// share is done, when every block is claimed and a late helper would find nothing.
fn withdraw(job: &Arc<impl Helping + 'static>) {
    if !OFFERED.load(Ordering::Acquire) {
        return;
    }
    let mut slot = OFFER.lock().unwrap_or_else(PoisonError::into_inner);
    let mine = slot
        .as_ref()
        .is_some_and(|offer| std::ptr::addr_eq(Arc::as_ptr(&offer.job), Arc::as_ptr(job)));
    if mine {
        *slot = None;
        OFFERED.store(false, Ordering::Release);
    }
}

/// Takes one helper's share of the offered job, if there is one.
fn take() -> Option<Arc<dyn Helping>> {
    let mut slot = OFFER.lock().unwrap_or_else(PoisonError::into_inner);
    let offer = slot.as_mut()?;
    let job = Arc::clone(&offer.job);
    offer.wanted -= 1;
    if offer.wanted == 0 {
        *slot = None;
        OFFERED.store(false, Ordering::Release);
    }
    Some(job)
}

/// Runs offered jobs until none has come for [`LINGER`], [`LINGER_AT_MOST`] has passed or
/// rayon had other work.
fn linger() {
    LINGERING.fetch_add(1, Ordering::AcqRel);
    let entered = Instant::now();
    let mut since = entered;
    let mut yielded = since;
    let mut spins = 0u32;
    loop {
        if OFFERED.load(Ordering::Acquire) {
            if let Some(job) = take() {
                LINGERING.fetch_sub(1, Ordering::AcqRel);
                job.help();
                drop(job);
                LINGERING.fetch_add(1, Ordering::AcqRel);
                since = Instant::now();
                yielded = since;
                continue;
            }
        }
        std::hint::spin_loop();
        spins = spins.wrapping_add(1);
        if !spins.is_multiple_of(16) {
            continue;
        }
        let now = Instant::now();
        if now.duration_since(since) >= LINGER || now.duration_since(entered) >= LINGER_AT_MOST {
            break;
        }
        if now.duration_since(yielded) >= YIELD_EVERY {
            // Out of the count while running someone else's task: a product it starts must
            // not offer its job to this thread.
            LINGERING.fetch_sub(1, Ordering::AcqRel);
            if rayon::yield_now() == Some(rayon::Yield::Executed) {
                return;
            }
            LINGERING.fetch_add(1, Ordering::AcqRel);
            yielded = Instant::now();
        }
    }
    LINGERING.fetch_sub(1, Ordering::AcqRel);
    // An offer posted while this helper was deciding to leave still gets taken.
    if let Some(job) = take() {
        job.help();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job of `blocks` unit blocks that counts who ran them.
    struct Counting {
        next: AtomicUsize,
        done: AtomicUsize,
        blocks: usize,
    }

    impl Helping for Counting {
        fn help(&self) -> bool {
            let mut helped = false;
            while self.next.fetch_add(1, Ordering::Relaxed) < self.blocks {
                self.done.fetch_add(1, Ordering::Release);
                helped = true;
            }
            helped
        }

        fn finished(&self) -> bool {
            self.done.load(Ordering::Acquire) >= self.blocks
        }
    }

    #[test]
    fn every_block_runs_once_whoever_helps() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        pool.install(|| {
            for round in 0..200 {
                let job = Arc::new(Counting {
                    next: AtomicUsize::new(0),
                    done: AtomicUsize::new(0),
                    blocks: 1 + round % 7,
                });
                share(&job, 2);
                assert_eq!(job.done.load(Ordering::Acquire), job.blocks);
            }
        });
    }

    #[test]
    fn a_withdrawn_offer_leaves_the_mailbox_empty() {
        let job = Arc::new(Counting {
            next: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            blocks: 1,
        });
        {
            let mut slot = OFFER.lock().unwrap_or_else(PoisonError::into_inner);
            if slot.is_some() {
                return; // another test's offer is pending: nothing to check here
            }
            *slot = Some(Offer {
                job: Arc::clone(&job) as Arc<dyn Helping>,
                wanted: 1,
            });
            OFFERED.store(true, Ordering::Release);
        }
        withdraw(&job);
        let slot = OFFER.lock().unwrap_or_else(PoisonError::into_inner);
        assert!(slot
            .as_ref()
            .is_none_or(|offer| !std::ptr::addr_eq(Arc::as_ptr(&offer.job), Arc::as_ptr(&job))));
    }
}
