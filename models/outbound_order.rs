//! Invariant 4: outbound order: messages queued by one thread leave in
//! that order; a close leaves after everything queued before it; nothing
//! leaves after it. And no lost wakeup on the outbound queue.
//!
//! The consumer is the IO actor's loop (`io.rs`: `drain_inbox`): sleep
//! until woken, `rearm()`, then drain with `try_recv()`; it stops at the
//! `Close` message (the IO actor closes the socket) and must have
//! received, in order, everything posted before it, and nothing posted
//! before it may be left in the queue. The `Wake` is a doorbell
//! (`harness::Bell`) standing in for the eventfd. If a wakeup is lost the
//! consumer sleeps forever and loom reports a deadlock.
//!
//! * `one_thread`: one thread posts `Msg(1)`, `Msg(2)`, `Close`.
//! * `handoff`: the messages are responses posted by handlers of
//!   consecutive events of one actor, run by two workers on the real
//!   `Scheduler`: the posters are different threads ordered only by
//!   happens-before through the mailbox and `Done` (how the responses of
//!   pipelined requests are ordered).
//!
//! Catches `natron_mutant="reorder_outbound"` (a post that finds the
//! receiver already notified goes to a second queue drained after the
//! first) and `natron_mutant="lost_outbound_wakeup"` (the poster claims the
//! wakeup before its message is in the queue).
#![cfg(loom)]

mod harness;

use harness::{check, Bell, Ring, Workers};
use loom::sync::Arc;
use loom::thread;
use natron::__loom::{outbox, Actor, Done, Inbox, Mailbox, Outbox, Scheduler};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Out {
    Msg(u8),
    Close,
}

/// The IO actor's side: returns what left before (and including) the
/// `Close`, and checks that nothing is left behind it.
fn consume(bell: Arc<Bell>, inbox: Inbox<Out, Ring>) -> Vec<Out> {
    let mut sent = Vec::new();
    loop {
        bell.wait();
        inbox.rearm();
        while let Some(msg) = inbox.try_recv() {
            sent.push(msg);
            if msg == Out::Close {
                assert_eq!(inbox.try_recv(), None, "queued behind the close");
                return sent;
            }
        }
    }
}

const EXPECTED: [Out; 3] = [Out::Msg(1), Out::Msg(2), Out::Close];

#[test]
fn one_thread() {
    check(|| {
        let bell = Bell::new();
        let (tx, inbox) = outbox(Ring(bell.clone()));
        let io = thread::spawn(move || consume(bell, inbox));
        for msg in EXPECTED {
            tx.post(msg);
        }
        assert_eq!(io.join().unwrap(), EXPECTED);
    });
}

/// A connection whose handler answers each event with one response.
struct Conn {
    mailbox: Mailbox<Out>,
    io: Outbox<Out, Ring>,
}

impl Actor for Conn {
    type Event = Out;

    fn mailbox(&self) -> &Mailbox<Out> {
        &self.mailbox
    }

    fn handle(request: Out, done: Done<Self>) {
        done.actor().io.post(request);
    }
}

#[test]
fn handoff() {
    check(|| {
        let bell = Bell::new();
        let (tx, inbox) = outbox(Ring(bell.clone()));
        let io = thread::spawn(move || consume(bell, inbox));
        let scheduler = Scheduler::new();
        let conn = Arc::new(Conn {
            mailbox: Mailbox::new(),
            io: tx,
        });
        // The requests are all queued before the workers start: what is
        // checked here is the responses' way out, not the deliveries.
        scheduler.deliver(&conn, Out::Msg(1)).unwrap();
        scheduler.deliver(&conn, Out::Msg(2)).unwrap();
        scheduler.deliver_last(&conn, Out::Close).unwrap();
        let workers = Workers::spawn(&scheduler, 2);

        assert_eq!(io.join().unwrap(), EXPECTED);
        workers.stop();
    });
}
