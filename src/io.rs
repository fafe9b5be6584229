//! The IO actor: one `mio::Poll` loop per IO thread, owning its sockets.
//!
//! Each accepted socket belongs to exactly one IO actor for its whole life.
//! The actor plays two roles on it: the [reader](crate::reader) (bytes in ->
//! complete requests -> the connection actor's mailbox) and the
//! [writer](crate::writer) (responses from workers -> bytes out). It never
//! blocks except in `epoll_wait` and never runs user code.
//!
//! Messages in: [`IoMsg`] through its [`Outbox`](crate::outbox::Outbox), from
//! the acceptor (new sockets), workers (responses) and `serve` (drain, stop).
//!
//! Bounds and policies:
//!
//! * At most [`MAX_PIPELINE`] requests of one connection are handed out and
//!   unanswered; past that the actor stops reading that socket (TCP
//!   backpressure), so a pipelining client cannot grow the mailbox.
//! * A request with `Connection: upgrade` stops reading until it is
//!   answered, so the bytes behind it stay for the new protocol.
//! * Error responses (400, 413, 431, ...) wait until every earlier request
//!   is answered, then go out last, and the connection closes.
//! * Closing after a response is a *lingering close*: shut the write side,
//!   then read and discard for up to [`LINGER`], so a client still sending
//!   (say, the body we refused with 413) does not turn our close into a
//!   reset that destroys the response before it reads it.
//! * Timeouts: a head must arrive within `header_timeout` of its first
//!   byte (408); an idle keep-alive connection, a body making no progress
//!   or a client not reading our responses are closed after
//!   `idle_timeout`.

use crate::connection::{Connection, Event};
use crate::http::request::{serialize, Version};
use crate::http::Headers;
use crate::outbox::{outbox, Inbox, Outbox};
use crate::reader::{HttpError, Limits, Parsed, Reader};
use crate::server::App;
use crate::writer::Writer;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token, Waker};
use std::collections::HashMap;
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Requests of one connection handed out and not yet answered.
pub(crate) const MAX_PIPELINE: usize = 32;
/// How long a closing connection's input is drained.
const LINGER: Duration = Duration::from_secs(2);
const WAKER: Token = Token(usize::MAX);
const READ_CHUNK: usize = 64 * 1024;

pub(crate) type IoHandle = Outbox<IoMsg, Waker>;

/// A message to an IO actor.
pub(crate) enum IoMsg {
    /// A new socket from the acceptor.
    Accept(TcpStream, SocketAddr),
    /// A serialised response for connection `conn`.
    Response {
        conn: u64,
        bytes: Vec<u8>,
        close: bool,
    },
    /// Server shutdown: read no more requests; close each connection once
    /// its answered requests are written; exit when none is left.
    Drain,
    /// Close every socket now and exit.
    Stop,
}

pub(crate) struct IoActor {
    poll: Poll,
    inbox: Inbox<IoMsg, Waker>,
    handle: IoHandle,
    app: Arc<App>,
    conns: HashMap<u64, IoConn>,
    scratch: Vec<u8>,
    dirty: Vec<u64>,
    draining: bool,
    stopping: bool,
}

/// Creates an IO actor and the handle to post to it.
pub(crate) fn io_actor(app: Arc<App>) -> io::Result<(IoActor, IoHandle)> {
    let poll = Poll::new()?;
    let waker = Waker::new(poll.registry(), WAKER)?;
    let (handle, inbox) = outbox(waker);
    let actor = IoActor {
        poll,
        inbox,
        handle: handle.clone(),
        app,
        conns: HashMap::new(),
        scratch: vec![0; READ_CHUNK],
        dirty: Vec::new(),
        draining: false,
        stopping: false,
    };
    Ok((actor, handle))
}

/// The per-socket state of the IO actor.
struct IoConn {
    stream: TcpStream,
    actor: Arc<Connection>,
    reader: Reader,
    writer: Writer,
    /// Requests handed to the connection actor and not yet answered.
    pending: usize,
    /// The socket may have unread bytes (edge-triggered: remembered until
    /// a read returns `WouldBlock`).
    read_ready: bool,
    /// The peer shut down its write side.
    peer_eof: bool,
    /// Read no more requests.
    stop_reading: bool,
    /// Close once nothing is pending and everything is written.
    close_when_done: bool,
    /// The final (error) response, owed once nothing is pending.
    deferred: Option<Vec<u8>>,
    /// A `100 Continue` owed once nothing is pending.
    continue_owed: bool,
    /// An upgrade request is unanswered.
    upgrade_wait: bool,
    /// The write side is shut; input is discarded until this instant.
    lingering: Option<Instant>,
    last_activity: Instant,
    head_started: Option<Instant>,
}

enum Fate {
    Keep,
    Close,
}

impl IoActor {
    /// Runs the event loop until stopped, or drained and empty.
    pub(crate) fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let sweep = self.app.config.sweep_interval();
        let mut next_sweep = Instant::now() + sweep;
        loop {
            let timeout = next_sweep.saturating_duration_since(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    slog::error!(self.app.log, "poll failed; IO actor exits"; "error" => %e);
                    break;
                }
            }
            for ev in events.iter() {
                if ev.token() == WAKER {
                    self.drain_inbox();
                    continue;
                }
                let id = ev.token().0 as u64;
                if let Some(c) = self.conns.get_mut(&id) {
                    if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                        c.read_ready = true;
                    }
                    self.dirty.push(id);
                }
            }
            self.pump_dirty();
            let now = Instant::now();
            if now >= next_sweep {
                self.sweep(now);
                next_sweep = now + sweep;
            }
            if self.stopping || (self.draining && self.conns.is_empty()) {
                break;
            }
        }
        for (_, c) in self.conns.drain() {
            c.actor.mark_closed();
        }
    }

    fn drain_inbox(&mut self) {
        self.inbox.rearm();
        while let Some(msg) = self.inbox.try_recv() {
            match msg {
                IoMsg::Accept(stream, addr) => self.accept(stream, addr),
                IoMsg::Response { conn, bytes, close } => {
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.pending = c.pending.saturating_sub(1);
                        c.upgrade_wait = false;
                        c.writer.push(bytes);
                        c.last_activity = Instant::now();
                        if close {
                            c.stop_reading = true;
                            c.close_when_done = true;
                        }
                        self.dirty.push(conn);
                    }
                }
                IoMsg::Drain => {
                    self.draining = true;
                    for (id, c) in self.conns.iter_mut() {
                        c.stop_reading = true;
                        c.close_when_done = true;
                        self.dirty.push(*id);
                    }
                }
                IoMsg::Stop => self.stopping = true,
            }
        }
    }

    fn accept(&mut self, mut stream: TcpStream, addr: SocketAddr) {
        let id = self.app.next_conn_id();
        // Both interests once, edge-triggered: no re-registration per write.
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            Token(id as usize),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            slog::warn!(self.app.log, "cannot register socket"; "error" => %e);
            return;
        }
        let actor = Arc::new(Connection::new(
            id,
            addr,
            self.app.clone(),
            self.handle.clone(),
        ));
        let now = Instant::now();
        let draining = self.draining;
        self.conns.insert(
            id,
            IoConn {
                stream,
                actor,
                reader: Reader::new(),
                writer: Writer::default(),
                pending: 0,
                read_ready: true,
                peer_eof: false,
                stop_reading: draining,
                close_when_done: draining,
                deferred: None,
                continue_owed: false,
                upgrade_wait: false,
                lingering: None,
                last_activity: now,
                head_started: None,
            },
        );
        self.dirty.push(id);
    }

    fn pump_dirty(&mut self) {
        while let Some(id) = self.dirty.pop() {
            let fate = match self.conns.get_mut(&id) {
                Some(c) => c.pump(&self.app, &mut self.scratch),
                None => continue,
            };
            if let Fate::Close = fate {
                self.close(id);
            }
        }
    }

    fn close(&mut self, id: u64) {
        if let Some(c) = self.conns.remove(&id) {
            c.actor.mark_closed();
            // Dropping the stream closes the fd, which also removes it from
            // the epoll set.
        }
    }

    /// Applies the timeouts.
    fn sweep(&mut self, now: Instant) {
        let cfg = &self.app.config;
        let mut expired = Vec::new();
        for (id, c) in self.conns.iter_mut() {
            let idle = now.saturating_duration_since(c.last_activity);
            if let Some(until) = c.lingering {
                if now >= until {
                    expired.push(*id);
                }
            } else if !c.writer.is_empty() {
                if idle > cfg.idle_timeout {
                    slog::debug!(self.app.log, "closing connection: client is not reading");
                    expired.push(*id);
                }
            } else if c.pending == 0 && c.deferred.is_none() {
                let head_late = c
                    .head_started
                    .is_some_and(|t| now.saturating_duration_since(t) > cfg.header_timeout);
                let body_stalled = c.reader.in_body() && idle > cfg.idle_timeout;
                if head_late || body_stalled {
                    c.deferred = Some(error_response(HttpError {
                        status: 408,
                        reason: "request not received in time",
                    }));
                    c.stop_reading = true;
                    self.dirty.push(*id);
                } else if c.reader.is_idle() && idle > cfg.idle_timeout {
                    expired.push(*id);
                }
            }
        }
        for id in expired {
            self.close(id);
        }
        self.pump_dirty();
    }
}

impl IoConn {
    fn can_dispatch(&self) -> bool {
        !self.stop_reading
            && !self.upgrade_wait
            && self.pending < MAX_PIPELINE
            && self.lingering.is_none()
    }

    /// Does everything the connection's state allows: hand out buffered
    /// requests, read, write, close.
    fn pump(&mut self, app: &Arc<App>, scratch: &mut [u8]) -> Fate {
        if self.lingering.is_some() {
            return self.discard_input(scratch);
        }
        let limits = Limits {
            max_headers_len: app.config.max_headers_len,
            max_body_len: app.config.max_body_len,
        };
        loop {
            while self.can_dispatch() {
                match self.reader.next(&limits) {
                    Ok(Parsed::Request(raw, flags)) => {
                        self.pending += 1;
                        self.upgrade_wait = flags.upgrade;
                        if !raw.keep_alive {
                            self.stop_reading = true;
                        }
                        // The mailbox is sealed only by a WebSocket close,
                        // which never precedes a request.
                        let _ = app.scheduler.deliver(&self.actor, Event::Request(raw));
                    }
                    Ok(Parsed::Continue) => {
                        if self.pending == 0 {
                            self.writer.push(CONTINUE.to_vec());
                        } else {
                            self.continue_owed = true;
                        }
                    }
                    Ok(Parsed::NeedMore) => break,
                    Err(e) => {
                        slog::debug!(app.log, "bad request"; "status" => e.status, "reason" => e.reason);
                        self.deferred = Some(error_response(e));
                        self.stop_reading = true;
                    }
                }
            }
            if !self.can_dispatch() || self.peer_eof || !self.read_ready {
                break;
            }
            match self.stream.read(scratch) {
                Ok(0) => {
                    self.peer_eof = true;
                    self.read_ready = false;
                }
                Ok(n) => {
                    self.reader.extend(&scratch[..n]);
                    self.last_activity = Instant::now();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.read_ready = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Fate::Close,
            }
        }

        if self.pending == 0 {
            if self.continue_owed {
                self.continue_owed = false;
                if self.reader.in_body() {
                    self.writer.push(CONTINUE.to_vec());
                }
            }
            if let Some(response) = self.deferred.take() {
                self.writer.push(response);
                self.close_when_done = true;
            }
        }

        let before = self.writer.queued_bytes();
        match self.writer.flush(&mut self.stream) {
            Ok(_) => {}
            Err(_) => return Fate::Close,
        }
        if self.writer.queued_bytes() < before {
            self.last_activity = Instant::now();
        }

        // The header clock runs only while the client owes us a head.
        if self.pending > 0 || self.reader.is_idle() || self.reader.in_body() {
            self.head_started = None;
        } else if self.head_started.is_none() {
            self.head_started = Some(Instant::now());
        }

        if self.writer.is_empty() && self.pending == 0 {
            if self.close_when_done {
                if self.peer_eof {
                    return Fate::Close;
                }
                let _ = self.stream.shutdown(Shutdown::Write);
                self.lingering = Some(Instant::now() + LINGER);
                self.reader = Reader::new();
                return self.discard_input(scratch);
            }
            if self.peer_eof {
                // Nothing more can arrive, and everything is answered.
                return Fate::Close;
            }
        }
        self.reader.shrink_if_idle();
        Fate::Keep
    }

    /// Lingering close: read and drop until EOF, an error or `WouldBlock`.
    fn discard_input(&mut self, scratch: &mut [u8]) -> Fate {
        loop {
            match self.stream.read(scratch) {
                Ok(0) => return Fate::Close,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Fate::Keep,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Fate::Close,
            }
        }
    }
}

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The response natron sends for a request it refuses before any handler.
fn error_response(e: HttpError) -> Vec<u8> {
    let headers = Headers::from([("Content-Type", "text/plain; charset=utf-8")]);
    serialize(
        e.status,
        headers,
        e.reason.as_bytes().to_vec(),
        Version::Http11,
        false,
        None,
        true,
    )
}
