//! The reader role of the IO actor: turns the bytes of one connection into
//! complete requests.
//!
//! The reader is pure: it never touches a socket. The IO actor appends what
//! it reads with [`Reader::extend`] and calls [`Reader::next`] until it
//! returns [`Parsed::NeedMore`].
//!
//! Contract and bounds:
//!
//! * A head (request line + fields) is at most `max_headers_len` bytes,
//!   else `431`. httparse is stateless, so the head is parsed once, when its
//!   terminating empty line has arrived; the search for that line resumes
//!   where it stopped, so a client trickling bytes costs O(n), not O(n²).
//! * A body is at most `max_body_len` bytes, else `413`, decided from
//!   `Content-Length` before any of it is read, or as chunks arrive.
//! * A prefix that can never become a request (a TLS ClientHello, a
//!   first byte that starts no method, a non-token byte in the method) is
//!   `400` as soon as it arrives, not after `header_timeout`.
//! * `HTTP/1.x` with a minor version above 1 is read as `HTTP/1.1` (RFC
//!   9110 §2.5); another major version is `505`; a malformed one `400`.
//! * Framing is strict (RFC 9112 §6): `Transfer-Encoding` other than a
//!   single final `chunked`, `Content-Length` beside `Transfer-Encoding`,
//!   duplicate or non-numeric `Content-Length`, obs-fold, whitespace before
//!   a colon and control characters are all `400`. Every error ends the
//!   connection, so a request can never be read two ways (no smuggling).
//! * A request is handed out only whole (head and body), so a slow client
//!   never holds a worker.

use crate::http::request::{RawRequest, Version};
use crate::http::Headers;

/// Most header fields in one head; more is `431`.
const MAX_FIELDS: usize = 100;
/// Longest chunk-size line (with extensions) before it is `400`.
const MAX_CHUNK_LINE: usize = 4096;

/// The limits the reader enforces.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest head in bytes (request line and fields): 431, or 414.
    pub max_headers_len: usize,
    /// Largest buffered body in bytes: 413.
    pub max_body_len: usize,
}

/// A request error: the status to answer with, then close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpError {
    pub(crate) status: u16,
    pub(crate) reason: &'static str,
}

const fn err(status: u16, reason: &'static str) -> HttpError {
    HttpError { status, reason }
}

/// What [`Reader::next`] found.
pub enum Parsed {
    /// A whole request.
    Request(Box<RawRequest>, Flags),
    /// The head of a request sending `Expect: 100-continue` has been read
    /// and its body has not started: the client waits for `100 Continue`.
    Continue,
    /// No complete request is buffered.
    NeedMore,
}

/// Facts about a request the IO actor acts on.
#[derive(Clone, Copy, Debug, Default)]
pub struct Flags {
    /// The request asks to switch protocols (`Connection: upgrade`): read
    /// nothing after it until it is answered.
    pub(crate) upgrade: bool,
    /// Only the head was read: its body follows through
    /// [`Reader::body_part`].
    pub(crate) streamed: bool,
    /// A streamed request sent `Expect: 100-continue` and its body has not
    /// started (the reader does not answer it with [`Parsed::Continue`]).
    pub(crate) expect_continue: bool,
}

/// How a request's body is read, decided from its head by the IO actor
/// (per route, see `router.rs`), before any of the body is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyPlan {
    /// Hand out the head alone and the body as it arrives
    /// ([`Reader::body_part`]); else the request is handed out whole.
    pub(crate) stream: bool,
    /// Most body bytes (decoded), else `413`.
    pub(crate) max_body_len: u64,
}

/// A piece of a streamed body, from [`Reader::body_part`].
#[derive(Debug, PartialEq, Eq)]
pub enum BodyPart<'a> {
    /// Decoded body bytes, consumed.
    Data(&'a [u8]),
    /// No body byte is buffered.
    NeedMore,
    /// The body (and a chunked body's trailer section) ended; the reader
    /// reads the next head.
    End,
}

enum State {
    /// Waiting for the end of a head; `scanned` bytes after `pos` hold none.
    Head { scanned: usize },
    /// Reading the body of `req` into it.
    Body {
        req: Box<RawRequest>,
        flags: Flags,
        framing: Framing,
        expect_continue: bool,
        /// Body bytes still allowed (chunked: `413` past them).
        left: u64,
    },
    /// Reading a body handed out piece by piece ([`Reader::body_part`]).
    Streaming { framing: Framing, left: u64 },
}

enum Framing {
    Length(usize),
    Chunked(Chunk),
}

enum Chunk {
    Size,
    Data(u64),
    DataEnd,
    Trailers { scanned: usize },
}

/// The incremental HTTP/1.1 request parser of one connection (RFC 9112):
/// bytes in with `extend`, requests out of `next`.
pub struct Reader {
    buf: Vec<u8>,
    /// Bytes before `pos` are consumed.
    pos: usize,
    state: State,
}

impl Default for Reader {
    fn default() -> Self {
        Self::new()
    }
}

impl Reader {
    /// A reader with no buffer, expecting a request line.
    pub fn new() -> Self {
        Reader {
            buf: Vec::new(),
            pos: 0,
            state: State::Head { scanned: 0 },
        }
    }

    /// Appends bytes read from the socket.
    pub fn extend(&mut self, bytes: &[u8]) {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Takes every unconsumed byte out (what follows an upgrade request).
    #[allow(dead_code)] // used by the WebSocket upgrade
    pub(crate) fn take_buffered(&mut self) -> Vec<u8> {
        let rest = self.buf[self.pos..].to_vec();
        self.buf = Vec::new();
        self.pos = 0;
        rest
    }

    /// Whether no part of a request is buffered.
    pub(crate) fn is_idle(&self) -> bool {
        matches!(self.state, State::Head { .. }) && self.pos == self.buf.len()
    }

    /// Whether a head has been read and its body is being read.
    pub(crate) fn in_body(&self) -> bool {
        matches!(self.state, State::Body { .. } | State::Streaming { .. })
    }

    /// Parses the next request out of the buffer, every body buffered and
    /// limited to `limits.max_body_len`.
    ///
    /// # Errors
    ///
    /// As [`Reader::next_with`].
    pub fn next(&mut self, limits: &Limits) -> Result<Parsed, HttpError> {
        let plan = BodyPlan {
            stream: false,
            max_body_len: limits.max_body_len as u64,
        };
        self.next_with(limits, |_| plan)
    }

    /// Parses the next request out of the buffer; `plan` decides from each
    /// head how its body is read. A streamed request is handed out after
    /// its head (`Flags::streamed`); its body then comes from
    /// [`Reader::body_part`], and `next_with` finds nothing until it ends.
    ///
    /// # Errors
    ///
    /// An [`HttpError`] for a request that breaks RFC 9112 or a limit; it
    /// names the status to answer with, and the connection must close.
    pub fn next_with(
        &mut self,
        limits: &Limits,
        mut plan: impl FnMut(&RawRequest) -> BodyPlan,
    ) -> Result<Parsed, HttpError> {
        loop {
            match &mut self.state {
                State::Head { scanned } => {
                    // RFC 9112 §2.2: ignore empty lines before a request line.
                    loop {
                        let rest = &self.buf[self.pos..];
                        if rest.starts_with(b"\r\n") {
                            self.pos += 2;
                        } else if rest.starts_with(b"\n") {
                            self.pos += 1;
                        } else {
                            break;
                        }
                    }
                    let avail = &self.buf[self.pos..];
                    // A garbage prefix is 400 before a head is 431, so a
                    // head that is both gets the same answer however its
                    // bytes arrive (the prefix is checked on every
                    // partial head).
                    let Some(end) = find_head_end(avail, *scanned) else {
                        check_request_prefix(avail)?;
                        if avail.len() > limits.max_headers_len {
                            return Err(head_too_large(avail, limits));
                        }
                        *scanned = avail.len().saturating_sub(3);
                        self.compact();
                        return Ok(Parsed::NeedMore);
                    };
                    if end > limits.max_headers_len {
                        check_request_prefix(avail)?;
                        return Err(head_too_large(avail, limits));
                    }
                    let (req, mut flags, framing, expect_continue) = parse_head(&avail[..end])?;
                    self.pos += end;
                    if let Framing::Length(0) = framing {
                        self.state = State::Head { scanned: 0 };
                        return Ok(Parsed::Request(req, flags));
                    }
                    let plan = plan(&req);
                    if let Framing::Length(len) = framing {
                        // RFC 9112 §6.3: the length is known before any of
                        // the body is read, so it is refused unread.
                        if len as u64 > plan.max_body_len {
                            return Err(err(413, "request body too large"));
                        }
                    }
                    // An upgrade's bytes after the head belong to the new
                    // protocol once answered: it is never streamed.
                    if plan.stream && !flags.upgrade {
                        flags.streamed = true;
                        flags.expect_continue = expect_continue;
                        self.state = State::Streaming {
                            framing,
                            left: plan.max_body_len,
                        };
                        return Ok(Parsed::Request(req, flags));
                    }
                    self.state = State::Body {
                        req,
                        flags,
                        framing,
                        expect_continue,
                        left: plan.max_body_len,
                    };
                }
                // Fed by `body_part`.
                State::Streaming { .. } => return Ok(Parsed::NeedMore),
                State::Body {
                    req,
                    framing,
                    expect_continue,
                    left,
                    ..
                } => {
                    let avail = &self.buf[self.pos..];
                    if *expect_continue {
                        *expect_continue = false;
                        if avail.is_empty() && req.body.is_empty() {
                            return Ok(Parsed::Continue);
                        }
                    }
                    match framing {
                        Framing::Length(remaining) => {
                            let n = (*remaining).min(avail.len());
                            req.body.extend_from_slice(&avail[..n]);
                            self.pos += n;
                            *remaining -= n;
                            if *remaining > 0 {
                                self.compact();
                                return Ok(Parsed::NeedMore);
                            }
                        }
                        Framing::Chunked(chunk) => {
                            if !read_chunked(
                                chunk,
                                &self.buf,
                                &mut self.pos,
                                &mut req.body,
                                left,
                                limits,
                            )? {
                                self.compact();
                                return Ok(Parsed::NeedMore);
                            }
                        }
                    }
                    let State::Body { req, flags, .. } =
                        std::mem::replace(&mut self.state, State::Head { scanned: 0 })
                    else {
                        unreachable!("state is Body in this arm")
                    };
                    return Ok(Parsed::Request(req, flags));
                }
            }
        }
    }

    /// What is left of a streamed body with a `Content-Length` (all of it
    /// right after its head); `None` when chunked or not streaming.
    pub(crate) fn streamed_left(&self) -> Option<u64> {
        match self.state {
            State::Streaming {
                framing: Framing::Length(left),
                ..
            } => Some(left as u64),
            _ => None,
        }
    }

    /// The next piece of a streamed body, at most `max` (> 0) bytes.
    ///
    /// # Errors
    ///
    /// `400` for malformed chunked framing (RFC 9112 §7.1), `413` once a
    /// chunk would pass the plan's `max_body_len`, `431` for a trailer
    /// section past `max_headers_len`. The connection cannot go on after
    /// one (the framing is lost).
    pub fn body_part(&mut self, max: usize, limits: &Limits) -> Result<BodyPart<'_>, HttpError> {
        let State::Streaming { framing, left } = &mut self.state else {
            return Ok(BodyPart::End);
        };
        let step = match framing {
            Framing::Length(0) => Step::End,
            Framing::Length(remaining) => {
                let n = (*remaining).min(self.buf.len() - self.pos).min(max);
                *remaining -= n;
                self.pos += n;
                if n == 0 {
                    Step::NeedMore
                } else {
                    Step::Data(n)
                }
            }
            Framing::Chunked(chunk) => {
                chunked_step(chunk, &self.buf, &mut self.pos, max, left, limits)?
            }
        };
        Ok(match step {
            Step::Data(n) => BodyPart::Data(&self.buf[self.pos - n..self.pos]),
            Step::NeedMore => {
                self.compact();
                BodyPart::NeedMore
            }
            Step::End => {
                self.state = State::Head { scanned: 0 };
                BodyPart::End
            }
        })
    }

    /// Drops consumed bytes once they are most of the buffer. An emptied
    /// buffer is kept for the IO actor to take back
    /// ([`Reader::take_idle_buffer`]), so idle connections hold none.
    fn compact(&mut self) {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 4096 && self.pos * 2 > self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
    }

    /// Releases the buffer if everything in it was consumed.
    pub(crate) fn take_idle_buffer(&mut self) -> Option<Vec<u8>> {
        if self.pos == self.buf.len()
            && matches!(self.state, State::Head { .. })
            && self.buf.capacity() > 0
        {
            self.pos = 0;
            return Some(std::mem::take(&mut self.buf));
        }
        None
    }

    /// Gives an empty buffer to a reader that holds none, to read into.
    pub(crate) fn give_buffer(&mut self, buf: Vec<u8>) {
        if self.buf.capacity() == 0 {
            debug_assert!(buf.is_empty());
            self.buf = buf;
            self.pos = 0;
        }
    }

    /// Whether the reader holds no buffer (see [`Reader::give_buffer`]).
    pub(crate) fn has_no_buffer(&self) -> bool {
        self.buf.capacity() == 0
    }
}
// Finds the end of a head (just past its empty line), searching from
/// `from`. Accepts bare LF line ends as httparse does, so both always agree
/// on where a head ends.
fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    memchr::memchr_iter(b'\n', buf.get(from..)?)
        .map(|i| from + i)
        .find_map(|i| match (buf.get(i + 1), buf.get(i + 2)) {
            (Some(b'\n'), _) => Some(i + 2),
            (Some(b'\r'), Some(b'\n')) => Some(i + 3),
            _ => None,
        })
}

/// `tchar` (RFC 9110 §5.6.2): the bytes a method token is made of.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// How many bytes of a method are checked before it is given the benefit
/// of the doubt (the longest registered method has 17).
const METHOD_CHECK_LEN: usize = 32;

/// A head past `max_headers_len`: `414 URI Too Long` when the request line
/// alone does not end within the limit (RFC 9112 §3: a request-target
/// longer than the server wishes to parse), else `431` (RFC 6585 §5).
/// Decided on the first `max_headers_len` bytes only, so the answer is the
/// same however the head's bytes arrive.
fn head_too_large(avail: &[u8], limits: &Limits) -> HttpError {
    let window = &avail[..avail.len().min(limits.max_headers_len)];
    if memchr::memchr(b'\n', window).is_none() {
        err(414, "request-target too long")
    } else {
        err(431, "request header section too large")
    }
}

/// Refuses an incomplete head that can never become a request line: one
/// whose method (the bytes before the first SP) is empty or holds a
/// non-token byte, or a CR not followed by LF where an empty line was
/// skipped. Bounded: at most [`METHOD_CHECK_LEN`] bytes per call.
fn check_request_prefix(avail: &[u8]) -> Result<(), HttpError> {
    const GARBAGE: HttpError = err(400, "not an HTTP request");
    if avail.first() == Some(&b'\r') {
        // The leading empty lines were skipped; a lone CR may still
        // become CRLF.
        return match avail.get(1) {
            None => Ok(()),
            Some(_) => Err(GARBAGE),
        };
    }
    for (i, &b) in avail.iter().take(METHOD_CHECK_LEN).enumerate() {
        if b == b' ' {
            return if i == 0 { Err(GARBAGE) } else { Ok(()) };
        }
        if !is_tchar(b) {
            return Err(GARBAGE);
        }
    }
    Ok(())
}

/// The version token of a head's request line: its last word.
fn version_token(head: &[u8]) -> &[u8] {
    let line = head.split(|&b| b == b'\n').next().unwrap_or(head);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    line.rsplit(|&b| b == b' ').next().unwrap_or(line)
}

/// For a head whose version httparse refused: the same head as `HTTP/1.1`
/// when it was `HTTP/1.x` with x > 1 (RFC 9110 §2.5: a recipient SHOULD
/// process it as the highest minor version it supports); otherwise the
/// error to answer, `505` for another major version (RFC 9110 §15.6.6),
/// `400` for no valid version at all.
fn later_minor_as_http11(head: &[u8]) -> Result<Vec<u8>, HttpError> {
    let v = version_token(head);
    match v {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            if *major != b'1' {
                return Err(err(505, "HTTP version not supported"));
            }
            if *minor <= b'1' {
                // httparse refused the line for another reason (say, a
                // space inside the target): it is no version problem.
                return Err(err(400, "malformed request line"));
            }
            // `v` is a subslice of `head`: rewrite its last byte in a copy.
            let at = v.as_ptr() as usize - head.as_ptr() as usize + 7;
            let mut fixed = head.to_vec();
            fixed[at] = b'1';
            Ok(fixed)
        }
        _ => Err(err(400, "malformed HTTP version")),
    }
}

/// The method, borrowed from the registered ones (RFC 9110 §9) when it is
/// one: no allocation for the common case.
fn intern_method(method: &str) -> std::borrow::Cow<'static, str> {
    const METHODS: &[&str] = &[
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    match METHODS.iter().find(|m| **m == method) {
        Some(m) => std::borrow::Cow::Borrowed(*m),
        None => std::borrow::Cow::Owned(method.to_owned()),
    }
}

type Head = (Box<RawRequest>, Flags, Framing, bool);

/// What framing and connection management need from a head's fields,
/// gathered in the one pass that copies them into [`Headers`] (rather
/// than a scan of every field per question).
#[derive(Default)]
struct Seen {
    /// `Content-Length` field lines, and the first one's value: `None`
    /// inside when it is not a plain decimal of at most 19 digits.
    content_length_lines: usize,
    content_length: Option<Option<u64>>,
    /// `Transfer-Encoding` field lines, and whether the first one is the
    /// single coding `chunked`.
    transfer_encoding_lines: usize,
    transfer_encoding_chunked: bool,
    hosts: usize,
    /// The first `Expect`: whether it is `100-continue`.
    expect: Option<bool>,
    /// `Connection` options, over every field line.
    connection_close: bool,
    connection_keep_alive: bool,
    connection_upgrade: bool,
    upgrade: bool,
}

impl Seen {
    fn note(&mut self, name: &str, value: &str) {
        if name.eq_ignore_ascii_case("content-length") {
            self.content_length_lines += 1;
            if self.content_length.is_none() {
                let valid = !value.is_empty()
                    && value.len() <= 19
                    && value.bytes().all(|b| b.is_ascii_digit());
                self.content_length = Some(valid.then(|| value.parse::<u64>().ok()).flatten());
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            self.transfer_encoding_lines += 1;
            if self.transfer_encoding_lines == 1 {
                let mut codings = value.split(',');
                self.transfer_encoding_chunked = matches!(
                    (codings.next().map(str::trim), codings.next()),
                    (Some(c), None) if c.eq_ignore_ascii_case("chunked")
                );
            }
        } else if name.eq_ignore_ascii_case("host") {
            self.hosts += 1;
        } else if name.eq_ignore_ascii_case("expect") {
            if self.expect.is_none() {
                self.expect = Some(value.eq_ignore_ascii_case("100-continue"));
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    self.connection_close = true;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    self.connection_keep_alive = true;
                } else if token.eq_ignore_ascii_case("upgrade") {
                    self.connection_upgrade = true;
                }
            }
        } else if name.eq_ignore_ascii_case("upgrade") {
            self.upgrade = true;
        }
    }
}

fn parse_head(head: &[u8]) -> Result<Head, HttpError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut parsed = httparse::Request::new(&mut fields);
    match parsed.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(err(400, "malformed request head")),
        Err(httparse::Error::Version) => {
            let fixed = later_minor_as_http11(head)?;
            // `fixed` says HTTP/1.1 where `head` said HTTP/1.x (x > 1);
            // parsed again, it cannot come back here.
            let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
            let mut reparsed = httparse::Request::new(&mut fields);
            return match reparsed.parse(&fixed) {
                Ok(httparse::Status::Complete(_)) => parse_head(&fixed),
                _ => Err(err(400, "malformed request head")),
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Err(err(431, "too many header fields")),
        Err(_) => return Err(err(400, "malformed request head")),
    }
    let version = match parsed.version {
        Some(0) => Version::Http10,
        Some(1) => Version::Http11,
        _ => return Err(err(505, "HTTP version not supported")),
    };
    let method = intern_method(parsed.method.unwrap_or(""));
    let target = parsed.path.unwrap_or("").to_owned();
    if target.is_empty() {
        return Err(err(400, "empty request target"));
    }
    let bytes = parsed
        .headers
        .iter()
        .map(|f| f.name.len() + f.value.len())
        .sum();
    let mut headers = Headers::with_capacity(parsed.headers.len(), bytes);
    let mut seen = Seen::default();
    for f in parsed.headers.iter() {
        // httparse has already rejected control characters other than HTAB;
        // obs-text (0x80..) is kept, lossily, as field values are text.
        let value = match std::str::from_utf8(f.value) {
            Ok(v) => std::borrow::Cow::Borrowed(v),
            Err(_) => String::from_utf8_lossy(f.value),
        };
        let value = value.trim();
        seen.note(f.name, value);
        headers.append_parsed(f.name, value);
    }

    // Framing: RFC 9112 §6.1-6.3, strict.
    let content_length = match seen.content_length {
        None => None,
        Some(_) if seen.content_length_lines > 1 => {
            return Err(err(400, "duplicate Content-Length"))
        }
        Some(None) => return Err(err(400, "invalid Content-Length")),
        Some(Some(len)) => Some(len),
    };
    let framing = if seen.transfer_encoding_lines > 0 {
        if content_length.is_some() {
            return Err(err(400, "both Content-Length and Transfer-Encoding"));
        }
        if version == Version::Http10 {
            return Err(err(400, "Transfer-Encoding in an HTTP/1.0 request"));
        }
        // Exactly one coding, `chunked`, over every field line.
        if seen.transfer_encoding_lines == 1 && seen.transfer_encoding_chunked {
            Framing::Chunked(Chunk::Size)
        } else {
            return Err(err(400, "unsupported Transfer-Encoding"));
        }
    } else {
        // Checked against the plan's limit once the head is read.
        Framing::Length(content_length.unwrap_or(0) as usize)
    };

    match seen.hosts {
        0 if version == Version::Http11 => return Err(err(400, "missing Host")),
        0 | 1 => {}
        _ => return Err(err(400, "duplicate Host")),
    }

    let expect_continue = match seen.expect {
        None => false,
        Some(true) => version == Version::Http11,
        Some(false) => return Err(err(417, "unsupported expectation")),
    };

    let keep_alive = match version {
        Version::Http11 => !seen.connection_close,
        Version::Http10 => !seen.connection_close && seen.connection_keep_alive,
    };
    let flags = Flags {
        upgrade: seen.connection_upgrade && seen.upgrade,
        ..Flags::default()
    };
    let req = Box::new(RawRequest {
        method,
        target,
        version,
        headers,
        body: Vec::new(),
        keep_alive,
        body_stream: None,
    });
    Ok((req, flags, framing, expect_continue))
}

const BAD_CHUNK_SIZE: HttpError = err(400, "invalid chunk size");

/// Checks what httparse's `parse_chunk_size` lets through: it reads a
/// size line with no digit (`\r\n`, `;ext\r\n`, ` \r\n`) as size 0, the
/// last chunk, and takes any byte, even a bare LF or NUL, inside a chunk
/// extension. RFC 9112 §7.1 has `chunk-size = 1*HEXDIG` and extensions
/// made of tokens and quoted strings; a proxy in front of natron that reads
/// such a line differently (say, ends it at the bare LF) sees another body
/// and another next request: a desync. So the line must start with a hex
/// digit, end with CRLF, and hold no control character but HTAB.
fn check_chunk_line(avail: &[u8]) -> Result<(), HttpError> {
    if avail.first().is_some_and(|b| !b.is_ascii_hexdigit()) {
        return Err(BAD_CHUNK_SIZE);
    }
    let line = match avail.iter().position(|&b| b == b'\n') {
        Some(lf) => match lf.checked_sub(1) {
            Some(cr) if avail[cr] == b'\r' => &avail[..cr],
            _ => return Err(BAD_CHUNK_SIZE),
        },
        // Partial: check what has arrived, but a final CR may be half of
        // the CRLF.
        None => avail.strip_suffix(b"\r").unwrap_or(avail),
    };
    if line.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(BAD_CHUNK_SIZE);
    }
    Ok(())
}

/// Reads a chunked body into `body`. Returns `Ok(true)` once the last
/// chunk and the trailer section are read.
fn read_chunked(
    chunk: &mut Chunk,
    buf: &[u8],
    pos: &mut usize,
    body: &mut Vec<u8>,
    left: &mut u64,
    limits: &Limits,
) -> Result<bool, HttpError> {
    loop {
        match chunked_step(chunk, buf, pos, usize::MAX, left, limits)? {
            Step::Data(n) => body.extend_from_slice(&buf[*pos - n..*pos]),
            Step::NeedMore => return Ok(false),
            Step::End => return Ok(true),
        }
    }
}

/// What one step of a body decoder found.
enum Step {
    /// `n` body bytes, just before the new `pos`.
    Data(usize),
    NeedMore,
    End,
}

/// Advances the chunked decoder to its next data (at most `max` bytes),
/// the need for more input, or the end of the trailer section. `left`:
/// data bytes still allowed, else `413`.
fn chunked_step(
    chunk: &mut Chunk,
    buf: &[u8],
    pos: &mut usize,
    max: usize,
    left: &mut u64,
    limits: &Limits,
) -> Result<Step, HttpError> {
    loop {
        let avail = &buf[*pos..];
        match chunk {
            Chunk::Size => match check_chunk_line(avail)
                .and_then(|()| httparse::parse_chunk_size(avail).map_err(|_| BAD_CHUNK_SIZE))
            {
                Ok(httparse::Status::Complete((used, size))) => {
                    *pos += used;
                    if size == 0 {
                        *chunk = Chunk::Trailers { scanned: 0 };
                    } else {
                        if size > *left {
                            return Err(err(413, "request body too large"));
                        }
                        *left -= size;
                        *chunk = Chunk::Data(size);
                    }
                }
                Ok(httparse::Status::Partial) => {
                    if avail.len() > MAX_CHUNK_LINE {
                        return Err(err(400, "chunk size line too long"));
                    }
                    return Ok(Step::NeedMore);
                }
                Err(e) => return Err(e),
            },
            Chunk::Data(remaining) => {
                let n = (*remaining).min(avail.len() as u64).min(max as u64) as usize;
                if n == 0 {
                    return Ok(Step::NeedMore);
                }
                *pos += n;
                *remaining -= n as u64;
                if *remaining == 0 {
                    *chunk = Chunk::DataEnd;
                }
                return Ok(Step::Data(n));
            }
            Chunk::DataEnd => {
                if avail.len() < 2 {
                    return Ok(Step::NeedMore);
                }
                if &avail[..2] != b"\r\n" {
                    return Err(err(400, "chunk data not followed by CRLF"));
                }
                *pos += 2;
                *chunk = Chunk::Size;
            }
            Chunk::Trailers { scanned } => {
                // Trailer fields are accepted and discarded (RFC 9112 §7.1.2
                // lets a recipient do so), but must be well-formed.
                if avail.starts_with(b"\r\n") {
                    *pos += 2;
                    return Ok(Step::End);
                }
                let end = find_head_end(avail, *scanned);
                // Lines end with CRLF, as chunk-size lines do (see
                // `check_chunk_line`): a recipient taking a bare LF for a
                // line end reads `0\r\n\n` as the end of the message, while
                // the head search would read on into the next request and
                // swallow it as trailers. Checked within the section (what
                // follows it is the next request's) and within the size
                // limit (a section too long is 431 however it arrives).
                let section = end.unwrap_or(avail.len()).min(limits.max_headers_len);
                let from = scanned.saturating_sub(1).min(section);
                if memchr::memchr_iter(b'\n', &avail[from..section])
                    .any(|i| from + i == 0 || avail[from + i - 1] != b'\r')
                {
                    return Err(err(400, "bare LF in trailer section"));
                }
                let Some(end) = end else {
                    if avail.len() > limits.max_headers_len {
                        return Err(err(431, "trailer section too large"));
                    }
                    if avail.len() >= 2 && !avail.starts_with(b"\r") {
                        *scanned = avail.len().saturating_sub(3);
                    }
                    return Ok(Step::NeedMore);
                };
                if end > limits.max_headers_len {
                    return Err(err(431, "trailer section too large"));
                }
                let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
                match httparse::parse_headers(&avail[..end], &mut fields) {
                    // httparse must end the section where the search did.
                    Ok(httparse::Status::Complete((n, _))) if n == end => {}
                    _ => return Err(err(400, "malformed trailer section")),
                }
                *pos += end;
                return Ok(Step::End);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_headers_len: 8192,
        max_body_len: 1 << 20,
    };

    fn parse_all(input: &[u8]) -> Result<Vec<RawRequest>, HttpError> {
        let mut r = Reader::new();
        r.extend(input);
        let mut out = Vec::new();
        loop {
            match r.next(&LIMITS)? {
                Parsed::Request(req, _) => out.push(*req),
                Parsed::Continue => {}
                Parsed::NeedMore => return Ok(out),
            }
        }
    }

    /// Found by `fuzz/` (chunked): the head search read on past a bare
    /// LF that ends an empty trailer section and swallowed the next
    /// request as trailers; a proxy taking LF for a line end sees it.
    #[test]
    fn a_bare_lf_in_trailers_is_refused_not_read_past() {
        let chunked = "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
        for trailers in ["0\r\n\n", "0\r\nT: v\n\r\n", "0\r\nT: v\r\n\n"] {
            let input = format!("{chunked}{trailers}GET /hidden HTTP/1.1\r\nHost: x\r\n\r\n");
            let err = parse_all(input.as_bytes()).map(|r| r.len()).unwrap_err();
            assert_eq!(err.status, 400, "{trailers:?}");
        }
    }

    /// Found by `fuzz/` (chunked): the bare-LF check must stop where the
    /// trailer section ends; what follows is the next request's.
    #[test]
    fn a_bare_lf_after_the_trailer_section_is_the_next_requests() {
        let input = "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
                     0\r\nT: v\r\n\r\nGET /b HTTP/1.1\nHost: x\n\n";
        let got = parse_all(input.as_bytes()).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].target, "/b");
    }

    /// Found by `fuzz/` (http_reader): a trailer section too long with a
    /// bare LF past the limit is 431 whole and split alike.
    #[test]
    fn a_long_trailer_section_is_431_however_it_arrives() {
        let limits = Limits {
            max_headers_len: 64,
            ..LIMITS
        };
        let input = format!(
            "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: {}\n\r\n",
            "a".repeat(70)
        );
        let mut whole = Reader::new();
        whole.extend(input.as_bytes());
        assert_eq!(whole.next(&limits).err().map(|e| e.status), Some(431));
        let mut split = Reader::new();
        let mut status = None;
        for b in input.as_bytes() {
            split.extend(&[*b]);
            if let Err(e) = split.next(&limits) {
                status = Some(e.status);
                break;
            }
        }
        assert_eq!(status, Some(431));
    }

    /// Found by `fuzz/` (http_reader): a head both too long and garbage
    /// was 431 whole but 400 when its start arrived first.
    #[test]
    fn a_garbage_head_too_long_is_400_however_it_arrives() {
        let limits = Limits {
            max_headers_len: 64,
            ..LIMITS
        };
        let input = format!("GE(T / HTTP/1.1\r\nHost: {}\r\n\r\n", "x".repeat(100));
        let mut whole = Reader::new();
        whole.extend(input.as_bytes());
        assert_eq!(whole.next(&limits).err().map(|e| e.status), Some(400));
        let mut split = Reader::new();
        split.extend(&input.as_bytes()[..10]);
        assert_eq!(split.next(&limits).err().map(|e| e.status), Some(400));
    }

    #[test]
    fn byte_at_a_time_equals_all_at_once() {
        let input = b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\nT: v\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi";
        let whole = parse_all(input).unwrap();
        let mut r = Reader::new();
        let mut got = Vec::new();
        for b in input.iter() {
            r.extend(&[*b]);
            while let Parsed::Request(req, _) = r.next(&LIMITS).unwrap() {
                got.push(req);
            }
        }
        assert_eq!(whole.len(), 2);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].body, b"abc");
        assert_eq!(got[1].body, b"hi");
        assert!(r.is_idle());
    }

    #[test]
    fn rejects_smuggling_shapes() {
        for bad in [
            &b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na"[..],
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\na",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 1\r\n\r\na",
            b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
            // Chunk-size lines httparse alone would accept.
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n;e\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2;a\nxx\r\n0\r\n\r\n",
        ] {
            let e = parse_all(bad).err().unwrap_or_else(|| panic!("accepted {:?}", String::from_utf8_lossy(bad)));
            assert_eq!(e.status, 400, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn limits_answer_with_status() {
        let big = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n",
            "a".repeat(9000)
        );
        assert_eq!(parse_all(big.as_bytes()).err().unwrap().status, 431);
        let partial = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(9000));
        assert_eq!(parse_all(partial.as_bytes()).err().unwrap().status, 431);
        // The request line alone past the limit: 414, whole or partial.
        let target = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "u".repeat(9000));
        assert_eq!(parse_all(target.as_bytes()).err().unwrap().status, 414);
        assert_eq!(
            parse_all(&target.as_bytes()[..8500]).err().unwrap().status,
            414
        );
        let body = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n";
        assert_eq!(parse_all(body).err().unwrap().status, 413);
        assert_eq!(
            parse_all(b"GET / HTTP/2.0\r\n\r\n").err().unwrap().status,
            505
        );
    }

    #[test]
    fn later_minor_versions_are_read_as_http11() {
        let r = parse_all(b"GET /a HTTP/1.2\r\nHost: x\r\n\r\nGET /b HTTP/1.9\r\nHost: x\r\n\r\n")
            .unwrap();
        assert_eq!(r.len(), 2);
        assert!(r.iter().all(|r| r.version == Version::Http11));
        assert_eq!(r[1].target, "/b");
        for (input, status) in [
            (&b"GET / HTTP/2.0\r\nHost: x\r\n\r\n"[..], 505),
            (b"GET / HTTP/0.9\r\n\r\n", 505),
            (b"GET / HTTP/1.x\r\nHost: x\r\n\r\n", 400),
            (b"GET / HTTP/1.10\r\nHost: x\r\n\r\n", 400),
            // Refused for another reason than the version: no retry loop.
            (b"GET / x HTTP/1.1\r\nHost: x\r\n\r\n", 400),
            (b"GET / x HTTP/1.2\r\nHost: x\r\n\r\n", 400),
            (b"GET / HTTPS/1.1\r\nHost: x\r\n\r\n", 400),
        ] {
            let e = parse_all(input).err();
            assert_eq!(
                e.map(|e| e.status),
                Some(status),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn a_prefix_that_cannot_become_a_request_is_refused_at_once() {
        for garbage in [
            &[
                0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
            ][..],
            b"\x16",
            b" GET / HTTP/1.1",
            b"GE\x00T",
            b"G(T / HTTP/1.1\r\n",
            b"\r\x16",
            b"\n\r\x00",
            b"\r\r\n",
        ] {
            let e = parse_all(garbage).err();
            assert_eq!(e.map(|e| e.status), Some(400), "{garbage:?}");
        }
        // Legitimate prefixes wait for more.
        for partial in [
            &b"G"[..],
            b"\r",
            b"\r\n\n\r",
            b"GET",
            b"M-SEARCH * HTTP/1.1\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n",
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLMNOPQRSTUVWXYZ",
        ] {
            assert_eq!(
                parse_all(partial).ok().map(|r| r.len()),
                Some(0),
                "{partial:?}"
            );
        }
        let r = parse_all(b"\n\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn keep_alive_defaults() {
        let r = parse_all(b"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        assert_eq!(
            r.iter().map(|r| r.keep_alive).collect::<Vec<_>>(),
            vec![false, true, false]
        );
    }

    /// xorshift: a tiny deterministic PRNG, so failures replay.
    fn rng(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn hostile_bytes_never_panic() {
        let seeds: [&[u8]; 4] = [
            b"POST /a?x=1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n3;e=1\r\nabc\r\n0\r\nT: v\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\nhello",
            b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n\r\nGET /b HTTP/1.1\r\nHost: y\r\n\r\n",
            b"PUT /x HTTP/1.1\r\nHost: z\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
        ];
        let limits = Limits {
            max_headers_len: 256,
            max_body_len: 64,
        };
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let (mut requests, mut errors) = (0, 0);
        for round in 0..20_000 {
            let mut input = seeds[round % seeds.len()].to_vec();
            for _ in 0..(rng(&mut state) % 6) {
                let at = (rng(&mut state) as usize) % input.len();
                match rng(&mut state) % 4 {
                    0 => input[at] = rng(&mut state) as u8,
                    1 => {
                        input.remove(at);
                    }
                    2 => input.insert(at, b"\r\n:; 0\t\x00\x7f"[(rng(&mut state) % 8) as usize]),
                    _ => input.truncate(at),
                }
                if input.is_empty() {
                    input.push(b'G');
                }
            }
            // Feed in random pieces; the reader must only ever answer.
            let mut r = Reader::new();
            let mut rest = &input[..];
            while !rest.is_empty() {
                let n = 1 + (rng(&mut state) as usize) % rest.len();
                r.extend(&rest[..n]);
                rest = &rest[n..];
                loop {
                    match r.next(&limits) {
                        Ok(Parsed::Request(req, _)) => {
                            assert!(req.body.len() <= limits.max_body_len);
                            requests += 1;
                        }
                        Ok(Parsed::Continue) => {}
                        Ok(Parsed::NeedMore) => break,
                        Err(e) => {
                            assert!(
                                [400, 408, 413, 414, 417, 431, 505].contains(&e.status),
                                "{e:?}"
                            );
                            errors += 1;
                            rest = &[];
                            break;
                        }
                    }
                }
            }
        }
        // Both outcomes are exercised, not just one.
        assert!(
            requests > 1000 && errors > 1000,
            "{requests} requests, {errors} errors"
        );
    }
}
