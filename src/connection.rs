//! The connection actor: one per accepted socket, living on the worker
//! side. It owns the connection's mailbox; the scheduler runs its events one
//! at a time, in order, on the worker pool. It never touches the socket:
//! what it sends goes to the IO actor that owns the socket, through that
//! actor's [`Outbox`](crate::actor::outbox::Outbox).

use crate::actor::mailbox::Mailbox;
use crate::actor::scheduler::{Actor, Done, Hold};
use crate::actor::sync::lock;
use crate::app::App;
use crate::http::request::{RawRequest, Request, Responder, Unanswered};
use crate::io::{IoHandle, IoMsg};
use crate::websocket::{WebSocket, WebSocketEvent};
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Below this many queued events, a WebSocket whose reading was paused for
/// backpressure is resumed (the IO actor pauses at [`crate::io::WS_HIGH_WATER`]).
pub(crate) const WS_LOW_WATER: usize = 16;

/// An event in a connection's mailbox.
pub(crate) enum Event {
    /// A complete request read by the reader.
    Request(Box<RawRequest>),
    /// A WebSocket event.
    Ws(WebSocketEvent),
    /// The client broke the protocol: close with `code` once every event
    /// before this one is handled, so replies to earlier messages still go
    /// out before the close frame.
    WsFail { code: u16, reason: &'static str },
    /// A response stream's callback (`on_writable`, `on_close`, a reader's
    /// next chunk), on the stream's own job actor, not the connection's.
    Job(Box<dyn FnOnce() + Send>),
}

/// Responses held for one write.
#[derive(Default)]
struct Held {
    bytes: Vec<u8>,
    count: usize,
}

pub(crate) struct Connection {
    pub(crate) id: u64,
    pub(crate) remote: SocketAddr,
    pub(crate) app: Arc<App>,
    pub(crate) io: IoHandle,
    mailbox: Mailbox<Event>,
    /// The IO actor has closed the socket: queued requests are dropped
    /// unanswered, since no one is left to read the answer.
    closed: AtomicBool,
    /// Set once, by a successful upgrade.
    ws: OnceLock<WebSocket>,
    /// Keep-alive responses held while pipelined requests wait (see
    /// `send_response`); touched only by the run right's holder.
    pending: Mutex<Held>,
    /// Holds the run right of an upgrading request until its handler
    /// returns (see `release_after_handler`).
    upgrade: Hold<Connection>,
    /// The request whose handler runs, if dropped unanswered before that
    /// handler returned (see `park_unanswered`).
    unanswered: Mutex<Slot>,
}

/// Where a request dropped unanswered waits for its handler's result.
///
/// `running` is set by the connection actor around the handler call; a
/// `Responder` dropped while it is set parks itself in `parked` (any
/// thread: the handler may have passed it on), and the actor answers it
/// when the handler returns, from its `Err` if any. Both sides change the
/// slot under its lock, so a drop racing the handler's return is either
/// parked before the actor looks (and answered by it) or sees `running`
/// clear (and answers itself): never neither, never both. No user code
/// runs under the lock.
#[derive(Default)]
struct Slot {
    running: bool,
    parked: Option<Responder>,
}

impl Connection {
    pub(crate) fn new(id: u64, remote: SocketAddr, app: Arc<App>, io: IoHandle) -> Self {
        Connection {
            id,
            remote,
            app,
            io,
            mailbox: Mailbox::new(),
            closed: AtomicBool::new(false),
            ws: OnceLock::new(),
            pending: Mutex::new(Held::default()),
            upgrade: Hold::new(),
            unanswered: Mutex::new(Slot::default()),
        }
    }

    /// Parks a request dropped unanswered while its handler runs, to be
    /// answered when the handler returns; hands it back if the handler has
    /// returned (the caller answers it now).
    pub(crate) fn park_unanswered(&self, responder: Responder) -> Option<Responder> {
        let mut slot = lock(&self.unanswered);
        if slot.running && slot.parked.is_none() {
            slot.parked = Some(responder);
            None
        } else {
            Some(responder)
        }
    }

    /// Queues a serialised response for the socket. Only the holder of
    /// the run right calls this (it answers the oldest unanswered request).
    ///
    /// Pipelined responses leave together: while more requests of this
    /// connection already wait in the mailbox (the worker's turn goes on
    /// with them), a keep-alive response is held in `pending`; the first
    /// response made with none waiting (or a closing one) posts everything
    /// held, in order, as one `IoMsg::Response`, written with one `writev`.
    /// The cost: a response waits for the handlers of the requests
    /// pipelined behind it in the same turn (at most `TURN_EVENTS`).
    pub(crate) fn send_response(&self, bytes: Vec<u8>, close: bool) {
        let mut pending = lock(&self.pending);
        if !close && self.mailbox.has_waiting() {
            pending.count += 1;
            if pending.bytes.is_empty() {
                pending.bytes = bytes;
            } else {
                pending.bytes.extend_from_slice(&bytes);
            }
            return;
        }
        let (bytes, count) = if pending.count == 0 {
            (bytes, 1)
        } else {
            let mut all = std::mem::take(&mut pending.bytes);
            all.extend_from_slice(&bytes);
            let count = std::mem::take(&mut pending.count) + 1;
            (all, count)
        };
        drop(pending);
        self.io.post(IoMsg::Response {
            conn: self.id,
            bytes,
            count,
            close,
        });
    }

    /// Posts the responses held by [`Self::send_response`] (before the run
    /// right leaves HTTP: a WebSocket upgrade).
    pub(crate) fn flush_responses(&self) {
        let mut pending = lock(&self.pending);
        if pending.count > 0 {
            let bytes = std::mem::take(&mut pending.bytes);
            let count = std::mem::take(&mut pending.count);
            drop(pending);
            self.io.post(IoMsg::Response {
                conn: self.id,
                bytes,
                count,
                close: false,
            });
        }
    }

    /// No more requests of this connection are handled (a `Connection:
    /// close` answer).
    pub(crate) fn mark_closed(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// Called by the IO actor when the socket is gone. Returns the
    /// connection's WebSocket if an upgrade has queued `Open`: if the IO
    /// actor never switched the socket to it, its Close is the caller's to
    /// deliver (see [`Self::set_websocket`]).
    pub(crate) fn socket_gone(&self) -> Option<WebSocket> {
        self.closed.store(true, Ordering::SeqCst);
        // Pairs with the fence in `set_websocket`: of an upgrade racing
        // the socket's end, at least one side sees the other, so the Close
        // is never lost (both may see: `deliver_last` takes only one).
        fence(Ordering::SeqCst);
        self.ws.get().cloned()
    }

    /// Events waiting in the mailbox.
    pub(crate) fn queued_events(&self) -> usize {
        self.mailbox.len()
    }

    /// Makes `ws` this connection's WebSocket, once its `Open` is queued.
    /// Returns whether the socket is already gone (`socket_gone` ran, and
    /// may not have seen `ws`): the upgrade then delivers the Close itself.
    pub(crate) fn set_websocket(&self, ws: WebSocket) -> bool {
        let _ = self.ws.set(ws);
        fence(Ordering::SeqCst);
        self.closed.load(Ordering::SeqCst)
    }

    /// Ends the upgrading request's run once its handler returns (see
    /// [`Hold`]): `Open` cannot start while the upgrading handler is still
    /// sending.
    pub(crate) fn release_after_handler(&self, done: Done<Connection>) {
        self.upgrade.release(done);
    }
}

impl Actor for Connection {
    type Event = Event;

    fn mailbox(&self) -> &Mailbox<Event> {
        &self.mailbox
    }

    fn handle(event: Event, done: Done<Self>) {
        let this = done.actor().clone();
        match event {
            Event::Request(raw) => {
                if this.closed.load(Ordering::Acquire) {
                    return; // `done` drops: on to the next event.
                }
                if raw.body_stream.is_some() {
                    // The handler may block reading the body, and the
                    // client may wait for the answers held before it (or
                    // for the `100 Continue` that must follow them): post
                    // them now.
                    this.flush_responses();
                }
                let request = Request::new(*raw, done);
                this.upgrade.set_running(true);
                lock(&this.unanswered).running = true;
                // The request moves into the handler. Dropped unanswered
                // before the handler returns (a `?`, a panic unwinding), it
                // parks in `unanswered` and is answered below.
                let result = catch_unwind(AssertUnwindSafe(|| this.app.handler.handle(request)));
                let parked = {
                    let mut slot = lock(&this.unanswered);
                    slot.running = false;
                    slot.parked.take()
                };
                let why = match result {
                    Ok(Ok(())) => Unanswered::Dropped,
                    Ok(Err(e)) => Unanswered::Failed(e),
                    Err(panic) => {
                        slog::error!(this.app.log, "request handler panicked";
                            "panic" => panic_message(&panic), "remote" => %this.remote);
                        Unanswered::Panicked
                    }
                };
                match (parked, why) {
                    (Some(responder), why) => responder.answer_unanswered(why),
                    (None, Unanswered::Failed(e)) => {
                        slog::error!(this.app.log, "handler returned an error for a request it had answered or passed on; the error is only logged";
                            "error" => %e, "remote" => %this.remote);
                    }
                    (None, _) => {}
                }
                // An upgrade's run right, parked until now (after the
                // answer above: it goes out before the connection's next
                // event can run).
                drop(this.upgrade.set_running(false));
            }
            Event::Job(job) => {
                crate::http::stream::run_job(job, &this.app.log);
                drop(done);
            }
            Event::WsFail { code, reason } => {
                if let Some(ws) = this.ws.get() {
                    ws.shared.begin_close();
                }
                this.io.post(IoMsg::WsClose {
                    conn: this.id,
                    code,
                    reason: reason.to_owned(),
                });
            }
            Event::Ws(event) => {
                let Some(ws) = this.ws.get() else { return };
                let Some(handler) = ws
                    .shared
                    .handler
                    .as_deref()
                    .or(this.app.ws_handler.as_deref())
                else {
                    return;
                };
                let is_close = matches!(event, WebSocketEvent::Close(_));
                let result = catch_unwind(AssertUnwindSafe(|| handler.handle(ws.clone(), event)));
                if let Err(panic) = result {
                    slog::error!(this.app.log, "WebSocket handler panicked; closing with 1011";
                        "panic" => panic_message(&panic), "remote" => %this.remote);
                    if !is_close {
                        let _ = ws.close(1011, "internal error");
                    }
                }
                if ws.shared.read_paused.load(Ordering::Acquire)
                    && this.mailbox.len() < WS_LOW_WATER
                {
                    ws.shared.resume_reading();
                }
                drop(done);
            }
        }
    }
}

/// The message of a panic payload, for the log.
pub(crate) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
