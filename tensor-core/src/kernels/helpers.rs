//! Helper tasks of the parallel matmul drivers: started on rayon's pool, or handed to a
//! helper that is still *lingering* on a pool worker after the last product. Elementwise
//! loops of 16 Ki to 512 Ki elements take lingering helpers only ([`share_with_lingering`],
//! used by [`super::warm_split`]): too short for the pool, or, costly ones, sooner done on
//! threads already spinning than handed to the pool.
//!
//! Why: a task spawned on rayon's pool starts when an idle worker next looks for work, and
//! an idle worker looks between `sched_yield` calls. On a 2-core AMD Zen 4 VM that put a
//! helper's start 0.5–1.5 µs (median) after the spawn, against 0.1 µs for a thread spinning
//! on a flag, and half of a split 64³ `f32` product takes about 2.3 µs. So a helper that has
//! finished its blocks does not return to the pool at once: for [`LINGER`] it spins on a
//! one-slot mailbox, where the next product offers its job before spawning anything.
//!
//! The pool stays the only one (a lingering helper is a running rayon task), and its work
//! is held up little:
//! - every [`YIELD_EVERY`] the helper lets rayon run pending work, and stops lingering once
//!   it has run some (taking a job offered meanwhile as it leaves);
//! - only a helper that did compute blocks lingers (one that found its job finished, say
//!   popped by a worker waiting in a `join`, returns at once);
//! - no more linger than a product can use (one fewer than the pool's threads);
//! - after [`LINGER_AT_MOST`] a helper hands over to a fresh one queued on its own worker
//!   and returns, so a `join` beneath it on that worker resumes (about that long at worst,
//!   as behind any long rayon task).
//!
//! Meanwhile the pool's other idle workers, finding nothing, go to sleep instead of
//! competing with the two busy threads for the cores.
//!
//! The mailbox is one per process: a helper lingering in one rayon pool may take a job
//! offered from another (results are the same; only which threads ran it differs).
//!
//! Nothing here decides what is computed: a job is the same set of blocks claimed from
//! atomic counters whichever threads run it, and an offer nobody takes leaves its blocks to
//! the caller (which then withdraws it), so results never depend on who helped.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::matmul::spin_until;

/// How long a helper that ran out of blocks waits for the next product's job before it
/// returns to the pool. W4's training steps (2 threads, alternating runs) were no slower
/// with 50 µs or 200 µs than without lingering, and 20 µs was often slower: a step's
/// products are tens of µs apart, so a shorter wait let the helper leave just before the
/// next one. An elementwise loop a helper takes ([`share_with_lingering`]) starts the wait
/// again, so eager ops of 16 Ki elements or more less than this apart keep it spinning
/// between products as well.
const LINGER: Duration = Duration::from_micros(50);

/// How long one helper task lingers before it hands over to a fresh one, queued on its own
/// worker's deque, and returns: the worker pops it at once, unless a `join` beneath the
/// old task can resume first. A helper leaves for good only after [`LINGER`] without work
/// while no product with long claims is being shared (see [`SHARING`]).
///
/// Why so long: products that follow each other closely (a benchmark, a training loop)
/// keep one helper the whole time, as OpenBLAS keeps its threads spinning between calls.
/// With 500 µs, a helper left after every product of 0.5 ms or more and the next product
/// spawned a fresh one; on a 2-core VM one product in ten or more then ran as if on one
/// thread (its helper started too late to claim a band), and back-to-back 512² `f64`
/// products took 0.90 of the time with 100 ms (median of six paired runs of 300 calls in
/// one binary, 0.885–0.973; 256² `f32`: 0.92 of four). Why a hand-over rather than
/// leaving: a product spawning the next helper waits for rayon to wake a sleeping worker,
/// which on that VM often took milliseconds, and the products meanwhile ran on one thread.
const LINGER_AT_MOST: Duration = Duration::from_millis(100);

/// Fewest multiply-adds in one claim of a job for which [`SHARING`] counts it (see
/// [`Helping::long_claims`]): 2^18 take 3–11 µs on one core with the packed kernels (AVX-512
/// `f32` to AVX2 `f64`), a fifth of [`LINGER`] or less, so a helper done first outwaits no
/// such claim; slower paths count as long at any size.
pub(crate) const LONG_CLAIM_MACS: usize = 1 << 18;

/// How often a lingering helper lets rayon run pending work instead.
const YIELD_EVERY: Duration = Duration::from_micros(2);

/// Work a parallel product (or a split elementwise loop) shares with its helpers: claim
/// blocks until none are left.
pub(crate) trait Helping: Send + Sync {
    /// Claims and computes blocks until the job has none left unclaimed; whether it
    /// claimed any.
    fn help(&self) -> bool;
    /// Whether every block has been computed (not only claimed).
    fn finished(&self) -> bool;
    /// Whether one claim may run for long enough that a helper which ran out of blocks
    /// first could wait [`LINGER`] for the last claim of a thread sharing the job: the
    /// products for which [`SHARING`] counts.
    fn long_claims(&self) -> bool;
}

/// Runs `job` on the calling thread and up to `helpers` more, and returns once every block
/// is computed: the one way both matmul drivers share a product.
pub(crate) fn share(job: &Arc<impl Helping + 'static>, helpers: usize) {
    // Soundness backstop: helpers may be writing into the caller's output until the job is
    // finished, so this frame must not unwind before that; should anything below ever
    // panic, abort instead of freeing memory that is still being written.
    let guard = AbortOnUnwind;
    // Helpers are fire-and-forget: one that starts after all blocks were claimed returns
    // without touching the operands, so this thread never waits for a sleeping worker.
    // Counted as shared only once offered: each touch of `SHARING` moves its line from a
    // lingering helper's cache, and the offer should reach that helper first.
    let long = helpers > 0 && job.long_claims();
    start(job, helpers);
    if long {
        SHARING.0.fetch_add(1, Ordering::Relaxed);
    }
    help_and_wait(job);
    if long {
        SHARING.0.fetch_sub(1, Ordering::Relaxed);
    }
    drop(guard);
}

/// A job offered to lingering helpers, and how many of them it still wants.
struct Offer {
    job: Arc<dyn Helping>,
    wanted: usize,
}

/// The mailbox lingering helpers watch: at most one job at a time.
///
/// On a line of its own, as [`OFFERED`] is. Why: the linker had put the mutex, the flag,
/// and the stamp every sizeable product writes at its end (`pool_warmth`) on one line, and
/// a lingering helper reads that line without pause; so each of the caller's writes there
/// (the stamp, the lock, the unlock, raising the flag) first had to take the line back
/// from the helper's cache. Apart, and with the job's changes in `matmul` (its last claim
/// and entry 0's offsets), a 64³ `f32` product on 2 cores took 2.77 µs against 3.00 (six
/// alternating runs of 300 000 products, mean of the faster 90 % of calls).
static OFFER: CacheLine<Mutex<Option<Offer>>> = CacheLine(Mutex::new(None));
/// Products with [long claims](Helping::long_claims) being shared with helpers now, by any
/// thread: while one is, a lingering helper does not count the time towards [`LINGER`] (one
/// that ran out of blocks first may wait a whole block for the caller; counting that wait,
/// a helper left before about one back-to-back 512² `f64` product in eight on 2 cores, and
/// the next ran on one thread). On a cache line of its own, away from the flag helpers spin
/// on.
///
/// Why not every product: a short claim (under [`LONG_CLAIM_MACS`] on the packed kernels)
/// ends long before a helper's [`LINGER`] runs out, and counting it cost the caller two
/// transfers of this line from a helper's cache per product (a 64³ `f32` product on 2 cores
/// shares in about 2.3 µs).
static SHARING: CacheLine<AtomicUsize> = CacheLine(AtomicUsize::new(0));

/// A value alone on its cache line (and on the adjacent-line prefetcher's pair).
#[repr(align(128))]
struct CacheLine<T>(T);

/// Whether [`OFFER`] holds a job: what a lingering helper spins on, without the lock.
///
/// A caller sets it just after unlocking the mailbox, so a helper that sees it finds the
/// lock free (set under the lock, it sent helpers into the lock while the caller still
/// held it, and the line back and forth: taking an offer took 0.13–0.15 µs instead of
/// 0.05 on 2 cores, `rdtsc` around 400 000 64³ `f32` products). Whoever empties the
/// mailbox clears it under the lock. So it may be false for a moment with a job in the
/// mailbox (its poster sets it next), or true with none (a helper took the job before its
/// poster's store landed): a helper that finds the mailbox empty clears it again.
static OFFERED: CacheLine<AtomicBool> = CacheLine(AtomicBool::new(false));
/// Helpers that will look at the mailbox again before they leave: those spinning on it,
/// running a job they took from it, or running a rayon task between two looks.
///
/// Why a busy helper counts: the product after the one it helps with starts as soon as the
/// last block is done, often before the helper is back from `help`. Counting only spinning
/// helpers then spawned a second helper, and two of them spun beside the caller on two
/// cores (30 000 involuntary context switches in 3 s of back-to-back products).
///
/// A helper leaves (the count drops) only while it holds [`OFFER`]'s lock, taking any job
/// offered by then; [`offer`] reads the count under that lock too. So an offer is made
/// only to helpers that will see it, if late: one running a long rayon task takes it after
/// that task, and its caller meanwhile computes the blocks itself (a task that starts
/// products of its own stops counting its thread, see [`start`]).
///
/// On a line of its own: every product reads it, helpers change it only as they come and
/// go, while the mailbox's line moves to a helper's cache with every offer taken.
static PRESENT: CacheLine<AtomicUsize> = CacheLine(AtomicUsize::new(0));

/// Starts `count` helpers for `job`: as many as are [`PRESENT`] are offered it through the
/// mailbox, the rest are spawned on rayon's pool (see [`share`]). A present helper may be
/// descheduled before it takes the offer; the caller then computes more blocks itself,
/// which changes no result.
fn start(job: &Arc<impl Helping + 'static>, count: usize) {
    if count > 0 && COUNTED.with(Cell::get) {
        // This thread is a lingering helper running a rayon task between two looks at the
        // mailbox, and that task computes products: it is not coming back soon, so it stops
        // counting as present (for the cap, and for products of other threads) until the
        // task returns (see `linger`).
        leave();
    }
    let spawn = count - offer(job, count);
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

/// Offers `job` through the mailbox to up to `most` of the helpers [`PRESENT`] now; how
/// many it was offered to (0 when none is present or another job waits in the mailbox).
fn offer(job: &Arc<impl Helping + 'static>, most: usize) -> usize {
    if most == 0 || PRESENT.0.load(Ordering::Acquire) == 0 {
        return 0;
    }
    // Cloned before locking, to keep the section short that helpers may wait on.
    let offered = Arc::clone(job) as Arc<dyn Helping>;
    let mut slot = lock_offer();
    let present = PRESENT.0.load(Ordering::Acquire).min(most);
    let posted = present > 0 && slot.is_none();
    if posted {
        *slot = Some(Offer {
            job: offered,
            wanted: present,
        });
    }
    drop(slot);
    if !posted {
        return 0;
    }
    OFFERED.0.store(true, Ordering::Release);
    present
}

/// How many helpers will look at the mailbox again ([`PRESENT`]: spinning on it, or busy
/// with a job and coming back): 0 on a thread that is one of them (running a rayon task
/// between two looks at the mailbox).
pub(crate) fn lingering() -> usize {
    if COUNTED.with(Cell::get) {
        return 0;
    }
    PRESENT.0.load(Ordering::Relaxed)
}

/// Runs `job` on the calling thread and on up to `most` helpers that [linger](lingering)
/// now, never starting one: an elementwise loop right after a product (too short to repay a
/// wake-up, or sooner done this way: see [`super::warm_split::worth_splitting`]) takes only
/// threads that are already spinning. Returns once every block is computed; with no helper
/// to take it, the caller computes them all.
pub(crate) fn share_with_lingering(job: &Arc<impl Helping + 'static>, most: usize) {
    // As in `share`: helpers may write into the caller's buffers until the job is finished.
    let guard = AbortOnUnwind;
    if !COUNTED.with(Cell::get) {
        offer(job, most);
    }
    help_and_wait(job);
    drop(guard);
}

/// The caller's part of a shared job: claims blocks until none are left, takes back an
/// offer no helper took, and waits for the blocks helpers claimed.
fn help_and_wait(job: &Arc<impl Helping + 'static>) {
    job.help();
    withdraw(job);
    spin_until(|| job.finished());
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

/// The mailbox, locked (nothing panics while holding it, but a poisoned lock is harmless).
fn lock_offer() -> MutexGuard<'static, Option<Offer>> {
    OFFER.0.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Takes `job` back out of the mailbox if no helper took it: called once the caller's own
/// share is done, when every block is claimed and a late helper would find nothing.
fn withdraw(job: &Arc<impl Helping + 'static>) {
    if !OFFERED.0.load(Ordering::Acquire) {
        return;
    }
    let mut slot = lock_offer();
    let mine = slot
        .as_ref()
        .is_some_and(|offer| std::ptr::addr_eq(Arc::as_ptr(&offer.job), Arc::as_ptr(job)));
    if mine {
        *slot = None;
        OFFERED.0.store(false, Ordering::Release);
    }
}

/// Takes one helper's share of the job in `slot`, if there is one; finding none, clears
/// a stale [`OFFERED`]. The last share moves the mailbox's reference out rather than
/// cloning it and dropping the original (two atomic updates of a line the caller owns).
fn take(slot: &mut Option<Offer>) -> Option<Arc<dyn Helping>> {
    let Some(offer) = slot.as_mut() else {
        OFFERED.0.store(false, Ordering::Release);
        return None;
    };
    offer.wanted -= 1;
    if offer.wanted > 0 {
        return Some(Arc::clone(&offer.job));
    }
    OFFERED.0.store(false, Ordering::Release);
    slot.take().map(|offer| offer.job)
}

thread_local! {
    /// Whether this thread is a helper counted in [`PRESENT`]: one that starts a product
    /// (from a rayon task it runs while lingering) stops counting first (see [`start`]).
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

/// Stops counting this helper as present; the mailbox's lock, held, is the witness that no
/// offer can count it meanwhile.
fn uncount(_locked: &MutexGuard<'static, Option<Offer>>) {
    PRESENT.0.fetch_sub(1, Ordering::AcqRel);
    COUNTED.with(|counted| counted.set(false));
}

/// Stops counting this helper as present, and helps with a job offered to it meanwhile.
fn leave() {
    let mut slot = lock_offer();
    uncount(&slot);
    let taken = take(&mut slot);
    drop(slot);
    if let Some(job) = taken {
        job.help();
    }
}

/// Counts this helper as present unless it already is (a helper task run from its own
/// lingering) or as many are as a product can use (one fewer than the pool's threads: the
/// caller is the other); whether it was counted.
fn arrive() -> bool {
    if COUNTED.with(Cell::get) {
        return false;
    }
    let most = rayon::current_num_threads().saturating_sub(1).max(1);
    if PRESENT.0.fetch_add(1, Ordering::AcqRel) < most {
        COUNTED.with(|counted| counted.set(true));
        return true;
    }
    leave();
    false
}

/// Runs offered jobs until none has come for [`LINGER`] while no product with long claims
/// was being shared ([`SHARING`]), or rayon had a task for it; after [`LINGER_AT_MOST`]
/// hands over to a fresh helper task.
fn linger() {
    if !arrive() {
        return;
    }
    let entered = Instant::now();
    let mut since = entered;
    let mut yielded = since;
    let mut spins = 0u32;
    loop {
        if OFFERED.0.load(Ordering::Acquire) {
            // Taken with the lock released again at once: the caller withdraws its offer
            // under that lock while this helper computes.
            let taken = take(&mut lock_offer());
            if let Some(job) = taken {
                prefetch_job(&job);
                job.help();
                drop(job);
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
        if SHARING.0.load(Ordering::Relaxed) > 0 {
            // A product is still being computed (a helper that ran out of blocks first may
            // wait a whole block for its caller): the wait for the next one starts after.
            since = now;
        }
        if now.duration_since(since) >= LINGER {
            break;
        }
        if now.duration_since(entered) >= LINGER_AT_MOST {
            let slot = lock_offer();
            if slot.is_none() {
                uncount(&slot);
                drop(slot);
                // Products are still coming: hand over to a fresh helper on this worker's
                // own deque, which it pops at once unless the task beneath can resume.
                rayon::spawn(linger);
                return;
            }
            continue;
        }
        if now.duration_since(yielded) >= YIELD_EVERY {
            // Still present while running someone else's task: it takes an offer made
            // meanwhile as it leaves, unless the task starts products of its own (see
            // `start`). W4's training steps were 2–3 % slower when a helper stayed on after
            // running pool work than when it left.
            if rayon::yield_now() == Some(rayon::Yield::Executed) {
                if !COUNTED.with(Cell::get) {
                    return; // a task that started products stopped counting it (`start`)
                }
                break;
            }
            yielded = Instant::now();
        }
    }
    // An offer posted while this helper was deciding to leave still gets taken.
    leave();
}

/// Asks for every cache line of a job just taken from the mailbox.
///
/// Why: the caller wrote the job moments ago, so each line comes from its core, and the
/// helper's first claim (an atomic add, which waits for its own line) would otherwise be
/// followed by the reads of the job's fields one miss after another. Measured on 2 cores
/// (64³ `f32`, `rdtsc` around each helper's share, 3 alternating runs of 400 000 products):
/// its share took 1.96–1.97 µs instead of 2.02–2.04.
fn prefetch_job(job: &Arc<dyn Helping>) {
    #[cfg(target_arch = "x86_64")]
    super::gemm::prefetch_row(Arc::as_ptr(job).cast::<u8>(), std::mem::size_of_val(&**job), 1);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = job;
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

        fn long_claims(&self) -> bool {
            // Both kinds, so that the tests cover sharing with and without `SHARING`.
            self.blocks.is_multiple_of(2)
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
    fn products_shared_from_many_pool_tasks_at_once_each_run_every_block_once() {
        // Products started from rayon tasks, some on a worker whose lingering helper runs
        // them between looks at the mailbox: none may wait on an offer to itself.
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        let jobs: Vec<Arc<Counting>> = (0..64)
            .map(|i| {
                Arc::new(Counting {
                    next: AtomicUsize::new(0),
                    done: AtomicUsize::new(0),
                    blocks: 1 + i % 11,
                })
            })
            .collect();
        pool.install(|| {
            use rayon::prelude::*;
            jobs.par_iter().for_each(|job| share(job, 2));
        });
        for job in &jobs {
            assert_eq!(job.done.load(Ordering::Acquire), job.blocks);
            assert!(job.next.load(Ordering::Acquire) >= job.blocks);
        }
    }

    #[test]
    fn a_withdrawn_offer_leaves_the_mailbox_empty() {
        let job = Arc::new(Counting {
            next: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            blocks: 1,
        });
        {
            let mut slot = lock_offer();
            if slot.is_some() {
                return; // another test's offer is pending: nothing to check here
            }
            *slot = Some(Offer {
                job: Arc::clone(&job) as Arc<dyn Helping>,
                wanted: 1,
            });
            OFFERED.0.store(true, Ordering::Release);
        }
        withdraw(&job);
        let slot = lock_offer();
        assert!(slot
            .as_ref()
            .is_none_or(|offer| !std::ptr::addr_eq(Arc::as_ptr(&offer.job), Arc::as_ptr(&job))));
    }
}
