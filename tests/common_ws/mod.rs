//! Helpers for the WebSocket integration tests: a server on `127.0.0.1:0`
//! in a thread, an event recorder for the WebSocket handler, a tungstenite
//! client over a std `TcpStream`, and a raw-frame client for what
//! tungstenite will not send (unmasked frames, invalid UTF-8, bytes glued
//! to the handshake).
//!
//! Everything is bounded in time: sockets have read and write timeouts,
//! waits have deadlines, and stopping a server waits a bounded time for
//! `serve` to return. Set `NATRON_TEST_LOG=1` to see the server's log.

#![allow(dead_code)]

use natron::{CloseInfo, ServerBuilder, WebSocketEvent};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::ops::Deref;
use std::sync::{Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub use crate::common::{builder, join_within, IO_TIMEOUT};

/// How long a test waits for an event it expects.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(5);

/// A server running on its own thread ([`crate::common::TestServer`]), whose
/// `stop` also requires `serve` to have returned `Ok`.
pub struct WsServer(crate::common::TestServer);

impl Deref for WsServer {
    type Target = crate::common::TestServer;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// Builds and starts a server on `127.0.0.1:0`, waiting until it is ready.
pub fn start(builder: ServerBuilder) -> WsServer {
    WsServer(crate::common::start(builder))
}

impl WsServer {
    /// `ws://addr/path`.
    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// Closes the server and waits (bounded) for `serve` to return Ok;
    /// returns how long that took.
    pub fn stop(self) -> Duration {
        let (served, took) = self.0.stop();
        served.expect("serve returned Ok");
        if took > Duration::from_millis(500) {
            eprintln!(
                "{}: serve took {took:?} to return after close()",
                thread::current().name().unwrap_or("?")
            );
        }
        took
    }
}

/// Every WebSocket event the handler saw, with the connection id, in the
/// order the handler recorded them.
#[derive(Default)]
pub struct Events {
    log: Mutex<Vec<(u64, WebSocketEvent)>>,
    changed: Condvar,
}

impl Events {
    pub fn push(&self, id: u64, event: WebSocketEvent) {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((id, event));
        self.changed.notify_all();
    }

    pub fn all(&self) -> Vec<(u64, WebSocketEvent)> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits until `pred` holds for the log; false on timeout.
    pub fn wait_until(
        &self,
        timeout: Duration,
        pred: impl Fn(&[(u64, WebSocketEvent)]) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if pred(&log) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            log = self
                .changed
                .wait_timeout(log, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// The events of connection `id`.
    pub fn of(&self, id: u64) -> Vec<WebSocketEvent> {
        self.all()
            .into_iter()
            .filter(|(i, _)| *i == id)
            .map(|(_, e)| e)
            .collect()
    }

    /// Connection ids in the order of their first event.
    pub fn ids(&self) -> Vec<u64> {
        let mut ids = Vec::new();
        for (id, _) in self.all() {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids
    }

    /// Events matching `pred`.
    pub fn count(&self, pred: impl Fn(&WebSocketEvent) -> bool) -> usize {
        self.all().iter().filter(|(_, e)| pred(e)).count()
    }

    /// Waits until `n` connections have had their Open event; returns
    /// their ids in order.
    #[track_caller]
    pub fn wait_opens(&self, n: usize) -> Vec<u64> {
        let ok = self.wait_until(EVENT_TIMEOUT, |log| {
            log.iter()
                .filter(|(_, e)| *e == WebSocketEvent::Open)
                .count()
                >= n
        });
        assert!(
            ok,
            "{n} Open events within {EVENT_TIMEOUT:?}; got {:?}",
            self.all()
        );
        self.all()
            .into_iter()
            .filter(|(_, e)| *e == WebSocketEvent::Open)
            .map(|(id, _)| id)
            .collect()
    }

    /// Waits for the Close event of `id` and returns it.
    #[track_caller]
    pub fn wait_close(&self, id: u64, timeout: Duration) -> CloseInfo {
        let ok = self.wait_until(timeout, |log| {
            log.iter()
                .any(|(i, e)| *i == id && matches!(e, WebSocketEvent::Close(_)))
        });
        assert!(
            ok,
            "Close event of connection {id} within {timeout:?}; got {:?}",
            self.of(id)
        );
        self.of(id)
            .into_iter()
            .find_map(|e| match e {
                WebSocketEvent::Close(info) => Some(info),
                _ => None,
            })
            .expect("found above")
    }

    /// Asserts connection `id` saw Open first, exactly one Close, last;
    /// returns that Close.
    #[track_caller]
    pub fn assert_lifecycle(&self, id: u64) -> CloseInfo {
        assert_lifecycle(&self.of(id))
    }
}

/// Asserts `events` start with the only Open and end with the only Close.
#[track_caller]
pub fn assert_lifecycle(events: &[WebSocketEvent]) -> CloseInfo {
    assert_eq!(
        events.first(),
        Some(&WebSocketEvent::Open),
        "Open first: {events:?}"
    );
    let opens = events
        .iter()
        .filter(|e| **e == WebSocketEvent::Open)
        .count();
    assert_eq!(opens, 1, "exactly one Open: {events:?}");
    let closes = events
        .iter()
        .filter(|e| matches!(e, WebSocketEvent::Close(_)))
        .count();
    assert_eq!(closes, 1, "exactly one Close: {events:?}");
    match events.last() {
        Some(WebSocketEvent::Close(info)) => info.clone(),
        _ => panic!("Close last: {events:?}"),
    }
}

/// A TCP connection with timeouts and `TCP_NODELAY`.
pub fn tcp(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

pub type Ws = tungstenite::WebSocket<TcpStream>;

/// A tungstenite client connected to `path`.
#[track_caller]
pub fn connect(addr: SocketAddr, path: &str) -> Ws {
    connect_request(addr, format!("ws://{addr}{path}")).0
}

/// A tungstenite client for `request` (anything tungstenite can turn into
/// a client request); returns the handshake response too.
#[track_caller]
pub fn connect_request(
    addr: SocketAddr,
    request: impl tungstenite::client::IntoClientRequest,
) -> (Ws, tungstenite::handshake::client::Response) {
    match tungstenite::client::client(request, tcp(addr)) {
        Ok(r) => r,
        Err(e) => panic!("WebSocket handshake failed: {e}"),
    }
}

/// The next message from the server, panicking on an error or timeout.
#[track_caller]
pub fn read(ws: &mut Ws) -> tungstenite::Message {
    match ws.read() {
        Ok(m) => m,
        Err(e) => panic!("reading a WebSocket message: {e}"),
    }
}

/// The next text message, skipping pings and pongs.
#[track_caller]
pub fn read_text(ws: &mut Ws) -> String {
    loop {
        match read(ws) {
            tungstenite::Message::Text(t) => return t.as_str().to_owned(),
            tungstenite::Message::Ping(_) | tungstenite::Message::Pong(_) => {}
            other => panic!("expected a text message, got {other:?}"),
        }
    }
}

/// Reads until the server's close frame; returns its code and reason
/// (`None` for an empty close frame). Data messages before it are
/// returned too, in order.
#[track_caller]
pub fn read_until_close(ws: &mut Ws) -> (Option<(u16, String)>, Vec<tungstenite::Message>) {
    let mut before = Vec::new();
    loop {
        match read(ws) {
            tungstenite::Message::Close(frame) => {
                let close = frame.map(|f| (u16::from(f.code), f.reason.as_str().to_owned()));
                return (close, before);
            }
            m => before.push(m),
        }
    }
}

/// Drives the close handshake to its end: reads until tungstenite reports
/// the connection closed (the server dropped TCP), then drops the socket.
/// Panics on a timeout.
#[track_caller]
pub fn finish(mut ws: Ws) {
    loop {
        match ws.read() {
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) | Err(tungstenite::Error::AlreadyClosed) => {
                return
            }
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset
                        | io::ErrorKind::BrokenPipe
                        | io::ErrorKind::UnexpectedEof
                ) =>
            {
                return
            }
            Err(e) => panic!("finishing the close handshake: {e}"),
        }
    }
}

pub fn text(s: impl Into<String>) -> tungstenite::Message {
    tungstenite::Message::text(s.into())
}

/// The RFC 6455 §1.3 sample key and its accept value.
pub const SAMPLE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const SAMPLE_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A valid upgrade request for `path` with the sample key and `extra`
/// header lines (each ending in `\r\n`).
pub fn upgrade_request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {SAMPLE_KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

pub const OP_CONT: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// Formats a frame; masked with `mask` if given (client frames must be).
pub fn frame(fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let len = payload.len();
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len < 65536 {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    match mask {
        Some(m) => {
            out.extend_from_slice(&m);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ m[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A final, masked client frame.
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(true, opcode, payload, Some([0x37, 0xfa, 0x21, 0x3d]))
}

/// A masked client Close frame with `code`.
pub fn client_close(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    client_frame(OP_CLOSE, &payload)
}

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The only value of `name`, if any (case-insensitive).
    #[track_caller]
    pub fn header(&self, name: &str) -> Option<&str> {
        let all: Vec<&str> = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect();
        assert!(all.len() <= 1, "{name} appears {} times", all.len());
        all.first().copied()
    }
}

/// A server frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

/// A raw client: bytes in, bytes out, with a receive buffer.
pub struct Raw {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    pub fn connect(addr: SocketAddr) -> Raw {
        Raw::from_stream(tcp(addr))
    }

    pub fn from_stream(stream: TcpStream) -> Raw {
        Raw {
            stream,
            buf: Vec::new(),
        }
    }

    /// Connects and completes a valid upgrade to `path`.
    #[track_caller]
    pub fn upgrade(addr: SocketAddr, path: &str) -> Raw {
        let mut raw = Raw::connect(addr);
        raw.send(upgrade_request(path, ""));
        let r = raw.read_http();
        assert_eq!(r.status, 101, "upgrade answered {r:?}");
        raw
    }

    #[track_caller]
    pub fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.stream.write_all(bytes.as_ref()).expect("send");
    }

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

    /// Exactly `n` bytes.
    #[track_caller]
    pub fn read_bytes(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            match self.fill() {
                Ok(0) => panic!("EOF after {} of {n} bytes: {:?}", self.buf.len(), self.buf),
                Ok(_) => {}
                Err(e) => panic!("reading {n} bytes: {e}"),
            }
        }
        self.buf.drain(..n).collect()
    }

    /// One HTTP response (no body for 1xx; else per `Content-Length`).
    #[track_caller]
    pub fn read_http(&mut self) -> HttpResponse {
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            match self.fill() {
                Ok(0) => panic!(
                    "EOF before a response head: {:?}",
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
        let head = String::from_utf8(head[..end].to_vec()).expect("ASCII head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        assert!(
            status_line.starts_with("HTTP/1.1 "),
            "status line {status_line:?}"
        );
        let status: u16 = status_line[9..12].parse().expect("numeric status");
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l
                    .split_once(':')
                    .unwrap_or_else(|| panic!("bad field line {l:?}"));
                (n.to_owned(), v.trim().to_owned())
            })
            .collect();
        let mut r = HttpResponse {
            status,
            headers,
            body: Vec::new(),
        };
        if status >= 200 {
            let len: usize = r
                .header("content-length")
                .unwrap_or_else(|| panic!("no Content-Length in {r:?}"))
                .parse()
                .expect("numeric Content-Length");
            r.body = self.read_bytes(len);
        }
        r
    }

    /// The next frame from the server; asserts it is well-formed for a
    /// server (unmasked, no RSV bits).
    #[track_caller]
    pub fn read_frame(&mut self) -> Frame {
        let h = self.read_bytes(2);
        assert_eq!(h[0] & 0x70, 0, "RSV bits set in a server frame: {h:?}");
        assert_eq!(h[1] & 0x80, 0, "server frames must not be masked");
        let len = match h[1] & 0x7f {
            126 => u16::from_be_bytes(self.read_bytes(2).try_into().unwrap()) as usize,
            127 => u64::from_be_bytes(self.read_bytes(8).try_into().unwrap()) as usize,
            n => n as usize,
        };
        Frame {
            fin: h[0] & 0x80 != 0,
            opcode: h[0] & 0x0f,
            payload: self.read_bytes(len),
        }
    }

    /// Asserts the next frame is a Close; returns its code and reason.
    #[track_caller]
    pub fn expect_close(&mut self) -> (u16, String) {
        let f = self.read_frame();
        assert_eq!(f.opcode, OP_CLOSE, "expected a Close frame, got {f:?}");
        assert!(f.payload.len() >= 2, "close frame without a code: {f:?}");
        let code = u16::from_be_bytes([f.payload[0], f.payload[1]]);
        let reason = String::from_utf8(f.payload[2..].to_vec()).expect("UTF-8 close reason");
        (code, reason)
    }

    /// Asserts the server closes the connection with nothing more sent.
    #[track_caller]
    pub fn expect_eof(&mut self) {
        assert!(self.buf.is_empty(), "bytes before EOF: {:?}", self.buf);
        match self.fill() {
            Ok(0) => {}
            Ok(_) => panic!("expected EOF, got more bytes: {:?}", self.buf),
            Err(e) => panic!("expected EOF, got error {e}"),
        }
    }
}
