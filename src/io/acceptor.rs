//! The acceptor actor: owns the listening sockets (one, or one per address
//! family for `localhost`), accepts connections and deals them round-robin
//! to the IO actors.
//!
//! It runs on the thread that called `serve`. It never blocks except in
//! `epoll_wait`; `close()` wakes it through its `Waker`. When the process
//! is out of file descriptors, `accept` fails with `EMFILE`; the pending
//! connections stay in the kernel backlog and the acceptor retries every
//! 100 ms instead of spinning. With `max_connections` open, it stops
//! accepting until one closes (`actor/limit.rs` says why and how).

use crate::actor::limit::ConnLimit;
use crate::io::{IoHandle, IoMsg};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) const WAKER: Token = Token(0);
/// Listener `i` is registered as `Token(FIRST_LISTENER + i)`.
const FIRST_LISTENER: usize = 1;
const EMFILE_BACKOFF: Duration = Duration::from_millis(100);
/// Accepts from one listener before the next gets its turn.
const BURST: usize = 64;
/// Reaching `max_connections` is logged at most this often.
const FULL_LOG_EVERY: Duration = Duration::from_secs(10);

pub(crate) struct Acceptor<'a> {
    pub(crate) poll: Poll,
    pub(crate) listeners: Vec<TcpListener>,
    pub(crate) ios: Vec<IoHandle>,
    pub(crate) stop: &'a AtomicBool,
    pub(crate) limit: &'a Arc<ConnLimit<mio::Waker>>,
    pub(crate) log: slog::Logger,
}

impl Acceptor<'_> {
    /// Accepts until `stop` is set (and the waker fires).
    pub(crate) fn run(mut self) -> io::Result<()> {
        for (i, l) in self.listeners.iter_mut().enumerate() {
            self.poll
                .registry()
                .register(l, Token(FIRST_LISTENER + i), Interest::READABLE)?;
        }
        let mut events = Events::with_capacity(64);
        let mut next = 0usize;
        let mut backoff = false;
        // When the limit was last logged, and the waits since then.
        let mut logged_full: Option<Instant> = None;
        let mut full = false;
        let mut unlogged_waits = 0u64;
        while !self.stop.load(Ordering::Acquire) {
            let timeout = backoff.then_some(EMFILE_BACKOFF);
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            backoff = false;
            // Every listener is drained to `WouldBlock` on every wake-up
            // (they are edge-triggered, and there are one or two): a
            // wake-up by the limit's waker names no listener.
            // Round robin, at most `BURST` accepts from one listener in a
            // row, so a flood on one address (127.0.0.1) cannot keep the
            // other (::1) waiting; done when every one says `WouldBlock`.
            let count = self.listeners.len();
            let mut drained = vec![false; count];
            let mut left = count;
            let (mut listener, mut in_a_row) = (0, 0);
            // Checked before every accept: once `close()` has begun,
            // what waits in the backlog is reset with the listener, never
            // accepted (the `close()` contract).
            while left > 0 && !self.stop.load(Ordering::Acquire) {
                if drained[listener] || in_a_row >= BURST {
                    listener = (listener + 1) % count;
                    in_a_row = 0;
                    continue;
                }
                if !self.limit.may_accept() {
                    // Sleep in `poll` until a close wakes us (or `close()`);
                    // a new connection's edge wakes us once, not in a loop.
                    if !full {
                        full = true;
                        if logged_full.is_none_or(|t| t.elapsed() >= FULL_LOG_EVERY) {
                            slog::warn!(self.log, "max_connections reached; new connections wait in the listen backlog";
                                "max_connections" => self.limit.max(), "waits_since_last_log" => unlogged_waits);
                            logged_full = Some(Instant::now());
                            unlogged_waits = 0;
                        } else {
                            unlogged_waits += 1;
                        }
                    }
                    break;
                }
                full = false;
                match self.listeners[listener].accept() {
                    Ok((stream, addr)) => {
                        // Responses and frames leave in one write each;
                        // Nagle would only add latency.
                        let _ = stream.set_nodelay(true);
                        let permit = ConnLimit::permit(self.limit);
                        self.ios[next].post(IoMsg::Accept(stream, addr, permit));
                        next = (next + 1) % self.ios.len();
                        in_a_row += 1;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        drained[listener] = true;
                        left -= 1;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if matches!(e.raw_os_error(), Some(libc_emfile) if is_resource_exhaustion(libc_emfile)) =>
                    {
                        slog::warn!(self.log, "accept failed: out of resources, backing off"; "error" => %e);
                        backoff = true;
                        break;
                    }
                    // A connection reset before accept, and the like: its
                    // own problem, not the listener's.
                    Err(e) => {
                        slog::debug!(self.log, "accept failed"; "error" => %e);
                    }
                }
            }
        }
        Ok(())
    }
}

/// EMFILE, ENFILE, ENOBUFS, ENOMEM (Linux numbering).
fn is_resource_exhaustion(errno: i32) -> bool {
    matches!(errno, 24 | 23 | 105 | 12)
}
