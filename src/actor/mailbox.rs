//! A connection's mailbox: its queue of events and its "active" bit.
//!
//! Invariants (each checked by a model in `models/`):
//!
//! 1. **One runner.** A mailbox is *active* from the [`Mailbox::push`] that
//!    finds it idle until the [`Mailbox::complete`] that finds it empty.
//!    Only the push that flips idle -> active returns [`Push::Schedule`], and
//!    only `complete` can hand the right to run on, so at most one party
//!    (the run queue or the worker holding it) may run the mailbox at a time:
//!    at most one handler is in flight per connection
//!    (`models/one_handler_in_flight.rs`).
//! 2. **Order.** Events are taken in the order they were pushed. Once a
//!    *last* event (a WebSocket Close) has been pushed, every later push is
//!    refused, so the last event is the last one delivered
//!    (`models/events_in_order.rs`).
//! 3. **No lost wakeup.** `push` and `complete` decide under the same lock,
//!    so an event pushed while a worker is finishing is either seen by that
//!    worker's `complete` (which reschedules) or finds the mailbox idle
//!    (and schedules it itself) (`models/no_lost_wakeup.rs`).
//!
//! The mailbox is unbounded in events; the IO actor bounds it by pausing
//! reads on a connection while too many of its events are queued.

use crate::actor::sync::{lock, Mutex};
use std::collections::VecDeque;

/// What the pusher must do after a push.
#[derive(Debug)]
#[must_use]
pub enum Push<T> {
    /// The mailbox was idle: the caller now holds the right to run it and
    /// must hand it to the scheduler.
    Schedule,
    /// The mailbox is already active; its runner will get to the event.
    Queued,
    /// The mailbox has taken its last event; this one is given back.
    Refused(T),
}

/// An actor's queue of events, with the run right: at most one worker runs
/// its events at a time (see the module docs for the state and its owners).
pub struct Mailbox<T> {
    inner: Mutex<Inner<T>>,
}

struct Inner<T> {
    queue: VecDeque<T>,
    active: bool,
    sealed: bool,
}

impl<T> Default for Mailbox<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Mailbox<T> {
    /// An empty, open mailbox that no worker runs.
    pub fn new() -> Self {
        Mailbox {
            inner: Mutex::new(Inner {
                queue: VecDeque::new(),
                active: false,
                sealed: false,
            }),
        }
    }

    /// Appends an event.
    pub fn push(&self, event: T) -> Push<T> {
        self.push_inner(event, false)
    }

    /// Appends the final event; every later push is refused.
    #[cfg_attr(not(loom), allow(dead_code))] // used by the WebSocket close path
    pub(crate) fn push_last(&self, event: T) -> Push<T> {
        self.push_inner(event, true)
    }

    fn push_inner(&self, event: T, last: bool) -> Push<T> {
        let mut inner = lock(&self.inner);
        if inner.sealed {
            return Push::Refused(event);
        }
        inner.sealed = last;
        inner.queue.push_back(event);
        #[cfg(natron_mutant = "double_dispatch")]
        {
            // Mutant: every push schedules, so two workers may run one mailbox.
            inner.active = true;
            return Push::Schedule;
        }
        #[allow(unreachable_code)]
        if inner.active {
            Push::Queued
        } else {
            inner.active = true;
            Push::Schedule
        }
    }

    /// Takes the next event. Only the holder of the run right calls this.
    pub fn take(&self) -> Option<T> {
        let mut inner = lock(&self.inner);
        debug_assert!(inner.active, "take() without the run right");
        #[cfg(natron_mutant = "close_not_last")]
        {
            // Mutant: takes from the back when more than one event waits.
            return inner.queue.pop_back();
        }
        #[allow(unreachable_code)]
        inner.queue.pop_front()
    }

    /// Ends one run. Returns `true` if events are waiting: the caller keeps
    /// the run right and must reschedule the mailbox.
    pub fn complete(&self) -> bool {
        let mut inner = lock(&self.inner);
        #[cfg(natron_mutant = "lost_wakeup")]
        {
            // Mutant: the check and the release are not atomic with respect
            // to `push`.
            let empty = inner.queue.is_empty();
            drop(inner);
            if empty {
                let mut inner = lock(&self.inner);
                inner.active = false;
                return false;
            }
            return true;
        }
        #[allow(unreachable_code)]
        if inner.queue.is_empty() {
            inner.active = false;
            false
        } else {
            true
        }
    }

    /// Whether events wait. Only the holder of the run right calls this;
    /// a `true` stays true (only the holder takes events), a `false` may
    /// turn true at any time.
    pub(crate) fn has_waiting(&self) -> bool {
        !lock(&self.inner).queue.is_empty()
    }

    /// Number of events waiting (not counting one being handled).
    // Not API (reached only through `__loom` and `__bench`): `has_waiting`
    // is the emptiness test.
    #[allow(clippy::len_without_is_empty)]
    #[cfg_attr(not(loom), allow(dead_code))] // used by WebSocket read throttling
    pub fn len(&self) -> usize {
        lock(&self.inner).queue.len()
    }
}
