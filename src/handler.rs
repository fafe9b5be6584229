//! The request handler trait.

use crate::http::Request;

/// Handles HTTP requests. Runs on a worker thread; may block.
///
/// Implemented for every `Fn(Request) + Send + Sync + 'static` and for
/// [`crate::Router`].
pub trait Handler: Send + Sync + 'static {
    /// Handles one request. Answer it with [`Request::respond`], here or
    /// on another thread.
    fn handle(&self, request: Request);
}

impl<F> Handler for F
where
    F: Fn(Request) + Send + Sync + 'static,
{
    fn handle(&self, request: Request) {
        self(request)
    }
}
