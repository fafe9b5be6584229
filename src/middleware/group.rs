//! Route groups ([`Router::group`]) and [`Router::wrap`].

use super::chain::Wrap;
use super::Middleware;
use crate::handler::{Error, Handler};
use crate::http::Request;
use crate::router::Router;
use std::sync::Arc;

/// A boxed handler as a handler.
pub(crate) struct Boxed(pub(crate) Box<dyn Handler>);

impl Handler for Boxed {
    fn handle(&self, request: Request) -> Result<(), Error> {
        self.0.handle(request)
    }
}

/// Routes that share a path prefix and middleware; see [`Router::group`].
///
/// ```
/// use natron::middleware::RequestIds;
/// use natron::{Request, Router};
///
/// let mut router = Router::new();
/// router.group("/admin", |admin| {
///     admin.wrap(RequestIds::new())
///         .get("/stats", |req: Request| req.respond(200, (), "stats"));
/// });
/// ```
pub struct Group {
    prefix: String,
    chain: Vec<Arc<dyn Middleware>>,
    routes: Vec<(String, String, Box<dyn Handler>)>,
}

impl Group {
    /// Wraps every route of the group (those added before this call too)
    /// in `m`, inside the middleware added before.
    ///
    /// ```
    /// use natron::{Request, Router};
    /// use natron::middleware::Compression;
    ///
    /// let mut router = Router::new();
    /// router.group("/api", |api| {
    ///     api.wrap(Compression::off())
    ///         .get("/dump", |req: Request| req.respond(200, (), "raw"));
    /// });
    /// ```
    pub fn wrap(&mut self, m: impl Middleware) -> &mut Self {
        self.chain.push(Arc::new(m));
        self
    }

    /// Adds a route for `method` at the group's prefix followed by
    /// `pattern` (`"/"` alone stands for the prefix itself).
    ///
    /// # Panics
    ///
    /// As [`Router::route`], when the group is added to its router.
    ///
    /// ```
    /// use natron::{Request, Router};
    ///
    /// let mut router = Router::new();
    /// router.group("/api", |api| {
    ///     // PURGE /api/cache
    ///     api.route("PURGE", "/cache", |req: Request| req.respond(204, (), ""));
    /// });
    /// ```
    pub fn route(&mut self, method: &str, pattern: &str, handler: impl Handler) -> &mut Self {
        let full = join(&self.prefix, pattern);
        self.routes
            .push((method.to_owned(), full, Box::new(handler)));
        self
    }

    /// Adds a `GET` route (it serves `HEAD` too): see [`Group::route`].
    ///
    /// ```
    /// use natron::{Request, Router};
    ///
    /// let mut router = Router::new();
    /// router.group("/api", |api| {
    ///     // GET /api (the group's "/") and GET /api/items
    ///     api.get("/", |req: Request| req.respond(200, (), "api"))
    ///         .get("/items", |req: Request| req.respond(200, (), "items"));
    /// });
    /// ```
    pub fn get(&mut self, pattern: &str, handler: impl Handler) -> &mut Self {
        self.route("GET", pattern, handler)
    }

    /// Adds a `POST` route: see [`Group::route`].
    ///
    /// ```
    /// use natron::{Request, Router};
    ///
    /// let mut router = Router::new();
    /// router.group("/api", |api| {
    ///     api.post("/items", |req: Request| req.respond(201, (), "created"));
    /// });
    /// ```
    pub fn post(&mut self, pattern: &str, handler: impl Handler) -> &mut Self {
        self.route("POST", pattern, handler)
    }

    /// Adds a `PUT` route: see [`Group::route`].
    ///
    /// ```
    /// use natron::{Request, Router};
    ///
    /// let mut router = Router::new();
    /// router.group("/api", |api| {
    ///     api.put("/items/@id", |req: Request| req.respond(204, (), ""));
    /// });
    /// ```
    pub fn put(&mut self, pattern: &str, handler: impl Handler) -> &mut Self {
        self.route("PUT", pattern, handler)
    }

    /// Adds a `PATCH` route: see [`Group::route`].
    ///
    /// ```
    /// use natron::{Request, Router};
    ///
    /// let mut router = Router::new();
    /// router.group("/api", |api| {
    ///     api.patch("/items/@id", |req: Request| req.respond(204, (), ""));
    /// });
    /// ```
    pub fn patch(&mut self, pattern: &str, handler: impl Handler) -> &mut Self {
        self.route("PATCH", pattern, handler)
    }

    /// Adds a `DELETE` route: see [`Group::route`].
    ///
    /// ```
    /// use natron::{Request, Router};
    ///
    /// let mut router = Router::new();
    /// router.group("/api", |api| {
    ///     api.delete("/items/@id", |req: Request| req.respond(204, (), ""));
    /// });
    /// ```
    pub fn delete(&mut self, pattern: &str, handler: impl Handler) -> &mut Self {
        self.route("DELETE", pattern, handler)
    }

    /// A group nested in this one: its prefix follows this group's, and
    /// its middleware runs inside this group's.
    ///
    /// ```
    /// use natron::{Request, Router};
    /// use natron::middleware::Compression;
    ///
    /// let mut router = Router::new();
    /// router.group("/api", |api| {
    ///     // GET /api/v1/items, without compression
    ///     api.group("/v1", |v1| {
    ///         v1.wrap(Compression::off())
    ///             .get("/items", |req: Request| req.respond(200, (), "v1 items"));
    ///     });
    /// });
    /// ```
    pub fn group(&mut self, prefix: &str, build: impl FnOnce(&mut Group)) -> &mut Self {
        let inner = Group::build(join_prefix(&self.prefix, prefix), build);
        for (method, pattern, handler) in inner {
            self.routes.push((method, pattern, handler));
        }
        self
    }

    fn build(
        prefix: String,
        build: impl FnOnce(&mut Group),
    ) -> Vec<(String, String, Box<dyn Handler>)> {
        let mut g = Group {
            prefix,
            chain: Vec::new(),
            routes: Vec::new(),
        };
        build(&mut g);
        let Group { chain, routes, .. } = g;
        routes
            .into_iter()
            .map(|(method, pattern, handler)| {
                let handler: Box<dyn Handler> = if chain.is_empty() {
                    handler
                } else {
                    Box::new(Wrap::from_chain(Boxed(handler), chain.clone()))
                };
                (method, pattern, handler)
            })
            .collect()
    }
}

/// `prefix` then `pattern`; `/` alone is the prefix itself.
fn join(prefix: &str, pattern: &str) -> String {
    if pattern == "/" && !prefix.is_empty() {
        prefix.to_owned()
    } else {
        format!("{prefix}{pattern}")
    }
}

/// Checks `prefix` (empty, or `/...` without a trailing `/`) and appends it.
fn join_prefix(outer: &str, prefix: &str) -> String {
    assert!(
        prefix.is_empty() || (prefix.starts_with('/') && !prefix.ends_with('/')),
        "invalid group prefix {prefix:?}: empty, or starting with '/' and not ending with one"
    );
    format!("{outer}{prefix}")
}

impl Router {
    /// Wraps the whole router in `m` (see [`crate::middleware`]): it runs
    /// for every request the router gets, before routing, so a `before`
    /// that answers (a CORS preflight, an auth check) works for paths
    /// without a route too. Middleware added first is the outermost.
    ///
    /// ```
    /// use natron::middleware::RequestIds;
    /// use natron::{Request, Router};
    ///
    /// let mut router = Router::new();
    /// router
    ///     .wrap(RequestIds::new())
    ///     .get("/", |req: Request| req.respond(200, (), "hi"));
    /// ```
    pub fn wrap(&mut self, m: impl Middleware) -> &mut Self {
        self.middleware.push(Arc::new(m));
        self
    }

    /// Adds routes under `prefix` (empty, or starting with `/` and not
    /// ending with one) that share middleware: `build` adds them to a
    /// [`Group`] and wraps them with [`Group::wrap`]. The group's
    /// middleware runs after routing, only for its routes: a path no
    /// route matches gets the router's `404` without it, and a method no
    /// route of the path takes its `405` (use [`Router::wrap`] for
    /// middleware that must see those too).
    ///
    /// # Panics
    ///
    /// On an invalid prefix, or a route invalid for [`Router::route`].
    ///
    /// ```
    /// use natron::middleware::Compression;
    /// use natron::{Request, Router};
    ///
    /// let mut router = Router::new();
    /// router.group("/api", |api| {
    ///     api.wrap(Compression::off())
    ///         .get("/", |req: Request| req.respond(200, (), "api root"))
    ///         .get("/users/@id", |req: Request| {
    ///             let id = req.path_param("id").unwrap_or("").to_owned();
    ///             req.respond(200, (), id)
    ///         });
    /// });
    /// ```
    pub fn group(&mut self, prefix: &str, build: impl FnOnce(&mut Group)) -> &mut Self {
        for (method, pattern, handler) in Group::build(join_prefix("", prefix), build) {
            self.route(&method, &pattern, Boxed(handler));
        }
        self
    }
}
