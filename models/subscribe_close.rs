//! A subscribe racing the connection's close never leaves a dead
//! subscriber behind.
//!
//! The real `Ledger` (a WebSocket's reverse index of its topics). A "hub"
//! table (a loom `Mutex<Vec>`, as the real hub's `dashmap` shard) gets the
//! subscription through `Ledger::add`'s `register`; the close takes the
//! ledger's entries and removes each from the table, as `pubsub::end`
//! does. One thread subscribes, another closes; however they interleave,
//! the table must end empty: the subscription was refused, or recorded
//! in time for the close to end it.
//!
//! Catches `natron_mutant="ledger_check_then_act"` (`add` checks `closed`,
//! releases the lock, then registers).
#![cfg(loom)]

mod harness;

use harness::check;
use loom::sync::{Arc, Mutex};
use loom::thread;
use natron::__loom::Ledger;

#[test]
fn a_subscribe_racing_close_leaves_nothing_behind() {
    check(|| {
        let table: Arc<Mutex<Vec<&'static str>>> = Arc::new(Mutex::new(Vec::new()));
        let ledger: Arc<Ledger<&'static str>> = Arc::new(Ledger::new());

        let subscriber = {
            let (table, ledger) = (table.clone(), ledger.clone());
            thread::spawn(move || {
                let _ = ledger.add("news", || table.lock().unwrap().push("news"));
            })
        };
        let closer = {
            let (table, ledger) = (table.clone(), ledger.clone());
            thread::spawn(move || {
                for topic in ledger.close() {
                    table.lock().unwrap().retain(|t| *t != topic);
                }
            })
        };
        subscriber.join().unwrap();
        closer.join().unwrap();
        assert!(
            table.lock().unwrap().is_empty(),
            "a subscription outlived its connection's close"
        );
    });
}

#[test]
fn an_unsubscribe_racing_close_ends_it_once() {
    check(|| {
        let table: Arc<Mutex<Vec<&'static str>>> = Arc::new(Mutex::new(Vec::new()));
        let ledger: Arc<Ledger<&'static str>> = Arc::new(Ledger::new());
        ledger
            .add("news", || table.lock().unwrap().push("news"))
            .unwrap();
        let unsubscriber = {
            let (table, ledger) = (table.clone(), ledger.clone());
            thread::spawn(move || {
                ledger.remove(&"news", || {
                    let mut t = table.lock().unwrap();
                    let i = t.iter().position(|x| *x == "news").expect("removed once");
                    t.remove(i);
                })
            })
        };
        let mut ended = 0;
        for topic in ledger.close() {
            let mut t = table.lock().unwrap();
            let i = t.iter().position(|x| *x == topic).expect("removed once");
            t.remove(i);
            ended += 1;
        }
        let removed = unsubscriber.join().unwrap();
        assert_eq!(ended + usize::from(removed), 1);
        assert!(table.lock().unwrap().is_empty());
    });
}
