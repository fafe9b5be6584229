//! What every actor of one server shares: the handlers, the logger, the
//! configuration and the scheduler.
//!
//! Its own module so that the actors (`connection.rs`, `io/`, `pool.rs`)
//! depend on it and not on `server.rs`, which builds and starts them: the
//! dependencies point one way, from the wiring down to the parts.

use crate::actor::limit::ConnLimit;
use crate::actor::scheduler::Scheduler;
use crate::connection::Connection;
use crate::handler::Handler;
use crate::http::body::BodyStats;
use crate::http::forwarded::{OriginPolicy, ProxyHeaders};
use crate::router::BodyRules;
use crate::websocket::WebSocketHandler;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// The default ceiling of the elastic worker pool.
pub(crate) const DEFAULT_MAX_WORKER_THREADS: usize = 512;

/// Server settings. Defaults follow Mummy where Mummy has one.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// What handlers get with `Request::state` (`ServerBuilder::state`).
    pub(crate) states: crate::state::States,
    pub(crate) worker_threads: usize,
    pub(crate) max_worker_threads: usize,
    pub(crate) io_threads: usize,
    pub(crate) max_headers_len: usize,
    pub(crate) max_body_len: usize,
    /// Stream the bodies of requests no route decides for.
    pub(crate) stream_bodies: bool,
    /// The limit of a streamed body no route limits (`u64::MAX`: none).
    pub(crate) max_streamed_body_len: u64,
    /// Routes with their own body settings, from the `Router` given as the
    /// handler: consulted by the IO actors on each head (natron code, not
    /// the user's).
    pub(crate) body_rules: Option<Arc<BodyRules>>,
    /// Counters of streamed bodies, shared with every window (`Stats`).
    pub(crate) body_stats: Arc<BodyStats>,
    pub(crate) max_message_len: usize,
    pub(crate) header_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) shutdown_grace: Duration,
    /// Bytes queued per WebSocket before sends are refused; `None` means
    /// `max(1 MiB, 2 * max_message_len)`.
    pub(crate) max_outbound_len: usize,
    pub(crate) ws_ping_interval: Option<Duration>,
    pub(crate) ws_idle_timeout: Option<Duration>,
    pub(crate) ws_close_timeout: Duration,
    /// permessage-deflate, when enabled.
    pub(crate) ws_compression: Option<crate::WebSocketCompression>,
    /// How long a lingering close waits for the client's FIN.
    pub(crate) linger_timeout: Duration,
    /// Which `Origin`s may open a WebSocket.
    pub(crate) origin_policy: OriginPolicy,
    /// Peers whose `Forwarded` / `X-Forwarded-*` fields are believed.
    pub(crate) trusted_proxies: Vec<IpAddr>,
    /// Which forwarding fields the trusted proxies write.
    pub(crate) proxy_headers: ProxyHeaders,
    /// Open connections past which the acceptor waits (0: derived from
    /// the open-file limit at `build`).
    pub(crate) max_connections: usize,
    /// A builder setting that was refused; `serve` returns it as an error.
    /// Only `allowed_origins` sets it: a later origin setting clears it.
    pub(crate) invalid: Option<String>,
}

impl Config {
    /// How often IO actors check timeouts: a quarter of the shortest one,
    /// within 10 ms .. 1 s.
    pub(crate) fn sweep_interval(&self) -> Duration {
        let mut shortest = self
            .header_timeout
            .min(self.idle_timeout)
            .min(self.ws_close_timeout);
        for t in [self.ws_ping_interval, self.ws_idle_timeout]
            .into_iter()
            .flatten()
        {
            shortest = shortest.min(t);
        }
        (shortest / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
    }
}

impl Default for Config {
    fn default() -> Self {
        let cores = thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        Config {
            states: Default::default(),
            worker_threads: (cores * 10).max(1),
            max_worker_threads: DEFAULT_MAX_WORKER_THREADS,
            io_threads: (cores / 2).max(1),
            max_headers_len: 8 * 1024,
            max_body_len: 1024 * 1024,
            stream_bodies: false,
            max_streamed_body_len: u64::MAX,
            body_rules: None,
            body_stats: Arc::default(),
            max_message_len: 64 * 1024,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(10),
            max_outbound_len: 0,
            ws_ping_interval: None,
            ws_idle_timeout: None,
            ws_close_timeout: Duration::from_secs(5),
            ws_compression: None,
            linger_timeout: Duration::from_secs(2),
            origin_policy: OriginPolicy::default(),
            trusted_proxies: Vec::new(),
            proxy_headers: ProxyHeaders::default(),
            max_connections: 0,
            invalid: None,
        }
    }
}

/// What every actor of one server shares (read-only after start, but for
/// the flags).
pub(crate) struct App {
    pub(crate) handler: Box<dyn Handler>,
    pub(crate) ws_handler: Option<Box<dyn WebSocketHandler>>,
    pub(crate) log: slog::Logger,
    pub(crate) config: Config,
    pub(crate) scheduler: Scheduler<Connection>,
    /// Open connections, against `max_connections`.
    pub(crate) conn_limit: Arc<ConnLimit<mio::Waker>>,
    /// Open connections that speak WebSocket.
    pub(crate) websockets: AtomicUsize,
    /// Bytes in the IO actors' writers, not yet written (each IO actor
    /// adds its connections' changes after every pump).
    pub(crate) outbound_bytes: AtomicUsize,
    pub(crate) draining: AtomicBool,
}

impl App {
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// A process-unique connection id (also its mio token): unique across
    /// servers too, since a `PubSub` hub may hold WebSockets of several
    /// and `WebSocket`'s `Eq`/`Hash` use it.
    pub(crate) fn next_conn_id(&self) -> u64 {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        NEXT.fetch_add(1, Ordering::Relaxed)
    }
}

/// `now + t`, or a century from now where that overflows an `Instant`
/// (`Duration::MAX` meaning "no limit"): a huge timeout must not panic.
pub(crate) fn deadline_after(t: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(t)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(now)
}
