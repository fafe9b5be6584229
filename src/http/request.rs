//! `Request`: what a handler receives, and the one way to answer it.

use crate::actor::scheduler::Done;
use crate::connection::{panic_message, Connection};
use crate::http::compress::{self, Encoding};
use crate::http::{date, forwarded, status, url, Headers};
use std::fmt;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// The HTTP version of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    /// HTTP/1.0
    Http10,
    /// HTTP/1.1
    Http11,
}

/// A request as the reader actor parsed it, before the worker decodes it.
pub struct RawRequest {
    pub(crate) method: std::borrow::Cow<'static, str>,
    pub(crate) target: String,
    pub(crate) version: Version,
    pub(crate) headers: Headers,
    pub(crate) body: Vec<u8>,
    pub(crate) keep_alive: bool,
}

/// A complete response, as returned by error handlers.
#[derive(Clone, Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header fields (natron adds `Content-Length`, `Date`, `Connection`).
    pub headers: Headers,
    /// Content.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with `status`, `headers` and `body`.
    pub fn new(status: u16, headers: impl Into<Headers>, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            headers: headers.into(),
            body: body.into(),
        }
    }

    /// A `text/plain` response carrying `status`'s reason phrase.
    pub fn plain(status: u16) -> Self {
        Response::new(
            status,
            [("Content-Type", "text/plain; charset=utf-8")],
            status::reason(status),
        )
    }
}

/// Builds the response sent for a request that was not answered: the
/// handler panicked (`reason` says so) or dropped the request.
pub type ErrorHandler = Arc<dyn Fn(&str) -> Response + Send + Sync>;

/// An HTTP request.
///
/// Answer it with [`Request::respond`], which consumes it, so a request is
/// answered at most once. It may be moved to another thread and answered
/// there; the connection's next request is handled only after this one is
/// answered, so pipelined responses keep their order. A request dropped
/// unanswered (or whose handler panicked) is answered `500` and logged.
pub struct Request {
    pub(crate) method: std::borrow::Cow<'static, str>,
    pub(crate) uri: String,
    pub(crate) version: Version,
    pub(crate) path: url::Path,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) path_params: Vec<(String, String)>,
    pub(crate) headers: Headers,
    pub(crate) body: Vec<u8>,
    pub(crate) remote_addr: SocketAddr,
    /// The host a trusted proxy forwarded, which `host()` prefers to the
    /// `Host` field.
    pub(crate) forwarded_host: Option<String>,
    pub(crate) responder: Responder,
}

impl Request {
    pub(crate) fn new(raw: RawRequest, done: Done<Connection>) -> Request {
        let (path, query) = url::split_target(&raw.target);
        let conn = done.actor();
        let mut remote_addr = conn.remote;
        let mut forwarded_host = None;
        let trusted = &conn.app.config.trusted_proxies;
        if !trusted.is_empty() && forwarded::is_trusted(trusted, conn.remote.ip()) {
            let f = forwarded::forwarded(&raw.headers, trusted, conn.app.config.proxy_headers);
            remote_addr = f.client.unwrap_or(remote_addr);
            forwarded_host = f.host;
        }
        let encoding = raw
            .headers
            .get("accept-encoding")
            .and_then(compress::negotiate);
        let head = raw.method == "HEAD";
        Request {
            responder: Responder {
                done: Some(done),
                keep_alive: raw.keep_alive,
                version: raw.version,
                head,
                encoding,
                error_handler: None,
                allow: None,
            },
            method: raw.method,
            uri: raw.target,
            version: raw.version,
            path,
            query,
            path_params: Vec::new(),
            headers: raw.headers,
            body: raw.body,
            remote_addr,
            forwarded_host,
        }
    }

    /// The method, e.g. `GET`.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request target exactly as sent, e.g. `/a%20b?x=1`.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The HTTP version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The percent-decoded path, e.g. `/a b`.
    pub fn path(&self) -> &str {
        self.path.as_str(&self.uri)
    }

    /// Decoded query parameters in order, duplicates kept.
    pub fn query_params(&self) -> &[(String, String)] {
        &self.query
    }

    /// The first value of query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Parameters captured by the router (`@name` segments).
    pub fn path_params(&self) -> &[(String, String)] {
        &self.path_params
    }

    /// The value of path parameter `name`.
    pub fn path_param(&self, name: &str) -> Option<&str> {
        self.path_params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The header fields.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// The body (de-chunked).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Takes the body out of the request, leaving it empty.
    pub fn take_body(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.body)
    }

    /// Decodes a `multipart/form-data` body (RFC 7578).
    pub fn multipart(
        &self,
    ) -> Result<crate::http::multipart::Multipart, crate::http::multipart::MultipartError> {
        crate::http::multipart::Multipart::parse(
            self.header("content-type").unwrap_or(""),
            &self.body,
        )
    }

    /// The client's address: the peer's, or, when the peer is one of the
    /// server's [trusted proxies](crate::ServerBuilder::trusted_proxies),
    /// the client it forwards for (port 0 if the proxy gives none).
    pub fn remote_addr(&self) -> SocketAddr {
        self.remote_addr
    }

    /// The host the client asked for (`host[:port]`): what a trusted proxy
    /// forwarded (`Forwarded: host=`, `X-Forwarded-Host`), else the `Host`
    /// field. `None` only for an HTTP/1.0 request without `Host`.
    pub fn host(&self) -> Option<&str> {
        self.forwarded_host
            .as_deref()
            .or_else(|| self.headers.get("host"))
    }

    /// Sends the response. `Content-Length`, `Date` and `Connection` are
    /// set by natron; the body is compressed when the client accepts gzip
    /// or deflate, the body is larger than ~860 bytes and no
    /// `Content-Encoding` is set. HEAD responses carry no body.
    pub fn respond(mut self, status: u16, headers: impl Into<Headers>, body: impl Into<Vec<u8>>) {
        self.responder.send(status, headers.into(), body.into());
    }

    /// Turns this request into a WebSocket (RFC 6455): answers `101
    /// Switching Protocols`, and from then on the connection's events go
    /// to the server's WebSocket handler, starting with `Open`.
    ///
    /// A request that is not a valid upgrade is answered here (`400` with
    /// the reason, or `426` with `Sec-WebSocket-Version: 13`) and the
    /// error returned. Messages sent on the returned handle before the
    /// handler returns reach the client before anything sent from the
    /// `Open` event.
    pub fn upgrade_to_websocket(self) -> Result<crate::WebSocket, crate::websocket::UpgradeError> {
        crate::websocket::upgrade(self, &[])
    }

    /// Like [`Request::upgrade_to_websocket`], selecting the first
    /// subprotocol the client offers (in its order) that is in `supported`.
    /// Without a match, no subprotocol is selected.
    pub fn upgrade_to_websocket_with(
        self,
        supported: &[&str],
    ) -> Result<crate::WebSocket, crate::websocket::UpgradeError> {
        crate::websocket::upgrade(self, supported)
    }

    /// The methods the path allows, as in an `Allow` header, when a
    /// [`crate::Router`] hands this request to its method-not-allowed
    /// handler; `None` otherwise.
    pub fn allowed_methods(&self) -> Option<&str> {
        self.responder.allow.as_deref()
    }

    pub(crate) fn set_allowed_methods(&mut self, allow: String) {
        self.responder.allow = Some(allow);
    }

    /// Installs the builder of the response sent if this request is not
    /// answered (panic or drop).
    pub(crate) fn set_error_handler(&mut self, handler: ErrorHandler) {
        self.responder.error_handler = Some(handler);
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("uri", &self.uri)
            .field("version", &self.version)
            .field("headers", &self.headers)
            .field("body_len", &self.body.len())
            .field("remote_addr", &self.remote_addr)
            .finish()
    }
}

/// The answering half of a request: holds the connection's run right, so
/// the next event of the connection waits until this one is answered.
pub(crate) struct Responder {
    done: Option<Done<Connection>>,
    keep_alive: bool,
    version: Version,
    head: bool,
    encoding: Option<Encoding>,
    error_handler: Option<ErrorHandler>,
    /// Added as `Allow` to a `405` that lacks one.
    allow: Option<String>,
}

impl Responder {
    fn send(&mut self, status: u16, mut headers: Headers, body: Vec<u8>) {
        let Some(done) = self.done.take() else { return };
        let conn = done.actor();
        if status == 405 && !headers.contains("allow") {
            if let Some(allow) = self.allow.take() {
                headers.append("Allow", allow);
            }
        }
        let mut close =
            !self.keep_alive || headers.has_token("connection", "close") || conn.app.is_draining();
        fault_scope!(conn.remote);
        let encoded = {
            // Encoding is natron's code (and flate2's) on user data: a panic
            // in it is a natron bug, which must neither leave the request
            // unanswered (its connection would wait for the answer forever)
            // nor unwind into the handler that called `respond`.
            catch_unwind(AssertUnwindSafe(|| {
                fault_point!(HttpEncode);
                serialize(
                    status,
                    headers,
                    body,
                    self.version,
                    self.head,
                    self.encoding,
                    close,
                )
            }))
        };
        let bytes = match encoded {
            Ok(bytes) => bytes,
            Err(panic) => {
                slog::error!(conn.app.log, "natron bug: panic encoding a response; answering 500 and closing";
                    "panic" => panic_message(&panic), "remote" => %conn.remote);
                close = true;
                encode_failure(self.version, self.head)
            }
        };
        if close {
            // Requests pipelined behind this one will not be answered
            // (RFC 9112 §9.6): their handlers must not run either.
            conn.mark_closed();
        }
        conn.send_response(bytes, close);
        // `done` drops here, after the response is queued: the next event
        // of this connection cannot run before it.
    }

    /// Takes the run right out without answering: the request has been
    /// handed over to another protocol (WebSocket upgrade).
    pub(crate) fn take_done(&mut self) -> Option<Done<Connection>> {
        self.done.take()
    }

    /// The connection this request arrived on.
    pub(crate) fn connection(&self) -> &Arc<Connection> {
        self.done
            .as_ref()
            .expect("an unanswered request holds its run right")
            .actor()
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        let Some(done) = self.done.as_ref() else {
            return;
        };
        let panicking = std::thread::panicking();
        let reason = if panicking {
            "handler panicked"
        } else {
            "handler dropped the request without responding"
        };
        slog::error!(done.actor().app.log, "request not answered, sending 500"; "reason" => reason);
        let response = match &self.error_handler {
            Some(h) => {
                // The error handler is user code: if it panics too, fall back.
                match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h(reason))) {
                    Ok(r) => r,
                    Err(_) => Response::plain(500),
                }
            }
            None => Response::plain(500),
        };
        self.send(response.status, response.headers, response.body);
    }
}

/// The answer to a request whose response could not be encoded: a plain
/// `500` that closes the connection (nothing of the response was written,
/// so the framing is intact and the client gets a definite answer; the
/// connection is closed because natron's state for it is suspect). Empty if
/// encoding even that panics: the connection then closes unanswered.
fn encode_failure(version: Version, head: bool) -> Vec<u8> {
    catch_unwind(|| {
        fault_point!(HttpEncode);
        let plain = Response::plain(500);
        serialize(500, plain.headers, plain.body, version, head, None, true)
    })
    .unwrap_or_default()
}

/// Appends `n` in decimal, without the allocation of `to_string`.
fn push_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Serialises a response. Adds `Date`, `Content-Length` and `Connection`;
/// compresses the body when negotiated and worth it.
pub fn serialize(
    status: u16,
    mut headers: Headers,
    mut body: Vec<u8>,
    version: Version,
    head: bool,
    encoding: Option<Encoding>,
    close: bool,
) -> Vec<u8> {
    let has_body = status::allows_body(status);
    headers.remove("content-length");
    headers.remove("transfer-encoding");
    // natron owns `Connection`, but for the one option a response may
    // have to name: a 426 MUST send `Upgrade` (RFC 9110 §15.5.22), and
    // `Upgrade` is a connection option, so `Connection: upgrade` goes with
    // it (RFC 9110 §7.8).
    let upgrade = headers.contains("upgrade") && headers.has_token("connection", "upgrade");
    headers.remove("connection");
    if let Some(enc) = encoding {
        if has_body
            && body.len() >= compress::MIN_COMPRESS_LEN
            && !headers.contains("content-encoding")
            && compress::compressible(headers.get("content-type"))
        {
            body = compress::encode(enc, &body);
            headers.append("Content-Encoding", enc.name());
            if !headers.has_token("vary", "accept-encoding") {
                headers.append("Vary", "Accept-Encoding");
            }
        }
    }
    let mut out = Vec::with_capacity(128 + headers.len() * 32 + body.len());
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(&mut out, status as usize);
    out.push(b' ');
    out.extend_from_slice(status::reason(status).as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers.iter() {
        // Header injection guard: a CR or LF in user data would split the
        // response; drop such fields rather than send them.
        if name
            .bytes()
            .chain(value.bytes())
            .any(|b| b == b'\r' || b == b'\n')
            || name.is_empty()
        {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !headers.contains("date") {
        out.extend_from_slice(b"Date: ");
        date::write_now(&mut out);
        out.extend_from_slice(b"\r\n");
    }
    // 304 keeps the handler's fields as they are (RFC 9110 §15.4.5).
    if has_body {
        out.extend_from_slice(b"Content-Length: ");
        push_decimal(&mut out, body.len());
        out.extend_from_slice(b"\r\n");
    }
    match (upgrade, close) {
        (true, true) => out.extend_from_slice(b"Connection: upgrade, close\r\n"),
        (true, false) => out.extend_from_slice(b"Connection: upgrade\r\n"),
        (false, true) => out.extend_from_slice(b"Connection: close\r\n"),
        (false, false) if version == Version::Http10 => {
            out.extend_from_slice(b"Connection: keep-alive\r\n")
        }
        (false, false) => {}
    }
    out.extend_from_slice(b"\r\n");
    if has_body && !head {
        out.extend_from_slice(&body);
    }
    out
}
