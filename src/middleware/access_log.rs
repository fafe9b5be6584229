//! [`AccessLog`]: one log line per response.

use super::{Middleware, RequestId, Summary};

/// Logs one line per response, at `info` level, to the server's logger
/// ([`ServerBuilder::logger`](crate::ServerBuilder::logger)) or to the
/// one given with [`AccessLog::to`]: message `request`, with the keys
/// `method`, `path`, `status`, `bytes` (body bytes before compression),
/// `duration_us`, `remote`, `request_id` (when [`RequestIds`](super::RequestIds)
/// runs outside it) and `completed` (`false`: a stream cut short).
///
/// Written when the response is handed over: at once for a whole body,
/// when the stream ends for a streamed one. Off unless added.
///
/// ```
/// use natron::middleware::AccessLog;
/// use natron::{Request, Server};
///
/// let server = Server::builder()
///     .middleware(AccessLog::new())
///     .handler(|req: Request| req.respond(200, (), "ok"))
///     .build();
/// # drop(server);
/// ```
#[derive(Clone, Debug, Default)]
pub struct AccessLog {
    log: Option<slog::Logger>,
}

impl AccessLog {
    /// Logs to the server's logger.
    ///
    /// ```
    /// use natron::middleware::AccessLog;
    /// use natron::Router;
    ///
    /// let mut router = Router::new();
    /// router.wrap(AccessLog::new());
    /// ```
    pub fn new() -> AccessLog {
        AccessLog { log: None }
    }

    /// Logs to `log` instead of the server's logger.
    ///
    /// ```
    /// use natron::middleware::AccessLog;
    ///
    /// // A logger of its own, e.g. to a separate file; here discarded.
    /// let access = slog::Logger::root(slog::Discard, slog::o!("log" => "access"));
    /// let mw = AccessLog::to(access);
    /// # let _ = mw;
    /// ```
    pub fn to(log: slog::Logger) -> AccessLog {
        AccessLog { log: Some(log) }
    }
}

impl Middleware for AccessLog {
    fn done(&self, s: &Summary<'_>) {
        let log = self.log.as_ref().unwrap_or(s.logger());
        let info = s.info;
        let id = info.extensions().get::<RequestId>().map(RequestId::as_str);
        slog::info!(log, "request";
            "method" => info.method(),
            "path" => info.path(),
            "status" => s.status,
            "bytes" => s.body_len,
            "duration_us" => s.duration.as_micros() as u64,
            "remote" => %info.remote_addr(),
            "completed" => s.completed,
            IdField(id),
        );
    }
}

/// `request_id` only when there is one (no empty field without
/// [`RequestIds`](super::RequestIds)).
struct IdField<'a>(Option<&'a str>);

impl slog::KV for IdField<'_> {
    fn serialize(&self, _: &slog::Record, out: &mut dyn slog::Serializer) -> slog::Result {
        match self.0 {
            Some(id) => out.emit_str("request_id", id),
            None => Ok(()),
        }
    }
}
