//! The scheduler: a run queue of mailboxes and the worker threads that
//! drain it.
//!
//! Invariants:
//!
//! * A mailbox is in the run queue at most once (it enters only with the
//!   run right, see [`crate::mailbox`]), so the queue holds at most one entry
//!   per live connection plus one `Stop` per worker: its bound is the
//!   connection count, and it needs no overflow policy.
//! * A worker runs **one** event of a mailbox, then the mailbox goes to the
//!   back of the queue if more events wait. A chatty connection cannot starve
//!   the others.
//! * The run right is a value: the worker turns it into a [`Done`] token and
//!   hands that to the actor with the event. Dropping the token (after the
//!   handler returns, or when a request is answered on another thread) ends
//!   the run: exactly once, by construction.
//! * No lock is held while an actor handles an event.

use crate::mailbox::{Mailbox, Push};
use crate::sync::channel::{unbounded, Receiver, Sender};
use crate::sync::Arc;

/// An actor: something with a mailbox whose events are handled one at a
/// time, in order.
pub(crate) trait Actor: Send + Sync + Sized + 'static {
    type Event: Send;

    fn mailbox(&self) -> &Mailbox<Self::Event>;

    /// Handles one event. The run ends when `done` is dropped, which the
    /// actor may do later and on another thread.
    fn handle(self: &Arc<Self>, event: Self::Event, done: Done<Self>);
}

/// Type-erased entry of the run queue.
trait Runnable: Send + Sync {
    fn run_one(self: Arc<Self>, scheduler: &Scheduler);
}

impl<A: Actor> Runnable for A {
    fn run_one(self: Arc<Self>, scheduler: &Scheduler) {
        let done = Done {
            actor: Some(self.clone()),
            scheduler: scheduler.clone(),
        };
        match self.mailbox().take() {
            Some(event) => self.handle(event, done),
            // Cannot happen while the mailbox invariant holds; `done` still
            // releases the run right so the actor is never wedged.
            None => drop(done),
        }
    }
}

enum Job {
    Run(Arc<dyn Runnable>),
    Stop,
}

/// Handle to the run queue; cheap to clone.
#[derive(Clone)]
pub(crate) struct Scheduler {
    tx: Sender<Job>,
    rx: Receiver<Job>,
}

impl Default for Scheduler {
    fn default() -> Self {
        Self::new()
    }
}

impl Scheduler {
    pub(crate) fn new() -> Self {
        let (tx, rx) = unbounded();
        Scheduler { tx, rx }
    }

    /// Delivers `event` to `actor`, scheduling it if it was idle. Gives the
    /// event back if the actor's mailbox has taken its last event.
    pub(crate) fn deliver<A: Actor>(&self, actor: &Arc<A>, event: A::Event) -> Result<(), A::Event> {
        match actor.mailbox().push(event) {
            Push::Schedule => self.enqueue(actor.clone()),
            Push::Queued => {}
            Push::Refused(event) => return Err(event),
        }
        Ok(())
    }

    /// Delivers the final event of `actor`; nothing is delivered after it.
    pub(crate) fn deliver_last<A: Actor>(&self, actor: &Arc<A>, event: A::Event) -> Result<(), A::Event> {
        match actor.mailbox().push_last(event) {
            Push::Schedule => self.enqueue(actor.clone()),
            Push::Queued => {}
            Push::Refused(event) => return Err(event),
        }
        Ok(())
    }

    fn enqueue<A: Actor>(&self, actor: Arc<A>) {
        // The receiver lives in `self`, so the channel cannot be disconnected.
        let _ = self.tx.send(Job::Run(actor));
    }

    /// Runs jobs on the calling thread until it receives a stop.
    pub(crate) fn run_worker(&self) {
        while let Ok(job) = self.rx.recv() {
            match job {
                Job::Run(actor) => actor.run_one(self),
                Job::Stop => return,
            }
        }
    }

    /// Asks one worker to stop once the jobs queued before this call are run.
    pub(crate) fn stop_one(&self) {
        let _ = self.tx.send(Job::Stop);
    }
}

/// The right to run an actor's mailbox, held while one event is handled.
/// Dropping it ends the run and reschedules the actor if events wait.
#[must_use = "dropping Done ends the run"]
pub(crate) struct Done<A: Actor> {
    actor: Option<Arc<A>>,
    scheduler: Scheduler,
}

impl<A: Actor> Done<A> {
    pub(crate) fn actor(&self) -> &Arc<A> {
        self.actor.as_ref().expect("actor present until drop")
    }
}

impl<A: Actor> Drop for Done<A> {
    fn drop(&mut self) {
        if let Some(actor) = self.actor.take() {
            if actor.mailbox().complete() {
                self.scheduler.enqueue(actor);
            }
        }
    }
}
