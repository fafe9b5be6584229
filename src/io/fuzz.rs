//! The fuzz driver of one connection's state machine (`--cfg fuzzing`
//! only): a script of socket events, connection-actor posts and IO-actor
//! decisions is decoded from the fuzz input and played against a
//! [`Conn`] over the scripted socket of `fake.rs`, and the invariants
//! are checked on what the socket received and what was delivered.
//!
//! The driver posts only what the real connection actor could post
//! (`connection.rs`, `http/request.rs`, `websocket/`): answers in request
//! order, held while more events wait, closing ones marking the connection
//! closed; an upgrade only for a request that passes the handshake check;
//! frames and closes through a real [`WebSocket`] handle and its outbox.
//! The one input beyond that is a response posted after a `Connection:
//! close` answer, which `Conn::on_response` documents as dropped. So any
//! [`Bug`](super::Bug) is a failure.
//!
//! [`run_stream_script`] plays the same scripts with every request body
//! streamed (`ServerBuilder::stream_request_bodies`): the modelled handler
//! reads its window over several steps, asks for `100 Continue`, abandons
//! the body or answers early, as `http/body.rs` lets a real one.

use super::fake::{Harness, Step};
use super::http::Fate;
use super::{apply, IoHandle, IoMsg, MAX_PIPELINE, MAX_WRITE_BACKLOG};
use crate::actor::outbox::{outbox, Inbox};
use crate::app::App;
use crate::connection::{Connection, Event, WS_LOW_WATER};
use crate::http::body::{BodyShared, BodyStream};
use crate::websocket::upgrade::validate_head;
use crate::websocket::{Message, WebSocket, WebSocketEvent, WsShared};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Request and frame fragments the script sends (chosen by index).
const FRAGMENTS: &[&[u8]] = &[
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /c HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n",
    b"abc",
    b"GET /old HTTP/1.0\r\n\r\n",
    b"GET /ka HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    UPGRADE,
    b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: short==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    b"GE(T / HTTP/1.1\r\n\r\n",
    b"GET /h HTTP/1.1\r\n",
    b"Host: a\r\n\r\n",
    // Masked client frames (mask 1 2 3 4): text "hi", binary [1,2],
    // ping "p", pong "q", close 1000 "bye", close without payload.
    b"\x81\x82\x01\x02\x03\x04\x69\x6b",
    b"\x82\x82\x01\x02\x03\x04\x00\x00",
    b"\x89\x81\x01\x02\x03\x04\x71",
    b"\x8a\x81\x01\x02\x03\x04\x70",
    b"\x88\x85\x01\x02\x03\x04\x02\xea\x61\x7d\x64",
    b"\x88\x80\x01\x02\x03\x04",
    // Fragmented text "a", then its final continuation "b".
    b"\x01\x81\x01\x02\x03\x04\x60",
    b"\x80\x81\x01\x02\x03\x04\x63",
    // Unmasked (1002), invalid UTF-8 (1007), too long (1009).
    b"\x81\x02hi",
    b"\x81\x81\x01\x02\x03\x04\xfe",
    b"\x82\xff\x01\x02\x03\x04\x05\x06\x07\x08\x01\x02\x03\x04",
    // The first half of a frame.
    b"\x81\x82\x01",
    b"\r\n",
    b"GET /h2 HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
    b"GET /wsc HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade, close\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    b"POST /c HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
];

const UPGRADE: &[u8] = b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// A slog drain that fails the run on any error record: the state
/// machine logs a [`Bug`](super::Bug) at that level.
struct PanicOnError;

impl slog::Drain for PanicOnError {
    type Ok = ();
    type Err = slog::Never;
    fn log(&self, record: &slog::Record, _: &slog::OwnedKVList) -> Result<(), slog::Never> {
        if record.level().is_at_least(slog::Level::Error) {
            panic!("state machine logged an error: {}", record.msg());
        }
        Ok(())
    }
}

/// The fuzz input, read one byte at a time.
struct Script<'a>(&'a [u8]);

impl Script<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
}

/// The connection actor, as far as the IO side can tell.
#[derive(Default)]
struct Actor {
    /// Keep-alive responses held while more events wait (`Held`).
    held: Vec<u8>,
    held_count: usize,
    /// `Connection::mark_closed`: a close answer was posted.
    closed: bool,
    /// Requests seen so far (the number in each answer's body).
    requests: usize,
    ws: Option<WebSocket>,
    /// A streamed request whose handler runs (reading its body over
    /// several steps): its number, window and keep-alive.
    reading: Option<(usize, Arc<BodyShared>, bool)>,
}

struct Driver {
    h: Harness,
    app: Arc<App>,
    /// The connection actor's real half, for `close_upgraded_late`.
    conn_actor: Arc<Connection>,
    actor: Actor,
    io: IoHandle,
    inbox: Inbox<IoMsg, mio::Waker>,
    /// `IoMsg::Drain` was processed (upgrades then close at once).
    draining: bool,
    /// Frame bytes posted by the handle, not yet taken from the inbox.
    in_flight: usize,
    /// The socket was closed (`Fate::Close` or an expiry).
    gone: bool,
    /// `Close` events delivered.
    close_events: usize,
}

/// Plays `ops` against one connection and panics if an invariant breaks.
pub fn run_script(ops: &[u8]) {
    play(ops, false);
}

/// [`run_script`] with every request body streamed.
pub fn run_stream_script(ops: &[u8]) {
    play(ops, true);
}

fn play(ops: &[u8], stream: bool) {
    let poll = mio::Poll::new().expect("epoll");
    let waker = mio::Waker::new(poll.registry(), mio::Token(0)).expect("eventfd");
    let (io, inbox) = outbox(waker);
    let log = slog::Logger::root(PanicOnError, slog::o!());
    let mut h = Harness::with_log(Vec::new(), log);
    let server = crate::Server::builder()
        .max_message_len(256)
        .max_outbound_len(512)
        .stream_request_bodies(stream)
        .build();
    let app = server.app().clone();
    h.cfg = app.config.clone();
    let conn_actor = Arc::new(Connection::new(
        0,
        ([127, 0, 0, 1], 1).into(),
        app.clone(),
        io.clone(),
    ));
    let mut d = Driver {
        h,
        app,
        conn_actor,
        actor: Actor::default(),
        io,
        inbox,
        draining: false,
        in_flight: 0,
        gone: false,
        close_events: 0,
    };
    let mut script = Script(ops);
    while !d.gone {
        let Some(op) = script.byte() else { break };
        d.step(op, &mut script);
        d.check_counters();
    }
    // Whatever is still posted reaches the IO actor, socket or not.
    d.process_inbox();
    d.check_counters();
    d.check_output();
    d.check_events();
}

impl Driver {
    fn step(&mut self, op: u8, s: &mut Script) {
        match op % 19 {
            0 => {
                let f = FRAGMENTS[s.byte().unwrap_or(0) as usize % FRAGMENTS.len()];
                self.arrive(f.to_vec());
            }
            1 => {
                let n = s.byte().unwrap_or(0) as usize % 48 + 1;
                let bytes: Vec<u8> = (0..n).map_while(|_| s.byte()).collect();
                self.arrive(bytes);
            }
            2 => {
                // Pipelined: several fragments in one read.
                let k = s.byte().unwrap_or(0) as usize % 3 + 2;
                let mut bytes = Vec::new();
                for _ in 0..k {
                    let i = s.byte().unwrap_or(0) as usize % FRAGMENTS.len();
                    bytes.extend_from_slice(FRAGMENTS[i]);
                }
                self.arrive(bytes);
            }
            3 => self.h.conn.stream.script.push_back(Step::Block),
            4 => {
                self.h.conn.stream.script.push_back(Step::Eof);
                self.h.conn.input.on_event(true, true);
                self.pump();
            }
            5 => {
                let b = s.byte().unwrap_or(0);
                self.h.conn.stream.per_write = (b & 0x0f) as usize;
                self.h.conn.stream.block_after_write = b & 0x10 != 0;
            }
            6 => {
                // A writable edge.
                self.h.conn.input.on_event(false, false);
                self.pump();
            }
            7 => {
                let arg = s.byte().unwrap_or(0);
                self.actor_handles_next(arg);
            }
            8 => {
                let arg = s.byte().unwrap_or(0);
                self.ws_send(arg);
            }
            9 => {
                let arg = s.byte().unwrap_or(0);
                if let Some(ws) = &self.actor.ws {
                    let _ = ws.close(1000 + u16::from(arg % 4), "bye");
                }
            }
            10 => self.process_inbox(),
            11 => {
                // `IoMsg::Drain`; responses made from here on say close
                // (`App::is_draining`).
                self.draining = true;
                let cfg = self.h.cfg.clone();
                self.h.conn.drain(&cfg);
                self.pump();
            }
            12 => {
                let arg = s.byte().unwrap_or(0);
                self.sweep(arg);
            }
            13 => {
                // A response posted after a close answer: on_response's
                // contract says it is dropped.
                if self.actor.closed && self.actor.ws.is_none() {
                    self.io.post(IoMsg::Response {
                        conn: 0,
                        bytes: b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate".to_vec(),
                        count: 1,
                        close: false,
                    });
                }
            }
            14 => {
                // The FIN reported without data.
                self.h.conn.input.on_event(false, true);
                self.pump();
            }
            15 => {
                let n = s.byte().unwrap_or(0) as usize % 8 + 1;
                let f = FRAGMENTS[s.byte().unwrap_or(0) as usize % FRAGMENTS.len()];
                // A fragment split into reads of n bytes, all queued at once.
                for chunk in f.chunks(n) {
                    self.h
                        .conn
                        .stream
                        .script
                        .push_back(Step::Data(chunk.to_vec()));
                }
                self.h.conn.input.on_event(true, false);
                self.pump();
            }
            16 => {
                // A readable edge with nothing new (spurious wake-up).
                self.h.conn.input.on_event(true, false);
                self.pump();
            }
            17 => {
                // The peer resets: reads fail, then writes.
                self.h.conn.stream.script.push_back(Step::Reset);
                self.h.conn.stream.broken = true;
                self.h.conn.input.on_event(true, true);
                self.pump();
            }
            _ => {
                // A write fails (say, EPIPE) while reads still work.
                self.h.conn.stream.broken = true;
                self.pump();
            }
        }
    }

    fn arrive(&mut self, bytes: Vec<u8>) {
        self.h.conn.stream.script.push_back(Step::Data(bytes));
        self.h.conn.input.on_event(true, false);
        self.pump();
    }

    fn pump(&mut self) {
        if self.gone {
            return;
        }
        if self.h.pump() == Fate::Close {
            self.close();
        }
    }

    /// `io/mod.rs::close_conn`: the socket is dropped, a WebSocket gets
    /// its one `Close`.
    fn close(&mut self) {
        self.gone = true;
        if let Some(ws) = self.h.conn.ws.take() {
            ws.shared.mark_closed();
            self.close_events += 1;
            let info = ws.phase.into_close_info();
            self.h
                .sink
                .events
                .push(Event::Ws(WebSocketEvent::Close(info)));
        }
    }

    /// The connection actor runs the next event of its mailbox.
    fn actor_handles_next(&mut self, arg: u8) {
        if self.actor.reading.is_some() {
            // One handler in flight: it goes on with its body.
            self.handler_reads(arg);
            return;
        }
        let Some(event) = self.h.sink.events.get(self.h.sink.handled) else {
            return;
        };
        self.h.sink.handled += 1;
        let waiting = self.h.sink.events.len() > self.h.sink.handled;
        match event {
            Event::Request(raw) => {
                let n = self.actor.requests;
                self.actor.requests += 1;
                if self.actor.closed {
                    return;
                }
                let upgrade = arg & 2 != 0
                    && validate_head(&raw.method, raw.version, &raw.headers).is_ok()
                    && self.actor.ws.is_none();
                if upgrade {
                    self.upgrade();
                    return;
                }
                if let Some(shared) = raw.body_stream.clone() {
                    let keep_alive = raw.keep_alive;
                    // `Connection::handle`: held answers go out before a
                    // streamed request's handler runs.
                    self.flush_held();
                    self.actor.reading = Some((n, shared, keep_alive));
                    self.handler_reads(arg);
                    return;
                }
                let close = arg & 1 != 0 || !raw.keep_alive || self.draining;
                let pad = ".".repeat((arg >> 4) as usize * 97);
                let body = format!("@{n}{pad}");
                let bytes = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n{}\r\n{body}",
                    body.len(),
                    if close { "Connection: close\r\n" } else { "" }
                );
                self.respond(bytes.into_bytes(), close, waiting);
            }
            Event::WsFail { code, reason } => {
                let (code, reason) = (*code, *reason);
                if let Some(ws) = &self.actor.ws {
                    ws.shared.begin_close();
                }
                self.io.post(IoMsg::WsClose {
                    conn: 0,
                    code,
                    reason: reason.to_owned(),
                });
            }
            Event::Ws(WebSocketEvent::Message(m)) => {
                let echo = match m {
                    Message::Text(t) => Some(Message::Text(t.clone())),
                    Message::Binary(b) => Some(Message::Binary(b.clone())),
                    _ => None,
                };
                if let (Some(ws), Some(m), true) = (&self.actor.ws, echo, arg & 1 != 0) {
                    let before = ws.shared.queued.load(Ordering::Acquire);
                    if ws.send(m).is_ok() {
                        self.in_flight += ws.shared.queued.load(Ordering::Acquire) - before;
                    }
                }
                self.resume_if_drained();
            }
            Event::Ws(_) => self.resume_if_drained(),
            // Jobs go to a stream's own actor, never to the connection's.
            Event::Job(_) => unreachable!("a job in a connection's mailbox"),
        }
    }

    /// `Responder::send` then `Connection::send_response`.
    fn respond(&mut self, bytes: Vec<u8>, close: bool, waiting: bool) {
        let a = &mut self.actor;
        if close {
            a.closed = true;
        }
        if !close && waiting {
            a.held.extend_from_slice(&bytes);
            a.held_count += 1;
            return;
        }
        let mut all = std::mem::take(&mut a.held);
        all.extend_from_slice(&bytes);
        let count = std::mem::take(&mut a.held_count) + 1;
        self.io.post(IoMsg::Response {
            conn: 0,
            bytes: all,
            count,
            close,
        });
    }

    /// `Connection::flush_responses`.
    fn flush_held(&mut self) {
        let a = &mut self.actor;
        if a.held_count > 0 {
            self.io.post(IoMsg::Response {
                conn: 0,
                bytes: std::mem::take(&mut a.held),
                count: std::mem::take(&mut a.held_count),
                close: false,
            });
        }
    }

    /// A streamed request's handler, one step: it reads what its window
    /// holds (a read finding it empty asks for `100 Continue`), and either
    /// goes on later or answers (`arg & 1`: with close; `arg & 8`: after
    /// dropping its reader), which abandons the rest (`Responder::send`).
    fn handler_reads(&mut self, arg: u8) {
        let Some((n, shared, keep_alive)) = self.actor.reading.clone() else {
            return;
        };
        let stream = BodyStream::new(shared.clone(), self.io.clone(), 0);
        if arg & 4 != 0 {
            let (_, resume) = shared.read_now(usize::from(arg) * 257 + 1);
            if shared.ask_continue_if_owed() || resume {
                self.io.post(IoMsg::BodyResume { conn: 0 });
            }
        }
        let body_ended = shared.ended().is_some() && shared.queued_now() == 0;
        if arg & 2 != 0 && !body_ended {
            return;
        }
        if arg & 8 != 0 {
            // Its `BodyReader` dropped before the answer.
            stream.abandon();
        }
        self.actor.reading = None;
        let waiting = self.h.sink.events.len() > self.h.sink.handled;
        let close = arg & 1 != 0 || !keep_alive || self.draining || stream.closes_after_answer();
        let body = format!("@{n}");
        let bytes = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n{}\r\n{body}",
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        self.respond(bytes.into_bytes(), close, waiting);
        stream.abandon();
    }

    /// `websocket::upgrade::upgrade` once the handshake is valid.
    fn upgrade(&mut self) {
        self.flush_held();
        let a = &mut self.actor;
        let shared = Arc::new(WsShared::new(
            0,
            self.io.clone(),
            self.h.cfg.max_outbound_len,
            crate::websocket::Context {
                protocol: None,
                request: crate::http::Parts::for_tests(),
                data: None,
                handler: None,
                deflate: None,
                states: Default::default(),
            },
        ));
        a.ws = Some(WebSocket {
            shared: shared.clone(),
        });
        self.io.post(IoMsg::Upgrade {
            conn: 0,
            actor: self.conn_actor.clone(),
            response: b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n".to_vec(),
            ws: shared,
        });
    }

    /// What a WebSocket handler does after an event (`connection.rs`).
    fn resume_if_drained(&mut self) {
        if let Some(ws) = &self.actor.ws {
            if ws.shared.read_paused.load(Ordering::Acquire)
                && self.h.sink.events.len() - self.h.sink.handled < WS_LOW_WATER
            {
                ws.shared.resume_reading();
            }
        }
    }

    /// A `WebSocket::send` from any thread.
    fn ws_send(&mut self, arg: u8) {
        let Some(ws) = &self.actor.ws else { return };
        let len = (arg >> 2) as usize * 5;
        let message = match arg & 3 {
            0 => Message::Text("t".repeat(len)),
            1 => Message::Binary(vec![7; len]),
            2 => Message::Ping(vec![1; len]),
            _ => Message::Pong(vec![2; len]),
        };
        let before = ws.shared.queued.load(Ordering::Acquire);
        if ws.send(message).is_ok() {
            self.in_flight += ws.shared.queued.load(Ordering::Acquire) - before;
        }
    }

    /// The IO actor drains its inbox (`IoActor::drain_inbox`), then pumps.
    fn process_inbox(&mut self) {
        while let Some(msg) = self.inbox.try_recv() {
            if let IoMsg::WsFrame { bytes, .. } = &msg {
                self.in_flight -= bytes.len();
            }
            let late_upgrade = self.gone && matches!(msg, IoMsg::Upgrade { .. });
            let queued = self.conn_actor.queued_events();
            let conn = (!self.gone).then_some(&mut self.h.conn);
            if let Err(bug) = apply(conn, msg, &self.app, self.draining) {
                panic!("{bug} (a post the connection actor can make)");
            }
            if late_upgrade {
                // Its handler saw `Open`: the `Close` went to the mailbox.
                assert_eq!(self.conn_actor.queued_events(), queued + 1);
                self.close_events += 1;
            }
        }
        self.pump();
    }

    /// One decision of the timeout sweep (`IoActor::sweep`), taken only
    /// where the sweep could take it.
    fn sweep(&mut self, arg: u8) {
        let c = &mut self.h.conn;
        let cfg = self.h.cfg.clone();
        let lingering = c.phase.linger_until().is_some();
        match (arg % 4, c.ws.as_ref()) {
            // A streamed body stalled while its handler waits.
            (0, None) if c.body_stalled(std::time::Duration::from_secs(1), Default::default()) => {
                c.body_timed_out();
                self.pump();
            }
            // Header timeout, or a stalled body: 408.
            (0, None)
                if !lingering
                    && c.writer.is_empty()
                    && c.pipeline.pending() == 0
                    && c.phase.may_time_out()
                    && (c.head_started.is_some() || c.reader.in_body()) =>
            {
                c.time_out();
                self.pump();
            }
            // WebSocket idle timeout: 1001.
            (1, Some(ws)) if !ws.phase.close_sent() && !lingering => {
                c.ws_close(1001, "idle timeout", &cfg);
                self.pump();
            }
            // WebSocket ping interval.
            (2, Some(ws)) if !ws.phase.close_sent() && !lingering => {
                c.ws_push(crate::websocket::codec::encode(
                    tungstenite::protocol::frame::coding::OpCode::Control(
                        tungstenite::protocol::frame::coding::Control::Ping,
                    ),
                    b"",
                ));
                self.pump();
            }
            // A deadline, the linger or the idle timeout closes the socket.
            (3, ws) => {
                let expires = lingering
                    || !c.writer.is_empty()
                    || ws.is_some_and(|ws| ws.phase.deadline().is_some())
                    || (ws.is_none() && c.reader.is_idle() && c.pipeline.pending() == 0);
                if expires {
                    self.close();
                }
            }
            _ => {}
        }
    }

    /// Bounds that hold after every step.
    fn check_counters(&self) {
        let c = &self.h.conn;
        assert!(c.pipeline.pending() <= MAX_PIPELINE, "pipeline over bound");
        // Reading stops at the backlog; what is owed to requests already
        // read (at most MAX_PIPELINE small answers here) may follow.
        assert!(
            c.writer.queued_bytes() <= MAX_WRITE_BACKLOG + MAX_PIPELINE * 4096,
            "writer over bound"
        );
        if let (Some(ws), false) = (&c.ws, self.gone) {
            // Every byte queued for the socket, or posted and not yet
            // taken, is counted in the handle's budget, and only those.
            assert_eq!(
                ws.shared.queued.load(Ordering::Acquire),
                c.writer.queued_bytes() + self.in_flight,
                "WebSocket budget out of step with the bytes queued"
            );
        }
    }

    /// What the client received: HTTP responses in request order, nothing
    /// after a `Connection: close` one; after a `101` only WebSocket
    /// frames, nothing after a close frame. A cut-off tail is allowed (the
    /// socket may close mid-response).
    fn check_output(&self) {
        let out = &self.h.conn.stream.written;
        let mut at = 0;
        let mut last_answer: Option<usize> = None;
        // HTTP.
        loop {
            if at == out.len() {
                return;
            }
            let rest = &out[at..];
            assert!(
                rest.starts_with(b"HTTP/1.1 ") || b"HTTP/1.1 ".starts_with(rest),
                "not a response at byte {at}: {:?}",
                String::from_utf8_lossy(rest)
            );
            let Some(head_len) = rest.windows(4).position(|w| w == b"\r\n\r\n") else {
                return;
            };
            let head = std::str::from_utf8(&rest[..head_len]).expect("ASCII head");
            let status: u16 = head[9..12].parse().expect("status");
            let body_at = head_len + 4;
            if status == 100 {
                at += body_at;
                continue;
            }
            if status == 101 {
                at += body_at;
                break;
            }
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .expect("Content-Length")
                .parse()
                .expect("length");
            if rest.len() < body_at + len {
                return;
            }
            let body = &rest[body_at..body_at + len];
            if let Some(n) = body.strip_prefix(b"@") {
                let digits: Vec<u8> = n.iter().copied().take_while(u8::is_ascii_digit).collect();
                let n: usize = std::str::from_utf8(&digits).unwrap().parse().unwrap();
                if let Some(last) = last_answer {
                    assert!(n > last, "answer {n} after answer {last}");
                }
                last_answer = Some(n);
            }
            at += body_at + len;
            if head.contains("\r\nConnection: close") {
                assert_eq!(
                    at,
                    out.len(),
                    "bytes written after a Connection: close response"
                );
                return;
            }
        }
        // WebSocket: server frames, final, unmasked, no RSV bits.
        loop {
            let rest = &out[at..];
            if rest.len() < 2 {
                assert!(rest.is_empty() || rest[0] & 0x70 == 0, "bad frame");
                return;
            }
            assert_eq!(rest[0] & 0xf0, 0x80, "not a final frame without RSV bits");
            let opcode = rest[0] & 0x0f;
            assert!(
                matches!(opcode, 1 | 2 | 8 | 9 | 10),
                "server opcode {opcode}"
            );
            assert_eq!(rest[1] & 0x80, 0, "a masked server frame");
            let (len, header) = match rest[1] & 0x7f {
                126 if rest.len() >= 4 => (u16::from_be_bytes([rest[2], rest[3]]) as usize, 4),
                127 if rest.len() >= 10 => (
                    u64::from_be_bytes(rest[2..10].try_into().unwrap()) as usize,
                    10,
                ),
                126 | 127 => return,
                n => (n as usize, 2),
            };
            if rest.len() < header + len {
                return;
            }
            at += header + len;
            if opcode == 8 {
                assert_eq!(at, out.len(), "bytes written after a close frame");
                return;
            }
        }
    }

    /// Requests only before the upgrade, WebSocket events only after it;
    /// exactly one `Close` for a WebSocket, last.
    fn check_events(&self) {
        let events = &self.h.sink.events;
        let mut ws_seen = false;
        for (i, e) in events.iter().enumerate() {
            match e {
                Event::Request(_) => assert!(!ws_seen, "a request after WebSocket events"),
                Event::Ws(WebSocketEvent::Close(_)) => {
                    assert_eq!(i, events.len() - 1, "an event after Close");
                    ws_seen = true;
                }
                Event::Ws(_) | Event::WsFail { .. } => ws_seen = true,
                Event::Job(_) => panic!("a job in a connection's mailbox"),
            }
        }
        // The handler saw `Open` once the actor upgraded: the socket
        // gone, it must see exactly one `Close`.
        if self.gone && self.actor.ws.is_some() {
            assert_eq!(self.close_events, 1, "one Close per WebSocket");
        }
        assert!(self.close_events <= 1);
    }
}

#[cfg(test)]
mod tests {
    /// Every input of the committed `conn` corpus (`fuzz/corpus/conn`),
    /// replayed in the normal suite: each bug the fuzzer found there stays
    /// fixed without cargo-fuzz.
    #[test]
    fn the_conn_corpus_replays_clean() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/conn");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).expect("fuzz/corpus/conn") {
            let path = entry.unwrap().path();
            let ops = std::fs::read(&path).unwrap();
            let run = std::panic::catch_unwind(|| super::run_script(&ops));
            assert!(run.is_ok(), "{} fails", path.display());
            n += 1;
        }
        assert!(n >= 20, "only {n} inputs in {dir}");
    }

    /// The same corpus with every request body streamed.
    #[test]
    fn the_conn_corpus_replays_clean_with_streamed_bodies() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/conn");
        for entry in std::fs::read_dir(dir).expect("fuzz/corpus/conn") {
            let path = entry.unwrap().path();
            let ops = std::fs::read(&path).unwrap();
            let run = std::panic::catch_unwind(|| super::run_stream_script(&ops));
            assert!(run.is_ok(), "{} fails (streamed bodies)", path.display());
        }
    }
}
