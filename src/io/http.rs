//! The IO actor's HTTP half: one connection's state machine, from bytes
//! read to requests dispatched and responses written.
//!
//! It knows neither mio nor the scheduler: it reads and writes a
//! [`Socket`] and hands its requests (and, after a `101`, its WebSocket
//! events, see `ws.rs`) to a [`Deliver`]. Both are generic parameters, not
//! trait objects, so the hot path gains no `dyn` call; the point is that
//! the tests below drive a connection with a scripted socket and see
//! exactly what it wrote and dispatched.
//!
//! The state is three enums, each changed only by the inputs named on its
//! variants: [`Input`] (the socket's read side), [`Phase`] (the HTTP
//! connection's life) and, after a `101`, `ws::WsPhase` (the closing
//! handshake).

use super::pipeline::{Bug, Pipeline};
use super::spare::Spare;
use super::stream::Streaming;
use super::writer::Writer;
use super::ws::WsConn;
use super::{MAX_PIPELINE, MAX_WRITE_BACKLOG};
use crate::app::Config;
use crate::connection::Event;
use crate::http::body::{BodyError, BodyShared, DISCARD_LIMIT};
use crate::http::reader::{BodyPart, BodyPlan, HttpError, Limits, Parsed, Reader};
use crate::http::request::{serialize, RawRequest, Version};
use crate::http::Headers;
use crate::router::ServerBody;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a connection needs of its socket.
pub(super) trait Socket: Read + Write {
    /// Sends our FIN (`shutdown(SHUT_WR)`): the start of a lingering close.
    fn shutdown_write(&self) -> io::Result<()>;
}

/// Where a connection's output goes: the connection actor's mailbox.
pub(super) trait Deliver {
    /// Pushes `event` to the mailbox. A refused push (the mailbox is
    /// sealed by a WebSocket close) is dropped: nothing is owed after it.
    fn deliver(&mut self, event: Event);
    /// Events waiting in the mailbox: the WebSocket high-water check.
    fn queued_events(&self) -> usize;
}

/// What the IO actor does with a connection after pumping it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fate {
    Keep,
    /// Close the socket now (dropping it) and deliver the WebSocket
    /// `Close`, if any.
    Close,
}

/// The socket's read side, as edge-triggered epoll lets us know it.
///
/// ```text
///            event: readable              read: short, or WouldBlock
///   Drained ───────────────────▶ Ready ─────────────────────────────▶ Drained
///      │   event: FIN/error (EPOLLRDHUP, EPOLLERR)   │
///      └──────────────────────▶ FinSeen ◀────────────┘
///   Ready / Drained / FinSeen ── read: 0 (EOF) ──▶ Eof (final)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Input {
    /// The socket may hold unread bytes: an edge is remembered until a
    /// read shows the socket empty.
    Ready,
    /// The socket is empty; the next byte raises a new edge.
    Drained,
    /// epoll reported the peer's FIN: read until EOF, short reads
    /// included, since the FIN raises no further edge. A `WouldBlock` here
    /// (TCP never returns one with a FIN queued) moves to `Drained`; any
    /// later event carries RDHUP again, epoll reporting the socket's
    /// current state.
    FinSeen,
    /// A read returned 0: nothing more can arrive.
    Eof,
}

impl Input {
    /// An epoll event for the socket. `read_closed`: RDHUP, HUP or ERR.
    pub(super) fn on_event(&mut self, readable: bool, read_closed: bool) {
        *self = match *self {
            Input::Eof => Input::Eof,
            _ if read_closed => Input::FinSeen,
            Input::FinSeen => Input::FinSeen,
            _ if readable => Input::Ready,
            other => other,
        };
    }

    /// Bytes may have arrived that no edge will announce (the decoder was
    /// just seeded after a `101`): read once more.
    pub(super) fn rearm(&mut self) {
        if *self == Input::Drained {
            *self = Input::Ready;
        }
    }

    pub(super) fn can_read(self) -> bool {
        matches!(self, Input::Ready | Input::FinSeen)
    }

    pub(super) fn is_eof(self) -> bool {
        self == Input::Eof
    }
}

/// The HTTP connection's life.
///
/// ```text
///   Open ── request without keep-alive ─────────────▶ Closing(ClientAsked)
///   Open ── unreadable request, 408 ────────────────▶ Closing(ErrorOwed)
///   Open, ClientAsked ── IoMsg::Drain ──────────────▶ Closing(Draining)
///   any Closing but ErrorSent ── close response ────▶ Closing(AnsweredClose)
///   ErrorOwed ── nothing pending: error queued ─────▶ Closing(ErrorSent)
///   ErrorSent, AnsweredClose, Draining
///         ── nothing pending, all written ──────────▶ Lingering (or gone on EOF)
/// ```
///
/// Every `Closing` reads no more requests. After a `101` only `Lingering`
/// matters (the WebSocket's own closing is `ws::WsPhase`).
#[derive(Debug)]
pub(super) enum Phase {
    /// Requests are read and dispatched.
    Open,
    /// No more requests are read; see [`Why`] for what ends it.
    Closing(Why),
    /// Our write side is shut; input is read and dropped until EOF or
    /// `until`, so a client still sending does not turn our close into a
    /// reset that destroys the response before it reads it.
    Lingering {
        until: Instant,
        /// Entered after a `Connection: close` answer: responses still
        /// posted are dropped, not a natron bug.
        answered_close: bool,
    },
}

/// Why a connection reads no more requests.
#[derive(Debug)]
pub(super) enum Why {
    /// The last request dispatched said `Connection: close`. Its answer
    /// says close too (moving to `AnsweredClose`); until then nothing
    /// else ends the connection.
    ClientAsked,
    /// A request could not be read (400, 408, 413, 431, ...): its response
    /// waits until every earlier request is answered, goes out last, and
    /// the connection closes.
    ErrorOwed(Vec<u8>),
    /// The error response is queued: close once it is written.
    ErrorSent,
    /// A response said `Connection: close`: the requests dispatched behind
    /// it (and an error owed behind them) are never answered, later
    /// responses are dropped (RFC 9112 §9.6); close once it is written.
    AnsweredClose,
    /// Server shutdown: close once the requests in flight are answered and
    /// written.
    Draining,
    /// A streamed body failed (malformed, too large, cut short, stalled):
    /// its framing is lost, so nothing after it is read; close once its
    /// request is answered and written.
    BodyFailed,
}

impl Phase {
    /// Closes once nothing is pending and everything is written.
    fn closes_when_done(&self) -> bool {
        matches!(
            self,
            Phase::Closing(Why::ErrorSent | Why::AnsweredClose | Why::Draining | Why::BodyFailed)
        )
    }

    /// Responses posted now are dropped (a `Connection: close` answer went
    /// out before them).
    pub(super) fn drops_responses(&self) -> bool {
        matches!(
            self,
            Phase::Closing(Why::AnsweredClose)
                | Phase::Lingering {
                    answered_close: true,
                    ..
                }
        )
    }

    /// A timeout (408) may be owed: no error is owed yet and no closing
    /// is under way that would end the connection anyway.
    pub(super) fn may_time_out(&self) -> bool {
        matches!(self, Phase::Open | Phase::Closing(Why::ClientAsked))
    }

    /// A streamed body in flight is read on: its request is being
    /// handled and no answer has closed the connection.
    fn feeds_body(&self) -> bool {
        matches!(
            self,
            Phase::Open | Phase::Closing(Why::ClientAsked | Why::Draining)
        )
    }

    pub(super) fn linger_until(&self) -> Option<Instant> {
        match self {
            Phase::Lingering { until, .. } => Some(*until),
            _ => None,
        }
    }
}

/// The per-socket state of the IO actor.
pub(super) struct Conn<S> {
    pub(super) stream: S,
    pub(super) reader: Reader,
    pub(super) writer: Writer,
    /// Requests handed to the connection actor and not yet answered, and
    /// where an upgrade waits among them.
    pub(super) pipeline: Pipeline,
    pub(super) input: Input,
    pub(super) phase: Phase,
    /// A `100 Continue` owed once nothing is pending (one for a request
    /// whose head arrived while earlier ones were unanswered).
    pub(super) continue_owed: bool,
    pub(super) last_activity: Instant,
    /// When the head now being read started (the header timeout's clock).
    pub(super) head_started: Option<Instant>,
    /// Set once the connection speaks WebSocket.
    pub(super) ws: Option<Box<WsConn>>,
    /// The streaming response being written, if one is open (`stream.rs`).
    pub(super) streaming: Option<Streaming>,
    /// How long a lingering close waits for the client's FIN
    /// (`ServerBuilder::linger_timeout`).
    pub(super) linger: Duration,
    /// The streamed body being read (the newest request dispatched): the
    /// reader hands out nothing else until it ends.
    pub(super) inflow: Option<Inflow>,
}

/// A streamed request body being read: the window it feeds. One word
/// (an idle connection carries the `Option` of it).
pub(super) struct Inflow {
    shared: Arc<BodyShared>,
}

impl Drop for Inflow {
    /// However the connection ends mid-body, a handler blocked reading it
    /// wakes with an error (a no-op once the body ended).
    fn drop(&mut self) {
        self.shared.fail(BodyError::ABORTED);
    }
}

/// How far [`Conn::feed_body`] got.
enum Fed {
    /// The body ended: the next head may follow.
    Ended,
    /// Every buffered body byte is fed: read the socket.
    NeedMore,
    /// The window is full (or the discard bound reached): wait for
    /// `IoMsg::BodyResume` or the answer.
    Paused,
    /// The body failed: nothing more is read.
    Failed,
}

/// How the body of `req` is read: per its route (`Router::stream_body`,
/// `Router::max_body_len`), else per server. Natron's matching only: no
/// user code runs on the IO thread.
fn body_plan(cfg: &Config, req: &RawRequest) -> BodyPlan {
    let server = ServerBody {
        stream: cfg.stream_bodies,
        max_body_len: cfg.max_body_len as u64,
        max_streamed_body_len: cfg.max_streamed_body_len,
    };
    match &cfg.body_rules {
        Some(rules) => rules.plan(&req.method, &req.target, &server),
        None => BodyPlan {
            stream: server.stream,
            max_body_len: if server.stream {
                server.max_streamed_body_len
            } else {
                server.max_body_len
            },
        },
    }
}

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

impl<S: Socket> Conn<S> {
    /// A new connection; `draining`: the server is shutting down, so it
    /// answers what it has read and closes.
    pub(super) fn new(stream: S, now: Instant, draining: bool, linger: Duration) -> Self {
        Conn {
            stream,
            reader: Reader::new(),
            writer: Writer::default(),
            pipeline: Pipeline::default(),
            input: Input::Ready,
            phase: if draining {
                Phase::Closing(Why::Draining)
            } else {
                Phase::Open
            },
            continue_owed: false,
            last_activity: now,
            head_started: None,
            ws: None,
            streaming: None,
            linger,
            inflow: None,
        }
    }

    fn can_dispatch(&self) -> bool {
        matches!(self.phase, Phase::Open)
            && !self.pipeline.upgrade_waiting()
            && self.pipeline.pending() < MAX_PIPELINE
            && self.writer.queued_bytes() < MAX_WRITE_BACKLOG
    }

    /// `count` responses (`IoMsg::Response`). `Ok(false)`: dropped, as
    /// they follow a `Connection: close` answer.
    pub(super) fn on_response(
        &mut self,
        bytes: Vec<u8>,
        count: usize,
        close: bool,
    ) -> Result<bool, Bug> {
        // Seeded mutant for `fuzz/run.sh`: the guard deleted.
        #[cfg(not(natron_mutant = "response_after_close"))]
        if self.phase.drops_responses() {
            // Nothing is sent after a `Connection: close` response
            // (RFC 9112 §9.6).
            return Ok(false);
        }
        if self.ws.is_some() {
            return Err(Bug("HTTP response after the switch to WebSocket"));
        }
        if self.streaming.is_some() {
            // The stream holds the run right: nothing else can answer.
            return Err(Bug("HTTP response while a stream is open"));
        }
        self.pipeline.answered_many(count)?;
        self.writer.push(bytes);
        self.last_activity = Instant::now();
        if close {
            // Requests dispatched behind this one are dropped unanswered
            // (the connection actor skips them); so is an error owed to a
            // request behind them.
            self.phase = Phase::Closing(Why::AnsweredClose);
            self.pipeline.clear();
        }
        Ok(true)
    }

    /// Server shutdown (`IoMsg::Drain`): HTTP reads no more requests and
    /// closes once the ones in flight are answered; a WebSocket sends 1001.
    pub(super) fn drain(&mut self, cfg: &Config) {
        self.drain_stream();
        if self.ws.is_some() {
            self.ws_close(1001, "server shutting down", cfg);
        } else if matches!(self.phase, Phase::Open | Phase::Closing(Why::ClientAsked)) {
            // An owed error, a close answer or a linger end the connection
            // anyway, and must keep what they say.
            self.phase = Phase::Closing(Why::Draining);
        }
    }

    /// Feeds the streamed body's window from the reader: up to its room,
    /// or, once the handler abandoned it, drops it (at most
    /// [`DISCARD_LIMIT`] bytes until its request is answered; the answer
    /// closes the connection when more is left). Sends the `100 Continue`
    /// the handler's first read asked for, once every earlier answer is
    /// queued before it.
    fn feed_body(&mut self, limits: &Limits) -> Fed {
        let Some(inflow) = self.inflow.as_mut() else {
            return Fed::Ended;
        };
        let feed = inflow.shared.feed();
        // The streamed request is the newest dispatched: with one pending,
        // every earlier answer is in the writer.
        if feed.continue_asked && !feed.abandoned && self.pipeline.pending() == 1 {
            if self.streaming.is_none() {
                self.writer.push(super::writer::Chunk::Static(CONTINUE));
            }
            // Else the request's answer has begun (a stream's head): a
            // `100` may not follow a final response (RFC 9110 §15.2).
            inflow.shared.continue_sent();
        }
        let mut budget = if !feed.abandoned {
            feed.room
        } else if self.pipeline.pending() == 0 {
            // Answered: the answer kept the connection only if what is
            // left is within the bound (`BodyStream::closes_after_answer`).
            usize::MAX
        } else {
            DISCARD_LIMIT.saturating_sub(feed.dropped) as usize
        };
        loop {
            if budget == 0 {
                if feed.abandoned {
                    // Until the answer is in (`on_response` pumps).
                    return Fed::Paused;
                }
                // The handler may have read meanwhile: only a `feed` that
                // finds no room may pause (it marks the window so).
                budget = inflow.shared.feed().room;
                if budget == 0 {
                    return Fed::Paused;
                }
            }
            match self.reader.body_part(budget, limits) {
                Ok(BodyPart::Data(bytes)) => {
                    let n = bytes.len();
                    if feed.abandoned {
                        inflow.shared.dropped(n);
                    } else {
                        inflow.shared.push(bytes);
                    }
                    budget -= n;
                }
                Ok(BodyPart::NeedMore) => return Fed::NeedMore,
                Ok(BodyPart::End) => {
                    inflow.shared.complete();
                    self.inflow = None;
                    return Fed::Ended;
                }
                Err(e) => {
                    self.fail_body(BodyError::framing(e.status, e.reason));
                    return Fed::Failed;
                }
            }
        }
    }

    /// The streamed body cannot go on: its reader errs, nothing more is
    /// read, the connection closes once the request is answered.
    fn fail_body(&mut self, why: BodyError) {
        if let Some(inflow) = self.inflow.take() {
            inflow.shared.fail(why);
        }
        self.phase = Phase::Closing(Why::BodyFailed);
    }

    /// Whether a streamed body waits for the client's bytes (the handler
    /// wants them and no `100 Continue` is owed) and none came for
    /// `idle`: the body timeout.
    pub(super) fn body_stalled(&self, idle: Duration, timeout: Duration) -> bool {
        idle > timeout
            && self.phase.feeds_body()
            && self
                .inflow
                .as_ref()
                .is_some_and(|inflow| inflow.shared.feed().waits_on_client)
    }

    /// The body timeout: the reader errs (408 if left unanswered).
    pub(super) fn body_timed_out(&mut self) {
        self.fail_body(BodyError::TIMED_OUT);
    }

    /// A timeout while a request is being read: 408, then close.
    pub(super) fn time_out(&mut self) {
        self.phase = Phase::Closing(Why::ErrorOwed(error_response(HttpError {
            status: 408,
            reason: "request not received in time",
        })));
    }

    /// Does everything the connection's state allows: hand out buffered
    /// requests, read, write, close.
    pub(super) fn pump<D: Deliver>(
        &mut self,
        cfg: &Config,
        log: &slog::Logger,
        scratch: &mut [u8],
        spare: &mut Spare,
        out: &mut D,
    ) -> Fate {
        if let Phase::Lingering { .. } = self.phase {
            return self.discard_input(scratch);
        }
        if self.ws.is_some() {
            return self.pump_ws(log, scratch, out);
        }
        let limits = Limits {
            max_headers_len: cfg.max_headers_len,
            max_body_len: cfg.max_body_len,
        };
        loop {
            // Whether the reader ran out of bytes while it may take more.
            let mut want_bytes = false;
            loop {
                if self.inflow.is_some() {
                    if !self.phase.feeds_body() {
                        break;
                    }
                    match self.feed_body(&limits) {
                        Fed::Ended => {}
                        Fed::NeedMore => {
                            want_bytes = true;
                            break;
                        }
                        Fed::Paused | Fed::Failed => break,
                    }
                }
                if !self.can_dispatch() {
                    break;
                }
                match self.reader.next_with(&limits, |req| body_plan(cfg, req)) {
                    Ok(Parsed::Request(mut raw, flags)) => {
                        if let Err(bug) = self.pipeline.dispatched(flags.upgrade) {
                            slog::error!(log, "closing the connection"; "error" => %bug);
                            return Fate::Close;
                        }
                        if !raw.keep_alive {
                            self.phase = Phase::Closing(Why::ClientAsked);
                        }
                        if flags.streamed {
                            let shared = BodyShared::new(
                                self.reader.streamed_left(),
                                flags.expect_continue,
                                cfg.body_stats.clone(),
                            );
                            raw.body_stream = Some(shared.clone());
                            self.inflow = Some(Inflow { shared });
                        }
                        out.deliver(Event::Request(raw));
                    }
                    Ok(Parsed::Continue) => {
                        if self.pipeline.pending() == 0 {
                            self.writer.push(super::writer::Chunk::Static(CONTINUE));
                        } else {
                            self.continue_owed = true;
                        }
                    }
                    Ok(Parsed::NeedMore) => {
                        want_bytes = true;
                        break;
                    }
                    Err(e) => {
                        slog::debug!(log, "bad request"; "status" => e.status, "reason" => e.reason);
                        self.phase = Phase::Closing(Why::ErrorOwed(error_response(e)));
                    }
                }
            }
            if want_bytes && self.inflow.is_some() && self.input.is_eof() {
                // Nothing more can arrive, and the body is unfinished.
                self.fail_body(BodyError::EOF);
            }
            if !want_bytes || !self.input.can_read() {
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
                // Only if the body will be read: not after a close answer
                // (nothing may follow it) nor once draining or failing.
                if self.reader.in_body() && matches!(self.phase, Phase::Open) {
                    self.writer.push(super::writer::Chunk::Static(CONTINUE));
                }
            }
            if let Phase::Closing(Why::ErrorOwed(_)) = self.phase {
                let Phase::Closing(Why::ErrorOwed(response)) =
                    std::mem::replace(&mut self.phase, Phase::Closing(Why::ErrorSent))
                else {
                    unreachable!("matched just above")
                };
                self.writer.push(response);
            }
        }

        let before = self.writer.queued_bytes();
        let flushed = self.writer.flush(&mut self.stream);
        let written = before - self.writer.queued_bytes();
        if let Err(bug) = self.stream_written(written) {
            slog::error!(log, "closing the connection"; "error" => %bug);
            return Fate::Close;
        }
        if flushed.is_err() {
            return Fate::Close;
        }
        if written > 0 {
            self.last_activity = Instant::now();
        }
        if before >= MAX_WRITE_BACKLOG
            && self.writer.queued_bytes() < MAX_WRITE_BACKLOG
            && self.can_dispatch()
        {
            // Writing lifted the backlog that stopped dispatching and
            // reading, and no event will say so: the bytes waiting were
            // announced by an edge already consumed, and a socket that took
            // everything raises no writable edge. Without this, a request
            // behind the backlog waits for a timeout to answer it 408.
            // Bounded: each round wrote bytes out of a backlog that only
            // handlers' responses refill.
            return self.pump(cfg, log, scratch, spare, out);
        }

        // The header clock runs only while the client owes us a head.
        if self.pipeline.pending() > 0 || self.reader.is_idle() || self.reader.in_body() {
            self.head_started = None;
        } else if self.head_started.is_none() {
            self.head_started = Some(Instant::now());
        }

        if self.writer.is_empty() && self.pipeline.pending() == 0 {
            if self.phase.closes_when_done() {
                if self.input.is_eof() {
                    return Fate::Close;
                }
                if matches!(self.phase, Phase::Closing(Why::Draining)) && self.reader.is_idle() {
                    // An idle keep-alive connection at shutdown owes nothing;
                    // lingering would only hold `serve` for the client's FIN.
                    // A close resets the connection only if request bytes sit
                    // unread here, so look once: none, and it closes now.
                    match self.stream.read(scratch) {
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            let _ = self.stream.shutdown_write();
                            return Fate::Close;
                        }
                        Ok(0) => return Fate::Close,
                        // A request racing the drain: it is dropped, and the
                        // close lingers so that it does not become a reset.
                        _ => {}
                    }
                }
                let answered_close = matches!(self.phase, Phase::Closing(Why::AnsweredClose));
                self.reader = Reader::new();
                self.inflow = None;
                return self.linger(answered_close, scratch);
            }
            if self.input.is_eof() {
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
    /// EOF (`Input::Eof`), `WouldBlock` (`Input::Drained`) or EINTR.
    pub(super) fn read_once(&mut self, scratch: &mut [u8]) -> io::Result<usize> {
        match self.stream.read(scratch) {
            Ok(0) => {
                self.input = Input::Eof;
                Ok(0)
            }
            Ok(n) => {
                self.last_activity = Instant::now();
                // A short read emptied the socket's receive queue: any byte
                // arriving later raises a new edge (edge-triggered epoll
                // queues an event on every arrival), so the read that would
                // only say `WouldBlock` is skipped: one syscall less per
                // request. Not once the FIN was reported (`FinSeen`): it
                // raises no further edge, so reading goes on until EOF.
                if n < scratch.len() && self.input == Input::Ready {
                    self.input = Input::Drained;
                }
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.input = Input::Drained;
                Ok(0)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Starts the lingering close: our FIN, then input dropped.
    pub(super) fn linger(&mut self, answered_close: bool, scratch: &mut [u8]) -> Fate {
        let _ = self.stream.shutdown_write();
        self.phase = Phase::Lingering {
            // A huge `linger_timeout` means "until the client's FIN".
            until: crate::app::deadline_after(self.linger),
            answered_close,
        };
        self.discard_input(scratch)
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

#[cfg(test)]
mod tests {
    //! A connection driven by a scripted socket: what it dispatched, what
    //! it wrote, and its fate, with no mio, no scheduler and no threads.
    use super::super::fake::{Harness, Step};
    use super::*;
    use crate::http::body::BODY_WINDOW;

    impl Harness {
        /// The answer to the oldest request, as the connection actor posts
        /// it, then a pump.
        fn answer(&mut self, bytes: &str, close: bool) -> Fate {
            assert_eq!(
                self.conn.on_response(bytes.as_bytes().to_vec(), 1, close),
                Ok(true)
            );
            self.pump()
        }

        fn dispatched(&self) -> Vec<String> {
            self.sink
                .events
                .iter()
                .map(|e| match e {
                    Event::Request(raw) => raw.target.clone(),
                    _ => panic!("not a request"),
                })
                .collect()
        }

        fn written(&self) -> String {
            String::from_utf8_lossy(&self.conn.stream.written).into_owned()
        }
    }

    fn get(path: &str) -> String {
        format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n")
    }

    fn data(s: &str) -> Step {
        Step::Data(s.as_bytes().to_vec())
    }

    #[test]
    fn pipelined_requests_are_dispatched_in_order_and_answered_in_order() {
        let mut h = Harness::new(vec![data(&(get("/a") + &get("/b")))]);
        assert_eq!(h.pump(), Fate::Keep);
        assert_eq!(h.dispatched(), ["/a", "/b"]);
        assert_eq!(h.conn.pipeline.pending(), 2);
        assert_eq!(h.written(), "");
        h.answer("A;", false);
        h.answer("B;", false);
        assert_eq!(h.written(), "A;B;");
        assert_eq!(h.conn.pipeline.pending(), 0);
        assert!(matches!(h.conn.phase, Phase::Open));
        // A third request on the same connection.
        assert_eq!(h.arrive(get("/c")), Fate::Keep);
        assert_eq!(h.dispatched(), ["/a", "/b", "/c"]);
    }

    #[test]
    fn an_invalid_request_gets_its_400_after_the_earlier_answer_then_lingers() {
        let mut h = Harness::new(vec![data(&(get("/a") + "GE(T / HTTP/1.1\r\n\r\n"))]);
        assert_eq!(h.pump(), Fate::Keep);
        assert_eq!(h.dispatched(), ["/a"]);
        // The 400 waits for /a's answer.
        assert_eq!(h.written(), "");
        assert!(!h.conn.stream.shut.get());
        assert_eq!(h.answer("A;", false), Fate::Keep);
        let out = h.written();
        assert!(out.starts_with("A;HTTP/1.1 400 Bad Request\r\n"), "{out}");
        assert!(out.contains("Connection: close\r\n"), "{out}");
        // Lingering close: our FIN sent, input drained until EOF.
        assert!(h.conn.stream.shut.get());
        assert!(matches!(h.conn.phase, Phase::Lingering { .. }));
        h.conn.stream.script.push_back(data("more junk"));
        h.conn.stream.script.push_back(Step::Eof);
        h.conn.input.on_event(true, false);
        assert_eq!(h.pump(), Fate::Close);
        assert_eq!(h.dispatched(), ["/a"]);
    }

    #[test]
    fn nothing_is_read_after_a_connection_close_request() {
        let close = "GET /a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
        let mut h = Harness::new(vec![
            data(&(close.to_owned() + &get("/b"))),
            data(&get("/c")),
        ]);
        // FIN seen: a short read does not end the burst, so only the
        // phase can stop reading.
        h.conn.input.on_event(true, true);
        assert_eq!(h.pump(), Fate::Keep);
        assert_eq!(h.dispatched(), ["/a"]);
        assert!(matches!(h.conn.phase, Phase::Closing(Why::ClientAsked)));
        assert_eq!(h.conn.stream.script.len(), 1, "/c was read");
        // The close answer: written, then a lingering close that drops
        // the unread /c instead of dispatching it.
        assert_eq!(h.answer("A;", true), Fate::Keep);
        assert!(h.conn.stream.shut.get());
        assert!(h.conn.stream.script.is_empty(), "/c was not drained");
        assert_eq!(h.dispatched(), ["/a"]);
        assert_eq!(h.written(), "A;");
    }

    #[test]
    fn a_response_written_one_byte_per_call_arrives_whole_and_in_order() {
        let mut h = Harness::new(vec![data(&(get("/a") + &get("/b")))]);
        h.conn.stream.per_write = 1;
        h.conn.stream.block_after_write = true;
        h.pump();
        let first = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst";
        let second = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond";
        h.answer(first, false);
        h.answer(second, false);
        let mut pumps = 0;
        while !h.conn.writer.is_empty() {
            assert_eq!(h.pump(), Fate::Keep);
            pumps += 1;
            assert!(pumps < 1000);
        }
        assert!(pumps > 10, "the socket took more than a byte per call");
        assert_eq!(h.written(), format!("{first}{second}"));
    }

    #[test]
    fn would_block_ends_the_burst_until_the_next_edge() {
        let mut h = Harness::new(vec![data(&get("/a")), Step::Block, data(&get("/b"))]);
        // FIN seen: only `WouldBlock` (or EOF) ends the burst.
        h.conn.input.on_event(true, true);
        assert_eq!(h.pump(), Fate::Keep);
        assert_eq!(h.dispatched(), ["/a"]);
        assert_eq!(h.conn.input, Input::Drained);
        h.conn.input.on_event(true, false);
        assert_eq!(h.pump(), Fate::Keep);
        assert_eq!(h.dispatched(), ["/a", "/b"]);
    }

    #[test]
    fn a_flush_that_lifts_the_write_backlog_reads_on_without_a_new_edge() {
        let mut h = Harness::new(vec![data(&get("/a"))]);
        h.pump();
        assert_eq!(h.dispatched(), ["/a"]);
        // /a's answer fills the backlog and the socket refuses it for now.
        h.conn.stream.blocked = true;
        h.answer(&"x".repeat(MAX_WRITE_BACKLOG), false);
        assert_eq!(h.conn.writer.queued_bytes(), MAX_WRITE_BACKLOG);
        // /b's edge arrives while the backlog stops reading.
        h.conn.stream.blocked = true;
        h.arrive(get("/b"));
        assert_eq!(h.dispatched(), ["/a"]);
        assert_eq!(
            h.conn.stream.script.len(),
            1,
            "/b was read past the backlog"
        );
        // A writable edge, and the socket takes the whole backlog at once:
        // no further edge will announce /b (its edge was consumed, and a
        // socket that took everything raises no writable edge), so this
        // pump must read it.
        h.conn.input.on_event(false, false);
        assert_eq!(h.pump(), Fate::Keep);
        assert!(h.conn.writer.is_empty());
        assert_eq!(h.dispatched(), ["/a", "/b"]);
    }

    #[test]
    fn eof_with_nothing_pending_closes() {
        let mut h = Harness::new(vec![Step::Eof]);
        assert_eq!(h.pump(), Fate::Close);
        assert_eq!(h.written(), "");
    }

    #[test]
    fn eof_with_a_request_pending_waits_for_its_answer() {
        let mut h = Harness::new(vec![data(&get("/a")), Step::Eof]);
        h.conn.input.on_event(true, true);
        assert_eq!(h.pump(), Fate::Keep);
        assert!(h.conn.input.is_eof());
        assert_eq!(h.answer("A;", false), Fate::Close);
        assert_eq!(h.written(), "A;");
    }

    #[test]
    fn expect_continue_is_answered_when_nothing_is_pending() {
        let post =
            "POST /u HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";
        let mut h = Harness::new(vec![data(post)]);
        assert_eq!(h.pump(), Fate::Keep);
        assert_eq!(h.written(), "HTTP/1.1 100 Continue\r\n\r\n");
        assert!(h.dispatched().is_empty());
        h.arrive("hello");
        assert_eq!(h.dispatched(), ["/u"]);
        match &h.sink.events[0] {
            Event::Request(raw) => assert_eq!(raw.body, b"hello"),
            _ => unreachable!(),
        }
    }

    #[test]
    fn expect_continue_behind_a_pending_request_waits_for_its_answer() {
        let post =
            "POST /u HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";
        let mut h = Harness::new(vec![data(&(get("/a") + post))]);
        h.pump();
        assert_eq!(h.dispatched(), ["/a"]);
        assert_eq!(h.written(), "");
        h.answer("A;", false);
        assert_eq!(h.written(), "A;HTTP/1.1 100 Continue\r\n\r\n");
    }

    /// Found by `fuzz/` (conn): the `100 Continue` owed to a request
    /// behind a close answer was written after that answer.
    #[test]
    fn no_continue_after_a_close_answer_or_while_draining() {
        let post =
            "POST /u HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";
        let mut h = Harness::new(vec![data(&(get("/a") + post))]);
        h.pump();
        h.answer("A;", true);
        assert_eq!(h.written(), "A;");
        assert!(h.conn.stream.shut.get());

        let mut h = Harness::new(vec![data(&(get("/a") + post))]);
        h.pump();
        let cfg = h.cfg.clone();
        h.conn.drain(&cfg);
        h.answer("A;", false);
        assert_eq!(h.written(), "A;");
    }

    #[test]
    fn a_close_answer_drops_the_error_owed_behind_it() {
        let mut h = Harness::new(vec![data(&(get("/a") + "GE(T / HTTP/1.1\r\n\r\n"))]);
        h.pump();
        assert!(matches!(h.conn.phase, Phase::Closing(Why::ErrorOwed(_))));
        assert_eq!(h.answer("A;", true), Fate::Keep);
        assert_eq!(h.written(), "A;");
        assert!(h.conn.stream.shut.get());
        // Posted after the close answer: dropped, not a bug.
        assert_eq!(h.conn.on_response(b"late".to_vec(), 1, false), Ok(false));
    }

    /// The window of the oldest streamed request the sink received.
    fn window(h: &Harness, i: usize) -> Arc<BodyShared> {
        match &h.sink.events[i] {
            Event::Request(raw) => raw.body_stream.clone().expect("a streamed body"),
            _ => panic!("not a request"),
        }
    }

    fn streaming() -> Harness {
        let mut h = Harness::new(vec![]);
        h.cfg.stream_bodies = true;
        h
    }

    fn post(len: usize, extra: &str) -> String {
        format!("POST /u HTTP/1.1\r\nHost: t\r\nContent-Length: {len}\r\n{extra}\r\n")
    }

    #[test]
    fn a_streamed_body_fills_the_window_then_reading_pauses_until_the_handler_reads() {
        const LEN: usize = 300_000;
        let body: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
        let mut h = streaming();
        let mut wire = post(LEN, "").into_bytes();
        wire.extend_from_slice(&body);
        wire.extend_from_slice(get("/next").as_bytes());
        h.conn.stream.script.push_back(Step::Data(wire));
        assert_eq!(h.pump(), Fate::Keep);
        // Dispatched after its head; the window is full and the socket is
        // left unread (reads stopped, not merely buffered).
        assert_eq!(h.dispatched(), ["/u"]);
        let w = window(&h, 0);
        assert_eq!(w.queued_now(), BODY_WINDOW);
        let unread: usize = h
            .conn
            .stream
            .script
            .iter()
            .map(|s| match s {
                Step::Data(d) => d.len(),
                _ => 0,
            })
            .sum();
        assert!(unread > LEN - 2 * BODY_WINDOW - 2 * 65_536, "{unread}");
        // The handler reads a quarter: not yet worth a wake-up.
        let (first, resume) = w.read_now(BODY_WINDOW / 4);
        assert!(!resume);
        let mut got = first;
        // Reads until the body ends; each wake-up (`BodyResume`) is a pump.
        let mut wakeups = 0;
        while got.len() < LEN {
            let (bytes, resume) = w.read_now(16 * 1024);
            assert!(!bytes.is_empty(), "stuck at {}", got.len());
            got.extend_from_slice(&bytes);
            if resume {
                wakeups += 1;
                h.conn.input.on_event(true, false);
                assert_eq!(h.pump(), Fate::Keep);
            }
            assert!(w.queued_now() <= BODY_WINDOW);
        }
        assert_eq!(got, body);
        assert!(wakeups >= 4, "{wakeups}");
        assert_eq!(w.ended(), Some(Ok(())));
        // The request behind it is read once the body ended (pipelined:
        // its handler runs after /u's answer).
        assert_eq!(h.dispatched(), ["/u", "/next"]);
        assert!(h.conn.inflow.is_none());
    }

    #[test]
    fn an_abandoned_body_is_dropped_and_the_next_request_read() {
        let mut h = streaming();
        let mut wire = post(100_000, "").into_bytes();
        wire.extend_from_slice(&[b'x'; 100_000]);
        wire.extend_from_slice(get("/next").as_bytes());
        h.conn.stream.script.push_back(Step::Data(wire));
        h.pump();
        let w = window(&h, 0);
        assert!(w.abandon());
        // Answered (keep-alive: 100,000 is within the discard bound),
        // then the rest is dropped and /next read.
        h.answer("A;", false);
        assert_eq!(h.dispatched(), ["/u", "/next"]);
        assert_eq!(w.queued_now(), 0);
        assert!(matches!(h.conn.phase, Phase::Open));
    }

    #[test]
    fn an_abandoned_body_drops_at_most_the_bound_before_its_answer() {
        let mut h = streaming();
        let mut wire = post(4 << 20, "").into_bytes();
        wire.extend_from_slice(&vec![b'x'; 4 << 20]);
        h.conn.stream.script.push_back(Step::Data(wire));
        h.pump();
        window(&h, 0).abandon();
        h.conn.input.on_event(true, false);
        h.pump();
        let w = window(&h, 0);
        assert_eq!(w.feed().dropped, DISCARD_LIMIT);
        // A close answer ends it: lingering drops the rest.
        h.answer("A;", true);
        assert!(h.conn.stream.shut.get());
        assert!(h.conn.inflow.is_none());
    }

    #[test]
    fn a_malformed_chunk_fails_the_stream_and_closes_after_the_answer() {
        let mut h = streaming();
        h.arrive(
            "POST /u HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nZ\r\n",
        );
        assert_eq!(h.dispatched(), ["/u"]);
        let w = window(&h, 0);
        assert_eq!(w.read_now(10).0, b"abc");
        assert_eq!(w.ended().unwrap().unwrap_err().status(), 400);
        assert!(matches!(h.conn.phase, Phase::Closing(Why::BodyFailed)));
        // Nothing after it is read; the answer goes out, then the close.
        h.arrive(get("/b"));
        assert_eq!(h.dispatched(), ["/u"]);
        h.answer("A;", false);
        assert_eq!(h.written(), "A;");
        assert!(h.conn.stream.shut.get());
    }

    #[test]
    fn eof_mid_body_fails_the_stream() {
        let mut h = streaming();
        h.conn
            .stream
            .script
            .push_back(data(&(post(10, "") + "abc")));
        h.conn.stream.script.push_back(Step::Eof);
        h.conn.input.on_event(true, true);
        h.pump();
        let w = window(&h, 0);
        assert_eq!(w.read_now(10).0, b"abc");
        assert_eq!(w.ended(), Some(Err(BodyError::EOF)));
        assert_eq!(h.answer("A;", false), Fate::Close);
    }

    #[test]
    fn continue_for_a_streamed_body_waits_for_the_first_read_and_earlier_answers() {
        let mut h = streaming();
        h.arrive(get("/a") + &post(5, "Expect: 100-continue\r\n"));
        assert_eq!(h.dispatched(), ["/a", "/u"]);
        let w = window(&h, 1);
        // The handler reads before /a's answer is in: the 100 waits.
        w.ask_continue();
        h.pump();
        assert_eq!(h.written(), "");
        h.answer("A;", false);
        assert_eq!(h.written(), "A;HTTP/1.1 100 Continue\r\n\r\n");
        h.arrive("hello");
        assert_eq!(w.read_now(10).0, b"hello");
        assert_eq!(w.ended(), Some(Ok(())));
    }

    #[test]
    fn the_connection_going_away_mid_body_wakes_the_reader() {
        let mut h = streaming();
        h.arrive(post(10, "") + "abc");
        let w = window(&h, 0);
        drop(h);
        assert_eq!(w.read_now(10).0, b"abc");
        assert_eq!(w.ended(), Some(Err(BodyError::ABORTED)));
    }

    #[test]
    fn input_follows_the_edges() {
        let mut i = Input::Ready;
        i.on_event(true, false);
        assert_eq!(i, Input::Ready);
        i = Input::Drained;
        i.on_event(false, false);
        assert_eq!(i, Input::Drained, "a writable-only event");
        i.on_event(true, false);
        assert_eq!(i, Input::Ready);
        i.on_event(true, true);
        assert_eq!(i, Input::FinSeen);
        i.on_event(true, false);
        assert_eq!(i, Input::FinSeen);
        i = Input::Eof;
        i.on_event(true, true);
        assert_eq!(i, Input::Eof);
    }
}
