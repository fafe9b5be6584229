//! The worker pool: the threads that run handlers, elastic between
//! `worker_threads` (the base, always running) and `max_worker_threads`.
//!
//! A blocking handler holds its worker, so a fixed pool caps a server at
//! `workers / handler time` (20 workers and a 10 ms handler: 2,000 req/s).
//! Here a monitor thread (`natron-pool`) sleeps until a push finds every
//! worker busy (the run queue signals it, at most once per episode), then
//! checks every [`GROW_AFTER`] while jobs stay backed up: once the oldest
//! waiting job has waited that long, it starts one worker per waiting job,
//! up to `max_worker_threads`. Reaching the maximum is logged once per
//! episode. Workers above the base retire after [`RETIRE_AFTER`] parked
//! without a job (the coldest first: the idle stack is LIFO).
//!
//! Shutdown ([`Pool::shutdown`]): the run queue's shutdown wakes every
//! worker, each leaves once the queue is empty, and the monitor starts no
//! more; a worker it started meanwhile leaves the same way (nothing counts
//! Stops, `models/shutdown.rs`). Workers whose handlers outlive the grace
//! are left detached and logged: natron cannot interrupt user code.

use crate::app::App;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long the oldest job waits, with every worker busy, before the pool
/// grows.
pub(crate) const GROW_AFTER: Duration = Duration::from_millis(2);
/// How long a worker above the base count stays parked before it retires.
pub(crate) const RETIRE_AFTER: Duration = Duration::from_secs(10);
/// How often shutdown looks for finished workers between exit messages.
const EXIT_TICK: Duration = Duration::from_millis(5);

pub(crate) struct Pool {
    shared: Arc<Shared>,
    monitor: Option<JoinHandle<()>>,
    exits: mpsc::Receiver<()>,
    stopped: bool,
}

/// A pool dropped without [`Pool::shutdown`] (`serve` failing after it
/// started) stops its threads rather than leave them parked forever.
impl Drop for Pool {
    fn drop(&mut self) {
        self.stop(Instant::now());
    }
}

struct Shared {
    app: Arc<App>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    next_name: AtomicUsize,
    exit_tx: Mutex<mpsc::Sender<()>>,
}

impl Pool {
    /// Starts the base workers and the monitor.
    ///
    /// # Errors
    ///
    /// A thread could not be spawned (the workers already started are
    /// stopped first).
    pub(crate) fn start(app: Arc<App>) -> io::Result<Pool> {
        let (exit_tx, exits) = mpsc::channel();
        let shared = Arc::new(Shared {
            app: app.clone(),
            threads: Mutex::new(Vec::new()),
            next_name: AtomicUsize::new(0),
            exit_tx: Mutex::new(exit_tx),
        });
        app.scheduler.set_base_workers(app.config.worker_threads);
        let mut pool = Pool {
            shared: shared.clone(),
            monitor: None,
            exits,
            stopped: false,
        };
        for _ in 0..app.config.worker_threads {
            // On an error, dropping `pool` stops what started.
            shared.spawn_worker()?;
        }
        if app.config.max_worker_threads > app.config.worker_threads {
            let monitor = thread::Builder::new()
                .name("natron-pool".into())
                .spawn(move || shared.monitor());
            match monitor {
                Ok(m) => pool.monitor = Some(m),
                Err(e) => return Err(e),
            }
        }
        Ok(pool)
    }

    /// Stops every worker once the run queue is empty (call it once no
    /// mailbox is active) and waits for them until `deadline` (at least
    /// 100 ms from now); workers still running a handler then are left
    /// detached and logged.
    pub(crate) fn shutdown(mut self, deadline: Instant) {
        self.stop(deadline);
    }

    fn stop(&mut self, deadline: Instant) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let app = self.shared.app.clone();
        app.scheduler.shutdown();
        if let Some(m) = self.monitor.take() {
            let _ = m.join();
        }
        let deadline = deadline.max(Instant::now() + Duration::from_millis(100));
        loop {
            let left = {
                let mut threads = self.shared.lock_threads();
                join_finished(&mut threads);
                threads.len()
            };
            if left == 0 {
                break;
            }
            let wait = deadline.saturating_duration_since(Instant::now());
            if wait.is_zero() {
                slog::error!(app.log, "handlers still running after the shutdown grace; leaving their workers detached";
                    "stuck" => left);
                self.shared.lock_threads().clear();
                break;
            }
            // A worker says it leaves a moment before its thread is
            // finished, so the message is only a hint: look again after
            // it or after a short tick, never wait on the message alone.
            let _ = self.exits.recv_timeout(wait.min(EXIT_TICK));
        }
    }
}

impl Shared {
    fn lock_threads(&self) -> std::sync::MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.threads.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts one worker (counted before its thread exists).
    fn spawn_worker(self: &Arc<Self>) -> io::Result<()> {
        let scheduler = &self.app.scheduler;
        scheduler.join_worker();
        let n = self.next_name.fetch_add(1, Ordering::Relaxed);
        let base = self.app.config.worker_threads;
        let app = self.app.clone();
        let exit = self
            .exit_tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let spawned = thread::Builder::new()
            .name(format!("natron-worker-{n}"))
            .spawn(move || {
                // Base workers never retire; extra ones may.
                let idle_timeout = (n >= base).then_some(RETIRE_AFTER);
                // Handler panics are caught around each handler; this loop
                // only guards against a bug in natron itself.
                while std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    app.scheduler.run_registered_worker(idle_timeout)
                }))
                .is_err()
                {
                    slog::error!(app.log, "worker recovered from an internal panic");
                }
                let _ = exit.send(());
            });
        match spawned {
            Ok(t) => {
                self.lock_threads().push(t);
                Ok(())
            }
            Err(e) => {
                scheduler.abandon_worker();
                Err(e)
            }
        }
    }

    /// The monitor's loop: sleep until saturated, then grow while backed up.
    fn monitor(self: Arc<Self>) {
        let app = self.app.clone();
        let max = app.config.max_worker_threads;
        while !app.scheduler.is_stopping() {
            if !app.scheduler.wait_saturated(Duration::from_secs(1)) {
                join_finished(&mut self.lock_threads());
                continue;
            }
            let mut told_max = false;
            while !app.scheduler.is_stopping() {
                let Some(backlog) = app.scheduler.backlog() else {
                    break;
                };
                if backlog.oldest >= GROW_AFTER {
                    let room = max.saturating_sub(backlog.workers);
                    if room == 0 && !told_max {
                        slog::warn!(app.log, "worker pool at its maximum; requests are waiting for a worker";
                            "max_worker_threads" => max, "waiting" => backlog.waiting);
                        told_max = true;
                    }
                    for _ in 0..backlog.waiting.min(room) {
                        if let Err(e) = self.spawn_worker() {
                            slog::error!(app.log, "cannot start a worker"; "error" => %e);
                            break;
                        }
                    }
                }
                thread::sleep(GROW_AFTER);
            }
        }
    }
}

fn join_finished(threads: &mut Vec<JoinHandle<()>>) {
    let mut i = 0;
    while i < threads.len() {
        if threads[i].is_finished() {
            let _ = threads.swap_remove(i).join();
        } else {
            i += 1;
        }
    }
}
