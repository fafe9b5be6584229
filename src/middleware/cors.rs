//! [`Cors`]: Cross-Origin Resource Sharing (the Fetch standard's CORS
//! protocol, §3.2).

use super::{Middleware, RequestInfo, ResponseHead};
use crate::http::{Headers, Parts, Response};
use std::time::Duration;

/// Answers CORS preflights and adds the CORS fields to responses for
/// allowed origins (Fetch standard §3.2.3 – §3.2.5).
///
/// * A **preflight** (`OPTIONS` with `Origin` and
///   `Access-Control-Request-Method`) is answered here, before routing, so
///   no route needs an `OPTIONS` handler: `204` with
///   `Access-Control-Allow-Origin`, `-Allow-Methods`, `-Allow-Headers`
///   (the requested headers that are allowed), `-Allow-Credentials` and
///   `-Max-Age` as configured; `403` without CORS fields when the origin,
///   the method or a requested header is not allowed (the browser then
///   refuses the request).
/// * Any other request with an allowed `Origin` gets
///   `Access-Control-Allow-Origin` (the origin, or `*` when any origin is
///   allowed without credentials), `Access-Control-Allow-Credentials`,
///   `Access-Control-Expose-Headers`; a disallowed origin gets none, and
///   the handler still runs (CORS protects the browser's reader, not the
///   server).
/// * `Vary: Origin` on every response whose fields depend on the origin
///   (all but any-origin without credentials), so caches keep them apart.
///
/// Defaults: no origin allowed; methods `GET, HEAD, POST`; no request
/// headers beyond the CORS-safelisted ones; no credentials; no max-age.
/// Origins are compared byte for byte with the serialized origin the
/// browser sends (`https://app.example:8443`, no trailing `/`).
///
/// ```
/// use natron::middleware::Cors;
/// use std::time::Duration;
///
/// let cors = Cors::new()
///     .allow_origin("https://app.example")
///     .allow_methods(["GET", "POST", "DELETE"])
///     .allow_headers(["Content-Type", "Authorization"])
///     .allow_credentials(true)
///     .expose_headers(["X-Request-Id"])
///     .max_age(Duration::from_secs(600));
/// # let _ = cors;
/// ```
#[derive(Clone, Debug)]
pub struct Cors {
    any_origin: bool,
    origins: Vec<String>,
    methods: Vec<String>,
    /// Lower case.
    headers: Vec<String>,
    any_header: bool,
    credentials: bool,
    expose: Vec<String>,
    max_age: Option<Duration>,
}

/// The allowed origin of this request, for the after-hook.
#[derive(Clone)]
struct AllowedOrigin(String);

impl Default for Cors {
    fn default() -> Self {
        Cors::new()
    }
}

impl Cors {
    /// Allows no origin yet; methods `GET, HEAD, POST`.
    ///
    /// ```
    /// use natron::middleware::Cors;
    ///
    /// let cors = Cors::new().allow_origin("https://app.example");
    /// # let _ = cors;
    /// ```
    pub fn new() -> Cors {
        Cors {
            any_origin: false,
            origins: Vec::new(),
            methods: vec!["GET".into(), "HEAD".into(), "POST".into()],
            headers: Vec::new(),
            any_header: false,
            credentials: false,
            expose: Vec::new(),
            max_age: None,
        }
    }

    /// Allows `origin` (e.g. `https://app.example`), besides those allowed
    /// already.
    ///
    /// ```
    /// use natron::middleware::Cors;
    ///
    /// let cors = Cors::new()
    ///     .allow_origin("https://app.example")
    ///     .allow_origin("http://localhost:3000");
    /// # let _ = cors;
    /// ```
    pub fn allow_origin(mut self, origin: impl Into<String>) -> Cors {
        self.origins.push(origin.into());
        self
    }

    /// Allows every origin. Without credentials the responses say `*`;
    /// with them, the request's origin (a `*` does not admit credentials,
    /// Fetch §3.2.5).
    ///
    /// ```
    /// use natron::middleware::Cors;
    ///
    /// let cors = Cors::new().allow_any_origin();
    /// # let _ = cors;
    /// ```
    pub fn allow_any_origin(mut self) -> Cors {
        self.any_origin = true;
        self
    }

    /// The methods a preflight may ask for (replaces the default `GET,
    /// HEAD, POST`).
    ///
    /// ```
    /// use natron::middleware::Cors;
    ///
    /// let cors = Cors::new()
    ///     .allow_origin("https://app.example")
    ///     .allow_methods(["GET", "PUT", "DELETE"]);
    /// # let _ = cors;
    /// ```
    pub fn allow_methods<S: Into<String>>(mut self, methods: impl IntoIterator<Item = S>) -> Cors {
        self.methods = methods.into_iter().map(Into::into).collect();
        self
    }

    /// The request headers a preflight may ask for (case-insensitive).
    ///
    /// ```
    /// use natron::middleware::Cors;
    ///
    /// let cors = Cors::new()
    ///     .allow_origin("https://app.example")
    ///     .allow_headers(["Content-Type", "Authorization"]);
    /// # let _ = cors;
    /// ```
    pub fn allow_headers<S: Into<String>>(mut self, headers: impl IntoIterator<Item = S>) -> Cors {
        self.headers = headers
            .into_iter()
            .map(|h| h.into().to_ascii_lowercase())
            .collect();
        self
    }

    /// Allows any request header a preflight asks for.
    ///
    /// ```
    /// use natron::middleware::Cors;
    ///
    /// let cors = Cors::new().allow_any_origin().allow_any_header();
    /// # let _ = cors;
    /// ```
    pub fn allow_any_header(mut self) -> Cors {
        self.any_header = true;
        self
    }

    /// Whether the browser may send credentials (cookies, HTTP
    /// authentication): `Access-Control-Allow-Credentials: true`.
    ///
    /// ```
    /// use natron::middleware::Cors;
    ///
    /// let cors = Cors::new()
    ///     .allow_origin("https://app.example")
    ///     .allow_credentials(true);
    /// # let _ = cors;
    /// ```
    pub fn allow_credentials(mut self, allow: bool) -> Cors {
        self.credentials = allow;
        self
    }

    /// Response headers the page's script may read beyond the
    /// CORS-safelisted ones (`Access-Control-Expose-Headers`).
    ///
    /// ```
    /// use natron::middleware::Cors;
    ///
    /// let cors = Cors::new()
    ///     .allow_origin("https://app.example")
    ///     .expose_headers(["X-Request-Id", "X-Total-Count"]);
    /// # let _ = cors;
    /// ```
    pub fn expose_headers<S: Into<String>>(mut self, headers: impl IntoIterator<Item = S>) -> Cors {
        self.expose = headers.into_iter().map(Into::into).collect();
        self
    }

    /// How long the browser may cache a preflight's answer
    /// (`Access-Control-Max-Age`, whole seconds).
    ///
    /// ```
    /// use natron::middleware::Cors;
    ///
    /// let cors = Cors::new()
    ///     .allow_origin("https://app.example")
    ///     .max_age(std::time::Duration::from_secs(3600));
    /// # let _ = cors;
    /// ```
    pub fn max_age(mut self, age: Duration) -> Cors {
        self.max_age = Some(age);
        self
    }

    fn allows_origin(&self, origin: &str) -> bool {
        self.any_origin || self.origins.iter().any(|o| o == origin)
    }

    /// `*` when any origin is allowed without credentials, else the origin.
    fn allow_origin_value<'a>(&self, origin: &'a str) -> &'a str {
        if self.any_origin && !self.credentials {
            "*"
        } else {
            origin
        }
    }

    fn varies(&self) -> bool {
        !self.any_origin || self.credentials
    }

    fn preflight(&self, origin: &str, method: &str, requested: &str) -> Response {
        let mut h = Headers::new();
        if self.varies() {
            h.append("Vary", "Origin");
        }
        h.append(
            "Vary",
            "Access-Control-Request-Method, Access-Control-Request-Headers",
        );
        let requested: Vec<&str> = requested
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let method_ok = self.methods.iter().any(|m| m == method);
        let headers_ok = self.any_header
            || requested
                .iter()
                .all(|r| self.headers.iter().any(|a| a.eq_ignore_ascii_case(r)));
        if !self.allows_origin(origin) || !method_ok || !headers_ok {
            h.append("Content-Type", "text/plain; charset=utf-8");
            return Response::new(403, h, "CORS preflight refused");
        }
        h.append(
            "Access-Control-Allow-Origin",
            self.allow_origin_value(origin),
        );
        h.append("Access-Control-Allow-Methods", self.methods.join(", "));
        if !requested.is_empty() {
            h.append("Access-Control-Allow-Headers", requested.join(", "));
        }
        if self.credentials {
            h.append("Access-Control-Allow-Credentials", "true");
        }
        if let Some(age) = self.max_age {
            h.append("Access-Control-Max-Age", age.as_secs().to_string());
        }
        Response::new(204, h, Vec::new())
    }
}

impl Middleware for Cors {
    fn before(&self, req: &mut Parts) -> Result<(), Response> {
        let Some(origin) = req.header("origin") else {
            return Ok(());
        };
        if req.method() == "OPTIONS" {
            if let Some(method) = req.header("access-control-request-method") {
                let requested = req
                    .headers()
                    .get_all("access-control-request-headers")
                    .collect::<Vec<_>>()
                    .join(",");
                return Err(self.preflight(origin, method.trim(), &requested));
            }
        }
        if self.allows_origin(origin) {
            let origin = origin.to_owned();
            req.extensions_mut().insert(AllowedOrigin(origin));
        }
        Ok(())
    }

    fn after(&self, head: &mut ResponseHead<'_>, info: &RequestInfo) {
        let h = head.headers_mut();
        if self.varies() && !h.has_token("vary", "origin") {
            h.append("Vary", "Origin");
        }
        let Some(AllowedOrigin(origin)) = info.extensions().get::<AllowedOrigin>() else {
            return;
        };
        h.set(
            "Access-Control-Allow-Origin",
            self.allow_origin_value(origin),
        );
        if self.credentials {
            h.set("Access-Control-Allow-Credentials", "true");
        }
        if !self.expose.is_empty() {
            h.set("Access-Control-Expose-Headers", self.expose.join(", "));
        }
    }
}
