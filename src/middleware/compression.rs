//! [`Compression`]: per-route response compression settings.

use super::{Middleware, RequestInfo, ResponseHead};

/// Compression settings for the responses of the routes it wraps: off, or
/// a minimum body size. natron compresses with gzip or deflate when the
/// client accepts one (`Accept-Encoding`, RFC 9110 §12.5.3), the body is
/// not encoded already and its type is worth it (not images, video,
/// archives); by default whole bodies from 860 bytes, streams of unknown
/// length always.
///
/// ```
/// use natron::middleware::Compression;
/// use natron::{Request, Router};
///
/// let mut router = Router::new();
/// router.group("/raw", |g| {
///     g.wrap(Compression::off())
///         .get("/data", |req: Request| req.respond(200, (), vec![b'x'; 4096]));
/// });
/// router.group("/small", |g| {
///     g.wrap(Compression::min_len(64))
///         .get("/data", |req: Request| req.respond(200, (), vec![b'x'; 100]));
/// });
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Compression {
    enabled: bool,
    min_len: Option<usize>,
}

impl Compression {
    /// Never compress.
    ///
    /// ```
    /// use natron::middleware::{Compression, Wrap};
    /// use natron::Request;
    ///
    /// let h = Wrap::new(|req: Request| req.respond(200, (), "x".repeat(4096))).with(Compression::off());
    /// # let _ = h;
    /// ```
    pub fn off() -> Compression {
        Compression {
            enabled: false,
            min_len: None,
        }
    }

    /// Compress (when negotiated) whole bodies of at least `bytes` bytes;
    /// streams of unknown length whatever their size.
    ///
    /// ```
    /// use natron::middleware::{Compression, Wrap};
    /// use natron::Request;
    ///
    /// let h = Wrap::new(|req: Request| req.respond(200, (), "x".repeat(200))).with(Compression::min_len(100));
    /// # let _ = h;
    /// ```
    pub fn min_len(bytes: usize) -> Compression {
        Compression {
            enabled: true,
            min_len: Some(bytes),
        }
    }
}

impl Middleware for Compression {
    fn after(&self, head: &mut ResponseHead<'_>, _info: &RequestInfo) {
        head.set_compression(self.enabled);
        if let Some(n) = self.min_len {
            head.set_min_compress_len(n);
        }
    }
}
