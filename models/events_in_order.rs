//! Invariant 2: events are delivered in the order enqueued: Open first,
//! exactly one Close, last, nothing after it.
//!
//! The main thread delivers `Open`, then `deliver_last(Close)`, while a
//! second thread races a `Data` delivery against the Close; two workers
//! run the real `Scheduler::run_worker`. After the Close, further
//! deliveries (another `Data`, a second Close) must be refused and given
//! back. The handler logs what it sees; the log must be `Open`, then
//! `Data` if (and only if) its delivery was accepted, then `Close`.
//!
//! Catches `natron_mutant="close_not_last"` (the mailbox takes from the
//! back, so a queued Close overtakes earlier events).
#![cfg(loom)]

mod harness;

use harness::{check, Recorder, Workers};
use loom::sync::Arc;
use loom::thread;
use natron::__loom::Scheduler;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ev {
    Open,
    Data(u8),
    Close,
}

#[test]
fn events_in_order() {
    check(|| {
        let scheduler = Scheduler::new();
        let conn = Arc::new(Recorder::new());
        let workers = Workers::spawn(&scheduler, 2);

        scheduler.deliver(&conn, Ev::Open).unwrap();
        let racer = {
            let (scheduler, conn) = (scheduler.clone(), conn.clone());
            thread::spawn(move || scheduler.deliver(&conn, Ev::Data(1)).is_ok())
        };
        scheduler.deliver_last(&conn, Ev::Close).unwrap();
        // Nothing is accepted after the Close.
        assert_eq!(scheduler.deliver(&conn, Ev::Data(2)), Err(Ev::Data(2)));
        assert_eq!(scheduler.deliver_last(&conn, Ev::Close), Err(Ev::Close));
        let data_accepted = racer.join().unwrap();

        let expected = if data_accepted {
            vec![Ev::Open, Ev::Data(1), Ev::Close]
        } else {
            vec![Ev::Open, Ev::Close]
        };
        conn.seen.wait_len(expected.len());
        workers.stop();
        assert_eq!(conn.seen.snapshot(), expected);
        assert_eq!(conn.mailbox.len(), 0, "events left behind the Close");
    });
}
