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
//! Protocol: one atomic word holds the open count and a `WAITING` bit.
//! The acceptor sets the bit only by a compare-and-swap from the full
//! count it just read; a close decrements and clears the bit in one
//! read-modify-write and wakes the acceptor if the bit was set. Every
//! change is one RMW on one word, so they happen in a single order: a
//! close either comes before the acceptor's CAS (which then fails and
//! re-reads a count with room) or after it (and sees the bit). The
//! acceptor is never left asleep with room free
//! (`models/no_stranded_accept.rs`).

use crate::actor::outbox::Wake;
use crate::actor::sync::{lock, Arc, AtomicUsize, Mutex, Ordering};

/// File descriptors kept back from `RLIMIT_NOFILE` for everything that is
/// not a connection: the listener, epoll and eventfds, the application's
/// own files and sockets. A tenth of the limit, at least 64.
#[cfg(not(loom))]
pub(crate) fn default_max_connections() -> usize {
    let limit = open_file_limit().unwrap_or(1024);
    let headroom = (limit / 10).max(64);
    limit.saturating_sub(headroom).max(1)
}

/// The soft `RLIMIT_NOFILE` of this process.
#[cfg(not(loom))]
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

/// One open connection's place in the count; dropping it is the close.
pub struct Permit<W: Wake> {
    limit: Arc<ConnLimit<W>>,
}

impl<W: Wake> Drop for Permit<W> {
    fn drop(&mut self) {
        self.limit.closed();
    }
}

/// Set in [`ConnLimit::state`] while the acceptor sleeps because the
/// server is full; the rest of the word is the open count.
const WAITING: usize = 1 << (usize::BITS - 1);

/// The count of open connections against the limit. `W` wakes the
/// acceptor (`mio::Waker`; the models' doorbell under loom).
pub struct ConnLimit<W: Wake> {
    max: usize,
    /// Open connections, plus [`WAITING`].
    state: AtomicUsize,
    /// The acceptor's waker, set when it starts. Locked only by a close
    /// that finds the acceptor waiting.
    waker: Mutex<Option<Arc<W>>>,
    /// Times the acceptor began to wait (for `stats()`).
    times_full: AtomicUsize,
}

impl<W: Wake> ConnLimit<W> {
    pub fn new(max: usize) -> Self {
        ConnLimit {
            max: max.clamp(1, WAITING - 1),
            state: AtomicUsize::new(0),
            waker: Mutex::new(None),
            times_full: AtomicUsize::new(0),
        }
    }

    pub fn max(&self) -> usize {
        self.max
    }

    pub fn set_waker(&self, waker: Arc<W>) {
        *lock(&self.waker) = Some(waker);
    }

    /// Drops the waker (its eventfd) once the acceptor is gone, so that a
    /// `ServerHandle` kept after `serve` returns holds no descriptor.
    pub fn clear_waker(&self) {
        *lock(&self.waker) = None;
    }

    /// How many times the acceptor found the count at the limit and
    /// began to wait.
    pub fn times_full(&self) -> usize {
        self.times_full.load(Ordering::Relaxed)
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.state.load(Ordering::Relaxed) & !WAITING
    }

    /// Counts an accepted connection until the returned permit drops:
    /// carried with the socket (in `IoMsg::Accept`, then the IO actor's
    /// connection), so however the socket goes (closed, dropped with an
    /// IO actor that died, refused by `epoll`), its count goes with it.
    /// (An associated function: loom's `Arc` cannot be a receiver.)
    pub fn permit(limit: &Arc<Self>) -> Permit<W> {
        limit.opened();
        Permit {
            limit: limit.clone(),
        }
    }

    /// Counts an accepted connection.
    pub fn opened(&self) {
        self.state.fetch_add(1, Ordering::AcqRel);
    }

    /// Counts a closed connection, waking the acceptor if it waits.
    pub fn closed(&self) {
        let before = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                Some((s & !WAITING).saturating_sub(1))
            })
            .unwrap_or_else(|s| s);
        debug_assert!(before & !WAITING > 0, "more connections closed than opened");
        if before & WAITING != 0 {
            if let Some(w) = lock(&self.waker).as_ref() {
                w.wake();
            }
        }
    }

    /// Whether the acceptor may accept now. When it may not, the
    /// `WAITING` bit is set and the next `closed` wakes it.
    pub fn may_accept(&self) -> bool {
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            if s & !WAITING < self.max {
                return true;
            }
            if s & WAITING != 0 {
                return false; // already announced; a close will wake us
            }
            #[cfg(natron_mutant = "limit_store_not_cas")]
            {
                self.state.store(s | WAITING, Ordering::Release);
                return false;
            }
            #[allow(unreachable_code)]
            match self
                .state
                .compare_exchange(s, s | WAITING, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    self.times_full.fetch_add(1, Ordering::Relaxed);
                    return false;
                }
                // A close (or an accept's count) came in between: look again.
                Err(now) => s = now,
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn counts_and_gates() {
        let l = ConnLimit::<mio::Waker>::new(2);
        assert!(l.may_accept());
        l.opened();
        l.opened();
        assert!(!l.may_accept());
        assert!(l.state.load(Ordering::SeqCst) & WAITING != 0);
        assert!(!l.may_accept(), "still full, still waiting");
        l.closed();
        assert_eq!(l.state.load(Ordering::SeqCst), 1, "a close clears the wait");
        assert!(l.may_accept());
        assert_eq!(l.state.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn default_leaves_headroom() {
        let max = default_max_connections();
        let limit = open_file_limit().unwrap_or(1024);
        assert!(max >= 1 && max < limit, "{max} of {limit}");
    }
}
