//! The raw-socket client, HTTP half: responses parsed exactly per RFC 9112
//! (status line, field lines, then a body delimited by `Content-Length`,
//! `chunked` or the connection closing). Anything malformed fails the test
//! at once, with what was read: bare CR or LF, obs-fold, a field name that
//! is no token, whitespace before the colon, control bytes in a value, two
//! `Content-Length` fields or a list in one, `Content-Length` beside
//! `Transfer-Encoding`, a body on a 1xx/204/304, any byte after a response
//! that closed the connection, and any HTTP response after a `101`.

use super::IO_TIMEOUT;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

/// A head larger than this is a runaway: no response natron makes comes
/// near it.
const MAX_HEAD: usize = 64 * 1024;

/// How a response's body was delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// 1xx, 204, 304, or an answer to `HEAD`: no body whatever the fields say.
    NoBody,
    /// `Content-Length: n`.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Neither: the body ran until the server closed the connection.
    UntilClose,
}

/// One chunk of a chunked body ([`Client::read_chunk`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    /// A chunk's data (never empty).
    Data(Vec<u8>),
    /// The last chunk, with the trailer fields.
    Last(Vec<(String, String)>),
}

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    /// E.g. `HTTP/1.1 404 Not Found`.
    pub status_line: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub framing: Framing,
}

impl Response {
    /// The value of `name` (case-insensitive), asserting it appears at
    /// most once.
    #[track_caller]
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

    /// Whether the comma-separated list field `name` holds `token`
    /// (case-insensitive), over every line of it.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.header_all(name)
            .iter()
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Whether this response ends its connection (`Connection: close`).
    pub fn closes(&self) -> bool {
        self.has_token("connection", "close")
    }

    #[track_caller]
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

/// What the connection may carry next, as far as the client has read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// HTTP responses.
    Http,
    /// A response closed the connection (`Connection: close`, or a body
    /// delimited by the close): only EOF may follow.
    Closed,
    /// A `101` switched the connection to WebSocket frames.
    WebSocket,
}

/// A raw TCP client with a receive buffer, so pipelined responses (and
/// frames) that arrive in one segment are split correctly. One client
/// speaks HTTP, then, after a `101`, WebSocket (`ws.rs`).
pub struct Client {
    pub stream: TcpStream,
    pub(super) buf: Vec<u8>,
    pub(super) mode: Mode,
    pub(super) ws: super::ws::WsState,
}

impl Client {
    #[track_caller]
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
            mode: Mode::Http,
            ws: Default::default(),
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

    /// Writes `bytes` in pieces of `piece` bytes, pausing 1 ms after every
    /// eighth: the client's deliberate pace, so that the server sees the
    /// input in many reads (a test of incremental parsing, not a wait).
    #[track_caller]
    pub fn send_in_pieces(&mut self, bytes: &[u8], piece: usize) {
        for (i, p) in bytes.chunks(piece).enumerate() {
            self.send(p);
            if i % 8 == 7 {
                thread::sleep(Duration::from_millis(1));
            }
        }
    }

    /// Reads more bytes into the buffer; `Ok(0)` at EOF.
    pub(super) fn fill(&mut self) -> io::Result<usize> {
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

    /// Reads until at least `n` bytes are buffered, panicking on EOF or an
    /// error (`what` names what was being read).
    #[track_caller]
    pub(super) fn fill_to(&mut self, n: usize, what: &str) {
        while self.buf.len() < n {
            match self.fill() {
                Ok(0) => panic!(
                    "EOF in {what}: {} of {n} bytes: {:?}",
                    self.buf.len(),
                    String::from_utf8_lossy(&self.buf)
                ),
                Ok(_) => {}
                Err(e) => panic!(
                    "reading {what}: {e}; got {:?}",
                    String::from_utf8_lossy(&self.buf)
                ),
            }
        }
    }

    /// Reads exactly `n` bytes.
    #[track_caller]
    pub fn read_bytes(&mut self, n: usize) -> Vec<u8> {
        self.fill_to(n, "the expected bytes");
        self.buf.drain(..n).collect()
    }

    /// Reads a CRLF-terminated line (without its CRLF); a bare CR or LF in
    /// it fails.
    #[track_caller]
    fn read_line(&mut self, what: &str) -> Vec<u8> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                let line = line
                    .strip_suffix(b"\r\n")
                    .unwrap_or_else(|| panic!("bare LF ending {what}: {:?}", lossy(&line)));
                assert!(
                    !line.contains(&b'\r'),
                    "bare CR in {what}: {:?}",
                    lossy(line)
                );
                return line.to_vec();
            }
            assert!(
                self.buf.len() <= MAX_HEAD,
                "no line end in {MAX_HEAD} bytes of {what}"
            );
            self.fill_to(self.buf.len() + 1, what);
        }
    }

    /// Reads one response, whose body length follows its status and
    /// `Content-Length` (natron never sends chunked or close-delimited
    /// bodies: either fails here).
    #[track_caller]
    pub fn read_response(&mut self) -> Response {
        let r = self.read_response_any(false);
        assert!(
            matches!(r.framing, Framing::NoBody | Framing::Length(_)),
            "natron always sends Content-Length: {r:?}"
        );
        r
    }

    /// Reads one response to a `HEAD` request: never a body.
    #[track_caller]
    pub fn read_head_response(&mut self) -> Response {
        self.read_response_any(true)
    }

    /// Reads one response, any framing RFC 9112 allows. `to_head`: it
    /// answers a `HEAD` request (so it has no body).
    #[track_caller]
    pub fn read_response_any(&mut self, to_head: bool) -> Response {
        match self.mode {
            Mode::Http => {}
            Mode::Closed => panic!(
                "reading a response after one that closed the connection; buffered {:?}",
                lossy(&self.buf)
            ),
            Mode::WebSocket => panic!("an HTTP response expected after the 101"),
        }
        let r = self.read_response_head();
        self.read_response_body(r, to_head)
    }

    /// Reads the head of a response (status line and fields), leaving its
    /// body unread: for a streamed body read with [`Client::read_chunk`].
    #[track_caller]
    pub fn read_response_head(&mut self) -> Response {
        let status_line = self.read_line("a status line");
        let (status_line, status) = parse_status_line(&status_line);
        let mut headers = Vec::new();
        let mut head_len = status_line.len();
        loop {
            let line = self.read_line("a field line");
            if line.is_empty() {
                break;
            }
            head_len += line.len();
            assert!(head_len <= MAX_HEAD, "a head over {MAX_HEAD} bytes");
            headers.push(parse_field_line(&line));
        }
        let r = Response {
            status_line,
            status,
            headers,
            body: Vec::new(),
            framing: Framing::NoBody,
        };
        for singleton in ["content-length", "content-type", "date", "location"] {
            r.header(singleton);
        }
        r
    }

    /// Reads the body of the response whose head is `r`, as its fields
    /// and status delimit it.
    #[track_caller]
    fn read_response_body(&mut self, mut r: Response, to_head: bool) -> Response {
        let status = r.status;
        let length = r.header("content-length").map(|v| {
            assert!(
                !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()),
                "Content-Length is 1*DIGIT (RFC 9110 §8.6): {r:?}"
            );
            v.parse::<usize>()
                .unwrap_or_else(|_| panic!("Content-Length overflows: {r:?}"))
        });
        let coded = !r.header_all("transfer-encoding").is_empty();
        let informational = (100..200).contains(&status);
        if informational || status == 204 {
            // RFC 9110 §8.6 and RFC 9112 §6.1: a server MUST NOT send
            // either field in a 1xx or 204.
            assert!(
                length.is_none() && !coded,
                "{status} with a framing field: {r:?}"
            );
        }
        assert!(
            !(coded && length.is_some()),
            "Transfer-Encoding with Content-Length (RFC 9112 §6.2): {r:?}"
        );
        if status == 101 {
            self.mode = Mode::WebSocket;
            // RFC 7692: from here on RSV1 marks a compressed message.
            self.ws.deflate = r
                .header("sec-websocket-extensions")
                .is_some_and(|e| e.starts_with("permessage-deflate"));
            return r;
        }
        if informational || status == 204 || status == 304 || to_head {
            r.framing = Framing::NoBody;
        } else if coded {
            let codings: Vec<&str> = r
                .header_all("transfer-encoding")
                .iter()
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .collect();
            if codings
                .last()
                .is_some_and(|c| c.eq_ignore_ascii_case("chunked"))
            {
                r.framing = Framing::Chunked;
                r.body = self.read_chunked();
            } else {
                r.framing = Framing::UntilClose;
                r.body = self.read_until_eof();
            }
        } else if let Some(n) = length {
            r.framing = Framing::Length(n);
            r.body = self.read_bytes(n);
        } else {
            r.framing = Framing::UntilClose;
            r.body = self.read_until_eof();
        }
        if r.closes() {
            self.mode = Mode::Closed;
        }
        r
    }

    /// A chunked body (RFC 9112 §7.1): hex sizes, extensions skipped, data
    /// each followed by CRLF, then trailer fields (checked, dropped).
    #[track_caller]
    fn read_chunked(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            match self.read_chunk() {
                Chunk::Data(data) => body.extend(data),
                Chunk::Last(_) => return body,
            }
        }
    }

    /// Reads one chunk of a chunked body (RFC 9112 §7.1), checked as
    /// [`Client::read_response`] checks a whole one: its data, or the last
    /// chunk with its trailer fields.
    #[track_caller]
    pub fn read_chunk(&mut self) -> Chunk {
        {
            let line = self.read_line("a chunk-size line");
            let size_end = line
                .iter()
                .position(|b| !b.is_ascii_hexdigit())
                .unwrap_or(line.len());
            let rest = &line[size_end..];
            assert!(
                size_end > 0 && (rest.is_empty() || matches!(rest[0], b';' | b' ' | b'\t')),
                "chunk-size is 1*HEXDIG: {:?}",
                lossy(&line)
            );
            assert!(size_end <= 15, "chunk size overflows: {:?}", lossy(&line));
            let size = usize::from_str_radix(std::str::from_utf8(&line[..size_end]).unwrap(), 16)
                .expect("hex chunk size");
            if size == 0 {
                let mut trailers = Vec::new();
                loop {
                    let trailer = self.read_line("a trailer line");
                    if trailer.is_empty() {
                        return Chunk::Last(trailers);
                    }
                    trailers.push(parse_field_line(&trailer));
                }
            }
            let data = self.read_bytes(size);
            let end = self.read_bytes(2);
            assert_eq!(end, b"\r\n", "chunk data not followed by CRLF");
            Chunk::Data(data)
        }
    }

    /// The rest of the stream: a close-delimited body.
    #[track_caller]
    fn read_until_eof(&mut self) -> Vec<u8> {
        self.mode = Mode::Closed;
        self.read_to_eof()
    }

    /// Asserts the server closes the connection with nothing more sent:
    /// the next read returns 0 (not a timeout, not a reset, not more bytes).
    #[track_caller]
    pub fn expect_eof(&mut self) {
        assert!(
            self.buf.is_empty(),
            "expected EOF, but got more bytes: {:?}",
            lossy(&self.buf)
        );
        match self.fill() {
            Ok(0) => {}
            Ok(_) => panic!("expected EOF, but got more bytes: {:?}", lossy(&self.buf)),
            Err(e) => panic!("expected EOF, got error {e} ({:?})", e.kind()),
        }
        self.mode = Mode::Closed;
    }

    /// Reads everything until EOF (the server closing), returning the
    /// bytes not yet consumed.
    #[track_caller]
    pub fn read_to_eof(&mut self) -> Vec<u8> {
        loop {
            match self.fill() {
                Ok(0) => return std::mem::take(&mut self.buf),
                Ok(_) => {}
                Err(e) => panic!("reading to EOF: {e}; got {:?}", lossy(&self.buf)),
            }
        }
    }

    /// Whether bytes arrive (or the connection closes) within `wait`. An
    /// absence can only be checked over a window: a correct server sends
    /// nothing, so `false` is never a timing accident.
    pub fn has_data_within(&mut self, wait: Duration) -> bool {
        if !self.buf.is_empty() {
            return true;
        }
        self.stream.set_read_timeout(Some(wait)).unwrap();
        let r = self.fill();
        self.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        match r {
            Ok(_) => true,
            Err(e) => !matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
        }
    }
}

pub(super) fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

/// `HTTP/1.1 SP 3DIGIT SP reason-phrase` (RFC 9112 §4): returns the line
/// and the code.
#[track_caller]
fn parse_status_line(line: &[u8]) -> (String, u16) {
    let text = std::str::from_utf8(line)
        .unwrap_or_else(|_| panic!("status line not ASCII: {:?}", lossy(line)));
    let rest = text
        .strip_prefix("HTTP/1.1 ")
        .unwrap_or_else(|| panic!("status line {text:?} is not HTTP/1.1"));
    let (code, reason) = (rest.get(..3), rest.get(3..));
    let code = code
        .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or_else(|| panic!("status code is 3DIGIT: {text:?}"));
    let reason = reason
        .and_then(|r| r.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no SP after the status code: {text:?}"));
    assert!(
        reason
            .bytes()
            .all(|b| b == b'\t' || b == b' ' || b.is_ascii_graphic()),
        "reason-phrase is HTAB / SP / VCHAR: {text:?}"
    );
    let status: u16 = code.parse().unwrap();
    assert!((100..=599).contains(&status), "status {status}: {text:?}");
    (text.to_owned(), status)
}

/// `field-name ":" OWS field-value OWS` (RFC 9112 §5): the name a token,
/// no whitespace before the colon, no obs-fold, the value VCHAR / obs-text
/// with SP or HTAB only inside.
#[track_caller]
fn parse_field_line(line: &[u8]) -> (String, String) {
    assert!(
        !matches!(line.first(), Some(b' ' | b'\t')),
        "obs-fold or a field line starting with whitespace: {:?}",
        lossy(line)
    );
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .unwrap_or_else(|| panic!("field line without a colon: {:?}", lossy(line)));
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    assert!(
        !name.is_empty() && name.iter().all(|&b| is_tchar(b)),
        "field name is a token (and no whitespace before the colon): {:?}",
        lossy(line)
    );
    let value = trim_ows(value);
    assert!(
        value
            .iter()
            .all(|&b| b == b' ' || b == b'\t' || b >= 0x80 || b.is_ascii_graphic()),
        "control byte in a field value: {:?}",
        lossy(line)
    );
    (
        String::from_utf8(name.to_vec()).unwrap(),
        String::from_utf8_lossy(value).into_owned(),
    )
}

fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// `tchar` (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
