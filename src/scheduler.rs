//! The scheduler: a run queue of mailboxes and the worker threads that
//! drain it.
//!
//! Invariants:
//!
//! * A mailbox is in the run queue at most once (it enters only with the
//!   run right, see [`crate::mailbox`]), so the queue holds at most one entry
//!   per live connection: its bound is the connection count, and it needs
//!   no overflow policy. How workers are woken is [`crate::runqueue`]'s
//!   business (wake throttling).
//! * A worker runs **one** event of a mailbox, then the mailbox goes to the
//!   back of the queue if more events wait. A chatty connection cannot starve
//!   the others.
//! * The run right is a value: the worker turns it into a [`Done`] token and
//!   hands that to the actor with the event. Dropping the token (after the
//!   handler returns, or when a request is answered on another thread) ends
//!   the run: exactly once, by construction.
//! * No lock is held while an actor handles an event.

use crate::mailbox::{Mailbox, Push};
use crate::runqueue::{Backlog, Parker, Pop, RunQueue};
use crate::sync::{lock, Arc, AtomicUsize, Mutex, Ordering};
use std::time::Duration;

/// An actor: something with a mailbox whose events are handled one at a
/// time, in order.
pub trait Actor: Send + Sync + Sized + 'static {
    type Event: Send;

    fn mailbox(&self) -> &Mailbox<Self::Event>;

    /// Handles one event. The run ends when `done` is dropped, which the
    /// actor may do later and on another thread. (`done.actor()` is the
    /// actor itself.)
    fn handle(event: Self::Event, done: Done<Self>);
}

/// Handle to the run queue of actors of type `A`; cheap to clone.
///
/// One actor type per scheduler keeps the queue free of trait objects,
/// which loom's `Arc` cannot hold.
pub struct Scheduler<A: Actor> {
    queue: Arc<RunQueue<Arc<A>>>,
    /// Mailboxes holding the run right (queued or running). Shutdown waits
    /// for zero before stopping the workers, so every queued event (every
    /// WebSocket Close) is handled.
    active: Arc<AtomicUsize>,
}

impl<A: Actor> Clone for Scheduler<A> {
    fn clone(&self) -> Self {
        Scheduler {
            queue: self.queue.clone(),
            active: self.active.clone(),
        }
    }
}

impl<A: Actor> Default for Scheduler<A> {
    fn default() -> Self {
        Self::new()
    }
}

impl<A: Actor> Scheduler<A> {
    pub fn new() -> Self {
        Scheduler {
            queue: Arc::new(RunQueue::new()),
            active: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Delivers `event` to `actor`, scheduling it if it was idle. Gives the
    /// event back if the actor's mailbox has taken its last event.
    pub fn deliver(&self, actor: &Arc<A>, event: A::Event) -> Result<(), A::Event> {
        self.after_push(actor, actor.mailbox().push(event))
    }

    /// Delivers the final event of `actor`; nothing is delivered after it.
    #[cfg_attr(not(loom), allow(dead_code))] // used by the WebSocket close path
    pub fn deliver_last(&self, actor: &Arc<A>, event: A::Event) -> Result<(), A::Event> {
        self.after_push(actor, actor.mailbox().push_last(event))
    }

    fn after_push(&self, actor: &Arc<A>, push: Push<A::Event>) -> Result<(), A::Event> {
        match push {
            Push::Schedule => {
                self.active.fetch_add(1, Ordering::AcqRel);
                self.enqueue(actor.clone())
            }
            Push::Queued => {}
            Push::Refused(event) => return Err(event),
        }
        Ok(())
    }

    fn enqueue(&self, actor: Arc<A>) {
        self.queue.push(actor);
    }

    /// Runs jobs on the calling thread until [`Self::shutdown`] (once no
    /// job is left). (The models' workers; the pool counts its workers
    /// before spawning them, see [`Self::join_worker`].)
    #[cfg_attr(not(loom), allow(dead_code))]
    pub fn run_worker(&self) {
        self.queue.join();
        self.run_registered_worker(None);
    }

    /// Runs jobs as a worker already counted by [`Self::join_worker`];
    /// with an `idle_timeout`, it also returns after parking that long
    /// without a job while the pool is above its base size.
    pub fn run_registered_worker(&self, idle_timeout: Option<Duration>) {
        let me = Parker::new();
        loop {
            match self.queue.pop(&me, idle_timeout) {
                Pop::Job(actor) => self.run_one(actor),
                Pop::Stop => {
                    self.queue.leave();
                    return;
                }
                Pop::Retire => return,
            }
        }
    }

    /// Counts a worker about to start (before its thread exists, so the
    /// pool never over-spawns). Pair with [`Self::run_registered_worker`],
    /// or [`Self::abandon_worker`] if the thread cannot be spawned.
    pub fn join_worker(&self) {
        self.queue.join();
    }

    /// Uncounts a worker whose thread could not be spawned.
    pub fn abandon_worker(&self) {
        self.queue.leave();
    }

    /// Workers that never retire.
    pub fn set_base_workers(&self, n: usize) {
        self.queue.set_base(n);
    }

    /// How backed up the pool is (`None`: a worker is free or nothing waits).
    pub fn backlog(&self) -> Option<Backlog> {
        self.queue.backlog()
    }

    /// For the pool's monitor: blocks until a push finds every worker busy
    /// (or shutdown, or `timeout`).
    #[cfg(not(loom))]
    pub fn wait_saturated(&self, timeout: Duration) -> bool {
        self.queue.wait_saturated(timeout)
    }

    /// Whether [`Self::shutdown`] was called.
    pub fn is_stopping(&self) -> bool {
        self.queue.is_stopping()
    }

    /// Handles one event of `actor`, which holds the run right.
    fn run_one(&self, actor: Arc<A>) {
        let event = actor.mailbox().take();
        let done = Done {
            actor: Some(actor),
            scheduler: self.clone(),
        };
        match event {
            Some(event) => A::handle(event, done),
            // Cannot happen while the mailbox invariant holds; `done` still
            // releases the run right so the actor is never wedged.
            None => drop(done),
        }
    }

    /// Mailboxes with events queued or running. Zero means every delivered
    /// event has been handled.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    /// Stops the workers: each leaves once the run queue is empty, so
    /// every job queued before (or during) this call is run; a worker
    /// started after it leaves as soon as it finds the queue empty.
    /// Call it once `active()` is zero, so no run right is still out.
    pub fn shutdown(&self) {
        self.queue.shutdown();
    }
}

/// The right to run an actor's mailbox, held while one event is handled.
/// Dropping it ends the run and reschedules the actor if events wait.
#[must_use = "dropping Done ends the run"]
pub struct Done<A: Actor> {
    actor: Option<Arc<A>>,
    scheduler: Scheduler<A>,
}

impl<A: Actor> Done<A> {
    pub fn actor(&self) -> &Arc<A> {
        self.actor.as_ref().expect("actor present until drop")
    }
}

impl<A: Actor> Drop for Done<A> {
    fn drop(&mut self) {
        if let Some(actor) = self.actor.take() {
            #[cfg(natron_mutant = "early_idle")]
            {
                // Mutant: the run counts itself idle first and counts the
                // actor again only if it is re-queued, so `active()` can read
                // zero while events are queued.
                self.scheduler.active.fetch_sub(1, Ordering::AcqRel);
                if actor.mailbox().complete() {
                    self.scheduler.active.fetch_add(1, Ordering::AcqRel);
                    self.scheduler.enqueue(actor);
                }
                return;
            }
            #[allow(unreachable_code)]
            if actor.mailbox().complete() {
                self.scheduler.enqueue(actor);
            } else {
                self.scheduler.active.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}

/// Parks a run right handed over while a handler is running, until that
/// handler returns.
///
/// A WebSocket upgrade takes the run right out of the request (so no
/// response is owed) and queues `Open`. If the run ended there, `Open`
/// could start on another worker while the upgrading handler is still
/// sending, and its sends could overtake the upgrading handler's. So the
/// worker marks the handler running, the upgrade parks the run right here,
/// and the worker ends the run when the handler returns
/// (`models/upgrade_ordering.rs`). Upgrading from another thread after the
/// handler returned ends the run at once.
pub struct Hold<A: Actor> {
    slot: Mutex<HoldSlot<A>>,
}

struct HoldSlot<A: Actor> {
    running: bool,
    parked: Option<Done<A>>,
}

impl<A: Actor> Default for Hold<A> {
    fn default() -> Self {
        Self::new()
    }
}

impl<A: Actor> Hold<A> {
    pub fn new() -> Self {
        Hold {
            slot: Mutex::new(HoldSlot {
                running: false,
                parked: None,
            }),
        }
    }

    /// Marks the handler running or returned. On return, gives back the
    /// run right parked meanwhile, for the caller to drop (ending the run)
    /// outside the lock.
    pub fn set_running(&self, running: bool) -> Option<Done<A>> {
        let mut slot = lock(&self.slot);
        slot.running = running;
        if running {
            None
        } else {
            slot.parked.take()
        }
    }

    /// Ends the run when the running handler returns, or now if none runs.
    pub fn release(&self, done: Done<A>) {
        let mut slot = lock(&self.slot);
        #[cfg(natron_mutant = "early_release")]
        {
            // Mutant: ends the run at once, while the handler still runs.
            drop(slot);
            drop(done);
            return;
        }
        #[allow(unreachable_code)]
        if slot.running {
            slot.parked = Some(done);
        } else {
            drop(slot);
            drop(done);
        }
    }
}
