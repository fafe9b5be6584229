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
pub(crate) mod deflate;
pub(crate) mod upgrade;

pub use deflate::WebSocketCompression;
pub(crate) use upgrade::upgrade;
pub use upgrade::{UpgradeError, WebSocketUpgrade};

use crate::actor::ledger::Ledger;
use crate::http::Parts;
use crate::io::writer::Chunk;
use crate::io::{Bug, IoHandle, IoMsg};
use crate::pubsub::Subscription;
use deflate::Agreed;
use std::any::Any;
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

impl From<String> for Message {
    fn from(text: String) -> Message {
        Message::Text(text)
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Message {
        Message::Text(text.to_owned())
    }
}

impl From<Vec<u8>> for Message {
    fn from(data: Vec<u8>) -> Message {
        Message::Binary(data)
    }
}

impl From<&[u8]> for Message {
    fn from(data: &[u8]) -> Message {
        Message::Binary(data.to_vec())
    }
}

impl Message {
    /// The frame carrying this message (RFC 6455 §5.2): a server frame,
    /// unmasked; Ping and Pong payloads cut to 125 bytes; a data message
    /// compressed if `deflate` was agreed and it is worth it (RFC 7692).
    pub(crate) fn encode(&self, deflate: Option<&Agreed>) -> Vec<u8> {
        match self {
            Message::Text(t) => {
                codec::encode_message(OpCode::Data(Data::Text), t.as_bytes(), deflate)
            }
            Message::Binary(b) => codec::encode_message(OpCode::Data(Data::Binary), b, deflate),
            Message::Ping(p) => {
                codec::encode(OpCode::Control(Control::Ping), &p[..p.len().min(125)])
            }
            Message::Pong(p) => {
                codec::encode(OpCode::Control(Control::Pong), &p[..p.len().min(125)])
            }
        }
    }
}

impl Message {
    /// The compressed frame of a data message (RFC 7692 §7.2.1, RSV1
    /// set), made on its own with a window of 2^`bits` bytes; `None` for
    /// a control message or when compressing does not shrink it.
    pub(crate) fn encode_deflated(&self, bits: u8, level: u32) -> Option<Vec<u8>> {
        let (opcode, payload) = match self {
            Message::Text(t) => (Data::Text, t.as_bytes()),
            Message::Binary(b) => (Data::Binary, b.as_slice()),
            Message::Ping(_) | Message::Pong(_) => return None,
        };
        let compressed = deflate::deflate(payload, bits, level)?;
        Some(codec::encode_compressed(OpCode::Data(opcode), &compressed))
    }
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
///
/// # Ordering (what makes per-connection state safe)
///
/// For each connection, events are handled **one at a time, in this
/// order**: [`WebSocketEvent::Open`] first; then messages and errors in
/// arrival order; then exactly one [`WebSocketEvent::Close`], last. An
/// event's handling starts only after the previous one's returned (it
/// may run on another worker thread, with a happens-before edge between
/// them). So state kept per connection (in [`WebSocket::data`], or in a
/// map keyed by [`WebSocket`], inserted on `Open` and removed on `Close`)
/// is never touched by two events of that connection at once, is created
/// before any message and is never touched by an event after `Close`.
/// Other threads may still call `send` on a handle at any time; after
/// `Close`, their sends return `Err(Closed)`. Tested in
/// `tests/websocket_context.rs`.
pub trait WebSocketHandler: Send + Sync + 'static {
    /// Handles one event of `websocket`.
    ///
    /// A closure `Fn(WebSocket, WebSocketEvent)` is a handler; a type of
    /// one's own implements this method:
    ///
    /// ```
    /// use natron::{Message, Request, Server, WebSocket, WebSocketEvent, WebSocketHandler};
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// # fn read(c: &mut tungstenite::WebSocket<impl std::io::Read + std::io::Write>) -> String {
    /// #     c.read().unwrap().into_text().unwrap().as_str().to_owned()
    /// # }
    /// /// Echoes text, numbering the messages of all connections.
    /// struct Echo {
    ///     seen: AtomicUsize,
    /// }
    ///
    /// impl WebSocketHandler for Echo {
    ///     fn handle(&self, ws: WebSocket, event: WebSocketEvent) {
    ///         if let WebSocketEvent::Message(Message::Text(t)) = event {
    ///             let n = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
    ///             let _ = ws.send_text(&format!("{n}: {t}"));
    ///         }
    ///     }
    /// }
    ///
    /// let server = Server::builder()
    ///     .handler(|req: Request| drop(req.upgrade_to_websocket()))
    ///     .websocket_handler(Echo { seen: AtomicUsize::new(0) })
    ///     .build();
    /// # let server = server;
    /// # let handle = server.handle();
    /// # let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// # let addr = handle.wait_until_ready(std::time::Duration::from_secs(5)).unwrap();
    /// let (mut client, _) = tungstenite::connect(format!("ws://{addr}/")).unwrap();
    /// client.send(tungstenite::Message::text("hi")).unwrap();
    /// assert_eq!(read(&mut client), "1: hi");
    /// # drop(client);
    /// # handle.close();
    /// # serving.join().unwrap().unwrap();
    /// ```
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
    /// [`WebSocket::close`] was given a code that may not be sent (RFC
    /// 6455 §7.4): below `1000`, `1004`, `1005`, `1006`, `1015`, or in
    /// `1016..=2999` or `5000..`. The WebSocket stays open.
    InvalidCode,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Closed => f.write_str("the WebSocket is closed"),
            SendError::QueueFull => {
                f.write_str("the WebSocket's outbound queue is full (slow consumer)")
            }
            SendError::InvalidCode => f.write_str("a close code that may not be sent"),
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
    pub(crate) io: IoHandle,
    state: AtomicU8,
    /// Bytes posted and not yet written to the socket.
    pub(crate) queued: AtomicUsize,
    max_queued: usize,
    /// The IO actor stopped reading because too many events wait.
    pub(crate) read_paused: AtomicBool,
    protocol: Option<String>,
    /// The upgrade request, less its handshake fields.
    request: Parts,
    /// What the upgrading handler attached (`WebSocketUpgrade::data`).
    data: Option<Box<dyn Any + Send + Sync>>,
    /// This connection's handler, if the upgrade named one; else the
    /// server's.
    pub(crate) handler: Option<Arc<dyn WebSocketHandler>>,
    /// Its pub/sub subscriptions: the reverse index that ends them at
    /// close (`pubsub::end_subscriptions`).
    pub(crate) topics: Ledger<Subscription>,
    /// permessage-deflate, if the upgrade agreed it.
    pub(crate) deflate: Option<Agreed>,
    /// The server's shared state (`WebSocket::state`).
    pub(crate) states: crate::state::States,
}

/// What a WebSocket keeps of its upgrade, besides the socket.
pub(crate) struct Context {
    pub(crate) protocol: Option<String>,
    pub(crate) request: Parts,
    pub(crate) data: Option<Box<dyn Any + Send + Sync>>,
    pub(crate) handler: Option<Arc<dyn WebSocketHandler>>,
    pub(crate) deflate: Option<Agreed>,
    pub(crate) states: crate::state::States,
}

impl WsShared {
    pub(crate) fn new(id: u64, io: IoHandle, max_queued: usize, context: Context) -> Self {
        WsShared {
            id,
            io,
            state: AtomicU8::new(OPEN),
            queued: AtomicUsize::new(0),
            max_queued,
            read_paused: AtomicBool::new(false),
            protocol: context.protocol,
            request: context.request,
            data: context.data,
            handler: context.handler,
            topics: Ledger::new(),
            deflate: context.deflate,
            states: context.states,
        }
    }

    /// Marks the socket gone: every later send is refused, and its pub/sub
    /// subscriptions end (later subscribes are refused).
    pub(crate) fn mark_closed(&self) {
        self.state.store(CLOSED, Ordering::Release);
        // Every path that finds the socket gone comes here, so the
        // subscriptions end on each (idempotent: the ledger closes once).
        crate::pubsub::end_subscriptions(self);
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
    ///
    /// With permessage-deflate agreed, a text or binary message of at
    /// least [`WebSocketCompression::threshold`] bytes is compressed on the
    /// calling thread first.
    ///
    /// ```
    /// use natron::{Message, Router, WebSocket, WebSocketEvent};
    ///
    /// let mut router = Router::new();
    /// router.websocket("/", |ws: WebSocket, event: WebSocketEvent| {
    ///     if event == WebSocketEvent::Open {
    ///         let _ = ws.send(Message::Binary(vec![1, 2, 3]));
    ///         let _ = ws.send(Message::from("text"));
    ///     }
    /// });
    /// # let server = natron::Server::new(router);
    /// # let handle = server.handle();
    /// # let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// # let addr = handle.wait_until_ready(std::time::Duration::from_secs(5)).unwrap();
    /// let (mut client, _) = tungstenite::connect(format!("ws://{addr}/")).unwrap();
    /// assert_eq!(client.read().unwrap(), tungstenite::Message::binary(vec![1, 2, 3]));
    /// assert_eq!(client.read().unwrap(), tungstenite::Message::text("text"));
    /// # drop(client);
    /// # handle.close();
    /// # serving.join().unwrap().unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`] once the WebSocket is closing or closed;
    /// [`SendError::QueueFull`] if this message would take the
    /// connection's queued bytes past `max_outbound_len` (the connection
    /// is then closed with `1008`). Nothing is queued on error.
    pub fn send(&self, message: Message) -> Result<(), SendError> {
        self.send_frame(message.encode(self.shared.deflate.as_ref()))
    }

    /// Sends a text message (compressed as [`Self::send`] says).
    ///
    /// ```
    /// use natron::{Router, WebSocket, WebSocketEvent};
    ///
    /// # fn read(c: &mut tungstenite::WebSocket<impl std::io::Read + std::io::Write>) -> String {
    /// #     c.read().unwrap().into_text().unwrap().as_str().to_owned()
    /// # }
    /// let mut router = Router::new();
    /// router.websocket("/", |ws: WebSocket, event: WebSocketEvent| {
    ///     if event == WebSocketEvent::Open {
    ///         let _ = ws.send_text("welcome");
    ///     }
    /// });
    /// # let server = natron::Server::new(router);
    /// # let handle = server.handle();
    /// # let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// # let addr = handle.wait_until_ready(std::time::Duration::from_secs(5)).unwrap();
    /// let (mut client, _) = tungstenite::connect(format!("ws://{addr}/")).unwrap();
    /// assert_eq!(read(&mut client), "welcome");
    /// # drop(client);
    /// # handle.close();
    /// # serving.join().unwrap().unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Self::send`].
    pub fn send_text(&self, text: &str) -> Result<(), SendError> {
        self.send_frame(codec::encode_message(
            OpCode::Data(Data::Text),
            text.as_bytes(),
            self.shared.deflate.as_ref(),
        ))
    }

    /// Sends a binary message (compressed as [`Self::send`] says).
    ///
    /// ```
    /// use natron::{Message, Router, WebSocket, WebSocketEvent};
    ///
    /// let mut router = Router::new();
    /// router.websocket("/", |ws: WebSocket, event: WebSocketEvent| {
    ///     if let WebSocketEvent::Message(Message::Binary(data)) = event {
    ///         let sum = data.iter().map(|&b| u32::from(b)).sum::<u32>();
    ///         let _ = ws.send_binary(&sum.to_be_bytes());
    ///     }
    /// });
    /// # let server = natron::Server::new(router);
    /// # let handle = server.handle();
    /// # let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// # let addr = handle.wait_until_ready(std::time::Duration::from_secs(5)).unwrap();
    /// let (mut client, _) = tungstenite::connect(format!("ws://{addr}/")).unwrap();
    /// client.send(tungstenite::Message::binary(vec![200, 100])).unwrap();
    /// assert_eq!(client.read().unwrap().into_data().as_ref(), [0, 0, 1, 44]);
    /// # drop(client);
    /// # handle.close();
    /// # serving.join().unwrap().unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Self::send`].
    pub fn send_binary(&self, data: &[u8]) -> Result<(), SendError> {
        self.send_frame(codec::encode_message(
            OpCode::Data(Data::Binary),
            data,
            self.shared.deflate.as_ref(),
        ))
    }

    /// Whether the upgrade agreed permessage-deflate (RFC 7692) with the
    /// client: the server (or the upgrade) enabled it and the client
    /// offered it.
    ///
    /// ```
    /// use natron::{Router, Server, WebSocket, WebSocketCompression, WebSocketEvent};
    /// use tungstenite::client::IntoClientRequest;
    ///
    /// # fn read(c: &mut tungstenite::WebSocket<impl std::io::Read + std::io::Write>) -> String {
    /// #     c.read().unwrap().into_text().unwrap().as_str().to_owned()
    /// # }
    /// let mut router = Router::new();
    /// router.websocket("/", |ws: WebSocket, event: WebSocketEvent| {
    ///     if event == WebSocketEvent::Open {
    ///         let _ = ws.send_text(&ws.is_compressed().to_string());
    ///     }
    /// });
    /// let server = Server::builder()
    ///     .websocket_compression(WebSocketCompression::new())
    ///     .handler(router)
    ///     .build();
    /// # let server = server;
    /// # let handle = server.handle();
    /// # let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// # let addr = handle.wait_until_ready(std::time::Duration::from_secs(5)).unwrap();
    /// let (mut plain, _) = tungstenite::connect(format!("ws://{addr}/")).unwrap();
    /// assert_eq!(read(&mut plain), "false"); // it offered no compression
    /// let mut offer = format!("ws://{addr}/").into_client_request().unwrap();
    /// offer.headers_mut().insert("Sec-WebSocket-Extensions", "permessage-deflate".parse().unwrap());
    /// let (mut packed, _) = tungstenite::connect(offer).unwrap();
    /// assert_eq!(read(&mut packed), "true");
    /// # drop((plain, packed));
    /// # handle.close();
    /// # serving.join().unwrap().unwrap();
    /// ```
    pub fn is_compressed(&self) -> bool {
        self.shared.deflate.is_some()
    }

    fn send_frame(&self, frame: Vec<u8>) -> Result<(), SendError> {
        self.send_chunk(Chunk::Owned(frame))
    }

    /// Queues an encoded frame (owned, or shared with other subscribers).
    pub(crate) fn send_chunk(&self, frame: Chunk) -> Result<(), SendError> {
        self.reserve(frame.len())?;
        self.shared.io.post(IoMsg::WsFrame {
            conn: self.shared.id,
            bytes: frame,
        });
        Ok(())
    }

    /// Counts `len` bytes into the outbound budget, for a frame the caller
    /// then posts (one frame per successful call). A connection whose
    /// budget is full is closed with 1008 here, and refuses every later
    /// send.
    pub(crate) fn reserve(&self, len: usize) -> Result<(), SendError> {
        let s = &self.shared;
        if s.state.load(Ordering::Acquire) != OPEN {
            return Err(SendError::Closed);
        }
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
        Ok(())
    }

    /// Starts the closing handshake (RFC 6455 §7.1.2) with `code` and
    /// `reason`: `1000` for a normal close, another code of §7.4.1 (`1008`
    /// policy violation, `1011` server error...), a registered one
    /// (`3000..=3999`) or one of the application's own (`4000..=4999`).
    /// The reason is cut to 123 bytes (at a character boundary) to fit a
    /// control frame (§5.5). Messages sent before this
    /// call go out first; nothing is sent after the close frame. The
    /// `Close` event follows when the client answers (or after
    /// `websocket_close_timeout`).
    ///
    /// ```
    /// use natron::{Message, Router, SendError, WebSocket, WebSocketEvent};
    /// use std::sync::{mpsc, Mutex};
    ///
    /// # fn read(c: &mut tungstenite::WebSocket<impl std::io::Read + std::io::Write>) -> String {
    /// #     c.read().unwrap().into_text().unwrap().as_str().to_owned()
    /// # }
    /// let (tx, rx) = mpsc::channel();
    /// let tx = Mutex::new(tx);
    /// let mut router = Router::new();
    /// router.websocket("/", move |ws: WebSocket, event: WebSocketEvent| {
    ///     if event == WebSocketEvent::Message(Message::from("bye")) {
    ///         let _ = ws.send_text("see you");
    ///         let first = ws.close(1000, "done");
    ///         let again = ws.close(1000, "done");
    ///         tx.lock().unwrap().send((first, again)).unwrap();
    ///     }
    /// });
    /// # let server = natron::Server::new(router);
    /// # let handle = server.handle();
    /// # let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// # let addr = handle.wait_until_ready(std::time::Duration::from_secs(5)).unwrap();
    /// let (mut client, _) = tungstenite::connect(format!("ws://{addr}/")).unwrap();
    /// client.send(tungstenite::Message::text("bye")).unwrap();
    /// assert_eq!(read(&mut client), "see you");
    /// let tungstenite::Message::Close(Some(frame)) = client.read().unwrap() else { panic!() };
    /// assert_eq!((u16::from(frame.code), frame.reason.as_str()), (1000, "done"));
    /// assert_eq!(rx.recv().unwrap(), (Ok(()), Err(SendError::Closed)));
    /// # drop(client);
    /// # handle.close();
    /// # serving.join().unwrap().unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`] if the WebSocket was already closing or
    /// closed; [`SendError::InvalidCode`] for a code an endpoint may not
    /// send (`1005`, `1006`, `1015`, below `1000`, unassigned: §7.4), and
    /// the WebSocket stays open. Nothing is sent on error.
    pub fn close(&self, code: u16, reason: &str) -> Result<(), SendError> {
        // The codes natron's own decoder refuses from a client (`codec`).
        if !codec::close_code_allowed(code) {
            return Err(SendError::InvalidCode);
        }
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

    /// Whether sends are still accepted: `false` from [`Self::close`] on,
    /// once the client's close or the connection's end is seen, and at
    /// the `Close` event.
    ///
    /// ```
    /// use natron::{Router, WebSocket, WebSocketEvent};
    /// use std::sync::{mpsc, Mutex};
    ///
    /// let (tx, rx) = mpsc::channel();
    /// let tx = Mutex::new(tx);
    /// let mut router = Router::new();
    /// router.websocket("/", move |ws: WebSocket, event: WebSocketEvent| {
    ///     let _ = tx.lock().unwrap().send((event, ws.is_open()));
    /// });
    /// # let server = natron::Server::new(router);
    /// # let handle = server.handle();
    /// # let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// # let addr = handle.wait_until_ready(std::time::Duration::from_secs(5)).unwrap();
    /// let (mut client, _) = tungstenite::connect(format!("ws://{addr}/")).unwrap();
    /// assert_eq!(rx.recv().unwrap(), (WebSocketEvent::Open, true));
    /// client.close(None).unwrap();
    /// # while client.read().is_ok() {}
    /// # drop(client);
    /// let (close, open) = rx.recv().unwrap();
    /// assert!(matches!(close, WebSocketEvent::Close(_)));
    /// assert!(!open);
    /// # handle.close();
    /// # serving.join().unwrap().unwrap();
    /// ```
    pub fn is_open(&self) -> bool {
        self.shared.state.load(Ordering::Acquire) == OPEN
    }

    /// A process-unique id of the connection (never reused while the
    /// process runs; HTTP connections and event streams draw from the same
    /// counter). Equal handles have equal ids: a key for per-connection
    /// state, as is the [`WebSocket`] itself (`Hash + Eq`).
    ///
    /// ```
    /// use natron::{Router, WebSocket, WebSocketEvent};
    ///
    /// # fn read(c: &mut tungstenite::WebSocket<impl std::io::Read + std::io::Write>) -> String {
    /// #     c.read().unwrap().into_text().unwrap().as_str().to_owned()
    /// # }
    /// let mut router = Router::new();
    /// router.websocket("/", |ws: WebSocket, event: WebSocketEvent| {
    ///     if event == WebSocketEvent::Open {
    ///         let _ = ws.send_text(&ws.id().to_string());
    ///     }
    /// });
    /// # let server = natron::Server::new(router);
    /// # let handle = server.handle();
    /// # let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// # let addr = handle.wait_until_ready(std::time::Duration::from_secs(5)).unwrap();
    /// let url = format!("ws://{addr}/");
    /// let (mut a, _) = tungstenite::connect(&url).unwrap();
    /// let (mut b, _) = tungstenite::connect(&url).unwrap();
    /// assert_ne!(read(&mut a), read(&mut b));
    /// # drop((a, b));
    /// # handle.close();
    /// # serving.join().unwrap().unwrap();
    /// ```
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// The subprotocol selected at upgrade, if any (RFC 6455 §1.9): see
    /// [`WebSocketUpgrade::protocols`] for how it is chosen.
    ///
    /// ```
    /// use natron::{Request, Server, WebSocket, WebSocketEvent, WebSocketUpgrade};
    /// use tungstenite::client::IntoClientRequest;
    ///
    /// # fn read(c: &mut tungstenite::WebSocket<impl std::io::Read + std::io::Write>) -> String {
    /// #     c.read().unwrap().into_text().unwrap().as_str().to_owned()
    /// # }
    /// let server = Server::new(|req: Request| {
    ///     let _ = req.upgrade(WebSocketUpgrade::new().protocols(&["chat.v2"]).handler(
    ///         |ws: WebSocket, event: WebSocketEvent| {
    ///             if event == WebSocketEvent::Open {
    ///                 let _ = ws.send_text(&format!("{:?}", ws.protocol()));
    ///             }
    ///         },
    ///     ));
    /// });
    /// # let server = server;
    /// # let handle = server.handle();
    /// # let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// # let addr = handle.wait_until_ready(std::time::Duration::from_secs(5)).unwrap();
    /// let mut request = format!("ws://{addr}/").into_client_request().unwrap();
    /// request.headers_mut().insert("Sec-WebSocket-Protocol", "chat.v1, chat.v2".parse().unwrap());
    /// let (mut client, _) = tungstenite::connect(request).unwrap();
    /// assert_eq!(read(&mut client), r#"Some("chat.v2")"#);
    /// let (mut other, _) = tungstenite::connect(format!("ws://{addr}/")).unwrap();
    /// assert_eq!(read(&mut other), "None"); // offered none
    /// # drop((client, other));
    /// # handle.close();
    /// # serving.join().unwrap().unwrap();
    /// ```
    pub fn protocol(&self) -> Option<&str> {
        self.shared.protocol.as_deref()
    }

    /// The request that opened this WebSocket: its path, query, path
    /// parameters, headers and the client's address, as the upgrading
    /// handler saw them. The handshake's own fields (`Upgrade`,
    /// `Connection`, `Sec-WebSocket-Key`, `-Version`, `-Extensions`) are
    /// left out, so what is kept per connection is what the application
    /// reads (cookies, `Origin`, `User-Agent`...).
    ///
    /// ```
    /// use natron::{WebSocket, WebSocketEvent};
    ///
    /// fn on_event(ws: WebSocket, event: WebSocketEvent) {
    ///     if let WebSocketEvent::Open = event {
    ///         let room = ws.request().path_param("room").unwrap_or("lobby");
    ///         let _ = ws.send_text(&format!("welcome to {room}"));
    ///     }
    /// }
    /// ```
    pub fn request(&self) -> &Parts {
        &self.shared.request
    }

    /// What the upgrading handler attached with
    /// [`WebSocketUpgrade::data`], if it is a `T`. Set once, at upgrade,
    /// before any event: every event of the connection sees it. For state
    /// that changes, attach a `Mutex` or atomics.
    ///
    /// ```
    /// use natron::{Request, WebSocket, WebSocketEvent, WebSocketUpgrade};
    ///
    /// struct User { name: String }
    ///
    /// fn upgrade(req: Request) {
    ///     let user = User { name: req.query_param("name").unwrap_or("anon").to_owned() };
    ///     let _ = req.upgrade(WebSocketUpgrade::new().data(user).handler(
    ///         |ws: WebSocket, event: WebSocketEvent| {
    ///             let user = ws.data::<User>().expect("set at upgrade");
    ///             if let WebSocketEvent::Open = event {
    ///                 let _ = ws.send_text(&format!("hello {}", user.name));
    ///             }
    ///         },
    ///     ));
    /// }
    /// ```
    pub fn data<T: Any>(&self) -> Option<&T> {
        self.shared.data.as_deref()?.downcast_ref()
    }

    /// Bytes queued for this connection and not yet written to its socket
    /// (frames as encoded, headers included). A send that would take it
    /// past the server's `max_outbound_len` fails with
    /// [`SendError::QueueFull`]; a sender of optional messages (ticks, a
    /// cursor's position) can skip them while it is high instead.
    ///
    /// ```
    /// use natron::{Message, Router, WebSocket, WebSocketEvent};
    ///
    /// # fn read(c: &mut tungstenite::WebSocket<impl std::io::Read + std::io::Write>) -> String {
    /// #     c.read().unwrap().into_text().unwrap().as_str().to_owned()
    /// # }
    /// let mut router = Router::new();
    /// router.websocket("/", |ws: WebSocket, event: WebSocketEvent| {
    ///     if let WebSocketEvent::Message(Message::Text(_)) = event {
    ///         if ws.queued_bytes() < 64 * 1024 {
    ///             let _ = ws.send_text(&format!("{} bytes were waiting", ws.queued_bytes()));
    ///         }
    ///     }
    /// });
    /// # let server = natron::Server::new(router);
    /// # let handle = server.handle();
    /// # let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// # let addr = handle.wait_until_ready(std::time::Duration::from_secs(5)).unwrap();
    /// let (mut client, _) = tungstenite::connect(format!("ws://{addr}/")).unwrap();
    /// client.send(tungstenite::Message::text("tick?")).unwrap();
    /// // A client that reads leaves nothing waiting.
    /// assert_eq!(read(&mut client), "0 bytes were waiting");
    /// # drop(client);
    /// # handle.close();
    /// # serving.join().unwrap().unwrap();
    /// ```
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
