//! Streaming responses: [`ResponseStream`], a handle that writes a
//! response body chunk by chunk, from any thread, after the handler has
//! returned.
//!
//! # Shape
//!
//! [`Request::respond_stream`](crate::Request::respond_stream) sends the
//! head at once and returns the handle. Each [`ResponseStream::write`]
//! frames its bytes for the wire on the calling thread and posts them to
//! the IO actor that owns the socket (`IoMsg::StreamChunk`); no worker is
//! held while the stream is open. The body is framed (RFC 9112 §6.3) as:
//!
//! * HTTP/1.1: `Transfer-Encoding: chunked` (RFC 9112 §7.1), one chunk per
//!   `write`; [`ResponseStream::finish_with_trailers`] sends a trailer
//!   section (§7.1.2);
//! * HTTP/1.0: no length; the connection closes at the end of the body;
//! * a known length ([`Request::respond_reader_sized`](crate::Request::respond_reader_sized)):
//!   `Content-Length`;
//! * `HEAD`, `204`, `304`: no body; the head answers the request at once
//!   (the stream is finished: `is_open` is false), so the connection goes
//!   on with its next request; writes and `finish` are accepted and do
//!   nothing.
//!
//! A body of unknown length is compressed when negotiated: each write is
//! compressed and flushed under the handle's lock, then framed.
//!
//! # Invariants (tests in `tests/stream.rs`)
//!
//! * **Chunks leave in write order**, and **nothing leaves after finish**:
//!   a write and a finish each frame, count and post under the handle's
//!   one lock (`Ctl`), so their posts are ordered as their calls, and a
//!   write after `finish` (or after the stream closed) is refused before it
//!   posts anything. The IO actor drops a chunk that reaches it after the
//!   stream ended (it can only have been posted before the IO actor ended
//!   it: shutdown, timeout).
//! * **Responses keep their order**: the stream holds the connection's run
//!   right until it ends, so the handlers of requests pipelined behind it
//!   run only then, and their responses are posted after its end.
//! * **Bounded memory**: every byte posted and not yet written counts in
//!   `queued`; a write that would take it past `max_outbound_len` is
//!   refused with [`StreamError::QueueFull`] (a write into an empty queue
//!   is always taken, so a chunk larger than the budget can still be sent).
//!
//! # State
//!
//! ```text
//!   Open ── finish(), last handle dropped (any thread) ─────────▶ Finished
//!   Open ── IO actor: client gone, idle timeout, shutdown,
//!           or a slow pub/sub subscriber aborted (hub) ──────────▶ Closed
//! ```
//!
//! Both ends release the run right and end the stream's pub/sub
//! subscriptions; only `Closed` runs the `on_close` callback (once, on a
//! worker).

use crate::actor::budget::{Budget, Ended};
use crate::actor::ledger::Ledger;
use crate::actor::scheduler::Done;
use crate::actor::sync::lock;
use crate::app::App;
use crate::connection::{panic_message, Connection, Event};
use crate::http::compress::{self, Encoding, StreamEncoder};
use crate::http::Headers;
use crate::io::writer::Chunk;
use crate::io::{IoHandle, IoMsg};
use crate::pubsub::Subscription;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Why a stream refused a write (nothing was queued) or a finish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamError {
    /// The stream has ended: finished, or closed because the client left,
    /// it timed out, or the server is shutting down.
    Closed,
    /// The outbound budget (`max_outbound_len` bytes posted and not yet
    /// written) is full: the client reads slower than the stream writes.
    /// The stream stays open; wait with [`ResponseStream::wait_writable`]
    /// or [`ResponseStream::on_writable`] and write again.
    QueueFull,
    /// The write would go past the `Content-Length` the stream announced.
    TooLong,
    /// A field would break the format: a Server-Sent Event's `id` or
    /// `event` with a CR or LF (or an `id` with a NUL), a trailer field
    /// that is not valid (RFC 9110 §5). Nothing was sent.
    Invalid(&'static str),
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::Closed => f.write_str("the response stream has ended"),
            StreamError::QueueFull => {
                f.write_str("the response stream's outbound queue is full (slow client)")
            }
            StreamError::TooLong => f.write_str("write past the announced Content-Length"),
            StreamError::Invalid(why) => write!(f, "invalid field: {why}"),
        }
    }
}

impl std::error::Error for StreamError {}

/// How the body is delimited on the wire (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// HTTP/1.1 `Transfer-Encoding: chunked`.
    Chunked,
    /// HTTP/1.0: the body ends when the connection closes.
    UntilClose,
    /// `Content-Length`: this many bytes are still owed.
    Sized(u64),
    /// `HEAD`, `204`, `304`: no body at all.
    NoBody,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Open,
    Finished,
    Closed,
}

type Job = Box<dyn FnOnce() + Send>;

/// What changes under the handle's lock.
struct Ctl {
    state: State,
    framing: Framing,
    /// The connection closes after the body (`Connection: close`).
    close: bool,
    /// Compresses each write (`Content-Encoding` negotiated), if set.
    encoder: Option<StreamEncoder>,
    /// The connection's run right, held until the stream ends.
    done: Option<Done<Connection>>,
    on_close: Option<Job>,
    /// Runs (on a worker) once the budget is below half.
    on_writable: Option<Job>,
    /// Middleware's done-hooks, run when the stream ends.
    hooks: Option<Box<crate::middleware::Hooks>>,
    /// Body bytes written, before compression and framing (for `hooks`).
    body_len: u64,
    /// A response with no body (`HEAD`, `204`, `304`): answered with its
    /// head, finished at once; writes and `finish` are accepted and do
    /// nothing.
    head_only: bool,
}

/// State shared by the handles, the IO actor and the pub/sub hub.
pub(crate) struct StreamShared {
    /// The connection's id: what the IO actor's messages name.
    pub(crate) conn: u64,
    /// A process-unique id of this stream (its pub/sub key).
    pub(crate) id: u64,
    pub(crate) io: IoHandle,
    actor: Arc<Connection>,
    app: Arc<App>,
    /// Bytes posted and not yet written to the socket, and the wake-up of
    /// `wait_writable` and `on_writable` (`actor/budget.rs`).
    budget: Budget,
    ctl: Mutex<Ctl>,
    /// Live `ResponseStream` handles; the last one dropped finishes.
    handles: AtomicUsize,
    /// Heartbeat comment interval in ms (0: none); the IO actor's sweep
    /// sends `:\n\n` after that long without a chunk.
    pub(crate) heartbeat_ms: AtomicU64,
    /// Runs this stream's callbacks one at a time on the worker pool (a
    /// connection actor of its own: the connection's mailbox is held).
    jobs: OnceLock<Arc<Connection>>,
    /// Its pub/sub subscriptions, ended with the stream.
    pub(crate) topics: Ledger<Subscription>,
}

/// A streaming response body; see the [module docs](self).
///
/// Cheap to clone, `Send + Sync`: write from any thread. The stream ends
/// with [`finish`](Self::finish), when the last handle is dropped, or
/// when the client leaves (then writes return [`StreamError::Closed`]).
///
/// ```
/// use natron::Request;
/// use std::time::Duration;
///
/// fn ticker(req: Request) {
///     let stream = req.respond_stream(200, [("Content-Type", "text/plain")]);
///     std::thread::spawn(move || {
///         for i in 0..3 {
///             if stream.write(format!("tick {i}\n")).is_err() {
///                 return; // client gone
///             }
///             std::thread::sleep(Duration::from_millis(10));
///         }
///         let _ = stream.finish();
///     });
///     // The handler returns at once; no worker waits for the stream.
/// }
/// ```
pub struct ResponseStream {
    pub(crate) shared: Arc<StreamShared>,
}

impl Clone for ResponseStream {
    fn clone(&self) -> Self {
        self.shared.handles.fetch_add(1, Ordering::Relaxed);
        ResponseStream {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for ResponseStream {
    fn drop(&mut self) {
        if self.shared.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            let _ = self.shared.finish(None);
        }
    }
}

impl fmt::Debug for ResponseStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseStream")
            .field("id", &self.shared.id)
            .field("open", &self.is_open())
            .field("queued", &self.queued_bytes())
            .finish()
    }
}

/// Appends `n` in lower-case hex (a chunk size, RFC 9112 §7.1).
fn push_hex(out: &mut Vec<u8>, n: usize) {
    let digits = format!("{n:x}");
    out.extend_from_slice(digits.as_bytes());
}

/// `bytes` as one chunk of a chunked body.
pub(crate) fn chunk(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 12);
    push_hex(&mut out, bytes.len());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
    out
}

/// At least what a compressed and flushed write of `len` bytes takes on
/// the wire, chunk framing included (deflate's stored blocks add 5 bytes
/// per 64 KiB; the flush, the gzip header and the chunk line a few dozen).
fn compressed_bound(len: usize) -> usize {
    len.saturating_add(len / 1024).saturating_add(64)
}

/// A heartbeat comment framed as `framing` wants it (`None`: nothing is
/// sent on this stream).
pub(crate) fn heartbeat(framing: Framing) -> Option<Chunk> {
    match framing {
        Framing::Chunked => Some(Chunk::Static(b"3\r\n:\n\n\r\n")),
        Framing::UntilClose => Some(Chunk::Static(b":\n\n")),
        Framing::Sized(_) | Framing::NoBody => None,
    }
}

impl StreamShared {
    /// `done`: the run right, held until the stream ends (`None`: the
    /// stream starts closed). `close`: the connection closes after it.
    pub(crate) fn new(
        actor: Arc<Connection>,
        done: Option<Done<Connection>>,
        framing: Framing,
        max_queued: usize,
        close: bool,
    ) -> Arc<StreamShared> {
        let app = actor.app.clone();
        Arc::new(StreamShared {
            conn: actor.id,
            id: app.next_conn_id(),
            io: actor.io.clone(),
            actor,
            app,
            budget: Budget::new(max_queued),
            ctl: Mutex::new(Ctl {
                state: if done.is_some() {
                    State::Open
                } else {
                    State::Finished
                },
                framing,
                close,
                encoder: None,
                done,
                on_close: None,
                on_writable: None,
                hooks: None,
                body_len: 0,
                head_only: false,
            }),
            handles: AtomicUsize::new(1),
            heartbeat_ms: AtomicU64::new(0),
            jobs: OnceLock::new(),
            topics: Ledger::new(),
        })
    }

    /// The outbound budget, in bytes.
    pub(crate) fn max_queued(&self) -> usize {
        self.budget.max()
    }

    /// The server's logger.
    pub(crate) fn log(&self) -> &slog::Logger {
        &self.app.log
    }

    /// The body's framing, as the IO actor frames what it adds itself.
    pub(crate) fn framing(&self) -> Framing {
        lock(&self.ctl).framing
    }

    /// Runs `job` on a worker, after the jobs queued before it.
    fn spawn(&self, job: Job) {
        let runner = self.jobs.get_or_init(|| {
            Arc::new(Connection::new(
                self.conn,
                self.actor.remote,
                self.app.clone(),
                self.io.clone(),
            ))
        });
        // Refused only once that mailbox is sealed, which nothing does.
        let _ = self.app.scheduler.deliver(runner, Event::Job(job));
    }

    /// Counts `len` bytes in, unless that passes the budget (a write into
    /// an empty queue is always taken).
    fn reserve(&self, len: usize) -> Result<(), StreamError> {
        if self.budget.reserve(len) {
            Ok(())
        } else {
            Err(StreamError::QueueFull)
        }
    }

    /// Frames, counts and posts `bytes` (already framed if `framed`).
    fn write(&self, bytes: &[u8]) -> Result<(), StreamError> {
        let mut ctl = lock(&self.ctl);
        if ctl.state != State::Open {
            return if ctl.head_only && ctl.state == State::Finished {
                Ok(())
            } else {
                Err(StreamError::Closed)
            };
        }
        // An empty chunk would end a chunked body (RFC 9112 §7.1).
        if bytes.is_empty() {
            return Ok(());
        }
        if ctl.framing == Framing::NoBody {
            return Ok(());
        }
        // A compressed write changes the compressor's state for good, so
        // its room is reserved before it is compressed (for its worst
        // case, then trimmed to what it took): a write refused after
        // compressing would lose bytes the rest of the stream refers to.
        let mut reserved = None;
        let compressed;
        let body = match ctl.encoder.as_mut() {
            Some(e) => {
                let bound = compressed_bound(bytes.len());
                self.reserve(bound)?;
                reserved = Some(bound);
                compressed = e.write(bytes);
                compressed.as_slice()
            }
            None => bytes,
        };
        let framed = match ctl.framing {
            Framing::Chunked => chunk(body),
            Framing::UntilClose => body.to_vec(),
            Framing::Sized(left) => {
                if bytes.len() as u64 > left {
                    return Err(StreamError::TooLong);
                }
                bytes.to_vec()
            }
            Framing::NoBody => return Ok(()),
        };
        match reserved {
            None => self.reserve(framed.len())?,
            // Before the post, so the bytes given back are never counted
            // out by the IO actor too.
            Some(bound) if bound > framed.len() => {
                // Wakes waiters the trim alone made room for; callbacks
                // run at the IO actor's next release of these bytes.
                let _ = self.budget.release(bound - framed.len());
            }
            Some(bound) => self.budget.count_in(framed.len() - bound),
        }
        if let Framing::Sized(left) = &mut ctl.framing {
            *left -= bytes.len() as u64;
        }
        ctl.body_len += bytes.len() as u64;
        self.io.post(IoMsg::StreamChunk {
            conn: self.conn,
            bytes: Chunk::Owned(framed),
        });
        Ok(())
    }

    /// Posts bytes framed for this stream already (a published event,
    /// shared by every subscriber with the same framing).
    pub(crate) fn write_framed(&self, bytes: Chunk) -> Result<(), StreamError> {
        let ctl = lock(&self.ctl);
        if ctl.state != State::Open {
            return Err(StreamError::Closed);
        }
        self.reserve(bytes.len())?;
        self.io.post(IoMsg::StreamChunk {
            conn: self.conn,
            bytes,
        });
        Ok(())
    }

    /// Ends the body: the last chunk (with `trailers`), or, for a body
    /// whose length is owed still, a close.
    fn finish(&self, trailers: Option<&Headers>) -> Result<(), StreamError> {
        let (done, on_writable, hooks) = {
            let mut ctl = lock(&self.ctl);
            if ctl.state != State::Open {
                return if ctl.head_only && ctl.state == State::Finished {
                    Ok(())
                } else {
                    Err(StreamError::Closed)
                };
            }
            ctl.state = State::Finished;
            let tail = ctl.encoder.take().map(StreamEncoder::finish);
            let (bytes, close) = match ctl.framing {
                Framing::Chunked => {
                    let mut end = match &tail {
                        Some(t) if !t.is_empty() => chunk(t),
                        _ => Vec::new(),
                    };
                    end.extend_from_slice(b"0\r\n");
                    if let Some(t) = trailers {
                        for (name, value) in t.iter() {
                            end.extend_from_slice(name.as_bytes());
                            end.extend_from_slice(b": ");
                            end.extend_from_slice(value.as_bytes());
                            end.extend_from_slice(b"\r\n");
                        }
                    }
                    end.extend_from_slice(b"\r\n");
                    (end, false)
                }
                Framing::UntilClose => (tail.unwrap_or_default(), true),
                // Fewer bytes than announced: only a close can tell the
                // client the body is incomplete (RFC 9112 §6.3).
                Framing::Sized(left) => (Vec::new(), left > 0),
                Framing::NoBody => (Vec::new(), false),
            };
            let close = close || ctl.close;
            if close {
                self.actor.mark_closed();
            }
            self.io.post(IoMsg::StreamEnd {
                conn: self.conn,
                bytes,
                close,
            });
            let hooks = ctl.hooks.take().map(|h| (h, ctl.body_len));
            (ctl.done.take(), self.take_on_writable(&mut ctl), hooks)
        };
        self.after_end();
        drop(on_writable);
        // After the end is posted: the next request's answer follows it.
        drop(done);
        if let Some((h, len)) = hooks {
            h.done(len, true, &self.app.log);
        }
        Ok(())
    }

    /// Ends the stream without its last chunk: the connection closes (a
    /// slow subscriber, a reader that failed). `on_close` runs.
    pub(crate) fn abort(&self) {
        if self.close() {
            self.io.post(IoMsg::StreamAbort { conn: self.conn });
        }
    }

    /// The IO actor ended the stream: the socket is gone (client left,
    /// write error, timeout, server stop) or the server drains (the IO
    /// actor sent the end of the body itself).
    pub(crate) fn ended_by_io(&self) {
        self.close();
    }

    /// The IO actor ends the stream at shutdown, with the end of its body:
    /// returns what a compressed body still owes (the compressor's last
    /// block and trailer, if compressed), taken in the same critical
    /// section that closes it, so no write is compressed after it.
    /// `None` if the stream had ended already: its handle posted its
    /// `StreamEnd` or `StreamAbort`, which is on its way.
    pub(crate) fn ended_by_drain(&self) -> Option<Option<Vec<u8>>> {
        let mut tail = None;
        self.close_with(|ctl| tail = ctl.encoder.take().map(StreamEncoder::finish))
            .then_some(tail)
    }

    /// Open -> Closed; false if it had ended already.
    fn close(&self) -> bool {
        self.close_with(|_| {})
    }

    /// [`Self::close`], running `last` under the lock as it closes.
    fn close_with(&self, last: impl FnOnce(&mut Ctl)) -> bool {
        let (done, on_close, on_writable, hooks) = {
            let mut ctl = lock(&self.ctl);
            if ctl.state != State::Open {
                return false;
            }
            ctl.state = State::Closed;
            last(&mut ctl);
            (
                ctl.done.take(),
                ctl.on_close.take(),
                self.take_on_writable(&mut ctl),
                ctl.hooks.take().map(|h| (h, ctl.body_len)),
            )
        };
        // Requests pipelined behind a stream cut short are not answered.
        self.actor.mark_closed();
        self.after_end();
        drop(on_writable);
        drop(done);
        if let Some(f) = on_close {
            self.spawn(f);
        }
        if let Some((h, len)) = hooks {
            // Maybe on an IO thread, which never runs user code.
            let log = self.app.log.clone();
            self.spawn(Box::new(move || h.done(len, false, &log)));
        }
        true
    }

    fn take_on_writable(&self, ctl: &mut Ctl) -> Option<Job> {
        let job = ctl.on_writable.take();
        if job.is_some() {
            self.budget.unregister();
        }
        job
    }

    /// Wakes the waiters (they see the end) and ends the subscriptions.
    fn after_end(&self) {
        self.budget.close();
        crate::pubsub::end_stream_subscriptions(self);
    }

    /// The IO actor wrote `n` bytes: takes them out of the budget and
    /// wakes whoever waits for room.
    ///
    /// # Errors
    ///
    /// More bytes than were counted in: a natron bug.
    pub(crate) fn release(&self, n: usize) -> Result<(), crate::io::Bug> {
        let room = self
            .budget
            .release(n)
            .map_err(|_| crate::io::Bug("stream bytes written that were never counted"))?;
        if room {
            let job = self.take_on_writable(&mut lock(&self.ctl));
            if let Some(job) = job {
                self.spawn(job);
            }
        }
        Ok(())
    }

    /// Counts bytes the IO actor queued itself (the head and what was
    /// queued before it, heartbeats).
    pub(crate) fn count_in(&self, n: usize) {
        self.budget.count_in(n);
    }
}

impl ResponseStream {
    pub(crate) fn new(shared: Arc<StreamShared>) -> ResponseStream {
        ResponseStream { shared }
    }

    /// Sends `bytes` as the next part of the body: one chunk with chunked
    /// framing (RFC 9112 §7.1). Never blocks. Empty writes send nothing (an
    /// empty chunk would end the body). For a `HEAD` request, `204` or
    /// `304`, the bytes are discarded and `Ok` returned.
    ///
    /// ```
    /// use natron::{test::TestClient, Request, StreamError};
    /// use std::sync::mpsc;
    ///
    /// let (tx, rx) = mpsc::channel();
    /// let client = TestClient::new(move |req: Request| {
    ///     let stream = req.respond_stream(200, [("Content-Type", "text/plain")]);
    ///     stream.write("hello, ").unwrap();
    ///     stream.write(b"world").unwrap();
    ///     stream.finish().unwrap();
    ///     tx.send(stream.write("late")).unwrap();
    /// });
    /// let res = client.get("/").send().unwrap();
    /// assert_eq!(res.header("transfer-encoding"), Some("chunked"));
    /// assert_eq!(res.text(), "hello, world");
    /// assert_eq!(rx.recv().unwrap(), Err(StreamError::Closed));
    /// ```
    ///
    /// # Errors
    ///
    /// [`StreamError::Closed`] once the stream has ended;
    /// [`StreamError::QueueFull`] when `max_outbound_len` bytes wait for
    /// the client already (the stream stays open; a compressed stream
    /// needs room for `bytes` uncompressed, its worst case, and counts what
    /// they compressed to);
    /// [`StreamError::TooLong`] past an announced `Content-Length`.
    /// Nothing is queued on error, and a compressed stream's compressor is
    /// untouched: the same bytes can be written again.
    pub fn write(&self, bytes: impl AsRef<[u8]>) -> Result<(), StreamError> {
        self.shared.write(bytes.as_ref())
    }

    /// Ends the body (the last chunk, `0\r\n\r\n`, with chunked framing;
    /// the close with HTTP/1.0; with a `Content-Length` not yet reached,
    /// a close too, so that the client sees the body is short, RFC 9112
    /// §6.3). Nothing is sent after it, from any handle; the connection's
    /// next request is then handled. Dropping the last handle does the
    /// same.
    ///
    /// ```
    /// use natron::{test::TestClient, Request, StreamError};
    /// use std::sync::mpsc;
    ///
    /// let (tx, rx) = mpsc::channel();
    /// let client = TestClient::new(move |req: Request| {
    ///     let stream = req.respond_stream(200, ());
    ///     stream.write("done").unwrap();
    ///     stream.finish().unwrap();
    ///     tx.send(stream).unwrap(); // a handle lives on, yet the body has ended
    /// });
    /// assert_eq!(client.get("/").send().unwrap().text(), "done");
    /// let stream = rx.recv().unwrap();
    /// assert_eq!(stream.finish(), Err(StreamError::Closed));
    /// ```
    ///
    /// # Errors
    ///
    /// [`StreamError::Closed`] if the stream had ended already (not for a
    /// response without a body, `HEAD`, `204`, `304`, whose `finish` is
    /// always `Ok`).
    pub fn finish(&self) -> Result<(), StreamError> {
        self.shared.finish(None)
    }

    /// [`finish`](Self::finish) with a trailer section (RFC 9112 §7.1.2):
    /// fields sent after the body, chunked framing only (dropped
    /// otherwise). Announce them with a `Trailer` field in the head
    /// (RFC 9110 §6.6.2).
    ///
    /// A [`TestClient`](crate::test::TestClient) drops trailers, so this
    /// example reads the wire from a server:
    ///
    /// ```
    /// use natron::{Request, Server, StreamError};
    /// use std::io::{Read, Write};
    /// use std::time::Duration;
    ///
    /// let server = Server::builder()
    ///     .handler(|req: Request| {
    ///         let stream = req.respond_stream(200, [("Trailer", "Checksum")]);
    ///         stream.write("hello").unwrap();
    ///         let bad = stream.finish_with_trailers([("Check sum", "x")]);
    ///         assert_eq!(bad, Err(StreamError::Invalid("trailer field"))); // still open
    ///         stream.finish_with_trailers([("Checksum", "5")]).unwrap();
    ///     })
    ///     .build();
    /// # let handle = server.handle();
    /// # let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// # let addr = handle.wait_until_ready(Duration::from_secs(5))?;
    /// let mut conn = std::net::TcpStream::connect(addr)?;
    /// conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
    /// let mut wire = String::new();
    /// conn.read_to_string(&mut wire)?;
    /// assert!(wire.ends_with("\r\n\r\n5\r\nhello\r\n0\r\nChecksum: 5\r\n\r\n"));
    /// # handle.close();
    /// # serving.join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`StreamError::Closed`] if the stream had ended already;
    /// [`StreamError::Invalid`] for a field name that is not a token or a
    /// value with CR, LF or NUL (RFC 9110 §5): the stream stays open.
    pub fn finish_with_trailers(&self, trailers: impl Into<Headers>) -> Result<(), StreamError> {
        let trailers = trailers.into();
        if trailers.check_fields().is_err() {
            return Err(StreamError::Invalid("trailer field"));
        }
        self.shared.finish(Some(&trailers))
    }

    /// Whether writes are still accepted: false once finished, or once
    /// the client left, the stream timed out or the server shuts down.
    /// False from the start for a response without a body (`HEAD`, `204`,
    /// `304`), whose writes are discarded.
    ///
    /// ```
    /// use natron::{test::TestClient, Request};
    /// use std::sync::mpsc;
    ///
    /// let (tx, rx) = mpsc::channel();
    /// let client = TestClient::new(move |req: Request| {
    ///     let stream = req.respond_stream(200, ());
    ///     let before = stream.is_open();
    ///     stream.finish().unwrap();
    ///     tx.send((before, stream.is_open())).unwrap();
    /// });
    /// client.get("/").send().unwrap();
    /// assert_eq!(rx.recv().unwrap(), (true, false));
    /// // No body to send: done from the start.
    /// client.head("/").send().unwrap();
    /// assert_eq!(rx.recv().unwrap(), (false, false));
    /// ```
    pub fn is_open(&self) -> bool {
        lock(&self.shared.ctl).state == State::Open
    }

    /// Bytes posted and not yet written to the socket (at most about
    /// `max_outbound_len`).
    ///
    /// ```
    /// use natron::{Request, Server, StreamError};
    /// use std::io::{Read, Write};
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// let (tx, rx) = mpsc::channel();
    /// let server = Server::builder()
    ///     .max_outbound_len(64 * 1024)
    ///     .handler(move |req: Request| {
    ///         let stream = req.respond_stream(200, ());
    ///         // The client reads nothing yet: its socket fills, then the budget.
    ///         while stream.write([b'x'; 16 * 1024]) == Ok(()) {}
    ///         tx.send(stream.queued_bytes()).unwrap();
    ///     })
    ///     .build();
    /// # let handle = server.handle();
    /// # let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// # let addr = handle.wait_until_ready(Duration::from_secs(5))?;
    /// let mut conn = std::net::TcpStream::connect(addr)?;
    /// conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
    /// let queued = rx.recv().unwrap();
    /// assert!(queued > 48 * 1024, "{queued}"); // one more 16 KiB write would pass 64 KiB
    /// conn.read_to_end(&mut Vec::new())?;
    /// # handle.close();
    /// # serving.join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn queued_bytes(&self) -> usize {
        self.shared.budget.queued()
    }

    /// Blocks until the client has taken enough that writes are accepted
    /// again (queued bytes at most half of `max_outbound_len`), or for
    /// `timeout`. Returns `Ok(true)` when writable, `Ok(false)` on timeout.
    /// For producers with a thread of their own; see
    /// [`on_writable`](Self::on_writable) to hold none.
    ///
    /// ```
    /// use natron::{Request, Server, StreamError};
    /// use std::io::{Read, Write};
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// let (tx, rx) = mpsc::channel();
    /// let server = Server::builder()
    ///     .max_outbound_len(64 * 1024)
    ///     .handler(move |req: Request| {
    ///         let stream = req.respond_stream(200, ());
    ///         let tx = tx.clone();
    ///         std::thread::spawn(move || {
    ///             let chunk = [b'x'; 16 * 1024];
    ///             let mut sent = 0;
    ///             while sent < 1000 {
    ///                 match stream.write(chunk) {
    ///                     Ok(()) => sent += 1,
    ///                     Err(StreamError::QueueFull) => {
    ///                         let writable = stream.wait_writable(Duration::from_millis(100));
    ///                         tx.send(writable).unwrap();
    ///                     }
    ///                     Err(_) => return, // client gone
    ///                 }
    ///             }
    ///         });
    ///     })
    ///     .build();
    /// # let handle = server.handle();
    /// # let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// # let addr = handle.wait_until_ready(Duration::from_secs(5))?;
    /// let mut conn = std::net::TcpStream::connect(addr)?;
    /// conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
    /// // Not reading: once the socket's buffers are full, the producer waits in vain.
    /// while rx.recv_timeout(Duration::from_secs(10)).unwrap() != Ok(false) {}
    /// // Reading: it waits only as long as the client takes, and sends everything.
    /// let mut wire = Vec::new();
    /// conn.read_to_end(&mut wire)?;
    /// assert!(wire.len() > 1000 * 16 * 1024);
    /// assert!(rx.try_iter().any(|w| w == Ok(true)));
    /// # handle.close();
    /// # serving.join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`StreamError::Closed`] once the stream has ended (also while
    /// waiting).
    pub fn wait_writable(&self, timeout: Duration) -> Result<bool, StreamError> {
        self.shared
            .budget
            .wait(timeout)
            .map_err(|Ended| StreamError::Closed)
    }

    /// Runs `f` once, on a worker, when writes are accepted again (queued
    /// bytes at most half of `max_outbound_len`): at once if they are.
    /// Holds no thread meanwhile. A later call replaces an `f` still
    /// waiting. Dropped without running if the stream ends first.
    ///
    /// A producer that holds no thread while the client is slow:
    ///
    /// ```
    /// use natron::{test::TestClient, Request, ResponseStream, Server, StreamError};
    ///
    /// /// Writes lines `next..100`, pausing whenever the client falls behind.
    /// fn pump(stream: ResponseStream, mut next: u32) {
    ///     while next < 100 {
    ///         match stream.write(format!("line {next}\n")) {
    ///             Ok(()) => next += 1,
    ///             Err(StreamError::QueueFull) => {
    ///                 return stream.on_writable(move |stream| pump(stream, next));
    ///             }
    ///             Err(_) => return, // client gone
    ///         }
    ///     }
    ///     let _ = stream.finish();
    /// }
    ///
    /// let server = Server::builder()
    ///     .max_outbound_len(64)
    ///     .handler(|req: Request| pump(req.respond_stream(200, ()), 0));
    /// let res = TestClient::with_server(server).get("/").send().unwrap();
    /// assert_eq!(res.text().lines().count(), 100);
    /// assert!(res.text().ends_with("line 99\n"));
    /// ```
    pub fn on_writable(&self, f: impl FnOnce(ResponseStream) + Send + 'static) {
        let handle = self.clone();
        let job: Job = Box::new(move || f(handle));
        let s = &self.shared;
        let mut ctl = lock(&s.ctl);
        if ctl.state != State::Open {
            return;
        }
        let room = match ctl.on_writable.replace(job) {
            None => s.budget.register(),
            // Replaced: the one registration stands.
            Some(_) => s.budget.is_writable(),
        };
        if room {
            if let Some(job) = s.take_on_writable(&mut ctl) {
                drop(ctl);
                s.spawn(job);
            }
        }
    }

    /// Runs `f` once, on a worker, when the stream ends without
    /// [`finish`](Self::finish): the client left (or a write to it failed),
    /// it timed out, the server shuts down, or, subscribed to a
    /// [`PubSub`](crate::PubSub) topic, it fell behind. At once (on a
    /// worker) if that has happened already; never if it finished. A later
    /// call replaces an `f` not yet run. A handle `f` captures counts as a
    /// handle: the stream is not finished by dropping the others.
    ///
    /// ```
    /// use natron::test::{TestClient, TestError};
    /// use natron::{Request, ResponseStream};
    /// use std::sync::{mpsc, Arc, Mutex};
    /// use std::time::Duration;
    ///
    /// // Subscribers, written to by some other part of the program.
    /// let subscribers: Arc<Mutex<Vec<ResponseStream>>> = Arc::default();
    /// let (gone_tx, gone) = mpsc::channel();
    /// let list = subscribers.clone();
    /// let client = TestClient::new(move |req: Request| {
    ///     let stream = req.respond_stream(200, ());
    ///     let gone_tx = gone_tx.clone();
    ///     stream.on_close(move || gone_tx.send("client left").unwrap());
    ///     stream.write("welcome\n").unwrap();
    ///     list.lock().unwrap().push(stream);
    /// })
    /// .timeout(Duration::from_millis(100));
    ///
    /// // The body never ends: the client gives up, as a closed browser tab would.
    /// let err = client.get("/").send().unwrap_err();
    /// assert!(matches!(err, TestError::Timeout { written, .. } if written.contains("welcome")));
    /// assert_eq!(gone.recv_timeout(Duration::from_secs(5)), Ok("client left"));
    /// assert!(!subscribers.lock().unwrap()[0].is_open());
    /// ```
    pub fn on_close(&self, f: impl FnOnce() + Send + 'static) {
        let mut ctl = lock(&self.shared.ctl);
        match ctl.state {
            State::Open => ctl.on_close = Some(Box::new(f)),
            State::Closed => {
                drop(ctl);
                self.shared.spawn(Box::new(f));
            }
            State::Finished => {}
        }
    }

    /// Ends the stream without completing the body: the connection closes,
    /// so the client sees the body cut short (a chunked body without its
    /// last chunk; a `Content-Length` body short). `on_close` runs.
    ///
    /// ```
    /// use natron::test::{TestClient, TestError};
    /// use natron::Request;
    ///
    /// let client = TestClient::new(|req: Request| {
    ///     let stream = req.respond_stream(200, ());
    ///     stream.write("half of it").unwrap();
    ///     stream.abort(); // e.g. the source failed midway
    /// });
    /// // The body has no last chunk: the client knows it is incomplete.
    /// let err = client.get("/").send().unwrap_err();
    /// assert!(matches!(&err, TestError::Invalid(why) if why.contains("cut short")), "{err:?}");
    /// ```
    pub fn abort(&self) {
        self.shared.abort();
    }
}

/// Runs a stream job, containing its panic (user code).
pub(crate) fn run_job(job: Box<dyn FnOnce() + Send>, log: &slog::Logger) {
    if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)) {
        slog::error!(log, "response stream callback panicked"; "panic" => panic_message(&panic));
    }
}

/// What a streamed response's head says.
pub(crate) struct Start {
    pub(crate) status: u16,
    pub(crate) headers: Headers,
    /// The body's length, if known (`Content-Length`).
    pub(crate) len: Option<u64>,
    pub(crate) version: crate::http::Version,
    pub(crate) head: bool,
    pub(crate) keep_alive: bool,
    /// The coding the client accepts, if any: a body of unknown length is
    /// compressed with it (see [`start`]).
    pub(crate) encoding: Option<Encoding>,
    /// Middleware's done-hooks (the after-hooks have run on the head).
    pub(crate) hooks: Option<Box<crate::middleware::Hooks>>,
}

/// A handle that refuses every write (the response was answered otherwise).
pub(crate) fn closed(actor: Arc<Connection>) -> ResponseStream {
    let shared = StreamShared::new(actor, None, Framing::NoBody, 0, false);
    ResponseStream::new(shared)
}

/// Posts the head of a streamed response and returns its handle, which
/// holds the run right `done` until the stream ends.
pub(crate) fn start(done: Done<Connection>, s: Start) -> ResponseStream {
    use crate::http::{status, Version};
    let conn = done.actor().clone();
    let Start {
        status,
        mut headers,
        len,
        version,
        head,
        keep_alive,
        encoding,
        hooks,
    } = s;
    let has_body = status::allows_body(status);
    // Compressed only when the length is not announced (a length, and a
    // range of it, are of the uncompressed representation), the type is
    // worth it and the handler did not encode it itself.
    let coding = encoding.filter(|_| {
        has_body
            && len.is_none()
            && !headers.contains("content-encoding")
            && compress::compressible(headers.get("content-type"))
    });
    if let Some(c) = coding {
        headers.append("Content-Encoding", c.name());
        if !headers.has_token("vary", "accept-encoding") {
            headers.append("Vary", "Accept-Encoding");
        }
    }
    let framing = match (has_body && !head, len, version) {
        (false, _, _) => Framing::NoBody,
        (true, Some(n), _) => Framing::Sized(n),
        (true, None, Version::Http10) => Framing::UntilClose,
        (true, None, Version::Http11) => Framing::Chunked,
    };
    let close = !keep_alive
        || headers.has_token("connection", "close")
        || conn.app.is_draining()
        || framing == Framing::UntilClose
        // A HEAD answer to an HTTP/1.0 request of unknown length says
        // what the GET would: the close ends it.
        || (version == Version::Http10 && len.is_none() && has_body);
    headers.remove("content-length");
    headers.remove("transfer-encoding");
    headers.remove("connection");
    let mut out = Vec::with_capacity(160 + headers.len() * 32);
    crate::http::request::write_head_start(&mut out, status, &headers);
    if has_body {
        match (len, version) {
            (Some(n), _) => out.extend_from_slice(format!("Content-Length: {n}\r\n").as_bytes()),
            (None, Version::Http11) => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
            (None, Version::Http10) => {}
        }
    }
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
        // Requests pipelined behind this one will not be answered
        // (RFC 9112 §9.6): their handlers must not run either.
        conn.mark_closed();
    } else if version == Version::Http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    let max = conn.app.config.max_outbound_len;
    let shared = StreamShared::new(conn.clone(), Some(done), framing, max, close);
    {
        let mut ctl = lock(&shared.ctl);
        if framing != Framing::NoBody {
            ctl.encoder = coding.map(StreamEncoder::new);
        } else {
            ctl.head_only = true;
        }
        ctl.hooks = hooks;
    }
    // Responses held for pipelining leave first, then the head.
    conn.flush_responses();
    conn.io.post(IoMsg::StreamHead {
        conn: conn.id,
        bytes: out,
        stream: shared.clone(),
    });
    if framing == Framing::NoBody {
        // The head is the whole answer: the request is answered now, so
        // the connection goes on with its next request, whatever holds
        // the handle (a pub/sub hub, a list of clients).
        let _ = shared.finish(None);
    }
    ResponseStream::new(shared)
}
