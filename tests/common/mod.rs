//! Shared helpers for the integration tests: a server on `127.0.0.1:0` in a
//! thread, and a raw-socket client that parses responses strictly.
//!
//! Everything here is bounded in time: sockets have read and write
//! timeouts, and stopping a server waits a bounded time for `serve` to
//! return. Set `NATRON_TEST_LOG=1` to see the server's log on stderr.

#![allow(dead_code)]

use natron::{Handler, Server, ServerBuilder, ServerHandle};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long any single socket read or write may block.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `serve` may take to return after `close()`.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

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
    pub fn request(&self, bytes: impl AsRef<[u8]>) -> Response {
        let mut c = self.client();
        c.send(bytes);
        c.read_response()
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
    let deadline = Instant::now() + timeout;
    while !t.is_finished() {
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(2));
    }
    Some(t.join().expect("thread did not panic"))
}

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    /// E.g. `HTTP/1.1 404 Not Found`.
    pub status_line: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The value of `name` (case-insensitive), asserting it appears at
    /// most once.
    pub fn header(&self, name: &str) -> Option<&str> {
        let all = self.header_all(name);
        assert!(
            all.len() <= 1,
            "header {name} appears {} times in {:?}",
            all.len(),
            self.headers
        );
        all.first().copied()
    }

    /// Every value of `name`, in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn body_str(&self) -> &str {
        std::str::from_utf8(&self.body).expect("UTF-8 body")
    }

    /// Asserts the status line, and that the body is `body`.
    #[track_caller]
    pub fn assert(&self, status_line: &str, body: &str) {
        assert_eq!(self.status_line, status_line, "response {self:?}");
        assert_eq!(
            String::from_utf8_lossy(&self.body),
            body,
            "body of {}",
            self.status_line
        );
    }
}

/// A raw TCP client with a receive buffer, so pipelined responses that
/// arrive in one segment are split correctly.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect");
        Client::from_stream(stream)
    }

    pub fn from_stream(stream: TcpStream) -> Client {
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    /// Writes all of `bytes`, panicking on error.
    #[track_caller]
    pub fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.stream.write_all(bytes.as_ref()).expect("send");
    }

    /// Writes `bytes`, returning the error if the server has gone away.
    pub fn try_send(&mut self, bytes: impl AsRef<[u8]>) -> io::Result<()> {
        self.stream.write_all(bytes.as_ref())
    }

    /// Writes `bytes` in pieces of `piece` bytes, pausing between some of
    /// them so they arrive in separate segments.
    pub fn send_in_pieces(&mut self, bytes: &[u8], piece: usize) {
        for (i, p) in bytes.chunks(piece).enumerate() {
            self.send(p);
            if i % 8 == 7 {
                thread::sleep(Duration::from_millis(1));
            }
        }
    }

    /// Reads more bytes into the buffer; `Ok(0)` at EOF.
    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads one response, whose body length follows its status and
    /// `Content-Length`.
    #[track_caller]
    pub fn read_response(&mut self) -> Response {
        self.read_response_inner(false)
    }

    /// Reads one response to a `HEAD` request: never a body.
    #[track_caller]
    pub fn read_head_response(&mut self) -> Response {
        self.read_response_inner(true)
    }

    #[track_caller]
    fn read_response_inner(&mut self, head_request: bool) -> Response {
        let end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i;
            }
            match self.fill() {
                Ok(0) => panic!(
                    "connection closed before a full response head; got {:?}",
                    String::from_utf8_lossy(&self.buf)
                ),
                Ok(_) => {}
                Err(e) => panic!(
                    "reading a response head: {e}; got {:?}",
                    String::from_utf8_lossy(&self.buf)
                ),
            }
        };
        let head: Vec<u8> = self.buf.drain(..end + 4).collect();
        let head = std::str::from_utf8(&head[..end]).expect("ASCII response head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap().to_owned();
        assert!(
            !status_line.contains('\n') && !status_line.contains('\r'),
            "bare CR/LF in {status_line:?}"
        );
        let mut parts = status_line.splitn(3, ' ');
        assert_eq!(
            parts.next(),
            Some("HTTP/1.1"),
            "status line {status_line:?}"
        );
        let code = parts.next().expect("status code");
        assert_eq!(code.len(), 3, "status line {status_line:?}");
        let status: u16 = code.parse().expect("numeric status");
        assert!(parts.next().is_some(), "no SP after the status code");
        let mut headers = Vec::new();
        for line in lines {
            assert!(
                !line.contains('\n') && !line.contains('\r'),
                "bare CR/LF in {line:?}"
            );
            let (name, value) = line
                .split_once(": ")
                .unwrap_or_else(|| panic!("malformed field line {line:?}"));
            assert!(
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':'),
                "bad field name {name:?}"
            );
            headers.push((name.to_owned(), value.to_owned()));
        }
        let mut response = Response {
            status_line,
            status,
            headers,
            body: Vec::new(),
        };
        assert!(
            response.header("transfer-encoding").is_none(),
            "natron never sends chunked responses"
        );
        let no_body = (100..200).contains(&status) || status == 204 || status == 304;
        if no_body {
            assert!(
                response.header("content-length").is_none(),
                "{status} with Content-Length"
            );
            return response;
        }
        let len: usize = response
            .header("content-length")
            .unwrap_or_else(|| panic!("no Content-Length in {response:?}"))
            .parse()
            .expect("numeric Content-Length");
        if !head_request {
            response.body = self.read_bytes(len);
        }
        response
    }

    /// Reads exactly `n` bytes.
    #[track_caller]
    pub fn read_bytes(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            match self.fill() {
                Ok(0) => panic!(
                    "EOF after {} of {n} body bytes: {:?}",
                    self.buf.len(),
                    String::from_utf8_lossy(&self.buf)
                ),
                Ok(_) => {}
                Err(e) => panic!("reading {n} bytes: {e}"),
            }
        }
        self.buf.drain(..n).collect()
    }

    /// Asserts the server closes the connection with nothing more sent:
    /// the next read returns 0 (not a timeout, not more bytes).
    #[track_caller]
    pub fn expect_eof(&mut self) {
        if !self.buf.is_empty() {
            panic!(
                "expected EOF, but got more bytes: {:?}",
                String::from_utf8_lossy(&self.buf)
            );
        }
        match self.fill() {
            Ok(0) => {}
            Ok(_) => panic!(
                "expected EOF, but got more bytes: {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
            Err(e) => panic!("expected EOF, got error {e} ({:?})", e.kind()),
        }
    }

    /// Reads everything until EOF (the server closing), returning the
    /// bytes not yet consumed.
    #[track_caller]
    pub fn read_to_eof(&mut self) -> Vec<u8> {
        loop {
            match self.fill() {
                Ok(0) => return std::mem::take(&mut self.buf),
                Ok(_) => {}
                Err(e) => panic!(
                    "reading to EOF: {e}; got {:?}",
                    String::from_utf8_lossy(&self.buf)
                ),
            }
        }
    }

    /// Whether bytes arrive (or the connection closes) within `wait`.
    pub fn has_data_within(&mut self, wait: Duration) -> bool {
        if !self.buf.is_empty() {
            return true;
        }
        self.stream.set_read_timeout(Some(wait)).unwrap();
        let r = self.fill();
        self.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        match r {
            Ok(_) => true,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                false
            }
            Err(_) => true,
        }
    }
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
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
