//! The in-process exchange behind [`crate::test::TestClient`]: one
//! request's bytes played through the connection state machine
//! (`http.rs`) over a memory socket, to a real connection actor on a real
//! worker pool; the calling thread stands in for the IO actor (it drains
//! the outbox and applies each message with [`apply`], as
//! `IoActor::drain_inbox` does). No socket, no IO thread, and every byte of
//! the answer made exactly as it would be for the wire.

use super::apply;
use super::http::{Conn, Deliver, Fate, Socket};
use crate::actor::outbox::outbox;
use crate::app::App;
use crate::connection::{Connection, Event};
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The request's bytes to read, then nothing more (never EOF: the client
/// stays to read the answer); everything written is kept.
#[derive(Default)]
struct MemSocket {
    input: Vec<u8>,
    read: usize,
    written: Vec<u8>,
}

impl Read for MemSocket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = &self.input[self.read..];
        if left.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = left.len().min(buf.len());
        buf[..n].copy_from_slice(&left[..n]);
        self.read += n;
        Ok(n)
    }
}

impl Write for MemSocket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Socket for MemSocket {
    fn shutdown_write(&self) -> io::Result<()> {
        Ok(())
    }
}

/// Delivers straight to the actor's mailbox (scheduled at once).
struct ToActor<'a> {
    app: &'a App,
    actor: &'a Arc<Connection>,
    delivered: bool,
}

impl Deliver for ToActor<'_> {
    fn deliver(&mut self, event: Event) {
        self.delivered = true;
        let _ = self.app.scheduler.deliver(self.actor, event);
    }
    fn queued_events(&self) -> usize {
        self.actor.queued_events()
    }
}

/// Why an exchange gave no whole response.
#[derive(Debug)]
pub(crate) enum ExchangeError {
    /// Nothing complete within the timeout; what had been written.
    Timeout(Vec<u8>),
    /// The handler upgraded to a WebSocket, which an exchange cannot speak.
    Upgraded,
    /// epoll or eventfd could not be made.
    Io(io::Error),
}

/// Plays `request` (one whole HTTP/1.1 request) through `app` and returns
/// the bytes written in answer, once the request is answered and every
/// byte of the answer (a stream's to its end) is written, or the
/// connection closes.
pub(crate) fn exchange(
    app: &Arc<App>,
    request: Vec<u8>,
    timeout: Duration,
) -> Result<Vec<u8>, ExchangeError> {
    let mut poll = mio::Poll::new().map_err(ExchangeError::Io)?;
    let waker = mio::Waker::new(poll.registry(), mio::Token(0)).map_err(ExchangeError::Io)?;
    let (io, inbox) = outbox(waker);
    let actor = Arc::new(Connection::new(
        app.next_conn_id(),
        ([127, 0, 0, 1], 0).into(),
        app.clone(),
        io,
    ));
    let socket = MemSocket {
        input: request,
        ..MemSocket::default()
    };
    let cfg = &app.config;
    let mut conn = Conn::new(socket, Instant::now(), false, cfg.linger_timeout);
    let mut scratch = vec![0; super::READ_CHUNK];
    let mut spare = super::spare::Spare::default();
    let mut out = ToActor {
        app,
        actor: &actor,
        delivered: false,
    };
    let mut events = mio::Events::with_capacity(4);
    let deadline = crate::app::deadline_after(timeout);
    conn.input.on_event(true, false);
    let result = loop {
        let fate = conn.pump(cfg, &app.log, &mut scratch, &mut spare, &mut out);
        if conn.ws.is_some() {
            break Err(ExchangeError::Upgraded);
        }
        // Answered: by the handler (the request was delivered), or by
        // natron itself (a refusal: 400, 413, ... then a lingering close).
        let answered = (out.delivered || !conn.stream.written.is_empty())
            && conn.pipeline.pending() == 0
            && conn.streaming.is_none()
            && conn.writer.queued_bytes() == 0;
        if fate == Fate::Close || answered {
            break Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break Err(ExchangeError::Timeout(Vec::new()));
        }
        if let Err(e) = poll.poll(&mut events, Some(left)) {
            if e.kind() != io::ErrorKind::Interrupted {
                break Err(ExchangeError::Io(e));
            }
        }
        inbox.rearm();
        while let Some(msg) = inbox.try_recv() {
            // A `Bug` (a natron invariant broken) closes the exchange as
            // it would the connection; what was written is returned.
            let _ = apply(Some(&mut conn), msg, app, false);
        }
    };
    // `close_conn`: a stream still open is told its socket is gone, and
    // the actor answers no more.
    actor.socket_gone();
    if let Some(s) = &conn.streaming {
        s.shared.ended_by_io();
    }
    let written = std::mem::take(&mut conn.stream.written);
    match result {
        Ok(()) => Ok(written),
        Err(ExchangeError::Timeout(_)) => Err(ExchangeError::Timeout(written)),
        Err(e) => Err(e),
    }
}
