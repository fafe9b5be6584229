//! `max_connections`: how many sockets natron holds open at once, and how
//! the acceptor waits when that many are open.
//!
//! Past the limit, new connections **wait in the kernel's listen backlog**
//! (the acceptor stops calling `accept` until a connection closes) rather
//! than being accepted and answered `503`:
//!
//! * refusing costs what is scarce at that moment: a file descriptor per
//!   attempt, an `accept`, a write and a lingering close each, and under a
//!   connect flood the acceptor would spend its time writing 503s;
//! * a 503 cannot be given cleanly to a client that has already sent a
//!   body, or that expects a WebSocket: closing with its bytes unread
//!   resets the connection, and the 503 with it;
//! * the backlog costs natron nothing, loses nothing, and the waiting
//!   clients go on as soon as a connection closes; their connect timeout
//!   bounds the wait. When the backlog itself overflows, the kernel drops
//!   SYNs and clients retry: the standard TCP overload behaviour.
//!
//! Protocol (a Dekker pair, both sides `SeqCst`): the acceptor sets
//! `waiting`, then re-reads `open`; a closing connection decrements
//! `open`, then reads `waiting`. At least one sees the other's write, so
//! the acceptor is never left asleep with room free.

use mio::Waker;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// File descriptors kept back from `RLIMIT_NOFILE` for everything that is
/// not a connection: the listener, epoll and eventfds, the application's
/// own files and sockets. A tenth of the limit, at least 64.
pub(crate) fn default_max_connections() -> usize {
    let limit = open_file_limit().unwrap_or(1024);
    let headroom = (limit / 10).max(64);
    limit.saturating_sub(headroom).max(1)
}

/// The soft `RLIMIT_NOFILE` of this process.
#[allow(unsafe_code)]
fn open_file_limit() -> Option<usize> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` only writes the `rlimit` we pass, which is a
    // valid, exclusively borrowed `libc::rlimit` for the whole call.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) };
    if rc != 0 || rl.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    usize::try_from(rl.rlim_cur).ok()
}

/// The count of open connections against the limit.
pub(crate) struct ConnLimit {
    max: usize,
    open: AtomicUsize,
    /// The acceptor is (about to be) asleep because `open >= max`.
    waiting: AtomicBool,
    /// The acceptor's waker, set once it runs.
    waker: OnceLock<Arc<Waker>>,
}

impl ConnLimit {
    pub(crate) fn new(max: usize) -> Self {
        ConnLimit {
            max: max.max(1),
            open: AtomicUsize::new(0),
            waiting: AtomicBool::new(false),
            waker: OnceLock::new(),
        }
    }

    pub(crate) fn max(&self) -> usize {
        self.max
    }

    pub(crate) fn set_waker(&self, waker: Arc<Waker>) {
        let _ = self.waker.set(waker);
    }

    /// Counts an accepted connection.
    pub(crate) fn opened(&self) {
        self.open.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts a closed connection, waking the acceptor if it waits.
    pub(crate) fn closed(&self) {
        let before = self.open.fetch_sub(1, Ordering::SeqCst);
        debug_assert!(before > 0, "more connections closed than opened");
        if self.waiting.load(Ordering::SeqCst) && self.waiting.swap(false, Ordering::SeqCst) {
            if let Some(w) = self.waker.get() {
                let _ = w.wake();
            }
        }
    }

    /// Whether the acceptor may accept now. When it may not, `waiting` is
    /// set and a later `closed` wakes it.
    pub(crate) fn may_accept(&self) -> bool {
        if self.open.load(Ordering::SeqCst) < self.max {
            return true;
        }
        self.waiting.store(true, Ordering::SeqCst);
        // Re-read after announcing the wait: a close that decremented
        // before it could see `waiting` is seen here.
        if self.open.load(Ordering::SeqCst) < self.max {
            self.waiting.store(false, Ordering::SeqCst);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_gates() {
        let l = ConnLimit::new(2);
        assert!(l.may_accept());
        l.opened();
        l.opened();
        assert!(!l.may_accept());
        assert!(l.waiting.load(Ordering::SeqCst));
        l.closed();
        assert!(!l.waiting.load(Ordering::SeqCst), "a close clears the wait");
        assert!(l.may_accept());
        assert_eq!(l.open.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn default_leaves_headroom() {
        let max = default_max_connections();
        let limit = open_file_limit().unwrap_or(1024);
        assert!(max >= 1 && max < limit, "{max} of {limit}");
    }
}
