//! The IO actor: one `mio::Poll` loop per IO thread, owning its sockets.
//!
//! Each accepted socket belongs to exactly one IO actor for its whole life.
//! The actor plays two roles on it: the [reader](crate::http::reader) (bytes in ->
//! complete requests -> the connection actor's mailbox) and the
//! [writer](crate::io::writer) (responses from workers -> bytes out). It never
//! blocks except in `epoll_wait` and never runs user code.
//!
//! Messages in: [`IoMsg`] through its [`Outbox`](crate::actor::outbox::Outbox), from
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
//!
//! After a `101` the connection speaks WebSocket ([`crate::websocket`]; the
//! IO side of it is in `io/ws.rs`):
//!
//! * frames are decoded by [`codec::Decoder`]; each message, ping and pong
//!   becomes an event in the connection's mailbox; pings are answered here
//!   at once; protocol errors are answered with the matching close code;
//! * when [`WS_HIGH_WATER`] events wait in the mailbox, reading stops
//!   until the workers have drained it below
//!   [`crate::connection::WS_LOW_WATER`] (the worker posts `WsResume`);
//! * every byte queued for the socket is counted in the handle's
//!   `queued` budget until written, so senders see backpressure;
//! * nothing is written after a close frame; a server-initiated close
//!   waits `ws_close_timeout` for the client's close frame;
//! * however the socket ends, exactly one `Close` event is delivered,
//!   as the mailbox's last event.

use crate::actor::outbox::{outbox, Inbox, Outbox};
use crate::app::App;
use crate::connection::{Connection, Event};
use crate::http::reader::{HttpError, Limits, Parsed, Reader};
use crate::http::request::{serialize, Version};
use crate::http::Headers;
use crate::io::writer::Writer;
use crate::websocket::codec;
use crate::websocket::{CloseInfo, WebSocketEvent, WsShared};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token, Waker};
use std::collections::HashMap;
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tungstenite::protocol::frame::coding::{Control, OpCode};

/// Requests of one connection handed out and not yet answered.
pub(crate) const MAX_PIPELINE: usize = 32;
/// Response bytes waiting for a client before its next request is read: a
/// client that pipelines but does not read gets TCP backpressure, and the
/// idle timeout once it stops making progress.
pub(crate) const MAX_WRITE_BACKLOG: usize = 1 << 20;
/// WebSocket events waiting in one mailbox before reading pauses.
pub(crate) const WS_HIGH_WATER: usize = 64;
/// How long a closing connection's input is drained.
const LINGER: Duration = Duration::from_secs(2);
const WAKER: Token = Token(usize::MAX);
const READ_CHUNK: usize = 64 * 1024;

pub(crate) mod acceptor;
mod pipeline;
mod spare;
pub(crate) mod writer;
mod ws;

pub(crate) use pipeline::Bug;
use pipeline::{Answered, Pipeline};
use ws::WsConn;

pub(crate) type IoHandle = Outbox<IoMsg, Waker>;

/// Connections to queue for the workers at the end of the `epoll` batch.
type Ready = Vec<Arc<Connection>>;

/// A message to an IO actor.
pub(crate) enum IoMsg {
    /// A new socket from the acceptor.
    Accept(TcpStream, SocketAddr),
    /// `count` serialised responses (pipelined ones leave together) for
    /// connection `conn`, answering its oldest unanswered requests.
    Response {
        conn: u64,
        bytes: Vec<u8>,
        count: usize,
        close: bool,
    },
    /// The upgrade of `conn` succeeded: write `response` (the 101), then
    /// speak WebSocket.
    Upgrade {
        conn: u64,
        response: Vec<u8>,
        ws: Arc<WsShared>,
    },
    /// An encoded frame for WebSocket `conn` (already counted in its
    /// `queued` budget).
    WsFrame { conn: u64, bytes: Vec<u8> },
    /// Start the closing handshake of WebSocket `conn`.
    WsClose {
        conn: u64,
        code: u16,
        reason: String,
    },
    /// The mailbox of WebSocket `conn` has drained: read again.
    WsResume { conn: u64 },
    /// Server shutdown: read no more requests; close each connection once
    /// its answered requests are written (WebSockets get a 1001 close);
    /// exit when none is left.
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
    spare: spare::Spare,
    dirty: Vec<u64>,
    /// Connections with new events this `epoll` batch, queued for the
    /// workers together at its end (`Scheduler::schedule_all`).
    ready: Vec<Arc<Connection>>,
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
        spare: spare::Spare::default(),
        dirty: Vec::new(),
        ready: Vec::new(),
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
    /// Requests handed to the connection actor and not yet answered, and
    /// where an upgrade waits among them.
    pipeline: Pipeline,
    /// The socket may have unread bytes (edge-triggered: remembered until
    /// a read returns `WouldBlock`).
    read_ready: bool,
    /// The peer shut down its write side.
    peer_eof: bool,
    /// epoll reported the peer's FIN (`EPOLLRDHUP`): read until EOF, since
    /// no further edge will announce it.
    rdhup: bool,
    /// Read no more requests.
    stop_reading: bool,
    /// Close once nothing is pending and everything is written.
    close_when_done: bool,
    /// The final (error) response, owed once nothing is pending.
    deferred: Option<Vec<u8>>,
    /// A `100 Continue` owed once nothing is pending.
    continue_owed: bool,
    /// A response with `Connection: close` has been queued.
    answered_close: bool,
    /// The write side is shut; input is discarded until this instant.
    lingering: Option<Instant>,
    last_activity: Instant,
    head_started: Option<Instant>,
    /// Set once the connection speaks WebSocket.
    ws: Option<Box<WsConn>>,
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
                    if ev.is_read_closed() || ev.is_error() {
                        c.rdhup = true;
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
            self.app.scheduler.schedule_all(&mut self.ready);
            if self.stopping || (self.draining && self.conns.is_empty()) {
                break;
            }
        }
        self.app.scheduler.schedule_all(&mut self.ready);
        for (_, c) in self.conns.drain() {
            close_conn(c, &self.app);
        }
    }

    fn drain_inbox(&mut self) {
        self.inbox.rearm();
        // Connections on which a natron invariant broke: closed after the
        // loop (see `Bug`).
        let mut broken: Vec<(u64, Bug)> = Vec::new();
        while let Some(msg) = self.inbox.try_recv() {
            match msg {
                IoMsg::Accept(stream, addr) => self.accept(stream, addr),
                IoMsg::Response {
                    conn,
                    bytes,
                    count,
                    close,
                } => {
                    if let Some(c) = self.conns.get_mut(&conn) {
                        if c.answered_close {
                            // Nothing is sent after a `Connection: close`
                            // response (RFC 9112 §9.6).
                            continue;
                        }
                        if c.ws.is_some() {
                            // After a 101 only WebSocket goes out.
                            broken.push((conn, Bug("HTTP response after the switch to WebSocket")));
                            continue;
                        }
                        if let Err(bug) = c.pipeline.answered_many(count) {
                            broken.push((conn, bug));
                            continue;
                        }
                        c.writer.push(bytes);
                        c.last_activity = Instant::now();
                        if close {
                            c.stop_reading = true;
                            c.close_when_done = true;
                            // Requests dispatched behind this one are dropped
                            // unanswered (the connection actor skips them).
                            c.answered_close = true;
                            c.pipeline.clear();
                            // So is the error response owed to a bad
                            // request behind it: nothing follows `close`.
                            c.deferred = None;
                        }
                        self.dirty.push(conn);
                    }
                }
                IoMsg::Upgrade { conn, response, ws } => {
                    if let Some(c) = self.conns.get_mut(&conn) {
                        match c.pipeline.answered() {
                            Ok(Answered::Upgrade)
                                if c.ws.is_none() && c.pipeline.pending() == 0 => {}
                            Ok(_) => {
                                broken.push((
                                    conn,
                                    Bug("101 for a request that did not wait for it"),
                                ));
                                continue;
                            }
                            Err(bug) => {
                                broken.push((conn, bug));
                                continue;
                            }
                        }
                        c.writer.push(response);
                        // From here on every byte in the writer is counted.
                        ws.queued
                            .fetch_add(c.writer.queued_bytes(), Ordering::AcqRel);
                        let leftover = c.reader.take_buffered();
                        let now = Instant::now();
                        c.ws = Some(Box::new(WsConn {
                            shared: ws,
                            decoder: codec::Decoder::new(self.app.config.max_message_len, leftover),
                            close_sent: false,
                            close_received: false,
                            failed: false,
                            close_info: None,
                            close_deadline: None,
                            last_read: now,
                            last_ping: now,
                        }));
                        c.last_activity = now;
                        c.read_ready = true;
                        if self.draining {
                            c.ws_close(1001, "server shutting down", &self.app);
                        }
                        self.dirty.push(conn);
                    }
                }
                IoMsg::WsFrame { conn, bytes } => match self.conns.get_mut(&conn) {
                    Some(IoConn {
                        ws: Some(ws),
                        writer,
                        ..
                    }) if !ws.close_sent => {
                        writer.push(bytes);
                        self.dirty.push(conn);
                    }
                    // Posted after the close frame (or the socket is gone):
                    // nothing goes out after a close.
                    Some(IoConn { ws: Some(ws), .. }) => {
                        if let Err(bug) = ws.shared.release_queued(bytes.len()) {
                            broken.push((conn, bug));
                        }
                    }
                    _ => {}
                },
                IoMsg::WsClose { conn, code, reason } => {
                    if let Some(c) = self.conns.get_mut(&conn) {
                        if code == 1008 {
                            slog::warn!(self.app.log, "closing WebSocket"; "code" => code, "reason" => &reason, "remote" => %c.actor.remote);
                        }
                        c.ws_close(code, &reason, &self.app);
                        if c.ws.as_ref().is_some_and(|ws| ws.failed) {
                            // Failing the connection: no need to wait for the
                            // client's close frame (RFC 6455 §7.1.7).
                            c.close_when_done = true;
                        }
                        self.dirty.push(conn);
                    }
                }
                IoMsg::WsResume { conn } => self.dirty.push(conn),
                IoMsg::Drain => {
                    self.draining = true;
                    for (id, c) in self.conns.iter_mut() {
                        if c.ws.is_some() {
                            c.ws_close(1001, "server shutting down", &self.app);
                        } else {
                            c.stop_reading = true;
                            c.close_when_done = true;
                        }
                        self.dirty.push(*id);
                    }
                }
                IoMsg::Stop => self.stopping = true,
            }
        }
        for (id, bug) in broken {
            slog::error!(self.app.log, "closing the connection"; "error" => %bug, "conn" => id);
            self.close(id);
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
                pipeline: Pipeline::default(),
                read_ready: true,
                peer_eof: false,
                rdhup: false,
                stop_reading: draining,
                close_when_done: draining,
                deferred: None,
                continue_owed: false,
                answered_close: false,
                lingering: None,
                last_activity: now,
                head_started: None,
                ws: None,
            },
        );
        self.dirty.push(id);
    }

    fn pump_dirty(&mut self) {
        while let Some(id) = self.dirty.pop() {
            let Some(c) = self.conns.get_mut(&id) else {
                continue;
            };
            // No user code runs here, so a panic is a natron bug: it costs
            // the connection it happened on, not the IO actor's others.
            let scratch = &mut self.scratch;
            let spare = &mut self.spare;
            let ready = &mut self.ready;
            let fate = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                c.pump(&self.app, scratch, spare, ready)
            }))
            .unwrap_or_else(|_| {
                slog::error!(self.app.log, "internal error on a connection; closing it");
                Fate::Close
            });
            if let Fate::Close = fate {
                self.close(id);
            }
        }
    }

    fn close(&mut self, id: u64) {
        if let Some(c) = self.conns.remove(&id) {
            close_conn(c, &self.app);
        }
    }

    /// Applies the timeouts.
    fn sweep(&mut self, now: Instant) {
        let cfg = &self.app.config;
        let mut expired = Vec::new();
        for (id, c) in self.conns.iter_mut() {
            let idle = now.saturating_duration_since(c.last_activity);
            if let Some(ws) = c.ws.as_mut() {
                if c.lingering.is_some_and(|until| now >= until)
                    || ws.close_deadline.is_some_and(|until| now >= until)
                    || (!c.writer.is_empty() && idle > cfg.idle_timeout)
                {
                    expired.push(*id);
                    continue;
                }
                if ws.close_sent {
                    continue;
                }
                if cfg
                    .ws_idle_timeout
                    .is_some_and(|t| now.saturating_duration_since(ws.last_read) > t)
                {
                    c.ws_close(1001, "idle timeout", &self.app);
                    self.dirty.push(*id);
                } else if let Some(every) = cfg.ws_ping_interval {
                    let quiet_since = ws.last_ping.max(ws.last_read);
                    if now.saturating_duration_since(quiet_since) >= every {
                        ws.last_ping = now;
                        c.ws_push(codec::encode(OpCode::Control(Control::Ping), b""));
                        self.dirty.push(*id);
                    }
                }
                continue;
            }
            if let Some(until) = c.lingering {
                if now >= until {
                    expired.push(*id);
                }
            } else if !c.writer.is_empty() {
                if idle > cfg.idle_timeout {
                    slog::debug!(self.app.log, "closing connection: client is not reading");
                    expired.push(*id);
                }
            } else if c.pipeline.pending() == 0 && c.deferred.is_none() {
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
            && !self.pipeline.upgrade_waiting()
            && self.pipeline.pending() < MAX_PIPELINE
            && self.writer.queued_bytes() < MAX_WRITE_BACKLOG
            && self.lingering.is_none()
    }

    /// Does everything the connection's state allows: hand out buffered
    /// requests, read, write, close.
    fn pump(
        &mut self,
        app: &Arc<App>,
        scratch: &mut [u8],
        spare: &mut spare::Spare,
        ready: &mut Ready,
    ) -> Fate {
        if self.lingering.is_some() {
            return self.discard_input(scratch);
        }
        if self.ws.is_some() {
            return self.pump_ws(app, scratch, ready);
        }
        let limits = Limits {
            max_headers_len: app.config.max_headers_len,
            max_body_len: app.config.max_body_len,
        };
        loop {
            while self.can_dispatch() {
                match self.reader.next(&limits) {
                    Ok(Parsed::Request(raw, flags)) => {
                        if let Err(bug) = self.pipeline.dispatched(flags.upgrade) {
                            slog::error!(app.log, "closing the connection"; "error" => %bug);
                            return Fate::Close;
                        }
                        if !raw.keep_alive {
                            self.stop_reading = true;
                        }
                        // The mailbox is sealed only by a WebSocket close,
                        // which never precedes a request.
                        let _ =
                            app.scheduler
                                .deliver_deferred(&self.actor, Event::Request(raw), ready);
                    }
                    Ok(Parsed::Continue) => {
                        if self.pipeline.pending() == 0 {
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
            match self.read_once(scratch) {
                Ok(0) => {}
                Ok(n) => {
                    if self.reader.has_no_buffer() {
                        self.reader.give_buffer(spare.take());
                    }
                    self.reader.extend(&scratch[..n]);
                }
                Err(_) => return Fate::Close,
            }
        }

        if self.pipeline.pending() == 0 {
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
        if self.pipeline.pending() > 0 || self.reader.is_idle() || self.reader.in_body() {
            self.head_started = None;
        } else if self.head_started.is_none() {
            self.head_started = Some(Instant::now());
        }

        if self.writer.is_empty() && self.pipeline.pending() == 0 {
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
        if let Some(buf) = self.reader.take_idle_buffer() {
            spare.give(buf);
        }
        Fate::Keep
    }

    /// Reads once into `scratch` and returns how many bytes arrived: 0 on
    /// EOF (`peer_eof` set), `WouldBlock` (`read_ready` cleared) or EINTR.
    fn read_once(&mut self, scratch: &mut [u8]) -> io::Result<usize> {
        match self.stream.read(scratch) {
            Ok(0) => {
                self.peer_eof = true;
                self.read_ready = false;
                Ok(0)
            }
            Ok(n) => {
                self.last_activity = Instant::now();
                // A short read emptied the socket's receive queue: any byte
                // arriving later raises a new edge (edge-triggered epoll
                // queues an event on every arrival), so the read that would
                // only say `WouldBlock` is skipped: one syscall less per
                // request. Not once the FIN was reported: it raises no
                // further edge, so reading goes on until EOF.
                if n < scratch.len() && !self.rdhup {
                    self.read_ready = false;
                }
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.read_ready = false;
                Ok(0)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e),
        }
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

/// Ends a connection: the socket closes when `c` drops (which also takes
/// it out of the epoll set); a WebSocket gets its one `Close` event.
fn close_conn(c: IoConn, app: &Arc<App>) {
    c.actor.mark_closed();
    if let Some(ws) = c.ws {
        ws.shared.mark_closed();
        let info = ws.close_info.unwrap_or(CloseInfo {
            code: 1006,
            reason: String::new(),
        });
        let _ = app
            .scheduler
            .deliver_last(&c.actor, Event::Ws(WebSocketEvent::Close(info)));
    }
}

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
