//! The connection limit never strands the acceptor: when a connection
//! closes while the acceptor finds the server full, the acceptor is woken
//! and accepts.
//!
//! The real `ConnLimit` with a limit of one, one connection open. The
//! acceptor thread runs the acceptor's loop (`may_accept`, else sleep on
//! the doorbell until rung); another thread closes the open connection.
//! However the two interleave, the acceptor must accept: a close that
//! slips between the acceptor's "full?" check and its sleep would leave it
//! asleep with room free, every thread blocked, and loom reports a
//! deadlock.
//!
//! Catches `natron_mutant="limit_store_not_cas"` (`may_accept` announces
//! the wait with a plain store of the count it read, overwriting a close
//! that came in between).
#![cfg(loom)]

mod harness;

use harness::{check, Bell, Ring};
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread;
use natron::__loom::ConnLimit;

#[test]
fn a_close_always_wakes_a_full_acceptor() {
    check(|| {
        let bell = Bell::new();
        let limit = Arc::new(ConnLimit::new(1));
        limit.set_waker(Arc::new(Ring(bell.clone())));
        limit.opened();
        let accepted = Arc::new(AtomicBool::new(false));

        let acceptor = {
            let (limit, accepted) = (limit.clone(), accepted.clone());
            thread::spawn(move || {
                while !limit.may_accept() {
                    bell.wait();
                }
                limit.opened();
                accepted.store(true, Ordering::SeqCst);
            })
        };
        let closer = {
            let limit = limit.clone();
            thread::spawn(move || limit.closed())
        };
        closer.join().unwrap();
        acceptor.join().unwrap();
        assert!(accepted.load(Ordering::SeqCst));
    });
}
