//! natron: a multi-threaded HTTP/1.1 and WebSocket server built as actors
//! on message-passing threads.
//!
//! One acceptor and a few IO actors multiplex every socket with `mio`;
//! plain blocking handlers run on a pool of worker threads; each connection
//! is an actor whose events reach its handler one at a time, in order.
//! See `ARCHITECTURE.md` for the map.
//!
//! ```no_run
//! use natron::{Request, Server};
//!
//! let server = Server::new(|req: Request| {
//!     req.respond(200, [("Content-Type", "text/plain")], "Hello, World!");
//! });
//! server.serve(("localhost", 8080)).unwrap();
//! ```
//!
//! WebSockets: upgrade in a request handler, then handle the connection's
//! events (Open, Message, Error, Close: one at a time, in order) in a
//! [`WebSocketHandler`]; a [`WebSocket`] handle sends from any thread.
//!
//! ```no_run
//! use natron::{Message, Request, Server, WebSocket, WebSocketEvent};
//!
//! let server = Server::builder()
//!     .handler(|req: Request| {
//!         let _ = req.upgrade_to_websocket(); // 400/426 already sent on error
//!     })
//!     .websocket_handler(|ws: WebSocket, event: WebSocketEvent| {
//!         if let WebSocketEvent::Message(Message::Text(text)) = event {
//!             let _ = ws.send_text(&text);
//!         }
//!     })
//!     .build();
//! server.serve(("localhost", 8080)).unwrap();
//! ```
//!
//! # Where things are
//!
//! * Routes, path parameters, custom 404/405: [`Router`]. A handler is a
//!   closure or `fn` taking a [`Request`], returning `()` or
//!   `Result<(), E>` with `E: Into<`[`Error`]`>` (so `?` answers the error).
//! * Answers: [`Request::respond`]; streamed: [`Request::respond_stream`],
//!   [`Request::respond_reader`]; Server-Sent Events:
//!   [`Request::respond_event_stream`] and [`sse`]. With feature `json`:
//!   `req.json::<T>()?`, `req.query_as::<T>()?`, `req.respond_json(..)`.
//! * State shared by every handler: [`ServerBuilder::state`], read with
//!   [`Request::state`] and [`WebSocket::state`] (and
//!   [`test::TestClient::state`] in tests).
//! * WebSockets: [`Router::websocket`], or [`Request::upgrade`] with a
//!   [`WebSocketUpgrade`]; topics shared by WebSockets and event streams:
//!   [`PubSub`].
//! * Static files: [`Router::serve_dir`], [`fs::ServeDir`].
//! * Middleware (access log, CORS, request ids, your own): [`middleware`].
//! * Server settings, limits and shutdown: [`ServerBuilder`],
//!   [`ServerHandle`].
//! * Tests without sockets: [`test::TestClient`].
//!
//! `README.md` has a longer tour and the examples (`examples/`).

#![deny(unsafe_code)]
#![warn(missing_docs)]
// `# Errors` on every public fn returning a `Result`, `# Panics` on every
// one that can panic (CI runs clippy with `-D warnings`).
#![warn(clippy::missing_errors_doc, clippy::missing_panics_doc)]

// Fault injection points (`fault.rs`): with the `fault-injection` feature,
// `fault_scope!(peer)` names the connection the thread works on until the
// end of the enclosing block and `fault_point!(Name)` panics there if a test
// armed that point for that connection. Without the feature both expand to
// nothing, so the hot paths pay nothing for them.
#[cfg(not(loom))]
macro_rules! fault_scope {
    ($peer:expr) => {
        #[cfg(feature = "fault-injection")]
        let _fault_scope = crate::fault::enter($peer);
    };
}
#[cfg(not(loom))]
macro_rules! fault_point {
    ($point:ident) => {
        #[cfg(feature = "fault-injection")]
        crate::fault::point(crate::fault::Point::$point);
    };
}

// The actor core: the only code compiled under `--cfg loom`, where its
// sync primitives are loom's and `models/` checks it.
mod actor;

// Everything that touches sockets, threads or users.
#[cfg(not(loom))]
mod app;
#[cfg(not(loom))]
mod connection;
#[cfg(not(loom))]
mod extract;
#[cfg(all(feature = "fault-injection", not(loom)))]
pub mod fault;
#[cfg(not(loom))]
pub mod fs;
#[cfg(not(loom))]
mod handler;
#[cfg(not(loom))]
pub mod http;
#[cfg(not(loom))]
mod io;
#[cfg(all(feature = "json", not(loom)))]
mod json;
#[cfg(not(loom))]
mod listen;
#[cfg(not(loom))]
pub mod middleware;
#[cfg(not(loom))]
mod pool;
#[cfg(not(loom))]
pub mod pubsub;
#[cfg(not(loom))]
pub mod router;
#[cfg(not(loom))]
mod server;
#[cfg(not(loom))]
mod state;
#[cfg(not(loom))]
pub mod test;
#[cfg(not(loom))]
pub mod websocket;

#[cfg(not(loom))]
pub use handler::{Error, Handler, HandlerResult};
#[cfg(not(loom))]
pub use http::sse;
#[cfg(not(loom))]
pub use http::{
    Headers, IntoStatus, Parts, ProxyHeaders, Request, Responder, Response, ResponseStream,
    StatusCode, StreamError, Version,
};
#[cfg(not(loom))]
pub use listen::ListenAddrs;
#[cfg(not(loom))]
pub use middleware::Middleware;
#[cfg(not(loom))]
pub use pubsub::PubSub;
#[cfg(not(loom))]
pub use router::Router;
#[cfg(not(loom))]
pub use server::{Server, ServerBuilder, ServerHandle, Stats};
#[cfg(not(loom))]
pub use websocket::{
    CloseInfo, Message, SendError, UpgradeError, WebSocket, WebSocketCompression, WebSocketEvent,
    WebSocketHandler, WebSocketUpgrade,
};

/// Crate internals for the micro-benchmarks in `benches/micro.rs` (and
/// the compression count `tests/deflate.rs` reads) only.
///
/// **Not API.** Hidden from the docs, exempt from semver, and free to change
/// or vanish in any release; nothing outside this repository may use it.
/// The items are `pub` inside their private modules only so they can be
/// re-exported here (the trick `__loom` uses); everywhere else they stay
/// crate-internal.
#[cfg(not(loom))]
#[doc(hidden)]
pub mod __bench {
    pub use crate::actor::mailbox::{Mailbox, Push};
    pub use crate::actor::scheduler::{Actor, Done, Scheduler};
    pub use crate::http::reader::{Flags, HttpError, Limits, Parsed, Reader};
    pub use crate::http::request::{serialize, RawRequest};
    pub use crate::io::writer::Writer;
    pub use crate::websocket::codec::encode;
    /// Messages compressed on the calling thread (tests/deflate.rs counts
    /// compress-once fan-out with it).
    pub use crate::websocket::deflate::compressed_on_this_thread;
    /// The frame opcodes [`encode`] takes (tungstenite's).
    pub use tungstenite::protocol::frame::coding::{Data, OpCode};
}

/// Crate internals for the fuzz targets in `fuzz/` only (`--cfg fuzzing`).
/// **Not API**, like `__bench`.
#[cfg(all(fuzzing, not(loom)))]
#[doc(hidden)]
#[path = "fuzz.rs"]
pub mod __fuzz;

/// The actor core, exposed to the loom models in `models/` only. Not part
/// of the public API. (The items are `pub` in their private modules so they
/// can be re-exported here; in a normal build that is still crate-only.)
#[cfg(loom)]
#[doc(hidden)]
pub mod __loom {
    pub use crate::actor::budget::{Budget, Ended};
    pub use crate::actor::ledger::{Closed, Ledger};
    pub use crate::actor::limit::ConnLimit;
    pub use crate::actor::mailbox::{Mailbox, Push};
    pub use crate::actor::outbox::{outbox, Inbox, Outbox, Wake};
    pub use crate::actor::scheduler::{Actor, Done, Hold, Scheduler};
}

/// README.md's Rust code blocks, compiled as doctests (`cargo test --doc`
/// with the features they use), so the README cannot drift from the API.
#[cfg(all(doctest, feature = "json"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
