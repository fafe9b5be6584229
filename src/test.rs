//! An in-process test client: call a handler or a [`Router`](crate::Router)
//! as a server would, without sockets, and look at the response.
//!
//! ```
//! use natron::{test::TestClient, Request, Router};
//!
//! let mut router = Router::new();
//! router.post("/echo", |req: Request| {
//!     let body = req.body().to_vec();
//!     req.respond(200, [("Content-Type", "text/plain")], body)
//! });
//! let client = TestClient::new(router);
//! let res = client.post("/echo").body("hi").send().unwrap();
//! assert_eq!(res.status, 200);
//! assert_eq!(res.header("content-type"), Some("text/plain"));
//! assert_eq!(res.text(), "hi");
//! assert_eq!(client.get("/nope").send().unwrap().status, 404);
//! ```
//!
//! What runs is what runs in a server: the request is written as HTTP/1.1
//! bytes and read by natron's own parser (so a bad header or an oversized
//! body is refused exactly as on the wire, by the limits of the
//! [`ServerBuilder`] given to [`TestClient::with_server`]); the handler
//! runs on a worker pool of the client's own, as the connection actor's
//! event; its answer — `respond`, a stream, `respond_reader`,
//! `respond_seekable`, an event stream, from any thread — is serialised by
//! natron and taken by the calling thread, which stands in for the IO
//! thread and parses it. Each `send` is a new connection. The only things
//! that differ from a socket: the client's address is `127.0.0.1:0`, and a
//! WebSocket upgrade is not spoken ([`TestError::Upgraded`]).
//!
//! A streamed body is collected to its end; a stream that does not end
//! within the timeout, like a handler that never answers, is
//! [`TestError::Timeout`] (default 10 s, [`TestClient::timeout`]).
//!
//! So an endless stream, such as an event stream fed by a
//! [`PubSub`](crate::PubSub) topic, is tested with a short timeout: the
//! `Timeout` carries what had been written, as raw HTTP (head and chunk
//! framing included). Publish once the handler has subscribed:
//!
//! ```
//! use natron::test::{TestClient, TestError};
//! use natron::{PubSub, Request};
//! use std::{sync::mpsc, time::Duration};
//!
//! let hub = PubSub::new();
//! let feed = hub.clone();
//! let (subscribed, on_subscribe) = mpsc::channel();
//! let client = TestClient::new(move |req: Request| {
//!     let events = req.respond_event_stream(());
//!     let _ = feed.subscribe_events(&events, "news"); // held open by the hub
//!     let _ = subscribed.send(());
//! })
//! .timeout(Duration::from_secs(1));
//! let res = std::thread::scope(|s| {
//!     let res = s.spawn(|| client.get("/events").send());
//!     on_subscribe.recv_timeout(Duration::from_secs(10)).unwrap();
//!     assert_eq!(hub.publish("news", "extra!"), 1);
//!     res.join().unwrap()
//! });
//! let Err(TestError::Timeout { written, .. }) = res else { panic!("{res:?}") };
//! assert!(written.starts_with("HTTP/1.1 200 OK\r\n"));
//! assert!(written.contains("data: extra!\n\n"));
//! ```

use crate::app::App;
use crate::handler::Handler;
use crate::http::Headers;
use crate::io::inproc::{exchange, ExchangeError};
use crate::{Server, ServerBuilder};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Sends requests to one handler in-process; see the [module
/// documentation](self). `Sync`: tests may share one across threads.
pub struct TestClient {
    app: Arc<App>,
    /// In a `Mutex` only for `Sync`: touched at drop.
    pool: std::sync::Mutex<Option<crate::pool::Pool>>,
    timeout: Duration,
}

impl fmt::Debug for TestClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestClient")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl TestClient {
    /// A client for `handler` with the server's default settings.
    ///
    /// ```
    /// let client = natron::test::TestClient::new(|req: natron::Request| {
    ///     req.respond(204, (), "")
    /// });
    /// assert_eq!(client.get("/").send().unwrap().status, 204);
    /// ```
    ///
    /// # Panics
    ///
    /// If the worker threads cannot be started.
    pub fn new(handler: impl Handler) -> TestClient {
        TestClient::with_server(Server::builder().handler(handler))
    }

    /// A client for the server `builder` would build (its handler, limits,
    /// logger, compression...). Nothing listens.
    ///
    /// ```
    /// use natron::{test::TestClient, Server};
    ///
    /// let client = TestClient::with_server(
    ///     Server::builder()
    ///         .max_body_len(4)
    ///         .handler(|req: natron::Request| req.respond(200, (), "")),
    /// );
    /// assert_eq!(client.post("/").body("too long").send().unwrap().status, 413);
    /// ```
    ///
    /// # Panics
    ///
    /// If the worker threads cannot be started, or if the builder's
    /// settings are invalid (an entry of
    /// [`allowed_origins`](ServerBuilder::allowed_origins) that is not an
    /// origin): where `serve` would return `InvalidInput`, a test must not
    /// go on with other settings than the server's.
    ///
    /// ```should_panic
    /// # use natron::{test::TestClient, Server};
    /// TestClient::with_server(Server::builder().allowed_origins(["not an origin"]));
    /// ```
    pub fn with_server(builder: ServerBuilder) -> TestClient {
        let server = builder.build();
        if let Some(e) = &server.app().config.invalid {
            panic!("TestClient::with_server: invalid server settings: {e}");
        }
        let app = server.app().clone();
        let pool = crate::pool::Pool::start(app.clone()).expect("start the worker threads");
        TestClient {
            app,
            pool: std::sync::Mutex::new(Some(pool)),
            timeout: Duration::from_secs(10),
        }
    }

    /// The server's shared state of type `T` (registered with
    /// [`ServerBuilder::state`]), the very value its handlers get, so a
    /// test can look at what they changed or act on it (publish to a
    /// [`PubSub`](crate::PubSub) hub); `None` if none was registered.
    ///
    /// ```
    /// use natron::{test::TestClient, Error, Request, Server};
    /// use std::sync::Mutex;
    ///
    /// fn add(req: Request) -> Result<(), Error> {
    ///     req.state::<Mutex<Vec<String>>>()?.lock().unwrap().push(req.path().to_owned());
    ///     req.respond(204, (), "");
    ///     Ok(())
    /// }
    /// let client = TestClient::with_server(
    ///     Server::builder().state(Mutex::new(Vec::<String>::new())).handler(add),
    /// );
    /// client.post("/ada").send().unwrap();
    /// let seen = client.state::<Mutex<Vec<String>>>().unwrap();
    /// assert_eq!(*seen.lock().unwrap(), ["/ada"]);
    /// assert!(client.state::<u8>().is_none());
    /// ```
    pub fn state<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        self.app.config.states.find()
    }

    /// How long `send` waits for a whole response (default 10 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// let client = natron::test::TestClient::new(|_req: natron::Request| {
    ///     std::mem::forget(_req); // never answered
    /// })
    /// .timeout(Duration::from_millis(50));
    /// assert!(client.get("/").send().is_err());
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> TestClient {
        self.timeout = timeout;
        self
    }

    /// A request of `method` for `target` (`/path?query`), to complete
    /// with [`TestRequest::header`] and [`TestRequest::body`] and
    /// [`send`](TestRequest::send).
    ///
    /// ```
    /// let client = natron::test::TestClient::new(|req: natron::Request| {
    ///     let m = req.method().to_owned();
    ///     req.respond(200, (), m)
    /// });
    /// assert_eq!(client.request("PURGE", "/").send().unwrap().text(), "PURGE");
    /// ```
    pub fn request(&self, method: &str, target: &str) -> TestRequest<'_> {
        TestRequest {
            client: self,
            method: method.to_owned(),
            target: target.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A `GET` request: see [`TestClient::request`].
    ///
    /// ```
    /// # let client = natron::test::TestClient::new(|r: natron::Request| r.respond(200, (), "x"));
    /// assert_eq!(client.get("/").send().unwrap().text(), "x");
    /// ```
    pub fn get(&self, target: &str) -> TestRequest<'_> {
        self.request("GET", target)
    }

    /// A `HEAD` request: see [`TestClient::request`]. The response has
    /// the `GET` response's fields and an empty body.
    ///
    /// ```
    /// # let client = natron::test::TestClient::new(|r: natron::Request| r.respond(200, (), "x"));
    /// let res = client.head("/").send().unwrap();
    /// assert_eq!((res.header("content-length"), res.body.len()), (Some("1"), 0));
    /// ```
    pub fn head(&self, target: &str) -> TestRequest<'_> {
        self.request("HEAD", target)
    }

    /// A `POST` request: see [`TestClient::request`].
    ///
    /// ```
    /// # let client = natron::test::TestClient::new(|r: natron::Request| { let n = r.body().len(); r.respond(200, (), n.to_string()) });
    /// assert_eq!(client.post("/").body("abc").send().unwrap().text(), "3");
    /// ```
    pub fn post(&self, target: &str) -> TestRequest<'_> {
        self.request("POST", target)
    }

    /// A `PUT` request: see [`TestClient::request`].
    ///
    /// ```
    /// # let client = natron::test::TestClient::new(|r: natron::Request| { let m = r.method().to_owned(); r.respond(200, (), m) });
    /// assert_eq!(client.put("/").send().unwrap().text(), "PUT");
    /// ```
    pub fn put(&self, target: &str) -> TestRequest<'_> {
        self.request("PUT", target)
    }

    /// A `DELETE` request: see [`TestClient::request`].
    ///
    /// ```
    /// # let client = natron::test::TestClient::new(|r: natron::Request| { let m = r.method().to_owned(); r.respond(200, (), m) });
    /// assert_eq!(client.delete("/").send().unwrap().text(), "DELETE");
    /// ```
    pub fn delete(&self, target: &str) -> TestRequest<'_> {
        self.request("DELETE", target)
    }
}

impl Drop for TestClient {
    fn drop(&mut self) {
        let pool = self
            .pool
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(pool) = pool {
            // A handler that never returns is left behind after a moment.
            pool.shutdown(Instant::now() + Duration::from_secs(1));
        }
    }
}

/// A request being built; [`send`](TestRequest::send) it.
#[derive(Debug)]
pub struct TestRequest<'a> {
    client: &'a TestClient,
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl TestRequest<'_> {
    /// Adds a header field. `Host: test` is sent unless one is given;
    /// `Content-Length` is set from the body.
    ///
    /// ```
    /// # let client = natron::test::TestClient::new(|r: natron::Request| { let v = r.header("x-a").unwrap_or("").to_owned(); r.respond(200, (), v) });
    /// assert_eq!(client.get("/").header("X-A", "1").send().unwrap().text(), "1");
    /// ```
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body.
    ///
    /// ```
    /// # let client = natron::test::TestClient::new(|r: natron::Request| { let b = r.body().to_vec(); r.respond(200, (), b) });
    /// assert_eq!(client.post("/").body(vec![1, 2]).send().unwrap().body, [1, 2]);
    /// ```
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sends the request and waits for the whole response (a streamed
    /// body to its end).
    ///
    /// # Errors
    ///
    /// [`TestError::Timeout`] if no whole response came within the
    /// client's timeout (a handler that never answers, a stream that never
    /// ends); [`TestError::Upgraded`] for a WebSocket upgrade;
    /// [`TestError::Invalid`] if a name or value cannot be sent (CR, LF)
    /// or the answer does not parse (a natron bug).
    ///
    /// ```
    /// # let client = natron::test::TestClient::new(|r: natron::Request| r.respond(200, (), "ok"));
    /// let res = client.get("/").send()?;
    /// assert_eq!(res.status, 200);
    /// # Ok::<(), natron::test::TestError>(())
    /// ```
    pub fn send(self) -> Result<TestResponse, TestError> {
        let mut bytes = format!("{} {} HTTP/1.1\r\n", self.method, self.target).into_bytes();
        let bad = |s: &str| s.bytes().any(|b| b == b'\r' || b == b'\n');
        if bad(&self.method) || bad(&self.target) || self.target.contains(' ') {
            return Err(TestError::Invalid("method or target".to_owned()));
        }
        let mut has_host = false;
        for (name, value) in &self.headers {
            if bad(name) || bad(value) {
                return Err(TestError::Invalid(format!("header {name:?}")));
            }
            if name.eq_ignore_ascii_case("content-length") {
                continue;
            }
            has_host |= name.eq_ignore_ascii_case("host");
            bytes.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        if !has_host {
            bytes.extend_from_slice(b"Host: test\r\n");
        }
        if !self.body.is_empty() || !matches!(self.method.as_str(), "GET" | "HEAD") {
            bytes.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        }
        bytes.extend_from_slice(b"\r\n");
        bytes.extend_from_slice(&self.body);
        let written = match exchange(&self.client.app, bytes, self.client.timeout) {
            Ok(w) => w,
            Err(ExchangeError::Timeout(written)) => {
                return Err(TestError::Timeout {
                    after: self.client.timeout,
                    written: String::from_utf8_lossy(&written).into_owned(),
                })
            }
            Err(ExchangeError::Upgraded) => return Err(TestError::Upgraded),
            Err(ExchangeError::Io(e)) => return Err(TestError::Invalid(e.to_string())),
        };
        parse_response(&written, self.method == "HEAD").map_err(TestError::Invalid)
    }
}

/// A whole response.
#[derive(Debug, Clone)]
pub struct TestResponse {
    /// The status code.
    pub status: u16,
    /// The fields as sent (natron's `Date`, `Content-Length`, ...
    /// included).
    pub headers: Headers,
    /// The body: de-chunked, not decompressed (send no `Accept-Encoding`
    /// to get it plain).
    pub body: Vec<u8>,
}

impl TestResponse {
    /// The first value of header `name` (case-insensitive).
    ///
    /// ```
    /// # let client = natron::test::TestClient::new(|r: natron::Request| r.respond(200, [("X-A", "1")], ""));
    /// assert_eq!(client.get("/").send().unwrap().header("x-a"), Some("1"));
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// The body as text (invalid UTF-8 replaced with U+FFFD).
    ///
    /// ```
    /// # let client = natron::test::TestClient::new(|r: natron::Request| r.respond(200, (), "hé"));
    /// assert_eq!(client.get("/").send().unwrap().text(), "hé");
    /// ```
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Why [`TestRequest::send`] has no response.
#[derive(Debug)]
pub enum TestError {
    /// No whole response within the client's timeout.
    Timeout {
        /// The timeout.
        after: Duration,
        /// What had been written by then (a head, part of a stream), as
        /// text (invalid UTF-8 replaced with U+FFFD).
        written: String,
    },
    /// The handler upgraded to a WebSocket.
    Upgraded,
    /// The request could not be sent, or the answer did not parse.
    Invalid(String),
}

impl fmt::Display for TestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TestError::Timeout { after, written } => write!(
                f,
                "no whole response within {after:?} (the handler never answered, or its stream never ended); {} bytes written",
                written.len()
            ),
            TestError::Upgraded => f.write_str("the handler upgraded to a WebSocket"),
            TestError::Invalid(why) => write!(f, "invalid exchange: {why}"),
        }
    }
}

impl std::error::Error for TestError {}

/// One HTTP/1.1 response (RFC 9112 §6.3 framing).
fn parse_response(bytes: &[u8], head: bool) -> Result<TestResponse, String> {
    let mut fields = [httparse::EMPTY_HEADER; 64];
    let mut res = httparse::Response::new(&mut fields);
    let start = match res.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err("the response was cut short".to_owned()),
        Err(e) => return Err(format!("the response does not parse: {e}")),
    };
    let status = res.code.unwrap_or(0);
    let mut headers = Headers::new();
    for h in res.headers.iter() {
        headers.append(h.name, String::from_utf8_lossy(h.value));
    }
    let rest = &bytes[start..];
    let no_body = head || status < 200 || status == 204 || status == 304;
    let body = if no_body {
        Vec::new()
    } else if headers.has_token("transfer-encoding", "chunked") {
        dechunk(rest)?
    } else if let Some(len) = headers.get("content-length") {
        let len: usize = len.parse().map_err(|_| "bad Content-Length".to_owned())?;
        rest.get(..len).ok_or("the body was cut short")?.to_vec()
    } else {
        rest.to_vec()
    };
    Ok(TestResponse {
        status,
        headers,
        body,
    })
}

/// A chunked body's data (RFC 9112 §7.1); trailers are dropped.
fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("a chunk was cut short")?;
        let line = std::str::from_utf8(&rest[..line_end]).map_err(|e| e.to_string())?;
        let size = line.split(';').next().unwrap_or("").trim();
        let size =
            usize::from_str_radix(size, 16).map_err(|_| format!("bad chunk size {line:?}"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        let data = rest.get(..size).ok_or("a chunk was cut short")?;
        body.extend_from_slice(data);
        rest = rest.get(size + 2..).ok_or("a chunk was cut short")?;
    }
}
