//! Middleware: code that runs before a handler (to reject the request or
//! add to it) and after it (to see and change the response head, and to
//! learn how the response ended).
//!
//! A [`Middleware`] has three hooks, all plain functions:
//!
//! * [`before`](Middleware::before) runs on the worker, in wrap order,
//!   before the handler: it may add to the request (typed
//!   [`extensions`](crate::Parts::extensions_mut), fields) or answer it
//!   itself by returning `Err(response)`; the handler then does not run.
//! * [`after`](Middleware::after) runs once per response, in reverse wrap
//!   order, when the response head is built, on the thread that builds it
//!   (the handler's worker, or the thread the handler moved its
//!   [`Responder`](crate::Responder) to): it may change the status, the
//!   fields and the response's compression ([`ResponseHead`]).
//! * [`done`](Middleware::done) runs once per response, in reverse wrap
//!   order, when the response has been handed to the connection: at once
//!   for a whole body, at the end of the stream for
//!   [`respond_stream`](crate::Request::respond_stream) and the other
//!   streamed responses ([`Summary`]: status, body bytes, duration).
//!
//! The after-hooks travel with the request's `Responder`, not around the
//! handler call, so they see every response: one made on another thread
//! after the handler returned, a streamed one, the `500` natron sends for a
//! handler that failed or dropped its request, the answer of a rejecting
//! `before`. A request without middleware carries no hooks and pays
//! nothing for them (`benches/allocs.rs`).
//!
//! Responses natron makes before a request reaches a handler (the IO
//! actor's `400`, `408`, `413`, `431` for a request it could not read) do
//! not pass through middleware.
//!
//! # Where middleware goes
//!
//! | wrap                                   | runs for                                     |
//! |----------------------------------------|----------------------------------------------|
//! | [`ServerBuilder::middleware`](crate::ServerBuilder::middleware) | every request, before routing      |
//! | [`Router::wrap`](crate::Router::wrap)  | every request the router gets, before routing (404 and 405 too) |
//! | [`Router::group`](crate::Router::group)| the group's routes, after routing (path parameters are set) |
//! | [`Wrap`]                               | one handler                                  |
//!
//! Wraps nest: the outermost `before` runs first and its `after` and
//! `done` last. When a `before` rejects, the `after` and `done` hooks of
//! the middleware outside it (those whose `before` ran) still run for the
//! rejection; its own and those inside it do not.
//!
//! # Built-in pieces
//!
//! [`AccessLog`], [`Cors`], [`RequestIds`] (with the [`RequestId`]
//! extension), [`Compression`].
//!
//! ```
//! use natron::middleware::{AccessLog, Cors, RequestIds};
//! use natron::{Request, Router, Server};
//!
//! let mut router = Router::new();
//! router
//!     .wrap(RequestIds::new())
//!     .wrap(AccessLog::new())
//!     .wrap(Cors::new().allow_origin("https://app.example"))
//!     .get("/", |req: Request| req.respond(200, (), "hi"));
//! let server = Server::builder().handler(router).build();
//! # drop(server);
//! ```

mod access_log;
mod chain;
mod compression;
mod cors;
mod group;
mod request_id;

pub use access_log::AccessLog;
pub(crate) use chain::{run_before, Hooks};
pub use chain::{RequestInfo, ResponseHead, Summary, Wrap};
pub use compression::Compression;
pub use cors::Cors;
pub(crate) use group::Boxed;
pub use group::Group;
pub use request_id::{RequestId, RequestIds};

use crate::http::{Parts, Response};

/// Code run around handlers; see the [module documentation](self).
///
/// Every hook has a default that does nothing, so a middleware implements
/// only the ones it needs. A hook that panics is contained: a panicking
/// `before` answers `500`, a panicking `after` or `done` is skipped; each
/// is logged to the server's logger.
///
/// ```
/// use natron::middleware::{Middleware, RequestInfo, ResponseHead};
/// use natron::{Parts, Response};
///
/// /// Refuses requests without `X-Api-Key`; tags every response.
/// struct ApiKey;
///
/// impl Middleware for ApiKey {
///     fn before(&self, req: &mut Parts) -> Result<(), Response> {
///         match req.header("x-api-key") {
///             Some("s3cret") => Ok(()),
///             _ => Err(Response::new(403, (), "no key")),
///         }
///     }
///     fn after(&self, head: &mut ResponseHead<'_>, _info: &RequestInfo) {
///         head.headers_mut().set("X-Served-By", "natron");
///     }
/// }
/// ```
pub trait Middleware: Send + Sync + 'static {
    /// Runs before the handler, on the worker that runs it. Add to the
    /// request through `req` (e.g. [`Parts::extensions_mut`]).
    ///
    /// ```
    /// use natron::middleware::{Middleware, Wrap};
    /// use natron::{test::TestClient, Parts, Request, Response};
    ///
    /// /// Refuses a `POST` whose body is not JSON (RFC 9110 §15.5.16).
    /// struct JsonOnly;
    /// impl Middleware for JsonOnly {
    ///     fn before(&self, req: &mut Parts) -> Result<(), Response> {
    ///         let json = req.header("content-type").is_some_and(|t| t.starts_with("application/json"));
    ///         if req.method() == "POST" && !json {
    ///             return Err(Response::new(415, [("Accept-Post", "application/json")], ""));
    ///         }
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let client = TestClient::new(Wrap::new(|req: Request| req.respond(201, (), "")).with(JsonOnly));
    /// let refused = client.post("/").body("a=1").send().unwrap();
    /// assert_eq!(refused.status, 415);
    /// assert_eq!(refused.header("accept-post"), Some("application/json"));
    /// let json = client.post("/").header("Content-Type", "application/json").body("{}");
    /// assert_eq!(json.send().unwrap().status, 201);
    /// ```
    ///
    /// # Errors
    ///
    /// A `Response` answers the request instead of the handler; the
    /// middleware inside this one (and the handler) do not run.
    fn before(&self, req: &mut Parts) -> Result<(), Response> {
        let _ = req;
        Ok(())
    }

    /// Runs once per response when its head is built, on the thread that
    /// builds it. `info` is the request as it was when the handler was
    /// called (method, path, client, extensions).
    ///
    /// ```
    /// use natron::middleware::{Middleware, RequestInfo, ResponseHead};
    ///
    /// struct NoSniff;
    /// impl Middleware for NoSniff {
    ///     fn after(&self, head: &mut ResponseHead<'_>, _info: &RequestInfo) {
    ///         head.headers_mut().set("X-Content-Type-Options", "nosniff");
    ///     }
    /// }
    /// ```
    fn after(&self, head: &mut ResponseHead<'_>, info: &RequestInfo) {
        let _ = (head, info);
    }

    /// Runs once per response after it has been handed to the connection:
    /// at once for a whole body, when the stream ends for a streamed one
    /// (on the thread that finishes it, or a worker when the connection
    /// ended it).
    ///
    /// ```
    /// use natron::middleware::{Middleware, Summary};
    /// use std::sync::atomic::{AtomicU64, Ordering};
    ///
    /// /// Counts the body bytes served.
    /// struct Bytes(AtomicU64);
    /// impl Middleware for Bytes {
    ///     fn done(&self, s: &Summary<'_>) {
    ///         self.0.fetch_add(s.body_len, Ordering::Relaxed);
    ///     }
    /// }
    /// ```
    fn done(&self, summary: &Summary<'_>) {
        let _ = summary;
    }
}
