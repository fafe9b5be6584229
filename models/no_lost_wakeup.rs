//! Invariant 3: no lost wakeup: an event pushed while a worker is
//! finishing with that connection is always run.
//!
//! One worker runs the real `Scheduler::run_worker`. The handler does not
//! end its run itself: it hands its `Done` to a responder thread (as a
//! request answered on another thread does), so the run ends - the
//! mailbox's `complete` - on that thread while the main thread delivers
//! the next event. Every event must be handled. If one is stranded, every
//! thread ends up blocked (the responder waiting for a `Done`, the worker
//! for a job, main for the log) and loom reports a deadlock.
//!
//! Catches `natron_mutant="lost_wakeup"` (`complete` checks for waiting
//! events and releases the run right in two separate critical sections).
#![cfg(loom)]

mod harness;

use harness::{check, Log, Workers};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;
use natron::__loom::{Actor, Done, Mailbox, Scheduler};

struct Conn {
    mailbox: Mailbox<u8>,
    /// `Done` tokens on their way from the handler to the responder.
    handoff: Mutex<Vec<Done<Conn>>>,
    handed: Condvar,
    /// Events handled (their `Done` may still be on its way).
    handled: Log<u8>,
}

impl Actor for Conn {
    type Event = u8;

    fn mailbox(&self) -> &Mailbox<u8> {
        &self.mailbox
    }

    fn handle(event: u8, done: Done<Self>) {
        let conn = done.actor().clone();
        conn.handled.push(event);
        conn.handoff.lock().unwrap().push(done);
        conn.handed.notify_one();
    }
}

#[test]
fn no_lost_wakeup() {
    check(|| {
        const EVENTS: u8 = 2;
        let scheduler = Scheduler::new();
        let conn = Arc::new(Conn {
            mailbox: Mailbox::new(),
            handoff: Mutex::new(Vec::new()),
            handed: Condvar::new(),
            handled: Log::new(),
        });
        let workers = Workers::spawn(&scheduler, 1);
        let responder = {
            let conn = conn.clone();
            thread::spawn(move || {
                for _ in 0..EVENTS {
                    let mut handoff = conn.handoff.lock().unwrap();
                    while handoff.is_empty() {
                        handoff = conn.handed.wait(handoff).unwrap();
                    }
                    let done = handoff.pop().unwrap();
                    drop(handoff);
                    // Ends the run, racing with the main thread's delivery.
                    drop(done);
                }
            })
        };

        for event in 1..=EVENTS {
            scheduler.deliver(&conn, event).unwrap();
        }

        responder.join().unwrap();
        workers.stop();
        assert_eq!(conn.handled.snapshot(), [1, 2]);
    });
}
