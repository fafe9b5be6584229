//! natron: a multi-threaded HTTP/1.1 server built as actors on
//! message-passing threads.
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

#![deny(unsafe_code)]

mod acceptor;
mod connection;
mod handler;
pub mod http;
mod io;
mod mailbox;
mod outbox;
mod reader;
pub mod router;
mod scheduler;
mod server;
mod sync;
mod writer;

pub use handler::Handler;
pub use http::{Headers, Request, Response, Version};
pub use router::Router;
pub use server::{Server, ServerBuilder, ServerHandle};
