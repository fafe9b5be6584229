//! A response stream's outbound budget: bytes posted and not yet written,
//! bounded, and the wake-up of whoever waits for room.
//!
//! Producers (`ResponseStream::write`, any thread) [`reserve`](Budget::reserve)
//! before they post; the IO actor [`release`](Budget::release)s what it
//! wrote. A producer that found the budget full waits for it to be
//! *writable* (at most half full): blocking in [`wait`](Budget::wait), or
//! registering a callback, which the IO actor runs when `release` says so.
//!
//! Invariant (checked in `models/stream_budget.rs`): **no lost wake-up.**
//! A waiter counts itself in `interest` and only then looks at `queued`;
//! `release` takes its bytes out of `queued` and only then looks at
//! `interest`; both behind SeqCst fences, so at least one of them sees the
//! other: the waiter sees the room, or `release` sees the waiter and
//! notifies (under the gate's lock, which the waiter holds from its check
//! until it sleeps, so the notification cannot fall in between). Looking
//! at `queued` before counting itself in lets a `release` slip between the
//! two and the waiter sleep on room that is already there: mutant
//! `budget_check_before_interest`.

use crate::actor::sync::{fence, lock, AtomicUsize, Condvar, Mutex, Ordering};
use std::time::{Duration, Instant};

/// The budget. `max` is in bytes.
pub struct Budget {
    queued: AtomicUsize,
    max: usize,
    /// Blocked waiters plus registered callbacks.
    interest: AtomicUsize,
    /// Closed: waiters return at once.
    gate: Mutex<bool>,
    room: Condvar,
}

/// Why a wait ended without room: the stream ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ended;

/// `release` counted more bytes out than were counted in: a natron bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overdrawn;

impl Budget {
    pub fn new(max: usize) -> Budget {
        Budget {
            queued: AtomicUsize::new(0),
            max,
            interest: AtomicUsize::new(0),
            gate: Mutex::new(false),
            room: Condvar::new(),
        }
    }

    /// The bound, in bytes.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Bytes counted in and not yet released.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }

    /// At most half full: a write of up to a quarter of `max` is taken.
    pub fn is_writable(&self) -> bool {
        self.queued.load(Ordering::SeqCst) <= self.max / 2
    }

    /// Counts `len` bytes in unless that passes `max`; a reservation into
    /// an empty budget is always taken (a piece larger than the budget can
    /// still go, alone).
    pub fn reserve(&self, len: usize) -> bool {
        let before = self.queued.fetch_add(len, Ordering::SeqCst);
        if before > 0 && before.saturating_add(len) > self.max {
            self.queued.fetch_sub(len, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Counts in bytes queued without a reservation (the IO actor's own).
    pub fn count_in(&self, n: usize) {
        self.queued.fetch_add(n, Ordering::SeqCst);
    }

    /// Takes `n` written bytes out and wakes the blocked waiters if there
    /// is room now. Returns whether registered callbacks should run (some
    /// are registered and there is room).
    ///
    /// # Errors
    ///
    /// [`Overdrawn`]: more than was counted in; the count is unchanged.
    pub fn release(&self, n: usize) -> Result<bool, Overdrawn> {
        self.queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |q| q.checked_sub(n))
            .map_err(|_| Overdrawn)?;
        fence(Ordering::SeqCst);
        if self.interest.load(Ordering::SeqCst) == 0 || !self.is_writable() {
            return Ok(false);
        }
        let _gate = lock(&self.gate);
        self.room.notify_all();
        Ok(true)
    }

    /// Counts a callback in; returns whether there is room already (then
    /// the caller runs it, and [`Budget::unregister`]s it).
    pub fn register(&self) -> bool {
        self.interest.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        self.is_writable()
    }

    /// Counts a callback out (run or dropped).
    pub fn unregister(&self) {
        self.interest.fetch_sub(1, Ordering::SeqCst);
    }

    /// Blocks until there is room (`Ok(true)`), `timeout` passes
    /// (`Ok(false)`), or the budget is closed.
    ///
    /// # Errors
    ///
    /// [`Ended`] once [`Budget::close`] has run, also while waiting.
    pub fn wait(&self, timeout: Duration) -> Result<bool, Ended> {
        let deadline = Instant::now().checked_add(timeout);
        let mut closed = lock(&self.gate);
        #[cfg(natron_mutant = "budget_check_before_interest")]
        {
            // Mutant: looks at the room first, then counts itself in and
            // sleeps without looking again.
            if *closed {
                return Err(Ended);
            }
            if self.is_writable() {
                return Ok(true);
            }
            self.interest.fetch_add(1, Ordering::SeqCst);
            let guard = self.room.wait(closed).unwrap_or_else(|e| e.into_inner());
            self.interest.fetch_sub(1, Ordering::SeqCst);
            return if *guard { Err(Ended) } else { Ok(true) };
        }
        #[allow(unreachable_code)]
        self.interest.fetch_add(1, Ordering::SeqCst);
        let result = loop {
            if *closed {
                break Err(Ended);
            }
            fence(Ordering::SeqCst);
            if self.is_writable() {
                break Ok(true);
            }
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => Duration::MAX,
            };
            if left.is_zero() {
                break Ok(false);
            }
            closed = self
                .room
                .wait_timeout(closed, left)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|e| e.into_inner().0);
        };
        self.interest.fetch_sub(1, Ordering::SeqCst);
        result
    }

    /// Ends every wait, now and later.
    pub fn close(&self) {
        let mut closed = lock(&self.gate);
        *closed = true;
        self.room.notify_all();
    }
}
