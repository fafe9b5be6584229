//! Routes requests to handlers by method and path.
//!
//! A [`Router`] is a [`Handler`]: build it at startup, then hand it to the
//! server like any other handler.
//!
//! ```
//! use natron::{Request, Router};
//!
//! let mut router = Router::new();
//! router
//!     .get("/", |req: Request| req.respond(200, (), "index"))
//!     .get("/users/@id", |req: Request| {
//!         let id = req.path_param("id").unwrap_or_default().to_owned();
//!         req.respond(200, (), format!("user {id}"))
//!     })
//!     .get("/static/**", |req: Request| {
//!         let file = req.path().trim_start_matches("/static/").to_owned();
//!         req.respond(200, [("Content-Type", "text/plain")], file)
//!     });
//! ```
//!
//! # Patterns
//!
//! A pattern starts with `/` and is split on `/` into segments, exactly
//! like the request's [`Parts::path`](crate::Parts::path). That path is percent-decoded
//! first, so an encoded `%2F` separates segments too. Each pattern segment
//! matches one or more path segments:
//!
//! | segment    | matches                                                  |
//! |------------|----------------------------------------------------------|
//! | `users`    | exactly the segment `users`                              |
//! | `@id`      | any one segment, captured as path parameter `id`         |
//! | `*`        | any one segment                                          |
//! | `**`       | one or more segments                                     |
//! | `*.js`, `page_*`, `a*b`, `*x*` | one segment; each `*` is any run of characters, maybe none |
//!
//! Unlike Mummy, whose router this follows otherwise, a `*` inside a
//! segment (`a*b`) is a wildcard too, not a literal `*`: a pattern cannot
//! require a literal `*` in the path.
//!
//! A segment may be empty: `/` is one empty segment and `/a/` is `a`
//! followed by an empty segment. So a trailing slash matters: `/a` and
//! `/a/` are different paths, `/a/*`, `/a/@id` and `/a/**` all match `/a/`
//! (with `*`, `@id` or `**` matching the empty segment), and none of them
//! match `/a`. This follows Mummy's router; add both routes (or redirect)
//! to accept both spellings.
//!
//! When a path can be split in several ways, each `**` takes as few
//! segments as it can, leftmost `**` first, such that the whole pattern
//! still matches. This only shows in captured parameters: `/**/x/@id/**`
//! on `/a/x/1/x/2` captures `id` = `1`, not `2`.
//!
//! Path parameters are available to the handler through
//! [`Parts::path_params`](crate::Parts::path_params) and [`Parts::path_param`](crate::Parts::path_param), in pattern order.
//!
//! # Paths
//!
//! A request whose decoded path has a `.` or `..` segment (`/static/../x`,
//! also spelled `%2e%2e`, `..%2f`, `%2f..`) is answered `400` before any
//! route is tried. RFC 3986 §5.2.4 (remove_dot_segments) has clients
//! resolve dot segments before they send a target; browsers and curl do,
//! so only a crafted request still carries one. Resolving it here instead
//! would give one resource several spellings, and a `/static/**` handler
//! must never see a `..` it could join to a directory. The error handler
//! does not run for it; the not-found handler neither.
//!
//! # Invalid patterns
//!
//! Registering a bad route is a programming error found at startup, so the
//! registration methods panic, with the pattern and the reason, when:
//!
//! - the pattern does not start with `/` (this includes the empty pattern);
//! - a `@` segment has no name, a name containing `*`, or reuses a name
//!   already captured by the same pattern;
//! - `**` is directly followed by `*`, `**` or `@name` (as in Mummy): where
//!   one ends and the other starts would be arbitrary;
//! - the method is not an HTTP token (empty, or with spaces, `/`, ...).
//!
//! # Dispatch
//!
//! Routes are tried in registration order; the first one whose pattern
//! matches the path and whose method equals the request's (methods are
//! case-sensitive) handles it. Otherwise:
//!
//! - A `HEAD` request that no `HEAD` route matches goes to the first
//!   matching `GET` route; the server drops the body of responses to `HEAD`.
//!   An explicit `HEAD` route wins over a `GET` route registered before it.
//! - If some routes match the path but none accepts the method, the
//!   method-not-allowed handler runs: by default a `text/plain` `405` with
//!   an `Allow` header listing those routes' methods (plus `HEAD` when
//!   `GET` is listed), in registration order.
//! - If no route matches the path (or the path does not start with `/`, as
//!   in `OPTIONS *`), the not-found handler runs: by default a `text/plain`
//!   `404`.
//!
//! A custom method-not-allowed handler finds the path's methods in
//! [`Request::allowed_methods`]; a `405` it sends without an `Allow` field
//! gets one with them (RFC 9110 §15.5.6 requires it).
//!
//! The error handler set with [`Router::error_handler`] is installed on
//! every request the router receives, before any of the above runs, so it
//! also covers the not-found and method-not-allowed handlers.

use crate::handler::{Error, Handler};
use crate::http::reader::BodyPlan;
use crate::http::{ErrorHandler, Request, Response};
use crate::middleware::Middleware;
use crate::websocket::{WebSocketHandler, WebSocketUpgrade};
use std::fmt;
use std::sync::Arc;

/// Routes requests to handlers by method and path pattern.
///
/// See the [module documentation](self) for the pattern grammar and the
/// dispatch rules.
pub struct Router {
    routes: Vec<Route>,
    not_found: Option<Box<dyn Handler>>,
    method_not_allowed: Option<Box<dyn Handler>>,
    error_handler: Option<ErrorHandler>,
    /// Runs before routing ([`Router::wrap`]).
    pub(crate) middleware: Vec<Arc<dyn Middleware>>,
}

struct Route {
    method: String,
    pattern: Pattern,
    handler: Box<dyn Handler>,
    body: RouteBody,
}

/// A route's own request-body settings (unset: the server's).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct RouteBody {
    stream: bool,
    max_body_len: Option<u64>,
}

/// The server's body settings, which routes may override.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ServerBody {
    pub(crate) stream: bool,
    pub(crate) max_body_len: u64,
    pub(crate) max_streamed_body_len: u64,
}

/// The routes' body settings, for the IO actors: which requests stream
/// their body and how long a body may be, decided from a head before any
/// of its body is read. A copy of the router's patterns, matched the same
/// way ([`resolve`]), so a request gets the settings of the route that
/// will handle it; built once at `ServerBuilder::handler`, read-only.
#[derive(Debug)]
pub(crate) struct BodyRules {
    routes: Vec<(String, Pattern, RouteBody)>,
}

impl BodyRules {
    /// The plan for `method target`: its route's settings, the server's
    /// (`server`: whether it streams every body, the limits of a buffered
    /// and a streamed body) for what the route leaves unset or for a
    /// 404/405.
    pub(crate) fn plan(&self, method: &str, target: &str, server: &ServerBody) -> BodyPlan {
        let (path, _) = crate::http::url::split_path(target);
        let body = match resolve(
            &self.routes,
            |(m, p, _)| (m.as_str(), p),
            method,
            path.as_str(target),
        ) {
            Resolution::Route(index, _) => self.routes[index].2,
            _ => RouteBody::default(),
        };
        let stream = body.stream || server.stream;
        let default = if stream {
            server.max_streamed_body_len
        } else {
            server.max_body_len
        };
        BodyPlan {
            stream,
            max_body_len: body.max_body_len.unwrap_or(default),
        }
    }
}

impl Router {
    /// A router with no routes, answering every request `404`.
    ///
    /// ```
    /// use natron::{test::TestClient, Router};
    ///
    /// let client = TestClient::new(Router::new());
    /// assert_eq!(client.get("/").send().unwrap().status, 404);
    /// ```
    pub fn new() -> Self {
        Router {
            routes: Vec::new(),
            not_found: None,
            method_not_allowed: None,
            error_handler: None,
            middleware: Vec::new(),
        }
    }

    /// Adds a route for `method` requests whose path matches `pattern`.
    /// `method` is compared case-sensitively (RFC 9110 §9.1); any token
    /// works, not only the methods with a shortcut below.
    ///
    /// ```
    /// use natron::{test::TestClient, Request, Router};
    ///
    /// let mut router = Router::new();
    /// router.route("PURGE", "/cache/**", |req: Request| {
    ///     let key = req.path().trim_start_matches("/cache/").to_owned();
    ///     req.respond(200, (), format!("purged {key}"))
    /// });
    /// let client = TestClient::new(router);
    /// assert_eq!(client.request("PURGE", "/cache/a/b").send().unwrap().text(), "purged a/b");
    /// // The path matches, the method does not.
    /// let res = client.get("/cache/a").send().unwrap();
    /// assert_eq!((res.status, res.header("allow")), (405, Some("PURGE")));
    /// ```
    ///
    /// # Panics
    ///
    /// If `method` is not an HTTP token or `pattern` is invalid (see the
    /// [module documentation](self)):
    ///
    /// ```should_panic
    /// natron::Router::new().route("GET", "users/@id", |_req: natron::Request| {}); // no leading `/`
    /// ```
    pub fn route(&mut self, method: &str, pattern: &str, handler: impl Handler) -> &mut Self {
        assert!(
            is_token(method),
            "invalid route method {method:?} for pattern {pattern:?}: \
             a method is a non-empty HTTP token, e.g. \"GET\""
        );
        let pattern = match Pattern::parse(pattern) {
            Ok(p) => p,
            Err(why) => panic!("invalid route pattern {pattern:?}: {why}"),
        };
        self.routes.push(Route {
            method: method.to_owned(),
            pattern,
            handler: Box::new(handler),
            body: RouteBody::default(),
        });
        self
    }

    /// Streams the request body of the route added last: its handler reads
    /// it as it arrives through [`Parts::body_reader`], with backpressure,
    /// instead of natron buffering it whole first (see [`BodyReader`] for
    /// the window, `100 Continue`, errors and what happens to a body left
    /// unread). Without [`Router::max_body_len`] a streamed body has no
    /// length limit (the server's [`max_streamed_body_len`]).
    ///
    /// Decided by natron on the IO thread from the request's head (method
    /// and path, matched as here), so it takes effect only for the router
    /// given to [`ServerBuilder::handler`] itself; a router inside a custom
    /// handler gets the server's setting
    /// ([`ServerBuilder::stream_request_bodies`]).
    ///
    /// ```
    /// use natron::{Request, Router};
    /// use std::io::Read;
    ///
    /// let mut router = Router::new();
    /// router
    ///     .post("/upload", |mut req: Request| -> Result<(), natron::Error> {
    ///         let n = std::io::copy(&mut req.body_reader(), &mut std::io::sink())?;
    ///         req.respond(200, (), format!("{n} bytes"));
    ///         Ok(())
    ///     })
    ///     .stream_body()
    ///     .max_body_len(10 << 30); // 10 GiB, else 413
    /// ```
    ///
    /// # Panics
    ///
    /// If no route was added yet.
    ///
    /// [`Parts::body_reader`]: crate::Parts::body_reader
    /// [`BodyReader`]: crate::http::BodyReader
    /// [`max_streamed_body_len`]: crate::ServerBuilder::max_streamed_body_len
    /// [`ServerBuilder::handler`]: crate::ServerBuilder::handler
    /// [`ServerBuilder::stream_request_bodies`]: crate::ServerBuilder::stream_request_bodies
    pub fn stream_body(&mut self) -> &mut Self {
        self.last_route("stream_body").body.stream = true;
        self
    }

    /// The most request-body bytes (decoded, RFC 9112 §6) the route added
    /// last accepts, buffered or streamed, instead of the server's
    /// ([`ServerBuilder::max_body_len`], 1 MiB, for a buffered body; none
    /// for a streamed one). A `Content-Length` above it is answered `413
    /// Content Too Large` before the handler runs and without reading the
    /// body (then the connection closes); a chunked body passing it is
    /// `413` when buffered, and a [`BodyReader`] error when streamed.
    ///
    /// Same scope as [`Router::stream_body`]: the router given to the
    /// server only.
    ///
    /// ```
    /// use natron::{test::TestClient, Request, Router};
    ///
    /// let mut router = Router::new();
    /// router
    ///     .post("/names", |req: Request| {
    ///         let n = req.body().len();
    ///         req.respond(200, (), format!("{n} bytes"))
    ///     })
    ///     .max_body_len(8);
    /// let client = TestClient::new(router);
    /// assert_eq!(client.post("/names").body("ada").send().unwrap().text(), "3 bytes");
    /// assert_eq!(client.post("/names").body("a".repeat(9)).send().unwrap().status, 413);
    /// ```
    ///
    /// # Panics
    ///
    /// If no route was added yet.
    ///
    /// [`ServerBuilder::max_body_len`]: crate::ServerBuilder::max_body_len
    /// [`BodyReader`]: crate::http::BodyReader
    pub fn max_body_len(&mut self, bytes: u64) -> &mut Self {
        self.last_route("max_body_len").body.max_body_len = Some(bytes);
        self
    }

    fn last_route(&mut self, what: &str) -> &mut Route {
        match self.routes.last_mut() {
            Some(route) => route,
            None => panic!("Router::{what} applies to the route added last, and there is none"),
        }
    }

    /// The routes' body settings for the IO actors, if any route has its
    /// own.
    pub(crate) fn body_rules(&self) -> Option<BodyRules> {
        if self.routes.iter().all(|r| r.body == RouteBody::default()) {
            return None;
        }
        Some(BodyRules {
            routes: self
                .routes
                .iter()
                .map(|r| (r.method.clone(), r.pattern.clone(), r.body))
                .collect(),
        })
    }

    /// Adds a `GET` route; it also serves `HEAD` unless a `HEAD` route
    /// matches (the server sends the `HEAD` response without its body,
    /// RFC 9110 §9.3.2).
    ///
    /// ```
    /// use natron::{test::TestClient, Request, Router};
    ///
    /// let mut router = Router::new();
    /// router.get("/hello/@name", |req: Request| {
    ///     let name = req.path_param("name").unwrap_or_default().to_owned();
    ///     req.respond(200, (), format!("hello {name}"))
    /// });
    /// let client = TestClient::new(router);
    /// assert_eq!(client.get("/hello/ada").send().unwrap().text(), "hello ada");
    /// let head = client.head("/hello/ada").send().unwrap();
    /// assert_eq!((head.status, head.header("content-length")), (200, Some("9")));
    /// assert!(head.body.is_empty());
    /// ```
    ///
    /// # Panics
    ///
    /// On an invalid pattern, see [`Router::route`].
    pub fn get(&mut self, pattern: &str, handler: impl Handler) -> &mut Self {
        self.route("GET", pattern, handler)
    }

    /// Adds a `HEAD` route: it wins over a `GET` route of the same path,
    /// wherever that one was registered.
    ///
    /// ```
    /// use natron::{test::TestClient, Request, Router};
    ///
    /// let mut router = Router::new();
    /// router
    ///     .get("/report", |req: Request| req.respond(200, (), "an expensive body"))
    ///     .head("/report", |req: Request| req.respond(200, [("X-Cheap", "yes")], ""));
    /// let client = TestClient::new(router);
    /// assert_eq!(client.head("/report").send().unwrap().header("x-cheap"), Some("yes"));
    /// assert_eq!(client.get("/report").send().unwrap().header("x-cheap"), None);
    /// ```
    ///
    /// # Panics
    ///
    /// On an invalid pattern, see [`Router::route`].
    pub fn head(&mut self, pattern: &str, handler: impl Handler) -> &mut Self {
        self.route("HEAD", pattern, handler)
    }

    /// Adds a `POST` route.
    ///
    /// ```
    /// use natron::{test::TestClient, Request, Router};
    ///
    /// let mut router = Router::new();
    /// router.post("/echo", |req: Request| {
    ///     let body = req.body().to_vec();
    ///     req.respond(201, (), body)
    /// });
    /// let res = TestClient::new(router).post("/echo").body("hi").send().unwrap();
    /// assert_eq!((res.status, res.text().as_str()), (201, "hi"));
    /// ```
    ///
    /// # Panics
    ///
    /// On an invalid pattern, see [`Router::route`].
    pub fn post(&mut self, pattern: &str, handler: impl Handler) -> &mut Self {
        self.route("POST", pattern, handler)
    }

    /// Adds a `PUT` route.
    ///
    /// ```
    /// use natron::{test::TestClient, Request, Router};
    ///
    /// let mut router = Router::new();
    /// router.put("/items/@id", |req: Request| {
    ///     let id = req.path_param("id").unwrap_or_default().to_owned();
    ///     req.respond(204, [("X-Stored", id)], "")
    /// });
    /// let res = TestClient::new(router).put("/items/7").body("{}").send().unwrap();
    /// assert_eq!((res.status, res.header("x-stored")), (204, Some("7")));
    /// ```
    ///
    /// # Panics
    ///
    /// On an invalid pattern, see [`Router::route`].
    pub fn put(&mut self, pattern: &str, handler: impl Handler) -> &mut Self {
        self.route("PUT", pattern, handler)
    }

    /// Adds a `DELETE` route.
    ///
    /// ```
    /// use natron::{test::TestClient, Request, Router};
    ///
    /// let mut router = Router::new();
    /// router.delete("/items/@id", |req: Request| req.respond(204, (), ""));
    /// let client = TestClient::new(router);
    /// assert_eq!(client.delete("/items/7").send().unwrap().status, 204);
    /// assert_eq!(client.get("/items/7").send().unwrap().status, 405);
    /// ```
    ///
    /// # Panics
    ///
    /// On an invalid pattern, see [`Router::route`].
    pub fn delete(&mut self, pattern: &str, handler: impl Handler) -> &mut Self {
        self.route("DELETE", pattern, handler)
    }

    /// Adds an `OPTIONS` route.
    ///
    /// ```
    /// use natron::{test::TestClient, Request, Router};
    ///
    /// let mut router = Router::new();
    /// router.options("/**", |req: Request| req.respond(204, [("Allow", "GET, OPTIONS")], ""));
    /// let res = TestClient::new(router).request("OPTIONS", "/any/path").send().unwrap();
    /// assert_eq!((res.status, res.header("allow")), (204, Some("GET, OPTIONS")));
    /// ```
    ///
    /// # Panics
    ///
    /// On an invalid pattern, see [`Router::route`].
    pub fn options(&mut self, pattern: &str, handler: impl Handler) -> &mut Self {
        self.route("OPTIONS", pattern, handler)
    }

    /// Adds a `PATCH` route.
    ///
    /// ```
    /// use natron::{test::TestClient, Request, Router};
    ///
    /// let mut router = Router::new();
    /// router.patch("/items/@id", |req: Request| {
    ///     let n = req.body().len();
    ///     req.respond(200, (), format!("{n} bytes applied"))
    /// });
    /// let client = TestClient::new(router);
    /// let res = client.request("PATCH", "/items/7").body("[]").send().unwrap();
    /// assert_eq!(res.text(), "2 bytes applied");
    /// ```
    ///
    /// # Panics
    ///
    /// On an invalid pattern, see [`Router::route`].
    pub fn patch(&mut self, pattern: &str, handler: impl Handler) -> &mut Self {
        self.route("PATCH", pattern, handler)
    }

    /// Routes `GET pattern` to a WebSocket upgrade whose events go to
    /// `handler` (instead of the server's
    /// [`websocket_handler`](crate::ServerBuilder::websocket_handler)).
    /// The upgrade request (path parameters included) is in
    /// [`WebSocket::request`](crate::WebSocket::request) at every event. A
    /// request that is not a valid upgrade is answered `400`/`403`/`426`
    /// with the reason. To attach data at upgrade, route a `GET` to a
    /// handler that calls [`Request::upgrade`].
    ///
    /// ```
    /// use natron::{Message, Router, WebSocket, WebSocketEvent};
    ///
    /// let mut router = Router::new();
    /// router.websocket("/rooms/@room", |ws: WebSocket, event: WebSocketEvent| {
    ///     if let WebSocketEvent::Message(Message::Text(t)) = event {
    ///         let room = ws.request().path_param("room").unwrap_or("");
    ///         let _ = ws.send_text(&format!("[{room}] {t}"));
    ///     }
    /// });
    /// // A plain GET (no upgrade) is told what is missing.
    /// let client = natron::test::TestClient::new(router);
    /// let res = client.get("/rooms/a").send().unwrap();
    /// assert_eq!(res.status, 400);
    /// assert_eq!(res.text(), "missing Upgrade: websocket / Connection: upgrade");
    /// ```
    ///
    /// # Panics
    ///
    /// On an invalid pattern, see [`Router::route`].
    pub fn websocket(&mut self, pattern: &str, handler: impl WebSocketHandler) -> &mut Self {
        let handler: Arc<dyn WebSocketHandler> = Arc::new(handler);
        self.get(pattern, move |req: Request| {
            // A refused upgrade has been answered with its reason.
            let _ = req.upgrade(WebSocketUpgrade::new().shared_handler(handler.clone()));
        })
    }

    /// Serves the files under `dir` at `prefix` for `GET` and `HEAD`
    /// ([`ServeDir::at`](crate::fs::ServeDir::at)): routes `prefix` (which
    /// redirects to `prefix/`) and `prefix/**`. Other methods get this
    /// router's `405`. See [`crate::fs`] for what each request gets.
    ///
    /// ```no_run
    /// let mut router = natron::Router::new();
    /// router.serve_dir("/static", "./public");
    /// ```
    ///
    /// # Panics
    ///
    /// If `prefix` does not start with `/`, or has a `.`, `..`, empty,
    /// `*` or `@` segment.
    pub fn serve_dir(&mut self, prefix: &str, dir: impl Into<std::path::PathBuf>) -> &mut Self {
        let files = Arc::new(crate::fs::ServeDir::at(prefix, dir));
        let base = prefix.trim_end_matches('/');
        assert!(
            !base.contains(['*', '@']),
            "invalid serve_dir prefix {prefix:?}: no patterns"
        );
        if !base.is_empty() {
            let f = Arc::clone(&files);
            self.get(base, move |req: Request| f.handle(req));
        }
        self.get(&format!("{base}/**"), move |req: Request| files.handle(req))
    }

    /// Replaces the default `404` for paths no route matches (and for
    /// targets that are not a path, as `OPTIONS *`).
    ///
    /// ```
    /// use natron::{test::TestClient, Request, Router};
    ///
    /// let mut router = Router::new();
    /// router
    ///     .get("/", |req: Request| req.respond(200, (), "home"))
    ///     .not_found(|req: Request| {
    ///         let path = req.path().to_owned();
    ///         req.respond(404, [("Content-Type", "text/html")], format!("<h1>No {path}</h1>"))
    ///     });
    /// let res = TestClient::new(router).get("/nope").send().unwrap();
    /// assert_eq!((res.status, res.text().as_str()), (404, "<h1>No /nope</h1>"));
    /// ```
    pub fn not_found(&mut self, handler: impl Handler) -> &mut Self {
        self.not_found = Some(Box::new(handler));
        self
    }

    /// Replaces the default `405` for paths whose routes all have other
    /// methods. The allowed methods are in [`Request::allowed_methods`], and
    /// a `405` the handler sends without an `Allow` header gets one (RFC
    /// 9110 §15.5.6).
    ///
    /// ```
    /// use natron::{test::TestClient, Request, Router};
    ///
    /// let mut router = Router::new();
    /// router
    ///     .get("/items", |req: Request| req.respond(200, (), "[]"))
    ///     .post("/items", |req: Request| req.respond(201, (), ""))
    ///     .method_not_allowed(|req: Request| {
    ///         let allowed = req.allowed_methods().unwrap_or_default().to_owned();
    ///         req.respond(405, (), format!("use one of: {allowed}"))
    ///     });
    /// let res = TestClient::new(router).delete("/items").send().unwrap();
    /// assert_eq!(res.status, 405);
    /// assert_eq!(res.text(), "use one of: GET, HEAD, POST");
    /// assert_eq!(res.header("allow"), Some("GET, HEAD, POST")); // added by the router
    /// ```
    pub fn method_not_allowed(&mut self, handler: impl Handler) -> &mut Self {
        self.method_not_allowed = Some(Box::new(handler));
        self
    }

    /// Sets the builder of the response sent when a handler panics or drops
    /// its request unanswered; it receives the reason. Without it the
    /// server's default `500` is sent. It covers this router's not-found and
    /// method-not-allowed handlers too.
    ///
    /// ```
    /// use natron::{test::TestClient, Request, Response, Router};
    ///
    /// let mut router = Router::new();
    /// router
    ///     .get("/forgets", |req: Request| drop(req)) // never answers
    ///     .error_handler(|_reason: &str| Response::new(503, (), "try again later"));
    /// let res = TestClient::new(router).get("/forgets").send().unwrap();
    /// assert_eq!((res.status, res.text().as_str()), (503, "try again later"));
    /// ```
    pub fn error_handler(
        &mut self,
        f: impl Fn(&str) -> Response + Send + Sync + 'static,
    ) -> &mut Self {
        self.error_handler = Some(Arc::new(f));
        self
    }

    /// Decides who answers `method path`, without needing a [`Request`].
    fn resolve(&self, method: &str, path: &str) -> Resolution {
        resolve(
            &self.routes,
            |r| (r.method.as_str(), &r.pattern),
            method,
            path,
        )
    }
}

/// Decides which of `routes` (method and pattern from `key`) answers
/// `method path`: the dispatch rules of the module documentation, shared by
/// the router and the IO actors' [`BodyRules`].
fn resolve<T>(
    routes: &[T],
    key: impl Fn(&T) -> (&str, &Pattern),
    method: &str,
    path: &str,
) -> Resolution {
    let Some(rest) = path.strip_prefix('/') else {
        return Resolution::NotFound;
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let mut captures = Vec::new();
    let mut get_fallback = None;
    let mut allowed: Vec<&str> = Vec::new();
    for (index, route) in routes.iter().enumerate() {
        let (route_method, pattern) = key(route);
        captures.clear();
        if !pattern.matches(&segments, &mut captures) {
            continue;
        }
        if route_method == method {
            return Resolution::Route(index, to_owned_params(&captures));
        }
        // Keep scanning: a HEAD route registered later still wins over
        // this GET route.
        if method == "HEAD" && route_method == "GET" && get_fallback.is_none() {
            get_fallback = Some((index, to_owned_params(&captures)));
        }
        if !allowed.contains(&route_method) {
            allowed.push(route_method);
        }
    }
    if let Some((index, params)) = get_fallback {
        Resolution::Route(index, params)
    } else if allowed.is_empty() {
        Resolution::NotFound
    } else {
        Resolution::MethodNotAllowed(allow_header(allowed))
    }
}

#[cfg(fuzzing)]
impl Router {
    /// [`Router::resolve`] for the fuzz targets: the handling route's index
    /// and parameters, `None` for a 404 or 405.
    pub(crate) fn fuzz_resolve(
        &self,
        method: &str,
        path: &str,
    ) -> Option<(usize, Vec<(String, String)>)> {
        match self.resolve(method, path) {
            Resolution::Route(index, params) => Some((index, params)),
            _ => None,
        }
    }
}

impl Default for Router {
    fn default() -> Self {
        Router::new()
    }
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field(
                "routes",
                &self
                    .routes
                    .iter()
                    .map(|r| format!("{} {}", r.method, r.pattern.source))
                    .collect::<Vec<_>>(),
            )
            .field("custom_not_found", &self.not_found.is_some())
            .field(
                "custom_method_not_allowed",
                &self.method_not_allowed.is_some(),
            )
            .field("custom_error_handler", &self.error_handler.is_some())
            .finish()
    }
}

impl Handler for Router {
    /// Dispatches `request`; the result is the handler's that ran.
    fn handle(&self, mut request: Request) -> Result<(), Error> {
        if let Some(error_handler) = &self.error_handler {
            request.set_error_handler(Arc::clone(error_handler));
        }
        if !self.middleware.is_empty() {
            match crate::middleware::run_before(&self.middleware, request) {
                Some(r) => request = r,
                None => return Ok(()),
            }
        }
        // After the middleware, so its after-hooks (the access log) see
        // the 400 too.
        if crate::fs::has_dot_segment(request.path()) {
            let r = Response::new(
                400,
                [("Content-Type", "text/plain")],
                "dot segment in path\n",
            );
            request.respond(r.status, r.headers, r.body);
            return Ok(());
        }
        match self.resolve(request.method(), request.path()) {
            Resolution::Route(index, params) => {
                request.path_params = params;
                self.routes[index].handler.handle(request)
            }
            Resolution::NotFound => match &self.not_found {
                Some(handler) => handler.handle(request),
                None => {
                    let r = Response::plain(404);
                    request.respond(r.status, r.headers, r.body);
                    Ok(())
                }
            },
            Resolution::MethodNotAllowed(allow) => match &self.method_not_allowed {
                Some(handler) => {
                    request.set_allowed_methods(allow);
                    handler.handle(request)
                }
                None => {
                    let mut r = Response::plain(405);
                    r.headers.set("Allow", allow);
                    request.respond(r.status, r.headers, r.body);
                    Ok(())
                }
            },
        }
    }
}

/// The outcome of routing one request.
#[derive(Debug, PartialEq)]
enum Resolution {
    /// The route at this index handles it, with these path parameters.
    Route(usize, Vec<(String, String)>),
    NotFound,
    /// The value of the `Allow` header.
    MethodNotAllowed(String),
}

fn to_owned_params(captures: &[(&str, &str)]) -> Vec<(String, String)> {
    captures
        .iter()
        .map(|&(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

fn allow_header(mut methods: Vec<&str>) -> String {
    // GET routes answer HEAD too, so HEAD is allowed wherever GET is.
    if let Some(get) = methods.iter().position(|&m| m == "GET") {
        if !methods.contains(&"HEAD") {
            methods.insert(get + 1, "HEAD");
        }
    }
    methods.join(", ")
}

/// RFC 9110 §5.6.2 `token`, the syntax of a method.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A parsed route pattern.
#[derive(Clone, Debug)]
struct Pattern {
    /// As registered, for `Debug`.
    source: String,
    segments: Vec<Segment>,
}

#[derive(Clone, Debug, PartialEq)]
enum Segment {
    Literal(String),
    /// `@name`.
    Param(String),
    /// `*`.
    Any,
    /// `**`: one or more segments.
    Multi,
    /// A segment with `*` and other characters, split on `*`: the first
    /// piece is a prefix, the last a suffix, the others must appear in
    /// order in between. Always at least two pieces.
    Glob(Vec<String>),
}

impl Pattern {
    fn parse(source: &str) -> Result<Pattern, String> {
        let Some(rest) = source.strip_prefix('/') else {
            return Err("a pattern starts with '/'".to_owned());
        };
        let mut segments = Vec::new();
        let mut names: Vec<&str> = Vec::new();
        for part in rest.split('/') {
            let segment = if part == "*" {
                Segment::Any
            } else if part == "**" {
                Segment::Multi
            } else if let Some(name) = part.strip_prefix('@') {
                if name.is_empty() {
                    return Err("'@' needs a parameter name, e.g. '@id'".to_owned());
                }
                if name.contains('*') {
                    return Err(format!("parameter name {name:?} contains '*'"));
                }
                if names.contains(&name) {
                    return Err(format!("parameter '@{name}' appears twice"));
                }
                names.push(name);
                Segment::Param(name.to_owned())
            } else if part.contains('*') {
                Segment::Glob(part.split('*').map(str::to_owned).collect())
            } else {
                Segment::Literal(part.to_owned())
            };
            if segments.last() == Some(&Segment::Multi)
                && matches!(segment, Segment::Any | Segment::Multi | Segment::Param(_))
            {
                return Err(format!(
                    "'**' cannot be followed directly by '{part}': \
                     where one ends and the other starts would be arbitrary"
                ));
            }
            segments.push(segment);
        }
        Ok(Pattern {
            source: source.to_owned(),
            segments,
        })
    }

    /// Whether the path split into `path` matches; on success `captures`
    /// holds the parameters, in pattern order.
    ///
    /// This is glob matching over segments, with `**` read as "one segment,
    /// then any number": on a mismatch only the most recent `**` is
    /// extended, which is enough (a later `**` can absorb whatever a longer
    /// earlier one would have) and keeps the cost at O(pattern × path)
    /// however many `**` there are, whatever path a client sends.
    fn matches<'p, 's>(&'p self, path: &[&'s str], captures: &mut Vec<(&'p str, &'s str)>) -> bool {
        let pattern = &self.segments;
        let (mut p, mut s) = (0, 0);
        // After the latest `**`: the pattern index that follows it, the
        // path index up to which it has swallowed, and the captures made
        // before it (those after it are redone on each retry).
        let mut resume: Option<(usize, usize, usize)> = None;
        loop {
            if p < pattern.len() {
                if s < path.len() {
                    match &pattern[p] {
                        Segment::Multi => {
                            p += 1;
                            s += 1;
                            resume = Some((p, s, captures.len()));
                            continue;
                        }
                        Segment::Param(name) => {
                            captures.push((name, path[s]));
                            p += 1;
                            s += 1;
                            continue;
                        }
                        segment if segment_matches(segment, path[s]) => {
                            p += 1;
                            s += 1;
                            continue;
                        }
                        _ => {}
                    }
                }
            } else if s == path.len() {
                return true;
            }
            match resume {
                Some((after, swallowed, kept)) if swallowed < path.len() => {
                    resume = Some((after, swallowed + 1, kept));
                    p = after;
                    s = swallowed + 1;
                    captures.truncate(kept);
                }
                _ => return false,
            }
        }
    }
}

/// Whether a one-segment pattern segment matches `segment`.
fn segment_matches(pattern: &Segment, segment: &str) -> bool {
    match pattern {
        Segment::Literal(literal) => literal == segment,
        Segment::Param(_) | Segment::Any | Segment::Multi => true,
        Segment::Glob(pieces) => glob_matches(pieces, segment),
    }
}

fn glob_matches(pieces: &[String], s: &str) -> bool {
    let (first, rest) = pieces.split_first().expect("a glob has two pieces");
    let (last, middle) = rest.split_last().expect("a glob has two pieces");
    // Checking the length first keeps prefix and suffix from overlapping:
    // `a*a` must not match `a`.
    if s.len() < first.len() + last.len()
        || !s.starts_with(first.as_str())
        || !s.ends_with(last.as_str())
    {
        return false;
    }
    let mut between = &s[first.len()..s.len() - last.len()];
    // Taking each middle piece at its leftmost occurrence leaves the most
    // room for the next ones, so no backtracking is needed.
    for piece in middle {
        match between.find(piece.as_str()) {
            Some(at) => between = &between[at + piece.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noop(_request: Request) {}

    fn parse(pattern: &str) -> Pattern {
        Pattern::parse(pattern).unwrap_or_else(|e| panic!("{pattern:?}: {e}"))
    }

    /// The parameters if `pattern` matches `path`.
    fn match_pattern(pattern: &str, path: &str) -> Option<Vec<(String, String)>> {
        let pattern = parse(pattern);
        let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
        let mut captures = Vec::new();
        pattern
            .matches(&segments, &mut captures)
            .then(|| to_owned_params(&captures))
    }

    fn matches(pattern: &str, path: &str) -> bool {
        match_pattern(pattern, path).is_some()
    }

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    /// Asserts which of `paths` `pattern` matches.
    fn check(pattern: &str, yes: &[&str], no: &[&str]) {
        for path in yes {
            assert!(matches(pattern, path), "{pattern:?} should match {path:?}");
        }
        for path in no {
            assert!(
                !matches(pattern, path),
                "{pattern:?} should not match {path:?}"
            );
        }
    }

    fn get_router(patterns: &[&str]) -> Router {
        let mut router = Router::new();
        for pattern in patterns {
            router.get(pattern, noop);
        }
        router
    }

    // Parsing.

    #[test]
    fn parses_segment_kinds() {
        let p = parse("/users/@id/*/**/*.js/page_*/a*b/*x*");
        assert_eq!(
            p.segments,
            vec![
                Segment::Literal("users".into()),
                Segment::Param("id".into()),
                Segment::Any,
                Segment::Multi,
                Segment::Glob(vec!["".into(), ".js".into()]),
                Segment::Glob(vec!["page_".into(), "".into()]),
                Segment::Glob(vec!["a".into(), "b".into()]),
                Segment::Glob(vec!["".into(), "x".into(), "".into()]),
            ]
        );
        assert_eq!(parse("/").segments, vec![Segment::Literal("".into())]);
        assert_eq!(
            parse("/a/").segments,
            vec![Segment::Literal("a".into()), Segment::Literal("".into())]
        );
        // `@` only starts a parameter at the start of a segment.
        assert_eq!(parse("/a@b").segments, vec![Segment::Literal("a@b".into())]);
    }

    #[test]
    fn rejects_invalid_patterns() {
        for (pattern, why) in [
            ("", "starts with '/'"),
            ("abc", "starts with '/'"),
            ("page.html", "starts with '/'"),
            ("/@", "needs a parameter name"),
            ("/a/@/b", "needs a parameter name"),
            ("/@a*", "contains '*'"),
            ("/@id/x/@id", "appears twice"),
            // Mummy's rejected patterns.
            ("/**/*", "'**' cannot be followed directly by '*'"),
            ("/**/**", "'**' cannot be followed directly by '**'"),
            ("/**/bad/**/**", "'**' cannot be followed directly by '**'"),
            ("/**/@id", "'**' cannot be followed directly by '@id'"),
        ] {
            match Pattern::parse(pattern) {
                Ok(p) => panic!("{pattern:?} parsed as {p:?}"),
                Err(e) => assert!(e.contains(why), "{pattern:?}: {e:?} lacks {why:?}"),
            }
        }
    }

    #[test]
    fn accepts_multi_wildcard_before_literal_or_glob() {
        for pattern in [
            "/**",
            "/**/x",
            "/x/**",
            "/**/x/**",
            "/**/*.html",
            "/**/x/@id",
            "/**/x/*",
        ] {
            parse(pattern);
        }
    }

    #[test]
    #[should_panic(expected = "invalid route pattern \"abc\": a pattern starts with '/'")]
    fn registering_an_invalid_pattern_panics() {
        Router::new().get("abc", noop);
    }

    #[test]
    #[should_panic(expected = "invalid route method \"GE T\"")]
    fn registering_an_invalid_method_panics() {
        Router::new().route("GE T", "/", noop);
    }

    #[test]
    #[should_panic(expected = "invalid route method \"\"")]
    fn registering_an_empty_method_panics() {
        Router::new().route("", "/", noop);
    }

    // Matching, after Mummy's tests/test_routers.nim.

    #[test]
    fn mummy_static_and_partial_wildcards() {
        let router = get_router(&[
            "/",
            "/page.html",
            "/*.js",
            "/*/index.html",
            "/styles/*.css",
            "/partial/*",
            "/literal*",
            "/*double*",
        ]);
        let found = [
            "/",
            "/page.html",
            "/script.js",
            "/.js",
            "/min.js",
            "/a/index.html",
            "/b/index.html",
            "/styles/index.css",
            "/partial/something",
            "/literal*",
            "/literal*asdf&asdf",
            "/literalasdf",
            "/adoubleb",
            "/longerdoubleevenmore",
            "/doubleb",
            "/adouble",
            "/double",
        ];
        let not_found = [
            "",
            "page.html",
            "/a",
            "/script.j",
            "/script.html",
            "/script",
            "/index.html",
            "/a/b/index.html",
            "/styles/2/index.css",
            "/styles/script.js",
            "/partial",
            "/partial/more/here",
            "/doubl",
        ];
        for path in found {
            assert!(
                matches!(router.resolve("GET", path), Resolution::Route(..)),
                "{path:?} should be routed"
            );
        }
        for path in not_found {
            assert_eq!(
                router.resolve("GET", path),
                Resolution::NotFound,
                "{path:?}"
            );
        }
    }

    #[test]
    fn mummy_multi_wildcard_matches_everything_first_route_wins() {
        let router = get_router(&["/**", "/**"]);
        for path in [
            "/",
            "/index.html",
            "/path",
            "/path/to/thing.html",
            "/a/b/c/d/e/f/g/h.txt",
        ] {
            assert_eq!(
                router.resolve("GET", path),
                Resolution::Route(0, vec![]),
                "{path:?}"
            );
        }
    }

    #[test]
    fn mummy_multi_wildcards_around_literal() {
        check(
            "/**/TEST/**",
            &["/a/TEST/b.html", "/a/b/TEST/c/d"],
            &["/", "/TEST/page.html", "/TEST/a/b/c/d.html", "/a/TEST"],
        );
    }

    #[test]
    fn mummy_three_multi_wildcards() {
        check(
            "/**/TEST/**/TEST2/**",
            &[
                "/a/b/TEST/d/f/g/TEST2/page.html",
                "/a/TEST/b/TEST2/page.html",
            ],
            &[
                "/",
                "/index.html",
                "/path",
                "/path/to/thing.html",
                "/a/b/c/d/e/f/g/h.txt",
                "/a/b/TEST/d/f/g.html",
                "/a/TEST/page.html",
                "/TEST/page.html&3",
                "/TEST/TEST2/",
                "/TEST/TEST2/page.html",
                "/a/TEST/TEST2/",
                "/a/TEST/TEST2/page.html",
            ],
        );
    }

    #[test]
    fn mummy_partial_wildcards_around_multi_wildcard() {
        check(
            "/*page/**/*.html",
            &[
                "/page/thing/do.html",
                "/2page/thing/do.html",
                "/page/a/b/c.html",
            ],
            &["/", "/wowpage/do.html", "/wowpage/a/do.htm"],
        );
    }

    #[test]
    fn mummy_wildcard_prefix() {
        check("/*a", &["/a", "/aa", "/somethinga"], &["/a/", "/something"]);
    }

    #[test]
    fn mummy_wildcard_prefix_and_suffix() {
        check(
            "/*something*",
            &["/something", "/asomething", "/somethingb", "/asomethingb"],
            &["/something/", "/something/else", "/somethin"],
        );
    }

    #[test]
    fn infix_wildcard_matches_within_one_segment() {
        // Differs from Mummy, where `*` only counts at a segment's start or
        // end and `/a*b` is a literal: here every `*` in a segment is a
        // wildcard, so the literal path is matched as well.
        check(
            "/a*b",
            &["/ab", "/asomethingb", "/a*b"],
            &["/a", "/b", "/a/b", "/abc", "/xab"],
        );
        check("/a**b", &["/ab", "/asomethingb", "/a**b"], &["/a", "/a/b"]);
        check("/**z", &["/z", "/abcz", "/**z"], &["/", "/za", "/a/z"]);
    }

    #[test]
    fn mummy_named_parameters() {
        assert_eq!(match_pattern("/1/@id", "/1"), None);
        assert_eq!(
            match_pattern("/1/@id", "/1/123"),
            Some(params(&[("id", "123")]))
        );
        assert_eq!(match_pattern("/1/@id", "/1/123/4"), None);
        assert_eq!(
            match_pattern("/2/@name/@id", "/2/abc/123"),
            Some(params(&[("name", "abc"), ("id", "123")]))
        );
    }

    // Matching, beyond Mummy's tests.

    #[test]
    fn literals_match_exactly() {
        check("/", &["/"], &["", "/a", "//"]);
        check(
            "/users/list",
            &["/users/list"],
            &["/users", "/users/list/x", "/Users/list", "/users/lis"],
        );
        check("/a b/ü", &["/a b/ü"], &["/a%20b/ü"]);
    }

    #[test]
    fn trailing_slash_is_an_empty_segment() {
        check("/a", &["/a"], &["/a/"]);
        check("/a/", &["/a/"], &["/a", "/a//"]);
        check("/a/*", &["/a/", "/a/b"], &["/a", "/a/b/"]);
        check("/a/**", &["/a/", "/a/b", "/a/b/"], &["/a"]);
        assert_eq!(match_pattern("/a/@id", "/a/"), Some(params(&[("id", "")])));
        check("/a//b", &["/a//b"], &["/a/b"]);
    }

    #[test]
    fn single_wildcard_is_exactly_one_segment() {
        check("/*", &["/", "/a", "/a.b"], &["/a/b", "/a/"]);
        check("/x/*/y", &["/x/a/y", "/x//y"], &["/x/y", "/x/a/b/y"]);
    }

    #[test]
    fn multi_wildcard_is_one_or_more_segments() {
        check(
            "/files/**",
            &["/files/a", "/files/a/b/c", "/files/"],
            &["/files", "/file/a", "/"],
        );
        check("/**/x", &["/a/x", "/a/b/c/x"], &["/x", "/a/x/b", "/a/b"]);
        check("/a/**/b", &["/a/c/b", "/a/c/d/b"], &["/a/b", "/a/c/b/d"]);
    }

    #[test]
    fn multi_wildcard_backtracks() {
        // Mummy commits to the first `a` after `**` and misses these.
        check("/**/a/b", &["/x/a/a/b", "/a/a/b"], &["/a/b", "/x/a/b/a"]);
        check(
            "/**/x/*.html",
            &["/x/x/a.html", "/a/x/x/x/b.html"],
            &["/x/a.html"],
        );
    }

    #[test]
    fn whole_pattern_must_be_consumed() {
        // Mummy accepts this: it stops once the path runs out.
        assert!(!matches("/**/x/y", "/a/b/x"));
        assert!(!matches("/**/x/y", "/a/x"));
        assert!(matches("/**/x/y", "/a/x/y"));
    }

    #[test]
    fn multi_wildcard_takes_as_few_segments_as_possible() {
        // The example of the module documentation.
        assert_eq!(
            match_pattern("/**/x/@id/**", "/a/x/1/x/2"),
            Some(params(&[("id", "1")]))
        );
        assert_eq!(
            match_pattern("/**/x/@id", "/x/x/x/x"),
            Some(params(&[("id", "x")]))
        );
        assert_eq!(
            match_pattern("/**/x/@id/y", "/x/x/1/x/2/y"),
            Some(params(&[("id", "2")]))
        );
        // Captures of failed attempts are dropped.
        assert_eq!(
            match_pattern("/@a/**/x/@b/y", "/1/x/2/x/3/y"),
            Some(params(&[("a", "1"), ("b", "3")]))
        );
        assert_eq!(
            match_pattern("/@a/**/x/@b/**/y/@c", "/1/q/x/2/r/x/3/y/4"),
            Some(params(&[("a", "1"), ("b", "2"), ("c", "4")]))
        );
    }

    #[test]
    fn parameters_are_single_segments() {
        assert_eq!(
            match_pattern("/users/@id/posts/@post", "/users/7/posts/a b"),
            Some(params(&[("id", "7"), ("post", "a b")]))
        );
        assert_eq!(match_pattern("/users/@id", "/users/7/posts"), None);
        assert_eq!(match_pattern("/@id", "/ü"), Some(params(&[("id", "ü")])));
    }

    #[test]
    fn multi_wildcards_stay_linear() {
        // With naive backtracking this is cubic in the path length; a client
        // choosing the path must not be able to stall a worker.
        let path = "/a".repeat(20_000);
        let pattern = "/**/a/**/a/**/a/**/b";
        assert!(!matches(pattern, &path));
        assert!(matches(pattern, &format!("{path}/b")));
    }

    #[test]
    fn glob_pieces() {
        let glob = |p: &str| p.split('*').map(str::to_owned).collect::<Vec<_>>();
        let cases = [
            ("*.js", "app.js", true),
            ("*.js", ".js", true),
            ("*.js", "app.jsx", false),
            ("page_*", "page_", true),
            ("page_*", "page_2", true),
            ("page_*", "page", false),
            ("a*a", "a", false),
            ("a*a", "aa", true),
            ("a*a", "aba", true),
            ("*a*b*c*", "xaybzc", true),
            ("*a*b*c*", "abc", true),
            ("*a*b*c*", "cba", false),
            ("a*b*b", "abb", true),
            ("a*b*b", "ab", false),
            ("é*é", "été", true),
            ("é*é", "é", false),
            ("**", "", true),
            ("a**", "a", true),
        ];
        for (pattern, s, expected) in cases {
            assert_eq!(
                glob_matches(&glob(pattern), s),
                expected,
                "{pattern:?} on {s:?}"
            );
        }
    }

    // Dispatch.

    #[test]
    fn first_matching_route_wins() {
        let mut router = Router::new();
        router
            .get("/users/me", noop)
            .get("/users/@id", noop)
            .get("/users/*", noop)
            .get("/**", noop);
        assert_eq!(
            router.resolve("GET", "/users/me"),
            Resolution::Route(0, vec![])
        );
        assert_eq!(
            router.resolve("GET", "/users/7"),
            Resolution::Route(1, params(&[("id", "7")]))
        );
        assert_eq!(
            router.resolve("GET", "/users/7/x"),
            Resolution::Route(3, vec![])
        );
    }

    #[test]
    fn method_selects_among_matching_routes() {
        let mut router = Router::new();
        router
            .get("/item/@id", noop)
            .post("/item/@id", noop)
            .put("/item/@id", noop)
            .delete("/item/@id", noop)
            .options("/item/@id", noop)
            .patch("/item/@id", noop)
            .route("PROPFIND", "/item/@id", noop);
        let p = params(&[("id", "1")]);
        for (index, method) in [
            "GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "PROPFIND",
        ]
        .into_iter()
        .enumerate()
        {
            assert_eq!(
                router.resolve(method, "/item/1"),
                Resolution::Route(index, p.clone())
            );
        }
    }

    #[test]
    fn head_falls_back_to_get() {
        let mut router = Router::new();
        router.post("/a/@x", noop).get("/a/@id", noop);
        assert_eq!(
            router.resolve("HEAD", "/a/1"),
            Resolution::Route(1, params(&[("id", "1")]))
        );
    }

    #[test]
    fn head_route_wins_over_earlier_get() {
        let mut router = Router::new();
        router.get("/a", noop).get("/**", noop).head("/a", noop);
        assert_eq!(router.resolve("HEAD", "/a"), Resolution::Route(2, vec![]));
        assert_eq!(router.resolve("HEAD", "/b"), Resolution::Route(1, vec![]));
        assert_eq!(router.resolve("GET", "/a"), Resolution::Route(0, vec![]));
    }

    #[test]
    fn head_only_route_does_not_serve_get() {
        let mut router = Router::new();
        router.head("/a", noop);
        assert_eq!(
            router.resolve("GET", "/a"),
            Resolution::MethodNotAllowed("HEAD".into())
        );
    }

    #[test]
    fn method_not_allowed_lists_methods_in_order() {
        let mut router = Router::new();
        router
            .post("/a", noop)
            .get("/*", noop)
            .post("/a", noop)
            .delete("/**", noop)
            .put("/b", noop);
        assert_eq!(
            router.resolve("PATCH", "/a"),
            Resolution::MethodNotAllowed("POST, GET, HEAD, DELETE".into())
        );
        assert_eq!(
            router.resolve("POST", "/c/d"),
            Resolution::MethodNotAllowed("DELETE".into())
        );
    }

    #[test]
    fn method_not_allowed_for_head_without_get() {
        let mut router = Router::new();
        router.post("/a", noop);
        assert_eq!(
            router.resolve("HEAD", "/a"),
            Resolution::MethodNotAllowed("POST".into())
        );
    }

    #[test]
    fn allow_keeps_explicit_head_once() {
        let mut router = Router::new();
        router.head("/a", noop).get("/a", noop);
        assert_eq!(
            router.resolve("POST", "/a"),
            Resolution::MethodNotAllowed("HEAD, GET".into())
        );
    }

    #[test]
    fn methods_are_case_sensitive() {
        let mut router = Router::new();
        router.get("/a", noop);
        assert_eq!(
            router.resolve("get", "/a"),
            Resolution::MethodNotAllowed("GET, HEAD".into())
        );
    }

    #[test]
    fn not_found_when_no_pattern_matches() {
        let mut router = Router::new();
        assert_eq!(router.resolve("GET", "/"), Resolution::NotFound);
        router.get("/a", noop).post("/b/@id", noop);
        assert_eq!(router.resolve("GET", "/c"), Resolution::NotFound);
        assert_eq!(router.resolve("POST", "/b"), Resolution::NotFound);
        // `OPTIONS *` and anything else not starting with `/`.
        assert_eq!(router.resolve("OPTIONS", "*"), Resolution::NotFound);
    }

    #[test]
    fn router_is_a_shareable_handler() {
        fn assert_handler<H: Handler>() {}
        assert_handler::<Router>();
        let mut router = Router::new();
        router
            .get("/", |_req: Request| {})
            .not_found(noop)
            .method_not_allowed(noop)
            .error_handler(|reason| Response::new(503, (), reason));
        let inner = Router::new();
        router.get("/inner/**", inner);
        let debug = format!("{router:?}");
        assert!(debug.contains("GET /inner/**"), "{debug}");
    }

    #[test]
    fn body_rules_follow_the_route_that_will_handle_the_request() {
        let mut router = Router::new();
        assert!(router.get("/", noop).body_rules().is_none());
        router
            .post("/up/@id", noop)
            .stream_body()
            .put("/up/@id", noop)
            .max_body_len(10)
            .post("/up/**", noop)
            .get("/files/*", noop)
            .stream_body()
            .max_body_len(5);
        let rules = router.body_rules().expect("routes with their own settings");
        let server = ServerBody {
            stream: false,
            max_body_len: 1 << 20,
            max_streamed_body_len: u64::MAX,
        };
        let plan = |method: &str, target: &str| rules.plan(method, target, &server);
        let buffered = BodyPlan {
            stream: false,
            max_body_len: 1 << 20,
        };
        assert_eq!(
            plan("POST", "/up/1?x=2"),
            BodyPlan {
                stream: true,
                max_body_len: u64::MAX
            }
        );
        // Decoded as the router decodes it: `%31` is `1`.
        assert!(plan("POST", "/up/%31").stream);
        assert_eq!(
            plan("PUT", "/up/1"),
            BodyPlan {
                stream: false,
                max_body_len: 10
            }
        );
        // The first matching route wins: `/up/**` for two segments.
        assert_eq!(plan("POST", "/up/1/2"), buffered);
        // HEAD falls back to the GET route, as dispatch does.
        assert_eq!(
            plan("HEAD", "http://h/files/a"),
            BodyPlan {
                stream: true,
                max_body_len: 5
            }
        );
        // 404 and 405: the server's settings.
        assert_eq!(plan("POST", "/nowhere"), buffered);
        assert_eq!(plan("DELETE", "/up/1"), buffered);
        let streaming = ServerBody {
            stream: true,
            max_body_len: 1 << 20,
            max_streamed_body_len: 99,
        };
        assert_eq!(
            rules.plan("POST", "/nowhere", &streaming),
            BodyPlan {
                stream: true,
                max_body_len: 99
            }
        );
        assert_eq!(rules.plan("PUT", "/up/1", &streaming).max_body_len, 10);
    }

    #[test]
    #[should_panic(expected = "Router::stream_body applies to the route added last")]
    fn stream_body_without_a_route_panics() {
        Router::new().stream_body();
    }
}
