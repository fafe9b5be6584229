//! Invariant 7: no job is stranded while a worker sleeps, although pushes
//! wake at most one worker (the run queue's wake throttling,
//! `src/runqueue.rs`).
//!
//! Two workers run the real `Scheduler::run_worker`. Connection A's
//! handler blocks until connection B's event has been handled, as a
//! handler waiting on another connection may (a chat room relaying a
//! reply). Main delivers A's event, then B's. Whatever the interleaving,
//! B must run on the other worker while A's handler blocks; if B is
//! stranded in the queue (nobody woken for it), every thread ends up
//! blocked and loom reports a deadlock.
//!
//! Catches the seeded mutants of the parking protocol:
//! * `no_chain_wake`: a worker that takes a job while more wait does not
//!   wake the next one (the second push saw a searcher and did not wake);
//! * `searching_leak`: a woken worker that takes a job stays counted as
//!   searching, so later pushes never wake anyone;
//! * `park_without_recheck`: a worker enters the idle stack in a critical
//!   section separate from its last look at the queue, so a push in
//!   between finds nobody to wake.
#![cfg(loom)]

mod harness;

use harness::{check, Log, Workers};
use loom::sync::Arc;
use natron::__loom::{Actor, Done, Mailbox, Scheduler};

struct Conn {
    name: u8,
    mailbox: Mailbox<u8>,
    /// What every handler records, shared by both connections.
    handled: Arc<Log<u8>>,
}

impl Actor for Conn {
    type Event = u8;

    fn mailbox(&self) -> &Mailbox<u8> {
        &self.mailbox
    }

    fn handle(_event: u8, done: Done<Self>) {
        let conn = done.actor().clone();
        if conn.name == b'A' {
            // Blocks (holding this worker) until B has been handled.
            conn.handled.wait_len(1);
        }
        conn.handled.push(conn.name);
    }
}

#[test]
fn no_stranded_job() {
    check(|| {
        let scheduler = Scheduler::new();
        let handled = Arc::new(Log::new());
        let conn = |name| {
            Arc::new(Conn {
                name,
                mailbox: Mailbox::new(),
                handled: handled.clone(),
            })
        };
        let (a, b) = (conn(b'A'), conn(b'B'));
        let workers = Workers::spawn(&scheduler, 2);

        scheduler.deliver(&a, 1).unwrap();
        scheduler.deliver(&b, 1).unwrap();

        handled.wait_len(2);
        workers.stop();
        assert_eq!(handled.snapshot(), [b'B', b'A']);
    });
}
