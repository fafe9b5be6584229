//! The hook chain a request carries in its `Responder`, and [`Wrap`].

use super::Middleware;
use crate::connection::panic_message;
use crate::handler::{Error, Handler};
use crate::http::compress::MIN_COMPRESS_LEN;
use crate::http::status::IntoStatus;
use crate::http::{Headers, InvalidStatus, Parts, Request, Response};
use std::borrow::Cow;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The request a response answers, as the after-hooks see it: a copy taken
/// when the handler was called, since the handler owns the request.
///
/// ```
/// use natron::middleware::{Middleware, RequestInfo, ResponseHead};
///
/// struct Where;
/// impl Middleware for Where {
///     fn after(&self, head: &mut ResponseHead<'_>, info: &RequestInfo) {
///         let s = format!("{} {}", info.method(), info.path());
///         head.headers_mut().set("X-Answered", s);
///     }
/// }
/// ```
#[derive(Debug)]
pub struct RequestInfo {
    method: Cow<'static, str>,
    uri: String,
    path: String,
    remote_addr: SocketAddr,
    started: Instant,
    extensions: http::Extensions,
}

impl RequestInfo {
    /// The method, e.g. `GET`.
    ///
    /// ```
    /// use natron::middleware::{Middleware, RequestInfo, ResponseHead};
    ///
    /// struct Tag;
    /// impl Middleware for Tag {
    ///     fn after(&self, head: &mut ResponseHead<'_>, info: &RequestInfo) {
    ///         if info.method() == "HEAD" {
    ///             head.headers_mut().set("X-Head", "1");
    ///         }
    ///     }
    /// }
    /// ```
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request target as sent, e.g. `/a%20b?x=1`.
    ///
    /// ```
    /// use natron::middleware::{Middleware, RequestInfo, ResponseHead};
    ///
    /// struct Tag;
    /// impl Middleware for Tag {
    ///     fn after(&self, head: &mut ResponseHead<'_>, info: &RequestInfo) {
    ///         if info.uri().contains("debug=1") {
    ///             head.headers_mut().set("X-Debug", "on");
    ///         }
    ///     }
    /// }
    /// ```
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The percent-decoded path, e.g. `/a b`.
    ///
    /// ```
    /// use natron::middleware::{Middleware, RequestInfo, ResponseHead};
    ///
    /// struct Tag;
    /// impl Middleware for Tag {
    ///     fn after(&self, head: &mut ResponseHead<'_>, info: &RequestInfo) {
    ///         if info.path().starts_with("/static/") {
    ///             head.headers_mut().set("Cache-Control", "max-age=3600");
    ///         }
    ///     }
    /// }
    /// ```
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The client's address (see [`Parts::remote_addr`]).
    ///
    /// ```
    /// use natron::middleware::{Middleware, RequestInfo, ResponseHead};
    ///
    /// struct Tag;
    /// impl Middleware for Tag {
    ///     fn after(&self, head: &mut ResponseHead<'_>, info: &RequestInfo) {
    ///         if info.remote_addr().ip().is_loopback() {
    ///             head.headers_mut().set("X-Local", "1");
    ///         }
    ///     }
    /// }
    /// ```
    pub fn remote_addr(&self) -> SocketAddr {
        self.remote_addr
    }

    /// When the outermost middleware started on this request.
    ///
    /// ```
    /// use natron::middleware::{Middleware, RequestInfo, ResponseHead};
    ///
    /// struct Tag;
    /// impl Middleware for Tag {
    ///     fn after(&self, head: &mut ResponseHead<'_>, info: &RequestInfo) {
    ///         let ms = info.started().elapsed().as_millis();
    ///         head.headers_mut().set("Server-Timing", format!("app;dur={ms}"));
    ///     }
    /// }
    /// ```
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The request's extensions as the last `before` left them (e.g. the
    /// [`RequestId`](super::RequestId)).
    ///
    /// ```
    /// use natron::middleware::{Middleware, RequestId, RequestInfo, ResponseHead};
    ///
    /// struct EchoId;
    /// impl Middleware for EchoId {
    ///     fn after(&self, head: &mut ResponseHead<'_>, info: &RequestInfo) {
    ///         if let Some(id) = info.extensions().get::<RequestId>() {
    ///             head.headers_mut().set("X-Trace-Id", id.as_str());
    ///         }
    ///     }
    /// }
    /// ```
    pub fn extensions(&self) -> &http::Extensions {
        &self.extensions
    }
}

/// A response head as the after-hooks see it, before it is sent.
///
/// natron still adds the framing fields (`Content-Length`,
/// `Transfer-Encoding`), `Connection` and `Date` after the hooks, and
/// compresses the body if the client accepts it and the hooks allow it.
///
/// ```
/// use natron::middleware::{Middleware, RequestInfo, ResponseHead};
///
/// /// Turns a 404 of an API into a JSON problem type.
/// struct ProblemType;
/// impl Middleware for ProblemType {
///     fn after(&self, head: &mut ResponseHead<'_>, info: &RequestInfo) {
///         if head.status() == 404 && info.path().starts_with("/api/") {
///             head.headers_mut().set("Link", "</problems/not-found>; rel=\"type\"");
///         }
///     }
/// }
/// ```
pub struct ResponseHead<'a> {
    pub(crate) status: &'a mut u16,
    pub(crate) headers: &'a mut Headers,
    pub(crate) body_len: Option<u64>,
    pub(crate) compress: &'a mut Compress,
}

/// Whether, and from what length, a response may be compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Compress {
    pub(crate) enabled: bool,
    /// Whole bodies shorter than this many bytes are sent as they are.
    pub(crate) min_len: usize,
}

impl Default for Compress {
    fn default() -> Self {
        Compress {
            enabled: true,
            min_len: MIN_COMPRESS_LEN,
        }
    }
}

impl ResponseHead<'_> {
    /// The status code, e.g. `200`.
    ///
    /// ```
    /// # use natron::middleware::ResponseHead;
    /// fn hook(head: &mut ResponseHead<'_>) {
    ///     if head.status() >= 500 {
    ///         head.headers_mut().set("Retry-After", "5");
    ///     }
    /// }
    /// ```
    pub fn status(&self) -> u16 {
        *self.status
    }

    /// Replaces the status.
    ///
    /// # Errors
    ///
    /// A status that is not a final code of RFC 9110 §15 (`1xx`, or
    /// outside 200..=599) is refused, and the status kept.
    ///
    /// ```
    /// # use natron::middleware::ResponseHead;
    /// fn hide_missing(head: &mut ResponseHead<'_>) {
    ///     if head.status() == 403 {
    ///         head.set_status(404).unwrap();
    ///     }
    /// }
    /// ```
    pub fn set_status(&mut self, status: impl IntoStatus) -> Result<(), InvalidStatus> {
        let s = status.into_status()?;
        if s.is_informational() || s.as_u16() >= 600 {
            return Err(InvalidStatus(i64::from(s.as_u16())));
        }
        *self.status = s.as_u16();
        Ok(())
    }

    /// The header fields.
    ///
    /// ```
    /// # use natron::middleware::ResponseHead;
    /// fn hook(head: &mut ResponseHead<'_>) {
    ///     if !head.headers().contains("cache-control") {
    ///         head.headers_mut().set("Cache-Control", "no-store");
    ///     }
    /// }
    /// ```
    pub fn headers(&self) -> &Headers {
        self.headers
    }

    /// The header fields, to change. A field made invalid here (RFC 9110
    /// §5.5: a CR, LF or NUL in a value) turns the response into a `500`,
    /// as an invalid field from a handler does.
    ///
    /// ```
    /// # use natron::middleware::ResponseHead;
    /// fn hook(head: &mut ResponseHead<'_>) {
    ///     head.headers_mut().set("X-Frame-Options", "DENY");
    /// }
    /// ```
    pub fn headers_mut(&mut self) -> &mut Headers {
        self.headers
    }

    /// The body's length in bytes when known at this point: the whole
    /// body of [`respond`](crate::Request::respond), or the announced
    /// length of a sized stream; `None` for a stream of unknown length.
    ///
    /// ```
    /// # use natron::middleware::ResponseHead;
    /// fn hook(head: &mut ResponseHead<'_>) {
    ///     if head.body_len() == Some(0) {
    ///         head.headers_mut().set("X-Empty", "1");
    ///     }
    /// }
    /// ```
    pub fn body_len(&self) -> Option<u64> {
        self.body_len
    }

    /// Allows (the default) or forbids compressing this response. Only
    /// what the client accepts (`Accept-Encoding`) and natron's rules
    /// (not already encoded, a compressible type) are compressed at all.
    ///
    /// ```
    /// # use natron::middleware::ResponseHead;
    /// fn hook(head: &mut ResponseHead<'_>) {
    ///     // Never compress what might carry secrets next to attacker input (BREACH).
    ///     if head.headers().contains("set-cookie") {
    ///         head.set_compression(false);
    ///     }
    /// }
    /// ```
    pub fn set_compression(&mut self, enabled: bool) {
        self.compress.enabled = enabled;
    }

    /// Whole bodies shorter than `bytes` are not compressed (default
    /// 860: about one packet, below which compression saves nothing).
    /// Streams of unknown length are compressed whatever their size.
    ///
    /// ```
    /// # use natron::middleware::ResponseHead;
    /// fn hook(head: &mut ResponseHead<'_>) {
    ///     head.set_min_compress_len(256);
    /// }
    /// ```
    pub fn set_min_compress_len(&mut self, bytes: usize) {
        self.compress.min_len = bytes;
    }
}

/// How a response ended, for [`Middleware::done`].
///
/// ```
/// use natron::middleware::{Middleware, Summary};
///
/// struct Metrics;
/// impl Middleware for Metrics {
///     fn done(&self, s: &Summary<'_>) {
///         let ms = s.duration.as_secs_f64() * 1e3;
///         println!("{} {} {} {} B {ms:.1} ms", s.info.method(), s.info.path(), s.status, s.body_len);
///     }
/// }
/// ```
#[derive(Debug)]
pub struct Summary<'a> {
    /// The status sent.
    pub status: u16,
    /// Body bytes the handler sent, before compression and framing; `0`
    /// for a response without a body (`HEAD`, `204`, `304`).
    pub body_len: u64,
    /// From [`RequestInfo::started`] until the response (or its last
    /// chunk) was handed to the connection.
    pub duration: Duration,
    /// `false` when a stream was cut short: the client left, it timed out
    /// or the server stopped.
    pub completed: bool,
    /// The request.
    pub info: &'a RequestInfo,
    pub(crate) log: &'a slog::Logger,
}

impl Summary<'_> {
    /// The server's logger (see [`ServerBuilder::logger`](crate::ServerBuilder::logger)).
    ///
    /// ```
    /// use natron::middleware::{Middleware, Summary};
    ///
    /// struct SlowLog;
    /// impl Middleware for SlowLog {
    ///     fn done(&self, s: &Summary<'_>) {
    ///         if s.duration.as_secs() >= 1 {
    ///             slog::warn!(s.logger(), "slow request"; "path" => s.info.path());
    ///         }
    ///     }
    /// }
    /// ```
    pub fn logger(&self) -> &slog::Logger {
        self.log
    }
}

/// The after-hooks of one request, carried by its `Responder` (boxed: a
/// request without middleware carries a null pointer).
pub(crate) struct Hooks {
    /// Outermost first; the hooks run from the end.
    chain: Vec<Arc<dyn Middleware>>,
    info: RequestInfo,
    compress: Compress,
    status: u16,
    /// The after-hooks have run: a head that turned into a `500` after
    /// them is not shown to them again.
    after_ran: bool,
}

impl Hooks {
    fn new(parts: &Parts) -> Hooks {
        Hooks {
            chain: Vec::new(),
            info: RequestInfo {
                method: parts.method.clone(),
                uri: parts.uri.clone(),
                path: parts.path().to_owned(),
                remote_addr: parts.remote_addr,
                started: Instant::now(),
                extensions: http::Extensions::new(),
            },
            compress: Compress::default(),
            status: 0,
            after_ran: false,
        }
    }

    /// Runs the after-hooks on a head; returns the compression they allow.
    pub(crate) fn after(
        &mut self,
        status: &mut u16,
        headers: &mut Headers,
        body_len: Option<u64>,
        log: &slog::Logger,
    ) -> Compress {
        if self.after_ran {
            self.status = *status;
            return self.compress;
        }
        self.after_ran = true;
        let mut compress = self.compress;
        for m in self.chain.iter().rev() {
            let mut head = ResponseHead {
                status,
                headers,
                body_len,
                compress: &mut compress,
            };
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| m.after(&mut head, &self.info))) {
                slog::error!(log, "middleware after-hook panicked; skipped"; "panic" => panic_message(&panic));
            }
        }
        self.status = *status;
        self.compress = compress;
        compress
    }

    /// Runs the done-hooks: the response has been handed over.
    pub(crate) fn done(self, body_len: u64, completed: bool, log: &slog::Logger) {
        let summary = Summary {
            status: self.status,
            body_len,
            duration: self.info.started.elapsed(),
            completed,
            info: &self.info,
            log,
        };
        for m in self.chain.iter().rev() {
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| m.done(&summary))) {
                slog::error!(log, "middleware done-hook panicked; skipped"; "panic" => panic_message(&panic));
            }
        }
    }

    /// Records a response whose head natron wrote itself (`101`).
    pub(crate) fn set_status(&mut self, status: u16) {
        self.status = status;
    }
}

/// Adds `chain`'s after-hooks to the request's responder.
fn install(req: &mut Request, chain: &[Arc<dyn Middleware>]) {
    if chain.is_empty() {
        return;
    }
    let (parts, responder) = req.split_mut();
    let hooks = responder
        .hooks
        .get_or_insert_with(|| Box::new(Hooks::new(parts)));
    hooks.chain.extend(chain.iter().cloned());
    // What the inner `before`s add is copied again by the inner wrap.
    hooks.info.extensions = parts.extensions.clone();
}

/// Runs `chain`'s before-hooks on `req` and installs the after-hooks of
/// those that ran; `None`: one rejected, and the request is answered.
pub(crate) fn run_before(chain: &[Arc<dyn Middleware>], mut req: Request) -> Option<Request> {
    for (i, m) in chain.iter().enumerate() {
        let outcome = catch_unwind(AssertUnwindSafe(|| m.before(&mut req)));
        let rejection = match outcome {
            Ok(Ok(())) => continue,
            Ok(Err(response)) => response,
            Err(panic) => {
                slog::error!(req.responder.connection().app.log, "middleware before-hook panicked; answering 500";
                    "panic" => panic_message(&panic));
                Response::plain(500)
            }
        };
        install(&mut req, &chain[..i]);
        req.respond(rejection.status, rejection.headers, rejection.body);
        return None;
    }
    install(&mut req, chain);
    Some(req)
}

/// A handler wrapped in middleware, outermost first.
///
/// ```
/// use natron::middleware::{AccessLog, Wrap};
/// use natron::{Request, Server};
///
/// let hello = Wrap::new(|req: Request| req.respond(200, (), "hello")).with(AccessLog::new());
/// let server = Server::builder().handler(hello).build();
/// # drop(server);
/// ```
pub struct Wrap<H> {
    inner: H,
    chain: Vec<Arc<dyn Middleware>>,
}

impl<H: Handler> Wrap<H> {
    /// `handler` without middleware yet.
    ///
    /// ```
    /// use natron::middleware::Wrap;
    /// use natron::Request;
    ///
    /// let plain = Wrap::new(|req: Request| req.respond(200, (), "no middleware yet"));
    /// # let _ = plain;
    /// ```
    pub fn new(handler: H) -> Wrap<H> {
        Wrap {
            inner: handler,
            chain: Vec::new(),
        }
    }

    /// Adds `m` inside the middleware added before: its `before` runs
    /// after theirs, its `after` and `done` before theirs.
    ///
    /// ```
    /// use natron::middleware::{AccessLog, RequestIds, Wrap};
    /// use natron::Request;
    ///
    /// // RequestIds runs first, so the access log line has the id.
    /// let h = Wrap::new(|req: Request| req.respond(200, (), "ok"))
    ///     .with(RequestIds::new())
    ///     .with(AccessLog::new());
    /// # let _ = h;
    /// ```
    pub fn with(mut self, m: impl Middleware) -> Wrap<H> {
        self.chain.push(Arc::new(m));
        self
    }

    pub(crate) fn from_chain(handler: H, chain: Vec<Arc<dyn Middleware>>) -> Wrap<H> {
        Wrap {
            inner: handler,
            chain,
        }
    }
}

impl<H: Handler> Handler for Wrap<H> {
    fn handle(&self, request: Request) -> Result<(), Error> {
        match run_before(&self.chain, request) {
            Some(request) => self.inner.handle(request),
            None => Ok(()),
        }
    }
}
