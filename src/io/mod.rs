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
//!   then read and discard for up to `linger_timeout` (2 s), so a client still sending
//!   (say, the body we refused with 413) does not turn our close into a
//!   reset that destroys the response before it reads it.
//! * Timeouts: a head must arrive within `header_timeout` of its first
//!   byte (408); an idle keep-alive connection, a body making no progress
//!   or a client not reading our responses are closed after
//!   `idle_timeout`.
//!
//! The per-connection state machine is `io/http.rs` (and its WebSocket
//! half `io/ws.rs`); it sees the socket and the mailbox only through the
//! [`http::Socket`] and [`http::Deliver`] implemented here.
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

use crate::actor::limit::Permit;
use crate::actor::outbox::{outbox, Inbox, Outbox};
use crate::actor::scheduler::Scheduler;
use crate::app::{App, Config};
use crate::connection::{panic_message, Connection, Event};
use crate::http::stream::StreamShared;
use crate::websocket::codec;
use crate::websocket::{CloseInfo, WebSocketEvent, WsShared};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token, Waker};
use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tungstenite::protocol::frame::coding::{Control, OpCode};

/// Requests of one connection handed out and not yet answered.
pub(crate) const MAX_PIPELINE: usize = 32;
/// Response bytes waiting for a client before its next request is read: a
/// client that pipelines but does not read gets TCP backpressure, and the
/// idle timeout once it stops making progress.
pub(crate) const MAX_WRITE_BACKLOG: usize = 1 << 20;
/// WebSocket events waiting in one mailbox before reading pauses.
pub(crate) const WS_HIGH_WATER: usize = 64;
const WAKER: Token = Token(usize::MAX);
const READ_CHUNK: usize = 64 * 1024;

pub(crate) mod acceptor;
#[cfg(any(test, fuzzing))]
mod fake;
#[cfg(any(test, fuzzing))]
pub mod fuzz;
mod http;
pub(crate) mod inproc;
mod pipeline;
mod spare;
mod stream;
pub(crate) mod writer;
mod ws;

use http::{Conn, Deliver, Fate, Socket};
pub(crate) use pipeline::Bug;

pub(crate) type IoHandle = Outbox<IoMsg, Waker>;

/// Connections to queue for the workers at the end of the `epoll` batch.
type Ready = Vec<Arc<Connection>>;

/// A message to an IO actor.
pub(crate) enum IoMsg {
    /// A new socket from the acceptor.
    /// A new socket, with its place in the connection count.
    Accept(TcpStream, SocketAddr, Permit<Waker>),
    /// `count` serialised responses (pipelined ones leave together) for
    /// connection `conn`, answering its oldest unanswered requests.
    Response {
        conn: u64,
        bytes: Vec<u8>,
        count: usize,
        close: bool,
    },
    /// The upgrade of `conn` succeeded: write `response` (the 101), then
    /// speak WebSocket. `actor` gets the `Close` if the socket is already
    /// gone (its handler has seen `Open`).
    Upgrade {
        conn: u64,
        response: Vec<u8>,
        ws: Arc<WsShared>,
        actor: Arc<Connection>,
    },
    /// An encoded frame for WebSocket `conn` (already counted in its
    /// `queued` budget).
    WsFrame { conn: u64, bytes: writer::Chunk },
    /// One published frame for several WebSockets of this IO actor (each
    /// already counted in its `queued` budget): one message per IO actor
    /// and publish, not one per subscriber.
    WsFanout {
        conns: Vec<u64>,
        frame: std::sync::Arc<[u8]>,
    },
    /// The head of a streaming response (`Request::respond_stream`) for
    /// `conn`'s oldest unanswered request, which stays unanswered until
    /// `StreamEnd`; `stream` counts the bytes written from here on.
    StreamHead {
        conn: u64,
        bytes: Vec<u8>,
        stream: Arc<StreamShared>,
    },
    /// Framed body bytes of `conn`'s stream (already counted in its budget).
    StreamChunk { conn: u64, bytes: writer::Chunk },
    /// The end of `conn`'s stream (its last chunk and trailers, if
    /// chunked): the request is answered; `close` after it.
    StreamEnd {
        conn: u64,
        bytes: Vec<u8>,
        close: bool,
    },
    /// `conn`'s stream ended without its end (`abort`, a slow subscriber):
    /// close the connection once what is queued is written.
    StreamAbort { conn: u64 },
    /// Start the closing handshake of WebSocket `conn`.
    WsClose {
        conn: u64,
        code: u16,
        reason: String,
    },
    /// The mailbox of WebSocket `conn` has drained: read again.
    WsResume { conn: u64 },
    /// The handler of `conn`'s streamed request body freed room in its
    /// window, started reading (a `100 Continue` may be owed) or abandoned
    /// the body: feed it again.
    BodyResume { conn: u64 },
    /// Server shutdown: read no more requests; close each connection once
    /// its answered requests are written (WebSockets get a 1001 close);
    /// exit when none is left.
    Drain,
    /// Close every socket now and exit.
    Stop,
}

impl IoMsg {
    /// The connection the message is for, if one.
    fn conn(&self) -> Option<u64> {
        match self {
            IoMsg::Response { conn, .. }
            | IoMsg::Upgrade { conn, .. }
            | IoMsg::WsFrame { conn, .. }
            | IoMsg::WsClose { conn, .. }
            | IoMsg::StreamHead { conn, .. }
            | IoMsg::StreamChunk { conn, .. }
            | IoMsg::StreamEnd { conn, .. }
            | IoMsg::StreamAbort { conn }
            | IoMsg::WsResume { conn }
            | IoMsg::BodyResume { conn } => Some(*conn),
            // A fan-out is for many connections: a panic handling it
            // closes none of them (each frame is pushed on its own).
            IoMsg::Accept(..) | IoMsg::WsFanout { .. } | IoMsg::Drain | IoMsg::Stop => None,
        }
    }

    /// The connection a message is for (not `Accept`, `WsFanout`,
    /// `Drain`, `Stop`).
    fn conn_id(&self) -> u64 {
        self.conn()
            .unwrap_or_else(|| unreachable!("not one connection's message"))
    }
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

/// A socket of the IO actor: its state machine and the actor it feeds.
struct IoConn {
    conn: Conn<TcpStream>,
    actor: Arc<Connection>,
    /// This connection's share of `App::outbound_bytes`.
    accounted: usize,
    /// Its place in the connection count, given back when this drops,
    /// after the socket above has closed (fields drop in order).
    _permit: Permit<Waker>,
}

impl IoConn {
    /// Brings `App::outbound_bytes` up to date with this connection's
    /// writer.
    fn account_outbound(&mut self, total: &AtomicUsize) {
        let now = self.conn.writer.queued_bytes();
        if now > self.accounted {
            total.fetch_add(now - self.accounted, Ordering::Relaxed);
        } else if now < self.accounted {
            total.fetch_sub(self.accounted - now, Ordering::Relaxed);
        }
        self.accounted = now;
    }
}

impl Socket for TcpStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

/// Delivers to a connection actor's mailbox, scheduling it at the end of
/// the `epoll` batch (`Scheduler::deliver_deferred`).
struct ToActor<'a> {
    scheduler: &'a Scheduler<Connection>,
    actor: &'a Arc<Connection>,
    ready: &'a mut Ready,
}

impl Deliver for ToActor<'_> {
    fn deliver(&mut self, event: Event) {
        // Refused only once the mailbox is sealed by the WebSocket's
        // Close, which is made after the connection's last pump.
        let _ = self
            .scheduler
            .deliver_deferred(self.actor, event, self.ready);
    }

    fn queued_events(&self) -> usize {
        self.actor.queued_events()
    }
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
                    c.conn
                        .input
                        .on_event(ev.is_readable(), ev.is_read_closed() || ev.is_error());
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
            let target = msg.conn();
            // No user code runs here either: a panic is a natron bug, and
            // costs the connection the message was for, not the others.
            let handled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                #[cfg(feature = "fault-injection")]
                let _scope = target
                    .and_then(|id| self.conns.get(&id))
                    .map(|c| crate::fault::enter(c.actor.remote));
                fault_point!(IoInbox);
                self.on_msg(msg)
            }));
            match handled {
                Ok(Some((conn, Ok(true)))) => self.dirty.push(conn),
                Ok(Some((_, Ok(false)))) | Ok(None) => {}
                Ok(Some((conn, Err(bug)))) => broken.push((conn, bug)),
                Err(panic) => {
                    slog::error!(self.app.log, "natron bug: panic handling an IO message; closing its connection";
                        "panic" => panic_message(&panic), "conn" => target);
                    if let Some(id) = target {
                        self.close(id);
                    }
                }
            }
        }
        for (id, bug) in broken {
            slog::error!(self.app.log, "closing the connection"; "error" => %bug, "conn" => id);
            self.close(id);
        }
    }

    /// Handles one inbox message; for one addressed to a live connection,
    /// returns it with whether to pump it (or the broken invariant).
    fn on_msg(&mut self, msg: IoMsg) -> Option<(u64, Result<bool, Bug>)> {
        let cfg = &self.app.config;
        let (conn, result) = match msg {
            IoMsg::Accept(stream, addr, permit) => {
                self.accept(stream, addr, permit);
                return None;
            }
            IoMsg::WsFanout { conns, frame } => {
                let mut broken = Vec::new();
                for conn in conns {
                    let Some(c) = self.conns.get_mut(&conn) else {
                        continue;
                    };
                    match c.conn.on_ws_frame(writer::Chunk::Shared(frame.clone())) {
                        Ok(true) => self.dirty.push(conn),
                        Ok(false) => {}
                        Err(bug) => broken.push((conn, bug)),
                    }
                }
                for (conn, bug) in broken {
                    slog::error!(self.app.log, "closing the connection"; "error" => %bug, "conn" => conn);
                    self.close(conn);
                }
                return None;
            }
            IoMsg::Drain => {
                self.draining = true;
                // One connection's panic must not leave the others
                // undrained (and `serve` waiting for its grace period).
                let mut failed = Vec::new();
                for (id, c) in self.conns.iter_mut() {
                    fault_scope!(c.actor.remote);
                    let drained = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        fault_point!(IoInbox);
                        c.conn.drain(cfg);
                    }));
                    match drained {
                        Ok(()) => self.dirty.push(*id),
                        Err(panic) => failed.push((*id, panic)),
                    }
                }
                for (id, panic) in failed {
                    slog::error!(self.app.log, "natron bug: panic draining a connection; closing it";
                        "panic" => panic_message(&panic), "conn" => id);
                    self.close(id);
                }
                return None;
            }
            IoMsg::Stop => {
                self.stopping = true;
                return None;
            }
            msg => {
                let id = msg.conn_id();
                let c = self.conns.get_mut(&id);
                if let (IoMsg::WsClose { code, reason, .. }, Some(c)) = (&msg, &c) {
                    if *code == 1008 {
                        slog::warn!(self.app.log, "closing WebSocket"; "code" => code, "reason" => reason, "remote" => %c.actor.remote);
                    }
                }
                let c = c.map(|c| &mut c.conn);
                (id, apply(c, msg, &self.app, self.draining))
            }
        };
        Some((conn, result))
    }

    fn accept(&mut self, mut stream: TcpStream, addr: SocketAddr, permit: Permit<Waker>) {
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
        let conn = Conn::new(
            stream,
            Instant::now(),
            self.draining,
            self.app.config.linger_timeout,
        );
        self.conns.insert(
            id,
            IoConn {
                conn,
                actor,
                accounted: 0,
                _permit: permit,
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
            fault_scope!(c.actor.remote);
            let app = &self.app;
            let scratch = &mut self.scratch;
            let spare = &mut self.spare;
            let mut out = ToActor {
                scheduler: &app.scheduler,
                actor: &c.actor,
                ready: &mut self.ready,
            };
            let fate = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                c.conn.pump(&app.config, &app.log, scratch, spare, &mut out)
            }))
            .unwrap_or_else(|panic| {
                slog::error!(app.log, "natron bug: panic pumping a connection; closing it";
                    "panic" => panic_message(&panic), "conn" => id);
                Fate::Close
            });
            c.account_outbound(&app.outbound_bytes);
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
        let log = &self.app.log;
        let mut expired = Vec::new();
        for (id, c) in self.conns.iter_mut() {
            fault_scope!(c.actor.remote);
            // A panic here is a natron bug: it costs this connection only.
            let swept = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                fault_point!(IoSweep);
                sweep_one(&mut c.conn, cfg, log, now)
            }))
            .unwrap_or_else(|panic| {
                slog::error!(log, "natron bug: panic in the timeout sweep; closing the connection";
                    "panic" => panic_message(&panic), "conn" => *id);
                Swept::Expired
            });
            match swept {
                Swept::Keep => {}
                Swept::Pump => self.dirty.push(*id),
                Swept::Expired => expired.push(*id),
            }
        }
        for id in expired {
            self.close(id);
        }
        self.pump_dirty();
    }
}

/// What the sweep decided for one connection.
pub(super) enum Swept {
    Keep,
    /// Its state changed (a 408 owed, a WebSocket close or ping queued).
    Pump,
    /// Closed now.
    Expired,
}

/// Applies the timeouts to one connection.
fn sweep_one(c: &mut Conn<TcpStream>, cfg: &Config, log: &slog::Logger, now: Instant) -> Swept {
    let idle = now.saturating_duration_since(c.last_activity);
    let lingered = c.phase.linger_until().is_some_and(|until| now >= until);
    if let Some(ws) = c.ws.as_mut() {
        if lingered
            || ws.phase.deadline().is_some_and(|until| now >= until)
            || (!c.writer.is_empty() && idle > cfg.idle_timeout)
        {
            return Swept::Expired;
        }
        if ws.phase.close_sent() {
            return Swept::Keep;
        }
        if cfg
            .ws_idle_timeout
            .is_some_and(|t| now.saturating_duration_since(ws.last_read) > t)
        {
            c.ws_close(1001, "idle timeout", cfg);
            return Swept::Pump;
        }
        if let Some(every) = cfg.ws_ping_interval {
            let quiet_since = ws.last_ping.max(ws.last_read);
            if now.saturating_duration_since(quiet_since) >= every {
                ws.last_ping = now;
                c.ws_push(codec::encode(OpCode::Control(Control::Ping), b""));
                return Swept::Pump;
            }
        }
        return Swept::Keep;
    }
    if let Some(swept) = c.sweep_stream(cfg, now) {
        return swept;
    }
    if c.body_stalled(idle, cfg.idle_timeout) {
        // A handler waits for body bytes the client does not send: its
        // read errs (`TimedOut`), so no worker is held forever.
        c.body_timed_out();
        return Swept::Pump;
    }
    if c.phase.linger_until().is_some() {
        if lingered {
            return Swept::Expired;
        }
    } else if !c.writer.is_empty() {
        if idle > cfg.idle_timeout {
            slog::debug!(log, "closing connection: client is not reading");
            return Swept::Expired;
        }
    } else if c.pipeline.pending() == 0 && c.phase.may_time_out() {
        let head_late = c
            .head_started
            .is_some_and(|t| now.saturating_duration_since(t) > cfg.header_timeout);
        let body_stalled = c.reader.in_body() && idle > cfg.idle_timeout;
        if head_late || body_stalled {
            c.time_out();
            return Swept::Pump;
        } else if c.reader.is_idle() && idle > cfg.idle_timeout {
            return Swept::Expired;
        }
    }
    Swept::Keep
}

/// Applies a message for one connection to it, or (`None`) to a connection
/// already closed. `Ok(true)`: pump it. Shared with the fuzz driver
/// (`fuzz.rs`), so what it checks is what the IO actor does.
fn apply<S: Socket>(
    c: Option<&mut Conn<S>>,
    msg: IoMsg,
    app: &App,
    draining: bool,
) -> Result<bool, Bug> {
    let cfg = &app.config;
    match (msg, c) {
        (
            IoMsg::Response {
                bytes,
                count,
                close,
                ..
            },
            Some(c),
        ) => c.on_response(bytes, count, close),
        (IoMsg::Upgrade { response, ws, .. }, Some(c)) => {
            c.upgrade(response, ws, cfg, draining).map(|()| {
                app.websockets.fetch_add(1, Ordering::Relaxed);
                true
            })
        }
        (IoMsg::Upgrade { ws, actor, .. }, None) => {
            close_upgraded_late(&ws, &actor, app);
            Ok(false)
        }
        (IoMsg::WsFrame { bytes, .. }, Some(c)) => c.on_ws_frame(bytes),
        (IoMsg::WsClose { code, reason, .. }, Some(c)) => {
            c.on_ws_close(code, &reason, cfg);
            Ok(true)
        }
        (IoMsg::WsResume { .. } | IoMsg::BodyResume { .. }, _) => Ok(true),
        (IoMsg::StreamHead { bytes, stream, .. }, Some(c)) => c.on_stream_head(bytes, stream),
        (IoMsg::StreamHead { stream, .. }, None) => {
            // The socket closed before the head reached it.
            stream.ended_by_io();
            Ok(false)
        }
        (IoMsg::StreamChunk { bytes, .. }, Some(c)) => Ok(c.on_stream_chunk(bytes)),
        (IoMsg::StreamEnd { bytes, close, .. }, Some(c)) => c.on_stream_end(bytes, close),
        (IoMsg::StreamAbort { .. }, Some(c)) => Ok(c.on_stream_abort()),
        (IoMsg::Accept(..) | IoMsg::WsFanout { .. } | IoMsg::Drain | IoMsg::Stop, _) => {
            unreachable!("not one connection's message")
        }
        (_, None) => Ok(false),
    }
}

/// An upgrade posted while its socket closed (say, a reset seen while an
/// earlier response was being written): no `IoConn` is left to deliver the
/// `Close` from `close_conn`, but the handler has seen `Open`, so its one
/// `Close` (1006) is delivered here; the handle refuses every send.
fn close_upgraded_late(ws: &WsShared, actor: &Arc<Connection>, app: &App) {
    ws.mark_closed();
    let _ = app.scheduler.deliver_last(
        actor,
        Event::Ws(WebSocketEvent::Close(crate::websocket::CloseInfo {
            code: 1006,
            reason: String::new(),
        })),
    );
}

/// Ends a connection: the socket closes when `c` drops (which also takes
/// it out of the epoll set); a WebSocket gets its one `Close` event.
fn close_conn(c: IoConn, app: &Arc<App>) {
    app.outbound_bytes.fetch_sub(c.accounted, Ordering::Relaxed);
    if c.conn.ws.is_some() {
        app.websockets.fetch_sub(1, Ordering::Relaxed);
    }
    let upgraded = c.actor.socket_gone();
    if let Some(stream) = &c.conn.streaming {
        stream.shared.ended_by_io();
    }
    let info = match c.conn.ws {
        Some(ws) => {
            ws.shared.mark_closed();
            ws.phase.into_close_info()
        }
        // Upgraded by its handler (Open queued), closed before this actor
        // switched it: the Close is still owed.
        None => match upgraded {
            Some(ws) => {
                ws.shared.mark_closed();
                CloseInfo {
                    code: 1006,
                    reason: String::new(),
                }
            }
            None => return,
        },
    };
    let _ = app
        .scheduler
        .deliver_last(&c.actor, Event::Ws(WebSocketEvent::Close(info)));
}
