//! Invariant 5 (its scheduler part): shutdown ends with every Close
//! delivered once and all workers stopped, even though handlers are still
//! running when it starts, and a request is answered on another thread (a
//! responder thread ends `Msg(1)`'s run, as `Request::respond` from a
//! thread of the user's does).
//!
//! `Server::serve` shuts down as follows: the IO actors are joined (so
//! every delivery, each connection's final `deliver_last(Close)` included,
//! has happened); then it waits until `Scheduler::active()` is zero (no
//! mailbox queued or running, no run right out on another thread); then
//! `Scheduler::shutdown` (workers leave once the queue is empty), and joins
//! them. Here the main thread delivers `Msg(1)` and the Close while a
//! worker runs them and a responder thread ends `Msg(1)`'s run, and then
//! the main thread shuts down exactly that way (`active()` polled with
//! `yield_now` where the server sleeps 1 ms). Every event must have been
//! handled, the Close last and once, and every worker must have stopped.
//!
//! Without the wait for `active() == 0`, this fails: the workers can leave
//! while the responder still holds the run right, and the Close it would
//! re-queue is stranded. Catches `natron_mutant="early_idle"` (a finishing
//! run counts itself idle before re-queueing the actor, so `active()` can
//! read zero with a Close still to run).
#![cfg(loom)]

mod harness;

use harness::{check, Log, Recorder, Workers};
use loom::sync::Arc;
use loom::thread;
use natron::__loom::{Actor, Done, Mailbox, Scheduler};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ev {
    Msg(u8),
    Close,
}

/// Records each event; `Msg` runs end on a responder thread.
struct Answering {
    mailbox: Mailbox<Ev>,
    seen: Log<Ev>,
}

impl Actor for Answering {
    type Event = Ev;

    fn mailbox(&self) -> &Mailbox<Ev> {
        &self.mailbox
    }

    fn handle(event: Ev, done: Done<Self>) {
        done.actor().seen.push(event);
        if let Ev::Msg(_) = event {
            thread::spawn(move || drop(done));
        }
    }
}

#[test]
fn shutdown() {
    check(|| {
        let scheduler = Scheduler::new();
        let conn = Arc::new(Answering {
            mailbox: Mailbox::new(),
            seen: Log::new(),
        });
        let workers = Workers::spawn(&scheduler, 1);

        scheduler.deliver(&conn, Ev::Msg(1)).unwrap();
        scheduler.deliver_last(&conn, Ev::Close).unwrap();

        // `Server::serve`: wait until no mailbox is queued or running...
        while scheduler.active() > 0 {
            thread::yield_now();
        }
        // ...then stop and join every worker.
        workers.stop();

        let seen = conn.seen.snapshot();
        assert_eq!(seen.last(), Some(&Ev::Close), "Close not handled: {seen:?}");
        assert_eq!(
            seen.iter().filter(|e| **e == Ev::Close).count(),
            1,
            "{seen:?}"
        );
        assert_eq!(seen, [Ev::Msg(1), Ev::Close]);
    });
}

/// The elastic pool may start a worker while `close()` runs. Shutdown does
/// not count workers (one `Stop` each, as it once did): it sets a flag every
/// worker sees once the queue is empty, so a worker that registers after
/// shutdown began leaves too. Catches `natron_mutant="stop_by_count"` (one
/// stop token per worker registered when shutdown starts: the late worker
/// waits forever and the join deadlocks).
#[test]
fn worker_started_during_shutdown_leaves() {
    check(|| {
        let scheduler = Scheduler::new();
        let conn = Arc::new(Recorder::new());
        let workers = Workers::spawn(&scheduler, 1);
        // The pool's monitor starting one more worker, racing the shutdown.
        let late = {
            let s = scheduler.clone();
            thread::spawn(move || s.run_worker())
        };

        scheduler.deliver(&conn, Ev::Msg(1)).unwrap();
        conn.seen.wait_len(1);
        while scheduler.active() > 0 {
            thread::yield_now();
        }
        workers.stop();
        late.join().unwrap();
        assert_eq!(conn.seen.snapshot(), [Ev::Msg(1)]);
    });
}
