//! `Request`: what a handler receives, and the one way to answer it.

use crate::actor::scheduler::Done;
use crate::connection::{panic_message, Connection};
use crate::http::body::{BodyReader, BodyShared, BodyStream, StreamSlot};
use crate::http::compress::{self, Encoding};
use crate::http::status::IntoStatus;
use crate::http::{date, forwarded, status, url, Headers};
use std::fmt;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

/// The HTTP version of a request (RFC 9112 §2.3). Displays as its
/// protocol name, `HTTP/1.0` or `HTTP/1.1`.
///
/// ```
/// use natron::Version;
///
/// assert_eq!(Version::Http11.as_str(), "HTTP/1.1");
/// assert_eq!(Version::Http10.to_string(), "HTTP/1.0");
/// assert!(Version::Http10 < Version::Http11);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    /// HTTP/1.0
    Http10,
    /// HTTP/1.1
    Http11,
}

impl Version {
    /// The protocol name as it appears on the request line (RFC 9112
    /// §2.3): `"HTTP/1.0"` or `"HTTP/1.1"`.
    ///
    /// ```
    /// let client = natron::test::TestClient::new(|req: natron::Request| {
    ///     let version = req.version().as_str();
    ///     req.respond(200, (), version)
    /// });
    /// assert_eq!(client.get("/").send().unwrap().text(), "HTTP/1.1");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request as the reader actor parsed it, before the worker decodes it.
pub struct RawRequest {
    pub(crate) method: std::borrow::Cow<'static, str>,
    pub(crate) target: String,
    pub(crate) version: Version,
    pub(crate) headers: Headers,
    pub(crate) body: Vec<u8>,
    pub(crate) keep_alive: bool,
    /// The window of a streamed body (`body` is then empty).
    pub(crate) body_stream: Option<Arc<BodyShared>>,
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
    /// A response with `status`, `headers` and `body`. Returned from a
    /// handler as an [`Error`](crate::Error) (`Err(response.into())`), or
    /// from an error handler, it is sent as it is.
    ///
    /// ```
    /// use natron::{test::TestClient, Error, Request, Response};
    ///
    /// let client = TestClient::new(|req: Request| -> Result<(), Error> {
    ///     if req.header("authorization").is_none() {
    ///         let denied = Response::new(401, [("WWW-Authenticate", "Bearer")], "log in");
    ///         return Err(denied.into());
    ///     }
    ///     req.respond(200, (), "welcome");
    ///     Ok(())
    /// });
    /// let res = client.get("/").send().unwrap();
    /// assert_eq!((res.status, res.text()), (401, "log in".to_owned()));
    /// assert_eq!(res.header("www-authenticate"), Some("Bearer"));
    /// ```
    pub fn new(status: u16, headers: impl Into<Headers>, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            headers: headers.into(),
            body: body.into(),
        }
    }

    /// A `text/plain; charset=utf-8` response carrying `status`'s reason
    /// phrase (see [`reason`](crate::http::status::reason)), `""` for a
    /// code without one.
    ///
    /// ```
    /// let r = natron::Response::plain(404);
    /// assert_eq!((r.status, r.body.as_slice()), (404, &b"Not Found"[..]));
    /// assert_eq!(r.headers.get("content-type"), Some("text/plain; charset=utf-8"));
    /// ```
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

/// An HTTP request: its [`Parts`] (what the client sent) and its
/// [`Responder`] (the one way to answer it).
///
/// Read it through the methods of [`Parts`] (`req.path()`,
/// `req.header("host")`, ...), which a `Request` dereferences to. Answer
/// it with [`Request::respond`], which consumes it, so a request is
/// answered at most once. It may be moved to another thread and answered
/// there; the connection's next request is handled only after this one is
/// answered, so pipelined responses keep their order.
///
/// A request dropped unanswered is answered for the handler: from the
/// `Err` the handler returned (see [`crate::Handler`]), else `500`, and
/// logged. To keep what it sent while answering, split it with
/// [`Request::into_parts`].
pub struct Request {
    parts: Parts,
    pub(crate) responder: Responder,
}

/// What the client sent: method, target, version, headers, body, and what
/// natron learned on the way (path parameters, the client's address).
/// Owned: it lives on after the request is answered.
#[derive(Clone)]
pub struct Parts {
    pub(crate) method: std::borrow::Cow<'static, str>,
    pub(crate) uri: String,
    pub(crate) version: Version,
    pub(crate) path: url::Path,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) path_params: Vec<(String, String)>,
    pub(crate) headers: Headers,
    pub(crate) body: Vec<u8>,
    /// A streamed body until [`Parts::body_reader`] takes it.
    pub(crate) stream: StreamSlot,
    /// Whether the body is streamed, once `stream` is taken too (and in a
    /// clone, which carries no stream).
    pub(crate) body_streamed: bool,
    pub(crate) remote_addr: SocketAddr,
    /// The host a trusted proxy forwarded, which `host()` prefers to the
    /// `Host` field.
    pub(crate) forwarded_host: Option<String>,
    /// What middleware added (empty: no allocation).
    pub(crate) extensions: http::Extensions,
}

impl std::ops::Deref for Request {
    type Target = Parts;
    fn deref(&self) -> &Parts {
        &self.parts
    }
}

impl std::ops::DerefMut for Request {
    fn deref_mut(&mut self) -> &mut Parts {
        &mut self.parts
    }
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
        let stream = raw
            .body_stream
            .map(|shared| BodyStream::new(shared, conn.io.clone(), conn.id));
        Request {
            responder: Responder {
                done: Some(done),
                keep_alive: raw.keep_alive,
                version: raw.version,
                head,
                encoding,
                error_handler: None,
                allow: None,
                stream: stream.clone(),
                hooks: None,
            },
            parts: Parts {
                method: raw.method,
                uri: raw.target,
                version: raw.version,
                path,
                query,
                path_params: Vec::new(),
                headers: raw.headers,
                body: raw.body,
                body_streamed: stream.is_some(),
                stream: StreamSlot(stream),
                remote_addr,
                forwarded_host,
                extensions: http::Extensions::new(),
            },
        }
    }

    /// Splits the request into what the client sent and the means to
    /// answer it, so the handler can keep borrowing the former while it
    /// answers with the latter:
    ///
    /// ```
    /// # let mut router = natron::Router::new();
    /// # router.get("/users/@id", |req: natron::Request| {
    /// let (parts, responder) = req.into_parts();
    /// let id = parts.path_param("id").unwrap_or("");
    /// responder.respond(200, (), format!("user {id}"));
    /// # });
    /// # let client = natron::test::TestClient::new(router);
    /// assert_eq!(client.get("/users/7").send().unwrap().text(), "user 7");
    /// ```
    pub fn into_parts(self) -> (Parts, Responder) {
        (self.parts, self.responder)
    }

    /// Sends the response: see [`Responder::respond`].
    ///
    /// ```
    /// # let client = natron::test::TestClient::new(|req: natron::Request| {
    /// req.respond(200, [("Content-Type", "text/plain")], "hello");
    /// # });
    /// let res = client.get("/").send().unwrap();
    /// assert_eq!((res.status, res.header("content-type")), (200, Some("text/plain")));
    /// assert_eq!((res.header("content-length"), res.text()), (Some("5"), "hello".to_owned()));
    /// ```
    pub fn respond(
        self,
        status: impl IntoStatus,
        headers: impl Into<Headers>,
        body: impl Into<Vec<u8>>,
    ) {
        self.responder.respond(status, headers, body);
    }

    /// Answers with a streaming body: sends the head now and returns the
    /// handle that writes the body, from any thread, after the handler has
    /// returned too (see [`ResponseStream`](crate::ResponseStream)).
    ///
    /// * HTTP/1.1: `Transfer-Encoding: chunked` (RFC 9112 §7.1), one chunk
    ///   per `write`; HTTP/1.0: no length, the connection closes at the
    ///   end (RFC 9112 §6.3); `HEAD`, `204`, `304`: the head only, which
    ///   answers the request at once (writes are discarded).
    ///   natron sets `Date`, `Connection` and the framing fields
    ///   (`Content-Length` and `Transfer-Encoding` given are dropped).
    /// * Compressed (gzip or deflate, as `Accept-Encoding` allows) unless
    ///   the handler set `Content-Encoding` or the type is already
    ///   compressed (images, video, archives); each write is flushed, so
    ///   the client can decode it at once. A compressed stream holds about
    ///   150 KiB of compressor state while open. Bodies of known length
    ///   (`respond_reader_sized`, `respond_seekable`) and event streams are
    ///   not compressed.
    /// * The stream holds the connection: requests pipelined behind it are
    ///   handled once it ends, so responses keep their order. No worker is
    ///   held meanwhile.
    /// * An invalid status or field is answered `500` (as
    ///   [`Responder::respond`] does), and the returned stream is closed.
    ///
    /// ```
    /// # let client = natron::test::TestClient::new(|req: natron::Request| {
    /// let stream = req.respond_stream(200, [("Content-Type", "application/x-ndjson")]);
    /// std::thread::spawn(move || {
    ///     for i in 0..3 {
    ///         let _ = stream.write(format!("{{\"n\":{i}}}\n"));
    ///     }
    ///     // Dropping the last handle finishes the body.
    /// });
    /// # });
    /// let res = client.get("/").send().unwrap(); // the whole stream
    /// assert_eq!(res.header("transfer-encoding"), Some("chunked"));
    /// assert_eq!(res.text(), "{\"n\":0}\n{\"n\":1}\n{\"n\":2}\n");
    /// ```
    pub fn respond_stream(
        self,
        status: impl IntoStatus,
        headers: impl Into<Headers>,
    ) -> crate::ResponseStream {
        self.responder.respond_stream(status, headers)
    }

    /// Answers with a Server-Sent Events stream (WHATWG HTML §9.2): `200`,
    /// `Content-Type: text/event-stream` and `Cache-Control: no-cache`
    /// (unless `headers` set them), not compressed, with a heartbeat
    /// comment after half the server's `idle_timeout` (at most 15 s)
    /// without an event. See [`crate::sse`]; the request's
    /// [`Last-Event-ID`](Parts::last_event_id) says where a reconnecting
    /// client left off. Dropping the last handle ends the response.
    ///
    /// ```
    /// use natron::{sse::Event, test::TestClient, Request};
    ///
    /// let client = TestClient::new(|req: Request| {
    ///     let events = req.respond_event_stream(());
    ///     let _ = events.send(&Event::new().id("1").data("hello"));
    /// });
    /// let res = client.get("/events").send().unwrap();
    /// assert_eq!(res.header("content-type"), Some("text/event-stream"));
    /// assert_eq!(res.header("cache-control"), Some("no-cache"));
    /// assert_eq!(res.text(), "id: 1\ndata: hello\n\n");
    /// ```
    pub fn respond_event_stream(mut self, headers: impl Into<Headers>) -> crate::sse::EventStream {
        // Not compressed: an event stream is framed once per publish for
        // every subscriber, and proxies handle it best as it is.
        self.responder.encoding = None;
        let mut headers = headers.into();
        if !headers.contains("content-type") {
            headers.append("Content-Type", "text/event-stream");
        }
        if !headers.contains("cache-control") {
            headers.append("Cache-Control", "no-cache");
        }
        let idle = self
            .responder
            .done
            .as_ref()
            .map(|d| d.actor().app.config.idle_timeout);
        let events = crate::sse::EventStream {
            stream: self.responder.stream_body(200, headers, None),
        };
        let every = idle.map_or(Duration::from_secs(15), |t| {
            (t / 2).min(Duration::from_secs(15))
        });
        events.heartbeat(Some(every));
        events
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
    ///
    /// # Errors
    ///
    /// The [`UpgradeError`](crate::UpgradeError) saying why, once the
    /// request has been answered: `400` for a request that is not a
    /// WebSocket handshake (not `GET`, not HTTP/1.1, no `Upgrade:
    /// websocket` and `Connection: upgrade`, a bad `Sec-WebSocket-Key`),
    /// `426` for a `Sec-WebSocket-Version` other than 13, `403` for a
    /// refused `Origin`, `500` when the server has no WebSocket handler.
    ///
    /// ```
    /// use natron::test::{TestClient, TestError};
    /// use natron::{Request, Server, WebSocket, WebSocketEvent};
    ///
    /// let client = TestClient::with_server(
    ///     Server::builder()
    ///         .websocket_handler(|ws: WebSocket, event: WebSocketEvent| {
    ///             if let WebSocketEvent::Message(m) = event {
    ///                 let _ = ws.send(m); // echo
    ///             }
    ///         })
    ///         .handler(|req: Request| {
    ///             if let Err(e) = req.upgrade_to_websocket() {
    ///                 eprintln!("not upgraded: {e}"); // already answered
    ///             }
    ///         }),
    /// );
    /// // Not a handshake: answered 400.
    /// assert_eq!(client.get("/chat").send().unwrap().status, 400);
    /// // A handshake: upgraded (the test client speaks no WebSocket).
    /// let res = client
    ///     .get("/chat")
    ///     .header("Connection", "Upgrade")
    ///     .header("Upgrade", "websocket")
    ///     .header("Sec-WebSocket-Version", "13")
    ///     .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
    ///     .send();
    /// assert!(matches!(res, Err(TestError::Upgraded)));
    /// ```
    pub fn upgrade_to_websocket(self) -> Result<crate::WebSocket, crate::websocket::UpgradeError> {
        crate::websocket::upgrade(self, crate::WebSocketUpgrade::new())
    }

    /// Like [`Request::upgrade_to_websocket`], with options: subprotocols,
    /// a handler for this connection's events and data attached to it
    /// (see [`WebSocketUpgrade`](crate::WebSocketUpgrade)).
    ///
    /// # Errors
    ///
    /// As [`Request::upgrade_to_websocket`]: the request was not a valid
    /// upgrade, its `Origin` was refused, or no handler is configured
    /// (neither here nor on the server); it has been answered.
    ///
    /// ```
    /// use natron::{Request, WebSocket, WebSocketEvent, WebSocketUpgrade};
    ///
    /// fn feed(req: Request) {
    ///     let Some(user) = req.header("x-user").map(str::to_owned) else {
    ///         return req.respond(401, (), "who are you?");
    ///     };
    ///     let upgrade = WebSocketUpgrade::new().data(user).handler(
    ///         |ws: WebSocket, event: WebSocketEvent| {
    ///             if let WebSocketEvent::Open = event {
    ///                 let user: &String = ws.data().unwrap();
    ///                 let _ = ws.send_text(&format!("feed of {user}"));
    ///             }
    ///         },
    ///     );
    ///     if let Err(e) = req.upgrade(upgrade) {
    ///         eprintln!("not upgraded: {e}"); // already answered 400/403/426
    ///     }
    /// }
    ///
    /// let client = natron::test::TestClient::new(feed);
    /// assert_eq!(client.get("/feed").send().unwrap().status, 401);
    /// let handshake = client.get("/feed").header("X-User", "ada");
    /// assert_eq!(handshake.send().unwrap().status, 400); // not a WebSocket handshake
    /// ```
    pub fn upgrade(
        self,
        options: crate::WebSocketUpgrade,
    ) -> Result<crate::WebSocket, crate::websocket::UpgradeError> {
        crate::websocket::upgrade(self, options)
    }

    /// Like [`Request::upgrade_to_websocket`], selecting the first
    /// subprotocol the client offers (in its order) that is in `supported`.
    /// Without a match, no subprotocol is selected (RFC 6455 §4.2.2: the
    /// `101` then carries no `Sec-WebSocket-Protocol`).
    ///
    /// # Errors
    ///
    /// As [`Request::upgrade_to_websocket`].
    ///
    /// ```
    /// use natron::{test::TestClient, Request, Server, WebSocket, WebSocketEvent};
    /// use std::sync::mpsc;
    ///
    /// let (tx, rx) = mpsc::channel();
    /// let tx = std::sync::Mutex::new(tx);
    /// let client = TestClient::with_server(
    ///     Server::builder()
    ///         .websocket_handler(|_: WebSocket, _: WebSocketEvent| {})
    ///         .handler(move |req: Request| {
    ///             if let Ok(ws) = req.upgrade_to_websocket_with(&["v2.chat", "v1.chat"]) {
    ///                 let _ = tx.lock().unwrap().send(ws.protocol().map(str::to_owned));
    ///             }
    ///         }),
    /// );
    /// let _ = client
    ///     .get("/chat")
    ///     .header("Connection", "Upgrade")
    ///     .header("Upgrade", "websocket")
    ///     .header("Sec-WebSocket-Version", "13")
    ///     .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
    ///     .header("Sec-WebSocket-Protocol", "v1.chat, v2.chat")
    ///     .send(); // Err(TestError::Upgraded)
    /// // The client's order decides.
    /// assert_eq!(rx.recv().unwrap().as_deref(), Some("v1.chat"));
    /// ```
    pub fn upgrade_to_websocket_with(
        self,
        supported: &[&str],
    ) -> Result<crate::WebSocket, crate::websocket::UpgradeError> {
        crate::websocket::upgrade(self, crate::WebSocketUpgrade::new().protocols(supported))
    }

    /// The methods the path allows, as in an `Allow` header, when a
    /// [`crate::Router`] hands this request to its method-not-allowed
    /// handler; `None` otherwise.
    ///
    /// ```
    /// use natron::{test::TestClient, Request, Router};
    ///
    /// let mut router = Router::new();
    /// router.get("/doc", |req: Request| req.respond(200, (), "doc"));
    /// router.put("/doc", |req: Request| req.respond(204, (), ""));
    /// router.method_not_allowed(|req: Request| {
    ///     let allow = req.allowed_methods().unwrap_or("").to_owned();
    ///     req.respond(405, (), format!("try one of: {allow}"));
    /// });
    /// let res = TestClient::new(router).delete("/doc").send().unwrap();
    /// assert_eq!(res.status, 405);
    /// assert_eq!(res.text(), format!("try one of: {}", res.header("allow").unwrap()));
    /// assert!(res.header("allow").unwrap().contains("PUT"));
    /// ```
    pub fn allowed_methods(&self) -> Option<&str> {
        self.responder.allow.as_deref()
    }

    pub(crate) fn set_allowed_methods(&mut self, allow: String) {
        self.responder.allow = Some(allow);
    }

    /// Both halves, borrowed, for the middleware chain.
    pub(crate) fn split_mut(&mut self) -> (&mut Parts, &mut Responder) {
        (&mut self.parts, &mut self.responder)
    }

    /// Installs the builder of the response sent if this request is not
    /// answered (panic or drop).
    pub(crate) fn set_error_handler(&mut self, handler: ErrorHandler) {
        self.responder.error_handler = Some(handler);
    }
}

impl Parts {
    /// `GET /` from `127.0.0.1:0`, for drivers that make a WebSocket
    /// without a request (the fuzz driver, unit tests).
    #[cfg(any(test, fuzzing))]
    pub(crate) fn for_tests() -> Parts {
        Parts {
            method: "GET".into(),
            uri: "/".into(),
            version: Version::Http11,
            path: url::Path::InTarget { start: 0, end: 1 },
            query: Vec::new(),
            path_params: Vec::new(),
            headers: Headers::new(),
            body: Vec::new(),
            stream: StreamSlot::default(),
            body_streamed: false,
            remote_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            forwarded_host: None,
            extensions: http::Extensions::new(),
        }
    }

    /// The method, e.g. `GET`, as sent (methods are case-sensitive, RFC
    /// 9110 §9.1).
    ///
    /// ```
    /// # use natron::{test::TestClient, Request};
    /// let client = TestClient::new(|req: Request| {
    ///     let m = req.method().to_owned();
    ///     req.respond(200, (), m)
    /// });
    /// assert_eq!(client.post("/").send().unwrap().text(), "POST");
    /// ```
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request target exactly as sent (RFC 9112 §3.2), e.g.
    /// `/a%20b?x=1`: not decoded, query included.
    ///
    /// ```
    /// # use natron::{test::TestClient, Request};
    /// let client = TestClient::new(|req: Request| {
    ///     let uri = req.uri().to_owned();
    ///     req.respond(200, (), uri)
    /// });
    /// assert_eq!(client.get("/a%20b?x=1").send().unwrap().text(), "/a%20b?x=1");
    /// ```
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The HTTP version.
    ///
    /// ```
    /// # use natron::{test::TestClient, Request, Version};
    /// let client = TestClient::new(|req: Request| {
    ///     let keep_alive_by_default = req.version() >= Version::Http11;
    ///     let answer = format!("{} {keep_alive_by_default}", req.version());
    ///     req.respond(200, (), answer)
    /// });
    /// assert_eq!(client.get("/").send().unwrap().text(), "HTTP/1.1 true");
    /// ```
    pub fn version(&self) -> Version {
        self.version
    }

    /// The percent-decoded path, e.g. `/a b`, without the query; `/` for
    /// an absolute-form target without a path (`http://host`). Invalid
    /// escapes are kept as they are, invalid UTF-8 replaced with U+FFFD
    /// (see [`percent_decode`](crate::http::url::percent_decode)).
    ///
    /// ```
    /// # use natron::{test::TestClient, Request};
    /// let client = TestClient::new(|req: Request| {
    ///     let path = req.path().to_owned();
    ///     req.respond(200, (), path)
    /// });
    /// assert_eq!(client.get("/a%20b/c?x=1").send().unwrap().text(), "/a b/c");
    /// ```
    pub fn path(&self) -> &str {
        self.path.as_str(&self.uri)
    }

    /// Decoded query parameters in order, duplicates kept (see
    /// [`parse_query`](crate::http::url::parse_query)).
    ///
    /// ```
    /// # use natron::{test::TestClient, Request};
    /// let client = TestClient::new(|req: Request| {
    ///     let pairs: Vec<String> = req.query_params().iter().map(|(k, v)| format!("{k}={v}")).collect();
    ///     req.respond(200, (), pairs.join(","))
    /// });
    /// assert_eq!(client.get("/?tag=a&q=x+y&tag=b").send().unwrap().text(), "tag=a,q=x y,tag=b");
    /// ```
    pub fn query_params(&self) -> &[(String, String)] {
        &self.query
    }

    /// The first value of query parameter `name` (decoded: `+` is a
    /// space, `%XX` a byte); `Some("")` for `?name` or `?name=`. Parsed
    /// to a type: [`query_param_as`](Parts::query_param_as).
    ///
    /// ```
    /// # use natron::{test::TestClient, Request};
    /// let client = TestClient::new(|req: Request| {
    ///     let q = req.query_param("q").unwrap_or("(none)").to_owned();
    ///     req.respond(200, (), q)
    /// });
    /// assert_eq!(client.get("/?q=hello%21&q=second").send().unwrap().text(), "hello!");
    /// assert_eq!(client.get("/").send().unwrap().text(), "(none)");
    /// ```
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Parameters captured by the router (`@name` segments), in the
    /// route's order, percent-decoded. Empty outside a [`Router`](crate::Router).
    ///
    /// ```
    /// use natron::{test::TestClient, Request, Router};
    ///
    /// let mut router = Router::new();
    /// router.get("/@owner/@repo", |req: Request| {
    ///     let names: Vec<&str> = req.path_params().iter().map(|(k, _)| k.as_str()).collect();
    ///     let text = names.join(",");
    ///     req.respond(200, (), text)
    /// });
    /// let client = TestClient::new(router);
    /// assert_eq!(client.get("/rust-lang/rust").send().unwrap().text(), "owner,repo");
    /// ```
    pub fn path_params(&self) -> &[(String, String)] {
        &self.path_params
    }

    /// The value of path parameter `name` (percent-decoded); `None` if
    /// the route captures none of that name. Parsed to a type:
    /// [`path_param_as`](Parts::path_param_as).
    ///
    /// ```
    /// use natron::{test::TestClient, Request, Router};
    ///
    /// let mut router = Router::new();
    /// router.get("/users/@name", |req: Request| {
    ///     let name = req.path_param("name").unwrap_or("?").to_owned();
    ///     req.respond(200, (), format!("hello {name}"))
    /// });
    /// let client = TestClient::new(router);
    /// assert_eq!(client.get("/users/ada%20l").send().unwrap().text(), "hello ada l");
    /// ```
    pub fn path_param(&self, name: &str) -> Option<&str> {
        self.path_params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The header fields, in the order received.
    ///
    /// ```
    /// # use natron::{test::TestClient, Request};
    /// let client = TestClient::new(|req: Request| {
    ///     let langs: Vec<&str> = req.headers().get_all("accept-language").collect();
    ///     let text = langs.join(" then ");
    ///     req.respond(200, (), text)
    /// });
    /// let res = client.get("/").header("Accept-Language", "fr").header("Accept-Language", "en").send();
    /// assert_eq!(res.unwrap().text(), "fr then en");
    /// ```
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The first value of header `name` (case-insensitive).
    ///
    /// ```
    /// # use natron::{test::TestClient, Request};
    /// let client = TestClient::new(|req: Request| {
    ///     let agent = req.header("user-agent").unwrap_or("unknown").to_owned();
    ///     req.respond(200, (), agent)
    /// });
    /// assert_eq!(client.get("/").header("User-Agent", "curl/8").send().unwrap().text(), "curl/8");
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// The `Last-Event-ID` field: the `id` of the last Server-Sent Event
    /// a reconnecting `EventSource` received (WHATWG HTML §9.2.4), to
    /// resume from.
    ///
    /// ```
    /// # use natron::{test::TestClient, Request};
    /// let client = TestClient::new(|req: Request| {
    ///     let after: u64 = req.last_event_id().and_then(|id| id.parse().ok()).unwrap_or(0);
    ///     req.respond(200, (), format!("from {}", after + 1))
    /// });
    /// assert_eq!(client.get("/").header("Last-Event-ID", "41").send().unwrap().text(), "from 42");
    /// ```
    pub fn last_event_id(&self) -> Option<&str> {
        self.headers.get("last-event-id")
    }

    /// The body (de-chunked), buffered whole before the handler ran (at
    /// most the route's [`max_body_len`](crate::Router::max_body_len) or
    /// else the [server's](crate::ServerBuilder::max_body_len) bytes; a
    /// longer one was answered `413`). Empty for a streamed body
    /// (see [`Parts::body_reader`]).
    ///
    /// ```
    /// # use natron::{test::TestClient, Request};
    /// let client = TestClient::new(|req: Request| {
    ///     let words = String::from_utf8_lossy(req.body()).split_whitespace().count();
    ///     req.respond(200, (), words.to_string())
    /// });
    /// assert_eq!(client.post("/").body("one two three").send().unwrap().text(), "3");
    /// ```
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Takes the body out of the request, leaving it empty. Empty for a
    /// streamed body (see [`Parts::body_reader`]).
    ///
    /// ```
    /// # use natron::{test::TestClient, Request};
    /// let client = TestClient::new(|mut req: Request| {
    ///     let mut body = req.take_body(); // no copy
    ///     body.reverse();
    ///     assert!(req.body().is_empty());
    ///     req.respond(200, (), body)
    /// });
    /// assert_eq!(client.post("/").body("abc").send().unwrap().text(), "cba");
    /// ```
    pub fn take_body(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.body)
    }

    /// Whether the body is streamed: read from the socket as the handler
    /// reads [`Parts::body_reader`], rather than buffered whole before the
    /// handler ran. Decided per route ([`Router::stream_body`]) or per
    /// server ([`ServerBuilder::stream_request_bodies`]); it stays so after
    /// `body_reader` took the body, and in a clone of the parts.
    ///
    /// [`Router::stream_body`]: crate::Router::stream_body
    /// [`ServerBuilder::stream_request_bodies`]: crate::ServerBuilder::stream_request_bodies
    ///
    /// ```
    /// use natron::{test::TestClient, Request, Router};
    ///
    /// let mut router = Router::new();
    /// let streamed = |req: Request| {
    ///     let s = req.is_body_streamed().to_string();
    ///     req.respond(200, (), s)
    /// };
    /// router.post("/upload", streamed).stream_body();
    /// router.post("/form", streamed);
    /// let client = TestClient::new(router);
    /// assert_eq!(client.post("/upload").body("x").send().unwrap().text(), "true");
    /// assert_eq!(client.post("/form").body("x").send().unwrap().text(), "false");
    /// ```
    pub fn is_body_streamed(&self) -> bool {
        self.body_streamed
    }

    /// The body as a reader (see [`BodyReader`]): a streamed body as it
    /// arrives, with backpressure, or the buffered one (taken out of
    /// [`Parts::body`]). One reader per body: a second call returns an
    /// empty one.
    ///
    /// ```
    /// use std::io::Read;
    ///
    /// fn upload(mut req: natron::Request) -> Result<(), natron::Error> {
    ///     let mut body = req.body_reader();
    ///     let mut buf = [0; 16 * 1024];
    ///     let mut total = 0u64;
    ///     loop {
    ///         let n = body.read(&mut buf)?; // 400/408/413 if the body fails
    ///         if n == 0 {
    ///             break;
    ///         }
    ///         total += n as u64; // write `buf[..n]` somewhere
    ///     }
    ///     drop(body);
    ///     req.respond(200, (), format!("{total} bytes"));
    ///     Ok(())
    /// }
    ///
    /// let mut router = natron::Router::new();
    /// router.post("/upload", upload).stream_body();
    /// let client = natron::test::TestClient::new(router);
    /// let res = client.post("/upload").body(vec![7; 100_000]).send().unwrap();
    /// assert_eq!(res.text(), "100000 bytes");
    /// ```
    pub fn body_reader(&mut self) -> BodyReader {
        match self.stream.0.take() {
            Some(stream) => BodyReader::streamed(stream),
            None => BodyReader::buffered(std::mem::take(&mut self.body)),
        }
    }

    /// Decodes a buffered `multipart/form-data` body (RFC 7578), its
    /// boundary taken from `Content-Type` (RFC 2046 §5.1.1), within the
    /// default [`Limits`](crate::http::multipart::Limits). A streamed body
    /// is not buffered, so it is empty here (an error): collect it with
    /// [`Parts::body_reader`] (bounding what you keep) and decode that with
    /// [`Multipart::parse`](crate::http::multipart::Multipart::parse).
    ///
    /// # Errors
    ///
    /// A [`MultipartError`](crate::http::multipart::MultipartError) when
    /// the `Content-Type` is not `multipart/form-data` with a valid
    /// boundary, or the body is not well-formed multipart;
    /// `MultipartError::BodyStreamed` on a route that streams its body.
    ///
    /// ```
    /// use natron::{test::TestClient, Request};
    ///
    /// let client = TestClient::new(|req: Request| match req.multipart() {
    ///     Ok(form) => {
    ///         let name = form.text("name").unwrap_or("?").to_owned();
    ///         req.respond(200, (), name)
    ///     }
    ///     Err(e) => req.respond(400, (), e.to_string()),
    /// });
    /// let body = "--XyZ\r\n\
    ///     Content-Disposition: form-data; name=\"name\"\r\n\r\n\
    ///     ada\r\n\
    ///     --XyZ--\r\n";
    /// let res = client
    ///     .post("/")
    ///     .header("Content-Type", "multipart/form-data; boundary=XyZ")
    ///     .body(body)
    ///     .send()
    ///     .unwrap();
    /// assert_eq!(res.text(), "ada");
    /// assert_eq!(client.post("/").body("x").send().unwrap().status, 400);
    /// ```
    pub fn multipart(
        &self,
    ) -> Result<crate::http::multipart::Multipart, crate::http::multipart::MultipartError> {
        if self.is_body_streamed() {
            return Err(crate::http::multipart::MultipartError::BodyStreamed);
        }
        crate::http::multipart::Multipart::parse(
            self.header("content-type").unwrap_or(""),
            &self.body,
        )
    }

    /// Typed values attached to the request by middleware (a
    /// [`RequestId`](crate::middleware::RequestId), an authenticated user,
    /// ...), one per type.
    ///
    /// ```
    /// use natron::{middleware::Middleware, test::TestClient, Parts, Request, Response, Server};
    ///
    /// #[derive(Clone)]
    /// struct User(String);
    ///
    /// struct Auth;
    /// impl Middleware for Auth {
    ///     fn before(&self, req: &mut Parts) -> Result<(), Response> {
    ///         if req.header("authorization") == Some("Bearer t0k3n") {
    ///             req.extensions_mut().insert(User("ada".into()));
    ///         }
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let client = TestClient::with_server(Server::builder().middleware(Auth).handler(
    ///     |req: Request| {
    ///         let name = req.extensions().get::<User>().map_or("anonymous", |u| &u.0);
    ///         let greeting = format!("hello {name}");
    ///         req.respond(200, (), greeting);
    ///     },
    /// ));
    /// let res = client.get("/").header("Authorization", "Bearer t0k3n").send().unwrap();
    /// assert_eq!(res.text(), "hello ada");
    /// assert_eq!(client.get("/").send().unwrap().text(), "hello anonymous");
    /// ```
    pub fn extensions(&self) -> &http::Extensions {
        &self.extensions
    }

    /// The extensions, to add to: see [`Parts::extensions`]. Values must be
    /// `Clone + Send + Sync + 'static`.
    ///
    /// ```
    /// # let client = natron::test::TestClient::new(|mut req: natron::Request| {
    /// #[derive(Clone)]
    /// struct User(String);
    ///
    /// let previous = req.extensions_mut().insert(User("ada".into()));
    /// assert!(previous.is_none());
    /// assert_eq!(req.extensions().get::<User>().map(|u| u.0.as_str()), Some("ada"));
    /// # req.respond(204, (), "");
    /// # });
    /// # assert_eq!(client.get("/").send().unwrap().status, 204);
    /// ```
    pub fn extensions_mut(&mut self) -> &mut http::Extensions {
        &mut self.extensions
    }

    /// The client's address: the peer's, or, when the peer is one of the
    /// server's [trusted proxies](crate::ServerBuilder::trusted_proxies),
    /// the client it forwards for (port 0 if the proxy gives none).
    ///
    /// ```
    /// use natron::{test::TestClient, Request, Server};
    ///
    /// // The test client connects from 127.0.0.1:0; trust it as a proxy.
    /// let client = TestClient::with_server(
    ///     Server::builder()
    ///         .trusted_proxies(["127.0.0.1".parse().unwrap()])
    ///         .handler(|req: Request| {
    ///             let ip = req.remote_addr().ip().to_string();
    ///             req.respond(200, (), ip)
    ///         }),
    /// );
    /// let res = client.get("/").header("X-Forwarded-For", "203.0.113.7").send().unwrap();
    /// assert_eq!(res.text(), "203.0.113.7");
    /// assert_eq!(client.get("/").send().unwrap().text(), "127.0.0.1");
    /// ```
    pub fn remote_addr(&self) -> SocketAddr {
        self.remote_addr
    }

    /// The host the client asked for (`host[:port]`): what a trusted proxy
    /// forwarded (`Forwarded: host=`, `X-Forwarded-Host`), else the `Host`
    /// field. `None` only for an HTTP/1.0 request without `Host` (HTTP/1.1
    /// requires one, RFC 9112 §3.2: natron answers `400` without it).
    ///
    /// ```
    /// # use natron::{test::TestClient, Request};
    /// let client = TestClient::new(|req: Request| {
    ///     let host = req.host().unwrap_or("").to_owned();
    ///     req.respond(200, (), host)
    /// });
    /// let res = client.get("/").header("Host", "example.com:8080").send().unwrap();
    /// assert_eq!(res.text(), "example.com:8080");
    /// ```
    pub fn host(&self) -> Option<&str> {
        self.forwarded_host
            .as_deref()
            .or_else(|| self.headers.get("host"))
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

/// The answering half of a request, from [`Request::into_parts`]. It holds
/// the connection's run right: the connection's next request waits until
/// this one is answered, so pipelined responses keep their order. `Send`:
/// it may be answered on any thread. Dropped unanswered, it answers as a
/// dropped [`Request`] does (see [`crate::Handler`]).
pub struct Responder {
    done: Option<Done<Connection>>,
    keep_alive: bool,
    version: Version,
    head: bool,
    encoding: Option<Encoding>,
    error_handler: Option<ErrorHandler>,
    /// Added as `Allow` to a `405` that lacks one.
    allow: Option<String>,
    /// A streamed body: answering abandons it.
    stream: Option<BodyStream>,
    /// Middleware's after-hooks (`None`: no middleware, nothing to pay).
    pub(crate) hooks: Option<Box<crate::middleware::Hooks>>,
}

impl fmt::Debug for Responder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Responder")
            .field("answered", &self.done.is_none())
            .field("version", &self.version)
            .field("keep_alive", &self.keep_alive)
            .finish()
    }
}

/// Why a request is answered by natron rather than its handler.
pub(crate) enum Unanswered {
    /// The handler returned `Ok(())` without answering.
    Dropped,
    /// The handler panicked.
    Panicked,
    /// The handler returned this error.
    Failed(crate::handler::Error),
}

impl Responder {
    /// Sends the response (RFC 9112 §6, §9).
    ///
    /// * `status`: a [`StatusCode`](crate::StatusCode) or an integer;
    ///   `headers`: `()`, an array or `Vec` of `(name, value)` pairs, a
    ///   [`Headers`], or an `http::HeaderMap`; `body`: bytes or a string.
    /// * natron sets `Content-Length`, `Date` (unless given) and
    ///   `Connection`; it compresses the body when the client accepts gzip
    ///   or deflate, the body is at least 860 bytes (see
    ///   [`Compression`](crate::middleware::Compression) to change that),
    ///   its type is not already compressed (images, video, archives) and
    ///   no `Content-Encoding` is set. A `HEAD` response carries no body.
    /// * **Nothing invalid reaches the wire.** A status that is not a final
    ///   code of RFC 9110 §15 (`42`, `2001`, `600`, a `1xx`), a field name that is not
    ///   a token (RFC 9110 §5.1: no spaces, no colons) or a value with a
    ///   control character (CR, LF, NUL: §5.5) is a handler bug: the
    ///   client gets `500`, and the server's logger an error naming the
    ///   bad status or field. Nothing is dropped silently.
    ///
    /// ```
    /// use natron::{Request, StatusCode};
    ///
    /// fn handler(req: Request) {
    ///     let (parts, responder) = req.into_parts();
    ///     match parts.header("accept") {
    ///         Some(a) if a.contains("json") => responder.respond(
    ///             StatusCode::OK,
    ///             [("Content-Type", "application/json")],
    ///             r#"{"ok":true}"#,
    ///         ),
    ///         _ => responder.respond(406, (), "JSON only"),
    ///     }
    /// }
    ///
    /// let client = natron::test::TestClient::new(handler);
    /// let res = client.get("/").header("Accept", "application/json").send().unwrap();
    /// assert_eq!((res.status, res.text()), (200, r#"{"ok":true}"#.to_owned()));
    /// assert_eq!(client.get("/").send().unwrap().status, 406);
    /// // A status that is not a final one never reaches the wire.
    /// let bad = natron::test::TestClient::new(|req: Request| req.respond(42, (), ""));
    /// assert_eq!(bad.get("/").send().unwrap().status, 500);
    /// ```
    pub fn respond(
        mut self,
        status: impl IntoStatus,
        headers: impl Into<Headers>,
        body: impl Into<Vec<u8>>,
    ) {
        let headers = headers.into();
        match check_response(status, &headers) {
            Ok(status) => self.send(status, headers, body.into()),
            Err(why) => {
                if let Some(done) = &self.done {
                    slog::error!(done.actor().app.log, "invalid response from a handler; sending 500 instead"; "error" => &why);
                }
                let r = Response::plain(500);
                self.send(r.status, r.headers, r.body);
            }
        }
    }

    /// Starts a streaming response: see [`Request::respond_stream`].
    ///
    /// ```
    /// # use natron::{test::TestClient, Request};
    /// let client = TestClient::new(|req: Request| {
    ///     let (parts, responder) = req.into_parts();
    ///     let stream = responder.respond_stream(200, [("Content-Type", "text/plain")]);
    ///     for word in parts.path().split('/').skip(1) {
    ///         let _ = stream.write(format!("{word}\n"));
    ///     }
    ///     // Dropping the last handle finishes the body.
    /// });
    /// let res = client.get("/a/b/c").send().unwrap();
    /// assert_eq!(res.header("transfer-encoding"), Some("chunked"));
    /// assert_eq!(res.text(), "a\nb\nc\n");
    /// ```
    pub fn respond_stream(
        self,
        status: impl IntoStatus,
        headers: impl Into<Headers>,
    ) -> crate::ResponseStream {
        self.stream_body(status, headers.into(), None)
    }

    /// The head of a streamed body of `len` bytes if known, posted now;
    /// the handle that writes the rest.
    pub(crate) fn stream_body(
        mut self,
        status: impl IntoStatus,
        mut headers: Headers,
        len: Option<u64>,
    ) -> crate::ResponseStream {
        let done = self
            .done
            .take()
            .expect("an unanswered request holds its run right");
        let mut hooks = None;
        let checked = check_response(status, &headers).and_then(|mut status| {
            hooks = self.hooks.take();
            if let Some(h) = hooks.as_mut() {
                let c = h.after(&mut status, &mut headers, len, &done.actor().app.log);
                if !c.enabled {
                    self.encoding = None;
                }
                headers.check_fields()?;
            }
            Ok(status)
        });
        let status = match checked {
            Ok(status) => status,
            Err(why) => {
                let conn = done.actor().clone();
                slog::error!(conn.app.log, "invalid response from a handler; sending 500 instead"; "error" => &why);
                self.done = Some(done);
                // Their done-hooks see the 500 (their after-hooks have
                // run, and do not again).
                if hooks.is_some() {
                    self.hooks = hooks;
                }
                let r = Response::plain(500);
                self.send(r.status, r.headers, r.body);
                return crate::http::stream::closed(conn);
            }
        };
        // A streamed body the handler has not read to its end closes the
        // connection after the stream, as after any answer (`send`).
        let body_closes = self
            .stream
            .as_ref()
            .is_some_and(BodyStream::closes_after_answer);
        crate::http::stream::start(
            done,
            crate::http::stream::Start {
                status,
                headers,
                len,
                version: self.version,
                head: self.head,
                keep_alive: self.keep_alive && !body_closes,
                encoding: self.encoding,
                hooks,
            },
        )
    }

    fn send(&mut self, mut status: u16, mut headers: Headers, mut body: Vec<u8>) {
        let Some(done) = self.done.take() else { return };
        let conn = done.actor();
        if status == 405 && !headers.contains("allow") {
            if let Some(allow) = self.allow.take() {
                headers.append("Allow", allow);
            }
        }
        let mut hooks = self.hooks.take();
        let mut encoding = self.encoding;
        let mut min_compress_len = compress::MIN_COMPRESS_LEN;
        if let Some(h) = hooks.as_mut() {
            let c = h.after(
                &mut status,
                &mut headers,
                Some(body.len() as u64),
                &conn.app.log,
            );
            if !c.enabled {
                encoding = None;
            }
            min_compress_len = c.min_len;
            if let Err(why) = headers.check_fields() {
                slog::error!(conn.app.log, "invalid response field set by middleware; sending 500 instead"; "error" => &why);
                let r = Response::plain(500);
                (status, headers, body) = (r.status, r.headers, r.body);
                h.set_status(500);
            }
        }
        let body_len = if self.head || !status::allows_body(status) {
            0
        } else {
            body.len() as u64
        };
        let mut close =
            !self.keep_alive || headers.has_token("connection", "close") || conn.app.is_draining();
        if let Some(stream) = &self.stream {
            close |= stream.closes_after_answer();
        }
        fault_scope!(conn.remote);
        let encoded = {
            // Encoding is natron's code (and flate2's) on user data: a panic
            // in it is a natron bug, which must neither leave the request
            // unanswered (its connection would wait for the answer forever)
            // nor unwind into the handler that called `respond`.
            catch_unwind(AssertUnwindSafe(|| {
                fault_point!(HttpEncode);
                serialize_with(
                    status,
                    headers,
                    body,
                    self.version,
                    self.head,
                    encoding.map(|e| (e, min_compress_len)),
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
        if let Some(stream) = self.stream.take() {
            // After the response is posted: the IO actor drops the rest of
            // the body knowing whether the answer keeps the connection.
            stream.abandon();
        }
        // After the response is queued: the next event of this connection
        // cannot run before it.
        let hooks = hooks.map(|h| (h, conn.app.log.clone()));
        drop(done);
        if let Some((h, log)) = hooks {
            h.done(body_len, true, &log);
        }
    }

    /// The request became a WebSocket: the `101` is the response its
    /// done-hooks see (the after-hooks do not: natron writes that head).
    pub(crate) fn upgraded(&mut self, log: &slog::Logger) {
        if let Some(mut h) = self.hooks.take() {
            h.set_status(101);
            h.done(0, true, log);
        }
    }

    /// Answers for a handler that did not (see [`crate::Handler`]).
    pub(crate) fn answer_unanswered(self, why: Unanswered) {
        let Some(done) = self.done.as_ref() else {
            return;
        };
        let log = done.actor().app.log.clone();
        // A streamed body that failed (too large, malformed, stalled) is
        // the likely reason, and its status the better answer than 500.
        let body_failure = self.stream.as_ref().and_then(BodyStream::failure);
        let response = match (why, body_failure) {
            (Unanswered::Failed(e), Some(f)) if e.status() == 500 && e.cause().is_some() => {
                slog::debug!(log, "handler failed reading the request body"; "error" => %e);
                Response::new(
                    f.status(),
                    [("Content-Type", "text/plain; charset=utf-8")],
                    f.reason(),
                )
            }
            (Unanswered::Dropped | Unanswered::Panicked, Some(f)) => Response::new(
                f.status(),
                [("Content-Type", "text/plain; charset=utf-8")],
                f.reason(),
            ),
            (Unanswered::Failed(e), _) => {
                if e.status() >= 500 {
                    slog::error!(log, "handler failed"; "error" => %e);
                } else {
                    slog::debug!(log, "handler failed"; "error" => %e);
                }
                e.into_response()
            }
            (why, _) => {
                let reason = if let Unanswered::Panicked = why {
                    "handler panicked"
                } else {
                    "handler dropped the request without responding"
                };
                slog::error!(log, "request not answered, sending 500"; "reason" => reason);
                match &self.error_handler {
                    // The error handler is user code: if it panics too, fall back.
                    Some(h) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h(reason)))
                        .unwrap_or_else(|_| Response::plain(500)),
                    None => Response::plain(500),
                }
            }
        };
        self.respond(response.status, response.headers, response.body);
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
        let conn = done.actor().clone();
        // Dropped while its handler runs (a `?`, a panic unwinding): the
        // connection actor answers it when the handler returns, from its
        // `Err` if it returns one.
        let parked = Responder {
            done: self.done.take(),
            keep_alive: self.keep_alive,
            version: self.version,
            head: self.head,
            encoding: self.encoding,
            error_handler: self.error_handler.take(),
            allow: self.allow.take(),
            stream: self.stream.take(),
            hooks: self.hooks.take(),
        };
        if let Some(parked) = conn.park_unanswered(parked) {
            // Its handler has returned: nobody else will answer it.
            let why = if std::thread::panicking() {
                Unanswered::Panicked
            } else {
                Unanswered::Dropped
            };
            parked.answer_unanswered(why);
        }
    }
}

/// The status as a final code of RFC 9110 §15 (not `1xx`, below 600),
/// and the fields valid (§5.1, §5.5); else what is wrong, for the log.
fn check_response(status: impl IntoStatus, headers: &Headers) -> Result<u16, String> {
    status
        .into_status()
        .map_err(|e| e.to_string())
        .and_then(|s| {
            if s.is_informational() {
                Err(format!(
                    "{} is informational, not a final response (RFC 9110 §15.2)",
                    s.as_u16()
                ))
            } else if s.as_u16() >= 600 {
                Err(format!(
                    "{} is outside 100..=599 (RFC 9110 §15)",
                    s.as_u16()
                ))
            } else {
                Ok(s.as_u16())
            }
        })
        .and_then(|s| headers.check_fields().map(|()| s))
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

/// Appends a response head's start: the status line (RFC 9112 §4), the
/// fields, and `Date` unless given (RFC 9110 §6.6.1). The framing and
/// `Connection` fields are the caller's. Shared by whole responses and
/// streams so both write heads the same way.
pub(crate) fn write_head_start(out: &mut Vec<u8>, status: u16, headers: &Headers) {
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, status as usize);
    out.push(b' ');
    out.extend_from_slice(status::reason(status).as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers.iter() {
        // Header injection guard, behind `check_response`'s (which makes a
        // bad field a logged 500): a CR or LF would split the response,
        // so such a field is never written.
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
        date::write_now(out);
        out.extend_from_slice(b"\r\n");
    }
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
    headers: Headers,
    body: Vec<u8>,
    version: Version,
    head: bool,
    encoding: Option<Encoding>,
    close: bool,
) -> Vec<u8> {
    let encoding = encoding.map(|e| (e, compress::MIN_COMPRESS_LEN));
    serialize_with(status, headers, body, version, head, encoding, close)
}

/// [`serialize`], compressing bodies of at least the given length.
fn serialize_with(
    status: u16,
    mut headers: Headers,
    mut body: Vec<u8>,
    version: Version,
    head: bool,
    encoding: Option<(Encoding, usize)>,
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
    if let Some((enc, min_len)) = encoding {
        if has_body
            && body.len() >= min_len
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
    write_head_start(&mut out, status, &headers);
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
