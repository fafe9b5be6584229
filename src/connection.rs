//! The connection actor: one per accepted socket, living on the worker
//! side. It owns the connection's mailbox; the scheduler runs its events one
//! at a time, in order, on the worker pool. It never touches the socket:
//! what it sends goes to the IO actor that owns the socket, through that
//! actor's [`Outbox`](crate::outbox::Outbox).

use crate::http::request::{RawRequest, Request};
use crate::io::{IoHandle, IoMsg};
use crate::mailbox::Mailbox;
use crate::scheduler::{Actor, Done};
use crate::server::App;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// An event in a connection's mailbox.
pub(crate) enum Event {
    /// A complete request read by the reader.
    Request(Box<RawRequest>),
}

pub(crate) struct Connection {
    pub(crate) id: u64,
    pub(crate) remote: SocketAddr,
    pub(crate) app: Arc<App>,
    io: IoHandle,
    mailbox: Mailbox<Event>,
    /// The IO actor has closed the socket: queued requests are dropped
    /// unanswered, since no one is left to read the answer.
    closed: AtomicBool,
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
        }
    }

    /// Queues a serialised response for the socket.
    pub(crate) fn send_response(&self, bytes: Vec<u8>, close: bool) {
        self.io.post(IoMsg::Response {
            conn: self.id,
            bytes,
            close,
        });
    }

    /// Called by the IO actor when the socket is gone.
    pub(crate) fn mark_closed(&self) {
        self.closed.store(true, Ordering::Release);
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
                let request = Request::new(*raw, done);
                // The request moves into the handler; if the handler panics,
                // its drop during unwinding answers 500 (see `Responder`).
                if let Err(panic) =
                    catch_unwind(AssertUnwindSafe(|| this.app.handler.handle(request)))
                {
                    slog::error!(this.app.log, "request handler panicked";
                        "panic" => panic_message(&panic), "remote" => %this.remote);
                }
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
