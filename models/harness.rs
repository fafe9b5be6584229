//! Shared pieces of the loom models: a default preemption bound, a log
//! that threads can wait on, a worker pool running the real
//! `Scheduler::run_worker`, and a `Wake` impl standing in for the IO
//! actor's `mio::Waker`.
//!
//! Not a test target itself: each model pulls it in with `mod harness;`.

#![allow(dead_code)]

use loom::sync::{Arc, Condvar, Mutex};
use loom::thread::{self, JoinHandle};
use natron::__loom::{Actor, Done, Mailbox, Scheduler, Wake};

/// The preemption bound used when `LOOM_MAX_PREEMPTIONS` is not set.
pub const DEFAULT_MAX_PREEMPTIONS: &str = "3";

/// Runs `f` under every interleaving loom explores (`loom::model`, so
/// `LOOM_LOG`, `LOOM_LOCATION`, `LOOM_CHECKPOINT_FILE`... apply), with
/// `LOOM_MAX_PREEMPTIONS` defaulting to [`DEFAULT_MAX_PREEMPTIONS`].
pub fn check<F: Fn() + Sync + Send + 'static>(f: F) {
    static DEFAULT_BOUND: std::sync::Once = std::sync::Once::new();
    DEFAULT_BOUND.call_once(|| {
        if std::env::var_os("LOOM_MAX_PREEMPTIONS").is_none() {
            std::env::set_var("LOOM_MAX_PREEMPTIONS", DEFAULT_MAX_PREEMPTIONS);
        }
    });
    loom::model(f);
}

/// An append-only record that other threads can wait on.
pub struct Log<T> {
    items: Mutex<Vec<T>>,
    grew: Condvar,
}

impl<T: Clone> Log<T> {
    pub fn new() -> Self {
        Log {
            items: Mutex::new(Vec::new()),
            grew: Condvar::new(),
        }
    }

    pub fn push(&self, item: T) {
        self.items.lock().unwrap().push(item);
        self.grew.notify_all();
    }

    /// Blocks until the log holds at least `n` items. If they never come
    /// (a lost wakeup), every thread ends up blocked and loom reports a
    /// deadlock.
    pub fn wait_len(&self, n: usize) {
        let mut items = self.items.lock().unwrap();
        while items.len() < n {
            items = self.grew.wait(items).unwrap();
        }
    }

    pub fn snapshot(&self) -> Vec<T> {
        self.items.lock().unwrap().clone()
    }
}

/// `n` worker threads, each running the real `Scheduler::run_worker`.
pub struct Workers<A: Actor> {
    threads: Vec<JoinHandle<()>>,
    scheduler: Scheduler<A>,
}

impl<A: Actor> Workers<A> {
    pub fn spawn(scheduler: &Scheduler<A>, n: usize) -> Self {
        let threads = (0..n)
            .map(|_| {
                let s = scheduler.clone();
                thread::spawn(move || s.run_worker())
            })
            .collect();
        Workers {
            threads,
            scheduler: scheduler.clone(),
        }
    }

    /// `Scheduler::shutdown`, then joins them all: returns only if every
    /// worker has stopped.
    pub fn stop(self) {
        self.scheduler.shutdown();
        for t in self.threads {
            t.join().unwrap();
        }
    }
}

/// A doorbell: the test's `Wake` (an eventfd in the real IO actor).
/// Rings coalesce; `wait` sleeps until rung, then clears it.
pub struct Bell {
    rung: Mutex<bool>,
    cv: Condvar,
}

impl Bell {
    pub fn new() -> Arc<Self> {
        Arc::new(Bell {
            rung: Mutex::new(false),
            cv: Condvar::new(),
        })
    }

    pub fn wait(&self) {
        let mut rung = self.rung.lock().unwrap();
        while !*rung {
            rung = self.cv.wait(rung).unwrap();
        }
        *rung = false;
    }
}

/// The `Wake` handed to `outbox()`.
pub struct Ring(pub Arc<Bell>);

impl Wake for Ring {
    fn wake(&self) {
        *self.0.rung.lock().unwrap() = true;
        self.0.cv.notify_one();
    }
}

/// An actor whose handler only records each event it is given, in order.
pub struct Recorder<E> {
    pub mailbox: Mailbox<E>,
    pub seen: Log<E>,
}

impl<E: Clone> Recorder<E> {
    pub fn new() -> Self {
        Recorder {
            mailbox: Mailbox::new(),
            seen: Log::new(),
        }
    }
}

impl<E: Clone + Send + 'static> Actor for Recorder<E> {
    type Event = E;

    fn mailbox(&self) -> &Mailbox<E> {
        &self.mailbox
    }

    fn handle(event: E, done: Done<Self>) {
        done.actor().seen.push(event);
    }
}
