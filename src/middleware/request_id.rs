//! [`RequestIds`] and the [`RequestId`] extension.

use super::{Middleware, RequestInfo, ResponseHead};
use crate::http::{Parts, Response};
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// A request's id, in its [extensions](crate::Parts::extensions) when
/// [`RequestIds`] runs.
///
/// ```
/// use natron::middleware::RequestId;
///
/// fn handler(req: natron::Request) {
///     let id = req.extensions().get::<RequestId>().map_or("-", RequestId::as_str);
///     let body = format!("request {id}");
///     req.respond(200, (), body);
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// The id, e.g. `3f1c2a9e04b7d615-17`.
    ///
    /// ```
    /// use natron::middleware::RequestId;
    ///
    /// fn handler(req: natron::Request) {
    ///     let id = req.extensions().get::<RequestId>().map(|id| id.as_str().to_owned());
    ///     req.respond(200, (), id.unwrap_or_default());
    /// }
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Gives each request an id: the client's `X-Request-Id` when valid (1 to
/// 128 characters among `A-Z a-z 0-9 - _ . : + / =`; an upstream proxy's
/// id is kept), else a new one: a random 64-bit prefix chosen when the
/// middleware is made, in hex, `-`, a counter. The id goes into the
/// request's extensions as a [`RequestId`] (where [`AccessLog`](super::AccessLog)
/// finds it) and into the response as `X-Request-Id`.
///
/// ```
/// use natron::middleware::RequestIds;
/// use natron::{Request, Router};
///
/// let mut router = Router::new();
/// router.wrap(RequestIds::new()).get("/", |req: Request| req.respond(200, (), "hi"));
/// ```
#[derive(Debug)]
pub struct RequestIds {
    prefix: String,
    next: AtomicU64,
    trust_incoming: bool,
}

/// The longest incoming id kept.
const MAX_ID_LEN: usize = 128;

impl RequestIds {
    /// Keeps a valid incoming id, makes one otherwise.
    ///
    /// ```
    /// use natron::middleware::RequestIds;
    /// use natron::Server;
    ///
    /// let server = Server::builder().middleware(RequestIds::new()).build();
    /// # drop(server);
    /// ```
    pub fn new() -> RequestIds {
        let mut h = RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        RequestIds {
            prefix: format!("{:016x}", h.finish()),
            next: AtomicU64::new(1),
            trust_incoming: true,
        }
    }

    /// Ignores the client's `X-Request-Id` and always makes a new id (for
    /// a server not behind a proxy that sets one).
    ///
    /// ```
    /// use natron::middleware::RequestIds;
    ///
    /// let ids = RequestIds::new().always_new();
    /// # let _ = ids;
    /// ```
    pub fn always_new(mut self) -> RequestIds {
        self.trust_incoming = false;
        self
    }
}

impl Default for RequestIds {
    fn default() -> Self {
        RequestIds::new()
    }
}

fn valid(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:+/=".contains(&b))
}

impl Middleware for RequestIds {
    fn before(&self, req: &mut Parts) -> Result<(), Response> {
        let id = match req.header("x-request-id") {
            Some(id) if self.trust_incoming && valid(id) => id.to_owned(),
            _ => format!(
                "{}-{}",
                self.prefix,
                self.next.fetch_add(1, Ordering::Relaxed)
            ),
        };
        req.extensions_mut().insert(RequestId(id));
        Ok(())
    }

    fn after(&self, head: &mut ResponseHead<'_>, info: &RequestInfo) {
        if let Some(id) = info.extensions().get::<RequestId>() {
            head.headers_mut().set("X-Request-Id", id.as_str());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::valid;

    #[test]
    fn incoming_ids() {
        assert!(valid("abc-123_x.y:z+/="));
        assert!(valid(&"a".repeat(128)));
        assert!(!valid(""));
        assert!(!valid(&"a".repeat(129)));
        assert!(!valid("a b"));
        assert!(!valid("a\u{7f}"));
        assert!(!valid("é"));
    }
}
