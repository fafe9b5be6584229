//! The server: configuration, `serve`, and the handle that closes it.
//!
//! `serve` builds the actors and runs the acceptor on the calling thread:
//!
//! ```text
//! acceptor ──Accept──▶ IO actor (reader + writer) ──Event──▶ connection mailbox
//!                        ▲                                        │ scheduler
//!                        └────────────Response────────── worker runs handler
//! ```
//!
//! Shutdown (`close()`): the acceptor stops and drops the listener (and
//! `close()` returns only then, see [`ServerHandle::close`]); each IO
//! actor is told to drain (no more requests read; each connection closes
//! once its in-flight requests are answered and written); after the grace
//! period any IO actor still waiting is stopped; then the workers are
//! stopped and joined. A worker whose handler is still running after the
//! grace period is left detached and logged: natron cannot interrupt user
//! code.

use crate::actor::limit::{self, ConnLimit};
use crate::actor::scheduler::Scheduler;
use crate::app::{deadline_after, App, Config};
use crate::handler::Handler;
use crate::http::forwarded::{OriginPolicy, ProxyHeaders};
use crate::io::acceptor::{self, Acceptor};
use crate::io::{io_actor, IoMsg};
use crate::listen::{self, ListenAddrs};
use crate::pool::Pool;
use crate::websocket::WebSocketHandler;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Builds a [`Server`].
pub struct ServerBuilder {
    handler: Option<Box<dyn Handler>>,
    ws_handler: Option<Box<dyn WebSocketHandler>>,
    log: Option<slog::Logger>,
    pub(crate) config: Config,
    middleware: Vec<Arc<dyn crate::Middleware>>,
}

impl ServerBuilder {
    /// The request handler (a closure, a `fn`, or a [`crate::Router`]).
    ///
    /// A `Router` given here brings its routes' body settings
    /// ([`Router::stream_body`](crate::Router::stream_body),
    /// [`Router::max_body_len`](crate::Router::max_body_len)) to the IO
    /// threads, which apply them to each request's head; any other handler
    /// gets the server's ([`ServerBuilder::stream_request_bodies`],
    /// [`ServerBuilder::max_body_len`]).
    ///
    /// ```
    /// use natron::{test::TestClient, Request, Router, Server};
    ///
    /// let mut router = Router::new();
    /// router.get("/hello", |req: Request| req.respond(200, (), "hi"));
    /// let client = TestClient::with_server(Server::builder().handler(router));
    /// assert_eq!(client.get("/hello").send().unwrap().text(), "hi");
    /// assert_eq!(client.get("/other").send().unwrap().status, 404);
    /// ```
    pub fn handler<H: Handler>(mut self, handler: H) -> Self {
        // The rules are copied out of the router now, on the builder's
        // thread, so the IO threads run only natron's matching.
        let any: &dyn std::any::Any = &handler;
        self.config.body_rules = any
            .downcast_ref::<crate::Router>()
            .and_then(crate::Router::body_rules)
            .map(Arc::new);
        self.handler = Some(Box::new(handler));
        self
    }

    /// The WebSocket handler: receives the events of every connection
    /// upgraded with [`crate::Request::upgrade_to_websocket`].
    ///
    /// ```
    /// use natron::{Message, Request, Server, WebSocket, WebSocketEvent};
    /// # use std::time::Duration;
    ///
    /// let server = Server::builder()
    ///     .handler(|req: Request| {
    ///         let _ = req.upgrade_to_websocket(); // answers 400/403/426 itself if it fails
    ///     })
    ///     .websocket_handler(|ws: WebSocket, event: WebSocketEvent| {
    ///         if let WebSocketEvent::Message(m) = event {
    ///             let _ = ws.send(m); // echo
    ///         }
    ///     })
    ///     .build();
    /// # let handle = server.handle();
    /// # let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// # let addr = handle.wait_until_ready(Duration::from_secs(5)).unwrap();
    /// # let stream = std::net::TcpStream::connect(addr).unwrap();
    /// # let url = format!("ws://{addr}/");
    /// # let (mut client, _) = tungstenite::client::client(url.as_str(), stream).unwrap();
    /// # client.send(tungstenite::Message::text("hello")).unwrap();
    /// # let echoed = client.read().unwrap();
    /// // A client that sends "hello" gets it back.
    /// assert_eq!(echoed.to_text().unwrap(), "hello");
    /// # drop(client);
    /// # handle.close();
    /// # serving.join().unwrap().unwrap();
    /// ```
    pub fn websocket_handler(mut self, handler: impl WebSocketHandler) -> Self {
        self.ws_handler = Some(Box::new(handler));
        self
    }

    /// permessage-deflate (RFC 7692) for WebSockets whose client offers it
    /// (browsers do). Default: off, so every WebSocket is uncompressed.
    /// See [`WebSocketCompression`](crate::WebSocketCompression) for what
    /// is agreed, what is compressed, and the memory it costs;
    /// [`WebSocketUpgrade::compression`](crate::WebSocketUpgrade::compression)
    /// overrides it per connection.
    ///
    /// ```
    /// use natron::{Request, Server, WebSocketCompression};
    /// # use std::io::{Read, Write};
    ///
    /// let server = Server::builder()
    ///     // Messages under 256 bytes are sent uncompressed.
    ///     .websocket_compression(WebSocketCompression::new().threshold(256))
    ///     .handler(|req: Request| drop(req.upgrade_to_websocket()))
    ///     .websocket_handler(|_: natron::WebSocket, _: natron::WebSocketEvent| {})
    ///     .build();
    /// # let handle = server.handle();
    /// # let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// # let addr = handle.wait_until_ready(std::time::Duration::from_secs(5))?;
    /// # let mut conn = std::net::TcpStream::connect(addr)?;
    /// // A client that offers permessage-deflate gets it in the 101.
    /// conn.write_all(
    ///     b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
    ///       Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
    ///       Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
    /// )?;
    /// # let mut head = Vec::new();
    /// # let mut byte = [0u8; 1];
    /// # while !head.ends_with(b"\r\n\r\n") {
    /// #     conn.read_exact(&mut byte)?;
    /// #     head.push(byte[0]);
    /// # }
    /// # let head = String::from_utf8(head).unwrap();
    /// assert!(head.starts_with("HTTP/1.1 101 "));
    /// assert!(head.contains("\r\nSec-WebSocket-Extensions: permessage-deflate"));
    /// # drop(conn);
    /// # handle.close();
    /// # serving.join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn websocket_compression(mut self, compression: crate::WebSocketCompression) -> Self {
        self.config.ws_compression = Some(compression);
        self
    }

    /// Wraps the handler in `m` (see [`crate::middleware`]): it runs for
    /// every request, before routing. Middleware added first is the
    /// outermost: its `before` runs first, its `after` and `done` last.
    ///
    /// ```
    /// use natron::middleware::RequestIds;
    /// use natron::{test::TestClient, Request, Server};
    ///
    /// let client = TestClient::with_server(
    ///     Server::builder()
    ///         .middleware(RequestIds::new())
    ///         .handler(|req: Request| req.respond(200, (), "ok")),
    /// );
    /// // The middleware answered too: it echoes the client's request id.
    /// let res = client.get("/").header("X-Request-Id", "abc-1").send().unwrap();
    /// assert_eq!(res.header("x-request-id"), Some("abc-1"));
    /// ```
    pub fn middleware(mut self, m: impl crate::Middleware) -> Self {
        self.middleware.push(Arc::new(m));
        self
    }

    /// The logger; by default log records are discarded.
    ///
    /// ```
    /// use natron::{test::TestClient, Error, Request, Server};
    /// use std::sync::{Arc, Mutex};
    ///
    /// /// Keeps the messages of error records.
    /// #[derive(Clone, Default)]
    /// struct Errors(Arc<Mutex<Vec<String>>>);
    /// impl slog::Drain for Errors {
    ///     type Ok = ();
    ///     type Err = slog::Never;
    ///     fn log(&self, r: &slog::Record, _: &slog::OwnedKVList) -> Result<(), slog::Never> {
    ///         if r.level() == slog::Level::Error {
    ///             self.0.lock().unwrap().push(r.msg().to_string());
    ///         }
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let errors = Errors::default();
    /// let client = TestClient::with_server(
    ///     Server::builder()
    ///         .logger(slog::Logger::root(errors.clone(), slog::o!()))
    ///         .handler(|_req: Request| -> Result<(), Error> {
    ///             Err(std::io::Error::other("disk on fire"))? // 500, logged
    ///         }),
    /// );
    /// assert_eq!(client.get("/").send().unwrap().status, 500);
    /// assert_eq!(*errors.0.lock().unwrap(), ["handler failed"]);
    /// ```
    ///
    /// A real application logs to the terminal, say, with `slog-term` (as
    /// `examples/rest.rs` does):
    ///
    /// ```
    /// use slog::Drain;
    ///
    /// let decorator = slog_term::PlainSyncDecorator::new(std::io::stderr());
    /// let drain = slog_term::FullFormat::new(decorator).build().fuse();
    /// let server = natron::Server::builder()
    ///     .logger(slog::Logger::root(drain, slog::o!()))
    ///     .build();
    /// # drop(server);
    /// ```
    pub fn logger(mut self, log: slog::Logger) -> Self {
        self.log = Some(log);
        self
    }

    /// Worker threads that run handlers and never retire (the pool's base
    /// size). Default `max(cores * 10, 1)`. At least 1.
    ///
    /// ```
    /// use natron::Server;
    /// use std::time::Duration;
    ///
    /// // Handlers that block on a database: 64 workers from the start.
    /// let server = Server::builder().worker_threads(64).build();
    /// let handle = server.handle();
    /// let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// handle.wait_until_ready(Duration::from_secs(5))?;
    /// let stats = handle.stats();
    /// assert_eq!(stats.workers_idle + stats.workers_busy, 64);
    /// handle.close();
    /// serving.join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn worker_threads(mut self, n: usize) -> Self {
        self.config.worker_threads = n.max(1);
        self
    }

    /// Most worker threads the pool grows to while every worker is busy
    /// (blocking handlers). Default 512; raised to `worker_threads` if
    /// lower, and equal to it means a fixed pool.
    ///
    /// The pool grows when jobs have waited 2 ms with every worker busy,
    /// by one worker per waiting job; workers above the base retire after
    /// 10 s without a job. Reaching the maximum is logged (warning) once
    /// per episode; requests then wait for a worker.
    ///
    /// ```
    /// use natron::Server;
    ///
    /// // A fixed pool of 8 workers: never more, never fewer.
    /// let server = Server::builder().worker_threads(8).max_worker_threads(8).build();
    /// # drop(server);
    /// ```
    ///
    /// Growing: one base worker, a second one while the first is blocked.
    ///
    /// ```
    /// use natron::{Request, Server};
    /// use std::io::{Read, Write};
    /// use std::sync::{mpsc, Mutex};
    /// use std::time::Duration;
    ///
    /// let (entered, inside) = mpsc::channel();
    /// let (release, released) = mpsc::channel::<()>();
    /// let (entered, released) = (Mutex::new(entered), Mutex::new(released));
    /// let server = Server::builder()
    ///     .worker_threads(1)
    ///     .max_worker_threads(2)
    ///     .handler(move |req: Request| {
    ///         entered.lock().unwrap().send(()).unwrap();
    ///         released.lock().unwrap().recv().unwrap(); // blocked, as on a slow database
    ///         req.respond(200, (), "ok");
    ///     })
    ///     .build();
    /// # let handle = server.handle();
    /// # let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// # let addr = handle.wait_until_ready(Duration::from_secs(5))?;
    /// let clients: Vec<_> = (0..2)
    ///     .map(|_| {
    ///         std::thread::spawn(move || {
    ///             let mut conn = std::net::TcpStream::connect(addr).unwrap();
    ///             conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    ///                 .unwrap();
    ///             let mut res = String::new();
    ///             conn.read_to_string(&mut res).unwrap();
    ///             res
    ///         })
    ///     })
    ///     .collect();
    /// // Both handlers run at once: the pool grew to its maximum.
    /// for _ in 0..2 {
    ///     inside.recv_timeout(Duration::from_secs(5)).expect("two handlers at once");
    /// }
    /// assert_eq!(handle.stats().workers_busy, 2);
    /// release.send(()).unwrap();
    /// release.send(()).unwrap();
    /// for client in clients {
    ///     assert!(client.join().unwrap().ends_with("\r\n\r\nok"));
    /// }
    /// # handle.close();
    /// # serving.join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn max_worker_threads(mut self, n: usize) -> Self {
        self.config.max_worker_threads = n;
        self
    }

    /// IO threads (each a `mio` poll loop owning its share of the sockets).
    /// Default `max(cores / 2, 1)`.
    ///
    /// ```
    /// use natron::Server;
    ///
    /// let server = Server::builder().io_threads(1).build();
    /// # drop(server);
    /// ```
    pub fn io_threads(mut self, n: usize) -> Self {
        self.config.io_threads = n.max(1);
        self
    }

    /// Largest request head in bytes (request line and header fields).
    /// Default 8 KiB; larger heads are answered `431` (RFC 6585 §5), or
    /// `414` when the request line alone is longer (RFC 9112 §3), and the
    /// connection is closed.
    ///
    /// ```
    /// use natron::{test::TestClient, Request, Server};
    ///
    /// let client = TestClient::with_server(
    ///     Server::builder()
    ///         .max_headers_len(1024)
    ///         .handler(|req: Request| req.respond(200, (), "ok")),
    /// );
    /// assert_eq!(client.get("/").send().unwrap().status, 200);
    /// let big = "x".repeat(2000);
    /// assert_eq!(client.get("/").header("X-Big", &big).send().unwrap().status, 431);
    /// assert_eq!(client.get(&format!("/{big}")).send().unwrap().status, 414);
    /// ```
    pub fn max_headers_len(mut self, n: usize) -> Self {
        self.config.max_headers_len = n;
        self
    }

    /// Largest buffered request body, in decoded bytes (RFC 9112 §6).
    /// Default 1 MiB; larger bodies are answered `413 Content Too Large`
    /// and the connection closes (a `Content-Length` above it before any
    /// of the body is read). A route may set its own
    /// ([`Router::max_body_len`](crate::Router::max_body_len)).
    ///
    /// ```
    /// use natron::{test::TestClient, Request, Server};
    ///
    /// let client = TestClient::with_server(
    ///     Server::builder()
    ///         .max_body_len(16)
    ///         .handler(|req: Request| req.respond(200, (), "ok")),
    /// );
    /// assert_eq!(client.post("/").body([0; 16]).send().unwrap().status, 200);
    /// assert_eq!(client.post("/").body([0; 17]).send().unwrap().status, 413);
    /// ```
    pub fn max_body_len(mut self, n: usize) -> Self {
        self.config.max_body_len = n;
        self
    }

    /// Streams every request body that no route of the handler's
    /// [`Router`](crate::Router) decides for: the handler reads it as it
    /// arrives, through [`Parts::body_reader`](crate::Parts::body_reader),
    /// with a 64 KiB window and backpressure, instead of natron buffering
    /// it whole (up to [`ServerBuilder::max_body_len`]) before the handler
    /// runs. Default `false`. The setting for a custom [`Handler`], which
    /// has no routes natron can read.
    ///
    /// ```
    /// use natron::{test::TestClient, Request, Server};
    /// use std::io::Read;
    ///
    /// let client = TestClient::with_server(
    ///     Server::builder()
    ///         .stream_request_bodies(true)
    ///         .handler(|mut req: Request| -> Result<(), natron::Error> {
    ///             // Read as it arrives: 10 MB never sits in memory at once.
    ///             let n = std::io::copy(&mut req.body_reader(), &mut std::io::sink())?;
    ///             req.respond(200, (), n.to_string());
    ///             Ok(())
    ///         }),
    /// );
    /// let big = vec![b'x'; 10_000_000]; // above the 1 MiB `max_body_len`
    /// assert_eq!(client.post("/").body(big).send().unwrap().text(), "10000000");
    /// ```
    pub fn stream_request_bodies(mut self, on: bool) -> Self {
        self.config.stream_bodies = on;
        self
    }

    /// Largest streamed request body, in decoded bytes, where its route
    /// sets none. Default: no limit (`u64::MAX`); a streamed body costs
    /// the server its window, not its length. Past it: `413` before the
    /// handler runs for a `Content-Length`, a
    /// [`BodyReader`](crate::http::BodyReader) error for a chunked body.
    ///
    /// ```
    /// use natron::{test::TestClient, Request, Server};
    ///
    /// let client = TestClient::with_server(
    ///     Server::builder()
    ///         .stream_request_bodies(true)
    ///         .max_streamed_body_len(100)
    ///         .handler(|mut req: Request| -> Result<(), natron::Error> {
    ///             let n = std::io::copy(&mut req.body_reader(), &mut std::io::sink())?;
    ///             req.respond(200, (), n.to_string());
    ///             Ok(())
    ///         }),
    /// );
    /// assert_eq!(client.post("/").body([0; 100]).send().unwrap().text(), "100");
    /// assert_eq!(client.post("/").body([0; 101]).send().unwrap().status, 413);
    /// ```
    pub fn max_streamed_body_len(mut self, n: u64) -> Self {
        self.config.max_streamed_body_len = n;
        self
    }

    /// Largest WebSocket message. Default 64 KiB.
    ///
    /// ```
    /// use natron::{Request, Server, WebSocket, WebSocketEvent};
    /// # use std::time::Duration;
    /// # use tungstenite::protocol::frame::coding::CloseCode;
    ///
    /// let server = Server::builder()
    ///     .max_message_len(1024)
    ///     .handler(|req: Request| {
    ///         let _ = req.upgrade_to_websocket();
    ///     })
    ///     .websocket_handler(|_ws: WebSocket, _event: WebSocketEvent| {})
    ///     .build();
    /// # let handle = server.handle();
    /// # let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// # let addr = handle.wait_until_ready(Duration::from_secs(5)).unwrap();
    /// # let stream = std::net::TcpStream::connect(addr).unwrap();
    /// # let url = format!("ws://{addr}/");
    /// # let (mut client, _) = tungstenite::client::client(url.as_str(), stream).unwrap();
    /// // A client sends 2000 bytes: the server closes with 1009 (Message Too Big).
    /// client.send(tungstenite::Message::text("x".repeat(2000))).unwrap();
    /// # let tungstenite::Message::Close(Some(close)) = client.read().unwrap() else { panic!() };
    /// assert_eq!(close.code, CloseCode::Size); // 1009
    /// # drop(client);
    /// # handle.close();
    /// # serving.join().unwrap().unwrap();
    /// ```
    pub fn max_message_len(mut self, n: usize) -> Self {
        self.config.max_message_len = n;
        self
    }

    /// Time from the first byte of a request head to its end before the
    /// client gets `408`. Default 10 s.
    ///
    /// ```
    /// use natron::{Request, Server};
    /// use std::io::{Read, Write};
    /// use std::time::Duration;
    ///
    /// let server = Server::builder()
    ///     .header_timeout(Duration::from_millis(100))
    ///     .handler(|req: Request| req.respond(200, (), "ok"))
    ///     .build();
    /// # let handle = server.handle();
    /// # let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// # let addr = handle.wait_until_ready(Duration::from_secs(5)).unwrap();
    /// // A client that starts a request and never finishes its head:
    /// let mut client = std::net::TcpStream::connect(addr).unwrap();
    /// client.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    /// let mut answer = String::new();
    /// client.read_to_string(&mut answer).unwrap(); // the server closes
    /// assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    /// # drop(client);
    /// # handle.close();
    /// # serving.join().unwrap().unwrap();
    /// ```
    pub fn header_timeout(mut self, t: Duration) -> Self {
        self.config.header_timeout = t;
        self
    }

    /// Time an idle keep-alive connection, a stalled body or a client not
    /// reading its responses is given before the connection closes.
    /// Default 60 s.
    ///
    /// ```
    /// use natron::{Request, Server};
    /// use std::io::Read;
    /// use std::time::{Duration, Instant};
    ///
    /// let server = Server::builder()
    ///     .idle_timeout(Duration::from_millis(100))
    ///     .handler(|req: Request| req.respond(200, (), "ok"))
    ///     .build();
    /// # let handle = server.handle();
    /// # let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// # let addr = handle.wait_until_ready(Duration::from_secs(5)).unwrap();
    /// // A client that connects and sends nothing is disconnected.
    /// let start = Instant::now();
    /// let mut client = std::net::TcpStream::connect(addr).unwrap();
    /// assert_eq!(client.read(&mut [0; 16]).unwrap(), 0); // closed, nothing sent
    /// assert!(start.elapsed() >= Duration::from_millis(100));
    /// # drop(client);
    /// # handle.close();
    /// # serving.join().unwrap().unwrap();
    /// ```
    pub fn idle_timeout(mut self, t: Duration) -> Self {
        self.config.idle_timeout = t;
        self
    }

    /// Bytes that may wait in one WebSocket's outbound queue; a send past
    /// it is refused and the connection closed with 1008 (a single message
    /// larger than the bound is still accepted into an empty queue).
    /// Default (and what `0` gives) `max(1 MiB, 2 * max_message_len)`.
    ///
    /// ```
    /// use natron::Server;
    ///
    /// // A client that reads slower than it is sent to loses its WebSocket
    /// // once 256 KiB wait for it.
    /// let server = Server::builder().max_outbound_len(256 << 10).build();
    /// # drop(server);
    /// ```
    pub fn max_outbound_len(mut self, n: usize) -> Self {
        self.config.max_outbound_len = n;
        self
    }

    /// Sends a Ping on every WebSocket from which nothing arrived for this
    /// long (and again each interval while it stays quiet).
    /// Default: none.
    ///
    /// ```
    /// use natron::{Request, Server, WebSocket, WebSocketEvent};
    /// use std::time::Duration;
    ///
    /// let server = Server::builder()
    ///     .websocket_ping_interval(Duration::from_millis(50))
    ///     .handler(|req: Request| {
    ///         let _ = req.upgrade_to_websocket();
    ///     })
    ///     .websocket_handler(|_ws: WebSocket, _event: WebSocketEvent| {})
    ///     .build();
    /// # let handle = server.handle();
    /// # let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// # let addr = handle.wait_until_ready(Duration::from_secs(5)).unwrap();
    /// # let stream = std::net::TcpStream::connect(addr).unwrap();
    /// # let url = format!("ws://{addr}/");
    /// # let (mut client, _) = tungstenite::client::client(url.as_str(), stream).unwrap();
    /// // A client that stays quiet gets a Ping (and answers it with a Pong).
    /// assert!(matches!(client.read().unwrap(), tungstenite::Message::Ping(_)));
    /// # drop(client);
    /// # handle.close();
    /// # serving.join().unwrap().unwrap();
    /// ```
    ///
    /// With an idle timeout as well, a client that stops answering is found
    /// and closed: a live one answers each Ping, so it is never idle.
    ///
    /// ```
    /// # use natron::Server;
    /// # use std::time::Duration;
    /// let server = Server::builder()
    ///     .websocket_ping_interval(Duration::from_secs(30))
    ///     .websocket_idle_timeout(Duration::from_secs(75))
    ///     .build();
    /// # drop(server);
    /// ```
    pub fn websocket_ping_interval(mut self, t: Duration) -> Self {
        self.config.ws_ping_interval = Some(t);
        self
    }

    /// Closes (1001) a WebSocket from which nothing arrived for this long.
    /// Default: none.
    ///
    /// ```
    /// use natron::{Request, Server, WebSocket, WebSocketEvent};
    /// use std::time::Duration;
    /// # use tungstenite::protocol::frame::coding::CloseCode;
    ///
    /// let server = Server::builder()
    ///     .websocket_idle_timeout(Duration::from_millis(100))
    ///     .handler(|req: Request| {
    ///         let _ = req.upgrade_to_websocket();
    ///     })
    ///     .websocket_handler(|_ws: WebSocket, _event: WebSocketEvent| {})
    ///     .build();
    /// # let handle = server.handle();
    /// # let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// # let addr = handle.wait_until_ready(Duration::from_secs(5)).unwrap();
    /// # let stream = std::net::TcpStream::connect(addr).unwrap();
    /// # let url = format!("ws://{addr}/");
    /// # let (mut client, _) = tungstenite::client::client(url.as_str(), stream).unwrap();
    /// // A client that sends nothing is closed with 1001 (Going Away).
    /// # let tungstenite::Message::Close(Some(close)) = client.read().unwrap() else { panic!() };
    /// assert_eq!(close.code, CloseCode::Away);
    /// # drop(client);
    /// # handle.close();
    /// # serving.join().unwrap().unwrap();
    /// ```
    pub fn websocket_idle_timeout(mut self, t: Duration) -> Self {
        self.config.ws_idle_timeout = Some(t);
        self
    }

    /// How long a lingering close waits, at most, for the client to finish
    /// sending (RFC 9112 §9.6). After a response that closes the connection
    /// (`Connection: close`, an error such as 413, a WebSocket close),
    /// natron shuts its write side and reads and drops what the client
    /// still sends, so that closing with request bytes unread does not
    /// reset the connection and destroy the response before the client
    /// reads it. An idle keep-alive connection closed at shutdown owes
    /// nothing and does not linger. Default 2 s.
    ///
    /// ```
    /// use natron::Server;
    /// use std::time::Duration;
    ///
    /// let server = Server::builder().linger_timeout(Duration::from_millis(500)).build();
    /// # drop(server);
    /// ```
    pub fn linger_timeout(mut self, t: Duration) -> Self {
        self.config.linger_timeout = t;
        self
    }

    /// How many connections (HTTP and WebSocket) may be open at once (at
    /// least 1).
    /// Past it, new connections wait in the kernel's listen backlog until
    /// one closes (they are not accepted, so they hold no file descriptor
    /// and nothing of theirs is lost); existing connections are
    /// unaffected, and reaching the limit is logged once per burst (at
    /// most every 10 s).
    ///
    /// Default: the process's open-file limit (`RLIMIT_NOFILE`, soft)
    /// less a tenth of it (at least 64) kept for everything else.
    ///
    /// ```
    /// use natron::{Request, Server};
    /// use std::io::{Read, Write};
    ///
    /// let server = Server::builder()
    ///     .max_connections(1)
    ///     .handler(|req: Request| req.respond(200, (), "ok"))
    ///     .build();
    /// # let handle = server.handle();
    /// # let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// # let addr = handle.wait_until_ready(std::time::Duration::from_secs(5))?;
    /// let mut first = std::net::TcpStream::connect(addr)?;
    /// first.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")?;
    /// # let mut got = Vec::new();
    /// # let mut buf = [0u8; 256];
    /// # while !got.ends_with(b"ok") {
    /// #     let n = first.read(&mut buf)?;
    /// #     assert!(n > 0, "closed early");
    /// #     got.extend_from_slice(&buf[..n]);
    /// # }
    /// // Answered and kept alive: the one connection allowed is open, so a
    /// // second waits in the listen backlog, unanswered...
    /// let mut second = std::net::TcpStream::connect(addr)?;
    /// second.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
    /// second.set_read_timeout(Some(std::time::Duration::from_millis(200)))?;
    /// assert!(second.read(&mut [0u8; 1]).is_err(), "answered past the limit");
    /// // ...until the first closes.
    /// drop(first);
    /// second.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    /// let mut answer = String::new();
    /// second.read_to_string(&mut answer)?;
    /// assert!(answer.starts_with("HTTP/1.1 200 OK") && answer.ends_with("ok"));
    /// assert!(handle.stats().connection_limit_reached >= 1);
    /// # handle.close();
    /// # serving.join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn max_connections(mut self, n: usize) -> Self {
        self.config.max_connections = n.max(1);
        self
    }

    /// Also accepts WebSocket upgrades from these origins
    /// (`scheme://host[:port]`, e.g. `https://app.example.com`), besides
    /// the default: a browser's upgrade is accepted only when its `Origin`
    /// names the host and port the request was sent to (its `Host`,
    /// compared case-insensitively with default ports elided). A request
    /// without `Origin` (not a browser) is always accepted. Refused
    /// upgrades are answered `403` with the reason.
    ///
    /// This is what stops cross-site WebSocket hijacking (RFC 6455
    /// §10.2): without it, any web page can open a WebSocket to this
    /// server carrying its visitor's cookies.
    ///
    /// An entry that is not an origin makes [`Server::serve`] fail with
    /// `InvalidInput` naming it (and [`TestClient::with_server`] panic).
    ///
    /// [`TestClient::with_server`]: crate::test::TestClient::with_server
    ///
    /// ```
    /// use natron::test::{TestClient, TestError};
    /// use natron::{Request, Server, WebSocket, WebSocketEvent};
    ///
    /// let client = TestClient::with_server(
    ///     Server::builder()
    ///         .allowed_origins(["https://app.example.com"])
    ///         .handler(|req: Request| {
    ///             let _ = req.upgrade_to_websocket();
    ///         })
    ///         .websocket_handler(|_ws: WebSocket, _event: WebSocketEvent| {}),
    /// );
    /// let upgrade = |origin: &str| {
    ///     client
    ///         .get("/")
    ///         .header("Host", "api.example.com")
    ///         .header("Origin", origin)
    /// #       .header("Upgrade", "websocket")
    /// #       .header("Connection", "Upgrade")
    /// #       .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
    /// #       .header("Sec-WebSocket-Version", "13")
    ///         // ... and the other upgrade fields
    ///         .send()
    /// };
    /// assert!(matches!(upgrade("https://app.example.com"), Err(TestError::Upgraded)));
    /// assert!(matches!(upgrade("https://api.example.com"), Err(TestError::Upgraded)));
    /// assert_eq!(upgrade("https://evil.example").unwrap().status, 403);
    ///
    /// // Not an origin: `serve` refuses to start.
    /// let server = Server::builder().allowed_origins(["app.example.com"]).build();
    /// let err = server.serve("127.0.0.1:0").unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    pub fn allowed_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        // The last call decides, as for every setting: a valid list (or
        // `allow_any_origin`) replaces an earlier invalid one.
        match OriginPolicy::same_host_or(origins) {
            Ok(policy) => {
                self.config.origin_policy = policy;
                self.config.invalid = None;
            }
            Err(e) => self.config.invalid = Some(format!("allowed_origins: {e}")),
        }
        self
    }

    /// Accepts WebSocket upgrades from any `Origin`: for servers whose
    /// clients are not browsers, or that authenticate every WebSocket
    /// themselves (a token in the first message, say). See
    /// [`ServerBuilder::allowed_origins`] for the default.
    ///
    /// ```
    /// use natron::test::{TestClient, TestError};
    /// use natron::{Request, Server, WebSocket, WebSocketEvent};
    ///
    /// let client = TestClient::with_server(
    ///     Server::builder()
    ///         .allow_any_origin()
    ///         .handler(|req: Request| {
    ///             let _ = req.upgrade_to_websocket();
    ///         })
    ///         .websocket_handler(|_ws: WebSocket, _event: WebSocketEvent| {}),
    /// );
    /// let res = client
    ///     .get("/")
    ///     .header("Origin", "https://anywhere.example")
    /// # .header("Upgrade", "websocket")
    /// # .header("Connection", "Upgrade")
    /// # .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
    /// # .header("Sec-WebSocket-Version", "13")
    ///     // ... and the other upgrade fields
    ///     .send();
    /// assert!(matches!(res, Err(TestError::Upgraded)));
    /// ```
    pub fn allow_any_origin(mut self) -> Self {
        self.config.origin_policy = OriginPolicy::Any;
        self.config.invalid = None;
        self
    }

    /// Believes the forwarding fields of requests that come from these
    /// addresses (IPv4 also when seen as IPv4-mapped IPv6): by default
    /// `X-Forwarded-For` and `X-Forwarded-Host`, or `Forwarded` (RFC 7239)
    /// with [`ServerBuilder::proxy_headers`]; the other kind is ignored.
    /// [`Parts::remote_addr`](crate::Parts::remote_addr) is then the
    /// client the proxy names (the nearest hop, reading from the right,
    /// that is not itself a trusted proxy; port 0 when the proxy gives
    /// none), and [`Parts::host`](crate::Parts::host) and the `Origin`
    /// check use the forwarded host. From any other peer these fields are
    /// ignored, since a client can write them. Default: none.
    ///
    /// The proxy must *set* the host field, replacing whatever the client
    /// sent (nginx: `proxy_set_header X-Forwarded-Host $host;`), or strip
    /// it (`proxy_set_header X-Forwarded-Host "";`): a proxy passes client
    /// fields on unchanged. nginx's default rewrites `Host` to the
    /// upstream's name, so without a forwarded host (or `proxy_set_header
    /// Host $host;`) browser upgrades fail the `Origin` check.
    ///
    /// ```
    /// use natron::{test::TestClient, Request, Server};
    /// use std::net::Ipv4Addr;
    ///
    /// let client = TestClient::with_server(
    ///     Server::builder()
    ///         // The proxy on this host (the test client's address is 127.0.0.1).
    ///         .trusted_proxies([Ipv4Addr::LOCALHOST.into()])
    ///         .handler(|req: Request| {
    ///             let who = format!("{} {}", req.remote_addr(), req.host().unwrap_or(""));
    ///             req.respond(200, (), who)
    ///         }),
    /// );
    /// let res = client
    ///     .get("/")
    ///     .header("X-Forwarded-For", "192.0.2.7")
    ///     .header("X-Forwarded-Host", "app.example")
    ///     .send()
    ///     .unwrap();
    /// assert_eq!(res.text(), "192.0.2.7:0 app.example");
    /// ```
    pub fn trusted_proxies(mut self, proxies: impl IntoIterator<Item = IpAddr>) -> Self {
        // Canonical once here (IPv4-mapped IPv6 as IPv4), so each request
        // compares only its peer's canonical form.
        self.config.trusted_proxies = proxies.into_iter().map(|ip| ip.to_canonical()).collect();
        self
    }

    /// Which forwarding fields the [trusted
    /// proxies](ServerBuilder::trusted_proxies) write. Default
    /// [`ProxyHeaders::XForwarded`].
    ///
    /// ```
    /// use natron::{test::TestClient, ProxyHeaders, Request, Server};
    /// use std::net::Ipv4Addr;
    ///
    /// let client = TestClient::with_server(
    ///     Server::builder()
    ///         .trusted_proxies([Ipv4Addr::LOCALHOST.into()])
    ///         .proxy_headers(ProxyHeaders::Forwarded)
    ///         .handler(|req: Request| {
    ///             let ip = req.remote_addr().ip().to_string();
    ///             req.respond(200, (), ip)
    ///         }),
    /// );
    /// let res = client.get("/").header("Forwarded", "for=192.0.2.7").send().unwrap();
    /// assert_eq!(res.text(), "192.0.2.7");
    /// // X-Forwarded-For is now ignored: the peer's address stays.
    /// let res = client.get("/").header("X-Forwarded-For", "192.0.2.8").send().unwrap();
    /// assert_eq!(res.text(), "127.0.0.1");
    /// ```
    pub fn proxy_headers(mut self, kind: ProxyHeaders) -> Self {
        self.config.proxy_headers = kind;
        self
    }

    /// How long a server-initiated close waits for the client's close
    /// frame before dropping the connection. Default 5 s.
    ///
    /// ```
    /// use natron::{Request, Server, WebSocket, WebSocketEvent};
    /// use std::io::{Read, Write};
    /// use std::time::{Duration, Instant};
    ///
    /// let server = Server::builder()
    ///     .websocket_close_timeout(Duration::from_millis(200))
    ///     .handler(|req: Request| drop(req.upgrade_to_websocket()))
    ///     .websocket_handler(|ws: WebSocket, event: WebSocketEvent| {
    ///         if event == WebSocketEvent::Open {
    ///             let _ = ws.close(1001, "going away");
    ///         }
    ///     })
    ///     .build();
    /// # let handle = server.handle();
    /// # let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// # let addr = handle.wait_until_ready(Duration::from_secs(5))?;
    /// // A client that never answers the server's close frame.
    /// let mut conn = std::net::TcpStream::connect(addr)?;
    /// let start = Instant::now();
    /// conn.write_all(
    ///     b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
    ///       Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    /// )?;
    /// let mut wire = Vec::new();
    /// conn.read_to_end(&mut wire)?; // the 101, the close frame, then the end
    /// assert!(wire.starts_with(b"HTTP/1.1 101 "));
    /// // Dropped after the 200 ms, not the default 5 s.
    /// assert!(start.elapsed() >= Duration::from_millis(200));
    /// assert!(start.elapsed() < Duration::from_secs(4));
    /// # handle.close();
    /// # serving.join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn websocket_close_timeout(mut self, t: Duration) -> Self {
        self.config.ws_close_timeout = t;
        self
    }

    /// How long `close()` waits for in-flight handlers. Default 10 s;
    /// `Duration::MAX` waits as long as they take.
    ///
    /// ```
    /// use natron::{Request, Server};
    /// use std::time::{Duration, Instant};
    ///
    /// let server = Server::builder()
    ///     .shutdown_grace(Duration::from_millis(200))
    ///     .handler(|req: Request| req.respond(200, (), "ok"))
    ///     .build();
    /// let handle = server.handle();
    /// let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// handle.wait_until_ready(Duration::from_secs(5)).unwrap();
    /// let start = Instant::now();
    /// handle.close();
    /// serving.join().unwrap().unwrap();
    /// // Nothing was in flight: no need to wait for the grace period.
    /// assert!(start.elapsed() < Duration::from_secs(5));
    /// ```
    pub fn shutdown_grace(mut self, t: Duration) -> Self {
        self.config.shutdown_grace = t;
        self
    }

    /// Builds the server. Without a handler every request gets `404`.
    ///
    /// ```
    /// use natron::{Request, Server};
    ///
    /// let server = Server::builder()
    ///     .handler(|req: Request| req.respond(200, (), "ok"))
    ///     .build();
    /// let handle = server.handle(); // to stop it later, from another thread
    /// # handle.close(); // before `serve`: it returns at once
    /// server.serve("127.0.0.1:0").unwrap();
    /// ```
    ///
    /// Without a handler:
    ///
    /// ```
    /// use natron::{test::TestClient, Server};
    ///
    /// let client = TestClient::with_server(Server::builder());
    /// assert_eq!(client.get("/").send().unwrap().status, 404);
    /// ```
    pub fn build(mut self) -> Server {
        self.config.max_worker_threads = self
            .config
            .max_worker_threads
            .max(self.config.worker_threads);
        if self.config.max_connections == 0 {
            self.config.max_connections = limit::default_max_connections();
        }
        let max_connections = self.config.max_connections;
        if self.config.max_outbound_len == 0 {
            self.config.max_outbound_len = (2 * self.config.max_message_len).max(1 << 20);
        }
        let mut handler = self.handler.unwrap_or_else(|| {
            Box::new(|req: crate::Request| {
                req.respond(404, [("Content-Type", "text/plain")], "Not Found")
            })
        });
        if !self.middleware.is_empty() {
            handler = Box::new(crate::middleware::Wrap::from_chain(
                crate::middleware::Boxed(handler),
                std::mem::take(&mut self.middleware),
            ));
        }
        Server {
            app: Arc::new(App {
                handler,
                ws_handler: self.ws_handler,
                log: self
                    .log
                    .unwrap_or_else(|| slog::Logger::root(slog::Discard, slog::o!())),
                config: self.config,
                scheduler: Scheduler::new(),
                conn_limit: Arc::new(ConnLimit::new(max_connections)),
                websockets: AtomicUsize::new(0),
                outbound_bytes: AtomicUsize::new(0),
                draining: AtomicBool::new(false),
            }),
            shared: Arc::new(Shared::default()),
        }
    }
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    closing: AtomicBool,
    acceptor_waker: Mutex<Option<Arc<mio::Waker>>>,
}

/// The server's lifecycle, as `close()` and `wait_until_ready` see it.
///
/// Transitions (each under `Shared::state`, then `changed` is notified):
///
/// ```text
/// Starting ─serve─▶ Binding ─bound─▶ Ready ─acceptor drops listener─▶ Draining ─joined─▶ Closed
///    │                 └─bind fails─▶ Failed        (closing seen while Binding: ─▶ Draining)
///    └─serve after close()─▶ Closed
/// ```
///
/// Owners: `serve` moves `Starting → Binding → Ready | Failed` and
/// `Draining → Closed`; the acceptor's exit (on `serve`'s thread) moves
/// `Ready → Draining`. `close()` only sets `closing` and waits.
///
/// Invariant (the `close()` contract): the listening socket is open only
/// in `Binding` and `Ready`, so `close()`, which waits while the state is
/// one of them, returns only once the listener is closed.
#[derive(Default, Clone)]
enum State {
    #[default]
    Starting,
    Binding,
    /// Listening on these addresses (at least one; the first is
    /// `local_addr`).
    Ready(Arc<[SocketAddr]>),
    Draining,
    Failed(String),
    Closed,
}

/// An HTTP server. Configure it with [`Server::builder`], run it with
/// [`Server::serve`], stop it from any thread through a [`ServerHandle`].
pub struct Server {
    app: Arc<App>,
    shared: Arc<Shared>,
}

impl Server {
    /// The shared state a connection is built with (`io/fuzz.rs`,
    /// `test.rs`).
    pub(crate) fn app(&self) -> &Arc<App> {
        &self.app
    }
}

/// Controls a running [`Server`] from any thread. Cheap to clone.
#[derive(Clone)]
pub struct ServerHandle {
    shared: Arc<Shared>,
    app: Arc<App>,
}

/// A snapshot of a server's state, from [`ServerHandle::stats`]. Each
/// field is read on its own (atomic loads and one short lock), so the
/// fields need not add up at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Open connections speaking HTTP/1.x (accepted and not yet closed,
    /// WebSockets excluded).
    pub http_connections: usize,
    /// Open WebSocket connections.
    pub websocket_connections: usize,
    /// Worker threads running a handler (or about to).
    pub workers_busy: usize,
    /// Worker threads parked or looking for work.
    pub workers_idle: usize,
    /// Connections queued for a worker: the run queue's depth.
    pub run_queue_depth: usize,
    /// Bytes of responses and WebSocket frames waiting for their sockets.
    pub outbound_bytes_queued: usize,
    /// How many times the open connections reached `max_connections`,
    /// which stops the acceptor until one closes (new connections wait in
    /// the listen backlog meanwhile; none is refused).
    pub connection_limit_reached: usize,
    /// Decoded request-body bytes waiting in the windows of streamed
    /// bodies for their handlers to read.
    pub body_bytes_queued: usize,
    /// The most bytes any one streamed body's window has held since the
    /// server started: never above its 64 KiB bound.
    pub body_window_peak: usize,
}

impl Server {
    /// A builder with the default settings.
    ///
    /// ```
    /// use natron::{test::TestClient, Request, Server};
    ///
    /// let builder = Server::builder()
    ///     .max_body_len(64 << 10)
    ///     .handler(|req: Request| req.respond(200, (), "ok"));
    /// let client = TestClient::with_server(builder);
    /// assert_eq!(client.get("/").send().unwrap().text(), "ok");
    /// ```
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            handler: None,
            ws_handler: None,
            log: None,
            config: Config::default(),
            middleware: Vec::new(),
        }
    }

    /// A server with `handler` and the default settings.
    ///
    /// ```
    /// use natron::{Request, Server};
    /// # use std::io::{Read, Write};
    /// # use std::time::Duration;
    ///
    /// let server = Server::new(|req: Request| req.respond(200, (), "hello"));
    /// # let handle = server.handle();
    /// # let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// # let addr = handle.wait_until_ready(Duration::from_secs(5)).unwrap();
    /// # let mut client = std::net::TcpStream::connect(addr).unwrap();
    /// # client.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    /// # let mut answer = String::new();
    /// # client.read_to_string(&mut answer).unwrap();
    /// // served: `GET /` is answered "hello".
    /// assert!(answer.starts_with("HTTP/1.1 200 OK") && answer.ends_with("\r\n\r\nhello"));
    /// # drop(client);
    /// # handle.close();
    /// # serving.join().unwrap().unwrap();
    /// ```
    pub fn new(handler: impl Handler) -> Server {
        Server::builder().handler(handler).build()
    }

    /// A handle to close the server or wait until it is ready.
    ///
    /// ```
    /// use natron::{Request, Server};
    /// use std::time::Duration;
    ///
    /// let server = Server::new(|req: Request| req.respond(200, (), "ok"));
    /// let handle = server.handle();
    /// let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// let addr = handle.wait_until_ready(Duration::from_secs(5)).unwrap();
    /// assert_eq!(handle.local_addr(), Some(addr));
    /// handle.close(); // from any thread: serve returns
    /// assert!(serving.join().unwrap().is_ok());
    /// ```
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            shared: self.shared.clone(),
            app: self.app.clone(),
        }
    }

    /// Binds `addr` (e.g. `("localhost", 8080)` or `"127.0.0.1:0"`) and
    /// serves until [`ServerHandle::close`] is called. Returns once every
    /// natron thread has been joined (see the module docs for a handler
    /// that never returns).
    ///
    /// `addr` is anything [`ListenAddrs`] takes: `"host:port"`,
    /// `("host", port)`, a `SocketAddr`... Every address it names is
    /// served, on one port: `localhost` is `127.0.0.1` and `::1` (RFC 6761
    /// §6.3) whatever `/etc/hosts` says, and with port `0` the port the
    /// first address got is reused for the others, so a client may use
    /// either family. An address the host cannot bind (IPv6 disabled:
    /// `EADDRNOTAVAIL`, `EAFNOSUPPORT`) is logged and skipped as long as
    /// one address is bound. The addresses are in
    /// [`ServerHandle::local_addrs`]. On Linux, `[::]` alone already
    /// serves IPv4 too (unless `net.ipv6.bindv6only` is set), so listing
    /// both wildcards, `0.0.0.0` and `[::]`, on one port fails with
    /// `AddrInUse`: give `[::]` alone.
    ///
    /// # Errors
    ///
    /// * a port in use: an error of kind [`io::ErrorKind::AddrInUse`]
    ///   whose message names the address, e.g. `cannot listen on
    ///   127.0.0.1:8080: Address already in use (os error 98)`;
    /// * `addr` does not resolve, or no address of it can be bound;
    /// * an invalid configuration ([`io::ErrorKind::InvalidInput`]);
    /// * a thread or `epoll` instance cannot be created.
    ///
    /// ```no_run
    /// let server = natron::Server::new(|req: natron::Request| req.respond(200, (), "hi"));
    /// if let Err(e) = server.serve(("localhost", 8080)) {
    ///     eprintln!("{e}"); // "cannot listen on 127.0.0.1:8080: Address already in use ..."
    ///     std::process::exit(1);
    /// }
    /// ```
    pub fn serve(self, addr: impl ListenAddrs) -> io::Result<()> {
        self.serve_with(|log| listen::bind(addr, log))
    }

    /// Serves on a listener the caller already has: inherited through
    /// socket activation (systemd's `LISTEN_FDS`), or bound by a test
    /// that wants the port before the server runs. It is switched to
    /// non-blocking mode; natron closes it when serving ends. Otherwise as
    /// [`Server::serve`].
    ///
    /// # Errors
    ///
    /// As [`Server::serve`], less the binding errors; and the error of
    /// making `listener` non-blocking or reading its address.
    ///
    /// ```no_run
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let port = listener.local_addr().unwrap().port();
    /// let server = natron::Server::new(|req: natron::Request| req.respond(200, (), "hi"));
    /// // The port is known (and taken) before serving starts.
    /// println!("listening on {port}");
    /// server.serve_listener(listener).unwrap();
    /// ```
    pub fn serve_listener(self, listener: std::net::TcpListener) -> io::Result<()> {
        self.serve_with(move |_| {
            listener.set_nonblocking(true)?;
            Ok(vec![mio::net::TcpListener::from_std(listener)])
        })
    }

    fn serve_with(
        self,
        bind: impl FnOnce(&slog::Logger) -> io::Result<Vec<mio::net::TcpListener>>,
    ) -> io::Result<()> {
        {
            let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
            if self.shared.closing.load(Ordering::Acquire) {
                // close() came first: never bind.
                *state = State::Closed;
                self.shared.changed.notify_all();
                return Ok(());
            }
            *state = State::Binding;
        }
        // Should natron itself panic below, close() and wait_until_ready
        // must not wait for a listener that is gone.
        struct FailOnUnwind<'a>(&'a Shared);
        impl Drop for FailOnUnwind<'_> {
            fn drop(&mut self) {
                if thread::panicking() {
                    let mut state = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
                    *state = State::Failed("serve panicked".into());
                    self.0.changed.notify_all();
                }
            }
        }
        let guard = FailOnUnwind(&self.shared);
        let result = self.serve_inner(bind);
        drop(guard);
        // The acceptor's eventfd goes with the acceptor, even while handles
        // live on.
        self.app.conn_limit.clear_waker();
        self.shared
            .acceptor_waker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        *state = match &result {
            Ok(()) => State::Closed,
            Err(e) => State::Failed(e.to_string()),
        };
        self.shared.changed.notify_all();
        result
    }

    /// Serves on `localhost:port`: `127.0.0.1` and `::1` (see
    /// [`Server::serve`]; where IPv6 is off, `127.0.0.1` alone).
    ///
    /// # Errors
    ///
    /// As [`Server::serve`].
    ///
    /// ```no_run
    /// let server = natron::Server::new(|req: natron::Request| req.respond(200, (), "hi"));
    /// // http://localhost:8080/, http://127.0.0.1:8080/ and http://[::1]:8080/
    /// server.serve_port(8080)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn serve_port(self, port: u16) -> io::Result<()> {
        self.serve(("localhost", port))
    }

    fn serve_inner(
        &self,
        bind: impl FnOnce(&slog::Logger) -> io::Result<Vec<mio::net::TcpListener>>,
    ) -> io::Result<()> {
        let app = &self.app;
        if let Some(e) = &app.config.invalid {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, e.clone()));
        }
        let listeners = bind(&app.log)?;
        let local: Arc<[SocketAddr]> = listeners
            .iter()
            .map(|l| l.local_addr())
            .collect::<io::Result<Vec<_>>>()?
            .into();
        let poll = mio::Poll::new()?;
        let waker = Arc::new(mio::Waker::new(poll.registry(), acceptor::WAKER)?);
        app.conn_limit.set_waker(waker.clone());
        *self
            .shared
            .acceptor_waker
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(waker);

        // Workers.
        let pool = Pool::start(app.clone())?;

        // IO actors.
        let (io_exit_tx, io_exit_rx) = mpsc::channel::<()>();
        let mut ios = Vec::new();
        let mut io_threads = Vec::new();
        for i in 0..app.config.io_threads {
            let spawned = io_actor(app.clone()).and_then(|(actor, handle)| {
                let exit = io_exit_tx.clone();
                let thread = thread::Builder::new()
                    .name(format!("natron-io-{i}"))
                    .spawn(move || {
                        actor.run();
                        let _ = exit.send(());
                    })?;
                Ok((handle, thread))
            });
            match spawned {
                Ok((handle, thread)) => {
                    ios.push(handle);
                    io_threads.push(thread);
                }
                Err(e) => {
                    // Nothing is served: stop what started (the pool stops
                    // when dropped).
                    for io in &ios {
                        io.post(IoMsg::Stop);
                    }
                    for t in io_threads {
                        let _ = t.join();
                    }
                    return Err(e);
                }
            }
        }

        let accepted = {
            let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
            if self.shared.closing.load(Ordering::Acquire) {
                // close() ran while binding and waits for the listener to
                // close; it never opened for clients.
                drop(listeners);
                Ok(())
            } else {
                *state = State::Ready(local.clone());
                self.shared.changed.notify_all();
                drop(state);
                for addr in local.iter() {
                    slog::info!(app.log, "serving"; "addr" => %addr);
                }
                Acceptor {
                    poll,
                    listeners,
                    ios: ios.clone(),
                    limit: &app.conn_limit,
                    stop: &self.shared.closing,
                    log: app.log.clone(),
                }
                .run()
            }
        };
        // The listener is closed (the acceptor owned it): new connections
        // are refused from here on. This releases close().
        {
            let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
            *state = State::Draining;
            self.shared.changed.notify_all();
        }

        let deadline = deadline_after(app.config.shutdown_grace);
        app.draining.store(true, Ordering::Release);
        for io in &ios {
            io.post(IoMsg::Drain);
        }
        let mut io_left = io_threads.len();
        while io_left > 0
            && io_exit_rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .is_ok()
        {
            io_left -= 1;
        }
        if io_left > 0 {
            slog::warn!(app.log, "shutdown grace expired; closing remaining connections"; "io_threads_waiting" => io_left);
            for io in &ios {
                io.post(IoMsg::Stop);
            }
        }
        for t in io_threads {
            let _ = t.join();
        }

        // Every event already delivered (WebSocket Close events above all)
        // is handled before the workers stop.
        while app.scheduler.active() > 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
        if app.scheduler.active() > 0 {
            slog::warn!(app.log, "shutdown grace expired with events unhandled"; "connections" => app.scheduler.active());
        }
        pool.shutdown(deadline);
        slog::info!(app.log, "server closed");
        accepted
    }
}

impl ServerHandle {
    /// What the server is doing now: connections, workers, the run queue
    /// and bytes waiting to be written. Cheap: a few atomic loads and one
    /// uncontended lock; safe to call often from any thread (a metrics
    /// endpoint, a health check).
    ///
    /// ```
    /// use natron::{Request, Server};
    /// use std::io::{Read, Write};
    /// use std::time::Duration;
    ///
    /// let server = Server::new(|req: Request| req.respond(200, (), "ok"));
    /// let handle = server.handle();
    /// # let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// # let addr = handle.wait_until_ready(Duration::from_secs(5)).unwrap();
    /// assert_eq!(handle.stats().http_connections, 0);
    ///
    /// // A keep-alive connection, answered once and still open:
    /// let mut client = std::net::TcpStream::connect(addr).unwrap();
    /// client.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    /// # let mut buf = [0; 1024];
    /// # let mut answer = Vec::new();
    /// # while !answer.ends_with(b"ok") {
    /// #     let n = client.read(&mut buf).unwrap();
    /// #     assert!(n > 0);
    /// #     answer.extend_from_slice(&buf[..n]);
    /// # }
    /// let stats = handle.stats();
    /// assert_eq!((stats.http_connections, stats.websocket_connections), (1, 0));
    /// # drop(client);
    /// # handle.close();
    /// # serving.join().unwrap().unwrap();
    /// ```
    pub fn stats(&self) -> Stats {
        let load = self.app.scheduler.load();
        let open = self.app.conn_limit.open();
        let websockets = self.app.websockets.load(Ordering::Relaxed).min(open);
        Stats {
            http_connections: open - websockets,
            websocket_connections: websockets,
            workers_busy: load.workers - load.idle,
            workers_idle: load.idle,
            run_queue_depth: load.queued,
            outbound_bytes_queued: self.app.outbound_bytes.load(Ordering::Relaxed),
            connection_limit_reached: self.app.conn_limit.times_full(),
            body_bytes_queued: self.app.config.body_stats.queued.load(Ordering::Relaxed),
            body_window_peak: self.app.config.body_stats.peak.load(Ordering::Relaxed),
        }
    }

    /// Stops the server. Callable from any thread (a handler's included),
    /// any number of times, before or during [`Server::serve`].
    ///
    /// # What it promises
    ///
    /// * **The listening socket is closed when `close()` returns.** A new
    ///   connection attempt after that is refused (`ECONNREFUSED`). A
    ///   connection whose TCP handshake the kernel completed but natron had
    ///   not yet accepted is reset (`ECONNRESET`), as with any listener
    ///   that closes; it never reaches a handler. The wait is short: the
    ///   acceptor never runs user code, only `epoll_wait`.
    /// * Connections already accepted are not waited for. Their in-flight
    ///   requests are answered (with `Connection: close`) within
    ///   `shutdown_grace`; idle keep-alive connections are closed; every
    ///   WebSocket gets a `1001` Close. `serve` returns once every natron
    ///   thread is joined.
    /// * Called before `serve`, it makes `serve` return `Ok(())` without
    ///   binding.
    ///
    /// ```
    /// use natron::{Request, Server};
    /// use std::time::Duration;
    ///
    /// let server = Server::new(|req: Request| req.respond(200, (), "ok"));
    /// let handle = server.handle();
    /// let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// let addr = handle.wait_until_ready(Duration::from_secs(5)).unwrap();
    ///
    /// handle.close();
    /// // The listener is closed once `close` returns.
    /// assert!(std::net::TcpStream::connect(addr).is_err());
    /// serving.join().unwrap().unwrap();
    /// handle.close(); // again: nothing to do
    /// ```
    pub fn close(&self) {
        self.shared.closing.store(true, Ordering::Release);
        let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        while matches!(*state, State::Binding | State::Ready(_)) {
            if let Some(w) = self
                .shared
                .acceptor_waker
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
            {
                let _ = w.wake();
            }
            // Timed only to re-wake: `Binding` installs the waker later.
            state = self
                .shared
                .changed
                .wait_timeout(state, Duration::from_millis(50))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Blocks until the server is listening and returns its address (useful
    /// with port 0), or fails if `serve` failed or `timeout` (wall clock)
    /// passed. `Duration::MAX` waits without a limit.
    ///
    /// # Errors
    ///
    /// * `serve` failed (the port is in use, an invalid configuration...):
    ///   the error names its message, e.g. `server failed to start: cannot
    ///   listen on 127.0.0.1:8080: Address already in use (os error 98)`;
    /// * the server is closing or closed;
    /// * [`io::ErrorKind::TimedOut`]: not listening within `timeout`, e.g.
    ///   `serve` has not been called.
    ///
    /// ```
    /// use natron::{Request, Server};
    /// use std::time::Duration;
    ///
    /// let server = Server::new(|req: Request| req.respond(200, (), "ok"));
    /// let handle = server.handle();
    /// let timeout = Duration::from_secs(5);
    ///
    /// let err = handle.wait_until_ready(Duration::from_millis(10)).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut); // not serving yet
    ///
    /// let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// let addr = handle.wait_until_ready(timeout).unwrap();
    /// assert!(addr.ip().is_loopback() && addr.port() != 0);
    ///
    /// handle.close();
    /// serving.join().unwrap().unwrap();
    /// assert!(handle.wait_until_ready(timeout).is_err()); // closed
    /// ```
    pub fn wait_until_ready(&self, timeout: Duration) -> io::Result<SocketAddr> {
        let deadline = deadline_after(timeout);
        let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match &*state {
                State::Ready(addrs) => return Ok(addrs[0]),
                State::Failed(e) => {
                    return Err(io::Error::other(format!("server failed to start: {e}")))
                }
                State::Draining | State::Closed => {
                    return Err(io::Error::other("server is closed"))
                }
                State::Starting | State::Binding => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "server not ready in time",
                ));
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// The bound address once ready (the first, when several are bound:
    /// see [`Self::local_addrs`]).
    ///
    /// ```
    /// use natron::{Request, Server};
    /// use std::time::Duration;
    ///
    /// let server = Server::new(|req: Request| req.respond(200, (), "ok"));
    /// let handle = server.handle();
    /// assert_eq!(handle.local_addr(), None); // not serving yet
    /// let serving = std::thread::spawn(move || server.serve("127.0.0.1:0"));
    /// let addr = handle.wait_until_ready(Duration::from_secs(5)).unwrap();
    /// assert_eq!(handle.local_addr(), Some(addr));
    /// handle.close();
    /// # serving.join().unwrap().unwrap();
    /// assert_eq!(handle.local_addr(), None);
    /// ```
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addrs().first().copied()
    }

    /// Every bound address once ready (`127.0.0.1:port` and `[::1]:port`
    /// for `localhost`), empty before and after.
    ///
    /// ```
    /// use natron::{Request, Server};
    /// use std::time::Duration;
    ///
    /// let server = Server::new(|req: Request| req.respond(200, (), "ok"));
    /// let handle = server.handle();
    /// let serving = std::thread::spawn(move || server.serve(("localhost", 0)));
    /// handle.wait_until_ready(Duration::from_secs(5)).unwrap();
    /// let addrs = handle.local_addrs();
    /// // 127.0.0.1 and, where IPv6 is on, ::1: on one port.
    /// assert_eq!(addrs[0].ip(), std::net::Ipv4Addr::LOCALHOST);
    /// assert!(addrs.iter().all(|a| a.port() == addrs[0].port()));
    /// handle.close();
    /// # serving.join().unwrap().unwrap();
    /// assert!(handle.local_addrs().is_empty());
    /// ```
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        match &*self.shared.state.lock().unwrap_or_else(|e| e.into_inner()) {
            State::Ready(addrs) => addrs.to_vec(),
            _ => Vec::new(),
        }
    }
}
