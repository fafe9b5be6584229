//! Invariant 1: at most one handler in flight per connection.
//!
//! Two workers run the real `Scheduler::run_worker` while the main thread
//! delivers three events to one actor, the later ones racing with the
//! earlier ones' handlers and their `Done`s (three, so that a worker going
//! on with its turn and a second worker can each find one). The handler counts itself in and out of
//! an in-flight counter and fails if it ever sees another handler of the
//! same actor running.
//!
//! Catches `natron_mutant="double_dispatch"` (every push schedules, so the
//! two workers can both run the actor) and `natron_mutant="turn_and_requeue"`
//! (a worker keeps its turn and re-queues the mailbox as well).
#![cfg(loom)]

mod harness;

use harness::{check, Log, Workers};
use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::sync::Arc;
use natron::__loom::{Actor, Done, Mailbox, Scheduler};

struct Conn {
    mailbox: Mailbox<u8>,
    in_flight: AtomicUsize,
    handled: Log<u8>,
}

impl Actor for Conn {
    type Event = u8;

    fn mailbox(&self) -> &Mailbox<u8> {
        &self.mailbox
    }

    fn handle(event: u8, done: Done<Self>) {
        let conn = done.actor();
        let before = conn.in_flight.fetch_add(1, SeqCst);
        assert_eq!(before, 0, "two handlers of one connection in flight");
        conn.handled.push(event);
        conn.in_flight.fetch_sub(1, SeqCst);
        // The run ends here, on the worker (`no_lost_wakeup` ends it on
        // another thread).
        drop(done);
    }
}

#[test]
fn one_handler_in_flight() {
    check(|| {
        let scheduler = Scheduler::new();
        let conn = Arc::new(Conn {
            mailbox: Mailbox::new(),
            in_flight: AtomicUsize::new(0),
            handled: Log::new(),
        });
        let workers = Workers::spawn(&scheduler, 2);

        for event in 1..=3 {
            scheduler.deliver(&conn, event).unwrap();
        }

        conn.handled.wait_len(3);
        workers.stop();
        assert_eq!(conn.handled.snapshot(), [1, 2, 3]);
    });
}
