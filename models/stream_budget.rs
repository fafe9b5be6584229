//! A producer waiting for room in a response stream's budget is never
//! left asleep once there is room, and a stream's end wakes it.
//!
//! The real `Budget` (`actor/budget.rs`). A full budget; one thread waits
//! for room (`wait`, the blocking `ResponseStream::wait_writable`), another
//! (the IO actor) releases the bytes it wrote. Loom's `wait_timeout` never
//! times out, so a lost wake-up is a deadlock loom reports. A second model
//! races a callback's registration (`on_writable`) with the release: the
//! callback must run exactly once, by the registering side or by the
//! releasing side.
//!
//! Catches `natron_mutant="budget_check_before_interest"` (the waiter looks
//! at the room before counting itself in: a release in between sees no
//! one to wake).
#![cfg(loom)]

mod harness;

use harness::check;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use natron::__loom::{Budget, Ended};
use std::time::Duration;

#[test]
fn a_waiter_racing_the_release_that_frees_room_wakes() {
    check(|| {
        let budget = Arc::new(Budget::new(8));
        assert!(budget.reserve(8));
        assert!(!budget.reserve(1), "full");
        let waiter = {
            let budget = budget.clone();
            thread::spawn(move || budget.wait(Duration::from_secs(3600)))
        };
        budget.release(8).unwrap();
        assert_eq!(waiter.join().unwrap(), Ok(true));
        assert_eq!(budget.queued(), 0);
    });
}

#[test]
fn a_waiter_racing_the_close_wakes() {
    check(|| {
        let budget = Arc::new(Budget::new(8));
        assert!(budget.reserve(8));
        let waiter = {
            let budget = budget.clone();
            thread::spawn(move || budget.wait(Duration::from_secs(3600)))
        };
        budget.close();
        assert_eq!(waiter.join().unwrap(), Err(Ended));
    });
}

#[test]
fn a_callback_racing_the_release_runs_exactly_once() {
    check(|| {
        let budget = Arc::new(Budget::new(8));
        assert!(budget.reserve(8));
        // The callback's slot, as `Ctl::on_writable`: taken once.
        let slot = Arc::new(loom::sync::Mutex::new(Some(())));
        let ran = Arc::new(AtomicUsize::new(0));
        let run = |slot: &loom::sync::Mutex<Option<()>>, ran: &AtomicUsize, budget: &Budget| {
            if slot.lock().unwrap().take().is_some() {
                budget.unregister();
                ran.fetch_add(1, Ordering::SeqCst);
            }
        };
        let registrar = {
            let (budget, slot, ran) = (budget.clone(), slot.clone(), ran.clone());
            thread::spawn(move || {
                if budget.register() {
                    run(&slot, &ran, &budget);
                }
            })
        };
        if budget.release(8).unwrap() {
            run(&slot, &ran, &budget);
        }
        registrar.join().unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 1, "the callback ran once");
    });
}
