//! WebSockets: the handle, the events, the upgrade.
//!
//! A request becomes a WebSocket with [`Request::upgrade_to_websocket`](crate::Request::upgrade_to_websocket).
//! From then on the connection's events reach the server's
//! [`WebSocketHandler`] one at a time, in arrival order, on the worker pool:
//! [`WebSocketEvent::Open`] first, then messages (and an
//! [`WebSocketEvent::Error`] if the client broke the protocol), and exactly
//! one [`WebSocketEvent::Close`], last — whoever closed, the client
//! vanishing and server shutdown included.
//!
//! [`WebSocket`] is a cheap handle (`Clone + Send + Sync + Hash + Eq`):
//! `send` and `close` work from any thread and never block. Frames are
//! encoded on the sending thread and queued for the IO actor that owns the
//! socket. Each connection's outbound queue is bounded in bytes
//! (`max_outbound_len`); a send past the bound is refused with
//! [`SendError::QueueFull`] and the connection is closed with `1008`,
//! since a client that does not read cannot be allowed to grow the
//! server's memory.

pub(crate) mod codec;
pub(crate) mod upgrade;

pub(crate) use upgrade::upgrade;
pub use upgrade::UpgradeError;

use crate::io::{Bug, IoHandle, IoMsg};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

/// A WebSocket message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A text message (valid UTF-8).
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// A Ping; natron has already answered it with a Pong.
    Ping(Vec<u8>),
    /// A Pong.
    Pong(Vec<u8>),
}

/// What happened on a WebSocket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebSocketEvent {
    /// The WebSocket is open; always the first event.
    Open,
    /// A message arrived.
    Message(Message),
    /// The client broke the protocol; a Close follows.
    Error(String),
    /// The WebSocket is closed; always the last event, exactly once.
    Close(CloseInfo),
}

/// How a WebSocket closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseInfo {
    /// The close code: the one of the closing handshake, `1005` if the
    /// close frame had none, `1006` if the connection dropped without one.
    pub code: u16,
    /// The reason sent with the code.
    pub reason: String,
}

/// Handles WebSocket events. Runs on a worker thread; may block, but while
/// it runs, that connection's next event waits.
pub trait WebSocketHandler: Send + Sync + 'static {
    /// Handles one event of `websocket`.
    fn handle(&self, websocket: WebSocket, event: WebSocketEvent);
}

impl<F> WebSocketHandler for F
where
    F: Fn(WebSocket, WebSocketEvent) + Send + Sync + 'static,
{
    fn handle(&self, websocket: WebSocket, event: WebSocketEvent) {
        self(websocket, event)
    }
}

/// Why a send was refused. Nothing was queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// The WebSocket is closing or closed.
    Closed,
    /// The outbound queue is full: the client is not reading. The
    /// connection is being closed with `1008`.
    QueueFull,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Closed => f.write_str("the WebSocket is closed"),
            SendError::QueueFull => {
                f.write_str("the WebSocket's outbound queue is full (slow consumer)")
            }
        }
    }
}

impl std::error::Error for SendError {}

const OPEN: u8 = 0;
const CLOSING: u8 = 1;
const CLOSED: u8 = 2;

/// A handle to a WebSocket connection.
#[derive(Clone)]
pub struct WebSocket {
    pub(crate) shared: Arc<WsShared>,
}

/// State shared by the handles, the connection actor and the IO actor.
pub(crate) struct WsShared {
    pub(crate) id: u64,
    io: IoHandle,
    state: AtomicU8,
    /// Bytes posted and not yet written to the socket.
    pub(crate) queued: AtomicUsize,
    max_queued: usize,
    /// The IO actor stopped reading because too many events wait.
    pub(crate) read_paused: AtomicBool,
    protocol: Option<String>,
}

impl WsShared {
    pub(crate) fn new(id: u64, io: IoHandle, max_queued: usize, protocol: Option<String>) -> Self {
        WsShared {
            id,
            io,
            state: AtomicU8::new(OPEN),
            queued: AtomicUsize::new(0),
            max_queued,
            read_paused: AtomicBool::new(false),
            protocol,
        }
    }

    /// Marks the socket gone: every later send is refused.
    pub(crate) fn mark_closed(&self) {
        self.state.store(CLOSED, Ordering::Release);
    }

    /// Moves Open -> Closing; false if already closing or closed.
    pub(crate) fn begin_close(&self) -> bool {
        self.state
            .compare_exchange(OPEN, CLOSING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Takes `n` written (or discarded) bytes out of the outbound budget.
    ///
    /// # Errors
    ///
    /// More bytes than were counted in: a natron bug, reported rather than
    /// wrapped (a wrapped count would refuse every later send as "slow
    /// consumer"). The count is left as it was.
    pub(crate) fn release_queued(&self, n: usize) -> Result<(), Bug> {
        self.queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| q.checked_sub(n))
            .map(drop)
            .map_err(|_| Bug("WebSocket outbound bytes written that were never counted"))
    }

    /// Asks the IO actor to resume reading (after a pause for backpressure).
    pub(crate) fn resume_reading(&self) {
        if self.read_paused.swap(false, Ordering::AcqRel) {
            self.io.post(IoMsg::WsResume { conn: self.id });
        }
    }
}

impl WebSocket {
    /// Sends a message. Never blocks. Ping and Pong payloads longer than
    /// 125 bytes are refused by the protocol; they are cut to 125.
    pub fn send(&self, message: Message) -> Result<(), SendError> {
        let frame = match &message {
            Message::Text(t) => codec::encode(OpCode::Data(Data::Text), t.as_bytes()),
            Message::Binary(b) => codec::encode(OpCode::Data(Data::Binary), b),
            Message::Ping(p) => {
                codec::encode(OpCode::Control(Control::Ping), &p[..p.len().min(125)])
            }
            Message::Pong(p) => {
                codec::encode(OpCode::Control(Control::Pong), &p[..p.len().min(125)])
            }
        };
        self.send_frame(frame)
    }

    /// Sends a text message.
    pub fn send_text(&self, text: &str) -> Result<(), SendError> {
        self.send_frame(codec::encode(OpCode::Data(Data::Text), text.as_bytes()))
    }

    /// Sends a binary message.
    pub fn send_binary(&self, data: &[u8]) -> Result<(), SendError> {
        self.send_frame(codec::encode(OpCode::Data(Data::Binary), data))
    }

    fn send_frame(&self, frame: Vec<u8>) -> Result<(), SendError> {
        let s = &self.shared;
        if s.state.load(Ordering::Acquire) != OPEN {
            return Err(SendError::Closed);
        }
        let len = frame.len();
        let before = s.queued.fetch_add(len, Ordering::AcqRel);
        if before.saturating_add(len) > s.max_queued && before > 0 {
            s.queued.fetch_sub(len, Ordering::AcqRel);
            if s.begin_close() {
                s.io.post(IoMsg::WsClose {
                    conn: s.id,
                    code: 1008,
                    reason: "slow consumer: outbound queue full".into(),
                });
            }
            return Err(SendError::QueueFull);
        }
        s.io.post(IoMsg::WsFrame {
            conn: s.id,
            bytes: frame,
        });
        Ok(())
    }

    /// Starts the closing handshake with `code` and `reason`. Messages sent
    /// before this call go out first; nothing is sent after the close frame.
    /// Returns `Err(Closed)` if the WebSocket was already closing.
    pub fn close(&self, code: u16, reason: &str) -> Result<(), SendError> {
        if !self.shared.begin_close() {
            return Err(SendError::Closed);
        }
        self.shared.io.post(IoMsg::WsClose {
            conn: self.shared.id,
            code,
            reason: reason.to_owned(),
        });
        Ok(())
    }

    /// Whether sends are still accepted.
    pub fn is_open(&self) -> bool {
        self.shared.state.load(Ordering::Acquire) == OPEN
    }

    /// A process-unique id of the connection.
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// The subprotocol selected at upgrade, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.shared.protocol.as_deref()
    }

    /// Bytes queued for this connection and not yet written.
    pub fn queued_bytes(&self) -> usize {
        self.shared.queued.load(Ordering::Acquire)
    }
}

impl PartialEq for WebSocket {
    fn eq(&self, other: &Self) -> bool {
        self.shared.id == other.shared.id
    }
}

impl Eq for WebSocket {}

impl Hash for WebSocket {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.shared.id.hash(state)
    }
}

impl fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocket")
            .field("id", &self.shared.id)
            .field("open", &self.is_open())
            .finish()
    }
}
