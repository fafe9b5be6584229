//! Streamed request bodies: the bounded window between the IO actor that
//! reads a body off the socket and the handler that reads it as
//! [`BodyReader`] (`impl Read`).
//!
//! ```text
//!  socket ──▶ IO actor: reader.rs decodes (Content-Length / chunked)
//!               │ push ≤ room            ▲ IoMsg::BodyResume (room freed,
//!               ▼                        │  100-continue asked, abandoned)
//!          Window (≤ BODY_WINDOW bytes, Mutex + Condvar)
//!               │ read (blocks while empty)
//!               ▼
//!          handler's BodyReader
//! ```
//!
//! The IO actor owns pausing: it reads the socket only while the window has
//! room, so a handler that stops reading stops the client (TCP
//! backpressure). When the handler frees half the window of a window the IO
//! actor found full, it posts `IoMsg::BodyResume`. Bound: per streamed
//! request at most [`BODY_WINDOW`] decoded bytes wait in the window, plus at
//! most one socket read (64 KiB) undecoded in the reader.
//!
//! Answering the request, or dropping its reader, abandons the body: the
//! IO actor reads and drops the rest, at most [`DISCARD_LIMIT`] bytes
//! before the answer is posted, and after it only what the answer allowed
//! (see [`BodyStream::closes_after_answer`]), so keep-alive stays correct.

use crate::io::{IoHandle, IoMsg};
use std::fmt;
use std::io::{self, Read};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Decoded body bytes that may wait for the handler, per streamed request.
pub(crate) const BODY_WINDOW: usize = 64 * 1024;
/// Body bytes the IO actor drops for an abandoned body before the request
/// is answered; an answer leaving more unread closes the connection.
pub(crate) const DISCARD_LIMIT: u64 = 256 * 1024;

/// Why a streamed body ended early: the [`io::Error`] a read returns, and
/// the status natron answers with if the handler does not.
///
/// It is the `get_ref()` of that error, so a handler can tell a body too
/// large (`413`) from a malformed one (`400`) or a client gone:
///
/// ```
/// # fn f(e: std::io::Error) -> Option<u16> {
/// use natron::http::BodyError;
/// e.get_ref()?.downcast_ref::<BodyError>().map(BodyError::status)
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyError {
    kind: io::ErrorKind,
    status: u16,
    reason: &'static str,
}

impl BodyError {
    pub(crate) const ABORTED: BodyError = BodyError {
        kind: io::ErrorKind::ConnectionAborted,
        status: 400,
        reason: "the connection closed before the request body ended",
    };
    pub(crate) const EOF: BodyError = BodyError {
        kind: io::ErrorKind::UnexpectedEof,
        status: 400,
        reason: "the client ended its side before the request body ended",
    };
    pub(crate) const TIMED_OUT: BodyError = BodyError {
        kind: io::ErrorKind::TimedOut,
        status: 408,
        reason: "request body not received in time",
    };

    /// A framing error of the reader (`400` malformed chunked coding,
    /// `413` past the resource's `max_body_len`).
    pub(crate) fn framing(status: u16, reason: &'static str) -> BodyError {
        BodyError {
            // `FileTooLarge` would say 413 better, but needs Rust 1.83
            // (MSRV 1.80): the status tells them apart.
            kind: io::ErrorKind::InvalidData,
            status,
            reason,
        }
    }

    /// The status natron answers with when the handler leaves the request
    /// unanswered (or returns this error through `?`): `400` malformed or
    /// cut short, `408` stalled, `413` too large.
    ///
    /// ```
    /// use natron::{http::BodyError, Request, Router, Server};
    /// use std::io::{Read, Write};
    ///
    /// let mut router = Router::new();
    /// router.post("/", |mut req: Request| {
    ///     let mut body = Vec::new();
    ///     match req.body_reader().read_to_end(&mut body) {
    ///         Ok(n) => req.respond(200, (), format!("{n} bytes")),
    ///         Err(e) => {
    ///             let why = e.get_ref().and_then(|e| e.downcast_ref::<BodyError>());
    ///             let status = why.map_or(500, BodyError::status);
    ///             req.respond(status, (), format!("refused with {status}"))
    ///         }
    ///     }
    /// })
    /// .stream_body();
    /// let server = Server::new(router);
    /// let handle = server.handle();
    /// std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// let addr = handle.wait_until_ready(std::time::Duration::from_secs(5)).unwrap();
    /// let mut conn = std::net::TcpStream::connect(addr).unwrap();
    /// // `zz` is not a chunk size (RFC 9112 §7.1).
    /// conn.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    ///     .unwrap();
    /// let mut answer = String::new();
    /// conn.read_to_string(&mut answer).unwrap(); // then closed: the framing is lost
    /// assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    /// assert!(answer.ends_with("refused with 400"), "{answer}");
    /// handle.close();
    /// ```
    pub fn status(&self) -> u16 {
        self.status
    }

    /// What went wrong, in words (also the body natron answers with
    /// when the handler leaves the request unanswered).
    ///
    /// ```
    /// # use natron::{http::BodyError, Request, Router, Server};
    /// # use std::io::{Read, Write};
    /// # let mut router = Router::new();
    /// # router.post("/", |mut req: Request| {
    /// #     let mut body = Vec::new();
    /// #     if let Err(e) = req.body_reader().read_to_end(&mut body) {
    /// #         let why = e.get_ref().and_then(|e| e.downcast_ref::<BodyError>());
    /// let reason = why.map_or("not a body error", BodyError::reason);
    /// req.respond(400, (), reason)
    /// #     } else {
    /// #         req.respond(200, (), "")
    /// #     }
    /// # })
    /// # .stream_body();
    /// let server = Server::new(router);
    /// let handle = server.handle();
    /// std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// let addr = handle.wait_until_ready(std::time::Duration::from_secs(5)).unwrap();
    /// let mut conn = std::net::TcpStream::connect(addr).unwrap();
    /// // `zz` is not a chunk size (RFC 9112 §7.1).
    /// conn.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    ///     .unwrap();
    /// let mut answer = String::new();
    /// conn.read_to_string(&mut answer).unwrap(); // then closed: the framing is lost
    /// assert!(answer.contains("\r\n\r\ninvalid chunk"), "{answer}");
    /// handle.close();
    /// ```
    pub fn reason(&self) -> &'static str {
        self.reason
    }

    fn to_io(self) -> io::Error {
        io::Error::new(self.kind, self)
    }
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.reason, self.status)
    }
}

impl std::error::Error for BodyError {}

/// Server-wide counters of streamed bodies (`Stats`).
#[derive(Debug, Default)]
pub(crate) struct BodyStats {
    /// Decoded bytes waiting in every window now.
    pub(crate) queued: AtomicUsize,
    /// The most bytes one window ever held (≤ [`BODY_WINDOW`]).
    pub(crate) peak: AtomicUsize,
}

/// Where a request's `Expect: 100-continue` stands (RFC 9110 §10.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// Not asked, already answered, or made moot by body bytes arriving.
    Done,
    /// The client waits for `100 Continue`; the handler has not read yet.
    Owed,
    /// The handler started reading: the IO actor sends `100` once every
    /// earlier response is queued.
    Asked,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Open,
    Complete,
    Failed(BodyError),
}

struct Window {
    buf: Vec<u8>,
    /// Bytes of `buf` before `pos` were read by the handler.
    pos: usize,
    end: End,
    /// Body bytes decoded by the IO actor so far (dropped ones included).
    received: u64,
    content_length: Option<u64>,
    /// The IO actor found the window full and stopped reading the socket:
    /// the read that frees room must post `BodyResume`.
    paused: bool,
    /// The handler is done with the body (answered, or dropped its
    /// reader): the IO actor drops the rest.
    abandoned: bool,
    /// `received` when the body was abandoned.
    abandoned_at: u64,
    expect: Expect,
}

impl Window {
    fn queued(&self) -> usize {
        self.buf.len() - self.pos
    }
}

/// The window, shared by the IO actor (writer) and the handler (reader).
pub(crate) struct BodyShared {
    window: Mutex<Window>,
    readable: Condvar,
    stats: Arc<BodyStats>,
}

/// What the IO actor needs to know to feed a window (one lock).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Feed {
    /// Bytes it may push now (0: paused until `BodyResume`).
    pub(crate) room: usize,
    pub(crate) abandoned: bool,
    /// Body bytes dropped since the handler abandoned the body.
    pub(crate) dropped: u64,
    /// The handler started reading and `100 Continue` is still owed.
    pub(crate) continue_asked: bool,
    /// The client owes bytes: not paused by the handler, not waiting for
    /// `100 Continue` (the body stall timeout applies).
    pub(crate) waits_on_client: bool,
}

fn lock(m: &Mutex<Window>) -> MutexGuard<'_, Window> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl BodyShared {
    pub(crate) fn new(
        content_length: Option<u64>,
        expect_continue: bool,
        stats: Arc<BodyStats>,
    ) -> Arc<BodyShared> {
        Arc::new(BodyShared {
            window: Mutex::new(Window {
                buf: Vec::new(),
                pos: 0,
                end: End::Open,
                received: 0,
                content_length,
                paused: false,
                abandoned: false,
                abandoned_at: 0,
                expect: if expect_continue {
                    Expect::Owed
                } else {
                    Expect::Done
                },
            }),
            readable: Condvar::new(),
            stats,
        })
    }

    /// IO actor: the state it feeds by. Finding the window full marks it
    /// paused in the same critical section in which a read checks the
    /// mark, so the read that frees room always posts `BodyResume`: the
    /// IO actor stops only after a `feed` that saw no room.
    pub(crate) fn feed(&self) -> Feed {
        let mut w = lock(&self.window);
        let room = BODY_WINDOW - w.queued();
        if room == 0 && !w.abandoned {
            w.paused = true;
        }
        Feed {
            room,
            abandoned: w.abandoned,
            dropped: w.received - w.abandoned_at,
            continue_asked: w.expect == Expect::Asked,
            waits_on_client: !w.abandoned && room > 0 && w.expect == Expect::Done,
        }
    }

    /// IO actor: `100 Continue` is queued (or not needed any more).
    pub(crate) fn continue_sent(&self) {
        lock(&self.window).expect = Expect::Done;
    }

    /// IO actor: `bytes` of an abandoned body were decoded and dropped.
    pub(crate) fn dropped(&self, bytes: usize) {
        let mut w = lock(&self.window);
        w.received += bytes as u64;
        w.expect = Expect::Done;
    }

    /// IO actor: appends decoded bytes (at most the room [`Self::feed`]
    /// gave) and wakes the handler.
    pub(crate) fn push(&self, bytes: &[u8]) {
        let mut w = lock(&self.window);
        debug_assert!(w.queued() + bytes.len() <= BODY_WINDOW);
        if w.abandoned {
            w.received += bytes.len() as u64;
            return;
        }
        if w.pos > 0 && w.pos == w.buf.len() {
            w.buf.clear();
            w.pos = 0;
        } else if w.buf.len() + bytes.len() > BODY_WINDOW {
            // Keep the buffer within the window: move the unread bytes
            // to the front rather than grow.
            let pos = w.pos;
            w.buf.drain(..pos);
            w.pos = 0;
        }
        if w.buf.capacity() == 0 {
            w.buf.reserve_exact(BODY_WINDOW);
        }
        w.buf.extend_from_slice(bytes);
        w.received += bytes.len() as u64;
        // Body bytes arrived: the client did not wait for 100 (RFC 9110
        // §10.1.1 lets the server omit it then).
        w.expect = Expect::Done;
        // Counted under the window's lock, so a read's subtraction never
        // comes before this addition (`stats()` never sees it wrap).
        self.stats.queued.fetch_add(bytes.len(), Ordering::Relaxed);
        self.stats.peak.fetch_max(w.queued(), Ordering::Relaxed);
        drop(w);
        self.readable.notify_all();
    }

    /// IO actor: the body ended where its framing says.
    pub(crate) fn complete(&self) {
        let mut w = lock(&self.window);
        if w.end == End::Open {
            w.end = End::Complete;
        }
        drop(w);
        self.readable.notify_all();
    }

    /// The body cannot be read to its end; a no-op once it has ended.
    pub(crate) fn fail(&self, why: BodyError) {
        let mut w = lock(&self.window);
        if w.end == End::Open {
            w.end = End::Failed(why);
        }
        drop(w);
        self.readable.notify_all();
    }

    /// The handler is done with the body; returns whether the IO actor
    /// must be told (it is still reading it).
    pub(crate) fn abandon(&self) -> bool {
        let mut w = lock(&self.window);
        let was = w.abandoned;
        if !was {
            w.abandoned = true;
            w.abandoned_at = w.received;
        }
        let unread = w.queued();
        w.buf = Vec::new();
        w.pos = 0;
        let tell = !was && w.end == End::Open;
        self.stats.queued.fetch_sub(unread, Ordering::Relaxed);
        drop(w);
        self.readable.notify_all();
        tell
    }

    /// The handler's blocking read. `resume`: post `BodyResume` after.
    fn read(&self, out: &mut [u8]) -> (io::Result<usize>, bool) {
        if out.is_empty() {
            return (Ok(0), false);
        }
        let mut w = lock(&self.window);
        let mut resume = false;
        loop {
            if w.abandoned {
                let e = io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the request was answered: the rest of its body is discarded",
                );
                return (Err(e), resume);
            }
            let queued = w.queued();
            if queued > 0 {
                let n = queued.min(out.len());
                out[..n].copy_from_slice(&w.buf[w.pos..w.pos + n]);
                w.pos += n;
                if w.paused && w.queued() <= BODY_WINDOW / 2 {
                    // Half the window is free again: worth a wake-up of the
                    // IO actor (a resume per byte read would cost more
                    // than the copy).
                    w.paused = false;
                    resume = true;
                }
                self.stats.queued.fetch_sub(n, Ordering::Relaxed);
                drop(w);
                return (Ok(n), resume);
            }
            match w.end {
                End::Complete => return (Ok(0), resume),
                End::Failed(why) => return (Err(why.to_io()), resume),
                End::Open => {}
            }
            if w.expect == Expect::Owed {
                w.expect = Expect::Asked;
                // The IO actor must hear of it before this read can be
                // satisfied: the client sends nothing until the 100.
                return (Err(io::ErrorKind::Interrupted.into()), true);
            }
            w = self.readable.wait(w).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn failure(&self) -> Option<BodyError> {
        match lock(&self.window).end {
            End::Failed(why) => Some(why),
            _ => None,
        }
    }
}

/// The handler's side without threads, for the IO actor's unit tests and
/// the fuzz driver.
#[cfg(any(test, fuzzing))]
impl BodyShared {
    /// A read that never blocks: up to `max` queued bytes, and whether
    /// the read must post `BodyResume`.
    pub(crate) fn read_now(&self, max: usize) -> (Vec<u8>, bool) {
        if lock(&self.window).queued() == 0 {
            return (Vec::new(), false);
        }
        let mut out = vec![0; max];
        let (n, resume) = self.read(&mut out);
        out.truncate(n.expect("queued bytes are read"));
        (out, resume)
    }

    /// The handler's first read of a body whose client expects `100`.
    #[cfg(test)]
    pub(crate) fn ask_continue(&self) {
        assert!(self.ask_continue_if_owed());
    }

    /// What a read finding the window empty does: asks for `100 Continue`
    /// if it is owed (the reader then posts `BodyResume`).
    pub(crate) fn ask_continue_if_owed(&self) -> bool {
        let mut w = lock(&self.window);
        let owed = w.expect == Expect::Owed && w.queued() == 0 && w.end == End::Open;
        if owed {
            w.expect = Expect::Asked;
        }
        owed
    }

    pub(crate) fn queued_now(&self) -> usize {
        lock(&self.window).queued()
    }

    /// `None` while open; the failure, if it failed.
    pub(crate) fn ended(&self) -> Option<Result<(), BodyError>> {
        match lock(&self.window).end {
            End::Open => None,
            End::Complete => Some(Ok(())),
            End::Failed(why) => Some(Err(why)),
        }
    }
}

impl Drop for BodyShared {
    fn drop(&mut self) {
        let w = self.window.get_mut().unwrap_or_else(|e| e.into_inner());
        let unread = w.queued();
        self.stats.queued.fetch_sub(unread, Ordering::Relaxed);
    }
}

/// The handler's side of a streamed body: the window and the way to wake
/// the IO actor that feeds it. One pointer, cheap to clone: a `Responder`
/// and `Parts` carry it for every request, so it costs one word where no
/// body streams (and an idle WebSocket keeps its `Parts`).
#[derive(Clone)]
pub(crate) struct BodyStream(Arc<StreamHandle>);

pub(crate) struct StreamHandle {
    shared: Arc<BodyShared>,
    io: IoHandle,
    conn: u64,
}

impl std::ops::Deref for BodyStream {
    type Target = StreamHandle;
    fn deref(&self) -> &StreamHandle {
        &self.0
    }
}

impl BodyStream {
    pub(crate) fn new(shared: Arc<BodyShared>, io: IoHandle, conn: u64) -> BodyStream {
        BodyStream(Arc::new(StreamHandle { shared, io, conn }))
    }

    fn resume(&self) {
        self.io.post(IoMsg::BodyResume { conn: self.conn });
    }

    fn read(&self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            let (result, resume) = self.shared.read(out);
            if resume {
                self.resume();
            }
            match result {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    /// The handler is done with the body: the IO actor drops the rest.
    pub(crate) fn abandon(&self) {
        if self.shared.abandon() {
            self.resume();
        }
    }

    /// Whether an answer sent now must close the connection (RFC 9112
    /// §9.6, RFC 9110 §10.1.1): the body failed (its framing is lost), or
    /// it is unfinished and either its length is unknown (chunked), more
    /// than [`DISCARD_LIMIT`] of it is left, or the client still waits for
    /// `100 Continue` and may never send it.
    pub(crate) fn closes_after_answer(&self) -> bool {
        let w = lock(&self.shared.window);
        match w.end {
            End::Complete => false,
            End::Failed(_) => true,
            End::Open => {
                w.expect != Expect::Done
                    || match w.content_length {
                        Some(len) => len.saturating_sub(w.received) > DISCARD_LIMIT,
                        None => true,
                    }
            }
        }
    }

    /// Why the body failed, if it did.
    pub(crate) fn failure(&self) -> Option<BodyError> {
        self.shared.failure()
    }
}

/// A request body as [`Read`]: the bytes buffered with the request, or,
/// for a streamed body (see
/// [`Router::stream_body`](crate::Router::stream_body)), the bytes as
/// they arrive, decoded from `Content-Length` or chunked framing (RFC 9112
/// §6.2, §7.1).
///
/// From [`Parts::body_reader`](crate::Parts::body_reader). A read blocks
/// until body bytes arrive; `Ok(0)` is the end of the body. A streamed
/// body waits in a window of 64 KiB between the socket and this reader: while the
/// handler does not read, natron stops reading the socket, and the
/// client's sends block (TCP backpressure), so an upload of any size costs
/// the server 64 KiB (plus one socket read), not its size.
///
/// `Expect: 100-continue` (RFC 9110 §10.1.1): for a streamed body the
/// `100 Continue` is sent when the handler first reads, so a handler that
/// answers at once (say `401`) never receives the body.
///
/// Dropping the reader, or answering the request, abandons the rest of the
/// body: natron reads and discards it (up to 256 KiB) to keep the
/// connection for the next request, or closes the connection after the
/// answer when more is left, its length is unknown, or the client still
/// waits for `100 Continue`.
///
/// # Errors
///
/// A read returns an [`io::Error`] whose inner error is a [`BodyError`]:
///
/// | kind | status | when |
/// |---|---|---|
/// | `InvalidData` | 413 | the body passed the resource's `max_body_len` (chunked; a `Content-Length` above it is answered `413` before the handler runs) |
/// | `InvalidData` | 400 | malformed chunked framing (RFC 9112 §7.1) |
/// | `UnexpectedEof` | 400 | the client closed its side before the body ended |
/// | `ConnectionAborted` | 400 | the connection closed (reset, server shutdown) |
/// | `TimedOut` | 408 | no body byte for `idle_timeout` while the reader waited |
///
/// and `BrokenPipe` (no inner error) once the request is answered. After
/// any of these the connection closes once the request is answered; left
/// unanswered (or answered from the error by `?`), the request gets the
/// status above.
pub struct BodyReader {
    inner: Inner,
}

enum Inner {
    Buffered(io::Cursor<Vec<u8>>),
    Streamed(BodyStream),
}

impl BodyReader {
    pub(crate) fn buffered(body: Vec<u8>) -> BodyReader {
        BodyReader {
            inner: Inner::Buffered(io::Cursor::new(body)),
        }
    }

    pub(crate) fn streamed(stream: BodyStream) -> BodyReader {
        BodyReader {
            inner: Inner::Streamed(stream),
        }
    }

    /// Whether the body is read from the socket as it arrives (else it
    /// was buffered whole before the handler ran): see
    /// [`Parts::is_body_streamed`](crate::Parts::is_body_streamed).
    ///
    /// ```
    /// use natron::{test::TestClient, Request, Router};
    ///
    /// let mut router = Router::new();
    /// router
    ///     .put("/files/@name", |mut req: Request| {
    ///         let streamed = req.body_reader().is_streamed();
    ///         req.respond(200, (), streamed.to_string())
    ///     })
    ///     .stream_body();
    /// router.post("/notes", |mut req: Request| {
    ///     let streamed = req.body_reader().is_streamed();
    ///     req.respond(200, (), streamed.to_string())
    /// });
    /// let client = TestClient::new(router);
    /// assert_eq!(client.put("/files/a").body("x").send().unwrap().text(), "true");
    /// assert_eq!(client.post("/notes").body("x").send().unwrap().text(), "false");
    /// ```
    pub fn is_streamed(&self) -> bool {
        matches!(self.inner, Inner::Streamed(_))
    }
}

impl Read for BodyReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Buffered(cursor) => cursor.read(out),
            Inner::Streamed(stream) => stream.read(out),
        }
    }
}

impl Drop for BodyReader {
    fn drop(&mut self) {
        if let Inner::Streamed(stream) = &self.inner {
            stream.abandon();
        }
    }
}

impl fmt::Debug for BodyReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyReader")
            .field("streamed", &self.is_streamed())
            .finish()
    }
}

/// A streamed body not yet taken by [`Parts::body_reader`](crate::Parts):
/// dropped untaken, it abandons the body. A clone of [`Parts`](crate::Parts)
/// carries no body stream (there is one reader per body).
#[derive(Default)]
pub(crate) struct StreamSlot(pub(crate) Option<BodyStream>);

impl Clone for StreamSlot {
    fn clone(&self) -> Self {
        StreamSlot(None)
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        if let Some(stream) = self.0.take() {
            stream.abandon();
        }
    }
}
