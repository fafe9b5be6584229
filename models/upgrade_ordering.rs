//! Invariant 6: upgrade ordering: what the upgrading handler sends precedes
//! what the Open handler sends.
//!
//! The actor mirrors `Connection::handle` and `websocket::upgrade` on the
//! real `Scheduler` and `Hold`. The worker marks the request's handler
//! running (`Hold::set_running(true)`). The handler hands the request to
//! another thread, which upgrades: it delivers `Open`, posts the 101
//! response, and hands the run right to `Hold::release`, then keeps
//! sending on the new WebSocket; the handler returns once that thread is
//! done, and the worker ends the run with `set_running(false)`. (Upgrading
//! on the worker's own thread is covered twice over: a run ending there,
//! inside the handler, goes back to the worker's turn, see `scheduler.rs`.) Two workers
//! run the real `run_worker`, so `Open` can be picked up by the other
//! worker as soon as the run ends. The IO side (the `drain_inbox` loop, as
//! in `outbound_order`) must receive the 101, then the upgrading handler's
//! message, then the Open handler's.
//!
//! Catches `natron_mutant="early_release"` (`Hold::release` ends the run
//! at once, while the handler is still running).
#![cfg(loom)]

mod harness;

use harness::{check, Bell, Ring, Workers};
use loom::sync::Arc;
use loom::thread;
use natron::__loom::{outbox, Actor, Done, Hold, Inbox, Mailbox, Outbox, Scheduler};

#[derive(Debug)]
enum Event {
    /// The HTTP request whose handler upgrades the connection.
    Upgrade,
    /// The WebSocket's first event.
    Open,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Out {
    /// `IoMsg::Upgrade`: the 101 response.
    Switching,
    /// Sent by the upgrading handler after the upgrade.
    FromUpgrader,
    /// Sent by the Open handler.
    FromOpen,
}

struct Conn {
    mailbox: Mailbox<Event>,
    upgrade: Hold<Conn>,
    scheduler: Scheduler<Conn>,
    io: Outbox<Out, Ring>,
}

impl Actor for Conn {
    type Event = Event;

    fn mailbox(&self) -> &Mailbox<Event> {
        &self.mailbox
    }

    fn handle(event: Event, done: Done<Self>) {
        let this = done.actor().clone();
        match event {
            Event::Upgrade => {
                this.upgrade.set_running(true);
                // The user's handler passes the request to a thread that
                // upgrades (`websocket::upgrade`)...
                let upgrader = {
                    let this = this.clone();
                    thread::spawn(move || {
                        this.scheduler.deliver(&this, Event::Open).unwrap();
                        this.io.post(Out::Switching);
                        this.upgrade.release(done);
                        // ...then sends on the WebSocket...
                        this.io.post(Out::FromUpgrader);
                    })
                };
                // ...and returns once it is done.
                upgrader.join().unwrap();
                // The handler returned: the parked run right ends here.
                drop(this.upgrade.set_running(false));
            }
            Event::Open => {
                this.io.post(Out::FromOpen);
                drop(done);
            }
        }
    }
}

/// The IO actor's side: everything it receives, in order, up to `n`.
fn consume(bell: Arc<Bell>, inbox: Inbox<Out, Ring>, n: usize) -> Vec<Out> {
    let mut sent = Vec::new();
    while sent.len() < n {
        bell.wait();
        inbox.rearm();
        while let Some(msg) = inbox.try_recv() {
            sent.push(msg);
        }
    }
    sent
}

#[test]
fn upgrade_ordering() {
    check(|| {
        let bell = Bell::new();
        let (tx, inbox) = outbox(Ring(bell.clone()));
        let io = thread::spawn(move || consume(bell, inbox, 3));
        let scheduler = Scheduler::new();
        let conn = Arc::new(Conn {
            mailbox: Mailbox::new(),
            upgrade: Hold::new(),
            scheduler: scheduler.clone(),
            io: tx,
        });
        let workers = Workers::spawn(&scheduler, 2);

        scheduler.deliver(&conn, Event::Upgrade).unwrap();

        assert_eq!(
            io.join().unwrap(),
            [Out::Switching, Out::FromUpgrader, Out::FromOpen]
        );
        workers.stop();
    });
}
