//! The run queue: jobs for the worker pool, handed out with as few
//! wake-ups as keep every job moving.
//!
//! Waking a parked thread costs a futex call and two context switches, more
//! than a small handler itself. So a push wakes a worker only when none is
//! already awake and looking for work, as tokio's scheduler does:
//!
//! * **At most one searcher per push.** A push wakes a parked worker only
//!   if no worker is *searching* (woken, not yet holding a job). The waker
//!   counts the woken worker as searching at once, under the queue's lock,
//!   so two pushes in a row wake one worker, not two.
//! * **Chained wake.** A searcher that takes a job and leaves more behind
//!   wakes the next parked worker (if no other is searching), so a burst
//!   fans out one wake at a time and no job waits behind a busy worker
//!   while another sleeps.
//! * **Re-check before park.** A worker looks for a job and, finding none,
//!   enters the idle stack in the same critical section, so a push either
//!   sees it idle (and may wake it) or came before its look (and it takes
//!   the job). No job is stranded while a worker sleeps
//!   (`models/no_stranded_job.rs`).
//! * **LIFO idle stack.** The most recently parked worker (warm caches) is
//!   woken first; the coldest ones are the ones that time out and retire.
//! * **Wake = leave the stack.** A worker is taken off the idle stack and
//!   its `woken` flag is set in one critical section (the queue's lock,
//!   then the worker's), so "in the stack" and "not woken" are the same
//!   fact: a parked worker whose wait times out and finds itself still in
//!   the stack may retire, and one that was woken meanwhile may not.
//!   Spurious returns from the condvar are absorbed by the flag.
//!
//! Shutdown: [`RunQueue::shutdown`] wakes every parked worker; a worker
//! leaves once the queue is empty, so every job pushed before (and while)
//! shutting down is run. Workers started during shutdown leave the same
//! way: nothing counts them (`models/shutdown.rs`).
//!
//! Lock order: `state`, then a `Parker`'s `woken`. No lock is held while a
//! job runs.

use crate::actor::sync::{lock, Arc, Condvar, Mutex, MutexGuard};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// One worker's place to sleep.
pub struct Parker {
    woken: Mutex<bool>,
    cv: Condvar,
}

impl Parker {
    pub fn new() -> Arc<Parker> {
        Arc::new(Parker {
            woken: Mutex::new(false),
            cv: Condvar::new(),
        })
    }
}

/// What [`RunQueue::pop`] found.
pub enum Pop<T> {
    Job(T),
    /// Shutting down and no job is left: the worker leaves.
    Stop,
    /// Parked for `idle_timeout` without a job while the pool is above its
    /// base size: the worker leaves (it has been taken off the books).
    Retire,
}

/// How backed up the pool is, for the pool's monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    /// Jobs waiting that no searching worker is about to take.
    pub waiting: usize,
    /// How long the oldest waiting job has waited.
    pub oldest: Duration,
    /// Workers running `pop` (busy, searching or parked).
    pub workers: usize,
}

/// How busy the workers are, for `ServerHandle::stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Load {
    /// Worker threads (running or waiting for work).
    pub workers: usize,
    /// Of those, parked or looking for work.
    pub idle: usize,
    /// Connection actors queued for a worker.
    pub queued: usize,
}

pub struct RunQueue<T> {
    state: Mutex<State<T>>,
    /// The pool's monitor waits here for the pool to saturate.
    saturated: Condvar,
}

struct State<T> {
    items: VecDeque<(T, Instant)>,
    /// Parked workers; the last one parked is woken first.
    idle: Vec<Arc<Parker>>,
    /// Workers woken and not yet holding a job.
    searching: usize,
    /// Workers running `pop` loops (registered, not yet left).
    workers: usize,
    /// Workers registered whose thread has not reached its first `pop`:
    /// the monitor does not start more for jobs they are about to take.
    starting: usize,
    /// Workers that never retire.
    base: usize,
    stopping: bool,
    /// Mutant `stop_by_count`: the old "one Stop per worker counted at
    /// close()" scheme, which strands a worker started during shutdown.
    #[cfg(natron_mutant = "stop_by_count")]
    stop_tokens: usize,
    /// A push found no worker to wake, and the monitor was told.
    monitor_armed: bool,
}

impl<T> Default for RunQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> RunQueue<T> {
    pub fn new() -> Self {
        RunQueue {
            state: Mutex::new(State {
                items: VecDeque::new(),
                idle: Vec::new(),
                searching: 0,
                workers: 0,
                starting: 0,
                base: 0,
                stopping: false,
                #[cfg(natron_mutant = "stop_by_count")]
                stop_tokens: 0,
                monitor_armed: false,
            }),
            saturated: Condvar::new(),
        }
    }

    /// Sets how many workers never retire.
    pub fn set_base(&self, base: usize) {
        lock(&self.state).base = base;
    }

    /// Queues `item`; wakes a parked worker if none is searching.
    pub fn push(&self, item: T) {
        let mut st = lock(&self.state);
        st.items.push_back((item, Instant::now()));
        self.wake_after_push(st);
    }

    /// Queues every item of `items` under one lock; wakes at most one
    /// parked worker (the chained wake fans out from there).
    #[cfg(not(loom))]
    pub fn push_all(&self, items: impl Iterator<Item = T>) {
        let mut st = lock(&self.state);
        let now = Instant::now();
        st.items.extend(items.map(|item| (item, now)));
        self.wake_after_push(st);
    }

    /// Wakes a parked worker if none is searching, else tells the monitor
    /// when no worker is parked; notifies outside the lock.
    fn wake_after_push(&self, mut st: MutexGuard<'_, State<T>>) {
        let woken = st.wake_one();
        if woken.is_none() {
            self.arm_monitor(&mut st);
        }
        drop(st);
        if let Some(p) = woken {
            p.cv.notify_one();
        }
    }

    /// Registers the calling thread as a worker. Pair with [`Self::pop`]
    /// until it returns `Stop` or `Retire`, then [`Self::leave`] (after
    /// `Stop`; `Retire` has already taken the worker off the books).
    pub fn join(&self) {
        let mut st = lock(&self.state);
        st.workers += 1;
        st.starting += 1;
    }

    /// The calling worker's thread is running (its first `pop` follows).
    pub fn started(&self) {
        let mut st = lock(&self.state);
        st.starting = st.starting.saturating_sub(1);
    }

    /// A worker that got `Stop` leaves (or one that never started).
    pub fn leave(&self) {
        let mut st = lock(&self.state);
        st.workers = st.workers.saturating_sub(1);
    }

    /// Takes the oldest job, parking `me` while there is none.
    ///
    /// `idle_timeout`: how long a worker above the base count waits for a
    /// job before it retires (`None`: never).
    pub fn pop(&self, me: &Arc<Parker>, idle_timeout: Option<Duration>) -> Pop<T> {
        let mut st = lock(&self.state);
        // Whether this worker is counted in `searching` (a waker counted
        // it when it took it off the idle stack).
        let mut searching = false;
        loop {
            if let Some((item, _)) = st.items.pop_front() {
                if searching {
                    #[cfg(not(natron_mutant = "searching_leak"))]
                    {
                        st.searching -= 1;
                    }
                }
                // Chained wake: more jobs wait and nobody is looking.
                #[cfg(not(natron_mutant = "no_chain_wake"))]
                let next = if st.items.is_empty() {
                    None
                } else {
                    st.wake_one()
                };
                #[cfg(natron_mutant = "no_chain_wake")]
                let next: Option<Arc<Parker>> = None;
                if next.is_none() && !st.items.is_empty() {
                    self.arm_monitor(&mut st);
                }
                drop(st);
                if let Some(p) = next {
                    p.cv.notify_one();
                }
                return Pop::Job(item);
            }
            if searching {
                st.searching -= 1;
                searching = false;
            }
            #[cfg(not(natron_mutant = "stop_by_count"))]
            if st.stopping {
                return Pop::Stop;
            }
            #[cfg(natron_mutant = "stop_by_count")]
            if st.stop_tokens > 0 {
                st.stop_tokens -= 1;
                return Pop::Stop;
            }
            #[cfg(natron_mutant = "park_without_recheck")]
            {
                // Mutant: decides to park, drops the lock, then enters the
                // idle stack: a push in between sees no one to wake.
                drop(st);
                st = lock(&self.state);
            }
            st.idle.push(me.clone());
            drop(st);

            let timed_out = park(me, idle_timeout);
            st = lock(&self.state);
            let mut woken = lock(&me.woken);
            if *woken {
                // Taken off the stack and counted as searching.
                *woken = false;
                drop(woken);
                searching = true;
                continue;
            }
            drop(woken);
            // Still in the stack: the wait timed out (or returned
            // spuriously).
            if timed_out && st.workers > st.base && !st.stopping {
                if let Some(at) = st.idle.iter().position(|p| Arc::ptr_eq(p, me)) {
                    st.idle.remove(at);
                }
                st.workers -= 1;
                return Pop::Retire;
            }
            // Back in the loop: it is still in the stack, so take it out
            // before it pushes itself again.
            if let Some(at) = st.idle.iter().position(|p| Arc::ptr_eq(p, me)) {
                st.idle.remove(at);
            }
        }
    }

    /// Jobs wait and no worker is parked to take them: tells the pool's
    /// monitor (once per episode), which decides whether to grow.
    fn arm_monitor(&self, st: &mut State<T>) {
        if st.idle.is_empty() && !st.monitor_armed {
            st.monitor_armed = true;
            self.saturated.notify_one();
        }
    }

    /// Wakes every parked worker; each leaves once no job is left.
    pub fn shutdown(&self) {
        let mut st = lock(&self.state);
        st.stopping = true;
        #[cfg(natron_mutant = "stop_by_count")]
        {
            st.stop_tokens = st.workers;
        }
        let parked: Vec<Arc<Parker>> = st.idle.drain(..).collect();
        for p in &parked {
            *lock(&p.woken) = true;
        }
        st.searching += parked.len();
        drop(st);
        for p in parked {
            p.cv.notify_one();
        }
        self.saturated.notify_all();
    }

    /// Whether [`Self::shutdown`] was called.
    pub fn is_stopping(&self) -> bool {
        lock(&self.state).stopping
    }

    /// The backlog now: `None` if a worker is parked (it would have been
    /// woken) or no job waits.
    /// Workers, idle workers and queued jobs, read together.
    pub fn load(&self) -> Load {
        let st = lock(&self.state);
        Load {
            workers: st.workers,
            idle: (st.idle.len() + st.searching + st.starting).min(st.workers),
            queued: st.items.len(),
        }
    }

    pub fn backlog(&self) -> Option<Backlog> {
        let st = lock(&self.state);
        if !st.idle.is_empty() {
            return None;
        }
        let waiting = st
            .items
            .len()
            .saturating_sub(st.searching)
            .saturating_sub(st.starting);
        let (_, since) = st.items.front()?;
        (waiting > 0).then(|| Backlog {
            waiting,
            oldest: since.elapsed(),
            workers: st.workers,
        })
    }

    /// Blocks the pool's monitor until a push finds every worker busy,
    /// shutdown starts, or `timeout` passes; disarms the signal. Returns
    /// whether it was signalled.
    #[cfg(not(loom))]
    pub fn wait_saturated(&self, timeout: Duration) -> bool {
        let mut st = lock(&self.state);
        if !st.monitor_armed && !st.stopping {
            st = self
                .saturated
                .wait_timeout(st, timeout)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let signalled = st.monitor_armed || st.stopping;
        st.monitor_armed = false;
        signalled
    }
}

impl<T> State<T> {
    /// Takes the most recently parked worker off the stack, marked woken
    /// and counted as searching, if none is searching already. The caller
    /// notifies it after releasing the lock.
    fn wake_one(&mut self) -> Option<Arc<Parker>> {
        if self.searching > 0 {
            return None;
        }
        let p = self.idle.pop()?;
        *lock(&p.woken) = true;
        self.searching += 1;
        Some(p)
    }
}

/// Sleeps until woken or `timeout`; returns whether the wait timed out.
/// May return early (spuriously): the caller checks the `woken` flag.
fn park(me: &Parker, timeout: Option<Duration>) -> bool {
    let woken = lock(&me.woken);
    if *woken {
        return false;
    }
    match timeout {
        None => {
            #[cfg(not(loom))]
            drop(me.cv.wait(woken).unwrap_or_else(|e| e.into_inner()));
            #[cfg(loom)]
            drop(me.cv.wait(woken).unwrap());
            false
        }
        #[cfg(not(loom))]
        Some(t) => {
            let (_guard, result) = me
                .cv
                .wait_timeout(woken, t)
                .unwrap_or_else(|e| e.into_inner());
            result.timed_out()
        }
        // Loom does not model time; the models never retire workers.
        #[cfg(loom)]
        Some(_) => {
            drop(me.cv.wait(woken).unwrap());
            false
        }
    }
}
