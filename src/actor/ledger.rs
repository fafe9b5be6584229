//! A connection's ledger of registrations elsewhere (its pub/sub topics),
//! which ends them all when the connection closes.
//!
//! A WebSocket's subscriptions live in the hub's topic table; the ledger
//! is the connection's reverse index of them, so its close removes exactly
//! its own entries: O(its topics), not O(all topics).
//!
//! Invariant (checked in `models/subscribe_close.rs`): **no registration
//! outlives the close.** Whatever `add` registers is either refused (the
//! ledger is closed) or recorded in the ledger before `close` can take its
//! entries, so `close` ends it. `add` runs the caller's `register` under
//! the ledger's lock, after checking `closed` under the same lock; `close`
//! sets `closed` and takes the entries under it. A check of `closed`
//! outside the lock (then registering) would let a close slip in between
//! and strand a registration for a dead connection: mutant
//! `ledger_check_then_act`.
//!
//! `register` and `unregister` run under the lock, so they must be short
//! and must not call back into the ledger or run user code (the hub's
//! table insert and remove are). Lock order: ledger, then the hub's table;
//! the hub never takes a ledger while it holds its table.

use crate::actor::sync::{lock, Mutex};

/// The connection's registrations, or the fact that it closed.
pub struct Ledger<T> {
    state: Mutex<State<T>>,
}

struct State<T> {
    closed: bool,
    entries: Vec<T>,
}

/// Why `add` refused: the connection has closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

impl<T: PartialEq> Ledger<T> {
    pub fn new() -> Self {
        Ledger {
            state: Mutex::new(State {
                closed: false,
                entries: Vec::new(),
            }),
        }
    }

    /// Records `entry` and runs `register` (the insert elsewhere), unless
    /// the ledger is closed. `Ok(false)`: it was already recorded, and
    /// `register` did not run.
    ///
    /// # Errors
    ///
    /// [`Closed`] once [`Ledger::close`] has run: nothing is registered.
    pub fn add(&self, entry: T, register: impl FnOnce()) -> Result<bool, Closed> {
        #[cfg(natron_mutant = "ledger_check_then_act")]
        {
            // Mutant: checks `closed`, lets go of the lock, then registers
            // and records: a close in between strands the registration.
            if lock(&self.state).closed {
                return Err(Closed);
            }
            register();
            let mut state = lock(&self.state);
            if !state.entries.contains(&entry) {
                state.entries.push(entry);
            }
            return Ok(true);
        }
        #[allow(unreachable_code)]
        {
            let mut state = lock(&self.state);
            if state.closed {
                return Err(Closed);
            }
            if state.entries.contains(&entry) {
                return Ok(false);
            }
            register();
            state.entries.push(entry);
            Ok(true)
        }
    }

    /// Forgets `entry` and runs `unregister`, if it was recorded. Returns
    /// whether it was.
    pub fn remove(&self, entry: &T, unregister: impl FnOnce()) -> bool {
        let mut state = lock(&self.state);
        match state.entries.iter().position(|e| e == entry) {
            Some(i) => {
                state.entries.swap_remove(i);
                unregister();
                true
            }
            None => false,
        }
    }

    /// Whether `entry` is recorded.
    pub fn contains(&self, entry: &T) -> bool {
        lock(&self.state).entries.contains(entry)
    }

    /// A copy of the entries.
    pub fn entries(&self) -> Vec<T>
    where
        T: Clone,
    {
        lock(&self.state).entries.clone()
    }

    /// Closes the ledger and returns every entry, for the caller to end;
    /// every later `add` is refused. The second call returns nothing.
    pub fn close(&self) -> Vec<T> {
        let mut state = lock(&self.state);
        state.closed = true;
        std::mem::take(&mut state.entries)
    }
}

impl<T: PartialEq> Default for Ledger<T> {
    fn default() -> Self {
        Self::new()
    }
}
