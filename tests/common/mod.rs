//! Shared helpers for the integration tests: a server on `127.0.0.1:0` in a
//! thread ([`TestServer`]), one strict raw-socket client for HTTP and
//! WebSocket ([`Client`], `client.rs` and `ws.rs`), a recorder of WebSocket
//! events ([`Events`]), the runner of wire tables (`table.rs`) and
//! [`wait_until`], the one way a test waits for something to happen.
//!
//! Everything here is bounded in time: sockets have read and write
//! timeouts, waits have deadlines, and stopping a server waits a bounded
//! time for `serve` to return. Set `NATRON_TEST_LOG=1` to see the server's
//! log on stderr.

#![allow(dead_code, unused_imports)]

mod client;
mod events;
mod leaks;
mod log;
mod table;
mod ws;

pub use client::*;
pub use events::*;
pub use leaks::*;
pub use log::*;
pub use table::*;
pub use ws::*;

use natron::{Handler, Server, ServerBuilder, ServerHandle, Stats};
use std::io;
use std::net::SocketAddr;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long any single socket read or write may block.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a test waits for an event it expects.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `serve` may take to return after `close()`.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest [`poll_until`] waits before looking again at a condition
/// nothing signals (it starts at 50 µs and doubles up to this).
const POLL: Duration = Duration::from_millis(2);

/// Whether `done` comes to hold within `timeout`, looking again after a
/// pause that grows from 50 µs to 2 ms. For
/// conditions nothing signals (a counter in `stats()`, a thread's exit,
/// `/proc`); a channel or [`Events::wait_until`] is better where there is
/// one. The only sleep the tests use to wait.
pub fn poll_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_micros(50);
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(pause);
        pause = (pause * 2).min(POLL);
    }
}

/// Waits until `done` holds; panics naming `what` after `timeout`.
#[track_caller]
pub fn wait_until(what: &str, timeout: Duration, done: impl FnMut() -> bool) {
    assert!(poll_until(timeout, done), "{what}: not within {timeout:?}");
}

/// Waits until `stats()` satisfies `ok` and returns that snapshot; panics
/// with the last snapshot after 10 s.
#[track_caller]
pub fn wait_for_stats(h: &ServerHandle, what: &str, ok: impl Fn(&Stats) -> bool) -> Stats {
    let mut last = h.stats();
    let reached = poll_until(Duration::from_secs(10), || {
        last = h.stats();
        ok(&last)
    });
    assert!(reached, "{what}: last {last:?}");
    last
}

/// A builder with test-friendly settings: few threads, a short grace.
pub fn builder() -> ServerBuilder {
    let b = Server::builder()
        .worker_threads(4)
        .io_threads(2)
        .shutdown_grace(Duration::from_secs(2));
    if std::env::var_os("NATRON_TEST_LOG").is_some() {
        b.logger(term_logger())
    } else {
        b
    }
}

fn term_logger() -> slog::Logger {
    use slog::Drain;
    let decorator = slog_term::PlainSyncDecorator::new(std::io::stderr());
    let drain = slog_term::FullFormat::new(decorator).build().fuse();
    slog::Logger::root(drain, slog::o!())
}

/// A server running on its own thread.
pub struct TestServer {
    pub addr: SocketAddr,
    pub handle: ServerHandle,
    thread: Option<JoinHandle<io::Result<()>>>,
}

/// Starts `handler` with the settings of [`builder`].
pub fn serve(handler: impl Handler) -> TestServer {
    start(builder().handler(handler))
}

/// Builds and starts a server on `127.0.0.1:0`.
pub fn start(builder: ServerBuilder) -> TestServer {
    start_on(builder, "127.0.0.1:0".parse().unwrap())
}

/// Builds and starts a server on `addr`, waiting until it is ready.
pub fn start_on(builder: ServerBuilder, addr: SocketAddr) -> TestServer {
    let server = builder.build();
    let handle = server.handle();
    let thread = thread::Builder::new()
        .name("test-serve".into())
        .spawn(move || server.serve(addr))
        .expect("spawn serve thread");
    let addr = handle
        .wait_until_ready(Duration::from_secs(5))
        .expect("server ready");
    TestServer {
        addr,
        handle,
        thread: Some(thread),
    }
}

impl TestServer {
    /// A new raw connection to the server.
    pub fn client(&self) -> Client {
        Client::connect(self.addr)
    }

    /// One request on a fresh connection; returns its response.
    #[track_caller]
    pub fn request(&self, bytes: impl AsRef<[u8]>) -> Response {
        let mut c = self.client();
        c.send(bytes);
        c.read_response()
    }

    /// A fresh connection upgraded to a WebSocket at `path`.
    #[track_caller]
    pub fn websocket(&self, path: &str) -> Client {
        Client::upgrade(self.addr, path)
    }

    /// Closes the server and waits (bounded) for `serve` to return. Returns
    /// what `serve` returned and how long that took after `close()`.
    pub fn stop(mut self) -> (io::Result<()>, Duration) {
        let t = self.thread.take().expect("not stopped yet");
        let started = Instant::now();
        self.handle.close();
        let result = join_within(t, STOP_TIMEOUT).expect("serve returned within the timeout");
        (result, started.elapsed())
    }

    /// [`TestServer::stop`], requiring `serve` to have returned `Ok`;
    /// returns how long it took.
    pub fn stop_ok(self) -> Duration {
        let (served, took) = self.stop();
        served.expect("serve returned Ok");
        took
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.handle.close();
            let r = join_within(t, STOP_TIMEOUT);
            if !thread::panicking() {
                let r = r.expect("serve returned within the timeout after close()");
                r.expect("serve returned Ok");
            }
        }
    }
}

/// Joins `t` if it finishes within `timeout`; `None` (leaving it
/// detached) otherwise.
pub fn join_within<T>(t: JoinHandle<T>, timeout: Duration) -> Option<T> {
    if !poll_until(timeout, || t.is_finished()) {
        return None;
    }
    Some(t.join().expect("thread did not panic"))
}

/// A `GET` request for `path` with a Host header.
pub fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")
}

/// A `POST` request for `path` with a `Content-Length` body.
pub fn post(path: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// A handler answering `200 text/plain` with `METHOD path body`.
pub fn echo(req: natron::Request) {
    let body = format!(
        "{} {} {}",
        req.method(),
        req.path(),
        String::from_utf8_lossy(req.body())
    );
    req.respond(200, [("Content-Type", "text/plain")], body);
}
