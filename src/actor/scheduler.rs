//! The scheduler: a run queue of mailboxes and the worker threads that
//! drain it.
//!
//! Invariants:
//!
//! * A mailbox is in the run queue at most once (it enters only with the
//!   run right, see [`crate::actor::mailbox`]), so the queue holds at most one entry
//!   per live connection: its bound is the connection count, and it needs
//!   no overflow policy. How workers are woken is [`crate::actor::runqueue`]'s
//!   business (wake throttling).
//! * **Turns.** A worker runs up to [`TURN_EVENTS`] events of a mailbox in a
//!   row: when a run ends *on the worker's own thread, inside the handler*
//!   (the request was answered there) and more events wait, the worker keeps
//!   the run right and goes on with the next event, with no trip through the
//!   run queue and no wake-up. A run that ends on another thread, or after
//!   the turn, re-queues the mailbox at the back as before. Fairness bound:
//!   a mailbox holds a worker for at most `TURN_EVENTS` events before every
//!   mailbox queued meanwhile gets its turn.
//! * The run right is a value: the worker turns it into a [`Done`] token and
//!   hands that to the actor with the event. Dropping the token (after the
//!   handler returns, or when a request is answered on another thread) ends
//!   the run: exactly once, by construction.
//! * No lock is held while an actor handles an event.

use crate::actor::mailbox::{Mailbox, Push};
use crate::actor::runqueue::{Backlog, Load, Parker, Pop, RunQueue};
use crate::actor::sync::{current_thread, lock, Arc, AtomicUsize, Mutex, Ordering, ThreadId};
use std::time::Duration;

/// Most events of one mailbox a worker runs in a row.
pub const TURN_EVENTS: usize = 16;

/// An actor: something with a mailbox whose events are handled one at a
/// time, in order.
pub trait Actor: Send + Sync + Sized + 'static {
    /// What the actor's mailbox carries.
    type Event: Send;

    /// The actor's mailbox, which the scheduler runs.
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
    /// A scheduler with an empty run queue and no workers parked.
    pub fn new() -> Self {
        Scheduler {
            queue: Arc::new(RunQueue::new()),
            active: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Delivers `event` to `actor`, scheduling it if it was idle. Gives the
    /// event back if the actor's mailbox has taken its last event.
    ///
    /// # Errors
    ///
    /// `Err(event)` after [`Self::deliver_last`]: the actor is finished.
    pub fn deliver(&self, actor: &Arc<A>, event: A::Event) -> Result<(), A::Event> {
        self.after_push(actor, actor.mailbox().push(event))
    }

    /// Like [`Self::deliver`], but an actor that needs scheduling is added
    /// to `ready` instead of the run queue; [`Self::schedule_all`] queues
    /// them later with one lock and at most one wake-up. The IO actor
    /// collects one `epoll` batch this way: waking a worker per request
    /// would let it preempt the IO thread mid-batch.
    ///
    /// # Errors
    ///
    /// As [`Self::deliver`].
    #[cfg(not(loom))]
    pub fn deliver_deferred(
        &self,
        actor: &Arc<A>,
        event: A::Event,
        ready: &mut Vec<Arc<A>>,
    ) -> Result<(), A::Event> {
        match actor.mailbox().push(event) {
            Push::Schedule => {
                self.active.fetch_add(1, Ordering::AcqRel);
                ready.push(actor.clone());
                Ok(())
            }
            Push::Queued => Ok(()),
            Push::Refused(event) => Err(event),
        }
    }

    /// Queues every actor of `ready` (see [`Self::deliver_deferred`]).
    #[cfg(not(loom))]
    pub fn schedule_all(&self, ready: &mut Vec<Arc<A>>) {
        if !ready.is_empty() {
            self.queue.push_all(ready.drain(..));
        }
    }

    /// Delivers the final event of `actor`; nothing is delivered after it.
    ///
    /// # Errors
    ///
    /// `Err(event)` if a final event was delivered already.
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
        self.queue.started();
        let me = Parker::new();
        let turn = Arc::new(Turn {
            thread: current_thread(),
            slot: Mutex::new(TurnSlot {
                open: false,
                next: None,
            }),
        });
        loop {
            match self.queue.pop(&me, idle_timeout) {
                Pop::Job(actor) => self.run_turn(actor, &turn),
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
        self.queue.started();
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

    /// Workers, idle workers and queued connection actors.
    pub fn load(&self) -> Load {
        self.queue.load()
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

    /// Handles events of `actor`, which holds the run right, for as long
    /// as its runs end inside the handler on this thread, up to
    /// [`TURN_EVENTS`].
    fn run_turn(&self, mut actor: Arc<A>, turn: &Arc<Turn<A>>) {
        for n in 1..=TURN_EVENTS {
            let event = actor.mailbox().take();
            // The last event of the turn re-queues the mailbox if more wait.
            let last = n == TURN_EVENTS;
            if !last {
                lock(&turn.slot).open = true;
            }
            let done = Done {
                actor: Some(actor),
                scheduler: self.clone(),
                turn: (!last).then(|| turn.clone()),
            };
            // Should a panic (a natron bug: handlers' panics are caught
            // inside `handle`) leave `handle`, a run right parked in the
            // slot is ended, not lost.
            let guard = TurnGuard {
                turn,
                scheduler: self,
            };
            match event {
                Some(event) => A::handle(event, done),
                // Cannot happen while the mailbox invariant holds; `done`
                // still releases the run right so the actor is never wedged.
                None => drop(done),
            }
            std::mem::forget(guard);
            let next = {
                let mut slot = lock(&turn.slot);
                slot.open = false;
                slot.next.take()
            };
            match next {
                Some(next) => actor = next,
                None => return,
            }
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
    /// The turn of the worker that started this run, which the run right
    /// may go back to (see the module docs).
    turn: Option<Arc<Turn<A>>>,
}

/// Ends the run parked in a turn's slot if a panic unwinds out of
/// `Actor::handle` (forgotten on the normal path).
struct TurnGuard<'a, A: Actor> {
    turn: &'a Arc<Turn<A>>,
    scheduler: &'a Scheduler<A>,
}

impl<A: Actor> Drop for TurnGuard<'_, A> {
    fn drop(&mut self) {
        let parked = {
            let mut slot = lock(&self.turn.slot);
            slot.open = false;
            slot.next.take()
        };
        if let Some(actor) = parked {
            drop(Done {
                actor: Some(actor),
                scheduler: self.scheduler.clone(),
                turn: None,
            });
        }
    }
}

/// A worker's turn: where a run right ending inside the handler, on the
/// worker's thread, is handed back so the worker goes on with the mailbox.
struct Turn<A> {
    thread: ThreadId,
    slot: Mutex<TurnSlot<A>>,
}

struct TurnSlot<A> {
    /// A handler of this turn is running on `thread`.
    open: bool,
    next: Option<Arc<A>>,
}

impl<A> Turn<A> {
    /// Takes `actor`'s run right back into the turn if the drop happens on
    /// the worker's thread while one of its handlers runs. Gives it back
    /// otherwise.
    fn take_back(&self, actor: Arc<A>) -> Option<Arc<A>> {
        // While unwinding, the turn may never look at its slot again.
        if current_thread() != self.thread || std::thread::panicking() {
            return Some(actor);
        }
        let mut slot = lock(&self.slot);
        if !slot.open || slot.next.is_some() {
            return Some(actor);
        }
        slot.next = Some(actor);
        None
    }
}

impl<A: Actor> Done<A> {
    /// The actor whose run right this is.
    ///
    /// # Panics
    ///
    /// Never: the actor is taken out only by `Done`'s own drop.
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
            let actor = match self.turn.take() {
                // More events wait and the worker is right here: it keeps
                // the run right and goes on (its responses still queued).
                Some(turn) if actor.mailbox().has_waiting() => {
                    #[cfg(natron_mutant = "turn_and_requeue")]
                    {
                        // Mutant: keeps the turn and re-queues the mailbox
                        // too: two workers may run it.
                        self.scheduler.enqueue(actor.clone());
                    }
                    match turn.take_back(actor) {
                        None => return,
                        Some(actor) => actor,
                    }
                }
                _ => actor,
            };
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
